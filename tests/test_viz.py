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
    # the paper's markers are spread sideways (by under 5% of the axis) so that none hides another
    assert any(abs(ln.get_xdata()[0] - 0.25) < 0.05 and ln.get_ydata()[0] == pytest.approx(0.48) for ln in markers)
    at_zero = sorted(ln.get_xdata()[0] for ln in markers if abs(ln.get_xdata()[0]) < 0.05)
    assert len(at_zero) == 3 and len(set(at_zero)) == 3, "paper markers at eps = 0 do not sit on one another"
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
    ax_l, ax_t, ax_v = fig.get_axes()  # loss, accuracy on its training set, validation accuracy
    assert len(ax_l.get_lines()) == 2 and len(ax_t.get_lines()) == 2 and len(ax_v.get_lines()) == 1


def _footer(fig) -> str:
    """The footer's notes and stamp as one line (it is wrapped to the figure's width)."""
    t = getattr(fig, "_supxlabel", None)
    return t.get_text().replace("\n", " ") if t is not None else ""


def test_construction_curves_tolerates_missing():
    fig = viz.construction_curves({"d_robust": {"loss_curve": [1.0, 0.5, 0.2]}, "d_rand": {"hit_rate": 0.9}})
    ax = fig.get_axes()[0]
    assert len(ax.get_lines()) == 2  # the curve, and the triangle saying it still falls at its end
    assert "No curve: D_rand" in _footer(fig)


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
    assert titles["d_rand"].startswith("D_rand: ") and titles["d_det"].startswith("D_det: ")  # the paper's names
    assert titles["d_rand"] != titles["d_det"]


def test_construction_curve_is_drawn_at_the_logged_steps():
    meta = {"loss_curve": [4.0, 2.0, 1.0, 0.5], "loss_steps": [0, 50, 100, 150]}
    fig = viz.construction_curves({"d_robust": meta})
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "curve:d_robust:loss_curve")
    assert list(line.get_xdata()) == [0, 50, 100, 150], "x is the step number, not the index of the log point"
    # relative to step 0: D_R and D_NR match two models' representations, of different scales
    assert list(line.get_ydata()) == [1.0, 0.5, 0.25, 0.125]


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
    ax_v = viz.training_curves({"d_det": h}).get_axes()[2]
    ev = [ln for ln in ax_v.get_lines() if ln.get_gid() == "d_det:eval_acc"][0]
    assert list(ev.get_xdata()) == [2, 4] and list(ev.get_ydata()) == [0.35, 0.45]


# --- the shared style, the paper's names, percent axes, intervals and the stamp ------------------------------
import re  # noqa: E402

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from advlib.evaluate import pack_mask  # noqa: E402
from advlib.viz import style  # noqa: E402

INTERNAL = re.compile(r"\b(d_[a-z_]+|standard_targeted|control_[a-z]+)\b")  # row keys, never shown


def _drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig, fig.canvas.get_renderer()


def _texts(fig) -> list[str]:
    """Every string a reader sees: titles, labels, tick labels, legends (axes and figure), figure texts."""
    _drawn(fig)
    out = [t.get_text() for t in fig.texts]
    for ax in fig.get_axes():
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        out += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return [t for t in out if t]


def _legend_texts(fig) -> list[str]:
    out = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    return out + [t.get_text() for ax in fig.get_axes() if ax.get_legend() for t in ax.get_legend().get_texts()]


def _masks(acc: float, n: int, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(n, dtype=torch.bool)
    m[torch.randperm(n, generator=g)[: round(acc * n)]] = True
    return pack_mask(m)


def _row(dataset, origin, seed, clean, robust, *, n=200, key="origin", eps="0.25"):
    """A results.json row with per-image outcomes (clean and at ``eps``)."""
    return {"dataset": dataset, key: origin, "seed": seed, "clean_n": n, "clean_acc": clean,
            "robust_acc": {eps: robust}, "masks": {"clean": _masks(clean, n, seed), eps: _masks(robust, n, 100 + seed)},
            "attack_desc": "PGD-20 (cross-entropy)", "paper": {"clean_acc": 0.84, "robust_acc": {"0.25": 0.48}}}


SEEDED = {
    "profile": "cpu", "seed": 0, "machine": {"commit": "2afc437c02371af331355e27a93ac5236469d183"},
    "config": {"cifar_source": "outside the repository: cifar10-jpeg.zip", "n_test": 200},
    "rows": [_row("standard", "cifar10", 0, 0.7, 0.1)]
    + [_row("d_robust", "constructed", s, c, r) for s, c, r in ((0, 0.45, 0.25), (1, 0.40, 0.20), (2, 0.50, 0.30))]
    + [_row("control_rnr", "cifar10", s, c, r, key="source") for s, c, r in ((0, 0.6, 0.05), (1, 0.62, 0.04))]
    + [_row("d_rand", "constructed", s, c, r) for s, c, r in ((0, 0.30, 0.0), (1, 0.40, 0.0), (2, 0.35, 0.0))]
    + [_row("control_rand", "cifar10", 0, 0.55, 0.02), _row("d_other", "constructed", 0, 0.2, 0.0)],
}


def test_stamp_text_names_profile_commit_data_and_n():
    assert viz.stamp_text(SEEDED) == ("profile cpu · commit 2afc437 · a local copy of CIFAR-10 (JPEGs, zip) · "
                                      "n = 200 test images")
    assert viz.stamp_text({"profile": "smoke", "config": {"cifar_source": "sample"}}) == "profile smoke · the embedded sample"
    from advlib.config import get_profile

    text = viz.stamp_text(get_profile("smoke"), commit="abcdef0123+dirty")
    assert text.startswith("profile smoke · commit abcdef0+dirty · the embedded sample")
    transfer = {"profile": "cpu", "machine": {"commit": "3b5747887e"}, "settings": {"cifar_source": "torchvision", "n_test": 2000}}
    assert viz.stamp_text(transfer) == "profile cpu · commit 3b57478 · torchvision's CIFAR-10 · n = 2,000 test images"
    transfer["settings"]["cifar_source"] = "the embedded sample"  # transfer.json stores the rendered name
    assert viz.stamp_text(transfer) == "profile cpu · commit 3b57478 · the embedded sample · n = 2,000 test images"


def test_every_figure_saved_with_a_stamp_carries_it(tmp_path, images):
    x, y = images
    figs = [viz.image_grid(x[:4], y[:4]), viz.training_curves({"d_det": {"loss": [2.0, 1.0]}}),
            viz.accuracy_vs_eps({"rows": SEEDED["rows"]}), viz.pixel_stats_figure({"CIFAR-10": x})]
    for k, fig in enumerate(figs):
        out = viz.save_figure(fig, f"fig_{k}", tmp_path, stamp="profile test · commit 1234567")
        assert [p.suffix for p in out] == [".png", ".pdf"]
        assert viz.get_stamp(fig) == "profile test · commit 1234567"
        fig, r = _drawn(fig)
        shown = [t for t in fig.texts if "profile test · commit 1234567" in t.get_text()]
        assert len(shown) == 1, "the stamp is one text in the figure"
        box = shown[0].get_window_extent(r)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width + 1, "the stamp lies inside the figure"
    # a figure drawn from a results dict stamps itself; a stamp given on saving replaces it
    fig = viz.results_bars(SEEDED)
    assert viz.get_stamp(fig) == viz.stamp_text(SEEDED) and viz.stamp_text(SEEDED) in _footer(fig)
    viz.save_figure(fig, "fig_bars", tmp_path, formats=("png",), stamp={"profile": "other"})
    assert viz.get_stamp(fig) == "profile other" and viz.stamp_text(SEEDED) not in _footer(fig)
    assert viz.get_stamp(viz.results_bars(SEEDED, stamp=False)) is None


def test_legends_and_labels_use_the_papers_names(images, run_sets):
    x, y = images
    hist = {"loss": [2.0, 1.0], "train_acc": [0.2, 0.4], "eval_acc": [0.1, 0.3]}
    figs = {"eps": viz.accuracy_vs_eps(SEEDED), "bars": viz.results_bars(SEEDED),
            "training": viz.training_curves({"d_robust": hist, "d_non_robust-seed1": hist, "control_rnr": hist,
                                             "standard_targeted": hist}),
            "construction": viz.construction_curves({"d_robust": {"loss_curve": [2.0, 1.0]}, "d_det": {}}),
            "controls": viz.controls_bars([{"name": "d_rand", "group": "paper set", "clean_acc": 0.3}], results=SEEDED),
            "spectra": viz.spectra_for(x, run_sets), "pixels": viz.pixel_stats_figure({"CIFAR-10": x, **run_sets}),
            "side": viz.side_by_side_for(x, y, run_sets), "means": viz.class_means({"CIFAR-10": images, **run_sets})}
    for name, fig in figs.items():
        texts = _texts(fig)
        bad = [t for t in texts if INTERNAL.search(t)]
        assert not bad, f"{name}: internal names shown: {bad}"
    legend = " | ".join(_legend_texts(figs["eps"]))
    for shown in ("standard model", "D_R (3 seeds)", "control of D_R / D_NR (2 seeds)", "D_rand (3 seeds)",
                  "control of D_rand"):
        assert shown in legend
    assert "D_other" not in legend, "notebook 07's controls are drawn in fig_controls"
    assert "D_NR (1 seeds)" not in " ".join(_legend_texts(figs["training"]))
    assert {"D_R", "D_NR", "control of D_R / D_NR"} <= set(_legend_texts(figs["training"]))
    assert {"CIFAR-10", "D_R", "D_NR", "D_rand", "D_det"} <= set(_legend_texts(figs["pixels"]))
    assert [ax.get_ylabel() for ax in figs["pixels"].get_axes()] == ["density", "mean pixel value", "std of pixel values"]


def test_accuracy_axes_are_in_percent():
    hist = {"loss": [2.0, 1.0], "train_acc": [0.2, 0.4], "eval_acc": [0.1, 0.3]}
    transfer = {"rows": [{"arch": "tiny", "transfer_rate": 0.09, "ddet_acc": 0.2, "drand_acc": 0.25}], "fit": {}}
    axes = [*viz.results_bars(SEEDED).get_axes(), viz.accuracy_vs_eps(SEEDED).get_axes()[0],
            *viz.training_curves({"d_det": hist}).get_axes()[1:],
            viz.controls_bars([{"name": "d_rand", "group": "paper set", "clean_acc": 0.3}]).get_axes()[0],
            viz.transfer_scatter(transfer).get_axes()[0]]
    for ax in axes:
        _drawn(ax.figure)
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and all(t.endswith("%") for t in labels), labels
        lo, hi = ax.get_ylim()
        assert -0.05 <= lo and hi <= 1.12, "fractions shown as 0–100%"
        assert "(%)" not in ax.get_title()


def test_colours_are_unique_per_dataset_and_shared_by_its_controls():
    main = ["standard", "adversarial", "standard_targeted", "d_robust", "d_non_robust", "d_rand", "d_det", "CIFAR-10"]
    colours = [style.color(n) for n in main]
    assert len(set(colours)) == len(colours), dict(zip(main, colours, strict=True))
    assert style.color("d_det-seed2") == style.color("d_det") and style.color("ddet_CIFAR") == style.color("d_det")
    for control, dataset in (("control_rnr", "d_robust"), ("control_rand", "d_rand"), ("control_det", "d_det")):
        assert style.color(control) == style.color(dataset) and style.linestyle(control) == "--"
        assert style.hatch(control) and not style.hatch(dataset)
    # and in a drawn figure: each line has its dataset's colour
    ax = viz.accuracy_vs_eps(SEEDED).get_axes()[0]
    lines = {ln.get_gid().split(":")[1]: ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("line:")}
    assert set(lines) == {"standard", "d_robust", "control_rnr", "d_rand", "control_rand"}
    for name, ln in lines.items():
        assert matplotlib.colors.same_color(ln.get_color(), style.color(name))
    assert lines["control_rnr"].get_linestyle() == "--" and lines["d_robust"].get_linestyle() == "-"


def test_training_legend_fits_inside_the_figure_with_24_models():
    h = {"loss": [2.0, 1.5, 1.2], "train_acc": [0.2, 0.4, 0.5], "eval_acc": [None, 0.35, 0.45]}
    names = ["d_robust", "d_non_robust", "d_rand", "d_det", "control_rnr", "control_rand", "control_det", "standard"]
    hist = {n + (f"-seed{k}" if k else ""): h for n in names for k in range(3)}
    assert len(hist) == 24
    fig, r = _drawn(viz.training_curves(hist))
    (legend,) = fig.legends
    assert len(legend.get_texts()) == len(names), "one entry per dataset, its seeds in the label"
    assert all("(3 seeds)" in t.get_text() for t in legend.get_texts())
    box, page = legend.get_window_extent(r), fig.bbox
    assert box.x0 >= page.x0 and box.y0 >= page.y0 and box.x1 <= page.x1 and box.y1 <= page.y1
    for ax in fig.get_axes():  # the legend sits above the panels, over none of them
        assert not box.overlaps(ax.get_window_extent(r))
        assert all(float(t).is_integer() for t in ax.get_xticks()), "whole epochs"
    colours = {ln.get_gid().split(":")[0]: ln.get_color() for ax in fig.get_axes() for ln in ax.get_lines()}
    assert colours["d_robust"] == colours["d_robust-seed2"] != colours["d_det-seed1"]


TRANSFER = {
    "profile": "cpu", "machine": {"commit": "3b57478"}, "settings": {"transfer_eps": 0.5, "n_test": 2000},
    "fit": {"ddet": {"slope": 2.9, "intercept": -0.09, "r": 0.36}, "drand": {"slope": 2.6, "intercept": -0.03, "r": 0.31},
            "source_whitebox_rate": 0.821},
    "rows": [{"arch": a, "transfer_rate": x, "transfer_ci95": [x - 0.017, x + 0.018], "ddet_acc": d,
              "ddet_ci95": [d - 0.012, d + 0.013], "drand_acc": d + 0.04, "drand_ci95": [d + 0.027, d + 0.054],
              "transfer_n": 1000}
             for a, x, d in (("linear", 0.086, 0.08), ("mlp", 0.071, 0.07), ("tiny", 0.097, 0.19), ("small", 0.08, 0.25))],
}


def test_transfer_scatter_fits_its_data_with_intervals_and_chance():
    fig = viz.transfer_scatter(TRANSFER)
    ax = fig.get_axes()[0]
    lo, hi = ax.get_xlim()
    xs = [r["transfer_ci95"] for r in TRANSFER["rows"]]
    assert lo <= min(a for a, _ in xs) and hi >= max(b for _, b in xs), "every interval inside the axis"
    assert hi - lo < 0.15, "the axis is not stretched to the source's white-box rate (82%)"
    assert any("white-box rate: 82%" in t.get_text() for t in ax.texts), "named at the edge instead"
    chance = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0.1, 0.1] or list(ln.get_ydata()) == [0.1, 0.1]]
    assert len(chance) == 2, "chance on both axes"
    whiskers = [c for c in ax.collections if len(c.get_segments()) == 1]
    assert len(whiskers) == 2 * 2 * 4, "x and y intervals of both points of every architecture"
    assert "Whiskers: 95%" in _footer(fig) and "profile cpu" in _footer(fig)


def test_controls_bars_use_the_mean_over_seeds():
    summary = [{"name": "d_rand", "label": "D_rand (adv. to random class)", "group": "paper set", "clean_acc": 0.30,
                "clean_ci95": [0.24, 0.37], "train_n": 6000},
               {"name": "d_other", "label": "D_other", "group": "control", "clean_acc": 0.2, "train_n": 6000}]
    fig = viz.controls_bars(summary, results=SEEDED)
    ax = fig.get_axes()[0]
    bars = {p.get_gid().split(":")[1]: p for p in ax.patches if (p.get_gid() or "").startswith("bar:")}
    assert list(bars) == ["d_rand", "control_rand", "d_other"], "the matched control beside its set"
    masks = [r for r in SEEDED["rows"] if r["dataset"] == "d_rand"]
    assert bars["d_rand"].get_height() == pytest.approx(np.mean([r["clean_acc"] for r in masks]), abs=1e-9)
    assert bars["d_rand"].get_height() == pytest.approx(0.35), "the mean of seeds 0-2, not seed 0's 30%"
    assert bars["control_rand"].get_hatch() == "///"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "3 seeds" in ticks[0] and "6,000 train" in ticks[0]
    assert "95% bootstrap interval over seeds and test images" in _footer(fig) and "Wilson" in _footer(fig)
    # without results.json: the entries' own numbers
    plain = viz.controls_bars(summary).get_axes()[0]
    assert [p.get_height() for p in plain.patches if (p.get_gid() or "").startswith("bar:")][0] == pytest.approx(0.30)


def test_results_bars_show_the_mean_and_bootstrap_interval_over_seeds():
    from advlib import stats
    from advlib.evaluate import unpack_mask

    fig = viz.results_bars(SEEDED)
    top = fig.get_axes()[0]
    groups = viz.rows.groups(SEEDED, skip=style.NOTEBOOK07)
    k = [g.dataset for g in groups].index("d_robust")
    mine = top.patches[2 * k]
    rows = [r for r in SEEDED["rows"] if r["dataset"] == "d_robust"]
    est, lo, hi = stats.bootstrap_mean([unpack_mask(r["masks"]["clean"], 200).numpy() for r in rows])
    assert mine.get_height() == pytest.approx(est)
    caps = [c for c in top.collections if len(c.get_segments()) == 1]
    segs = [c.get_segments()[0] for c in caps]
    cx = mine.get_x() + mine.get_width() / 2
    seg = next(s for s in segs if abs(s[0][0] - cx) < 1e-9)
    assert sorted([seg[0][1], seg[1][1]]) == pytest.approx([lo, hi]), "the whisker is the 95% bootstrap interval"
    assert "95% bootstrap interval over seeds and test images" in _footer(fig)
    assert "Robust accuracy: PGD-20" in _footer(fig)


def test_rows_are_read_by_origin_or_source():
    groups = viz.rows.groups({"rows": [{"dataset": "d_rand", "origin": "constructed", "clean_acc": 0.3},
                                       {"dataset": "d_rand", "source": "released", "clean_acc": 0.4}]})
    assert [(g.dataset, g.origin, g.label) for g in groups] == [("d_rand", "constructed", "D_rand (constructed)"),
                                                               ("d_rand", "released", "D_rand (released)")]


def test_accuracy_vs_eps_says_which_radii_have_fewer_seeds():
    rows = [_row("d_robust", "constructed", s, 0.45, 0.25) for s in range(3)]
    rows[0]["robust_acc"]["1.0"] = 0.02
    rows[0]["masks"]["1.0"] = _masks(0.02, 200, 7)
    ax = viz.accuracy_vs_eps({"rows": rows}).get_axes()[0]
    assert _legend_texts(ax.figure)[0] == "D_R (3 seeds; ε = 1: 1)"
    hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    assert [list(ln.get_xdata()) for ln in hollow] == [[1.0]]


def test_side_by_side_puts_no_label_under_a_start_image(images):
    x, y = images
    src = torch.arange(10)
    fs = viz.FeatureSet("d_robust", x[src], y[src], {"source_indices": src.tolist(), "start_indices": ((src + 3) % 20).tolist()})
    det = viz.FeatureSet("d_det", x[src], (y[src] + 1) % 10, {"source_indices": src.tolist()})
    fig = viz.side_by_side_for(x, y, {"d_robust": fs, "d_det": det})
    axes = np.array(fig.get_axes()).reshape(-1, 4)  # original | start of D_R | D_R | D_det
    assert [ax.get_title() for ax in axes[0]] == ["original", "start of\nD_R", "D_R\n", "D_det"]
    assert all(ax.get_xlabel() == "" for ax in axes[:, 1]), "the start image is only where the descent began"
    assert all(ax.get_xlabel() == "" for ax in axes[:, 2]), "D_R keeps the original's label"
    assert all(ax.get_xlabel().startswith("label: ") for ax in axes[:, 3])


def test_figures_leave_the_global_rcparams_alone(images):
    before = dict(matplotlib.rcParams)
    viz.results_bars(SEEDED)
    viz.pixel_stats_figure({"CIFAR-10": images[0]})
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} <= {"backend"}


def test_figures_are_sized_for_a_report(images, run_sets):
    x, y = images
    hist = {"loss": [2.0, 1.0], "train_acc": [0.2, 0.4], "eval_acc": [0.1, 0.3]}
    for fig in (viz.accuracy_vs_eps(SEEDED), viz.results_bars(SEEDED), viz.training_curves({"d_det": hist}),
                viz.controls_bars([{"name": "d_rand", "group": "paper set", "clean_acc": 0.3}]),
                viz.transfer_scatter(TRANSFER), viz.spectra_for(x, run_sets), viz.side_by_side_for(x, y, run_sets),
                viz.class_means({"CIFAR-10": images}), viz.image_grid(x, y)):
        assert fig.get_figwidth() <= style.WIDTH + 0.01


def test_gaussian_panel_c_draws_the_robust_worst_case():
    from advlib import gaussian as G

    ax = G.theory_figure(1.0, 10.0, 2, n=300).axes[2]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "robust, worst case over μ* (Thm 3)" in labels and "standard, worst case over μ* (Thm 3)" in labels
    worst = next(ln for ln in ax.get_lines() if ln.get_label() == "robust, worst case over μ* (Thm 3)").get_ydata()
    std = next(ln for ln in ax.get_lines() if ln.get_label() == "standard, worst case over μ* (Thm 3)").get_ydata()
    assert worst[0] == pytest.approx(std[0]) and worst[-1] > std[0], "robust training lifts the floor (Theorem 3)"
