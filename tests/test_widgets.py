"""The notebooks' widgets without a browser (advlib.widgets): the dataset explorer's per-image facts
and filters, and the snapshots of ``invert_representation``. Tiny models and tensors on the CPU."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from advlib import widgets  # noqa: E402
from advlib.attacks import invert_representation, representation_distance  # noqa: E402
from advlib.models import build_model  # noqa: E402
from advlib.viz import FeatureSet  # noqa: E402


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 32, 32, generator=g), torch.arange(12) % 10


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
    for name in ("Explorer", "explorer", "load_models", "to_png", "predict", "from_run_dir", "ALL"):
        assert hasattr(widgets, name), name
