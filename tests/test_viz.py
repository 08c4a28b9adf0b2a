"""advlib.viz figures and the advlib.widgets explorer, on tiny CPU inputs (Agg backend)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from advlib import viz, widgets  # noqa: E402
from advlib.config import DATASETS  # noqa: E402


def _n_axes(fig) -> int:
    return len(fig.get_axes())


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(20, 3, 32, 32, generator=g), torch.arange(20) % 10


@pytest.fixture
def run_sets(images):
    """Four sets built from the 20 'originals': set rows are a permutation of (some of) them."""
    x, y = images
    out = {}
    for k, name in enumerate(DATASETS):
        src = torch.randperm(20, generator=torch.Generator().manual_seed(k))[:15]
        delta = 0.05 * torch.randn(15, 3, 32, 32, generator=torch.Generator().manual_seed(10 + k))
        imgs = (x[src] + delta).clamp(0, 1)
        labels = (y[src] + (1 if name == "d_det" else 0)) % 10
        out[name] = viz.FeatureSet(name, imgs, labels, {"source_indices": src.tolist()})
    return out


# --- figures ------------------------------------------------------------------------------------
def test_image_grid_one_panel_per_image(images):
    x, y = images
    fig = viz.image_grid(x[:11], y[:11], nrow=4, title="t")
    assert isinstance(fig, Figure)
    assert _n_axes(fig) == 11
    assert fig.get_axes()[3].get_title() == "cat"


def test_align_by_source_finds_rows_and_marks_missing():
    rows = viz.align_by_source([5, 2, 9, 2], [2, 9, 7, 5])
    assert rows.tolist() == [1, 2, -1, 0]


def test_pick_common_prefers_originals_every_set_knows(run_sets, images):
    _, y = images
    idx = viz.pick_common(y, {n: s.source_indices for n, s in run_sets.items()}, per_class=1)
    known = set.intersection(*(set(s.source_indices.tolist()) for s in run_sets.values()))
    assert [int(y[i]) for i in idx] == list(range(10))  # one per class, in class order
    for i in idx:
        common_in_class = [j for j in known if y[j] == y[i]]
        assert (i in known) or not common_in_class
        if common_in_class:
            assert i == min(common_in_class)


def test_pick_common_falls_back_to_best_coverage():
    labels = torch.tensor([0, 0, 0, 1, 1])
    idx = viz.pick_common(labels, {"a": [0, 1, 3], "b": [1, 4], "c": None}, num_classes=3)
    assert idx == [1, 3]  # class 0: #1 known to both; class 1: #3 and #4 known to one each -> lowest
    assert viz.pick_common(labels, {"a": [2]}, per_class=2, num_classes=2) == [2, 0, 3, 4]


def test_side_by_side_rows_by_columns(run_sets, images):
    x, y = images
    idx = viz.pick_common(y, {n: s.source_indices for n, s in run_sets.items()})
    fig = viz.side_by_side(x, run_sets, indices=idx, labels=y)
    assert isinstance(fig, Figure)
    assert _n_axes(fig) == len(idx) * (1 + len(run_sets))
    # the D_rand panel of row 0 shows the row built from the same original
    fs = run_sets["d_rand"]
    row = int(viz.align_by_source(fs.source_indices, idx[:1])[0])
    shown = fig.get_axes()[0 * 5 + 1 + list(run_sets).index("d_rand")].get_images()[0].get_array()
    assert np.allclose(shown, fs.images[row].permute(1, 2, 0).numpy(), atol=1e-6)


def test_side_by_side_plain_tensors_and_missing_rows(images):
    x, y = images
    sets = {"a": x[:5]}  # no source indices -> row i beside original i; originals 5.. have no row
    fig = viz.side_by_side(x, sets, indices=[1, 7], labels=y, source_indices={"a": None})
    assert _n_axes(fig) == 4
    assert fig.get_axes()[3].get_images() == []  # original 7 has no row in "a"


def test_class_means_grid(run_sets, images):
    fig = viz.class_means({"CIFAR-10": images, **{n: (s.images, s.labels) for n, s in run_sets.items()}})
    assert _n_axes(fig) == 5 * 10


def test_perturbation_maps_three_rows_and_factor_in_title(images):
    x, y = images
    xa = (x[:4] + 0.01).clamp(0, 1)
    fig = viz.perturbation_maps(x[:4], xa, labels=y[:4], targets=(y[:4] + 1) % 10)
    assert _n_axes(fig) == 3 * 4
    assert "×" in fig.get_axes()[8].get_ylabel() or "×" in fig._suptitle.get_text()
    assert "‖δ‖₂" in fig.get_axes()[0].get_title()
    fig = viz.perturbation_maps(x[:2], xa[:2], magnify=10)
    assert "10" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="shape"):
        viz.perturbation_maps(x[:2], xa[:3])


def test_perturbation_pairs_match_sources(run_sets, images):
    fs = run_sets["d_det"]
    p = viz.perturbation_pairs(fs, images, n=3)
    src = fs.source_indices[:3]
    assert torch.equal(p["x"], images[0][src]) and torch.equal(p["x_adv"], fs.images[:3])
    assert torch.equal(p["targets"], fs.labels[:3]) and torch.equal(p["labels"], images[1][src])
    assert _n_axes(viz.perturbation_maps(**p)) == 9


def test_spectrum_of_sinusoid_peaks_at_its_frequency():
    f0 = 8 / 32  # cycles per pixel
    col = torch.cos(2 * math.pi * f0 * torch.arange(32.0))
    x = 0.5 + 0.4 * col.expand(2, 3, 32, 32)
    freq, power = viz.radial_power_spectrum(x)
    assert freq[0] == pytest.approx(1 / 32) and freq[-1] == pytest.approx(round(16 * math.sqrt(2)) / 32)
    assert freq[int(np.argmax(power))] == pytest.approx(f0)
    assert power[np.argmax(power)] > 1e3 * np.delete(power, np.argmax(power)).max()


def test_white_noise_spectrum_is_flat():
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    freq, power = viz.radial_power_spectrum(x)
    inner = power[freq <= 0.5]  # full rings only
    assert inner.max() / inner.min() < 1.3
    assert np.mean(inner) == pytest.approx(1 / 12, rel=0.05)  # variance of U(0,1), orthonormal FFT
    slope = np.polyfit(np.log(freq[freq <= 0.5]), np.log(inner), 1)[0]
    assert abs(slope) < 0.1


def test_spectra_figure_panels(images, run_sets):
    sets = {"CIFAR-10": images[0], "d_rand": run_sets["d_rand"].images}
    assert _n_axes(viz.spectra_figure(sets)) == 1
    assert _n_axes(viz.spectra_figure(sets, relative_to="CIFAR-10")) == 2
    assert _n_axes(viz.spectra_figure(sets, relative_to="CIFAR-10", deltas={"d_rand": 0.01 * images[0]})) == 3
    with pytest.raises(ValueError, match="relative_to"):
        viz.spectra_figure(sets, relative_to="nope")


def test_pixel_stats_figure(images, run_sets):
    fig = viz.pixel_stats_figure({"CIFAR-10": images[0], **run_sets})
    assert _n_axes(fig) == 3
    assert len(fig.get_axes()[1].patches) == 3 * 5  # 3 channels x 5 sets


RESULTS = {
    "profile": "smoke", "seed": 0,
    "rows": [
        {"dataset": "standard", "source": "constructed", "clean_acc": 0.8,
         "robust_acc": {"0.0": 0.8, "0.25": 0.3, "1.0": 0.01}, "paper": {"clean_acc": 0.95, "robust_acc": {"0.25": 0.045}}},
        {"dataset": "d_robust", "source": "constructed", "clean_acc": 0.6,
         "robust_acc": {"0.25": 0.4, "1.0": 0.1}, "paper": {"clean_acc": 0.84, "robust_acc": {"0.25": 0.48}}},
        {"dataset": "d_rand", "source": "constructed", "clean_acc": 0.3,
         "robust_acc": {"0.25": 0.05}, "paper": {"clean_acc": 0.63, "robust_acc": {"0.25": None}}},
    ],
}


def test_accuracy_vs_eps_lines_and_paper_markers():
    fig = viz.accuracy_vs_eps(RESULTS)
    ax = fig.get_axes()[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]
    assert len(lines) == 3
    assert list(lines[0].get_xdata()) == [0.0, 0.25, 1.0]
    assert list(lines[1].get_xdata()) == [0.0, 0.25, 1.0]  # clean accuracy as eps 0
    markers = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1 and ln.get_marker() == "D"]
    assert any(ln.get_xdata()[0] == 0.25 and ln.get_ydata()[0] == pytest.approx(0.48) for ln in markers)
    assert not any(ln.get_xdata()[0] == 0.25 and ln.get_ydata()[0] is None for ln in markers)


def test_results_bars_ours_vs_paper():
    fig = viz.results_bars(RESULTS)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert len(axes[0].patches) == 2 * 3 and len(axes[1].patches) == 2 * 3
    assert any(t.get_text() == "n/a" for t in axes[1].texts)  # d_rand has no paper robust number


def test_training_curves():
    h = {"loss": [2.0, 1.5, 1.2], "train_acc": [0.2, 0.4, 0.5], "eval_acc": [0.2, 0.35, 0.45]}
    fig = viz.training_curves({"d_robust": h, "d_rand": {"loss": [2.1], "train_acc": [0.1], "eval_acc": []}})
    ax_l, ax_a = fig.get_axes()
    assert len(ax_l.get_lines()) == 2 and len(ax_a.get_lines()) == 3


def test_construction_curves_tolerates_missing():
    fig = viz.construction_curves({"d_robust": {"loss_curve": [1.0, 0.5, 0.2]}, "d_rand": {"hit_rate": 0.9}})
    ax = fig.get_axes()[0]
    assert len(ax.get_lines()) == 1 and "d_rand" in ax.get_title()


# --- saving ---------------------------------------------------------------------------------------
def test_save_figure_writes_png_and_pdf_atomically(tmp_path, images):
    fig = viz.image_grid(images[0][:4])
    out = viz.save_figure(fig, "fig_test", tmp_path / "figs")
    assert [p.name for p in out] == ["fig_test.png", "fig_test.pdf"]
    assert out[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out[1].read_bytes()[:5] == b"%PDF-"
    assert all(p.stat().st_size > 1000 for p in out)
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["fig_test.pdf", "fig_test.png"]  # no temp files
    viz.save_figure(fig, "fig_test", tmp_path / "figs")  # overwrite in place, still no leftovers
    assert len(list((tmp_path / "figs").iterdir())) == 2


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "fig.png", " ", None])
def test_save_figure_rejects_bad_names(tmp_path, images, bad):
    fig = viz.image_grid(images[0][:1])
    with pytest.raises(ValueError, match="name"):
        viz.save_figure(fig, bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_failure_leaves_no_temp(tmp_path, images, monkeypatch):
    fig = viz.image_grid(images[0][:1])

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        viz.save_figure(fig, "fig_x", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_sets_reads_meta(tmp_path, run_sets):
    from advlib.data import save_feature_dataset
    from advlib.paths import RunPaths

    paths = RunPaths.of(tmp_path)
    fs = run_sets["d_rand"]
    save_feature_dataset(paths.dataset("d_rand"), fs.images, fs.labels, meta=fs.meta)
    sets = viz.load_sets(paths)
    assert list(sets) == ["d_rand"]
    assert torch.equal(sets["d_rand"].source_indices, fs.source_indices)
    assert torch.allclose(sets["d_rand"].images, fs.images)


# --- explorer -------------------------------------------------------------------------------------
class _Fixed(nn.Module):
    """Predicts class 3 with high confidence, whatever the input."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, 3] = 5.0
        return logits + self.w


def test_explorer_slider_changes_image(run_sets, images):
    ex = widgets.Explorer(run_sets, originals=images)
    assert "advlib-explorer" in ex.widget._dom_classes
    assert ex.slider.max == len(run_sets["d_robust"]) - 1
    before = ex.image.value
    orig_before = ex.original.value
    ex.slider.value = 1
    assert ex.image.value != before
    assert ex.original.value != orig_before
    assert ex.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "×" in ex.captions[2].value  # perturbation shown with its magnification
    assert "‖δ‖₂ = " in ex.info.value


def test_explorer_class_filter(run_sets, images):
    ex = widgets.Explorer(run_sets, originals=images)
    ex.dataset.value = "d_det"
    ex.klass.value = 4
    fs = run_sets["d_det"]
    expected = int((fs.labels == 4).sum())
    assert ex.slider.max == max(expected - 1, 0)
    for i in range(expected):
        ex.slider.value = i
        name, row = ex.current()
        assert name == "d_det" and int(fs.labels[row]) == 4
    ex.klass.value = widgets.ALL
    assert ex.slider.max == len(fs) - 1


def test_explorer_shows_model_predictions(run_sets, images):
    model = _Fixed().train()
    ex = widgets.Explorer(run_sets, originals=images, models={"fixed": model})
    html = ex.predictions.value
    assert "<table" in html and "fixed" in html and "cat" in html and "on the original" in html
    assert model.training  # mode restored
    assert widgets.Explorer(run_sets).predictions.value == ""


def test_explorer_without_originals(images):
    ex = widgets.Explorer({"d_rand": images})
    assert "no originals" in ex.captions[1].value
    assert isinstance(widgets.explorer({"d_rand": images}), type(ex.widget))


def test_figures_render_in_notebooks(images):
    fig = viz.image_grid(images[0][:2])
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # IPython shows a plain Figure through this


def test_linked_and_perturbations(run_sets, images):
    sets = dict(run_sets, d_rand=(run_sets["d_rand"].images, run_sets["d_rand"].labels))  # a bare pair: not linked
    assert viz.linked(sets) == ["d_det"]
    d = viz.perturbations(sets, images, n=4)
    fs = run_sets["d_det"]
    assert list(d) == ["d_det"]
    assert torch.allclose(d["d_det"], fs.images[:4] - images[0][fs.source_indices[:4]])


def test_explorer_from_run_dir(tmp_path):
    from advlib.data import load_cifar10, save_feature_dataset
    from advlib.paths import RunPaths

    x, y = load_cifar10("sample", "train", n=40, seed=3)
    paths = RunPaths.of(tmp_path)
    src = torch.arange(0, 40, 2)
    save_feature_dataset(paths.dataset("d_det"), x[src], (y[src] + 1) % 10, meta={"source_indices": src.tolist()})
    assert widgets.load_models(paths) == {}
    ex = widgets.Explorer.from_run_dir(tmp_path, cifar_source="sample", n_train=40, seed=3)
    assert list(ex.sets) == ["d_det"]
    ex.slider.value = 3
    assert "original #6" in ex.captions[1].value
    assert "‖δ‖₂ = 0.000" in ex.info.value  # this test set is the originals, unperturbed
    with pytest.raises(FileNotFoundError, match="no released datasets"):
        widgets.Explorer.from_run_dir(tmp_path, source="released")


def test_load_models_from_run_dir(tmp_path, run_sets, images):
    import json

    from advlib.models import build_model
    from advlib.paths import RunPaths

    paths = RunPaths.of(tmp_path)
    d = paths.model("d_rand", "constructed")
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"arch": "tiny"}))
    torch.save({"model": build_model("tiny").state_dict()}, d / "checkpoint.pt")
    paths.model("d_det", "constructed").mkdir()  # no checkpoint: not a model
    models = widgets.load_models(paths)
    assert list(models) == ["d_rand"]
    assert widgets.load_models(paths, "released") == {}, "released and constructed models live apart"
    ex = widgets.Explorer(run_sets, images, models=models)
    assert "d_rand" in ex.predictions.value and "%" in ex.predictions.value


def test_explorer_shows_start_image_for_representation_matched_sets(run_sets, images):
    """D_R / D_NR rows are not perturbations of their matched original: show the start image."""
    x, y = images
    fs = run_sets["d_robust"]
    start = (fs.source_indices + 3) % 20
    sets = {"d_robust": viz.FeatureSet("d_robust", fs.images, fs.labels,
                                       {"source_indices": fs.source_indices.tolist(), "start_indices": start.tolist()}),
            "d_rand": run_sets["d_rand"]}
    ex = widgets.Explorer(sets, originals=images)
    ex.dataset.value = "d_robust"
    row = ex.current()[1]
    assert ex.perturbation.value == widgets.to_png(x[int(start[row])], ex.scale)
    assert ex.original.value == widgets.to_png(x[int(fs.source_indices[row])], ex.scale)
    assert f"started from #{int(start[row])}" in ex.captions[2].value and "‖δ‖₂" not in ex.info.value
    ex.dataset.value = "d_rand"  # no start indices: the magnified difference as before
    assert "×" in ex.captions[2].value and "‖δ‖₂ = " in ex.info.value


# --- the three figure fixes ----------------------------------------------------------------------------
def test_perturbation_figure_is_titled_with_its_dataset():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    figs = {name: viz.perturbation_maps(x, (x + 0.01).clamp(0, 1), title=name) for name in ("d_rand", "d_det")}
    titles = {name: f._suptitle.get_text() for name, f in figs.items()}
    assert titles["d_rand"].startswith("d_rand: ") and titles["d_det"].startswith("d_det: ")
    assert titles["d_rand"] != titles["d_det"]


def test_construction_curve_is_drawn_at_the_logged_steps():
    meta = {"loss_curve": [4.0, 2.0, 1.0, 0.5], "loss_steps": [0, 50, 100, 150]}
    fig = viz.construction_curves({"d_robust": meta})
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 50, 100, 150], "x is the step number, not the index of the log point"
    assert list(line.get_ydata()) == meta["loss_curve"]


def test_accuracy_vs_eps_starts_at_the_tables_clean_accuracy():
    row = {"dataset": "standard", "source": "cifar10", "clean_acc": 0.62, "subset_clean_acc": 0.60,
           "robust_acc": {"0.0": 0.60, "0.25": 0.3, "0.5": 0.1}}
    fig = viz.accuracy_vs_eps({"rows": [row]})
    line = fig.axes[0].get_lines()[0]
    pts = dict(zip(line.get_xdata(), line.get_ydata(), strict=True))
    assert pts[0.0] == 0.62, "eps = 0 is clean_acc on all test images, as in the table"
    assert pts[0.25] == 0.3 and pts[0.5] == 0.1


def test_training_curves_plot_only_the_evaluated_epochs():
    h = {"loss": [2.0, 1.5, 1.2, 1.0], "train_acc": [0.2, 0.4, 0.5, 0.6], "eval_acc": [None, 0.35, None, 0.45]}
    ax_a = viz.training_curves({"d_det": h}).get_axes()[1]
    ev = [ln for ln in ax_a.get_lines() if ln.get_label().endswith("eval")][0]
    assert list(ev.get_xdata()) == [2, 4] and list(ev.get_ydata()) == [0.35, 0.45]
