"""Draw every figure of a run into one folder, at the size a report prints them, and check each
for text that leaves the figure or runs into other text.

    python -m tools.figure_gallery RUN_DIR [--out DIR] [--results results.json] [--transfer transfer.json]

RUN_DIR is a finished run (``python -m advlib run --profile smoke --out /tmp/figs-smoke`` makes one
in a few minutes). Each figure is written as ``<out>/<name>.png`` (dpi 150, the saved size) with its
stamp; ``--results`` / ``--transfer`` add the results figures drawn from another run's files (e.g.
a committed multi-seed run), named ``<name>--<that run>``; ``--seeds-layout`` adds the training
figure with every history repeated as three seeds (a layout check of the 24-entry case, not a
result). The report printed at the end lists each figure's size in inches and any overlap found;
the exit status is 1 when there is one. Look at every PNG yourself as well: the check sees boxes,
not readability.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def _load(p: Path):
    return json.loads(p.read_text()) if p.is_file() else None


def histories(run_dir: Path) -> dict:
    """Notebook 04's histories: each set (and seed), each matched control, the standard model's extra seeds."""
    from advlib.config import DATASETS, MATCHED_CONTROLS

    out = {}
    models = run_dir / "models"
    for origin, names in (("constructed", DATASETS), ("cifar10", MATCHED_CONTROLS + ("standard",))):
        for d in sorted((models / origin).glob("*")):
            base = d.name.split("-seed")[0]
            if base in names and (d / "history.json").is_file() and (base != "standard" or "-seed" in d.name):
                out[d.name] = json.loads((d / "history.json").read_text())
    return out


def metas(run_dir: Path, names) -> dict:
    out = {}
    for n in names:
        m = _load(run_dir / "datasets" / "constructed" / n / "meta.json")
        if m is not None:
            out[n] = m
    return out


def controls_entries(results: dict) -> list[dict]:
    """The controls summary from results.json alone (what ``advlib.steps.controls.summary`` gives,
    for the run's own seed), for a run whose models are not at hand."""
    from advlib import config
    from advlib.controls import REFERENCES
    from advlib.viz import rows as R

    seed = results.get("seed")
    by = {}
    for r in results.get("rows", []):
        if R.origin(r) == "constructed" and (seed is None or r.get("seed") == seed):
            by.setdefault(r["dataset"], r)
    out = []
    for group, names in (("paper set", ("d_rand", "d_det")), ("control", config.CONTROL_SETS),
                         ("variant", config.SUBSET_VARIANTS)):
        for n in names:
            if n in by:
                r = by[n]
                out.append({"name": n, "label": n, "group": group, "clean_acc": r.get("clean_acc"),
                            "clean_ci95": r.get("clean_ci95"), "train_n": r.get("train_n"),
                            "references": REFERENCES.get(n, {})})
    return out


def layout_histories(epochs: int = 20, eval_every: int = 5) -> dict:
    """Made-up histories in the shape of a cpu run (every set and matched control with 3 seeds, the
    standard model's extra seeds), to check the training figure's layout; not a result."""
    import math
    import random

    from advlib.config import DATASETS, MATCHED_CONTROLS

    rng = random.Random(0)
    out = {}
    names = [n + (f"-seed{k}" if k else "") for n in DATASETS + MATCHED_CONTROLS for k in range(3)]
    for i, name in enumerate(names + ["standard-seed1", "standard-seed2"]):
        rate = 0.1 + 0.3 * rng.random()
        top = 0.4 + 0.6 * rng.random()
        acc = [top * (1 - math.exp(-rate * e)) for e in range(1, epochs + 1)]
        out[name] = {"loss": [2.3 * math.exp(-rate * e) + 0.05 * i / 10 for e in range(1, epochs + 1)],
                     "train_acc": acc,
                     "eval_acc": [0.7 * a if e % eval_every == 0 else None for e, a in enumerate(acc, start=1)]}
    return out


def _boxes(fig):
    """(owner, what, bbox) of the text-like artists after a draw."""
    r = fig.canvas.get_renderer()  # an Agg canvas: check() attached one and drew
    out = []
    for i, ax in enumerate(fig.get_axes()):
        for what, t in (("title", ax.title), ("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)):
            if t.get_text() and t.get_visible():
                out.append((f"axes{i}", what, t.get_window_extent(r)))
        for what, axis in (("xticks", ax.xaxis), ("yticks", ax.yaxis)):
            drawn = axis._update_ticks()  # the ticks inside the view (those drawn)
            labels = [t.label1 for t in drawn if t.label1.get_text() and t.label1.get_visible()]
            for t in labels:
                out.append((f"axes{i}", what, t.get_window_extent(r)))
        if ax.get_legend() is not None:
            out.append((f"axes{i}", "legend", ax.get_legend().get_window_extent(r)))
    for k, leg in enumerate(fig.legends):
        out.append(("figure", f"legend{k}", leg.get_window_extent(r)))
    for what in ("_suptitle", "_supxlabel", "_supylabel"):
        t = getattr(fig, what, None)
        if t is not None and t.get_text():
            out.append(("figure", what.strip("_"), t.get_window_extent(r)))
    sup = {id(getattr(fig, a, None)) for a in ("_suptitle", "_supxlabel", "_supylabel")}
    for t in fig.texts:
        if t.get_text() and id(t) not in sup:
            out.append(("figure", "text", t.get_window_extent(r)))
    return out


def check(fig) -> list[str]:
    """Text outside the figure, and overlaps between text-like artists (tick labels among themselves
    too), after a draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    boxes = _boxes(fig)
    W, H = fig.bbox.width, fig.bbox.height
    found = []
    for owner, what, b in boxes:
        if b.x0 < -1 or b.y0 < -1 or b.x1 > W + 1 or b.y1 > H + 1:
            found.append(f"{owner} {what} leaves the figure ({b.x0:.0f},{b.y0:.0f})-({b.x1:.0f},{b.y1:.0f})")
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (o1, w1, b1), (o2, w2, b2) = boxes[i], boxes[j]
            x = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
            y = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
            if x > 1 and y > 1:
                found.append(f"{o1} {w1} overlaps {o2} {w2} ({x:.0f}x{y:.0f} px)")
    return list(dict.fromkeys(found))


def draw_all(run_dir: Path, extra_results=None, extra_transfer=None, seeds_layout: bool = False) -> dict:
    """name -> figure for every figure of the run (and the extra files')."""
    from advlib import config, gaussian, viz
    from advlib.steps import base

    results = _load(run_dir / "results.json") or {}
    transfer = _load(run_dir / "transfer.json")
    run = base.setup(results.get("profile") or "smoke", str(run_dir))
    stamp = viz.stamp_text(run.cfg, commit=(results.get("machine") or {}).get("commit"))
    x0, y0 = run.train
    sets = viz.load_sets(run.paths, names=config.DATASETS)
    figs = {"fig_cifar_grid": viz.image_grid(x0[:32], y0[:32], nrow=8, title="CIFAR-10 training images", stamp=stamp),
            "fig_side_by_side": viz.side_by_side_for(x0, y0, sets, stamp=stamp),
            "fig_class_means": viz.class_means({"CIFAR-10": run.train, **sets}, stamp=stamp),
            "fig_spectra": viz.spectra_for(x0, sets, stamp=stamp),
            "fig_pixel_stats": viz.pixel_stats_figure({"CIFAR-10": x0, **{n: s.images for n, s in sets.items()}},
                                                      stamp=stamp)}
    for name, fig in viz.perturbation_figures(sets, run.train, stamp=stamp).items():
        figs[f"fig_perturbations_{name}"] = fig
    figs["fig_construction"] = viz.construction_curves(metas(run_dir, config.DATASETS), stamp=stamp)
    hist = histories(run_dir)
    figs["fig_training"] = viz.training_curves(hist, stamp=stamp)
    if seeds_layout:
        figs["fig_training--3-seeds-layout-check"] = viz.training_curves(
            layout_histories(), stamp="layout check: made-up curves, 3 seeds of every model, not a result")
    if results:
        figs["fig_accuracy_vs_eps"] = viz.accuracy_vs_eps(results)
        figs["fig_results_vs_paper"] = viz.results_bars(results)
        figs["fig_controls"] = viz.controls_bars(controls_entries(results), results=results)
    if transfer:
        figs["fig_transfer"] = viz.transfer_scatter(transfer)
    figs["fig_gaussian_theory"] = gaussian.theory_figure(1.0, 10.0, 2)
    viz.set_stamp(figs["fig_gaussian_theory"], stamp)
    for p in extra_results or []:
        other = json.loads(Path(p).read_text())
        tag = Path(p).parent.name
        figs[f"fig_accuracy_vs_eps--{tag}"] = viz.accuracy_vs_eps(other)
        figs[f"fig_results_vs_paper--{tag}"] = viz.results_bars(other)
        entries = controls_entries(other)
        if entries:
            figs[f"fig_controls--{tag}"] = viz.controls_bars(entries, results=other)
    for p in extra_transfer or []:
        figs[f"fig_transfer--{Path(p).parent.name}"] = viz.transfer_scatter(json.loads(Path(p).read_text()))
    return figs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/figure-gallery"))
    ap.add_argument("--results", action="append", default=[], help="another run's results.json (repeatable)")
    ap.add_argument("--transfer", action="append", default=[], help="another run's transfer.json (repeatable)")
    ap.add_argument("--seeds-layout", action="store_true", help="add the training figure with 3 seeds per history")
    ap.add_argument("--pdf", action="store_true", help="write a PDF beside each PNG")
    args = ap.parse_args(argv)
    from advlib import viz

    figs = draw_all(args.run_dir, args.results, args.transfer, args.seeds_layout)
    args.out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for name, fig in figs.items():
        viz.save_figure(fig, name, args.out, formats=("png", "pdf") if args.pdf else ("png",))
        w, h = fig.get_size_inches()
        problems = check(fig)
        bad += bool(problems)
        print(f"{name:44s} {w:4.1f} x {h:4.1f} in  {'OK' if not problems else ''}")
        for p in problems:
            print(f"    {p}")
    print(f"{len(figs)} figures in {args.out}; {bad} with overlaps")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
