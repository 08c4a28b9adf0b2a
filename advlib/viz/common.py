"""What every figure shares: :class:`NotebookFigure`, ``_figure``, :func:`save_figure`, the footer
(notes on what the whiskers are, and the stamp saying which profile, commit and data drew it:
:func:`stamp_text`, :func:`set_stamp`, :func:`add_note`).

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
STAMP_GID = "advlib-footer"


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


# --- the footer: notes and the stamp ------------------------------------------------------------------
def _short_commit(commit) -> str:
    head, _, dirty = str(commit).partition("+")
    return head[:7] + (f"+{dirty}" if dirty else "")


def _n_text(ns, what: str) -> str:
    ns = sorted({int(n) for n in ns if n})
    return f"n = {' / '.join(f'{n:,}' for n in ns)} {what}" if ns else ""


def _data_name(src) -> str:
    """``cifar_source`` as the tables name it; a name already rendered (transfer.json stores one) stays."""
    from ..tables import data_source_name

    text = str(src)
    if text.startswith(("the ", "torchvision's ", "a local copy of ")):
        return text
    return data_source_name(text)


def stamp_text(source=None, *, profile=None, commit=None, data=None, n=None, what: str | None = None,
               extra=None) -> str:
    """What drew a figure, in one line: "profile cpu · commit 2afc437 · a local copy of CIFAR-10 (JPEGs,
    zip) · n = 1,000 test images".

    ``source``: a results.json dict (``profile``, ``machine.commit``, ``config.cifar_source``, the rows'
    ``clean_n``), a transfer.json dict (``settings`` instead of ``config``), or a profile
    (:class:`advlib.config.Profile`, or any object with ``name`` and ``cifar_source``: its ``n_train``
    training images, the checkout's commit). The keywords fill or override what ``source`` lacks:
    ``data`` is a ``cifar_source`` (rendered with :func:`advlib.tables.data_source_name`), ``n`` a
    number of images (``what`` names them, default "test images"), ``extra`` one more part or a list.
    Unknown parts are left out.
    """
    ns, default_what = [], "test images"
    if isinstance(source, dict):
        cfg = source.get("config") or source.get("settings") or {}
        profile = profile if profile is not None else source.get("profile")
        commit = commit if commit is not None else (source.get("machine") or {}).get("commit")
        data = data if data is not None else cfg.get("cifar_source")
        ns = [r.get("clean_n") for r in source.get("rows", []) if isinstance(r, dict) and r.get("clean_n")]
        ns = ns or [cfg.get("n_test")]
    elif source is not None:
        profile = profile if profile is not None else getattr(source, "name", None)
        data = data if data is not None else getattr(source, "cifar_source", None)
        ns, default_what = [getattr(source, "n_train", None)], "training images"
        if commit is None:
            from ..utils import git_commit

            commit = git_commit()
    if n is not None:
        ns = [n] if isinstance(n, int) else list(n)
    parts = [f"profile {profile}" if profile else "", f"commit {_short_commit(commit)}" if commit else "",
             _data_name(data) if data else "", _n_text(ns, what or default_what)]
    parts += [extra] if isinstance(extra, str) else list(extra or [])
    return " · ".join(p for p in parts if p)


def _footer(fig) -> dict:
    if not hasattr(fig, "_advlib_footer"):
        fig._advlib_footer = {"notes": [], "stamp": None}
    return fig._advlib_footer


def _draw_footer(fig) -> None:
    """The notes and the stamp as the figure's bottom lines, wrapped to its width: a ``supxlabel`` at
    the left (its height found by the layout), so a constrained layout keeps room for it."""
    import textwrap

    f = _footer(fig)
    width = max(20, int((fig.get_figwidth() - 0.15) / 0.05))  # characters of 6.5 pt text per line
    lines = [w for line in list(dict.fromkeys(f["notes"])) + ([f["stamp"]] if f["stamp"] else [])
             for w in textwrap.wrap(line, width)]
    old = getattr(fig, "_supxlabel", None)
    if old is not None and old.get_gid() == STAMP_GID and not lines:
        old.remove()
    if lines:
        t = fig.supxlabel("\n".join(lines), x=0.008, ha="left", va="bottom", fontsize=6.5, color="0.35",
                          linespacing=1.35, multialignment="left")
        t.set_gid(STAMP_GID)


def add_note(fig, text: str) -> None:
    """A line in the figure's footer (e.g. what the whiskers are), above the stamp."""
    if text:
        _footer(fig)["notes"].append(text)
        _draw_footer(fig)


def set_stamp(fig, text: str | None) -> None:
    """Put ``text`` (see :func:`stamp_text`) as the figure's stamp, replacing any; None removes it."""
    _footer(fig)["stamp"] = text or None
    _draw_footer(fig)


def get_stamp(fig) -> str | None:
    return _footer(fig)["stamp"]


def auto_stamp(fig, stamp, source=None) -> None:
    """A figure function's ``stamp`` argument: a string is the stamp, False none, None (default) the
    stamp of ``source`` (a results or transfer dict) when one is given."""
    if stamp is False:
        return
    if isinstance(stamp, str):
        set_stamp(fig, stamp)
    elif source:
        set_stamp(fig, stamp_text(source) or None)


# --- saving -------------------------------------------------------------------------------------
def save_figure(fig: Figure, name: str, directory="figures", formats=("png", "pdf"), stamp=None) -> list[Path]:
    """Write ``<directory>/<name>.<fmt>`` for each format (dpi 150), each atomically.

    ``name`` is a stable file stem such as ``"fig_spectra"`` (letters, digits, ``_ . -``; no
    directory part, no extension). ``stamp``: the footer line saying what drew the figure (a string,
    see :func:`stamp_text`; a results dict or a profile is turned into one); it replaces the stamp a
    figure function may have put; None keeps the figure's own. A failed write leaves any previous
    file untouched and no temporary file behind. Returns the written paths.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"save_figure: invalid figure name {name!r}; expected a non-empty file stem of "
                         "letters, digits, '_', '.', '-' (no directory, no extension)")
    if isinstance(formats, str):
        formats = (formats,)
    if stamp is not None:
        set_stamp(fig, stamp if isinstance(stamp, str) else stamp_text(stamp))
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
