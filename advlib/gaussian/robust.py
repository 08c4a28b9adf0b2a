"""Theorem 2 of the Gaussian model (paper Section 4): robust learning. The robust maximum-likelihood
covariance in closed form (``robust_covariance``), the multiplier of the Lagrangian adversary that a
radius eps calls for, and the robust fit by simulation (``fit_robust``: the inner attack in closed form,
L-BFGS on the outer problem). The data, standard learning and Theorems 1 and 3 are in
:mod:`advlib.gaussian.theory`; the statements and conventions in the package docstring."""

from __future__ import annotations

import math

import torch

from .theory import (
    DTYPE,
    Gaussian,
    _as_data,
    _as_sigma,
    _as_vector,
    _check_eps,
    _single_threaded,
    lagrangian_attack,
    mle,
    nll,
)


# --- Theorem 2: robust learning -------------------------------------------------------------------
def _check_lam(lam) -> float:
    lam = float(lam)
    if math.isnan(lam) or lam <= 0:
        raise ValueError(f"lam must be > 0 (math.inf means no adversary), got {lam!r}")
    return lam


def robust_covariance(sigma_star, lam: float) -> torch.Tensor:
    """Closed-form robust MLE covariance [d, d]: ``1/2 Sigma* + I/lam + sqrt(Sigma*/lam + Sigma*^2/4)``.

    ``lam`` is the adversary's Lagrange multiplier (penalty ``lam/2 ||delta||^2``); ``lam = inf`` gives
    Sigma* back. Computed per eigenvalue ``sigma`` of Sigma*: ``s = sigma/2 + c + sqrt(c sigma + sigma^2/4)``,
    ``c = 1/lam``, the root above c of ``(s - c)^2 = sigma s``, the stationarity condition of
    ``sigma / (s - c) + log s``. ``s / sigma`` falls as sigma grows, so the spectrum flattens.
    """
    sigma_star = _as_sigma(sigma_star, "sigma_star")
    c = 1.0 / _check_lam(lam)
    ev, vecs = torch.linalg.eigh(sigma_star)
    out = (vecs * _robust_eigs(ev, c)) @ vecs.T
    return 0.5 * (out + out.T)


def _robust_eigs(ev: torch.Tensor, c: float) -> torch.Tensor:
    """Eigenvalues of :func:`robust_covariance` from those of Sigma* and ``c = 1/lam``."""
    return ev / 2 + c + torch.sqrt(c * ev + ev ** 2 / 4)


def adversary_rms_norm(sigma_star, lam: float) -> float:
    """``sqrt(E ||delta*||^2)`` of the lam-adversary against the robust model it induces: ``tr(Sigma_r^-1)^(1/2) / lam``.

    Per eigen-direction ``delta = z / (lam s - 1)`` with ``z ~ N(0, sigma)``, and ``lam s - 1 = (s - c)/c``
    with ``(s - c)^2 = sigma s``, so ``E delta^2 = c^2 / s``.
    """
    lam = _check_lam(lam)
    if math.isinf(lam):
        return 0.0
    ev = torch.linalg.eigvalsh(_as_sigma(sigma_star, "sigma_star"))
    return _rms_norm(ev, 1 / lam)


def _rms_norm(ev: torch.Tensor, c: float) -> float:
    return float(c * torch.sqrt((1 / _robust_eigs(ev, c)).sum()))


def multiplier_for_eps(sigma_star, eps: float) -> float:
    """The multiplier lam whose adversary spends an average budget ``E ||delta||^2 = eps^2`` (inf for eps = 0).

    This is the dual variable of the robust MLE against ``max E l(x + delta)`` s.t. ``E ||delta||^2 <= eps^2``,
    for which :func:`robust_covariance` is exact. :func:`adversary_rms_norm` grows with 1/lam (its square is
    ``sum c^2 / s_i(c)`` with ``ds/dc < 2 < 2 s / c``), so bisection on c.
    """
    ev = torch.linalg.eigvalsh(_as_sigma(sigma_star, "sigma_star"))
    eps = _check_eps(eps)
    if eps == 0:
        return math.inf
    lo, hi = 0.0, 1.0
    while _rms_norm(ev, hi) < eps:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _rms_norm(ev, mid) < eps:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return 1.0 / (0.5 * (lo + hi))


def robust_mle(x, y, eps: float) -> Gaussian:
    """Closed-form robust MLE at average budget eps: the sample mean and ``robust_covariance(Sigma_hat, lam(eps))``."""
    std = mle(x, y)
    lam = multiplier_for_eps(std.sigma, eps)
    return Gaussian(std.mu, robust_covariance(std.sigma, lam))


@_single_threaded
def ball_attack(x, y, mu, sigma, eps: float, iters: int = 50) -> torch.Tensor:
    """The exact maximiser [n, d] of ``l(x + delta, y; mu, sigma)`` over ``||delta||_2 <= eps``.

    A trust-region problem for a convex quadratic: the maximum is on the sphere, at
    ``delta = (nu I - sigma^-1)^-1 sigma^-1 z`` with ``nu > 1/lambda_min(sigma)`` chosen per example so that
    ``||delta|| = eps`` (the secular equation). ``psi(nu) = 1/||delta(nu)|| - 1/eps`` is increasing and
    concave, so Newton's method started left of the root climbs to it monotonically (kept inside a
    bracket, with bisection as the fallback, against rounding).
    The "hard case" (z with no component along sigma's smallest-variance eigenvector) has probability 0
    and is not treated: there the returned step is shorter than eps.
    """
    sigma = _as_sigma(sigma)
    x, y = _as_data(x, y)
    mu = _as_vector(mu, sigma.shape[0])
    eps = _check_eps(eps)
    if eps == 0:
        return torch.zeros_like(x)
    s, q = torch.linalg.eigh(sigma)
    a = 1 / s  # curvatures; a.max() is the pole of delta(nu)
    g = ((x - y[:, None] * mu) @ q) / s  # sigma^-1 z in the eigenbasis [n, d]
    lo = torch.full((len(x),), float(a.max()), dtype=DTYPE)
    hi = lo + g.norm(dim=1) / eps + 1e-300  # there every |nu - a_i| >= ||g||/eps, so ||delta|| <= eps
    nu = lo + 1e-9 * (hi - lo)  # just right of the pole: psi < 0 unless the root is closer still
    for _ in range(iters):
        r = nu[:, None] - a
        norm = torch.sqrt(((g / r) ** 2).sum(dim=1))
        psi = 1 / norm - 1 / eps
        lo = torch.where(psi < 0, nu, lo)
        hi = torch.where(psi >= 0, nu, hi)
        dpsi = ((g ** 2) / r ** 3).sum(dim=1) / norm ** 3
        step = nu - psi / dpsi
        inside = (step > lo) & (step < hi)  # Newton if it stays in the bracket, else bisection
        nu = torch.where(psi == 0, nu, torch.where(inside, step, 0.5 * (lo + hi)))
    return (g / (nu[:, None] - a)) @ q.T


@_single_threaded
def fit_robust(x, y, *, lam: float | None = None, eps: float | None = None, max_iter: int = 300) -> Gaussian:
    """Numerical robust MLE: minimise ``mean_i max_delta [...]`` over (mu, Sigma) by L-BFGS.

    Exactly one of ``lam`` (Lagrangian adversary, inner max by :func:`lagrangian_attack`) or ``eps``
    (per-example ball, inner max by :func:`ball_attack`). The inner maximiser is recomputed at every
    evaluation and held fixed for the gradient (Danskin's theorem). Sigma is a full matrix
    (``I/lam + A A^T``, so the adversary stays bounded), mu starts at 0: nothing here assumes the answer's
    form, which is what lets it check :func:`robust_covariance`.
    """
    if (lam is None) == (eps is None):
        raise ValueError("fit_robust: pass exactly one of lam (Lagrangian adversary) or eps (L2 ball)")
    x, y = _as_data(x, y)
    d = x.shape[1]
    c = 1 / _check_lam(lam) if lam is not None else 0.0
    if eps is not None:
        eps = _check_eps(eps)
    eye = torch.eye(d, dtype=DTYPE)

    def unpack(theta):
        a = theta[d:].view(d, d)
        return theta[:d], c * eye + a @ a.T + 1e-12 * eye

    def objective(theta):
        theta = theta.detach().requires_grad_(True)
        mu, sigma = unpack(theta)
        with torch.no_grad():
            md, sd = mu.detach(), 0.5 * (sigma + sigma.T).detach()
            delta = lagrangian_attack(x, y, md, sd, lam) if lam is not None else ball_attack(x, y, md, sd, eps)
        loss = nll(x + delta, y, mu, sigma).mean()
        if lam is not None:
            loss = loss - 0.5 * lam * float((delta ** 2).sum(dim=1).mean())
        (grad,) = torch.autograd.grad(loss, theta)
        return float(loss.detach()), grad

    start = torch.linalg.cholesky(mle(x, y).sigma)
    theta = _lbfgs(objective, torch.cat([torch.zeros(d, dtype=DTYPE), start.reshape(-1)]), max_iter)
    mu, sigma = unpack(theta)
    return Gaussian(mu, 0.5 * (sigma + sigma.T))


def _lbfgs(objective, theta: torch.Tensor, max_iter: int, history: int = 10, gtol: float = 1e-10) -> torch.Tensor:
    """Minimise ``objective(theta) -> (value, gradient)`` by L-BFGS with Armijo backtracking.

    Hand-written (a few lines) because ``torch.optim`` imports torch._dynamo on first use, seconds of start-up
    for a problem with a dozen parameters.
    """
    f, g = objective(theta)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    for _ in range(max_iter):
        if float(g.abs().max()) < gtol:
            break
        q, alphas = g.clone(), []
        for s, yv in reversed(pairs):  # two-loop recursion: q <- H^-1 g
            a = float(s @ q) / float(yv @ s)
            q -= a * yv
            alphas.append(a)
        if pairs:
            s, yv = pairs[-1]
            q *= float(s @ yv) / float(yv @ yv)
        for (s, yv), a in zip(pairs, reversed(alphas), strict=True):
            q += (a - float(yv @ q) / float(yv @ s)) * s
        p = -q
        if float(g @ p) >= 0:  # not a descent direction: restart from the gradient
            p, pairs = -g, []
        t = 1.0 if pairs else min(1.0, 1.0 / float(g.norm()))
        for _ in range(40):  # backtracking; failing 40 halvings means the objective's rounding noise is reached
            f_new, g_new = objective(theta + t * p)
            if math.isfinite(f_new) and f_new <= f + 1e-4 * t * float(g @ p):
                break
            t *= 0.5
        else:
            return theta
        s, yv = t * p, g_new - g
        if float(s @ yv) > 1e-18:
            pairs = (pairs + [(s, yv)])[-history:]
        theta, f_old, f, g = theta + s, f, f_new, g_new
        if abs(f_old - f) <= 1e-15 * max(1.0, abs(f)):  # no progress left above rounding
            break
    return theta


def effective_inverse_multipliers(sigma_star, sigma_r) -> torch.Tensor:
    """Per eigenvalue pair, the ``c = 1/lam`` for which ``s = robust(sigma, c)``: ``c = s - sqrt(sigma s)`` [d].

    Pairs eigenvalues of ``sigma_r`` and ``sigma_star`` in sorted order (same eigenvectors assumed). All
    equal iff ``sigma_r`` has the form of :func:`robust_covariance`.
    """
    ev = torch.linalg.eigvalsh(_as_sigma(sigma_star, "sigma_star"))
    s = torch.linalg.eigvalsh(_as_sigma(sigma_r, "sigma_r"))
    return s - torch.sqrt(ev * s)
