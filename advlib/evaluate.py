"""Clean and robust accuracy, nested eps sweeps, and everything results.json records of one model.

Every function takes images in [0,1] (NCHW float; uint8 is accepted and divided by 255), runs
the model on the device its parameters are on, in eval mode, and leaves the model's mode as it
found it. ``robust_accuracy(attack=...)`` runs PGD with the cross-entropy loss
(:func:`advlib.attacks.pgd`), APGD-T, their per-image worst case, or the standard AutoAttack
(:mod:`advlib.strong`); PGD's random starts are drawn per batch from a generator seeded by
(seed, batch index), so the same call gives the same number.

Under torchrun (a process group with several ranks, see :mod:`advlib.dist`) ``accuracy`` and
``robust_accuracy`` split the work: each rank takes a contiguous range of whole batches and the
per-image outcomes are gathered, so every rank gets the number a single process computes. Every
rank must then make the same call (``shard=False`` computes everything on each rank instead).

Numbers a reviewer accepts: every attack runs and every prediction is checked in float32
(``eval_dtype``), even inside a caller's autocast; clean and robust accuracy come from the same
images; the headline is the strongest attack run ("worst"), PGD alone stands beside it, and the
standard AutoAttack cross-checks it on part of the images; the per-image outcomes are kept
(``masks``), so comparisons between models are paired and carry an interval
(:mod:`advlib.stats`, :mod:`advlib.claims`). The record itself: :mod:`advlib.results`.
"""

from __future__ import annotations

import contextlib
import math

import torch

from . import dist, strong
from .attacks import eval_mode, folded, pgd, threat_model
from .config import ATTACKS
from .utils import Timer, device_name, model_device, wilson_interval

EVAL_DTYPE = "float32"  # every evaluation, whatever autocast the caller runs under


def eps_key(eps: float) -> str:
    """The key an L2 radius gets in result dicts: 0.25 -> "0.25", 1 -> "1.0"."""
    return str(float(eps))


def _check_xy(x, y):
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a [N,C,H,W] tensor, got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be a 1-D tensor with one label per image ({x.shape[0]}), "
                         f"got {getattr(y, 'shape', type(y))}")
    if x.shape[0] == 0:
        raise ValueError("x is empty: accuracy of no images is undefined")


def _my_batches(n: int, batch_size: int, shard: bool | None) -> tuple[range, bool]:
    """Indices of the batches this process evaluates, and whether counts must be summed over ranks.

    shard None (auto) or True: under a process group with several ranks, a contiguous range of
    whole batches (whole batches keep each batch's computation, and its random starts, exactly
    as in one process); otherwise all of them."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    n_batches = math.ceil(n / batch_size)
    world = dist.world_size()
    if shard is False or world == 1:
        return range(n_batches), False
    lo, hi = dist.shard_range(n_batches, dist.rank(), world)
    return range(lo, hi), True


def _batches(x, y, batch_size, device, which):
    for k in which:
        i = k * batch_size
        xb = x[i:i + batch_size].to(device)
        xb = xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float()
        yield k, xb.contiguous(memory_format=torch.channels_last), y[i:i + batch_size].to(device)  # NHWC: faster


def fp32(device) -> contextlib.AbstractContextManager:
    """Turn off any autocast the caller may run under, so attacks and predictions are float32."""
    device = torch.device(device)
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """The CPU generator that draws the random starts of batch ``batch`` in robust_accuracy."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(batch)) % 2**63)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
             shard: bool | None = None) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y`` (in [0,1]); ``shard`` as in :func:`correct_mask`."""
    return int(correct_mask(model, x, y, batch_size=batch_size, shard=shard).sum()) / x.shape[0]


SWEEP = "nested"  # how evaluate_model attacks the radii of a sweep: see nested_robust_accuracy


def correct_mask(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
                 shard: bool | None = None) -> torch.Tensor:
    """Per image (CPU bool tensor, one entry per image of ``x``): does ``model`` classify it as ``y``?

    ``shard``: None/True split the batches over the ranks of a torch.distributed run (every rank
    must call, and every rank gets the whole mask; no effect in a single process); False
    evaluates everything here."""
    _check_xy(x, y)
    device = model_device(model)
    which, summed = _my_batches(x.shape[0], batch_size, shard)
    parts = []
    with eval_mode(model), torch.no_grad(), fp32(device):
        net = folded(model)
        for _, xb, yb in _batches(x, y, batch_size, device, which):
            parts.append(net(xb).argmax(1) == yb)
    return _gathered(parts, summed, device)


def _gathered(parts: list[torch.Tensor], summed: bool, device) -> torch.Tensor:
    """This rank's per-batch masks joined; under sharding, every rank's joined in rank order (the
    ranks hold contiguous ranges of whole batches, so that is the order of the images)."""
    mine = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool, device=device)
    if summed:
        mine = torch.cat(dist.all_gather_tensors(mine.to(torch.uint8))).bool()
    return mine.cpu()




def _check_attack(attack: str) -> None:
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")


def robust_correct(model, x, y, *, norm: str = "l2", eps: float, steps: int = 20, step_size: float | None = None,
                   restarts: int = 1, batch_size: int = 500, generator: torch.Generator | None = None,
                   seed: int = 0, shard: bool | None = None, attack: str = "pgd", apgd_steps: int = 100,
                   targets: int = 9) -> torch.Tensor:
    """Per image (CPU bool tensor): is it still classified as ``y`` under ``attack`` in the
    ``norm`` ball of radius ``eps``? Arguments as in :func:`robust_accuracy`."""
    _check_xy(x, y)
    _check_attack(attack)
    threat_model(norm)  # unknown norm -> ValueError, also when eps == 0
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if eps == 0:
        return correct_mask(model, x, y, batch_size=batch_size, shard=shard)
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    device = model_device(model)
    # one generator drawn from in turn cannot be split: every rank then evaluates every batch
    which, summed = _my_batches(x.shape[0], batch_size, False if generator is not None else shard)
    parts = []
    with eval_mode(model), fp32(device):
        for k, xb, yb in _batches(x, y, batch_size, device, which):
            ok = torch.ones_like(yb, dtype=torch.bool)
            if attack in ("pgd", "worst"):
                gen = generator if generator is not None else batch_generator(seed, k)
                # an image counts as broken once any candidate succeeds: stop attacking it there
                x_adv = pgd(model, xb, yb, norm=norm, eps=eps, step_size=step_size, steps=steps,
                            restarts=restarts, generator=gen, stop_on_success=True)
                with torch.no_grad():
                    ok = model(x_adv).argmax(1) == yb
            if attack in ("apgd-t", "worst") and ok.any():
                idx = ok.nonzero().flatten()  # APGD-T only where PGD failed: the per-image worst case
                ok[idx] = strong.apgd_t_correct(model, xb[idx], yb[idx], eps=eps, norm=norm, steps=apgd_steps,
                                                targets=targets, num_classes=_classes(model, xb), seed=seed + k)
            if attack == "autoattack":
                ok = strong.autoattack_correct(model, xb, yb, eps=eps, norm=norm, steps=apgd_steps, targets=targets,
                                               num_classes=_classes(model, xb), seed=seed + k)
            parts.append(ok)
    return _gathered(parts, summed, device)


def _classes(model, xb) -> int:
    with torch.no_grad():
        return int(model(xb[:1]).shape[1])


def robust_accuracy(model, x, y, *, norm: str = "l2", eps: float, steps: int = 20, step_size: float | None = None,
                    restarts: int = 1, batch_size: int = 500, generator: torch.Generator | None = None,
                    seed: int = 0, shard: bool | None = None, attack: str = "pgd", apgd_steps: int = 100,
                    targets: int = 9) -> float:
    """Accuracy under an untargeted attack within the ``norm`` ball of radius ``eps``.

    ``attack``: "pgd" (:func:`advlib.attacks.pgd` with the cross-entropy loss, ``steps`` steps of
    ``step_size``, default 2.5*eps/steps as Madry et al.), "apgd-t" (APGD-T: ``targets`` wrong
    classes × ``apgd_steps`` iterations of the targeted DLR loss, :mod:`advlib.strong`), "worst"
    (the per-image worst case of the two: APGD-T attacks what PGD did not break) or "autoattack"
    (the standard AutoAttack: APGD-CE, APGD-T, FAB-T, Square). An image counts as robust only if
    the attack fails on it; an attack can only overestimate robust accuracy, so the strongest
    number is the lowest.

    eps == 0 gives the clean accuracy (no attack). PGD counts an image as broken as soon as any
    candidate (the clean input, an iterate) is misclassified, and does not attack it further. The
    random starts of batch k come from ``batch_generator(seed, k)`` (APGD / AutoAttack are seeded
    with ``seed + k``), so the result depends neither on the global RNG nor on how many processes
    share the batches (``shard`` as in :func:`accuracy`). A ``generator`` (CPU) given instead
    draws PGD's starts of all batches in turn; the batches are then not split over ranks.
    """
    mask = robust_correct(model, x, y, norm=norm, eps=eps, steps=steps, step_size=step_size, restarts=restarts,
                          batch_size=batch_size, generator=generator, seed=seed, shard=shard, attack=attack,
                          apgd_steps=apgd_steps, targets=targets)
    return int(mask.sum()) / x.shape[0]


def nested_robust_accuracy(model, x, y, eps_list, *, norm: str = "l2", steps: int = 20, restarts: int = 1,
                           batch_size: int = 500, seed: int = 0, attack: str = "pgd", apgd_steps: int = 100,
                           targets: int = 9, masks: bool = False) -> dict:
    """Robust accuracy at each radius of ``eps_list``, from the smallest up, each radius attacking
    only the images that survived every smaller one (and the clean input).

    A perturbation found at a smaller radius is also one at any larger radius, so an image broken
    at eps counts as broken at every eps' > eps: the curve is non-increasing by construction, each
    radius adds the successes of the smaller ones to its own attack, and the large radii cost only
    the survivors. (The survivors form other batches than the whole set, so their random starts
    differ from those of attacking the radius alone: single images may come out either way.)
    Returns ``{"0.25": ..., ...}`` (fractions of all of ``x``); a 0 in ``eps_list`` gives the
    clean accuracy. ``attack`` as in :func:`robust_accuracy`; ``masks=True`` returns the per-image
    survivors instead (``{"0.25": bool tensor, ...}``), from which paired comparisons are made."""
    _check_xy(x, y)
    _check_attack(attack)
    alive = correct_mask(model, x, y, batch_size=batch_size)
    out = {}
    for e in sorted({float(v) for v in eps_list}):
        if e < 0:
            raise ValueError(f"eps must be >= 0, got {e}")
        if e > 0 and bool(alive.any()):
            idx = alive.nonzero().flatten()
            survived = robust_correct(model, x[idx.to(x.device)], y[idx.to(y.device)], norm=norm, eps=e, steps=steps,
                                      restarts=restarts, batch_size=batch_size, seed=seed, attack=attack,
                                      apgd_steps=apgd_steps, targets=targets)
            alive = torch.zeros_like(alive)
            alive[idx] = survived
        out[eps_key(e)] = alive.clone() if masks else int(alive.sum()) / x.shape[0]
    return out


def eps_sweep(model, x, y, eps_list, *, norm: str = "l2", steps: int = 20, restarts: int = 1,
              batch_size: int = 500, seed: int = 0) -> dict[str, float]:
    """Robust accuracy at each radius in ``eps_list``: ``{"0.0": clean, "0.25": ..., ...}``, nested
    as in :func:`nested_robust_accuracy` (each radius attacks the survivors of the smaller ones)."""
    return nested_robust_accuracy(model, x, y, eps_list, norm=norm, steps=steps, restarts=restarts,
                                  batch_size=batch_size, seed=seed)


def eval_subset(y: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of a seeded, class-balanced subset of ``n`` examples (sorted; all when n <= 0 or n >= len).

    Test sets are often stored sorted by class, so "the first n" would cover only a few classes.
    """
    if n <= 0 or n >= len(y):
        return torch.arange(len(y))
    g = torch.Generator().manual_seed(seed)
    # a seeded shuffle, then each example's rank within its class: taking the lowest ranks first
    # interleaves the classes, so any prefix of this order is as balanced as the data allows
    perm = torch.randperm(len(y), generator=g)
    yp = y.cpu()[perm]
    order = torch.argsort(yp, stable=True)
    rank = torch.empty_like(order)
    counts = torch.bincount(yp)
    starts = torch.cumsum(counts, 0) - counts
    rank[order] = torch.arange(len(y)) - starts[yp[order]]
    chosen = perm[torch.argsort(rank, stable=True)[:n]]
    return chosen.sort().values


def ci95(correct: int, n: int) -> list[float]:
    """[lo, hi] of the 95% Wilson interval, rounded to 4 decimals (fractions)."""
    lo, hi = wilson_interval(int(correct), int(n))
    return [round(lo, 4), round(hi, 4)]


# --- per-image masks, as results.json stores them -------------------------------------------------
def pack_mask(mask: torch.Tensor) -> str:
    """A bool mask as a hex string (bits packed 8 per byte, first image in the high bit)."""
    import numpy as np

    return np.packbits(mask.cpu().numpy().astype(bool)).tobytes().hex()


def unpack_mask(text: str, n: int) -> torch.Tensor:
    """The bool mask of ``n`` images that :func:`pack_mask` wrote."""
    import numpy as np

    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n]
    if len(bits) != n:
        raise ValueError(f"mask holds {len(bits)} images, expected {n}")
    return torch.from_numpy(bits.astype(bool))


def radii_of(profile, full: bool = True) -> list[float]:
    """The positive radii a model is attacked at: the headline ``eval_eps``, the declared ``claim_eps``
    and (``full``) every radius of the sweep."""
    radii = {float(profile.eval_eps), float(getattr(profile, "claim_eps", profile.eval_eps))}
    if full:
        radii |= set(profile.sweep)
    return sorted(radii - {0.0})


def headline_attack(profile) -> str:
    """How results.json names the headline attack of a profile, in words."""
    return strong.describe(profile.eval_attack, steps=profile.apgd_steps, targets=profile.apgd_targets,
                           pgd_steps=profile.eval_steps, restarts=profile.eval_restarts)


def evaluate_model(model, x, y, profile, *, seed: int | None = None, full: bool = True,
                   autoattack: bool | None = None, norm: str = "l2", radii=None) -> dict:
    """Everything results.json records about one model, in float32.

    On a seeded, class-balanced subset of ``profile.eval_n`` test images (``eval_subset``): clean
    accuracy and, at each radius of :func:`radii_of`, robust accuracy under the headline attack
    ``profile.eval_attack`` ("worst": per image, PGD and then APGD-T on what PGD did not break)
    and under PGD alone (the weaker number, beside it), each radius attacking the survivors of
    the smaller ones; so clean and robust come from the same images and robust <= clean. The
    per-image survivors are stored (``masks``, :func:`pack_mask`) for paired comparisons, with the
    fraction of images predicted as (y + 1) mod k (``shifted_acc``: what a model that learned
    D_det's labels as a person sees them would score). Clean accuracy on all of ``x`` stands
    beside (``full_clean_acc``). ``full=False``: only ``eval_eps`` and ``claim_eps``.

    ``autoattack`` (default: ``profile.autoattack_n`` > 0): the standard AutoAttack at ``eval_eps``
    and ``claim_eps`` on a class-balanced ``autoattack_n`` of the same images, with the headline's
    accuracy on exactly those images beside it. Random starts are seeded by ``seed`` (default
    ``profile.seed``).

    ``norm``: the threat model, "l2" (the paper's) or "linf" (notebook 10); ``radii``: the radii to
    attack instead of :func:`radii_of`'s (what an L∞ evaluation passes: its radii are not the L2
    ones). The row says which (``norm``); the AutoAttack cross-check runs for L2 only.
    """
    _check_xy(x, y)
    seed = profile.seed if seed is None else int(seed)
    idx = eval_subset(y, profile.eval_n, profile.seed)
    xs, ys = x[idx.to(x.device)], y[idx.to(y.device)]
    radii = radii_of(profile, full) if radii is None else sorted({float(e) for e in radii} - {0.0})
    n, ns = len(y), len(idx)
    kw = dict(steps=profile.eval_steps, restarts=profile.eval_restarts, batch_size=profile.eval_batch, seed=seed,
              norm=norm)
    out: dict = {}
    with Timer() as t:
        clean = correct_mask(model, xs, ys, batch_size=profile.eval_batch)
        full_clean = clean if ns == n else correct_mask(model, x, y, batch_size=profile.eval_batch)
        with torch.no_grad(), eval_mode(model), fp32(model_device(model)):
            k = _classes(model, xs)
        shifted = _shifted(model, xs, ys, k, profile.eval_batch)
        pgd_m = nested_robust_accuracy(model, xs, ys, radii, masks=True, **kw)
        head = pgd_m
        if profile.eval_attack != "pgd":
            head = nested_robust_accuracy(model, xs, ys, radii, masks=True, attack=profile.eval_attack,
                                          apgd_steps=profile.apgd_steps, targets=profile.apgd_targets, **kw)
        acc = {e: int(m.sum()) / ns for e, m in head.items()}
        out.update(
            clean_acc=int(clean.sum()) / ns, clean_ci95=ci95(int(clean.sum()), ns), clean_n=ns,
            full_clean_acc=int(full_clean.sum()) / n, full_clean_ci95=ci95(int(full_clean.sum()), n), full_clean_n=n,
            robust_acc=acc, robust_ci95={e: ci95(int(m.sum()), ns) for e, m in head.items()},
            pgd_acc={e: int(m.sum()) / ns for e, m in pgd_m.items()},
            shifted_acc=int(shifted.sum()) / ns,
            masks={"clean": pack_mask(clean), "shifted": pack_mask(shifted),
                   **{e: pack_mask(m) for e, m in head.items()}},
            eval_n=ns, steps=profile.eval_steps, restarts=profile.eval_restarts, step_size="2.5*eps/steps",
            norm=norm, attack=profile.eval_attack, attack_desc=headline_attack(profile), attack_seed=seed,
            sweep=SWEEP,
        )
        if norm == "l2" and ((profile.autoattack_n > 0) if autoattack is None else autoattack):
            out.update(_autoattack(model, xs, ys, profile, head, seed))
    out.update(eval_dtype=EVAL_DTYPE, device=device_name(model_device(model)), seconds=round(t.seconds, 2))
    return out


def _shifted(model, x, y, k, batch_size) -> torch.Tensor:
    """Per image: does the model predict (y + 1) mod k?"""
    return correct_mask(model, x, (y + 1) % k, batch_size=batch_size)


def _autoattack(model, xs, ys, profile, head: dict, seed: int) -> dict:
    """The standard AutoAttack on a class-balanced ``autoattack_n`` of the evaluated images, nested over
    ``eval_eps`` and ``claim_eps``, beside the headline's accuracy on the same images."""
    sub = eval_subset(ys, profile.autoattack_n, profile.seed + 1)
    xa, ya = xs[sub.to(xs.device)], ys[sub.to(ys.device)]
    radii = radii_of(profile, full=False)
    with Timer() as t:
        aa = nested_robust_accuracy(model, xa, ya, radii, attack="autoattack", apgd_steps=profile.autoattack_steps,
                                    targets=profile.autoattack_targets, batch_size=profile.eval_batch, seed=seed,
                                    masks=True)
    na = len(sub)
    return {"autoattack_acc": {e: int(m.sum()) / na for e, m in aa.items()},
            "autoattack_ci95": {e: ci95(int(m.sum()), na) for e, m in aa.items()},
            "autoattack_headline_acc": {e: int(head[e][sub].sum()) / na for e in aa},
            "autoattack_n": na, "autoattack_seconds": round(t.seconds, 2),
            "autoattack_attacks": strong.describe("autoattack", steps=profile.autoattack_steps,
                                                  targets=profile.autoattack_targets)}


__all__ = ["accuracy", "correct_mask", "robust_correct", "robust_accuracy", "nested_robust_accuracy", "eps_sweep",
           "eval_subset", "evaluate_model", "eps_key", "ci95", "fp32", "batch_generator", "pack_mask", "unpack_mask",
           "radii_of", "headline_attack", "ATTACKS", "EVAL_DTYPE", "SWEEP"]
