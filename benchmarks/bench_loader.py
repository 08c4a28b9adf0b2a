"""advlib.loader.BatchLoader vs torch DataLoader(TensorDataset) with per-sample torchvision
transforms: images per second with crop+flip augmentation.

1. loader alone: one epoch over --n random uint8 images, batches of --batch, no model.
   Peer: a TensorDataset whose items pass through torchvision.transforms.v2
   RandomCrop(32, padding=4) + RandomHorizontalFlip + ToDtype(float32, scale=True), batched by a
   DataLoader (--workers worker processes; 0 by default, since a 2-core machine has no core
   to spare). BatchLoader: the same augmentation as whole-batch tensor ops.
2. a whole training epoch of the "small" CNN (forward + backward + SGD step, channels_last as
   in advlib.train.fit) fed by each loader: what the loader's speed-up is worth in practice.

Each measurement alternates between the two loaders and keeps the best of --repeats runs.

    python -m benchmarks.bench_loader [--device auto|cpu|cuda] [--n 10000] [--batch 256] [--out FILE]

Writes benchmarks/results/bench_loader-<device>.json (or ``--out``) with the numbers and the machine.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

from advlib.loader import BatchLoader
from advlib.models import build_model
from advlib.utils import get_device, machine_record
from benchmarks._common import sync, write_result


class TransformedTensorDataset(TensorDataset):
    """TensorDataset + a per-sample transform of the image (what torchvision users write)."""

    def __init__(self, images, labels, transform):
        super().__init__(images, labels)
        self.transform = transform

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return self.transform(x), y


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-repeats", type=int, default=2)
    ap.add_argument("--arch", default="small")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--out", default="", help="JSON to write (default benchmarks/results/bench_loader-<device>.json)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    device = get_device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.n,), generator=g)

    ours = BatchLoader(images, labels, args.batch, shuffle=True, augment="crop,flip", seed=0, device=device)
    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True)])
    peer = DataLoader(TransformedTensorDataset(images, labels, transform), batch_size=args.batch, shuffle=True,
                      num_workers=args.workers, pin_memory=device.type == "cuda",
                      persistent_workers=args.workers > 0)

    def epoch_ours(step=None):
        for x, y in ours:
            if step is not None:
                step(x, y)
        sync(device)

    def epoch_peer(step=None):
        for x, y in peer:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if step is not None:
                step(x, y)
        sync(device)

    def timed(fn, *a):
        sync(device)
        t0 = time.perf_counter()
        fn(*a)
        return time.perf_counter() - t0

    # 1. loaders alone (alternating; a warm-up epoch of each first)
    epoch_ours()
    epoch_peer()
    t_ours, t_peer = [], []
    for _ in range(args.repeats):
        t_ours.append(timed(epoch_ours))
        t_peer.append(timed(epoch_peer))
    ips_ours, ips_peer = args.n / min(t_ours), args.n / min(t_peer)

    # 2. a training epoch of a small CNN fed by each loader
    torch.manual_seed(0)
    # the same step for both loaders, in channels_last as advlib.train.fit runs it
    model = build_model(args.arch).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    m_ours, m_peer = [], []
    for _ in range(args.model_repeats):
        m_ours.append(timed(epoch_ours, step))
        m_peer.append(timed(epoch_peer, step))
    eps_ours, eps_peer = args.n / min(m_ours), args.n / min(m_peer)

    result = {
        "benchmark": "loader_crop_flip", "n": args.n, "batch": args.batch, "workers": args.workers,
        "repeats": args.repeats, "arch": args.arch,
        "loader_img_per_s": {"advlib": ips_ours, "dataloader_v2": ips_peer},
        "loader_ratio": ips_ours / ips_peer,
        "epoch_with_model_img_per_s": {"advlib": eps_ours, "dataloader_v2": eps_peer},
        "epoch_with_model_ratio": eps_ours / eps_peer,
        "seconds": {"loader_advlib": t_ours, "loader_dataloader": t_peer,
                    "epoch_advlib": m_ours, "epoch_dataloader": m_peer},
        "machine": machine_record(device),
    }
    print(f"device {device} | {args.n} uint8 images | batch {args.batch} | crop(pad 4)+flip | workers {args.workers}")
    print(f"loader only:   BatchLoader {ips_ours:10.0f} img/s | DataLoader+v2 {ips_peer:8.0f} img/s | "
          f"ratio {ips_ours / ips_peer:.1f}x")
    print(f"epoch + {args.arch}: BatchLoader {eps_ours:8.0f} img/s | DataLoader+v2 {eps_peer:8.0f} img/s | "
          f"ratio {eps_ours / eps_peer:.2f}x")
    write_result("bench_loader", device, result, out=args.out)
    return result


if __name__ == "__main__":
    main()
