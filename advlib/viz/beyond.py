"""Figures of notebook 10: accuracy under L∞ beside L2, large-ε synthesis as a grid, the just-bugs
D_det beside D_det, and robust-feature leakage beside the sets' accuracy.

Inputs are results.json and the plain dicts ``advlib.steps.beyond`` makes; accuracies are drawn as
percent with the 95% interval of the mean over seeds (:mod:`advlib.viz.rows`), and the footer says
what the whiskers are. Colours: each row takes the colour of the paper's set (or source model) it
imitates; a matched control is hatched in its set's colour, as everywhere.
"""

from __future__ import annotations

import textwrap

import numpy as np
import torch
from matplotlib.figure import Figure

from ..config import CIFAR10_CLASSES
from . import rows as R
from . import style
from .common import _figure, add_note, auto_stamp

CHANCE = 0.10
# the paper's set or model each row of notebook 10 imitates (its colour and fill)
LOOKS_LIKE = {"standard_linf": "standard", "adversarial_l2_linf": "adversarial", "adversarial_linf": "standard_targeted",
              "d_robust_linf": "d_robust", "d_non_robust_linf": "d_non_robust", "control_rnr_linf": "control_rnr",
              "d_rand_linf": "d_rand", "control_rand_linf": "control_rand", "d_det_linf": "d_det",
              "control_det_linf": "control_det", "d_det_subset": "d_det", "d_det_bugs": "d_det_synthetic",
              "synthesis_robust": "adversarial", "synthesis_standard": "standard", "leakage_d_rand": "d_rand",
              "leakage_d_det": "d_det"}


# short names for tick labels (the tables keep results.ROW_LABELS)
SHORT = {"standard_linf": "standard", "adversarial_l2_linf": "L2-robust", "adversarial_linf": "L∞-robust",
         "d_robust_linf": "D_R from the L∞-robust model", "d_non_robust_linf": "D_NR", "control_rnr_linf":
         "control of D_R", "d_rand_linf": "D_rand (L∞ attack)", "control_rand_linf": "control of D_rand (L∞)",
         "d_det_linf": "D_det (L∞ attack)", "control_det_linf": "control of D_det (L∞)"}


def _style_of(name: str) -> dict:
    return style.bar_style(LOOKS_LIKE.get(name, name))


def _value(results, name: str, what: str):
    rows = [r for r in R.rows_of(results) if r.get("dataset") == name]
    return R.value(rows, what) if rows else None


def _bar(ax, p, v, width, name, kinds, label=None):
    a = 0.0 if v is None else v.mean
    err = None if v is None or v.lo is None else np.array(v.err).reshape(2, 1)
    ax.bar(p, a, width, yerr=err, capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "0.25"}, label=label,
           gid=f"bar:{name}", **_style_of(name))
    ax.text(p, a + (0 if err is None else err[1, 0]) + 0.012, "n/a" if v is None else f"{100 * a:.0f}",
            ha="center", va="bottom", fontsize=style.TINY)
    if v is not None and v.kind:
        kinds.append(v.kind)


def _wrap(text: str, width: int = 12) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


@style.styled
def linf_bars(results: dict, names, *, linf_key: str, stamp=None) -> Figure:
    """Clean accuracy (top) and robust accuracy under L∞ at ``linf_key`` (bottom) of notebook 10's
    L∞ rows ``names``, each the mean over its seeds with its 95% interval."""
    names = [n for n in names if _value(results, n, "clean") is not None]
    fig = _figure(figsize=(style.WIDTH, 5.2), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, squeeze=False)[:, 0]
    pos, kinds = np.arange(len(names)), []
    eps_txt = f"{float(linf_key) * 255:.3g}/255"
    for ax, what, title in ((axes[0], "clean", "Clean accuracy"),
                            (axes[1], linf_key, f"Robust accuracy under L∞, ε = {eps_txt}")):
        for p, n in zip(pos, names, strict=True):
            _bar(ax, p, _value(results, n, what), 0.7, n, kinds)
        style.percent_axis(ax, lim=(0, 1.1))
        ax.set(title=title, ylabel="accuracy on\nCIFAR-10 test")
        style.grid(ax, "y")
    axes[1].set_xticks(pos, [_wrap(SHORT.get(n, style.display(n)), 11) for n in names], fontsize=style.TINY)
    add_note(fig, "Numbers above the bars: percent. Hatched: a matched control (its set's real images, true labels). "
             + R.whisker_note(kinds))
    mine = {**results, "rows": [r for r in R.rows_of(results) if r.get("dataset") in names]}
    add_note(fig, "Robust accuracy: " + (R.attack_of(mine) or "PGD") + ", L∞.")
    auto_stamp(fig, stamp, mine)
    return fig


def _hwc(img: torch.Tensor) -> np.ndarray:
    return img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


@style.styled
def synthesis_grid(result: dict, *, eps_index: int | None = None, rows: int = 4, classes=CIFAR10_CLASSES,
                   stamp=None) -> Figure:
    """Large-ε targeted attacks as a grid, one panel per model: row i is start image i (its class on
    the left), column c the image attacked toward class c at one radius (``eps_index`` into
    ``result["eps"]``, default the one nearest ``result["show"]``). A green frame: the model predicts
    the target."""
    eps = result["eps"]
    k = result.get("show_index", len(eps) - 1) if eps_index is None else eps_index
    models = list(result["models"])
    n_img = min(rows, result["n_images"])
    nc = len(classes)
    fig = _figure(figsize=(style.WIDTH, 0.62 * n_img * len(models) + 1.1), layout="constrained")
    subs = fig.subfigures(len(models), 1, squeeze=False)[:, 0]
    for sub, name in zip(subs, models, strict=True):
        m = result["models"][name]
        axes = sub.subplots(n_img, nc + 1, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
        for i in range(n_img):
            ax = axes[i, 0]
            ax.imshow(_hwc(result["start"][i]), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_ylabel(classes[int(result["labels"][i])], fontsize=style.TINY, rotation=0, ha="right", va="center")
            if i == 0:
                ax.set_title("start", fontsize=style.TINY, pad=2)
            for c in range(nc):
                j = i * nc + c
                ax = axes[i, c + 1]
                ax.imshow(_hwc(m["images"][k, j]), interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                hit = bool(m["hit"][k, j])
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color("#009E73" if hit else "0.8")
                    spine.set_linewidth(1.6 if hit else 0.5)
                if i == 0:
                    ax.set_title(classes[c], fontsize=style.TINY, pad=2)
        sub.suptitle(f"{style.display(name)}: targeted L2 attack, ε = {eps[k]:g} ({result['steps']} steps)",
                     fontsize=style.SMALL)
    add_note(fig, "Columns: the target class. Green frame: the attacked model predicts the target. The same start "
                  "images and the same attack for both models; only the model differs.")
    auto_stamp(fig, stamp)
    return fig


@style.styled
def bugs_bars(results: dict, entries: list[dict], *, stamp=None) -> Figure:
    """Left: test accuracy (true labels) of models trained on D_det and on the just-bugs D_det from the
    same images (mean over seeds, 95% interval), chance dashed. Right: per set, how often the source
    model hits the target, how often the ensemble keeps its predictions and how often the held-out
    model predicts the target (transfer), with 95% Wilson intervals."""
    fig = _figure(figsize=(style.WIDTH, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    kinds = []
    for p, e in enumerate(entries):
        _bar(left, p, _value(results, e["name"], "clean"), 0.65, e["name"], kinds)
    left.axhline(CHANCE, color=style.REFERENCE, ls="--", lw=0.9)
    left.set_xticks(range(len(entries)), [_wrap(e["label"], 14) for e in entries], fontsize=style.TINY)
    style.percent_axis(left, lim=(0, 1.05))
    left.set(ylabel="accuracy on CIFAR-10 test\n(true labels)", title="What a model learns from it")
    style.grid(left, "y")
    measures = (("hit", "source hits\nthe target"), ("unchanged", "ensemble\nunchanged"),
                ("transfer", "held-out model\npredicts the target"))
    w = 0.8 / max(len(entries), 1)
    for j, e in enumerate(entries):
        for i, (key, _) in enumerate(measures):
            v, ci = e.get(f"{key}_rate"), e.get(f"{key}_ci95")
            x = i + (j - (len(entries) - 1) / 2) * w
            err = None if v is None or not ci else np.array([[max(v - ci[0], 0)], [max(ci[1] - v, 0)]])
            right.bar(x, v or 0.0, w * 0.92, yerr=err, capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "0.25"},
                      label=e["label"] if i == 0 else None, **_style_of(e["name"]))
    right.set_xticks(range(len(measures)), [m[1] for m in measures], fontsize=style.TINY + 0.5)
    style.percent_axis(right, lim=(0, 1.28))
    right.set_yticks(np.linspace(0, 1, 6))
    right.set(title="Its training examples")
    style.grid(right, "y")
    right.legend(fontsize=style.TINY + 0.5, loc="upper center", ncols=2)
    add_note(fig, "Left: " + R.whisker_note(kinds) + " Right: 95% Wilson intervals over the set's rows.")
    names = {e["name"] for e in entries}
    auto_stamp(fig, stamp, {**results, "rows": [r for r in R.rows_of(results) if r.get("dataset") in names]})
    return fig


@style.styled
def leakage_bars(entries: list[dict], *, stamp=None) -> Figure:
    """Per set: the test accuracy of a model trained on it (mean over seeds, 95% interval) beside that
    of a linear classifier on the L2-robust model's features fitted to the same labels (Goh's lower
    bound on robust-feature leakage), chance dashed."""
    fig = _figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    w = 0.38
    for p, e in enumerate(entries):
        for off, key, name, label in ((-w / 2, "set", e["name"], "model trained on the set"),
                                      (w / 2, "probe", f"leakage_{e['name']}", "linear probe on robust features")):
            v, ci = e.get(f"{key}_acc"), e.get(f"{key}_ci95")
            err = None if v is None or not ci else np.array([[max(v - ci[0], 0)], [max(ci[1] - v, 0)]])
            st = _style_of(e["name"]) if key == "set" else {"facecolor": "white", "edgecolor": style.color(e["name"]),
                                                             "hatch": "xx", "linewidth": 0.8}
            ax.bar(p + off, v or 0.0, w * 0.92, yerr=err, capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "0.25"},
                   label=label if p == 0 else None, gid=f"bar:{name}", **st)
            ax.text(p + off, (v or 0) + (0 if err is None else err[1, 0]) + 0.012, "n/a" if v is None else
                    f"{100 * v:.0f}", ha="center", va="bottom", fontsize=style.TINY)
    ax.axhline(CHANCE, color=style.REFERENCE, ls="--", lw=0.9, label="chance (10%)")
    ax.set_xticks(range(len(entries)), [style.display(e["name"]) for e in entries])
    style.percent_axis(ax, lim=(0, 1.05))
    ax.set(ylabel="accuracy on CIFAR-10 test\n(true labels)", title="Robust-feature leakage (Goh's linear bound)")
    style.grid(ax, "y")
    ax.legend(fontsize=style.TINY + 0.5, loc="upper right")
    add_note(fig, "Whiskers: the set's model: its interval over seeds and test images; the probe (one fit): 95% "
                  "Wilson interval over the test images.")
    auto_stamp(fig, stamp)
    return fig


__all__ = ["linf_bars", "synthesis_grid", "bugs_bars", "leakage_bars", "LOOKS_LIKE"]
