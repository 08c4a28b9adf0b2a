"""The two constructions of Section 3 (Ilyas et al. 2019) as pure functions of tensors: no files,
no profile (:mod:`advlib.construct` adds the shards, the resume and the settings).

- :func:`build_robust_set` (D_R with a robust model, D_NR with a standard one): for each training
  pair (x, y), start from a *different*, randomly chosen training image (the start image) and
  descend ||g(x_r) - g(x)||_2 with normalized-gradient L2 steps
  (``advlib.attacks.invert_representation``); keep the label y.
- :func:`build_targeted_set` (D_rand, D_det, the D_other control): targeted L2 PGD toward t,
  relabelled as t (``norm="linf"``: the same in the L∞ ball); :func:`choose_targets` draws t.
"""

from __future__ import annotations

import contextlib
import math

import torch

from .attacks import eval_mode, feature_fn, invert_representation, pgd, representation_distance
from .models import infer_num_classes
from .utils import model_device

INVERT_EPS = 1000.0  # L2 ball around the start image for inversion (paper: 1000, i.e. unconstrained)
LOSS_POINTS = 100  # at most ~this many logged points of the matching-loss curve


def other_indices(source_indices: torch.Tensor, pool_size: int, generator: torch.Generator) -> torch.Tensor:
    """For each source index, a uniformly random index of the pool that is never the same one."""
    if pool_size < 2:
        raise ValueError(f"representation matching needs >= 2 training images to pick a different start, got {pool_size}")
    offset = torch.randint(1, pool_size, source_indices.shape, generator=generator)
    out = (source_indices + offset) % pool_size
    assert not (out == source_indices).any(), "start index equals source index"
    return out


TARGET_RULES = ("rand", "det", "other")


def choose_targets(labels: torch.Tensor, rule: str, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Target classes: ``"rand"`` uniform over all classes (t may equal y, as the paper samples),
    ``"det"`` (y + 1) mod k, ``"other"`` uniform over the k - 1 classes other than y (never y: the
    D_other control)."""
    if rule == "rand":
        return torch.randint(0, num_classes, labels.shape, generator=generator)
    if rule == "det":
        return (labels + 1) % num_classes
    if rule == "other":
        return (labels + torch.randint(1, num_classes, labels.shape, generator=generator)) % num_classes
    raise ValueError(f"target rule must be one of {TARGET_RULES}, got {rule!r}")


def autocast_for(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; a no-op context everywhere else (CPU always runs fp32)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def num_classes_of(model, images: torch.Tensor) -> int:
    """The width of the model's output (``advlib.models.infer_num_classes``): never assumed."""
    return infer_num_classes(model, images)


def _batches(n: int, batch_size: int):
    for lo in range(0, n, batch_size):
        yield lo, min(n, lo + batch_size)


def _as_index(indices, n: int) -> torch.Tensor:
    idx = torch.arange(n) if indices is None else torch.as_tensor(indices, dtype=torch.int64).cpu()
    if idx.numel() and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n}), got range [{idx.min().item()}, {idx.max().item()}]")
    return idx


def _log_steps(steps: int, log_points: int) -> tuple[int, list[int]]:
    every = max(1, math.ceil(steps / max(1, log_points)))
    return every, list(range(0, steps, every)) + [steps]



def build_robust_set(model, images, labels, *, steps: int, step_size: float, seed: int = 0, indices=None,
                     generator: torch.Generator | None = None, batch_size: int = 500, eps: float = INVERT_EPS,
                     amp: bool = False, log_points: int = LOSS_POINTS, pbar=None, features=None,
                     schedule: str = "constant") -> dict:
    """Representation matching (D_R with a robust ``model``, D_NR with a standard one).

    Works with any model: ``features`` is None (``model.features``, the penultimate layer of every
    advlib model), a function ``x -> representation``, or the name of a layer whose output is
    captured with a forward hook (``advlib.attacks.feature_fn``).

    images: the training pool, float NCHW in [0,1]; labels: int64. For each row i of ``indices``
    (default: every image) the target is images[i] and the start is images[j] for a random
    j != i of the pool. Returns a dict of CPU tensors: ``images`` (x_r), ``labels`` (labels[i]),
    ``source_indices`` (i), ``start_indices`` (j), ``rel_distance`` (||g(x_r)-g(x)|| / ||g(x)||),
    ``agree`` (the model predicts the label on x_r), and the mean matching loss ``loss_curve``
    logged at ``loss_steps``.
    """
    feature_fn(model, features)  # a model without a representation fails here, before any work
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    device = model_device(model)
    src = _as_index(indices, len(images))
    start = other_indices(src, len(images), gen)
    every, loss_steps = _log_steps(steps, log_points)
    out_x, rel, agree = [], [], []
    curve = torch.zeros(len(loss_steps), dtype=torch.float64)
    with eval_mode(model):
        for lo, hi in _batches(len(src), batch_size):
            x_t = images[src[lo:hi]].to(device, torch.float32)
            x_0 = images[start[lo:hi]].to(device, torch.float32)
            y = labels[src[lo:hi]].to(device)
            with autocast_for(device, amp):
                x_r, losses = invert_representation(model, x_t, x_0, steps=steps, step_size=step_size, eps=eps,
                                                    log_every=every, features=features, schedule=schedule)
                d = representation_distance(model, x_r, x_t, relative=True, features=features)
                with torch.no_grad():
                    pred = model(x_r).argmax(1)
            curve += torch.tensor(losses, dtype=torch.float64) * (hi - lo)
            out_x.append(x_r.float().cpu())
            rel.append(d.float().cpu())
            agree.append((pred == y).cpu())
            if pbar is not None:
                pbar.update(hi - lo)
    n = len(src)
    return {
        "images": torch.cat(out_x) if out_x else images[:0].float().cpu(),
        "labels": labels[src].cpu(),
        "source_indices": src,
        "start_indices": start,
        "rel_distance": torch.cat(rel) if rel else torch.zeros(0),
        "agree": torch.cat(agree) if agree else torch.zeros(0, dtype=torch.bool),
        "loss_curve": (curve / max(n, 1)).tolist(),
        "loss_steps": loss_steps,
    }


def build_targeted_set(model, images, labels, *, rule: str, eps: float, step_size: float, steps: int,
                       restarts: int = 1, random_start: bool | None = None, seed: int = 0, indices=None,
                       generator: torch.Generator | None = None, batch_size: int = 500, amp: bool = False,
                       num_classes: int | None = None, keep_only_hits: bool = False, pbar=None,
                       norm: str = "l2") -> dict:
    """Targeted PGD toward t (D_rand: ``rule="rand"``, D_det: ``rule="det"``, the D_other control:
    ``rule="other"``), relabelled as t, in the ``norm`` ball of radius ``eps`` ("l2", the paper's, or
    "linf": notebook 10's L∞ sets).

    Returns CPU tensors: ``images`` (x_adv), ``labels`` (= ``targets``), ``source_indices``,
    ``orig_labels`` (y), ``hit`` (argmax of the model on x_adv == t); with ``keep_only_hits`` the
    misses are dropped from every per-row entry (a deviation from the paper), while ``n_attacked``
    / ``n_hit`` / ``n_target_is_label`` count all attacked rows. ``random_start`` defaults to
    ``restarts > 1`` (the robustness library starts from x unless restarts are asked for).
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    device = model_device(model)
    k = num_classes or num_classes_of(model, images)
    src = _as_index(indices, len(images))
    y_all = labels[src].cpu()
    t_all = choose_targets(y_all, rule, k, gen)
    rs = restarts > 1 if random_start is None else random_start
    out_x, hit = [], []
    with eval_mode(model):
        for lo, hi in _batches(len(src), batch_size):
            x = images[src[lo:hi]].to(device, torch.float32)
            t = t_all[lo:hi].to(device)
            with autocast_for(device, amp):
                x_adv = pgd(model, x, t, norm=norm, eps=eps, step_size=step_size, steps=steps, targeted=True,
                            random_start=rs, restarts=restarts, generator=gen)
                with torch.no_grad():
                    pred = model(x_adv).argmax(1)
            out_x.append(x_adv.float().cpu())
            hit.append((pred == t).cpu())
            if pbar is not None:
                pbar.update(hi - lo)
    x_all = torch.cat(out_x) if out_x else images[:0].float().cpu()
    hit_all = torch.cat(hit) if hit else torch.zeros(0, dtype=torch.bool)
    keep = hit_all if keep_only_hits else torch.ones_like(hit_all)
    return {
        "images": x_all[keep],
        "labels": t_all[keep],
        "targets": t_all[keep],
        "orig_labels": y_all[keep],
        "source_indices": src[keep],
        "hit": hit_all[keep],
        "n_attacked": len(src),
        "n_hit": int(hit_all.sum()),
        "n_target_is_label": int((t_all == y_all).sum()),
    }


__all__ = ["INVERT_EPS", "LOSS_POINTS", "TARGET_RULES", "other_indices", "choose_targets", "autocast_for",
           "num_classes_of", "build_robust_set", "build_targeted_set"]
