"""D_R (and D_NR) against their matched control, measured on the validation split.

The claim under test: a model trained on D_R is more robust than *the same training on the real
images D_R was built from* (its matched control: same architecture, recipe, seeds; the real
images, true labels). Every lever is a set of profile overrides; for each lever and seed this
trains the model on D_R (and on D_NR with ``--nr``) and the control, and records clean and robust
accuracy on the held-out validation split (the test set only with ``--split test``, when a run
reports) at each radius: PGD-20 and the per-image worst case of PGD and APGD-T, nested over the
radii. Models and sets are cached under ``--cache`` by the content of what they depend on, so
levers share what they have in common. ``-p FIELD VALUE`` overrides a profile field for every lever.

    python -m benchmarks.rnr_control --cifar path/to/cifar10.zip --cache runs/levers-cache \\
        --lever base: --lever aug:rnr_augment=crop+flip --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

from advlib import construct, train
from advlib import evaluate as ev
from advlib.utils import atomic_torch_save, atomic_write_json, set_seed
from benchmarks._common import add_run_args, resume, setup


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _model(cache: Path, tcfg, x, y, name: str, val, device):
    out = cache / "models" / f"{name}-{_key(tcfg.__dict__, construct.pool_fingerprint(x, y))}"
    model, hist = train.train_or_load(tcfg, x, y, out, eval_data=val, progress=False, device=device,
                                      source="levers", dataset=name, eval_every=max(tcfg.epochs, 1))
    return model


def _matched_set(cache: Path, cfg, model, x, y, which: str) -> dict:
    n = min(cfg.invert_n or cfg.construct_n or len(x), len(x))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))[:n]
    key = _key(which, n, cfg.invert_steps, cfg.invert_step_size, cfg.invert_schedule, cfg.seed,
               construct.model_fingerprint(model), construct.pool_fingerprint(x, y))
    f = cache / "sets" / f"{which}-{key}.pt"
    if f.is_file():
        return torch.load(f, weights_only=True)
    t0 = time.perf_counter()
    r = construct.build_robust_set(model, x, y, steps=cfg.invert_steps, step_size=cfg.invert_step_size,
                                   indices=order, generator=torch.Generator().manual_seed(cfg.seed),
                                   batch_size=cfg.construct_batch, schedule=cfg.invert_schedule)
    r["seconds"] = time.perf_counter() - t0
    atomic_torch_save(r, f)
    return r


def _evaluate(model, xv, yv, radii, seed, targets, steps) -> dict:
    clean = ev.correct_mask(model, xv, yv)
    pgd = ev.nested_robust_accuracy(model, xv, yv, radii, seed=seed, masks=True)
    worst = ev.nested_robust_accuracy(model, xv, yv, radii, seed=seed, attack="worst", targets=targets,
                                      apgd_steps=steps, masks=True)
    return {"clean": clean, "pgd": pgd, "worst": worst}


def _acc(m: torch.Tensor) -> float:
    return round(float(m.float().mean()), 4)


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _p(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _pts(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def render(data: dict) -> str:
    """One row per lever: its overrides, seeds, D_R's and its matched control's clean and headline-robust
    accuracy (per image PGD then APGD-T) on the validation split at 0.25 and 0.5, and the difference;
    with ``--nr`` runs, D_NR's robust accuracy too. Means over the seeds measured."""
    radii = ("0.25", "0.5")
    lines = ["| lever | seeds | D_R clean | D_R @ 0.25 | @ 0.5 | control clean | control @ 0.25 | @ 0.5 | "
             "D_R − control @ 0.25 | @ 0.5 | D_NR @ 0.25 | @ 0.5 |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in data.get("levers", {}).items():
        seeds = list(e.get("seeds", {}).values())
        if not seeds:
            continue
        def get(who, what, k=None, seeds=seeds):
            return _mean([(s.get(who) or {}).get(what) if k is None else ((s.get(who) or {}).get(what) or {}).get(k)
                          for s in seeds])

        over = ", ".join(f"{k}={v}" for k, v in (e.get("overrides") or {}).items()) or "the profile"
        lines.append(" | ".join([
            f"| {name} ({over})", str(len(seeds)), _p(get("d_robust", "clean")),
            *[_p(get("d_robust", "worst", k)) for k in radii], _p(get("control", "clean")),
            *[_p(get("control", "worst", k)) for k in radii],
            *[_pts(get("d_robust", "worst", k) - get("control", "worst", k)) if get("control", "worst", k) is not None
              and get("d_robust", "worst", k) is not None else "–" for k in radii],
            *[_p(get("d_non_robust", "worst", k)) for k in radii]]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, run_dir=False, out="benchmarks/results/rnr_control-val.json")
    ap.add_argument("--cache", required=True, help="folder for the cached models and sets")
    ap.add_argument("--lever", action="append", required=True, help="name:field=value,field=value (profile fields)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--radii", default="0.25,0.5,0.75,1.0")
    ap.add_argument("--apgd", default="3x50", help="APGD-T targets x iterations")
    ap.add_argument("--nr", action="store_true", help="also D_NR (needs the standard source model)")
    args = ap.parse_args(argv)
    targets, steps = (int(v) for v in args.apgd.split("x"))
    levers = []
    for text in args.lever:  # every lever is checked before any work
        name, _, body = text.partition(":")
        kv = dict(p.split("=", 1) for p in body.split(",") if p)
        kv = {k: v.replace("+", ",") for k, v in kv.items()}
        levers.append((name, kv, setup(args, **kv)))
    seeds = [int(s) for s in args.seeds.split(",")]
    radii = [float(r) for r in args.radii.split(",")]
    cache = Path(args.cache)
    result = resume(args.out, levers[0][2]) or {"levers": {}}
    for name, kv, bench in levers:
        cfg, dev = bench.cfg, bench.device
        set_seed(cfg.seed)
        x, y = bench.train
        xv, yv = bench.eval_split
        robust = _model(cache, train.train_config(cfg, "robust"), x, y, "robust", (xv, yv), dev)
        sets = {"d_robust": _matched_set(cache, cfg, robust, x, y, "d_robust")}
        if args.nr:
            std = _model(cache, train.train_config(cfg, "standard"), x, y, "standard", (xv, yv), dev)
            sets["d_non_robust"] = _matched_set(cache, cfg, std, x, y, "d_non_robust")
        idx = sets["d_robust"]["source_indices"]
        entry = {"overrides": kv, "n_set": len(idx), "seeds": {}, "apgd": args.apgd, "radii": radii,
                 "rel_distance": {k: round(float(s["rel_distance"].mean()), 4) for k, s in sets.items()},
                 "construct_seconds": {k: round(float(s.get("seconds", 0)), 1) for k, s in sets.items()}}
        for seed in seeds:
            t0 = time.perf_counter()
            rows = {}
            for setname, s in [("control", {"images": x[idx], "labels": y[idx]}), *sets.items()]:
                tcfg = train.train_config(cfg, "dataset", "d_robust")
                tcfg = type(tcfg)(**{**tcfg.__dict__, "seed": seed})
                model = _model(cache, tcfg, s["images"], s["labels"], setname, (xv, yv), dev)
                rows[setname] = _evaluate(model, xv, yv, radii, seed, targets, steps)
            summary = {}
            for setname, r in rows.items():
                summary[setname] = {"clean": _acc(r["clean"]),
                                    "pgd": {k: _acc(v) for k, v in r["pgd"].items()},
                                    "worst": {k: _acc(v) for k, v in r["worst"].items()}}
            summary["d_robust_minus_control"] = {k: round(summary["d_robust"]["worst"][k] -
                                                          summary["control"]["worst"][k], 4)
                                                 for k in summary["control"]["worst"]}
            summary["seconds"] = round(time.perf_counter() - t0, 1)
            entry["seeds"][str(seed)] = summary
            print(name, seed, json.dumps(summary), flush=True)
            result["levers"][name] = entry
            result.update(bench.record())
            atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
