"""CIFAR-10 as tensors: torchvision's copy, the embedded sample, or any zip/folder of images.

- ``load_cifar10(source, split, n=, seed=)`` -> images float32 [N,3,32,32] in [0,1], labels int64 [N]
  from torchvision, the embedded sample (``SAMPLE_ZIP``), or any zip/folder laid out
  ``<split>/<class>/<image>``; ``n`` picks a seeded class-balanced subset and only those images
  are decoded.
- ``cifar10_cache_present(root)``: whether torchvision's files are already under ``root``.
- ``dataset_summary(images, labels)``: plain-number statistics for printing.

Nothing happens at import time; torchvision and PIL are imported inside the functions that need them.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

SAMPLE_ZIP = Path(__file__).resolve().parent.parent / "sample" / "cifar10-sample.zip"  # advlib/sample/
SPLITS = ("train", "val", "test")  # "val": held out from the training images (see load_cifar10)
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def load_cifar10(source, split: str = "train", *, n: int = 0, seed: int = 0, root=None,
                 download: bool = True, val: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images float32 [N,3,32,32] in [0,1] and labels int64 [N].

    source: "torchvision" (``torchvision.datasets.CIFAR10`` under ``root``, downloaded when
        ``download``), "sample" (the embedded 600 train / 200 test images, ``SAMPLE_ZIP``), or a
        path to a zip or folder laid out ``<anything>/<split>/<class>/<image>``; class folders
        sorted alphabetically give the labels 0..9 (the standard CIFAR-10 order for the usual names).
    n: 0 = every image of the split; n > 0 = a class-balanced subset chosen with ``seed``
        (n // 10 per class; the first n % 10 classes get one more). Only the chosen images are
        decoded. Images come back in an order shuffled with ``seed`` (archives list images class
        by class, so an unshuffled ``x[:k]`` would hold only the first classes).
    val: the size of the validation split, held out from the *training* images. Per class, the
        training pick is the first k of a seeded permutation of that class's images and the
        validation pick the next ones, so the two never share an image, and the training pick of
        a given ``n`` is the same whatever ``val`` is (with ``n`` 0 the training pick is every
        image but the validation ones). ``split="val"`` returns those ``val`` images (``n`` is then
        the size of the training pick they avoid); ``split="test"`` ignores ``val``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0 (0 = all images), got {n!r}")
    if not isinstance(val, int) or val < 0:
        raise ValueError(f"val must be an int >= 0 (the validation images held out of the training set), got {val!r}")
    if split == "val" and val == 0:
        raise ValueError("split 'val' needs val > 0: the number of training images held out for validation")
    if split == "test":
        val = 0
    if isinstance(source, str) and source == "torchvision":
        x, y = _load_torchvision(split, n=n, seed=seed, root=root, download=download, val=val)
    elif isinstance(source, str) and source == "sample":
        if not SAMPLE_ZIP.is_file():
            raise FileNotFoundError(f"embedded CIFAR-10 sample missing: {SAMPLE_ZIP} (rebuild with tools/make_sample.py)")
        x, y = _load_archive(SAMPLE_ZIP, split, n=n, seed=seed, val=val)
    elif isinstance(source, (str, os.PathLike)):
        x, y = _load_archive(Path(source).expanduser(), split, n=n, seed=seed, val=val)
    else:
        raise TypeError(f"source must be 'torchvision', 'sample' or a path, got {type(source).__name__}")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return x[perm], y[perm]


def cifar10_cache_present(root) -> bool:
    """True when torchvision's CIFAR-10 files are under ``root`` (no checksum: cheap)."""
    if root is None:
        return False
    d = Path(root).expanduser() / "cifar-10-batches-py"
    need = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    return all((d / f).is_file() for f in need)


def dataset_summary(images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Plain-number summary: n, per-class counts, pixel mean/std/min/max and per-channel means."""
    x = images.detach().float()
    y = labels.detach().long().cpu()
    counts = torch.bincount(y, minlength=NUM_CLASSES).tolist() if y.numel() else [0] * NUM_CLASSES
    if x.numel() == 0:
        return {"n": 0, "counts": counts, "mean": float("nan"), "std": float("nan"),
                "min": float("nan"), "max": float("nan"), "channel_mean": []}
    return {
        "n": int(x.shape[0]),
        "counts": [int(c) for c in counts],
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "max": float(x.max()),
        "channel_mean": [float(v) for v in x.mean(dim=(0, 2, 3))] if x.dim() == 4 else [],
    }


def _balanced_subset(labels: np.ndarray, n: int, seed: int, what: str, val: int = 0, split: str = "train") -> np.ndarray:
    """Sorted indices of a class-balanced subset: n // 10 per class, remainder to the first classes.

    Per class, the pick is the first k of a seeded permutation of that class's indices (which
    are in a fixed order), so the same seed and inputs always give the same subset. With ``val``
    > 0 the next ``val`` // 10 per class (same rule for the remainder) are the validation pick:
    ``split="val"`` returns those, ``split="train"`` the training pick before them (``n`` 0: every
    image of a class but its validation ones).
    """
    if n == 0 and val == 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per, extra = divmod(n, NUM_CLASSES)
    vper, vextra = divmod(val, NUM_CLASSES)
    chosen = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        kv = vper + (1 if c < vextra else 0)
        k = per + (1 if c < extra else 0) if n else len(idx) - kv
        if k + kv > len(idx) or k < 0:
            asked = f"n={n}" + (f" training and val={val} validation images" if val else "")
            raise ValueError(f"{what}: {asked} needs {k + kv} images of class {c} but only {len(idx)} are available (at most "
                             f"{NUM_CLASSES * int(np.bincount(labels, minlength=NUM_CLASSES).min())} "
                             "for an exactly balanced subset)")
        perm = rng.permutation(len(idx))  # drawn for every class so class c's pick doesn't depend on n of others
        chosen.append(idx[perm[k:k + kv]] if split == "val" else idx[perm[:k]])
    return np.sort(np.concatenate(chosen))


def _to_tensors(hwc_uint8: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(hwc_uint8)).permute(0, 3, 1, 2).contiguous()
    return x.float().div_(255.0), torch.as_tensor(np.asarray(labels), dtype=torch.int64).clone()


def _load_torchvision(split, *, n, seed, root, download, val=0):
    if root is None:
        raise ValueError("load_cifar10('torchvision', ...) needs root= (the folder for torchvision's "
                         "CIFAR-10 cache, e.g. <run_dir>/data)")
    from torchvision.datasets import CIFAR10  # heavy import, only when used

    try:
        ds = CIFAR10(root=str(root), train=(split != "test"), download=download)
    except RuntimeError as e:
        raise RuntimeError(f"CIFAR-10 not available under {root} (download={download}): {e}") from e
    labels = np.asarray(ds.targets, dtype=np.int64)
    keep = _balanced_subset(labels, n, seed, f"torchvision CIFAR-10 {split} under {root}", val=val, split=split)
    return _to_tensors(ds.data[keep], labels[keep])


# --- zip / folder sources -----------------------------------------------------------------------
class _Archive:
    """A zip or a directory seen as a list of relative POSIX member names plus a byte reader."""

    def __init__(self, path: Path):
        if not path.exists():
            raise ValueError(f"CIFAR-10 source {path} does not exist; expected 'torchvision', 'sample', "
                             "or a zip/folder laid out <split>/<class>/<image>")
        self.path = path
        self._zip = None
        if path.is_dir():
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self.names = sorted(i.filename for i in self._zip.infolist() if not i.is_dir())
        else:
            raise ValueError(f"CIFAR-10 source {path} is neither a folder nor a zip file")

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def close(self):
        if self._zip is not None:
            self._zip.close()


def _split_members(arc: _Archive, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Members of ``<prefix>/<split>/<class>/<image>``: (names, labels, class names), sorted."""
    prefixes: dict[tuple, dict[str, list[str]]] = {}
    for name in arc.names:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # hidden files and macOS resource forks
        if len(parts) < 3 or parts[-3] != split or not parts[-1].lower().endswith(IMAGE_EXTS):
            continue
        prefixes.setdefault(tuple(parts[:-3]), {}).setdefault(parts[-2], []).append(name)
    if not prefixes:
        raise ValueError(f"{arc.path}: no '{split}' folder with images found; expected a layout "
                         f"<anything>/{split}/<class>/<image>, e.g. cifar10/{split}/airplane/0000.jpg")
    if len(prefixes) > 1:
        found = sorted("/".join((*p, split)) for p in prefixes)
        raise ValueError(f"{arc.path}: several '{split}' folders found {found}; expected exactly one")
    by_class = next(iter(prefixes.values()))
    classes = sorted(by_class)
    if len(classes) != NUM_CLASSES:
        raise ValueError(f"{arc.path}: '{split}' folder has {len(classes)} class folders {classes}; "
                         f"expected {NUM_CLASSES} (CIFAR-10)")
    names, labels = [], []
    for c, cls in enumerate(classes):
        members = sorted(by_class[cls])
        names += members
        labels += [c] * len(members)
    return names, np.asarray(labels, dtype=np.int64), classes


def _decode_image(data: bytes, name: str) -> np.ndarray:
    """One encoded image -> uint8 [32,32,3] RGB."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    if arr.shape != (32, 32, 3):
        raise ValueError(f"{name}: image is {arr.shape[1]}x{arr.shape[0]}, expected 32x32 (CIFAR-10)")
    return arr


def _load_archive(path: Path, split: str, *, n: int, seed: int, val: int = 0):
    arc = _Archive(path)
    try:
        names, labels, _ = _split_members(arc, "test" if split == "test" else "train")
        keep = _balanced_subset(labels, n, seed, f"{path} ({split})", val=val, split=split)
        out = np.empty((len(keep), 32, 32, 3), dtype=np.uint8)
        for j, i in enumerate(keep):  # only the chosen members are read and decoded
            out[j] = _decode_image(arc.read(names[i]), f"{path}:{names[i]}")
    finally:
        arc.close()
    return _to_tensors(out, labels[keep])
