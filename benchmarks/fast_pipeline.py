"""The whole study without papermill, stage by stage, with wall times: the GPU measurement script.

    python -m benchmarks.fast_pipeline --profile fast --cifar path/to/cifar10.zip --run-dir runs/fast \\
        [-p FIELD VALUE ...] [--stages standard,robust,construct,throughput,train,controls,evaluate] \\
        [--out report.json] [--results-out results.json] [--eval headline|full] [--autoattack]

Built on the algorithm modules, as the notebooks run them: the source models
(``advlib.construct.source_models``), the profile's sets (``construct.construct_all``), a model per
set and seed (``train.train_or_load``), each set's matched control (``steps.train.matched_controls``:
the real training images at the set's ``source_indices``, true labels, trained with
``train.train_config(cfg, "dataset", <control>)`` and the same seeds), and every model's evaluation
(``steps.evaluate.evaluate_one`` -> ``evaluate.evaluate_model``: clean and robust accuracy on the
same test images under the headline attack, per-image masks, intervals; a row as
``results.results_row`` writes it). The data is the study's own: the profile's training pick and
test split (``n_val`` held out only when the profile says so). Training is watched on the test set
only to report (the standard source model after every epoch: its time to accuracy; the others
after their last epoch); nothing is chosen on it.

Writes the report (default <run-dir>/pipeline.json) after every stage and every trained or
evaluated model, so a run cut short still reports what it finished: the machine, the profile,
per-stage seconds (``seconds``; ``total`` is the study's pipeline: data, source models, sets, their
models and controls, their evaluation with intervals), the source models' accuracy per epoch and
the standard one's time to accuracy, construction hit rates / matching distances, representation
matching's img·steps/s against the model's own forward + backward rate (``throughput``), the
training histories, and ``results``: a results.json-shaped dict (``{"profile", "seed", "config",
"machine", "rows"}``, one ``results_row`` per evaluated model) that ``advlib.verdicts.claims`` and
``advlib.tables.render`` read (``--results-out`` writes it alone, for ``python -m advlib table``),
with the ``claims`` and the ``goals`` (the fast profile's targets, met or not). ``--eval
headline`` (default) attacks at ``eval_eps`` and ``claim_eps`` only and ``--autoattack`` adds
the AutoAttack cross-check: what one GPU run can afford. Every path in the report is portable
(``_common.portable``). Runs on the CPU too (``--profile smoke --cifar sample``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from advlib import construct, data
from advlib import results as rs
from advlib import train as tr
from advlib.utils import atomic_write_json, machine_record
from benchmarks._common import add_run_args, pct, portable, setup

STAGES = ("standard", "robust", "construct", "throughput", "train", "controls", "evaluate")
# What gets evaluated first: the goal rows, each set beside its matched control (a run cut short
# keeps the most informative rows); the source models only the study needs as sources come last
# and are not part of the pipeline's total
EVAL_ORDER = ("standard", "d_robust", "control_rnr", "d_non_robust", "d_rand", "control_rand", "d_det", "control_det")
EXTRA_ROWS = ("adversarial", "standard_targeted")
TOTAL_OF = ("load_data", "source_models", "construct", "train", "controls", "evaluate", "claims")
TARGET_ACC = 0.93  # the standard source model's time to accuracy is measured to this test accuracy
# The fast profile's targets on one H100/H200: (row, what, comparison, threshold); robust = the
# headline attack at eval_eps
GOALS = (
    ("standard", "clean", ">=", 0.92), ("standard", "robust", "<=", 0.10),
    ("d_robust", "clean", ">=", 0.75), ("d_robust", "robust", ">=", 0.35),
    ("d_robust", "robust over control", ">=", 0.20),
    ("d_non_robust", "clean", ">=", 0.80), ("d_non_robust", "robust", "<=", 0.05),
    ("d_rand", "clean", ">=", 0.55), ("d_rand", "robust", "<=", 0.05),
    ("d_det", "clean", ">=", 0.30), ("d_det", "robust", "<=", 0.05),
)
TIME_GOALS = (("standard source model: seconds to 93% test accuracy", "<=", 10.0),
              ("whole pipeline: seconds", "<=", 600.0))


# --- what the report holds ----------------------------------------------------------------------
def construction_rows(metas: dict[str, dict]) -> list[dict]:
    """Per constructed set: rows, algorithm, steps, hit rate, final matching distance, time."""
    keys = ("n_rows", "algorithm", "steps", "hit_rate", "target_equals_label_fraction", "final_rel_distance",
            "seconds", "images_per_second")
    return [{"dataset": name, **{k: m.get(k) for k in keys}} for name, m in metas.items()]


def history_rows(histories: dict[str, dict]) -> list[dict]:
    """Per trained model: epochs, final loss and accuracies, seconds."""
    rows = []
    for name, h in histories.items():
        rows.append({"trained on": name, "epochs": len(h.get("loss", [])),
                     "final loss": (h.get("loss") or [None])[-1], "train acc": (h.get("train_acc") or [None])[-1],
                     "test acc (CIFAR-10)": (h.get("eval_acc") or [None])[-1],
                     "seconds": round(sum(h.get("seconds", [])), 1)})
    return rows


def time_to_accuracy(history: dict, target: float = TARGET_ACC) -> dict:
    """When a training history first reached ``target`` test accuracy: the epoch and the seconds
    of training (epochs summed, their test evaluation included) up to it; None when it never did."""
    seconds, accs = history.get("seconds") or [], history.get("eval_acc") or []
    elapsed, out = 0.0, {"target": target, "epoch": None, "seconds": None}
    for epoch, (s, a) in enumerate(zip(seconds, accs, strict=False), start=1):
        elapsed += s
        if a is not None and a >= target and out["epoch"] is None:
            out.update(epoch=epoch, seconds=round(elapsed, 2))
    final = next((a for a in reversed(accs) if a is not None), None)
    return {**out, "final_acc": final, "epochs": len(seconds), "train_seconds": round(sum(seconds), 2),
            "acc_per_epoch": accs, "cumulative_seconds": [round(sum(seconds[:k + 1]), 2) for k in range(len(seconds))]}


def eval_overhead(model, test, repeats: int = 2) -> float:
    """Seconds of the clean test-set accuracy that ``fit`` runs after each watched epoch (best of
    ``repeats`` after a warm-up): what the time to accuracy holds beside training."""
    from advlib.evaluate import accuracy
    from advlib.utils import Timer

    accuracy(model, *test)
    best = float("inf")
    for _ in range(repeats):
        with Timer() as t:
            accuracy(model, *test)
        best = min(best, t.seconds)
    return round(best, 3)


def scrub(obj):
    """``obj`` with every string that is an absolute path made portable (``_common.portable``): a
    report never carries a machine's paths."""
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, (str, Path)) and os.path.isabs(str(obj)):
        return portable(obj)
    return obj


def _row_value(rows: list[dict], what: str, eps: str):
    vals = [r.get("clean_acc") if what == "clean" else (r.get("robust_acc") or {}).get(eps) for r in rows]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def goals(report: dict) -> list[dict]:
    """Each of the fast profile's targets (``GOALS``, ``TIME_GOALS``) against what the report
    measured: ``{"goal", "measured", "met"}`` (met None where it measured nothing)."""
    results = report.get("results") or {}
    eps = str(float((results.get("config") or {}).get("eval_eps", 0.25)))
    out = []
    for row, what, cmp, threshold in GOALS:
        rows = rs.rows_of(results, row)
        if what == "robust over control":
            control = rs.rows_of(results, (rows or [{}])[0].get("control") or "")
            a, b = _row_value(rows, "robust", eps), _row_value(control, "robust", eps)
            value = None if a is None or b is None else a - b
        else:
            value = _row_value(rows, what, eps)
        label = f"{rs.short_name(row)} {what}" + ("" if what == "clean" else f" @ {eps}")
        out.append({"goal": f"{label} {cmp} {pct(threshold)}", "measured": value,
                    "met": None if value is None else (value >= threshold if cmp == ">=" else value <= threshold)})
    tta = (report.get("time_to_accuracy") or {}).get("standard") or {}
    total = (report.get("seconds") or {}).get("total") if report.get("complete") else None
    for (label, cmp, threshold), value in zip(TIME_GOALS, (tta.get("seconds"), total), strict=True):
        out.append({"goal": f"{label} {cmp} {threshold:g}", "measured": value,
                    "met": None if value is None else value <= threshold})
    return out


def render(report: dict) -> str:
    """The report in a few lines: stage seconds, the goals met or not, the matching rate."""
    sec = report.get("seconds") or {}
    order = [k for k in (*TOTAL_OF, "total") if k in sec] + sorted(set(sec) - {*TOTAL_OF, "total"})
    done = "complete" if report.get("complete") else f"NOT complete (stages done: {report.get('stages_done')})"
    lines = [f"fast_pipeline, profile {report.get('profile', {}).get('name')}, {done}",
             "seconds: " + ", ".join(f"{k} {sec[k]}" for k in order), "", "| goal | measured | met |", "|---|---|---|"]
    for g in goals(report):
        v = g["measured"]
        shown = "–" if v is None else (f"{v:.1f} s" if "seconds" in g["goal"] else
                                       f"{100 * v:+.1f} pts" if "over control" in g["goal"] else pct(v))
        lines.append(f"| {g['goal']} | {shown} | {'–' if g['met'] is None else 'yes' if g['met'] else 'NO'} |")
    th = report.get("throughput") or {}
    if th.get("fraction_of_fwd_bwd") is not None:
        lines.append(f"\nrepresentation matching: {th['matching_img_steps_per_s']:,.0f} img·steps/s = "
                     f"{100 * th['fraction_of_fwd_bwd']:.0f}% of the model's own fwd+bwd "
                     f"({th['fwd_bwd_input_img_per_s']:,.0f} img/s)")
    for c in report.get("claims") or []:
        lines.append(f"claim {c['id']}: {c['verdict']}")
    return "\n".join(lines) + "\n"


# --- the stages -----------------------------------------------------------------------------------
def matching_throughput(cfg, model, images, metas: dict, device) -> dict:
    """Representation matching as construction ran it (D_R / D_NR: img·steps/s from their
    meta.json) against the source model's own forward + backward on a construction batch of the
    real images (``bench_construct.fwd_bwd_rate``, the same autocast)."""
    from benchmarks.bench_construct import fwd_bwd_rate

    amp = bool(cfg.amp) and device.type == "cuda"
    batch = images[:min(len(images), cfg.construct_batch)]
    t0 = time.perf_counter()
    own = {f"fwd_bwd_{w}_img_per_s": round(fwd_bwd_rate(model, batch, amp=amp, what=w), 1) for w in ("input", "train")}
    sets = {name: round(m["images_per_second"] * m["steps"], 1) for name, m in metas.items()
            if m.get("algorithm") == "representation_matching" and m.get("images_per_second")}
    rate = sets.get("d_robust", next(iter(sets.values()), None))
    return {"batch": len(batch), "amp_bf16": amp, **own, "matching_img_steps_per_s_by_set": sets,
            "matching_img_steps_per_s": rate,
            "fraction_of_fwd_bwd": round(rate / own["fwd_bwd_input_img_per_s"], 3) if rate else None,
            "seconds": round(time.perf_counter() - t0, 2)}


def to_evaluate(cfg, paths, source: str) -> list[tuple[str, str, str, int]]:
    """(row name, model source, model name, seed) of every trained model, in ``EVAL_ORDER`` then
    ``EXTRA_ROWS``, seeds in the profile's order."""
    from advlib.steps.evaluate import models_to_evaluate

    todo = []
    for model_source, name, seed in models_to_evaluate(cfg, source):
        folder = paths.model(name, model_source, None if seed == cfg.seed else seed)
        if (folder / "checkpoint.pt").is_file():
            row = rs.ROW_OF_ROLE.get(name, name) if model_source == "cifar10" else name
            todo.append((row, model_source, name, seed))
    rank = {n: i for i, n in enumerate(EVAL_ORDER + EXTRA_ROWS)}
    return sorted(todo, key=lambda t: (rank.get(t[0], len(rank)), cfg.seeds.index(t[3]) if t[3] in cfg.seeds else 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, profile="fast", split=False, out="")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--results-out", default="", help="also write the results.json-shaped dict to this file")
    ap.add_argument("--eval", choices=("headline", "full"), default="headline",
                    help="radii attacked: eval_eps and claim_eps (default) or also the profile's sweep")
    ap.add_argument("--autoattack", action="store_true", help="the AutoAttack cross-check on autoattack_n images "
                    "of the standard, robust, D_R, D_NR and control_rnr rows (off: one GPU run cannot afford it)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    bad = sorted(set(stages) - set(STAGES))
    if bad:
        ap.error(f"unknown stage(s) {bad}; expected {STAGES}")
    bench = setup(args)
    cfg, paths = bench.cfg, bench.paths
    paths.root.mkdir(parents=True, exist_ok=True)
    machine = machine_record(bench.device)
    if machine.get("commit") is None and os.environ.get("GPU_RUN_COMMIT"):  # a device copy has no .git
        machine["commit"] = os.environ["GPU_RUN_COMMIT"]
    report = {"profile": bench.profile_record(), "machine": machine, "seconds": {}, "stages_done": [],
              "complete": False, "eval": args.eval, "autoattack": args.autoattack,
              "total_includes": list(TOTAL_OF)}
    out_json = Path(args.out) if args.out else paths.root / "pipeline.json"

    def write():
        atomic_write_json(out_json, scrub(report))
        if args.results_out and report.get("results"):
            atomic_write_json(args.results_out, scrub(report["results"]))

    def stage_done(name, t0, **extra):
        report["seconds"][name] = round(time.perf_counter() - t0, 2)
        report["stages_done"].append(name)
        report.update(extra)
        report["seconds"].pop("total", None)  # last in the dict, after the stage it sums
        report["seconds"]["total"] = round(sum(report["seconds"].get(k, 0.0) for k in TOTAL_OF), 2)
        write()
        print(f"[pipeline] {name}: {report['seconds'][name]:.1f} s", flush=True)

    write()
    t0 = time.perf_counter()
    train, test = bench.train, bench.test
    stage_done("load_data", t0, n_train=len(train[1]), n_test=len(test[1]))

    sources, metas = {}, {}
    constructed = cfg.origin == "constructed"
    if constructed and any(s in stages for s in ("standard", "robust", "construct", "throughput")):
        t0 = time.perf_counter()
        sources = construct.source_models(cfg, *train, paths, eval_data=test, progress=args.progress)
        hist = sources.get("histories", {})
        stage_done("source_models", t0, source_histories=hist,
                   time_to_accuracy={role: time_to_accuracy(h) for role, h in hist.items() if "seconds" in h})
        tta = report["time_to_accuracy"].get("standard")
        if tta and "standard" in sources:  # beside the study, not in its total
            per_epoch = eval_overhead(sources["standard"], test)
            tta.update(eval_seconds_per_epoch=per_epoch, seconds_without_eval=None if tta["seconds"] is None else
                       round(tta["seconds"] - per_epoch * tta["epoch"], 2))
            write()
    if constructed and "construct" in stages:
        t0 = time.perf_counter()
        metas = construct.construct_all(cfg, paths, *train, sources, which=cfg.dataset_list, progress=args.progress)
        stage_done("construct", t0, construction=construction_rows(metas))
    if constructed and "throughput" in stages and "robust" in sources:
        if not metas:
            metas = {n: json.loads((paths.dataset(n) / "meta.json").read_text()) for n in paths.available()
                     if (paths.dataset(n) / "meta.json").is_file()}
        report["throughput"] = matching_throughput(cfg, sources["robust"], train[0], metas, bench.device)
        report["stages_done"].append("throughput")  # a measurement beside the study: not in its total
        write()
    source = cfg.origin
    if "train" in stages:
        t0 = time.perf_counter()
        hist = {}
        for name in [n for n in cfg.dataset_list if n in paths.available(source)]:
            x, y = data.load_feature_dataset(paths.dataset(name, source))
            for seed in cfg.seeds:
                tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
                _, h = tr.train_or_load(tcfg, x, y, paths.model(name, source, None if seed == cfg.seed else seed),
                                        eval_data=test, progress=args.progress, device=bench.device, origin=source,
                                        dataset=name, eval_every=max(1, tcfg.epochs))
                hist[name if seed == cfg.seed else f"{name}-seed{seed}"] = h
                report["train_histories"] = history_rows(hist)
                write()
        stage_done("train", t0, train_histories=history_rows(hist))
    from advlib.steps.base import Run

    run = Run.of(cfg, paths.root, train=train, test=test, val=bench.val if cfg.n_val else None)
    if "controls" in stages:
        from advlib.steps.train import matched_controls

        t0 = time.perf_counter()
        hist = {}
        for name, (x, y) in matched_controls(run, source).items():
            for seed in cfg.seeds:
                tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
                _, h = tr.train_or_load(tcfg, x, y, paths.model(name, "cifar10", None if seed == cfg.seed else seed),
                                        eval_data=test, progress=args.progress, device=bench.device, origin="cifar10",
                                        dataset=name, eval_every=max(1, tcfg.epochs))
                hist[name if seed == cfg.seed else f"{name}-seed{seed}"] = h
                report["control_histories"] = history_rows(hist)
                write()
        stage_done("controls", t0, control_histories=history_rows(hist), n_control_images={
            n: len(xy[1]) for n, xy in matched_controls(run, source).items()})
    if "evaluate" in stages:
        from advlib.steps.evaluate import evaluate_one
        from advlib.steps.train import trained_on
        from advlib.verdicts import claims

        def evaluate(row, model_source, name, seed):
            folder = paths.model(name, model_source, None if seed == cfg.seed else seed)
            t1 = time.perf_counter()
            res = evaluate_one(run, folder, row, model_source, seed, trained_on(folder), full=args.eval == "full",
                               autoattack=args.autoattack, progress=args.progress)
            r = next(r for r in res["rows"] if (r["dataset"], r.get("origin", r.get("source")), r["seed"]) == (row, model_source, seed))
            report["results"] = {"profile": cfg.name, "seed": cfg.seed, "config": bench.profile_record(),
                                 "machine": machine, "rows": res["rows"]}
            report.setdefault("evaluated", []).append({
                "row": row, "source": model_source, "seed": seed, "seconds": round(time.perf_counter() - t1, 2),
                "clean_acc": r["clean_acc"], "robust_acc": r["robust_acc"], "eval_n": r["eval_n"]})
            write()
            print(f"[pipeline] evaluated {model_source}/{name} (seed {seed}): clean {r['clean_acc']:.3f}, robust "
                  + ", ".join(f"{e} {v:.3f}" for e, v in r["robust_acc"].items()), flush=True)

        todo = to_evaluate(cfg, paths, source)
        t0 = time.perf_counter()
        for item in [t for t in todo if t[0] not in EXTRA_ROWS]:
            evaluate(*item)
        stage_done("evaluate", t0)
        if report.get("results"):
            t0 = time.perf_counter()
            stage_done("claims", t0, claims=claims(report["results"]))
    report["complete"] = all(s in report["stages_done"] for s in TOTAL_OF)
    report["goals"] = goals(report)
    write()
    if "evaluate" in stages:  # the source models beside the study: after its total, cut first
        extra = [t for t in todo if t[0] in EXTRA_ROWS]
        t0 = time.perf_counter()
        for item in extra:
            evaluate(*item)
        if extra:
            report["seconds"]["evaluate_extra"] = round(time.perf_counter() - t0, 2)
    report["goals"] = goals(report)
    write()
    print(render(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
