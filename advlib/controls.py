"""Controls for D_rand / D_det (notebook 07): non-robust features, or label leakage?

A model trained on D_rand or D_det beats chance on the true test labels. The paper reads this as
"the attack planted non-robust features of the target class". Other readings predict the same
number, and each control below removes one of them:

- ``d_other``: D_rand with the target drawn uniformly from the 9 classes other than y (D_rand's
  uniform draw leaves ~10% of rows correctly labelled). If D_other still generalizes, those rows
  are not what the model learns from.
- ``d_rand_synthetic`` / ``d_det_synthetic``: no attack at all. One fixed random pattern per class
  (Gaussian noise of L2 norm ``target_eps``) is added to every image of that target class. The
  pattern is a trivially learnable shortcut that carries the label and nothing about real images;
  how far it gets shows how much of D_rand/D_det accuracy a shortcut can explain.
- ``relabel``: no perturbation. A model trained briefly on CIFAR-10 labels the training images
  and only its mistakes are kept, labelled with its prediction (Wallace's response to the paper).
- subset variants of the constructed sets (training rows only, nothing new is built):
  ``d_rand_t_ne_y`` (target != true label), ``d_rand_hits`` / ``d_det_hits`` (rows on which the
  source model predicts the target).

Every function here is a function of tensors (and of a model); ``build_control`` adds the files:
a feature dataset under ``datasets/constructed/<name>/`` with ``meta.json`` (settings, per-row
``source_indices`` / ``orig_labels`` / ``targets``, sha256 of the tensors). Controls use the
first ``construct_n`` images of the same seeded order as :func:`advlib.construct.construct_dataset`,
so they start from the very images D_rand and D_det were built from.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from . import __version__
from .attacks import eval_mode
from .config import CONTROL_SETS, SUBSET_VARIANTS, Profile
from .construct import (
    build_targeted_set,
    choose_targets,
    is_complete,
    model_fingerprint,
    num_classes_of,
    pool_fingerprint,
    shard_generator,
    source_role,
)
from .evaluate import fp32
from .utils import model_device, progress_bar, tensors_sha256

ALGORITHM = {
    "d_other": "targeted_pgd_l2",
    "d_rand_synthetic": "class_pattern",
    "d_det_synthetic": "class_pattern",
    "relabel": "relabel_mistakes",
}
SYNTHETIC_RULE = {"d_rand_synthetic": "rand", "d_det_synthetic": "det"}
TARGET_RULE = {
    "d_other": "t ~ Uniform{c != y} (never the true label)",
    "d_rand_synthetic": "t ~ Uniform{0..k-1} (as D_rand)",
    "d_det_synthetic": "t = (y + 1) mod k (as D_det)",
    "relabel": "t = the brief model's prediction, kept only where it is wrong",
}
VARIANT_OF = {"d_rand_t_ne_y": "d_rand", "d_rand_hits": "d_rand", "d_det_hits": "d_det"}
VARIANT_RULE = {
    "d_rand_t_ne_y": "D_rand rows whose target differs from the true label",
    "d_rand_hits": "D_rand rows the source model classifies as their target",
    "d_det_hits": "D_det rows the source model classifies as their target",
}

# Published test accuracies of the same experiments (full CIFAR-10, fractions). Keller Jordan's
# ResNet-9 replication of D_rand with these controls; Eric Wallace's "Learning from Incorrectly
# Labeled Data" (Distill 2019, a response to the paper): ResNet-18 trained on 18.8k mistakes.
REFERENCE_SOURCES = {
    "jordan": "K. Jordan, ResNet-9 replication",
    "wallace": "E. Wallace, Distill 2019, ResNet-18",
}
REFERENCES = {
    "d_rand": {"jordan": 0.839},
    "d_other": {"jordan": 0.673},
    "d_rand_synthetic": {"jordan": 0.795},
    "d_det_synthetic": {"jordan": 0.323},
    "relabel": {"wallace": 0.497},
}
FORMAT = 1  # bump when a control's construction changes (a stored set with another format is rebuilt)

# Settings that must agree for a stored control to be reused (everything that shapes its tensors).
_SETTING_KEYS = ("name", "algorithm", "format", "pool", "n", "seed", "source_model", "eps", "steps", "step_size",
                 "restarts", "random_start", "keep_only_hits", "target_rule", "num_classes", "device_type", "dtype",
                 "pattern_seed", "epochs")


# ================================================================================================
# Pieces (pure functions of tensors)
# ================================================================================================
def construction_indices(n_pool: int, n: int, seed: int) -> torch.Tensor:
    """The first ``n`` (0 = all) of the seeded order ``construct_dataset`` draws its images from."""
    order = torch.randperm(n_pool, generator=torch.Generator().manual_seed(seed))
    return order if n <= 0 else order[:min(n, n_pool)]


def pattern_generator(seed: int) -> torch.Generator:
    """The generator of the synthetic controls' class patterns (depends on the seed only)."""
    digest = hashlib.sha256(f"advlib.controls:patterns:{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def class_patterns(num_classes: int, eps: float, seed: int = 0, shape=(3, 32, 32)) -> torch.Tensor:
    """One fixed Gaussian pattern per class, each scaled to L2 norm ``eps``: [num_classes, *shape]."""
    if eps < 0:
        raise ValueError(f"pattern norm eps must be >= 0, got {eps}")
    p = torch.randn((num_classes, *shape), generator=pattern_generator(seed), dtype=torch.float64)
    p = p / p.flatten(1).norm(dim=1).view(-1, *([1] * len(shape))) * eps
    return p.float()


def synthetic_set(images, labels, *, rule: str, eps: float, seed: int = 0, indices=None,
                  generator: torch.Generator | None = None, num_classes: int = 10,
                  patterns: torch.Tensor | None = None) -> dict:
    """The synthetic control: x' = clamp(x + P[t], 0, 1), labelled t, with no attack.

    ``rule``: how t is drawn (``"rand"`` as D_rand, ``"det"`` as D_det, ``"other"``; see
    ``advlib.construct.choose_targets``); ``P``: ``class_patterns(num_classes, eps, seed)`` unless
    ``patterns`` is given. Returns CPU tensors ``images``, ``labels`` (= ``targets``),
    ``orig_labels``, ``source_indices`` and the ``patterns``."""
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    src = torch.arange(len(images)) if indices is None else torch.as_tensor(indices, dtype=torch.int64).cpu()
    y = labels[src].cpu().long()
    t = choose_targets(y, rule, num_classes, gen)
    pats = class_patterns(num_classes, eps, seed, tuple(images.shape[1:])) if patterns is None else patterns.float().cpu()
    if pats.shape != (num_classes, *images.shape[1:]):
        raise ValueError(f"patterns must have shape {(num_classes, *images.shape[1:])}, got {tuple(pats.shape)}")
    x = (images[src].cpu().float() + pats[t]).clamp(0, 1)
    return {"images": x, "labels": t.clone(), "targets": t, "orig_labels": y, "source_indices": src, "patterns": pats}


def predictions(model, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """argmax of ``model`` on ``images`` (float32, eval mode, batched), as a CPU int64 tensor."""
    device = model_device(model)
    out = []
    with eval_mode(model), torch.no_grad(), fp32(device):
        for lo in range(0, len(images), batch_size):
            xb = images[lo:lo + batch_size].to(device, torch.float32)
            out.append(model(xb).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def relabel_set(model, images, labels, *, indices=None, batch_size: int = 500) -> dict:
    """The relabel control: the images ``model`` gets wrong, labelled with its prediction.

    Returns CPU tensors ``images`` (unchanged pixels), ``labels`` (= the predictions on them),
    ``orig_labels``, ``source_indices``, and ``n_relabelled`` (images looked at)."""
    src = torch.arange(len(images)) if indices is None else torch.as_tensor(indices, dtype=torch.int64).cpu()
    x, y = images[src].cpu().float(), labels[src].cpu().long()
    pred = predictions(model, x, batch_size)
    wrong = pred != y
    return {"images": x[wrong], "labels": pred[wrong], "targets": pred[wrong], "orig_labels": y[wrong],
            "source_indices": src[wrong], "n_relabelled": len(src)}


def subset_mask(variant: str, targets: torch.Tensor, true_labels: torch.Tensor, hits: torch.Tensor | None = None):
    """Which rows of the parent set (D_rand / D_det) a subset variant keeps (a bool tensor)."""
    if variant not in SUBSET_VARIANTS:
        raise ValueError(f"unknown subset variant {variant!r}; expected one of {SUBSET_VARIANTS}")
    targets, true_labels = torch.as_tensor(targets).long(), torch.as_tensor(true_labels).long()
    if targets.shape != true_labels.shape:
        raise ValueError(f"targets and true labels differ in shape: {tuple(targets.shape)} vs {tuple(true_labels.shape)}")
    if variant == "d_rand_t_ne_y":
        return targets != true_labels
    if hits is None:
        raise ValueError(f"{variant} keeps the rows the source model classifies as their target: pass hits")
    hits = torch.as_tensor(hits).bool()
    if hits.shape != targets.shape:
        raise ValueError(f"hits must have one entry per row ({len(targets)}), got shape {tuple(hits.shape)}")
    return hits.clone()


def parent_hits(meta: dict, images: torch.Tensor, labels: torch.Tensor, source=None, batch_size: int = 500):
    """Per-row hits of a constructed D_rand / D_det (the source model predicts the row's label, its
    target): from ``meta["hit"]`` when the set recorded them, else recomputed with ``source`` on
    the stored images. Returns ``(hits, "meta" | "recomputed")``."""
    stored = meta.get("hit")
    if isinstance(stored, list) and len(stored) == len(labels):
        return torch.tensor(stored, dtype=torch.bool), "meta"
    if source is None:
        raise ValueError(f"{meta.get('name')}: meta.json records no per-row hits; pass the source model to recompute them")
    return predictions(source, images, batch_size) == labels.cpu(), "recomputed"


def subset_variant(variant: str, images: torch.Tensor, labels: torch.Tensor, meta: dict, train_labels: torch.Tensor,
                   hits: torch.Tensor | None = None) -> dict:
    """Rows of the parent set that ``variant`` keeps, with their provenance.

    ``images`` / ``labels`` / ``meta``: the parent (constructed D_rand or D_det); its row i was made
    from CIFAR-10 training image ``meta["source_indices"][i]``, whose label in ``train_labels`` is the
    row's true label. Returns ``images``, ``labels``, ``rows`` (indices into the parent),
    ``source_indices``, ``orig_labels`` and ``targets``."""
    n = len(labels)
    src = torch.tensor(meta.get("source_indices") or [], dtype=torch.int64)
    if len(src) != n:
        raise ValueError(f"{meta.get('name')}: meta.json lists {len(src)} source_indices for {n} rows")
    if len(src) and int(src.max()) >= len(train_labels):
        raise ValueError(f"{meta.get('name')}: source_indices reach {int(src.max())}, beyond the {len(train_labels)} "
                         "training images given (another training subset?)")
    targets = torch.tensor(meta["targets"], dtype=torch.int64) if "targets" in meta else labels.cpu().long()
    if not torch.equal(targets, labels.cpu().long()):
        raise ValueError(f"{meta.get('name')}: meta.json targets differ from the stored labels")
    true = train_labels.cpu().long()[src]
    keep = subset_mask(variant, targets, true, hits)
    rows = keep.nonzero().flatten()
    return {"images": images[rows], "labels": labels[rows].long(), "rows": rows, "source_indices": src[rows],
            "orig_labels": true[rows], "targets": targets[rows]}


# ================================================================================================
# Files: one control set per folder, reused when its settings match
# ================================================================================================
def control_settings(name: str, profile: Profile, images, labels, model=None) -> dict:
    """What determines control ``name`` (compared on reuse). ``model``: the model D_rand / D_det
    attack (``d_other``; ``construct.source_role``) or the briefly trained one (``relabel``);
    unused by the synthetic sets."""
    if name not in CONTROL_SETS:
        raise ValueError(f"unknown control {name!r}; expected one of {CONTROL_SETS}")
    n_pool = len(images)
    n = n_pool if profile.construct_n <= 0 else min(profile.construct_n, n_pool)
    s = {"name": name, "algorithm": ALGORITHM[name], "format": FORMAT, "n": n, "seed": profile.seed,
         "pool": {"size": n_pool, "fingerprint": pool_fingerprint(images, labels)}, "target_rule": TARGET_RULE[name]}
    if name in ("d_other", "relabel"):
        if model is None:
            raise ValueError(f"control {name!r} needs a model (the {'standard source' if name == 'd_other' else 'brief'} model)")
        which = source_role("d_rand", profile) if name == "d_other" else "brief"
        s["source_model"] = {"arch": profile.arch, "which": which, "fingerprint": model_fingerprint(model)}
        s["num_classes"] = num_classes_of(model, images)
    else:
        s["num_classes"] = 10
    if name == "d_other":
        device = model_device(model)
        s.update(eps=profile.target_eps, steps=profile.target_steps, step_size=profile.target_step_size,
                 restarts=profile.target_restarts, random_start=profile.target_restarts > 1,
                 keep_only_hits=profile.keep_only_hits, device_type=device.type,
                 dtype="bfloat16" if (profile.amp and device.type == "cuda") else "float32")
    elif name in SYNTHETIC_RULE:
        s.update(eps=profile.target_eps, pattern_seed=profile.seed)
    else:
        s["epochs"] = profile.relabel_epochs
    return s


def _same(old: dict, new: dict) -> bool:
    return all(old.get(k) == new.get(k) for k in _SETTING_KEYS)


def _read_meta(out_dir: Path) -> dict | None:
    import json

    try:
        return json.loads((out_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def build_control(name: str, *, profile: Profile, images, labels, out_dir, model=None, progress: bool = True) -> dict:
    """Build control ``name`` (one of ``CONTROL_SETS``) from the training pool into ``out_dir`` and
    return its meta.json dict; a complete set built with the same settings is returned as it is,
    one built with other settings is rebuilt (a notice says why; models trained on the old one are
    set aside by ``advlib.train.train_or_load`` since their provenance no longer matches).

    ``model``: the model D_rand / D_det attack for ``d_other``, the briefly trained model for
    ``relabel``, None for the synthetic sets. Images: the run's training pool, float NCHW in [0,1]."""
    from .data import save_feature_dataset

    out_dir = Path(out_dir).expanduser()
    settings = control_settings(name, profile, images, labels, model)
    old = _read_meta(out_dir) if is_complete(out_dir) else None
    if old is not None and old.get("complete") and _same(old, settings):
        return old
    if old is not None and progress:
        diff = [k for k in _SETTING_KEYS if old.get(k) != settings.get(k)]
        print(f"[advlib] {out_dir}: built with other settings ({', '.join(diff)}); rebuilding {name}", flush=True)
    idx = construction_indices(len(images), settings["n"], profile.seed)
    gen = shard_generator(profile.seed, name, 0)
    t0 = time.perf_counter()
    extra: dict = {}
    if name == "d_other":
        device = model_device(model)
        amp = bool(profile.amp) and device.type == "cuda"
        with progress_bar(total=len(idx), desc=f"construct {name}", unit="img", disable=not progress,
                          dynamic_ncols=True) as bar:
            r = build_targeted_set(model, images, labels, rule="other", eps=settings["eps"],
                                   step_size=settings["step_size"], steps=settings["steps"],
                                   restarts=settings["restarts"], random_start=settings["random_start"],
                                   indices=idx, generator=gen, batch_size=profile.construct_batch, amp=amp,
                                   num_classes=settings["num_classes"], keep_only_hits=settings["keep_only_hits"],
                                   pbar=bar)
        extra = {"hit_rate": r["n_hit"] / max(r["n_attacked"], 1), "n_attacked": r["n_attacked"],
                 "target_equals_label_fraction": r["n_target_is_label"] / max(r["n_attacked"], 1),
                 "dropped_misses": r["n_attacked"] - len(r["labels"]), "hit": r["hit"].tolist()}
    elif name in SYNTHETIC_RULE:
        r = synthetic_set(images, labels, rule=SYNTHETIC_RULE[name], eps=settings["eps"], seed=profile.seed,
                          indices=idx, generator=gen, num_classes=settings["num_classes"])
        norms = r["patterns"].flatten(1).norm(dim=1)
        extra = {"pattern_norm": float(norms.mean()), "pattern_sha256": tensors_sha256(r["patterns"]),
                 "mean_l2_change": float((r["images"] - images[idx].float()).flatten(1).norm(dim=1).mean()),
                 "target_equals_label_fraction": float((r["targets"] == r["orig_labels"]).float().mean())}
    else:
        r = relabel_set(model, images, labels, indices=idx, batch_size=profile.eval_batch)
        if len(r["labels"]) == 0:
            raise ValueError(f"relabel: the brief model classifies all {len(idx)} training images correctly, so there "
                             "are no mistakes to keep; lower relabel_epochs")
        extra = {"n_relabelled": r["n_relabelled"], "kept_fraction": len(r["labels"]) / r["n_relabelled"],
                 "brief_model_train_acc": 1 - len(r["labels"]) / r["n_relabelled"]}
    x, y = r["images"].contiguous(), r["labels"].contiguous()
    meta = dict(settings)
    meta.update(extra, complete=True, n_rows=len(y), source_indices=r["source_indices"].tolist(),
                orig_labels=r["orig_labels"].tolist(), targets=r["targets"].tolist(),
                seconds=round(time.perf_counter() - t0, 3), profile=profile.name,
                built_with={"advlib": __version__, "torch": torch.__version__,
                            "device": str(model_device(model)) if model is not None else "cpu"},
                sha256=tensors_sha256(x, y))
    save_feature_dataset(out_dir, x, y, meta=meta)  # meta.json is written last: it marks completion
    return meta


__all__ = [
    "ALGORITHM", "SYNTHETIC_RULE", "TARGET_RULE", "VARIANT_OF", "VARIANT_RULE", "REFERENCES", "REFERENCE_SOURCES",
    "construction_indices", "pattern_generator", "class_patterns", "synthetic_set", "predictions", "relabel_set",
    "subset_mask", "parent_hits", "subset_variant", "control_settings", "build_control",
]
