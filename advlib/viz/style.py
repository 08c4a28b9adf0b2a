"""The one style every figure shares: the paper's names, one colour per dataset, font sizes.

Colours come from Okabe & Ito's colour-blind-safe palette (their yellow is too pale for lines on
white and is left out); the real CIFAR-10 images are grey, the reference the others are drawn
against. A set's matched control (the same training on the real images it was built from) takes
its set's colour and is drawn dashed (lines) or hatched (bars); the controls of notebook 07 take
the colour of the set they test. Nothing here touches the global ``rcParams``: figures are built
inside :func:`context` (a ``matplotlib.rc_context``) and finished with :func:`finish`, which sets
the sizes per artist (ticks are created lazily, after the context has closed).
"""

from __future__ import annotations

import functools
import re
import zlib

import matplotlib as mpl
from matplotlib import ticker

# --- names ------------------------------------------------------------------------------------------
NAMES = {
    "CIFAR-10": "CIFAR-10",
    "standard": "standard model",
    "adversarial": "L2-robust model",
    "robust": "L2-robust model",
    "standard_targeted": "standard model (source of D_rand / D_det)",
    "d_robust": "D_R", "d_non_robust": "D_NR", "d_rand": "D_rand", "d_det": "D_det",
    "control_rnr": "control of D_R / D_NR", "control_rand": "control of D_rand", "control_det": "control of D_det",
    "d_other": "D_other (t ≠ y)", "d_rand_synthetic": "D_rand, synthetic patterns",
    "d_det_synthetic": "D_det, synthetic patterns", "relabel": "relabelled mistakes",
    "d_rand_t_ne_y": "D_rand rows with t ≠ y", "d_rand_hits": "D_rand rows the source hits",
    "d_det_hits": "D_det rows the source hits",
}
# the released sets' file names (advlib.config.RELEASE_NAMES) read as the constructed ones
ALIASES = {"d_robust_CIFAR": "d_robust", "d_non_robust_CIFAR": "d_non_robust", "drand_CIFAR": "d_rand",
           "ddet_CIFAR": "d_det"}
# what a set was built with (construction figure)
BUILT_WITH = {"d_robust": "robust model's representation", "d_non_robust": "standard model's representation"}
# the four sets, their matched controls, and what notebook 07 adds (drawn in fig_controls)
PAPER_SETS = ("d_robust", "d_non_robust", "d_rand", "d_det")
MATCHED = {"control_rnr": "d_robust", "control_rand": "d_rand", "control_det": "d_det"}
NOTEBOOK07 = {"d_other": "d_rand", "d_rand_synthetic": "d_rand", "d_det_synthetic": "d_det", "relabel": None,
              "d_rand_t_ne_y": "d_rand", "d_rand_hits": "d_rand", "d_det_hits": "d_det"}
ORDER = ("standard", "adversarial", "standard_targeted", "d_robust", "d_non_robust", "control_rnr", "d_rand",
         "control_rand", "d_det", "control_det")
_SEED = re.compile(r"^(?P<name>.+?)-seed(?P<seed>\d+)$")

# --- colours (Okabe & Ito 2008) ---------------------------------------------------------------------
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000"}
COLORS = {
    "standard": OKABE_ITO["blue"],
    "adversarial": OKABE_ITO["vermillion"],
    "standard_targeted": OKABE_ITO["sky blue"],
    "d_robust": OKABE_ITO["bluish green"],
    "d_non_robust": OKABE_ITO["reddish purple"],
    "d_rand": OKABE_ITO["orange"],
    "d_det": OKABE_ITO["black"],
    "CIFAR-10": "#999999",
}
NEUTRAL = "#999999"  # "relabel" and other rows tied to no set
PAPER = "#BBBBBB"  # the paper's bars
REFERENCE = "0.35"  # chance lines, fits, annotations
# further names (a user's own set) get one of Paul Tol's muted colours, picked by the name (stable)
_EXTRA = ("#332288", "#44AA99", "#882255", "#999933", "#AA4499", "#88CCEE", "#DDCC77", "#CC6677")

# --- sizes (points) at the size a report prints the figure: 1:1 up to 7.2 inches wide ------------------
FONT, SMALL, TINY = 9.0, 8.0, 6.5
WIDTH = 7.2  # the widest figure: a report's text width
_RC = {"font.size": FONT, "axes.titlesize": FONT, "axes.labelsize": FONT, "xtick.labelsize": SMALL,
       "ytick.labelsize": SMALL, "legend.fontsize": SMALL, "legend.title_fontsize": SMALL,
       "figure.titlesize": FONT + 1, "axes.spines.top": False, "axes.spines.right": False,
       "axes.grid": False, "lines.linewidth": 1.6, "lines.markersize": 4.5, "hatch.linewidth": 0.8,
       "legend.frameon": False, "legend.handlelength": 2.2, "axes.titlepad": 5.0}


def base_name(name: str) -> str:
    """``"d_det-seed2"`` -> ``"d_det"``; ``"ddet_CIFAR"`` -> ``"d_det"``; anything else unchanged."""
    m = _SEED.match(str(name))
    name = m.group("name") if m else str(name)
    return ALIASES.get(name, name)


def seed_of(name: str) -> int | None:
    m = _SEED.match(str(name))
    return int(m.group("seed")) if m else None


def display(name: str) -> str:
    """The paper's name of a row, set or model: ``"d_non_robust"`` -> ``"D_NR"``."""
    key = base_name(name)
    if key in NAMES:
        return NAMES[key]
    try:  # rows added later (e.g. new controls) keep the tables' label
        from ..results import ROW_LABELS
    except ImportError:
        return str(name)
    return ROW_LABELS.get(key, str(name))


def family(name: str) -> str | None:
    """The paper set a row belongs to: its own name, its matched control's set, the set a notebook-07
    control tests; None for a source model or an unknown name."""
    key = base_name(name)
    if key in PAPER_SETS:
        return key
    return MATCHED.get(key) or NOTEBOOK07.get(key)


def kind(name: str) -> str:
    """"source" (a model trained on CIFAR-10), "set", "matched control", "control" (notebook 07) or "other"."""
    key = base_name(name)
    if key in ("standard", "adversarial", "robust", "standard_targeted"):
        return "source"
    if key in PAPER_SETS:
        return "set"
    if key in MATCHED:
        return "matched control"
    if key in NOTEBOOK07:
        return "control"
    return "other"


def color(name: str) -> str:
    """One colour per dataset, the same in every figure: a control takes its set's colour."""
    key = base_name(name)
    if key == "robust":
        key = "adversarial"
    if key in COLORS:
        return COLORS[key]
    fam = family(key)
    if fam is not None:
        return COLORS[fam]
    if key in NOTEBOOK07:
        return NEUTRAL
    return _EXTRA[zlib.crc32(key.encode()) % len(_EXTRA)]


def linestyle(name: str) -> str:
    """Solid for a set or model, dashed for a matched control, dotted for a notebook-07 control."""
    return {"matched control": "--", "control": ":"}.get(kind(name), "-")


def hatch(name: str) -> str | None:
    """Bars: a matched control is hatched ``///`` in its set's colour, a notebook-07 control ``..``."""
    return {"matched control": "///", "control": ".."}.get(kind(name))


def bar_style(name: str) -> dict:
    """Keyword arguments for ``ax.bar`` of one dataset: filled in its colour, or (controls) white with
    the colour in the hatch and the edge."""
    c, h = color(name), hatch(name)
    if h is None:
        return {"color": c, "edgecolor": c, "linewidth": 0.8}
    return {"facecolor": "white", "edgecolor": c, "hatch": h, "linewidth": 0.8}


def sort_key(name: str) -> tuple:
    key = base_name(name)
    return (ORDER.index(key) if key in ORDER else len(ORDER), seed_of(name) or 0)


# --- building and finishing a figure ----------------------------------------------------------------
def context():
    """The rc settings the figures are drawn under (a context manager: the global rcParams stay)."""
    return mpl.rc_context(_RC)


def styled(fn):
    """Decorator: build the figure inside :func:`context` and :func:`finish` it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with context():
            fig = fn(*args, **kwargs)
            finish(fig)
        return fig
    return wrapper


def finish(fig) -> None:
    """Fix each axis' tick-label size at what it was drawn with inside :func:`context` (or set
    explicitly): ticks made later, outside the context, would otherwise take the global size."""
    for ax in fig.get_axes():
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labels = axis.get_ticklabels()
            size = labels[0].get_fontsize() if labels else SMALL
            ax.tick_params(axis=which, labelsize=size, length=3, width=0.8)


def percent_axis(ax, axis: str = "y", *, decimals: int = 0, lim=(0.0, 1.0)) -> None:
    """Fractions shown as percent on ``axis`` ("y" or "x"): ticks read "40%"; ``lim`` None keeps the limits."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(ticker.PercentFormatter(xmax=1.0, decimals=decimals))
    if lim is not None:
        (ax.set_ylim if axis == "y" else ax.set_xlim)(*lim)


def grid(ax, axis: str = "both") -> None:
    ax.grid(axis=axis, color="0.88", lw=0.6)
    ax.set_axisbelow(True)


def integer_axis(ax, axis: str = "x") -> None:
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=2))


def row_major(items: list, ncols: int) -> list:
    """``items`` reordered so that a legend of ``ncols`` columns (filled column by column, the first
    columns one longer) reads them row by row."""
    n = len(items)
    return [items[r * ncols + c] for c in range(ncols) for r in range(-(-n // ncols)) if r * ncols + c < n]


def epoch_axis(ax, last: int) -> None:
    """Whole epochs on x, also for a run of one or two epochs."""
    integer_axis(ax)
    if last <= 3:
        ax.set_xticks(range(1, last + 1))
        ax.set_xlim(0.5, last + 0.5)


def pct(v, decimals: int = 0) -> str:
    return "n/a" if v is None else f"{100 * float(v):.{decimals}f}%"


__all__ = ["NAMES", "COLORS", "OKABE_ITO", "display", "color", "linestyle", "hatch", "bar_style", "family", "kind",
           "base_name", "seed_of", "context", "styled", "finish", "percent_axis", "grid", "integer_axis",
           "sort_key", "ORDER", "PAPER_SETS", "MATCHED", "NOTEBOOK07"]
