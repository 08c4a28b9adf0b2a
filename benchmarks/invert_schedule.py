"""How many representation-matching steps do D_R / D_NR need? Distance against steps per schedule.

Takes a run directory's source models (``models/cifar10/{standard,robust}``) and ``--n`` of its
training images, runs the matching descent ``min ||g(x_r) - g(x)||`` from another training image
under each setting (steps, peak step length, schedule: constant | linear | cosine) and records the
mean relative feature distance ``||g(x_r) - g(x)|| / ||g(x)||`` at every logged step, the final one,
how far x_r moved from its start image, and the wall time. Writes a JSON and a figure.

    python benchmarks/invert_schedule.py --run-dir runs/cpu --cifar path/to/cifar10.zip \
        --setting steps=150,step=0.1,schedule=constant --setting steps=60,step=0.3,schedule=cosine
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advlib import config, construct, pipeline, train, viz  # noqa: E402
from advlib.attacks import feature_fn  # noqa: E402
from advlib.paths import RunPaths  # noqa: E402
from advlib.utils import atomic_write_json  # noqa: E402
from benchmarks._common import parse_setting as _parse  # noqa: E402

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--profile", default="cpu", choices=config.PROFILE_NAMES)
    ap.add_argument("--cifar", default=None)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--setting", action="append", required=True)
    ap.add_argument("--out", default="benchmarks/results/invert_schedule-cpu.json")
    args = ap.parse_args(argv)

    cfg = config.get_profile(args.profile, **({"cifar_source": args.cifar} if args.cifar else {}))
    paths = RunPaths.of(args.run_dir)
    x, y = pipeline.cifar(cfg, paths, "train")
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed))[: args.n]
    rows = []
    for role in ("robust", "standard"):
        model = train.load_trained(paths.source_model(role), device="cpu")
        for text in args.setting:
            s = parse_setting(text)
            t0 = time.perf_counter()
            out = construct.build_robust_set(model, x, y, steps=s["steps"], step_size=s["step"], indices=idx,
                                             seed=cfg.seed, batch_size=cfg.construct_batch, schedule=s["schedule"],
                                             log_points=50)
            seconds = time.perf_counter() - t0
            start, target = x[out["start_indices"]], x[out["source_indices"]]
            # the logged curve is the absolute distance; divide by ||g(x)|| (mean) for a relative curve
            with torch.no_grad():
                norm = feature_fn(model)(target).norm(dim=1).mean().item()
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
    atomic_write_json(args.out, {"run_dir": str(paths.root), "profile": cfg.name, "n": args.n, "rows": rows})
    viz.save_figure(figure(rows), Path(args.out).stem, Path(args.out).parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
