"""The authors' release: a resumable, verified HTTP download and a safe extraction of the tarball.

- ``download(url, dest, sha256=, size=)``: resumable HTTP download (``dest + ".part"``, HTTP Range)
  with a size/sha256 check before the file is renamed to ``dest``; :class:`DownloadError` for
  HTTP and connection errors (the partial file is kept for resuming).
- ``extract_release(tar_path, dest)``: safe extraction of ``release_datasets/<name>_CIFAR/...``
  (every member checked before anything is written), one dataset folder at a time, idempotent.

Nothing happens at import time; requests and tqdm are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ..config import RELEASE_NAMES
from .features import FEATURE_FILES


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

    from ..utils import progress_bar

    # read1 hands over whatever arrived, so bytes received before a dropped connection reach the
    # .part file (iter_content would discard a partly filled chunk together with the exception)
    read1 = getattr(resp.raw, "read1", None)
    chunks = iter(lambda: read1(chunk_size), b"") if read1 else resp.iter_content(chunk_size=chunk_size)
    with open(part, mode) as f, progress_bar(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
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


def extract_release(tar_path, dest, *, short_names: bool = False) -> dict[str, Path]:
    """Safely extract the authors' tarball; return {short name: folder with CIFAR_ims/CIFAR_lab}.

    The tarball holds ``release_datasets/{d_robust_CIFAR,...}/{CIFAR_ims,CIFAR_lab}``; each
    dataset lands in ``dest/release_datasets/<release name>/``, or with ``short_names`` in
    ``dest/<short name>/`` (``d_robust``, ..., the run directory's ``datasets/released/`` layout). Every member is checked before
    anything is written (absolute paths, ``..``, links, devices and fifos raise ValueError
    naming the member). Each dataset folder is extracted into a temporary folder beside its
    destination and renamed into place; a dataset whose files are already there with the
    tarball's sizes is left alone, so a second call is a no-op.
    """
    tar_path = Path(tar_path).expanduser()
    dest = Path(dest).expanduser()
    if not tar_path.is_file():
        raise FileNotFoundError(f"release tarball not found: {tar_path}")
    out_root = dest if short_names else dest / "release_datasets"
    try:
        return _extract_checked(tar_path, dest, out_root, short_names)
    except (tarfile.TarError, EOFError, zlib_error()) as e:  # corrupt or truncated: name the file
        raise ValueError(f"{tar_path}: not a readable tar archive ({type(e).__name__}: {e}); "
                         "delete it and download it again") from None


def zlib_error():
    import zlib

    return zlib.error


def _extract_checked(tar_path: Path, dest: Path, out_root: Path, short_names: bool) -> dict[str, Path]:
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
            final = out_root / (_SHORT_BY_RELEASE[rel] if short_names else rel)
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
