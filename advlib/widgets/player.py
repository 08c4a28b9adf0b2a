"""The construction player: step through the D_R / D_NR representation matching of one training image.

``ConstructionPlayer({"D_R": robust_model, "D_NR": standard_model}, train_images, train_labels)`` ends
a cell and shows: an index slider picking the training image x whose representation is matched, and
the start image it is matched from (a training image of another class, chosen with a seeded generator
per index, as :mod:`advlib.construct` does for the sets); a step slider (and a play button) over the
saved trajectory; per model the image x_t at that step, the change from the start x_t − x_start
(magnified by one factor over the whole trajectory, so the start visibly fades into new features),
the feature distance ||g(x_t) − g(x)||₂ as a small curve with a marker at the step, and what the model
predicts on x_t.

Each trajectory is computed once per image choice (:func:`advlib.attacks.invert_representation` with
``snapshots``) and cached; the step slider only indexes the saved snapshots.

Stable CSS classes: ``advlib-construction-player`` (the whole box), ``advlib-index``, ``advlib-step``,
``advlib-play``, ``advlib-player-target``, ``advlib-player-start``, ``advlib-player-summary``; per
model a box ``advlib-player-model`` holding ``advlib-player-image``, ``advlib-player-fade``,
``advlib-player-curve`` and ``advlib-player-info``.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import ipywidgets as W
import torch

from .. import attacks
from ..config import CIFAR10_CLASSES
from ..utils import model_device
from .common import Curve, Displayable, class_name, esc, magnification, predict, tag, to_png


def start_index(labels: torch.Tensor, row: int, seed: int = 0) -> int:
    """A training image of another class than ``labels[row]`` (any other image if there is none),
    drawn with a generator seeded by (seed, row): the same choice every time."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + row)
    others = torch.nonzero(labels != labels[row]).flatten()
    if not len(others):
        others = torch.tensor([i for i in range(len(labels)) if i != row], dtype=torch.long)
    if not len(others):
        raise ValueError("ConstructionPlayer: representation matching needs >= 2 images")
    return int(others[torch.randint(len(others), (1,), generator=g)])


class ConstructionPlayer(Displayable):
    """Step through the representation-matching trajectory of one image per model. End a cell with it.

    models: name -> model whose penultimate layer is matched (the notebook passes
        ``{"D_R": robust_model, "D_NR": standard_model}``); images, labels: the training images (float
        NCHW in [0,1]) and labels.
    steps / step_size / eps / schedule / features: the descent (``invert_representation``'s; the cpu
        profile's 50 steps of 0.3 by default); snapshots: how many snapshots besides the start
        (default ``steps``: every step); seed: picks each image's start image.

    Controls: ``index`` (the image) and ``step`` (the snapshot; ``play`` runs it). ``trajectory(row)``
    is the cached run per model; ``runs`` counts the descents actually computed.
    """

    def __init__(self, models: dict, images, labels, *, steps: int = 50, step_size: float = 0.3,
                 classes=CIFAR10_CLASSES, snapshots: int | None = None, seed: int = 0, eps: float = 1000.0,
                 schedule: str = "constant", features=None, scale: int = 5, cache_size: int = 16):
        if not models:
            raise ValueError("ConstructionPlayer: no models given")
        self.models = dict(models)
        self.images = torch.as_tensor(images).detach().float().cpu()
        self.labels = torch.as_tensor(labels).long().cpu()
        if self.images.dim() != 4 or len(self.images) != len(self.labels) or len(self.labels) < 2:
            raise ValueError(f"ConstructionPlayer: expected images [N,C,H,W] and N >= 2 labels, got "
                             f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}")
        self.class_names, self.scale, self.seed = tuple(classes), scale, seed
        self.descent = dict(steps=steps, step_size=step_size, eps=eps, schedule=schedule, features=features,
                            snapshots=steps if snapshots is None else snapshots)
        self._cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        self.runs = 0  # descents computed (one per model and image not in the cache)
        self.seconds = 0.0  # how long the latest render took (a new image: with its descents)

        n_snap = min(self.descent["snapshots"], steps)
        self.index = tag(W.IntSlider(value=0, min=0, max=len(self.labels) - 1, description="image",
                                     continuous_update=False), "advlib-index")
        self.step = tag(W.IntSlider(value=0, min=0, max=n_snap, description="snapshot", continuous_update=True),
                        "advlib-step")
        self.play = tag(W.Play(value=0, min=0, max=n_snap, interval=150, description="play"), "advlib-play")
        W.jslink((self.play, "value"), (self.step, "value"))
        h, w = self.images.shape[-2] * scale, self.images.shape[-1] * scale
        blank = to_png(torch.full_like(self.images[0], 0.9), scale)
        img = lambda css: tag(W.Image(value=blank, format="png", width=w, height=h), css)  # noqa: E731
        cell = W.Layout(width=f"{w + 12}px")
        self.target_image, self.start_image = img("advlib-player-target"), img("advlib-player-start")
        self.captions = [W.HTML(), W.HTML()]
        self.current = {n: img("advlib-player-image") for n in self.models}
        self.fade = {n: img("advlib-player-fade") for n in self.models}
        self.curve = {n: tag(W.Image(value=b"", format="png"), "advlib-player-curve") for n in self.models}
        self.info = {n: tag(W.HTML(), "advlib-player-info") for n in self.models}
        self.summary = tag(W.HTML(), "advlib-player-summary")
        top = W.HBox([W.VBox([self.captions[0], self.target_image], layout=cell),
                      W.VBox([self.captions[1], self.start_image], layout=cell), self.summary])
        rows = []
        for n in self.models:
            rows.append(tag(W.HBox([
                W.VBox([W.HTML(f"<b>{esc(n)}</b>: x_t"), self.current[n]], layout=cell),
                W.VBox([W.HTML("x_t − x_start"), self.fade[n]], layout=cell),
                self.curve[n], self.info[n]]), "advlib-player-model"))
        self.widget = tag(W.VBox([self.index, W.HBox([self.play, self.step]), top, *rows]),
                          "advlib-construction-player")
        self.index.observe(self.render, names="value")
        self.step.observe(self.render, names="value")
        self.render()

    # -- the descent -----------------------------------------------------------------------------
    def trajectory(self, row: int) -> dict:
        """Per model: ``steps``, ``images`` [k+1,C,H,W], ``distance`` [k+1], ``pred`` / ``conf`` [k+1]
        on each snapshot, ``target_norm`` ||g(x)||, ``magnify`` (the fade's factor), ``curve`` (the
        distance plot, :class:`~advlib.widgets.common.Curve`); plus ``start``
        (the start image's index). Computed on first use, then from the cache."""
        if row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row]
        start = start_index(self.labels, row, self.seed)
        out = {"start": start, "models": {}}
        x_t, x_0 = self.images[row:row + 1], self.images[start:start + 1]
        for name, model in self.models.items():
            dev = model_device(model)
            _, _, snaps = attacks.invert_representation(model, x_t.to(dev), x_0.to(dev), **self.descent)
            self.runs += 1
            ims = snaps["images"][:, 0]
            pred, conf = predict(model, ims)
            g = attacks.feature_fn(model, self.descent["features"])
            with attacks.eval_mode(model), torch.no_grad():
                norm = float(g(x_t.to(dev)).float().norm())
            dist = snaps["distance"][:, 0]
            out["models"][name] = {"steps": snaps["steps"], "images": ims, "distance": dist,
                                   "pred": pred, "conf": conf, "target_norm": norm,
                                   "magnify": magnification([ims - x_0[0]]),
                                   "curve": Curve(snaps["steps"], dist.tolist(), ylabel="feature distance")}
        self._cache[row] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    # -- drawing ---------------------------------------------------------------------------------
    def _cname(self, y) -> str:
        return class_name(self.class_names, y)

    def render(self, change=None) -> None:
        t0 = time.perf_counter()
        row = int(self.index.value)
        tr = self.trajectory(row)
        start, s = tr["start"], int(self.step.value)
        x_0 = self.images[start]
        self.target_image.value = to_png(self.images[row], self.scale)
        self.start_image.value = to_png(x_0, self.scale)
        self.captions[0].value = f"target: #{row} <b>{esc(self._cname(self.labels[row]))}</b>"
        self.captions[1].value = f"start: #{start} <b>{esc(self._cname(self.labels[start]))}</b>"
        for name, m in tr["models"].items():
            k = min(s, len(m["steps"]) - 1)
            x_s, d = m["images"][k], m["distance"]
            self.current[name].value = to_png(x_s, self.scale)
            self.fade[name].value = to_png(0.5 + m["magnify"] * (x_s - x_0), self.scale)
            self.curve[name].value = m["curve"].png(k)
            rel = float(d[k]) / max(m["target_norm"], 1e-12)
            self.info[name].value = (
                f"step <b>{m['steps'][k]}</b> of {m['steps'][-1]}<br>"
                f"‖g(x_t) − g(x)‖₂ = <b>{float(d[k]):.4f}</b> (relative {rel:.4f}); at the start {float(d[0]):.4f}, "
                f"at the end {float(d[-1]):.4f}<br>‖x_t − x_start‖₂ = {float((x_s - x_0).norm()):.3f} "
                f"(shown ×{m['magnify']:.3g})<br>the model predicts <b>{esc(self._cname(m['pred'][k]))}</b> "
                f"({float(m['conf'][k]):.0%}) on x_t")
        self.seconds = time.perf_counter() - t0
        d = self.descent
        self.summary.value = (
            f"Representation matching of #{row}'s penultimate layer g, from #{start} (another class, seed "
            f"{self.seed}): {d['steps']} normalized-gradient L2 steps of {d['step_size']:g} "
            f"({esc(d['schedule'])}), {len(next(iter(tr['models'].values()))['steps'])} snapshots kept. "
            f"<span style='color: #888'>({self.seconds * 1000:.0f} ms)</span>")
