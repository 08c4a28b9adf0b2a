"""Which standard model should D_rand / D_det attack at CPU scale? (the `cpu` profile's lever)

Trains a standard source model with a given recipe on the profile's CIFAR-10 subset, measures
its clean accuracy and PGD-20 robustness at 0.25 (on a seeded class-balanced 500 of the
validation split; ``--split test``: the test set), builds D_det and D_rand from it with the
profile's targeted attack (``construct_n`` images, ``target_eps``, ``target_steps`` of
``target_step_size``), trains a fresh model on each with the profile's recipe for three seeds, and
records their accuracy on the same split (true labels).

    python -m benchmarks.target_source --cifar path/to/cifar10.zip --run-dir runs/levers \\
        --augment crop,flip --weight-decay 5e-4 --epochs 15 --out benchmarks/results/target_source-val.json

Rows accumulate in ``--out`` (one per recipe); the run directory caches the data and the models.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from advlib import construct
from advlib import evaluate as ev
from advlib import train as tr
from advlib.models import build_model
from advlib.utils import atomic_write_json
from benchmarks._common import add_run_args, pct, resume, setup


def render(data: dict) -> str:
    """One row per (source recipe, set): the source's clean / robust accuracy, the targeted
    attack's hit rate on it, and the true-label accuracy of models trained on the set (mean ± std)."""
    split = "validation" if data.get("split") == "val" else "test"  # files from before --split: test
    lines = ["| source model recipe | source clean | source PGD-20 @ 0.25 | set | target hit rate | "
             f"true-label {split} acc (seeds) |", "|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        rc = r["recipe"]
        what = f"{rc['epochs']} ep, augmentation {rc['augment'] or 'none'}, wd {rc['weight_decay']:g}"
        for name, s in r["sets"].items():
            accs = s.get("true_acc", s.get("true_test_acc"))
            shown = ", ".join(f"{100 * a:.1f}" for a in accs)
            lines.append(f"| {what} | {pct(r['source_clean_acc'])} | {pct(r['source_pgd20_0.25_n500'])} | {name} | "
                         f"{pct(s['hit_rate'])} | **{100 * s['mean']:.1f}% ± {100 * s['std']:.1f}** ({shown}) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap)
    ap.add_argument("--augment", default="crop,flip")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sets", default="d_det,d_rand")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = sorted(set(names) - set(construct.TARGETED_SETS))
    if bad:
        ap.error(f"--sets: {bad} are not targeted sets; expected some of {construct.TARGETED_SETS}")
    bench = setup(args)
    cfg, paths = bench.cfg, bench.paths
    old = resume(args.out, bench)  # before any work: a file measured on another split exits

    train, held = bench.train, bench.eval_split
    recipe = {"augment": args.augment, "weight_decay": args.weight_decay, "epochs": args.epochs}
    tag = f"aug-{args.augment.replace(',', '+') or 'none'}_wd{args.weight_decay}_ep{args.epochs}"
    scfg = dataclasses.replace(tr.train_config(cfg, "standard"), augment=args.augment,
                               weight_decay=args.weight_decay, epochs=args.epochs)
    scfg.validate()
    t0 = time.perf_counter()
    src, _ = tr.train_or_load(scfg, *train, paths.root / "models" / f"src_{tag}", eval_data=held, progress=False,
                              device=bench.device, origin="cifar10", dataset="cifar10")
    idx = ev.eval_subset(held[1], 500, cfg.seed)
    row = {"recipe": recipe, "source_clean_acc": ev.accuracy(src, *held),
           "source_pgd20_0.25_n500": ev.robust_accuracy(src, held[0][idx], held[1][idx], eps=0.25, steps=20),
           "source_train_s": round(time.perf_counter() - t0, 1), "sets": {}}
    sel = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.construct_n or None]
    for name in names:
        t0 = time.perf_counter()
        built = construct.build_targeted_set(src, *train, rule=name.removeprefix("d_"), eps=cfg.target_eps,
                                             step_size=cfg.target_step_size, steps=cfg.target_steps, indices=sel,
                                             seed=cfg.seed)
        build_s = time.perf_counter() - t0
        accs = []
        for seed in seeds:
            tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
            model = build_model(cfg.arch).to(bench.device)
            tr.fit(model, built["images"], built["labels"], tcfg, progress=False)
            accs.append(ev.accuracy(model.eval(), *held))
            print(f"{tag} {name} seed {seed}: {accs[-1]:.3f}", flush=True)
        mean = sum(accs) / len(accs)
        std = (sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1)) ** 0.5
        row["sets"][name] = {"hit_rate": built["hit"].float().mean().item(), "build_s": round(build_s, 1),
                             "true_acc": accs, "mean": mean, "std": std}
    data = old or {
        "what": "D_rand / D_det built from standard source models of different recipes; accuracy of models "
                "trained on them on the split (true labels)",
        "script": "benchmarks/target_source.py", "rows": []}
    data["rows"] = [r for r in data["rows"] if r["recipe"] != recipe] + [row]
    data.update(bench.record(
        n_train=len(train[1]), n_eval=len(held[1]),
        attack={"construct_n": len(sel), "target_eps": cfg.target_eps, "target_steps": cfg.target_steps,
                "target_step_size": cfg.target_step_size}))
    atomic_write_json(args.out, data)
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
