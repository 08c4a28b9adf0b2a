"""The dataset explorer: browse the feature datasets image by image.

``Explorer(sets, originals, source_indices, models)`` shows one image at a time: pick the dataset,
the class and a filter on the per-image facts, slide through the images left. Beside the image: the
original training image it was built from (via the set's ``source_indices``), the difference between
the two (magnified), and, when models are given, each model's predicted class and confidence on both;
below, the facts of the image (:mod:`advlib.widgets.facts`: target class, whether the attack hit it,
the original's true class, the matching distance, the start image's class).

Images are sent as upscaled PNGs through ``ipywidgets.Image`` (not matplotlib output), so they
render in any Jupyter front end and the ``<img>`` changes when the slider moves. Stable CSS classes
for tests and styling: ``advlib-explorer`` (the whole box), ``advlib-dataset``, ``advlib-class``,
``advlib-filter``, ``advlib-slider``, ``advlib-image``, ``advlib-original``, ``advlib-perturbation``,
``advlib-info``, ``advlib-facts``, ``advlib-predictions``.
"""

from __future__ import annotations

import html

import ipywidgets as W
import torch

from ..config import CIFAR10_CLASSES, DATASETS
from ..viz.datasets import FeatureSet, _pair, load_sets
from .common import PAD, Displayable, predict, to_png
from .facts import FILTERS, SetFacts, source_role

ALL = -1  # class dropdown value meaning "every class"


class Explorer(Displayable):
    """Browse feature datasets image by image. Display it by ending a cell with it (or ``.widget``).

    sets: name -> (images, labels) or :class:`advlib.viz.FeatureSet`.
    originals: (images, labels) of the training set the sets were built from, or None.
    source_indices: name -> per-row original index (meta.json ``source_indices``); FeatureSets bring
        their own. A set without them shows no original.
    models: name -> classifier taking images in [0,1]; predictions are shown per model.
    magnify: the difference is shown as 0.5 + magnify·δ; None = per image, the largest |δ| fills the range.
    start_indices: name -> per-row index of the image the descent started from (D_R / D_NR,
        meta.json ``start_indices``; FeatureSets bring their own). For such sets the third panel
        shows that start image: x_r is not a perturbation of the matched original.
    meta: name -> the set's meta.json dict (FeatureSets bring their own ``.meta``): the per-image
        facts and the filters come from it (``targets``, and ``hit`` / ``orig_labels`` / ``agree`` /
        ``rel_distance`` where a per-row list is recorded).
    source_models: name -> the model that built the set; default ``models[role]`` with the role from
        meta.json's ``source_model.which`` (``standard`` / ``robust`` / ``targeted``). Facts that
        meta.json lacks are recomputed with it (an attack's hit, the matching distance).

    ``filter`` (a Dropdown) offers the filters the set's facts allow: "attack hit its target" /
    "missed", "target = true label" / "≠" (D_rand / D_det), "source model predicts the label" /
    "misses it", "started from the label's class" / "another class" (D_R / D_NR).
    """

    def __init__(self, sets: dict, originals=None, source_indices: dict | None = None, models: dict | None = None,
                 *, class_names=CIFAR10_CLASSES, scale: int = 6, magnify: float | None = None,
                 start_indices: dict | None = None, meta: dict | None = None, source_models: dict | None = None):
        if not sets:
            raise ValueError("Explorer: no datasets given")
        self.sets = {name: _pair(s) for name, s in sets.items()}
        self.originals = _pair(originals) if originals is not None else None
        self.models = dict(models or {})
        self.class_names = tuple(class_names)
        self.source_indices, self.start_indices, self.facts = {}, {}, {}
        for name, s in sets.items():
            m = (meta or {}).get(name) or (s.meta if isinstance(s, FeatureSet) else {})
            fs = isinstance(s, FeatureSet)  # its properties check the lists' lengths
            src = (source_indices or {}).get(name)
            src = (s.source_indices if fs else m.get("source_indices")) if src is None else src
            start = (start_indices or {}).get(name)
            start = (s.start_indices if fs else m.get("start_indices")) if start is None else start
            self.source_indices[name] = None if src is None else torch.as_tensor(src, dtype=torch.long)
            self.start_indices[name] = None if start is None else torch.as_tensor(start, dtype=torch.long)
            role = source_role(name, m, self.models)
            model = (source_models or {}).get(name, self.models.get(role))
            self.facts[name] = SetFacts(name, *self.sets[name], m, self.originals, self.source_indices[name],
                                        self.start_indices[name], model, role, self.class_names)
        self.scale = scale
        self.magnify = magnify
        self._rows = torch.arange(0)
        self._quiet = False  # set while callbacks change other widgets, so each change renders once

        first = next(iter(self.sets.values()))[0]
        h, w = first.shape[-2] * scale, first.shape[-1] * scale
        blank = to_png(torch.full_like(first[0], 0.9), scale)

        self.dataset = W.Dropdown(options=list(self.sets), description="dataset")
        self.klass = W.Dropdown(description="class")
        self.filter = W.Dropdown(description="filter", layout=W.Layout(width="360px"))
        self.slider = W.IntSlider(value=0, min=0, max=0, description="index", continuous_update=True)
        self.image = W.Image(value=blank, format="png", width=w, height=h)
        self.original = W.Image(value=blank, format="png", width=w, height=h)
        self.perturbation = W.Image(value=blank, format="png", width=w, height=h)
        self.captions = [W.HTML() for _ in range(3)]
        self.info = W.HTML()
        self.predictions = W.HTML()
        self.facts_html = W.HTML()
        for wid, css in ((self.dataset, "advlib-dataset"), (self.klass, "advlib-class"), (self.filter, "advlib-filter"),
                         (self.slider, "advlib-slider"), (self.facts_html, "advlib-facts"),
                         (self.image, "advlib-image"), (self.original, "advlib-original"),
                         (self.perturbation, "advlib-perturbation"), (self.info, "advlib-info"),
                         (self.predictions, "advlib-predictions")):
            wid.add_class(css)
        panels = [W.VBox([cap, img], layout=W.Layout(width=f"{w + 12}px"))
                  for cap, img in zip(self.captions, (self.image, self.original, self.perturbation), strict=True)]
        self.widget = W.VBox([W.HBox([self.dataset, self.klass, self.filter]), self.slider, W.HBox(panels), self.info,
                              self.facts_html, self.predictions])
        self.widget.add_class("advlib-explorer")

        self._update_classes()
        self.dataset.observe(self._on_dataset, names="value")
        self.klass.observe(self._on_class, names="value")
        self.filter.observe(self._on_class, names="value")
        self.slider.observe(self._on_index, names="value")
        self._on_class()

    # -- construction from a run directory -------------------------------------------------------
    @classmethod
    def from_run_dir(cls, run_dir, origin: str = "constructed", cifar_source="sample", n_train: int = 0,
                     seed: int = 0, *, datasets=None, models: bool = True, source: str | None = None,
                     **kwargs) -> Explorer:
        """Everything present in ``run_dir``: the sets of ``origin``, the originals (when the sets
        have ``source_indices``), and the trained models under ``models/<origin>/<dataset>/`` plus
        the two source models. ``cifar_source``, ``n_train``, ``seed`` must be the run's (they pick the
        training images the source indices point into). ``source``: the old name of ``origin``."""
        from ..paths import RunPaths

        if source is not None:
            import warnings

            warnings.warn("from_run_dir(source=...) is deprecated: use origin=", DeprecationWarning, stacklevel=2)
            origin = source
        paths = RunPaths.of(run_dir)
        sets = load_sets(paths, origin, names=datasets)
        if not sets:
            raise FileNotFoundError(f"Explorer.from_run_dir: no {origin} datasets under {paths.root} "
                                    f"(expected {paths.dataset(DATASETS[0], origin)} and the like)")
        originals = None
        if any(fs.source_indices is not None for fs in sets.values()):
            from ..data import load_cifar10
            originals = load_cifar10(cifar_source, "train", n=n_train, seed=seed, root=paths.data)
        return cls(sets, originals, models=load_models(paths, origin) if models else None, **kwargs)

    # -- callbacks ---------------------------------------------------------------------------------
    def _update_classes(self) -> None:
        _, y = self.sets[self.dataset.value]
        counts = torch.bincount(y, minlength=len(self.class_names)).tolist()
        options = [(f"all ({len(y)})", ALL)] + [
            (f"{self._cname(c)} ({counts[c]})", c) for c in range(len(counts))]
        keep = self.klass.value if self.klass.value in dict(options).values() else ALL
        self.klass.options = options
        self.klass.value = keep
        filters = self.facts[self.dataset.value].filters()
        keep = self.filter.value if self.filter.value in dict(filters).values() else "all"
        self.filter.options = filters
        self.filter.value = keep

    def _on_dataset(self, change=None) -> None:
        self._quiet = True
        try:
            self._update_classes()
        finally:
            self._quiet = False
        self._on_class()

    def _on_class(self, change=None) -> None:
        if self._quiet:
            return
        _, y = self.sets[self.dataset.value]
        c = self.klass.value
        keep = torch.ones(len(y), dtype=torch.bool) if c in (None, ALL) else y == c
        if self.filter.value not in (None, "all"):
            facts = self.facts[self.dataset.value]
            if note := facts.pending(self.filter.value):  # seconds on a large set: say so while it runs
                self.info.value = f"<i>{html.escape(note)}</i>"
            keep &= facts.mask(self.filter.value)
        self._rows = torch.nonzero(keep).flatten()
        n = len(self._rows)
        self._quiet = True
        try:
            self.slider.value = 0
            self.slider.max = max(n - 1, 0)
            self.slider.disabled = n <= 1
        finally:
            self._quiet = False
        self.render()

    def _on_index(self, change=None) -> None:
        if not self._quiet:
            self.render()

    # -- drawing -------------------------------------------------------------------------------------
    def _cname(self, y) -> str:
        y = int(y)
        return self.class_names[y] if 0 <= y < len(self.class_names) else str(y)

    def current(self) -> tuple[str, int] | None:
        """(dataset name, row) on screen, or None when the class has no images."""
        if len(self._rows) == 0:
            return None
        return self.dataset.value, int(self._rows[min(self.slider.value, len(self._rows) - 1)])

    def render(self) -> None:
        name = self.dataset.value
        cur = self.current()
        x, y = self.sets[name]
        blank = to_png(torch.full_like(x[0], 0.9), self.scale) if len(x) else self.image.value
        if cur is None:
            self.image.value = self.original.value = self.perturbation.value = blank
            self.captions[0].value = "<b>no images in this selection</b>"
            self.captions[1].value = self.captions[2].value = ""
            self.info.value = self.predictions.value = self.facts_html.value = ""
            return
        _, row = cur
        img = x[row]
        self.image.value = to_png(img, self.scale)
        self.captions[0].value = f"<b>{html.escape(name)}</b> #{row}: label <b>{html.escape(self._cname(y[row]))}</b>"
        orig, orig_label, src = None, None, None
        srcs = self.source_indices.get(name)
        if self.originals is not None and srcs is not None:
            src = int(srcs[row])
            if 0 <= src < len(self.originals[0]):
                orig, orig_label = self.originals[0][src], int(self.originals[1][src])
        sel = "" if self.filter.value in (None, "all") else f" ({html.escape(FILTERS[self.filter.value])})"
        info = [f"{html.escape(name)}: {len(self._rows)} image(s) in this selection{sel}"]
        starts = self.start_indices.get(name)
        start = int(starts[row]) if (starts is not None and orig is not None) else -1
        if 0 <= start < len(self.originals[0]):  # D_R / D_NR: show where the descent began
            start_img = self.originals[0][start]
            self.original.value = to_png(orig, self.scale)
            self.perturbation.value = to_png(start_img, self.scale)
            self.captions[1].value = f"matched original #{src}: <b>{html.escape(self._cname(orig_label))}</b>"
            self.captions[2].value = (f"started from #{start}: "
                                      f"<b>{html.escape(self._cname(int(self.originals[1][start])))}</b>")
            info.append(f"representation of original #{src} matched, starting from training image #{start} "
                        f"(‖x − start‖₂ = {float((img - start_img).norm()):.3f})")
        elif orig is not None and orig.shape == img.shape:
            delta = img - orig
            norm = float(delta.norm())
            peak = float(delta.abs().max())
            factor = self.magnify if self.magnify is not None else (0.5 / peak if peak > 0 else 1.0)
            self.original.value = to_png(orig, self.scale)
            self.perturbation.value = to_png(0.5 + factor * delta, self.scale)
            self.captions[1].value = f"original #{src}: <b>{html.escape(self._cname(orig_label))}</b>"
            self.captions[2].value = f"difference, ×{factor:.3g}"
            info.append(f"difference to the original: ‖δ‖₂ = {norm:.3f}, ‖δ‖∞ = {peak:.3f} "
                        f"(shown as 0.5 + {factor:.3g}·δ)")
        else:
            self.original.value = self.perturbation.value = blank
            why = "no originals loaded" if self.originals is None else (
                "this set has no source indices" if srcs is None else f"source index {src} out of range")
            self.captions[1].value = f"original: <i>{html.escape(why)}</i>"
            self.captions[2].value = ""
        self.info.value = "<br>".join(info)
        self.facts_html.value = self.facts[name].row_html(row, img, orig)
        self.predictions.value = self._predictions_html(img, orig)

    def _predictions_html(self, img: torch.Tensor, orig: torch.Tensor | None) -> str:
        if not self.models:
            return ""
        batch = torch.stack([img, orig]) if orig is not None else img[None]
        pad = PAD
        head = (f"<tr><th {pad}>model</th><th {pad}>on this image</th>"
                + (f"<th {pad}>on the original</th>" if orig is not None else "") + "</tr>")
        body = []
        for mname, model in self.models.items():
            pred, conf = predict(model, batch)
            cells = "".join(f"<td {pad}>{html.escape(self._cname(p))} ({c:.0%})</td>"
                            for p, c in zip(pred.tolist(), conf.tolist(), strict=True))
            body.append(f"<tr><td {pad}>{html.escape(mname)}</td>{cells}</tr>")
        return f"<b>predictions</b><table class='advlib-table'>{head}{''.join(body)}</table>"


def load_models(paths, origin: str = "constructed") -> dict:
    """Trained models present in the run directory: the source models ("standard", "robust", and
    "targeted" where the profile trains one; on CIFAR-10) and the model trained on each dataset of ``origin``.

    A model counts as present when its folder holds ``checkpoint.pt`` and ``config.json`` (a run
    still training shows its latest checkpoint); it is loaded with ``advlib.train.load_trained``
    onto the device that function picks (CUDA when available).
    """
    from ..paths import SOURCE_ROLES, RunPaths, check_origin

    paths = paths if isinstance(paths, RunPaths) else RunPaths.of(paths)
    check_origin(origin)
    folders = {role: paths.source_model(role) for role in SOURCE_ROLES}
    folders.update({name: paths.model(name, origin) for name in DATASETS})
    present = {n: d for n, d in folders.items() if (d / "checkpoint.pt").is_file() and (d / "config.json").is_file()}
    if not present:
        return {}
    from ..train import load_trained

    return {n: load_trained(d) for n, d in present.items()}


def explorer(sets: dict, originals=None, source_indices=None, models=None, **kwargs) -> W.VBox:
    """The explorer's widget (a VBox); see :class:`Explorer`."""
    return Explorer(sets, originals, source_indices, models, **kwargs).widget


from_run_dir = Explorer.from_run_dir

__all__ = ["Explorer", "explorer", "from_run_dir", "load_models", "to_png", "predict"]
