"""advlib.evaluate: accuracies, eps sweeps and what results.json records of one model."""

from __future__ import annotations

import pytest
import torch
from conftest import synthetic
from torch import nn

from advlib.config import get_profile
from advlib.evaluate import (
    accuracy,
    correct_mask,
    eps_sweep,
    eval_subset,
    evaluate_model,
    nested_robust_accuracy,
    pack_mask,
    radii_of,
    robust_accuracy,
    robust_correct,
    unpack_mask,
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
    prof = get_profile("smoke", eval_n=40, eval_steps=3, eval_sweep="0,0.5", eval_batch=32, autoattack_n=0,
                       apgd_targets=2, apgd_steps=5)
    m = evaluate_model(model, x, y, prof)
    idx = eval_subset(y, 40, prof.seed)  # clean and robust: the same seeded class-balanced subset
    assert m["clean_acc"] == accuracy(model, x[idx], y[idx]) and m["clean_n"] == 40 == m["eval_n"]
    assert m["full_clean_acc"] == accuracy(model, x, y) and m["full_clean_n"] == len(y)
    assert set(m["robust_acc"]) == set(m["pgd_acc"]) == {"0.25", "0.5"} == {str(e) for e in radii_of(prof)}
    # PGD alone is the nested PGD sweep; the headline (worst case with APGD-T) is never above it
    assert m["pgd_acc"] == nested_robust_accuracy(model, x[idx], y[idx], [0.25, 0.5], steps=3, seed=prof.seed,
                                                  batch_size=32)
    assert all(m["robust_acc"][k] <= m["pgd_acc"][k] for k in m["pgd_acc"])
    assert m["robust_acc"]["0.5"] <= m["robust_acc"]["0.25"] <= m["clean_acc"] and m["sweep"] == "nested"
    assert m["attack"] == "worst" and "APGD-T (2 targets × 5 iterations" in m["attack_desc"]
    # the stored per-image outcomes are the accuracies, and a survivor is always a clean hit
    clean = unpack_mask(m["masks"]["clean"], 40)
    assert int(clean.sum()) / 40 == m["clean_acc"]
    for k in ("0.25", "0.5"):
        mk = unpack_mask(m["masks"][k], 40)
        assert int(mk.sum()) / 40 == m["robust_acc"][k] and not (mk & ~clean).any()
    shifted = unpack_mask(m["masks"]["shifted"], 40)
    assert not (shifted & clean).any() and int(shifted.sum()) / 40 == m["shifted_acc"]
    assert m["eval_dtype"] == "float32" and m["device"] == "cpu" and m["attack_seed"] == prof.seed
    lo, hi = m["clean_ci95"]
    assert lo < m["clean_acc"] < hi
    for k, v in m["robust_acc"].items():
        assert m["robust_ci95"][k][0] <= v <= m["robust_ci95"][k][1]
    assert "autoattack_acc" not in m
    assert m["seconds"] > 0
    # full=False: only the headline radius and the declared one
    short = evaluate_model(model, x, y, get_profile("smoke", eval_n=40, eval_sweep="0,0.5,1.0", claim_eps=1.0,
                                                    autoattack_n=0, apgd_targets=2, apgd_steps=5), full=False)
    assert set(short["robust_acc"]) == {"0.25", "1.0"}


def test_masks_pack_and_unpack():
    m = torch.tensor([True, False, True, True, False, False, False, True, True])
    assert torch.equal(unpack_mask(pack_mask(m), 9), m)
    with pytest.raises(ValueError, match="expected 20"):
        unpack_mask(pack_mask(m), 20)


def test_attack_seed_comes_from_the_profile(trained):
    model, x, y = trained
    a = evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0", autoattack_n=0, seed=0))
    b = evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0", autoattack_n=0, seed=0),
                       seed=7)
    assert a["attack_seed"] == 0 and b["attack_seed"] == 7
    assert a["robust_acc"] == evaluate_model(model, x, y, get_profile("smoke", eval_n=60, eval_sweep="1.0",
                                                                        autoattack_n=0))["robust_acc"]


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
    model, x, y = trained
    xs, ys = x[:60], y[:60]
    aa = robust_accuracy(model, xs, ys, eps=0.5, attack="autoattack", apgd_steps=10, targets=3, batch_size=32)
    pgd_acc = robust_accuracy(model, xs, ys, eps=0.5, steps=10)
    assert aa <= pgd_acc + 0.05, (aa, pgd_acc)
    assert aa < accuracy(model, xs, ys) - 0.1, "eps 0.5 hurts this model"
    state = torch.get_rng_state()
    again = robust_accuracy(model, xs, ys, eps=0.5, attack="autoattack", apgd_steps=10, targets=3, batch_size=32)
    assert again == aa, "seeded"
    assert torch.equal(state, torch.get_rng_state()), "torchattacks' seeding must not touch the global RNG"


def test_evaluate_model_records_the_autoattack_cross_check(trained):
    model, x, y = trained
    prof = get_profile("smoke", eval_n=40, eval_sweep="0.5", eval_eps=0.5, claim_eps=0.5, autoattack_n=30,
                       autoattack_steps=5, autoattack_targets=2, apgd_targets=2, apgd_steps=5)
    m = evaluate_model(model, x, y, prof)
    assert m["autoattack_n"] == 30
    assert set(m["autoattack_acc"]) == set(m["autoattack_headline_acc"]) == {"0.5"}
    assert m["autoattack_acc"]["0.5"] <= m["clean_acc"] * 40 / 30 + 1e-9
    assert m["autoattack_ci95"]["0.5"][0] <= m["autoattack_acc"]["0.5"] <= m["autoattack_ci95"]["0.5"][1]
    assert "APGD-CE, APGD-T, FAB-T, Square" in m["autoattack_attacks"]
    # the headline on the AutoAttack images is read from the same per-image outcomes
    sub = eval_subset(y[eval_subset(y, 40, prof.seed)], 30, prof.seed + 1)
    head = unpack_mask(m["masks"]["0.5"], 40)[sub]
    assert m["autoattack_headline_acc"]["0.5"] == int(head.sum()) / 30


def test_evaluation_is_float32_even_under_autocast(trained):
    model, x, y = trained
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = accuracy(model, x, y)
        r = robust_accuracy(model, x[:50], y[:50], eps=0.5, steps=3)
    assert a == accuracy(model, x, y)
    assert r == robust_accuracy(model, x[:50], y[:50], eps=0.5, steps=3)


