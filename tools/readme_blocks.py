"""Generated blocks of the project's markdown (README.md, docs/*.md): every number there comes from a
committed file.

A block is ``<!-- advlib <kind> <path> -->`` ... ``<!-- end -->``; its body is rebuilt from the
file at ``<path>`` (relative to the repository root, whichever markdown file holds the block) by the
renderer of ``<kind>``. A benchmark's JSON is rendered by the script that writes it (its
``render(data) -> str``); a run's committed files are rendered here:

- ``table``: a run's tables, exactly ``python -m advlib table <results.json>``;
- ``timings``: a run's wall time per notebook (``timings.json``);
- ``goals``: a cpu run's results.json (and timings.json beside it) against the laptop-scale goals;
- ``controls``: a run's control rows (notebook 07) beside the published numbers of the same controls;
- ``transfer``: a run's transfer.json (notebook 08);
- the kinds of ``BENCHMARKS``: ``benchmarks/<script>.py``'s ``render`` of its JSON.

``regenerate(text, root)`` returns the text with every block rebuilt; ``python -m tools.update_readme``
writes it back and the test suite checks that the committed files equal it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from benchmarks._common import minutes, pct

BLOCK = re.compile(r"(<!-- advlib (\w+) (\S+) -->\n)(.*?)(<!-- end -->)", re.S)

# block kind -> the benchmark script (benchmarks/<script>.py) whose render(data) draws its JSON
BENCHMARKS = {
    "levers": "cpu_levers",
    "invert": "invert_schedule",
    "sets": "set_train_levers",
    "target": "target_source",
    "ddet": "ddet_search",
    "eval": "bench_eval",
    "pgd": "bench_pgd",
    "construct": "bench_construct",
    "rnr": "rnr_control",
    "budget": "attack_budget",
}
RUN_KINDS = ("table", "rows", "claims", "beyond", "timings", "goals", "goals_v1", "controls", "transfer")  # a run's committed files, rendered here
KINDS = RUN_KINDS + tuple(BENCHMARKS)


# --- a run's committed files --------------------------------------------------------------------------
def transfer_table(data: dict) -> str:
    rows = data.get("rows", [])
    lines = ["| architecture | parameters | transfer rate of the source's targeted examples | D_det model: test acc | "
             "D_rand model: test acc |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.get('arch')} | {r.get('params', 0):,} | {pct(r.get('transfer_rate'))} | "
                     f"{pct(r.get('ddet_acc'))} | {pct(r.get('drand_acc'))} |")
    fit = data.get("fit") or {}
    for key, label in (("ddet", "D_det"), ("drand", "D_rand")):
        f = fit.get(key) or {}
        if f:
            lines.append("")
            lines.append(f"{label} accuracy vs transfer rate: slope {f.get('slope', float('nan')):.2f}, "
                         f"Pearson r = {f.get('r', float('nan')):.2f} over {len(rows)} architectures.")
    return "\n".join(lines) + "\n"


BEYOND_PAPER = ("07", "08", "09", "10")  # notebook prefixes of the studies beyond the paper's table


def split_timings(timings: dict) -> tuple[float, float]:
    """Seconds of notebooks 01-06 (the paper's table) and of 07-10 (beyond it)."""
    beyond = sum(sec for name, sec in timings.items() if name[:2] in BEYOND_PAPER)
    return sum(timings.values()) - beyond, beyond


def timings_table(data: dict) -> str:
    """Wall time per notebook and the totals of 01-06 (the paper's table) and 07-10 (beyond it)."""
    lines = ["| notebook | wall time |", "|---|---|"]
    lines += [f"| {name.removesuffix('.ipynb')} | {minutes(sec)} |" for name, sec in data.items()]
    main, beyond = split_timings(data)
    lines.append(f"| **01–06** | **{minutes(main)}** |")
    if beyond:
        lines.append(f"| **07–10** | **{minutes(beyond)}** |")
    return "\n".join(lines) + "\n"


def _mean_over_seeds(rows: list[dict], dataset: str, value) -> float | None:
    vals = [value(r) for r in rows if r["dataset"] == dataset]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def goals_v1_table(results: dict, timings: dict | None, eps: str = "0.25") -> str:
    """The laptop-scale goals of the runs of 2026-11-30 (before matched controls), as they were judged."""
    rows = results.get("rows", [])

    def rob(name):
        return _mean_over_seeds(rows, name, lambda r: (r.get("robust_acc") or {}).get(eps))

    def clean(name):
        return _mean_over_seeds(rows, name, lambda r: r.get("clean_acc"))

    std, dr, dnr = rob("standard"), rob("d_robust"), rob("d_non_robust")
    lines = ["| measure | this run | goal | met |", "|---|---|---|---|"]

    def add(what, shown, goal, ok):
        lines.append(f"| {what} | {shown} | {goal} | {'yes' if ok else '**no**'} |")

    def pts(v):
        return f"{100 * v:+.1f} pts"

    if timings:
        main, _ = split_timings(timings)
        add("wall time, notebooks 01–06", minutes(main), "≤ 60 min", main <= 3600)
    if std is not None:
        add(f"standard model, L2 PGD robust @ {eps}", pct(std), "≤ 10%", std <= 0.10)
    if None not in (dr, dnr):
        add(f"D_R robust − D_NR robust @ {eps}", pts(dr - dnr), "≥ +15 pts (stretch +25)", dr - dnr >= 0.15)
    if None not in (dr, std):
        add(f"D_R robust − standard robust @ {eps}", pts(dr - std), "> 0", dr - std > 0)
    if None not in (dnr, std):
        add(f"D_NR robust @ {eps}", f"{pct(dnr)} (standard: {pct(std)})", "≤ 10% and < half the standard's",
            dnr <= 0.10 and dnr < std / 2)
    for name, label in (("d_rand", "D_rand"), ("d_det", "D_det")):
        c = clean(name)
        if c is not None:
            add(f"{label} clean accuracy on the true test set", pct(c), "≥ 30%", c >= 0.30)
    return "\n".join(lines) + "\n"


def goals_table(results: dict, timings: dict | None) -> str:
    """The goals for a cpu run, judged from its claims (``advlib.verdicts.claims``: differences with
    95% intervals over seeds and images, and their verdicts) and its timings."""
    from advlib.verdicts import claims

    cfg = results.get("config") or {}
    eps, ceps = str(float(cfg.get("eval_eps", 0.25))), str(float(cfg.get("claim_eps", cfg.get("eval_eps", 0.25))))
    by = {c["id"]: c for c in claims(results)}
    lines = ["| measure | this run (95% interval) | goal | met |", "|---|---|---|---|"]

    def add(what, shown, goal, ok):
        lines.append(f"| {what} | {shown} | {goal} | {'yes' if ok else '**no**'} |")

    def diff(c):
        n = c["numbers"]
        return f"{n['difference']:+.1f} pts [{n['ci95'][0]:+.1f}, {n['ci95'][1]:+.1f}], {c['verdict']}"

    for e in dict.fromkeys((ceps, eps)):
        c = by.get(f"d_robust_vs_control@{e}")
        if not c:
            continue
        if e == ceps:
            ok = c["verdict"] == "supported" and c["numbers"]["difference"] >= 10
            add(f"D_R robust − its matched control's @ {e} (the declared radius)", diff(c), "≥ +10 pts, supported", ok)
        else:
            lines.append(f"| D_R robust − its matched control's @ {e} (the paper's radius) | {diff(c)} | reported with "
                         f"its verdict (stretch: supported) | yes (stretch: {'yes' if c['verdict'] == 'supported' else 'no'}) |")
    for e in dict.fromkeys((ceps, eps)):
        c = by.get(f"d_non_robust_vs_control@{e}")
        if c:
            n = c["numbers"]
            half = n["D_NR"] <= n["control"] / 2
            add(f"D_NR robust vs its matched control's @ {e}", f"{n['D_NR']:.1f}% vs {n['control']:.1f}%, "
                f"{c['verdict']}", "≤ half the control's, supported", half and c["verdict"] == "supported")
    c = by.get(f"d_robust_vs_d_non_robust@{eps}")
    if c:
        add(f"D_R robust − D_NR robust @ {eps}", diff(c), "≥ +15 pts (stretch +25)", c["numbers"]["difference"] >= 15)
    c = by.get("standard_non_robust")
    if c:
        n = c["numbers"]
        add(f"standard model robust @ {eps} (headline attack)", f"{n['estimate']:.1f}% [{n['ci95'][0]:.1f}, "
            f"{n['ci95'][1]:.1f}]", "≤ 10%", n["estimate"] <= 10)
    for cid, label in (("d_rand_generalizes", "D_rand"), ("d_det_generalizes", "D_det")):
        c = by.get(cid)
        if c:
            n = c["numbers"] if "estimate" in c["numbers"] else c["numbers"]["d_det_above_chance"]
            add(f"{label} clean accuracy on the true test labels", f"{n['estimate']:.1f}% [{n['ci95'][0]:.1f}, "
                f"{n['ci95'][1]:.1f}], {c['verdict']}", "≥ 30%, supported",
                n["estimate"] >= 30 and c["verdict"] == "supported")
    if timings:
        main, beyond = split_timings(timings)
        add("wall time, notebooks 01–06", minutes(main), "≤ 60 min", main <= 3600)
        if beyond:
            # 07-09 had 30 min; notebook 10 adds at most 20 at the cpu profile
            add("wall time, notebooks 07–10 (more)", minutes(beyond), "≤ 50 min", beyond <= 3000)
    return "\n".join(lines) + "\n"


def beyond_table(results: dict) -> str:
    """Notebook 10's claims (beyond the paper: ℓ∞ sets, synthesis, "just bugs", label leakage) with
    their numbers and verdicts, and the tally."""
    from advlib.steps.beyond import BEYOND_TALLY_NOTE
    from advlib.tables import beyond_claims_table
    from advlib.verdicts import beyond_claims, tally

    found = beyond_claims(results)
    if not found:
        return "_(notebook 10 has not run: no claim beyond the paper to show)_\n"
    return beyond_claims_table(results) + "\n" + tally(found, BEYOND_TALLY_NOTE) + "\n"


def rows_table(results: dict) -> str:
    """The run's description and its main table (every model of the paper's L2 tables), without the
    claims, sweeps and notebook 10's parts that ``python -m advlib table`` prints after it."""
    from advlib.tables import describe_run, results_table

    return describe_run(results) + "\n\n" + results_table(results)


CONTROL_ROWS = ("d_rand", "d_det", "d_other", "d_rand_synthetic", "d_det_synthetic", "relabel",
                "d_rand_t_ne_y", "d_rand_hits", "d_det_hits")


def controls_table(results: dict) -> str:
    """Clean accuracy on the true test labels of the sets of notebook 07 (ours, mean over the seeds
    present) beside the published accuracy of the same control (theirs, full CIFAR-10)."""
    from advlib.controls import REFERENCE_SOURCES, REFERENCES
    from advlib.results import row_label
    from advlib.tables import cell

    rows = results.get("rows", [])
    lines = ["| set | ours: clean acc (true labels) | n train | theirs (published) |", "|---|---|---|---|"]
    for name in CONTROL_ROWS:
        mine = [r for r in rows if r["dataset"] == name]
        if not mine:
            continue
        ours = cell(mine, "clean")
        refs = REFERENCES.get(name, {})
        theirs = "; ".join(f"{pct(v)} ({REFERENCE_SOURCES[k]})" for k, v in refs.items()) or "–"
        n = mine[0].get("train_n")
        lines.append(f"| {row_label(name)} | {ours} | {n if n is None else f'{n:,}'} | {theirs} |")
    return "\n".join(lines) + "\n"


# --- dispatch ------------------------------------------------------------------------------------------
def benchmark_renderer(kind: str):
    """``benchmarks.<script>.render`` of a benchmark block kind."""
    return importlib.import_module(f"benchmarks.{BENCHMARKS[kind]}").render


def render(kind: str, path: Path) -> str:
    """The body of a ``<!-- advlib <kind> <path> -->`` block, from the file at ``path``."""
    path = Path(path)
    if kind in ("table", "rows"):
        from advlib.results import load_results
        from advlib.tables import render as render_results

        return (render_results if kind == "table" else rows_table)(load_results(path))
    if kind not in KINDS:
        raise ValueError(f"unknown block kind {kind!r} (expected one of {' | '.join(KINDS)})")
    data = json.loads(path.read_text())
    if kind == "timings":
        return timings_table(data)
    if kind in ("goals", "goals_v1"):
        timings = path.parent / "timings.json"
        table = goals_table if kind == "goals" else goals_v1_table
        return table(data, json.loads(timings.read_text()) if timings.is_file() else None)
    if kind == "claims":  # the table, then the tally sentence notebook 05 ends its claims with
        from advlib.tables import claims_table
        from advlib.verdicts import claims, tally

        return claims_table(data) + "\n" + tally(claims(data)) + "\n"
    if kind == "beyond":
        return beyond_table(data)
    if kind == "controls":
        return controls_table(data)
    if kind == "transfer":
        return transfer_table(data)
    return benchmark_renderer(kind)(data)


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(kind, path, body) of every generated block in ``text``."""
    return [(m.group(2), m.group(3), m.group(4)) for m in BLOCK.finditer(text)]


def regenerate(text: str, root: Path) -> str:
    """``text`` with the body of every block rebuilt from its file (paths relative to ``root``)."""
    def sub(m):
        kind, rel = m.group(2), m.group(3)
        path = Path(root) / rel
        if not path.is_file():
            raise FileNotFoundError(f"block '{kind} {rel}': {path} is not in the repository")
        return m.group(1) + render(kind, path) + m.group(5)

    return BLOCK.sub(sub, text)


__all__ = ["regenerate", "blocks", "render", "benchmark_renderer", "BENCHMARKS", "RUN_KINDS", "KINDS",
           "transfer_table", "timings_table", "goals_table", "controls_table", "split_timings"]
