"""Copy a finished run into the repository: its record under results/<name>/, its figures into figures/.

    python -m tools.commit_run runs/cpu cpu-2026-12-01

Copies results.json, report.md, report.html, timings.json, config.json and transfer.json (those
present) into ``results/<name>/`` and every figure (PNG + PDF) of the run into ``figures/`` (the
folder holds one run's figures: the old ones are removed first). A machine's absolute paths never
land in the repository: every string in the JSON files, report.md and report.html that is an
absolute path is replaced the way ``benchmarks._common.portable`` writes it (relative to the
repository when inside it, else "outside the repository: <name>"). Files are written to a temporary
name and renamed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ("results.json", "report.md", "report.html", "timings.json", "config.json", "transfer.json")
ABSOLUTE = re.compile(r"(?<![\w:/.+=])(/(?:work|root|home|tmp|Users|var|opt|mnt)/[^\s\"'<>),`]+)")


def _portable(text: str) -> str:
    from benchmarks._common import portable

    return ABSOLUTE.sub(lambda m: str(portable(m.group(1))), text)


def _clean(value):
    if isinstance(value, str):
        return _portable(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_portable(k): _clean(v) for k, v in value.items()}
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def commit(run_dir: Path, name: str) -> list[Path]:
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "results.json").is_file():
        raise SystemExit(f"{run_dir}: no results.json (run the notebooks first)")
    if not re.fullmatch(r"[\w.-]+", name):
        raise SystemExit(f"run name {name!r}: letters, digits, '.', '_' and '-' only")
    out = ROOT / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in RECORD:
        src = run_dir / f
        if not src.is_file():
            continue
        if f.endswith(".json"):
            text = json.dumps(_clean(json.loads(src.read_text())), indent=2, sort_keys=False) + "\n"
        else:
            text = _portable(src.read_text())
        _write(out / f, text)
        written.append(out / f)
    figures = ROOT / "figures"
    shown = sorted((run_dir / "figures").glob("*.p[nd][gf]"))
    if shown:
        for old in figures.glob("*.p[nd][gf]"):
            old.unlink()
        figures.mkdir(exist_ok=True)
        for f in shown:
            shutil.copy2(f, figures / f.name)
            written.append(figures / f.name)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("name", help="results/<name>/")
    args = ap.parse_args(argv)
    for p in commit(Path(args.run_dir), args.name):
        print(p.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
