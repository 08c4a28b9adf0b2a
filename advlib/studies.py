"""The steps of notebooks 07 (controls) and 08 (transfer), one function per step, as
:mod:`advlib.pipeline` does for 01-06. The pieces live in :mod:`advlib.controls` and
:mod:`advlib.transfer`; here they meet the run directory, training and results.json."""

from __future__ import annotations

import dataclasses
import json

from . import config, data
from . import controls as ctl
from . import evaluate as ev
from . import results as rs
from . import train as tr
from . import transfer as tf
from .construct import source_role
from .paths import RunPaths
from .pipeline import eval_settings, pct
from .utils import get_device, machine_record, state_dict_sha256, tensors_sha256

SOURCE = "constructed"  # controls and transfer models are trained on the run's own constructed sets
VARIANT_LABELS = {
    "d_rand_t_ne_y": "D_rand rows with t ≠ y",
    "d_rand_hits": "D_rand rows the source hits",
    "d_det_hits": "D_det rows the source hits",
}


def label(name: str) -> str:
    """A set's display name (results tables' labels; the subset variants' own)."""
    return VARIANT_LABELS.get(name) or rs.row_label(name)


# ================================================================================================
# Models trained on CIFAR-10
# ================================================================================================
def _source_model(cfg, paths: RunPaths, role: str, train, test, progress):
    """The source model of ``role`` from notebook 02 (loaded; trained first if the run lacks it)."""
    model, _ = tr.train_or_load(tr.train_config(cfg, role), *train, paths.source_model(role), eval_data=test,
                                progress=progress, device=get_device(cfg.device), source="cifar10",
                                dataset="cifar10", eval_every=cfg.eval_every)
    return model


def standard_source(cfg, paths: RunPaths, train, test=None, progress=True):
    """The standard source model of notebook 02 (loaded; trained first if the run lacks it)."""
    return _source_model(cfg, paths, "standard", train, test, progress)


def targeted_source(cfg, paths: RunPaths, train, test=None, progress=True):
    """The model D_rand, D_det and the D_other control attack (``construct.source_role``): the
    standard source model, or the profile's own standard model for the targeted sets
    (``target_source_epochs`` > 0, in ``models/cifar10/targeted``); loaded, trained first if missing."""
    return _source_model(cfg, paths, source_role("d_rand", cfg), train, test, progress)


def brief_model(cfg, paths: RunPaths, train, test=None, progress=True):
    """The relabel control's model: the standard recipe for ``relabel_epochs`` epochs on the
    CIFAR-10 training subset, in ``models/cifar10/brief``."""
    tcfg = dataclasses.replace(tr.train_config(cfg, "standard"), epochs=cfg.relabel_epochs)
    model, _ = tr.train_or_load(tcfg, *train, paths.model("brief", "cifar10"), eval_data=test, progress=progress,
                                device=get_device(cfg.device), source="cifar10", dataset="cifar10",
                                eval_every=cfg.eval_every)
    return model


# ================================================================================================
# Notebook 07: controls
# ================================================================================================
def build_controls(cfg, paths: RunPaths, train, source, brief, progress=True) -> dict[str, dict]:
    """Build (or reuse) the four control sets into ``datasets/constructed/<name>``; {name: meta}."""
    out = {}
    for name in config.CONTROL_SETS:
        model = {"d_other": source, "relabel": brief}.get(name)
        out[name] = ctl.build_control(name, profile=cfg, images=train[0], labels=train[1],
                                      out_dir=paths.dataset(name, SOURCE), model=model, progress=progress)
    return out


def _parent(cfg, paths: RunPaths, name: str, train, source) -> tuple | None:
    """(images, labels, meta) of the constructed D_rand / D_det, checked against this run's
    training pool and source model; None when the run has not built it."""
    from .construct import model_fingerprint, pool_fingerprint

    d = paths.dataset(name, SOURCE)
    if not all((d / f).is_file() for f in ("CIFAR_ims", "CIFAR_lab", "meta.json")):
        return None
    meta = json.loads((d / "meta.json").read_text())
    pool = (meta.get("pool") or {}).get("fingerprint")
    if pool != pool_fingerprint(*train):
        raise ValueError(f"{d}: built from another training pool ({pool} vs {pool_fingerprint(*train)}): "
                         "rerun notebook 02 with this profile")
    built_by = (meta.get("source_model") or {}).get("fingerprint")
    if source is not None and built_by != model_fingerprint(source):
        raise ValueError(f"{d}: built by another model ({built_by}) than the one in "
                         f"{paths.source_model(source_role(name, cfg))}: rerun notebook 02")
    x, y = data.load_feature_dataset(d)
    return x, y, meta


def subset_variants(cfg, paths: RunPaths, train, source) -> dict[str, dict]:
    """The subset variants of the constructed D_rand / D_det (rows whose target differs from the
    true label; rows the source model classifies as their target). Hits come from meta.json when
    recorded, else from the source model on the stored images. Variants whose parent set is not
    in the run are left out. {variant: subset dict of ``controls.subset_variant`` + info}."""
    out = {}
    parents = {}
    for variant in config.SUBSET_VARIANTS:
        pname = ctl.VARIANT_OF[variant]
        if pname not in parents:
            parents[pname] = _parent(cfg, paths, pname, train, source)
        if parents[pname] is None:
            continue
        x, y, meta = parents[pname]
        hits, how = (None, None) if variant == "d_rand_t_ne_y" else ctl.parent_hits(meta, x, y, source, cfg.eval_batch)
        sub = ctl.subset_variant(variant, x, y, meta, train[1], hits)
        sub.update(parent=pname, parent_rows=len(y), parent_sha256=meta.get("sha256"), hits_from=how,
                   rule=ctl.VARIANT_RULE[variant], sha256=tensors_sha256(sub["images"], sub["labels"]))
        if len(sub["labels"]) == 0:
            print(f"[advlib] {variant}: no row of {pname} qualifies; left out", flush=True)
            continue
        out[variant] = sub
    return out


def control_sets(paths: RunPaths, metas: dict, variants: dict) -> dict[str, tuple]:
    """Everything notebook 07 trains on: the control sets (read back from disk, as trained and
    evaluated) and the subset variants. {name: (images, labels)}."""
    sets = {name: data.load_feature_dataset(paths.dataset(name, SOURCE)) for name in metas}
    sets.update({name: (v["images"], v["labels"]) for name, v in variants.items()})
    return sets


def train_controls(cfg, paths: RunPaths, sets: dict, test=None, progress=True) -> dict[str, dict]:
    """A fresh model on each set with the recipe of the set it imitates (``train_config(cfg,
    "dataset", name)``), in ``models/constructed/<name>``; {name: history}. ``test``: watched after
    every epoch when given (costs a test pass per epoch; the evaluation step measures it anyway)."""
    histories = {}
    for name, (x, y) in sets.items():
        tcfg = tr.train_config(cfg, "dataset", name)
        _, histories[name] = tr.train_or_load(tcfg, x, y, paths.model(name, SOURCE), eval_data=test, progress=progress,
                                              device=get_device(cfg.device), source=SOURCE, dataset=name,
                                              eval_every=cfg.eval_every)
    return histories


def control_eval_profile(cfg):
    """Controls are about clean accuracy: PGD at ``eval_eps`` only, no AutoAttack."""
    return dataclasses.replace(cfg, eval_sweep=str(cfg.eval_eps), autoattack_n=0)


def evaluate_controls(cfg, paths: RunPaths, sets: dict, test, progress=True) -> dict:
    """Clean accuracy (all test images) and PGD at ``eval_eps`` of each set's model → a row per set
    in results.json (source "constructed", with ``train_n``, the training set's sha256 and the
    weights' sha256). A model is evaluated only if it learned from exactly these tensors; a row
    already there for the same weights and settings is kept. Returns results.json's contents."""
    ecfg = control_eval_profile(cfg)
    settings = eval_settings(ecfg)
    device = get_device(cfg.device)
    machine = machine_record(device)
    results = rs.load_results(paths.results) if paths.results.is_file() else {"rows": []}
    for name, (x, y) in sets.items():
        model_dir = paths.model(name, SOURCE)
        if not (model_dir / "checkpoint.pt").is_file():
            continue
        prov = tr.read_provenance(model_dir) or {}
        current = tensors_sha256(x, y.long())
        if prov.get("dataset_sha256") != current:
            raise ValueError(f"{model_dir} was trained on {name} with sha256 {str(prov.get('dataset_sha256'))[:12]}, "
                             f"but the set is now {current[:12]}: run the training step again first")
        model = tr.load_trained(model_dir, device=device)
        ckpt = state_dict_sha256(model)
        old = next((r for r in results.get("rows", []) if (r.get("dataset"), r.get("source"), r.get("seed"))
                    == (name, SOURCE, cfg.seed)), None)
        if old and old.get("checkpoint_sha256") == ckpt and old.get("eval_settings") == settings:
            continue
        if progress:
            print(f"[advlib] evaluating {model_dir.relative_to(paths.root)}", flush=True)
        metrics = ev.evaluate_model(model, *test, ecfg)
        row = rs.results_row(name, SOURCE, metrics, arch=(prov.get("train_config") or {}).get("arch"), seed=cfg.seed,
                             train_n=len(y), dataset_sha256=current, checkpoint_sha256=ckpt,
                             model_dir=str(model_dir.relative_to(paths.root)), eval_settings=settings,
                             study="controls", references=ctl.REFERENCES.get(name))
        results = rs.update_results(paths.results, row, profile=cfg, machine=machine)
    if not paths.results.is_file():
        raise FileNotFoundError(f"no control model found under {paths.models / SOURCE}: run the training step first")
    return rs.load_results(paths.results)


def _paper_set_entry(cfg, paths: RunPaths, name: str, results: dict, test, device) -> dict | None:
    """D_rand / D_det beside the controls: results.json's row when it belongs to the model on disk,
    else the model's clean accuracy computed here (notebook 05 not run yet); None without a model."""
    model_dir = paths.model(name, SOURCE)
    if not (model_dir / "checkpoint.pt").is_file():
        return None
    model = tr.load_trained(model_dir, device=device)
    ckpt = state_dict_sha256(model)
    row = next((r for r in results.get("rows", []) if (r.get("dataset"), r.get("source"), r.get("seed"))
                == (name, SOURCE, cfg.seed) and r.get("checkpoint_sha256") == ckpt), None)
    if row is None:
        acc = ev.accuracy(model, *test, batch_size=cfg.eval_batch)
        n = len(test[1])
        row = {"clean_acc": acc, "clean_ci95": ev.ci95(round(acc * n), n),
               "train_n": (tr.read_provenance(model_dir) or {}).get("n")}
    return {"clean_acc": row.get("clean_acc"), "clean_ci95": row.get("clean_ci95"), "train_n": row.get("train_n")}


def controls_summary(cfg, paths: RunPaths, results: dict, test, metas: dict | None = None,
                     variants: dict | None = None) -> list[dict]:
    """One entry per set for the figure and the conclusions: D_rand and D_det, the controls, the
    variants; each with ``clean_acc`` and its 95% interval, ``train_n``, its ``group`` ("paper
    set" | "control" | "variant"), published ``references`` and what it was built from."""
    device = get_device(cfg.device)
    rows = {r["dataset"]: r for r in results.get("rows", []) if r.get("source") == SOURCE and r.get("seed") == cfg.seed}
    out = []
    for name in ("d_rand", "d_det"):
        e = _paper_set_entry(cfg, paths, name, results, test, device)
        if e is not None:
            out.append({"name": name, "label": label(name), "group": "paper set", **e,
                        "references": ctl.REFERENCES.get(name, {})})
    for group, names in (("control", config.CONTROL_SETS), ("variant", config.SUBSET_VARIANTS)):
        for name in names:
            r = rows.get(name)
            if r is None:
                continue
            e = {"name": name, "label": label(name), "group": group, "clean_acc": r.get("clean_acc"),
                 "clean_ci95": r.get("clean_ci95"), "train_n": r.get("train_n"),
                 "robust_acc": (r.get("robust_acc") or {}).get(ev.eps_key(cfg.eval_eps)),
                 "references": ctl.REFERENCES.get(name, {})}
            m = (metas or {}).get(name) or {}
            v = (variants or {}).get(name) or {}
            if m:
                e.update(hit_rate=m.get("hit_rate"), kept_fraction=m.get("kept_fraction"),
                         target_equals_label_fraction=m.get("target_equals_label_fraction"))
            if v:
                e.update(parent=v.get("parent"), parent_rows=v.get("parent_rows"))
            out.append(e)
    return out


def construction_rows(metas: dict) -> list[dict]:
    """The control sets as a table: rows, how they were made, hit rate / kept fraction."""
    rows = []
    for name, m in metas.items():
        rows.append({"control": name, "images": m.get("n_rows"), "algorithm": m.get("algorithm"),
                     "target": m.get("target_rule"),
                     "target hit rate": pct(m["hit_rate"]) if m.get("hit_rate") is not None else "–",
                     "target = true label": pct(m.get("target_equals_label_fraction"))
                     if m.get("target_equals_label_fraction") is not None else "–",
                     "kept (relabel)": pct(m["kept_fraction"]) if m.get("kept_fraction") is not None else "–",
                     "seconds": f"{m.get('seconds') or 0:.1f}"})
    return rows


def variant_rows(variants: dict) -> list[dict]:
    return [{"variant": name, "rows": len(v["labels"]), "of": f"{v['parent']} ({v['parent_rows']})",
             "kept": pct(len(v["labels"]) / max(v["parent_rows"], 1)), "rule": v["rule"],
             "hits from": v.get("hits_from") or "–"} for name, v in variants.items()]


def summary_rows(summary: list[dict]) -> list[dict]:
    """The summary as a table (accuracy on the true test labels, with the published numbers)."""
    rows = []
    for e in summary:
        ci = e.get("clean_ci95")
        refs = "; ".join(f"{pct(v)} ({ctl.REFERENCE_SOURCES[k]})" for k, v in (e.get("references") or {}).items())
        rows.append({"trained on": e["label"], "group": e["group"], "train images": e.get("train_n"),
                     "test acc [95% CI]": pct(e.get("clean_acc")) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
                                                                     if ci else ""),
                     "published": refs or "–"})
    return rows


# ================================================================================================
# Notebook 08: transfer across architectures
# ================================================================================================
def transfer_examples(cfg, test, source) -> dict:
    """Targeted L2 PGD (``transfer_eps``, ``target_steps`` of ``target_step_size``, t = y + 1) on the
    model that built D_det (``targeted_source``) for ``transfer_n`` seeded class-balanced test
    images, with the source's own (white-box) hit rate."""
    adv = tf.targeted_examples(source, *test, n=cfg.transfer_n, eps=cfg.transfer_eps, steps=cfg.target_steps,
                               step_size=cfg.target_step_size, restarts=cfg.target_restarts, seed=cfg.seed,
                               batch_size=cfg.construct_batch, amp=cfg.amp)
    adv["whitebox_rate"] = tf.transfer_rate(source, adv, cfg.eval_batch)
    return adv


def _dataset_model(cfg, paths: RunPaths, name: str, arch: str, x, y, test, progress):
    """A model of ``arch`` trained on the constructed set ``name``: notebook 04's own model when
    ``arch`` is the profile's (same folder, same config: reused), else ``<name>@<arch>``."""
    tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), arch=arch)
    folder = paths.model(name if arch == cfg.arch else f"{name}@{arch}", SOURCE)
    model, hist = tr.train_or_load(tcfg, x, y, folder, eval_data=test, progress=progress,
                                   device=get_device(cfg.device), source=SOURCE, dataset=name,
                                   eval_every=cfg.eval_every)
    return model, hist, folder


def standard_seed(cfg, arch: str) -> int:
    """The seed of the standard model of ``arch``: the source model's own architecture gets
    seed + 1, so that its transfer rate is a transfer rate and not the source's white-box one."""
    return cfg.seed + 1 if arch == cfg.arch else cfg.seed


def transfer_models(cfg, paths: RunPaths, train, test=None, progress=True) -> dict[str, dict]:
    """For each architecture of ``transfer_archs``: models trained on the run's D_det and D_rand
    and a standard model trained on the CIFAR-10 training subset (``models/cifar10/standard-<arch>``).
    ``test``: watched after every epoch when given (``transfer_results`` measures it anyway).
    {arch: {"d_det": model, "d_rand": model | None, "standard": model, "histories": {...}, "dirs": {...}}}."""
    sets = {}
    for name in ("d_det", "d_rand"):
        d = paths.dataset(name, SOURCE)
        if (d / "CIFAR_ims").is_file() and (d / "CIFAR_lab").is_file():
            sets[name] = data.load_feature_dataset(d)
    if "d_det" not in sets:
        raise FileNotFoundError(f"{paths.dataset('d_det', SOURCE)}: no constructed D_det in this run; run notebook 02 "
                                "(with d_det among the profile's datasets) first")
    device = get_device(cfg.device)
    out = {}
    for arch in cfg.transfer_arch_list:
        entry = {"histories": {}, "dirs": {}, "d_rand": None}
        for name, (x, y) in sets.items():
            model, hist, folder = _dataset_model(cfg, paths, name, arch, x, y, test, progress)
            entry[name], entry["histories"][f"{name}@{arch}"], entry["dirs"][name] = model, hist, folder
        # the recipe of the model whose examples are transferred (the targeted sets' source)
        scfg = dataclasses.replace(tr.train_config(cfg, source_role("d_det", cfg)), arch=arch,
                                   seed=standard_seed(cfg, arch))
        folder = paths.model(f"standard-{arch}", "cifar10")
        entry["standard"], entry["histories"][f"standard-{arch}"] = tr.train_or_load(
            scfg, *train, folder, eval_data=test, progress=progress, device=device, source="cifar10", dataset="cifar10",
            eval_every=cfg.eval_every)
        entry["dirs"]["standard"] = folder
        entry["standard_seed"] = scfg.seed
        out[arch] = entry
    return out


def transfer_results(cfg, paths: RunPaths, models: dict, adv: dict, test, source=None) -> dict:
    """Accuracy of each architecture's D_det / D_rand model on the true test labels and the rate at
    which the source's targeted examples transfer to its standard model → ``transfer.json`` (atomic),
    with the fitted lines; returns its contents."""
    from .construct import model_fingerprint
    from .models import count_parameters

    def rel(p):
        return str(p.relative_to(paths.root)) if p.is_relative_to(paths.root) else str(p)

    rows = []
    for arch, m in models.items():
        rows.append(tf.row(
            arch, params=count_parameters(m["standard"]),
            ddet_acc=ev.accuracy(m["d_det"], *test, batch_size=cfg.eval_batch),
            drand_acc=ev.accuracy(m["d_rand"], *test, batch_size=cfg.eval_batch) if m.get("d_rand") is not None else None,
            rate=tf.transfer_rate(m["standard"], adv, cfg.eval_batch), n_test=len(test[1]), n_attacked=adv["n"],
            eps=cfg.transfer_eps, standard_acc=ev.accuracy(m["standard"], *test, batch_size=cfg.eval_batch),
            standard_seed=m.get("standard_seed"), model_dirs={k: rel(v) for k, v in m.get("dirs", {}).items()}))
    settings = {"transfer_eps": cfg.transfer_eps, "transfer_n": adv["n"], "steps": cfg.target_steps,
                "step_size": cfg.target_step_size, "restarts": cfg.target_restarts, "target_rule": tf.TARGET_RULE,
                "seed": cfg.seed, "n_test": len(test[1]), "cifar_source": cfg.cifar_source, "epochs": cfg.epochs,
                "source_epochs": cfg.source_epochs}
    src = {"arch": cfg.arch, "model_dir": str(paths.source_model(source_role("d_det", cfg)).relative_to(paths.root)),
           "whitebox_rate": adv.get("whitebox_rate")}
    if source is not None:
        src["fingerprint"] = model_fingerprint(source)
    result = tf.summarize(rows, whitebox_rate=adv.get("whitebox_rate"), settings=settings, source=src)
    result.update(profile=cfg.name, machine=machine_record(get_device(cfg.device)))
    tf.write_transfer(paths.root / tf.FILENAME, result)
    return result


def transfer_model_rows(models: dict) -> list[dict]:
    """Training of every transfer model (``pipeline.history_rows`` over all of them)."""
    from .pipeline import history_rows

    return history_rows({k: h for m in models.values() for k, h in m["histories"].items()})


def transfer_table(result: dict) -> list[dict]:
    rows = []
    for r in result.get("rows", []):
        rows.append({"arch": r["arch"], "params": f"{r['params']:,}", "standard model acc": pct(r.get("standard_acc")),
                     f"transfer rate (ε={r['transfer_eps']}, n={r['transfer_n']})": pct(r.get("transfer_rate")),
                     "trained on D_det: test acc": pct(r.get("ddet_acc")),
                     "trained on D_rand: test acc": pct(r.get("drand_acc"))})
    return rows


__all__ = [
    "label", "standard_source", "targeted_source", "brief_model", "build_controls", "subset_variants", "control_sets", "train_controls",
    "control_eval_profile", "evaluate_controls", "controls_summary", "construction_rows", "variant_rows",
    "summary_rows", "transfer_examples", "standard_seed", "transfer_models", "transfer_results", "transfer_model_rows",
    "transfer_table",
]
