"""Notebook 04: a fresh model on each set, once per training seed, and each set's matched control
(the same recipe and seeds on the real images the set was built from, true labels)."""

from __future__ import annotations

import json

from .. import config, data
from ..train import read_provenance
from .base import (
    MissingInput,  # noqa: F401 (setup: the notebook's first call)
    Run,
    history_rows,
    recipe,
    save,
    setup,
    show,
    smoke_note,
    train_or_load,
)


def feature_sets(run: Run, origin: str = "", only: str = "all") -> dict[str, tuple]:
    """The profile's datasets that exist for ``origin`` (default: the profile's), loaded.

    ``only``: "all" or one dataset name (which must then be present)."""
    origin = origin or run.cfg.origin
    names = run.cfg.dataset_list
    if only != "all":
        if only not in config.DATASETS:
            raise ValueError(f"parameter 'dataset': unknown {only!r}; expected 'all' or one of {config.DATASETS}")
        if only not in run.paths.available(origin):
            raise MissingInput(f"parameter 'dataset': {only!r} ({origin}) not found at "
                                    f"{run.paths.dataset(only, origin)}: run notebook 02 first")
        names = [only]
    return {name: data.load_feature_dataset(run.paths.dataset(name, origin))
            for name in names if name in run.paths.available(origin)}


def describe(run: Run, sets: dict, origin: str = "") -> str:
    origin = origin or run.cfg.origin
    if not sets:
        return f"No {origin} datasets in this run yet: run notebooks 01-02 first (or pass origin=released)."
    return f"{origin} sets: " + ", ".join(f"{n} ({len(s[1]):,} images)" for n, s in sets.items())


def matched_controls(run: Run, origin: str = "", names=None) -> dict[str, tuple]:
    """{control name: (images, labels)}: for each set of ``origin`` in the run (of ``names``, default
    the profile's), the real training images it was built from (its meta.json ``source_indices``
    into this run's training pool) with their true labels. D_R and D_NR share one control, so they
    must come from the same images. A released set was built from the whole CIFAR-10 training set:
    its control is the whole pool."""
    import torch

    from ..construct import pool_fingerprint

    origin = origin or run.cfg.origin
    train = run.train
    out: dict[str, tuple] = {}
    for name in run.paths.available(origin):
        if name not in (names or run.cfg.dataset_list):
            continue
        control = config.MATCHED_CONTROL[name]
        if origin == "released":
            idx = torch.arange(len(train[1]))
        else:
            meta_f = run.paths.dataset(name, origin) / "meta.json"
            if not meta_f.is_file():
                continue  # a set saved without its construction record: no images to match it with
            meta = json.loads(meta_f.read_text())
            pool = (meta.get("pool") or {}).get("fingerprint")
            if pool != pool_fingerprint(*train):
                raise ValueError(f"{meta_f}: built from another training pool ({pool}) than this run's "
                                 f"({pool_fingerprint(*train)}): rerun notebook 02 with this profile")
            idx = torch.as_tensor(meta["source_indices"], dtype=torch.int64)
        pair = (train[0][idx], train[1][idx])
        if control in out and not (len(out[control][1]) == len(idx) and torch.equal(out[control][0], pair[0])):
            raise ValueError(f"{name} was built from other images than the other set sharing the control "
                             f"{control!r}; build both with the same profile (invert_n, seed)")
        out[control] = pair
    return out


def _each_seed(run: Run, name: str, x, y, origin: str, progress: bool) -> dict[str, dict]:
    out = {}
    for seed in run.cfg.seeds:
        folder = run.paths.model(name, origin, run.seed_arg(seed))
        _, hist = train_or_load(run, recipe(run, "dataset", name, seed=seed), x, y, folder, origin=origin,
                                dataset=name, progress=progress)
        out[name if seed == run.cfg.seed else f"{name}-seed{seed}"] = hist
    return out


def train_all(run: Run, sets: dict, origin: str = "", progress: bool = True) -> dict[str, dict]:
    """A fresh model on each loaded set, once per seed of ``train_seeds``, in
    ``models/<origin>/<name>[-seed<k>]``; each set's matched control with the same recipe and seeds in
    ``models/cifar10/<control>``; and the standard source model again with each extra seed of
    ``source_seeds`` (its spread is part of the comparison). Resumes from checkpoints; a model
    trained on other data is set aside and retrained. Returns {name or name-seed<k>: history}."""
    origin = origin or run.cfg.origin
    histories = {}
    for name, (x, y) in sets.items():
        histories.update(_each_seed(run, name, x, y, origin, progress))
    for name, (x, y) in matched_controls(run, origin, names=list(sets)).items():
        histories.update(_each_seed(run, name, x, y, "cifar10", progress))
    for seed in run.cfg.standard_seeds[1:]:
        folder = run.paths.model("standard", "cifar10", seed)
        _, histories[f"standard-seed{seed}"] = train_or_load(run, recipe(run, "standard", seed=seed), *run.train,
                                                             folder, origin="cifar10", dataset="cifar10",
                                                             progress=progress)
    return histories


def history_table(histories: dict):
    from .base import markdown_table

    return show(markdown_table(history_rows(histories)))


def training_figure(run: Run, histories: dict):
    from .. import viz

    return save(run, viz.training_curves(histories), "fig_training")


def conclusions(run: Run, histories: dict):
    if not histories:
        return show("No model was trained (no dataset present): run notebook 02 first.")
    parts = []
    for name, h in histories.items():
        tr = (h.get("train_acc") or [None])[-1]
        va = (h.get("eval_acc") or [None])[-1]
        from .base import pct

        parts.append(f"{name}: {pct(tr)} on its own training set" + (f", {pct(va)} on validation" if va is not None else ""))
    return show(smoke_note(run.cfg.name) + "Training accuracy is measured on the (relabelled) training set, validation "
                "accuracy against the true labels of held-out training images: " + "; ".join(parts) + ". A model that "
                "fits D_rand or D_det and still beats chance (10%) on true labels learned features that generalize "
                "from images whose labels look wrong to a person; notebook 05 measures it on the test set.")


def trained_on(model_dir) -> str | None:
    """The sha256 of the data a model folder's model learned from (its provenance)."""
    return (read_provenance(model_dir) or {}).get("dataset_sha256")


__all__ = ["setup", "feature_sets", "describe", "matched_controls", "train_all", "history_table", "training_figure",
           "conclusions", "trained_on"]
