"""advlib.claims: the paper's claims as data, whose verdicts follow the intervals, tested on
results that support the paper, contradict it, or cannot tell; and advlib.stats' intervals."""

import zlib

import numpy as np
import pytest
import torch

from advlib import stats, tables
from advlib import verdicts as claims
from advlib.evaluate import pack_mask
from advlib.results import results_row
from advlib.steps.evaluate import claims_text

N = 400  # test images per row


def _mask(p: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, generator=g) < p


def _row(name, source, seed, clean, robust: dict, shifted=0.0):
    """A results.json row with per-image masks drawn at the given rates (robust implies clean)."""
    c = _mask(clean, 1000 * seed + zlib.crc32(name.encode()) % 997)
    masks = {"clean": pack_mask(c), "shifted": pack_mask(_mask(shifted, 7 + seed) & ~c)}
    for k, (e, p) in enumerate(sorted(robust.items())):
        masks[e] = pack_mask(c & _mask(p / max(clean, 1e-9), 31 * seed + k + zlib.crc32(name.encode()) % 101))
    metrics = {"clean_acc": float(c.float().mean()), "clean_n": N, "masks": masks,
               "robust_acc": {e: float(torch.tensor(0.0)) for e in robust}}
    return results_row(name, source, metrics, seed=seed)


def _results(d_r, ctrl, d_nr=0.03, std=0.05, seeds=(0, 1, 2), d_rand=0.35, d_det=(0.33, 0.05)):
    rows = [_row("standard", "cifar10", 0, 0.68, {"0.25": std, "0.5": 0.0})]
    for s in seeds:
        rows += [_row("d_robust", "constructed", s, 0.45, {"0.25": d_r[0], "0.5": d_r[1]}),
                 _row("d_non_robust", "constructed", s, 0.43, {"0.25": d_nr, "0.5": 0.0}),
                 _row("control_rnr", "cifar10", s, 0.67, {"0.25": ctrl[0], "0.5": ctrl[1]}),
                 _row("d_rand", "constructed", s, d_rand, {"0.25": 0.0}),
                 _row("d_det", "constructed", s, d_det[0], {"0.25": 0.0}, shifted=d_det[1])]
    return {"profile": "cpu", "config": {"eval_eps": 0.25, "claim_eps": 0.5}, "rows": rows, "seed": 0}


def _by_id(res):
    return {c["id"]: c for c in claims.claims(res)}


def test_results_that_support_the_paper_get_supported_verdicts():
    got = _by_id(_results(d_r=(0.30, 0.15), ctrl=(0.28, 0.03)))
    assert got["d_robust_vs_control@0.5"]["verdict"] == "supported"
    assert got["d_non_robust_vs_control@0.5"]["verdict"] == "supported"
    assert got["d_non_robust_vs_control@0.25"]["verdict"] == "supported"
    assert got["d_robust_vs_d_non_robust@0.25"]["verdict"] == "supported"
    assert got["standard_non_robust"]["verdict"] == "supported"
    assert got["d_rand_generalizes"]["verdict"] == "supported"
    assert got["d_det_generalizes"]["verdict"] == "supported"
    n = got["d_robust_vs_control@0.5"]["numbers"]
    assert n["ci95"][0] > 0 and n["D_R"] > n["control"] and n["seeds"] == [3, 3] and n["images"] == N


def test_results_that_contradict_the_paper_are_not_supported():
    """D_R less robust than its control (the laptop-scale finding at 0.25), D_det at chance and
    predicting y + 1, standard training robust: each verdict says so."""
    res = _results(d_r=(0.20, 0.09), ctrl=(0.29, 0.10), std=0.30, d_det=(0.05, 0.40), d_rand=0.04)
    got = _by_id(res)
    assert got["d_robust_vs_control@0.25"]["verdict"] == "not supported"
    assert got["d_robust_vs_control@0.25"]["numbers"]["ci95"][1] < 0
    assert got["standard_non_robust"]["verdict"] == "not supported"
    assert got["d_det_generalizes"]["verdict"] == "not supported"
    assert got["d_rand_generalizes"]["verdict"] == "not supported"
    text = claims_text(res)
    # no sentence asserts a claim its verdict does not support
    assert "**Not supported at this scale**: A model trained on D_R is more robust" in text
    assert "**Supported**: A model trained on D_R is more robust than the same training" not in text
    for c in claims.claims(res):
        assert claims.verdict_sentence(c).startswith(f"**{claims.VERDICT_WORDS[c['verdict']]}**")


def test_a_difference_inside_its_interval_is_inconclusive():
    got = _by_id(_results(d_r=(0.25, 0.06), ctrl=(0.25, 0.05)))
    assert got["d_robust_vs_control@0.25"]["verdict"] == "inconclusive"
    lo, hi = got["d_robust_vs_control@0.25"]["numbers"]["ci95"]
    assert lo < 0 < hi


def test_one_training_seed_is_never_enough_for_a_verdict_about_training():
    got = _by_id(_results(d_r=(0.40, 0.30), ctrl=(0.10, 0.01), seeds=(0,)))
    c = got["d_robust_vs_control@0.5"]
    assert c["verdict"] == "inconclusive" and "1 training seed(s)" in c["test"]
    assert c["numbers"]["ci95"][0] > 0  # the interval alone would have said supported


def test_claims_are_left_out_when_their_rows_are_missing_and_tables_show_verdicts():
    res = _results(d_r=(0.30, 0.15), ctrl=(0.28, 0.03))
    res["rows"] = [r for r in res["rows"] if r["dataset"] != "control_rnr"]
    ids = set(_by_id(res))
    assert not any("vs_control" in i for i in ids) and "d_robust_vs_d_non_robust@0.25" in ids
    md = tables.claims_table(_results(d_r=(0.30, 0.15), ctrl=(0.28, 0.03)))
    assert md.count("**supported**") >= 5 and "| claim |" in md


def test_the_d_r_row_links_its_matched_control():
    assert results_row("d_robust", "constructed", {})["control"] == "control_rnr"
    assert results_row("d_det", "constructed", {})["control"] == "control_det"
    assert "control" not in results_row("standard", "cifar10", {})


# --- advlib.stats -------------------------------------------------------------------------------------
def test_bootstrap_intervals_are_deterministic_and_cover_the_estimate():
    rng = np.random.default_rng(0)
    a = [rng.random(500) < 0.3 for _ in range(3)]
    m1, m2 = stats.bootstrap_mean(a), stats.bootstrap_mean(a)
    assert m1 == m2 and m1[1] < m1[0] < m1[2]
    assert 0.24 < m1[1] and m1[2] < 0.36
    # the same outcomes compared with themselves: zero difference, zero width when seeds are paired
    assert stats.bootstrap_difference(a, a, paired_seeds=True) == (0.0, 0.0, 0.0)


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(1)
    same = [rng.random(500) < 0.3] * 3
    spread = [rng.random(500) < p for p in (0.2, 0.3, 0.4)]
    w_same = np.diff(stats.bootstrap_mean(same)[1:])[0]
    w_spread = np.diff(stats.bootstrap_mean(spread)[1:])[0]
    assert w_spread > 1.5 * w_same


@pytest.mark.parametrize("lo,hi,direction,expected", [
    (0.01, 0.05, "above", "supported"), (-0.05, -0.01, "above", "not supported"), (-0.01, 0.02, "above", "inconclusive"),
    (-0.05, -0.01, "below", "supported"), (0.01, 0.05, "below", "not supported")])
def test_verdict_follows_the_interval(lo, hi, direction, expected):
    assert stats.verdict(lo, hi, 0.0, direction) == expected


def test_bad_masks_are_named():
    with pytest.raises(ValueError, match="same images"):
        stats.bootstrap_difference([np.ones(3)], [np.ones(4)])
    with pytest.raises(ValueError, match="non-empty"):
        stats.bootstrap_mean([])
