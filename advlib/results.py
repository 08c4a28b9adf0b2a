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
    # notebook 10: under L∞ (norm "linf"), large-ε synthesis, just bugs, leakage (measure: not a trained model)
    "standard_linf": "CIFAR-10, standard training, under L∞",
    "adversarial_l2_linf": "CIFAR-10, L2 adversarial training, under L∞",
    "adversarial_linf": "CIFAR-10, L∞ adversarial training, under L∞",
    "d_robust_linf": "D_R from the L∞-robust model, under L∞",
    "d_non_robust_linf": "D_NR (the run's), under L∞",
    "control_rnr_linf": "matched control of D_R (L∞) (its real images), under L∞",
    "d_rand_linf": "D_rand, L∞ targeted attack, under L∞",
    "control_rand_linf": "matched control of D_rand (L∞), under L∞",
    "d_det_linf": "D_det, L∞ targeted attack, under L∞",
    "control_det_linf": "matched control of D_det (L∞), under L∞",
    "synthesis_robust": "large-ε targeted attacks on the L2-robust model",
    "synthesis_standard": "large-ε targeted attacks on the standard model",
    "d_det_bugs": "D_det of \"just bugs\" (leave an ensemble unchanged)",
    "d_det_subset": "D_det, the same images (beside the just-bugs D_det)",
    "leakage_d_rand": "linear classifier on robust features of D_rand",
    "leakage_d_det": "linear classifier on robust features of D_det",
}
# the paper's names, for figures and sentences
SHORT_NAMES = {"standard": "standard", "adversarial": "L2-robust", "standard_targeted": "standard (targeted sets)",
               "d_robust": "D_R", "d_non_robust": "D_NR", "d_rand": "D_rand", "d_det": "D_det",
               "control_rnr": "control of D_R / D_NR", "control_rand": "control of D_rand",
               "control_det": "control of D_det",
               "standard_linf": "standard (L∞)", "adversarial_l2_linf": "L2-robust (L∞)",
               "adversarial_linf": "L∞-robust (L∞)", "d_robust_linf": "D_R (L∞)", "d_non_robust_linf": "D_NR (L∞)",
               "control_rnr_linf": "control of D_R (L∞)", "d_rand_linf": "D_rand (L∞)",
               "control_rand_linf": "control of D_rand (L∞)", "d_det_linf": "D_det (L∞)",
               "control_det_linf": "control of D_det (L∞)", "synthesis_robust": "synthesis, L2-robust",
               "synthesis_standard": "synthesis, standard", "d_det_bugs": "just-bugs D_det",
               "d_det_subset": "D_det (same images)", "leakage_d_rand": "robust-feature probe, D_rand",
               "leakage_d_det": "robust-feature probe, D_det"}


def row_label(dataset: str) -> str:
    return ROW_LABELS.get(dataset, dataset)


def short_name(dataset: str) -> str:
    return SHORT_NAMES.get(dataset, row_label(dataset))


def in_l2_tables(row: dict) -> bool:
    """Whether a row belongs in the paper's L2 tables and figures: a model evaluated under L2 (rows
    under another threat model say so in ``norm``; notebook 10's measures that are no trained model
    on the test set, a probe or a synthesis, carry ``measure``)."""
    return row.get("norm", "l2") == "l2" and not row.get("measure")


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


def add_timings(path, timings: dict) -> dict:
    """Merge ``timings`` ({name: seconds}) into results.json's ``timings_s`` (atomically; a missing
    file is started). Returns the new contents."""
    path = Path(path)
    data = load_results(path) if path.exists() else _empty_results()
    data["timings_s"] = {**data.get("timings_s", {}), **timings}
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
           "in_l2_tables",
           "results_row",
           "load_results", "update_results", "add_timings", "grouped_rows", "rows_of"]
