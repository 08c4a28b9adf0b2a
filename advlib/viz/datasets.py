"""Figures of images and feature datasets: grids, side-by-side rows, class means, perturbations,
plus loading a run's sets for them (spectra and pixel statistics: :mod:`advlib.viz.spectra`).

Images are float tensors (or arrays) NCHW in [0, 1]. Feature datasets appear in three shapes, all
accepted where a set is expected: an images tensor, an ``(images, labels)`` pair, or a
:class:`FeatureSet` (images, labels and the ``meta.json`` of a constructed set, whose
``source_indices`` link each row to its original training image).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ..config import CIFAR10_CLASSES
from . import style
from .common import _figure, add_note, auto_stamp, message_figure


# --- data plumbing ------------------------------------------------------------------------------
@dataclass
class FeatureSet:
    """One dataset as the figures and the explorer need it."""

    name: str
    images: torch.Tensor  # float [N,3,H,W] in [0,1]
    labels: torch.Tensor  # int64 [N]
    meta: dict = field(default_factory=dict)  # meta.json of a constructed set ({} for released ones)

    def _meta_tensor(self, key: str) -> torch.Tensor | None:
        v = self.meta.get(key)
        if v is None:
            return None
        t = torch.as_tensor(v, dtype=torch.long)
        if t.shape != (len(self.labels),):
            raise ValueError(f"{self.name}: meta.json {key!r} has shape {tuple(t.shape)}, expected ({len(self.labels)},)")
        return t

    @property
    def source_indices(self) -> torch.Tensor | None:
        """Per row, the index of its original image in the run's training set (None if unknown)."""
        return self._meta_tensor("source_indices")

    @property
    def start_indices(self) -> torch.Tensor | None:
        """D_R / D_NR: per row, the index of the training image the descent started from."""
        return self._meta_tensor("start_indices")

    @property
    def targets(self) -> torch.Tensor | None:
        """D_rand / D_det: the target class of each row (equal to ``labels``); None otherwise."""
        return self._meta_tensor("targets")

    def __iter__(self):  # so ``images, labels = fs`` works like a pair
        return iter((self.images, self.labels))

    def __len__(self) -> int:
        return len(self.labels)


def read_meta(directory) -> dict:
    """``<directory>/meta.json`` as a dict; {} when the file does not exist (released sets)."""
    p = Path(directory) / "meta.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None


def load_sets(paths, source: str = "constructed", names=None) -> dict[str, FeatureSet]:
    """Every feature dataset of ``source`` present in the run directory, in DATASETS order.

    ``paths`` is a :class:`advlib.paths.RunPaths` (or a run directory); ``names`` restricts the sets.
    """
    from ..data import load_feature_dataset  # lazy: keep `import advlib.viz` light
    from ..paths import RunPaths

    paths = paths if isinstance(paths, RunPaths) else RunPaths.of(paths)
    out = {}
    for name in paths.available(source):
        if names is not None and name not in names:
            continue
        d = paths.dataset(name, source)
        images, labels = load_feature_dataset(d)
        out[name] = FeatureSet(name, images, labels, read_meta(d))
    return out


def _images(x) -> torch.Tensor:
    """Images from a tensor / array / (images, labels) pair / FeatureSet, as float NCHW on CPU."""
    if isinstance(x, FeatureSet):
        x = x.images
    elif isinstance(x, (tuple, list)) and len(x) == 2 and getattr(x[0], "ndim", 0) == 4:
        x = x[0]  # an (images, labels) pair
    t = torch.as_tensor(x).detach().cpu().float()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected images of shape [N,C,H,W], got {tuple(t.shape)}")
    return t


def _pair(x) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) from a pair or a FeatureSet."""
    if isinstance(x, FeatureSet):
        return _images(x.images), torch.as_tensor(x.labels).long().cpu()
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return _images(x[0]), torch.as_tensor(x[1]).long().cpu()
    raise TypeError(f"expected (images, labels) or a FeatureSet, got {type(x).__name__}")


def _hwc(img: torch.Tensor) -> np.ndarray:
    """[C,H,W] in [0,1] -> [H,W,C] array for imshow (grayscale stays 2-D)."""
    img = img.clamp(0, 1)
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def _plain(ax) -> None:
    """No ticks or frame, but keep the y-label (row titles) visible."""
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _class_name(class_names, y) -> str:
    y = int(y)
    return class_names[y] if class_names and 0 <= y < len(class_names) else str(y)


def _cell(ncol: int, size: float, margin: float = 0.3) -> float:
    """The side of one image panel: ``size`` inches, less when ``ncol`` of them would pass the width a
    report prints."""
    return min(size, (style.WIDTH - margin) / max(ncol, 1))


# --- image grids --------------------------------------------------------------------------------
@style.styled
def image_grid(images, labels=None, *, nrow: int = 8, title: str | None = None,
               class_names=CIFAR10_CLASSES, stamp: str | None = None) -> Figure:
    """One panel per image, ``nrow`` images per row (as torchvision's ``make_grid``); labels as titles.
    ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`)."""
    x = _images(images)
    n = len(x)
    if n == 0:
        raise ValueError("image_grid: no images")
    ncol = max(1, min(nrow, n))
    rows = math.ceil(n / ncol)
    cell = _cell(ncol, 1.15)
    fig = _figure(figsize=(cell * ncol + 0.2, (cell + 0.18) * rows + (0.4 if title else 0) + (0.2 if stamp else 0)),
                  layout="constrained")
    axes = fig.subplots(rows, ncol, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.remove()
            continue
        ax.imshow(_hwc(x[i]), interpolation="nearest")
        _plain(ax)
        if labels is not None:
            ax.set_title(_class_name(class_names, labels[i]), fontsize=style.TINY + 0.5, pad=2)
    if title:
        fig.suptitle(title)
    auto_stamp(fig, stamp)
    return fig


def align_by_source(meta_source_indices, wanted_original_indices) -> torch.Tensor:
    """For each wanted original index, the row of the set built from it, or -1 if none.

    ``meta_source_indices[r]`` is the original training index of row ``r`` (meta.json
    ``source_indices``). Where several rows share a source, the first is returned.
    """
    src = torch.as_tensor(meta_source_indices, dtype=torch.long).flatten()
    want = torch.as_tensor(wanted_original_indices, dtype=torch.long).flatten()
    size = int(max(src.max().item() if len(src) else -1, want.max().item() if len(want) else -1)) + 1
    lookup = torch.full((max(size, 1),), -1, dtype=torch.long)
    # scatter in reverse so that the first row wins for repeated sources
    rows = torch.arange(len(src))
    lookup[src.flip(0)] = rows.flip(0)
    return lookup[want] if len(want) else want


def pick_common(labels, source_indices: dict, *, per_class: int = 1, num_classes: int = 10) -> list[int]:
    """Original indices to show: per class, ``per_class`` originals that every set knows.

    ``labels`` are the originals' labels; ``source_indices`` maps set name -> its meta
    ``source_indices`` (None = the set is not linked to originals and does not constrain the pick).
    Within a class, originals known to more sets come first (ties: lowest index), so a class with
    no original common to all sets still gets the best-covered one; a class with no original at all
    is skipped.
    """
    labels = torch.as_tensor(labels).long()
    coverage = torch.zeros(len(labels), dtype=torch.long)
    for src in source_indices.values():
        if src is None:
            continue
        known = torch.zeros(len(labels), dtype=torch.bool)
        s = torch.as_tensor(src, dtype=torch.long)
        known[s[(s >= 0) & (s < len(labels))]] = True
        coverage += known
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) == 0:
            continue
        # stable sort by coverage, descending: the lowest index wins among equals
        order = torch.sort(-coverage[idx], stable=True).indices
        out += idx[order[:per_class]].tolist()
    return out


@style.styled
def side_by_side(original, sets: dict, *, indices, labels=None, source_indices: dict | None = None,
                 set_labels: dict | None = None, class_names=CIFAR10_CLASSES, titles: dict | None = None,
                 stamp: str | None = None) -> Figure:
    """Rows = examples, columns = the original and each set's image built from it.

    ``original``: the originals' images (all of them; rows are picked by ``indices``).
    ``sets``: name -> images (or a FeatureSet, which brings its own source indices and labels).
    ``indices``: original indices, one per row (see :func:`pick_common`).
    ``labels``: the originals' labels (all of them, or one per row) for the row titles.
    ``source_indices``: name -> meta ``source_indices``; a set with none is taken row-for-row
    (row i <-> original i) and its column title says so with a ``*``.
    ``set_labels``: name -> labels of the set, shown under each panel as "label: cat" (e.g. D_det's
    targets); a name mapped to None shows none, and a column whose shown labels all equal the
    originals' shows none either (D_R, D_NR keep their label). ``titles``: name -> column title
    (default: the paper's name). A set with no row for an example shows an empty panel.
    ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`).
    """
    x0 = _images(original)
    indices = torch.as_tensor(indices, dtype=torch.long).flatten()
    if len(indices) == 0:
        raise ValueError("side_by_side: no indices to show")
    source_indices = dict(source_indices or {})
    set_labels = dict(set_labels or {})
    titles = dict(titles or {})
    cols, col_titles = [(x0, indices, None)], ["original"]
    for name, s in sets.items():
        imgs = _images(s)
        if isinstance(s, FeatureSet):
            source_indices.setdefault(name, s.source_indices)
            set_labels.setdefault(name, s.labels)
        src = source_indices.get(name)
        title = titles.get(name, style.display(name))
        if src is None:
            rows = torch.where(indices < len(imgs), indices, torch.full_like(indices, -1))
            col_titles.append(title + "*")
        else:
            rows = align_by_source(src, indices)
            col_titles.append(title)
        cols.append((imgs, rows, set_labels.get(name)))
    row_labels = None
    if labels is not None:
        lab = torch.as_tensor(labels).long().flatten()
        if len(lab) == len(x0):
            row_labels = lab[indices]
        elif len(lab) == len(indices):
            row_labels = lab
        else:
            raise ValueError(f"side_by_side: {len(lab)} labels; expected one per original ({len(x0)}) or per row ({len(indices)})")
    n, m = len(indices), len(cols)
    captioned = []
    for j, (imgs, rows, slabels) in enumerate(cols):
        shown = [int(slabels[int(r)]) for r in rows if slabels is not None and 0 <= int(r) < len(imgs)]
        same = row_labels is not None and shown == [int(row_labels[i]) for i, r in enumerate(rows)
                                                    if 0 <= int(r) < len(imgs)]
        captioned.append(j > 0 and slabels is not None and not same)
    cell = _cell(m, 1.2, margin=0.7)
    fig = _figure(figsize=(cell * m + 0.7, (cell + (0.16 if any(captioned) else 0.04)) * n + 0.5),
                  layout="constrained")
    axes = fig.subplots(n, m, squeeze=False)
    for j, (imgs, rows, slabels) in enumerate(cols):
        for i in range(n):
            ax, r = axes[i, j], int(rows[i])
            _plain(ax)
            if 0 <= r < len(imgs):
                ax.imshow(_hwc(imgs[r]), interpolation="nearest")
                if captioned[j]:
                    ax.set_xlabel(f"label: {_class_name(class_names, slabels[r])}", fontsize=style.TINY, labelpad=1)
            else:
                ax.set_facecolor("0.92")
                ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes, color="0.5")
            if i == 0:
                ax.set_title(col_titles[j], fontsize=style.SMALL)
            if j == 0:
                name = _class_name(class_names, row_labels[i]) if row_labels is not None else ""
                ax.set_ylabel(f"{name}\n#{int(indices[i])}", fontsize=style.TINY + 0.5)
    if any(captioned):
        add_note(fig, "\"label: …\" under a panel: the label the set gives that image (D_rand / D_det: the "
                      "attack's target); the row's own label is at the left.")
    if any(t.endswith("*") for t in col_titles):
        add_note(fig, "* no source indices: row i shown beside original i.")
    auto_stamp(fig, stamp)
    return fig


@style.styled
def class_means(sets: dict, *, class_names=CIFAR10_CLASSES, num_classes: int = 10, stamp: str | None = None) -> Figure:
    """Mean image of each class: rows = sets (name -> (images, labels)), columns = classes.
    ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`)."""
    if not sets:
        raise ValueError("class_means: no sets")
    cell = _cell(num_classes, 1.05, margin=0.9)
    fig = _figure(figsize=(cell * num_classes + 0.9, (cell + 0.05) * len(sets) + 0.5), layout="constrained")
    axes = fig.subplots(len(sets), num_classes, squeeze=False)
    for i, (name, s) in enumerate(sets.items()):
        x, y = _pair(s)
        n = x.shape[0]
        sums = torch.zeros(num_classes, *x.shape[1:]).index_add_(0, y.clamp(0, num_classes - 1), x)
        counts = torch.bincount(y.clamp(0, num_classes - 1), minlength=num_classes)[:num_classes]
        for c in range(num_classes):
            ax = axes[i, c]
            _plain(ax)
            if counts[c] > 0:
                ax.imshow(_hwc(sums[c] / counts[c]), interpolation="nearest")
            else:
                ax.set_facecolor("0.92")
            if i == 0:
                ax.set_title(_class_name(class_names, c), fontsize=style.TINY + 0.5, pad=2)
            if c == 0:
                ax.set_ylabel(f"{style.display(name)}\n{n:,} images", fontsize=style.TINY + 0.5)
    auto_stamp(fig, stamp)
    return fig


@style.styled
def perturbation_maps(x, x_adv, *, magnify: float | None = None, labels=None, targets=None,
                      class_names=CIFAR10_CLASSES, title: str | None = None, stamp: str | None = None) -> Figure:
    """Rows: original | adversarial | perturbation (x_adv - x), magnified; one column per example.

    The perturbation is shown as ``0.5 + magnify * (x_adv - x)``; ``magnify=None`` picks the factor
    that maps the largest |delta| in the batch to the full range. The factor is in the row title, the
    per-example L2 norm in each column title; ``targets`` (the set's labels) read "label: cat" under
    the adversarial image. ``title`` names the set (its paper name in the title). ``stamp``: a footer
    line (see :func:`advlib.viz.stamp_text`).
    """
    x, xa = _images(x), _images(x_adv)
    if x.shape != xa.shape:
        raise ValueError(f"perturbation_maps: x {tuple(x.shape)} and x_adv {tuple(xa.shape)} differ in shape")
    if len(x) == 0:
        raise ValueError("perturbation_maps: no images")
    delta = xa - x
    norms = delta.flatten(1).norm(dim=1)
    if magnify is None:
        peak = float(delta.abs().max())
        magnify = 0.5 / peak if peak > 0 else 1.0
    n = len(x)
    cell = _cell(n, 1.2, margin=0.9)
    fig = _figure(figsize=(cell * n + 0.9, 3 * cell + 1.3), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False)
    row_names = ("original", "adversarial", f"δ ×{magnify:.3g}")
    for j in range(n):
        panels = (x[j], xa[j], (0.5 + magnify * delta[j]))
        for i, img in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(_hwc(img), interpolation="nearest")
            _plain(ax)
            if j == 0:
                ax.set_ylabel(row_names[i], fontsize=style.TINY + 0.5)
        col_title = f"‖δ‖₂={norms[j]:.2f}"  # (not ``title``: that names the dataset in the suptitle)
        if labels is not None:
            col_title = f"{_class_name(class_names, labels[j])}\n" + col_title
        axes[0, j].set_title(col_title, fontsize=style.TINY, pad=2)
        if targets is not None:
            axes[1, j].set_title(f"label: {_class_name(class_names, targets[j])}", fontsize=style.TINY, pad=2)
    name = style.display(title) if title else ""
    fig.suptitle(f"{name + ': ' if name else ''}perturbations (δ = x_adv − x, shown as 0.5 + {magnify:.3g}·δ)",
                 fontsize=style.FONT)
    auto_stamp(fig, stamp)
    return fig


def perturbation_pairs(fs: FeatureSet, originals, *, n: int = 8, class_names=CIFAR10_CLASSES) -> dict:
    """The first ``n`` rows of a set beside their originals, as keyword arguments for
    :func:`perturbation_maps`: ``x``, ``x_adv``, ``labels`` (the originals'), ``targets`` (the set's)."""
    src = fs.source_indices
    if src is None:
        raise ValueError(f"{fs.name}: meta.json has no 'source_indices'; cannot pair rows with originals")
    x0, y0 = _pair(originals)
    rows = torch.arange(min(n, len(fs)))
    s = src[rows]
    if len(s) and int(s.max()) >= len(x0):
        raise ValueError(f"{fs.name}: source index {int(s.max())} is outside the {len(x0)} originals; "
                         "load the originals with the run's cifar_source, n_train and seed")
    return {"x": x0[s], "x_adv": _images(fs.images)[rows], "labels": y0[s], "targets": fs.labels[rows],
            "class_names": class_names, "title": fs.name}


def linked(sets: dict, names=("d_rand", "d_det")) -> list[str]:
    """Those of ``names`` present in ``sets`` whose rows are linked to originals (meta source_indices)."""
    return [n for n in names if n in sets and isinstance(sets[n], FeatureSet) and sets[n].source_indices is not None]


def perturbations(sets: dict, originals, names=("d_rand", "d_det"), *, n: int = 5000) -> dict[str, torch.Tensor]:
    """name -> x_adv - x for the first ``n`` rows of each linked set among ``names`` (see :func:`linked`).

    Meaningful for D_rand / D_det, which are small perturbations of their originals; D_R / D_NR
    start from another image, so their difference to the original is not a perturbation.
    """
    x0 = _images(originals)
    out = {}
    for name in linked(sets, names):
        p = perturbation_pairs(sets[name], (x0, torch.zeros(len(x0), dtype=torch.long)), n=n)
        out[name] = p["x_adv"] - p["x"]
    return out


# --- one call per notebook figure (each copes with a run that holds no sets) ---------------------
def side_by_side_for(x0, y0, sets: dict, *, per_class: int = 1, class_names=CIFAR10_CLASSES,
                     stamp: str | None = None) -> Figure:
    """The side-by-side figure of a run: per class one original, and for each set the image built
    from it; for D_R / D_NR the *start image* the descent began from is shown just before the
    result (titled "start of D_R", no label under it: it is only where the descent began), so a
    reader can judge how much of it remains."""
    if not sets:
        return message_figure("no datasets in this run yet: run notebooks 01-02 first")
    cols: dict = {}
    titles, no_labels = {}, {}
    for name, fs in sets.items():
        start = fs.start_indices if isinstance(fs, FeatureSet) else None
        if start is not None and fs.source_indices is not None:
            key = f"{name} start"
            cols[key] = FeatureSet(key, _images(x0)[start], fs.labels, {"source_indices": fs.meta["source_indices"]})
            titles[key], no_labels[key] = f"start of\n{style.display(name)}", None
        cols[name] = fs
        titles[name] = style.display(name) + ("\n" if any(k.startswith(f"{name} ") for k in titles) else "")
    idx = pick_common(y0, {n: getattr(s, "source_indices", None) for n, s in sets.items()}, per_class=per_class)
    return side_by_side(x0, cols, indices=idx, labels=y0, class_names=class_names, titles=titles,
                        set_labels=no_labels, stamp=stamp)


def perturbation_figures(sets: dict, originals, *, n: int = 8, stamp: str | None = None) -> dict[str, Figure]:
    """name -> perturbation figure (titled with the set's name) for D_rand / D_det when present."""
    return {name: perturbation_maps(**perturbation_pairs(sets[name], originals, n=n), stamp=stamp)
            for name in linked(sets, ("d_rand", "d_det"))}
