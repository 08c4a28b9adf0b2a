"""What makes the CPU-scale standard model non-robust? (the `cpu` profile's levers)

Trains a standard model per setting on a class-balanced CIFAR-10 subset and measures its clean
accuracy and L2 robustness (PGD-20 at several radii; optionally a stronger PGD and torchattacks'
APGD-CE / APGD-T as cross-checks) on the validation split (``--split test``: the test set), so
each lever's effect is one JSON row.

    python -m benchmarks.cpu_levers --cifar path/to/cifar10.zip --out benchmarks/results/cpu_levers-val.json \
        --setting name=base,arch=small,epochs=15 --setting name=noaug,arch=small,epochs=30,aug=,wd=0

Setting keys: name, arch, epochs, lr, wd, aug ("crop+flip" | "flip" | ""), bs, ls (label
smoothing), n (training images, at most the profile's n_train: the validation images lie outside
that pick), jpeg (re-encode train and evaluation images at this JPEG quality), blur (Gaussian blur
sigma, train and evaluation images), schedule. The profile gives the CIFAR-10 source, the seed and
the sizes of the splits; rows accumulate in ``--out`` (a setting whose name is there is skipped).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time

import numpy as np
import torch

from advlib import data
from advlib import evaluate as ev
from advlib.models import build_model, count_parameters
from advlib.train import TrainConfig, fit
from advlib.utils import atomic_write_json, set_seed
from benchmarks._common import add_run_args, pct, resume, setup
from benchmarks._common import parse_setting as _parse

KEYS = {"name": str, "arch": str, "epochs": int, "lr": float, "wd": float, "aug": str, "bs": int, "ls": float,
        "n": int, "jpeg": int, "blur": float, "schedule": str}
DEFAULTS = {"arch": "small", "epochs": 15, "lr": 0.05, "wd": 5e-4, "aug": "crop+flip", "bs": 128, "ls": 0.0,
            "n": 10000, "jpeg": 0, "blur": 0.0, "schedule": "onecycle"}


def parse_setting(text: str) -> dict:
    out = _parse(text, KEYS, DEFAULTS)
    out.setdefault("name", text)
    return out


def rejpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Re-encode float images in [0,1] as JPEG at ``quality`` and decode them again."""
    from PIL import Image

    arr = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    out = np.empty_like(arr)
    for i, a in enumerate(arr):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    import torchvision.transforms.functional as TF

    k = int(2 * round(3 * sigma) + 1)
    return TF.gaussian_blur(x, [k, k], [sigma, sigma]).clamp(0, 1)


def transform(x, s):
    if s["jpeg"]:
        x = rejpeg(x, s["jpeg"])
    if s["blur"]:
        x = blur(x, s["blur"])
    return x


def apgd(model, x, y, eps, n_classes=10):
    import torchattacks

    out = {}
    for name, atk in (("apgd_ce", torchattacks.APGD(model, norm="L2", eps=eps, steps=50, loss="ce", seed=0)),
                      ("apgd_t", torchattacks.APGDT(model, norm="L2", eps=eps, steps=50, n_classes=n_classes, seed=0))):
        correct = []
        for i in range(0, len(y), 250):
            xa = atk(x[i:i + 250], y[i:i + 250])
            with torch.no_grad():
                correct.append(model(xa).argmax(1) == y[i:i + 250])
        out[name] = torch.cat(correct)
    return out


def render(data: dict) -> str:
    """One row per measured setting: what changed, clean, PGD-20 robust at 0.25 and 0.5, train accuracy."""
    split = "validation" if data.get("split") == "val" else "test"
    lines = [f"| setting | model | train acc | clean ({split}) | PGD-20 @ 0.25 | @ 0.5 | PGD + APGD-T @ 0.25 | @ 0.5 | "
             "train time |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        s = r.get("setting", {})
        what = r.get("what") or r["name"]
        lines.append(f"| {what} | {s.get('arch')}, {s.get('epochs')} ep, n={s.get('n')} | {pct(r.get('train_acc'))} | "
                     f"{pct(r.get('clean_acc'))} | {pct(r.get('pgd20_0.25'))} | {pct(r.get('pgd20_0.5'))} | "
                     f"{pct(r.get('worst_0.25'))} | {pct(r.get('worst_0.5'))} | {r.get('train_s', 0) / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, run_dir=False, setting="name=..,arch=..,epochs=..[,lr=..,wd=..,aug=..,bs=..,ls=..,n=..,"
                 "jpeg=..,blur=..,schedule=..]")
    ap.add_argument("--eval-n", type=int, default=500, help="images of the split attacked")
    ap.add_argument("--radii", default="0.25,0.5")
    ap.add_argument("--apgd", action="store_true", help="also torchattacks APGD-CE + APGD-T (50 steps) at 0.25")
    ap.add_argument("--strong", action="store_true", help="also PGD-100 with 3 restarts at 0.25")
    ap.add_argument("--apgd-targets", type=int, default=3, help="APGD-T targets of the headline (worst) attack")
    ap.add_argument("--apgd-steps", type=int, default=50, help="APGD-T iterations per target of the headline attack")
    args = ap.parse_args(argv)
    bench = setup(args)
    cfg = bench.cfg
    settings = [parse_setting(text) for text in args.setting]  # bad settings fail before any training
    radii = [float(v) for v in args.radii.split(",")]
    too_many = [s["name"] for s in settings if bench.split == "val" and cfg.n_train and s["n"] > cfg.n_train]
    if too_many:
        raise SystemExit(f"settings {too_many}: n is larger than the profile's n_train {cfg.n_train}, so their "
                         "training images would include the validation split's: lower n or -p n_train")

    rows = resume(args.out, bench).get("rows", [])
    x_eval, y_eval = bench.eval_split
    for s in settings:
        if any(r["name"] == s["name"] for r in rows):
            print(f"skip {s['name']} (done)", flush=True)
            continue
        t0 = time.perf_counter()
        xtr, ytr = data.load_cifar10(cfg.cifar_source, "train", n=s["n"], seed=cfg.seed,
                                     root=bench.paths.data if bench.paths else None, val=bench.n_val)
        xtr, xte = transform(xtr, s), transform(x_eval, s)
        yte = y_eval
        set_seed(cfg.seed)
        model = build_model(s["arch"]).to(bench.device)
        tcfg = TrainConfig(arch=s["arch"], epochs=s["epochs"], batch_size=s["bs"], lr=s["lr"], weight_decay=s["wd"],
                           schedule=s["schedule"], augment=s["aug"].replace("+", ","), label_smoothing=s["ls"],
                           seed=cfg.seed)
        hist = fit(model, xtr, ytr, tcfg, progress=False)
        train_s = time.perf_counter() - t0
        model.eval()
        idx = ev.eval_subset(yte, args.eval_n, cfg.seed)
        xs, ys = xte[idx], yte[idx]
        row = {"name": s["name"], "setting": s, "params": count_parameters(model), "train_s": round(train_s, 1),
               "final_train_loss": round(hist["loss"][-1], 4), "train_acc": round(hist["train_acc"][-1], 4),
               "clean_acc": ev.accuracy(model, xte, yte), "eval_n": len(idx),
               "clean_acc_subset": ev.accuracy(model, xs, ys)}
        for r in radii:
            row[f"pgd20_{r}"] = ev.robust_accuracy(model, xs, ys, eps=r, steps=20)
            # the headline attack: per image, PGD and then APGD-T on what PGD left
            row[f"worst_{r}"] = ev.robust_accuracy(model, xs, ys, eps=r, steps=20, attack="worst",
                                                   targets=args.apgd_targets, apgd_steps=args.apgd_steps)
        if args.strong:
            row["pgd100x3_0.25"] = ev.robust_accuracy(model, xs, ys, eps=0.25, steps=100, restarts=3)
        if args.apgd:
            hits = apgd(model, xs, ys, 0.25)
            for k, v in hits.items():
                row[f"{k}_0.25"] = v.float().mean().item()
            row["apgd_both_0.25"] = (hits["apgd_ce"] & hits["apgd_t"]).float().mean().item()
        row["total_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_json(args.out, bench.record(script="benchmarks/cpu_levers.py", n_eval=len(y_eval),
                                                 seed=cfg.seed, rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
