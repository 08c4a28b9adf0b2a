"""results.json rows as the figures need them: grouped per (dataset, origin), each number with the
mean over seeds and its 95% interval, and what the interval is.

A row's origin is read from ``"origin"`` (new) or ``"source"`` (older files). The intervals are the
tables' (:func:`advlib.tables.cell`): with per-image outcomes (``masks``), one seed gives the Wilson
interval over test images and several seeds the bootstrap over seeds and images
(:func:`advlib.stats.bootstrap_mean`); rows without outcomes give their stored Wilson interval (one
seed) or the mean ± 1 std over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import style

WHISKERS = {
    "wilson": "one seed: 95% Wilson interval over the test images",
    "bootstrap": "several seeds: mean, 95% bootstrap interval over seeds and test images",
    "std": "several seeds without per-image outcomes: mean ± 1 std over seeds",
}


def origin(row: dict):
    return row.get("origin", row.get("source"))


def key(eps) -> str:
    """A radius as results.json spells it ("0.25", "1.0")."""
    return str(float(eps))


def rows_of(results) -> list[dict]:
    return list(results.get("rows", [])) if isinstance(results, dict) else list(results or [])


@dataclass
class Group:
    """Every seed's row of one (dataset, origin)."""

    dataset: str
    origin: str | None
    rows: list
    label: str  # the paper's name, with the origin when the dataset appears with several

    @property
    def paper(self) -> dict:
        return self.rows[0].get("paper") or {}

    @property
    def seeds(self) -> int:
        return len(self.rows)


def groups(results, *, skip=()) -> list[Group]:
    """One :class:`Group` per (dataset, origin) in the tables' order (source models, each set beside
    its matched control, then the rest in first-seen order); datasets in ``skip`` are left out, and so
    are rows of notebook 10 that are no L2 evaluation of a model (``results.in_l2_tables``)."""
    from ..results import in_l2_tables

    found: dict[tuple, list[dict]] = {}
    for r in rows_of(results):
        if r.get("dataset", "?") in skip or not in_l2_tables(r):
            continue
        found.setdefault((r.get("dataset", "?"), origin(r)), []).append(r)
    out = []
    for (ds, org), rs in found.items():
        several = len({o for d, o in found if d == ds}) > 1
        label = style.display(ds) + (f" ({org})" if several and org else "")
        out.append(Group(ds, org, sorted(rs, key=lambda r: (r.get("seed") is None, r.get("seed") or 0)), label))
    first = {k: i for i, k in enumerate(found)}
    return sorted(out, key=lambda g: (style.sort_key(g.dataset)[0], first[(g.dataset, g.origin)]))


@dataclass
class Value:
    """A mean over seeds with its 95% interval (``lo``, ``hi``); ``kind`` names the interval (see
    :data:`WHISKERS`; None: no interval); ``seeds`` how many seeds it averages."""

    mean: float
    lo: float | None
    hi: float | None
    kind: str | None
    seeds: int

    @property
    def err(self) -> tuple[float, float]:
        """(below, above) the mean, for ``yerr``; (0, 0) without an interval."""
        if self.lo is None or self.hi is None:
            return 0.0, 0.0
        return max(self.mean - self.lo, 0.0), max(self.hi - self.mean, 0.0)


def _stored(r: dict, what: str):
    if what == "clean":
        return r.get("clean_acc"), r.get("clean_ci95")
    acc = r.get("robust_acc") or {}
    ci = r.get("robust_ci95") or {}
    k = next((e for e in acc if math.isclose(float(e), float(what))), None)
    return (None, None) if k is None else (acc[k], ci.get(k))


def value(rows: list[dict], what: str) -> Value | None:
    """Accuracy ``what`` ("clean" or a radius) over ``rows`` (one per seed); None when no row has it."""
    what = "clean" if what == "clean" else key(what)
    with_masks = [r for r in rows if (r.get("masks") or {}).get(what) is not None and r.get("clean_n")]
    if with_masks:
        from .. import stats
        from ..evaluate import unpack_mask

        masks = [unpack_mask(r["masks"][what], int(r["clean_n"])).numpy() for r in with_masks]
        if len(masks) == 1:
            from ..utils import wilson_interval

            m = masks[0]
            lo, hi = wilson_interval(int(m.sum()), len(m))
            return Value(float(m.mean()), lo, hi, "wilson", 1)
        if len({len(m) for m in masks}) == 1:
            est, lo, hi = stats.bootstrap_mean(masks)
            return Value(est, lo, hi, "bootstrap", len(masks))
    vals = [(float(v), ci) for v, ci in (_stored(r, what) for r in rows) if v is not None]
    if not vals:
        return None
    if len(vals) == 1:
        v, ci = vals[0]
        return Value(v, *(ci if ci else (None, None)), "wilson" if ci else None, 1)
    xs = [v for v, _ in vals]
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5
    return Value(mean, mean - std, mean + std, "std", len(xs))


def paper_value(group: Group, what: str) -> float | None:
    p = group.paper
    if what == "clean":
        v = p.get("clean_acc")
    else:
        acc = p.get("robust_acc") or {}
        v = next((a for e, a in acc.items() if math.isclose(float(e), float(what))), None)
    return None if v is None else float(v)


def whisker_note(kinds) -> str:
    """"Whiskers: …" for the interval kinds a figure drew."""
    kinds = [k for k in dict.fromkeys(kinds) if k in WHISKERS]
    return ("Whiskers: " + "; ".join(WHISKERS[k] for k in kinds) + ".") if kinds else ""


def attack_of(results) -> str | None:
    """The headline attack's description (``attack_desc`` of the rows), when recorded."""
    return next((r.get("attack_desc") for r in rows_of(results) if r.get("attack_desc")), None)


__all__ = ["Group", "Value", "groups", "value", "paper_value", "whisker_note", "origin", "key", "attack_of",
           "WHISKERS"]
