"""Figures of notebooks 07 and 08: the controls beside D_rand / D_det, and accuracy after training
on D_det against the transfer rate across architectures (the paper's Figure 3).

Inputs are plain dicts: ``advlib.steps.controls.summary`` entries and transfer.json.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .common import _COLORS, _figure

CHANCE = 0.10  # ten classes
GROUP_COLORS = {"paper set": "C0", "control": "C1", "variant": "C2"}
# published numbers: marker and legend text per source (keys of advlib.controls.REFERENCE_SOURCES)
REFERENCE_STYLE = {"jordan": ("D", "K. Jordan, ResNet-9 replication"),
                   "wallace": ("*", "E. Wallace, Distill 2019, ResNet-18")}


def controls_bars(summary: list[dict], *, title: str = "D_rand and D_det beside their controls") -> Figure:
    """Test accuracy (true labels) of a model trained on each set: D_rand and D_det (blue), the
    controls (orange), the subset variants (green), with 95% intervals, chance (10%) dashed, the
    training-set size under each name and published numbers as markers (source in the legend)."""
    fig = _figure(figsize=(max(6.5, 0.85 * len(summary) + 2.5), 4.4), layout="constrained")
    ax = fig.subplots()
    if not summary:
        ax.text(0.5, 0.5, "no trained sets yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    pos = np.arange(len(summary))
    accs = np.array([np.nan if e.get("clean_acc") is None else float(e["clean_acc"]) for e in summary])
    lo = np.array([a - e["clean_ci95"][0] if e.get("clean_ci95") else 0.0 for a, e in zip(accs, summary, strict=True)])
    hi = np.array([e["clean_ci95"][1] - a if e.get("clean_ci95") else 0.0 for a, e in zip(accs, summary, strict=True)])
    colors = [GROUP_COLORS.get(e.get("group"), "C7") for e in summary]
    ax.bar(pos, np.nan_to_num(accs), 0.7, color=colors, yerr=np.vstack([lo, hi]).clip(0), capsize=3, ecolor="0.3")
    for p, a, h in zip(pos, accs, hi, strict=True):
        ax.text(p, (0 if np.isnan(a) else a + max(h, 0)) + 0.01, "n/a" if np.isnan(a) else f"{100 * a:.0f}",
                ha="center", va="bottom", fontsize=7)
    ax.axhline(CHANCE, color="0.3", ls="--", lw=1)
    shown = set()
    for p, e in zip(pos, summary, strict=True):
        for key, value in (e.get("references") or {}).items():
            marker, _ = REFERENCE_STYLE.get(key, ("x", key))
            ax.plot([p], [value], marker=marker, ms=9, mfc="none", mec="k", mew=1.3, ls="none")
            shown.add(key)
    handles = [Patch(color=c, label=g) for g, c in GROUP_COLORS.items() if any(e.get("group") == g for e in summary)]
    handles.append(ax.plot([], [], color="0.3", ls="--", lw=1, label="chance (10%)")[0])
    for key in sorted(shown):
        marker, text = REFERENCE_STYLE.get(key, ("x", key))
        handles.append(ax.plot([], [], marker=marker, ms=8, mfc="none", mec="k", ls="none", label=text)[0])
    names = [f"{e.get('label', e.get('name'))}\n(n={e['train_n']:,})" if e.get("train_n") else
             e.get("label", e.get("name")) for e in summary]
    ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=7)
    ax.set(ylim=(0, 1.05), ylabel="accuracy on CIFAR-10 test (true labels)", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    return fig


def transfer_scatter(result: dict) -> Figure:
    """The paper's Figure 3: test accuracy of a model trained on D_det (circles) and on D_rand
    (squares) against the transfer rate of the source's targeted examples to a standard model of
    the same architecture, one colour per architecture, with the least-squares lines (r in the
    legend) and the source's white-box rate as a dotted line."""
    fig = _figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.subplots()
    rows = result.get("rows", [])
    fit = result.get("fit") or {}
    for k, r in enumerate(rows):
        color = _COLORS[k % 10]
        x = r.get("transfer_rate")
        if x is None:
            continue
        for key, marker in (("ddet_acc", "o"), ("drand_acc", "s")):
            if r.get(key) is not None:
                ax.plot([x], [r[key]], marker=marker, ms=8, color=color, ls="none",
                        mfc=color if marker == "o" else "none", mew=1.5)
        ax.annotate(r["arch"], (x, r.get("ddet_acc") or 0), xytext=(6, -10), textcoords="offset points",
                    fontsize=8, color=color)
    xs = [r["transfer_rate"] for r in rows if r.get("transfer_rate") is not None]
    if xs:
        grid = np.linspace(min(xs), max(xs), 50) if max(xs) > min(xs) else np.array(xs[:1])
        for key, ls, marker, name in (("ddet", "-", "o", "D_det"), ("drand", "--", "s", "D_rand")):
            f = fit.get(key) or {}
            if f.get("slope") is not None and len(grid) > 1:
                r_txt = "n/a" if f.get("r") is None else f"{f['r']:+.2f}"
                ax.plot(grid, f["slope"] * grid + f["intercept"], ls, color="0.35", lw=1,
                        label=f"trained on {name}: fit, r = {r_txt}")
            ax.plot([], [], marker=marker, color="0.35", ls="none", mfc="0.35" if marker == "o" else "none",
                    label=f"trained on {name}")
    wb = fit.get("source_whitebox_rate")
    if wb is not None:
        ax.axvline(wb, color="0.5", ls=":", lw=1, label=f"source white-box rate {100 * wb:.0f}%")
    ax.axhline(CHANCE, color="0.7", ls="--", lw=0.8, label="chance (10%)")
    eps = (result.get("settings") or {}).get("transfer_eps")
    ys = [r[k] for r in rows for k in ("ddet_acc", "drand_acc") if r.get(k) is not None]
    ax.set(xlabel=f"transfer rate of targeted examples (L2 ε = {eps}) to a standard model of the arch",
           ylabel="accuracy on CIFAR-10 test (true labels)", ylim=(0, min(1.02, max(ys + [CHANCE]) + 0.1)),
           title="accuracy after training on D_det against transfer rate (paper Fig. 3)")
    ax.set_xlim(0, min(1.02, max(xs + [wb or 0, CHANCE]) * 1.1 + 0.02))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")
    return fig


__all__ = ["controls_bars", "transfer_scatter"]
