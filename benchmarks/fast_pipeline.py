"""The whole study without papermill, stage by stage, with wall times: the GPU measurement script.

    python -m benchmarks.fast_pipeline --profile fast --cifar path/to/cifar10.zip --run-dir runs/fast \\
        [-p FIELD VALUE ...] [--stages standard,robust,construct,train,evaluate] [--out report.json]

Built on the algorithm modules, as the notebooks run them: the source models
(``advlib.construct.source_models``), the profile's sets (``construct.construct_all``), a model per
set and seed (``train.train_or_load``, watched on the test set as notebook 04 does), and each
trained model's evaluation (``evaluate.evaluate_model`` on the test set; its numbers go into the
report, not into a results.json). The data is the study's own: the profile's training pick and
test split (``n_val`` held out only when the profile says so).

Writes the report (default <run-dir>/pipeline.json) after every stage, so a run cut short still
reports what it finished: the machine, the profile, per-stage seconds, the source models' accuracy
per epoch (time-to-accuracy), construction hit rates / matching distances, the training histories
and the evaluated accuracies. Runs on CPU too (``--profile smoke --cifar sample``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from advlib import construct, data
from advlib import evaluate as ev
from advlib import train as tr
from advlib.utils import atomic_write_json, machine_record
from benchmarks._common import add_run_args, setup

STAGES = ("standard", "robust", "construct", "train", "evaluate")


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, profile="fast", split=False, out="")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    bad = sorted(set(stages) - set(STAGES))
    if bad:
        ap.error(f"unknown stage(s) {bad}; expected {STAGES}")
    bench = setup(args)
    cfg, paths = bench.cfg, bench.paths
    paths.root.mkdir(parents=True, exist_ok=True)
    report = {"profile": bench.profile_record(), "machine": machine_record(bench.device), "seconds": {},
              "stages_done": []}
    out_json = Path(args.out) if args.out else paths.root / "pipeline.json"

    def stage_done(name, t0, **extra):
        report["seconds"][name] = round(time.perf_counter() - t0, 2)
        report["stages_done"].append(name)
        report.update(extra)
        atomic_write_json(out_json, report)
        print(f"[pipeline] {name}: {report['seconds'][name]:.1f} s", flush=True)

    t0 = time.perf_counter()
    train, test = bench.train, bench.test
    stage_done("load_data", t0, n_train=len(train[1]), n_test=len(test[1]))

    sources = {}
    constructed = cfg.origin == "constructed"
    if constructed and ("standard" in stages or "robust" in stages or "construct" in stages):
        t0 = time.perf_counter()
        sources = construct.source_models(cfg, *train, paths, eval_data=test, progress=args.progress)
        stage_done("source_models", t0, source_histories=sources.get("histories", {}))
    if constructed and "construct" in stages:
        t0 = time.perf_counter()
        metas = construct.construct_all(cfg, paths, *train, sources, which=cfg.dataset_list, progress=args.progress)
        stage_done("construct", t0, construction=construction_rows(metas))
    if "train" in stages:
        t0 = time.perf_counter()
        hist = {}
        origin = cfg.origin
        for name in [n for n in cfg.dataset_list if n in paths.available(origin)]:
            x, y = data.load_feature_dataset(paths.dataset(name, origin))
            for seed in cfg.seeds:
                tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
                _, h = tr.train_or_load(tcfg, x, y, paths.model(name, origin, None if seed == cfg.seed else seed),
                                        eval_data=test, progress=args.progress, device=bench.device, origin=origin,
                                        dataset=name, eval_every=cfg.eval_every)
                hist[name if seed == cfg.seed else f"{name}-seed{seed}"] = h
        stage_done("train", t0, train_histories=history_rows(hist))
    if "evaluate" in stages:
        t0 = time.perf_counter()
        rows = []
        for origin, name, _ in paths.trained():
            model = tr.load_trained(paths.model(name, origin), device=bench.device)
            m = ev.evaluate_model(model, *test, cfg, seed=cfg.seed, full=True)
            rows.append({"model": f"{origin}/{name}", **{k: m.get(k) for k in (
                "clean_acc", "full_clean_acc", "robust_acc", "pgd_acc", "autoattack_acc", "eval_n", "attack_desc",
                "seconds")}})
            print(f"[pipeline] evaluated {origin}/{name}: clean {m['clean_acc']:.3f}", flush=True)
        stage_done("evaluate", t0, results=rows)
    report["seconds"]["total"] = round(sum(report["seconds"].values()), 2)
    atomic_write_json(out_json, report)
    print(json.dumps(report["seconds"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
