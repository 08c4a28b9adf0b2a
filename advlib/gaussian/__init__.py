"""Paper Section 4: robust and non-robust features in a Gaussian model, in closed form and by simulation.

The data: ``y`` uniform in {-1, +1}, ``x ~ N(y·mu*, Sigma*)`` in R^d. The learner fits class-conditional
Gaussians with a shared ``(mu, Sigma)`` by maximum likelihood, with the per-example loss (negative
log-likelihood, constant dropped)

    l(x, y; mu, Sigma) = 1/2 (x - y mu)^T Sigma^-1 (x - y mu) + 1/2 log det Sigma,

and predicts ``sign(w^T x)`` with ``w = Sigma^-1 mu`` (the likelihood ratio; no bias, the classes are
symmetric). What is derived here, and checked by simulation in ``tests/test_gaussian.py``:

* **Theorem 1 (vulnerability from misalignment).** An adversary with a Lagrangian penalty,
  ``max_delta l(x + delta) - C/2 ||delta||^2`` (C > 1/lambda_min(Sigma)), plays
  ``delta* = (C Sigma - I)^-1 (x - y mu)``. Against the standard MLE ``(mu*, Sigma*)`` it raises the
  expected loss by ``1/2 (tr[(I + (C Sigma* - I)^-1)^2] - d)``, which for a fixed ``tr Sigma*`` is smallest
  when ``Sigma*`` is a multiple of I: the adversary profits from the gap between the data's metric
  (Sigma*) and its own L2 geometry. (The paper's statement reads ``tr[...] - d``: the same expression for a
  loss without the factor 1/2, penalised by ``C ||delta||^2``; same ``delta*``, same condition on C, twice
  our gap.)
* **Theorem 2 (robust learning).** Against that adversary with multiplier ``lam`` (``c = 1/lam``) the inner
  maximum is ``1/2 (x - y mu)^T (Sigma - c I)^-1 (x - y mu)``, so the robust MLE keeps ``mu = mu*`` and, per
  eigen-direction of Sigma*, solves ``(s - c)^2 = sigma s``:
  ``Sigma_r = 1/2 Sigma* + c I + sqrt(c Sigma* + 1/4 Sigma*^2)`` (plus sign on ``c I``). Same eigenvectors,
  eigenvalues pulled toward a multiple of I. This is exact for an adversary with an average budget
  ``E||delta||^2 <= eps^2`` (one multiplier for all x; ``eps^2 = c^2 tr Sigma_r^-1``, see
  :func:`multiplier_for_eps`). Against a per-example ball ``||delta|| <= eps`` the robust MLE (fitted
  numerically by :func:`fit_robust`) has the same eigenvectors and a flatter spectrum, but no single
  ``lam`` reproduces all its eigenvalues: the closed form is then an approximation.
* **Theorem 3 (gradient alignment).** The input gradient of a linear classifier is ``w``;
  ``cos(Sigma_r^-1 mu*, mu*) >= cos(Sigma*^-1 mu*, mu*)``, and the worst case over mu* is the Kantorovich
  bound ``2 sqrt(kappa) / (1 + kappa)`` of the condition number kappa, larger for the flatter Sigma_r.
* **Accuracy.** The L2 distance from x to the boundary of ``sign(w^T x)`` is ``|w^T x| / ||w||``, so the
  worst-case accuracy at radius eps is ``Phi((w^T mu* - eps ||w||) / sqrt(w^T Sigma* w))``.

All tensors are float64 torch tensors (inputs are converted); ``x`` is ``[n, d]``, ``y`` is ``[n]`` with
values +-1, ``mu`` is ``[d]``, ``Sigma`` is ``[d, d]`` symmetric positive definite. Distances (eps, norms)
are in the units of x. Figures are returned, never shown.
"""

from .robust import (
    adversary_rms_norm,
    ball_attack,
    effective_inverse_multipliers,
    fit_robust,
    multiplier_for_eps,
    robust_covariance,
    robust_mle,
)
from .theory import (
    DTYPE,
    MEAN_NORM,
    Gaussian,
    accuracy_closed_form,
    accuracy_empirical,
    adversarial_loss_gap_closed_form,
    adversarial_loss_gap_empirical,
    ascent_attack,
    attack_linear,
    condition_number,
    gradient_alignment,
    isotropic_like,
    lagrangian_attack,
    make_covariance,
    make_problem,
    mle,
    nll,
    random_rotation,
    sample,
    standard_classifier,
    standard_error,
    worst_case_alignment,
)
from .views import (
    accuracy_table,
    alignment_table,
    crossover_eps,
    draw_theory,
    experiment,
    figure_png,
    gap_table,
    spectrum_table,
    summary,
    theory_explorer,
    theory_figure,
)

__all__ = [
    "DTYPE",
    "Gaussian",
    "MEAN_NORM",
    "accuracy_closed_form",
    "accuracy_empirical",
    "adversarial_loss_gap_closed_form",
    "adversarial_loss_gap_empirical",
    "adversary_rms_norm",
    "ascent_attack",
    "attack_linear",
    "ball_attack",
    "condition_number",
    "effective_inverse_multipliers",
    "fit_robust",
    "gradient_alignment",
    "isotropic_like",
    "lagrangian_attack",
    "make_covariance",
    "make_problem",
    "mle",
    "multiplier_for_eps",
    "nll",
    "random_rotation",
    "robust_covariance",
    "robust_mle",
    "sample",
    "standard_classifier",
    "standard_error",
    "worst_case_alignment",
    "accuracy_table",
    "alignment_table",
    "crossover_eps",
    "draw_theory",
    "experiment",
    "figure_png",
    "gap_table",
    "spectrum_table",
    "summary",
    "theory_explorer",
    "theory_figure",
]
