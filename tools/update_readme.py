"""Regenerate the README's generated blocks from committed files (tests check they are current).

A block is delimited by two HTML comments and holds exactly what a command prints:

    <!-- advlib table results/<run>/results.json -->
    ... the output of `python -m advlib table results/<run>/results.json` ...
    <!-- end -->

    <!-- advlib levers benchmarks/results/cpu_levers.json -->
    ... the lever table (advlib.readme.levers_table) ...
    <!-- end -->

    python tools/update_readme.py          # rewrite README.md in place
    python tools/update_readme.py --check  # exit 1 if a block is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advlib.readme import regenerate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = regenerate(old, ROOT)
    if args.check:
        if new != old:
            print("README.md: generated blocks are stale; run python tools/update_readme.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        readme.write_text(new)
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
