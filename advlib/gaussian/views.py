"""Tables, the summary, the four-panel figure and the slider explorer of the Gaussian model
(notebook 09); the closed forms and simulations they show live in :mod:`advlib.gaussian.theory`."""

from __future__ import annotations

import base64
import io
import math

import torch

from .robust import (
    multiplier_for_eps,
    robust_covariance,
    robust_mle,
)
from .theory import (
    _EPS_GRID,
    DTYPE,
    Gaussian,
    _as_sigma,
    _check_anisotropy,
    _check_dim,
    _check_eps,
    _check_n,
    _single_threaded,
    accuracy_closed_form,
    accuracy_empirical,
    adversarial_loss_gap_closed_form,
    adversarial_loss_gap_empirical,
    attack_linear,
    condition_number,
    gradient_alignment,
    isotropic_like,
    make_problem,
    mle,
    sample,
    standard_classifier,
    standard_error,
    worst_case_alignment,
)


# --- tables and the summary -------------------------------------------------------------------------
def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[r if isinstance(r, str) else f"{r:.4g}" for r in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def accuracy_table(truth: Gaussian, models: dict, x, y, radii) -> str:
    """Accuracy of each model's ``sign(w^T x)`` at each L2 radius: closed form vs simulation (+- standard error)."""
    rows = []
    for name, m in models.items():
        w = Gaussian(*m).w
        for eps in radii:
            p = accuracy_empirical(w, x, y, eps)
            rows.append([name, f"{eps:.3g}", f"{accuracy_closed_form(w, truth.mu, truth.sigma, eps):.4f}",
                         f"{p:.4f} ± {standard_error(p, len(y)):.4f}"])
    return _table(["classifier", "eps", "closed form", f"simulation (n={len(y)})"], rows)


def gap_table(truth: Gaussian, x, y, multiples=(1.5, 3.0, 10.0)) -> str:
    """Theorem 1: loss rise under the Lagrangian adversary, C = k / lambda_min(Sigma*), closed form vs Monte Carlo,
    beside the isotropic covariance with the same trace (data resampled from it with the same noise)."""
    sigma = _as_sigma(truth.sigma)
    lam_min = float(torch.linalg.eigvalsh(sigma)[0])
    iso = isotropic_like(sigma)
    # the same draws, re-coloured: x_iso = y mu + L_iso L*^-1 (x - y mu), so both columns share their noise
    z = torch.as_tensor(x, dtype=DTYPE) - torch.as_tensor(y, dtype=DTYPE)[:, None] * truth.mu
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(sigma), z.T, upper=False)
    x_iso = torch.as_tensor(y, dtype=DTYPE)[:, None] * truth.mu + (torch.linalg.cholesky(iso) @ white).T
    rows = []
    for k in multiples:
        C = k / lam_min
        mc, se = adversarial_loss_gap_empirical(x, y, truth.mu, sigma, C)
        mc_iso, se_iso = adversarial_loss_gap_empirical(x_iso, y, truth.mu, iso, C)
        rows.append([f"{k:g}/λmin", f"{adversarial_loss_gap_closed_form(sigma, C):.4f}", f"{mc:.4f} ± {se:.4f}",
                     f"{adversarial_loss_gap_closed_form(iso, C):.4f}", f"{mc_iso:.4f} ± {se_iso:.4f}"])
    return _table(["C", "gap Σ* (closed)", "gap Σ* (Monte Carlo)", "gap isotropic (closed)",
                   "gap isotropic (Monte Carlo)"], rows)


def spectrum_table(covariances: dict) -> str:
    """Eigenvalues (up to 6 shown, decreasing) and condition number of each named covariance."""
    rows = []
    for name, s in covariances.items():
        ev = torch.linalg.eigvalsh(_as_sigma(s, name)).flip(0)
        shown = ", ".join(f"{v:.4g}" for v in ev[:6].tolist()) + (", …" if len(ev) > 6 else "")
        rows.append([name, shown, f"{float(ev[0] / ev[-1]):.3f}"])
    return _table(["covariance", "eigenvalues", "λmax/λmin"], rows)


def alignment_table(truth: Gaussian, models: dict) -> str:
    """Theorem 3: cos(w, mu*) of each model's gradient, and the worst case over mu* of its covariance."""
    rows = [[name, f"{gradient_alignment(Gaussian(*m).w, truth.mu):.4f}", f"{worst_case_alignment(m[1]):.4f}",
             f"{condition_number(m[1]):.3f}"] for name, m in models.items()]
    return _table(["classifier", "cos(w, μ*)", "worst case over μ*", "κ(Σ)"], rows)


def crossover_eps(truth: Gaussian, w_standard, w_robust, eps_max: float, steps: int = 400) -> float | None:
    """Smallest radius in [0, eps_max] where the robust classifier's closed-form accuracy reaches the standard one's."""
    for i in range(steps + 1):
        e = eps_max * i / steps
        if accuracy_closed_form(w_robust, truth.mu, truth.sigma, e) >= accuracy_closed_form(
                w_standard, truth.mu, truth.sigma, e):
            return e
    return None


def summary(truth: Gaussian, standard: Gaussian, robust: Gaussian, eps: float) -> str:
    """Two or three sentences built from the numbers of this run (closed forms on the true distribution)."""
    eps = _check_eps(eps)
    w, wr = Gaussian(*standard).w, Gaussian(*robust).w
    clean_s, clean_r = (accuracy_closed_form(v, truth.mu, truth.sigma) for v in (w, wr))
    adv_s, adv_r = (accuracy_closed_form(v, truth.mu, truth.sigma, eps) for v in (w, wr))
    k_true, k_std, k_rob = (condition_number(s) for s in (truth.sigma, standard.sigma, robust.sigma))
    cos_s, cos_r = gradient_alignment(w, truth.mu), gradient_alignment(wr, truth.mu)
    tie = 5e-4  # accuracies closer than this are reported as equal

    def cmp(a, b, more, less, same):
        return more if a > b + tie else less if a < b - tie else same

    relation = cmp(clean_s, clean_r, "more accurate on clean data than", "less accurate on clean data than",
                   "as accurate on clean data as")
    text = (f"In d = {len(truth.mu)} with eigenvalue ratio {k_true:.3g}, the standard classifier is {relation} the one "
            f"robustly trained at eps = {eps:.3g} ({clean_s:.2%} vs {clean_r:.2%})")
    if adv_r > adv_s + tie:
        text += (f"{', but' if clean_s > clean_r + tie else ', and'} under an L2 attack of radius {eps:.3g} it keeps "
                 f"{adv_s:.2%} against {adv_r:.2%}.")
    elif adv_r >= adv_s - tie:
        text += f", and under an L2 attack of radius {eps:.3g} both keep {adv_s:.2%}."
    else:
        cross = crossover_eps(truth, w, wr, 4 * max(eps, 0.25))
        later = f"; the robust one overtakes from eps ≈ {cross:.2f}" if cross is not None and cross > 0 else ""
        text += f", and at radius {eps:.3g} it still keeps {adv_s:.2%} against {adv_r:.2%}{later}."
    if eps == 0:
        text += " With eps = 0 there is no adversary, and the robust fit is the standard one,"
    elif k_std > 1.01 * k_rob:
        text += (f" Robust training flattened the learned metric (eigenvalue ratio {k_std:.3g} → {k_rob:.3g}, toward "
                 f"the adversary's L2 geometry) and turned its gradient toward μ* (cos {cos_s:.3f} → {cos_r:.3f}),")
    else:
        text += (f" With nearly isotropic noise there is little misalignment to correct (eigenvalue ratio "
                 f"{k_std:.3g} → {k_rob:.3g}, gradient cos {cos_s:.3f} → {cos_r:.3f}),")
    return text + (" as the paper's Theorems 2 and 3 state; Theorem 1 traces the standard model's vulnerability to "
                   "the misalignment between Σ* and the L2 ball.")


# --- figure and explorer --------------------------------------------------------------------------
@_single_threaded
def experiment(eps: float, anisotropy: float, d: int, seed: int = 0, n: int = 4000) -> dict:
    """Everything the figure draws: true model, train/test draws, the standard and the robust (eps) fits."""
    eps, n = _check_eps(eps), _check_n(n)
    truth = make_problem(d, anisotropy, seed)
    x, y = sample(n, truth.mu, truth.sigma, generator=seed)
    x_test, y_test = sample(n, truth.mu, truth.sigma, generator=seed + 1)
    return {"truth": truth, "x": x, "y": y, "x_test": x_test, "y_test": y_test, "eps": eps,
            "standard": mle(x, y), "robust": robust_mle(x, y, eps)}


def theory_figure(eps: float, anisotropy: float, d: int, seed: int = 0, n: int = 4000):
    """Four panels (a Figure, not shown): (a) spectra of Sigma*, the standard and the robust Sigma (each divided
    by its mean); (b) accuracy vs attack radius, closed form (lines) and simulation (markers); (c) cos(w, mu*)
    vs the training eps; (d) the plane of Sigma*'s largest- and smallest-variance eigenvectors: samples,
    both decision boundaries and each model's worst-case perturbation of one point."""
    return draw_theory(experiment(eps, anisotropy, d, seed, n), anisotropy=anisotropy, seed=seed)


@_single_threaded
def draw_theory(ex: dict, *, anisotropy: float, seed: int):
    """The figure of :func:`theory_figure` from an :func:`experiment` result."""
    from matplotlib import ticker  # plotting stays out of the import of the numerical module

    from ..viz import NotebookFigure

    truth, std, rob, eps, n, d = ex["truth"], ex["standard"], ex["robust"], ex["eps"], len(ex["y"]), len(ex["truth"].mu)
    w, wr = std.w, rob.w
    fig = NotebookFigure(figsize=(11, 8.5))
    ax = fig.subplots(2, 2).ravel()
    from ..viz.style import COLORS

    colors = {"Σ*": "0.4", "standard": COLORS["standard"], "robust": COLORS["adversarial"]}

    spectra = (("Σ*", truth.sigma, "o", 11), ("standard", std.sigma, "s", 5), ("robust", rob.sigma, "D", 5))
    for name, s, mk, ms in spectra:  # Σ* as large hollow circles: the standard MLE's spectrum sits on it
        ev = torch.linalg.eigvalsh(s).flip(0)
        ax[0].plot(range(1, len(ev) + 1), (ev / ev.mean()).numpy(), marker=mk, ms=ms, mfc="none" if ms > 5 else None,
                   color=colors[name], label=f"{name} (κ = {float(ev[0] / ev[-1]):.3g})", lw=1)
    ax[0].set_yscale("log")
    ax[0].yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax[0].yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax[0].xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax[0].set(title="(a) eigenvalues ÷ their mean", xlabel="index (decreasing)", ylabel="relative eigenvalue")
    ax[0].legend(fontsize=8)

    radii = torch.linspace(0, max(2.5 * eps, 1.0), _EPS_GRID).tolist()
    for name, v in (("standard", w), ("robust", wr)):
        ax[1].plot(radii, [accuracy_closed_form(v, truth.mu, truth.sigma, e) for e in radii], color=colors[name],
                   label=f"{name} (closed form)")
        ax[1].plot(radii[::4], [accuracy_empirical(v, ex["x_test"], ex["y_test"], e) for e in radii[::4]], "o",
                   color=colors[name], ms=4, mfc="none", label=f"{name} (simulation, n={n})")
    ax[1].axvline(eps, color="0.6", ls=":", lw=1)
    ax[1].set(title=f"(b) accuracy under L2 attack (robust trained at eps = {eps:.3g})", xlabel="attack radius",
              ylabel="accuracy", ylim=(0, 1.02))
    ax[1].legend(fontsize=8)

    train_eps = torch.linspace(0, max(2.5 * eps, 1.0), _EPS_GRID).tolist()
    sigma_r = [robust_covariance(std.sigma, multiplier_for_eps(std.sigma, e)) for e in train_eps]
    cos_r = [gradient_alignment(standard_classifier(std.mu, s), truth.mu) for s in sigma_r]
    ax[2].plot(train_eps, cos_r, color=colors["robust"], label="robust, cos(Σ_r⁻¹μ, μ*)")
    # Theorem 3: the worst case over μ* of cos(Σ⁻¹μ, μ) is 2√κ/(1+κ); robust training lowers κ, so its floor rises
    ax[2].plot(train_eps, [worst_case_alignment(s) for s in sigma_r], color=colors["robust"], ls=":",
               label="robust, worst case over μ* (Thm 3)")
    ax[2].axhline(gradient_alignment(w, truth.mu), color=colors["standard"], ls="--", label="standard, cos(Σ⁻¹μ, μ*)")
    ax[2].axhline(worst_case_alignment(std.sigma), color=colors["standard"], ls=":",
                  label="standard, worst case over μ* (Thm 3)")
    ax[2].axvline(eps, color="0.6", ls=":", lw=1)
    ax[2].set(title="(c) gradient alignment with μ*", xlabel="training eps", ylabel="cosine", ylim=(0, 1.02))
    ax[2].legend(fontsize=8, loc="lower right")

    _plane_panel(ax[3], ex, colors)
    fig.suptitle(f"Gaussian model of Section 4: d = {d}, anisotropy {anisotropy:g}, eps = {eps:.3g}, seed {seed}")
    # fixed margins rather than tight_layout: the layout pass costs as much as drawing (the explorer redraws)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.085, top=0.91, wspace=0.25, hspace=0.32)  # room for a stamp
    return fig


def _plane_panel(ax, ex: dict, colors: dict) -> None:
    """Panel (d): coordinates along Sigma*'s largest- (u) and smallest-variance (v) eigenvectors."""
    truth, eps = ex["truth"], ex["eps"]
    _, vecs = torch.linalg.eigh(truth.sigma)
    basis = torch.stack([vecs[:, -1], vecs[:, 0]], dim=1)  # [d, 2]
    pts = ex["x_test"][:400] @ basis
    lab = ex["y_test"][:400]
    for cls, mk in ((1, "C1"), (-1, "C2")):
        sel = lab == cls
        ax.scatter(pts[sel, 0].numpy(), pts[sel, 1].numpy(), s=5, alpha=0.35, color=mk, label=f"y = {cls:+d}")
    lim = float(pts.abs().max()) * 1.05
    t = torch.linspace(-lim, lim, 2, dtype=DTYPE)
    i = _contrast_point(ex)
    x0, y0 = ex["x_test"][i], ex["y_test"][i]
    for name, m in (("standard", ex["standard"]), ("robust", ex["robust"])):
        wp = m.w @ basis  # the boundary's trace in this plane (a slice through the origin)
        if abs(float(wp[1])) > abs(float(wp[0])):
            ax.plot(t.numpy(), (-wp[0] * t / wp[1]).numpy(), color=colors[name], label=f"{name} boundary")
        else:
            ax.plot((-wp[1] * t / wp[0]).numpy(), t.numpy(), color=colors[name], label=f"{name} boundary")
        step = (attack_linear(m.w, x0[None], y0[None], eps)[0] - x0) @ basis
        p0 = x0 @ basis
        ax.annotate("", xy=(float(p0[0] + step[0]), float(p0[1] + step[1])), xytext=(float(p0[0]), float(p0[1])),
                    arrowprops={"arrowstyle": "->", "color": colors[name], "lw": 1.5})
    ax.plot(*(x0 @ basis).tolist(), "k*", ms=9, label=f"a test point and its eps = {eps:.3g} attacks")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="largest-variance direction of Σ*",
           ylabel="smallest-variance direction of Σ*", aspect="equal",
           title="(d) the data plane" if len(truth.mu) == 2 else "(d) slice through the extreme eigenvectors")
    ax.legend(fontsize=7, loc="upper left")


def _contrast_point(ex: dict) -> int:
    """Index of a test point that both models classify correctly and that the eps-attack flips for the
    standard model only (0 when there is none): the picture of a non-robust feature being exploited."""
    x, y, eps = ex["x_test"], ex["y_test"], ex["eps"]
    ok = torch.ones(len(y), dtype=torch.bool)
    for m, flipped in ((ex["standard"], True), (ex["robust"], False)):
        w = m.w
        ok &= (y * (x @ w) > 0) & ((y * (attack_linear(w, x, y, eps) @ w) <= 0) == flipped)
    hits = torch.nonzero(ok).flatten()
    return int(hits[0]) if len(hits) else 0


def figure_png(fig) -> bytes:
    """PNG bytes of a figure (dpi 90), for widgets."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, facecolor="white")
    return buf.getvalue()


def theory_explorer(eps: float = 1.0, anisotropy: float = 10.0, dim: int = 2, seed: int = 0, n: int = 2000):
    """Sliders for eps, anisotropy and dimension that redraw :func:`theory_figure` and the summary.

    Returns an ``ipywidgets.VBox`` (sliders, an Output holding the figure as a PNG, an HTML summary). The
    Output's ``outputs`` are set directly rather than captured with ``with out:``, so it redraws the same
    way in a kernel, in a test, or from a slider callback. Its ``.figure`` attribute is the latest Figure.
    """
    import html

    import ipywidgets as W

    eps, anisotropy, dim = _check_eps(eps), _check_anisotropy(anisotropy), _check_dim(dim, "dim")
    style = {"description_width": "90px"}
    s_eps = W.FloatSlider(value=eps, min=0.0, max=max(3.0, eps), step=0.05, description="eps",
                          continuous_update=False, style=style)
    s_aniso = W.FloatLogSlider(value=anisotropy, base=10, min=0, max=max(2.5, math.log10(anisotropy)), step=0.05,
                               description="anisotropy", continuous_update=False, style=style)
    s_dim = W.IntSlider(value=dim, min=2, max=max(50, dim), description="dimension", continuous_update=False,
                        style=style)
    out = W.Output()
    text = W.HTML()
    box = W.VBox([W.HBox([s_eps, s_aniso, s_dim]), out, text])
    box.add_class("advlib-gaussian-explorer")

    def redraw(_change=None):
        ex = experiment(s_eps.value, s_aniso.value, s_dim.value, seed, n)
        fig = draw_theory(ex, anisotropy=s_aniso.value, seed=seed)
        png = base64.b64encode(figure_png(fig)).decode("ascii")
        out.outputs = ({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": png, "text/plain": "<theory figure>"}},)
        text.value = f"<p>{html.escape(summary(ex['truth'], ex['standard'], ex['robust'], s_eps.value))}</p>"
        box.figure = fig

    for s in (s_eps, s_aniso, s_dim):
        s.observe(redraw, names="value")
    redraw()
    return box
