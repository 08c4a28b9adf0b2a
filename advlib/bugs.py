"""Adversarial examples that are "just bugs" (Nakkiran 2019, Distill, response 5; notebook 10, part 3).

An ordinary targeted example of the source model plants features that other models read as the
target too (it transfers). Nakkiran's construction keeps only what is specific to the source: a
targeted example that flips the source model toward t while an ensemble of independently trained
models keeps predicting, on x', exactly what each predicted on x. Such an example carries no feature
the ensemble shares, so a D_det built from them should teach (near) nothing about the true labels.

:func:`just_bugs_examples` descends ``CE(source(x'), t) + weight · mean_k CE(f_k(x'), p_k)``, p_k =
f_k's prediction on x, with normalized-gradient steps projected onto the ``norm`` ball around x and
[0, 1] (``advlib.attacks``' threat models). Per example it keeps the best point it visited: first
one where the source predicts t and every member still predicts p_k, then, among the points that
leave the ensemble unchanged, the one with the lowest source loss. x itself leaves the ensemble
unchanged, so every returned example does (a miss keeps the point that got closest). Models run in
eval mode with frozen weights, on the BatchNorm-folded views the attacks use.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .attacks import eval_mode, folded, frozen_params, threat_model
from .utils import model_device


@torch.no_grad()
def predictions(models, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """[K, N]: each model's predicted class on ``x`` (float32, eval mode), on the CPU."""
    out = []
    for m in models:
        device = model_device(m)
        with eval_mode(m):
            net = folded(m)
            out.append(torch.cat([net(x[lo:lo + batch_size].to(device, torch.float32)).argmax(1).cpu()
                                  for lo in range(0, len(x), batch_size)]))
    return torch.stack(out) if out else torch.zeros(0, len(x), dtype=torch.int64)


def unchanged(models, x_adv: torch.Tensor, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Per example: does every model predict on ``x_adv`` what it predicts on ``x``?"""
    return (predictions(models, x_adv, batch_size) == predictions(models, x, batch_size)).all(0)


def _losses(source, members, x, t, p):
    """Per example: the source's loss toward t, the ensemble's mean loss toward its own predictions,
    whether the source predicts t and whether every member still predicts p."""
    out = source(x).float()
    src = F.cross_entropy(out, t, reduction="none")
    hit = out.argmax(1) == t
    ens = torch.zeros_like(src)
    same = torch.ones_like(hit)
    for k, f in enumerate(members):
        o = f(x).float()
        ens = ens + F.cross_entropy(o, p[k], reduction="none") / max(len(members), 1)
        same &= o.argmax(1) == p[k]
    return src, ens, hit, same


def just_bugs_examples(source, ensemble, images: torch.Tensor, targets: torch.Tensor, *, eps: float,
                       steps: int, step_size: float, weight: float = 1.0, norm: str = "l2",
                       batch_size: int = 500) -> dict:
    """Targeted examples of ``source`` toward ``targets`` that leave every model of ``ensemble`` at its
    own prediction on the clean image (see the module docstring).

    Returns CPU tensors: ``images`` (x'), ``hit`` (the source predicts the target), ``unchanged``
    (every member predicts on x' what it predicted on x: true for every row by construction),
    ``ensemble_clean`` [K, N] (the members' predictions on x) and ``source_loss`` (the source's loss
    toward t at x')."""
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    tm = threat_model(norm)
    device = model_device(source)
    members = list(ensemble)
    clean = predictions(members, images, batch_size)
    xs, hits, losses = [], [], []
    with contextlib.ExitStack() as stack:
        for m in [source, *members]:
            stack.enter_context(eval_mode(m))
            stack.enter_context(frozen_params(m))
        src_net, nets = folded(source), [folded(m) for m in members]
        for lo in range(0, len(images), batch_size):
            x0 = images[lo:lo + batch_size].to(device, torch.float32).contiguous(memory_format=torch.channels_last)
            t = targets[lo:lo + batch_size].to(device)
            p = clean[:, lo:lo + batch_size].to(device)
            with torch.no_grad():
                s, _, h, same = _losses(src_net, nets, x0, t, p)
            best, rank, best_s = x0.clone(), (2 * (h & same) + same).long(), s
            x = x0.clone()
            for _ in range(steps + 1):
                with torch.enable_grad():
                    x.requires_grad_(True)
                    s, e, h, same = _losses(src_net, nets, x, t, p)
                    (grad,) = torch.autograd.grad((s + weight * e).sum(), x)
                with torch.no_grad():
                    r = (2 * (h & same) + same).long()
                    better = (r > rank) | ((r == rank) & (s.detach() < best_s))
                    best[better], rank[better], best_s[better] = x.detach()[better], r[better], s.detach()[better]
                    x = tm.project(tm.step(x.detach(), -grad, step_size), x0, eps)
            xs.append(best.float().cpu())
            hits.append((rank == 3).cpu())
            losses.append(best_s.cpu())
    x_adv = torch.cat(xs) if xs else images[:0].float()
    return {"images": x_adv, "hit": torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool),
            "unchanged": unchanged(members, x_adv, images, batch_size), "ensemble_clean": clean,
            "source_loss": torch.cat(losses) if losses else torch.zeros(0)}


__all__ = ["predictions", "unchanged", "just_bugs_examples"]
