"""The `fast` profile's code paths on the CPU at tiny size: the airbench net trained by fit with
the profile's recipe (one-cycle lr, Nesterov momentum, label smoothing), and the GPU-only
switches (bf16 autocast, torch.compile) chosen by device type, never by trying and catching."""

from __future__ import annotations

import contextlib

import pytest
import torch

from advlib import construct
from advlib import train as tr
from advlib.config import get_profile
from advlib.data import load_cifar10
from advlib.evaluate import accuracy
from advlib.models import build_model

N = 256  # sample images: 4 steps of 64




@pytest.fixture(scope="module")
def sample():
    return load_cifar10("sample", "train", n=N, seed=0)


def fast_cfg(**overrides) -> tr.TrainConfig:
    # compile=True on purpose: on the CPU it must be ignored (torch.compile is CUDA-only here)
    prof = get_profile("fast", cifar_source="sample", n_train=N, batch_size=64, compile=True,
                       **{"sources.standard.epochs": 1, **overrides})
    return tr.train_config(prof, "standard")


def test_fast_profile_recipe_reaches_train_config():
    cfg = fast_cfg()
    assert cfg.arch == "airbench"
    assert (cfg.schedule, cfg.nesterov, cfg.momentum, cfg.label_smoothing) == ("onecycle", True, 0.9, 0.2)
    assert cfg.amp and cfg.channels_last and cfg.compile
    assert (cfg.epochs, cfg.batch_size, cfg.augment) == (1, 64, "crop,flip")


def test_airbench_trains_with_the_fast_recipe_on_cpu(sample, tmp_path, monkeypatch):
    x, y = sample
    cfg = fast_cfg()
    seen = {"forward": 0, "autocast": [], "nhwc": [], "smoothing": []}

    def compile_must_not_run(*args, **kwargs):
        raise AssertionError("torch.compile called on the CPU (compile is CUDA-only)")

    monkeypatch.setattr(torch, "compile", compile_must_not_run)
    real_ce = tr.F.cross_entropy

    def recording_ce(*args, **kwargs):
        seen["smoothing"].append(kwargs.get("label_smoothing", 0.0))
        return real_ce(*args, **kwargs)

    monkeypatch.setattr(tr.F, "cross_entropy", recording_ce)
    torch.manual_seed(0)
    model = build_model("airbench")

    def hook(module, inputs):
        seen["forward"] += 1
        seen["autocast"].append(torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"))
        seen["nhwc"].append(inputs[0].is_contiguous(memory_format=torch.channels_last))

    handle = model.register_forward_pre_hook(hook)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hist = tr.fit(model, x, y, cfg, out_dir=tmp_path, progress=False)
    handle.remove()

    steps = N // cfg.batch_size
    assert hist["epoch"] == [1] and seen["forward"] == steps
    assert not any(seen["autocast"]), "autocast entered on the CPU (bf16 is CUDA-only)"
    assert all(seen["nhwc"]), "batches reach the model in channels_last"
    assert seen["smoothing"] == [0.2] * steps
    assert torch.isfinite(torch.tensor(hist["loss"])).all()
    assert not torch.equal(before["head.weight"], model.state_dict()["head.weight"])
    assert not model.training and model.head.weight.is_contiguous()  # left in eval mode, NCHW

    ckpt = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    group = ckpt["optimizer"]["param_groups"][0]
    assert (group["nesterov"], group["momentum"], group["weight_decay"]) == (True, 0.9, 5e-4)
    sched = ckpt["scheduler"]
    assert sched["total_steps"] == steps and sched["last_epoch"] == steps  # one-cycle steps per batch
    assert sched["_schedule_phases"][0]["end_lr"] == "max_lr" and group["max_lr"] == cfg.lr
    assert hist["lr"][0] == pytest.approx(cfg.lr / 25)  # one-cycle starts at max_lr / div_factor
    assert 0 <= accuracy(model, x[:64], y[:64]) <= 1


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")  # the CUDA context is only built here
def test_gpu_only_switches_are_chosen_by_device_type():
    cpu = torch.device("cpu")
    assert isinstance(construct.autocast_for(cpu, True), contextlib.nullcontext)
    cuda_ctx = construct.autocast_for(torch.device("cuda"), True)  # built, not entered: no GPU needed
    assert isinstance(cuda_ctx, torch.autocast) and cuda_ctx.fast_dtype == torch.bfloat16
    assert isinstance(construct.autocast_for(torch.device("cuda"), False), contextlib.nullcontext)
