"""advlib.evaluate: accuracies, eps sweeps and the results.json record."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import synthetic
from torch import nn

from advlib.config import PAPER, get_profile
from advlib.evaluate import (
    accuracy,
    eps_key,
    eps_sweep,
    eval_subset,
    evaluate_model,
    load_results,
    results_row,
    results_table,
    robust_accuracy,
    update_results,
)
from advlib.models import build_model
from advlib.train import TrainConfig, fit


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = build_model("tiny")
    x, y = synthetic(400, 1)
    fit(model, x, y, TrainConfig(arch="tiny", epochs=3, batch_size=50, lr=0.05, schedule="constant", augment=""),
        progress=False)
    xt, yt = synthetic(150, 2)
    return model.eval(), xt, yt


class Constant(nn.Module):
    """Always predicts class ``k`` (has a parameter, so its device is known)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10, device=x.device) + self.w
        logits[:, self.k] += 1
        return logits


def test_accuracy_of_constant_model_is_class_frequency():
    y = torch.tensor([3, 3, 1, 0, 3, 9, 3, 2, 5, 3, 3])
    x = torch.rand(len(y), 3, 32, 32)
    model = Constant(3).train()
    assert accuracy(model, x, y, batch_size=4) == pytest.approx((y == 3).float().mean().item())
    assert model.training, "accuracy must restore the mode it found"
    assert accuracy(Constant(7), x, y) == 0.0


def test_accuracy_accepts_uint8_and_checks_inputs(trained):
    model, x, y = trained
    x8 = (x * 255).round().to(torch.uint8)
    assert accuracy(model, x8, y) == pytest.approx(accuracy(model, x8.float() / 255, y))
    with pytest.raises(ValueError, match="label"):
        accuracy(model, x, y[:-1])
    with pytest.raises(ValueError, match="empty"):
        accuracy(model, x[:0], y[:0])


def test_robust_eps_zero_equals_clean_and_robust_below_clean(trained):
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert robust_accuracy(model, x, y, eps=0.0) == clean
    robust = robust_accuracy(model, x, y, eps=0.5, steps=5, batch_size=64)
    assert robust <= clean - 0.05
    assert robust == robust_accuracy(model, x, y, eps=0.5, steps=5, batch_size=64), "seeded: repeatable"
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy(model, x, y, eps=-1.0)
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy(model, x, y, eps=0.0, norm="l1")


def test_eps_sweep_non_increasing(trained):
    model, x, y = trained
    sweep = eps_sweep(model, x, y, [0, 0.25, 0.5, 1.0], steps=5)
    assert list(sweep) == ["0.0", "0.25", "0.5", "1.0"]
    values = list(sweep.values())
    assert values[0] == accuracy(model, x, y)
    assert all(b <= a + 0.02 for a, b in zip(values, values[1:], strict=False)), sweep
    assert values[-1] < values[0] - 0.2


def test_evaluate_model_uses_profile(trained):
    model, x, y = trained
    prof = get_profile("smoke", eval_n=40, eval_steps=3, eval_sweep="0,0.5", eval_batch=32)
    m = evaluate_model(model, x, y, prof)
    assert m["clean_acc"] == accuracy(model, x, y)
    assert m["eval_n"] == 40 and m["steps"] == 3
    assert set(m["robust_acc"]) == {"0.0", "0.25", "0.5"}
    idx = eval_subset(y, 40, prof.seed)  # the robust part uses the seeded class-balanced subset
    assert m["robust_acc"]["0.0"] == accuracy(model, x[idx], y[idx])
    assert m["seconds"] > 0


def test_update_results_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "results.json"
    prof = get_profile("smoke")
    m1 = {"clean_acc": 0.5, "robust_acc": {"0.25": 0.2}}
    update_results(path, results_row("d_robust", "constructed", m1), profile=prof, timings={"04_train": 3.0})
    update_results(path, results_row("d_rand", "constructed", m1))
    update_results(path, results_row("d_robust", "released", m1))
    m2 = {"clean_acc": 0.7, "robust_acc": {"0.25": 0.4}}
    data = update_results(path, results_row("d_robust", "constructed", m2), timings={"05_evaluate": 2.0})
    keys = [(r["dataset"], r["source"]) for r in data["rows"]]
    assert keys == [("d_robust", "constructed"), ("d_rand", "constructed"), ("d_robust", "released")]
    assert data["rows"][0]["clean_acc"] == 0.7 and data["rows"][2]["clean_acc"] == 0.5
    assert data["rows"][0]["paper"] == PAPER["d_robust"]
    assert data["profile"] == "smoke" and data["seed"] == prof.seed and data["config"]["name"] == "smoke"
    assert data["timings_s"] == {"04_train": 3.0, "05_evaluate": 2.0}
    assert load_results(path) == json.loads(path.read_text()) == data
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "no temporary files left behind"


def test_results_row_table_and_bad_files(tmp_path):
    row = results_row("d_non_robust", "constructed", {"clean_acc": 0.456, "robust_acc": {"0.25": 0.07}}, model="x")
    assert row["model"] == "x" and row["paper"] == PAPER["d_non_robust"]
    table = results_table({"rows": [row], "config": {"eval_eps": 0.25}})
    lines = table.strip().splitlines()
    assert lines[0].startswith("| dataset | source | clean | robust@0.25")
    assert "| d_non_robust | constructed | 45.6% | 7.0% |" in lines[2]
    assert eps_key(0.25) == "0.25" and eps_key(1) == "1.0"
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_results(bad)
    with pytest.raises(ValueError, match="dataset"):
        update_results(tmp_path / "r.json", {"clean_acc": 1.0})


def test_eval_subset_is_class_balanced_on_class_sorted_labels():
    y = torch.arange(10).repeat_interleave(200)  # sorted by class, as load_cifar10 returns it
    idx = eval_subset(y, 1000, seed=0)
    assert len(idx) == 1000 and len(set(idx.tolist())) == 1000
    assert torch.bincount(y[idx], minlength=10).tolist() == [100] * 10
    assert torch.equal(idx, eval_subset(y, 1000, seed=0)) and not torch.equal(idx, eval_subset(y, 1000, seed=1))
    assert torch.equal(eval_subset(y, 0), torch.arange(2000))
    counts = torch.bincount(y[eval_subset(y, 25, seed=3)], minlength=10)
    assert counts.max() - counts.min() <= 1
