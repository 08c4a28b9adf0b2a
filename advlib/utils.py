"""Small shared helpers: seeding, device choice, atomic file writes, timing, provenance digests
(sha256 of tensors and weights, the machine and commit), and the Wilson interval."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(name: str = "auto") -> torch.device:
    """"auto" -> cuda when available, else cpu. Anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; on success rename it over ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(dest: str | os.PathLike, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
    return Path(dest)


def atomic_write_json(dest: str | os.PathLike, obj) -> Path:
    return atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_torch_save(obj, dest: str | os.PathLike) -> Path:
    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)
    return Path(dest)


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class Timer:
    """``with Timer() as t: ...; t.seconds``. Synchronizes CUDA so GPU work is counted."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._t0
        return False


# --- provenance: what exactly produced a number ---------------------------------------------------
def tensors_sha256(*tensors: torch.Tensor) -> str:
    """sha256 over the dtype, shape and bytes of each tensor (CPU, contiguous), in order.

    What identifies a training set: ``tensors_sha256(images, labels)`` of the float32 images and
    int64 labels a model is trained on. Equal data always gives the same digest, whatever the
    device or memory layout it came from."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over a model's state dict (sorted names, shapes, dtypes, bytes): which weights
    answered. ``torch.compile``'s ``_orig_mod.`` prefix is ignored."""
    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key.removeprefix('_orig_mod.')}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def git_commit(repo: str | os.PathLike | None = None) -> str | None:
    """The checkout's HEAD commit, with "+dirty" when tracked files differ; None outside a checkout."""
    import subprocess

    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def device_name(device) -> str:
    """"cpu", or the GPU's marketing name (e.g. "NVIDIA H200") for a CUDA device."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def machine_record(device="cpu") -> dict:
    """Where a run was computed: device (the GPU's name on CUDA), torch version, CPU threads, CPU
    count, Python, the CPU architecture and the OS, the load average when it was recorded (other
    jobs sharing the cores slow every timing down) and the git commit."""
    import platform

    out = {"device": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.machine(),
           "os": platform.platform(), "commit": git_commit()}
    try:
        out["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):  # not on every OS
        pass
    return out


# --- statistics -----------------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (``z`` sets the level).

    Unlike the normal approximation it stays inside [0,1] and is sensible at 0 or n successes,
    which robust accuracies near 0% often are."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    lo = 0.0 if successes == 0 else max(0.0, center - half)  # exact at the edges (no round-off)
    hi = 1.0 if successes == n else min(1.0, center + half)
    return lo, hi


# --- progress ---------------------------------------------------------------------------------------
class StageLine:
    """What a progress bar is in an executed notebook: one line when the stage starts and one when it
    ends (how much, how long, how fast), on stderr, instead of a stream of redrawn bars. Implements
    the part of tqdm's interface the library uses (update, set_postfix, close, a context manager)."""

    def __init__(self, total=None, initial=0, desc="", unit="it", disable=False, **_):
        self.total, self.n, self.desc, self.unit, self.disable = total, initial or 0, desc or "progress", unit, disable
        self.start_n, self.t0, self.postfix, self.closed = self.n, time.perf_counter(), "", False
        if not disable:
            left = "" if total is None else f"{(total - self.n):,} {unit}" + (f" (of {total:,})" if self.n else "")
            self._print(f"{self.desc}: {left} ...")

    def _print(self, text: str) -> None:
        import sys

        print(f"[advlib] {text}", file=sys.stderr, flush=True)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, ordered_dict=None, **kwargs):
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self):
        if self.closed or self.disable:
            self.closed = True
            return
        self.closed = True
        seconds = time.perf_counter() - self.t0
        done = self.n - self.start_n
        rate = f", {done / seconds:,.0f} {self.unit}/s" if seconds > 0 and done else ""
        post = f" ({self.postfix})" if self.postfix else ""
        self._print(f"{self.desc}: {done:,} {self.unit} in {_duration(seconds)}{rate}{post}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def progress_bar(**kwargs):
    """A tqdm bar: a widget in Jupyter and plain text in a terminal; when ``python -m advlib run``
    executes the notebooks (it sets ADVLIB_PROGRESS=text) a :class:`StageLine` instead, so a long
    headless run says where it is, stage by stage, without flooding the console or the saved
    notebook."""
    if os.environ.get("ADVLIB_PROGRESS") == "text":
        return StageLine(**kwargs)
    from tqdm.auto import tqdm

    return tqdm(**kwargs)
