"""Throughput of dataset construction: images/s of representation matching (D_R / D_NR style)
and of targeted L2 PGD (D_rand / D_det style), advlib against a bare loop in the same process.

advlib: ``advlib.construct.build_robust_set`` / ``build_targeted_set`` (what ``construct_dataset``
runs per shard: start/target sampling, best-iterate tracking, the final distance / hit check).
peer: the same descent written as a bare loop with no bookkeeping (the floor any implementation
pays). ratio = advlib images/s / peer images/s (1.0 = no overhead).

    python -m benchmarks.bench_construct                      # CPU, small sizes
    python -m benchmarks.bench_construct --device cuda --n 5000 --batch 5000 --steps 100

Models are freshly initialized (throughput does not depend on the weights); images are random.
Writes benchmarks/results/construct_<device>.json (``--out``: another folder; ``--out-file``: that file).

GPU-side options: ``--tasks invert`` (one of the two), and ``--fwd-bwd``: each row also gets the
model's own forward + backward rate on the same batch, layout and autocast (:func:`fwd_bwd_rate`:
``fwd_bwd_input_img_per_s``, a forward of the logits and a backward to the input, weights frozen,
what one attack step cannot go below; ``fwd_bwd_train_img_per_s``, a training step's forward and
backward to the weights, no optimizer) and ``fraction_of_fwd_bwd`` = img·steps/s over the first:
how close construction runs to the model's own rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from advlib.construct import autocast_for, build_robust_set, build_targeted_set
from advlib.models import build_model
from advlib.utils import Timer, get_device, machine_record
from benchmarks._common import RESULTS, shown


# --- the peer: bare loops -------------------------------------------------------------------
def _unit(g):
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def peer_invert(model, x_t, x_0, steps, step_size):
    with torch.no_grad():
        target = model.features(x_t).float()
    x = x_0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        loss = (model.features(x).float() - target).norm(dim=1).sum()
        (g,) = torch.autograd.grad(loss, x)
        x = (x.detach() - step_size * _unit(g)).clamp(0, 1)
    return x.detach()


def peer_targeted_pgd(model, x, t, eps, steps, step_size):
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv).float(), t)
        (g,) = torch.autograd.grad(loss, x_adv)
        d = x_adv.detach() - step_size * _unit(g) - x
        d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1).view(-1, 1, 1, 1)
        x_adv = (x + d).clamp(0, 1)
    return x_adv.detach()


def _peer_run(fn, model, x, y, batch, device, amp, steps, gen):
    for lo in range(0, len(x), batch):
        xb = x[lo:lo + batch].to(device)
        with autocast_for(device, amp):
            if fn is peer_invert:
                x0 = x[torch.randint(0, len(x), (len(xb),), generator=gen)].to(device)
                fn(model, xb, x0, steps, 0.1)
            else:
                fn(model, xb, y[lo:lo + batch].to(device), 0.5, steps, 0.1)


# --- the model's own rate -----------------------------------------------------------------------------
def fwd_bwd_rate(model, x, *, amp: bool, repeats: int = 3, what: str = "input") -> float:
    """Images/s of one forward and backward of ``model`` on the batch ``x`` (on the model's device,
    in eval mode, under bf16 autocast on CUDA when ``amp``): ``what="input"`` (logits, then the
    gradient of their sum's cross-entropy with respect to the input, weights frozen: an attack
    step's floor) or ``"train"`` (the gradient with respect to the weights, as a training step
    computes it, without the optimizer). Best of ``repeats`` after one warm-up."""
    from advlib.attacks import eval_mode, frozen_params
    from advlib.utils import model_device

    if what not in ("input", "train"):
        raise ValueError(f"fwd_bwd_rate: what must be 'input' or 'train', got {what!r}")
    device = model_device(model)
    x = x.to(device).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(len(x), dtype=torch.int64, device=device)
    params = [p for p in model.parameters()]

    def step():
        with autocast_for(device, amp):
            if what == "input":
                xi = x.detach().requires_grad_(True)
                loss = F.cross_entropy(model(xi).float(), y)
                torch.autograd.grad(loss, xi)
            else:
                loss = F.cross_entropy(model(x).float(), y)
                torch.autograd.grad(loss, params)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with eval_mode(model), torch.enable_grad():
        ctx = frozen_params(model) if what == "input" else contextlib.nullcontext()
        with ctx:
            step()
            return len(x) / _best_of(repeats, step)


# --- one measurement ------------------------------------------------------------------------------
def _best_of(repeats, fn) -> float:
    """Fastest of ``repeats`` runs (the machine may be shared: the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        with Timer() as t:
            fn()
        times.append(t.seconds)
    return min(times)


TASKS = ("invert", "targeted_pgd")


def bench(arch, device, *, n, batch, steps, amp, channels_last, repeats, tasks=TASKS, fwd_bwd=False):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    model = build_model(arch).to(device).eval()
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    warm = min(n, batch)
    build_robust_set(model, x[:warm], y[:warm], steps=2, step_size=0.1, batch_size=batch, amp=amp)
    build_targeted_set(model, x[:warm], y[:warm], rule="rand", eps=0.5, step_size=0.1, steps=2, batch_size=batch, amp=amp)
    rows = []
    runs = {
        "invert": (lambda: build_robust_set(model, x, y, steps=steps, step_size=0.1, batch_size=batch, amp=amp),
                   lambda: _peer_run(peer_invert, model, x, y, batch, device, amp, steps, g)),
        "targeted_pgd": (lambda: build_targeted_set(model, x, y, rule="rand", eps=0.5, step_size=0.1, steps=steps,
                                                    batch_size=batch, amp=amp),
                         lambda: _peer_run(peer_targeted_pgd, model, x, y, batch, device, amp, steps, g)),
    }
    own = {}
    if fwd_bwd:
        xb = x[:batch].to(device)
        own = {f"fwd_bwd_{w}_img_per_s": round(fwd_bwd_rate(model, xb, amp=amp, repeats=repeats, what=w), 2)
               for w in ("input", "train")}
    for task, (ours, peer) in runs.items():
        if task not in tasks:
            continue
        ta, tp = _best_of(repeats, ours), _best_of(repeats, peer)
        ips, pips = n / ta, n / tp
        rows.append({"arch": arch, "task": task, "n": n, "batch": batch, "steps": steps, "amp_bf16": amp,
                     "repeats": repeats, "advlib_s": round(ta, 3), "advlib_img_per_s": round(ips, 2),
                     "peer_s": round(tp, 3), "peer_img_per_s": round(pips, 2),
                     "ratio": round(ips / pips, 3),
                     "img_steps_per_s": round(ips * steps, 1)})
        if own:
            rows[-1].update(own, fraction_of_fwd_bwd=round(ips * steps / own["fwd_bwd_input_img_per_s"], 3))
    return rows


def render(data: dict) -> str:
    """One row per (model, task): advlib's img·steps/s against the bare loop's, and their ratio."""
    lines = ["| model | task | img·steps/s advlib | bare loop | ratio |", "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        lines.append(f"| `{r['arch']}` | {r['task']} (batch {r['batch']}, {r['steps']} steps) | "
                     f"{r['img_steps_per_s']:,.0f} | {r['peer_img_per_s'] * r['steps']:,.0f} | **{r['ratio']:.2f}x** |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--archs", default="small,airbench", help="comma-separated names from advlib.models.ARCHS")
    ap.add_argument("--n", type=int, default=None, help="images per measurement (default: 64 on CPU, 5000 on CUDA)")
    ap.add_argument("--batch", type=int, default=None, help="images per attack batch (default: n)")
    ap.add_argument("--steps", type=int, default=None, help="descent steps (default: 10 on CPU, 100 on CUDA)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest is kept")
    ap.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (bf16 autocast otherwise)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--out", default=str(RESULTS), help="folder for construct_<device>.json")
    ap.add_argument("--out-file", default="", help="the JSON file to write instead (e.g. into a device run's $OUT)")
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {TASKS}")
    ap.add_argument("--fwd-bwd", action="store_true", help="also time the model's own forward + backward and give "
                    "each row's img·steps/s as a fraction of it")
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or set(tasks) - set(TASKS):
        ap.error(f"--tasks {args.tasks!r}: expected names from {TASKS}")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    cuda = device.type == "cuda"
    n = args.n or (5000 if cuda else 64)
    batch = args.batch or n
    steps = args.steps or (100 if cuda else 10)
    amp = cuda and not args.no_amp
    rows = []
    for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
        new = bench(arch, device, n=n, batch=batch, steps=steps, amp=amp, channels_last=True,
                    repeats=args.repeats, tasks=tasks, fwd_bwd=args.fwd_bwd)
        rows += new
        for row in new:
            own = (f"   {100 * row['fraction_of_fwd_bwd']:.0f}% of fwd+bwd {row['fwd_bwd_input_img_per_s']:.1f} img/s"
                   if "fraction_of_fwd_bwd" in row else "")
            print(f"{row['arch']:>9} {row['task']:>13}  steps={row['steps']:<4} n={row['n']:<6} "
                  f"advlib {row['advlib_img_per_s']:>9.1f} img/s   peer {row['peer_img_per_s']:>9.1f} img/s   "
                  f"ratio {row['ratio']:.2f}{own}", flush=True)

    record = {"rows": rows, "machine": machine_record(device)}
    f = Path(args.out_file) if args.out_file else Path(args.out) / f"construct_{device.type}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {shown(f)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
