"""advlib.attacks.pgd vs torchattacks.PGDL2: throughput and strength on the same model and batch.

Both run L2 PGD with eps 0.5, 20 steps, step 2.5*eps/steps, a random start, on one batch of
synthetic images, against a small CNN trained for a few seconds on the same synthetic task
(so that robust accuracy means something). Timings alternate between the two attacks; the
ratio uses the best of --repeats runs of each (the least disturbed on a shared machine), and
the ratio of medians is printed beside it. advlib keeps the best iterate (the clean input is a
candidate too), which costs two extra forward passes per attack; it must never be weaker. Both get
the same model object: advlib attacks it with its BatchNorm folded into the convolutions
(``advlib.attacks.folded``, the same function), torchattacks runs it as given.

    python -m benchmarks.bench_pgd [--arch small] [--device auto|cpu|cuda] [--batch 256] [--out FILE]
    python -m benchmarks.bench_pgd --device cuda --arch resnet18 --batch 512 --variants fp32,bf16,bf16-stop

``--variants`` (the GPU's options): how advlib runs the same attack, each timed against the same
torchattacks run: ``fp32`` (the default, the only variant before), ``bf16`` (under bf16 autocast,
the loss in float32, as construction runs its attacks on CUDA), ``-stop`` (``stop_on_success``:
an image stops being attacked once it is broken, as ``advlib.evaluate`` runs PGD; which images end
broken is unchanged). Whatever a variant computes in, its strength is checked in float32 (no
autocast, TF32 off): the robust accuracy of its adversarial images against torchattacks'. With a
bf16 variant, torchattacks under the same bf16 autocast is timed too (``torchattacks_bf16``),
so both ratios are on record. The top-level numbers are the first variant's (the README's).

Writes benchmarks/results/bench_pgd-<device>.json (or ``--out``) with the numbers and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

from advlib.attacks import pgd
from advlib.models import build_model
from advlib.train import TrainConfig, fit
from advlib.utils import get_device, machine_record
from benchmarks._common import load_avg, pct, sync, threads, write_result


def synthetic(n: int, seed: int, amp: float = 0.2, noise: float = 0.2):
    """10 classes, a smooth colour template each plus pixel noise, in [0,1]."""
    low = torch.rand(10, 3, 4, 4, generator=torch.Generator().manual_seed(123))
    templates = F.interpolate(low, size=32, mode="bilinear", align_corners=False)
    y = torch.arange(n) % 10
    noise_t = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return (0.5 + amp * (templates[y] - 0.5) + noise * noise_t).clamp(0, 1), y


VARIANTS = ("fp32", "fp32-stop", "bf16", "bf16-stop")


def parse_variants(text: str) -> list[str]:
    """``"fp32,bf16-stop"`` -> the list; an unknown name exits naming the valid ones."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise SystemExit(f"bench_pgd: --variants {text!r}: unknown {bad or 'none given'}; expected names from {VARIANTS}")
    return list(dict.fromkeys(names))


def autocast(device, bf16: bool):
    """bf16 autocast on ``device`` (CUDA, or the CPU's), or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@contextlib.contextmanager
def strict_fp32():
    """Float32 as written: no autocast, no TF32 in matrix products or convolutions (the final check)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def render(data: dict) -> str:
    """Both attacks' throughput and robust accuracy, the ratios, the setting and the machine."""
    m = data.get("machine", {})
    lo, hi = data.get("speed_ratio_range") or (None, None)  # files from before the paired ratios: none
    pairs = "–" if lo is None else f"{lo:.2f}–{hi:.2f}x"
    return ("| attack | img/s (best of %d) | robust acc | ratio of medians | range of paired ratios | best-of ratio |\n"
            "|---|---|---|---|---|---|\n"
            "| `advlib.pgd` | %.1f | %s | **%.2fx** | %s | %.2fx |\n"
            "| torchattacks `PGDL2` | %.1f | %s | 1 | 1 | 1 |\n\n"
            "L2 PGD, eps %s, %d steps, batch %d, `%s` model, %s, %s thread(s), load average %s at the start.\n"
            % (data["repeats"], data["advlib_img_per_s"], pct(data["robust_acc_advlib"]), data["speed_ratio_median"],
               pairs, data["speed_ratio"], data["torchattacks_img_per_s"], pct(data["robust_acc_torchattacks"]),
               data["eps"], data["steps"], data["batch"], data["arch"], m.get("device"), threads(m), load_avg(m)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="small")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--eps", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--variants", default="fp32", help=f"comma-separated advlib variants from {VARIANTS} "
                    "(default fp32; the first gives the top-level numbers)")
    ap.add_argument("--out", default="", help="JSON to write (default benchmarks/results/bench_pgd-<device>.json)")
    args = ap.parse_args(argv)
    variants = parse_variants(args.variants)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    import torchattacks  # needs scipy

    device = get_device(args.device)
    machine = machine_record(device)  # the load average at the start
    torch.manual_seed(0)
    model = build_model(args.arch).to(device)
    x_train, y_train = synthetic(2000, 1)
    cfg = TrainConfig(arch=args.arch, epochs=args.train_epochs, batch_size=100, lr=0.05, schedule="constant",
                      augment="")
    fit(model, x_train.to(device), y_train.to(device), cfg, progress=False)
    model.eval()
    x, y = synthetic(args.batch, 2)
    x, y = x.to(device), y.to(device)
    alpha = 2.5 * args.eps / args.steps

    def ours(variant):
        bf16, stop = variant.startswith("bf16"), variant.endswith("-stop")

        def run():
            with autocast(device, bf16):
                return pgd(model, x, y, norm="l2", eps=args.eps, step_size=alpha, steps=args.steps,
                           generator=torch.Generator().manual_seed(0), stop_on_success=stop)
        return run

    attack = torchattacks.PGDL2(model, eps=args.eps, alpha=alpha, steps=args.steps, random_start=True)

    def theirs(bf16=False):
        def run():
            with autocast(device, bf16):
                return attack(x, y)
        return run

    def timed(fn):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        return time.perf_counter() - t0, out

    runs = {"torchattacks": theirs()}
    if any(v.startswith("bf16") for v in variants):
        runs["torchattacks_bf16"] = theirs(bf16=True)
    runs.update({v: ours(v) for v in variants})
    for fn in runs.values():  # warm-up (allocator, kernels, lazy init)
        timed(fn)
    times: dict[str, list[float]] = {k: [] for k in runs}
    adv: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):  # each repeat times every run back to back: a pair shares the machine's load
        for k, fn in runs.items():
            dt, adv[k] = timed(fn)
            times[k].append(dt)
    with torch.no_grad(), strict_fp32():  # the strength of every run, checked in float32
        clean = (model(x).argmax(1) == y).float().mean().item()
        acc = {k: (model(a.float()).argmax(1) == y).float().mean().item() for k, a in adv.items()}

    def ratios(k, peer="torchattacks"):
        # Best of N: on a shared machine the minimum is the least disturbed run; the median is kept
        # too, and the spread of the paired ratios is the honest range of the speed-up.
        pairs = sorted(b / a for a, b in zip(times[k], times[peer], strict=True))
        return {"img_per_s": args.batch / min(times[k]), "speed_ratio": min(times[peer]) / min(times[k]),
                "speed_ratio_median": statistics.median(times[peer]) / statistics.median(times[k]),
                "speed_ratio_pairs": pairs, "speed_ratio_range": [pairs[0], pairs[-1]], "seconds": times[k],
                "robust_acc": acc[k], "at_least_as_strong": acc[k] <= acc["torchattacks"]}

    rows = []
    for v in variants:
        row = {"variant": v, "bf16": v.startswith("bf16"), "stop_on_success": v.endswith("-stop"), **ratios(v)}
        if "torchattacks_bf16" in runs:
            row["speed_ratio_vs_torchattacks_bf16"] = ratios(v, "torchattacks_bf16")["speed_ratio"]
        rows.append(row)
    first = rows[0]
    ips_theirs = args.batch / min(times["torchattacks"])
    result = {
        "benchmark": "pgd_l2", "arch": args.arch, "batch": args.batch, "eps": args.eps, "steps": args.steps,
        "step_size": alpha, "repeats": args.repeats, "variant": first["variant"],
        "advlib_img_per_s": first["img_per_s"], "torchattacks_img_per_s": ips_theirs,
        "speed_ratio": first["speed_ratio"], "speed_ratio_median": first["speed_ratio_median"],
        "speed_ratio_pairs": first["speed_ratio_pairs"], "speed_ratio_range": first["speed_ratio_range"],
        "seconds_advlib": first["seconds"], "seconds_torchattacks": times["torchattacks"],
        "clean_acc": clean, "robust_acc_advlib": first["robust_acc"], "robust_acc_torchattacks": acc["torchattacks"],
        "final_check": "float32 (no autocast, TF32 off)",
        "machine": machine,
    }
    if len(rows) > 1 or first["variant"] != "fp32":
        result["variants"] = rows
    if "torchattacks_bf16" in runs:
        result.update(torchattacks_bf16_img_per_s=args.batch / min(times["torchattacks_bf16"]),
                      robust_acc_torchattacks_bf16=acc["torchattacks_bf16"],
                      seconds_torchattacks_bf16=times["torchattacks_bf16"])
    print(f"device {device} | arch {args.arch} | batch {args.batch} | eps {args.eps} | steps {args.steps}")
    print(f"torchattacks.PGDL2       {ips_theirs:8.1f} img/s   robust acc {acc['torchattacks']:.3f}   (clean {clean:.3f})")
    if "torchattacks_bf16" in runs:
        print(f"torchattacks.PGDL2 bf16  {result['torchattacks_bf16_img_per_s']:8.1f} img/s   "
              f"robust acc {acc['torchattacks_bf16']:.3f}")
    for r in rows:
        lo, hi = r["speed_ratio_range"]
        print(f"advlib.pgd {r['variant']:<13} {r['img_per_s']:8.1f} img/s   robust acc {r['robust_acc']:.3f}   "
              f"ratio {r['speed_ratio']:.2f}x best-of-{args.repeats} ({r['speed_ratio_median']:.2f}x by medians, paired "
              f"range {lo:.2f}-{hi:.2f}x); at least as strong: {r['at_least_as_strong']}")
    write_result("bench_pgd", device, result, out=args.out)
    return result


if __name__ == "__main__":
    main()
