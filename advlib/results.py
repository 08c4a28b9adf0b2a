"""results.json: one row per evaluated model, read and written atomically, and the rows grouped.

::

    {"profile": "cpu", "seed": 0, "config": {...profile fields...}, "timings_s": {...},
     "machine": {"device": "cpu", "torch": "2.14.1", "threads": 2, "commit": "abc123..."},
     "rows": [{"dataset": "d_robust", "origin": "constructed", "arch": "small", "seed": 0,
               "control": "control_rnr",                     # the matched control's row name
               "clean_acc": 0.43, "clean_ci95": [...], "clean_n": 1000,       # the evaluated images
               "full_clean_acc": 0.44, "full_clean_n": 2000,                  # every test image
               "robust_acc": {"0.25": 0.21, ...},     # the headline attack ("attack", "attack_desc")
               "pgd_acc": {"0.25": 0.25, ...},        # PGD alone, the weaker number
               "masks": {"clean": "<hex>", "0.25": "<hex>", "shifted": "<hex>"},  # per image
               "autoattack_acc": {"0.25": ...}, "autoattack_headline_acc": {...}, "autoattack_n": 200,
               "eval_dtype": "float32", "dataset_sha256": "...", "checkpoint_sha256": "...",
               "paper": {...}}]}

One row per (dataset, origin, seed); writing a row with the same key replaces the old one. A row's
``origin`` is what its model learned from: "constructed" | "released" (a set of that origin) or
"cifar10" (the source models and the matched controls). Rows written before the key was renamed
carry it as "source"; every reader here takes either (:func:`origin_of`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import MATCHED_CONTROL, PAPER
from .utils import atomic_write_json

ROW_KEY = ("dataset", "origin", "seed")
# results.json names of the source models, by their role in the run directory
ROW_OF_ROLE = {"standard": "standard", "robust": "adversarial", "targeted": "standard_targeted"}

ROW_LABELS = {
    "standard": "CIFAR-10, standard training",
    "adversarial": "CIFAR-10, L2 adversarial training",
    "standard_targeted": "CIFAR-10, standard training (source of D_rand / D_det)",
    "d_robust": "D_R (robust features)",
    "d_non_robust": "D_NR (non-robust features)",
    "d_rand": "D_rand (adv. to random class)",
    "d_det": "D_det (adv. to class y+1)",
    "control_rnr": "matched control of D_R / D_NR (their real images)",
    "control_rand": "matched control of D_rand (its real images)",
    "control_det": "matched control of D_det (its real images)",
    "d_other": "D_other (adv. to random class ≠ y)",
    "d_rand_synthetic": "D_rand, synthetic patterns",
    "d_det_synthetic": "D_det, synthetic patterns",
    "relabel": "relabelled mistakes (no attack)",
    "d_rand_t_ne_y": "D_rand rows with t ≠ y",
    "d_rand_hits": "D_rand rows the source hits",
    "d_det_hits": "D_det rows the source hits",
}
# the paper's names, for figures and sentences
SHORT_NAMES = {"standard": "standard", "adversarial": "L2-robust", "standard_targeted": "standard (targeted sets)",
               "d_robust": "D_R", "d_non_robust": "D_NR", "d_rand": "D_rand", "d_det": "D_det",
               "control_rnr": "control of D_R / D_NR", "control_rand": "control of D_rand",
               "control_det": "control of D_det"}


def row_label(dataset: str) -> str:
    return ROW_LABELS.get(dataset, dataset)


def short_name(dataset: str) -> str:
    return SHORT_NAMES.get(dataset, row_label(dataset))


def origin_of(row: dict) -> str | None:
    """A row's origin ("constructed" | "released" | "cifar10"), also of a row written as "source"."""
    return row.get("origin", row.get("source"))


def row_key(row: dict) -> tuple:
    """(dataset, origin, seed): a row's place in results.json."""
    return row.get("dataset"), origin_of(row), row.get("seed")


def results_row(dataset: str, origin: str, metrics: dict, **extra) -> dict:
    """One row of results.json: the metrics of ``evaluate_model``, provenance fields passed as
    ``extra`` (arch, seed, dataset_sha256, checkpoint_sha256, ...), the matched control's row name
    for a constructed set, and the paper's numbers."""
    if not dataset or not origin:
        raise ValueError(f"results_row needs a dataset and an origin, got {dataset!r}, {origin!r}")
    link = {"control": MATCHED_CONTROL[dataset]} if dataset in MATCHED_CONTROL else {}
    return {"dataset": dataset, "origin": origin, **link, **metrics, **extra, "paper": PAPER.get(dataset)}


def _empty_results() -> dict:
    return {"profile": None, "seed": None, "rows": [], "timings_s": {}, "config": None, "machine": None}


def load_results(path) -> dict:
    """Read results.json, checking its shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} not found (written by advlib.results.update_results)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"results file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"results file {path} must be a JSON object with a 'rows' list")
    for key, value in _empty_results().items():
        data.setdefault(key, value)
    return data


def update_results(path, row: dict, *, profile=None, seed=None, timings=None, machine=None) -> dict:
    """Put ``row`` into results.json (replacing the row with the same (dataset, origin, seed)) and
    write the file atomically. ``profile``: a Profile (name + config are recorded) or a name;
    ``timings``: {name: seconds} merged into ``timings_s``; ``machine``: where it ran
    (``advlib.utils.machine_record``). Returns the new contents."""
    if not isinstance(row, dict) or "dataset" not in row or origin_of(row) is None:
        raise ValueError("row must be a dict with 'dataset' and 'origin' (see results_row)")
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
        if row_key(old) == row_key(row):
            rows[i] = row
            break
    else:
        rows.append(row)
    atomic_write_json(path, data)
    return data


def grouped_rows(results: dict) -> list[tuple[str, str, list[dict]]]:
    """(dataset, origin, rows of every seed) in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in results.get("rows", []):
        groups.setdefault((r.get("dataset"), origin_of(r)), []).append(r)
    return [(d, s, rs) for (d, s), rs in groups.items()]


def rows_of(results: dict, dataset: str, origin: str | None = None) -> list[dict]:
    """Every seed's row of ``dataset`` (of ``origin`` when given), in seed order."""
    rows = [r for r in results.get("rows", []) if r.get("dataset") == dataset
            and (origin is None or origin_of(r) == origin)]
    return sorted(rows, key=lambda r: (r.get("seed") is None, r.get("seed")))


__all__ = ["ROW_KEY", "ROW_OF_ROLE", "ROW_LABELS", "SHORT_NAMES", "row_label", "short_name", "origin_of", "row_key",
           "results_row",
           "load_results", "update_results", "grouped_rows", "rows_of"]
