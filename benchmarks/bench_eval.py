"""What early stopping and nested radii save in evaluation, and that they change no result.

For each model of a run directory (standard, L2-robust and D_NR by default), the profile's eps
sweep on its evaluation subset of the validation split (``--split test``: of the test set) twice,
in one process, alternating:

- ``full``: every radius attacked on its own, every image for every PGD step (the evaluation
  before this benchmark's commit);
- ``advlib``: ``nested_robust_accuracy``: an image is dropped once broken, and each larger radius
  attacks only the survivors of the smaller ones.

Records seconds and the robust accuracies of both. They agree up to the images whose random
starts differ (the batches differ once the clean mistakes, or a smaller radius's successes, are left
out); nested radii also count a smaller radius's successes at the larger ones.

    python -m benchmarks.bench_eval --run-dir runs/cpu --profile cpu --cifar path/to/cifar10.zip
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from advlib import evaluate as ev
from advlib import train as tr
from advlib.attacks import pgd
from benchmarks._common import add_run_args, load_avg, pct, setup, threads, write_result

MODELS = {"standard": "cifar10/standard", "robust": "cifar10/robust", "d_non_robust": "constructed/d_non_robust"}


def full_sweep(model, x, y, radii, *, steps, batch_size, seed) -> dict[str, float]:
    """Each radius on its own, all images for every step (no early stop, no nesting)."""
    out = {}
    for e in radii:
        correct = 0
        for k in range(0, len(y), batch_size):
            xb, yb = x[k:k + batch_size], y[k:k + batch_size]
            x_adv = pgd(model, xb, yb, eps=e, step_size=2.5 * e / steps, steps=steps,
                        generator=ev.batch_generator(seed, k // batch_size))
            with torch.no_grad():
                correct += int((model(x_adv).argmax(1) == yb).sum())
        out[ev.eps_key(e)] = correct / len(y)
    return out


def render(data: dict) -> str:
    """The evaluation benchmark: the eps sweep attacked in full vs with early stop and nested radii."""
    radii = data["rows"][0]["radii"] if data.get("rows") else []
    lines = ["| model | full sweep | advlib | speed-up | " + " | ".join(f"@ {e:g} full / advlib" for e in radii) + " |",
             "|---|---|---|---|" + "---|" * len(radii)]
    for r in data.get("rows", []):
        accs = " | ".join(f"{pct(r['full_acc'][k])} / {pct(r['advlib_acc'][k])}" for k in r["full_acc"])
        lines.append(f"| {r['model']} | {r['full_s']:.1f} s | {r['advlib_s']:.1f} s | **{r['speedup']:.2f}x** | {accs} |")
    m = data.get("machine", {})
    split = "validation" if data.get("split") == "val" else "test"  # files from before --split: test
    lines += ["", f"PGD-{data.get('steps')} on {data.get('eval_n')} {split} images, medians of {data.get('repeats')} "
              f"alternating repeats, {m.get('device')}, {threads(m)} thread(s), load average "
              f"{load_avg(m)} at the end."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, out="")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {sorted(MODELS)}")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; expected some of {sorted(MODELS)}")
    bench = setup(args, reads_run=True)
    cfg, paths = bench.cfg, bench.paths
    missing = [str(paths.models / MODELS[n]) for n in names if not (paths.models / MODELS[n]).is_dir()]
    if missing:
        ap.error(f"no trained model at {missing}: run notebooks 02 (and 04 for d_non_robust) first")
    xt, yt = bench.eval_split
    idx = ev.eval_subset(yt, cfg.eval_n, cfg.seed)
    x, y = xt[idx].to(bench.device), yt[idx].to(bench.device)
    radii = sorted({float(cfg.eval_eps), *cfg.sweep} - {0.0})
    rows = []
    for name in names:
        model = tr.load_trained(paths.models / MODELS[name], device=bench.device).eval()
        times = {"full": [], "advlib": []}
        acc = {}
        for _ in range(args.repeats):
            for how in ("full", "advlib"):
                t0 = time.perf_counter()
                if how == "full":
                    acc[how] = full_sweep(model, x, y, radii, steps=cfg.eval_steps, batch_size=cfg.eval_batch,
                                          seed=cfg.seed)
                else:
                    acc[how] = ev.nested_robust_accuracy(model, x, y, radii, steps=cfg.eval_steps,
                                                         batch_size=cfg.eval_batch, seed=cfg.seed)
                times[how].append(time.perf_counter() - t0)
        full_s, ours_s = statistics.median(times["full"]), statistics.median(times["advlib"])
        row = {"model": name, "radii": radii, "full_s": round(full_s, 2), "advlib_s": round(ours_s, 2),
               "speedup": round(full_s / ours_s, 2), "full_acc": acc["full"], "advlib_acc": acc["advlib"],
               "times_s": {k: [round(v, 2) for v in vs] for k, vs in times.items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_result("bench_eval", bench.device, {
        "what": "eps sweep on the profile's evaluation subset: every radius alone, every image every step "
                "(full) vs early stop + nested radii (advlib.evaluate.nested_robust_accuracy); medians of repeats",
        **bench.record(eval_n=len(y), steps=cfg.eval_steps, repeats=args.repeats, rows=rows)}, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
