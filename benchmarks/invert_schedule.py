"""How many representation-matching steps do D_R / D_NR need? Distance against steps per schedule.

Takes a run directory's source models (``models/cifar10/{standard,robust}``) and ``--n`` images of
the validation split (``--split test``: the test set; images the source models never trained on),
runs the matching descent ``min ||g(x_r) - g(x)||`` from another image of the split under each
setting (steps, peak step length, schedule: constant | linear | cosine) and records the mean
relative feature distance ``||g(x_r) - g(x)|| / ||g(x)||`` at every logged step, the final one, how
far x_r moved from its start image, and the wall time. Writes a JSON and a figure beside it.

    python -m benchmarks.invert_schedule --run-dir runs/cpu --cifar path/to/cifar10.zip \
        --setting steps=150,step=0.1,schedule=constant --setting steps=60,step=0.3,schedule=cosine
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from advlib import construct, train, viz
from advlib.attacks import feature_fn
from advlib.utils import atomic_write_json
from benchmarks._common import add_run_args, setup
from benchmarks._common import parse_setting as _parse

KEYS = {"steps": int, "step": float, "schedule": str}


def parse_setting(text: str) -> dict:
    return _parse(text, KEYS, {"schedule": "constant"})


def figure(rows: list[dict]):
    fig = viz.NotebookFigure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, role in zip(axes, ("robust", "standard"), strict=True):
        for k, r in enumerate(x for x in rows if x["model"] == role):
            ax.plot(r["loss_steps"], r["rel_distance_curve"], color=f"C{k}",
                    label=f"{r['steps']} steps, {r['schedule']} from {r['step']} ({r['seconds']:.0f} s)")
        ax.set(xlabel="matching step", ylabel="relative feature distance ||g(x_r)-g(x)|| / ||g(x)||",
               title=f"{'D_R' if role == 'robust' else 'D_NR'}: {role} model's representation", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def render(data: dict) -> str:
    """One row per (source model, matching setting): final relative feature distance, how far the
    image moved from its start image, wall time for ``n`` images."""
    lines = ["| representation of | steps × step length (schedule) | rel. feature distance | moved from start (rel.) | "
             f"time for {data.get('n')} images |", "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        what = "robust model (D_R)" if r["model"] == "robust" else "standard model (D_NR)"
        lines.append(f"| {what} | {r['steps']} × {r['step']} ({r['schedule']}) | {r['final_rel_distance']:.3f} | "
                     f"{r['moved_from_start_rel']:.2f} | {r['seconds']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, setting="steps=..,step=..[,schedule=constant|linear|cosine]",
                 out="benchmarks/results/invert_schedule-cpu.json")
    ap.add_argument("--n", type=int, default=300, help="images of the split matched")
    args = ap.parse_args(argv)
    settings = [(text, parse_setting(text)) for text in args.setting]  # bad settings fail before any work
    bench = setup(args, reads_run=True)
    cfg, paths = bench.cfg, bench.paths
    missing = [r for r in ("robust", "standard") if not (paths.source_model(r) / "checkpoint.pt").is_file()]
    if missing:
        raise SystemExit(f"no {missing} source model(s) under {paths.models}: run notebook 02 first")
    x, y = bench.eval_split
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed))[: args.n]
    rows = []
    for role in ("robust", "standard"):
        model = train.load_trained(paths.source_model(role), device=bench.device)
        for text, s in settings:
            t0 = time.perf_counter()
            out = construct.build_robust_set(model, x, y, steps=s["steps"], step_size=s["step"], indices=idx,
                                             seed=cfg.seed, batch_size=cfg.construct_batch, schedule=s["schedule"],
                                             log_points=50)
            seconds = time.perf_counter() - t0
            start, target = x[out["start_indices"]], x[out["source_indices"]]
            # the logged curve is the absolute distance; divide by ||g(x)|| (mean) for a relative curve
            with torch.no_grad():
                norm = feature_fn(model)(target.to(bench.device)).norm(dim=1).mean().item()
            moved = (out["images"] - start).flatten(1).norm(dim=1) / (target - start).flatten(1).norm(dim=1)
            row = {"model": role, "setting": text, **s, "n": len(idx), "seconds": round(seconds, 1),
                   "img_steps_per_s": round(len(idx) * s["steps"] / seconds, 1),
                   "final_rel_distance": out["rel_distance"].mean().item(),
                   "moved_from_start_rel": moved.mean().item(),
                   "loss_steps": out["loss_steps"],
                   "rel_distance_curve": [v / norm for v in out["loss_curve"]]}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("loss_steps", "rel_distance_curve")}),
                  flush=True)
    atomic_write_json(args.out, bench.record(n=len(idx), rows=rows))
    viz.save_figure(figure(rows), Path(args.out).stem, Path(args.out).parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
