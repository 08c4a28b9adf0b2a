"""One training loop for standard and adversarial training (L2, or L∞ with ``adv_norm``).

What to train with is a :class:`TrainConfig` (:mod:`advlib.recipes`: ``train_config(profile, role,
dataset)`` makes one from a profile's recipe). ``fit`` trains a model on in-memory tensors with SGD, writes a checkpoint every epoch and resumes
from it. Everything random in the loop (batch order, augmentation, the attack's random starts)
is drawn from generators seeded by ``(cfg.seed, epoch)``, and the global RNG states are saved and
restored too, so on the CPU a run that is killed and resumed ends with bitwise the same weights
as one that never stopped.

On CUDA: bf16 autocast (``amp``) and optionally ``torch.compile``; neither on the CPU (bf16
autocast is slower there), a choice made from ``device.type``, never by trying and catching.
channels_last (NHWC) is used on every device: on the CPU it trains the tiny/small/airbench nets
1.1-1.4x faster (ResNets about 5% slower, but nobody trains those on a CPU).

Files in ``out_dir``: ``checkpoint.pt`` (model, optimizer, scheduler, epoch, history, RNG states,
config, provenance), ``history.json``, ``config.json`` and ``provenance.json``; all written
atomically.

Provenance: a model is only as trustworthy as the record of what it learned from. ``fit`` takes a
``provenance`` dict (:mod:`advlib.provenance`: the data's origin, dataset name, sha256 of the
training tensors, the training config) and stores it with every checkpoint; a checkpoint is resumed or
reused only when its config *and* its provenance equal the new ones. ``train_or_load`` moves a
model folder trained on other data aside (``<folder>.replaced-<time>``, never deleted) and trains
afresh, so a rebuilt dataset is never answered by the old model.

Under torchrun (``advlib.dist.init_from_env()`` called first) ``fit`` trains with
DistributedDataParallel: every rank draws the same global batch and trains on its contiguous
slice (batch_size / world images), with BatchNorm statistics of the global batch and losses
scaled so that the averaged gradient is the global batch's; the weights then match a
single-process run up to float rounding. Rank 0 alone writes the files; every rank resumes from
them. Adversarial training attacks each slice on its own rank with its own random starts, so it
matches the single-process run in distribution, not bitwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import dist
from .attacks import pgd
from .loader import BatchLoader, epoch_generator
from .models import ARCHS, ImageClassifier, build_model, infer_num_classes
from .provenance import PROVENANCE, make_provenance, normalized, provenance_diff, read_provenance, set_aside
from .recipes import ROLES, SCHEDULES, TrainConfig, train_config
from .utils import (
    Timer,
    atomic_torch_save,
    atomic_write_json,
    get_device,
    model_device,
    progress_bar,
    set_seed,
    state_dict_sha256,
)

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CONFIG = "config.json"


# --- input checks ---------------------------------------------------------------------------------
def check_data(images: torch.Tensor, labels: torch.Tensor, *, num_classes: int = 10, name: str = "images") -> None:
    """Raise ValueError unless images are [N,C,H,W] (uint8, or float finite in [0,1]) with
    N matching int labels in 0..num_classes-1."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"{name} must be a [N,C,H,W] tensor, got {getattr(images, 'shape', type(images))}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(f"labels for {name} must be a 1-D tensor, got {getattr(labels, 'shape', type(labels))}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{name} and labels differ in length: {images.shape[0]} images, {labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if torch.is_floating_point(labels) or labels.dtype == torch.bool:
        raise ValueError(f"labels for {name} must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels for {name} must lie in 0..{num_classes - 1}, "
                         f"got range [{labels.min().item()}, {labels.max().item()}]")
    if torch.is_floating_point(images):
        if not torch.isfinite(images).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        lo, hi = images.min().item(), images.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(f"{name} must lie in [0,1] (float) or be uint8, got range [{lo:.3g}, {hi:.3g}]")
    elif images.dtype != torch.uint8:
        raise ValueError(f"{name} must be float in [0,1] or uint8, got dtype {images.dtype}")


def _check_model_matches(model: torch.nn.Module, arch: str) -> None:
    """An advlib model must be ``build_model(arch)`` (same parameter names and shapes), so that
    ``load_trained`` can rebuild it from config.json. Any other ``nn.Module`` trains as it is
    (``cfg.arch`` is then only a label; rebuild it yourself to load its checkpoint)."""
    if not isinstance(model, ImageClassifier) and arch not in ARCHS:
        return  # a user's own model: arch is only a label
    with torch.device("meta"):
        ref = build_model(arch)  # raises on an unknown arch
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if want != have:
        raise ValueError(f"the model passed to fit is not build_model({arch!r}) (TrainConfig.arch); "
                         f"build it with advlib.models.build_model(cfg.arch)")


# --- reuse -----------------------------------------------------------------------------------------
def stale_reason(out_dir, cfg: TrainConfig, provenance: dict | None) -> str | None:
    """Why the model in ``out_dir`` may not be reused for (cfg, provenance), or None if it may."""
    ckpt_path = Path(out_dir) / CHECKPOINT
    if not ckpt_path.is_file():
        return None
    ckpt = _load_checkpoint(ckpt_path)
    reasons = []
    pdiff = provenance_diff(ckpt.get("provenance"), provenance)
    if pdiff:
        reasons.append("trained on other data: " + "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in pdiff.items()))
    cdiff = _config_diff(ckpt.get("config", {}), cfg)
    if cdiff:
        reasons.append("other training config: " + "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in cdiff.items()))
    return ", ".join(reasons) or None


# --- RNG state (stored as plain lists/tensors so the checkpoint loads with weights_only=True) ----
def _rng_state(device: torch.device) -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# --- pieces of the loop ---------------------------------------------------------------------------
def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.nesterov and cfg.momentum > 0)


def make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    """"step" and "constant" step once per epoch; "onecycle" steps once per batch."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    if cfg.schedule == "onecycle":
        # Momentum stays at cfg.momentum (no momentum cycling), so the config means what it says.
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * steps_per_epoch),
                                                   cycle_momentum=False)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


def _empty_history() -> dict:
    return {"epoch": [], "loss": [], "train_acc": [], "eval_acc": [], "lr": [], "seconds": []}


def _config_diff(saved: dict, cfg: TrainConfig) -> dict:
    """Fields that differ; a field missing from an older saved config counts as its default (adding
    a field to TrainConfig does not make every trained model stale)."""
    new = asdict(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    keys = sorted(set(saved) | set(new))
    return {k: (saved.get(k, defaults.get(k)), new.get(k)) for k in keys
            if saved.get(k, defaults.get(k)) != new.get(k)}


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: say which and what to do
        raise ValueError(f"cannot read checkpoint {path}: {e}; delete it or pass resume=False") from e


def _save(out_dir: Path, model, opt, sched, epoch: int, history: dict, cfg: TrainConfig, device,
          provenance: dict | None) -> None:
    atomic_torch_save({
        "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "epoch": epoch, "history": history, "rng": _rng_state(device), "config": asdict(cfg),
        "provenance": provenance,
    }, out_dir / CHECKPOINT)
    atomic_write_json(out_dir / HISTORY, history)


def fit(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig, *, out_dir=None,
        eval_data=None, resume: bool = True, progress: bool = True, stop_after: int | None = None,
        provenance: dict | None = None, num_classes: int | None = None, eval_every: int = 1) -> dict:
    """Train ``model`` (in place, on the device it is on) and return the history.

    model: any ``nn.Module`` mapping images in [0,1] to logits [N, num_classes] (an advlib model
    must be ``build_model(cfg.arch)``). num_classes: checked against the labels; None = the
    width of the model's output. images: [N,C,H,W] float in [0,1] or uint8; labels: int64 [N].
    provenance: ``make_provenance(...)``, stored with the checkpoint; resuming requires it to
    match (a ValueError names what changed). eval_data: optional
    ``(x_test, y_test)`` whose clean accuracy is recorded after every ``eval_every``-th epoch and
    after the last (None in between; evaluating is monitoring only, it never changes the
    weights, so ``eval_every`` is not part of the config a checkpoint is keyed by). With ``out_dir``, a
    checkpoint is written after every epoch; ``resume=True`` continues from it when its config
    equals ``cfg`` and its provenance equals ``provenance`` (a finished run returns at once). ``stop_after=k`` stops after epoch k (to
    simulate a kill). Returns ``{"epoch", "loss", "train_acc", "eval_acc", "lr", "seconds"}``,
    one entry per epoch: loss and train_acc over the epoch's training batches (the PGD examples
    when ``cfg.adversarial``), eval_acc on ``eval_data`` after the epoch (None without it), lr at
    the epoch's start, seconds of the epoch including the evaluation.
    """
    from .evaluate import accuracy  # evaluate imports nothing from here; local to keep import order simple

    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    cfg.validate()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_model_matches(model, cfg.arch)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [N,C,H,W] tensor, got {getattr(images, 'shape', type(images))}")
    out_width = infer_num_classes(model, images)
    if num_classes is None:
        num_classes = out_width
    elif num_classes != out_width:
        raise ValueError(f"num_classes={num_classes} but the model outputs {out_width} logits")
    check_data(images, labels, num_classes=num_classes, name="images")
    if eval_data is not None:
        if not (isinstance(eval_data, (tuple, list)) and len(eval_data) == 2):
            raise ValueError("eval_data must be a pair (x_test, y_test)")
        check_data(eval_data[0], eval_data[1], num_classes=num_classes, name="eval_data images")
    if stop_after is not None and stop_after < 0:
        raise ValueError(f"stop_after must be >= 0 or None, got {stop_after}")
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an int >= 1, got {eval_every!r}")
    world, rank = dist.world_size(), dist.rank()
    n = images.shape[0]
    if min(n, cfg.batch_size) < world:
        raise ValueError(f"{world} processes need a global batch of >= {world} images (one slice each), "
                         f"got batch_size {cfg.batch_size} and {n} images")

    device = model_device(model)
    cuda = device.type == "cuda"
    use_amp = cfg.amp and cuda
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)

    # Drop the last partial batch (a batch of 1 breaks BatchNorm) unless there is only one batch.
    drop_last = n > cfg.batch_size
    steps_per_epoch = n // cfg.batch_size if drop_last else 1
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    history, start = _empty_history(), 0

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_path = out / CHECKPOINT
        if resume and ckpt_path.is_file():
            ckpt = _load_checkpoint(ckpt_path)
            diff = _config_diff(ckpt.get("config", {}), cfg)
            if diff:
                raise ValueError(f"{ckpt_path} was written with a different config (saved, new): {diff}; "
                                 f"delete {out} or pass resume=False to start over")
            pdiff = provenance_diff(ckpt.get("provenance"), provenance)
            if pdiff:
                raise ValueError(f"{ckpt_path} was trained on other data (saved, new): {pdiff}; "
                                 f"delete {out} or pass resume=False to start over")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"], device)
            history, start = ckpt["history"], int(ckpt["epoch"])
        else:
            set_seed(cfg.seed)
        if dist.is_main():
            atomic_write_json(out / CONFIG, asdict(cfg))
            if provenance is not None:
                atomic_write_json(out / PROVENANCE, provenance)
            elif (out / PROVENANCE).is_file():
                (out / PROVENANCE).unlink()  # a fresh run without a record must not inherit one
    else:
        set_seed(cfg.seed)

    end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    if start >= end:
        _finish(model)
        return history

    # Every rank draws the same batches (order and augmentation depend on (seed, epoch) only).
    loader = BatchLoader(images, labels, cfg.batch_size, shuffle=True, augment=cfg.augment,
                         drop_last=drop_last, seed=cfg.seed, device=device)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
    bar = None
    if progress and dist.is_main():
        bar = progress_bar(total=cfg.epochs * len(loader), initial=start * len(loader), desc=f"train {cfg.arch}",
                   unit="batch", dynamic_ncols=True)
    try:
        net, attack_net = _training_nets(model, cfg, device, world)
        for epoch in range(start, end):
            loader.set_epoch(epoch)
            # Random starts of the training attack: stream 1 (rank 0 and single process), and a
            # stream of its own on every other rank, so slices never share their noise.
            attack_gen = epoch_generator(cfg.seed, epoch, stream=1 + 100 * rank)
            lr_start = opt.param_groups[0]["lr"]
            # summed loss, correct predictions, examples seen (one tensor: one all-reduce per epoch)
            totals = torch.zeros(3, device=device, dtype=torch.float64)
            with Timer() as timer:
                net.train()
                for x, y in loader:
                    global_batch = y.shape[0]
                    if world > 1:  # this rank's contiguous slice of the global batch
                        lo, hi = dist.shard_range(global_batch, rank, world)
                        x, y = x[lo:hi], y[lo:hi]
                    if cfg.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with autocast():
                        if cfg.adversarial:  # the attack runs in eval mode and restores train mode
                            x = pgd(attack_net, x, y, norm=cfg.adv_norm, eps=cfg.adv_eps, step_size=cfg.adv_step_size,
                                    steps=cfg.adv_steps, random_start=cfg.adv_random_start, generator=attack_gen)
                        logits = net(x)
                        loss_sum = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing,
                                                   reduction="sum")
                    # DDP averages gradients over ranks, so sum * world / global batch makes the
                    # result the mean over the global batch, also for slices of unequal size.
                    loss = loss_sum * (world / global_batch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if cfg.schedule == "onecycle":
                        sched.step()
                    totals[0] += loss_sum.detach()
                    totals[1] += (logits.detach().argmax(1) == y).sum()
                    totals[2] += y.shape[0]
                    if bar is not None:
                        bar.update(1)
                if cfg.schedule != "onecycle":
                    sched.step()
                due = (epoch + 1) % eval_every == 0 or epoch + 1 == cfg.epochs
                eval_acc = accuracy(model, *eval_data) if (eval_data is not None and due) else None
            loss_total, correct, seen = dist.all_reduce_sum(totals).tolist()
            history["epoch"].append(epoch + 1)
            history["loss"].append(loss_total / max(seen, 1))
            history["train_acc"].append(correct / max(seen, 1))
            history["eval_acc"].append(eval_acc)
            history["lr"].append(lr_start)
            history["seconds"].append(timer.seconds)
            if bar is not None:
                post = {"epoch": epoch + 1, "loss": f"{history['loss'][-1]:.3f}", "acc": f"{history['train_acc'][-1]:.3f}"}
                if eval_acc is not None:
                    post["eval"] = f"{eval_acc:.3f}"
                bar.set_postfix(post)
            if out is not None and dist.is_main():
                _save(out, model, opt, sched, epoch + 1, history, cfg, device, provenance)
            dist.barrier()  # after this every rank may read the epoch's checkpoint
    finally:
        if bar is not None:
            bar.close()
        if world > 1:
            dist.local_batchnorm(model)  # plain BatchNorm2d again, same parameters and buffers
        _finish(model)
    return history


def _training_nets(model: torch.nn.Module, cfg: TrainConfig, device: torch.device, world: int):
    """(net for the training step, net for the training attack), compiled on CUDA when
    ``cfg.compile``. With several processes the step's net is DistributedDataParallel and the
    model's BatchNorm layers use the statistics of the global batch (``fit`` undoes that at the
    end); the attack needs input gradients only, so it runs on the plain model, without DDP's
    gradient synchronization."""
    def compiled(m):
        return torch.compile(m) if (cfg.compile and device.type == "cuda") else m

    if world == 1:
        net = compiled(model)
        return net, net
    dist.sync_batchnorm(model, device)
    # DDP broadcasts rank 0's weights and buffers once; synced BatchNorm keeps the buffers equal after that.
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                    forward_sync_buffers=False)
    return compiled(ddp), compiled(model)


def _finish(model: torch.nn.Module) -> torch.nn.Module:
    """Leave the model in eval mode and the default memory format: other tools (torchattacks,
    ``.view`` on gradients) expect NCHW, and advlib's attacks switch to NHWC by themselves."""
    return model.to(memory_format=torch.contiguous_format).eval()


def load_trained(out_dir, device=None) -> torch.nn.Module:
    """Rebuild the model in ``out_dir`` (config.json's arch + checkpoint.pt's weights), eval mode."""
    out = Path(out_dir)
    cfg_path, ckpt_path = out / CONFIG, out / CHECKPOINT
    for p in (cfg_path, ckpt_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: {out} holds no trained model (train it with advlib.train.fit)")
    arch = json.loads(cfg_path.read_text()).get("arch")
    device = get_device("auto") if device is None else torch.device(device)
    model = build_model(arch)
    model.load_state_dict(_load_checkpoint(ckpt_path)["model"])
    return model.to(device).eval()


def save_loaded(model: torch.nn.Module, arch: str, out_dir, provenance: dict) -> Path:
    """Store a model obtained elsewhere (e.g. a robustness-library checkpoint) as a model folder, so
    that evaluation and the explorer treat it like a trained one; ``provenance`` says where it came
    from (file, sha256). An existing folder with the same provenance is left as it is."""
    out = Path(out_dir)
    if read_provenance(out) == normalized(provenance) and (out / CHECKPOINT).is_file():
        return out
    if out.exists():
        set_aside(out, f"replaced by a model loaded from {provenance.get('path')}")
    out.mkdir(parents=True)
    atomic_torch_save({"model": model.state_dict(), "epoch": 0, "history": _empty_history(), "config": {"arch": arch},
                       "provenance": provenance}, out / CHECKPOINT)
    atomic_write_json(out / CONFIG, {"arch": arch, "loaded_from": provenance.get("path")})
    atomic_write_json(out / PROVENANCE, provenance)
    atomic_write_json(out / HISTORY, _empty_history())
    return out


def checkpoint_sha256(out_dir) -> str:
    """sha256 of the weights in ``out_dir/checkpoint.pt`` (``state_dict_sha256`` of the model)."""
    return state_dict_sha256(load_trained(out_dir, device="cpu"))


def train_or_load(cfg: TrainConfig, images, labels, out_dir, eval_data=None, progress: bool = True,
                  device=None, *, origin: str | None = None, dataset: str | None = None,
                  stop_after: int | None = None, eval_every: int = 1, source: str | None = None
                  ) -> tuple[torch.nn.Module, dict]:
    """For notebooks: build ``cfg.arch`` (seeded with ``cfg.seed``), fit it in ``out_dir``
    (resuming, or returning at once when finished) and return ``(model in eval mode, history)``.

    With ``origin`` and ``dataset`` the model is keyed by its provenance (``make_provenance``): a
    folder whose model learned from other data or with another config is moved aside
    (``set_aside``, with a printed notice) and the model is trained afresh. ``source``: the old
    name of ``origin`` (deprecated)."""
    if source is not None:
        import warnings

        warnings.warn("train_or_load(source=...) is deprecated: use origin=", DeprecationWarning, stacklevel=2)
        origin = origin or source
    device = get_device("auto") if device is None else torch.device(device)
    prov = make_provenance(origin, dataset, images, labels, cfg) if (origin or dataset) else None
    reason = stale_reason(out_dir, cfg, prov) if (out_dir is not None and dist.is_main()) else None
    if reason:
        moved = set_aside(out_dir, reason)
        print(f"[advlib] {out_dir}: {reason}; the old model was moved to {moved.name}, training a new one", flush=True)
    dist.barrier()
    set_seed(cfg.seed)
    model = build_model(cfg.arch).to(device)
    history = fit(model, images, labels, cfg, out_dir=out_dir, eval_data=eval_data, progress=progress,
                  provenance=prov, stop_after=stop_after, eval_every=eval_every)
    return model.eval(), history


__all__ = ["TrainConfig", "train_config", "fit", "load_trained", "train_or_load", "check_data", "make_provenance",
           "read_provenance", "stale_reason", "set_aside", "checkpoint_sha256", "infer_num_classes",
           "make_optimizer", "make_scheduler", "SCHEDULES", "ROLES"]
