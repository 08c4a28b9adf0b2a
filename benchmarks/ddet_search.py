"""D_det recipe search (issue 4): which targeted-attack setting makes D_det teach the true labels?

Reuses a run directory's source model of the targeted sets (the "targeted" model when the
profile trains one, else the standard one), builds D_det (t = (y+1) mod 10) under each
setting, trains a fresh model on it with the profile's D_det recipe, and reports the target hit
rate on the source model and the trained model's accuracy on the validation split (``--split
test``: the real test set), against the true labels y and against y+1 (high y+1 accuracy = the
robust features of x won, not the non-robust features of t).

    python -m benchmarks.ddet_search --run-dir runs/cpu --profile cpu --cifar path/to/cifar10.zip \\
        --n 6000 --setting eps=1.0,steps=50 --setting eps=1.0,steps=50,keep=1 --setting eps=2.0,steps=50
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from advlib import construct
from advlib import evaluate as ev
from advlib import train as tr
from advlib.utils import atomic_write_json
from benchmarks._common import add_run_args, pct, setup
from benchmarks._common import parse_setting as _parse

KEYS = {"eps": float, "steps": int, "step": float, "restarts": int, "keep": int}


def parse_setting(text: str) -> dict:
    return _parse(text, KEYS, None)


def render(data: dict) -> str:
    """One row per targeted-attack setting: rows kept, target hit rate, the D_det model's accuracy
    against the true labels and against y+1."""
    lines = ["| targeted attack | rows kept | target hit rate | D_det model: true labels y | vs y+1 |",
             "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        s = dict(kv.split("=") for kv in r["setting"].split(","))
        kept = "hits only" if s.get("keep") == "1" else "all"
        true = r.get("acc_true_labels", r.get("test_acc_true_labels"))  # files from before --split: test_*
        shifted = r.get("acc_vs_y_plus_1", r.get("test_acc_vs_y_plus_1"))
        lines.append(f"| eps {s.get('eps')}, {s.get('steps')} steps | {kept} ({r['n_used']:,}) | "
                     f"{pct(r['hit_rate'])} | {pct(true)} | {pct(shifted)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, setting="eps=..,steps=..[,step=..][,restarts=..][,keep=1]",
                 out="benchmarks/results/ddet_search.json")
    ap.add_argument("--n", type=int, default=6000, help="training images turned into D_det")
    args = ap.parse_args(argv)
    settings = [(text, parse_setting(text)) for text in args.setting]  # bad settings fail before any work
    bench = setup(args, reads_run=True)
    cfg, paths = bench.cfg, bench.paths
    role = construct.source_role("d_det", cfg)  # the profile's source of the targeted sets
    source_dir = paths.source_model(role)
    if not (source_dir / "checkpoint.pt").is_file():
        raise SystemExit(f"no {role} source model in {source_dir}: run notebook 02 on this run directory first")
    source = tr.load_trained(source_dir, device=bench.device)
    train, held = bench.train, bench.eval_split
    idx = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(cfg.seed))[: args.n]
    rows = []
    for text, s in settings:
        t0 = time.perf_counter()
        built = construct.build_targeted_set(
            source, *train, rule="det", eps=s["eps"], step_size=s.get("step", cfg.target_step_size),
            steps=s["steps"], restarts=s.get("restarts", 1), seed=cfg.seed, indices=idx,
            batch_size=cfg.construct_batch, keep_only_hits=bool(s.get("keep", 0)))
        build_s = time.perf_counter() - t0
        model, hist = tr.train_or_load(tr.train_config(cfg, "dataset", "d_det"), built["images"], built["labels"],
                                       out_dir=None, progress=False, device=bench.device)
        row = {"setting": text, "n_used": len(built["labels"]), "hit_rate": built["n_hit"] / built["n_attacked"],
               "acc_true_labels": ev.accuracy(model, *held),
               "acc_vs_y_plus_1": ev.accuracy(model, held[0], (held[1] + 1) % 10),
               "build_s": round(build_s, 1), "total_s": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_json(args.out, bench.record(
            source_model=source_dir.relative_to(paths.root).as_posix(),
            source_train_config=json.loads((source_dir / "config.json").read_text()),
            n=args.n, n_eval=len(held[1]), rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
