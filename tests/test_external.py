"""advlib.external: the robustness library's CIFAR checkpoints <-> advlib models.

The expected names come from MadryLab/robustness: ``cifar_models/resnet.py`` (ResNet: conv1,
bn1, layer1..4 of BasicBlock/Bottleneck with conv*/bn*/shortcut, linear), ``attacker.py``
(AttackerModel: normalizer, model, attacker.{normalize, model}), ``tools/helpers.py``
(InputNormalize buffers new_mean/new_std of shape [3,1,1]) and ``model_utils.py`` (checkpoint
["model"], keys prefixed ``module.``).
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advlib.external import (
    checkpoint_provenance,
    file_sha256,
    load_robustness_checkpoint,
    robustness_state_dict,
    save_robustness_checkpoint,
)
from advlib.models import build_model

COUNTS = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3)}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _randomized(arch: str, seed: int = 0):
    """A model whose every tensor (BatchNorm statistics and the normalizer too) is random, so that
    any mix-up of names changes the logits."""
    torch.manual_seed(seed)
    model = build_model(arch)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not torch.is_floating_point(t):
                t.fill_(int(torch.randint(0, 1000, (1,), generator=g)))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.startswith("normalize.mean"):
                t.copy_(torch.tensor([0.3, 0.5, 0.6]).view_as(t))
            elif name.startswith("normalize.std"):
                t.copy_(torch.tensor([0.2, 0.25, 0.3]).view_as(t))
            elif t.dim() == 1:  # BatchNorm weights
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def r50():
    return _randomized("resnet50")


@pytest.fixture(scope="module")
def r18():
    return _randomized("resnet18", seed=1)


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))


def _expected_classifier_keys(arch: str) -> set[str]:
    """Their ResNet's state-dict keys, written from cifar_models/resnet.py."""
    bottleneck = arch == "resnet50"
    keys = {"conv1.weight"} | {f"bn1.{b}" for b in BN} | {"linear.weight", "linear.bias"}
    in_planes = 64
    for layer, (planes, n) in enumerate(zip((64, 128, 256, 512), COUNTS[arch], strict=True), start=1):
        for j in range(n):
            stride = 2 if layer > 1 and j == 0 else 1
            convs = ("conv1", "conv2", "conv3") if bottleneck else ("conv1", "conv2")
            for i, conv in enumerate(convs, start=1):
                keys.add(f"layer{layer}.{j}.{conv}.weight")
                keys |= {f"layer{layer}.{j}.bn{i}.{b}" for b in BN}
            out_planes = planes * (4 if bottleneck else 1)
            if stride != 1 or in_planes != out_planes:
                keys.add(f"layer{layer}.{j}.shortcut.0.weight")
                keys |= {f"layer{layer}.{j}.shortcut.1.{b}" for b in BN}
            in_planes = out_planes
    return keys


def _their_forward(sd: dict, x: torch.Tensor, arch: str) -> torch.Tensor:
    """Their AttackerModel + ResNet forward (eval mode), written from their source, on the
    saved tensors: an independent check that each name means the same layer."""
    def p(name):
        return sd["module.model." + name]

    def bn(t, name):
        return F.batch_norm(t, p(name + ".running_mean"), p(name + ".running_var"), p(name + ".weight"),
                            p(name + ".bias"), False, 0.0, 1e-5)

    x = (x.clamp(0, 1) - sd["module.normalizer.new_mean"]) / sd["module.normalizer.new_std"]
    out = F.relu(bn(F.conv2d(x, p("conv1.weight"), padding=1), "bn1"))
    for layer, n in enumerate(COUNTS[arch], start=1):
        for j in range(n):
            stride = 2 if layer > 1 and j == 0 else 1
            b = f"layer{layer}.{j}."
            if arch == "resnet50":  # Bottleneck: the stride sits on the 3x3 conv2
                o = F.relu(bn(F.conv2d(out, p(b + "conv1.weight")), b + "bn1"))
                o = F.relu(bn(F.conv2d(o, p(b + "conv2.weight"), stride=stride, padding=1), b + "bn2"))
                o = bn(F.conv2d(o, p(b + "conv3.weight")), b + "bn3")
            else:  # BasicBlock: on conv1
                o = F.relu(bn(F.conv2d(out, p(b + "conv1.weight"), stride=stride, padding=1), b + "bn1"))
                o = bn(F.conv2d(o, p(b + "conv2.weight"), padding=1), b + "bn2")
            if "module.model." + b + "shortcut.0.weight" in sd:
                short = bn(F.conv2d(out, p(b + "shortcut.0.weight"), stride=stride), b + "shortcut.1")
            else:
                short = out
            out = F.relu(o + short)
    out = F.avg_pool2d(out, 4).flatten(1)
    return F.linear(out, p("linear.weight"), p("linear.bias"))


# --- layout ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["resnet50", "resnet18"])
def test_written_keys_follow_the_robustness_naming(arch, r50, r18):
    model = r50 if arch == "resnet50" else r18
    sd = robustness_state_dict(model)
    classifier = _expected_classifier_keys(arch)
    expected = ({f"module.model.{k}" for k in classifier} | {f"module.attacker.model.{k}" for k in classifier}
                | {f"module.{m}.{b}" for m in ("normalizer", "attacker.normalize") for b in ("new_mean", "new_std")})
    assert set(sd) == expected
    assert list(sd)[:3] == ["module.normalizer.new_mean", "module.normalizer.new_std", "module.model.conv1.weight"]
    assert sd["module.normalizer.new_mean"].shape == (3, 1, 1)
    assert torch.equal(sd["module.normalizer.new_std"].flatten(), model.normalize.std.flatten())
    body = model.body
    assert torch.equal(sd["module.model.conv1.weight"], body[0].weight)
    assert torch.equal(sd["module.model.bn1.running_var"], body[1].running_var)
    assert torch.equal(sd["module.model.layer1.0.conv1.weight"], body[3].conv1.weight)
    assert torch.equal(sd["module.model.linear.bias"], model.head.bias)
    assert torch.equal(sd["module.attacker.model.linear.weight"], model.head.weight)
    if arch == "resnet50":
        assert torch.equal(sd["module.model.layer2.0.shortcut.0.weight"], body[3 + 3].shortcut[0].weight)
        assert torch.equal(sd["module.model.layer4.2.bn3.running_mean"], body[3 + 3 + 4 + 6 + 2].bn3.running_mean)
        assert "module.model.layer1.0.shortcut.1.running_var" in sd  # 64 -> 256 channels
    else:
        assert "module.model.layer1.0.shortcut.0.weight" not in sd  # 64 -> 64, stride 1
        assert torch.equal(sd["module.model.layer3.1.bn2.weight"], body[3 + 2 + 2 + 1].bn2.weight)


@pytest.mark.parametrize("arch", ["resnet50", "resnet18"])
def test_their_forward_on_written_tensors_gives_our_logits(arch, r50, r18, images):
    model = r50 if arch == "resnet50" else r18
    with torch.no_grad():
        ours = model(images)
        theirs = _their_forward(robustness_state_dict(model), images, arch)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


# --- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("zip_format", [True, False])
def test_resnet50_round_trip_logits_exact(r50, images, tmp_path, zip_format):
    path = tmp_path / "cifar_test.pt"
    if zip_format:
        save_robustness_checkpoint(r50, path, epoch=153)
    else:  # the robustness library's 2019 files predate the zip format
        torch.save({"model": robustness_state_dict(r50), "epoch": 153}, path, _use_new_zipfile_serialization=False)
    loaded = load_robustness_checkpoint(path, "resnet50")
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(images), r50(images))
    for a, b in zip(loaded.state_dict().values(), r50.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resnet18_round_trip_logits_exact(r18, images, tmp_path):
    path = save_robustness_checkpoint(r18, tmp_path / "r18.pt")
    loaded = load_robustness_checkpoint(path, "resnet18")
    with torch.no_grad():
        assert torch.equal(loaded(images), r18(images))


def test_other_key_layouts_load(r18, images, tmp_path):
    sd = robustness_state_dict(r18)
    with torch.no_grad():
        want = r18(images)
    # "state_dict" instead of "model", no DataParallel prefix, no attacker copies
    plain = {k[len("module."):]: v for k, v in sd.items() if not k.startswith("module.attacker.")}
    torch.save({"state_dict": plain}, tmp_path / "a.pt")
    with torch.no_grad():
        assert torch.equal(load_robustness_checkpoint(tmp_path / "a.pt", "resnet18")(images), want)
    # a bare classifier state dict: CIFAR-10 normalization of the robustness library kept
    bare = {k[len("module.model."):]: v for k, v in sd.items() if k.startswith("module.model.")}
    torch.save(bare, tmp_path / "b.pt")
    m = load_robustness_checkpoint(tmp_path / "b.pt", "resnet18")
    assert torch.equal(m.normalize.mean, build_model("resnet18").normalize.mean)
    assert torch.equal(m.head.weight, r18.head.weight)
    # no BatchNorm counters (very old files): still loads, same logits in eval mode
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save({"model": old, "epoch": 1}, tmp_path / "c.pt")
    with torch.no_grad():
        assert torch.equal(load_robustness_checkpoint(tmp_path / "c.pt", "resnet18")(images), want)


def test_numpy_scalars_in_the_rest_of_the_file_are_allowed(r18, tmp_path):
    path = tmp_path / "np.pt"
    torch.save({"model": robustness_state_dict(r18), "epoch": 3, "nat_prec1": np.float64(93.5),
                "schedule": {"_last_lr": [np.float64(0.01)], "last_epoch": np.int64(3)}, "amp": None}, path)
    assert torch.equal(load_robustness_checkpoint(path, "resnet18").head.bias, r18.head.bias)


# --- errors ---------------------------------------------------------------------------------------
def _write(tmp_path, name, payload):
    path = tmp_path / name
    torch.save(payload, path)
    return path


def test_missing_key_names_file_and_key(r18, tmp_path):
    sd = robustness_state_dict(r18)
    del sd["module.model.layer3.1.bn2.weight"]
    path = _write(tmp_path, "missing.pt", {"model": sd})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*missing key 'module.model.layer3.1.bn2.weight'"):
        load_robustness_checkpoint(path, "resnet18")
    sd = robustness_state_dict(r18)
    del sd["module.normalizer.new_std"]
    path = _write(tmp_path, "missing_norm.pt", {"model": sd})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*'module.normalizer.new_std'"):
        load_robustness_checkpoint(path, "resnet18")


def test_wrong_shape_and_unexpected_key_name_file_and_key(r18, tmp_path):
    sd = robustness_state_dict(r18)
    sd["module.model.layer2.0.conv1.weight"] = torch.zeros(128, 64, 1, 1)
    path = _write(tmp_path, "shape.pt", {"model": sd})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*'module.model.layer2.0.conv1.weight' has shape"):
        load_robustness_checkpoint(path, "resnet18")
    sd = robustness_state_dict(r18)
    sd["module.model.fc.weight"] = torch.zeros(10, 512)
    path = _write(tmp_path, "extra.pt", {"model": sd})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*unexpected key 'module.model.fc.weight'"):
        load_robustness_checkpoint(path, "resnet18")
    # a resnet18 file is not a resnet50
    path = save_robustness_checkpoint(r18, tmp_path / "r18.pt")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_robustness_checkpoint(path, "resnet50")
    with pytest.raises(ValueError, match="arch must be one of"):
        load_robustness_checkpoint(path, "small")


def test_forbidden_pickle_objects_are_refused(r18, tmp_path):
    sd = robustness_state_dict(r18)
    path = _write(tmp_path, "args.pt", {"model": sd, "args": argparse.Namespace(lr=0.1)})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*refused to unpickle.*argparse.Namespace"):
        load_robustness_checkpoint(path, "resnet18")
    path = _write(tmp_path, "module.pt", {"model": torch.nn.Linear(2, 2)})  # a pickled module, not weights
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*refused to unpickle"):
        load_robustness_checkpoint(path, "resnet18")
    path = _write(tmp_path, "notensor.pt", {"model": {"module.model.conv1.weight": [1, 2]}})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a tensor"):
        load_robustness_checkpoint(path, "resnet18")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "junk.pt"))):
        load_robustness_checkpoint(tmp_path / "junk.pt", "resnet18")


def test_provenance_hashes_the_file(r18, tmp_path):
    path = save_robustness_checkpoint(r18, tmp_path / "p.pt")
    prov = checkpoint_provenance(path, "resnet18")
    assert prov["sha256"] == file_sha256(path) and len(prov["sha256"]) == 64
    assert prov["arch"] == "resnet18" and prov["bytes"] == path.stat().st_size
