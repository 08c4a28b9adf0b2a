"""What a model learned from, stored beside it: a model is only as trustworthy as that record.

``make_provenance`` records the data's ``origin`` ("cifar10" | "constructed" | "released"), the
dataset's name, the sha256 of the training tensors and the training config; :mod:`advlib.train`
stores it with every checkpoint (``provenance.json``) and reuses a model only when it is equal.
Records written before the rename of "source" to "origin" read as the same record.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .utils import atomic_write_json, tensors_sha256

PROVENANCE = "provenance.json"
KEYS = ("origin", "dataset", "dataset_sha256", "n")  # what must be equal for a model to be reused


def make_provenance(origin: str, dataset: str, images, labels, cfg) -> dict:
    """What a model learned from: the data's ``origin`` ("cifar10" | "constructed" | "released"),
    ``dataset`` name, the sha256 of the training tensors (``tensors_sha256(images, labels)``), and
    the training config (a TrainConfig). Two models with equal provenance learned from the same
    bytes the same way."""
    if not origin or not dataset:
        raise ValueError(f"provenance needs the data's origin and a dataset name, got {origin!r}, {dataset!r}")
    return {"origin": origin, "dataset": dataset, "dataset_sha256": tensors_sha256(images, labels.long()),
            "n": int(labels.shape[0]), "train_config": asdict(cfg)}


def normalized(provenance: dict | None) -> dict | None:
    """A record as written now: an older one's "source" is its "origin"."""
    if provenance is None or "source" not in provenance or "origin" in provenance:
        return provenance
    return {("origin" if k == "source" else k): v for k, v in provenance.items()}


def provenance_diff(old: dict | None, new: dict | None) -> dict:
    """{key: (old, new)} of the ``KEYS`` that differ."""
    old, new = normalized(old) or {}, normalized(new) or {}
    return {k: (old.get(k), new.get(k)) for k in KEYS if old.get(k) != new.get(k)}


def read_provenance(out_dir) -> dict | None:
    """``provenance.json`` of a model folder (None when the model was trained without one)."""
    f = Path(out_dir) / PROVENANCE
    return normalized(json.loads(f.read_text())) if f.is_file() else None


def set_aside(out_dir, reason: str) -> Path:
    """Rename a stale model folder to ``<folder>.replaced-<UTC time>`` (nothing is deleted)."""
    import datetime

    out = Path(out_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    dest = out.with_name(f"{out.name}.replaced-{stamp}")
    out.rename(dest)
    atomic_write_json(dest / "replaced.json", {"reason": reason, "was": str(out)})
    return dest


__all__ = ["make_provenance", "normalized", "provenance_diff", "read_provenance", "set_aside", "PROVENANCE", "KEYS"]
