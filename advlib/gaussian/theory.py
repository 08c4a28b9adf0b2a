"""The Gaussian model of paper Section 4: data, standard maximum likelihood, the Lagrangian adversary
(Theorem 1) and gradient alignment (Theorem 3), each in closed form and by simulation; robust learning
(Theorem 2) is in :mod:`advlib.gaussian.robust`. The statements, conventions and where they differ from the
paper's text are in the package docstring (:mod:`advlib.gaussian`)."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

DTYPE = torch.float64
MEAN_NORM = 1.5  # ||mu*|| of make_problem (class means at +-mu*): a clear clean vs robust trade-off at eps ~ 1
_EPS_GRID = 41  # points on the accuracy / alignment curves of the figure


def _single_threaded(fn):
    """Run ``fn`` with one intra-op thread, restoring the previous count after.

    The tensors here are tiny ([n, d] with d of a few units) and the loops many: on a shared machine extra
    OpenMP threads spin-wait on each other and make an L-BFGS fit 30x slower, not faster.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        if before == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)
    return wrapper


class Gaussian(NamedTuple):
    """Shared-covariance class-conditional model: ``x | y ~ N(y * mu, sigma)``."""

    mu: torch.Tensor  # [d]
    sigma: torch.Tensor  # [d, d]

    @property
    def w(self) -> torch.Tensor:
        """The linear classifier ``Sigma^-1 mu`` [d] (also the input gradient of ``w^T x``)."""
        return standard_classifier(self.mu, self.sigma)


# --- argument checks ------------------------------------------------------------------------------
def _check_dim(d, name: str = "d") -> int:
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {d!r}")
    return d


def _check_anisotropy(anisotropy) -> float:
    a = float(anisotropy)
    if not math.isfinite(a) or a < 1:
        raise ValueError(f"anisotropy must be a finite number >= 1 (largest / smallest eigenvalue), got {anisotropy!r}")
    return a


def _check_eps(eps, name: str = "eps") -> float:
    e = float(eps)
    if not math.isfinite(e) or e < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {eps!r}")
    return e


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return n


def _as_sigma(sigma, name: str = "sigma") -> torch.Tensor:
    s = torch.as_tensor(sigma, dtype=DTYPE)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 1:
        raise ValueError(f"{name} must be a square [d, d] matrix, got shape {tuple(s.shape)}")
    if not torch.allclose(s, s.T, rtol=1e-8, atol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    if torch.linalg.eigvalsh(s).min() <= 0:
        raise ValueError(f"{name} must be positive definite")
    return s


def _as_vector(v, d: int | None = None, name: str = "mu") -> torch.Tensor:
    t = torch.as_tensor(v, dtype=DTYPE)
    if t.ndim != 1 or (d is not None and t.shape[0] != d):
        raise ValueError(f"{name} must be a vector of length {d if d is not None else 'd'}, got shape {tuple(t.shape)}")
    return t


def _as_data(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x, dtype=DTYPE)
    y = torch.as_tensor(y, dtype=DTYPE)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be [n, d] and y [n] with n >= 1, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels -1 and +1 only")
    return x, y


def _generator(generator) -> torch.Generator:
    """A torch.Generator from a seed (int), a Generator, or None (seed 0, so runs repeat)."""
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        generator = 0
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")
    return torch.Generator().manual_seed(generator)


# --- the data -------------------------------------------------------------------------------------
def make_covariance(d: int, anisotropy: float, seed: int = 0, *, rotate: bool = True) -> torch.Tensor:
    """A [d, d] covariance with trace d whose eigenvalues are log-uniformly spaced, largest / smallest = anisotropy.

    ``rotate=False`` keeps it diagonal (eigenvalues in decreasing order); otherwise the eigenvectors are a
    random rotation drawn from ``seed``. The trace is fixed so that changing the anisotropy changes the
    shape of the noise, not its total power (the comparison Theorem 1 makes).
    """
    d, a = _check_dim(d), _check_anisotropy(anisotropy)
    ev = torch.logspace(math.log10(a), 0.0, d, dtype=DTYPE)  # a ... 1, evenly spaced in log
    ev = ev * d / ev.sum()
    if not rotate:
        return torch.diag(ev)
    q = random_rotation(d, seed)
    return (q * ev) @ q.T


def random_rotation(d: int, seed: int = 0) -> torch.Tensor:
    """A Haar-random [d, d] orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    g = torch.randn(d, d, generator=_generator(seed), dtype=DTYPE)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r))


def make_problem(d: int, anisotropy: float, seed: int = 0, *, mean_norm: float = MEAN_NORM,
                 rotate: bool = True) -> Gaussian:
    """The true model ``(mu*, Sigma*)``: Sigma* from :func:`make_covariance`, mu* of norm ``mean_norm``
    with equal weight on every eigenvector of Sigma*.

    Equal weight means every direction carries signal, including the low-variance ones: those are the
    predictive but non-robust features (a small L2 step moves x across them by many standard deviations).
    """
    mean_norm = float(mean_norm)
    if not math.isfinite(mean_norm) or mean_norm <= 0:
        raise ValueError(f"mean_norm must be a finite number > 0, got {mean_norm!r}")
    sigma = make_covariance(d, anisotropy, seed, rotate=rotate)
    _, vecs = torch.linalg.eigh(sigma)
    mu = vecs.sum(dim=1) * (mean_norm / math.sqrt(d))
    return Gaussian(mu, sigma)


def sample(n: int, mu, sigma, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws: ``y`` [n] uniform in {-1, +1} and ``x`` [n, d] ~ N(y mu, sigma). ``generator``: seed or Generator."""
    n = _check_n(n)
    sigma = _as_sigma(sigma)
    mu = _as_vector(mu, sigma.shape[0])
    g = _generator(generator)
    y = torch.randint(0, 2, (n,), generator=g).to(DTYPE) * 2 - 1
    noise = torch.randn(n, len(mu), generator=g, dtype=DTYPE) @ torch.linalg.cholesky(sigma).T
    return y[:, None] * mu + noise, y


def isotropic_like(sigma) -> torch.Tensor:
    """``tr(sigma)/d * I``: the isotropic covariance with the same total variance."""
    sigma = _as_sigma(sigma)
    d = sigma.shape[0]
    return torch.eye(d, dtype=DTYPE) * (torch.trace(sigma) / d)


def condition_number(sigma) -> float:
    """Largest / smallest eigenvalue of ``sigma``."""
    ev = torch.linalg.eigvalsh(_as_sigma(sigma))
    return float(ev[-1] / ev[0])


# --- standard learning ----------------------------------------------------------------------------
def nll(x, y, mu, sigma) -> torch.Tensor:
    """Per-example loss [n]: ``1/2 (x - y mu)^T sigma^-1 (x - y mu) + 1/2 log det sigma`` (constant dropped).

    Differentiable in every argument (used by the numerical fits and the gradient-ascent attack).
    """
    z = x - y[:, None] * mu
    quad = (z * torch.linalg.solve(sigma, z.T).T).sum(dim=1)
    return 0.5 * quad + 0.5 * torch.linalg.slogdet(sigma)[1]


def mle(x, y) -> Gaussian:
    """Maximum likelihood ``(mu, Sigma)``: ``mu = mean(y x)``, ``Sigma = mean((x - y mu)(x - y mu)^T)``."""
    x, y = _as_data(x, y)
    yx = y[:, None] * x  # y x ~ N(mu*, Sigma*): the two classes folded onto one
    mu = yx.mean(dim=0)
    z = yx - mu
    sigma = z.T @ z / len(x)
    return Gaussian(mu, 0.5 * (sigma + sigma.T))


def standard_classifier(mu, sigma) -> torch.Tensor:
    """``w = sigma^-1 mu`` [d]: the maximum-likelihood (for the true parameters, Bayes-optimal) linear classifier."""
    sigma = _as_sigma(sigma)
    return torch.linalg.solve(sigma, _as_vector(mu, sigma.shape[0]))


def _phi(t: float) -> float:
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


def accuracy_closed_form(w, mu, sigma, eps: float = 0.0) -> float:
    """Worst-case accuracy of ``sign(w^T x)`` under L2 perturbations of radius eps, on N(y mu, sigma) data.

    The attack moves x by eps toward the boundary, lowering the margin ``y w^T x`` by ``eps ||w||``;
    ``y w^T x ~ N(w^T mu, w^T sigma w)``, so the answer is ``Phi((w^T mu - eps ||w||) / sqrt(w^T sigma w))``.
    """
    sigma = _as_sigma(sigma)
    w = _as_vector(w, sigma.shape[0], "w")
    mu = _as_vector(mu, sigma.shape[0])
    eps = _check_eps(eps)
    if float(w.norm()) == 0:
        raise ValueError("w must be nonzero")
    return _phi(float((w @ mu - eps * w.norm()) / torch.sqrt(w @ sigma @ w)))


def attack_linear(w, x, y, eps: float) -> torch.Tensor:
    """The exact worst-case L2 attack on ``sign(w^T x)``: ``x - eps * y * w / ||w||`` [n, d]."""
    x, y = _as_data(x, y)
    w = _as_vector(w, x.shape[1], "w")
    eps = _check_eps(eps)
    return x - eps * y[:, None] * (w / w.norm())


def accuracy_empirical(w, x, y, eps: float = 0.0) -> float:
    """Fraction of (x, y) that ``sign(w^T x)`` still classifies correctly after :func:`attack_linear` at eps."""
    x_adv = attack_linear(w, x, y, eps)
    w = torch.as_tensor(w, dtype=DTYPE)
    return float(((x_adv @ w) * torch.as_tensor(y, dtype=DTYPE) > 0).to(DTYPE).mean())


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of an accuracy p measured on n samples."""
    return math.sqrt(max(p * (1 - p), 0.0) / n)


# --- Theorem 1: the Lagrangian adversary ----------------------------------------------------------
def _check_penalty(C, sigma: torch.Tensor) -> float:
    C = float(C)
    lam_min = float(torch.linalg.eigvalsh(sigma)[0])
    if not math.isfinite(C) or C * lam_min <= 1:
        raise ValueError(f"C must exceed 1/lambda_min(sigma) = {1 / lam_min:.6g} (else the adversary's objective is "
                         f"unbounded), got {C!r}")
    return C


def lagrangian_attack(x, y, mu, sigma, C: float) -> torch.Tensor:
    """The maximiser [n, d] of ``l(x + delta, y; mu, sigma) - C/2 ||delta||^2``: ``(C sigma - I)^-1 (x - y mu)``.

    Setting the gradient ``sigma^-1 (z + delta) - C delta`` to zero gives it; the objective is concave
    (hence this is the maximum) iff ``C > 1/lambda_min(sigma)``. The step points along ``x - y mu``
    re-weighted toward the low-variance directions, where the model is most sensitive.
    """
    sigma = _as_sigma(sigma)
    x, y = _as_data(x, y)
    mu = _as_vector(mu, sigma.shape[0])
    C = _check_penalty(C, sigma)
    z = x - y[:, None] * mu
    return torch.linalg.solve(C * sigma - torch.eye(len(mu), dtype=DTYPE), z.T).T


@_single_threaded
def ascent_attack(x, y, mu, sigma, C: float, steps: int = 100) -> torch.Tensor:
    """The same maximiser as :func:`lagrangian_attack`, found by plain gradient ascent (autograd) from delta = 0.

    An independent check of the formula. Step ``1/L`` with ``L = C - 1/lambda_max(sigma)``, the largest
    curvature of the concave objective; it converges linearly at rate ``1/(C lambda_min(sigma))``.
    """
    sigma = _as_sigma(sigma)
    x, y = _as_data(x, y)
    mu = _as_vector(mu, sigma.shape[0])
    C = _check_penalty(C, sigma)
    step = 1.0 / (C - 1.0 / float(torch.linalg.eigvalsh(sigma)[-1]))
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        obj = (nll(x + delta, y, mu, sigma) - 0.5 * C * (delta ** 2).sum(dim=1)).sum()
        (grad,) = torch.autograd.grad(obj, delta)
        delta = (delta + step * grad).detach().requires_grad_(True)
    return delta.detach()


def adversarial_loss_gap_closed_form(sigma_star, C: float, *, penalized: bool = False) -> float:
    """Expected rise of the loss under :func:`lagrangian_attack` on the standard MLE (mu*, Sigma*).

    With ``M = I + (C Sigma* - I)^-1`` the attacked residual is ``M z``, ``z ~ N(0, Sigma*)``, and M commutes
    with Sigma*: ``E l(x + delta*) - E l(x) = 1/2 (tr M^2 - d)``. With ``penalized=True`` the adversary's
    own objective (the loss minus ``C/2 ||delta||^2``) is counted: ``1/2 tr (C Sigma* - I)^-1``.
    Per eigenvalue both are convex functions of it, so at a fixed trace the isotropic Sigma* minimises them.
    """
    sigma_star = _as_sigma(sigma_star, "sigma_star")
    C = _check_penalty(C, sigma_star)
    ev = torch.linalg.eigvalsh(sigma_star)
    t = C * ev - 1
    if penalized:
        return float(0.5 * (1 / t).sum())
    return float(0.5 * (((1 + 1 / t) ** 2).sum() - len(ev)))


def adversarial_loss_gap_empirical(x, y, mu, sigma, C: float, *, penalized: bool = False) -> tuple[float, float]:
    """Monte-Carlo estimate of :func:`adversarial_loss_gap_closed_form` on samples: (mean, standard error)."""
    x, y = _as_data(x, y)
    delta = lagrangian_attack(x, y, mu, sigma, C)
    mu, sigma = torch.as_tensor(mu, dtype=DTYPE), torch.as_tensor(sigma, dtype=DTYPE)
    gap = nll(x + delta, y, mu, sigma) - nll(x, y, mu, sigma)
    if penalized:
        gap = gap - 0.5 * float(C) * (delta ** 2).sum(dim=1)
    return float(gap.mean()), float(gap.std() / math.sqrt(len(gap)))



# --- Theorem 3: gradient alignment ----------------------------------------------------------------
def gradient_alignment(w, mu) -> float:
    """``cos(w, mu)``: alignment of the classifier's input gradient ``w`` with the inter-class direction mu."""
    w, mu = torch.as_tensor(w, dtype=DTYPE), torch.as_tensor(mu, dtype=DTYPE)
    if w.shape != mu.shape or w.ndim != 1:
        raise ValueError(f"w and mu must be vectors of one length, got shapes {tuple(w.shape)} and {tuple(mu.shape)}")
    if float(w.norm()) == 0 or float(mu.norm()) == 0:
        raise ValueError("w and mu must be nonzero")
    return float(w @ mu / (w.norm() * mu.norm()))


def worst_case_alignment(sigma) -> float:
    """``min over mu of cos(sigma^-1 mu, mu) = 2 sqrt(kappa) / (1 + kappa)`` (Kantorovich), kappa = condition number."""
    k = condition_number(sigma)
    return 2 * math.sqrt(k) / (1 + k)
