"""Which standard model should D_rand / D_det attack at CPU scale? (the `cpu` profile's lever)

Trains a standard source model with a given recipe on the profile's CIFAR-10 subset, measures
its clean accuracy and PGD-20 robustness at 0.25 (on a seeded class-balanced 500), builds D_det
and D_rand from it with the profile's targeted attack (``construct_n`` images, ``target_eps``,
``target_steps`` of ``target_step_size``), trains a fresh model on each with the profile's recipe
for three seeds, and records their accuracy on the real test set (true labels).

    python benchmarks/target_source.py --cifar path/to/cifar10.zip --run-dir runs/levers \
        --augment crop,flip --weight-decay 5e-4 --epochs 15 --out benchmarks/results/target_source-cpu.json

Rows accumulate in ``--out`` (one per recipe); the run directory caches the data and the models.
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

from advlib import config, construct, pipeline  # noqa: E402
from advlib import evaluate as ev  # noqa: E402
from advlib import train as tr  # noqa: E402
from advlib.models import build_model  # noqa: E402
from advlib.paths import RunPaths  # noqa: E402
from advlib.utils import atomic_write_json, machine_record  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--profile", default="cpu", choices=config.PROFILE_NAMES)
    ap.add_argument("--augment", default="crop,flip")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sets", default="d_det,d_rand")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    cfg = config.get_profile(args.profile, cifar_source=args.cifar)
    paths = RunPaths.of(args.run_dir)
    train, test = pipeline.cifar(cfg, paths, "train"), pipeline.cifar(cfg, paths, "test")
    recipe = {"augment": args.augment, "weight_decay": args.weight_decay, "epochs": args.epochs}
    tag = f"aug-{args.augment.replace(',', '+') or 'none'}_wd{args.weight_decay}_ep{args.epochs}"
    scfg = dataclasses.replace(tr.train_config(cfg, "standard"), augment=args.augment,
                               weight_decay=args.weight_decay, epochs=args.epochs)
    t0 = time.perf_counter()
    src, _ = tr.train_or_load(scfg, *train, paths.root / "models" / f"src_{tag}", eval_data=test, progress=False,
                              source="cifar10", dataset="cifar10")
    idx = ev.eval_subset(test[1], 500, cfg.seed)
    row = {"recipe": recipe, "source_clean_acc": ev.accuracy(src, *test),
           "source_pgd20_0.25_n500": ev.robust_accuracy(src, test[0][idx], test[1][idx], eps=0.25, steps=20),
           "source_train_s": round(time.perf_counter() - t0, 1), "sets": {}}
    sel = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.construct_n]
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        t0 = time.perf_counter()
        built = construct.build_targeted_set(src, *train, rule=name.removeprefix("d_"), eps=cfg.target_eps,
                                             step_size=cfg.target_step_size, steps=cfg.target_steps, indices=sel,
                                             seed=cfg.seed)
        build_s = time.perf_counter() - t0
        accs = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
            model = build_model(cfg.arch)
            tr.fit(model, built["images"], built["labels"], tcfg, progress=False)
            accs.append(ev.accuracy(model.eval(), *test))
            print(f"{tag} {name} seed {seed}: {accs[-1]:.3f}", flush=True)
        mean = sum(accs) / len(accs)
        std = (sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1)) ** 0.5
        row["sets"][name] = {"hit_rate": built["hit"].float().mean().item(), "build_s": round(build_s, 1),
                             "true_test_acc": accs, "mean": mean, "std": std}
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.is_file() else {
        "what": "D_rand / D_det built from standard source models of different recipes; accuracy of models "
                "trained on them, on the real test set (true labels)",
        "script": "benchmarks/target_source.py", "profile": args.profile, "rows": []}
    data["rows"] = [r for r in data["rows"] if r["recipe"] != recipe] + [row]
    data["machine"] = machine_record("cpu")
    atomic_write_json(out, data)
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
