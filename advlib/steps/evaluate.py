"""Notebook 05: every trained model on the real test set (clean and robust accuracy on the same
images, the headline attack beside PGD alone, the AutoAttack cross-check) → results.json, and the
paper's claims with their verdicts (:mod:`advlib.verdicts`)."""

from __future__ import annotations

import json

from .. import config
from .. import evaluate as ev
from .. import results as rs
from .base import MissingInput, Run, save, setup, show, smoke_note  # noqa: F401 (setup: the notebook's first call)

# The rows whose robustness a claim rests on: the run's own seed of these is cross-checked with
# the standard AutoAttack (the others are either not claimed robust or near 0% already)
AUTOATTACK_ROWS = ("standard", "adversarial", "d_robust", "d_non_robust", "control_rnr")


def eval_settings(cfg, full: bool = True) -> dict:
    """What an evaluation depends on besides the weights (a stored row is reused only if equal)."""
    keys = ("n_test", "cifar_source", "eval_eps", "claim_eps", "eval_sweep", "eval_steps", "eval_restarts", "eval_n",
            "seed", "eval_attack", "apgd_targets", "apgd_steps", "autoattack_n", "autoattack_steps",
            "autoattack_targets")
    # the protocol is part of the settings: rows from before nested radii, per-image outcomes and
    # the headline attack are computed again
    return {**{k: getattr(cfg, k) for k in keys}, "eval_sweep": list(cfg.eval_sweep), "sweep": ev.SWEEP, "full": full,
            "format": 2}


def same_settings(old: dict | None, new: dict) -> bool:
    """Whether a stored row's ``eval_settings`` are ``new`` (a row from before the sweep was a list
    has it as text, "0,0.25,1.0": the same radii are the same settings)."""
    if not old:
        return False
    if isinstance(old.get("eval_sweep"), str):
        old = {**old, "eval_sweep": [float(v) for v in old["eval_sweep"].split(",") if v.strip()]}
    return old == new


def models_to_evaluate(cfg, origin: str) -> list[tuple[str, str, int]]:
    """(model origin, name, seed) of every model this notebook evaluates, in table order."""
    from ..construct import source_roles

    todo = [("cifar10", "standard", seed) for seed in cfg.standard_seeds]
    todo += [("cifar10", role, cfg.seed) for role in source_roles(cfg) if role != "standard"]
    for name in cfg.dataset_list:
        todo += [(origin, name, seed) for seed in cfg.seeds]
    todo += [("cifar10", c, seed) for c in dict.fromkeys(config.MATCHED_CONTROL[n] for n in cfg.dataset_list)
             for seed in cfg.seeds]
    return todo


def _data_sha(run: Run, model_origin: str, name: str, model_dir, controls: dict) -> str | None:
    """The sha256 of the data now on disk that the model in ``model_dir`` must have learned from; a
    model trained on other data raises (a rebuilt set is never answered by the old model)."""
    from ..data import load_feature_dataset
    from ..utils import tensors_sha256
    from .train import trained_on

    learned = trained_on(model_dir)
    if model_origin == "cifar10" and name not in controls:
        return learned
    current = tensors_sha256(*(controls[name] if name in controls else
                               load_feature_dataset(run.paths.dataset(name, model_origin))))
    if learned != current:
        raise ValueError(f"{model_dir} was trained on data with sha256 {str(learned)[:12]}, but {name} is now "
                         f"{current[:12]}: rerun notebook 04 (training) so that the model matches the data")
    return current


def evaluate_all(run: Run, origin: str = "", progress: bool = True) -> dict:
    """Clean and robust accuracy of every trained model in the run directory on the real test set →
    results.json (float32, per-image outcomes, intervals, provenance of each row).

    A set's model (and a matched control) is evaluated only if it learned from the data now on
    disk. A row already in results.json for the same weights and evaluation settings is kept (a
    killed notebook resumes). The run's own seed gets the whole sweep (and, for ``AUTOATTACK_ROWS``,
    the AutoAttack cross-check); extra seeds and the targeted sets' own source model are attacked
    at ``eval_eps`` and ``claim_eps``."""
    from .train import matched_controls

    cfg, paths = run.cfg, run.paths
    origin = origin or cfg.origin
    controls = matched_controls(run, origin)
    for model_origin, name, seed in models_to_evaluate(cfg, origin):
        model_dir = paths.model(name, model_origin, run.seed_arg(seed))
        if not (model_dir / "checkpoint.pt").is_file():
            continue
        dataset_sha = _data_sha(run, model_origin, name, model_dir, controls)
        row_name = rs.ROW_OF_ROLE.get(name, name) if model_origin == "cifar10" else name
        full = seed == cfg.seed and name != "targeted"
        from ..train import read_provenance

        evaluate_one(run, model_dir, row_name, model_origin, seed, dataset_sha, full=full,
                     autoattack=full and row_name in AUTOATTACK_ROWS, progress=progress,
                     train_n=(read_provenance(model_dir) or {}).get("n"))
    if not paths.results.is_file():
        raise MissingInput(f"no trained model found under {paths.models}: run notebooks 02 and 04 first")
    return rs.load_results(paths.results)


def evaluate_one(run: Run, model_dir, row_name: str, model_origin: str, seed: int, dataset_sha: str | None, *,
                 full: bool = True, autoattack: bool = False, profile=None, progress: bool = True, norm: str = "l2",
                 radii=None, **extra) -> dict:
    """Evaluate the model in ``model_dir`` on the test set into its results.json row (``row_name``,
    ``model_origin``, ``seed``), unless the row there already belongs to these weights and these
    settings. ``profile``: evaluate with another profile (default the run's); ``norm`` / ``radii``:
    another threat model and its radii (``advlib.evaluate.evaluate_model``; notebook 10's L∞);
    ``extra``: fields added to the row. Returns results.json's contents."""
    from ..train import load_trained
    from ..utils import machine_record, state_dict_sha256

    cfg = profile or run.cfg
    paths = run.paths
    settings = eval_settings(cfg, full)
    if norm != "l2":  # an L2 row's settings stay what they were
        settings.update(norm=norm, radii=[float(e) for e in radii or ()])
    results = rs.load_results(paths.results) if paths.results.is_file() else {"rows": []}
    model = load_trained(model_dir, device=run.device)
    ckpt_sha = state_dict_sha256(model)
    old = next((r for r in results.get("rows", []) if rs.row_key(r) == (row_name, model_origin, seed)), None)
    if old and old.get("checkpoint_sha256") == ckpt_sha and same_settings(old.get("eval_settings"), settings):
        return results
    if progress:
        print(f"[advlib] evaluating {model_dir.relative_to(paths.root)}", flush=True)
    metrics = ev.evaluate_model(model, *run.test, cfg, seed=run.cfg.seed, full=full,
                                autoattack=autoattack and cfg.autoattack_n > 0, norm=norm, radii=radii)
    tcfg = json.loads((model_dir / "config.json").read_text())
    row = rs.results_row(row_name, model_origin, metrics, arch=tcfg.get("arch"), seed=seed, dataset_sha256=dataset_sha,
                         checkpoint_sha256=ckpt_sha, model_dir=str(model_dir.relative_to(paths.root)),
                         eval_settings=settings, **extra)
    return rs.update_results(paths.results, row, profile=run.cfg, machine=machine_record(run.device))


def tables(results: dict):
    """The run's tables exactly as ``python -m advlib table results.json`` prints them."""
    from .. import tables as tb

    return show(tb.render(results))


def eps_figure(run: Run, results: dict):
    from .. import viz

    return save(run, viz.accuracy_vs_eps(results), "fig_accuracy_vs_eps")


def claims_text(results: dict) -> str:
    """The paper's claims, each with the verdict its interval gives, and the tally; no sentence
    states a claim its verdict does not support."""
    from ..verdicts import claims, tally, verdict_sentence

    found = claims(results)
    if not found:
        return "No claim can be tested yet: run notebooks 02, 04 and 05."
    out = [f"- {verdict_sentence(c)}" for c in found]
    out.append("\n" + tally(found))
    return "\n".join(out)


def conclusions(results: dict):
    return show(smoke_note(results.get("profile")) + claims_text(results))


def attack_explorer(run: Run):
    """Pick a test image, slide ε and the PGD steps, and watch the attack on the standard and the
    L2-robust source models side by side."""
    from .. import widgets

    models = widgets.load_models(run.paths)
    pair = {name: models[role] for name, role in (("standard", "standard"), ("L2-robust", "robust")) if role in models}
    if not pair:
        return show("No source models in this run yet: run notebook 02 first.")
    return widgets.AttackExplorer(pair, *run.test, eps_max=max(1.0, 2 * run.cfg.claim_eps))


def under_the_hood():
    """The few lines the evaluation runs: the L2 threat model's random start, step and projection,
    PGD, and APGD-T on what PGD left (the library's source, shown as it is)."""
    from .. import attacks, strong
    from .base import source_of

    return source_of(attacks.l2_random_start, attacks.l2_step, attacks.l2_project, attacks.pgd,
                     strong.apgd_t_correct,
                     note="The headline robust accuracy: per image, `pgd` (cross-entropy) and then APGD-T "
                          "(torchattacks' implementation, targeted DLR loss) on the images PGD did not break.")


__all__ = ["setup", "attack_explorer", "under_the_hood", "evaluate_all", "evaluate_one", "eval_settings", "same_settings", "models_to_evaluate", "tables", "eps_figure", "claims_text", "conclusions",
           "AUTOATTACK_ROWS"]
