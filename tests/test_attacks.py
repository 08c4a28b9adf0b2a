"""Invariants of advlib.attacks on tiny CPU inputs, and a strength check against torchattacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic

from advlib.attacks import invert_representation, pgd
from advlib.evaluate import accuracy, robust_accuracy
from advlib.models import build_model
from advlib.train import TrainConfig, fit


@pytest.fixture(scope="module")
def trained():
    """A tiny net trained for a few seconds (~90% test accuracy) and 200 test images."""
    torch.manual_seed(0)
    model = build_model("tiny")
    x, y = synthetic(400, 1)
    cfg = TrainConfig(arch="tiny", epochs=3, batch_size=50, lr=0.05, schedule="constant", augment="")
    fit(model, x, y, cfg, progress=False)
    xt, yt = synthetic(200, 2)
    return model.eval(), xt, yt


def _norms(d: torch.Tensor, p) -> torch.Tensor:
    return d.flatten(1).norm(p=p, dim=1)


@pytest.mark.parametrize("norm,eps,p", [("l2", 0.5, 2), ("linf", 8 / 255, float("inf"))])
def test_norm_bound_and_range(tiny_batch, norm, eps, p):
    x, y = tiny_batch
    model = build_model("tiny").eval()
    x_adv = pgd(model, x, y, norm=norm, eps=eps, step_size=eps / 2, steps=4, generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.is_contiguous(), "returned in the caller's (NCHW) layout"
    assert (_norms(x_adv - x, p) <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any(), "the attack should move at least some pixels"


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_eps_zero_returns_input(tiny_batch, norm):
    x, y = tiny_batch
    x_adv = pgd(build_model("tiny"), x, y, norm=norm, eps=0.0, step_size=0.1, steps=2)
    assert torch.equal(x_adv, x)


def test_robust_not_above_clean_per_example(trained):
    model, x, y = trained
    x_adv = pgd(model, x, y, eps=0.5, step_size=0.125, steps=10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y
        adv_ok = model(x_adv).argmax(1) == y
    # The clean input is a candidate, so an already-misclassified example stays misclassified.
    assert not (adv_ok & ~clean_ok).any()
    assert adv_ok.float().mean() < clean_ok.float().mean() - 0.1, "eps=0.5 should hurt this model"


@pytest.mark.parametrize("restarts", [1, 2])
def test_stop_on_success_breaks_the_same_examples_with_less_work(trained, restarts):
    model, x, y = trained
    seen = []
    kw = dict(eps=0.5, step_size=0.125, steps=10, restarts=restarts)
    outs = {}
    for stop in (False, True):
        seen.clear()
        handle = model.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
        try:
            x_adv = pgd(model, x, y, generator=torch.Generator().manual_seed(0), stop_on_success=stop, **kw)
        finally:
            handle.remove()
        with torch.no_grad():
            outs[stop] = (model(x_adv).argmax(1) == y, sum(seen))
        assert (_norms(x_adv - x, 2) <= 0.5 + 1e-6).all()
    (ok_full, work_full), (ok_stop, work_stop) = outs[False], outs[True]
    assert torch.equal(ok_full, ok_stop), "which examples survive does not depend on stopping early"
    assert ok_stop.float().mean() < 0.8, "the attack breaks most of them"
    assert work_stop < 0.85 * work_full, (work_stop, work_full)


def test_stop_on_success_with_everything_already_misclassified(trained):
    model, x, y = trained
    wrong = (y + 1) % 10
    with torch.no_grad():
        assert (model(x).argmax(1) != wrong).float().mean() > 0.8
    x_adv = pgd(model, x, wrong, eps=0.5, step_size=0.125, steps=3, generator=torch.Generator().manual_seed(0),
                stop_on_success=True)
    with torch.no_grad():
        clean_wrong = model(x).argmax(1) != wrong
    # images misclassified clean are returned as they are
    assert torch.equal(x_adv[clean_wrong], x[clean_wrong])


def test_targeted_reaches_target(trained):
    model, x, y = trained
    target = (y + 1) % 10
    x_adv = pgd(model, x[:100], target[:100], eps=3.0, step_size=0.3, steps=20, targeted=True,
                generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == target[:100]).float().mean().item()
        before = (model(x[:100]).argmax(1) == target[:100]).float().mean().item()
    assert before < 0.1
    assert hit > 0.8  # most examples


def test_restarts_never_weaker(trained):
    model, x, y = trained
    x, y = x[:60], y[:60]
    kw = dict(eps=0.25, step_size=0.0625, steps=5)
    one = pgd(model, x, y, restarts=1, generator=torch.Generator().manual_seed(7), **kw)
    three = pgd(model, x, y, restarts=3, generator=torch.Generator().manual_seed(7), **kw)
    with torch.no_grad():
        l1, l3 = model(one), model(three)
    hit1, hit3 = l1.argmax(1) != y, l3.argmax(1) != y
    ce1 = F.cross_entropy(l1, y, reduction="none")
    ce3 = F.cross_entropy(l3, y, reduction="none")
    assert not (hit1 & ~hit3).any(), "a success with 1 restart must stay a success with 3"
    same = hit1 == hit3
    assert (ce3[same] >= ce1[same] - 1e-4).all()
    assert hit3.sum() >= hit1.sum()


@pytest.mark.parametrize("training", [True, False])
def test_model_mode_restored_and_bn_untouched(tiny_batch, training):
    x, y = tiny_batch
    model = build_model("tiny").train(training)
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    pgd(model, x, y, eps=0.5, step_size=0.1, steps=2)
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    # the attack runs in eval mode: BatchNorm running statistics are not updated
    assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items())


def test_same_generator_same_result(tiny_batch):
    x, y = tiny_batch
    model = build_model("tiny").eval()
    a = pgd(model, x, y, eps=0.5, step_size=0.1, steps=2, generator=torch.Generator().manual_seed(3))
    b = pgd(model, x, y, eps=0.5, step_size=0.1, steps=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("change,match", [
    (dict(eps=-0.1), "eps"),
    (dict(steps=0), "steps"),
    (dict(step_size=-1.0), "step_size"),
    (dict(restarts=0), "restarts"),
    (dict(norm="l3"), "norm"),
    (dict(y=torch.zeros(5, dtype=torch.long)), "lengths"),
    (dict(x="nan"), "NaN"),
    (dict(x="big"), r"\[0,1\]"),
])
def test_bad_inputs_raise(tiny_batch, change, match):
    x, y = tiny_batch
    kw = dict(norm="l2", eps=0.5, step_size=0.1, steps=2)
    kw.update({k: v for k, v in change.items() if k not in ("x", "y")})
    if change.get("x") == "nan":
        x = x.clone()
        x[0, 0, 0, 0] = float("nan")
    elif change.get("x") == "big":
        x = x * 2
    y = change.get("y", y)
    with pytest.raises(ValueError, match=match):
        pgd(build_model("tiny"), x, y, **kw)


def test_invert_representation_descends(trained):
    model, x, _ = trained
    target, start = x[:16], x[16:32].flip(0)
    x_r, losses = invert_representation(model, target, start, steps=15, step_size=0.5)
    assert x_r.shape == start.shape
    assert x_r.min() >= 0 and x_r.max() <= 1
    assert losses[-1] < 0.8 * losses[0]


def test_at_least_as_strong_as_torchattacks(trained):
    torchattacks = pytest.importorskip("torchattacks", reason="torchattacks (and its scipy dependency) not installed")
    model, x, y = trained
    eps, steps = 0.5, 10
    alpha = 2.5 * eps / steps
    ours = robust_accuracy(model, x, y, eps=eps, steps=steps, step_size=alpha)
    torch.manual_seed(0)
    x_ta = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps)(x, y)
    assert (_norms(x_ta - x, 2) <= eps + 1e-4).all()
    theirs = accuracy(model, x_ta, y)
    clean = accuracy(model, x, y)
    assert theirs < clean, "sanity: the reference attack works on this model"
    assert ours <= theirs + 0.01, f"advlib PGD robust acc {ours:.3f} vs torchattacks {theirs:.3f}"


def test_l2_random_start_radius_is_uniform_in_0_eps_and_direction_uniform():
    """What the docstring and README say: a uniformly random direction at a radius drawn from U[0, eps]
    (as torchattacks), not uniform in the ball (whose radius would concentrate near eps)."""
    from advlib.attacks import l2_random_start

    eps = 0.5
    x = torch.full((4000, 3, 8, 8), 0.5)  # mid-grey: the [0,1] clamp never bites at this radius
    r = _norms(l2_random_start(x, eps, torch.Generator().manual_seed(0)) - x, 2)
    assert (r <= eps + 1e-6).all()
    # U[0, eps]: mean eps/2, quartiles at eps/4 and 3eps/4 (uniform in the 192-dim ball: median ~0.996 eps)
    assert r.mean().item() == pytest.approx(eps / 2, abs=0.01)
    q = torch.quantile(r, torch.tensor([0.25, 0.5, 0.75]))
    assert torch.allclose(q, torch.tensor([0.25, 0.5, 0.75]) * eps, atol=0.015), q
    d = (l2_random_start(x, eps, torch.Generator().manual_seed(1)) - x).flatten(1)
    mean_dir = (d / d.norm(dim=1, keepdim=True)).mean(0)
    assert mean_dir.norm().item() < 0.05, "directions have no preferred orientation"


@pytest.mark.parametrize("training", [True, False])
def test_invert_representation_leaves_batchnorm_statistics_and_mode_unchanged(training):
    model = build_model("tiny").train(training)
    # non-trivial running statistics, so a silent update would show
    with torch.no_grad():
        model.train()
        model(torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
        model.train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = [p.requires_grad for p in model.parameters()]
    g = torch.Generator().manual_seed(2)
    x_t, x_0 = torch.rand(8, 3, 32, 32, generator=g), torch.rand(8, 3, 32, 32, generator=g)
    invert_representation(model, x_t, x_0, steps=5, step_size=0.2)
    assert model.training is training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "weights or BatchNorm buffers changed"
    assert [p.requires_grad for p in model.parameters()] == grads_before
