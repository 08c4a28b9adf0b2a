"""The strongest attacks the suite runs: APGD-T and the standard AutoAttack (Croce & Hein 2020),
from torchattacks' components, on the model's BatchNorm-folded view.

PGD with the cross-entropy loss (``advlib.attacks.pgd``) can stop short of the nearest decision
boundary: it follows the gradient of a loss that mixes every wrong class, so it can overestimate
robust accuracy (on a linear model whose robust accuracy is known exactly, by about ten points
where the margins to the classes differ in scale; see the tests). APGD-T attacks each of the most
likely wrong classes in turn with the targeted DLR loss, which for a linear model walks straight
to that class's boundary.

- :func:`apgd_t_correct`: per image, does it survive APGD-T (``targets`` wrong classes, ``steps``
  iterations each)?
- :func:`autoattack_correct`: per image, does it survive the standard AutoAttack -- APGD-CE,
  APGD-T, FAB-T and Square (5000 queries), each on the images the earlier ones did not break? The
  components are torchattacks' own, at the original AutoAttack's settings (100 iterations, 9
  target classes, 1 restart); torchattacks' ``AutoAttack(version="standard")`` wires the same four
  with its default of 10 iterations, which is weaker, so it is not used as is.

Images in [0,1], NCHW, float32 (the caller turns autocast off); labels int64. Both keep
torchattacks' seeding (it seeds the global RNG) away from the caller's RNG, and leave the model's
mode as they found it.
"""

from __future__ import annotations

import torch

from .attacks import eval_mode, folded
from .utils import model_device

TA_NORM = {"l2": "L2", "linf": "Linf"}
STANDARD = {"steps": 100, "targets": 9, "queries": 5000}  # the original AutoAttack's standard version


def _norm(norm: str) -> str:
    if norm not in TA_NORM:
        raise ValueError(f"norm must be one of {tuple(TA_NORM)}, got {norm!r}")
    return TA_NORM[norm]


def _check(eps: float, steps: int, targets: int, num_classes: int) -> None:
    if eps <= 0:
        raise ValueError(f"eps must be > 0 for APGD / AutoAttack, got {eps}")
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    if not 1 <= targets <= num_classes - 1:
        raise ValueError(f"targets must be in [1, {num_classes - 1}] (the wrong classes of a {num_classes}-class "
                         f"model), got {targets}")


@torch.no_grad()
def _still_correct(net, x_adv, y) -> torch.Tensor:
    return net(x_adv).argmax(1) == y


def _run(model, x, y, make, seed: int) -> torch.Tensor:
    device = model_device(model)
    fork = [device] if device.type == "cuda" else []
    with eval_mode(model), torch.random.fork_rng(devices=fork):
        net = folded(model)  # the same function with BatchNorm folded into the convolutions: faster
        ok = _still_correct(net, x, y)
        if ok.any():
            idx = ok.nonzero().flatten()
            x_adv = make(net)(x[idx].contiguous(), y[idx])
            ok[idx] = _still_correct(net, x_adv, y[idx])
    return ok


def apgd_t_correct(model, x, y, *, eps: float, norm: str = "l2", steps: int = STANDARD["steps"],
                   targets: int = STANDARD["targets"], num_classes: int = 10, seed: int = 0) -> torch.Tensor:
    """Per image (bool, on the model's device): classified as ``y`` at ``x`` and after APGD-T
    (targeted DLR loss toward each of the ``targets`` most likely wrong classes, ``steps``
    iterations each, one restart) in the ``norm`` ball of radius ``eps``?"""
    _check(eps, steps, targets, num_classes)
    import torchattacks  # a runtime dependency, imported only when the attack runs

    tnorm = _norm(norm)

    def make(net):
        # torchattacks' APGDT attacks n_classes - 1 target classes (the most likely wrong ones first)
        return torchattacks.APGDT(net, norm=tnorm, eps=eps, steps=steps, n_restarts=1, n_classes=targets + 1,
                                  seed=seed)

    return _run(model, x, y, make, seed)


def autoattack_correct(model, x, y, *, eps: float, norm: str = "l2", steps: int = STANDARD["steps"],
                       targets: int = STANDARD["targets"], queries: int = STANDARD["queries"],
                       num_classes: int = 10, seed: int = 0) -> torch.Tensor:
    """Per image (bool, on the model's device): classified as ``y`` at ``x`` and after the standard
    AutoAttack (APGD-CE, APGD-T, FAB-T, Square with ``queries`` queries; ``steps`` iterations and
    ``targets`` target classes as the original's standard version) in the ``norm`` ball?"""
    _check(eps, steps, targets, num_classes)
    if queries <= 0:
        raise ValueError(f"queries must be > 0, got {queries}")
    import torchattacks

    tnorm = _norm(norm)

    def make(net):
        return torchattacks.MultiAttack([
            torchattacks.APGD(net, norm=tnorm, eps=eps, steps=steps, n_restarts=1, loss="ce", seed=seed),
            torchattacks.APGDT(net, norm=tnorm, eps=eps, steps=steps, n_restarts=1, n_classes=targets + 1, seed=seed),
            torchattacks.FAB(net, norm=tnorm, eps=eps, steps=steps, n_restarts=1, multi_targeted=True,
                             n_classes=targets + 1, seed=seed),
            torchattacks.Square(net, norm=tnorm, eps=eps, n_queries=queries, n_restarts=1, seed=seed),
        ])

    return _run(model, x, y, make, seed)


def describe(attack: str, *, steps: int, targets: int, queries: int = STANDARD["queries"], pgd_steps: int = 20,
             restarts: int = 1) -> str:
    """What an attack name runs, in words (tables and results.json name their attack with this)."""
    pgd = f"PGD-{pgd_steps} (cross-entropy, {restarts} restart{'s' if restarts > 1 else ''})"
    apgd = f"APGD-T ({targets} targets × {steps} iterations, DLR loss)"
    return {
        "pgd": pgd,
        "apgd-t": apgd,
        "worst": f"per-image worst case of {pgd} and {apgd}",
        "autoattack": f"AutoAttack, standard version (APGD-CE, APGD-T, FAB-T, Square {queries} queries; "
                      f"{steps} iterations, {targets} targets; torchattacks components)",
    }[attack]


__all__ = ["apgd_t_correct", "autoattack_correct", "describe", "STANDARD"]
