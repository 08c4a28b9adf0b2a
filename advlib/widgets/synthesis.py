"""The synthesis slider: large-ε targeted attacks on the standard and the L2-robust model, ε by ε.

``SynthesisSlider(result)`` ends a cell and shows, for one start image (the ``start`` slider), the
image attacked toward each of the ten classes by each model at one radius (the ``eps`` slider over
the radii the notebook computed: it only indexes them, nothing is attacked live), each with what the
model predicts and the target's probability; a summary says how often each model reaches the target.

``result`` is what ``advlib.steps.beyond.synthesis`` returns: ``eps`` (the radii), ``start`` /
``labels`` (the start images and their classes), ``steps``, and per model ``images`` [E, N, C, H, W],
``hit`` [E, N] and ``logp`` [E + 1, N] for the N = images × classes pairs, image by image.

Stable CSS classes: ``advlib-synthesis`` (the whole box), ``advlib-synthesis-eps``,
``advlib-synthesis-start``, ``advlib-synthesis-image`` (the start image), ``advlib-synthesis-info``
(the summary); per model a box ``advlib-synthesis-model`` holding one ``advlib-synthesis-target``
image per class.
"""

from __future__ import annotations

import ipywidgets as W
import torch

from ..config import CIFAR10_CLASSES
from .common import Displayable, esc, tag, to_png


class SynthesisSlider(Displayable):
    """Step through precomputed large-ε targeted attacks. End a cell with it.

    Controls: ``eps`` (an index into ``result["eps"]``) and ``start`` (the start image);
    ``render()`` redraws; ``shown()`` is {model: [the ten images shown]}."""

    def __init__(self, result: dict, *, classes=CIFAR10_CLASSES, scale: int = 3):
        self.result, self.classes, self.scale = result, tuple(classes), scale
        self.models = list(result["models"])
        if not self.models:
            raise ValueError("SynthesisSlider: the result holds no model")
        n_eps, n_img = len(result["eps"]), int(result["n_images"])
        self.eps = tag(W.IntSlider(value=min(result.get("show_index", 0), n_eps - 1), min=0, max=n_eps - 1,
                                   description="ε index", readout=False, continuous_update=True),
                       "advlib-synthesis-eps")
        self.start = tag(W.IntSlider(value=0, min=0, max=max(n_img - 1, 0), description="start image",
                                     continuous_update=False), "advlib-synthesis-start")
        self.eps_label = W.HTML()
        blank = to_png(torch.full_like(result["start"][0], 0.9), scale)
        self.start_image = tag(W.Image(value=blank, format="png"), "advlib-synthesis-image")
        self.images = {m: [tag(W.Image(value=blank, format="png"), "advlib-synthesis-target")
                           for _ in self.classes] for m in self.models}
        self.captions = {m: [W.HTML() for _ in self.classes] for m in self.models}
        self.info = tag(W.HTML(), "advlib-synthesis-info")
        rows = []
        for m in self.models:
            cells = [W.VBox([self.images[m][c], self.captions[m][c]]) for c in range(len(self.classes))]
            rows.append(tag(W.VBox([W.HTML(f"<b>{esc(m)}</b>"), W.HBox(cells)]), "advlib-synthesis-model"))
        self.widget = tag(W.VBox([W.HBox([self.eps, self.eps_label]), self.start,
                                  W.HBox([self.start_image, self.info]), *rows]), "advlib-synthesis")
        self.eps.observe(self.render, names="value")
        self.start.observe(self.render, names="value")
        self.render()

    def shown(self) -> dict:
        k, i, nc = int(self.eps.value), int(self.start.value), len(self.classes)
        return {m: [self.result["models"][m]["images"][k, i * nc + c] for c in range(nc)] for m in self.models}

    def render(self, change=None) -> None:
        k, i, nc = int(self.eps.value), int(self.start.value), len(self.classes)
        eps = self.result["eps"][k]
        self.eps_label.value = f"L2 ε = <b>{eps:g}</b> ({self.result['steps']} steps)"
        self.start_image.value = to_png(self.result["start"][i], self.scale)
        parts = []
        for m, imgs in self.shown().items():
            r = self.result["models"][m]
            for c, img in enumerate(imgs):
                j = i * nc + c
                self.images[m][c].value = to_png(img, self.scale)
                p = float(r["logp"][k + 1, j].exp())
                mark = "✓" if bool(r["hit"][k, j]) else "·"
                self.captions[m][c].value = (f"<span style='font-size: 80%'>{mark} {esc(self.classes[c])} "
                                             f"{p:.0%}</span>")
            here = int(r["hit"][k, i * nc:(i + 1) * nc].sum())
            parts.append(f"{esc(m)} reaches {here}/{nc} targets ({float(r['hit'][k].float().mean()):.0%} over all "
                         "start images)")
        label = self.classes[int(self.result["labels"][i])]
        self.info.value = (f"start image #{i}: <b>{esc(label)}</b>; at ε = {eps:g} " + "; ".join(parts) +
                           ". ✓: the model predicts the column's class (with the target's probability).")


__all__ = ["SynthesisSlider"]
