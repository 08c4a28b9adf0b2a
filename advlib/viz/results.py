"""Figures of results: accuracy against the L2 radius, bars beside the paper's numbers, training
and construction curves. Inputs are the plain dicts of ``results.json``, training histories and
``meta.json`` files.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .common import _COLORS, _figure


# --- results ------------------------------------------------------------------------------------
def _groups(results) -> list[tuple[str, list[dict]]]:
    """(display name, rows of every seed) per (dataset, source), in first-seen order. The source is
    added to the name when one dataset appears with several sources."""
    rows = results.get("rows", []) if isinstance(results, dict) else list(results)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("dataset", "?"), r.get("source")), []).append(r)
    out = []
    for (ds, src), rs in groups.items():
        several = len({s for d, s in groups if d == ds}) > 1
        out.append((f"{ds} ({src})" if several and src else ds, rs))
    return out


def _mean_std(vals: list[float]) -> tuple[float, float]:
    a = np.asarray(vals, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _curve(acc: dict) -> list[tuple[float, float]]:
    return sorted((float(k), float(v)) for k, v in (acc or {}).items() if v is not None)


def _points(rows: list[dict]) -> dict[float, tuple[float, float]]:
    """eps -> (mean, std) over seeds; eps = 0 is the clean accuracy on all test images (the table's
    number), never the attacked subset's."""
    per: dict[float, list[float]] = {}
    for r in rows:
        acc = {e: v for e, v in _curve(r.get("robust_acc")) if e > 0}
        if r.get("clean_acc") is not None:
            acc[0.0] = float(r["clean_acc"])
        for e, v in acc.items():
            per.setdefault(e, []).append(v)
    return {e: _mean_std(v) for e, v in sorted(per.items())}


def accuracy_vs_eps(results: dict) -> Figure:
    """Accuracy against the L2 radius, one line per (dataset, source); with several seeds the mean
    and a ±1 std band. ε = 0 is the clean accuracy on the whole test set (the table's number).
    Paper numbers (``row["paper"]``) are drawn as hollow diamonds of the same colour."""
    groups = _groups(results)
    fig = _figure(figsize=(6.2, 4.2), layout="constrained")
    ax = fig.subplots()
    for k, (name, rows) in enumerate(groups):
        color = _COLORS[k % 10]
        pts = _points(rows)
        if pts:
            xs = list(pts)
            mean = np.array([pts[e][0] for e in xs])
            std = np.array([pts[e][1] for e in xs])
            label = name + (f" ({len(rows)} seeds)" if len(rows) > 1 else "")
            ax.plot(xs, mean, "o-", color=color, ms=4, label=label)
            if len(rows) > 1:
                ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
        paper = rows[0].get("paper") or {}
        ppts = _curve(paper.get("robust_acc"))
        if paper.get("clean_acc") is not None:
            ppts.append((0.0, float(paper["clean_acc"])))
        for e, a in ppts:
            ax.plot([e], [a], marker="D", ms=8, mfc="none", mec=color, ls="none")
    if any((rows[0].get("paper") or {}) for _, rows in groups):
        ax.plot([], [], marker="D", mfc="none", mec="0.3", ls="none", label="paper (ResNet-50)")
    ax.set(xlabel="L2 radius ε (0 = clean, all test images)", ylabel="accuracy on CIFAR-10 test",
           ylim=(-0.02, 1.02), title="accuracy under L2 PGD")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7)
    return fig


def results_bars(results: dict, *, eps: str = "0.25") -> Figure:
    """Grouped bars per dataset, ours beside the paper's: clean accuracy and robust accuracy at ``eps``
    (mean over seeds, with a ±1 std whisker when there are several). A missing number is marked "n/a"."""
    groups = _groups(results)
    fig = _figure(figsize=(max(6.0, 1.3 * len(groups) + 2), 3.8), layout="constrained")
    axes = fig.subplots(1, 2, squeeze=False)[0]
    names = [n for n, _ in groups]
    pos = np.arange(len(groups))
    w = 0.38

    def get(d, key):
        if key == "clean":
            v = (d or {}).get("clean_acc")
        else:
            acc = (d or {}).get("robust_acc") or {}
            v = next((a for e, a in acc.items() if math.isclose(float(e), float(eps))), None)
        return None if v is None else float(v)

    for ax, key, title in ((axes[0], "clean", "clean accuracy"), (axes[1], "robust", f"robust accuracy, L2 ε={eps}")):
        stats = []
        for _, rows in groups:
            vals = [v for v in (get(r, key) for r in rows) if v is not None]
            stats.append(_mean_std(vals) if vals else (float("nan"), 0.0))
        ours = np.array([m for m, _ in stats])
        err = np.array([sd for _, sd in stats])
        paper = np.array([np.nan if get(rows[0].get("paper"), key) is None else get(rows[0].get("paper"), key)
                          for _, rows in groups])
        for off, vals, label, color, e in ((-w / 2, ours, "ours", "C0", err), (w / 2, paper, "paper", "C7", None)):
            ax.bar(pos + off, np.nan_to_num(vals), w, label=label, color=color,
                   yerr=None if e is None or not e.any() else e, capsize=3)
            for p, v in zip(pos, vals, strict=True):
                ax.text(p + off, (0 if np.isnan(v) else v) + 0.01, "n/a" if np.isnan(v) else f"{100 * v:.0f}",
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(pos, names, rotation=20, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.08), title=title + " (%)")
    axes[0].set_ylabel("accuracy on CIFAR-10 test")
    axes[1].legend(fontsize=8)
    return fig


def training_curves(histories: dict) -> Figure:
    """Loss (left) and accuracy (right: train solid, eval dashed) per epoch, one colour per model.

    ``histories``: name -> {"loss": [...], "train_acc": [...], "eval_acc": [...]} (missing lists are skipped).
    """
    fig = _figure(figsize=(10, 3.6), layout="constrained")
    ax_l, ax_a = fig.subplots(1, 2)
    for k, (name, h) in enumerate(histories.items()):
        color = _COLORS[k % 10]
        for ax, key, ls, label in ((ax_l, "loss", "-", name), (ax_a, "train_acc", "-", f"{name} train"),
                                   (ax_a, "eval_acc", "--", f"{name} eval")):
            # eval_acc is None for epochs without an evaluation (``eval_every``): plot the others
            pts = [(i, v) for i, v in enumerate((h or {}).get(key) or [], start=1) if v is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                sparse = len(ys) < 3 or len(ys) < len((h or {}).get(key) or [])
                ax.plot(xs, ys, ls, color=color, label=label, marker="o" if sparse else None, markersize=3)
    ax_l.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy (train —, eval --)", ylim=(0, 1))
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    return fig


def construction_curves(metas: dict) -> Figure:
    """Per-step curves recorded in each set's ``meta.json`` during construction.

    Any list of numbers (or list of per-shard lists, averaged) under the keys ``loss_curve``,
    ``matching_loss``, ``rel_distance`` or ``target_loss`` is drawn against the step; sets without
    one are named in the title as "no curve".
    """
    keys = ("loss_curve", "matching_loss", "rel_distance", "target_loss")
    fig = _figure(figsize=(6.2, 4.0), layout="constrained")
    ax = fig.subplots()
    missing = []
    for k, (name, meta) in enumerate((metas or {}).items()):
        drawn = False
        for key in keys:
            v = (meta or {}).get(key)
            if not v:
                continue
            arr = np.array([np.asarray(s, dtype=float) for s in v]) if isinstance(v[0], (list, tuple)) else np.asarray(v, float)
            if arr.ndim == 2:
                arr = arr.mean(axis=0)
            # the curve is logged every few steps: plot it at the steps meta.json names, not at 1..len
            steps = (meta or {}).get("loss_steps")
            xs = np.asarray(steps, float) if steps is not None and len(steps) == len(arr) else np.arange(1, len(arr) + 1)
            ax.plot(xs, arr, color=_COLORS[k % 10], label=f"{name}: {key}", ls="-" if key != "rel_distance" else "--")
            drawn = True
        if not drawn:
            missing.append(name)
    ax.set(xlabel="step", ylabel="value", title="construction" + (f" (no curve: {', '.join(missing)})" if missing else ""))
    if ax.lines:
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig
