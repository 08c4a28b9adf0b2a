"""Notebook 10's sets as files: built from the run's training pool like the paper's, with another
threat model or attack, and reused while their settings match.

- ``d_robust_linf``: D_R with the L∞-robust source model's features (representation matching with the
  run's settings). Built from the same images with the same start images as the run's D_R (the first
  ``invert_n`` of the seeded order, each shard's generator that of D_R's shard), so its matched
  control is the run's control of D_R / D_NR whenever the profile is the same.
- ``d_rand_linf`` / ``d_det_linf``: targeted PGD in the L∞ ball (``beyond.linf_eps``) on the model the
  run's D_rand / D_det attack, from the first ``beyond.linf_n`` images (each shard's generator that of
  the L2 set's shard: the same random targets where the images are the same).
- ``d_det_bugs``: D_det of "just bugs" examples (:mod:`advlib.bugs`) from the first ``beyond.bugs_n``
  images, with the run's targeted-attack settings (``target_eps``, ``target_steps``,
  ``target_step_size``); ``d_det_subset`` is the run's D_det on the same images (rows, not a file).

Every set is ``datasets/constructed/<name>/`` in the release layout with a ``meta.json``: its
``settings`` (compared on reuse: another model, pool or setting builds it again), ``source_indices``
into the training pool, the true labels, targets and per-row outcomes, and the sha256 of its tensors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from . import __version__
from .bugs import just_bugs_examples, predictions
from .builders import build_robust_set, build_targeted_set, choose_targets
from .construct import INVERT_EPS, model_fingerprint, pool_fingerprint, shard_generator, source_role
from .data import load_feature_dataset, save_feature_dataset
from .utils import model_device, progress_bar, tensors_sha256

FORMAT = 1  # bump when a construction here changes
PARENT = {"d_robust_linf": "d_robust", "d_rand_linf": "d_rand", "d_det_linf": "d_det", "d_det_bugs": "d_det",
          "d_det_subset": "d_det"}  # the paper's set each imitates: its recipe (advlib.recipes.SET_RECIPE)
CONTROL = {"d_robust_linf": "control_rnr_linf", "d_rand_linf": "control_rand_linf", "d_det_linf": "control_det_linf"}
PARENT_CONTROL = {"control_rnr_linf": "control_rnr", "control_rand_linf": "control_rand",
                  "control_det_linf": "control_det"}  # the recipe of each control


def pool_order(n_pool: int, n: int, seed: int) -> torch.Tensor:
    """The first ``n`` (0 = all) of the seeded order every constructed set draws its images from
    (``advlib.construct.construct_dataset``)."""
    order = torch.randperm(n_pool, generator=torch.Generator().manual_seed(seed))
    return order if n <= 0 else order[:min(n, n_pool)]


def set_size(name: str, profile) -> int:
    """How many training images ``name`` is built from (0 in a field: the run's own size)."""
    b = profile.beyond
    own = {"d_robust_linf": b.linf_invert_n or profile.invert_n or profile.construct_n, "d_rand_linf": b.linf_n or profile.construct_n,
           "d_det_linf": b.linf_n or profile.construct_n, "d_det_bugs": b.bugs_n or profile.construct_n}
    return own[name]


def settings(name: str, profile, model, images, labels, ensemble: dict | None = None) -> dict:
    """What determines set ``name`` (all of it is compared on reuse; JSON values only)."""
    if name not in CONTROL and name != "d_det_bugs":
        raise ValueError(f"unknown set {name!r} of notebook 10; expected one of {tuple(CONTROL) + ('d_det_bugs',)}")
    n = min(set_size(name, profile), len(images)) or len(images)
    device = model_device(model)
    s = {"name": name, "format": FORMAT, "parent": PARENT[name], "n": n, "seed": profile.seed,
         "shard_size": profile.shard_size, "pool": {"size": len(images), "fingerprint": pool_fingerprint(images, labels)},
         "source_model": {"which": "robust_linf" if name == "d_robust_linf" else source_role(PARENT[name], profile),
                          "fingerprint": model_fingerprint(model)},
         "device_type": device.type, "dtype": "float32"}
    b = profile.beyond
    if name == "d_robust_linf":
        s.update(algorithm="representation_matching", steps=profile.invert_steps, step_size=profile.invert_step_size,
                 eps=INVERT_EPS, schedule=profile.invert_schedule)
    elif name in ("d_rand_linf", "d_det_linf"):
        s.update(algorithm="targeted_pgd_linf", norm="linf", eps=b.linf_eps, steps=b.linf_target_steps,
                 step_size=b.linf_target_step_size, restarts=profile.target_restarts,
                 random_start=profile.target_restarts > 1, target_rule=name.split("_")[1])
    else:
        s.update(algorithm="just_bugs_l2", norm="l2", eps=profile.target_eps, steps=profile.target_steps,
                 step_size=profile.target_step_size, weight=b.bugs_weight, target_rule="det",
                 ensemble={k: model_fingerprint(m) for k, m in sorted((ensemble or {}).items())})
    return s


def read_meta(out_dir) -> dict | None:
    f = Path(out_dir) / "meta.json"
    try:
        return json.loads(f.read_text()) if f.is_file() else None
    except ValueError:
        return None


def _complete(out_dir, want: dict) -> dict | None:
    meta = read_meta(out_dir)
    ok = meta is not None and meta.get("settings") == want and all((Path(out_dir) / f).is_file()
                                                                  for f in ("CIFAR_ims", "CIFAR_lab"))
    return meta if ok else None


def _shards(n: int, size: int):
    for k, lo in enumerate(range(0, n, size)):
        yield k, lo, min(n, lo + size)


def build(name: str, *, model, images, labels, profile, out_dir, ensemble: dict | None = None,
          progress: bool = True) -> dict:
    """Build set ``name`` of notebook 10 into ``out_dir`` (or return the meta of the one there when its
    settings match). ``model``: the L∞-robust model (``d_robust_linf``) or the model the run's targeted
    sets attack; ``ensemble``: {name: model} whose predictions a just-bugs example leaves unchanged."""
    want = settings(name, profile, model, images, labels, ensemble)
    done = _complete(out_dir, want)
    if done is not None:
        return done
    if read_meta(out_dir) is not None and progress:
        print(f"[advlib] {out_dir}: built with other settings; building {name} again", flush=True)
    idx = pool_order(len(images), want["n"], profile.seed)
    t0 = time.perf_counter()
    parts: list[dict] = []
    with progress_bar(total=len(idx), desc=f"construct {name}", unit="img", disable=not progress,
                      dynamic_ncols=True) as bar:
        for k, lo, hi in _shards(len(idx), profile.shard_size):
            gen = shard_generator(profile.seed, PARENT[name], k)  # the parent's shard: its starts / targets
            parts.append(_part(name, model, images, labels, idx[lo:hi], gen, profile, want, ensemble))
            bar.update(hi - lo)
    cat = {key: torch.cat([p[key] for p in parts]) for key in parts[0] if isinstance(parts[0][key], torch.Tensor)}
    x, y = cat["images"].contiguous(), cat["labels"].contiguous()
    meta = {"name": name, "settings": want, "complete": True, "n_rows": len(y), "source_indices": idx.tolist(),
            "orig_labels": labels[idx].tolist(), "seconds": round(time.perf_counter() - t0, 3),
            "profile": profile.name, "built_with": {"advlib": __version__, "torch": torch.__version__,
                                                    "device": str(model_device(model))}}
    for key in ("targets", "hit", "unchanged", "start_indices"):
        if key in cat:
            meta[key] = cat[key].tolist()
    for key in ("hit", "unchanged"):
        if key in cat:
            meta[f"{key}_rate"] = float(cat[key].float().mean())
    if "targets" in cat:
        meta["target_equals_label_fraction"] = float((cat["targets"] == labels[idx]).float().mean())
    if "rel_distance" in cat:
        meta["final_rel_distance"] = {"mean": float(cat["rel_distance"].mean()),
                                      "median": float(cat["rel_distance"].median())}
        meta["source_model_agreement"] = float(cat["agree"].float().mean())
    meta["sha256"] = tensors_sha256(x, y)
    save_feature_dataset(out_dir, x, y, meta=meta)  # meta.json last: it marks completion
    return meta


def _part(name, model, images, labels, idx, gen, profile, s, ensemble) -> dict:
    common = dict(indices=idx, generator=gen, batch_size=profile.construct_batch)
    if s["algorithm"] == "representation_matching":
        r = build_robust_set(model, images, labels, steps=s["steps"], step_size=s["step_size"], eps=s["eps"],
                             schedule=s["schedule"], **common)
        return {"images": r["images"], "labels": r["labels"], "start_indices": r["start_indices"],
                "rel_distance": r["rel_distance"], "agree": r["agree"]}
    if s["algorithm"] == "targeted_pgd_linf":
        r = build_targeted_set(model, images, labels, rule=s["target_rule"], eps=s["eps"], step_size=s["step_size"],
                               steps=s["steps"], restarts=s["restarts"], random_start=s["random_start"],
                               norm="linf", **common)
        return {"images": r["images"], "labels": r["labels"], "targets": r["targets"], "hit": r["hit"]}
    t = choose_targets(labels[idx].cpu(), "det", 10, gen)
    r = just_bugs_examples(model, list(ensemble.values()), images[idx], t, eps=s["eps"], steps=s["steps"],
                           step_size=s["step_size"], weight=s["weight"], batch_size=profile.construct_batch)
    return {"images": r["images"], "labels": t, "targets": t, "hit": r["hit"], "unchanged": r["unchanged"]}


def subset_of(parent_dir, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The rows of the constructed set in ``parent_dir`` made from the training images ``indices``, in
    that order: (images, labels, {"rows", "hit"}); a ValueError names what is missing."""
    meta = json.loads((Path(parent_dir) / "meta.json").read_text())
    x, y = load_feature_dataset(parent_dir)
    where = {int(i): r for r, i in enumerate(meta["source_indices"])}
    missing = [int(i) for i in indices if int(i) not in where]
    if missing:
        raise ValueError(f"{parent_dir}: built from other images than the {len(indices)} asked for ({len(missing)} "
                         "missing): beyond.bugs_n must not exceed construct_n, with the same profile")
    rows = torch.tensor([where[int(i)] for i in indices], dtype=torch.int64)
    hit = meta.get("hit") if isinstance(meta.get("hit"), list) else None
    return x[rows], y[rows], {"rows": rows, "hit": None if hit is None else torch.tensor(hit)[rows]}


def rates(models: dict, images: torch.Tensor, clean: torch.Tensor, targets: torch.Tensor, batch_size: int = 500) -> dict:
    """Per row: whether each model of ``models`` predicts the target on ``images`` ({name: bool}), and
    whether it predicts on ``images`` what it predicts on ``clean`` ({name + ":unchanged": bool})."""
    names = list(models)
    adv, orig = predictions(models.values(), images, batch_size), predictions(models.values(), clean, batch_size)
    out = {n: adv[k] == targets for k, n in enumerate(names)}
    out.update({f"{n}:unchanged": adv[k] == orig[k] for k, n in enumerate(names)})
    return out


__all__ = ["FORMAT", "PARENT", "CONTROL", "PARENT_CONTROL", "pool_order", "set_size", "settings", "read_meta",
           "build", "subset_of", "rates"]
