"""Generated blocks of the project's README: every number there comes from a committed file.

A block is ``<!-- advlib <kind> <path> -->`` ... ``<!-- end -->``; its body is rebuilt from the
file at ``<path>`` (relative to the repository root) by the renderer of ``<kind>``:

- ``table``: a run's tables, exactly ``python -m advlib table <results.json>``;
- ``levers``: the CPU levers table from ``benchmarks/cpu_levers.py``'s JSON;
- ``bench``: a ratio benchmark's row(s) from its JSON;
- ``transfer``: a run's transfer.json (notebook 08).

``regenerate(text, root)`` returns the README with every block rebuilt; the test suite checks
that the committed README equals it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

BLOCK = re.compile(r"(<!-- advlib (\w+) (\S+) -->\n)(.*?)(<!-- end -->)", re.S)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def levers_table(data: dict) -> str:
    """One row per measured setting: what changed, clean, PGD-20 robust at 0.25 and 0.5, train accuracy."""
    lines = ["| setting | model | train acc | clean | PGD-20 @ 0.25 | @ 0.5 | train time |",
             "|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        s = r.get("setting", {})
        what = r.get("what") or r["name"]
        lines.append(f"| {what} | {s.get('arch')}, {s.get('epochs')} ep, n={s.get('n')} | {_pct(r.get('train_acc'))} | "
                     f"{_pct(r.get('clean_acc'))} | {_pct(r.get('pgd20_0.25'))} | {_pct(r.get('pgd20_0.5'))} | "
                     f"{r.get('train_s', 0) / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def transfer_table(data: dict) -> str:
    rows = data.get("rows", [])
    lines = ["| architecture | parameters | transfer rate of the source's targeted examples | D_det model: test acc | "
             "D_rand model: test acc |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.get('arch')} | {r.get('params', 0):,} | {_pct(r.get('transfer_rate'))} | "
                     f"{_pct(r.get('ddet_acc'))} | {_pct(r.get('drand_acc'))} |")
    fit = data.get("fit") or {}
    for key, label in (("ddet", "D_det"), ("drand", "D_rand")):
        f = fit.get(key) or {}
        if f:
            lines.append("")
            lines.append(f"{label} accuracy vs transfer rate: slope {f.get('slope', float('nan')):.2f}, "
                         f"Pearson r = {f.get('r', float('nan')):.2f} over {len(rows)} architectures.")
    return "\n".join(lines) + "\n"


def bench_table(data: dict) -> str:
    rows = data.get("rows") or [data]
    lines = ["| what | advlib | peer | ratio |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.get('what', r.get('task', r.get('benchmark')))} | {r.get('advlib', '')} | "
                     f"{r.get('peer', '')} | {r.get('ratio', '')} |")
    return "\n".join(lines) + "\n"


def render(kind: str, path: Path) -> str:
    if kind == "table":
        from .evaluate import load_results
        from .evaluate import render as render_results

        return render_results(load_results(path))
    data = json.loads(path.read_text())
    if kind == "levers":
        return levers_table(data)
    if kind == "transfer":
        return transfer_table(data)
    if kind == "bench":
        return bench_table(data)
    raise ValueError(f"unknown README block kind {kind!r} (table | levers | transfer | bench)")


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(kind, path, body) of every generated block in ``text``."""
    return [(m.group(2), m.group(3), m.group(4)) for m in BLOCK.finditer(text)]


def regenerate(text: str, root: Path) -> str:
    def sub(m):
        kind, rel = m.group(2), m.group(3)
        path = Path(root) / rel
        if not path.is_file():
            raise FileNotFoundError(f"README block '{kind} {rel}': {path} is not in the repository")
        return m.group(1) + render(kind, path) + m.group(5)

    return BLOCK.sub(sub, text)


__all__ = ["regenerate", "blocks", "render", "levers_table", "transfer_table", "bench_table"]
