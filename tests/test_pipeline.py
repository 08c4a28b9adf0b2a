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
