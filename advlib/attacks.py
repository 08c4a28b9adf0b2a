"""PGD as small pieces, and representation-matching descent.

Images are float NCHW in [0,1]. A threat model is three pure functions of tensors
(``random_start``, ``step``, ``project``) registered under ``"l2"`` / ``"linf"``, as in the
robustness library's ``attack_steps``; :func:`pgd` composes them.

Attacks run the model in eval mode (BatchNorm uses running statistics, as the robustness
library does) and restore the mode they found. In eval mode a BatchNorm that follows a
convolution is an affine map, so :func:`folded` folds it into the convolution's weights: the
attacks run on that folded view (the same function up to float rounding, ~1.4x faster on the CPU).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

_TINY = 1e-12


def _flat_norm(t: torch.Tensor, p) -> torch.Tensor:
    """Per-example norm, shaped [N,1,1,1] for broadcasting."""
    return t.flatten(1).norm(p=p, dim=1).clamp_min(_TINY).view(-1, *([1] * (t.dim() - 1)))


# --- L2 ---------------------------------------------------------------------------------------
def l2_random_start(x, eps, generator=None):
    """A uniformly random direction at a radius drawn uniformly from [0, eps] (as torchattacks).

    Starting on the sphere of radius eps itself (the robustness library's choice) gave a weaker
    attack at large eps in our tests (tests/test_attacks.py compares with torchattacks).
    """
    device = "cpu" if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device)
    radius = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=device)
    noise = (noise * radius / _flat_norm(noise, 2)).to(x.device, x.dtype)
    return (x + eps * noise).clamp(0, 1)


def l2_step(x_adv, grad, step_size):
    """Move step_size along the L2-normalized gradient."""
    return x_adv + step_size * grad / _flat_norm(grad, 2)


def l2_project(x_adv, x, eps):
    """Project onto the L2 ball of radius eps around x, then onto [0,1]."""
    delta = x_adv - x
    factor = (eps / _flat_norm(delta, 2)).clamp(max=1.0)
    return (x + delta * factor).clamp(0, 1)


# --- Linf ---------------------------------------------------------------------------------------
def linf_random_start(x, eps, generator=None):
    noise = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
    noise = noise.to(x.device, x.dtype)
    return (x + (2 * noise - 1) * eps).clamp(0, 1)


def linf_step(x_adv, grad, step_size):
    return x_adv + step_size * grad.sign()


def linf_project(x_adv, x, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


@dataclass(frozen=True)
class ThreatModel:
    random_start: Callable
    step: Callable
    project: Callable
    p: float


THREAT_MODELS = {
    "l2": ThreatModel(l2_random_start, l2_step, l2_project, 2.0),
    "linf": ThreatModel(linf_random_start, linf_step, linf_project, float("inf")),
}


def threat_model(norm: str) -> ThreatModel:
    if norm not in THREAT_MODELS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {tuple(THREAT_MODELS)}")
    return THREAT_MODELS[norm]


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Run ``model`` in eval mode and put back the mode it was in (also on error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _check_inputs(x, y, eps, step_size, steps, restarts):
    if not torch.is_floating_point(x) or x.dim() != 4:
        raise ValueError(f"x must be a float NCHW tensor, got dtype {x.dtype} and shape {tuple(x.shape)}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y lengths differ: {x.shape[0]} images, {y.shape[0]} labels")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0,1], got range [{x.min().item():.3g}, {x.max().item():.3g}]")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if step_size < 0:
        raise ValueError(f"step_size must be >= 0, got {step_size}")
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    if restarts <= 0:
        raise ValueError(f"restarts must be > 0, got {restarts}")


def _score(logits, y, targeted):
    """Per-example attack objective (higher = better for the attacker) and success flag."""
    ce = F.cross_entropy(logits.float(), y, reduction="none")
    pred = logits.argmax(1)
    if targeted:
        return -ce, pred == y
    return ce, pred != y


def _better(score_new, hit_new, score_old, hit_old):
    """Success beats failure; within the same success status, the higher objective wins."""
    return (hit_new & ~hit_old) | ((hit_new == hit_old) & (score_new > score_old))


_FOLDED: "weakref.WeakKeyDictionary[torch.nn.Module, list]" = weakref.WeakKeyDictionary()


def _state_signature(model: torch.nn.Module) -> tuple:
    """Changes whenever a weight or a BatchNorm statistic does (in place, by replacement, or moved)."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device)
                 for t in (*model.parameters(), *model.buffers()))


def _fold_graph(module: torch.nn.Module):
    """(traced module, [(folded conv, conv, bn), ...]) for every BatchNorm2d whose only input is
    a Conv2d's output, or None when nothing folds or torch.fx cannot trace ``module``.

    The traced module shares every other layer with ``module`` (fx installs the same objects), so
    only the folded convolutions need refreshing when the weights change; ``module`` itself is
    never modified."""
    import torch.fx as fx

    try:
        gm = fx.symbolic_trace(module)
    except Exception:  # data-dependent control flow and the like: attack the model as it is
        return None
    mods = dict(gm.named_modules())
    pairs = []
    for node in list(gm.graph.nodes):
        src = node.args[0] if node.op == "call_module" and node.args else None
        if not (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1
                and type(mods.get(node.target)) is torch.nn.BatchNorm2d
                and type(mods.get(src.target)) is torch.nn.Conv2d and mods[node.target].track_running_stats):
            continue
        conv, bn = mods[src.target], mods[node.target]
        fused = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
        parent, _, name = src.target.rpartition(".")
        setattr(mods[parent], name, fused)  # a container fx created, or the traced module itself
        mods[src.target] = fused
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        pairs.append((fused, conv, bn))
    if not pairs:
        return None
    gm.recompile()
    return gm, pairs


def _refresh(pairs) -> None:
    """Recompute the folded weights from the convolutions and BatchNorm statistics they replace."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    with torch.no_grad():
        for fused, conv, bn in pairs:
            w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight, bn.bias)
            # one layout whatever the model's (channels-last after training, contiguous when loaded):
            # the same weights give the same rounding in every process
            fused.weight = torch.nn.Parameter(w.detach().contiguous(), requires_grad=False)
            fused.bias = torch.nn.Parameter(b.detach().clone(), requires_grad=False)


def folded(model: torch.nn.Module) -> torch.nn.Module:
    """What attacks run: a view of ``model`` in which each BatchNorm that directly follows a
    convolution is folded into it (traced with ``torch.fx``), or ``model`` itself when nothing folds.

    In eval mode such a BatchNorm is an affine map per channel, so the view computes the same
    function (up to float rounding) without a BatchNorm forward and backward per layer and step:
    ~1.4x faster attacks on the CPU (``benchmarks/bench_pgd.py``). The view shares all other layers
    with ``model``, so it must run while ``model`` is in eval mode (the attacks see to that); an
    advlib model keeps its ``features`` (only its ``body`` is traced). The view is cached per model,
    and its folded weights are recomputed whenever a weight or running statistic changes (an
    optimizer step, ``load_state_dict``, ``.to``), and the view is traced anew when a layer is
    replaced: an attack during training sees the current weights.
    """
    if hasattr(model, "_orig_mod"):
        return model  # torch.compile'd: compilation fuses on its own, and tracing would undo it
    sig = _state_signature(model)
    layers = tuple(map(id, model.modules()))  # a replaced layer (e.g. BatchNorm swapped back after DDP): retrace
    entry = _FOLDED.get(model)
    if entry is None or entry[3] != layers:
        body = getattr(model, "body", None)
        has_features = isinstance(body, torch.nn.Module) and callable(getattr(model, "features", None))
        built = _fold_graph(body if has_features else model)
        view, pairs = None, []
        if built is not None:
            traced, pairs = built
            if has_features:  # a shallow copy with its own child table: model keeps its body
                import copy

                view = copy.copy(model)
                view._modules = dict(model._modules)
                view.body = traced
            else:
                view = traced
            view.training = False  # the flag only: calling .eval() would reach the shared layers
            traced.training = False
        entry = _FOLDED[model] = [None, view, pairs, layers]  # view None: nothing folds (never model: a weak key)
    if entry[1] is None:
        return model
    if entry[0] != sig:
        _refresh(entry[2])
        entry[0] = sig
    return entry[1]


def pgd(model, x, y, *, norm="l2", eps, step_size, steps, targeted=False, random_start=True,
        restarts=1, generator: torch.Generator | None = None, stop_on_success: bool = False):
    """Projected gradient descent within an ``norm`` ball of radius ``eps`` around ``x``.

    x: images in [0,1], NCHW float; y: int64 labels (the target class when ``targeted``).
    Untargeted maximizes CE(model(x_adv), y); targeted minimizes CE(model(x_adv), y).
    Returns x_adv with ||x_adv - x||_p <= eps (+1e-6) and values in [0,1]. For each example the
    best candidate is kept: the clean input, every iterate of every restart, and the final one
    (a success beats a failure; then the higher objective), so the result is never weaker than
    the clean input and more restarts are never weaker. ``generator`` (CPU) makes random starts
    reproducible independently of the global RNG.

    ``stop_on_success``: stop attacking an example as soon as one of its candidates succeeds
    (a clean input already misclassified is never attacked). Which examples end in success is
    the same as without it (each example's iterates do not depend on the others', and the random
    starts are drawn for the whole batch either way); only the objective among successes may be
    lower. Evaluation wants exactly this, and it saves most of the work on a non-robust model;
    construction wants the strongest point and leaves it off.
    """
    _check_inputs(x, y, eps, step_size, steps, restarts)
    tm = threat_model(norm)
    nhwc_in = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if nhwc_in else torch.contiguous_format
    # The attack runs in channels_last (NHWC): 1.3-1.5x faster for the small CNNs on the CPU and
    # the layout GPUs prefer; the result comes back in the caller's layout.
    x = x.detach().contiguous(memory_format=torch.channels_last)
    y = y.to(x.device)
    sign = -1.0 if targeted else 1.0
    use_start = random_start and eps > 0
    if not use_start:
        restarts = 1  # without a random start every restart is the same deterministic run
    best = _Best(x, targeted)
    with eval_mode(model), frozen_params(model), torch.enable_grad():
        model = folded(model)
        if use_start:  # otherwise the first iterate is x itself and gets scored below
            with torch.no_grad():
                best.offer(x, model(x), y)
        for _ in range(restarts):
            start = tm.project(tm.random_start(x, eps, generator), x, eps) if use_start else x.clone()
            live = _Live(best, x, y, start, stop_on_success)
            for _ in range(steps):
                if live.empty:
                    break
                x_adv = live.x_adv.requires_grad_(True)
                logits = model(x_adv)
                loss = F.cross_entropy(logits.float(), live.y)
                (grad,) = torch.autograd.grad(sign * loss, x_adv)
                with torch.no_grad():
                    best.offer(x_adv.detach(), logits.detach(), live.y, live.idx)
                    live.advance(tm.project(tm.step(x_adv.detach(), grad, step_size), live.x, eps))
            if not live.empty:
                with torch.no_grad():  # score the final iterate (one forward, no graph)
                    best.offer(live.x_adv, model(live.x_adv), live.y, live.idx)
    return best.x.contiguous(memory_format=fmt)


class _Live:
    """The examples a restart still attacks: all of them, or (``prune``) those without a success yet."""

    def __init__(self, best, x, y, start, prune):
        self.best, self.prune = best, prune
        self.idx = (~best.hit).nonzero().flatten() if prune else None
        if self.idx is None:
            self.x, self.y, self.x_adv = x, y, start
        else:
            self.x, self.y, self.x_adv = x[self.idx], y[self.idx], start[self.idx]
        self.x_adv = self.x_adv.detach().contiguous(memory_format=torch.channels_last)

    @property
    def empty(self) -> bool:
        return self.x_adv.shape[0] == 0

    def advance(self, x_next):
        """Take the next iterate, and drop the examples whose attack has now succeeded."""
        if self.prune:
            keep = ~self.best.hit[self.idx]
            if not bool(keep.all()):
                self.idx, self.x, self.y, x_next = self.idx[keep], self.x[keep], self.y[keep], x_next[keep]
        self.x_adv = x_next.contiguous(memory_format=torch.channels_last)


class _Best:
    """Per-example best candidate so far: success beats failure, then the higher objective."""

    def __init__(self, x, targeted):
        self.x = x.clone()
        self.score = torch.full((x.shape[0],), -float("inf"), device=x.device)
        self.hit = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        self.targeted = targeted

    def offer(self, x_new, logits, y, idx=None):
        """Offer candidates for every example, or (``idx``) for the examples at those positions."""
        score, hit = _score(logits, y, self.targeted)
        if idx is None:
            better = _better(score, hit, self.score, self.hit)
            self.x = torch.where(better.view(-1, *([1] * (x_new.dim() - 1))), x_new, self.x)
            self.score = torch.where(better, score, self.score)
            self.hit = torch.where(better, hit, self.hit)
            return
        better = _better(score, hit, self.score[idx], self.hit[idx])
        sel = idx[better]
        self.x[sel] = x_new[better]
        self.score[sel] = score[better]
        self.hit[sel] = hit[better]


@contextlib.contextmanager
def frozen_params(model: torch.nn.Module):
    """Turn off ``requires_grad`` on the model's parameters, restoring the flags on exit.

    Attacks only need gradients with respect to the input; with frozen weights autograd skips
    the weight-gradient bookkeeping (a few percent of an attack step on the CPU).
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def feature_fn(model, features=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The representation g(x) that representation matching descends on, as a function [N,...] -> [N,D].

    ``features``: None = ``model.features`` (every advlib model has it: the penultimate layer); a
    callable ``g(x)``; or the name of a submodule (``"body.12"``, as in ``model.named_modules()``)
    whose output is captured with a forward hook while the model runs. Anything else raises."""
    if features is None:
        if not callable(getattr(model, "features", None)):
            raise ValueError(f"{type(model).__name__} has no .features(x) method: pass features= a function "
                             "x -> representation, or the name of a layer (see model.named_modules())")
        return lambda x: model.features(x).flatten(1)
    if callable(features):
        return lambda x: features(x).flatten(1)
    if isinstance(features, str):
        try:
            layer = model.get_submodule(features)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n][:12]
            raise ValueError(f"features={features!r}: no such layer in {type(model).__name__}; "
                             f"layer names look like {names}") from None

        def hooked(x):
            box = []
            handle = layer.register_forward_hook(lambda _m, _i, out: box.append(out))
            try:
                model(x)
            finally:
                handle.remove()
            if not box or not isinstance(box[0], torch.Tensor):
                raise ValueError(f"features={features!r}: the layer produced no tensor output")
            return box[0].flatten(1)

        return hooked
    raise ValueError(f"features must be None, a callable or a layer name, got {type(features).__name__}")


STEP_SCHEDULES = ("constant", "linear", "cosine")


def step_schedule(step_size: float, steps: int, schedule: str = "constant") -> list[float]:
    """Step lengths of a descent: ``constant``; ``linear`` decay from ``step_size`` to step_size/steps;
    ``cosine`` from ``step_size`` to ~0. A decaying step lets the last steps settle instead of
    oscillating around the minimum at a fixed length (normalized-gradient steps never shrink)."""
    if schedule not in STEP_SCHEDULES:
        raise ValueError(f"step schedule must be one of {STEP_SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return [float(step_size)] * steps
    if schedule == "linear":
        return [step_size * (steps - t) / steps for t in range(steps)]
    return [step_size * 0.5 * (1 + math.cos(math.pi * t / steps)) for t in range(steps)]


def invert_representation(model, x_target, x_start, *, steps, step_size, eps=1000.0,
                          log_every: int = 1, features=None, schedule: str = "constant", snapshots: int = 0):
    """Representation matching: descend ||g(x_r) - g(x_target)||_2 starting from ``x_start``.

    g is ``model.features`` (the penultimate layer) unless ``features`` names another (see
    :func:`feature_fn`). Normalized-gradient L2 steps of ``step_size``, kept within an L2 ball of
    radius ``eps`` around the start (the paper's 1000, i.e. effectively unconstrained) and in
    [0,1]; ``schedule`` shapes the step lengths over the descent (:func:`step_schedule`; the
    paper's is constant). The model runs in eval mode with frozen weights, and both are restored. Returns
    (x_r, losses) where losses is a list of per-step mean matching losses (every ``log_every``
    steps, plus the final one) and the last entry is the per-example final loss tensor's mean.

    ``snapshots=k > 0`` also records the trajectory at k+1 evenly spaced steps ``i * steps // k``
    (k is capped at ``steps``; step 0 is ``x_start``, the last is x_r) and returns
    ``(x_r, losses, {"steps": [...], "images": [k+1, N, C, H, W], "distance": [k+1, N]})``, CPU float
    tensors; ``distance`` is the per-example ||g(x_t) - g(x_target)||_2 at those images.
    """
    if x_target.shape != x_start.shape:
        raise ValueError(f"x_target {tuple(x_target.shape)} and x_start {tuple(x_start.shape)} differ in shape")
    if steps <= 0:
        raise ValueError(f"steps must be > 0, got {steps}")
    k = min(int(snapshots), steps)
    snap_steps = [i * steps // k for i in range(k + 1)] if k > 0 else []
    snap_x, snap_d = [], []
    # model.features runs on the folded copy; a named layer or a given function on the model itself
    g = feature_fn(folded(model) if features is None and callable(getattr(model, "features", None)) else model,
                   features)
    tm = THREAT_MODELS["l2"]
    lengths = step_schedule(step_size, steps, schedule)
    fmt = torch.channels_last if (x_start.is_contiguous(memory_format=torch.channels_last)
                                  and not x_start.is_contiguous()) else torch.contiguous_format
    # A ball wider than the image cube's diameter never binds: then only the [0,1] clamp applies.
    unconstrained = eps >= x_start[0].numel() ** 0.5
    logged = []
    with eval_mode(model), frozen_params(model):
        # NHWC: the layout the CPU's convolutions (and GPUs) run fastest in, as in pgd
        x0 = x_start.detach().contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            target = g(x_target.detach().contiguous(memory_format=torch.channels_last)).float()
        x_r = x0.clone()
        with torch.enable_grad():
            for t in range(steps):
                x_r.requires_grad_(True)
                per_ex = (g(x_r).float() - target).norm(dim=1)
                (grad,) = torch.autograd.grad(per_ex.sum(), x_r)
                if t % log_every == 0:
                    logged.append(per_ex.detach().mean())  # a tensor: no host sync inside the loop
                if t in snap_steps:
                    snap_x.append(x_r.detach().float().cpu())
                    snap_d.append(per_ex.detach().cpu())
                with torch.no_grad():
                    x_r = tm.step(x_r.detach(), -grad, lengths[t])
                    x_r = x_r.clamp_(0, 1) if unconstrained else tm.project(x_r, x0, eps)
        with torch.no_grad():
            final = (g(x_r).float() - target).norm(dim=1)
    losses = torch.stack(logged + [final.mean()]).tolist() if logged else [final.mean().item()]
    x_r = x_r.detach().contiguous(memory_format=fmt)
    if not snap_steps:
        return x_r, losses
    snap_x.append(x_r.float().cpu())
    snap_d.append(final.cpu())
    return x_r, losses, {"steps": snap_steps, "images": torch.stack(snap_x).contiguous(), "distance": torch.stack(snap_d)}


def representation_distance(model, x_a, x_b, relative: bool = True, features=None) -> torch.Tensor:
    """Per-example ||g(a) - g(b)||_2, divided by ||g(b)|| when ``relative`` (g as in :func:`feature_fn`)."""
    g = feature_fn(model, features)
    with eval_mode(model), torch.no_grad():
        ga, gb = g(x_a).float(), g(x_b).float()
    d = (ga - gb).norm(dim=1)
    return d / gb.norm(dim=1).clamp_min(_TINY) if relative else d
