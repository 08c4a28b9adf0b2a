"""advlib.results (results.json rows, read and written atomically) and advlib.tables (its markdown)."""

from __future__ import annotations

import json

import pytest
import torch

from advlib.config import PAPER, get_profile
from advlib.evaluate import eps_key, pack_mask
from advlib.results import grouped_rows, load_results, results_row, rows_of, update_results
from advlib.tables import data_source_name, describe_run, render, results_table, sweep_table


def test_update_results_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "results.json"
    prof = get_profile("smoke")
    m1 = {"clean_acc": 0.5, "robust_acc": {"0.25": 0.2}}
    update_results(path, results_row("d_robust", "constructed", m1), profile=prof, timings={"04_train": 3.0})
    update_results(path, results_row("d_rand", "constructed", m1))
    update_results(path, results_row("d_robust", "released", m1))
    m2 = {"clean_acc": 0.7, "robust_acc": {"0.25": 0.4}}
    data = update_results(path, results_row("d_robust", "constructed", m2), timings={"05_evaluate": 2.0})
    keys = [(r["dataset"], r["origin"]) for r in data["rows"]]  # (no seed given: key (dataset, origin, None))
    assert keys == [("d_robust", "constructed"), ("d_rand", "constructed"), ("d_robust", "released")]
    assert data["rows"][0]["clean_acc"] == 0.7 and data["rows"][2]["clean_acc"] == 0.5
    assert data["rows"][0]["paper"] == PAPER["d_robust"] and data["rows"][0]["control"] == "control_rnr"
    assert data["profile"] == "smoke" and data["seed"] == prof.seed and data["config"]["name"] == "smoke"
    assert data["timings_s"] == {"04_train": 3.0, "05_evaluate": 2.0}
    assert load_results(path) == json.loads(path.read_text()) == data
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "no temporary files left behind"


def test_rows_written_with_the_old_source_key_read_as_their_origin(tmp_path):
    """results.json of older runs names a row's origin "source": every reader takes either, and a
    new row replaces the old row of the same (dataset, origin, seed)."""
    path = tmp_path / "results.json"
    old = {"dataset": "d_rand", "source": "constructed", "seed": 0, "clean_acc": 0.3}
    path.write_text(json.dumps({"rows": [old, {"dataset": "standard", "source": "cifar10", "seed": 0}]}))
    data = load_results(path)
    assert [(d, o) for d, o, _ in grouped_rows(data)] == [("d_rand", "constructed"), ("standard", "cifar10")]
    assert rows_of(data, "d_rand", "constructed") == [old] and rows_of(data, "d_rand", "released") == []
    data = update_results(path, results_row("d_rand", "constructed", {"clean_acc": 0.4}, seed=0))
    assert [(r["dataset"], r.get("origin"), r.get("clean_acc")) for r in data["rows"]] == [
        ("d_rand", "constructed", 0.4), ("standard", None, None)]
    assert "| D_rand (adv. to random class) | constructed |" in results_table(data) and "| cifar10 |" in results_table(data)


def test_bad_results_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_results(bad)
    with pytest.raises(ValueError, match="dataset"):
        update_results(tmp_path / "r.json", {"clean_acc": 1.0})
    assert eps_key(0.25) == "0.25" and eps_key(1) == "1.0"


def _masked_row(name, seed, clean, robust, n=200):
    c = torch.arange(n) < int(clean * n)
    r = torch.arange(n) < int(robust * n)
    return results_row(name, "cifar10", {"clean_acc": clean, "clean_n": n, "full_clean_acc": clean + 0.01,
                                         "full_clean_n": 2 * n, "robust_acc": {"0.25": robust},
                                         "pgd_acc": {"0.25": robust + 0.02},
                                         "masks": {"clean": pack_mask(c), "0.25": pack_mask(r)}}, seed=seed)


def test_table_rows_show_the_same_images_the_full_test_set_and_seed_intervals():
    rows = [_masked_row("standard", s, 0.60 + 0.02 * s, 0.10) for s in range(3)]
    res = {"profile": "cpu", "rows": rows, "seed": 0, "config": {"eval_eps": 0.25, "eval_steps": 20},
           "machine": {"device": "cpu", "threads": 2, "torch": "2.14.1", "commit": "abcdef1234567890"}}
    lines = results_table(res).splitlines()
    assert lines[0].startswith("| trained on | data | clean [95% CI] | robust @ 0.25 [95% CI] | PGD-20 @ 0.25 |")
    assert "62.0% [" in lines[2] and "(3 seeds)" in lines[2] and "12.0%" in lines[2] and "63.0% (n=400)" in lines[2]
    sweep = sweep_table(res).splitlines()
    assert sweep[0] == "| trained on | data | clean | ε = 0.25 |" and "10.0%" in sweep[2]
    text = render(res)
    assert "seeds 0, 1, 2" in text and "commit abcdef123456" in text and "float32" in text


def test_old_rows_without_masks_render_from_their_stored_numbers():
    rows = [results_row("standard", "cifar10", {"clean_acc": c, "robust_acc": {"0.25": r}}, seed=s)
            for s, (c, r) in enumerate([(0.60, 0.10), (0.62, 0.12), (0.64, 0.14)])]
    line = results_table({"rows": rows, "config": {"eval_eps": 0.25}}).splitlines()[2]
    assert "62.0% ± 2.0 (3 seeds)" in line and "12.0% ± 2.0 (3 seeds)" in line


def test_declared_radius_gets_its_own_column():
    row = _masked_row("d_robust", 0, 0.5, 0.2)
    row["masks"]["0.5"] = row["masks"]["0.25"]
    table = results_table({"rows": [row], "config": {"eval_eps": 0.25, "claim_eps": 0.5}})
    assert "robust @ 0.5 (declared) [95% CI]" in table.splitlines()[0]


def test_tables_name_the_data_source_without_a_machines_path():
    assert data_source_name("/home/me/data/cifar10-jpeg.zip") == "a local copy of CIFAR-10 (JPEGs, zip)"
    assert data_source_name("/data/cifar_png") == "a local copy of CIFAR-10 (images, folder)"
    assert data_source_name("torchvision") == "torchvision's CIFAR-10"
    text = describe_run({"profile": "cpu", "config": {"cifar_source": "/secret/dir/c.zip", "eval_steps": 20},
                         "rows": [{"seed": 0, "eval_n": 10, "clean_n": 20}]})
    assert "/secret" not in text and "a local copy of CIFAR-10 (images, zip)" in text
