"""Notebook 03: what the constructed (or released) sets look like, beside the images they came
from; the explorer widget (figures: :mod:`advlib.viz`, widget: :mod:`advlib.widgets`)."""

from __future__ import annotations

from .base import Run, save, setup, show, smoke_note  # noqa: F401 (setup: the notebook's first call)


def sets(run: Run, origin: str = "") -> dict:
    """The profile's datasets of ``origin`` (default: the profile's) as ``viz.FeatureSet`` (images,
    labels, meta.json) for the figures; {} when the run has none yet."""
    from .. import viz

    return viz.load_sets(run.paths, origin or run.cfg.origin, names=run.cfg.dataset_list)


def describe(run: Run, feature_sets: dict, origin: str = "") -> str:
    origin = origin or run.cfg.origin
    if not feature_sets:
        return f"No {origin} datasets in this run yet: run notebooks 01-02 first (or pass origin=released)."
    return f"{origin} sets: " + ", ".join(f"{n} ({len(s.labels):,} images)" for n, s in feature_sets.items())


def side_by_side(run: Run, feature_sets: dict):
    from .. import viz

    return save(run, viz.side_by_side_for(*run.train, feature_sets), "fig_side_by_side")


def class_means(run: Run, feature_sets: dict):
    from .. import viz

    return save(run, viz.class_means({"CIFAR-10": run.train, **feature_sets}), "fig_class_means")


def perturbations(run: Run, feature_sets: dict) -> list:
    from .. import viz

    return [save(run, fig, f"fig_perturbations_{name}")
            for name, fig in viz.perturbation_figures(feature_sets, run.train).items()]


def spectra(run: Run, feature_sets: dict):
    from .. import viz

    return save(run, viz.spectra_for(run.train[0], feature_sets), "fig_spectra")


def pixel_stats(run: Run, feature_sets: dict):
    from .. import viz

    return save(run, viz.pixel_stats_figure({"CIFAR-10": run.train[0], **{n: s.images for n, s in feature_sets.items()}}),
                "fig_pixel_stats")


def explorer(run: Run, feature_sets: dict, origin: str = ""):
    """The dataset explorer: each image beside the training image it came from, the per-image facts
    (target, hit, matching distance, start image's class) and filters by them."""
    from .. import widgets

    if not feature_sets:
        return show("No datasets to explore yet: run notebooks 01-02 first.")
    return widgets.Explorer(feature_sets, run.train, models=widgets.load_models(run.paths, origin or run.cfg.origin))


def construction_player(run: Run):
    """D_R and D_NR matching for one training image, step by step (the robust and the standard source
    model's representations, the profile's matching steps)."""
    from .. import widgets

    models = widgets.load_models(run.paths)
    if not {"robust", "standard"} <= set(models):
        return show("No source models in this run yet: run notebook 02 first.")
    cfg = run.cfg
    return widgets.ConstructionPlayer({"D_R": models["robust"], "D_NR": models["standard"]}, *run.train,
                                      steps=cfg.invert_steps, step_size=cfg.invert_step_size, seed=cfg.seed,
                                      schedule=cfg.invert_schedule)


def conclusions(run: Run, feature_sets: dict):
    """What the pictures show, from the sets' own statistics: how far each set's images lie from the
    images they started from (L2 per image), and whether its class means sit closer to CIFAR-10's own
    class means or to them shifted by one class (what D_det's y + 1 labels would give)."""
    import torch

    if not feature_sets:
        return show("Nothing to show yet: run notebooks 01-02 first.")
    x0, y0 = run.train
    ref = torch.stack([x0[y0 == c].mean(0) for c in range(10)])
    lines = []
    for name, s in feature_sets.items():
        meta = s.meta or {}
        facts = []
        start = meta.get("start_indices") or meta.get("source_indices")
        if start is not None and len(start) == len(s.labels):
            moved = (s.images - x0[torch.as_tensor(start)]).flatten(1).norm(dim=1)
            what = "its start image (of another class)" if meta.get("start_indices") else "the image it was attacked from"
            facts.append(f"each image lies at L2 distance {moved.median():.2f} (median) from {what}")
        if all((s.labels == c).any() for c in range(10)):
            means = torch.stack([s.images[s.labels == c].mean(0) for c in range(10)])
            own = (means - ref).flatten(1).norm(dim=1).mean()
            shifted = (means - ref.roll(1, 0)).flatten(1).norm(dim=1).mean()
            near = ("CIFAR-10's class means shifted by one class (the images of class y - 1 under label y)"
                    if shifted < own else "CIFAR-10's own class means")
            facts.append(f"its class means sit closest to {near} (mean L2 gap {min(own, shifted):.2f})")
        if facts:
            lines.append(f"- **{name}**: " + "; ".join(facts) + ".")
    lines.append("D_NR, D_rand and D_det look like the images they started from: what a model learns from their "
                 "labels is invisible to us. D_R's images drift toward what the robust model sees in their label's "
                 "class.")
    return show(smoke_note(run.cfg.name) + "\n".join(lines))


__all__ = ["setup", "construction_player", "sets", "describe", "side_by_side", "class_means", "perturbations", "spectra", "pixel_stats", "explorer",
           "conclusions"]
