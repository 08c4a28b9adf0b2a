"""The robustness library's CIFAR training augmentation as batch ops: "jitter" and "rotate".

Reference: torchvision.transforms.v2.functional (adjust_brightness/contrast/saturation, rotate
with NEAREST), applied one image at a time with the same factors / angles.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from advlib.loader import (
    AUGMENTATIONS,
    JITTER,
    PAPER_AUGMENT,
    ROTATE_DEGREES,
    BatchLoader,
    _translate,
    augment_batch,
    batch_color_jitter,
    batch_rotate,
    jitter_with,
    parse_augment,
    rotate_with,
)

_TV_OPS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)


def _images(n=16, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g)
    x[: n // 2] = (x[: n // 2] * 255).round() / 255  # some 8-bit-exact images too
    return x


def _tv_jitter(x, factors, order):
    out = []
    for i in range(x.shape[0]):
        y = x[i]
        for op in order[i].tolist():
            y = _TV_OPS[op](y, float(factors[i, op]))
        out.append(y)
    return torch.stack(out)


def _tv_rotate(x, angles):
    return torch.stack([TF.rotate(x[i], float(angles[i]), interpolation=InterpolationMode.NEAREST)
                        for i in range(x.shape[0])])


# --- tokens ---------------------------------------------------------------------------------------
def test_tokens_and_paper_order():
    assert AUGMENTATIONS == ("crop", "flip", "jitter", "rotate")
    assert parse_augment(PAPER_AUGMENT) == ["crop", "flip", "jitter", "rotate"]
    assert parse_augment(" rotate , jitter ") == ["rotate", "jitter"]
    with pytest.raises(ValueError, match="unknown"):
        parse_augment("crop,colour")
    with pytest.raises(ValueError, match="unknown"):
        BatchLoader(torch.zeros(2, 3, 4, 4), torch.zeros(2), 1, augment="jiter")


# --- jitter ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [0, 1, 2])
def test_each_jitter_op_matches_torchvision(op):
    x = _images()
    g = torch.Generator().manual_seed(1)
    factors = 0.5 + torch.rand(x.shape[0], 3, generator=g)  # wider than [0.75, 1.25]: clamping shows
    order = torch.full((x.shape[0], 3), op)
    got = jitter_with(x, factors, order)
    ref = _tv_jitter(x, factors, order)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_jitter_random_order_matches_torchvision():
    x = _images(24)
    g = torch.Generator().manual_seed(2)
    factors = 1 - JITTER + 2 * JITTER * torch.rand(x.shape[0], 3, generator=g)
    order = torch.rand(x.shape[0], 3, generator=g).argsort(1)
    assert len({tuple(o) for o in order.tolist()}) > 1  # images really differ in order
    got = jitter_with(x, factors, order)
    ref = _tv_jitter(x, factors, order)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    assert got.dtype == torch.float32 and got.min() >= 0 and got.max() <= 1


def test_jitter_order_matters():
    x = _images(4)
    factors = torch.tensor([[1.25, 0.75, 1.2]]).expand(4, 3)
    a = jitter_with(x, factors, torch.tensor([[0, 1, 2]]).expand(4, 3))
    b = jitter_with(x, factors, torch.tensor([[2, 1, 0]]).expand(4, 3))
    assert not torch.equal(a, b)


def test_batch_color_jitter_draws_from_generator_only():
    x = _images(8)
    got = batch_color_jitter(x, JITTER, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # documented draw order: factors [N,3], then order keys [N,3]
    factors = 0.75 + 0.5 * torch.rand(8, 3, generator=g)
    order = torch.rand(8, 3, generator=g).argsort(1)
    assert torch.equal(got, jitter_with(x, factors, order))
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(got, batch_color_jitter(x, JITTER, torch.Generator().manual_seed(5)))
    assert not torch.equal(got, batch_color_jitter(x, JITTER, torch.Generator().manual_seed(6)))


def test_jitter_uint8_gives_float_equal_to_float_input():
    u8 = (_images(6) * 255).round().to(torch.uint8)
    got = batch_color_jitter(u8, JITTER, torch.Generator().manual_seed(3))
    ref = batch_color_jitter(u8.float() / 255, JITTER, torch.Generator().manual_seed(3))
    assert got.dtype == torch.float32
    assert torch.equal(got, ref)


# --- rotate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(32, 32), (31, 32), (20, 33)])
def test_rotate_matches_torchvision_nearest(hw):
    h, w = hw
    x = _images(12, h, w)
    # Not 90 degrees on non-square images: there every sample lands on an exact half-pixel tie and
    # rounding noise decides (square 90 is checked against rot90 below).
    angles = torch.tensor([0.0, 2.0, -2.0, 1.37, -0.61, 0.05, -1.99, 10.0, -30.0, 45.0, -135.0, 1e-3])
    got = rotate_with(x, angles)
    ref = _tv_rotate(x, angles)
    agree = (got == ref).all(dim=1).float().mean().item()
    assert agree >= 0.999, f"pixel agreement with torchvision.rotate {agree:.6f}"  # measured: 1.0


def test_rotate_uint8_keeps_dtype_and_matches_torchvision():
    u8 = (_images(6) * 255).round().to(torch.uint8)
    angles = torch.tensor([-2.0, -1.0, 0.3, 1.1, 2.0, 0.0])
    got = rotate_with(u8, angles)
    assert got.dtype == torch.uint8
    agree = (got == _tv_rotate(u8, angles)).all(dim=1).float().mean().item()
    assert agree >= 0.999, agree


def test_rotate_direction_and_zero_fill():
    x = _images(2)
    assert torch.equal(rotate_with(x, torch.tensor([90.0, 0.0])), torch.stack([x[0].rot90(1, (-2, -1)), x[1]]))
    ones = torch.ones(1, 1, 32, 32)
    out = rotate_with(ones, torch.tensor([2.0]))
    assert out.min() == 0 and out[..., 12:20, 12:20].eq(1).all()  # corners fill with zeros


def test_batch_rotate_angles_from_generator():
    x = _images(8)
    got = batch_rotate(x, ROTATE_DEGREES, torch.Generator().manual_seed(9))
    angles = (2 * torch.rand(8, generator=torch.Generator().manual_seed(9)) - 1) * ROTATE_DEGREES
    assert angles.abs().max() <= 2 and angles.unique().numel() == 8
    assert torch.equal(got, rotate_with(x, angles))


# --- composition and the loader --------------------------------------------------------------------
def test_paper_augment_is_the_composition_in_order():
    u8 = (_images(8) * 255).round().to(torch.uint8)
    got = augment_batch(u8, PAPER_AUGMENT, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    offsets = torch.randint(0, 9, (2, 8), generator=g)  # the fused crop+flip draws, unchanged
    coin = torch.rand(8, generator=g) < 0.5
    y = _translate(u8, 4, offsets, flip=coin)
    y = batch_color_jitter(y, JITTER, g)
    y = batch_rotate(y, ROTATE_DEGREES, g)
    assert got.dtype == torch.float32 and torch.equal(got, y)
    swapped = augment_batch(u8, "crop,flip,rotate,jitter", torch.Generator().manual_seed(4))
    assert not torch.equal(got, swapped)  # token order is the order of application


def test_loader_paper_augment_uint8_equals_float_and_is_reproducible():
    x = _images(20)
    u8 = (x * 255).round().to(torch.uint8)
    y = torch.arange(20) % 10

    def batches(images, epoch):
        loader = BatchLoader(images, y, 8, augment=PAPER_AUGMENT, seed=3)
        loader.set_epoch(epoch)
        return list(loader)

    a, b, c = batches(u8, 1), batches(u8.float() / 255, 1), batches(u8, 1)
    for (xa, ya), (xb, yb), (xc, _) in zip(a, b, c, strict=True):
        assert xa.dtype == torch.float32 and 0 <= xa.min() and xa.max() <= 1
        assert torch.equal(ya, yb)
        torch.testing.assert_close(xa, xb, rtol=0, atol=1e-6)
        assert torch.equal(xa, xc)
    assert not torch.equal(a[0][0], batches(u8, 2)[0][0])
