"""advlib.pipeline: the notebook steps' small tables and the run-dir inventory."""

from __future__ import annotations

import pytest
import torch

from advlib import config, pipeline
from advlib.data import save_feature_dataset
from advlib.paths import RunPaths


def test_markdown_table_columns_in_first_seen_order_and_missing_cells():
    text = pipeline.markdown_table([{"a": 1, "b": 0.12345}, {"a": None, "c": "x"}])
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| 1 | 0.1235 | – |" and lines[3] == "| – | – | x |"
    assert pipeline.markdown_table([]) == "_(nothing)_"


def test_inventory_and_feature_sets_see_only_complete_sets(tmp_path):
    paths = RunPaths.of(tmp_path)
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    save_feature_dataset(paths.dataset("d_rand"), x, y)
    (paths.dataset("d_det")).mkdir(parents=True)  # an interrupted build: no files yet
    rows = {(r["source"], r["dataset"]): r for r in pipeline.inventory(paths)}
    assert rows[("constructed", "d_rand")]["present"] and not rows[("constructed", "d_det")]["present"]
    assert not rows[("released", "d_rand")]["present"]
    cfg = config.get_profile("smoke")
    sets = pipeline.feature_sets(cfg, paths)
    assert list(sets) == ["d_rand"] and torch.equal(sets["d_rand"][1], y)
    only = pipeline.feature_sets(cfg, paths, only="d_rand")
    assert list(only) == ["d_rand"]
    with pytest.raises(FileNotFoundError, match="d_det"):
        pipeline.feature_sets(cfg, paths, only="d_det")
    with pytest.raises(ValueError, match="unknown 'nope'"):
        pipeline.feature_sets(cfg, paths, only="nope")


# --- provenance through the notebook steps -------------------------------------------------------------
@pytest.fixture
def run_with_sets(tmp_path):
    """A run directory with a constructed and a released d_rand (different data), a tiny profile."""
    from conftest import synthetic

    paths = RunPaths.of(tmp_path)
    x, y = synthetic(120, 1)
    save_feature_dataset(paths.dataset("d_rand", "constructed"), x, y)
    save_feature_dataset(paths.dataset("d_rand", "released"), x.flip(-1), (y + 3) % 10)
    cfg = config.get_profile("smoke", datasets="d_rand", epochs=1, batch_size=40, eval_n=20, eval_steps=2,
                             eval_sweep="0.25", autoattack_n=0, device="cpu")
    test = synthetic(40, 2)
    return cfg, paths, test


def test_released_and_constructed_models_live_apart(run_with_sets):
    from advlib.train import read_provenance

    cfg, paths, test = run_with_sets
    for source in ("constructed", "released"):
        sets = pipeline.feature_sets(cfg, paths, source)
        pipeline.train_on_sets(cfg, paths, sets, test, source, progress=False)
    a, b = paths.model("d_rand", "constructed"), paths.model("d_rand", "released")
    assert a != b and (a / "checkpoint.pt").is_file() and (b / "checkpoint.pt").is_file()
    pa, pb = read_provenance(a), read_provenance(b)
    assert (pa["source"], pb["source"]) == ("constructed", "released")
    assert pa["dataset_sha256"] != pb["dataset_sha256"]
    for source in ("constructed", "released"):
        res = pipeline.evaluate_all(cfg, paths, test, source, progress=False)
    rows = {(r["dataset"], r["source"]): r for r in res["rows"]}
    assert rows[("d_rand", "constructed")]["dataset_sha256"] == pa["dataset_sha256"]
    assert rows[("d_rand", "released")]["dataset_sha256"] == pb["dataset_sha256"]
    assert rows[("d_rand", "constructed")]["checkpoint_sha256"] != rows[("d_rand", "released")]["checkpoint_sha256"]


def test_a_rebuilt_dataset_is_never_answered_by_the_old_model(run_with_sets):
    from conftest import synthetic

    cfg, paths, test = run_with_sets
    pipeline.train_on_sets(cfg, paths, pipeline.feature_sets(cfg, paths), test, progress=False)
    first = pipeline.evaluate_all(cfg, paths, test, progress=False)["rows"][0]
    x2, y2 = synthetic(120, 5)  # d_rand rebuilt: other images
    save_feature_dataset(paths.dataset("d_rand"), x2, y2)
    with pytest.raises(ValueError, match="rerun notebook 04"):
        pipeline.evaluate_all(cfg, paths, test, progress=False)
    pipeline.train_on_sets(cfg, paths, pipeline.feature_sets(cfg, paths), test, progress=False)  # retrains
    second = pipeline.evaluate_all(cfg, paths, test, progress=False)["rows"][0]
    assert second["dataset_sha256"] != first["dataset_sha256"]
    assert second["checkpoint_sha256"] != first["checkpoint_sha256"]
    assert len(pipeline.evaluate_all(cfg, paths, test, progress=False)["rows"]) == 1, "replaced, not added"


def test_extra_seeds_train_beside_and_give_one_row_each(run_with_sets):
    import dataclasses

    cfg, paths, test = run_with_sets
    cfg = dataclasses.replace(cfg, train_seeds="1,2")
    hist = pipeline.train_on_sets(cfg, paths, pipeline.feature_sets(cfg, paths), test, progress=False)
    assert sorted(hist) == ["d_rand", "d_rand-seed1", "d_rand-seed2"]
    assert (paths.model("d_rand", "constructed", 2) / "checkpoint.pt").is_file()
    res = pipeline.evaluate_all(cfg, paths, test, progress=False)
    assert sorted(r["seed"] for r in res["rows"]) == [0, 1, 2]
    assert len({r["checkpoint_sha256"] for r in res["rows"]}) == 3


def test_default_run_dir_is_where_make_demo_writes():
    assert pipeline.default_run_dir("smoke").parts[-2:] == ("runs", "demo")
    assert pipeline.default_run_dir("cpu").parts[-2:] == ("runs", "cpu")
    cfg, paths, fig_dir = pipeline.setup("cpu")
    assert paths.root == pipeline.default_run_dir("cpu") and fig_dir == paths.figures
    cfg, paths, _ = pipeline.setup("smoke", run_dir="/tmp/x", overrides='{"epochs": 3}')
    assert str(paths.root) == "/tmp/x" and cfg.epochs == 3
