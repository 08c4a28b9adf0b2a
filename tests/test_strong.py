"""Every attack name against an exact answer: a linear classifier, whose L2 robust accuracy has a
closed form (an image survives iff its distance to the nearest decision boundary exceeds eps).

The inputs lie far inside [0,1] (|delta|_inf <= eps < the distance to the box), so the box never
binds and the closed form is the true robust accuracy. The rows of W differ in scale, which is
what misleads the cross-entropy gradient: PGD-CE stops short of the nearest boundary for many
images, APGD-T (targeted DLR, each wrong class in turn) walks straight to it."""

import pytest
import torch
from torch import nn

from advlib import evaluate as ev

D, K, N = 3 * 8 * 8, 10, 300


class Linear(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.fc = nn.Linear(w.shape[1], w.shape[0])
        self.fc.weight.data, self.fc.bias.data = w.clone(), b.clone()

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def linear_problem():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(K, D, generator=g) * torch.logspace(-1, 0.5, K)[:, None] * 0.05
    b = torch.zeros(K)
    x = 0.5 + 0.1 * torch.randn(N, D, generator=g).clamp(-2, 2)
    y = (x @ w.T + b).argmax(1)  # every image correct: robust accuracy = the fraction beyond eps
    return Linear(w, b), x.view(N, 3, 8, 8), y, w, b


def exact_robust_accuracy(w, b, x, y, eps):
    x = x.flatten(1)
    z = x @ w.T + b
    gap = z.gather(1, y[:, None]) - z
    dist = gap / (w[y][:, None, :] - w[None]).norm(dim=2).clamp_min(1e-12)
    dist[torch.arange(len(y)), y] = float("inf")
    return float((dist.min(1).values > eps).float().mean())


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_apgd_t_worst_and_autoattack_find_the_exact_answer_pgd_overestimates(linear_problem, eps):
    model, x, y, w, b = linear_problem
    truth = exact_robust_accuracy(w, b, x, y, eps)
    got = {a: ev.robust_accuracy(model, x, y, eps=eps, attack=a, steps=20, apgd_steps=50)
           for a in ("pgd", "apgd-t", "worst", "autoattack")}
    assert 0.1 < truth < 0.9  # a problem where the answer is informative
    for attack in ("apgd-t", "worst", "autoattack"):
        assert abs(got[attack] - truth) <= 1 / N + 1e-9, (attack, got[attack], truth)
    # no attack can report less than the truth (each reports only valid perturbations) ...
    assert all(v >= truth - 1e-9 for v in got.values())
    # ... and PGD with cross-entropy misses images the boundary is close to
    assert got["pgd"] > truth + 0.05


def test_worst_is_the_per_image_minimum_of_pgd_and_apgd_t(linear_problem):
    model, x, y, *_ = linear_problem
    pgd = ev.robust_correct(model, x, y, eps=0.1, attack="pgd")
    apgd = ev.robust_correct(model, x, y, eps=0.1, attack="apgd-t", apgd_steps=50)
    worst = ev.robust_correct(model, x, y, eps=0.1, attack="worst", apgd_steps=50)
    assert torch.equal(worst, pgd & apgd)


def test_attacks_leave_the_global_rng_and_the_model_mode_alone(linear_problem):
    model, x, y, *_ = linear_problem
    model.train()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    ev.robust_accuracy(model, x[:20], y[:20], eps=0.1, attack="autoattack", apgd_steps=5)
    assert torch.equal(torch.rand(3), before)
    assert model.training


def test_bad_attack_arguments_are_named():
    model = Linear(torch.zeros(K, D), torch.zeros(K))
    x, y = torch.full((2, 3, 8, 8), 0.5), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="attack must be one of"):
        ev.robust_accuracy(model, x, y, eps=0.1, attack="fgsm")
    with pytest.raises(ValueError, match=r"targets must be in \[1, 9\]"):
        ev.robust_accuracy(model, x, y, eps=0.1, attack="apgd-t", targets=10)
