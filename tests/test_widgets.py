"""The notebooks' widgets without a browser (advlib.widgets): so far the snapshots of
``invert_representation`` that the construction player will step through. Tiny models and tensors on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlib.attacks import invert_representation, representation_distance
from advlib.models import build_model


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 32, 32, generator=g), torch.arange(12) % 10


# --- invert_representation(snapshots=k) ------------------------------------------------------------
def test_snapshots_record_the_trajectory(data):
    model = _tiny(0)
    x, _ = data
    target, start = x[:3], x[3:6]
    out = invert_representation(model, target, start, steps=10, step_size=0.3, snapshots=5)
    assert len(out) == 3
    x_r, losses, snaps = out
    assert snaps["steps"] == [0, 2, 4, 6, 8, 10]
    assert snaps["images"].shape == (6, 3, 3, 32, 32) and snaps["images"].device.type == "cpu"
    assert snaps["distance"].shape == (6, 3)
    assert torch.equal(snaps["images"][0], start)
    assert torch.equal(snaps["images"][-1], x_r)
    for i in range(6):
        want = representation_distance(model, snaps["images"][i], target, relative=False)
        assert torch.allclose(snaps["distance"][i], want, rtol=1e-4, atol=1e-5), i
    assert snaps["distance"][-1].mean().item() == pytest.approx(losses[-1], rel=1e-5)
    # the same descent without snapshots: two values, the same result
    x_plain, losses_plain = invert_representation(model, target, start, steps=10, step_size=0.3)
    assert torch.equal(x_plain, x_r) and losses_plain == losses


def test_snapshots_capped_at_steps_and_every_step(data):
    x, _ = data
    _, _, snaps = invert_representation(_tiny(0), x[:1], x[1:2], steps=3, step_size=0.2, snapshots=50)
    assert snaps["steps"] == [0, 1, 2, 3] and snaps["images"].shape[0] == 4
    _, _, snaps = invert_representation(_tiny(0), x[:1], x[1:2], steps=7, step_size=0.2, snapshots=3)
    assert snaps["steps"] == [0, 2, 4, 7]
