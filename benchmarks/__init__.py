"""Benchmark and lever scripts (not part of advlib): run from the repository root as
``python -m benchmarks.<script>``. A script whose JSON a README block quotes renders it with its own
``render(data) -> str`` (see ``tools/readme_blocks.py``)."""
