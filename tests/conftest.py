"""Shared fixtures. Everything runs on tiny CPU inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
# The shared JPEG CIFAR-10 mirror beside the checkout (tests and CI may read it; the product never needs it).
SHARED_ZIP = Path(os.environ.get("ADVLIB_SHARED_ZIP", REPO.parent / "shared" / "data" / "cifar10-jpeg.zip"))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Test tensors are tiny: one intra-op thread is as fast, and far faster when other jobs
    share the machine's two cores (OpenMP threads then spin-wait on each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic(n: int, seed: int, amp: float = 0.5, noise: float = 0.15):
    """A separable 10-class task in [0,1]: a smooth colour template per class + pixel noise."""
    low = torch.rand(10, 3, 4, 4, generator=torch.Generator().manual_seed(123))
    templates = F.interpolate(low, size=32, mode="bilinear", align_corners=False)
    y = torch.arange(n) % 10
    noise_t = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return (0.5 + amp * (templates[y] - 0.5) + noise * noise_t).clamp(0, 1), y


@pytest.fixture
def shared_zip() -> Path:
    if not SHARED_ZIP.is_file():
        pytest.skip(f"shared CIFAR-10 archive not found at {SHARED_ZIP} (set ADVLIB_SHARED_ZIP)")
    return SHARED_ZIP


@pytest.fixture
def tiny_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    return x, y
