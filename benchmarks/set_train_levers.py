"""Which training recipe gets the most out of a constructed set (D_R, D_NR, D_rand, D_det)?

Trains a fresh ``cfg.arch`` on one set of a run directory under each setting (epochs, lr,
augmentation, weight decay) and records clean accuracy on the profile's CIFAR-10 test split (the
true labels), L2 PGD-20 robust accuracy at eps 0.25 on the profile's evaluation subset, final
training accuracy and wall time. A setting may name the training ``seed``. The run's own models
are not touched.

    python benchmarks/set_train_levers.py --run-dir runs/cpu --cifar path/to/cifar10.zip --set d_det \
        --setting epochs=20 --setting epochs=40,augment=crop+flip
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advlib import config, pipeline, train  # noqa: E402
from advlib.evaluate import accuracy, eval_subset, robust_accuracy  # noqa: E402
from advlib.models import build_model  # noqa: E402
from advlib.utils import atomic_write_json, set_seed  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import parse_setting as _parse

KEYS = {"epochs": int, "lr": float, "augment": str, "weight_decay": float, "seed": int}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--profile", default="cpu", choices=config.PROFILE_NAMES)
    ap.add_argument("--cifar", default=None)
    ap.add_argument("--set", default="d_det", choices=("d_robust", "d_non_robust", "d_rand", "d_det"))
    ap.add_argument("--setting", action="append", required=True)
    ap.add_argument("--out", default="benchmarks/results/set_train_levers-cpu.json")
    args = ap.parse_args(argv)
    settings = [_parse(s, KEYS, {}) for s in args.setting]  # bad settings fail before any training
    cfg, paths, _ = pipeline.setup(args.profile, args.run_dir, json.dumps({"cifar_source": args.cifar}) if args.cifar else "")
    x, y = pipeline.feature_sets(cfg, paths, "constructed", only=args.set)[args.set]
    xt, yt = pipeline.cifar(cfg, paths, "test")
    base = train.train_config(cfg, "dataset", args.set)
    rows = []
    for s in settings:
        s = {k: (v.replace("+", ",") if k == "augment" else v) for k, v in s.items()}
        tcfg = dataclasses.replace(base, **s)
        tcfg.validate()
        set_seed(tcfg.seed)
        model = build_model(tcfg.arch)
        t0 = time.perf_counter()
        hist = train.fit(model, x, y, tcfg, progress=False)
        seconds = time.perf_counter() - t0
        acc = accuracy(model.eval(), xt, yt)
        idx = eval_subset(yt, cfg.eval_n, cfg.seed)
        robust = robust_accuracy(model, xt[idx], yt[idx], eps=0.25, steps=20, batch_size=cfg.eval_batch, seed=tcfg.seed)
        row = {"set": args.set, "setting": s, "train_config": dataclasses.asdict(tcfg), "seconds": round(seconds, 1),
               "true_test_acc": acc, "pgd20_0.25": robust, "eval_n": len(idx),
               "final_train_acc": (hist.get("train_acc") or [None])[-1]}
        print(row, flush=True)
        rows.append(row)
        atomic_write_json(args.out, {"run_dir": str(paths.root), "profile": cfg.name, "machine": machine_info(torch.device("cpu")),
                                     "n_train": int(len(y)), "n_test": int(len(yt)), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
