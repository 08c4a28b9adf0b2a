"""An in-memory batch loader in the style of airbench: the whole dataset lives as tensors on the
training device, and each batch is an index slice plus a few whole-batch tensor ops (random
translation, horizontal flip). No per-sample Python, no worker processes.

Randomness is explicit: every random draw comes from a CPU ``torch.Generator`` seeded by
``(seed, epoch)``, so an epoch's order and augmentation are a pure function of those two numbers
(what makes a resumed run bitwise identical to an uninterrupted one) and independent of the
global RNG and of the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip")


def _rand_on(shape, generator, device, *, kind="rand", high=None):
    """Random numbers drawn on the CPU (``generator`` is a CPU generator), moved to ``device``."""
    if kind == "rand":
        t = torch.rand(shape, generator=generator)
    else:
        t = torch.randint(0, high, shape, generator=generator)
    return t.to(device)


def batch_flip_lr(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of the NCHW batch ``x`` left-right with probability 1/2 (one coin each)."""
    coin = _rand_on((x.shape[0],), generator, x.device) < 0.5
    return torch.where(coin.view(-1, 1, 1, 1), x.flip(-1), x)


def batch_crop(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels in each direction, filling with zeros.

    Equivalent to torchvision's ``RandomCrop(size, padding=pad)`` applied per image: zero-pad
    by ``pad``, then cut a window of the original size at a random offset in [0, 2*pad].
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if pad == 0:
        return x
    offsets = _rand_on((2, x.shape[0]), generator, x.device, kind="int", high=2 * pad + 1)
    return _translate(x, pad, offsets)


def _translate(x: torch.Tensor, pad: int, offsets: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Crop window (offsets[0], offsets[1]) of the zero-padded batch, mirrored where ``flip``.

    One ``gather`` with a per-example flat pixel index: 2-4x faster on the CPU than two gathers
    or a loop over shifts, and the flip comes free by reversing the column index.
    """
    n, c, h, w = x.shape
    wp = w + 2 * pad
    padded = F.pad(x, (pad, pad, pad, pad)).view(n, c, -1)  # zeros, as RandomCrop(padding=...) does
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip is not None:
        cols = torch.where(flip.view(n, 1), w - 1 - cols, cols)
    rows = offsets[0].view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)
    index = rows * wp + offsets[1].view(n, 1, 1) + cols.view(n, 1, w)  # [n, h, w]
    return padded.gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)


def parse_augment(augment: str) -> list[str]:
    """``"crop,flip"`` -> ``["crop", "flip"]``; ``""`` -> ``[]``; unknown tokens raise."""
    if not isinstance(augment, str):
        raise ValueError(f"augment must be a string like 'crop,flip', got {type(augment).__name__}")
    tokens = [t.strip() for t in augment.split(",") if t.strip()]
    bad = [t for t in tokens if t not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"augment {augment!r}: unknown {bad}; expected a comma-separated subset of {AUGMENTATIONS}")
    return tokens


def augment_batch(x: torch.Tensor, augment: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the augmentations named in ``augment`` ("", "flip", "crop,flip", ...) in order.

    "crop" (pad 4) directly followed by "flip" runs as one fused op; it draws the same random
    numbers in the same order, so the result equals ``batch_flip_lr(batch_crop(x, 4, g), g)``.
    """
    tokens = parse_augment(augment)
    i = 0
    while i < len(tokens):
        if tokens[i] == "crop" and tokens[i + 1:i + 2] == ["flip"]:
            offsets = _rand_on((2, x.shape[0]), generator, x.device, kind="int", high=9)
            coin = _rand_on((x.shape[0],), generator, x.device) < 0.5
            x = _translate(x, 4, offsets, flip=coin)
            i += 2
            continue
        x = batch_crop(x, 4, generator) if tokens[i] == "crop" else batch_flip_lr(x, generator)
        i += 1
    return x


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch, stream); streams keep uses apart."""
    mixed = (int(seed) * 1_000_003 + int(epoch)) * 7919 + int(stream)
    return torch.Generator().manual_seed(mixed % (2**63))


class BatchLoader:
    """Iterate over ``(x, y)`` batches of an in-memory dataset.

    images: [N,C,H,W], uint8 (0..255) or float in [0,1]; kept on ``device`` in their own dtype
    (uint8 saves 4x memory; float images such as constructed datasets are never quantized).
    Batches come out as float32 in [0,1] and int64 labels on ``device``.

    The order (``shuffle``) and augmentation of an epoch depend only on ``(seed, epoch)``. Call
    ``set_epoch(e)`` before iterating to choose the epoch; otherwise each full pass moves on to the
    next epoch by itself.
    """

    def __init__(self, images, labels, batch_size, *, shuffle=True, augment="", drop_last=False, seed=0,
                 device=None):
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(f"images must be a [N,C,H,W] tensor, got {getattr(images, 'shape', type(images))}")
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels must be a 1-D tensor with one entry per image ({images.shape[0]}), "
                             f"got {getattr(labels, 'shape', type(labels))}")
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        parse_augment(augment)  # fail early on a typo
        device = torch.device(device) if device is not None else images.device
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.long)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.augment = augment
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.device = device
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.float().div_(255)
        return x.float()

    def __iter__(self):
        n = self.images.shape[0]
        gen = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            # Augment before the float conversion: cheaper on uint8, identical result.
            x = augment_batch(self.images.index_select(0, idx), self.augment, gen)
            yield self._to_float(x), self.labels[idx]
        self.epoch += 1
