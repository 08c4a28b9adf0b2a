"""Shared fixtures. Everything runs on tiny CPU inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# The shared JPEG CIFAR-10 mirror beside the checkout (tests and CI may read it; the product never needs it).
SHARED_ZIP = Path(os.environ.get("ADVLIB_SHARED_ZIP", REPO.parent / "shared" / "data" / "cifar10-jpeg.zip"))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


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
