"""D_det recipe search (issue 4): which targeted-attack setting makes D_det teach the true labels?

Reuses a run directory's source model of the targeted sets (the "targeted" model when the
profile trains one, else the standard one), builds D_det (t = (y+1) mod 10) under each
setting, trains a fresh model on it with the profile's D_det recipe, and reports the target hit
rate on the source model and the trained model's accuracy on the real test set, against the true
labels y and against y+1 (high y+1 accuracy = the robust features of x won, not the
non-robust features of t).

    python benchmarks/ddet_search.py --run-dir runs/cpu --profile cpu --cifar path/to/cifar10.zip \
        --n 6000 --setting eps=1.0,steps=50 --setting eps=1.0,steps=50,keep=1 --setting eps=2.0,steps=50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advlib import config, construct, pipeline  # noqa: E402
from advlib import evaluate as ev  # noqa: E402
from advlib import train as tr  # noqa: E402
from advlib.paths import RunPaths  # noqa: E402
from advlib.utils import atomic_write_json, get_device, machine_record  # noqa: E402
from benchmarks._common import parse_setting as _parse  # noqa: E402

KEYS = {"eps": float, "steps": int, "step": float, "restarts": int, "keep": int}


def parse_setting(text: str) -> dict:
    return _parse(text, KEYS, None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--profile", default="cpu", choices=config.PROFILE_NAMES)
    ap.add_argument("--cifar", default=None)
    ap.add_argument("--n", type=int, default=6000, help="training images turned into D_det")
    ap.add_argument("--setting", action="append", required=True, help="eps=..,steps=..[,step=..][,restarts=..][,keep=1]")
    ap.add_argument("--out", default="benchmarks/results/ddet_search.json")
    args = ap.parse_args(argv)

    cfg = config.get_profile(args.profile, **({"cifar_source": args.cifar} if args.cifar else {}))
    paths = RunPaths.of(args.run_dir)
    device = get_device(cfg.device)
    train, test = pipeline.cifar(cfg, paths, "train"), pipeline.cifar(cfg, paths, "test")
    role = construct.source_role("d_det", cfg)  # the profile's source of the targeted sets
    source = tr.load_trained(paths.source_model(role), device=device)
    idx = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(cfg.seed))[: args.n]
    rows = []
    for text in args.setting:
        s = parse_setting(text)
        t0 = time.perf_counter()
        built = construct.build_targeted_set(
            source, *train, rule="det", eps=s["eps"], step_size=s.get("step", cfg.target_step_size),
            steps=s["steps"], restarts=s.get("restarts", 1), seed=cfg.seed, indices=idx,
            batch_size=cfg.construct_batch, keep_only_hits=bool(s.get("keep", 0)))
        build_s = time.perf_counter() - t0
        model, hist = tr.train_or_load(tr.train_config(cfg, "dataset", "d_det"), built["images"], built["labels"],
                                       out_dir=None, progress=False, device=device)
        row = {"setting": text, "n_used": len(built["labels"]), "hit_rate": built["n_hit"] / built["n_attacked"],
               "test_acc_true_labels": ev.accuracy(model, *test),
               "test_acc_vs_y_plus_1": ev.accuracy(model, test[0], (test[1] + 1) % 10),
               "build_s": round(build_s, 1), "total_s": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_json(args.out, {"profile": cfg.name, "source_model": str(paths.source_model(role)),
                                     "source_train_config": json.loads((paths.source_model(role) / "config.json")
                                                                       .read_text()),
                                     "n": args.n, "rows": rows, "machine": machine_record(device)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
