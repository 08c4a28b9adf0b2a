"""How much APGD-T does the headline attack need? Measured on the validation split.

The headline robust accuracy is, per image, PGD-20 (cross-entropy) and then APGD-T on the images
PGD did not break. AutoAttack's standard APGD-T attacks 9 target classes for 100 iterations each;
on a CPU that costs 45x PGD-20 per surviving image. This script evaluates trained models (model
folders, e.g. a run's ``models/...`` or a lever cache's) with several APGD-T budgets and with the
standard AutoAttack on the same validation images, and records each accuracy and its wall time, so
a profile's ``apgd_targets`` / ``apgd_steps`` are chosen by what they find, not by the test set.

    python -m benchmarks.attack_budget --cifar path/to/cifar10.zip --model runs/cpu/models/cifar10/robust \\
        --budget 3x50 --budget 9x100 --eps 0.25,0.5 --n 500 --out benchmarks/results/attack_budget-val.json
"""

from __future__ import annotations

import argparse
import sys
import time

from advlib import evaluate as ev
from advlib.train import load_trained
from advlib.utils import atomic_write_json
from benchmarks._common import add_run_args, pct, portable, setup


def render(data: dict) -> str:
    """One row per model and radius: PGD-20, the headline at each APGD-T budget, AutoAttack; seconds beside."""
    budgets = data.get("budgets", [])
    head = " | ".join(f"PGD + APGD-T {b}" for b in budgets)
    lines = [f"| model | ε | clean | PGD-20 | {head} | AutoAttack (standard) |",
             "|---|---|---|---|" + "---|" * len(budgets) + "---|"]
    for r in data.get("rows", []):
        cells = [f"{pct(r['worst'][b]['acc'])} ({r['worst'][b]['seconds']:.0f} s)" for b in budgets]
        aa = r.get("autoattack")
        aa_cell = f"{pct(aa['acc'])} ({aa['seconds']:.0f} s)" if aa else "–"
        model = str(r["model"]).rsplit(": ", 1)[-1]  # a folder outside the repository is named by its last part
        lines.append(f"| {model} | {r['eps']} | {pct(r['clean'])} | {pct(r['pgd']['acc'])} "
                     f"({r['pgd']['seconds']:.0f} s) | " + " | ".join(cells) + f" | {aa_cell} |")
    return "\n".join(lines) + "\n"


def _timed(fn):
    t0 = time.perf_counter()
    acc = fn()
    return {"acc": acc, "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, run_dir=False, out="benchmarks/results/attack_budget-val.json")
    ap.add_argument("--model", action="append", required=True, help="a model folder (checkpoint.pt, config.json)")
    ap.add_argument("--budget", action="append", default=None, help="APGD-T targets x iterations, e.g. 3x50")
    ap.add_argument("--eps", default="0.25,0.5")
    ap.add_argument("--n", type=int, default=500, help="validation images attacked (class-balanced)")
    ap.add_argument("--autoattack", action="store_true", help="also the standard AutoAttack on the same images")
    args = ap.parse_args(argv)
    budgets = args.budget or ["3x50", "9x100"]
    parsed = {b: tuple(int(v) for v in b.split("x")) for b in budgets}  # bad budgets fail before any work
    radii = [float(e) for e in args.eps.split(",")]
    bench = setup(args)
    x, y = bench.eval_split
    idx = ev.eval_subset(y, args.n, bench.cfg.seed)
    x, y = x[idx], y[idx]
    rows = []
    for folder in args.model:
        model = load_trained(folder, device=bench.device)
        clean = ev.accuracy(model, x, y)
        for eps in radii:
            row = {"model": portable(folder), "eps": eps, "clean": clean,
                   "pgd": _timed(lambda e=eps, m=model: ev.robust_accuracy(m, x, y, eps=e, steps=20)), "worst": {}}
            for b, (targets, steps) in parsed.items():
                row["worst"][b] = _timed(lambda e=eps, t=targets, s=steps, m=model: ev.robust_accuracy(
                    m, x, y, eps=e, steps=20, attack="worst", targets=t, apgd_steps=s))
            if args.autoattack:
                row["autoattack"] = _timed(lambda e=eps, m=model: ev.robust_accuracy(m, x, y, eps=e, attack="autoattack"))
            rows.append(row)
            print(row, flush=True)
            atomic_write_json(args.out, bench.record(script="benchmarks/attack_budget.py", n=len(y), budgets=budgets,
                                                     rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
