"""advlib.train (fit, resume, configs) and advlib.loader on tiny CPU data."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic

from advlib.config import get_profile
from advlib.evaluate import accuracy
from advlib.loader import BatchLoader, augment_batch, batch_crop, batch_flip_lr
from advlib.models import build_model
from advlib.train import TrainConfig, fit, load_trained, train_config, train_or_load


@pytest.fixture(scope="module")
def data():
    return synthetic(192, 1)


def small_cfg(**kw) -> TrainConfig:
    base = dict(arch="tiny", epochs=3, batch_size=32, lr=0.05, schedule="step", lr_step=2, augment="crop,flip")
    base.update(kw)
    return TrainConfig(**base)


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("tiny")


# --- fit --------------------------------------------------------------------------------------------
def test_loss_decreases_and_files_written(data, tmp_path):
    x, y = data
    cfg = small_cfg(epochs=4, schedule="constant", augment="")
    hist = fit(fresh(), x, y, cfg, out_dir=tmp_path, eval_data=(x[:64], y[:64]), progress=False)
    assert hist["epoch"] == [1, 2, 3, 4]
    assert hist["loss"][-1] < 0.7 * hist["loss"][0]
    assert hist["train_acc"][-1] > hist["train_acc"][0]
    assert all(0 <= a <= 1 for a in hist["eval_acc"])
    assert json.loads((tmp_path / "history.json").read_text()) == hist
    assert json.loads((tmp_path / "config.json").read_text()) == dataclasses.asdict(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "config.json", "history.json"]


def _state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("cfg", [
    small_cfg(),  # standard, step schedule, crop+flip
    small_cfg(adversarial=True, adv_eps=0.5, adv_steps=2, adv_step_size=0.25, schedule="onecycle"),
], ids=["standard-step", "adversarial-onecycle"])
def test_resume_is_bitwise_identical(data, tmp_path, cfg):
    x, y = data[0][:96], data[1][:96]  # 3 batches an epoch
    full = fresh(0)
    h_full = fit(full, x, y, cfg, out_dir=tmp_path / "full", progress=False)

    part = fresh(0)
    h_part = fit(part, x, y, cfg, out_dir=tmp_path / "killed", progress=False, stop_after=1)
    assert h_part["epoch"] == [1]
    # a new process would build a new (differently initialized) model and call fit again
    torch.manual_seed(12345)
    resumed = fresh(99)
    h_resumed = fit(resumed, x, y, cfg, out_dir=tmp_path / "killed", progress=False)
    assert _state_equal(full, resumed), "resumed weights differ from the uninterrupted run"
    for key in ("epoch", "loss", "train_acc", "lr"):
        assert h_resumed[key] == h_full[key]


def test_finished_run_returns_at_once_with_weights(data, tmp_path):
    x, y = data
    cfg = small_cfg(epochs=1)
    trained = fresh(0)
    hist = fit(trained, x, y, cfg, out_dir=tmp_path, progress=False)
    other = fresh(5)
    again = fit(other, x, y, cfg, out_dir=tmp_path, progress=False)
    assert again == hist
    assert _state_equal(trained, other)
    assert not other.training


def test_config_mismatch_on_resume_raises(data, tmp_path):
    x, y = data
    fit(fresh(), x, y, small_cfg(epochs=1), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="resume=False"):
        fit(fresh(), x, y, small_cfg(epochs=1, lr=0.01), out_dir=tmp_path, progress=False)
    # resume=False starts over and overwrites
    hist = fit(fresh(), x, y, small_cfg(epochs=1, lr=0.01), out_dir=tmp_path, progress=False, resume=False)
    assert json.loads((tmp_path / "config.json").read_text())["lr"] == 0.01
    assert hist["epoch"] == [1]


def test_load_trained_and_train_or_load_round_trip(data, tmp_path):
    x, y = data
    cfg = small_cfg(epochs=1)
    model, hist = train_or_load(cfg, x, y, tmp_path, progress=False, device="cpu")
    assert not model.training and hist["epoch"] == [1]
    loaded = load_trained(tmp_path, device="cpu")
    assert _state_equal(model, loaded)
    assert accuracy(loaded, x, y) == accuracy(model, x, y)
    model2, hist2 = train_or_load(cfg, x, y, tmp_path, progress=False, device="cpu")  # finished: loads
    assert _state_equal(model, model2) and hist2 == hist
    model3, _ = train_or_load(cfg, x, y, None, progress=False, device="cpu", origin="constructed", dataset="d_det")
    assert _state_equal(model, model3), "no folder: trained in memory, same seed, same weights"
    with pytest.warns(DeprecationWarning, match="origin="):  # the old name of the argument still works
        train_or_load(cfg, x, y, None, progress=False, device="cpu", source="constructed", dataset="d_det")
    with pytest.raises(FileNotFoundError):
        load_trained(tmp_path / "nothing")


@pytest.mark.parametrize("bad,match", [
    ("nan", "NaN"),
    ("range", r"\[0,1\]"),
    ("length", "length"),
    ("label", "0..9"),
    ("float_labels", "integers"),
])
def test_bad_data_raises(data, bad, match):
    x, y = data
    x, y = x.clone(), y.clone()
    if bad == "nan":
        x[3, 1, 2, 2] = float("nan")
    elif bad == "range":
        x[0] += 1.5
    elif bad == "length":
        y = y[:-1]
    elif bad == "label":
        y[0] = 10
    elif bad == "float_labels":
        y = y.float()
    with pytest.raises(ValueError, match=match):
        fit(fresh(), x, y, small_cfg(epochs=1), progress=False)


def test_unknown_arch_and_wrong_model_raise(data):
    x, y = data
    with pytest.raises(ValueError, match="arch"):
        fit(fresh(), x, y, small_cfg(arch="resnet9000"), progress=False)
    with pytest.raises(ValueError, match="small"):
        fit(fresh(), x, y, small_cfg(arch="small"), progress=False)  # a tiny model under arch "small"
    with pytest.raises(ValueError, match="schedule"):
        fit(fresh(), x, y, small_cfg(schedule="cosine"), progress=False)
    with pytest.raises(ValueError, match="augment"):
        fit(fresh(), x, y, small_cfg(augment="crop,zoom"), progress=False)


def test_train_config_roles():
    p = get_profile("smoke")
    std = train_config(p, "standard")
    assert (std.arch, std.epochs, std.adversarial, std.augment) == (p.arch, p.sources.standard.epochs, False,
                                                                    p.sources.standard.augment)
    rob, robust = train_config(p, "robust"), p.sources.robust
    assert rob.adversarial and rob.epochs == robust.epochs
    assert (rob.adv_eps, rob.adv_steps, rob.adv_step_size) == (robust.adv_eps, robust.adv_steps, robust.adv_step_size)
    paper = get_profile("paper")
    assert train_config(paper, "dataset", "d_rand").lr == paper.sets.rand.lr == 0.01
    assert train_config(paper, "dataset", "d_robust").lr == 0.1
    assert train_config(paper, "dataset", "d_det").augment == ""
    assert train_config(paper, "dataset", "d_non_robust").augment == "crop,flip,jitter,rotate"  # the robustness library's
    assert train_config(paper, "robust", None).adv_random_start is False  # its adversarial training starts at x
    assert train_config(paper, "dataset", "d_robust").epochs == paper.sets.rnr.epochs
    # D_R and D_NR share one recipe, sets.rnr, and so does their matched control (cpu: crop+flip)
    cpu = get_profile("cpu")
    assert {train_config(cpu, "dataset", d).augment for d in ("d_robust", "d_non_robust", "control_rnr")} == {"crop,flip"}
    assert train_config(cpu, "dataset", "d_rand").augment == cpu.sets.rand.augment == "crop,flip"
    assert train_config(get_profile("cpu", **{"sets.rnr.augment": "flip"}), "dataset", "d_non_robust").augment == "flip"
    # the D_rand / D_det families train with their own recipes (cpu: 15 epochs of D_R's 20)
    assert {train_config(cpu, "dataset", d).epochs for d in ("d_rand", "d_det", "d_other", "d_det_hits")} == {15}
    assert train_config(cpu, "dataset", "d_robust").epochs == cpu.sets.rnr.epochs == 20
    assert train_config(paper, "dataset", "d_det").epochs == paper.sets.det.epochs
    with pytest.raises(ValueError, match="sets.rand.epochs"):
        get_profile("cpu", **{"sets.rand.epochs": -1})
    with pytest.raises(ValueError, match="sets.rnr.augment"):
        get_profile("cpu", **{"sets.rnr.augment": "blur"})
    with pytest.raises(ValueError, match="role"):
        train_config(p, "teacher")
    with pytest.raises(ValueError, match="dataset"):
        train_config(p, "dataset", "d_imagenet")
    with pytest.raises(ValueError, match="dataset"):
        train_config(p, "dataset")


# --- loader -------------------------------------------------------------------------------------------
def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_loader_same_seed_epoch_same_batches(data):
    x, y = data
    a = BatchLoader(x, y, 50, augment="crop,flip", seed=3)
    b = BatchLoader(x, y, 50, augment="crop,flip", seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    ba, bb = _batches(a), _batches(b)
    assert len(ba) == len(a) == 4
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(ba, bb, strict=True))
    b.set_epoch(3)
    assert not torch.equal(torch.cat([q[1] for q in _batches(b)]), torch.cat([p[1] for p in ba]))
    # without set_epoch a full pass moves on: iterating a again gives epoch 3
    assert torch.equal(torch.cat([p[0] for p in _batches(a)]), torch.cat([p[0] for p in _batches(_epoch(x, y, 3))]))


def _epoch(x, y, epoch):
    loader = BatchLoader(x, y, 50, augment="crop,flip", seed=3)
    loader.set_epoch(epoch)
    return loader


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_each_example_once_per_epoch(drop_last):
    n, bs = 103, 10
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    ids = torch.arange(n)
    loader = BatchLoader(images, ids, bs, shuffle=True, drop_last=drop_last, seed=1)
    seen = torch.cat([yb for _, yb in loader])
    assert len(loader) == (n // bs if drop_last else n // bs + 1)
    if drop_last:
        assert seen.numel() == (n // bs) * bs and seen.unique().numel() == seen.numel()
    else:
        assert torch.equal(seen.sort().values, ids)
    ordered = torch.cat([yb for _, yb in BatchLoader(images, ids, bs, shuffle=False)])
    assert torch.equal(ordered, ids)


def test_loader_uint8_and_float_give_same_batches(data):
    x, y = data
    x8 = (x * 255).round().to(torch.uint8)
    a = BatchLoader(x8, y, 64, augment="crop,flip", seed=0)
    b = BatchLoader(x8.float() / 255, y, 64, augment="crop,flip", seed=0)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xa.dtype == torch.float32 and ya.dtype == torch.int64
        assert torch.allclose(xa, xb) and torch.equal(ya, yb)
        assert 0 <= xa.min() and xa.max() <= 1


def test_flip_and_crop_preserve_shape_range_and_change_images(data):
    x = data[0][:16]
    g = torch.Generator().manual_seed(0)
    flipped = batch_flip_lr(x, g)
    assert flipped.shape == x.shape
    is_flipped = (flipped == x.flip(-1)).flatten(1).all(1)
    is_same = (flipped == x).flatten(1).all(1)
    assert (is_flipped | is_same).all() and is_flipped.any() and is_same.any()

    cropped = batch_crop(x, 4, torch.Generator().manual_seed(1))
    assert cropped.shape == x.shape and cropped.min() >= 0 and cropped.max() <= 1
    assert not torch.equal(cropped, x)
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(x.shape[0]):  # every output is one zero-padded translation of its input
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(cropped[i], padded[i, :, dy:dy + 32, dx:dx + 32])]
        assert matches, f"image {i} is not a translation by <= 4 px"

    both = augment_batch(x, "crop,flip", torch.Generator().manual_seed(2))
    assert both.shape == x.shape and not torch.equal(both, x)
    assert torch.equal(augment_batch(x, ""), x)
    with pytest.raises(ValueError, match="augment"):
        augment_batch(x, "crop,zoom")


def test_fused_crop_flip_equals_separate_ops(data):
    x = data[0][:32]
    fused = augment_batch(x, "crop,flip", torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    assert torch.equal(fused, batch_flip_lr(batch_crop(x, 4, g), g))
    assert torch.equal(augment_batch(x, "flip,crop", torch.Generator().manual_seed(5)),
                       batch_crop(batch_flip_lr(x, torch.Generator().manual_seed(5)), 4,
                                  _after_flip_generator(x, 5)))


def _after_flip_generator(x, seed):
    g = torch.Generator().manual_seed(seed)
    torch.rand(x.shape[0], generator=g)  # the coins batch_flip_lr drew
    return g


# --- provenance: a model is reused only for the data it learned from ---------------------------------
def test_resume_refuses_a_checkpoint_trained_on_other_data(data, tmp_path):
    from advlib.train import make_provenance

    x, y = data
    cfg = small_cfg(epochs=2)
    fit(fresh(), x, y, cfg, out_dir=tmp_path, progress=False, stop_after=1,
        provenance=make_provenance("constructed", "d_det", x, y, cfg))
    x2 = x.clone()
    x2[0, 0, 0, 0] = 1 - x2[0, 0, 0, 0]  # one pixel differs: another dataset
    with pytest.raises(ValueError, match="other data.*dataset_sha256"):
        fit(fresh(), x2, y, cfg, out_dir=tmp_path, progress=False,
            provenance=make_provenance("constructed", "d_det", x2, y, cfg))
    with pytest.raises(ValueError, match="origin"):  # same bytes, released instead of constructed
        fit(fresh(), x, y, cfg, out_dir=tmp_path, progress=False,
            provenance=make_provenance("released", "d_det", x, y, cfg))


def test_a_model_recorded_with_the_old_source_key_is_still_reused(data, tmp_path):
    """Provenance written before "source" became "origin" names the same data: no retraining."""
    from advlib.train import make_provenance, read_provenance, stale_reason

    x, y = data
    cfg = small_cfg(epochs=1)
    train_or_load(cfg, x, y, tmp_path, progress=False, device="cpu", origin="constructed", dataset="d_det")
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    old = {("source" if k == "origin" else k): v for k, v in ckpt["provenance"].items()}
    torch.save({**ckpt, "provenance": old}, tmp_path / "checkpoint.pt")
    (tmp_path / "provenance.json").write_text(json.dumps(old))
    assert read_provenance(tmp_path)["origin"] == "constructed"
    assert stale_reason(tmp_path, cfg, make_provenance("constructed", "d_det", x, y, cfg)) is None
    assert "origin 'constructed' -> 'released'" in stale_reason(tmp_path, cfg, make_provenance("released", "d_det", x, y, cfg))


def test_rebuilt_dataset_is_never_answered_by_the_old_model(data, tmp_path):
    """train_or_load on changed data: the old model folder is set aside (not deleted) and a new
    model is trained on the new data, with the new sha256 in provenance.json."""
    from advlib.train import read_provenance
    from advlib.utils import tensors_sha256

    x, y = data
    cfg = small_cfg(epochs=1)
    out = tmp_path / "models" / "constructed" / "d_det"
    old_model, _ = train_or_load(cfg, x, y, out, progress=False, device="cpu", origin="constructed", dataset="d_det")
    assert read_provenance(out)["dataset_sha256"] == tensors_sha256(x, y)
    again, _ = train_or_load(cfg, x, y, out, progress=False, device="cpu", origin="constructed", dataset="d_det")
    assert _state_equal(old_model, again), "same data and config: reused"
    assert [p.name for p in out.parent.iterdir()] == ["d_det"]
    y2 = (y + 1) % 10  # the set was rebuilt with other labels
    new_model, hist = train_or_load(cfg, x, y2, out, progress=False, device="cpu", origin="constructed",
                                    dataset="d_det")
    assert read_provenance(out)["dataset_sha256"] == tensors_sha256(x, y2)
    assert not _state_equal(old_model, new_model)
    aside = [p for p in out.parent.iterdir() if p.name.startswith("d_det.replaced-")]
    assert len(aside) == 1 and _state_equal(old_model, load_trained(aside[0], device="cpu"))
    assert "dataset_sha256" in json.loads((aside[0] / "replaced.json").read_text())["reason"]


def test_fit_trains_any_module_and_infers_the_number_of_classes(data):
    from torch import nn

    x, y = data
    y4 = y % 4
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    before = [p.detach().clone() for p in net.parameters()]
    hist = fit(net, x, y4, small_cfg(arch="my_net", epochs=2, augment=""), progress=False)
    assert hist["epoch"] == [1, 2]
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    with pytest.raises(ValueError, match=r"0\.\.3"):  # the model outputs 4 logits: label 9 is out of range
        fit(net, x, y, small_cfg(arch="my_net", epochs=1), progress=False)
    with pytest.raises(ValueError, match="num_classes=10 but the model outputs 4"):
        fit(net, x, y4, small_cfg(arch="my_net", epochs=1), progress=False, num_classes=10)


def test_standard_source_model_has_its_own_augmentation_and_weight_decay():
    prof = get_profile("cpu", sources={"standard": {"augment": "", "weight_decay": 0.0},
                                       "robust": {"augment": "crop,flip", "weight_decay": 5e-4}},
                       **{"sets.relabel.augment": "crop,flip", "sets.relabel.weight_decay": 5e-4})
    std, rob, ds = train_config(prof, "standard"), train_config(prof, "robust"), train_config(prof, "dataset", "relabel")
    assert (std.augment, std.weight_decay) == ("", 0.0)
    assert (rob.augment, rob.weight_decay) == ("crop,flip", 5e-4) == (ds.augment, ds.weight_decay)
    with pytest.raises(ValueError, match="sources.standard.augment"):
        get_profile("cpu", **{"sources.standard.augment": "zoom"})


def test_eval_every_evaluates_every_kth_and_the_last_epoch_and_leaves_the_weights_alone(data):
    x, y = data
    cfg = small_cfg(epochs=5, schedule="constant", augment="")
    every = fit(m_every := fresh(), x, y, cfg, eval_data=(x[:64], y[:64]), progress=False, eval_every=2)
    each = fit(m_each := fresh(), x, y, cfg, eval_data=(x[:64], y[:64]), progress=False)
    assert [a is not None for a in every["eval_acc"]] == [False, True, False, True, True]
    assert [every["eval_acc"][i] for i in (1, 3, 4)] == [each["eval_acc"][i] for i in (1, 3, 4)]
    assert every["loss"] == each["loss"]  # monitoring only: the same training either way
    assert _state_equal(m_every, m_each)
    with pytest.raises(ValueError, match="eval_every"):
        fit(fresh(), x, y, cfg, progress=False, eval_every=0)


def test_profile_eval_every_is_validated():
    with pytest.raises(ValueError, match="eval_every"):
        get_profile("smoke", eval_every=0)
