"""Regenerate the generated blocks of the project's markdown from committed files (tests check they
are current): README.md and every docs/*.md by default, or the files named.

A block is delimited by two HTML comments and holds exactly what a command prints:

    <!-- advlib table results/<run>/results.json -->
    ... the output of `python -m advlib table results/<run>/results.json` ...
    <!-- end -->

    <!-- advlib levers benchmarks/results/cpu_levers.json -->
    ... the lever table (benchmarks/cpu_levers.py's render) ...
    <!-- end -->

Block paths are relative to the repository root, whichever file holds the block (tools/readme_blocks.py
lists the kinds). Run from the repository root:

    python -m tools.update_readme                   # rewrite README.md and docs/*.md in place
    python -m tools.update_readme --check           # exit 1 if a block is stale (nothing written)
    python -m tools.update_readme docs/levers.md    # only these files
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tools.readme_blocks import blocks, regenerate
except ModuleNotFoundError as e:  # run as a file: the repository root is not on sys.path
    if e.name not in ("tools", "benchmarks"):
        raise
    raise SystemExit("run from the repository root: python -m tools.update_readme [--check] [FILES...]") from None

ROOT = Path(__file__).resolve().parents[1]


def default_files(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md that exists, in that order."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def stale_blocks(old: str, new: str) -> list[str]:
    """"<kind> <path>" of each block whose body differs between ``old`` and ``new``."""
    return [f"{k} {p}" for (k, p, a), (_, _, b) in zip(blocks(old), blocks(new), strict=True) if a != b]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 if a block is stale")
    ap.add_argument("files", nargs="*", type=Path, help="markdown files (default: README.md and docs/*.md)")
    args = ap.parse_args(argv)
    files = args.files or default_files()
    status = 0
    for f in files:
        if not f.is_file():
            print(f"{f}: no such file", file=sys.stderr)
            status = 2
            continue
        old = f.read_text()
        new = regenerate(old, ROOT)
        if new == old:
            continue
        name = f.resolve().relative_to(ROOT).as_posix() if f.resolve().is_relative_to(ROOT) else str(f)
        if args.check:
            print(f"{name}: stale generated blocks: {'; '.join(stale_blocks(old, new))}; "
                  "run python -m tools.update_readme", file=sys.stderr)
            status = max(status, 1)
        else:
            f.write_text(new)
            print(f"{name} updated")
    return status


if __name__ == "__main__":
    sys.exit(main())
