"""Figures of notebooks 07 and 08: the controls beside D_rand / D_det, and accuracy after training
on D_det against the transfer rate across architectures (the paper's Figure 3).

Inputs are plain dicts: ``advlib.steps.controls.summary`` entries (with results.json, for the mean
over seeds) and transfer.json.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import rows as R
from . import style
from .common import _figure, add_note, auto_stamp

CHANCE = 0.10  # ten classes
# how a bar is filled, per group of the summary (the colour is the set's the bar tests)
GROUP_FILL = {"paper set": ("the paper's set", None, 1.0), "matched control": ("matched control: its real images", "///", 0.0),
              "control": ("control set (notebook 07)", "..", 0.0), "variant": ("subset of the set's rows", None, 0.4)}
# published numbers: marker and legend text per source (keys of advlib.controls.REFERENCE_SOURCES)
REFERENCE_STYLE = {"jordan": ("D", "K. Jordan, ResNet-9 replication"),
                   "wallace": ("*", "E. Wallace, Distill 2019, ResNet-18")}


def _rows_for(results, name: str, prefer=None) -> list[dict]:
    """Every seed's row of ``name``: of origin ``prefer`` when given, else "constructed" (the sets this
    figure is about), else the matched control's "cifar10", else the first origin seen."""
    groups = [g for g in R.groups(results) if g.dataset == name]
    if not groups:
        return []
    for want in (prefer, "constructed", "cifar10"):
        for g in groups:
            if want is not None and g.origin == want:
                return g.rows
    return groups[0].rows


def _with_seeds(summary: list[dict], results) -> list[dict]:
    """The entries with each accuracy replaced by the mean over results.json's seeds (and the tables'
    interval), the matched controls of D_rand / D_det added beside them, ordered by the set they test."""
    out = []
    for e in summary:
        e = dict(e)
        rows = e.get("rows") or (_rows_for(results, e.get("name"), e.get("origin", e.get("source"))) if results else [])
        v = R.value(rows, "clean") if rows else None
        if v is not None:
            e.update(clean_acc=v.mean, clean_ci95=[v.lo, v.hi] if v.lo is not None else None, seeds=v.seeds,
                     interval=v.kind)
        else:
            e.setdefault("seeds", 1)
            e.setdefault("interval", "wilson" if e.get("clean_ci95") else None)
        out.append(e)
    names = {e.get("name") for e in out}
    if results:
        for ctl, fam in style.MATCHED.items():
            if fam in names and ctl not in names and fam in ("d_rand", "d_det"):
                rows = _rows_for(results, ctl, "cifar10")
                v = R.value(rows, "clean") if rows else None
                if v is not None:
                    out.append({"name": ctl, "label": style.display(ctl), "group": "matched control",
                                "clean_acc": v.mean, "clean_ci95": [v.lo, v.hi] if v.lo is not None else None,
                                "train_n": rows[0].get("train_n"), "seeds": v.seeds, "interval": v.kind})
    fams = ("d_rand", "d_det")
    rank = {"paper set": 0, "matched control": 1, "control": 2, "variant": 3}

    def order(item):
        i, e = item
        fam = style.family(e.get("name", ""))
        return (fams.index(fam) if fam in fams else len(fams), rank.get(e.get("group"), 4), i)

    return [e for _, e in sorted(enumerate(out), key=order)]


def _tick(e: dict) -> str:
    """The name (wrapped), the seeds when several, and the training images: "D_rand\n3 seeds\n6,000 train"."""
    name = style.display(e.get("name", "")) if e.get("name") in style.NAMES else str(e.get("label", e.get("name")))
    lines = textwrap.wrap(name, 10, break_on_hyphens=False)
    if (e.get("seeds") or 1) > 1:
        lines.append(f"{e['seeds']} seeds")
    if e.get("train_n"):
        lines.append(f"{int(e['train_n']):,} train")
    return "\n".join(lines)


@style.styled
def controls_bars(summary: list[dict], *, title: str = "D_rand and D_det beside their controls",
                  results: dict | None = None, stamp=None) -> Figure:
    """Test accuracy (true labels) of a model trained on each set, as percent: D_rand and D_det
    (filled, in their colours), their matched controls (hatched ///), the controls of notebook 07
    (dotted, in the colour of the set they test; relabelling in grey) and the subsets (pale), each
    with its 95% interval, chance (10%) dashed, the seeds and training images under each name and
    published numbers as markers.

    ``results`` (results.json): each bar becomes the mean over the seeds it holds (the tables'
    number, with their interval) rather than the entry's one seed, and the matched controls of D_rand
    / D_det are drawn beside them. ``stamp``: a footer line (default: from ``results``; False: none).
    """
    entries = _with_seeds(summary or [], results)
    fig = _figure(figsize=(style.WIDTH, 4.4), layout="constrained")
    ax = fig.subplots()
    if not entries:
        ax.text(0.5, 0.5, "no trained sets yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    pos = np.arange(len(entries))
    kinds, groups_seen, shown = [], [], set()
    for p, e in zip(pos, entries, strict=True):
        acc = e.get("clean_acc")
        ci = e.get("clean_ci95")
        c = style.color(e.get("name", "")) if style.family(e.get("name", "")) or e.get("name") in style.COLORS \
            else style.NEUTRAL
        _, hatch, fill = GROUP_FILL.get(e.get("group"), ("", None, 1.0))
        a = 0.0 if acc is None else float(acc)
        err = np.array([[max(a - ci[0], 0)], [max(ci[1] - a, 0)]]) if ci and acc is not None else None
        face = c if fill == 1.0 else ("white" if fill == 0.0 else (*to_rgb(c), fill))
        ax.bar(p, a, 0.72, facecolor=face, edgecolor=c, hatch=hatch, lw=1.0 if fill != 0.4 else 1.6, yerr=err, capsize=2,
               error_kw={"elinewidth": 0.8, "ecolor": "0.25"}, gid=f"bar:{e.get('name')}")
        top = a + (0 if err is None else err[1, 0])
        ax.text(p, top + 0.012, "n/a" if acc is None else f"{100 * a:.0f}", ha="center", va="bottom",
                fontsize=style.TINY)
        if e.get("interval"):
            kinds.append(e["interval"])
        if e.get("group") not in groups_seen:
            groups_seen.append(e.get("group"))
        for key, value in (e.get("references") or {}).items():
            marker, _ = REFERENCE_STYLE.get(key, ("x", key))
            ax.plot([p], [value], marker=marker, ms=8, mfc="none", mec="0.15", mew=1.2, ls="none")
            shown.add(key)
    ax.axhline(CHANCE, color=style.REFERENCE, ls="--", lw=0.9)
    handles = [Patch(facecolor="white" if GROUP_FILL[g][2] == 0 else ("0.3" if GROUP_FILL[g][2] == 1 else "0.75"),
                     edgecolor="0.3", hatch=GROUP_FILL[g][1], label=GROUP_FILL[g][0])
               for g in GROUP_FILL if g in groups_seen]
    handles.append(Line2D([], [], color=style.REFERENCE, ls="--", lw=0.9, label="chance (10%)"))
    for key in sorted(shown):
        marker, text = REFERENCE_STYLE.get(key, ("x", key))
        handles.append(Line2D([], [], marker=marker, ms=7, mfc="none", mec="0.15", ls="none", label=text))
    ax.set_xticks(pos, [_tick(e) for e in entries], fontsize=style.TINY)
    ax.set_xlim(-0.6, len(entries) - 0.4)
    style.percent_axis(ax, lim=(0, 1.05))
    ax.set(ylabel="accuracy on CIFAR-10 test\n(true labels)", title=title)
    style.grid(ax, "y")
    fig.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=style.TINY + 0.5)
    add_note(fig, "Colour: the set a bar tests (D_rand orange, D_det black, grey: neither). Under each name: the "
                  "seeds (when several) and the number of training images. " + R.whisker_note(kinds))
    auto_stamp(fig, stamp, results)
    return fig


def _ci(r: dict, key: str, v: float):
    ci = r.get(key)
    return (0.0, 0.0) if not ci else (max(v - ci[0], 0.0), max(ci[1] - v, 0.0))


@style.styled
def transfer_scatter(result: dict, *, stamp=None) -> Figure:
    """The paper's Figure 3: test accuracy of a model trained on D_det (filled circles) and on D_rand
    (hollow squares), in the sets' colours, against the transfer rate of the source's targeted
    examples to a standard model of the same architecture (named beside its points), with 95%
    intervals on both axes, the least-squares lines (r in the legend) and chance on both axes (10%:
    a model that ignores the perturbation predicts the target about one time in ten). The x range
    fits the points; the source's own (white-box) rate is drawn only when it falls inside, else
    named at the edge. ``stamp``: a footer line (default: from ``result``; False: none)."""
    fig = _figure(figsize=(6.0, 4.4), layout="constrained")
    ax = fig.subplots()
    rows = [r for r in result.get("rows", []) if r.get("transfer_rate") is not None]
    fit = result.get("fit") or {}
    xs_lo, xs_hi, ys_hi, labels = [CHANCE], [CHANCE], [CHANCE], []
    sets = (("ddet", "d_det", "o"), ("drand", "d_rand", "s"))
    for r in rows:
        x = float(r["transfer_rate"])
        xe = _ci(r, "transfer_ci95", x)
        xs_lo.append(x - xe[0])
        xs_hi.append(x + xe[1])
        top = None
        for key, name, marker in sets:
            y = r.get(f"{key}_acc")
            if y is None:
                continue
            ye = _ci(r, f"{key}_ci95", y)
            c = style.color(name)
            ax.errorbar([x], [y], xerr=[[xe[0]], [xe[1]]], yerr=[[ye[0]], [ye[1]]], fmt=marker, ms=6.5, color=c,
                        mfc=c if marker == "o" else "white", mew=1.3, elinewidth=0.8, capsize=0, zorder=3,
                        gid=f"point:{r.get('arch')}:{name}")
            ys_hi.append(y + ye[1])
            top = y + ye[1] if top is None else max(top, y + ye[1])
        if top is not None:
            labels.append([x, top, str(r.get("arch", "?"))])
    lo, hi = min(xs_lo), max(xs_hi)
    # one label per place: architectures whose points coincide share it ("tiny, mlp")
    merged: list[list] = []
    for x, top, arch in sorted(labels):
        near = next((m for m in merged if abs(m[0] - x) < 0.02 * max(hi - lo, 0.02) and abs(m[1] - top) < 0.03), None)
        if near is None:
            merged.append([x, top, arch])
        else:
            near[1], near[2] = max(near[1], top), f"{near[2]}, {arch}"
    for x, top, text in merged:
        ax.annotate(text, (x, top), xytext=(0, 4), textcoords="offset points", ha="center", va="bottom",
                    fontsize=style.TINY + 0.5, color="0.25")
    pad = 0.12 * max(hi - lo, 0.02)
    xlim = (max(0.0, lo - pad), min(1.0, hi + pad))
    grid_x = np.linspace(*xlim, 50)
    for key, name, marker in sets:
        f = fit.get(key) or {}
        if f.get("slope") is not None and len(rows) > 1:
            r_txt = "n/a" if f.get("r") is None else f"{f['r']:+.2f}"
            ax.plot(grid_x, f["slope"] * grid_x + f["intercept"], color=style.color(name), lw=0.9,
                    ls="-" if key == "ddet" else "--", alpha=0.8, label=f"{style.display(name)}: fit, r = {r_txt}")
        ax.plot([], [], marker=marker, color=style.color(name), mfc=style.color(name) if marker == "o" else "white",
                ls="none", mew=1.3, label=f"trained on {style.display(name)}")
    ax.axhline(CHANCE, color=style.REFERENCE, ls=":", lw=0.9, label="chance (10%), both axes")
    ax.axvline(CHANCE, color=style.REFERENCE, ls=":", lw=0.9)
    wb = fit.get("source_whitebox_rate")
    if wb is not None:
        if xlim[0] <= wb <= xlim[1]:
            ax.axvline(wb, color="0.5", ls="-.", lw=0.9, label=f"source white-box rate {100 * wb:.0f}%")
        else:
            ax.text(0.99, 0.02, f"source's white-box rate: {100 * wb:.0f}% {'→' if wb > xlim[1] else '←'}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=style.TINY + 0.5, color="0.35")
    eps = (result.get("settings") or {}).get("transfer_eps")
    ax.set_xlim(*xlim)
    style.percent_axis(ax, "x", lim=None)
    style.percent_axis(ax, lim=(0, min(1.02, max(ys_hi) + 0.08)))
    ax.set(xlabel=f"transfer rate: targeted examples (L2 ε = {eps}) a standard model\nof the architecture "
                  "classifies as the target", ylabel="accuracy on CIFAR-10 test (true labels)",
           title="Accuracy after training on D_det against transfer rate (paper Fig. 3)")
    style.grid(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=style.TINY + 0.5, loc="upper left")
    n = sorted({r.get("transfer_n") for r in rows if r.get("transfer_n")})
    add_note(fig, "Whiskers: 95% Wilson intervals (one seed; transfer over "
             f"{'/'.join(f'{v:,}' for v in n) or '?'} examples, accuracy over the test images).")
    auto_stamp(fig, stamp, result)
    return fig


__all__ = ["controls_bars", "transfer_scatter"]
