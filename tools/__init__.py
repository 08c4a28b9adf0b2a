"""Project tooling (not part of advlib): run from the repository root as ``python -m tools.<name>``."""
