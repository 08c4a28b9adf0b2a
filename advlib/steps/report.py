"""Notebook 06, the run's report: the paper's claims with their verdicts, the table beside the
paper, the figures, and what this run does not show → ``report.md`` (and the HTML report)."""

from __future__ import annotations

import json

from ..config import PAPER
from .base import (
    MissingInput,  # noqa: F401 (setup: the notebook's first call)
    Run,
    duration,
    markdown_table,
    pct,
    save,
    setup,
    show,
    smoke_note,
)
from .evaluate import claims_text


def load(run: Run) -> dict:
    from .. import results as rs

    if not run.paths.results.is_file():
        raise MissingInput(f"{run.paths.results} not found: run notebook 05 (evaluation) first")
    return rs.load_results(run.paths.results)


def verdicts(results: dict):
    """The claims, each with its verdict (from the rows, never typed)."""
    return show(smoke_note(results.get("profile")) + claims_text(results))


def paper_table(results: dict):
    """Our numbers beside the paper's, row by row (means over seeds; intervals in notebook 05)."""
    from .. import tables as tb

    return show(tb.results_table(results))


def paper_figure(run: Run, results: dict):
    from .. import viz

    return save(run, viz.results_bars(results), "fig_results_vs_paper")


def _mean(rows, get):
    vals = [v for v in (get(r) for r in rows) if v is not None]
    return sum(vals) / len(vals) if vals else None


def shortfall(results: dict) -> str:
    """What this run does not show: its clean accuracies against the paper's, and its scale."""
    from ..results import rows_of

    cfg = results.get("config") or {}
    gaps = []
    for name in ("standard", "d_robust", "d_non_robust", "d_rand", "d_det"):
        c = _mean(rows_of(results, name), lambda r: r.get("clean_acc"))
        paper = (PAPER.get(name) or {}).get("clean_acc")
        if c is not None and paper is not None:
            gaps.append(f"{name} {pct(c)} (paper {pct(paper)})")
    if not gaps:
        return ""
    return ("**What this run does not show.** Clean accuracies at this scale are far from the paper's: "
            + ", ".join(gaps) + f". The models are `{cfg.get('arch')}` networks trained on "
            f"{cfg.get('n_train') or 'all'} CIFAR-10 images (the paper: ResNet-50 on 50,000); a verdict here is about "
            "this scale, not the paper's. Robust accuracy is an upper bound set by the strongest attack run "
            "(PGD, then APGD-T); the AutoAttack cross-check bounds how far it may still be off.")


def not_shown(results: dict):
    return show(shortfall(results))


def _timings(run: Run, results: dict) -> dict:
    timings = dict(results.get("timings_s", {}))
    if run.paths.timings.is_file():  # the runner writes timings.json after each notebook
        timings.update({f"notebook:{k}": v for k, v in json.loads(run.paths.timings.read_text()).items()})
    return timings


def write_report(run: Run, results: dict):
    """report.md in the run directory: verdicts, tables, what the run does not show, timings, the
    machine and the exact settings. Returns a line saying where it is."""
    from .. import tables as tb
    from ..utils import atomic_write_text

    note = ""
    if results.get("profile") == "smoke":
        note = ("> **Smoke profile**: a tiny network trained for one or two epochs on 600 embedded images. Its numbers "
                "are near chance by design; they show that every step runs, not the paper's result.\n\n")
    text = "\n".join([
        f"# Run report: profile `{results.get('profile')}`", "",
        note + "Accuracies on the real CIFAR-10 test set (fractions shown as percent). Paper numbers: ResNet-50 "
        "on the original CIFAR-10 (Ilyas et al. 2019).", "",
        "## The paper's claims", "", claims_text(results), "",
        tb.render(results), shortfall(results), "",
        "## Timings", "", markdown_table([{"step": k, "time": duration(v)} for k, v in sorted(_timings(run, results).items())]),
        "", "## Machine", "", "```json", json.dumps(results.get("machine") or {}, indent=2, sort_keys=True), "```", "",
        "## Settings", "", "```json", json.dumps(results.get("config", {}), indent=2, sort_keys=True), "```", "",
    ])
    path = atomic_write_text(run.paths.report, text)
    return show(f"Wrote `{path.relative_to(run.paths.root)}` in the run directory.")


__all__ = ["setup", "load", "verdicts", "paper_table", "paper_figure", "shortfall", "not_shown", "write_report"]
