"""advlib.transfer and the notebook-08 steps (advlib.steps.transfer): invariants on tiny CPU inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advlib import config, transfer
from advlib.construct import construct_dataset
from advlib.steps import base
from advlib.steps import transfer as step


def tiny_profile(**kw):
    base = dict(construct_n=40, target_steps=3, target_step_size=0.2, target_eps=0.5, construct_batch=20,
                shard_size=20, batch_size=20, eval_batch=50, transfer_n=20, transfer_eps=0.5,
                transfer_archs="linear,mlp,tiny,small", autoattack_n=0, device="cpu",
                **{"sources.standard.epochs": 1})  # smoke's sets train 1 epoch
    base.update(kw)
    return config.get_profile("smoke", **base)


def test_fit_line_equals_numpy():
    x = [0.1, 0.35, 0.2, 0.8, 0.55]
    y = [0.12, 0.3, 0.22, 0.41, 0.2]
    f = transfer.fit_line(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert f["slope"] == pytest.approx(slope, abs=1e-12) and f["intercept"] == pytest.approx(intercept, abs=1e-12)
    assert f["r"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12) and f["n"] == 5
    assert transfer.fit_line([0.3], [0.2])["slope"] is None  # one point: no line
    assert transfer.fit_line([0.3, 0.3], [0.1, 0.2])["slope"] is None  # no spread in x
    assert transfer.fit_line([0.1, 0.3, None], [0.1, 0.2, 0.5])["n"] == 2  # missing values are left out


def test_summarize_rejects_a_rate_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        transfer.summarize([{"arch": "tiny", "transfer_rate": 1.5, "ddet_acc": 0.2}])


def test_write_transfer_is_atomic(tmp_path):
    path = tmp_path / "transfer.json"
    transfer.write_transfer(path, {"rows": [{"arch": "tiny"}]})
    before = path.read_text()
    with pytest.raises(TypeError):
        transfer.write_transfer(path, {"rows": [object()]})  # fails while serializing
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["transfer.json"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory with a standard source model, D_det and D_rand built from it."""
    from conftest import synthetic

    cfg = tiny_profile()
    train, test = synthetic(60, 1), synthetic(40, 2)
    run = base.Run.of(cfg, tmp_path_factory.mktemp("run"), train=train, val=synthetic(20, 3), test=test)
    source = base.source_model(run, "standard", progress=False)
    for name in ("d_det", "d_rand"):
        construct_dataset(name, model=source, images=train[0], labels=train[1], profile=cfg,
                          out_dir=run.paths.dataset(name), progress=False)
    return run, source


def test_the_source_itself_transfers_at_its_white_box_rate(tiny_run):
    run, source = tiny_run
    adv = step.examples(run, source)
    assert adv["n"] == 20 and torch.equal(adv["targets"], (adv["labels"] + 1) % 10)
    assert adv["whitebox_rate"] == pytest.approx(adv["hit"].float().mean().item())
    models = {"tiny": {"d_det": source, "d_rand": None, "standard": source}}
    result = step.results(run, models, adv)
    assert result["rows"][0]["transfer_rate"] == result["fit"]["source_whitebox_rate"] == adv["whitebox_rate"]


def test_transfer_study_writes_four_architectures(tiny_run):
    from advlib import viz

    run, source = tiny_run
    cfg, paths = run.cfg, run.paths
    adv = step.examples(run, source)
    models = step.models(run, progress=False)
    assert list(models) == ["linear", "mlp", "tiny", "small"]
    # the profile's own arch: notebook 04's D_det model folder and a standard model with seed + 1
    assert models["tiny"]["dirs"]["d_det"] == paths.model("d_det", "constructed")
    assert models["mlp"]["dirs"]["d_det"] == paths.model("d_det@mlp", "constructed")
    assert models["tiny"]["standard_seed"] == cfg.seed + 1 and models["mlp"]["standard_seed"] == cfg.seed
    result = step.results(run, models, adv, source)
    on_disk = json.loads((paths.root / "transfer.json").read_text())
    assert on_disk["rows"] == result["rows"] and len(on_disk["rows"]) >= 4
    for r in on_disk["rows"]:
        assert 0.0 <= r["transfer_rate"] <= 1.0 and r["transfer_n"] == 20 and r["transfer_eps"] == 0.5
        assert r["params"] > 0 and r["ddet_acc"] is not None and r["drand_acc"] is not None
    rates = [r["transfer_rate"] for r in on_disk["rows"]]
    for key, col in (("ddet", "ddet_acc"), ("drand", "drand_acc")):
        assert on_disk["fit"][key] == transfer.fit_line(rates, [r[col] for r in on_disk["rows"]])
    assert not list(paths.root.glob(".transfer.json.*"))  # no temporary file left behind
    assert viz.transfer_scatter(result).axes and "D_det" in step.conclusions(run, result).data


def test_conclusions_follow_the_fit():
    from advlib.steps.transfer import _transfer_text as text_of

    rows = [{"arch": a, "transfer_rate": t, "ddet_acc": d, "drand_acc": None, "transfer_eps": 0.5, "transfer_n": 100}
            for a, t, d in (("linear", 0.05, 0.12), ("mlp", 0.1, 0.15), ("tiny", 0.3, 0.25), ("small", 0.6, 0.35))]
    text = text_of(transfer.summarize(rows, whitebox_rate=0.9))
    assert "as in the paper's Figure 3" in text and "90.0%" in text and "D_rand accuracy" not in text
    flipped = [dict(r, ddet_acc=0.5 - r["ddet_acc"]) for r in rows]
    assert "does not show the paper's relation" in text_of(transfer.summarize(flipped, whitebox_rate=0.9))
    at_chance = [dict(r, ddet_acc=0.1, ddet_ci95=[0.07, 0.14]) for r in rows]
    assert "no relation to read" in text_of(transfer.summarize(at_chance, whitebox_rate=0.9))
