"""Intervals for accuracies measured over several training seeds on one set of test images.

A model's accuracy varies with the test images drawn and with the training seed. Both are
resampled here: :func:`bootstrap_mean` and :func:`bootstrap_difference` draw the test images with
replacement (the same draw for every seed and, in a difference, for both arms: the comparison is
paired on images) and the seeds with replacement (independently per arm: a set's seed k and its
control's seed k share nothing but the number), and report the 2.5th and 97.5th percentiles of
the resampled mean. With one seed this is a plain bootstrap over images. The draws come from a
generator seeded by ``seed``, so the same masks always give the same interval.

Inputs are per-image 0/1 outcomes, one row per seed: what results.json stores (``masks``).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 4000  # bootstrap draws: the percentiles move by < 0.1 point between seeds of the draw
TEST = ("95% interval: bootstrap over test images (paired) and training seeds, "
        f"{RESAMPLES} resamples, percentiles 2.5 / 97.5")


def _matrix(masks) -> np.ndarray:
    m = np.asarray([np.asarray(r, dtype=np.float64) for r in masks])
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"masks must be a non-empty list of equally long per-image outcomes, got shape {m.shape}")
    return m


def _image_means(m: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """[draws, seeds]: each seed's mean over each draw of images (``counts``: [draws, images])."""
    return counts @ m.T / m.shape[1]


def _seed_mean(per_seed: np.ndarray, rng: np.random.Generator, pick: np.ndarray | None = None) -> np.ndarray:
    """[draws]: the mean over a resample of the seeds (columns), drawn anew for every row (or ``pick``)."""
    draws, s = per_seed.shape
    pick = rng.integers(0, s, size=(draws, s)) if pick is None else pick
    return np.take_along_axis(per_seed, pick, axis=1).mean(1)


def _counts(n: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    idx = rng.integers(0, n, size=(draws, n))
    return np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)


def bootstrap_mean(masks, *, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the accuracy averaged over seeds and images, and its 95% interval."""
    m = _matrix(masks)
    rng = np.random.default_rng(seed)
    est = _seed_mean(_image_means(m, _counts(m.shape[1], rng, resamples)), rng)
    lo, hi = np.percentile(est, [2.5, 97.5])
    return float(m.mean()), float(lo), float(hi)


def bootstrap_difference(masks_a, masks_b, *, resamples: int = RESAMPLES, seed: int = 0,
                         paired_seeds: bool = False) -> tuple[float, float, float]:
    """(difference, lo, hi): mean accuracy of ``a`` minus that of ``b`` (both over their seeds, on the
    same test images in the same order), and its 95% interval. ``paired_seeds``: row k of both arms
    is the same model (two outcomes of one model), so the seeds are drawn once for both."""
    a, b = _matrix(masks_a), _matrix(masks_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both arms must be measured on the same images: {a.shape[1]} vs {b.shape[1]}")
    if paired_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"paired seeds need as many rows in both arms: {a.shape[0]} vs {b.shape[0]}")
    rng = np.random.default_rng(seed)
    counts = _counts(a.shape[1], rng, resamples)  # one draw of images for both arms: paired
    pick = rng.integers(0, a.shape[0], size=(resamples, a.shape[0])) if paired_seeds else None
    est = _seed_mean(_image_means(a, counts), rng, pick) - _seed_mean(_image_means(b, counts), rng, pick)
    lo, hi = np.percentile(est, [2.5, 97.5])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def verdict(lo: float, hi: float, threshold: float = 0.0, direction: str = "above") -> str:
    """"supported" when the whole interval lies on the claimed side of ``threshold``, "not
    supported" when it lies wholly on the other side, else "inconclusive"."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    above, below = lo > threshold, hi < threshold
    if direction == "below":
        above, below = below, above
    return "supported" if above else "not supported" if below else "inconclusive"


__all__ = ["bootstrap_mean", "bootstrap_difference", "verdict", "RESAMPLES", "TEST"]
