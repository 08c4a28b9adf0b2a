"""Clean and PGD-robust accuracy, eps sweeps, and the results record (results.json).

Every function takes images in [0,1] (NCHW float; uint8 is accepted and divided by 255), runs
the model on the device its parameters are on, in eval mode, and leaves the model's mode as it
found it. Robust accuracy uses :func:`advlib.attacks.pgd` with random starts drawn per batch from
a generator seeded by (seed, batch index), so the same call gives the same number.

Under torchrun (a process group with several ranks, see :mod:`advlib.dist`) ``accuracy`` and
``robust_accuracy`` split the work: each rank takes a contiguous range of whole batches and the
correct counts are summed, so every rank gets the number a single process computes. Every rank
must then make the same call (``shard=False`` computes everything on each rank instead).

results.json::

    {"profile": "cpu", "seed": 0, "config": {...profile fields...}, "timings_s": {...},
     "rows": [{"dataset": "d_robust", "source": "constructed", "clean_acc": 0.43,
               "robust_acc": {"0.25": 0.25, ...}, "eval_n": 1000, "steps": 20, "paper": {...}}]}

One row per (dataset, source); writing a row with the same key replaces the old one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from . import dist
from .attacks import eval_mode, pgd, threat_model
from .config import PAPER
from .utils import Timer, atomic_write_json, model_device


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


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """The CPU generator that draws the random starts of batch ``batch`` in robust_accuracy."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(batch)) % 2**63)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
             shard: bool | None = None) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y`` (in [0,1]).

    ``shard``: None/True split the batches over the ranks of a torch.distributed run (every rank
    must call; no effect in a single process); False evaluates everything here."""
    _check_xy(x, y)
    device = model_device(model)
    which, summed = _my_batches(x.shape[0], batch_size, shard)
    correct = torch.zeros((), dtype=torch.long, device=device)
    with eval_mode(model), torch.no_grad():
        for _, xb, yb in _batches(x, y, batch_size, device, which):
            correct += (model(xb).argmax(1) == yb).sum()
    if summed:
        dist.all_reduce_sum(correct)
    return correct.item() / x.shape[0]


def robust_accuracy(model, x, y, *, norm: str = "l2", eps: float, steps: int = 20, step_size: float | None = None,
                    restarts: int = 1, batch_size: int = 500, generator: torch.Generator | None = None,
                    seed: int = 0, shard: bool | None = None) -> float:
    """Accuracy under untargeted PGD within the ``norm`` ball of radius ``eps``.

    step_size defaults to 2.5*eps/steps (Madry et al.). eps == 0 gives the clean accuracy
    (no attack). The random starts of batch k come from ``batch_generator(seed, k)``, so the
    result depends neither on the global RNG nor on how many processes share the batches
    (``shard`` as in :func:`accuracy`). A ``generator`` (CPU) given instead draws the starts of
    all batches in turn; the batches are then not split over ranks.
    """
    _check_xy(x, y)
    threat_model(norm)  # unknown norm -> ValueError, also when eps == 0
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if eps == 0:
        return accuracy(model, x, y, batch_size=batch_size, shard=shard)
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    device = model_device(model)
    # one generator drawn from in turn cannot be split: every rank then evaluates every batch
    which, summed = _my_batches(x.shape[0], batch_size, False if generator is not None else shard)
    correct = torch.zeros((), dtype=torch.long, device=device)
    with eval_mode(model):
        for k, xb, yb in _batches(x, y, batch_size, device, which):
            gen = generator if generator is not None else batch_generator(seed, k)
            x_adv = pgd(model, xb, yb, norm=norm, eps=eps, step_size=step_size, steps=steps,
                        restarts=restarts, generator=gen)
            with torch.no_grad():
                correct += (model(x_adv).argmax(1) == yb).sum()
    if summed:
        dist.all_reduce_sum(correct)
    return correct.item() / x.shape[0]


def eps_sweep(model, x, y, eps_list, *, norm: str = "l2", steps: int = 20, restarts: int = 1,
              batch_size: int = 500) -> dict[str, float]:
    """Robust accuracy at each radius in ``eps_list``: ``{"0.0": clean, "0.25": ..., ...}``."""
    return {eps_key(e): robust_accuracy(model, x, y, norm=norm, eps=float(e), steps=steps, restarts=restarts,
                                        batch_size=batch_size)
            for e in eps_list}


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


def evaluate_model(model, x, y, profile) -> dict:
    """Clean accuracy on all of ``x`` and L2 PGD robust accuracy on a class-balanced, seeded subset
    of ``profile.eval_n`` images (``eval_subset``) at ``profile.eval_eps`` and every radius of
    ``profile.eval_sweep``."""
    _check_xy(x, y)
    idx = eval_subset(y, profile.eval_n, profile.seed)
    xs, ys = x[idx.to(x.device)], y[idx.to(y.device)]
    radii = sorted({float(profile.eval_eps), *profile.sweep})
    with Timer() as t:
        clean = accuracy(model, x, y, batch_size=profile.eval_batch)
        robust = {}
        for e in radii:
            robust[eps_key(e)] = robust_accuracy(model, xs, ys, eps=e, steps=profile.eval_steps,
                                                 restarts=profile.eval_restarts, batch_size=profile.eval_batch)
    return {"clean_acc": clean, "robust_acc": robust, "eval_n": len(idx), "steps": profile.eval_steps,
            "restarts": profile.eval_restarts, "norm": "l2", "seconds": t.seconds}


# --- results.json ------------------------------------------------------------------------------------
def results_row(dataset: str, source: str, metrics: dict, **extra) -> dict:
    """One row of results.json: the metrics of ``evaluate_model`` plus the paper's numbers."""
    if not dataset or not source:
        raise ValueError(f"results_row needs a dataset and a source, got {dataset!r}, {source!r}")
    return {"dataset": dataset, "source": source, **metrics, **extra, "paper": PAPER.get(dataset)}


def _empty_results() -> dict:
    return {"profile": None, "seed": None, "rows": [], "timings_s": {}, "config": None}


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


def update_results(path, row: dict, *, profile=None, seed=None, timings=None) -> dict:
    """Put ``row`` into results.json (replacing the row with the same (dataset, source)) and
    write the file atomically. ``profile``: a Profile (name + config are recorded) or a name;
    ``timings``: {name: seconds} merged into ``timings_s``. Returns the new contents."""
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
    if timings:
        data["timings_s"] = {**data.get("timings_s", {}), **timings}
    key = (row["dataset"], row["source"])
    rows = data["rows"]
    for i, old in enumerate(rows):
        if (old.get("dataset"), old.get("source")) == key:
            rows[i] = row
            break
    else:
        rows.append(row)
    atomic_write_json(path, data)
    return data


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def results_table(results: dict) -> str:
    """A markdown table of the rows beside the paper's numbers."""
    eps = eps_key((results.get("config") or {}).get("eval_eps", 0.25))
    paper_eps = "0.25"
    lines = [
        f"| dataset | source | clean | robust@{eps} | paper clean | paper robust@{paper_eps} |",
        "|---|---|---|---|---|---|",
    ]
    for r in results.get("rows", []):
        paper = r.get("paper") or {}
        robust = (r.get("robust_acc") or {}).get(eps)
        lines.append(f"| {r.get('dataset')} | {r.get('source')} | {_pct(r.get('clean_acc'))} | {_pct(robust)} | "
                     f"{_pct(paper.get('clean_acc'))} | {_pct((paper.get('robust_acc') or {}).get(paper_eps))} |")
    return "\n".join(lines) + "\n"


__all__ = ["accuracy", "robust_accuracy", "batch_generator", "eps_sweep", "evaluate_model", "eps_key", "results_row",
           "update_results", "load_results", "results_table"]
