"""Notebook 10, four questions the paper's readers still ask: the L∞ threat model, robust gradients
that look like objects, examples that are "just bugs", and how much of D_rand / D_det is robust-feature
leakage. Sets: :mod:`advlib.beyond`; algorithms: :mod:`advlib.synthesis`, :mod:`advlib.bugs`,
:mod:`advlib.leakage`; claims: :func:`advlib.verdicts.beyond_claims`; figures: :mod:`advlib.viz.beyond`."""

from __future__ import annotations

import dataclasses
import time

import torch

from .. import beyond as bey
from .. import config, data
from .. import evaluate as ev
from .. import results as rs
from ..construct import source_role
from ..provenance import make_provenance
from ..train import stale_reason
from ..utils import state_dict_sha256, tensors_sha256, wilson_interval
from . import base
from .base import MissingInput, Run, history_table, setup, targeted_source  # noqa: F401 (the names notebook cells call through this module)
from .evaluate import evaluate_one
from .train import trained_on
from .transfer import standard_seed

ORIGIN = "constructed"
LINF_SETS = ("d_robust_linf", "d_rand_linf", "d_det_linf")
PARTS = {"linf": "1 · The L∞ threat model", "synthesis": "2 · Robust gradients look like objects",
         "bugs": "3 · Examples that are just bugs", "leakage": "4 · How much of D_rand / D_det is leakage"}


def seeds(run: Run) -> list[int]:
    """The training seeds of notebook 10's models: ``beyond.seeds``, else the run's."""
    return list(dict.fromkeys(run.cfg.beyond.seeds)) or run.cfg.seeds


def _timed(run: Run, part: str, t0: float) -> None:
    rs.add_timings(run.paths.results, {f"beyond:{part}": round(time.perf_counter() - t0, 2)})


def _ci(ok: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in wilson_interval(int(ok.sum()), max(len(ok), 1))]


# --- 1 · L∞ -------------------------------------------------------------------------------------------
def linf_source(run: Run, progress: bool = True):
    """The L∞-robust source model (``beyond.linf_source``: L∞ PGD adversarial training on the training
    pool), in ``models/cifar10/robust_linf``; trained, or loaded when it is there."""
    from ..recipes import recipe_config

    run._cache["t_linf"] = time.perf_counter()
    tcfg = recipe_config(run.cfg, run.cfg.beyond.linf_source)
    model, _ = base.train_or_load(run, tcfg, *run.train, run.paths.model(config.LINF_SOURCE, "cifar10"), origin="cifar10",
                             dataset="cifar10", progress=progress)
    return model


def linf_sets(run: Run, linf, progress: bool = True) -> dict[str, dict]:
    """D_R from the L∞-robust model (the run's D_R images and start images) and D_rand / D_det built
    with targeted L∞ PGD on the model the run's targeted sets attack; {name: meta}."""
    x, y = run.train
    target = targeted_source(run)
    return {name: bey.build(name, model=linf if name == "d_robust_linf" else target, images=x, labels=y,
                            profile=run.cfg, out_dir=run.paths.dataset(name, ORIGIN), progress=progress)
            for name in LINF_SETS}


def sets_table(metas: dict):
    rows = []
    for name, m in metas.items():
        s = m["settings"]
        eps = s["eps"] if s.get("norm") != "linf" else f"{s['eps'] * 255:.3g}/255 (L∞)"
        rows.append({"set": name, "images": m["n_rows"], "algorithm": s["algorithm"], "ε": eps, "steps": s["steps"],
                     "target hit rate": base.pct(m.get("hit_rate")) if "hit_rate" in m else "–",
                     "ensemble unchanged": base.pct(m.get("unchanged_rate")) if "unchanged_rate" in m else "–",
                     "final rel. feature distance": f"{m['final_rel_distance']['mean']:.3f}"
                     if "final_rel_distance" in m else "–", "time": f"{m.get('seconds', 0):.0f} s"})
    return base.show(base.markdown_table(rows))


def _control_images(run: Run, name: str):
    meta = bey.read_meta(run.paths.dataset(name, ORIGIN))
    idx = torch.as_tensor(meta["source_indices"], dtype=torch.int64)
    x, y = run.train
    return x[idx], y[idx]


def control_dir(run: Run, name: str, seed: int, images, labels):
    """(folder, provenance name) of the matched control of ``name`` for ``seed``: the run's own
    control of D_R / D_NR (notebook 04) when it learned from exactly these images with this recipe,
    else ``models/cifar10/<control>`` of notebook 10."""
    control = bey.CONTROL[name]
    parent = bey.PARENT_CONTROL[control]
    tcfg = base.recipe(run, "dataset", parent, seed=seed)
    theirs = run.paths.model(parent, "cifar10", run.seed_arg(seed))
    if name == "d_robust_linf" and (theirs / "checkpoint.pt").is_file() and stale_reason(
            theirs, tcfg, make_provenance("cifar10", parent, images, labels, tcfg)) is None:
        return theirs, parent
    return run.paths.model(control, "cifar10", run.seed_arg(seed)), control


def linf_models(run: Run, progress: bool = True) -> dict[str, dict]:
    """A model on each L∞ set and on its matched control (the real images it was built from, true
    labels, the same recipe), once per seed of :func:`seeds`; {name[-seed<k>]: history}."""
    out = {}
    for name in LINF_SETS:
        xs, ys = data.load_feature_dataset(run.paths.dataset(name, ORIGIN))
        cx, cy = _control_images(run, name)
        for seed in seeds(run):
            tag = "" if seed == run.cfg.seed else f"-seed{seed}"
            _, out[name + tag] = base.train_or_load(run, base.recipe(run, "dataset", bey.PARENT[name], seed=seed), xs, ys,
                                               run.paths.model(name, ORIGIN, run.seed_arg(seed)), origin=ORIGIN,
                                               dataset=name, progress=progress)
            folder, pname = control_dir(run, name, seed, cx, cy)
            _, out[bey.CONTROL[name] + tag] = base.train_or_load(run, base.recipe(run, "dataset", bey.PARENT_CONTROL[
                bey.CONTROL[name]], seed=seed), cx, cy, folder, origin="cifar10", dataset=pname, progress=progress)
    return out


def _linf_todo(run: Run) -> list[tuple]:
    """(row, model folder, origin, seed, sha256 of the data it must have learned from or None, extra)."""
    p = run.paths
    todo = [("standard_linf", p.source_model("standard"), "cifar10", run.cfg.seed, None, {}),
            ("adversarial_l2_linf", p.source_model("robust"), "cifar10", run.cfg.seed, None, {}),
            ("adversarial_linf", p.model(config.LINF_SOURCE, "cifar10"), "cifar10", run.cfg.seed, None, {})]
    for seed in seeds(run):
        for name in LINF_SETS:
            meta = bey.read_meta(p.dataset(name, ORIGIN)) or {}
            extra = {"train_n": meta.get("n_rows"), "control": bey.CONTROL[name]}
            todo.append((name, p.model(name, ORIGIN, run.seed_arg(seed)), ORIGIN, seed, meta.get("sha256"), extra))
            if meta:
                cx, cy = _control_images(run, name)
                folder, _ = control_dir(run, name, seed, cx, cy)
                todo.append((bey.CONTROL[name], folder, "cifar10", seed, tensors_sha256(cx, cy.long()),
                             {"train_n": len(cy), "control_of": name}))
        nr = bey.read_meta(p.dataset("d_non_robust", ORIGIN)) if "d_non_robust" in p.available(ORIGIN) else None
        if nr:
            todo.append(("d_non_robust_linf", p.model("d_non_robust", ORIGIN, run.seed_arg(seed)), ORIGIN, seed,
                         nr.get("sha256"), {"train_n": nr.get("n_rows"), "control": "control_rnr_linf"}))
    return todo


def linf_profile(run: Run):
    """The profile the L∞ evaluations run with: ``beyond.eval_n`` test images, no AutoAttack."""
    return dataclasses.replace(run.cfg, eval_n=run.cfg.beyond.eval_n or run.cfg.eval_n, autoattack_n=0)


def linf_evaluate(run: Run, progress: bool = True) -> dict:
    """Every L∞ model on the same test images under L∞ at ``beyond.linf_eps`` with the headline attack
    (PGD, then APGD-T on what it left) → results.json rows (``norm`` "linf"), with provenance."""
    prof = linf_profile(run)
    for row, folder, origin, seed, sha, extra in _linf_todo(run):
        if not (folder / "checkpoint.pt").is_file():
            continue
        learned = trained_on(folder)
        if sha is not None and learned != sha:
            raise ValueError(f"{folder} learned from data with sha256 {str(learned)[:12]}, but {row} is now "
                             f"{sha[:12]}: run the training step above again")
        evaluate_one(run, folder, row, origin, seed, learned, full=False, profile=prof, progress=progress,
                     norm="linf", radii=[run.cfg.beyond.linf_eps], study="beyond", **extra)
    if not run.paths.results.is_file():
        raise MissingInput(f"no model found for notebook 10 under {run.paths.models}: run the steps above")
    if "t_linf" in run._cache:
        _timed(run, "linf", run._cache.pop("t_linf"))
    return rs.load_results(run.paths.results)


def linf_table(results: dict):
    """The L∞ rows beside their L2 counterparts (the tables of notebook 05)."""
    from .. import tables

    return base.show(tables.linf_table(results))


def linf_figure(run: Run, results: dict):
    from .. import viz
    from ..verdicts import linf_key

    names = ["standard_linf", "adversarial_l2_linf", "adversarial_linf", "d_robust_linf", "d_non_robust_linf",
             "control_rnr_linf", "d_rand_linf", "control_rand_linf", "d_det_linf", "control_det_linf"]
    return base.save(run, viz.linf_bars(results, names, linf_key=linf_key(results)), "fig_beyond_linf")


# --- 2 · synthesis ----------------------------------------------------------------------------------
def holdout_and_ensemble(run: Run, progress: bool = True) -> tuple[str, object, dict]:
    """Notebook 08's standard models (``models/cifar10/standard-<arch>``, the recipe of the targeted
    sets' source, the source's own architecture with seed + 1; trained here when absent): the one of
    ``beyond.bugs_holdout`` held out, and the others as the ensemble. (name, model, {name: model})."""
    cfg = run.cfg
    archs = list(dict.fromkeys([*cfg.transfer_arch_list, cfg.beyond.bugs_holdout]))
    models = {}
    for arch in archs:
        tcfg = base.recipe(run, source_role("d_det", cfg), arch=arch, seed=standard_seed(run, arch))
        models[f"standard-{arch}"], _ = base.train_or_load(run, tcfg, *run.train, run.paths.model(f"standard-{arch}", "cifar10"),
                                                      origin="cifar10", dataset="cifar10", progress=progress)
    hold = f"standard-{cfg.beyond.bugs_holdout}"
    ensemble = {k: m for k, m in models.items() if k != hold}
    if not ensemble:
        raise ValueError(f"beyond.bugs_holdout {cfg.beyond.bugs_holdout!r} leaves no model of transfer_archs "
                         f"{cfg.transfer_archs} for the ensemble")
    return hold, models[hold], ensemble


def synthesis(run: Run, judge, progress: bool = True) -> dict:
    """Large-ε targeted L2 attacks (``beyond.synth_eps``, ``synth_steps`` steps each) of
    ``synth_images`` test images toward every class, on the standard and the L2-robust source models.
    ``judge`` (the notebook passes part 1's L∞-robust model: robust, so it reads robust features and
    ignores the noise that fools a standard model, and used for neither attack) says whether each
    image shows the target. Writes one row per model to results.json."""
    from .. import synthesis as syn
    from ..bugs import predictions

    t0 = time.perf_counter()
    cfg, b = run.cfg, run.cfg.beyond
    xt, yt = run.test
    idx = ev.eval_subset(yt, b.synth_images, cfg.seed)
    x, y = xt[idx], yt[idx]
    rows, targets = syn.all_targets(len(idx))
    judge_name = "the L∞-robust model"
    eps = sorted(b.synth_eps)
    show_index = min(range(len(eps)), key=lambda k: abs(eps[k] - b.synth_show))
    out = {"eps": eps, "steps": b.synth_steps, "start": x, "labels": y, "n_images": len(idx),
           "show_index": show_index, "judge": judge_name, "models": {}}
    for name, role in (("standard", "standard"), ("adversarial", "robust")):
        model = base.source_model(run, role, progress)
        r = syn.synthesize(model, x[rows], targets, eps, steps=b.synth_steps, batch_size=cfg.construct_batch)
        r["judge_hit"] = torch.stack([predictions([judge], r["images"][k], cfg.eval_batch)[0] == targets
                                      for k in range(len(eps))])
        r["dir"], r["sha"] = run.paths.source_model(role), state_dict_sha256(model)
        out["models"][name] = r
    _synthesis_rows(run, out, targets != y[rows], judge)
    _timed(run, "synthesis", t0)
    return out


def _synthesis_rows(run: Run, out: dict, other: torch.Tensor, judge) -> None:
    from ..utils import machine_record

    k = out["show_index"]
    for name, r in out["models"].items():
        judged = r["judge_hit"][k][other]
        per_eps = {ev.eps_key(e): {"target_rate": float(r["hit"][j][other].float().mean()),
                                   "judge_rate": float(r["judge_hit"][j][other].float().mean()),
                                   "target_logit": float(r["logit"][j + 1][other].mean())}
                   for j, e in enumerate(out["eps"])}
        row = rs.results_row("synthesis_robust" if name == "adversarial" else "synthesis_standard", "cifar10", {
            "clean_acc": float(judged.float().mean()), "clean_ci95": _ci(judged), "clean_n": int(other.sum()),
            "masks": {"judge": ev.pack_mask(judged)}, "judge_eps": out["eps"][k], "per_eps": per_eps,
            "clean_target_logit": float(r["logit"][0][other].mean())},
            seed=run.cfg.seed, arch=run.cfg.arch, measure="synthesis", study="beyond", judge=out["judge"],
            judge_checkpoint_sha256=state_dict_sha256(judge), dataset_sha256=trained_on(r["dir"]),
            checkpoint_sha256=r["sha"], model_dir=str(r["dir"].relative_to(run.paths.root)), steps=out["steps"], pairs="every image × every "
            "class ≠ its own", n_images=out["n_images"])
        rs.update_results(run.paths.results, row, profile=run.cfg, machine=machine_record(run.device))


def synthesis_figure(run: Run, out: dict):
    from .. import viz

    return base.save(run, viz.synthesis_grid(out), "fig_synthesis")


def synthesis_slider(out: dict):
    from .. import widgets

    return widgets.SynthesisSlider(out)


def synthesis_table(out: dict):
    """Per radius and model: how often it reaches the target, and how often the judge sees the target."""
    other = out["labels"].repeat_interleave(10) != torch.arange(10).repeat(out["n_images"])
    rows = []
    for j, e in enumerate(out["eps"]):
        row = {"L2 ε": f"{e:g}"}
        for name, r in out["models"].items():
            label = "L2-robust" if name == "adversarial" else "standard"
            row[f"{label}: reaches the target"] = base.pct(r["hit"][j][other].float().mean())
            row[f"{label}: {out['judge']} sees the target"] = base.pct(r["judge_hit"][j][other].float().mean())
        rows.append(row)
    return base.show(base.markdown_table(rows))


# --- 3 · just bugs ----------------------------------------------------------------------------------
def just_bugs(run: Run, progress: bool = True) -> dict:
    """The just-bugs D_det (targeted examples of the source that leave notebook 08's other standard
    models unchanged) and the run's D_det on the same images: both sets' rates (the source hits the
    target, the ensemble keeps its predictions, the held-out model follows: transfer), a model on
    each per seed (the D_det recipe), evaluated on the test set → results.json rows."""
    t0 = time.perf_counter()
    cfg, paths = run.cfg, run.paths
    if "d_det" not in paths.available(ORIGIN):
        raise MissingInput(f"{paths.dataset('d_det', ORIGIN)}: no constructed D_det in this run; run notebook 02 first")
    source = targeted_source(run)
    hold_name, hold, ensemble = holdout_and_ensemble(run, progress)
    x, y = run.train
    meta = bey.build("d_det_bugs", model=source, images=x, labels=y, profile=cfg, out_dir=paths.dataset("d_det_bugs"),
                     ensemble=ensemble, progress=progress)
    idx = torch.as_tensor(meta["source_indices"], dtype=torch.int64)
    sets = {"d_det_subset": bey.subset_of(paths.dataset("d_det", ORIGIN), idx)[:2],
            "d_det_bugs": data.load_feature_dataset(paths.dataset("d_det_bugs"))}
    entries = []
    for name, (xs, ys) in sets.items():
        r = bey.rates({"source": source, **ensemble, hold_name: hold}, xs, x[idx], ys, cfg.eval_batch)
        same = torch.stack([r[f"{k}:unchanged"] for k in ensemble]).all(0)
        e = {"name": name, "label": rs.short_name(name), "train_n": len(ys)}
        for key, ok in (("hit", r["source"]), ("unchanged", same), ("transfer", r[hold_name])):
            e[f"{key}_rate"], e[f"{key}_ci95"] = float(ok.float().mean()), _ci(ok)
        entries.append(e)
    ecfg = dataclasses.replace(cfg, eval_sweep=(cfg.eval_eps,), claim_eps=cfg.eval_eps, autoattack_n=0)
    histories = {}
    for e in entries:
        xs, ys = sets[e["name"]]
        sha = tensors_sha256(xs, ys.long())
        for seed in seeds(run):
            folder = paths.model(e["name"], ORIGIN, run.seed_arg(seed))
            _, histories[e["name"] + ("" if seed == cfg.seed else f"-seed{seed}")] = base.train_or_load(
                run, base.recipe(run, "dataset", "d_det", seed=seed), xs, ys, folder, origin=ORIGIN, dataset=e["name"],
                progress=progress)
            results = evaluate_one(run, folder, e["name"], ORIGIN, seed, sha, full=False, profile=ecfg,
                                   progress=progress, study="beyond", holdout=hold_name, ensemble=sorted(ensemble),
                                   **{k: v for k, v in e.items() if k not in ("name", "label")})
    _timed(run, "bugs", t0)
    return {"entries": entries, "histories": histories, "holdout": hold_name, "ensemble": sorted(ensemble),
            "results": results}


def bugs_table(bugs: dict):
    rows = [{"set": e["label"], "rows": e["train_n"], "source hits the target": base.pct(e["hit_rate"]),
             f"ensemble ({', '.join(bugs['ensemble'])}) unchanged": base.pct(e["unchanged_rate"]),
             f"transfer: {bugs['holdout']} predicts the target": base.pct(e["transfer_rate"])} for e in bugs["entries"]]
    return base.show(base.markdown_table(rows))


def bugs_figure(run: Run, bugs: dict):
    from .. import viz

    return base.save(run, viz.bugs_bars(bugs["results"], bugs["entries"]), "fig_just_bugs")


# --- 4 · leakage ------------------------------------------------------------------------------------
def leakage(run: Run) -> list[dict]:
    """Goh's linear lower bound on robust-feature leakage, per constructed D_rand / D_det: a linear
    classifier on the L2-robust model's features of the set's training images and its labels, its
    accuracy on the true labels of the test images notebook 05 evaluates the sets on, beside the
    set's models' accuracy there (results.json) → one row per set."""
    from .. import leakage as lk
    from .. import stats
    from ..utils import machine_record

    t0 = time.perf_counter()
    cfg, paths, b = run.cfg, run.paths, run.cfg.beyond
    if not paths.results.is_file():
        raise MissingInput(f"{paths.results} not found: run notebook 05 (evaluation) first")
    results = rs.load_results(paths.results)
    robust = base.source_model(run, "robust", False)
    xt, yt = run.test
    idx = ev.eval_subset(yt, cfg.eval_n, cfg.seed)
    ye = yt[idx]
    test_f = lk.features(robust, xt[idx], cfg.eval_batch)
    entries = []
    for name in [n for n in ("d_rand", "d_det") if n in paths.available(ORIGIN)]:
        set_rows = [r for r in rs.rows_of(results, name, ORIGIN) if (r.get("masks") or {}).get("clean")]
        if not set_rows or int(set_rows[0]["clean_n"]) != len(ye):
            raise MissingInput(f"no results.json row of {name} on these test images: run notebook 05 first")
        xs, ys = data.load_feature_dataset(paths.dataset(name, ORIGIN))
        probe = lk.fit_probe(lk.features(robust, xs, cfg.eval_batch), ys, steps=b.probe_steps,
                             weight_decay=b.probe_weight_decay)
        pred = probe.predict(test_f)
        ok, shifted = pred == ye, pred == (ye + 1) % 10
        masks = [ev.unpack_mask(r["masks"]["clean"], int(r["clean_n"])).numpy() for r in set_rows]
        set_acc, lo, hi = stats.bootstrap_mean(masks)
        est = lk.leakage_estimate(float(ok.float().mean()), set_acc)
        e = {"name": name, "probe_acc": est["probe_acc"], "probe_ci95": _ci(ok), "set_acc": set_acc,
             "set_ci95": [lo, hi], "set_seeds": len(set_rows), "explained": est["explained"], "share": est["share"],
             "probe_train_acc": probe.train_acc, "shifted_acc": float(shifted.float().mean())}
        entries.append(e)
        row = rs.results_row(f"leakage_{name}", ORIGIN, {
            "clean_acc": e["probe_acc"], "clean_ci95": e["probe_ci95"], "clean_n": len(ye),
            "masks": {"clean": ev.pack_mask(ok), "shifted": ev.pack_mask(shifted)}, "shifted_acc": e["shifted_acc"]},
            seed=cfg.seed, arch="linear probe", measure="linear probe on robust features", study="beyond",
            features_of=str(paths.source_model("robust").relative_to(paths.root)),
            dataset_sha256=tensors_sha256(xs, ys.long()), checkpoint_sha256=state_dict_sha256(robust),
            probe={"steps": b.probe_steps, "weight_decay": b.probe_weight_decay, "train_acc": probe.train_acc},
            **{k: e[k] for k in ("set_acc", "set_ci95", "set_seeds", "explained", "share")})
        rs.update_results(paths.results, row, profile=cfg, machine=machine_record(run.device))
    _timed(run, "leakage", t0)
    return entries


def leakage_table(entries: list[dict]):
    def ci(e, k):
        return f"{base.pct(e[k + '_acc'])} [{100 * e[k + '_ci95'][0]:.1f}, {100 * e[k + '_ci95'][1]:.1f}]"

    return base.show(base.markdown_table([{
        "set": rs.short_name(e["name"]), f"model trained on it ({e['set_seeds']} seeds)": ci(e, "set"),
        "linear probe on robust features": ci(e, "probe"), "probe predicts y + 1": base.pct(e["shifted_acc"]),
        "explained (points above chance)": f"{100 * e['explained']:.1f}",
        "share of the set's points above chance": base.pct(e["share"])} for e in entries]))


def leakage_figure(run: Run, entries: list[dict]):
    from .. import viz

    return base.save(run, viz.leakage_bars(entries), "fig_leakage")


# --- what this run shows ----------------------------------------------------------------------------
def part_of(claim_id: str) -> str:
    for prefix, part in (("synthesis", "synthesis"), ("d_det_bugs", "bugs"), ("d_det_subset", "bugs"),
                         ("leakage", "leakage")):
        if claim_id.startswith(prefix):
            return part
    return "linf"


def verdicts(run: Run, part: str = ""):
    """The claims of notebook 10 (of one ``part``: linf | synthesis | bugs | leakage), each with the
    verdict its interval gives."""
    from ..verdicts import beyond_claims, verdict_sentence

    results = rs.load_results(run.paths.results) if run.paths.results.is_file() else {"rows": []}
    found = [c for c in beyond_claims(results) if not part or part_of(c["id"]) == part]
    if not found:
        return base.show("No claim of this part can be tested yet: run the steps above.")
    return base.show(base.smoke_note(run.cfg.name) + "\n".join(f"- {verdict_sentence(c)}" for c in found))


BEYOND_TALLY_NOTE = "a claim about training on a set needs at least two seeds for a verdict"


def conclusions(run: Run):
    """Every claim of notebook 10 by part, with the tally and the time each part took."""
    from ..verdicts import beyond_claims, tally, verdict_sentence

    results = rs.load_results(run.paths.results) if run.paths.results.is_file() else {"rows": []}
    found = beyond_claims(results)
    out = [base.smoke_note(run.cfg.name)] if run.cfg.name == "smoke" else []
    times = results.get("timings_s", {})
    for part, title in PARTS.items():
        here = [c for c in found if part_of(c["id"]) == part]
        took = times.get(f"beyond:{part}")
        out.append(f"**{title}**" + (f" ({took:.0f} s)" if took is not None else "") + ":")
        out += [f"- {verdict_sentence(c)}" for c in here] or ["- nothing measured yet."]
    out.append("\n" + tally(found, BEYOND_TALLY_NOTE))
    return base.show("\n".join(out))


__all__ = ["setup", "seeds", "linf_source", "linf_sets", "sets_table", "control_dir", "linf_models", "history_table",
           "linf_profile", "linf_evaluate", "linf_table", "linf_figure", "holdout_and_ensemble", "synthesis",
           "synthesis_figure", "synthesis_slider", "synthesis_table", "just_bugs", "bugs_table", "bugs_figure",
           "leakage", "leakage_table", "leakage_figure", "verdicts", "conclusions", "part_of"]
