"""Bring your own source models: the robustness library's CIFAR checkpoints as advlib models.

Ilyas et al. (2019) built their datasets from models of MadryLab's ``robustness`` library, which
publishes CIFAR-10 ResNet-50 checkpoints (``cifar_nat.pt``, ``cifar_l2_0_5.pt``, ...).
:func:`load_robustness_checkpoint` turns such a file into the advlib model of the same
architecture (``advlib.models.build_model("resnet50")``); :func:`save_robustness_checkpoint` goes
the other way.

Their layout, as their code writes it (``robustness.train`` saves ``{"model": state_dict, ...}``
of ``DataParallel(AttackerModel)``, hence the ``module.`` prefix, which
``model_utils.make_and_restore_model`` strips before a strict ``load_state_dict``):

- ``module.normalizer.new_mean`` / ``new_std``: ``InputNormalize`` buffers of shape [3,1,1]
  (ours: ``normalize.mean`` / ``std`` of shape [1,3,1,1]);
- ``module.model.*``: the classifier, ``cifar_models.resnet.ResNet``: ``conv1``, ``bn1``,
  ``layer1`` .. ``layer4`` (a Sequential of blocks each: ``conv1``, ``bn1``, ``conv2``, ``bn2``,
  [``conv3``, ``bn3`` for Bottleneck], ``shortcut.0`` conv / ``shortcut.1`` bn where the shape
  changes) and ``linear`` (ours: ``body.0``, ``body.1``, the blocks ``body.3`` ...  in the same
  order, ``head``);
- ``module.attacker.model.*`` and ``module.attacker.normalize.*``: the same modules again (the
  attacker holds references to them); accepted and ignored.

Their forward is ``relu(bn1(conv1(x)))``, the four layers, ``avg_pool2d(out, 4)``, ``linear``:
on 32x32 inputs the 4x4 average pool equals our ``AdaptiveAvgPool2d(1)``. Their normalizer
clamps the input to [0,1] first; advlib models take inputs in [0,1], so logits agree.

Loading never runs code from the file: ``torch.load(weights_only=True)``, with only numpy scalar
types allow-listed (schedulers may store numpy floats). Checkpoints whose pickle holds anything
else (e.g. functions pickled by ``dill``) are refused with a ValueError naming the global; convert
such a file once, where you trust it, with ``torch.save({"model": ckpt["model"]}, new_path)``.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from .models import ImageClassifier, _BasicBlock, _Bottleneck, build_model

# Blocks per layer of the robustness library's CIFAR ResNets (cifar_models/resnet.py).
ROBUSTNESS_ARCHS = {"resnet18": (_BasicBlock, (2, 2, 2, 2)), "resnet50": (_Bottleneck, (3, 4, 6, 3))}
_OPTIONAL = ("num_batches_tracked",)  # BatchNorm counters: no effect in eval; absent in very old files


# ================================================================================================
# Names
# ================================================================================================
def _arch_of(model: ImageClassifier) -> str:
    """The robustness architecture an advlib model has (``resnet18`` / ``resnet50``), or raise."""
    body = getattr(model, "body", None)
    if isinstance(model, ImageClassifier) and isinstance(body, nn.Sequential):
        blocks = [m for m in body if isinstance(m, (_BasicBlock, _Bottleneck))]
        for arch, (block, counts) in ROBUSTNESS_ARCHS.items():
            if len(blocks) == sum(counts) and all(type(b) is block for b in blocks):
                return arch
    raise ValueError(f"not an advlib resnet18/resnet50 model: {type(model).__name__}; "
                     f"the robustness layout exists for {tuple(ROBUSTNESS_ARCHS)}")


def robustness_key_map(model: ImageClassifier) -> dict[str, str]:
    """Our state-dict key -> their classifier key (without ``module.model.``), every entry of
    ``model.state_dict()`` except the normalizer's buffers."""
    arch = _arch_of(model)
    _, counts = ROBUSTNESS_ARCHS[arch]
    body = list(model.body)
    names = {}
    first = 3  # body: conv, bn, relu, blocks..., pool, flatten
    if not (isinstance(body[0], nn.Conv2d) and isinstance(body[1], nn.BatchNorm2d)):
        raise ValueError(f"unexpected {arch} stem: {body[:2]}")
    names["body.0."] = "conv1."
    names["body.1."] = "bn1."
    k = first
    for layer, n in enumerate(counts, start=1):
        for j in range(n):
            names[f"body.{k}."] = f"layer{layer}.{j}."
            k += 1
    names["head."] = "linear."
    out = {}
    for key in model.state_dict():
        if key.startswith("normalize."):
            continue
        prefix = next((p for p in names if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"internal: no robustness name for {key!r} of {arch}")
        out[key] = names[prefix] + key[len(prefix):]
    return out


# ================================================================================================
# Reading a file safely
# ================================================================================================
def _numpy_safe_globals() -> list:
    """numpy scalar reconstruction (under numpy 1 and 2 names) and the dtypes it needs."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch's usual installs
        return []
    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    dtypes = [np.dtype] + [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                                                         np.int16, np.int8, np.uint8, np.bool_)]
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), *dtypes]


def _safe_load(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", text)
        if m:
            what = f"the object {m.group(1)}"
        else:
            detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
            what = f"its contents ({detail.group(1).strip() if detail else 'unpickling error'})"
        raise ValueError(f"{path}: refused to unpickle {what} (advlib loads checkpoints with "
                         "weights_only=True and never runs code from a file); if you trust the file, "
                         "re-save its weights once: torch.save({'model': ckpt['model']}, new_path)") from e
    except OSError:
        raise
    except Exception as e:  # truncated or foreign files fail in many ways (struct.error, EOFError, ...)
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e


def _state_dict_of(obj, path: Path) -> dict:
    if isinstance(obj, dict) and ("model" in obj or "state_dict" in obj):
        sd = obj["model"] if "model" in obj else obj["state_dict"]
    else:
        sd = obj
    if not isinstance(sd, dict) or not sd:
        raise ValueError(f"{path}: expected a dict with 'model' (or 'state_dict') holding a state dict, "
                         f"got {type(sd).__name__}")
    bad = next((k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise ValueError(f"{path}: state dict entry {bad!r} is not a tensor ({type(sd[bad]).__name__})")
    return sd


def _split(sd: dict, path: Path) -> tuple[dict, dict, str, str]:
    """(classifier tensors, normalizer tensors, classifier prefix, normalizer prefix), keys without prefix.

    Accepts ``module.``-prefixed keys (DataParallel) or not; an AttackerModel layout
    (``model.`` / ``normalizer.`` / ``attacker.``) or a bare classifier state dict."""
    strip = "module." if all(k.startswith("module.") for k in sd) else ""
    keys = {k[len(strip):]: v for k, v in sd.items()}
    if any(k.startswith("model.") for k in keys):  # AttackerModel layout
        classifier, normalizer = {}, {}
        for k, v in keys.items():
            if k.startswith("model."):
                classifier[k[len("model."):]] = v
            elif k.startswith("normalizer."):
                normalizer[k[len("normalizer."):]] = v
            elif k.startswith("attacker.model.") or k.startswith("attacker.normalize."):
                continue  # the same modules again
            else:
                raise ValueError(f"{path}: unexpected key {strip + k!r}")
        return classifier, normalizer, strip + "model.", strip + "normalizer."
    normalizer = {k[len("normalizer."):]: v for k, v in keys.items() if k.startswith("normalizer.")}
    classifier = {k: v for k, v in keys.items() if not k.startswith("normalizer.")}
    return classifier, normalizer, strip, strip + "normalizer."


# ================================================================================================
# Public API
# ================================================================================================
def load_robustness_checkpoint(path, arch: str = "resnet50", *, device="cpu") -> ImageClassifier:
    """An advlib ``arch`` model (eval mode, on ``device``) with the weights of a robustness
    library checkpoint (``cifar_nat.pt``, ``cifar_l2_0_5.pt``, ... or one written by
    :func:`save_robustness_checkpoint`).

    Every classifier tensor of their ResNet is required (BatchNorm ``num_batches_tracked``
    excepted) and must have our shape; any other classifier key is an error. The normalizer's
    mean/std replace ours when present (a bare classifier state dict keeps the CIFAR-10 values,
    which are the robustness library's). Errors are ValueErrors naming the file and the first
    offending key.
    """
    if arch not in ROBUSTNESS_ARCHS:
        raise ValueError(f"arch must be one of {tuple(ROBUSTNESS_ARCHS)} for a robustness checkpoint, got {arch!r}")
    path = Path(path)
    classifier, normalizer, cprefix, nprefix = _split(_state_dict_of(_safe_load(path), path), path)

    head = classifier.get("linear.weight")
    num_classes = int(head.shape[0]) if head is not None and head.dim() == 2 else 10
    model = build_model(arch, num_classes=num_classes)
    ours = model.state_dict()
    names = robustness_key_map(model)
    theirs_to_ours = {v: k for k, v in names.items()}

    for key in classifier:
        if key not in theirs_to_ours:
            raise ValueError(f"{path}: unexpected key {cprefix + key!r} for the robustness {arch}")
    new_sd = {}
    for our_key, their_key in names.items():
        if their_key not in classifier:
            if our_key.rsplit(".", 1)[-1] in _OPTIONAL:
                new_sd[our_key] = ours[our_key]
                continue
            raise ValueError(f"{path}: missing key {cprefix + their_key!r} for the robustness {arch}")
        t = classifier[their_key]
        if tuple(t.shape) != tuple(ours[our_key].shape):
            raise ValueError(f"{path}: {cprefix + their_key!r} has shape {tuple(t.shape)}, "
                             f"the robustness {arch} needs {tuple(ours[our_key].shape)}")
        new_sd[our_key] = t

    for key in normalizer:
        if key not in ("new_mean", "new_std"):
            raise ValueError(f"{path}: unexpected key {nprefix + key!r}")
    channels = model.normalize.mean.shape[1]
    for their, our in (("new_mean", "normalize.mean"), ("new_std", "normalize.std")):
        if their not in normalizer:
            if normalizer:
                raise ValueError(f"{path}: missing key {nprefix + their!r}")
            new_sd[our] = ours[our]
            continue
        t = normalizer[their]
        if tuple(t.shape) != (channels, 1, 1):
            raise ValueError(f"{path}: {nprefix + their!r} has shape {tuple(t.shape)}, expected ({channels}, 1, 1)")
        new_sd[our] = t.reshape(ours[our].shape)

    model.load_state_dict(new_sd, strict=True)
    return model.to(device).eval()


def robustness_state_dict(model: ImageClassifier) -> dict[str, torch.Tensor]:
    """The state dict of ``DataParallel(AttackerModel(their ResNet))`` holding ``model``'s weights,
    keys in their order: ``module.normalizer.*``, ``module.model.*``, ``module.attacker.normalize.*``,
    ``module.attacker.model.*`` (the attacker's entries share storage with the first ones)."""
    names = robustness_key_map(model)
    ours = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    channels = ours["normalize.mean"].shape[1]
    norm = {"new_mean": ours["normalize.mean"].reshape(channels, 1, 1).clone(),
            "new_std": ours["normalize.std"].reshape(channels, 1, 1).clone()}
    classifier = {their: ours[our].clone() for our, their in names.items()}
    sd: dict[str, torch.Tensor] = {}
    sd.update({f"module.normalizer.{k}": v for k, v in norm.items()})
    sd.update({f"module.model.{k}": v for k, v in classifier.items()})
    sd.update({f"module.attacker.normalize.{k}": v for k, v in norm.items()})
    sd.update({f"module.attacker.model.{k}": v for k, v in classifier.items()})
    return sd


def save_robustness_checkpoint(model: ImageClassifier, path, *, epoch: int = 0) -> Path:
    """Write ``model`` (an advlib resnet18/resnet50) as a robustness library checkpoint:
    ``{"model": state dict (see robustness_state_dict), "epoch": epoch}``, no optimizer or
    schedule. Their ``make_and_restore_model(arch=..., dataset=CIFAR(...), resume_path=path)``
    loads it (strict), and so does :func:`load_robustness_checkpoint`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": robustness_state_dict(model), "epoch": int(epoch)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def file_sha256(path) -> str:
    """sha256 of a file's bytes (what identifies a checkpoint in provenance records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_provenance(path, arch: str = "resnet50") -> dict:
    """Where a loaded source model came from: ``{"origin": "robustness_checkpoint", "path",
    "sha256", "bytes", "arch"}`` (the file is hashed, not unpickled)."""
    p = Path(path)
    return {"origin": "robustness_checkpoint", "path": str(p.resolve()), "sha256": file_sha256(p),
            "bytes": p.stat().st_size, "arch": arch}


__all__ = ["ROBUSTNESS_ARCHS", "load_robustness_checkpoint", "save_robustness_checkpoint", "robustness_state_dict",
           "robustness_key_map", "file_sha256", "checkpoint_provenance"]
