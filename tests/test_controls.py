"""advlib.controls and the notebook-07 steps (advlib.steps.controls): invariants on tiny CPU inputs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advlib import config, controls
from advlib.construct import choose_targets, construct_dataset
from advlib.data import load_feature_dataset
from advlib.utils import tensors_sha256


class FixedPredictor(nn.Module):
    """Predicts floor(10 * x[:, 0, 0, 0]) (clamped to 0..9): known predictions for any image."""

    def forward(self, x):
        cls = (x[:, 0, 0, 0] * 10).long().clamp(0, 9)
        return nn.functional.one_hot(cls, 10).float()


def tiny_profile(**kw):
    base = dict(construct_n=40, target_steps=2, target_step_size=0.2, target_eps=0.5, construct_batch=20,
                shard_size=20, relabel_epochs=1, batch_size=20, eval_n=10, eval_steps=2, eval_batch=50,
                autoattack_n=0, device="cpu", sources={"standard": {"epochs": 1}})  # smoke's sets train 1 epoch
    base.update(kw)
    return config.get_profile("smoke", **base)


# --- d_other ------------------------------------------------------------------------------------------
def test_d_other_targets_never_equal_y_and_are_uniform_over_the_other_nine():
    y = torch.arange(18000) % 10
    t = choose_targets(y, "other", 10, torch.Generator().manual_seed(0))
    assert not (t == y).any()
    shift = torch.bincount((t - y) % 10, minlength=10)
    assert shift[0] == 0
    expected = len(y) / 9
    assert ((shift[1:].float() - expected).abs() < 0.08 * expected).all(), shift.tolist()


def test_built_d_other_relabels_with_targets_never_the_true_label(tmp_path):
    from conftest import synthetic

    from advlib.models import build_model

    x, y = synthetic(60, 1)
    model = build_model("tiny").eval()
    cfg = tiny_profile()
    meta = controls.build_control("d_other", profile=cfg, images=x, labels=y, out_dir=tmp_path / "d_other",
                                  model=model, progress=False)
    xs, ys = load_feature_dataset(tmp_path / "d_other")
    src = torch.tensor(meta["source_indices"])
    assert len(ys) == meta["n_rows"] == 40 and meta["sha256"] == tensors_sha256(xs, ys)
    assert torch.equal(src, controls.construction_indices(60, 40, cfg.seed))  # the same order construct uses
    assert torch.equal(ys, torch.tensor(meta["targets"])) and not (ys == y[src]).any()
    assert meta["target_equals_label_fraction"] == 0.0
    assert ((xs - x[src]).flatten(1).norm(dim=1) <= cfg.target_eps + 1e-4).all()
    again = controls.build_control("d_other", profile=cfg, images=x, labels=y, out_dir=tmp_path / "d_other",
                                   model=model, progress=False)
    assert again == meta  # same settings: reused, not rebuilt


# --- synthetic patterns -------------------------------------------------------------------------------
def test_class_patterns_have_norm_eps_and_are_seeded():
    p = controls.class_patterns(10, 0.5, seed=3)
    assert p.shape == (10, 3, 32, 32)
    assert torch.allclose(p.flatten(1).norm(dim=1), torch.full((10,), 0.5), atol=1e-5)
    assert torch.equal(p, controls.class_patterns(10, 0.5, seed=3))
    assert not torch.equal(p, controls.class_patterns(10, 0.5, seed=4))


@pytest.mark.parametrize("rule", ["rand", "det"])
def test_synthetic_images_are_clamped_image_plus_the_targets_pattern(rule):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 32, 32, generator=g)
    x[:25] = 0.5  # no clamping here: the change is exactly the pattern
    y = torch.arange(50) % 10
    r = controls.synthetic_set(x, y, rule=rule, eps=0.5, seed=1, generator=torch.Generator().manual_seed(2))
    p = controls.class_patterns(10, 0.5, seed=1)
    t = r["targets"]
    assert torch.equal(r["labels"], t) and torch.equal(r["orig_labels"], y)
    assert torch.equal(r["images"], (x + p[t]).clamp(0, 1))
    if rule == "det":
        assert torch.equal(t, (y + 1) % 10)
    for k in t[:25].unique():  # the same pattern for every image of a target
        rows = (t[:25] == k).nonzero().flatten()
        diffs = r["images"][rows] - x[rows]
        assert torch.allclose(diffs, p[k].expand_as(diffs), atol=1e-6)
        assert torch.allclose(diffs[0].norm(), torch.tensor(0.5), atol=1e-4)


def test_built_synthetic_sets_use_the_d_det_rule_and_record_their_sha(tmp_path):
    from conftest import synthetic

    x, y = synthetic(60, 1)
    meta = controls.build_control("d_det_synthetic", profile=tiny_profile(), images=x, labels=y,
                                  out_dir=tmp_path / "s", progress=False)
    xs, ys = load_feature_dataset(tmp_path / "s")
    src = torch.tensor(meta["source_indices"])
    assert torch.equal(ys, (y[src] + 1) % 10) and meta["sha256"] == tensors_sha256(xs, ys)
    p = controls.class_patterns(10, 0.5, seed=0)
    assert torch.allclose(xs, (x[src] + p[ys]).clamp(0, 1), atol=1e-6)


# --- relabel -------------------------------------------------------------------------------------------
def test_relabel_keeps_exactly_the_models_mistakes_with_its_predictions():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (200,), generator=g)
    pred = (x[:, 0, 0, 0] * 10).long().clamp(0, 9)
    idx = torch.arange(0, 200, 2)
    r = controls.relabel_set(FixedPredictor(), x, y, indices=idx, batch_size=32)
    wrong = idx[pred[idx] != y[idx]]
    assert torch.equal(r["source_indices"], wrong)
    assert torch.equal(r["labels"], pred[wrong]) and torch.equal(r["orig_labels"], y[wrong])
    assert torch.equal(r["images"], x[wrong]) and r["n_relabelled"] == 100
    assert not (r["labels"] == r["orig_labels"]).any()


def test_built_relabel_set_matches_the_predictions(tmp_path):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(60, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (60,), generator=g)
    meta = controls.build_control("relabel", profile=tiny_profile(), images=x, labels=y, out_dir=tmp_path / "r",
                                  model=FixedPredictor(), progress=False)
    xs, ys = load_feature_dataset(tmp_path / "r")
    idx = controls.construction_indices(60, 40, 0)
    pred = (x[idx, 0, 0, 0] * 10).long().clamp(0, 9)
    assert len(ys) == int((pred != y[idx]).sum()) == meta["n_rows"]
    assert torch.equal(ys, (xs[:, 0, 0, 0] * 10).long().clamp(0, 9))
    assert meta["kept_fraction"] == pytest.approx(len(ys) / 40)


# --- subset variants -----------------------------------------------------------------------------------
def test_subset_variants_select_exactly_the_right_rows():
    train_labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    src = [7, 2, 5, 0, 3]  # rows of the parent, made from these training images
    targets = torch.tensor([6, 0, 9, 8, 1])  # rows 0, 2, 4 have t == y
    hits = torch.tensor([True, False, False, True, True])
    x = torch.rand(5, 3, 32, 32)
    meta = {"name": "d_rand", "source_indices": src, "targets": targets.tolist()}
    ne = controls.subset_variant("d_rand_t_ne_y", x, targets, meta, train_labels)
    assert ne["rows"].tolist() == [1, 3] and ne["orig_labels"].tolist() == [4, 3]
    assert torch.equal(ne["images"], x[[1, 3]]) and ne["labels"].tolist() == [0, 8]
    h = controls.subset_variant("d_rand_hits", x, targets, meta, train_labels, hits)
    assert h["rows"].tolist() == [0, 3, 4] and h["source_indices"].tolist() == [7, 0, 3]
    with pytest.raises(ValueError, match="hits"):
        controls.subset_variant("d_det_hits", x, targets, meta, train_labels)
    with pytest.raises(ValueError, match="targets differ"):
        controls.subset_variant("d_rand_t_ne_y", x, targets.flip(0), meta, train_labels)


def test_parent_hits_from_meta_or_recomputed_with_the_model():
    x = torch.rand(30, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pred = (x[:, 0, 0, 0] * 10).long().clamp(0, 9)
    y = pred.clone()
    y[::3] = (y[::3] + 1) % 10
    hits, how = controls.parent_hits({"name": "d_det"}, x, y, FixedPredictor())
    assert how == "recomputed" and torch.equal(hits, pred == y)
    stored, how = controls.parent_hits({"hit": [True] * 30}, x, y)
    assert how == "meta" and stored.all()


# --- the notebook steps on a tiny run ------------------------------------------------------------------
def test_controls_steps_write_rows_with_their_dataset_sha(tmp_path):
    from conftest import synthetic

    from advlib import viz
    from advlib.steps import base
    from advlib.steps import controls as step
    from advlib.steps import train as train_step

    cfg = tiny_profile(construct_n=30, eval_n=6)
    run = base.Run.of(cfg, tmp_path, train=synthetic(40, 1), val=synthetic(20, 3), test=synthetic(20, 2))
    train = run.train
    source = step.targeted_source(run)
    for name in ("d_rand", "d_det"):
        construct_dataset(name, model=source, images=train[0], labels=train[1], profile=cfg,
                          out_dir=run.paths.dataset(name), progress=False)
    train_step.train_all(run, train_step.feature_sets(run, only="d_rand"), progress=False)
    brief = step.brief_model(run, progress=False)
    metas = step.build_controls(run, source, brief, progress=False)
    assert sorted(metas) == sorted(config.CONTROL_SETS)
    variants = step.subset_variants(run, source)
    rand_meta = json.loads((run.paths.dataset("d_rand") / "meta.json").read_text())
    t, s = torch.tensor(rand_meta["targets"]), torch.tensor(rand_meta["source_indices"])
    assert variants["d_rand_t_ne_y"]["rows"].tolist() == (t != train[1][s]).nonzero().flatten().tolist()
    sets = step.control_sets(run, metas, variants)
    step.train_controls(run, sets, progress=False)
    res = step.evaluate_controls(run, sets, progress=False)
    rows = {r["dataset"]: r for r in res["rows"]}
    for name in config.CONTROL_SETS:
        r = rows[name]
        assert r["origin"] == "constructed" and r["dataset_sha256"] == metas[name]["sha256"]
        assert r["train_n"] == metas[name]["n_rows"] and "autoattack_acc" not in r
        assert list(r["robust_acc"]) == [str(cfg.eval_eps)]
    for name, v in variants.items():
        assert rows[name]["dataset_sha256"] == v["sha256"] and rows[name]["train_n"] == len(v["labels"])
    summary = step.summary(run, res, metas, variants)
    names = [e["name"] for e in summary]
    assert names[0] == "d_rand" and "d_det" not in names  # beside the controls when its model exists
    assert summary[0]["clean_acc"] is not None and summary[0]["group"] == "paper set"
    assert set(names[1:]) == set(config.CONTROL_SETS) | set(variants)
    assert "D_other" in step.conclusions(run, summary).data
    assert viz.controls_bars(summary).axes


def _entry(name, acc, ci, group="control", n=1000):
    return {"name": name, "label": name, "group": group, "clean_acc": acc, "clean_ci95": ci, "train_n": n,
            "references": controls.REFERENCES.get(name, {})}


def test_conclusions_follow_the_numbers():
    from advlib.steps.controls import _controls_text as text_of

    strong = [_entry("d_rand", 0.60, [0.58, 0.62], "paper set"), _entry("d_other", 0.50, [0.48, 0.52]),
              _entry("d_rand_synthetic", 0.11, [0.09, 0.13]), _entry("relabel", 0.30, [0.28, 0.32], n=1880)]
    text = text_of(strong)
    assert "are not what the model learns from" in text and "near chance while the attacked sets are not" in text
    assert "1,880 training images" in text and "Jordan's ResNet-9: 67.3%" in text
    shortcut = [_entry("d_rand", 0.60, [0.58, 0.62], "paper set"), _entry("d_rand_synthetic", 0.61, [0.59, 0.63])]
    assert "the shortcut reaches the accuracy of D_rand" in text_of(shortcut)
    chance = [_entry("d_rand", 0.11, [0.08, 0.15], "paper set"), _entry("d_other", 0.12, [0.08, 0.16])]
    assert "nothing to explain" in text_of(chance, "smoke")
