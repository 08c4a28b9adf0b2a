"""Figures of results: accuracy against the L2 radius, bars beside the paper's numbers, training
and construction curves. Inputs are the plain dicts of ``results.json``, training histories and
``meta.json`` files. Accuracies are drawn as percent; a number over several seeds is their mean
with the tables' 95% interval (:mod:`advlib.viz.rows`), and the footer says what the whiskers are.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import rows as R
from . import style
from .common import _figure, add_note, auto_stamp

_SKIP = tuple(style.NOTEBOOK07)  # notebook 07's controls have their own figure (fig_controls)
_SKIP += ("d_det_bugs", "d_det_subset")  # and notebook 10's just-bugs sets (fig_just_bugs)


def _attack_note(results) -> str:
    desc = R.attack_of(results)
    return f"Robust accuracy: {desc}." if desc else ""


def _notes(fig, *texts) -> None:
    for t in texts:
        add_note(fig, t)


def _seed_label(label: str, counts: dict, total: int) -> str:
    """``"D_R (3 seeds)"``, or which radii have fewer seeds: ``"D_R (3 seeds; ε ≥ 0.5: 1)"``."""
    if total <= 1:
        return label
    fewer = sorted((e, n) for e, n in counts.items() if n < total)
    if not fewer:
        return f"{label} ({total} seeds)"
    by_n: dict[int, list[float]] = {}
    for e, n in fewer:
        by_n.setdefault(n, []).append(e)
    parts = [f"ε {'≥ ' if len(es) > 1 else '= '}{min(es):g}: {n}" for n, es in sorted(by_n.items())]
    return f"{label} ({total} seeds; {'; '.join(parts)})"


@style.styled
def accuracy_vs_eps(results: dict, *, stamp=None) -> Figure:
    """Accuracy against the L2 radius, one line per (dataset, origin) in its colour (matched controls
    dashed). ε = 0 is the clean accuracy on the same test images as the attack. Each point is the
    mean over the seeds that have it, with its 95% interval; a point with fewer seeds than its line
    is hollow and the legend says where. The paper's numbers are hollow diamonds of the same colour,
    spread sideways so that none hides another. ``stamp``: a footer line (default: from ``results``;
    False: none). Notebook 07's controls are left to :func:`controls_bars`."""
    groups = R.groups(results, skip=_SKIP)
    fig = _figure(figsize=(style.WIDTH, 4.3), layout="constrained")
    ax = fig.subplots()
    radii, kinds, handles = set(), [], []
    with_paper = [g for g in groups if R.paper_value(g, "clean") is not None or (g.paper.get("robust_acc") or {})]
    for g in groups:
        eps = sorted({float(e) for r in g.rows for e in (r.get("robust_acc") or {}) if float(e) > 0})
        pts = [(0.0, R.value(g.rows, "clean"))] + [(e, R.value(g.rows, R.key(e))) for e in eps]
        pts = [(e, v) for e, v in pts if v is not None]
        if not pts:
            continue
        c, ls = style.color(g.dataset), style.linestyle(g.dataset)
        xs = np.array([e for e, _ in pts])
        ys = np.array([v.mean for _, v in pts])
        err = np.array([v.err for _, v in pts]).T
        radii.update(xs.tolist())
        kinds += [v.kind for _, v in pts]
        ax.plot(xs, ys, ls=ls, color=c, marker="o", ms=4.5, zorder=3, gid=f"line:{g.dataset}:{g.origin}")
        ax.vlines(xs, ys - err[0], ys + err[1], color=c, lw=0.9, zorder=2)
        fewer = np.array([v.seeds < g.seeds for _, v in pts])
        for x, y in zip(xs[fewer], ys[fewer], strict=True):  # hollow: fewer seeds than the line
            ax.plot([x], [y], "o", color=c, mfc="white", ms=4.5, zorder=4)
        label = _seed_label(g.label, {e: v.seeds for e, v in pts}, g.seeds)
        handles.append(Line2D([], [], color=c, ls=ls, marker="o", ms=4.5, label=label))
    xmax = max(radii | {0.25})
    dx = 0.013 * xmax
    for k, g in enumerate(with_paper):
        off = (k - (len(with_paper) - 1) / 2) * dx
        ppts = [(0.0, R.paper_value(g, "clean"))] + [(float(e), a) for e, a in (g.paper.get("robust_acc") or {}).items()]
        ppts = [(e, float(a)) for e, a in ppts if a is not None]
        for e, a in ppts:
            ax.plot([e + off], [a], "D", ms=6.5, mfc="none", mec=style.color(g.dataset), mew=1.1, ls="none",
                    zorder=4, gid=f"paper:{g.dataset}")
    if with_paper:
        handles.append(Line2D([], [], marker="D", ms=6.5, mfc="none", mec="0.3", ls="none",
                              label="paper (ResNet-50), spread sideways"))
    ax.set_xticks(sorted(radii) if radii else [0.0])
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    style.percent_axis(ax, lim=(-0.02, 1.02))
    ax.set(xlabel="L2 radius ε (ε = 0: clean accuracy, on the same test images)",
           ylabel="accuracy on CIFAR-10 test", title="Accuracy under L2 attack, against the radius")
    style.grid(ax)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", title="trained on")
    hollow = "Hollow circle: fewer seeds than the line's other points. " if any(
        "seeds;" in h.get_label() for h in handles) else ""
    _notes(fig, hollow + R.whisker_note(kinds), _attack_note(results))
    auto_stamp(fig, stamp, results)
    return fig


def _wrap(label: str, width: int = 13) -> str:
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


@style.styled
def results_bars(results: dict, *, eps: str = "0.25", stamp=None) -> Figure:
    """Clean accuracy (top) and robust accuracy at ``eps`` (bottom) per (dataset, origin): this run's
    bar in the set's colour (matched controls hatched) beside the paper's (grey), as percent, with
    the 95% interval of the mean over seeds; a missing number reads "n/a"."""
    groups = R.groups(results, skip=_SKIP)
    fig = _figure(figsize=(style.WIDTH, 5.6), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, squeeze=False)[:, 0]
    pos = np.arange(len(groups))
    w, kinds = 0.4, []
    for ax, what, title in ((axes[0], "clean", "Clean accuracy"),
                            (axes[1], R.key(eps), f"Robust accuracy at L2 ε = {float(eps):g}")):
        for p, g in zip(pos, groups, strict=True):
            v = R.value(g.rows, what)
            mine = np.nan if v is None else v.mean
            err = np.array([[0.0], [0.0]]) if v is None else np.array(v.err).reshape(2, 1)
            if v is not None and v.kind:
                kinds.append(v.kind)
            ax.bar(p - w / 2, np.nan_to_num(mine), w, yerr=err if err.any() else None, capsize=2,
                   error_kw={"elinewidth": 0.8, "ecolor": "0.25"}, **style.bar_style(g.dataset))
            paper = R.paper_value(g, what)
            ax.bar(p + w / 2, 0 if paper is None else paper, w, color=style.PAPER)
            top = (0 if np.isnan(mine) else mine + err[1, 0])
            ax.text(p - w / 2, top + 0.015, "n/a" if np.isnan(mine) else f"{100 * mine:.0f}", ha="center",
                    va="bottom", fontsize=style.TINY)
            ax.text(p + w / 2, (paper or 0) + 0.015, "n/a" if paper is None else f"{100 * paper:.0f}",
                    ha="center", va="bottom", fontsize=style.TINY, color="0.35")
        style.percent_axis(ax, lim=(0, 1.1))
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set(title=title, ylabel="accuracy on\nCIFAR-10 test")
        style.grid(ax, "y")
    axes[1].set_xticks(pos, [_wrap(g.label) for g in groups], fontsize=style.TINY + 0.5)
    handles = [Patch(color="0.2", label="this run (the set's colour)"),
               Patch(facecolor="white", edgecolor="0.2", hatch="///", label="matched control: its real images"),
               Patch(color=style.PAPER, label="paper (ResNet-50)")]
    if not any(style.kind(g.dataset) == "matched control" for g in groups):
        handles.pop(1)
    axes[0].legend(handles=handles, loc="upper right", ncols=len(handles), fontsize=style.TINY + 0.5)
    _notes(fig, "Numbers above the bars: percent. " + R.whisker_note(kinds), _attack_note(results))
    auto_stamp(fig, stamp, results)
    return fig


def _history_groups(histories: dict) -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = {}
    for name in sorted(histories, key=style.sort_key):
        out.setdefault(style.base_name(name), []).append((name, histories[name] or {}))
    return out


@style.styled
def training_curves(histories: dict, *, stamp: str | None = None) -> Figure:
    """Per epoch: (a) the training loss, (b) accuracy on the model's own training set, (c) accuracy on
    the validation split, one colour per dataset (every seed of a dataset in its colour, matched
    controls dashed), one legend entry per dataset above the panels.

    ``histories``: name (``"d_robust"``, ``"d_robust-seed1"``, ...) -> {"loss": [...], "train_acc":
    [...], "eval_acc": [...]} (missing lists are skipped; ``None`` entries are epochs without an
    evaluation). ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`).
    """
    fig = _figure(figsize=(style.WIDTH, 3.5), layout="constrained")
    axes = fig.subplots(1, 3, sharex=True)
    handles = []
    for base, members in _history_groups(histories).items():
        c, ls = style.color(base), style.linestyle(base)
        for i, (name, h) in enumerate(members):
            for ax, series in zip(axes, ("loss", "train_acc", "eval_acc"), strict=True):
                vals = h.get(series) or []
                pts = [(e, v) for e, v in enumerate(vals, start=1) if v is not None]
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                sparse = len(ys) < 3 or len(ys) < len(vals)
                ax.plot(xs, ys, ls=ls, color=c, lw=1.4 if i == 0 else 1.0, alpha=1.0 if i == 0 else 0.7,
                        marker="o" if sparse else None, ms=3, label=f"{name} {series}", gid=f"{name}:{series}")
        n = len(members)
        handles.append(Line2D([], [], color=c, ls=ls, lw=1.4, label=style.display(base) + (f" ({n} seeds)" if n > 1 else "")))
    titles = ("(a) training loss", "(b) accuracy on its training set", "(c) validation accuracy")
    last = max([len(h.get(k) or []) for h in histories.values() if h for k in ("loss", "train_acc", "eval_acc")] + [1])
    for ax, title in zip(axes, titles, strict=True):
        ax.set(xlabel="epoch", title=title)
        style.epoch_axis(ax, last)
        style.grid(ax)
    axes[0].set_ylabel("cross-entropy")
    for ax in axes[1:]:
        style.percent_axis(ax, lim=(0, 1.02))
    axes[1].set_ylabel("accuracy")
    if handles:
        ncols = min(len(handles), 4)
        fig.legend(handles=style.row_major(handles, ncols), loc="outside upper center", ncols=ncols,
                   fontsize=style.TINY + 0.5, handlelength=2.4, columnspacing=1.2)
    _notes(fig, "Validation: CIFAR-10 training images held out of every set, true labels. Several seeds: "
                "one line each (the first seed drawn darker).")
    auto_stamp(fig, stamp)
    return fig


_CURVES = {"loss_curve": "", "matching_loss": "matching loss", "rel_distance": "relative distance",
           "target_loss": "target loss"}


def _still_falling(xs, arr) -> str | None:
    """"still falling: −4% in the last 10 steps" when the last logged interval still lowers the
    curve by more than 1% of its value."""
    if len(arr) < 2 or arr[-2] <= 0:
        return None
    drop = (arr[-2] - arr[-1]) / arr[-2]
    if drop <= 0.01:
        return None
    n = xs[-1] - xs[-2]
    return f"still falling: −{100 * drop:.0f}% in the last {'step' if n == 1 else f'{n:g} steps'}"


@style.styled
def construction_curves(metas: dict, *, stamp: str | None = None) -> Figure:
    """Per-step curves recorded in each set's ``meta.json`` during construction (D_R and D_NR:
    representation matching), each divided by its value at step 0: D_R and D_NR match two different
    models' representations, whose distances have different scales. A curve still falling at its
    last step ends in a triangle and says so in the legend; sets without a curve (D_rand, D_det:
    targeted PGD) are named in the footer.

    Any list of numbers (or list of per-shard lists, averaged) under ``loss_curve``,
    ``matching_loss``, ``rel_distance`` or ``target_loss`` is drawn against ``loss_steps`` (else
    1..len). ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`).
    """
    fig = _figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    missing = []
    for name, meta in (metas or {}).items():
        meta = meta or {}
        drawn = False
        for key, what in _CURVES.items():
            v = meta.get(key)
            if not v:
                continue
            arr = np.array([np.asarray(s, dtype=float) for s in v]) if isinstance(v[0], (list, tuple)) else np.asarray(v, float)
            if arr.ndim == 2:
                arr = arr.mean(axis=0)
            # the curve is logged every few steps: plot it at the steps meta.json names, not at 1..len
            steps = meta.get("loss_steps")
            xs = np.asarray(steps, float) if steps is not None and len(steps) == len(arr) else np.arange(1, len(arr) + 1)
            rel = arr / arr[0] if arr[0] > 0 else arr
            base = style.base_name(name)
            label = style.display(name) + (f": {what}" if what else "")
            if base in style.BUILT_WITH:
                label += f", matching the {style.BUILT_WITH[base]}"
            details = []
            final = meta.get("final_rel_distance")
            if key == "loss_curve" and isinstance(final, dict) and final.get("mean") is not None:
                details.append(f"at the end ‖g(x_r) − g(x)‖ / ‖g(x)‖ = {final['mean']:.2f} (mean)")
            falling = _still_falling(xs, rel)
            if falling:
                details.append(falling)
            c = style.color(name)
            ax.plot(xs, rel, color=c, ls="--" if key == "rel_distance" else "-", marker="o", ms=2.5,
                    label=label + "".join(f"\n  {d}" for d in details), gid=f"curve:{name}:{key}")
            if falling:
                ax.plot([xs[-1]], [rel[-1]], "v", color=c, ms=7, zorder=4)
            drawn = True
        if not drawn:
            missing.append(style.display(name))
    ax.set(xlabel="step of the descent", title="Building D_R and D_NR: the distance left to the target's features")
    ax.set_ylabel("‖g(x_r) − g(x)‖, % of its value at step 0")
    style.percent_axis(ax, lim=(0, 1.05))
    style.integer_axis(ax)
    style.grid(ax)
    if ax.lines:
        ax.legend(loc="upper right", fontsize=style.TINY + 0.5)
    else:
        ax.text(0.5, 0.5, "no construction curve recorded", ha="center", va="center", transform=ax.transAxes,
                color="0.4")
    notes = ["g: the source model's representation; x: the target image; x_r starts at another image (step 0)."]
    if missing:
        notes.append(f"No curve: {', '.join(missing)} (targeted PGD records none; see the construction table).")
    _notes(fig, *notes)
    auto_stamp(fig, stamp)
    return fig
