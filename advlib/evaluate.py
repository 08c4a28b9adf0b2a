"""Clean and PGD-robust accuracy, eps sweeps, and the results record (results.json).

Every function takes images in [0,1] (NCHW float; uint8 is accepted and divided by 255), runs
the model on the device its parameters are on, in eval mode, and leaves the model's mode as it
found it. Robust accuracy uses :func:`advlib.attacks.pgd` with random starts drawn per batch from
a generator seeded by (seed, batch index), so the same call gives the same number.

Under torchrun (a process group with several ranks, see :mod:`advlib.dist`) ``accuracy`` and
``robust_accuracy`` split the work: each rank takes a contiguous range of whole batches and the
correct counts are summed, so every rank gets the number a single process computes. Every rank
must then make the same call (``shard=False`` computes everything on each rank instead).

Numbers a reviewer accepts: every attack runs and every prediction is checked in float32
(``eval_dtype``), even inside a caller's autocast; every accuracy comes with a 95% Wilson
interval; the attack's random starts are seeded by the profile's seed; and
:func:`autoattack_accuracy` cross-checks PGD with torchattacks' APGD-CE + APGD-T on a seeded,
class-balanced subset, so a reader sees whether PGD-20 was strong enough.

results.json::

    {"profile": "cpu", "seed": 0, "config": {...profile fields...}, "timings_s": {...},
     "machine": {"device": "cpu", "torch": "2.14.1", "threads": 2, "commit": "abc123..."},
     "rows": [{"dataset": "d_robust", "source": "constructed", "arch": "small", "seed": 0,
               "clean_acc": 0.43, "clean_ci95": [0.41, 0.45], "clean_n": 2000,
               "robust_acc": {"0.25": 0.25, ...}, "robust_ci95": {"0.25": [0.22, 0.28], ...},
               "eval_n": 1000, "steps": 20, "autoattack_acc": {"0.25": 0.24}, "autoattack_n": 200,
               "eval_dtype": "float32", "device": "cpu", "dataset_sha256": "...",
               "checkpoint_sha256": "...", "paper": {...}}]}

One row per (dataset, source, seed); writing a row with the same key replaces the old one.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import torch

from . import dist, strong
from .attacks import eval_mode, folded, pgd, threat_model
from .config import PAPER
from .utils import Timer, atomic_write_json, device_name, model_device, wilson_interval

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


ATTACKS = ("pgd", "apgd-t", "worst", "autoattack")  # what robust_correct / robust_accuracy can run


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


def autoattack_accuracy(model, x, y, *, eps: float, steps: int = 100, n_target_classes: int = 9, seed: int = 0,
                        batch_size: int = 500) -> dict:
    """Accuracy under torchattacks' APGD-CE followed by APGD-T (L2), the core of AutoAttack.

    APGD-CE (step-size free, momentum, ``steps`` iterations) attacks every image; APGD-T (DLR
    loss, targeted at the ``n_target_classes`` most likely wrong classes, ``steps`` each) attacks
    the images APGD-CE did not break, as AutoAttack does. An image counts as robust only when both
    fail. float32 throughout; torchattacks' seeding is kept away from the global RNG.

    Returns ``{"acc", "n", "correct", "apgd_ce_acc", "clean_acc", "attacks"}``.
    """
    _check_xy(x, y)
    if eps <= 0:
        raise ValueError(f"eps must be > 0 for AutoAttack, got {eps}")
    if steps <= 0 or n_target_classes <= 0:
        raise ValueError(f"steps and n_target_classes must be > 0, got {steps}, {n_target_classes}")
    import torchattacks  # a runtime dependency, imported only when the cross-check runs

    device = model_device(model)
    k = int(n_target_classes)
    robust, ce_ok, clean = [], [], []
    fork_devices = [device] if device.type == "cuda" else []
    with eval_mode(model), fp32(device), torch.random.fork_rng(devices=fork_devices):
        model = folded(model)  # the same function with BatchNorm folded into the convolutions: faster
        ce = torchattacks.APGD(model, norm="L2", eps=eps, steps=steps, n_restarts=1, loss="ce", seed=seed)
        # torchattacks' APGDT attacks n_classes - 1 target classes (the most likely wrong ones)
        tg = torchattacks.APGDT(model, norm="L2", eps=eps, steps=steps, n_restarts=1, n_classes=k + 1, seed=seed)
        for _, xb, yb in _batches(x, y, batch_size, device, range(math.ceil(len(y) / batch_size))):
            xb = xb.contiguous()
            with torch.no_grad():
                ok0 = model(xb).argmax(1) == yb
            x1 = ce(xb, yb)
            with torch.no_grad():
                ok1 = (model(x1).argmax(1) == yb) & ok0
            ok2 = ok1.clone()
            if ok1.any():
                idx = ok1.nonzero().flatten()
                x2 = tg(xb[idx], yb[idx])
                with torch.no_grad():
                    ok2[idx] = model(x2).argmax(1) == yb[idx]
            clean.append(ok0.cpu())
            ce_ok.append(ok1.cpu())
            robust.append(ok2.cpu())
    robust_t = torch.cat(robust)
    n = len(robust_t)
    return {"acc": int(robust_t.sum()) / n, "n": n, "correct": int(robust_t.sum()),
            "apgd_ce_acc": int(torch.cat(ce_ok).sum()) / n, "clean_acc": int(torch.cat(clean).sum()) / n,
            "attacks": f"torchattacks APGD-CE + APGD-T (L2, {steps} steps, {k} target classes, seed {seed})"}


def ci95(correct: int, n: int) -> list[float]:
    """[lo, hi] of the 95% Wilson interval, rounded to 4 decimals (fractions)."""
    lo, hi = wilson_interval(int(correct), int(n))
    return [round(lo, 4), round(hi, 4)]


def evaluate_model(model, x, y, profile, *, seed: int | None = None) -> dict:
    """Everything results.json records about one model, in float32.

    Clean accuracy on all of ``x``; L2 PGD robust accuracy at ``profile.eval_eps`` and every
    positive radius of ``profile.eval_sweep`` on a seeded, class-balanced subset of
    ``profile.eval_n`` images (``eval_subset``), random starts seeded by ``seed`` (default
    ``profile.seed``); a 95% Wilson interval for each; and, when ``profile.autoattack_n`` > 0,
    APGD-CE + APGD-T at ``profile.eval_eps`` on a class-balanced subset of that many images,
    with PGD's accuracy on the very same images beside it.
    """
    _check_xy(x, y)
    seed = profile.seed if seed is None else int(seed)
    idx = eval_subset(y, profile.eval_n, profile.seed)
    xs, ys = x[idx.to(x.device)], y[idx.to(y.device)]
    radii = sorted({float(profile.eval_eps), *profile.sweep} - {0.0})
    n, ns = len(y), len(idx)
    out: dict = {}
    with Timer() as t:
        clean = accuracy(model, x, y, batch_size=profile.eval_batch)
        sub_clean = accuracy(model, xs, ys, batch_size=profile.eval_batch)
        robust = nested_robust_accuracy(model, xs, ys, radii, steps=profile.eval_steps,
                                        restarts=profile.eval_restarts, batch_size=profile.eval_batch, seed=seed)
        out.update(
            clean_acc=clean, clean_ci95=ci95(round(clean * n), n), clean_n=n,
            subset_clean_acc=sub_clean,
            robust_acc=robust, robust_ci95={k: ci95(round(v * ns), ns) for k, v in robust.items()},
            eval_n=ns, steps=profile.eval_steps, restarts=profile.eval_restarts,
            step_size="2.5*eps/steps", norm="l2", attack_seed=seed, sweep=SWEEP,
        )
        if getattr(profile, "autoattack_n", 0) > 0:
            e = float(profile.eval_eps)
            aidx = eval_subset(y, profile.autoattack_n, profile.seed + 1)
            xa, ya = x[aidx.to(x.device)], y[aidx.to(y.device)]
            aa = autoattack_accuracy(model, xa, ya, eps=e, steps=profile.autoattack_steps,
                                     n_target_classes=profile.autoattack_targets, seed=seed,
                                     batch_size=profile.eval_batch)
            pgd_same = robust_accuracy(model, xa, ya, eps=e, steps=profile.eval_steps,
                                       restarts=profile.eval_restarts, batch_size=profile.eval_batch, seed=seed)
            out.update(autoattack_acc={eps_key(e): aa["acc"]}, autoattack_ci95={eps_key(e): ci95(aa["correct"], aa["n"])},
                       autoattack_n=aa["n"], autoattack_pgd_acc={eps_key(e): pgd_same},
                       autoattack_apgd_ce_acc={eps_key(e): aa["apgd_ce_acc"]}, autoattack_attacks=aa["attacks"])
    out.update(eval_dtype=EVAL_DTYPE, device=device_name(model_device(model)), seconds=round(t.seconds, 2))
    return out


# --- results.json ------------------------------------------------------------------------------------
ROW_KEY = ("dataset", "source", "seed")


def results_row(dataset: str, source: str, metrics: dict, **extra) -> dict:
    """One row of results.json: the metrics of ``evaluate_model``, provenance fields passed as
    ``extra`` (arch, seed, dataset_sha256, checkpoint_sha256, ...) and the paper's numbers."""
    if not dataset or not source:
        raise ValueError(f"results_row needs a dataset and a source, got {dataset!r}, {source!r}")
    return {"dataset": dataset, "source": source, **metrics, **extra, "paper": PAPER.get(dataset)}


def _empty_results() -> dict:
    return {"profile": None, "seed": None, "rows": [], "timings_s": {}, "config": None, "machine": None}


def load_results(path) -> dict:
    """Read results.json, checking its shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} not found (written by advlib.evaluate.update_results)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"results file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"results file {path} must be a JSON object with a 'rows' list")
    for key, value in _empty_results().items():
        data.setdefault(key, value)
    return data


def _row_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ROW_KEY)


def update_results(path, row: dict, *, profile=None, seed=None, timings=None, machine=None) -> dict:
    """Put ``row`` into results.json (replacing the row with the same (dataset, source, seed)) and
    write the file atomically. ``profile``: a Profile (name + config are recorded) or a name;
    ``timings``: {name: seconds} merged into ``timings_s``; ``machine``: where it ran
    (``advlib.utils.machine_record``). Returns the new contents."""
    if not isinstance(row, dict) or "dataset" not in row or "source" not in row:
        raise ValueError("row must be a dict with 'dataset' and 'source' (see results_row)")
    path = Path(path)
    data = load_results(path) if path.exists() else _empty_results()
    if profile is not None:
        if isinstance(profile, str):
            data["profile"] = profile
        else:
            data["profile"] = profile.name
            data["config"] = profile.to_dict()
            if seed is None:
                seed = profile.seed
    if seed is not None:
        data["seed"] = seed
    if machine is not None:
        data["machine"] = machine
    if timings:
        data["timings_s"] = {**data.get("timings_s", {}), **timings}
    rows = data["rows"]
    for i, old in enumerate(rows):
        if _row_key(old) == _row_key(row):
            rows[i] = row
            break
    else:
        rows.append(row)
    atomic_write_json(path, data)
    return data


# --- tables -----------------------------------------------------------------------------------------------
ROW_LABELS = {
    "standard": "CIFAR-10, standard training",
    "adversarial": "CIFAR-10, L2 adversarial training",
    "standard_targeted": "CIFAR-10, standard training (source of D_rand / D_det)",
    "d_robust": "D_R (robust features)",
    "d_non_robust": "D_NR (non-robust features)",
    "d_rand": "D_rand (adv. to random class)",
    "d_det": "D_det (adv. to class y+1)",
    "d_other": "D_other (adv. to random class ≠ y)",
    "d_rand_synthetic": "D_rand, synthetic patterns",
    "d_det_synthetic": "D_det, synthetic patterns",
    "relabel": "relabelled mistakes (no attack)",
    "d_rand_t_ne_y": "D_rand rows with t ≠ y",
    "d_rand_hits": "D_rand rows the source hits",
    "d_det_hits": "D_det rows the source hits",
}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _pm(vals: list[float]) -> tuple[float, float]:
    mean = sum(vals) / len(vals)
    var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
    return mean, var ** 0.5


def seeds_cell(rows: list[dict], get, ci_get=None) -> str:
    """One table cell: "61.5% [59.4, 63.6]" for one seed, "61.5% ± 0.8 (3 seeds)" for several."""
    vals = [get(r) for r in rows]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        ci = ci_get(rows[0]) if ci_get else None
        return _pct(vals[0]) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
    mean, std = _pm(vals)
    return f"{100 * mean:.1f}% ± {100 * std:.1f} ({len(vals)} seeds)"


def grouped_rows(results: dict) -> list[tuple[str, str, list[dict]]]:
    """(dataset, source, rows of every seed) in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in results.get("rows", []):
        groups.setdefault((r.get("dataset"), r.get("source")), []).append(r)
    return [(d, s, rs) for (d, s), rs in groups.items()]


def row_label(dataset: str) -> str:
    return ROW_LABELS.get(dataset, dataset)


def results_table(results: dict) -> str:
    """The run's markdown table: clean accuracy and L2 PGD robust accuracy at ``eval_eps`` with 95%
    Wilson intervals (or mean ± std over seeds), the AutoAttack cross-check, the paper's numbers."""
    cfg = results.get("config") or {}
    eps = eps_key(cfg.get("eval_eps", 0.25))
    lines = [
        f"| trained on | data | clean [95% CI] | PGD-{cfg.get('eval_steps', 20)} @ {eps} [95% CI] | "
        f"AutoAttack @ {eps} (PGD on the same images) | paper clean | paper robust @ 0.25 |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, source, rows in grouped_rows(results):
        paper = rows[0].get("paper") or {}
        clean = seeds_cell(rows, lambda r: r.get("clean_acc"), lambda r: r.get("clean_ci95"))
        robust = seeds_cell(rows, lambda r: (r.get("robust_acc") or {}).get(eps),
                       lambda r: (r.get("robust_ci95") or {}).get(eps))
        aa_rows = [r for r in rows if (r.get("autoattack_acc") or {}).get(eps) is not None]
        if aa_rows:
            aa = seeds_cell(aa_rows, lambda r: r["autoattack_acc"][eps])
            pg = seeds_cell(aa_rows, lambda r: (r.get("autoattack_pgd_acc") or {}).get(eps))
            aa = f"{aa} ({pg}), n={aa_rows[0].get('autoattack_n')}"
        else:
            aa = "–"
        lines.append(f"| {row_label(dataset)} | {source} | {clean} | {robust} | {aa} | "
                     f"{_pct(paper.get('clean_acc'))} | {_pct((paper.get('robust_acc') or {}).get('0.25'))} |")
    return "\n".join(lines) + "\n"


def sweep_table(results: dict) -> str:
    """Accuracy against the L2 radius: clean (all test images), then PGD at every radius of the run."""
    radii = sorted({float(k) for r in results.get("rows", []) for k in (r.get("robust_acc") or {})})
    keys = [eps_key(e) for e in radii]
    lines = ["| trained on | data | clean | " + " | ".join(f"ε = {k}" for k in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for dataset, source, rows in grouped_rows(results):
        cells = [seeds_cell(rows, lambda r: r.get("clean_acc"))]
        cells += [seeds_cell(rows, lambda r, k=k: (r.get("robust_acc") or {}).get(k)) for k in keys]
        lines.append(f"| {row_label(dataset)} | {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _short_commit(commit) -> str:
    if not commit:
        return "unknown"
    head, _, dirty = str(commit).partition("+")
    return head[:12] + (f"+{dirty}" if dirty else "")


def data_source_name(source) -> str:
    """How a table names the CIFAR-10 source: torchvision and the embedded sample by name, a user's
    file or folder as a local copy with its kind (a table never carries a machine's paths)."""
    src = str(source or "?")
    if src in ("torchvision", "sample", "?"):
        return {"torchvision": "torchvision's CIFAR-10", "sample": "the embedded sample"}.get(src, src)
    kind = "JPEGs" if "jpg" in src.lower() or "jpeg" in src.lower() else "images"
    return f"a local copy of CIFAR-10 ({kind}, {'zip' if src.lower().endswith('.zip') else 'folder'})"


def describe_run(results: dict) -> str:
    """One paragraph: profile, seeds, data, hardware, commit and the evaluation settings."""
    cfg = results.get("config") or {}
    m = results.get("machine") or {}
    seeds = sorted({r.get("seed") for r in results.get("rows", []) if r.get("seed") is not None})
    rows = results.get("rows", [])
    eval_n = sorted({r.get("eval_n") for r in rows if r.get("eval_n")})
    clean_n = sorted({r.get("clean_n") for r in rows if r.get("clean_n")})
    return (f"Profile `{results.get('profile')}`, seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(str(s) for s in seeds) or results.get('seed')}; CIFAR-10 source: {data_source_name(cfg.get('cifar_source'))}; "
            f"device {m.get('device', '?')} ({m.get('threads', '?')} thread(s)), torch {m.get('torch', '?')}, "
            f"commit {_short_commit(m.get('commit'))}. Clean accuracy on {'/'.join(map(str, clean_n)) or '?'} "
            f"test images; PGD (L2, {cfg.get('eval_steps')} steps of 2.5·ε/{cfg.get('eval_steps')}, random start, "
            f"{cfg.get('eval_restarts')} restart) on a seeded class-balanced {'/'.join(map(str, eval_n)) or '?'}"
            + ("; each larger radius attacks the images that survived the smaller ones"
               if any(r.get("sweep") == SWEEP for r in rows) else "")
            + "; all evaluation in float32.")


def render(results: dict) -> str:
    """What ``python -m advlib table results.json`` prints (and the README quotes): the run's
    description, the main table and the accuracy-vs-radius table."""
    return "\n".join([describe_run(results), "", results_table(results), "Accuracy against the L2 radius "
                      "(clean: all test images; ε > 0: PGD on the attacked subset):", "", sweep_table(results)])


__all__ = ["render", "accuracy", "robust_accuracy", "batch_generator", "eps_sweep", "evaluate_model", "eps_key", "results_row",
           "update_results", "load_results", "results_table", "sweep_table", "describe_run", "autoattack_accuracy",
           "ci95", "seeds_cell", "fp32", "EVAL_DTYPE", "ROW_LABELS", "row_label", "grouped_rows"]
