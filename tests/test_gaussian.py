"""advlib.gaussian: the Gaussian model of paper Section 4, closed forms against simulation (float64, CPU, small)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from advlib import gaussian as G  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
D64 = torch.float64


def _problem(d=2, anisotropy=10.0, seed=0):
    return G.make_problem(d, anisotropy, seed)


def _random_spd(d, seed, trace=None):
    g = torch.Generator().manual_seed(seed)
    ev = torch.exp(torch.rand(d, generator=g, dtype=D64) * 4 - 2)
    if trace is not None:
        ev = ev * trace / ev.sum()
    q = G.random_rotation(d, seed + 1)
    return (q * ev) @ q.T


# --- the data ---------------------------------------------------------------------------------------
def test_make_covariance_trace_and_anisotropy():
    for d, a in ((2, 10.0), (5, 3.0), (8, 100.0)):
        s = G.make_covariance(d, a, seed=3)
        ev = torch.linalg.eigvalsh(s)
        assert torch.allclose(s, s.T)
        assert float(torch.trace(s)) == pytest.approx(d, rel=1e-12)
        assert float(ev[-1] / ev[0]) == pytest.approx(a, rel=1e-10)
        # log-uniform spacing: constant ratio between neighbours
        ratios = ev[1:] / ev[:-1]
        assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-10)
    diag = G.make_covariance(4, 8.0, rotate=False)
    assert torch.equal(diag, torch.diag(torch.diagonal(diag)))
    assert torch.all(torch.diagonal(diag)[:-1] > torch.diagonal(diag)[1:])
    assert torch.allclose(G.make_covariance(3, 1.0), torch.eye(3, dtype=D64))


def test_make_problem_mean_has_equal_weight_on_eigenvectors():
    truth = _problem(d=6, anisotropy=20.0, seed=1)
    assert float(truth.mu.norm()) == pytest.approx(G.MEAN_NORM, rel=1e-12)
    _, vecs = torch.linalg.eigh(truth.sigma)
    proj = (vecs.T @ truth.mu).abs()
    assert torch.allclose(proj, torch.full_like(proj, G.MEAN_NORM / math.sqrt(6)), rtol=1e-10)


def test_sample_and_mle_recover_the_truth():
    truth = _problem(d=3, anisotropy=10.0)
    x, y = G.sample(20000, truth.mu, truth.sigma, generator=5)
    assert x.shape == (20000, 3) and set(y.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(y.mean())) < 4 / math.sqrt(20000)
    fit = G.mle(x, y)
    assert float((fit.mu - truth.mu).norm()) < 0.05
    assert float((fit.sigma - truth.sigma).abs().max()) < 0.08
    # the same seed gives the same draws
    x2, y2 = G.sample(20000, truth.mu, truth.sigma, generator=5)
    assert torch.equal(x, x2) and torch.equal(y, y2)


# --- accuracy: closed form vs simulation -------------------------------------------------------------
@pytest.mark.parametrize("eps", [0.0, 0.5, 1.0, 1.5])
def test_accuracy_closed_form_matches_simulation(eps):
    truth = _problem()
    x, y = G.sample(2000, truth.mu, truth.sigma, generator=0)
    x_test, y_test = G.sample(20000, truth.mu, truth.sigma, generator=1)
    for model in (G.mle(x, y), G.robust_mle(x, y, 1.0)):
        closed = G.accuracy_closed_form(model.w, truth.mu, truth.sigma, eps)
        emp = G.accuracy_empirical(model.w, x_test, y_test, eps)
        se = G.standard_error(closed, len(y_test))
        assert abs(emp - closed) < 4 * se + 1e-4, (eps, closed, emp, se)


def test_attack_linear_moves_eps_toward_the_boundary():
    truth = _problem()
    x, y = G.sample(1000, truth.mu, truth.sigma, generator=2)
    w = truth.w
    x_adv = G.attack_linear(w, x, y, 0.7)
    assert torch.allclose((x_adv - x).norm(dim=1), torch.full((1000,), 0.7, dtype=D64))
    margin = y * (x @ w) / w.norm()  # signed L2 distance to the boundary
    still = y * (x_adv @ w) > 0
    assert torch.equal(still, margin > 0.7)  # exactly the points farther than eps survive


def test_accuracy_invariants_and_tradeoff():
    truth = _problem()
    lam = G.multiplier_for_eps(truth.sigma, 1.0)
    robust = G.Gaussian(truth.mu, G.robust_covariance(truth.sigma, lam))
    accs = {}
    for name, m in (("standard", truth), ("robust", robust)):
        curve = [G.accuracy_closed_form(m.w, truth.mu, truth.sigma, e) for e in (0, 0.25, 0.5, 1.0, 1.5)]
        assert all(a > b for a, b in zip(curve, curve[1:], strict=False))  # robust accuracy <= clean, falls with eps
        accs[name] = curve
    # Bayes-optimal standard classifier wins clean; the robust one wins at the training radius and beyond
    assert accs["standard"][0] > accs["robust"][0] + 0.01
    assert accs["robust"][3] > accs["standard"][3] + 0.05
    assert accs["robust"][4] > accs["standard"][4] + 0.1
    # and no linear classifier beats the Bayes one on clean data
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        v = torch.randn(2, generator=g, dtype=D64)
        assert G.accuracy_closed_form(v, truth.mu, truth.sigma) <= accs["standard"][0] + 1e-12


# --- Theorem 1 ---------------------------------------------------------------------------------------
def _lagrangian_objective(x, y, mu, sigma, C, delta):
    return G.nll(x + delta, y, mu, sigma) - 0.5 * C * (delta ** 2).sum(dim=1)


def test_lagrangian_attack_is_the_maximiser():
    truth = _problem(d=3, anisotropy=10.0)
    x, y = G.sample(200, truth.mu, truth.sigma, generator=3)
    C = 1.5 / float(torch.linalg.eigvalsh(truth.sigma)[0])
    delta = G.lagrangian_attack(x, y, truth.mu, truth.sigma, C)
    # gradient ascent on the objective (autograd, no formula) lands on the same point
    assert torch.allclose(G.ascent_attack(x, y, truth.mu, truth.sigma, C, steps=300), delta, atol=1e-9)
    best = _lagrangian_objective(x, y, truth.mu, truth.sigma, C, delta)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # random directions with the same norm do worse, for every example
        r = torch.randn(x.shape, generator=g, dtype=D64)
        r = r / r.norm(dim=1, keepdim=True) * delta.norm(dim=1, keepdim=True)
        assert torch.all(_lagrangian_objective(x, y, truth.mu, truth.sigma, C, r) < best)
    # and so do small moves away from it (a strict local, hence global, maximum of a concave function)
    for scale in (0.9, 1.1):
        assert torch.all(_lagrangian_objective(x, y, truth.mu, truth.sigma, C, scale * delta) < best)


@pytest.mark.parametrize("multiple", [1.5, 3.0, 10.0])
@pytest.mark.parametrize("penalized", [False, True])
def test_loss_gap_monte_carlo_matches_closed_form(multiple, penalized):
    truth = _problem(d=4, anisotropy=10.0)
    x, y = G.sample(20000, truth.mu, truth.sigma, generator=4)
    C = multiple / float(torch.linalg.eigvalsh(truth.sigma)[0])
    closed = G.adversarial_loss_gap_closed_form(truth.sigma, C, penalized=penalized)
    mc, se = G.adversarial_loss_gap_empirical(x, y, truth.mu, truth.sigma, C, penalized=penalized)
    assert closed > 0 and se > 0
    assert abs(mc - closed) < 4 * se, (closed, mc, se)
    # the paper's closed form (loss without the factor 1/2): tr[(I + (C Sigma - I)^-1)^2] - d, twice ours
    m = torch.eye(4, dtype=D64) + torch.linalg.inv(C * truth.sigma - torch.eye(4, dtype=D64))
    if not penalized:
        assert 2 * closed == pytest.approx(float(torch.trace(m @ m)) - 4, rel=1e-12)


def test_isotropic_covariance_minimises_the_gap_at_fixed_trace():
    d = 5
    iso = torch.eye(d, dtype=D64) * 2.0
    for seed in range(20):
        s = _random_spd(d, seed, trace=2.0 * d)
        C = 1.2 / float(torch.linalg.eigvalsh(s)[0])  # valid for both (iso's lambda_min is larger)
        for penalized in (False, True):
            assert G.adversarial_loss_gap_closed_form(s, C, penalized=penalized) > \
                G.adversarial_loss_gap_closed_form(iso, C, penalized=penalized)
    # and with the trace fixed, the gap grows with the anisotropy
    C = 4.0 / float(torch.linalg.eigvalsh(G.make_covariance(d, 50.0))[0])
    gaps = [G.adversarial_loss_gap_closed_form(G.make_covariance(d, a), C) for a in (1.0, 2.0, 10.0, 50.0)]
    assert all(a < b for a, b in zip(gaps, gaps[1:], strict=False))


# --- Theorem 2 ---------------------------------------------------------------------------------------
def test_robust_covariance_solves_the_one_dimensional_problem():
    # per eigen-direction: minimise h(s) = sigma / (s - c) + log s over s > c (grid search, no formula)
    for sigma in (0.05, 1.0, 7.0):
        for c in (0.01, 0.3, 2.0):
            s_closed = float(G.robust_covariance(torch.tensor([[sigma]], dtype=D64), 1 / c))
            grid = torch.linspace(c * 1.0001, c + 20 * sigma + 20 * c, 400001, dtype=D64)
            s_grid = float(grid[torch.argmin(sigma / (grid - c) + torch.log(grid))])
            assert s_closed == pytest.approx(s_grid, rel=1e-3)
            assert s_closed > sigma  # the plus sign: robust training inflates every variance


def test_inner_maximum_is_the_shifted_metric():
    # max_delta 1/2 (z+delta)^T S^-1 (z+delta) - lam/2 |delta|^2 = 1/2 z^T (S - I/lam)^-1 z
    truth = _problem(d=3, anisotropy=10.0)
    x, y = G.sample(50, truth.mu, truth.sigma, generator=6)
    lam = 2.0 / float(torch.linalg.eigvalsh(truth.sigma)[0])
    delta = G.lagrangian_attack(x, y, truth.mu, truth.sigma, lam)
    value = _lagrangian_objective(x, y, truth.mu, truth.sigma, lam, delta)
    z = x - y[:, None] * truth.mu
    shifted = truth.sigma - torch.eye(3, dtype=D64) / lam
    expected = 0.5 * (z * torch.linalg.solve(shifted, z.T).T).sum(1) + 0.5 * torch.logdet(truth.sigma)
    assert torch.allclose(value, expected, rtol=1e-10)


def test_numerical_robust_fit_matches_the_closed_form():
    truth = _problem(d=3, anisotropy=10.0)
    x, y = G.sample(2000, truth.mu, truth.sigma, generator=7)
    std = G.mle(x, y)
    for eps in (0.3, 1.0):
        lam = G.multiplier_for_eps(std.sigma, eps)
        fit = G.fit_robust(x, y, lam=lam)  # full Sigma, mu from 0, inner max solved exactly each step
        closed = G.robust_covariance(std.sigma, lam)
        assert torch.allclose(fit.sigma, closed, rtol=1e-6, atol=1e-7)
        assert torch.allclose(fit.mu, std.mu, atol=1e-6)  # mu_r = mu (here: the sample mean)
        c = G.effective_inverse_multipliers(std.sigma, fit.sigma)
        assert torch.allclose(c, torch.full_like(c, 1 / lam), rtol=1e-5)


def test_robust_covariance_limits_and_flattening():
    s = G.make_covariance(4, 20.0, seed=2)
    assert torch.allclose(G.robust_covariance(s, math.inf), s, rtol=1e-12)
    assert torch.allclose(G.robust_covariance(s, 1e9), s, rtol=1e-6)
    _, v = torch.linalg.eigh(s)
    kappas = []
    for lam in (10.0, 1.0, 0.1):
        r = G.robust_covariance(s, lam)
        _, vr = torch.linalg.eigh(r)
        assert torch.allclose((v.T @ vr).abs(), torch.eye(4, dtype=D64), atol=1e-8)  # same eigenvectors
        kappas.append(G.condition_number(r))
    assert 20.0 > kappas[0] > kappas[1] > kappas[2] > 1.0  # toward a multiple of I as the budget grows
    iso = torch.eye(3, dtype=D64) * 0.7
    r = G.robust_covariance(iso, 2.0)
    assert torch.allclose(r, r[0, 0] * torch.eye(3, dtype=D64))


def test_multiplier_for_eps_sets_the_adversary_budget():
    truth = _problem(d=3, anisotropy=10.0)
    assert G.multiplier_for_eps(truth.sigma, 0.0) == math.inf
    lams = [G.multiplier_for_eps(truth.sigma, e) for e in (0.25, 0.5, 1.0, 2.0)]
    assert all(a > b for a, b in zip(lams, lams[1:], strict=False))  # lam falls as eps grows
    for e, lam in zip((0.25, 0.5, 1.0, 2.0), lams, strict=True):
        assert G.adversary_rms_norm(truth.sigma, lam) == pytest.approx(e, rel=1e-9)
    # Monte Carlo: the lam-adversary against the robust model spends E|delta|^2 = eps^2 on the true data
    lam = lams[2]
    robust = G.Gaussian(truth.mu, G.robust_covariance(truth.sigma, lam))
    x, y = G.sample(20000, truth.mu, truth.sigma, generator=8)
    sq = (G.lagrangian_attack(x, y, robust.mu, robust.sigma, lam) ** 2).sum(dim=1)
    assert abs(float(sq.mean()) - 1.0) < 4 * float(sq.std()) / math.sqrt(len(sq))


def test_ball_attack_is_the_exact_maximiser():
    truth = _problem(d=2, anisotropy=10.0)
    x, y = G.sample(100, truth.mu, truth.sigma, generator=9)
    delta = G.ball_attack(x, y, truth.mu, truth.sigma, 0.5)
    assert torch.allclose(delta.norm(dim=1), torch.full((100,), 0.5, dtype=D64), atol=1e-6)
    best = G.nll(x + delta, y, truth.mu, truth.sigma)
    angles = torch.linspace(0, 2 * math.pi, 3601, dtype=D64)
    circle = 0.5 * torch.stack([angles.cos(), angles.sin()], dim=1)  # brute force over the circle
    for i in range(0, 100, 10):
        xs = x[i] + circle
        brute = G.nll(xs, y[i].expand(len(xs)), truth.mu, truth.sigma).max()
        assert float(best[i]) >= float(brute) - 1e-9
        assert float(best[i]) <= float(brute) + 1e-3


def test_per_example_ball_gives_a_flatter_spectrum_but_no_single_multiplier():
    truth = _problem(d=2, anisotropy=10.0)
    x, y = G.sample(3000, truth.mu, truth.sigma, generator=10)
    std = G.mle(x, y)
    fit = G.fit_robust(x, y, eps=0.2)
    assert G.condition_number(fit.sigma) < 0.9 * G.condition_number(std.sigma)
    _, v = torch.linalg.eigh(std.sigma)
    _, vr = torch.linalg.eigh(fit.sigma)
    assert torch.allclose((v.T @ vr).abs(), torch.eye(2, dtype=D64), atol=1e-3)  # same eigenvectors
    c_small, c_large = G.effective_inverse_multipliers(std.sigma, fit.sigma).tolist()
    assert c_large > 1.15 * c_small > 0  # Theorem 2's closed form is exact only for the Lagrangian adversary


# --- Theorem 3 ---------------------------------------------------------------------------------------
def test_robust_gradient_is_better_aligned():
    g = torch.Generator().manual_seed(11)
    for trial in range(200):
        d = 2 + trial % 7
        s = _random_spd(d, trial)
        mu = torch.randn(d, generator=g, dtype=D64) * torch.exp(torch.rand(d, generator=g, dtype=D64) * 4 - 2)
        lam = float(torch.exp(torch.rand(1, generator=g, dtype=D64) * 6 - 3))
        cos_s = G.gradient_alignment(G.standard_classifier(mu, s), mu)
        cos_r = G.gradient_alignment(G.standard_classifier(mu, G.robust_covariance(s, lam)), mu)
        assert cos_r >= cos_s - 1e-12
        assert G.worst_case_alignment(G.robust_covariance(s, lam)) > G.worst_case_alignment(s)


def test_worst_case_alignment_is_attained():
    s = G.make_covariance(4, 25.0, seed=1)
    ev, vecs = torch.linalg.eigh(s)
    bound = G.worst_case_alignment(s)
    assert bound == pytest.approx(2 * 5 / 26, rel=1e-12)
    # Kantorovich: the minimiser weighs the extreme eigenvectors as sqrt(lambda_max) : sqrt(lambda_min)
    mu = vecs[:, -1] * ev[-1].sqrt() + vecs[:, 0] * ev[0].sqrt()
    assert G.gradient_alignment(G.standard_classifier(mu, s), mu) == pytest.approx(bound, rel=1e-10)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        m = torch.randn(4, generator=g, dtype=D64)
        assert G.gradient_alignment(G.standard_classifier(m, s), m) >= bound - 1e-12


# --- argument checks ---------------------------------------------------------------------------------
def test_bad_arguments_raise_naming_the_parameter():
    truth = _problem()
    x, y = G.sample(10, truth.mu, truth.sigma)
    lam_min = float(torch.linalg.eigvalsh(truth.sigma)[0])
    cases = [
        (lambda: G.make_covariance(1, 2.0), "d must"),
        (lambda: G.make_covariance(2.5, 2.0), "d must"),
        (lambda: G.make_covariance(3, 0.5), "anisotropy"),
        (lambda: G.make_covariance(3, math.inf), "anisotropy"),
        (lambda: G.make_problem(3, 2.0, mean_norm=0), "mean_norm"),
        (lambda: G.sample(0, truth.mu, truth.sigma), "n must"),
        (lambda: G.accuracy_closed_form(truth.w, truth.mu, truth.sigma, -0.1), "eps"),
        (lambda: G.accuracy_empirical(truth.w, x, y, -1.0), "eps"),
        (lambda: G.lagrangian_attack(x, y, truth.mu, truth.sigma, 0.99 / lam_min), "C must exceed"),
        (lambda: G.adversarial_loss_gap_closed_form(truth.sigma, 1.0 / lam_min), "C must exceed"),
        (lambda: G.robust_covariance(truth.sigma, 0.0), "lam"),
        (lambda: G.multiplier_for_eps(truth.sigma, -1.0), "eps"),
        (lambda: G.mle(x, y * 2), "y must"),
        (lambda: G.standard_classifier(truth.mu, -truth.sigma), "sigma must be positive definite"),
        (lambda: G.standard_classifier(truth.mu[:1], truth.sigma), "mu must"),
        (lambda: G.fit_robust(x, y), "exactly one"),
        (lambda: G.fit_robust(x, y, lam=1.0, eps=1.0), "exactly one"),
        (lambda: G.theory_figure(-1.0, 10.0, 2), "eps"),
        (lambda: G.theory_explorer(dim=1), "dim must"),
    ]
    for call, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call()


# --- tables, summary, figure, explorer ----------------------------------------------------------------
def test_tables_and_summary_report_the_numbers():
    ex = G.experiment(1.0, 10.0, 2, seed=0, n=2000)
    truth, std, rob = ex["truth"], ex["standard"], ex["robust"]
    acc = G.accuracy_table(truth, {"standard": std}, ex["x_test"], ex["y_test"], [0.0, 1.0])
    assert f"{G.accuracy_closed_form(std.w, truth.mu, truth.sigma, 1.0):.4f}" in acc
    gaps = G.gap_table(truth, ex["x_test"], ex["y_test"], multiples=(3.0,))
    C = 3.0 / float(torch.linalg.eigvalsh(truth.sigma)[0])
    assert f"{G.adversarial_loss_gap_closed_form(truth.sigma, C):.4f}" in gaps
    assert f"{G.condition_number(rob.sigma):.3f}" in G.spectrum_table({"robust": rob.sigma})
    assert f"{G.gradient_alignment(rob.w, truth.mu):.4f}" in G.alignment_table(truth, {"robust": rob})
    text = G.summary(truth, std, rob, 1.0)
    for v in (G.accuracy_closed_form(std.w, truth.mu, truth.sigma, 1.0),
              G.accuracy_closed_form(rob.w, truth.mu, truth.sigma, 1.0)):
        assert f"{v:.2%}" in text
    assert f"{G.gradient_alignment(rob.w, truth.mu):.3f}" in text and "Theorem" in text


def test_theory_figure_has_four_panels():
    for d in (2, 5):
        fig = G.theory_figure(0.8, 10.0, d, seed=1, n=500)
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 4
        # panel (b): closed-form accuracy curves start at the clean accuracy
        ex = G.experiment(0.8, 10.0, d, seed=1, n=500)
        y0 = fig.axes[1].lines[0].get_ydata()[0]
        assert y0 == pytest.approx(G.accuracy_closed_form(ex["standard"].w, ex["truth"].mu, ex["truth"].sigma))


def test_explorer_redraws_when_a_slider_moves():
    pytest.importorskip("ipywidgets")
    box = G.theory_explorer(eps=1.0, anisotropy=10.0, dim=2, n=300)
    sliders = {w.description: w for w in box.children[0].children}
    out, text = box.children[1], box.children[2]
    png0, text0, fig0 = out.outputs[0]["data"]["image/png"], text.value, box.figure
    assert len(fig0.axes) == 4 and "eps = 1" in text0
    sliders["eps"].value = 2.0
    assert out.outputs[0]["data"]["image/png"] != png0
    assert box.figure is not fig0 and "eps = 2" in text.value and text.value != text0
    png1 = out.outputs[0]["data"]["image/png"]
    sliders["dimension"].value = 4
    assert out.outputs[0]["data"]["image/png"] != png1 and "d = 4" in text.value
    sliders["anisotropy"].value = 1.0
    assert "eigenvalue ratio 1" in text.value


# --- notebook 09 -------------------------------------------------------------------------------------
def test_notebook_09_has_the_parameters():
    path = REPO / "notebooks" / "09_gaussian_model.ipynb"
    nb = json.loads(path.read_text())
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    names = [line.split("=")[0].strip() for line in src.splitlines() if "=" in line]
    assert names[:8] == ["profile", "run_dir", "overrides", "figures_dir", "eps", "anisotropy", "dim", "n_samples"]
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    papermill = pytest.importorskip("papermill")  # the runner reads the parameters the way papermill does
    assert set(papermill.inspect_notebook(str(path))) == set(names)
    # that it is in sync with its .py twin (and thin, stripped, citing existing files): tests/test_notebooks.py
