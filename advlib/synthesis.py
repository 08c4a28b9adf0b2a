"""Large-ε targeted L2 attacks: what a model's gradients paint into an image (notebook 10, part 2).

A targeted attack far beyond the usual radius shows what moves a model toward a class. On a robust
model it paints the target class as a person sees it (Santurkar et al. 2019, *Image Synthesis with a
Single (Robust) Classifier*; Engstrom et al. 2019, *Adversarial Robustness as a Prior for Learned
Representations*); on a standard model it stays noise that only the model reads as the class.

:func:`synthesize` runs the attack at each radius of a list, from the smallest up: each radius starts
where the one below ended (a point inside its larger ball) and keeps, per image, the best point it
visited, the start included. So the target's log-probability never falls as ε grows. Normalized-
gradient L2 steps of 2.5 ε / steps on the target's log-probability, projected onto the ball around
the start image and onto [0, 1] (``advlib.attacks``' L2 threat model). The model runs in eval mode
with frozen weights, on the BatchNorm-folded view the attacks use; images are float NCHW in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attacks import eval_mode, folded, frozen_params, l2_project, l2_step
from .utils import model_device


def all_targets(n_images: int, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image toward every class: (image index, target), image by image (``[0,0,…,1,1,…]``,
    ``[0,1,…,9,0,1,…]``), so that row i of a grid is image i and column c target c."""
    rows = torch.arange(n_images).repeat_interleave(num_classes)
    return rows, torch.arange(num_classes).repeat(n_images)


@torch.no_grad()
def target_scores(model, x: torch.Tensor, targets: torch.Tensor, batch_size: int = 500) -> dict:
    """Per image: the target's logit and log-probability, and the predicted class (float32, eval mode)."""
    device = model_device(model)
    logit, logp, pred = [], [], []
    with eval_mode(model):
        net = folded(model)
        for lo in range(0, len(x), batch_size):
            out = net(x[lo:lo + batch_size].to(device, torch.float32)).float()
            t = targets[lo:lo + batch_size].to(device)
            logit.append(out.gather(1, t[:, None])[:, 0].cpu())
            logp.append(out.log_softmax(1).gather(1, t[:, None])[:, 0].cpu())
            pred.append(out.argmax(1).cpu())
    return {"logit": torch.cat(logit), "logp": torch.cat(logp), "pred": torch.cat(pred)}


def _ascend(net, x0, start, t, eps: float, steps: int):
    """Best point (highest target log-probability) of ``steps`` L2 steps from ``start`` in the ball
    of radius ``eps`` around ``x0``; ``start`` itself is a candidate."""
    step = 2.5 * eps / steps
    x = start.clone()
    with torch.no_grad():
        best, best_lp = start.clone(), F.log_softmax(net(start).float(), 1).gather(1, t[:, None])[:, 0]
    for _ in range(steps):
        x.requires_grad_(True)
        lp = F.log_softmax(net(x).float(), 1).gather(1, t[:, None])[:, 0]
        (grad,) = torch.autograd.grad(lp.sum(), x)
        with torch.no_grad():
            better = lp.detach() > best_lp
            best[better], best_lp[better] = x.detach()[better], lp.detach()[better]
            x = l2_project(l2_step(x.detach(), grad, step), x0, eps)
    with torch.no_grad():
        lp = F.log_softmax(net(x).float(), 1).gather(1, t[:, None])[:, 0]
        better = lp > best_lp
        best[better] = x[better]
    return best


def synthesize(model, images: torch.Tensor, targets: torch.Tensor, eps_list, *, steps: int,
               batch_size: int = 500) -> dict:
    """Large-ε targeted L2 attacks of ``images`` toward ``targets`` at each radius of ``eps_list``.

    Returns CPU tensors: ``eps`` (the radii, ascending), ``images`` [E, N, C, H, W] (the attacked
    images per radius), ``logit`` / ``logp`` [E + 1, N] (the target's logit and log-probability, at
    ε = 0 first), ``pred`` [E + 1, N] and ``hit`` [E, N] (the model predicts the target)."""
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    eps = sorted(float(e) for e in eps_list)
    if not eps or eps[0] <= 0:
        raise ValueError(f"eps_list must hold positive radii, got {list(eps_list)}")
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    device = model_device(model)
    out = torch.empty((len(eps), *images.shape), dtype=torch.float32)
    with eval_mode(model), frozen_params(model), torch.enable_grad():
        net = folded(model)
        for lo in range(0, len(images), batch_size):
            x0 = images[lo:lo + batch_size].to(device, torch.float32).contiguous(memory_format=torch.channels_last)
            t = targets[lo:lo + batch_size].to(device)
            x = x0
            for k, e in enumerate(eps):
                x = _ascend(net, x0, x, t, e, steps)
                out[k, lo:lo + len(t)] = x.detach().float().cpu()
    scores = [target_scores(model, images, targets, batch_size)] + [
        target_scores(model, out[k], targets, batch_size) for k in range(len(eps))]
    pred = torch.stack([s["pred"] for s in scores])
    return {"eps": eps, "images": out, "logit": torch.stack([s["logit"] for s in scores]),
            "logp": torch.stack([s["logp"] for s in scores]), "pred": pred, "hit": pred[1:] == targets[None]}


__all__ = ["all_targets", "target_scores", "synthesize"]
