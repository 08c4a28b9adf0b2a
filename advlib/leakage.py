"""How much of D_rand / D_det is robust-feature leakage (Goh 2019, Distill, "Robust Feature Leakage";
notebook 10, part 4).

The paper reads a D_rand model's accuracy as non-robust features at work. But the targeted attack
may also move *robust* features of x a little toward the target class, and a model can learn those.
Goh's linear lower bound: fit a linear classifier on a robust model's features of the set's training
images with the set's (target) labels, and measure its accuracy on the true test labels. A linear
function of robust features can only use robust features; for D_rand, where t is independent of x,
robust features of x alone carry nothing about t, so what the probe gets above chance was planted by
the attack (Goh, ResNet-50: 23.5% for D_rand, whose model reaches 88%; for D_det none found: there
the probe learns y -> y + 1 from x's own robust features and falls below chance).

- :func:`features`: a model's penultimate representation ``model.features`` (float32, eval mode).
- :func:`fit_probe`: multinomial logistic regression on standardized features (L-BFGS, an L2
  penalty), deterministic; a :class:`LinearProbe` predicts classes.
- :func:`leakage_estimate`: the probe's accuracy beside the set's, in points above chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .attacks import eval_mode, feature_fn, folded
from .utils import model_device

CHANCE = 0.10


@torch.no_grad()
def features(model, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """[N, D]: ``model.features`` (the penultimate layer) of ``images``, float32 on the CPU."""
    device = model_device(model)
    with eval_mode(model):
        g = feature_fn(folded(model))
        return torch.cat([g(images[lo:lo + batch_size].to(device, torch.float32)).float().cpu()
                          for lo in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0, 0)


@dataclass
class LinearProbe:
    """softmax(W · (f - mean) / std + b): a linear classifier on standardized features."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # [classes, D]
    bias: torch.Tensor  # [classes]
    train_acc: float  # on the labels it was fitted to

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return ((feats.float() - self.mean) / self.std) @ self.weight.T + self.bias

    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        return self.logits(feats).argmax(1)


def fit_probe(feats: torch.Tensor, labels: torch.Tensor, *, num_classes: int = 10, steps: int = 200,
              weight_decay: float = 1e-4) -> LinearProbe:
    """Multinomial logistic regression of ``labels`` on ``feats`` (standardized per dimension), by
    full-batch L-BFGS from zero weights for ``steps`` iterations, with ``weight_decay`` · ||W||²."""
    if feats.dim() != 2 or len(feats) != len(labels) or len(feats) == 0:
        raise ValueError(f"fit_probe: features [N, D] and N labels expected, got {tuple(feats.shape)} and "
                         f"{tuple(labels.shape)}")
    f = feats.double()
    mean, std = f.mean(0), f.std(0).clamp_min(1e-6)
    z = (f - mean) / std
    y = labels.long()
    w = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    probe = LinearProbe(mean.float(), std.float(), w.detach().float(), b.detach().float(), 0.0)
    probe.train_acc = float((probe.predict(feats) == y).float().mean())
    return probe


def leakage_estimate(probe_acc: float, set_acc: float, chance: float = CHANCE) -> dict:
    """The probe's accuracy on the true test labels beside the accuracy of a model trained on the set,
    in points above chance. ``explained``: the probe's points above chance, at least 0 and at most the
    set's own points above chance (a part of the set's accuracy cannot exceed it); ``share``: that
    part of the set's points above chance (None when the set is not above chance). A lower bound on
    leakage: another classifier of the same robust features (not linear) could explain more."""
    above = max(0.0, float(set_acc) - chance)
    explained = min(max(0.0, float(probe_acc) - chance), above)
    return {"probe_acc": float(probe_acc), "set_acc": float(set_acc), "chance": chance,
            "probe_points": round(100 * (float(probe_acc) - chance), 2), "explained": explained,
            "share": explained / above if above > 0 else None}


__all__ = ["features", "LinearProbe", "fit_probe", "leakage_estimate", "CHANCE"]
