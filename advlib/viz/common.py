"""What every figure shares: :class:`NotebookFigure`, ``_figure``, :func:`save_figure` and the colours.

Nothing here calls ``plt.show()`` or touches ``rcParams``; figures are built directly (no pyplot
state, so nothing is shown twice or kept alive) as :class:`NotebookFigure`, a Figure that renders
itself as a PNG in Jupyter: a notebook shows one by ending a cell with it (or ``display(fig)``)
and saves it with :func:`save_figure`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from matplotlib.figure import Figure

from ..utils import atomic_path

DPI = 150  # saved figures
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")


class NotebookFigure(Figure):
    """A plain Figure that also shows itself in Jupyter (``_repr_png_``).

    Figures made with ``Figure(...)`` rather than pyplot are not tracked by pyplot (no duplicate
    display, no leak), but IPython has no image formatter for them unless pyplot's inline backend
    happened to be loaded; this method makes ``fig`` / ``display(fig)`` render as a PNG either way.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, facecolor="white")
        return buf.getvalue()


def _figure(**kwargs) -> NotebookFigure:
    return NotebookFigure(**kwargs)


def message_figure(text: str) -> NotebookFigure:
    """A small figure that only says ``text`` (what a notebook shows when there is nothing to draw)."""
    fig = _figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="0.3")
    return fig


# --- saving -------------------------------------------------------------------------------------
def save_figure(fig: Figure, name: str, directory="figures", formats=("png", "pdf")) -> list[Path]:
    """Write ``<directory>/<name>.<fmt>`` for each format (dpi 150), each atomically.

    ``name`` is a stable file stem such as ``"fig_spectra"`` (letters, digits, ``_ . -``; no
    directory part, no extension). A failed write leaves any previous file untouched and no
    temporary file behind. Returns the written paths.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"save_figure: invalid figure name {name!r}; expected a non-empty file stem of "
                         "letters, digits, '_', '.', '-' (no directory, no extension)")
    if isinstance(formats, str):
        formats = (formats,)
    supported = fig.canvas.get_supported_filetypes()
    out = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt not in supported:
            raise ValueError(f"save_figure: unsupported format {fmt!r}; expected one of {sorted(supported)}")
        if name.lower().endswith("." + fmt):
            raise ValueError(f"save_figure: pass the name without extension, got {name!r}")
        dest = Path(directory) / f"{name}.{fmt}"
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, facecolor="white")
        out.append(dest)
    return out
