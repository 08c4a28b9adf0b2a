"""The command line of :mod:`advlib.dist`: the study's steps on several processes.

    torchrun --nproc_per_node=2 -m advlib.dist all --profile smoke --out runs/x [-p key value ...]
    torchrun --nproc_per_node=8 -m advlib.dist sources|construct|train|evaluate --profile fast ...
    python -m advlib.dist ...    (one process, the same steps)

Each process joins the group that ``torchrun`` describes (:func:`advlib.dist.init_from_env`),
rank 0 fills the data cache first, and then every rank runs the notebooks' steps (:mod:`advlib.steps`);
the library code splits the work (see :mod:`advlib.dist`). Rank 0 alone prints and writes.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from .. import config
from ..paths import RunPaths
from ..steps import construct, evaluate, train
from ..steps.base import Run, default_run_dir
from ..utils import get_device
from . import barrier, cleanup, init_from_env, is_main, main_first, world_size

COMMANDS = ("sources", "construct", "train", "evaluate", "all")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m advlib.dist",
                                 description="Run the study's steps on several processes (also runs without torchrun).")
    ap.add_argument("command", choices=COMMANDS,
                    help="sources: train the standard and robust source models; construct: build the profile's "
                         "datasets (training the source models first if needed); train: train on each available "
                         "set; evaluate: PGD-evaluate every trained model -> results.json; all: the four in order")
    ap.add_argument("--profile", default="smoke", choices=config.PROFILE_NAMES)
    ap.add_argument("--out", default=None, help="run directory (default runs/demo for smoke, runs/<profile> otherwise)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="profile key, e.g. -p sources.standard.epochs 3 -p cifar_source path/to.zip")
    ap.add_argument("--backend", default=None, help="torch.distributed backend (default: nccl on CUDA, else gloo)")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:  # bad settings: one clear line, before any process group or data
        cfg = config.get_profile(args.profile, **dict(args.param))
        device = get_device(cfg.device)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device.index is not None:
            raise ValueError(f"profile field 'device': {cfg.device!r} would put every process on one GPU; "
                             f"use 'auto' or 'cuda' (each process then takes GPU LOCAL_RANK)")
    except ValueError as e:
        print(f"advlib.dist: error: {e}", file=sys.stderr)
        return 2
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    init_from_env(backend=args.backend, device=device)
    try:
        paths = RunPaths.of(args.out or default_run_dir(cfg.name))
        run = Run(cfg, paths, paths.figures)
        if is_main():
            paths.root.mkdir(parents=True, exist_ok=True)
            print(f"advlib.dist {args.command}: profile {cfg.name}, {world_size()} process(es), run dir {paths.root}",
                  flush=True)
        progress = is_main()
        with main_first():  # rank 0 fills the data cache (a download) before the others read it
            _ = run.train, run.val, run.test
        steps = ("sources", "construct", "train", "evaluate") if args.command == "all" else (args.command,)
        for step in steps:
            if step in ("sources", "construct"):
                models = construct.source_models(run, progress=progress)
            if step == "construct":
                construct.build_sets(run, models, progress=progress)
            elif step == "train":
                sets = train.feature_sets(run)
                if not sets and is_main():
                    print(f"advlib.dist train: no {cfg.origin} datasets in {paths.root}; "
                          f"run 'construct' first (or fetch the release)", file=sys.stderr)
                train.train_all(run, sets, progress=progress)
            elif step == "evaluate":
                results = evaluate.evaluate_all(run, progress=progress)
                if is_main():
                    from ..tables import render

                    print(render(results), flush=True)
            barrier()
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
