"""Notebook 07, the controls the paper's critics asked for: D_other (targets never the true
label), synthetic label patterns, relabelled mistakes and subsets of D_rand / D_det — are D_rand /
D_det's accuracies features, or label leakage? (the sets: :mod:`advlib.controls`)."""

from __future__ import annotations

import dataclasses
import json

from .. import config, data
from .. import controls as ctl
from .. import evaluate as ev
from .. import results as rs
from ..construct import source_role
from ..utils import tensors_sha256
from . import base
from .base import MissingInput, Run, history_table, setup, targeted_source  # noqa: F401 (the names notebook cells call through this module)
from .evaluate import evaluate_one

ORIGIN = "constructed"  # controls are built from, and trained beside, the run's own constructed sets
VARIANT_LABELS = {
    "d_rand_t_ne_y": "D_rand rows with t ≠ y",
    "d_rand_hits": "D_rand rows the source hits",
    "d_det_hits": "D_det rows the source hits",
}
CHANCE = 0.10
_REF_NAMES = {"jordan": "Jordan's ResNet-9", "wallace": "Wallace's ResNet-18"}


def label(name: str) -> str:
    """A set's display name (results tables' labels; the subset variants' own)."""
    return VARIANT_LABELS.get(name) or rs.row_label(name)


def brief_model(run: Run, progress: bool = True):
    """The relabel control's model: the standard recipe for ``relabel_epochs`` epochs on the
    training pool, in ``models/cifar10/brief``."""
    model, _ = base.train_or_load(run, base.recipe(run, "standard", epochs=run.cfg.relabel_epochs), *run.train,
                             run.paths.model("brief", "cifar10"), origin="cifar10", dataset="cifar10", progress=progress)
    return model


def build_controls(run: Run, source, brief, progress: bool = True) -> dict[str, dict]:
    """Build (or reuse) the four control sets into ``datasets/constructed/<name>``; {name: meta}."""
    x, y = run.train
    return {name: ctl.build_control(name, profile=run.cfg, images=x, labels=y,
                                    out_dir=run.paths.dataset(name, ORIGIN),
                                    model={"d_other": source, "relabel": brief}.get(name), progress=progress)
            for name in config.CONTROL_SETS}


def _parent(run: Run, name: str, source) -> tuple | None:
    """(images, labels, meta) of the constructed D_rand / D_det, checked against this run's
    training pool and source model; None when the run has not built it."""
    from ..construct import model_fingerprint, pool_fingerprint

    d = run.paths.dataset(name, ORIGIN)
    if not all((d / f).is_file() for f in ("CIFAR_ims", "CIFAR_lab", "meta.json")):
        return None
    meta = json.loads((d / "meta.json").read_text())
    pool = (meta.get("pool") or {}).get("fingerprint")
    if pool != pool_fingerprint(*run.train):
        raise ValueError(f"{d}: built from another training pool ({pool} vs {pool_fingerprint(*run.train)}): "
                         "rerun notebook 02 with this profile")
    built_by = (meta.get("source_model") or {}).get("fingerprint")
    if source is not None and built_by != model_fingerprint(source):
        raise ValueError(f"{d}: built by another model ({built_by}) than the one in "
                         f"{run.paths.source_model(source_role(name, run.cfg))}: rerun notebook 02")
    x, y = data.load_feature_dataset(d)
    return x, y, meta


def subset_variants(run: Run, source) -> dict[str, dict]:
    """The subset variants of the constructed D_rand / D_det (rows whose target differs from the
    true label; rows the source model classifies as their target). Hits come from meta.json when
    recorded, else from the source model on the stored images. Variants whose parent set is not
    in the run are left out. {variant: subset dict of ``controls.subset_variant`` + info}."""
    out, parents = {}, {}
    for variant in config.SUBSET_VARIANTS:
        pname = ctl.VARIANT_OF[variant]
        if pname not in parents:
            parents[pname] = _parent(run, pname, source)
        if parents[pname] is None:
            continue
        x, y, meta = parents[pname]
        hits, how = (None, None) if variant == "d_rand_t_ne_y" else ctl.parent_hits(meta, x, y, source,
                                                                                  run.cfg.eval_batch)
        sub = ctl.subset_variant(variant, x, y, meta, run.train[1], hits)
        sub.update(parent=pname, parent_rows=len(y), parent_sha256=meta.get("sha256"), hits_from=how,
                   rule=ctl.VARIANT_RULE[variant], sha256=tensors_sha256(sub["images"], sub["labels"]))
        if len(sub["labels"]) == 0:
            print(f"[advlib] {variant}: no row of {pname} qualifies; left out", flush=True)
            continue
        out[variant] = sub
    return out


def control_sets(run: Run, metas: dict, variants: dict) -> dict[str, tuple]:
    """Everything notebook 07 trains on: the control sets (read back from disk, as trained and
    evaluated) and the subset variants. {name: (images, labels)}."""
    sets = {name: data.load_feature_dataset(run.paths.dataset(name, ORIGIN)) for name in metas}
    sets.update({name: (v["images"], v["labels"]) for name, v in variants.items()})
    return sets


def train_controls(run: Run, sets: dict, progress: bool = True) -> dict[str, dict]:
    """A fresh model on each set with the recipe of the set it imitates (``train_config(cfg,
    "dataset", name)``), in ``models/constructed/<name>``; {name: history}."""
    return {name: base.train_or_load(run, base.recipe(run, "dataset", name), x, y, run.paths.model(name, ORIGIN), origin=ORIGIN,
                                dataset=name, progress=progress)[1]
            for name, (x, y) in sets.items()}


def evaluate_controls(run: Run, sets: dict, progress: bool = True) -> dict:
    """Clean accuracy and robust accuracy at ``eval_eps`` (the controls are about clean accuracy: no
    sweep, no AutoAttack) of each set's model → a row per set in results.json (origin
    "constructed", with ``train_n`` and the sha256 of its data and weights). A model is evaluated
    only if it learned from exactly these tensors. Returns results.json's contents."""
    from .train import trained_on

    ecfg = dataclasses.replace(run.cfg, eval_sweep=(run.cfg.eval_eps,), claim_eps=run.cfg.eval_eps, autoattack_n=0)
    results = rs.load_results(run.paths.results) if run.paths.results.is_file() else {"rows": []}
    for name, (x, y) in sets.items():
        model_dir = run.paths.model(name, ORIGIN)
        if not (model_dir / "checkpoint.pt").is_file():
            continue
        current = tensors_sha256(x, y.long())
        if trained_on(model_dir) != current:
            raise ValueError(f"{model_dir} was trained on {name} with sha256 {str(trained_on(model_dir))[:12]}, "
                             f"but the set is now {current[:12]}: run the training step again first")
        results = evaluate_one(run, model_dir, name, ORIGIN, run.cfg.seed, current, profile=ecfg, progress=progress,
                               train_n=len(y), study="controls", references=ctl.REFERENCES.get(name))
    if not run.paths.results.is_file():
        raise MissingInput(f"no control model found under {run.paths.models / ORIGIN}: run the training step first")
    return results


def _paper_set_entry(run: Run, name: str, results: dict) -> dict | None:
    """D_rand / D_det beside the controls: results.json's row (notebook 05) for the run's own seed,
    else the model's clean accuracy on the test set computed here; None without a model."""
    from ..train import load_trained

    model_dir = run.paths.model(name, ORIGIN)
    if not (model_dir / "checkpoint.pt").is_file():
        return None
    row = next((r for r in rs.rows_of(results, name, ORIGIN) if r.get("seed") == run.cfg.seed), None)
    if row is None:
        model = load_trained(model_dir, device=run.device)
        x, y = run.test
        acc = ev.accuracy(model, x, y, batch_size=run.cfg.eval_batch)
        row = {"clean_acc": acc, "clean_ci95": ev.ci95(round(acc * len(y)), len(y))}
    return {"clean_acc": row.get("clean_acc"), "clean_ci95": row.get("clean_ci95"),
            "train_n": row.get("train_n") or len(data.load_feature_dataset(run.paths.dataset(name, ORIGIN))[1])}


def summary(run: Run, results: dict, metas: dict | None = None, variants: dict | None = None) -> list[dict]:
    """One entry per set for the figure and the conclusions: D_rand and D_det, the controls, the
    variants; each with ``clean_acc`` and its 95% interval, ``train_n``, its ``group`` ("paper
    set" | "control" | "variant"), published ``references`` and what it was built from."""
    rows = {r["dataset"]: r for r in results.get("rows", []) if rs.origin_of(r) == ORIGIN
            and r.get("seed") == run.cfg.seed}
    out = []
    for name in ("d_rand", "d_det"):
        e = _paper_set_entry(run, name, results)
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
                 "robust_acc": (r.get("robust_acc") or {}).get(ev.eps_key(run.cfg.eval_eps)),
                 "references": ctl.REFERENCES.get(name, {})}
            m, v = (metas or {}).get(name) or {}, (variants or {}).get(name) or {}
            if m:
                e.update(hit_rate=m.get("hit_rate"), kept_fraction=m.get("kept_fraction"),
                         target_equals_label_fraction=m.get("target_equals_label_fraction"))
            if v:
                e.update(parent=v.get("parent"), parent_rows=v.get("parent_rows"))
            out.append(e)
    return out


def construction_table(metas: dict):
    """The control sets as a table: rows, how they were made, hit rate / kept fraction."""
    from .base import duration

    return base.show(base.markdown_table([{
        "control": name, "images": m.get("n_rows"), "algorithm": m.get("algorithm"), "target": m.get("target_rule"),
        "target hit rate": base.pct(m.get("hit_rate")) if m.get("hit_rate") is not None else "–",
        "target = true label": base.pct(m.get("target_equals_label_fraction"))
        if m.get("target_equals_label_fraction") is not None else "–",
        "kept (relabel)": base.pct(m["kept_fraction"]) if m.get("kept_fraction") is not None else "–",
        "time": duration(m.get("seconds") or 0)} for name, m in metas.items()]))


def variant_table(variants: dict):
    return base.show(base.markdown_table([{
        "variant": name, "rows": len(v["labels"]), "of": f"{v['parent']} ({v['parent_rows']})",
        "kept": base.pct(len(v["labels"]) / max(v["parent_rows"], 1)), "rule": v["rule"],
        "hits from": v.get("hits_from") or "–"} for name, v in variants.items()]))


def summary_table(entries: list[dict]):
    """The summary as a table (accuracy on the true test labels, with the published numbers)."""
    rows = []
    for e in entries:
        ci = e.get("clean_ci95")
        refs = "; ".join(f"{base.pct(v)} ({ctl.REFERENCE_SOURCES[k]})" for k, v in (e.get("references") or {}).items())
        rows.append({"trained on": e["label"], "group": e["group"], "train images": e.get("train_n"),
                     "test acc [95% CI]": base.pct(e.get("clean_acc")) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
                                                                     if ci else ""),
                     "published": refs or "–"})
    return base.show(base.markdown_table(rows))


def figure(run: Run, entries: list[dict]):
    """The controls beside D_rand / D_det: each bar the mean over seeds with its 95% interval."""
    from .. import results as rs
    from .. import viz

    results = rs.load_results(run.paths.results) if run.paths.results.is_file() else None
    return base.save(run, viz.controls_bars(entries, results=results), "fig_controls")


def _ci_txt(e: dict) -> str:
    ci = e.get("clean_ci95")
    return base.pct(e.get("clean_acc")) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")



def _above_chance(e: dict | None) -> bool:
    """The 95% interval lies above chance (10%)."""
    if not e or e.get("clean_acc") is None:
        return False
    ci = e.get("clean_ci95")
    return (ci[0] if ci else e["clean_acc"]) > CHANCE



def _refs(e: dict) -> str:
    refs = e.get("references") or {}
    return ", ".join(f"{_REF_NAMES.get(k, k)}: {base.pct(v)}" for k, v in refs.items())



def _differs(a: dict | None, b: dict | None) -> int:
    """+1 / -1 when a's 95% interval lies wholly above / below b's, else 0 (no difference shown)."""
    ca, cb = (a or {}).get("clean_ci95"), (b or {}).get("clean_ci95")
    if not ca or not cb:
        return 0
    return 1 if ca[0] > cb[1] else -1 if ca[1] < cb[0] else 0



def _controls_text(summary: list[dict], profile: str | None = None) -> str:
    """What the controls of notebook 07 rule in or out, from :func:`summary`."""
    by = {e["name"]: e for e in summary or []}
    out = [base.smoke_note(profile)] if profile == "smoke" else []
    if not by:
        return "No control was trained yet: run the steps above (and notebooks 02 and 04 first)."
    rand, det = by.get("d_rand"), by.get("d_det")
    base_ok = _above_chance(rand) or _above_chance(det)
    if rand or det:
        parts = [f"{n} {_ci_txt(e)}" for n, e in (("D_rand", rand), ("D_det", det)) if e]
        note = "" if base_ok else (" Neither is clearly above chance here, so the controls have nothing to explain "
                                   "yet: read their numbers as a check that every step runs.")
        out.append(f"- **The sets under test**: trained on them, models score {' and '.join(parts)} on the true test "
                   f"labels (chance: 10%; paper, ResNet-50: 63% / 44%).{note}")
    other = by.get("d_other")
    if other:
        ref = f" ({_refs(other)})" if other.get("references") else ""
        if _above_chance(other):
            verdict = ("so the ~10% of D_rand rows whose random target happens to be the true label are not what the "
                       "model learns from: with every label wrong, the attack's perturbations alone teach it.")
        elif _above_chance(rand):
            verdict = ("not clearly above chance while D_rand is: in this run D_rand's correctly-labelled rows (~10%) "
                       "may carry what it teaches.")
        else:
            verdict = "not clearly above chance (nor is D_rand): this run says nothing either way."
        out.append(f"- **D_other** (targets never equal the true label): {_ci_txt(other)}{ref}, {verdict}")
    syn = [(n, by[k]) for n, k in (("D_rand", "d_rand_synthetic"), ("D_det", "d_det_synthetic")) if k in by]
    if syn:
        txt = " and ".join(f"{_ci_txt(e)} (as {n})" for n, e in syn)
        refs: dict[str, list[str]] = {}
        for _, e in syn:
            for k, v in (e.get("references") or {}).items():
                refs.setdefault(k, []).append(base.pct(v))
        ref = "; ".join(f"{_REF_NAMES.get(k, k)}: {' / '.join(v)}" for k, v in refs.items())
        parent = {"D_rand": rand, "D_det": det}
        reach = [n for n, e in syn if _above_chance(parent.get(n)) and _above_chance(e) and _differs(e, parent[n]) >= 0]
        if reach:
            verdict = (f"the shortcut reaches the accuracy of {' and '.join(reach)} (within the 95% intervals or "
                       "above): a trivially learnable pattern carrying the label suffices for that number, so accuracy "
                       "alone does not prove that the attack planted *features* of the target class.")
        elif base_ok and any(_above_chance(e) for _, e in syn):
            verdict = ("above chance but below the attacked sets: a shortcut explains part of the number, the "
                       "attack's perturbations add to it.")
        elif base_ok:
            verdict = ("near chance while the attacked sets are not: a pattern that carries the label but nothing of "
                       "the class's images teaches nothing that holds on real test images, whereas the attack's "
                       "perturbations do.")
        elif any(_above_chance(e) for _, e in syn):
            verdict = "above chance while the attacked sets are not: the shortcut is learnable and transfers here."
        else:
            verdict = "near chance, as are the attacked sets in this run: nothing to compare yet."
        out.append(f"- **Synthetic patterns** (no attack; one fixed random pattern of L2 norm ε per target class): "
                   f"{txt}{' (' + ref + ')' if ref else ''}; {verdict}")
    rel = by.get("relabel")
    if rel:
        ref = f" ({_refs(rel)})" if rel.get("references") else ""
        n = rel.get("train_n")
        if _above_chance(rel):
            verdict = ("a model's mistakes carry signal that transfers to the true labels without any perturbation: "
                       "wrong labels that follow a model's features teach those features, which is the mechanism the "
                       "paper invokes, here without adversarial examples.")
        else:
            verdict = "not clearly above chance in this run."
        what = (f" ({n:,} training images a briefly trained model gets wrong, labelled with its prediction, pixels "
                "unchanged)") if n else ""
        out.append(f"- **Relabelled mistakes**{what}: {_ci_txt(rel)}{ref}; {verdict}")
    var = [(k, by[k]) for k in ("d_rand_t_ne_y", "d_rand_hits", "d_det_hits") if k in by]
    if var:
        parts = [f"{e.get('label', k)} ({e.get('train_n') or '?'} rows): {_ci_txt(e)}" for k, e in var]
        notes = []
        for k, parent, pname in (("d_rand_t_ne_y", rand, "D_rand"), ("d_rand_hits", rand, "D_rand"),
                                 ("d_det_hits", det, "D_det")):
            if k not in by or not parent:
                continue
            d = _differs(by[k], parent)
            label = by[k].get("label", k)
            if d > 0:
                notes.append(f"{label} beat the whole of {pname}: the rows left out only add wrong labels")
            elif d < 0:
                notes.append(f"{label} fall below the whole of {pname}: the rows left out carry signal too "
                             "(or the smaller set costs more than they do)")
        summary_note = ("; ".join(notes) + ".") if notes else ("No subset differs from its whole set beyond the 95% "
                                                               "intervals.")
        out.append("- **Subsets of the attacked sets**: " + "; ".join(parts) + ". " + summary_note)
    return "\n".join(out)


def conclusions(run: Run, entries: list[dict]):
    """What the controls rule in or out, from :func:`summary`."""
    return base.show(_controls_text(entries, run.cfg.name))


__all__ = ["setup", "targeted_source", "history_table", "label", "brief_model", "build_controls", "subset_variants", "control_sets",
           "train_controls", "evaluate_controls", "summary", "construction_table", "variant_table", "summary_table",
           "figure", "conclusions"]
