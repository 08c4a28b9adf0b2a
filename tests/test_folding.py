"""BatchNorm folding for attacks: same function, model untouched, weights followed as they change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlib.attacks import folded, invert_representation, pgd
from advlib.models import build_model


def _with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding has work to do."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model.eval()


@pytest.mark.parametrize("arch", ["tiny", "small", "airbench", "resnet18"])
def test_folded_view_computes_the_same_logits_and_features(arch):
    torch.manual_seed(0)
    model = _with_statistics(build_model(arch))
    view = folded(model)
    assert view is not model
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(view(x), model(x), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(view.features(x), model.features(x), atol=1e-5, rtol=1e-4)
    # the folded graph really has fewer BatchNorm calls than the model
    calls = [n for n in view.body.graph.nodes if n.op == "call_module"
             and isinstance(view.body.get_submodule(n.target), nn.BatchNorm2d)]
    total = sum(isinstance(m, nn.BatchNorm2d) for m in model.body.modules())
    assert len(calls) < total


def test_folding_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = _with_statistics(build_model("small"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    folded(model)
    assert [type(m) for m in model.modules()] == kinds
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())


def test_folded_view_follows_weight_and_statistics_changes():
    torch.manual_seed(0)
    model = _with_statistics(build_model("tiny"))
    x = torch.rand(4, 3, 32, 32)
    view = folded(model)
    with torch.no_grad():
        old = view(x).clone()
        model.body[0].weight.mul_(-1.5)          # an in-place weight update (as an optimizer's)
        model.body[1].running_var.mul_(3.0)      # and a BatchNorm statistic
        assert folded(model) is view             # same view, refreshed
        torch.testing.assert_close(view(x), model(x), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(view(x), old)
        model.load_state_dict(_with_statistics(build_model("tiny"), seed=5).state_dict())
        torch.testing.assert_close(folded(model)(x), model(x), atol=1e-5, rtol=1e-4)


def test_models_without_batchnorm_are_attacked_as_they_are():
    for arch in ("linear", "mlp"):
        model = build_model(arch).eval()
        assert folded(model) is model


def test_untraceable_models_fall_back_to_the_model():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 10)

        def forward(self, x):
            h = self.bn(self.conv(x))
            if h.mean() > 0:  # control flow on a tensor's value: torch.fx cannot trace it
                h = h * 2
            return self.fc(h.mean((2, 3)))

    model = DataDependent().eval()
    assert folded(model) is model
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    adv = pgd(model, x, y, eps=0.5, step_size=0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert ((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()


def test_adversarial_training_attacks_the_current_weights():
    """An attack between optimizer steps must see the weights of that moment, not a cached copy."""
    torch.manual_seed(0)
    model = _with_statistics(build_model("tiny"))
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(2):
        adv = pgd(model, x, y, eps=0.5, step_size=0.1, steps=2, random_start=False)
        model.train()
        opt.zero_grad()
        nn.functional.cross_entropy(model(adv), y).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(folded(model)(x), model(x), atol=1e-5, rtol=1e-4)


def test_pgd_and_matching_on_the_view_equal_the_model_up_to_rounding():
    """The attack's first gradient step is the same on the view and on the model itself."""
    torch.manual_seed(0)
    model = _with_statistics(build_model("small"))
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    view = folded(model)
    for net in (model, view):
        xr = x.clone().requires_grad_(True)
        nn.functional.cross_entropy(net(xr), y).backward()
        if net is model:
            g_model = xr.grad.clone()
        else:
            torch.testing.assert_close(xr.grad, g_model, atol=1e-6, rtol=1e-3)
    # a named layer is hooked on the model itself (the view's layers have other names)
    xs = torch.rand(8, 3, 32, 32)
    out, losses = invert_representation(model, x, xs, steps=3, step_size=0.5, features="body.3")
    assert losses[-1] < losses[0]


def test_a_replaced_layer_is_traced_anew():
    """Swapping a layer (as DDP's global-batch BatchNorm is swapped back after training) must not
    leave the view running the old layer object."""
    torch.manual_seed(0)
    model = _with_statistics(build_model("tiny"))
    x = torch.rand(4, 3, 32, 32)
    folded(model)
    new_bn = nn.BatchNorm2d(model.body[1].num_features)
    new_bn.load_state_dict(model.body[1].state_dict())
    new_bn.running_mean.add_(0.5)
    model.body[1] = new_bn.eval()
    with torch.no_grad():
        torch.testing.assert_close(folded(model)(x), model(x), atol=1e-5, rtol=1e-4)
