"""The attack explorer: L2 PGD live on one test image, against several models side by side.

``AttackExplorer({"standard": m1, "robust": m2}, test_images, test_labels)`` ends a cell and shows:
controls to pick the test image (a class dropdown and an index slider within that class), ε (L2) and
the number of PGD steps, and optionally a target class; the clean image; then per model the
adversarial image, the model's prediction and confidence before → after, the perturbation magnified
(the same factor for every model, said in the summary) and its L2 norm (≤ ε).

The attack is :func:`advlib.attacks.pgd`: untargeted (or targeted at the chosen class), no random
start (so one setting always gives the same picture), ``steps`` steps of 2.5·ε/steps. Results are
cached per (image, ε, steps, target), so moving back to a setting shows it at once.

Stable CSS classes: ``advlib-attack-explorer`` (the whole box), ``advlib-class``, ``advlib-index``,
``advlib-eps``, ``advlib-steps``, ``advlib-target``, ``advlib-attack-image`` (the clean image),
``advlib-attack-info`` (the summary); per model a box ``advlib-attack-model`` holding
``advlib-adv-image``, ``advlib-adv-perturbation`` and ``advlib-adv-info``.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import ipywidgets as W
import torch

from .. import attacks
from ..config import CIFAR10_CLASSES
from ..utils import model_device
from .common import Displayable, class_name, esc, magnification, predict, tag, to_png

ALL = -1  # class dropdown: every class
UNTARGETED = -1  # target dropdown: untargeted


class AttackExplorer(Displayable):
    """PGD (L2) on one test image against each model, live. Display it by ending a cell with it.

    models: name -> classifier taking images in [0,1] (the notebook passes the standard and the
        L2-robust source models); images, labels: the test images (float NCHW in [0,1]) and labels.
    eps_max / steps_max: the sliders' ranges; eps / steps: their start values (default ε_max/2, 10).
    classes: class names; scale: PNG upscaling; magnify: the perturbation is shown as 0.5 + f·δ with
        f = ``magnify``, or (None) the f at which the largest |δ| of all models fills the range.

    Controls (ipywidgets): ``klass``, ``index``, ``eps``, ``steps``, ``target``; ``render()`` redraws,
    ``result()`` is the current attack per model (``x_adv``, ``before`` / ``after`` (class, confidence)).
    """

    def __init__(self, models: dict, images, labels, *, eps_max: float = 1.0, steps_max: int = 50,
                 classes=CIFAR10_CLASSES, eps: float | None = None, steps: int | None = None, scale: int = 5,
                 magnify: float | None = None, cache_size: int = 64):
        if not models:
            raise ValueError("AttackExplorer: no models given")
        self.models = dict(models)
        self.images = torch.as_tensor(images).detach().float().cpu()
        self.labels = torch.as_tensor(labels).long().cpu()
        if self.images.dim() != 4 or len(self.images) != len(self.labels) or not len(self.labels):
            raise ValueError(f"AttackExplorer: expected images [N,C,H,W] and N labels, got {tuple(self.images.shape)} "
                             f"and {tuple(self.labels.shape)}")
        self.class_names, self.scale, self.magnify = tuple(classes), scale, magnify
        self._cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        self.attacks_run = 0  # PGD runs (one per model and setting not in the cache)
        self.seconds = 0.0  # how long the latest render took
        self._rows = torch.arange(len(self.labels))
        self._quiet = False

        counts = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        self.klass = tag(W.Dropdown(options=[(f"all ({len(self.labels)})", ALL)] + [
            (f"{class_name(self.class_names, c)} ({n})", c) for c, n in enumerate(counts) if n], description="class"),
            "advlib-class")
        self.index = tag(W.IntSlider(value=0, min=0, max=len(self.labels) - 1, description="image",
                                     continuous_update=False), "advlib-index")
        self.eps = tag(W.FloatSlider(value=eps_max / 2 if eps is None else eps, min=0.0, max=eps_max,
                                     step=eps_max / 40, description="ε (L2)", readout_format=".3f",
                                     continuous_update=False), "advlib-eps")
        self.steps = tag(W.IntSlider(value=min(10, steps_max) if steps is None else steps, min=1, max=steps_max,
                                     description="PGD steps", continuous_update=False), "advlib-steps")
        self.target = tag(W.Dropdown(options=[("untargeted", UNTARGETED)] + [
            (f"targeted: {class_name(self.class_names, c)}", c) for c in range(len(counts))], description="mode"),
            "advlib-target")
        h, w = self.images.shape[-2] * scale, self.images.shape[-1] * scale
        blank = to_png(torch.full_like(self.images[0], 0.9), scale)
        img = lambda css: tag(W.Image(value=blank, format="png", width=w, height=h), css)  # noqa: E731
        self.image, self.caption = img("advlib-attack-image"), W.HTML()
        self.adv = {n: img("advlib-adv-image") for n in self.models}
        self.delta = {n: img("advlib-adv-perturbation") for n in self.models}
        self.info = {n: tag(W.HTML(), "advlib-adv-info") for n in self.models}
        self.summary = tag(W.HTML(), "advlib-attack-info")
        cell = W.Layout(width=f"{w + 12}px")
        panels = [W.VBox([W.HTML("<b>clean</b>"), self.image, self.caption], layout=cell)]
        for n in self.models:
            pics = W.HBox([W.VBox([W.HTML(f"<b>{esc(n)}</b>: adversarial"), self.adv[n]], layout=cell),
                           W.VBox([W.HTML("perturbation"), self.delta[n]], layout=cell)])
            panels.append(tag(W.VBox([pics, self.info[n]], layout=W.Layout(margin="0 16px 0 0")),
                              "advlib-attack-model"))
        self.widget = tag(W.VBox([W.HBox([self.klass, self.index]), W.HBox([self.eps, self.steps, self.target]),
                                  W.HBox(panels), self.summary]), "advlib-attack-explorer")
        self.klass.observe(self._on_class, names="value")
        for c in (self.index, self.eps, self.steps, self.target):
            c.observe(self._on_change, names="value")
        self.render()

    # -- controls ----------------------------------------------------------------------------------
    def _on_class(self, change=None) -> None:
        c = self.klass.value
        self._rows = torch.arange(len(self.labels)) if c == ALL else torch.nonzero(self.labels == c).flatten()
        self._quiet = True
        try:
            self.index.value = 0
            self.index.max = max(len(self._rows) - 1, 0)
        finally:
            self._quiet = False
        self.render()

    def _on_change(self, change=None) -> None:
        if not self._quiet:
            self.render()

    def row(self) -> int:
        """The test image on screen (its index into ``images``)."""
        return int(self._rows[min(self.index.value, len(self._rows) - 1)])

    # -- the attack ------------------------------------------------------------------------------
    def setting(self) -> tuple[int, float, int, int]:
        """(row, ε, steps, target or -1) on screen."""
        return self.row(), round(float(self.eps.value), 6), int(self.steps.value), int(self.target.value)

    def result(self) -> dict:
        """name -> {"x_adv": [C,H,W], "before": (class, conf), "after": (class, conf)} for the current
        setting: computed once per setting (PGD on each model), then from the cache."""
        key = self.setting()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        row, eps, steps, target = key
        x = self.images[row:row + 1]
        y = self.labels[row:row + 1] if target == UNTARGETED else torch.tensor([target])
        out = {}
        for name, model in self.models.items():
            dev = model_device(model)
            x_adv = attacks.pgd(model, x.to(dev), y.to(dev), norm="l2", eps=eps, step_size=2.5 * eps / steps,
                                steps=steps, targeted=target != UNTARGETED, random_start=False).cpu()
            self.attacks_run += 1
            pred, conf = predict(model, torch.cat([x, x_adv]))
            out[name] = {"x_adv": x_adv[0], "before": (int(pred[0]), float(conf[0])),
                         "after": (int(pred[1]), float(conf[1]))}
        self._cache[key] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    # -- drawing -----------------------------------------------------------------------------------
    def _cname(self, y) -> str:
        return class_name(self.class_names, y)

    def render(self) -> None:
        t0 = time.perf_counter()
        row, eps, steps, target = self.setting()
        x, y = self.images[row], int(self.labels[row])
        res = self.result()
        deltas = {n: r["x_adv"] - x for n, r in res.items()}
        f = magnification(deltas.values(), self.magnify)
        self.image.value = to_png(x, self.scale)
        self.caption.value = f"test image #{row}<br>true class <b>{esc(self._cname(y))}</b>"
        for name, r in res.items():
            d = deltas[name]
            (p0, c0), (p1, c1) = r["before"], r["after"]
            if target == UNTARGETED:
                verdict = "wrong before the attack" if p0 != y else ("fooled" if p1 != y else "still right")
            else:
                verdict = f"{'hit' if p1 == target else 'missed'} target {self._cname(target)}"
            self.adv[name].value = to_png(r["x_adv"], self.scale)
            self.delta[name].value = to_png(0.5 + f * d, self.scale)
            self.info[name].value = (
                f"prediction: <b>{esc(self._cname(p0))}</b> ({c0:.0%}) → <b>{esc(self._cname(p1))}</b> ({c1:.0%}) "
                f"<i>{esc(verdict)}</i><br>‖δ‖₂ = <b>{float(d.norm()):.4f}</b> (ε = {eps:.4f}), "
                f"‖δ‖∞ = {float(d.abs().max()):.4f}")
        mode = "untargeted" if target == UNTARGETED else f"targeted at {esc(self._cname(target))}"
        self.seconds = time.perf_counter() - t0
        self.summary.value = (
            f"L2 PGD, {mode}: ε = {eps:.4f}, {steps} step(s) of {2.5 * eps / steps:.4f} (2.5·ε/steps), no random "
            f"start. Perturbations δ = x_adv − x are shown as 0.5 + {f:.3g}·δ (magnified ×{f:.3g}, the same for "
            f"every model). <span style='color: #888'>({self.seconds * 1000:.0f} ms)</span>")
