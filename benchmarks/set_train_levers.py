"""Which training recipe gets the most out of a constructed set (D_R, D_NR, D_rand, D_det)?

Trains a fresh ``cfg.arch`` on one set of a run directory under each setting (epochs, lr,
augmentation, weight decay) and records clean accuracy against the true labels on the validation
split (``--split test``: the profile's CIFAR-10 test split), L2 PGD-20 robust accuracy at eps 0.25
on the profile's evaluation subset of it, final training accuracy and wall time. A setting may
name the training ``seed``. The run's own models are not touched.

    python -m benchmarks.set_train_levers --run-dir runs/cpu --cifar path/to/cifar10.zip --set d_det \\
        --setting epochs=20 --setting epochs=40,augment=crop+flip
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from advlib import config, data, train
from advlib.evaluate import accuracy, eval_subset, robust_accuracy
from advlib.models import build_model
from advlib.utils import atomic_write_json, set_seed
from benchmarks._common import add_run_args, minutes, pct, setup
from benchmarks._common import parse_setting as _parse

KEYS = {"epochs": int, "lr": float, "augment": str, "weight_decay": float, "seed": int}


def render(data: dict) -> str:
    """One row per training recipe on a constructed set: accuracy on the true labels of the split
    (and PGD-20 robust accuracy at 0.25 where the file records it)."""
    rows = data.get("rows", [])
    robust = any("pgd20_0.25" in r for r in rows)
    split = "validation" if data.get("split") == "val" else "test"  # files from before --split: test
    lines = [f"| set | recipe (changed from the profile's) | final train acc | true-label {split} acc | "
             + ("PGD-20 @ 0.25 | " if robust else "") + "time |",
             "|---|---|---|---|" + ("---|" if robust else "") + "---|"]
    for r in rows:
        what = ", ".join(f"{k} {v if v != '' else 'none'}" for k, v in r["setting"].items()) or "the profile's"
        acc = r.get("true_acc", r.get("true_test_acc"))
        lines.append(f"| {r['set']} | {what} | {pct(r.get('final_train_acc'))} | {pct(acc)} | "
                     + (f"{pct(r.get('pgd20_0.25'))} | " if robust else "") + f"{minutes(r['seconds'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, setting=f"field=value,... of {sorted(KEYS)} (augment: crop+flip | flip | '')",
                 out="benchmarks/results/set_train_levers-cpu.json")
    ap.add_argument("--set", default="d_det", choices=config.DATASETS)
    args = ap.parse_args(argv)
    settings = [_parse(s, KEYS, {}) for s in args.setting]  # bad settings fail before any training
    bench = setup(args, reads_run=True)
    cfg, paths = bench.cfg, bench.paths
    if args.set not in paths.available("constructed"):
        raise SystemExit(f"{args.set} is not in {paths.dataset(args.set, 'constructed')}: run notebook 02 first")
    x, y = data.load_feature_dataset(paths.dataset(args.set, "constructed"))
    xt, yt = bench.eval_split
    idx = eval_subset(yt, cfg.eval_n, cfg.seed)
    base = train.train_config(cfg, "dataset", args.set)
    rows = []
    for s in settings:
        s = {k: (v.replace("+", ",") if k == "augment" else v) for k, v in s.items()}
        tcfg = dataclasses.replace(base, **s)
        tcfg.validate()
        set_seed(tcfg.seed)
        model = build_model(tcfg.arch).to(bench.device)
        t0 = time.perf_counter()
        hist = train.fit(model, x, y, tcfg, progress=False)
        seconds = time.perf_counter() - t0
        acc = accuracy(model.eval(), xt, yt)
        robust = robust_accuracy(model, xt[idx], yt[idx], eps=0.25, steps=20, batch_size=cfg.eval_batch, seed=tcfg.seed)
        row = {"set": args.set, "setting": s, "train_config": dataclasses.asdict(tcfg), "seconds": round(seconds, 1),
               "true_acc": acc, "pgd20_0.25": robust, "eval_n": len(idx),
               "final_train_acc": (hist.get("train_acc") or [None])[-1]}
        print(row, flush=True)
        rows.append(row)
        atomic_write_json(args.out, bench.record(n_train=int(len(y)), n_eval=int(len(yt)), rows=rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
