"""Several processes, one result: the torchrun / torch.distributed helpers.

The command line that runs the study's steps on several processes is :mod:`advlib.dist.__main__`
(``torchrun --nproc_per_node=N -m advlib.dist ...`` or ``python -m advlib.dist ...``).

Every helper works in a plain single process too (no ``torchrun``, ``WORLD_SIZE`` unset): then
``rank() == 0``, ``world_size() == 1`` and the collectives do nothing, so library code calls them
unconditionally. What runs where once ``init_from_env()`` has set up a process group:

- ``advlib.train.fit``: DistributedDataParallel. Every rank draws the same batch order and
  augmentation (a pure function of (seed, epoch)) and trains on its contiguous slice of each
  global batch; losses are sums scaled by world/global batch, so the averaged gradient is the
  full batch's. BatchNorm statistics are synchronized over the global batch (native
  ``SyncBatchNorm`` on CUDA; on the CPU, where ``SyncBatchNorm`` refuses to run, the small
  :class:`GlobalBatchNorm2d` below), so a 2-process run ends with the single-process weights up
  to float rounding. Rank 0 alone writes checkpoints; every rank resumes from them.
- ``advlib.construct.construct_dataset``: shard k is built by rank k % world; rank 0 merges.
  Shards depend only on (seed, name, shard index), so the set equals the single-process one.
- ``advlib.evaluate.accuracy`` / ``robust_accuracy``: each rank evaluates whole batches of its
  contiguous range; correct counts are summed; the number equals the single-process one.

Backends: NCCL when the run uses CUDA, gloo otherwise (``init_from_env(backend=...)`` overrides).
No import-time side effects: nothing happens until ``init_from_env`` is called.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn


# --- process group -------------------------------------------------------------------------------
def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_from_env(backend: str | None = None, device: str | torch.device | None = None,
                  timeout_s: float = 1800.0) -> bool:
    """Join the process group that ``torchrun`` describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    Without WORLD_SIZE (a plain ``python`` run) or with WORLD_SIZE=1 this does nothing and
    returns False. ``backend`` defaults to "nccl" when ``device`` (default: "cuda" if available)
    is a CUDA device, else "gloo"; with NCCL each process binds to GPU LOCAL_RANK. Calling it
    again once initialized is a no-op that returns True.
    """
    if is_initialized():
        return True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world} but {key} is not set: launch with torchrun "
                               f"(e.g. torchrun --standalone --nproc_per_node={world} -m advlib.dist ...)")
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = torch.device(device).type == "cuda"
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank())  # "cuda" then means this process's GPU
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def cleanup() -> None:
    """Leave the process group (no-op when there is none)."""
    if is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. a download into a shared cache), then the others."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous split of ``range(n)`` into ``world`` parts whose sizes differ by at most one:
    part ``rank`` is ``range(lo, hi)``; the first ``n % world`` parts get one more."""
    if world <= 0 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank {rank}, world {world}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


# --- collectives (identity in a single process) -----------------------------------------------------
def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks, in place; returns ``t``."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same dtype and trailing shape; the first dimension may differ)."""
    if world_size() == 1:
        return [t]
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = t.new_zeros((max(sizes), *t.shape[1:]))
    padded[:t.shape[0]] = t
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded.contiguous())
    return [o[:s] for o, s in zip(out, sizes, strict=True)]


def all_gather_object(obj) -> list:
    """Every rank's picklable ``obj``, in rank order."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks with a gradient: every rank's output depends on every rank's input, so the
    gradient reaching one rank's input is the sum of the upstream gradients of all ranks."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def differentiable_all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(t) if world_size() > 1 else t


# --- BatchNorm over the global batch --------------------------------------------------------------------
class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics cover the batch of all ranks.

    For the CPU (gloo), where ``torch.nn.SyncBatchNorm`` raises "expected input tensor to be on
    GPU". Mean and (biased) variance come from two differentiable all-reduces (sum, then sum of
    squared deviations: the two-pass formula, as accurate as BatchNorm on one process); running
    statistics are updated as BatchNorm does with the global count (unbiased variance). In eval
    mode or a single process it is plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = (0, 2, 3)
        count = all_reduce_sum(x.new_tensor([x.numel() / x.shape[1]]))
        mean = differentiable_all_reduce_sum(x.sum(dims)) / count
        centered = x - mean.view(1, -1, 1, 1)
        var = differentiable_all_reduce_sum(centered.square().sum(dims)) / count
        out = centered * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        return out


def _swap_batchnorm(module: nn.Module, make) -> nn.Module:
    """Replace every BatchNorm child (recursively, in place) by ``make(bn)``, which shares its
    parameters and buffers; returns ``module`` (or its replacement when it is a BatchNorm)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return make(module)
    for name, child in module.named_children():
        new = _swap_batchnorm(child, make)
        if new is not child:
            setattr(module, name, new)
    return module


def _rebuild_bn(cls, bn):
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias  # the same Parameter objects: optimizers keep working
    if bn.track_running_stats:
        new.running_mean, new.running_var, new.num_batches_tracked = (
            bn.running_mean, bn.running_var, bn.num_batches_tracked)
    new.train(bn.training)
    return new


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers of ``model`` -> global-batch BatchNorm (native SyncBatchNorm on CUDA,
    :class:`GlobalBatchNorm2d` elsewhere), in place, sharing parameters and buffers."""
    if device.type == "cuda":
        return _swap_batchnorm(model, lambda bn: bn if isinstance(bn, nn.SyncBatchNorm)
                               else _rebuild_bn(nn.SyncBatchNorm, bn))
    return _swap_batchnorm(model, lambda bn: bn if isinstance(bn, GlobalBatchNorm2d)
                           else _rebuild_bn(GlobalBatchNorm2d, bn))


def local_batchnorm(model: nn.Module) -> nn.Module:
    """Undo :func:`sync_batchnorm`: plain ``nn.BatchNorm2d`` layers again, in place."""
    def back(bn):
        return _rebuild_bn(nn.BatchNorm2d, bn) if isinstance(bn, (nn.SyncBatchNorm, GlobalBatchNorm2d)) else bn
    return _swap_batchnorm(model, back)


__all__ = ["init_from_env", "cleanup", "is_initialized", "rank", "world_size", "local_rank", "is_main", "barrier",
           "main_first", "shard_range", "all_reduce_sum", "all_gather_tensors", "all_gather_object",
           "broadcast_object", "differentiable_all_reduce_sum", "GlobalBatchNorm2d", "sync_batchnorm",
           "local_batchnorm"]
