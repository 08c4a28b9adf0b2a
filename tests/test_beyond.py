"""Notebook 10 on tiny CPU inputs: L∞ attacks stay in their ball and L∞ training makes a model more
robust under L∞; large-ε synthesis moves the prediction toward the target; "just bugs" examples hit
the source and leave the ensemble unchanged; the leakage estimate is a bounded lower bound, at
chance for random labels; the new claims' verdicts follow their intervals; notebook 10's rows stay
out of the paper's L2 tables; old checkpoints keep their keys."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
import torch
from conftest import synthetic

from advlib import config, leakage
from advlib import evaluate as ev
from advlib import synthesis as syn
from advlib.bugs import just_bugs_examples, unchanged
from advlib.builders import build_targeted_set
from advlib.models import build_model
from advlib.recipes import Recipe, TrainConfig, recipe_config, train_config
from advlib.train import _config_diff, fit
from advlib.verdicts import beyond_claims

LINF = 0.03  # the toy task's L∞ radius: its templates differ by a few hundredths per pixel


def _train(x, y, arch, seed, **kw):
    torch.manual_seed(seed)
    model = build_model(arch)
    cfg = TrainConfig(arch=arch, epochs=5, batch_size=50, lr=0.05, schedule="onecycle", augment="", seed=seed,
                      amp=False, **kw)
    fit(model, x, y, cfg, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def toy():
    """A separable 10-class task, a standard tiny CNN, one trained with L∞ PGD, and two other models."""
    torch.set_num_threads(1)
    x, y = synthetic(300, 0)
    xt, yt = synthetic(200, 1)
    std = _train(x, y, "tiny", 0)
    rob = _train(x, y, "tiny", 0, adversarial=True, adv_norm="linf", adv_eps=LINF, adv_steps=2, adv_step_size=0.02)
    ensemble = [_train(x, y, "tiny", 1), _train(x, y, "linear", 0)]
    return {"x": x, "y": y, "xt": xt, "yt": yt, "std": std, "rob": rob, "ensemble": ensemble}


# --- 1 · L∞ -----------------------------------------------------------------------------------------
def test_linf_targeted_examples_stay_in_the_max_norm_ball_and_the_image_box(toy):
    x, y = toy["x"][:60], toy["y"][:60]
    eps = 8 / 255
    r = build_targeted_set(toy["std"], x, y, rule="det", eps=eps, step_size=2 / 255, steps=10, norm="linf")
    delta = (r["images"] - x).flatten(1).abs().max(1).values
    assert float(delta.max()) <= eps + 1e-6
    assert float(r["images"].min()) >= 0.0 and float(r["images"].max()) <= 1.0
    assert float(delta.mean()) > eps / 2, "the attack moved the images"
    assert r["hit"].float().mean() > 0.2, "L∞ PGD reaches targets on a standard model"
    l2 = build_targeted_set(toy["std"], x, y, rule="det", eps=0.5, step_size=0.1, steps=10)  # the default: L2
    assert float((l2["images"] - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5


def test_linf_training_is_more_robust_under_linf_than_standard_training(toy):
    xt, yt = toy["xt"], toy["yt"]
    std = ev.robust_accuracy(toy["std"], xt, yt, norm="linf", eps=LINF, steps=10)
    rob = ev.robust_accuracy(toy["rob"], xt, yt, norm="linf", eps=LINF, steps=10)
    assert ev.accuracy(toy["rob"], xt, yt) > 0.8
    assert rob > std + 0.15, (rob, std)


def test_evaluate_model_under_linf_records_the_norm_and_its_radius(toy):
    prof = dataclasses.replace(config.get_profile("smoke"), eval_n=50, eval_steps=5, apgd_steps=5, apgd_targets=2)
    m = ev.evaluate_model(toy["rob"], toy["xt"], toy["yt"], prof, norm="linf", radii=[LINF])
    key = ev.eps_key(LINF)
    assert m["norm"] == "linf" and set(m["robust_acc"]) == {key} and "autoattack_acc" not in m
    assert 0 <= m["robust_acc"][key] <= m["pgd_acc"][key] <= m["clean_acc"]
    assert ev.unpack_mask(m["masks"][key], m["clean_n"]).sum() == round(m["robust_acc"][key] * m["clean_n"])


def test_adv_norm_defaults_to_l2_so_old_checkpoints_and_recipes_keep_their_keys():
    assert Recipe().adv_norm == "l2" and TrainConfig(arch="tiny", epochs=1).adv_norm == "l2"
    cfg = train_config(config.get_profile("cpu"), "robust")
    saved = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "adv_norm"}  # a config of before the field
    assert cfg.adv_norm == "l2" and _config_diff(saved, cfg) == {}
    linf = recipe_config(config.get_profile("cpu"), config.get_profile("cpu").beyond.linf_source)
    assert (linf.adversarial, linf.adv_norm, linf.adv_eps) == (True, "linf", 8 / 255)
    assert _config_diff(saved, linf)["adv_norm"] == ("l2", "linf")
    with pytest.raises(ValueError, match="adv_norm"):
        config.get_profile("smoke", **{"beyond.linf_source.adv_norm": "l1"})


def test_profiles_carry_the_beyond_group_and_old_configs_read_with_it():
    smoke, cpu = config.get_profile("smoke"), config.get_profile("cpu")
    assert smoke.beyond.linf_eps == cpu.beyond.linf_eps == 8 / 255 and cpu.beyond.seeds == (0, 1)
    assert config.get_profile("cpu", **{"beyond.seeds": "0,1,2"}).beyond.seeds == (0, 1, 2)
    before = {k: v for k, v in cpu.to_dict().items() if k != "beyond"}  # results.json of before notebook 10
    assert config.from_dict(before) == cpu


# --- 2 · synthesis ----------------------------------------------------------------------------------
def test_synthesis_moves_the_prediction_toward_the_target(toy):
    rows, targets = syn.all_targets(5)
    assert rows.tolist()[:11] == [0] * 10 + [1] and targets.tolist()[:11] == list(range(10)) + [0]
    x = toy["xt"][:5][rows]
    r = syn.synthesize(toy["rob"], x, targets, [0.5, 2.0, 5.0], steps=20)
    mean_logit = r["logit"].mean(1)
    assert bool((mean_logit[1:] > mean_logit[:-1]).all()), mean_logit  # the target's logit rises along ε
    assert bool((r["logp"][1:] >= r["logp"][:-1] - 1e-5).all())  # each radius starts where the last ended
    assert float(r["hit"][-1].float().mean()) >= 0.9  # at a large ε the robust model predicts the target
    assert float(r["hit"][0].float().mean()) < float(r["hit"][-1].float().mean())
    for k, e in enumerate(r["eps"]):
        assert float((r["images"][k] - x).flatten(1).norm(dim=1).max()) <= e + 1e-4
    assert r["images"].min() >= 0 and r["images"].max() <= 1


# --- 3 · just bugs ----------------------------------------------------------------------------------
def test_just_bugs_examples_hit_the_source_and_leave_the_ensemble_unchanged(toy):
    x, y = toy["x"][:100], toy["y"][:100]
    t = (y + 1) % 10
    r = just_bugs_examples(toy["std"], toy["ensemble"], x, t, eps=2.0, steps=30, step_size=0.2)
    same = unchanged(toy["ensemble"], r["images"], x)
    assert float(same.float().mean()) >= 0.95 and bool((same == r["unchanged"]).all())
    assert float(r["hit"].float().mean()) >= 0.6, "the source is still flipped toward the target"
    assert float((r["images"] - x).flatten(1).norm(dim=1).max()) <= 2.0 + 1e-4
    plain = build_targeted_set(toy["std"], x, y, rule="det", eps=2.0, step_size=0.2, steps=30)
    assert float(unchanged(toy["ensemble"], plain["images"], x).float().mean()) < float(same.float().mean())


# --- 4 · leakage ------------------------------------------------------------------------------------
def test_leakage_estimate_is_bounded_and_at_chance_for_random_labels(toy):
    f, ft = leakage.features(toy["std"], toy["x"]), leakage.features(toy["std"], toy["xt"])
    probe = leakage.fit_probe(f, toy["y"], steps=50)
    assert float((probe.predict(ft) == toy["yt"]).float().mean()) > 0.9  # features that carry the labels
    random = torch.randint(0, 10, (len(toy["y"]),), generator=torch.Generator().manual_seed(0))
    acc = float((leakage.fit_probe(f, random, steps=50).predict(ft) == toy["yt"]).float().mean())
    assert abs(acc - 0.10) < 0.06, acc  # labels independent of the images: nothing to leak
    for probe_acc, set_acc in ((acc, 0.4), (0.3, 0.6), (0.9, 0.5), (0.02, 0.3), (0.3, 0.05)):
        est = leakage.leakage_estimate(probe_acc, set_acc)
        assert 0.0 <= est["explained"] <= set_acc and est["explained"] <= max(0.0, set_acc - 0.1) + 1e-12
        assert est["share"] is None or 0.0 <= est["share"] <= 1.0
    assert leakage.leakage_estimate(acc, 0.4)["explained"] < 0.06


# --- the claims -------------------------------------------------------------------------------------
def _row(name, p, n=400, seed=0, origin="constructed", what=("clean",), **extra):
    rng = np.random.default_rng(zlib.crc32(f'{name}:{seed}'.encode()))
    masks = {w: ev.pack_mask(torch.from_numpy(rng.random(n) < (p[w] if isinstance(p, dict) else p))) for w in what}
    return {"dataset": name, "origin": origin, "seed": seed, "clean_n": n, "masks": masks, **extra}


def _results(good: bool) -> dict:
    key = ev.eps_key(8 / 255)
    hi, lo = (0.30, 0.02) if good else (0.02, 0.30)
    rows = []
    for seed in (0, 1):
        rows += [_row("d_robust_linf", {"clean": 0.5, key: hi}, seed=seed, what=("clean", key), norm="linf"),
                 _row("control_rnr_linf", {"clean": 0.6, key: lo}, seed=seed, origin="cifar10", what=("clean", key),
                      norm="linf"),
                 _row("d_rand_linf", 0.4 if good else 0.05, seed=seed, norm="linf"),
                 _row("d_det_subset", 0.4 if good else 0.05, seed=seed),
                 _row("d_det_bugs", 0.10 if good else 0.45, seed=seed)]
    rows += [_row("leakage_d_rand", 0.3 if good else 0.02), _row("leakage_d_det", 0.02 if good else 0.3),
             _row("synthesis_robust", 0.8 if good else 0.1, origin="cifar10", what=("judge",), judge_eps=10.0),
             _row("synthesis_standard", 0.1 if good else 0.8, origin="cifar10", what=("judge",))]
    return {"config": {"beyond": {"linf_eps": 8 / 255}}, "rows": rows}


@pytest.mark.parametrize("good", [True, False], ids=["supportive", "contradicting"])
def test_new_claims_follow_their_intervals(good):
    found = {c["id"]: c for c in beyond_claims(_results(good))}
    want = "supported" if good else "not supported"
    ids = [f"d_robust_linf_vs_control@{ev.eps_key(8 / 255)}", "d_rand_linf_generalizes", "d_det_subset_generalizes",
           "d_det_bugs_below_d_det", "d_det_bugs_at_chance", "leakage_d_rand", "leakage_d_det",
           "synthesis_robust_vs_standard"]
    for cid in ids:
        assert found[cid]["verdict"] == want, (cid, found[cid])
        lo, hi = found[cid]["numbers"]["ci95"]
        assert lo <= hi
    one_seed = {"config": {"beyond": {"linf_eps": 8 / 255}},
                "rows": [r for r in _results(good)["rows"] if r["seed"] == 0 and r["dataset"] == "d_det_bugs"]}
    (c,) = beyond_claims(one_seed)
    assert c["verdict"] == "inconclusive"  # one training seed: no verdict about training on a set


def test_notebook_10_rows_stay_out_of_the_paper_tables():
    from advlib import tables
    from advlib.results import in_l2_tables
    from advlib.viz import rows as R

    res = _results(True)
    res["rows"].append(_row("standard", {"clean": 0.9, "0.25": 0.05}, origin="cifar10", what=("clean", "0.25")))
    res["config"].update(eval_eps=0.25)
    assert [r["dataset"] for r in res["rows"] if in_l2_tables(r)] == ["d_det_subset", "d_det_bugs"] * 2 \
        + ["leakage_d_rand", "leakage_d_det", "synthesis_robust", "synthesis_standard", "standard"] and \
        not in_l2_tables({"norm": "linf"}) and not in_l2_tables({"measure": "linear probe"})
    for r in res["rows"]:
        if r["dataset"].startswith(("leakage", "synthesis")):
            r["measure"] = "x"
    assert "under L∞" not in tables.sweep_table(res) + tables.results_table(res)
    assert {g.dataset for g in R.groups(res)} == {"d_det_subset", "d_det_bugs", "standard"}
    text = tables.linf_table(res)
    assert "D_R from the L∞-robust model, under L∞" in text and "8/255" in text
    assert "Notebook 10's claims" in tables.render(res)


def test_synthesis_slider_indexes_the_precomputed_radii():
    from advlib.widgets import SynthesisSlider

    n_img, eps = 2, [2.0, 10.0]
    start = torch.rand(n_img, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    models = {}
    for name in ("standard", "adversarial"):
        images = torch.stack([start.repeat_interleave(10, 0) * (k + 1) / 3 for k in range(len(eps))])
        hit = torch.zeros(len(eps), n_img * 10, dtype=torch.bool)
        hit[1, :5] = True
        models[name] = {"images": images, "hit": hit, "logp": torch.full((len(eps) + 1, n_img * 10), -1.0)}
    w = SynthesisSlider({"eps": eps, "steps": 5, "start": start, "labels": torch.tensor([3, 5]), "n_images": n_img,
                         "show_index": 1, "models": models})
    classes = {c for box in [w.widget] for c in box._dom_classes}
    assert "advlib-synthesis" in classes and "advlib-synthesis-eps" in w.eps._dom_classes
    assert w.eps.value == 1 and "ε = <b>10</b>" in w.eps_label.value and "5/10 targets" in w.info.value
    before = w.images["standard"][0].value
    w.eps.value = 0
    assert "ε = <b>2</b>" in w.eps_label.value and w.images["standard"][0].value != before
    assert torch.equal(w.shown()["adversarial"][3], models["adversarial"]["images"][0, 3])
    w.start.value = 1
    assert "cat" not in w.info.value and "dog" in w.info.value and "0/10 targets" in w.info.value
