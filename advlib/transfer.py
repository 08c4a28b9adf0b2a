"""Transfer across architectures (paper Section 3.3, Figure 3; notebook 08).

The paper's argument: D_det carries the *source model's* non-robust features under labels that
look wrong. An architecture that picks up those same features learns more from D_det, and the
same architecture is also the one the source model's adversarial examples fool most: both
measure how much it shares the source's non-robust features. So across architectures, test
accuracy after training on D_det should rise with the transfer rate of targeted adversarial
examples from the source model.

Here, for each architecture a: (1) a model of a trained on the run's constructed D_det (and
D_rand), accuracy on the true test labels; (2) the transfer rate: ``transfer_n`` seeded,
class-balanced test images are attacked with targeted L2 PGD on the standard source model (radius
``transfer_eps``, target t = (y + 1) mod 10), and the rate is the fraction a *standard* model of
architecture a (trained on the CIFAR-10 training subset, with another seed when a is the
source's own architecture) classifies as t. The source model's own rate on the same images is the
white-box reference. A least-squares line and Pearson's r summarize the relation
(:func:`fit_line`); ``transfer.json`` in the run directory holds rows, fits and settings.

Functions here take tensors and models; the training lives in ``advlib.steps.transfer``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .construct import build_targeted_set, num_classes_of
from .evaluate import accuracy, ci95, eval_subset
from .utils import atomic_write_json, model_device

FILENAME = "transfer.json"
TARGET_RULE = "t = (y + 1) mod k (as D_det)"


def fit_line(xs, ys) -> dict:
    """Least-squares line ``y = slope * x + intercept`` (``numpy.polyfit(x, y, 1)``) and Pearson's
    r (``numpy.corrcoef``) over the pairs where both are numbers. With fewer than two pairs, or no
    spread in x, the line is undefined (None); r is None without spread in both."""
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    out = {"slope": None, "intercept": None, "r": None, "n": len(pairs)}
    if len(pairs) < 2:
        return out
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        out.update(slope=float(slope), intercept=float(intercept))
        if np.ptp(y) > 0:
            out["r"] = float(np.corrcoef(x, y)[0, 1])
    return out


def targeted_examples(source, images, labels, *, n: int, eps: float, steps: int, step_size: float,
                      restarts: int = 1, seed: int = 0, batch_size: int = 500, amp: bool = False) -> dict:
    """Targeted L2 PGD on ``source`` toward t = (y + 1) mod k for a seeded, class-balanced subset of
    ``n`` test images (``evaluate.eval_subset``; 0 = all). Returns CPU tensors ``images`` (the
    adversarial examples), ``targets``, ``labels`` (true), ``indices`` (into the test set) and
    ``hit`` (the source model classifies the example as its target)."""
    idx = eval_subset(labels, n, seed)
    device = model_device(source)
    r = build_targeted_set(source, images, labels, rule="det", eps=eps, step_size=step_size, steps=steps,
                           restarts=restarts, indices=idx, generator=torch.Generator().manual_seed(seed),
                           batch_size=batch_size, amp=amp and device.type == "cuda",
                           num_classes=num_classes_of(source, images))
    return {"images": r["images"], "targets": r["targets"], "labels": r["orig_labels"], "indices": r["source_indices"],
            "hit": r["hit"], "eps": eps, "steps": steps, "step_size": step_size, "n": len(idx), "seed": seed}


def transfer_rate(model, examples: dict, batch_size: int = 500) -> float:
    """Fraction of ``examples["images"]`` that ``model`` classifies as their target (float32)."""
    return accuracy(model, examples["images"], examples["targets"], batch_size=batch_size, shard=False)


def summarize(rows: list[dict], *, whitebox_rate: float | None = None, settings: dict | None = None,
              source: dict | None = None) -> dict:
    """The contents of transfer.json: ``rows`` (one per architecture), ``fit`` (the line of
    ``ddet_acc`` and of ``drand_acc`` on ``transfer_rate``, with r, and the source's white-box
    rate), ``settings`` and ``source`` as given."""
    for r in rows:
        rate = r.get("transfer_rate")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"transfer rate of {r.get('arch')} must lie in [0,1], got {rate}")
    rates = [r.get("transfer_rate") for r in rows]
    fit = {"ddet": fit_line(rates, [r.get("ddet_acc") for r in rows]),
           "drand": fit_line(rates, [r.get("drand_acc") for r in rows]),
           "x": "transfer_rate", "source_whitebox_rate": whitebox_rate}
    return {"rows": rows, "fit": fit, "settings": settings or {}, "source": source or {}}


def row(arch: str, *, params: int, ddet_acc, drand_acc, rate: float, n_test: int, n_attacked: int, eps: float,
        **extra) -> dict:
    """One architecture's row of transfer.json (accuracies as fractions, 95% Wilson intervals)."""
    def ci(v, n):
        return None if v is None else ci95(round(v * n), n)

    return {"arch": arch, "params": int(params), "ddet_acc": ddet_acc, "ddet_ci95": ci(ddet_acc, n_test),
            "drand_acc": drand_acc, "drand_ci95": ci(drand_acc, n_test), "transfer_rate": rate,
            "transfer_ci95": ci(rate, n_attacked), "transfer_eps": eps, "transfer_n": n_attacked, **extra}


def write_transfer(path, result: dict) -> Path:
    """Write ``result`` (``summarize``'s dict) to ``path`` atomically (``utils.atomic_write_json``)."""
    return atomic_write_json(path, result)


def load_transfer(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebook 08 (transfer) first")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'rows' list")
    return data


__all__ = ["FILENAME", "fit_line", "targeted_examples", "transfer_rate", "summarize", "row", "write_transfer",
           "load_transfer"]
