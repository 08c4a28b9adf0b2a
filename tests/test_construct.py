"""advlib.construct on tiny CPU inputs: a tiny net trained for a few epochs on 200 sample images."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from advlib import construct
from advlib.attacks import representation_distance
from advlib.config import get_profile
from advlib.data import load_cifar10, load_feature_dataset
from advlib.models import build_model
from advlib.paths import RunPaths
from advlib.train import train_config

N_POOL = 200


@pytest.fixture(scope="module")
def pool():
    return load_cifar10("sample", "train", n=N_POOL, seed=0)




@pytest.fixture(scope="module")
def model(pool):
    """The tiny net, 8 epochs of Adam (~45% train accuracy, every class predicted: it has features)."""
    x, y = pool
    torch.manual_seed(0)
    m = build_model("tiny")
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        for b in torch.randperm(len(x), generator=g).split(20):
            opt.zero_grad()
            F.cross_entropy(m(x[b]), y[b]).backward()
            opt.step()
    return m.eval()


ONE_EPOCH_SOURCES = {"sources.standard.epochs": 1, "sources.robust.epochs": 1, "sources.robust.adv_steps": 1}


def _profile(**kw):
    base = dict(construct_n=24, shard_size=10, construct_batch=5, invert_steps=12, invert_step_size=0.2,
                target_eps=2.0, target_steps=10, target_step_size=0.4, target_restarts=1, seed=3)
    base.update(kw)
    return get_profile("smoke", **base)


def _build(name, model, pool, tmp_path, sub="a", **kw):
    x, y = pool
    return construct.construct_dataset(name, model=model, images=x, labels=y, profile=_profile(**kw),
                                       out_dir=tmp_path / sub, progress=False)


@pytest.mark.parametrize("name", ["d_rand", "d_det"])
def test_targeted_sets_bounded_relabelled_and_hit(name, model, pool, tmp_path):
    x, y = pool
    meta = _build(name, model, pool, tmp_path)
    x_adv, t = load_feature_dataset(tmp_path / "a")
    src = torch.tensor(meta["source_indices"])
    assert len(x_adv) == len(t) == len(src) == 24
    assert len(set(src.tolist())) == 24  # distinct training images
    assert (x_adv >= 0).all() and (x_adv <= 1).all()
    dist = (x_adv - x[src]).flatten(1).norm(dim=1)
    assert (dist <= meta["eps"] + 1e-5).all(), dist.max()
    assert t.tolist() == meta["targets"]
    if name == "d_det":
        assert torch.equal(t, (y[src] + 1) % 10)
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == t).float().mean().item()
    assert hit >= 0.6, hit
    assert meta["hit_rate"] == pytest.approx(hit)
    assert meta["algorithm"] == "targeted_pgd_l2" and meta["source_model"]["which"] == "standard"


def test_keep_only_hits_drops_misses(model, pool, tmp_path):
    # a weak attack (tiny radius) misses often; the kept rows are exactly the hits
    meta = _build("d_rand", model, pool, tmp_path, target_eps=0.05, target_steps=2, keep_only_hits=True)
    x_adv, t = load_feature_dataset(tmp_path / "a")
    with torch.no_grad():
        assert (model(x_adv).argmax(1) == t).all()
    assert meta["n_rows"] == len(t) == meta["n_attacked"] - meta["dropped_misses"]
    assert meta["n_rows"] == pytest.approx(meta["hit_rate"] * meta["n_attacked"])


@pytest.mark.parametrize("name", ["d_robust", "d_non_robust"])
def test_representation_matching(name, model, pool, tmp_path):
    x, y = pool
    meta = _build(name, model, pool, tmp_path)
    x_r, lab = load_feature_dataset(tmp_path / "a")
    src, start = torch.tensor(meta["source_indices"]), torch.tensor(meta["start_indices"])
    assert len(x_r) == len(src) == len(start) == 24
    assert (start != src).all()
    assert torch.equal(lab, y[src])  # labels are the originals
    assert (x_r >= 0).all() and (x_r <= 1).all()
    curve = meta["loss_curve"]
    assert len(curve) == len(meta["loss_steps"]) and meta["loss_steps"][-1] == 12
    assert curve[-1] < 0.8 * curve[0], curve
    # the recorded relative distance is what the images give, and it beats the start image's
    d_final = representation_distance(model, x_r, x[src]).mean().item()
    d_start = representation_distance(model, x[start], x[src]).mean().item()
    assert meta["final_rel_distance"]["mean"] == pytest.approx(d_final, rel=1e-4)
    assert d_final < d_start
    assert meta["source_model"]["which"] == ("robust" if name == "d_robust" else "standard")


def test_other_indices_never_same():
    g = torch.Generator().manual_seed(0)
    src = torch.arange(5).repeat(200)
    out = construct.other_indices(src, 5, g)
    assert (out != src).all() and set(out.tolist()) == set(range(5))
    with pytest.raises(ValueError, match=">= 2"):
        construct.other_indices(torch.zeros(1, dtype=torch.int64), 1, g)


@pytest.mark.parametrize("name,kw", [("d_robust", {}), ("d_rand", {"target_restarts": 2})])
def test_resumed_build_is_identical(name, kw, model, pool, tmp_path):
    full = _build(name, model, pool, tmp_path, "full", **kw)
    x, y = pool
    prof = _profile(**kw)
    part = construct.construct_dataset(name, model=model, images=x, labels=y, profile=prof,
                                       out_dir=tmp_path / "resumed", progress=False, max_shards=1)
    assert part["complete"] is False and part["shards_done"] == 1 and part["shards_total"] == 3
    assert len(list((tmp_path / "resumed" / "shards").glob("shard_*.pt"))) == 1
    torch.manual_seed(123)  # the global RNG must not matter
    resumed = construct.construct_dataset(name, model=model, images=x, labels=y, profile=prof,
                                          out_dir=tmp_path / "resumed", progress=False)
    a, b = load_feature_dataset(tmp_path / "full"), load_feature_dataset(tmp_path / "resumed")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert full["source_indices"] == resumed["source_indices"]
    assert not (tmp_path / "resumed" / "shards").exists()


def test_rerun_is_noop_and_mismatch_raises(model, pool, tmp_path):
    meta = _build("d_det", model, pool, tmp_path)
    files = [tmp_path / "a" / f for f in ("CIFAR_ims", "CIFAR_lab", "meta.json")]
    before = [f.stat().st_mtime_ns for f in files]
    again = _build("d_det", model, pool, tmp_path)
    assert [f.stat().st_mtime_ns for f in files] == before
    assert again == json.loads(json.dumps(meta))
    with pytest.raises(ValueError, match="steps"):
        _build("d_det", model, pool, tmp_path, target_steps=11)
    # a partial build with other settings is refused too
    x, y = pool
    construct.construct_dataset("d_robust", model=model, images=x, labels=y, profile=_profile(),
                                out_dir=tmp_path / "p", progress=False, max_shards=1)
    with pytest.raises(ValueError, match="invert|step_size"):
        construct.construct_dataset("d_robust", model=model, images=x, labels=y,
                                    profile=_profile(invert_step_size=0.3), out_dir=tmp_path / "p",
                                    progress=False)
    # so is a different source model
    other = build_model("tiny").eval()
    with pytest.raises(ValueError, match="fingerprint"):
        _build("d_det", other, pool, tmp_path)


def test_construct_all_uses_the_right_models(model, pool, tmp_path):
    robust = build_model("tiny").eval()  # any other weights stand in for the robust model
    paths = RunPaths.of(tmp_path)
    x, y = pool
    metas = construct.construct_all(_profile(construct_n=6, invert_n=4), paths, x, y,
                                    {"standard": model, "robust": robust}, which=["d_robust", "d_det"], progress=False)
    assert set(metas) == {"d_robust", "d_det"}
    # invert_n sizes D_R / D_NR; both sets come from one seeded order of the training images
    assert metas["d_robust"]["n"] == 4 and metas["d_det"]["n"] == 6
    assert metas["d_robust"]["source_indices"] == metas["d_det"]["source_indices"][:4]
    assert metas["d_robust"]["source_model"]["fingerprint"] == construct.model_fingerprint(robust)
    assert metas["d_det"]["source_model"]["fingerprint"] == construct.model_fingerprint(model)
    assert paths.available() == ["d_robust", "d_det"]
    with pytest.raises(KeyError, match="robust"):
        construct.construct_all(_profile(), paths, x, y, {"standard": model}, which="d_robust", progress=False)


def test_targeted_sets_attack_the_targeted_model_when_the_profile_trains_one(model, pool, tmp_path):
    targeted = build_model("tiny").eval()  # other weights stand in for the augmented standard model
    paths = RunPaths.of(tmp_path)
    x, y = pool
    prof = _profile(construct_n=6, invert_n=4, **{"sources.targeted.epochs": 1})
    assert construct.source_roles(prof) == ("standard", "robust", "targeted")
    assert [construct.source_role(n, prof) for n in ("d_robust", "d_non_robust", "d_rand", "d_det")] == \
        ["robust", "standard", "targeted", "targeted"]
    metas = construct.construct_all(prof, paths, x, y, {"standard": model, "targeted": targeted},
                                    which=["d_non_robust", "d_det"], progress=False)
    assert metas["d_det"]["source_model"]["which"] == "targeted"
    assert metas["d_det"]["source_model"]["fingerprint"] == construct.model_fingerprint(targeted)
    assert metas["d_non_robust"]["source_model"]["fingerprint"] == construct.model_fingerprint(model)
    with pytest.raises(KeyError, match="targeted"):  # asked for, not given: no silent fallback
        construct.construct_all(prof, RunPaths.of(tmp_path / "b"), x, y, {"standard": model}, which="d_rand",
                                progress=False)
    # without a sources.targeted recipe the paper's single standard model builds them
    assert construct.source_role("d_rand", _profile()) == "standard"


def test_source_models_train_the_targeted_model_with_its_own_recipe(pool, tmp_path):
    x, y = pool
    prof = get_profile("smoke", **ONE_EPOCH_SOURCES, batch_size=100, device="cpu",
                       sources={"targeted": {"epochs": 2, "augment": "flip", "weight_decay": 1e-3}})
    paths = RunPaths.of(tmp_path)
    out = construct.source_models(prof, x[:100], y[:100], paths, progress=False)
    cfg = json.loads((paths.source_model("targeted") / "config.json").read_text())
    assert (cfg["epochs"], cfg["augment"], cfg["weight_decay"]) == (2, "flip", 1e-3)
    assert len(out["histories"]["targeted"]["epoch"]) == 2
    assert construct.model_fingerprint(out["targeted"]) != construct.model_fingerprint(out["standard"])
    with pytest.raises(ValueError, match="sources.targeted"):
        train_config(get_profile("smoke"), "targeted")


def test_source_models_train_then_load(pool, tmp_path):
    x, y = pool
    prof = get_profile("smoke", **ONE_EPOCH_SOURCES, batch_size=100, device="cpu")
    paths = RunPaths.of(tmp_path)
    first = construct.source_models(prof, x[:100], y[:100], paths, progress=False)
    assert {"standard", "robust", "histories"} <= set(first)
    for role in ("standard", "robust"):
        assert (paths.source_model(role) / "checkpoint.pt").is_file()
        prov = json.loads((paths.source_model(role) / "provenance.json").read_text())
        assert prov["origin"] == "cifar10" and prov["n"] == 100 and len(prov["dataset_sha256"]) == 64
    again = construct.source_models(prof, x[:100], y[:100], paths, progress=False)  # loads, no retraining
    for role in ("standard", "robust"):
        assert construct.model_fingerprint(again[role]) == construct.model_fingerprint(first[role])
    assert construct.model_fingerprint(first["standard"]) != construct.model_fingerprint(first["robust"])


def test_d_rand_targets_uniform_and_about_a_tenth_equal_the_label():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(20000) % 10
    t = construct.choose_targets(y, "rand", 10, g)
    counts = torch.bincount(t, minlength=10).float() / len(t)
    assert (counts - 0.1).abs().max() < 0.01, counts  # uniform over all ten classes
    assert (t == y).float().mean().item() == pytest.approx(0.1, abs=0.01)  # so ~10% keep their true label
    assert torch.equal(construct.choose_targets(y, "det", 10, g), (y + 1) % 10)  # D_det: never the label


def test_d_robust_matches_the_robust_models_features_not_the_standard_ones(model, pool, tmp_path):
    """Not a circular check: with two different source models, the D_R images are close to their
    targets in the *robust* model's representation only, and swapping the models changes the set."""
    x, y = pool
    robust = build_model("tiny").eval()  # other weights stand in for the robust model
    paths_a, paths_b = RunPaths.of(tmp_path / "a"), RunPaths.of(tmp_path / "b")
    prof = _profile(construct_n=10, invert_n=10, invert_steps=30)
    meta = construct.construct_all(prof, paths_a, x, y, {"standard": model, "robust": robust}, which=["d_robust"],
                                   progress=False)["d_robust"]
    x_r, _ = load_feature_dataset(paths_a.dataset("d_robust"))
    src = torch.tensor(meta["source_indices"])
    d_robust = representation_distance(robust, x_r, x[src]).mean().item()
    d_standard = representation_distance(model, x_r, x[src]).mean().item()
    assert d_robust < 0.5 * d_standard, (d_robust, d_standard)
    construct.construct_all(prof, paths_b, x, y, {"standard": robust, "robust": model}, which=["d_robust"],
                            progress=False)
    x_swapped, _ = load_feature_dataset(paths_b.dataset("d_robust"))
    assert not torch.allclose(x_r, x_swapped, atol=1e-3)


def test_construction_records_sha256_device_and_dtype(model, pool, tmp_path):
    from advlib.utils import tensors_sha256

    meta = _build("d_det", model, pool, tmp_path)
    x_adv, t = load_feature_dataset(tmp_path / "a")
    assert meta["sha256"] == tensors_sha256(x_adv, t), "the digest of what load_feature_dataset returns"
    assert meta["device_type"] == "cpu" and meta["dtype"] == "float32"


def test_shards_built_on_another_device_or_dtype_are_not_merged(model, pool, tmp_path):
    """A construction resumes only with the same device type and dtype: fp32 CPU shards never
    merge with bf16 GPU shards. The settings written by a (simulated) GPU build make a CPU resume refuse."""
    x, y = pool
    construct.construct_dataset("d_rand", model=model, images=x, labels=y, profile=_profile(),
                                out_dir=tmp_path / "p", progress=False, max_shards=1)
    settings_f = tmp_path / "p" / "shards" / "settings.json"
    gpu = json.loads(settings_f.read_text())
    gpu.update(device_type="cuda", dtype="bfloat16")
    settings_f.write_text(json.dumps(gpu))
    with pytest.raises(ValueError, match="device_type|dtype"):
        construct.construct_dataset("d_rand", model=model, images=x, labels=y, profile=_profile(),
                                    out_dir=tmp_path / "p", progress=False)


def test_source_models_from_robustness_library_checkpoints(pool, tmp_path):
    """Bring your own: checkpoints in the robustness library's layout are loaded instead of trained,
    stored with the file's sha256 as provenance, and answer exactly as the saved weights do."""
    from advlib.external import save_robustness_checkpoint
    from advlib.train import load_trained, read_provenance

    x, _ = pool
    files = {}
    for role, seed in (("standard", 1), ("robust", 2)):
        torch.manual_seed(seed)
        m = build_model("resnet18").eval()
        files[role] = (m, tmp_path / f"{role}.pt")
        save_robustness_checkpoint(m, files[role][1])
    prof = get_profile("smoke", arch="resnet18", device="cpu", standard_checkpoint=str(files["standard"][1]),
                       robust_checkpoint=str(files["robust"][1]))
    paths = RunPaths.of(tmp_path / "run")
    out = construct.source_models(prof, x[:8], torch.zeros(8, dtype=torch.long), paths, progress=False)
    for role, (m, f) in files.items():
        with torch.no_grad():
            assert torch.equal(out[role](x[:4]), m(x[:4]))
        stored = load_trained(paths.source_model(role), device="cpu")
        with torch.no_grad():
            assert torch.equal(stored(x[:4]), m(x[:4]))
        prov = read_provenance(paths.source_model(role))
        assert prov["origin"] == "robustness_checkpoint" and len(prov["sha256"]) == 64 and prov["path"] == str(f)
    with pytest.raises(ValueError, match="standard_checkpoint"):
        get_profile("smoke", arch="resnet18", standard_checkpoint=str(tmp_path / "missing.pt"))
