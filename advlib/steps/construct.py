"""Notebook 02: the source models (standard, L2-robust, and the targeted sets' own where the
profile trains one) and the four datasets D_R, D_NR, D_rand, D_det (:mod:`advlib.construct`)."""

from __future__ import annotations

from .. import construct
from ..paths import SOURCE_ROLES
from .base import (  # noqa: F401 (setup: the notebook's first call)
    Run,
    markdown_table,
    parse_which,
    pct,
    save,
    setup,
    show,
    smoke_note,
)


def source_models(run: Run, progress: bool = True) -> dict:
    """Standard and L2-robust source models (trained, or loaded when already there), watched on the
    validation split; {} for a run on the released sets, which needs neither."""
    if run.cfg.origin == "released":
        return {}
    return construct.source_models(run.cfg, *run.train, run.paths, eval_data=run.val, progress=progress)


def source_rows(run: Run, sources: dict) -> list[dict]:
    """Each source model's clean accuracy and PGD accuracy at ``eval_eps`` on the validation split
    (the test set is for notebook 05)."""
    from .. import evaluate as ev

    if not sources or run.val is None:
        return []
    cfg = run.cfg
    x, y = run.val
    rows = []
    for name in [r for r in SOURCE_ROLES if r in sources]:
        model = sources[name]
        rows.append({"source model": name, "arch": cfg.arch, "clean acc (validation)": pct(ev.accuracy(model, x, y)),
                     f"PGD-{cfg.eval_steps} L2 {cfg.eval_eps} (validation, n={len(y)})": pct(ev.robust_accuracy(
                         model, x, y, eps=cfg.eval_eps, steps=cfg.eval_steps, seed=cfg.seed))})
    return rows


def source_table(run: Run, sources: dict):
    return show(markdown_table(source_rows(run, sources)))


def build_sets(run: Run, sources: dict, which: str = "", progress: bool = True) -> dict[str, dict]:
    """Build the profile's datasets (or those named in ``which``); {} for a released-data run."""
    names = parse_which(which, run.cfg.dataset_list)
    if run.cfg.origin == "released" or not sources:
        return {}
    return construct.construct_all(run.cfg, run.paths, *run.train, sources, which=names, progress=progress)


def construction_rows(metas: dict[str, dict]) -> list[dict]:
    from .base import duration

    rows = []
    for name, m in metas.items():
        dist = m.get("final_rel_distance")
        rows.append({"dataset": name, "images": m.get("n_rows"), "algorithm": m.get("algorithm"),
                     "steps": m.get("steps"),
                     "target hit rate": pct(m["hit_rate"]) if m.get("hit_rate") is not None else "–",
                     "target = true label": pct(m["target_equals_label_fraction"])
                     if m.get("target_equals_label_fraction") is not None else "–",
                     "final rel. feature distance": f"{dist['mean']:.3f}" if isinstance(dist, dict) else "–",
                     "time": duration(m.get("seconds")), "images/s": round(m.get("images_per_second") or 0)})
    return rows


def construction_table(metas: dict):
    return show(markdown_table(construction_rows(metas)))


def construction_figure(run: Run, metas: dict):
    from .. import viz

    return save(run, viz.construction_curves(metas), "fig_construction")


def _sources_text(run: Run, rows: list[dict]) -> str:
    if not rows:
        return "No source models in this run (a released-data run does not need them)."
    by = {r["source model"]: r for r in rows}
    clean, key = [k for k in rows[0] if k.startswith("clean")][0], [k for k in rows[0] if k.startswith("PGD")][0]
    std, rob = by.get("standard", {}), by.get("robust", {})
    text = (f"On the validation split the standard model reaches {std.get(clean)} clean and {std.get(key)} under "
            f"attack ({key}); the adversarially trained one {rob.get(clean)} / {rob.get(key)}. The paper's standard "
            "ResNet-50: 95% / 4.5% at ε = 0.25. The gap between the two is the room the construction has: D_R "
            "inherits the robust model's features, D_NR the standard model's.")
    tgt = by.get("targeted")
    if tgt:
        text += (f" D_rand and D_det attack a second standard model, trained with augmentation and weight decay "
                 f"({tgt.get(clean)} / {tgt.get(key)}): at this scale the hard-fitted model above is the non-robust "
                 "one D_NR needs, while the augmented one plants targeted perturbations that teach their labels "
                 "better (profile recipe `sources.targeted`).")
    return text


def _sets_text(metas: dict) -> str:
    if not metas:
        return "No dataset was constructed in this run (the profile uses the released sets, or none was asked for)."
    parts = []
    for name, m in metas.items():
        if m.get("algorithm") == "representation_matching":
            d = (m.get("final_rel_distance") or {}).get("mean")
            parts.append(f"**{name}**: {m.get('n_rows'):,} images, {m.get('steps')} matching steps; the images end "
                         f"at a relative feature distance of {d:.3f} from their targets, and the source model "
                         f"assigns the target's label to {pct(m.get('source_model_agreement'))} of them.")
        else:
            parts.append(f"**{name}**: {m.get('n_rows'):,} images, targeted L2 PGD with ε = {m.get('eps')} "
                         f"({m.get('steps')} steps) reaches its target class on {pct(m.get('hit_rate'))} "
                         f"(the paper's setting is ε = 0.5, 100 steps); the random target equals the true label "
                         f"for {pct(m.get('target_equals_label_fraction'))}.")
    return " ".join(parts) + (" A low hit rate weakens D_rand/D_det: a miss keeps the original image's features "
                              "under a wrong label.")


def conclusions(run: Run, sources: dict, metas: dict):
    """What this run shows: the source models' gap and how well each construction reached its aim."""
    return show(smoke_note(run.cfg.name) + _sources_text(run, source_rows(run, sources)) + "\n\n" + _sets_text(metas))


def under_the_hood():
    """The few lines the construction runs: an L2 step along the normalized gradient, the projection,
    and the matching loop of D_R / D_NR (the library's source, shown as it is)."""
    from .. import attacks
    from .base import source_of

    return source_of(attacks.l2_step, attacks.l2_project, attacks.invert_representation,
                     note="Representation matching (D_R, D_NR) descends the feature distance with these steps; "
                          "D_rand / D_det run the targeted `pgd` of notebook 05 toward their target class.")


__all__ = ["setup", "under_the_hood", "source_models", "source_rows", "source_table", "build_sets", "construction_rows", "construction_table",
           "construction_figure", "conclusions"]
