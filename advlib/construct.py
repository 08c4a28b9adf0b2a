"""Build the four datasets of Section 3 (Ilyas et al. 2019) from a training set and the source models,
as files: the source models, the shards, the resume, the settings that must match for a reuse.
The constructions themselves are functions of tensors in :mod:`advlib.builders`.

- ``d_robust`` / ``d_non_robust`` (Sec. 3.1, D_R / D_NR): for each training pair (x, y), start from
  a *different*, randomly chosen training image (the start image) and descend ||g(x_r) - g(x)||_2
  with normalized-gradient L2 steps; keep the label y. g is the penultimate layer of the L2-robust
  model (D_R) or of the standard model (D_NR).
- ``d_rand`` / ``d_det`` (Sec. 3.2): targeted L2 PGD on the standard model toward t, relabel as t.
  D_rand: t uniform over all classes (as the paper samples it, so t may equal y: the fraction
  where it does is recorded in meta.json); D_det: t = (y + 1) mod k.

Work is split into shards of ``profile.shard_size`` images written atomically to
``out_dir/shards/shard_00000.pt`` so that a killed build resumes where it stopped. Each shard's
randomness (start images, targets, random starts) comes from a generator seeded by
(seed, dataset name, shard index) only, so a resumed build writes the same tensors as an
uninterrupted one. At the end the shards are merged into the release layout
(``CIFAR_ims``, ``CIFAR_lab``) plus ``meta.json``, and the shard folder is removed.

Under torchrun (see :mod:`advlib.dist`) shard k is built by rank k % world and rank 0 merges
after a barrier; since shards depend only on their index, the set equals the single-process one.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import torch

from . import __version__, dist
from .builders import (
    INVERT_EPS,
    autocast_for,
    build_robust_set,
    build_targeted_set,
    choose_targets,
    num_classes_of,
    other_indices,
)
from .config import DATASETS, Profile
from .utils import atomic_torch_save, atomic_write_json, get_device, model_device, progress_bar, tensors_sha256

# What each dataset is built with, and from which source model.
ALGORITHM = {
    "d_robust": "representation_matching",
    "d_non_robust": "representation_matching",
    "d_rand": "targeted_pgd_l2",
    "d_det": "targeted_pgd_l2",
}
SOURCE_ROLE = {"d_robust": "robust", "d_non_robust": "standard", "d_rand": "standard", "d_det": "standard"}
TARGETED_SETS = ("d_rand", "d_det")  # and the D_other control: attack the same model as these
TARGET_RULE = {
    "d_rand": "t ~ Uniform{0..k-1} (paper: uniformly at random among classes; t may equal y)",
    "d_det": "t = (y + 1) mod k",
}
SHARD_FORMAT = 1  # bump when the shard file layout changes

# Meta keys that must agree for existing shards / a finished set to be reused.
# Device type and dtype are among them: bf16 GPU shards never merge with fp32 CPU shards.
_MATCH_KEYS = ("name", "algorithm", "source_model", "pool", "n", "seed", "shard_size", "construct_batch",
               "steps", "step_size", "eps", "restarts", "random_start", "keep_only_hits", "target_rule",
               "num_classes", "shard_format", "device_type", "dtype", "schedule")


# ================================================================================================
# Source models
# ================================================================================================
def source_role(name: str, profile: Profile) -> str:
    """Which source model builds ``name``: ``SOURCE_ROLE``, except that the targeted sets attack the
    "targeted" model when the profile trains one (a ``sources.targeted`` recipe with epochs > 0)."""
    if name in TARGETED_SETS and profile.sources.has_targeted:
        return "targeted"
    return SOURCE_ROLE[name]


def source_roles(profile: Profile) -> tuple[str, ...]:
    """The source models a profile trains: standard and robust, and "targeted" when asked for."""
    return ("standard", "robust") + (("targeted",) if profile.sources.has_targeted else ())


def source_models(profile: Profile, train_images, train_labels, paths, eval_data=None, progress=True) -> dict:
    """Train (or load) the two source models of Section 3.

    With ``profile.standard_checkpoint`` / ``robust_checkpoint`` set, that source model is loaded from
    a robustness-library CIFAR checkpoint instead (``advlib.external``) and stored in its folder
    with the file's sha256 as provenance.

    Returns ``{"standard": model, "robust": model, "histories": {"standard": h, "robust": h}}``:
    standard training (``train_config(profile, "standard")``) and L2 adversarial training
    (``train_config(profile, "robust")``; paper: eps 0.5, 7 steps of 0.1), kept in
    ``paths.source_model("standard")`` / ``paths.source_model("robust")`` and resumed from there;
    with a ``profile.sources.targeted`` recipe (epochs > 0) also ``"targeted"``, the standard model
    of the targeted sets (``train_config(profile, "targeted")``),
    on ``profile.device``. Each is keyed by its provenance (the sha256 of the CIFAR-10 training
    tensors and its config): other data or settings train a new model, never reuse the old one.
    """
    from . import train as tr

    device = get_device(profile.device)
    out: dict = {"histories": {}}
    for role in source_roles(profile):
        ckpt = getattr(profile, f"{role}_checkpoint", "")
        if ckpt:  # bring your own: a robustness-library checkpoint instead of training
            from .external import checkpoint_provenance, load_robustness_checkpoint

            model = load_robustness_checkpoint(ckpt, profile.arch, device=device)
            prov = {**checkpoint_provenance(ckpt, profile.arch), "dataset": "cifar10"}
            tr.save_loaded(model, profile.arch, paths.source_model(role), prov)
            out[role] = model
            out["histories"][role] = {"loaded_from": prov}
            continue
        cfg = tr.train_config(profile, role)
        model, history = tr.train_or_load(cfg, train_images, train_labels, paths.source_model(role),
                                          eval_data=eval_data, progress=progress, device=device,
                                          origin="cifar10", dataset="cifar10", eval_every=profile.eval_every)
        out[role] = model
        out["histories"][role] = history
    return out


# ================================================================================================
# Small pieces
# ================================================================================================
def shard_generator(seed: int, name: str, shard: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, name, shard): stable across runs and processes."""
    digest = hashlib.sha256(f"advlib.construct:{seed}:{name}:{shard}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


# ================================================================================================
# Fingerprints and settings (what must match for a resume / a reuse)
# ================================================================================================
def model_fingerprint(model) -> str:
    """Short sha256 over the state dict (names, shapes, dtypes, bytes): which weights built a set."""
    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key.removeprefix('_orig_mod.')}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def pool_fingerprint(images: torch.Tensor, labels: torch.Tensor, samples: int = 256) -> str:
    """Short sha256 over all labels and ~``samples`` evenly spaced images of the training pool."""
    h = hashlib.sha256(f"{tuple(images.shape)}|{images.dtype}".encode())
    h.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    step = max(1, len(images) // samples)
    h.update(images[::step].detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


def dataset_settings(name: str, model, images, labels, profile: Profile) -> dict:
    """The settings that determine a constructed set (all of them are compared on reuse)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    n_pool = len(images)
    want = profile.construct_n
    if ALGORITHM[name] == "representation_matching" and getattr(profile, "invert_n", 0):
        want = profile.invert_n  # inversion costs more per image: D_R / D_NR may use fewer
    n = n_pool if want == 0 else min(want, n_pool)
    s = {
        "name": name,
        "algorithm": ALGORITHM[name],
        "source_model": {"arch": profile.arch, "which": source_role(name, profile),
                         "fingerprint": model_fingerprint(model)},
        "pool": {"size": n_pool, "fingerprint": pool_fingerprint(images, labels)},
        "n": n,
        "seed": profile.seed,
        "shard_size": profile.shard_size,
        "construct_batch": profile.construct_batch,
        "num_classes": num_classes_of(model, images),
        "shard_format": SHARD_FORMAT,
        "device_type": model_device(model).type,
        "dtype": "bfloat16" if (profile.amp and model_device(model).type == "cuda") else "float32",
    }
    if ALGORITHM[name] == "representation_matching":
        s.update(steps=profile.invert_steps, step_size=profile.invert_step_size, eps=INVERT_EPS,
                 restarts=None, random_start=None, keep_only_hits=None, target_rule=None,
                 schedule=profile.invert_schedule)
    else:
        s.update(steps=profile.target_steps, step_size=profile.target_step_size, eps=profile.target_eps,
                 restarts=profile.target_restarts, random_start=profile.target_restarts > 1,
                 keep_only_hits=profile.keep_only_hits, target_rule=TARGET_RULE[name])
    return s


def _diff(old: dict, new: dict) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in _MATCH_KEYS if old.get(k) != new.get(k)]


def _mismatch(where: Path, out_dir: Path, old: dict, new: dict) -> ValueError:
    return ValueError(
        f"{where}: {out_dir} holds a {old.get('name')} set built with other settings "
        f"({'; '.join(_diff(old, new))}). Delete {out_dir} or use another run directory.")


def is_complete(out_dir) -> bool:
    out_dir = Path(out_dir)
    return all((out_dir / f).is_file() for f in ("CIFAR_ims", "CIFAR_lab", "meta.json"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e}); delete it or use another run directory") from None


# ================================================================================================
# One dataset, in resumable shards
# ================================================================================================
def construct_dataset(name: str, *, model, images, labels, profile: Profile, out_dir, progress=True,
                      max_shards: int | None = None, keep_shards: bool = False) -> dict:
    """Build dataset ``name`` (one of ``DATASETS``) into ``out_dir`` and return its meta.json dict.

    Uses the first ``profile.construct_n`` (0 = all; ``profile.invert_n`` instead for D_R / D_NR
    when set) examples of a permutation of the given training set seeded by ``profile.seed``, so
    every set is built from a prefix of the same order. A complete
    ``out_dir`` whose meta matches these settings is returned as is; a mismatch raises
    ``ValueError``. ``max_shards`` computes at most that many new shards and returns
    ``{"complete": False, ...}`` if work is left (the way tests simulate a killed build).

    Under torchrun every rank calls this with the same arguments: rank r builds the missing
    shards k with k % world == r (at most ``max_shards`` each), rank 0 merges, and every rank
    returns the same meta.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if not torch.is_floating_point(images) or images.dim() != 4:
        raise ValueError(f"images must be float NCHW in [0,1], got dtype {images.dtype} and shape {tuple(images.shape)}")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must be int64 [N] with N = {len(images)} images, got shape {tuple(labels.shape)}")
    out_dir = Path(out_dir).expanduser()
    settings = dataset_settings(name, model, images, labels, profile)

    meta_f = out_dir / "meta.json"
    if meta_f.is_file():
        old = _read_json(meta_f)
        if _diff(old, settings):
            raise _mismatch(meta_f, out_dir, old, settings)
        if is_complete(out_dir) and old.get("complete"):
            return old

    shard_dir = out_dir / "shards"
    settings_f = shard_dir / "settings.json"
    if dist.is_main():  # the others check the same file once rank 0 has written it
        if settings_f.is_file():
            old = _read_json(settings_f)
            if _diff(old, settings):
                raise _mismatch(settings_f, out_dir, old, settings)
        else:
            if shard_dir.is_dir() and any(shard_dir.glob("shard_*.pt")):
                raise ValueError(f"{shard_dir}: shards without settings.json (unknown provenance); delete the folder")
            atomic_write_json(settings_f, settings)
    dist.barrier()
    if not dist.is_main():
        old = _read_json(settings_f)
        if _diff(old, settings):  # e.g. another model on this rank: its fingerprint differs
            raise _mismatch(settings_f, out_dir, old, settings)

    n, size = settings["n"], profile.shard_size
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(profile.seed))[:n]
    n_shards = math.ceil(n / size)
    device = model_device(model)
    amp = bool(profile.amp) and device.type == "cuda"
    files = [shard_dir / f"shard_{k:05d}.pt" for k in range(n_shards)]
    rank, world = dist.rank(), dist.world_size()
    todo = [k for k in range(n_shards) if k % world == rank and not files[k].is_file()]
    if max_shards is not None:
        todo = todo[:max_shards]
    rows = [min(n, (k + 1) * size) - k * size for k in range(n_shards)]
    if world == 1:
        total, initial, desc = n, n - sum(rows[k] for k in todo), f"construct {name}"
    else:  # this rank's share of the work
        total, initial, desc = sum(rows[k] for k in todo), 0, f"construct {name} (rank {rank}/{world})"

    with progress_bar(total=total, initial=initial, desc=desc, unit="img", disable=not progress,
              dynamic_ncols=True) as bar:
        for k in todo:
            idx = order[k * size:min(n, (k + 1) * size)]
            t0 = time.perf_counter()
            shard = _build_shard(name, model, images, labels, idx, profile, settings, k, amp, bar)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            shard["stats"]["seconds"] = time.perf_counter() - t0
            atomic_torch_save(shard, files[k])
    dist.barrier()  # every rank's shards are on disk
    # rank 0 decides (the others must not look once it may be removing the shard folder)
    missing = dist.broadcast_object([k for k in range(n_shards) if not files[k].is_file()] if dist.is_main() else None)
    if missing:  # max_shards stopped the build early
        return {"name": name, "complete": False, "shards_done": n_shards - len(missing),
                "shards_total": n_shards, "out_dir": str(out_dir)}
    if dist.is_main():
        shards = [_load_shard(f, k, order, size, n) for k, f in enumerate(files)]
        meta = _merge_meta(settings, shards, profile, device, amp)
        meta["built_with"]["processes"] = world
        x = torch.cat([s["images"] for s in shards])
        y = torch.cat([s["labels"] for s in shards])
        from .data import save_feature_dataset

        meta["sha256"] = tensors_sha256(x, y)  # the training tensors' digest (advlib.utils.tensors_sha256)
        save_feature_dataset(out_dir, x, y, meta=meta)  # meta.json is written last: it marks completion
        if not keep_shards:
            shutil.rmtree(shard_dir, ignore_errors=True)
    dist.barrier()
    return meta if dist.is_main() else _read_json(meta_f)


def _build_shard(name, model, images, labels, idx, profile, settings, k, amp, bar) -> dict:
    gen = shard_generator(profile.seed, name, k)
    common = dict(indices=idx, generator=gen, batch_size=profile.construct_batch, amp=amp, pbar=bar)
    if settings["algorithm"] == "representation_matching":
        r = build_robust_set(model, images, labels, steps=settings["steps"], step_size=settings["step_size"],
                             eps=settings["eps"], schedule=settings["schedule"], **common)
        extra = {"start_indices": r["start_indices"], "rel_distance": r["rel_distance"], "agree": r["agree"]}
        stats = {"loss_curve": r["loss_curve"], "loss_steps": r["loss_steps"], "n_attacked": len(idx)}
    else:
        r = build_targeted_set(model, images, labels, rule=name.removeprefix("d_"), eps=settings["eps"],
                               step_size=settings["step_size"], steps=settings["steps"],
                               restarts=settings["restarts"], random_start=settings["random_start"],
                               num_classes=settings["num_classes"], keep_only_hits=settings["keep_only_hits"],
                               **common)
        extra = {"targets": r["targets"], "orig_labels": r["orig_labels"], "hit": r["hit"]}
        stats = {"n_attacked": r["n_attacked"], "n_hit": r["n_hit"], "n_target_is_label": r["n_target_is_label"]}
    stats.update(shard=k, start=int(idx[0]) if len(idx) else 0)
    return {"format": SHARD_FORMAT, "images": r["images"].contiguous(), "labels": r["labels"].contiguous(),
            "source_indices": r["source_indices"], **extra, "stats": stats}


def _load_shard(path: Path, k: int, order: torch.Tensor, size: int, n: int) -> dict:
    try:
        shard = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # re-raised with the file named
        raise ValueError(f"{path}: unreadable shard ({type(e).__name__}: {e}); delete it to rebuild it") from e
    expected = order[k * size:min(n, (k + 1) * size)]
    ok = (isinstance(shard, dict) and shard.get("format") == SHARD_FORMAT
          and shard["stats"]["n_attacked"] == len(expected)
          and bool(torch.isin(shard["source_indices"], expected).all())
          and len(shard["images"]) == len(shard["labels"]) == len(shard["source_indices"]))
    if not ok:
        raise ValueError(f"{path}: shard does not match this build (other order, size or format); delete it to rebuild it")
    return shard


def _merge_meta(settings: dict, shards: list[dict], profile: Profile, device, amp: bool) -> dict:
    seconds = float(sum(s["stats"]["seconds"] for s in shards))
    n_attacked = int(sum(s["stats"]["n_attacked"] for s in shards))
    meta = dict(settings)
    meta.update(
        complete=True,
        n_rows=int(sum(len(s["labels"]) for s in shards)),
        n_attacked=n_attacked,
        source_indices=torch.cat([s["source_indices"] for s in shards]).tolist(),
        seconds=round(seconds, 3),
        images_per_second=round(n_attacked / seconds, 3) if seconds > 0 else None,
        profile=profile.name,
        built_with={"advlib": __version__, "torch": torch.__version__, "device": str(device), "amp_bf16": amp},
    )
    if settings["algorithm"] == "representation_matching":
        rel = torch.cat([s["rel_distance"] for s in shards]).double()
        curve = sum(torch.tensor(s["stats"]["loss_curve"], dtype=torch.float64) * s["stats"]["n_attacked"]
                    for s in shards) / max(n_attacked, 1)
        meta.update(
            start_indices=torch.cat([s["start_indices"] for s in shards]).tolist(),
            final_rel_distance={"mean": rel.mean().item(), "median": rel.median().item(), "std": rel.std().item()
                                if len(rel) > 1 else 0.0},
            source_model_agreement=torch.cat([s["agree"] for s in shards]).float().mean().item(),
            # per row, for the explorer's facts and filters
            rel_distance=[round(v, 4) for v in rel.tolist()],
            agree=torch.cat([s["agree"] for s in shards]).tolist(),
            loss_curve=[round(v, 6) for v in curve.tolist()],
            loss_steps=shards[0]["stats"]["loss_steps"],
        )
    else:
        n_hit = sum(s["stats"]["n_hit"] for s in shards)
        meta.update(
            targets=torch.cat([s["targets"] for s in shards]).tolist(),
            # per row, for the explorer's facts and filters
            orig_labels=torch.cat([s["orig_labels"] for s in shards]).tolist(),
            hit=torch.cat([s["hit"] for s in shards]).tolist(),
            hit_rate=n_hit / max(n_attacked, 1),
            target_equals_label_fraction=sum(s["stats"]["n_target_is_label"] for s in shards) / max(n_attacked, 1),
            dropped_misses=n_attacked - meta["n_rows"],
        )
    return meta


# ================================================================================================
# All of them
# ================================================================================================
def construct_all(profile: Profile, paths, train_images, train_labels, models: dict, which=None,
                  progress=True) -> dict[str, dict]:
    """Build each dataset of ``which`` (default ``profile.dataset_list``) into
    ``paths.dataset(name, "constructed")``: D_R with ``models["robust"]``, the others with
    ``models["standard"]`` (D_rand / D_det with ``models["targeted"]`` when the profile trains one:
    :func:`source_role`). Returns ``{name: meta}``."""
    if which is None:
        names = profile.dataset_list
    elif isinstance(which, str):
        names = [s.strip() for s in which.split(",") if s.strip()]
    else:
        names = list(which)
    out = {}
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; expected names from {DATASETS}")
        role = source_role(name, profile)
        if role not in models:
            raise KeyError(f"construct_all: {name} needs models[{role!r}]; got keys {sorted(models)}")
        out[name] = construct_dataset(name, model=models[role], images=train_images, labels=train_labels,
                                      profile=profile, out_dir=paths.dataset(name, "constructed"),
                                      progress=progress)
    return out


__all__ = [
    "ALGORITHM", "SOURCE_ROLE", "TARGETED_SETS", "source_role", "source_roles", "TARGET_RULE", "INVERT_EPS",
    "source_models", "shard_generator", "model_fingerprint", "pool_fingerprint", "dataset_settings",
    "construct_dataset", "construct_all", "is_complete",
    # the constructions on tensors (advlib.builders), here too: callers import them from this module
    "other_indices", "choose_targets", "autocast_for", "num_classes_of", "build_robust_set", "build_targeted_set",
]
