"""An in-memory batch loader in the style of airbench: the whole dataset lives as tensors on the
training device, and each batch is an index slice plus a few whole-batch tensor ops (random
translation, horizontal flip, colour jitter, small rotation). No per-sample Python, no worker
processes.

Augmentation tokens (``augment="crop,flip,jitter,rotate"``; applied in the order written):

- ``crop``: ``RandomCrop(32, padding=4)`` (zero padding), a per-image translation by <= 4 px;
- ``flip``: ``RandomHorizontalFlip()``;
- ``jitter``: ``ColorJitter(brightness=.25, contrast=.25, saturation=.25)``, factors uniform in
  [0.75, 1.25] and the three adjustments in a random order, per image;
- ``rotate``: ``RandomRotation(2)``, nearest neighbour about the centre, zero fill.

The robustness library's CIFAR training transform (Ilyas et al.'s recipe) is exactly
``RandomCrop(32, padding=4), RandomHorizontalFlip(), ColorJitter(.25,.25,.25), RandomRotation(2)``,
so the paper profile uses ``PAPER_AUGMENT = "crop,flip,jitter,rotate"``. One difference remains:
torchvision ran those on 8-bit PIL images (rounded to 8 bits after each step), here jitter
works in float and is not re-quantized.

Randomness is explicit: every random draw comes from a CPU ``torch.Generator`` seeded by
``(seed, epoch)``, so an epoch's order and augmentation are a pure function of those two numbers
(what makes a resumed run bitwise identical to an uninterrupted one) and independent of the
global RNG and of the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip", "jitter", "rotate")
PAPER_AUGMENT = "crop,flip,jitter,rotate"  # the robustness library's CIFAR training transform, in its order
JITTER = 0.25  # ColorJitter(brightness=.25, contrast=.25, saturation=.25): factors in [0.75, 1.25]
ROTATE_DEGREES = 2.0  # RandomRotation(2): angles in [-2, 2] degrees


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


# --- colour jitter --------------------------------------------------------------------------------
def _float_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 (0..255) -> float32 in [0,1]; float stays as is."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma [N,1,H,W], with torchvision's weights and operation order (bit-identical)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(dim=1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def jitter_with(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Brightness / contrast / saturation with given per-image factors, in a given per-image order.

    x: [N,C,H,W] float in [0,1] (C = 3, or 1 where saturation is a no-op); factors: [N,3]
    (brightness, contrast, saturation); order: [N,3], a permutation of (0, 1, 2) per image, the
    op applied at each of the three steps (0 brightness, 1 contrast, 2 saturation).

    Each op is torchvision's blend ``clamp(f * x + (1 - f) * other, 0, 1)`` with ``other`` = 0
    (brightness), the image's mean grayscale value (contrast) or its grayscale image
    (saturation), as ``torchvision.transforms.v2.functional.adjust_*`` compute them; one blend
    per step serves the whole batch whatever op each image is at.
    """
    n = x.shape[0]
    factors = factors.to(device=x.device, dtype=x.dtype)
    order = order.to(x.device)
    if x.shape[1] == 1:  # torchvision (and PIL) leave 1-channel images unchanged by saturation
        factors = torch.where(torch.arange(3, device=x.device) == 2, torch.ones_like(factors), factors)
    for step in range(3):
        op = order[:, step]
        f = factors.gather(1, op.view(n, 1)).view(n, 1, 1, 1)
        gray = _grayscale(x)
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        op = op.view(n, 1, 1, 1)
        other = torch.where(op == 2, gray, torch.where(op == 1, mean, torch.zeros_like(mean)))
        x = x.mul(f).addcmul_(other, 1 - f).clamp_(0, 1)
    return x


def batch_color_jitter(x: torch.Tensor, strength: float = JITTER,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``ColorJitter(brightness=s, contrast=s, saturation=s)`` applied per image.

    Each image draws its three factors uniformly from [1 - s, 1 + s] and a uniformly random order
    of the three adjustments (torchvision draws ``randperm(4)`` with hue as a no-op slot: the same
    distribution over the three). Draws: factors [N,3], then the order keys [N,3], on the CPU.
    uint8 input comes back as float32 in [0,1] (not re-quantized); float input keeps its dtype.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"jitter strength must be in [0,1], got {strength}")
    n = x.shape[0]
    factors = (1 - strength) + (2 * strength) * _rand_on((n, 3), generator, x.device)
    order = _rand_on((n, 3), generator, x.device).argsort(dim=1)
    return jitter_with(_float_images(x), factors, order)


# --- rotation -------------------------------------------------------------------------------------
def rotate_with(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of the batch by ``degrees[i]`` (counter-clockwise, as torchvision) about
    its centre: nearest neighbour, zero fill, output the input's size and dtype.

    One ``F.affine_grid`` + ``F.grid_sample`` (align_corners=False) for the batch. torchvision's
    ``rotate`` samples the input at R(-a) applied to each output pixel centre taken relative to the
    image centre, in pixels: [[cos a, -sin a], [sin a, cos a]]; in affine_grid's normalized
    coordinates (x / (W/2), y / (H/2)) that is [[cos a, -sin a * H/W], [sin a * W/H, cos a]].
    Matches ``torchvision.transforms.v2.functional.rotate(img, a, NEAREST)`` pixel for pixel in
    the tests (square and non-square images).
    """
    n, c, h, w = x.shape
    work = x if torch.is_floating_point(x) else x.float()
    rad = torch.deg2rad(degrees.detach().to("cpu", torch.float64)).view(n)
    cos, sin = rad.cos(), rad.sin()
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta.to(device=x.device, dtype=work.dtype), [n, c, h, w], align_corners=False)
    out = F.grid_sample(work, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out if out.dtype == x.dtype else out.round_().to(x.dtype)  # nearest: values are exact


def batch_rotate(x: torch.Tensor, degrees: float = ROTATE_DEGREES,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``RandomRotation(degrees)``: each image turns by an angle uniform in [-degrees, degrees]
    (nearest neighbour, about the centre, zero fill). uint8 stays uint8 (nearest copies values)."""
    if degrees < 0:
        raise ValueError(f"rotation degrees must be >= 0, got {degrees}")
    angles = (2 * _rand_on((x.shape[0],), generator, "cpu") - 1) * degrees
    return rotate_with(x, angles)


def parse_augment(augment: str) -> list[str]:
    """``"crop,flip"`` -> ``["crop", "flip"]``; ``""`` -> ``[]``; unknown tokens raise.

    The order of the tokens is the order of application (the paper's: ``PAPER_AUGMENT``)."""
    if not isinstance(augment, str):
        raise ValueError(f"augment must be a string like 'crop,flip', got {type(augment).__name__}")
    tokens = [t.strip() for t in augment.split(",") if t.strip()]
    bad = [t for t in tokens if t not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"augment {augment!r}: unknown {bad}; expected a comma-separated subset of {AUGMENTATIONS}")
    return tokens


_OPS = {
    "crop": lambda x, g: batch_crop(x, 4, g),
    "flip": batch_flip_lr,
    "jitter": lambda x, g: batch_color_jitter(x, JITTER, g),
    "rotate": lambda x, g: batch_rotate(x, ROTATE_DEGREES, g),
}


def augment_batch(x: torch.Tensor, augment: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the augmentations named in ``augment`` ("", "flip", "crop,flip",
    "crop,flip,jitter,rotate", ...) in the order written; all randomness comes from ``generator``.

    "crop" (pad 4) directly followed by "flip" runs as one fused op; it draws the same random
    numbers in the same order, so the result equals ``batch_flip_lr(batch_crop(x, 4, g), g)``.
    uint8 input stays uint8 through crop/flip/rotate; "jitter" turns it into float32 in [0,1].
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
        x = _OPS[tokens[i]](x, generator)
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
            # Augment before the float conversion: cheaper on uint8, identical result ("jitter"
            # converts uint8 exactly as _to_float does).
            x = augment_batch(self.images.index_select(0, idx), self.augment, gen)
            yield self._to_float(x), self.labels[idx]
        self.epoch += 1
