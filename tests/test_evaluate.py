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
    correct_mask,
    eps_key,
    eps_sweep,
    eval_subset,
    evaluate_model,
    load_results,
    nested_robust_accuracy,
    results_row,
    results_table,
    robust_accuracy,
    robust_correct,
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


def test_masks_agree_with_the_accuracies(trained):
    model, x, y = trained
    mask = correct_mask(model, x, y, batch_size=64)
    assert mask.dtype == torch.bool and mask.shape == y.shape and not mask.all()
    assert int(mask.sum()) / len(y) == accuracy(model, x, y)
    rmask = robust_correct(model, x, y, eps=0.5, steps=5, batch_size=64)
    assert int(rmask.sum()) / len(y) == robust_accuracy(model, x, y, eps=0.5, steps=5, batch_size=64)
    assert not (rmask & ~mask).any(), "an image misclassified clean is never robust"
    assert rmask.sum() < mask.sum()


def test_nested_sweep_attacks_only_the_survivors_of_smaller_radii(trained):
    model, x, y = trained
    sweep = nested_robust_accuracy(model, x, y, [1.0, 0.25, 0, 0.5], steps=5, batch_size=64)
    assert list(sweep) == ["0.0", "0.25", "0.5", "1.0"], "ascending, whatever the order asked"
    values = list(sweep.values())
    assert values == sorted(values, reverse=True), "non-increasing by construction"
    # the same thing by hand: the survivors of 0.25 attacked at 0.5
    alive = robust_correct(model, x, y, eps=0.25, steps=5, batch_size=64)
    assert sweep["0.25"] == robust_accuracy(model, x, y, eps=0.25, steps=5, batch_size=64)
    idx = alive.nonzero().flatten()
    kept = robust_correct(model, x[idx], y[idx], eps=0.5, steps=5, batch_size=64)
    assert sweep["0.5"] == int(kept.sum()) / len(y)
    # close to attacking a radius alone (other batches, so other random starts for single images)
    assert abs(sweep["0.5"] - robust_accuracy(model, x, y, eps=0.5, steps=5, batch_size=64)) <= 0.05
    with pytest.raises(ValueError, match="eps"):
        nested_robust_accuracy(model, x, y, [0.25, -1.0])


def test_evaluate_model_uses_profile(trained):
    model, x, y = trained
    prof = get_profile("smoke", eval_n=40, eval_steps=3, eval_sweep="0,0.5", eval_batch=32, autoattack_n=0)
    m = evaluate_model(model, x, y, prof)
    assert m["clean_acc"] == accuracy(model, x, y)
    assert m["clean_n"] == len(y) and m["eval_n"] == 40 and m["steps"] == 3
    assert set(m["robust_acc"]) == {"0.25", "0.5"}, "eps 0 is the clean accuracy, on all test images"
    idx = eval_subset(y, 40, prof.seed)  # the robust part uses the seeded class-balanced subset
    assert m["subset_clean_acc"] == accuracy(model, x[idx], y[idx])
    # nested: 0.5 attacks what survived 0.25 (eval_eps), so the curve cannot rise
    assert m["robust_acc"] == nested_robust_accuracy(model, x[idx], y[idx], [0.25, 0.5], steps=3, seed=prof.seed,
                                                     batch_size=32)
    assert m["robust_acc"]["0.5"] <= m["robust_acc"]["0.25"] and m["sweep"] == "nested"
    assert m["eval_dtype"] == "float32" and m["device"] == "cpu" and m["attack_seed"] == prof.seed
    lo, hi = m["clean_ci95"]
    assert lo < m["clean_acc"] < hi
    for k, v in m["robust_acc"].items():
        assert m["robust_ci95"][k][0] <= v <= m["robust_ci95"][k][1]
    assert "autoattack_acc" not in m
    assert m["seconds"] > 0


def test_attack_seed_comes_from_the_profile(trained):
    model, x, y = trained
    a = evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0", autoattack_n=0, seed=0))
    b = evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0", autoattack_n=0, seed=0),
                       seed=7)
    assert a["attack_seed"] == 0 and b["attack_seed"] == 7
    assert a["robust_acc"] == evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0",
                                                                        autoattack_n=0))["robust_acc"]


def test_update_results_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "results.json"
    prof = get_profile("smoke")
    m1 = {"clean_acc": 0.5, "robust_acc": {"0.25": 0.2}}
    update_results(path, results_row("d_robust", "constructed", m1), profile=prof, timings={"04_train": 3.0})
    update_results(path, results_row("d_rand", "constructed", m1))
    update_results(path, results_row("d_robust", "released", m1))
    m2 = {"clean_acc": 0.7, "robust_acc": {"0.25": 0.4}}
    data = update_results(path, results_row("d_robust", "constructed", m2), timings={"05_evaluate": 2.0})
    keys = [(r["dataset"], r["source"]) for r in data["rows"]]  # (no seed given: key (dataset, source, None))
    assert keys == [("d_robust", "constructed"), ("d_rand", "constructed"), ("d_robust", "released")]
    assert data["rows"][0]["clean_acc"] == 0.7 and data["rows"][2]["clean_acc"] == 0.5
    assert data["rows"][0]["paper"] == PAPER["d_robust"]
    assert data["profile"] == "smoke" and data["seed"] == prof.seed and data["config"]["name"] == "smoke"
    assert data["timings_s"] == {"04_train": 3.0, "05_evaluate": 2.0}
    assert load_results(path) == json.loads(path.read_text()) == data
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "no temporary files left behind"


def test_results_row_table_and_bad_files(tmp_path):
    row = results_row("d_non_robust", "constructed", {"clean_acc": 0.456, "clean_ci95": [0.43, 0.48],
                                                      "robust_acc": {"0.25": 0.07}, "robust_ci95": {"0.25": [0.05, 0.1]}},
                      model="x")
    assert row["model"] == "x" and row["paper"] == PAPER["d_non_robust"]
    table = results_table({"rows": [row], "config": {"eval_eps": 0.25, "eval_steps": 20}})
    lines = table.strip().splitlines()
    assert lines[0].startswith("| trained on | data | clean [95% CI] | PGD-20 @ 0.25 [95% CI] | AutoAttack")
    assert lines[2] == "| D_NR (non-robust features) | constructed | 45.6% [43.0, 48.0] | 7.0% [5.0, 10.0] | – | 88.0% | 0.0% |"
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


def test_wilson_interval_values_and_edges():
    from advlib.utils import wilson_interval

    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)  # textbook values
    lo, hi = wilson_interval(0, 1000)
    assert lo == 0.0 and hi == pytest.approx(0.00383, abs=1e-4), "sensible at 0 successes (robust acc 0%)"
    lo, hi = wilson_interval(1000, 1000)
    assert hi == 1.0 and lo == pytest.approx(0.99617, abs=1e-4)
    assert wilson_interval(300, 1000)[1] - wilson_interval(300, 1000)[0] < wilson_interval(30, 100)[1] - wilson_interval(30, 100)[0]
    with pytest.raises(ValueError):
        wilson_interval(5, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_autoattack_is_at_least_as_strong_as_pgd_and_checked_beside_it(trained):
    pytest.importorskip("torchattacks")
    from advlib.evaluate import autoattack_accuracy

    model, x, y = trained
    xs, ys = x[:60], y[:60]
    aa = autoattack_accuracy(model, xs, ys, eps=0.5, steps=10, n_target_classes=3, seed=0, batch_size=32)
    pgd_acc = robust_accuracy(model, xs, ys, eps=0.5, steps=10)
    clean = accuracy(model, xs, ys)
    assert aa["n"] == 60 and aa["acc"] == aa["correct"] / 60
    assert aa["acc"] <= aa["apgd_ce_acc"] <= aa["clean_acc"] == clean
    assert aa["acc"] <= pgd_acc + 0.05, (aa, pgd_acc)  # APGD-CE + APGD-T is no weaker than PGD-10
    assert aa["acc"] < clean - 0.1, "eps 0.5 hurts this model"
    state = torch.get_rng_state()
    again = autoattack_accuracy(model, xs, ys, eps=0.5, steps=10, n_target_classes=3, seed=0, batch_size=32)
    assert again["acc"] == aa["acc"], "seeded"
    assert torch.equal(state, torch.get_rng_state()), "torchattacks' seeding must not touch the global RNG"


def test_evaluate_model_records_the_autoattack_cross_check(trained):
    pytest.importorskip("torchattacks")
    model, x, y = trained
    prof = get_profile("smoke", eval_n=40, eval_sweep="0.5", eval_eps=0.5, autoattack_n=30, autoattack_steps=5,
                       autoattack_targets=2)
    m = evaluate_model(model, x, y, prof)
    assert m["autoattack_n"] == 30
    assert set(m["autoattack_acc"]) == set(m["autoattack_pgd_acc"]) == {"0.5"}
    assert m["autoattack_acc"]["0.5"] <= m["autoattack_apgd_ce_acc"]["0.5"]
    assert m["autoattack_ci95"]["0.5"][0] <= m["autoattack_acc"]["0.5"] <= m["autoattack_ci95"]["0.5"][1]
    assert "APGD-CE + APGD-T" in m["autoattack_attacks"]


def test_evaluation_is_float32_even_under_autocast(trained):
    model, x, y = trained
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = accuracy(model, x, y)
        r = robust_accuracy(model, x[:50], y[:50], eps=0.5, steps=3)
    assert a == accuracy(model, x, y)
    assert r == robust_accuracy(model, x[:50], y[:50], eps=0.5, steps=3)


def test_table_shows_mean_and_std_over_seeds_and_the_sweep():
    from advlib.evaluate import render, sweep_table

    rows = [results_row("standard", "cifar10", {"clean_acc": c, "robust_acc": {"0.25": r, "0.5": r / 2}}, seed=s)
            for s, (c, r) in enumerate([(0.60, 0.10), (0.62, 0.12), (0.64, 0.14)])]
    res = {"profile": "cpu", "rows": rows, "config": {"eval_eps": 0.25, "eval_steps": 20, "eval_restarts": 1},
           "machine": {"device": "cpu", "threads": 2, "torch": "2.14.1", "commit": "abcdef1234567890"}}
    line = results_table(res).splitlines()[2]
    assert "62.0% ± 2.0 (3 seeds)" in line and "12.0% ± 2.0 (3 seeds)" in line
    sweep = sweep_table(res).splitlines()
    assert sweep[0] == "| trained on | data | clean | ε = 0.25 | ε = 0.5 |"
    assert "6.0% ± 1.0 (3 seeds)" in sweep[2]
    text = render(res)
    assert "seeds 0, 1, 2" in text and "commit abcdef123456" in text and "float32" in text


def test_tables_name_the_data_source_without_a_machines_path():
    from advlib.evaluate import data_source_name, describe_run

    assert data_source_name("/home/me/data/cifar10-jpeg.zip") == "a local copy of CIFAR-10 (JPEGs, zip)"
    assert data_source_name("/data/cifar_png") == "a local copy of CIFAR-10 (images, folder)"
    assert data_source_name("torchvision") == "torchvision's CIFAR-10"
    text = describe_run({"profile": "cpu", "config": {"cifar_source": "/secret/dir/c.zip", "eval_steps": 20},
                         "rows": [{"seed": 0, "eval_n": 10, "clean_n": 20}]})
    assert "/secret" not in text and "a local copy of CIFAR-10 (images, zip)" in text
