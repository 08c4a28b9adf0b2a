"""Data: CIFAR-10, the authors' release tarball, and "feature datasets" on disk.

- ``load_cifar10(source, split, n=, seed=)`` -> images float32 [N,3,32,32] in [0,1], labels int64 [N]
  from torchvision, the embedded sample, or any zip/folder laid out ``<split>/<class>/<image>``.
- ``download(url, dest, sha256=, size=)``: resumable HTTP download with size/sha256 check.
- ``extract_release(tar_path, dest)``: safe extraction of ``release_datasets/<name>_CIFAR/...``.
- ``load_feature_dataset(path)`` / ``save_feature_dataset(path, images, labels)``: the release
  layout, ``CIFAR_ims`` + ``CIFAR_lab`` (each a ``torch.save``d list of batch tensors), loaded
  with ``weights_only=True`` only, and checked (shape, dtype, range, labels) with errors naming
  the file.

Nothing happens at import time; heavy or optional imports (torchvision, requests, tqdm) are
made inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .config import RELEASE_NAMES
from .utils import atomic_path, atomic_write_json

SAMPLE_ZIP = Path(__file__).resolve().parent / "sample" / "cifar10-sample.zip"
SPLITS = ("train", "test")
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
RANGE_TOL = 1e-6  # images may exceed [0,1] by this much (float round-off) and are then clamped
FEATURE_FILES = ("CIFAR_ims", "CIFAR_lab")


# ================================================================================================
# CIFAR-10
# ================================================================================================
def load_cifar10(source, split: str = "train", *, n: int = 0, seed: int = 0, root=None,
                 download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images float32 [N,3,32,32] in [0,1] and labels int64 [N].

    source: "torchvision" (``torchvision.datasets.CIFAR10`` under ``root``, downloaded when
        ``download``), "sample" (the embedded 600 train / 200 test images, ``SAMPLE_ZIP``), or a
        path to a zip or folder laid out ``<anything>/<split>/<class>/<image>``; class folders
        sorted alphabetically give the labels 0..9 (the standard CIFAR-10 order for the usual names).
    n: 0 = every image of the split; n > 0 = a class-balanced subset chosen with ``seed``
        (n // 10 per class; the first n % 10 classes get one more). Only the chosen images are
        decoded. Images come back in an order shuffled with ``seed`` (archives list images class
        by class, so an unshuffled ``x[:k]`` would hold only the first classes).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0 (0 = all images), got {n!r}")
    if isinstance(source, str) and source == "torchvision":
        x, y = _load_torchvision(split, n=n, seed=seed, root=root, download=download)
    elif isinstance(source, str) and source == "sample":
        if not SAMPLE_ZIP.is_file():
            raise FileNotFoundError(f"embedded CIFAR-10 sample missing: {SAMPLE_ZIP} (rebuild with tools/make_sample.py)")
        x, y = _load_archive(SAMPLE_ZIP, split, n=n, seed=seed)
    elif isinstance(source, (str, os.PathLike)):
        x, y = _load_archive(Path(source).expanduser(), split, n=n, seed=seed)
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


def _balanced_subset(labels: np.ndarray, n: int, seed: int, what: str) -> np.ndarray:
    """Sorted indices of a class-balanced subset: n // 10 per class, remainder to the first classes.

    Per class, the pick is the first k of a seeded permutation of that class's indices (which
    are in a fixed order), so the same seed and inputs always give the same subset.
    """
    if n == 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per, extra = divmod(n, NUM_CLASSES)
    chosen = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        k = per + (1 if c < extra else 0)
        if k > len(idx):
            raise ValueError(f"{what}: n={n} needs {k} images of class {c} but only {len(idx)} are available "
                             f"(at most {NUM_CLASSES * int(np.bincount(labels, minlength=NUM_CLASSES).min())} "
                             "for an exactly balanced subset)")
        perm = rng.permutation(len(idx))  # drawn for every class so class c's pick doesn't depend on n of others
        chosen.append(idx[perm[:k]])
    return np.sort(np.concatenate(chosen))


def _to_tensors(hwc_uint8: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(hwc_uint8)).permute(0, 3, 1, 2).contiguous()
    return x.float().div_(255.0), torch.as_tensor(np.asarray(labels), dtype=torch.int64).clone()


def _load_torchvision(split, *, n, seed, root, download):
    if root is None:
        raise ValueError("load_cifar10('torchvision', ...) needs root= (the folder for torchvision's "
                         "CIFAR-10 cache, e.g. <run_dir>/data)")
    from torchvision.datasets import CIFAR10  # heavy import, only when used

    try:
        ds = CIFAR10(root=str(root), train=(split == "train"), download=download)
    except RuntimeError as e:
        raise RuntimeError(f"CIFAR-10 not available under {root} (download={download}): {e}") from e
    labels = np.asarray(ds.targets, dtype=np.int64)
    keep = _balanced_subset(labels, n, seed, f"torchvision CIFAR-10 {split} under {root}")
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

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"))
    if arr.shape != (32, 32, 3):
        raise ValueError(f"{name}: image is {arr.shape[1]}x{arr.shape[0]}, expected 32x32 (CIFAR-10)")
    return arr


def _load_archive(path: Path, split: str, *, n: int, seed: int):
    arc = _Archive(path)
    try:
        names, labels, _ = _split_members(arc, split)
        keep = _balanced_subset(labels, n, seed, f"{path} ({split})")
        out = np.empty((len(keep), 32, 32, 3), dtype=np.uint8)
        for j, i in enumerate(keep):  # only the chosen members are read and decoded
            out[j] = _decode_image(arc.read(names[i]), f"{path}:{names[i]}")
    finally:
        arc.close()
    return _to_tensors(out, labels[keep])


# ================================================================================================
# Download (resumable, verified)
# ================================================================================================
class DownloadError(RuntimeError):
    """HTTP error, connection failure or incomplete transfer. A partial file is kept for resume."""


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def _verify(path: Path, *, size, sha256, what: str) -> None:
    """Raise ValueError (expected vs got) when ``path`` fails the size or sha256 check."""
    got = path.stat().st_size
    if size is not None and got != int(size):
        raise ValueError(f"{what}: size mismatch: expected {int(size)} bytes, got {got}")
    if sha256:
        digest = _sha256(path)
        if digest.lower() != sha256.strip().lower():
            raise ValueError(f"{what}: sha256 mismatch: expected {sha256.strip().lower()}, got {digest}")


def _content_range_total(header: str | None) -> int | None:
    m = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", header or "")
    return int(m.group(1)) if m else None


def download(url: str, dest, *, sha256: str | None = None, size: int | None = None, progress: bool = True,
             timeout: float = 30, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` with resume and verification; return ``Path(dest)``.

    Data goes to ``dest + ".part"``; a later call resumes it with an HTTP Range request (and
    starts over if the server ignores the range). When the transfer is complete the size
    (``size``, else the server's total) and ``sha256`` (if given) are checked; a file that fails
    is deleted and ValueError says expected vs got. Only a verified file is renamed to ``dest``.
    An existing ``dest`` that verifies is returned without any request.

    Raises DownloadError (a RuntimeError) for HTTP errors and for connection failures or
    timeouts; in the latter case the ``.part`` file is kept so that calling again resumes.
    """
    import requests  # only needed here

    dest = Path(dest).expanduser()
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():
        try:
            _verify(dest, size=size, sha256=sha256, what=str(dest))
            return dest
        except ValueError:
            dest.unlink()  # a file that fails verification never stays at dest; fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)

    for _attempt in range(2):  # the second attempt only follows a 416 on a bad .part
        offset = part.stat().st_size if part.is_file() else 0
        if size is not None and offset > int(size):
            part.unlink()
            offset = 0
        if size is not None and offset == int(size) and offset > 0:
            total = offset  # already complete from an earlier run: just verify
            break
        headers = {"Accept-Encoding": "identity"}  # byte ranges and sizes refer to the file itself
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = requests.get(url, headers=headers, stream=True, timeout=timeout)
        except requests.RequestException as e:
            raise DownloadError(f"could not reach {url}: {type(e).__name__}: {e}"
                                + (f"; {offset} bytes kept in {part}, call again to resume" if offset else "")) from e
        with resp:
            if resp.status_code == 416 and offset:
                total = _content_range_total(resp.headers.get("Content-Range"))
                if total == offset:
                    break  # the .part already holds the whole file
                part.unlink()  # the .part is longer than the file or otherwise inconsistent: restart
                continue
            if resp.status_code == 206 and offset:
                m = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    raise DownloadError(f"{url}: asked for bytes from {offset}, server sent Content-Range "
                                        f"{resp.headers.get('Content-Range')!r}")
                mode = "ab"
                total = _content_range_total(resp.headers.get("Content-Range"))
            elif resp.status_code == 200:
                mode, offset = "wb", 0  # no range support (or a fresh start): from zero
                cl = resp.headers.get("Content-Length")
                total = int(cl) if cl and cl.isdigit() else None
            else:
                raise DownloadError(f"HTTP {resp.status_code} {resp.reason or ''} for {url}".replace("  ", " "))
            _stream_to(resp, part, mode, offset, total, url, progress, chunk_size)
        break
    else:  # pragma: no cover - two 416s in a row
        raise DownloadError(f"{url}: server refused the byte range twice (HTTP 416)")

    got = part.stat().st_size
    if total is not None and got < total:  # server closed early without an error: resumable
        raise DownloadError(f"{url}: transfer ended after {got} of {total} bytes; kept {part}, call again to resume")
    try:
        _verify(part, size=size if size is not None else total, sha256=sha256, what=f"{url} -> {dest}")
    except ValueError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _stream_to(resp, part: Path, mode: str, offset: int, total, url: str, progress: bool, chunk_size: int):
    import requests
    import urllib3
    from tqdm.auto import tqdm

    # read1 hands over whatever arrived, so bytes received before a dropped connection reach the
    # .part file (iter_content would discard a partly filled chunk together with the exception)
    read1 = getattr(resp.raw, "read1", None)
    chunks = iter(lambda: read1(chunk_size), b"") if read1 else resp.iter_content(chunk_size=chunk_size)
    with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=part.name[: -len(".part")], disable=not progress) as bar:
        while True:
            try:
                chunk = next(chunks, b"")
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:  # dropped, timed out
                f.flush()
                raise DownloadError(f"connection to {url} lost after {f.tell()} bytes ({type(e).__name__}: {e}); "
                                    f"kept {part}, call download again to resume") from e
            if not chunk:
                break
            f.write(chunk)  # (errors writing the file, e.g. a full disk, propagate as they are)
            bar.update(len(chunk))


# ================================================================================================
# The authors' release tarball
# ================================================================================================
_SHORT_BY_RELEASE = {v: k for k, v in RELEASE_NAMES.items()}


def _check_member(m: tarfile.TarInfo, dest: Path, tar_path: Path) -> None:
    """Refuse anything but plain files/folders with relative, non-escaping names."""
    name = m.name
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"{tar_path}: refusing member {name!r}: absolute path")
    if ".." in pure.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise ValueError(f"{tar_path}: refusing member {name!r}: '..' path component")
    if m.issym() or m.islnk():
        raise ValueError(f"{tar_path}: refusing member {name!r}: {'symlink' if m.issym() else 'hardlink'} "
                         f"-> {m.linkname!r}")
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        raise ValueError(f"{tar_path}: refusing member {name!r}: device or fifo")
    if not (m.isfile() or m.isdir()):
        raise ValueError(f"{tar_path}: refusing member {name!r}: not a regular file or folder (type {m.type!r})")
    try:  # the standard library's own policy as a second line of defence
        tarfile.data_filter(m, str(dest))
    except tarfile.FilterError as e:
        raise ValueError(f"{tar_path}: refusing member {name!r}: {e}") from e


def extract_release(tar_path, dest) -> dict[str, Path]:
    """Safely extract the authors' tarball; return {short name: folder with CIFAR_ims/CIFAR_lab}.

    The tarball holds ``release_datasets/{d_robust_CIFAR,...}/{CIFAR_ims,CIFAR_lab}``; each
    dataset lands in ``dest/release_datasets/<release name>/``. Every member is checked before
    anything is written (absolute paths, ``..``, links, devices and fifos raise ValueError
    naming the member). Each dataset folder is extracted into a temporary folder beside its
    destination and renamed into place; a dataset whose files are already there with the
    tarball's sizes is left alone, so a second call is a no-op.
    """
    tar_path = Path(tar_path).expanduser()
    dest = Path(dest).expanduser()
    if not tar_path.is_file():
        raise FileNotFoundError(f"release tarball not found: {tar_path}")
    out_root = dest / "release_datasets"
    with tarfile.open(tar_path, "r:*") as tar:
        members = tar.getmembers()
        for m in members:  # all checks before any extraction
            _check_member(m, dest, tar_path)
        found: dict[str, dict[str, tarfile.TarInfo]] = {}
        for m in members:
            parts = PurePosixPath(m.name).parts
            if m.isfile() and len(parts) >= 2 and parts[-1] in FEATURE_FILES and parts[-2] in _SHORT_BY_RELEASE:
                found.setdefault(parts[-2], {})[parts[-1]] = m
        complete = {rel: fm for rel, fm in found.items() if len(fm) == len(FEATURE_FILES)}
        if not complete:
            raise ValueError(f"{tar_path}: no dataset found; expected members release_datasets/<name>/"
                             f"{{CIFAR_ims,CIFAR_lab}} with <name> in {sorted(_SHORT_BY_RELEASE)}")
        out: dict[str, Path] = {}
        for rel in sorted(complete):
            final = out_root / rel
            fm = complete[rel]
            if not all((final / f).is_file() and (final / f).stat().st_size == fm[f].size for f in FEATURE_FILES):
                _extract_one(tar, fm, final)
            out[_SHORT_BY_RELEASE[rel]] = final
    return {k: out[k] for k in RELEASE_NAMES if k in out}


def _extract_one(tar: tarfile.TarFile, fm: dict[str, tarfile.TarInfo], final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old = None
    try:
        tar.extractall(path=tmp, members=[fm[f] for f in FEATURE_FILES], filter="data")
        staged = tmp / "staged"
        staged.mkdir()
        for f in FEATURE_FILES:
            os.replace(tmp / fm[f].name, staged / f)
        if final.exists():  # an incomplete earlier copy: swap it out, then delete it
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(staged, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)


# ================================================================================================
# Feature datasets: CIFAR_ims / CIFAR_lab
# ================================================================================================
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


# The lead re-exports the in-memory batch loader here (``from .loader import BatchLoader``).

from .loader import BatchLoader  # noqa: E402  (the in-memory loader lives beside; re-exported per DESIGN.md)

__all__ = [
    "BatchLoader", "SAMPLE_ZIP", "DownloadError", "load_cifar10", "cifar10_cache_present", "dataset_summary", "download",
    "extract_release", "load_feature_dataset", "save_feature_dataset",
]
