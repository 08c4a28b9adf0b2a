"""Feature datasets on disk: the release layout ``CIFAR_ims`` + ``CIFAR_lab``.

- ``load_feature_dataset(path)`` / ``save_feature_dataset(path, images, labels)``: each file is a
  ``torch.save``d list of batch tensors, loaded with ``weights_only=True`` only, and checked
  (shape, dtype, range, labels) with errors naming the file. Saving validates the same way and
  writes each file atomically (plus ``meta.json`` when given).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..utils import atomic_path, atomic_write_json
from .cifar import IMAGE_SHAPE, NUM_CLASSES

RANGE_TOL = 1e-6  # images may exceed [0,1] by this much (float round-off) and are then clamped
FEATURE_FILES = ("CIFAR_ims", "CIFAR_lab")


def _load_tensor_file(path: Path) -> torch.Tensor:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a feature dataset folder holds {' and '.join(FEATURE_FILES)}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as e:  # re-raised with the file named; the cause is chained
        raise ValueError(f"{path}: could not be loaded as tensors with torch.load(weights_only=True) "
                         f"(refused or corrupt): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        try:
            return torch.cat(list(obj))
        except RuntimeError as e:
            raise ValueError(f"{path}: batches cannot be concatenated: {e}") from e
    what = f"{type(obj).__name__} of length {len(obj)}" if isinstance(obj, (list, tuple)) else type(obj).__name__
    raise ValueError(f"{path}: expected a tensor or a non-empty list of batch tensors, got {what}")


def _check_images(x, where) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{where}: images must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{where}: images must be a float tensor in [0,1], got dtype {x.dtype}")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{where}: images must have shape [N,3,32,32], got {list(x.shape)}")
    x = x.detach().cpu().to(torch.float32)
    if x.numel():
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"{where}: images contain {bad} non-finite values (NaN/inf)")
        lo, hi = torch.aminmax(x)
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            raise ValueError(f"{where}: image values must lie in [0,1], got min {float(lo):.6g}, max {float(hi):.6g}")
        if lo < 0 or hi > 1:
            x = x.clamp(0.0, 1.0)
    return x


def _check_labels(y, where) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{where}: labels must be a tensor, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{where}: labels must be an integer tensor, got dtype {y.dtype}")
    if y.dim() != 1:
        raise ValueError(f"{where}: labels must be 1-D [N], got shape {list(y.shape)}")
    y = y.detach().cpu().to(torch.int64)
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= NUM_CLASSES:
            raise ValueError(f"{where}: labels must lie in [0,{NUM_CLASSES - 1}], got min {lo}, max {hi}")
    return y


def _check_pair(x, y, ims_where, lab_where):
    x = _check_images(x, ims_where)
    y = _check_labels(y, lab_where)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{ims_where} has {x.shape[0]} images but {lab_where} has {y.shape[0]} labels; "
                         "expected equal lengths")
    return x, y


def load_feature_dataset(path) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``path/CIFAR_ims`` and ``path/CIFAR_lab`` -> images float32 [N,3,32,32] in [0,1], labels int64 [N].

    Each file is a tensor or a list of batch tensors saved by ``torch.save``; it is read with
    ``weights_only=True`` (a file whose pickle would run code is refused) and checked. Errors
    name the offending file.
    """
    path = Path(path).expanduser()
    ims_f, lab_f = (path / f for f in FEATURE_FILES)
    for f in (ims_f, lab_f):  # both missing-file errors before any (slow) loading
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing; a feature dataset folder holds {' and '.join(FEATURE_FILES)}")
    return _check_pair(_load_tensor_file(ims_f), _load_tensor_file(lab_f), ims_f, lab_f)


def save_feature_dataset(path, images: torch.Tensor, labels: torch.Tensor, *, meta: dict | None = None,
                         batch_size: int = 10000) -> Path:
    """Write ``images``/``labels`` in the release layout (lists of batch tensors) under ``path``.

    Validates as ``load_feature_dataset`` does; each file is written atomically; ``meta`` (how the
    set was built) goes to ``path/meta.json``. Returns ``Path(path)``.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    path = Path(path).expanduser()
    ims_f, lab_f = (path / f for f in FEATURE_FILES)
    x, y = _check_pair(images, labels, ims_f, lab_f)
    path.mkdir(parents=True, exist_ok=True)
    # clone each batch so every saved tensor owns its storage (as in the authors' files)
    for t, f in ((x, ims_f), (y, lab_f)):
        with atomic_path(f) as tmp:
            torch.save([b.clone() for b in t.split(batch_size)], tmp)
    if meta is not None:
        atomic_write_json(path / "meta.json", meta)
    return path
