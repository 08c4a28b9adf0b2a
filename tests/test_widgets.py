"""The notebooks' widgets without a browser (advlib.widgets): the attack explorer, the construction
player, the dataset explorer's per-image facts and filters, and the snapshots of
``invert_representation`` that the player steps through. Tiny models and tensors on the CPU."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from advlib import attacks, widgets  # noqa: E402
from advlib.attacks import invert_representation, representation_distance  # noqa: E402
from advlib.models import build_model  # noqa: E402
from advlib.viz import FeatureSet  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 32, 32, generator=g), torch.arange(12) % 10


@pytest.fixture(scope="module")
def models():
    return {"standard": _tiny(0), "robust": _tiny(1)}


class _ByMean(nn.Module):
    """Predicts class round(10·mean(x) − 0.5): an image filled with (c + 0.5)/10 is class c."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def features(self, x):
        return 10 * x.flatten(1).mean(1, keepdim=True) - 0.5

    def forward(self, x):
        return -self.w * (self.features(x) - torch.arange(10.0)) ** 2


def _filled(classes) -> torch.Tensor:
    return torch.stack([torch.full((3, 8, 8), (int(c) + 0.5) / 10) for c in classes])


# --- invert_representation(snapshots=k) ------------------------------------------------------------
def test_snapshots_record_the_trajectory(data):
    model = _tiny(0)
    x, _ = data
    target, start = x[:3], x[3:6]
    out = invert_representation(model, target, start, steps=10, step_size=0.3, snapshots=5)
    assert len(out) == 3
    x_r, losses, snaps = out
    assert snaps["steps"] == [0, 2, 4, 6, 8, 10]
    assert snaps["images"].shape == (6, 3, 3, 32, 32) and snaps["images"].device.type == "cpu"
    assert snaps["distance"].shape == (6, 3)
    assert torch.equal(snaps["images"][0], start)
    assert torch.equal(snaps["images"][-1], x_r)
    for i in range(6):
        want = representation_distance(model, snaps["images"][i], target, relative=False)
        assert torch.allclose(snaps["distance"][i], want, rtol=1e-4, atol=1e-5), i
    assert snaps["distance"][-1].mean().item() == pytest.approx(losses[-1], rel=1e-5)
    # the same descent without snapshots: two values, the same result
    x_plain, losses_plain = invert_representation(model, target, start, steps=10, step_size=0.3)
    assert torch.equal(x_plain, x_r) and losses_plain == losses


def test_snapshots_capped_at_steps_and_every_step(data):
    x, _ = data
    _, _, snaps = invert_representation(_tiny(0), x[:1], x[1:2], steps=3, step_size=0.2, snapshots=50)
    assert snaps["steps"] == [0, 1, 2, 3] and snaps["images"].shape[0] == 4
    _, _, snaps = invert_representation(_tiny(0), x[:1], x[1:2], steps=7, step_size=0.2, snapshots=3)
    assert snaps["steps"] == [0, 2, 4, 7]


# --- AttackExplorer --------------------------------------------------------------------------------
def _norm_shown(html: str) -> float:
    return float(re.search(r"‖δ‖₂ = <b>([0-9.]+)</b>", html).group(1))


def test_attack_explorer_runs_pgd_per_model_and_answers_its_sliders(data, models):
    x, y = data
    ax = widgets.AttackExplorer(models, x, y, eps_max=1.0, steps_max=20, eps=0.25, steps=5)
    assert "advlib-attack-explorer" in ax.widget._dom_classes
    for c, css in ((ax.klass, "advlib-class"), (ax.index, "advlib-index"), (ax.eps, "advlib-eps"),
                   (ax.steps, "advlib-steps"), (ax.target, "advlib-target")):
        assert css in c._dom_classes
    assert set(ax.adv) == set(models) and ax.attacks_run == 2
    before = {n: ax.adv[n].value for n in models}
    for n in models:
        assert before[n][:8] == PNG
        assert "→" in ax.info[n].value and "prediction" in ax.info[n].value  # before → after
        assert _norm_shown(ax.info[n].value) <= 0.25 + 1e-4
    ax.eps.value = 1.0
    assert ax.attacks_run == 4
    for n in models:
        assert ax.adv[n].value != before[n]
        assert _norm_shown(ax.info[n].value) <= 1.0 + 1e-4
        r = ax.result()[n]
        assert float((r["x_adv"] - x[ax.row()]).norm()) <= 1.0 + 1e-5
    assert "magnified ×" in ax.summary.value and "5 step(s) of 0.5000" in ax.summary.value
    # the attack is deterministic (no random start) and cached: back to 0.25 runs nothing new
    ax.eps.value = 0.25
    assert ax.attacks_run == 4 and all(ax.adv[n].value == before[n] for n in models)
    ax.steps.value = 10
    assert ax.attacks_run == 6 and "10 step(s) of 0.0625" in ax.summary.value


def test_attack_explorer_untargeted_is_pgd_with_the_stated_settings(data, models):
    x, y = data
    ax = widgets.AttackExplorer(models, x, y, eps=0.5, steps=4)
    ax.index.value = 3
    want = attacks.pgd(models["robust"], x[3:4], y[3:4], eps=0.5, step_size=2.5 * 0.5 / 4, steps=4,
                       random_start=False)
    assert torch.equal(ax.result()["robust"]["x_adv"], want[0])
    assert "#3" in ax.caption.value


def test_attack_explorer_class_dropdown_and_targeted_mode(data, models):
    x, y = data
    ax = widgets.AttackExplorer(models, x, y, eps=0.5, steps=3)
    ax.klass.value = 1  # rows 1 and 11
    assert ax.index.max == 1 and ax.row() == 1
    ax.index.value = 1
    assert ax.row() == 11
    ax.target.value = 7
    assert "targeted at horse" in ax.summary.value
    for n, r in ax.result().items():
        assert "target horse" in ax.info[n].value
        want = attacks.pgd(models[n], x[11:12], torch.tensor([7]), eps=0.5, step_size=2.5 * 0.5 / 3, steps=3,
                           targeted=True, random_start=False)
        assert torch.equal(r["x_adv"], want[0])


def test_attack_explorer_eps_zero_leaves_the_image(data, models):
    x, y = data
    ax = widgets.AttackExplorer(models, x, y, eps=0.0, steps=2)
    for n in models:
        assert _norm_shown(ax.info[n].value) == 0.0
        assert ax.adv[n].value == ax.image.value


# --- ConstructionPlayer --------------------------------------------------------------------------
def test_player_steps_through_cached_snapshots(data, models, monkeypatch):
    x, y = data
    calls = []
    real = attacks.invert_representation

    def counting(*args, **kwargs):
        calls.append(kwargs.get("snapshots"))
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "invert_representation", counting)
    pl = widgets.ConstructionPlayer({"D_R": models["robust"], "D_NR": models["standard"]}, x, y, steps=6,
                                    step_size=0.3)
    assert "advlib-construction-player" in pl.widget._dom_classes
    assert calls == [6, 6] and pl.runs == 2 and pl.step.max == 6 and pl.step.value == 0
    tr = pl.trajectory(0)
    start = tr["start"]
    assert int(y[start]) != int(y[0]) and f"start: #{start}" in pl.captions[1].value
    for n in ("D_R", "D_NR"):  # step 0 is the start image itself
        assert pl.current[n].value == widgets.to_png(x[start], pl.scale)
        assert pl.curve[n].value[:8] == PNG
    seen = {n: [pl.current[n].value] for n in ("D_R", "D_NR")}
    curves = [pl.curve["D_R"].value]
    for s in range(1, 7):
        pl.step.value = s
        for n in ("D_R", "D_NR"):
            seen[n].append(pl.current[n].value)
            d = tr["models"][n]["distance"][s]
            assert f"‖g(x_t) − g(x)‖₂ = <b>{float(d):.4f}</b>" in pl.info[n].value
            assert f"step <b>{s}</b> of 6" in pl.info[n].value
        curves.append(pl.curve["D_R"].value)
    assert calls == [6, 6], "the step slider recomputed the descent"
    assert len(set(seen["D_R"])) > 1 and len(set(curves)) == 7  # images move, the marker moves
    assert torch.equal(tr["models"]["D_R"]["images"][-1],
                       real(models["robust"], x[:1], x[start:start + 1], steps=6, step_size=0.3)[0][0])
    pl.index.value = 4  # a new image: one descent per model, once
    assert calls == [6, 6, 6, 6] and pl.runs == 4
    before = pl.target_image.value
    pl.index.value = 0  # back: from the cache
    assert calls == [6, 6, 6, 6] and pl.target_image.value != before


def test_player_start_choice_is_seeded_and_another_class(data):
    _, y = data
    from advlib.widgets.player import start_index

    for row in range(len(y)):
        j = start_index(y, row, seed=3)
        assert j == start_index(y, row, seed=3) and int(y[j]) != int(y[row])
    assert len({start_index(y, 0, seed=s) for s in range(20)}) > 1


def test_player_fewer_snapshots(data, models):
    x, y = data
    pl = widgets.ConstructionPlayer({"D_R": models["robust"]}, x, y, steps=8, step_size=0.3, snapshots=2)
    assert pl.step.max == 2 and pl.trajectory(0)["models"]["D_R"]["steps"] == [0, 4, 8]
    pl.step.value = 2
    assert "step <b>8</b> of 8" in pl.info["D_R"].value


# --- Explorer: per-image facts and filters ---------------------------------------------------------
@pytest.fixture
def linked():
    """Originals of classes 0..9 twice, a targeted set and a matched set built from them."""
    orig_y = torch.arange(20) % 10
    originals = (_filled(orig_y), orig_y)
    src = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    targets = torch.tensor([0, 5, 2, 9, 9, 1, 6, 0])  # rows 0, 2, 6 target their own class
    looks = torch.tensor([0, 5, 3, 9, 1, 1, 2, 2])  # what _ByMean predicts: hits at rows 0, 1, 3, 5
    rand = FeatureSet("d_rand", _filled(looks), targets,
                      {"source_indices": src.tolist(), "targets": targets.tolist(), "hit_rate": 0.5,
                       "source_model": {"which": "standard"}})
    start = (src + 11) % 20  # start class = label + 1: another class, except where we say
    start[2] = 12  # class 2 = the label of row 2
    labels = orig_y[src]
    robust = FeatureSet("d_robust", _filled(torch.tensor([0, 1, 2, 4, 4, 4, 4, 4])), labels,
                        {"source_indices": src.tolist(), "start_indices": start.tolist(),
                         "algorithm": "representation_matching", "final_rel_distance": {"mean": 0.3}})
    return originals, rand, robust


def test_explorer_filters_on_attack_hits_with_the_source_model(linked):
    originals, rand, robust = linked
    model = _ByMean()
    ex = widgets.Explorer({"d_rand": rand, "d_robust": robust}, originals, models={"standard": model, "robust": model})
    assert "advlib-filter" in ex.filter._dom_classes and "advlib-facts" in ex.facts_html._dom_classes
    keys = [k for _, k in ex.filter.options]
    assert keys == ["all", "hit", "miss", "target_is_label", "target_not_label"]
    ex.filter.value = "hit"
    assert ex._rows.tolist() == [0, 1, 3, 5]
    assert ex.facts["d_rand"].model_calls == 1
    rows = []
    for i in range(ex.slider.max + 1):
        ex.slider.value = i
        rows.append(ex.current()[1])
        assert "attack hit its target: <b>yes</b>" in ex.facts_html.value
    assert rows == [0, 1, 3, 5]
    ex.filter.value = "miss"
    assert ex._rows.tolist() == [2, 4, 6, 7] and "attack hit its target: <b>no</b>" in ex.facts_html.value
    ex.filter.value = "target_is_label"
    assert ex._rows.tolist() == [0, 2, 6]
    assert "target = true label: <b>yes</b>" in ex.facts_html.value
    ex.klass.value = 2  # class and filter together
    assert ex._rows.tolist() == [2]
    ex.klass.value = widgets.ALL
    ex.filter.value = "target_not_label"
    assert ex._rows.tolist() == [1, 3, 4, 5, 7]
    assert "target class: <b>dog</b>" in ex.facts_html.value  # row 1 targets 5
    assert "true class of the original: <b>automobile</b>" in ex.facts_html.value
    assert ex.facts["d_rand"].model_calls == 1, "the hits are computed once"
    ex.filter.value = "all"
    image_before = ex.image.value
    ex.filter.value = "hit"
    ex.slider.value = 1
    assert ex.image.value != image_before

    ex.dataset.value = "d_robust"
    keys = [k for _, k in ex.filter.options]
    assert keys == ["all", "agree", "disagree", "start_same", "start_other"] and ex.filter.value == "all"
    ex.filter.value = "agree"  # _ByMean predicts the label on rows 0, 1, 2, 4
    assert ex._rows.tolist() == [0, 1, 2, 4]
    ex.filter.value = "start_same"
    assert ex._rows.tolist() == [2]
    assert "started from training image #12" in ex.facts_html.value
    assert "(recomputed with the robust model)" in ex.facts_html.value


def test_explorer_uses_per_row_facts_recorded_in_meta(linked):
    originals, rand, robust = linked
    hit = [True, False, False, True, False, False, False, True]
    rand.meta.update(hit=hit, orig_labels=[9] * 8)
    robust.meta["rel_distance"] = [0.5] * 8
    ex = widgets.Explorer({"d_rand": rand, "d_robust": robust}, originals)  # no models: recorded facts only
    assert dict(ex.filter.options)["attack hit its target (3)"] == "hit"
    ex.filter.value = "hit"
    assert ex._rows.tolist() == [0, 3, 7] and "(meta.json)" in ex.facts_html.value
    ex.filter.value = "target_is_label"  # orig_labels from meta.json: class 9
    assert ex._rows.tolist() == [3, 4]
    ex.dataset.value = "d_robust"
    assert "= <b>0.5000</b> <i>(meta.json)</i>" in ex.facts_html.value
    assert [k for _, k in ex.filter.options] == ["all", "start_same", "start_other"]  # no model, no agreement


def test_released_sets_get_no_source_model(linked):
    """A set of unknown origin (no algorithm, no source model in its meta) is not checked against this
    run's models: the released sets were built with the authors' models."""
    _, rand, _ = linked
    released = FeatureSet("d_rand", rand.images, rand.labels, {"targets": rand.meta["targets"]})
    ex = widgets.Explorer({"d_rand": released}, models={"standard": _ByMean()})
    assert ex.facts["d_rand"].model is None and [k for _, k in ex.filter.options] == ["all"]
    ex = widgets.Explorer({"d_rand": released}, models={"standard": _ByMean()}, source_models={"d_rand": _ByMean()})
    assert [k for _, k in ex.filter.options] == ["all", "hit", "miss"]


def test_explorer_without_facts_offers_only_all(linked):
    _, rand, _ = linked
    ex = widgets.Explorer({"d_rand": (rand.images, rand.labels)})
    assert [k for _, k in ex.filter.options] == ["all"] and ex.facts_html.value == ""
    ex = widgets.Explorer({"d_rand": rand})  # targets but no model and no originals
    assert [k for _, k in ex.filter.options] == ["all"]
    assert "not recorded in meta.json" in ex.facts_html.value and "target class" in ex.facts_html.value
    with pytest.raises(ValueError, match="needs facts"):
        ex.facts["d_rand"].mask("hit")


def test_the_package_keeps_the_old_names():
    for name in ("Explorer", "explorer", "load_models", "to_png", "predict", "from_run_dir", "ALL",
                 "AttackExplorer", "ConstructionPlayer"):
        assert hasattr(widgets, name), name
