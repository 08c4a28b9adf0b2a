"""advlib.steps: the notebooks' steps on a run directory (tables, provenance, matched controls)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import synthetic

from advlib import config
from advlib.construct import pool_fingerprint
from advlib.data import save_feature_dataset
from advlib.steps import base, evaluate, train
from advlib.steps import data as data_step


def test_markdown_table_columns_in_first_seen_order_and_missing_cells():
    text = base.markdown_table([{"a": 1, "b": 0.12345}, {"a": None, "c": "x"}])
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| 1 | 0.1235 | – |" and lines[3] == "| – | – | x |"
    assert base.markdown_table([]) == "_(nothing)_"


@pytest.mark.parametrize("s,text", [(0.44, "0.4 s"), (42.2, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"),
                                    (None, "–")])
def test_durations_read_in_units(s, text):
    assert base.duration(s) == text


def _run(tmp_path, **over):
    cfg = config.get_profile("smoke", **{"datasets": "d_rand", "batch_size": 40, "eval_n": 20,
                                         "eval_steps": 2, "eval_sweep": "0.25", "autoattack_n": 0, "device": "cpu",
                                         "apgd_targets": 2, "apgd_steps": 3, **over})
    return base.Run.of(cfg, tmp_path, train=synthetic(120, 1), val=synthetic(30, 3), test=synthetic(40, 2))


def test_inventory_and_feature_sets_see_only_complete_sets(tmp_path):
    run = _run(tmp_path, datasets="d_robust,d_non_robust,d_rand,d_det")
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    save_feature_dataset(run.paths.dataset("d_rand"), x, y)
    run.paths.dataset("d_det").mkdir(parents=True)  # an interrupted build: no files yet
    text = data_step.inventory(run).data
    assert "| constructed | d_rand | True |" in text and "| constructed | d_det | False |" in text
    sets = train.feature_sets(run)
    assert list(sets) == ["d_rand"] and torch.equal(sets["d_rand"][1], y)
    with pytest.raises(FileNotFoundError, match="d_det"):
        train.feature_sets(run, only="d_det")
    with pytest.raises(ValueError, match="unknown 'nope'"):
        train.feature_sets(run, only="nope")


@pytest.fixture
def run_with_sets(tmp_path):
    """A run directory with a constructed and a released d_rand (different data), a tiny profile."""
    run = _run(tmp_path)
    x, y = synthetic(120, 1)
    save_feature_dataset(run.paths.dataset("d_rand", "constructed"), x, y)
    save_feature_dataset(run.paths.dataset("d_rand", "released"), x.flip(-1), (y + 3) % 10)
    return run


def test_released_and_constructed_models_live_apart(run_with_sets):
    from advlib.train import read_provenance

    run = run_with_sets
    for origin in ("constructed", "released"):
        train.train_all(run, train.feature_sets(run, origin), origin, progress=False)
    a, b = run.paths.model("d_rand", "constructed"), run.paths.model("d_rand", "released")
    assert a != b and (a / "checkpoint.pt").is_file() and (b / "checkpoint.pt").is_file()
    pa, pb = read_provenance(a), read_provenance(b)
    assert (pa["origin"], pb["origin"]) == ("constructed", "released")
    assert pa["dataset_sha256"] != pb["dataset_sha256"]
    for origin in ("constructed", "released"):
        res = evaluate.evaluate_all(run, origin, progress=False)
    rows = {(r["dataset"], r["origin"]): r for r in res["rows"]}
    assert rows[("d_rand", "constructed")]["dataset_sha256"] == pa["dataset_sha256"]
    assert rows[("d_rand", "released")]["dataset_sha256"] == pb["dataset_sha256"]
    # a released set was built from the whole training set: its control is the whole pool
    assert (run.paths.model("control_rand", "cifar10") / "checkpoint.pt").is_file()
    assert rows[("d_rand", "released")]["control"] == "control_rand"


def test_a_rebuilt_dataset_is_never_answered_by_the_old_model(run_with_sets):
    run = run_with_sets
    train.train_all(run, train.feature_sets(run), progress=False)
    first = evaluate.evaluate_all(run, progress=False)["rows"][0]
    x2, y2 = synthetic(120, 5)  # d_rand rebuilt: other images
    save_feature_dataset(run.paths.dataset("d_rand"), x2, y2)
    with pytest.raises(ValueError, match="rerun notebook 04"):
        evaluate.evaluate_all(run, progress=False)
    train.train_all(run, train.feature_sets(run), progress=False)  # retrains
    second = evaluate.evaluate_all(run, progress=False)["rows"][0]
    assert second["dataset_sha256"] != first["dataset_sha256"]
    assert second["checkpoint_sha256"] != first["checkpoint_sha256"]
    assert len([r for r in evaluate.evaluate_all(run, progress=False)["rows"] if r["dataset"] == "d_rand"]) == 1


def test_extra_seeds_train_beside_and_give_one_row_each(tmp_path):
    run = _run(tmp_path, train_seeds="1,2")
    x, y = synthetic(120, 1)
    save_feature_dataset(run.paths.dataset("d_rand"), x, y)
    hist = train.train_all(run, train.feature_sets(run), progress=False)
    assert sorted(hist) == ["d_rand", "d_rand-seed1", "d_rand-seed2"]
    assert (run.paths.model("d_rand", "constructed", 2) / "checkpoint.pt").is_file()
    res = evaluate.evaluate_all(run, progress=False)
    assert sorted(r["seed"] for r in res["rows"]) == [0, 1, 2]
    assert len({r["checkpoint_sha256"] for r in res["rows"]}) == 3


def _constructed(run, name, idx, labels=None):
    """A constructed set whose meta.json records the training images it was built from."""
    x, y = run.train
    idx = torch.as_tensor(idx)
    save_feature_dataset(run.paths.dataset(name), (x[idx] * 0.5).clamp(0, 1), y[idx] if labels is None else labels,
                         meta={"source_indices": idx.tolist(), "pool": {"fingerprint": pool_fingerprint(x, y)}})


def test_matched_controls_train_the_sets_recipe_on_its_real_images(tmp_path):
    from advlib.recipes import train_config
    from advlib.train import read_provenance
    from advlib.utils import tensors_sha256

    run = _run(tmp_path, datasets="d_robust,d_non_robust", train_seeds="1")
    idx = torch.arange(0, 120, 2)
    for name in ("d_robust", "d_non_robust"):
        _constructed(run, name, idx)
    controls = train.matched_controls(run)
    assert list(controls) == ["control_rnr"]  # D_R and D_NR share theirs
    cx, cy = controls["control_rnr"]
    assert torch.equal(cx, run.train[0][idx]) and torch.equal(cy, run.train[1][idx])
    hist = train.train_all(run, train.feature_sets(run), progress=False)
    assert {"control_rnr", "control_rnr-seed1", "d_robust", "d_robust-seed1"} <= set(hist)
    folder = run.paths.model("control_rnr", "cifar10", 1)
    prov = read_provenance(folder)
    assert prov["dataset_sha256"] == tensors_sha256(cx, cy)
    # the same recipe as the set's own model, seed included
    want = json.loads(json.dumps(train_config(run.cfg, "dataset", "d_robust").__dict__ | {"seed": 1}))
    assert json.loads((folder / "config.json").read_text()) == want
    res = evaluate.evaluate_all(run, progress=False)
    by = {(r["dataset"], r["seed"]): r for r in res["rows"]}
    assert by[("d_robust", 0)]["control"] == "control_rnr" and ("control_rnr", 1) in by
    assert by[("control_rnr", 0)]["clean_n"] == by[("d_robust", 0)]["clean_n"]  # the same images: paired claims


def test_sets_sharing_a_control_must_come_from_the_same_images(tmp_path):
    run = _run(tmp_path, datasets="d_robust,d_non_robust")
    _constructed(run, "d_robust", torch.arange(0, 60))
    _constructed(run, "d_non_robust", torch.arange(60, 120))
    with pytest.raises(ValueError, match="control_rnr"):
        train.matched_controls(run)


def test_a_set_from_another_training_pool_is_refused(tmp_path):
    run = _run(tmp_path)
    x, y = synthetic(120, 9)
    save_feature_dataset(run.paths.dataset("d_rand"), x, y,
                         meta={"source_indices": list(range(120)), "pool": {"fingerprint": pool_fingerprint(x, y)}})
    with pytest.raises(ValueError, match="another training pool"):
        train.matched_controls(run)


def test_default_run_dir_is_where_make_demo_writes():
    assert base.default_run_dir("smoke").parts[-2:] == ("runs", "demo")
    assert base.default_run_dir("cpu").parts[-2:] == ("runs", "cpu")
    run = base.setup("cpu")
    assert run.paths.root == base.default_run_dir("cpu") and run.figures == run.paths.figures
    run = base.setup("smoke", run_dir="/tmp/x", overrides='{"sets.rnr.epochs": 3, "sources": {"robust": {"epochs": 2}}}')
    assert str(run.paths.root) == "/tmp/x" and (run.cfg.sets.rnr.epochs, run.cfg.sources.robust.epochs) == (3, 2)
    with pytest.raises(ValueError, match="unknown split"):
        base.Run.of(run.cfg, "/tmp/x", training=None)


def test_a_row_whose_settings_wrote_the_sweep_as_text_is_still_current():
    """Rows evaluated before eval_sweep was a list stored it as text: the same radii, the same settings."""
    cfg = config.get_profile("smoke")
    new = json.loads(json.dumps(evaluate.eval_settings(cfg)))
    assert evaluate.same_settings(new, evaluate.eval_settings(cfg))
    old = {**new, "eval_sweep": "0,0.25,1.0"}
    assert evaluate.same_settings(old, evaluate.eval_settings(cfg))
    assert not evaluate.same_settings({**new, "eval_sweep": "0,0.5"}, evaluate.eval_settings(cfg))
    assert not evaluate.same_settings(None, evaluate.eval_settings(cfg))
