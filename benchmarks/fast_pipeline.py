"""The whole study without papermill, stage by stage, with wall times: the GPU measurement script.

    python benchmarks/fast_pipeline.py --profile fast --cifar path/to/cifar10.zip --out runs/fast \
        [-p key value ...] [--stages standard,robust,construct,train,evaluate]

Writes <out>/pipeline.json after every stage (so a run cut short still reports what it
finished): device, per-stage seconds, the source models' accuracy per epoch (time-to-accuracy),
construction hit rates / matching distances, and results.json's rows. Runs on CPU too (tests
use it with the smoke profile).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advlib import config, pipeline  # noqa: E402
from advlib.paths import RunPaths  # noqa: E402
from advlib.utils import atomic_write_json, set_seed  # noqa: E402

STAGES = ("standard", "robust", "construct", "train", "evaluate")


def device_info() -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    else:
        info["device"] = f"cpu ({platform.processor() or platform.machine()})"
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="fast", choices=config.PROFILE_NAMES)
    ap.add_argument("--cifar", default=None, help="CIFAR-10 source (overrides the profile's cifar_source)")
    ap.add_argument("--out", required=True)
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--report", default=None, help="where to write the JSON report (default <out>/pipeline.json)")
    args = ap.parse_args(argv)

    overrides = dict(args.param)
    if args.cifar:
        overrides["cifar_source"] = args.cifar
    cfg = config.get_profile(args.profile, **overrides)
    stages = [s for s in args.stages.split(",") if s]
    bad = sorted(set(stages) - set(STAGES))
    if bad:
        ap.error(f"unknown stage(s) {bad}; expected {STAGES}")
    paths = RunPaths.of(args.out)
    paths.root.mkdir(parents=True, exist_ok=True)
    report = {"profile": cfg.to_dict(), "info": device_info(), "seconds": {}, "stages_done": []}
    out_json = Path(args.report) if args.report else paths.root / "pipeline.json"

    def stage_done(name, t0, **extra):
        report["seconds"][name] = round(time.perf_counter() - t0, 2)
        report["stages_done"].append(name)
        report.update(extra)
        atomic_write_json(out_json, report)
        print(f"[pipeline] {name}: {report['seconds'][name]:.1f} s", flush=True)

    set_seed(cfg.seed)
    t0 = time.perf_counter()
    train, test = pipeline.cifar(cfg, paths, "train"), pipeline.cifar(cfg, paths, "test")
    stage_done("load_data", t0, n_train=len(train[1]), n_test=len(test[1]))

    sources = {}
    if "standard" in stages or "robust" in stages or "construct" in stages:
        t0 = time.perf_counter()
        sources = pipeline.train_source_models(cfg, paths, train, test, progress=args.progress)
        hist = sources.get("histories", {})
        stage_done("source_models", t0, source_histories=hist)
    if "construct" in stages:
        t0 = time.perf_counter()
        metas = pipeline.construct_sets(cfg, paths, train, sources, progress=args.progress)
        stage_done("construct", t0, construction=pipeline.construction_rows(metas))
    if "train" in stages:
        t0 = time.perf_counter()
        sets = pipeline.feature_sets(cfg, paths)
        hist = pipeline.train_on_sets(cfg, paths, sets, test, progress=args.progress)
        stage_done("train", t0, train_histories=pipeline.history_rows(hist))
    if "evaluate" in stages:
        t0 = time.perf_counter()
        results = pipeline.evaluate_all(cfg, paths, test)
        stage_done("evaluate", t0, results=results.get("rows", []))
    report["seconds"]["total"] = round(sum(report["seconds"].values()), 2)
    atomic_write_json(out_json, report)
    print(json.dumps(report["seconds"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
