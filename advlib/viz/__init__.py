"""Figures for the notebooks: every function returns a :class:`matplotlib.figure.Figure`.

- :mod:`advlib.viz.common`: :class:`NotebookFigure` (a Figure that shows itself as a PNG in
  Jupyter, built without pyplot state), :func:`save_figure` (atomic, stable file names, an optional
  ``stamp``) and :func:`stamp_text` (the footer line: profile, commit, data, n).
- :mod:`advlib.viz.style`: the paper's names, one colour per dataset (Okabe–Ito), font sizes.
- :mod:`advlib.viz.datasets`: images and feature datasets (:class:`FeatureSet`, :func:`load_sets`,
  grids, side-by-side rows, class means, perturbations).
- :mod:`advlib.viz.spectra`: power spectra and pixel statistics.
- :mod:`advlib.viz.results` (with :mod:`advlib.viz.rows`, results.json's rows with their
  intervals): accuracy against eps, bars beside the paper's numbers, training and construction curves.
- :mod:`advlib.viz.studies`: the controls (notebook 07) and the transfer scatter (notebook 08).
- :mod:`advlib.viz.beyond`: notebook 10 (L∞ beside L2, synthesis grids, just bugs, leakage).

Nothing here calls ``plt.show()`` or touches the global ``rcParams`` (figures are drawn inside
``matplotlib.rc_context``). Images are float tensors (or arrays) NCHW in [0, 1].
"""

from __future__ import annotations

from .common import NotebookFigure, add_note, get_stamp, message_figure, save_figure, set_stamp, stamp_text
from .datasets import (
    FeatureSet,
    align_by_source,
    class_means,
    image_grid,
    linked,
    load_sets,
    perturbation_figures,
    perturbation_maps,
    perturbation_pairs,
    perturbations,
    pick_common,
    read_meta,
    side_by_side,
    side_by_side_for,
)
from .results import accuracy_vs_eps, construction_curves, results_bars, training_curves
from .spectra import pixel_stats_figure, radial_power_spectrum, spectra_figure, spectra_for
from .style import COLORS, display

__all__ = [
    "NotebookFigure", "FeatureSet", "read_meta", "load_sets", "save_figure", "image_grid", "align_by_source",
    "pick_common", "side_by_side", "class_means", "perturbation_maps", "perturbation_pairs", "linked",
    "perturbations", "radial_power_spectrum", "spectra_figure", "pixel_stats_figure", "accuracy_vs_eps",
    "results_bars", "training_curves", "construction_curves", "message_figure", "side_by_side_for",
    "perturbation_figures", "spectra_for", "stamp_text", "set_stamp", "get_stamp", "add_note", "COLORS", "display",
]

from .studies import controls_bars, transfer_scatter  # noqa: E402  (notebooks 07 and 08)

__all__ += ["controls_bars", "transfer_scatter"]

from .beyond import bugs_bars, leakage_bars, linf_bars, synthesis_grid  # noqa: E402  (notebook 10)

__all__ += ["bugs_bars", "leakage_bars", "linf_bars", "synthesis_grid"]
