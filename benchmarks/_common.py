"""Helpers shared by the benchmark scripts (not part of advlib): one parser, one setup, one machine
record, portable paths for the JSONs they write, and the number formats of their README tables.

A lever script declares the shared arguments and sets up from them::

    ap = argparse.ArgumentParser()
    add_run_args(ap, setting="epochs=..,lr=..", out="benchmarks/results/x.json")
    args = ap.parse_args(argv)
    bench = setup(args)            # validates the profile (a bad field exits, naming it) before any work
    x, y = bench.train             # the profile's CIFAR-10 training pick, loaded on first use
    xv, yv = bench.eval_split      # what it measures on: the validation split unless --split test
    atomic_write_json(args.out, {**bench.record(), "rows": rows})

and is run from the repository root as ``python -m benchmarks.<script> ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from advlib import config, data
from advlib.paths import RunPaths
from advlib.utils import get_device, machine_record, set_seed

ROOT = Path(__file__).resolve().parents[1]  # the repository
RESULTS = ROOT / "benchmarks" / "results"
SPLITS = ("val", "test")
N_VAL = 2000  # validation images held out of the training images when the profile holds out none
PATH_FIELDS = ("cifar_source", "release", "standard_checkpoint", "robust_checkpoint")  # profile fields that may be paths


# --- the shared arguments and setup -------------------------------------------------------------------
def add_run_args(parser: argparse.ArgumentParser, *, run_dir: bool = True, setting: str | None = None,
                 out: str | None = None, profile: str = "cpu", split: bool = True) -> argparse.ArgumentParser:
    """The arguments every lever script shares.

    ``--run-dir`` (required unless ``run_dir=False``: then optional, the CIFAR-10 cache of
    torchvision's copy), ``--profile``, ``--cifar`` (profile field ``cifar_source``), ``-p KEY
    VALUE`` (any other profile key, a recipe's too: ``-p sets.rnr.epochs 10``), ``--split val|test`` (where the script measures: the
    validation split by default, the test set only when a run reports), ``--n-val`` (validation
    images when the profile holds out none), ``--setting`` (repeatable, required, when ``setting``
    gives its help) and ``--out`` (the JSON written; required when ``out`` is None, "" = the
    script's default name under benchmarks/results/). ``split=False``: no ``--split``/``--n-val``;
    the script loads the data as a run of the study does (only the profile's ``n_val`` held out)
    and reports on the test set."""
    parser.add_argument("--run-dir", required=run_dir, default=None,
                        help="run directory (models, sets and the CIFAR-10 cache)" if run_dir else
                        "run directory for the CIFAR-10 cache (needed with cifar_source torchvision)")
    parser.add_argument("--profile", default=profile, choices=config.PROFILE_NAMES)
    parser.add_argument("--cifar", default=None, help="CIFAR-10 source: torchvision | sample | a zip or folder "
                        "(profile field cifar_source; default: the profile's)")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="profile override, e.g. -p eval_n 500 -p sets.rnr.epochs 10 (repeatable)")
    if split:
        parser.add_argument("--split", choices=SPLITS, default="val",
                            help="where to measure: the validation split (default; held out of the training "
                            "images) or the test set (only when a run reports)")
        parser.add_argument("--n-val", type=int, default=N_VAL,
                            help=f"validation images when the profile holds out none (n_val 0; default {N_VAL})")
    if setting is not None:
        parser.add_argument("--setting", action="append", required=True, help=setting)
    default = f" (default {out})" if out else " (default benchmarks/results/<script>-<device>.json)"
    parser.add_argument("--out", required=out is None, default=out, help="JSON file to write" +
                        ("" if out is None else default))
    return parser


def overrides_of(args, **extra) -> dict:
    """The profile overrides of parsed ``args`` (``-p`` pairs, ``--cifar``), then ``extra``."""
    out = dict(getattr(args, "param", None) or [])
    if getattr(args, "cifar", None):
        out["cifar_source"] = args.cifar
    return {**out, **extra}


def profile_of(args, **extra) -> config.Profile:
    """The validated profile of ``args`` (+ ``extra`` overrides); a bad field exits naming it."""
    try:
        return config.get_profile(args.profile, **overrides_of(args, **extra))
    except ValueError as e:
        raise SystemExit(f"{Path(sys.argv[0]).name}: error: {e}") from None


@dataclass
class Bench:
    """What a lever script works with: the validated profile, the run directory, the device, and
    the profile's CIFAR-10 splits, each loaded on first use (``train``, ``val``, ``test``, and
    ``eval_split``: ``val`` or ``test`` as ``--split`` says)."""

    cfg: config.Profile
    paths: RunPaths | None
    device: torch.device
    split: str = "val"
    n_val: int = N_VAL
    _data: dict = field(default_factory=dict, repr=False)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The profile's seeded, class-balanced ``split``: "train" (n_train images), "val" (``n_val``
        held out of the training images the profile does not train on) or "test" (n_test)."""
        if split not in self._data:
            cfg = self.cfg
            self._data[split] = data.load_cifar10(
                cfg.cifar_source, split, n=(cfg.n_test if split == "test" else cfg.n_train), seed=cfg.seed,
                root=self.paths.data if self.paths else None, val=self.n_val)
        return self._data[split]

    @property
    def train(self):
        return self.load("train")

    @property
    def val(self):
        return self.load("val")

    @property
    def test(self):
        return self.load("test")

    @property
    def eval_split(self):
        return self.load(self.split)

    def split_record(self) -> dict:
        """What ``eval_split`` is, for the JSON: ``{"split": "val"|"test"}``, and for the validation
        split where its images come from (``split_note``)."""
        out = {"split": self.split}
        if self.split == "val":
            n = self.cfg.n_train
            out["split_note"] = (f"{self.n_val} CIFAR-10 training images outside the profile's training pick of {n}"
                                 if n else f"{self.n_val} CIFAR-10 training images held out of training (the "
                                 "profile trains on all the others)")
        return out

    def record(self, **extra) -> dict:
        """The header of a lever script's JSON: profile, split, run directory and CIFAR-10 source
        (portable), the machine."""
        out = {"profile": self.cfg.name, **self.split_record(), "cifar": portable(self.cfg.cifar_source)}
        if self.paths is not None:
            out["run_dir"] = portable(self.paths.root)
        return {**out, **extra, "machine": machine_record(self.device)}

    def profile_record(self) -> dict:
        """The profile's fields with every path made portable (:func:`portable`)."""
        d = self.cfg.to_dict()
        return {k: (portable(v) if k in PATH_FIELDS and v else v) for k, v in d.items()}


def setup(args, *, reads_run: bool = False, **overrides) -> Bench:
    """Validate and set up from parsed :func:`add_run_args` arguments, before any work: the profile
    (``config.get_profile`` with ``-p``, ``--cifar`` and ``overrides``; a bad field exits naming
    it), the run directory, the device, the seed and the CPU threads. Data is loaded on first use.

    ``reads_run``: the script measures models or sets of the run directory, which learned from the
    run's training pick; with ``--split val`` the validation images must lie outside it, so a
    profile that trains on every training image and holds out none is refused."""
    cfg = profile_of(args, **overrides)
    if getattr(args, "split", None) is None:  # add_run_args(split=False): the study's own data
        split, n_val = "test", cfg.n_val
    else:
        split, n_val = args.split, cfg.n_val or args.n_val
        if split == "val" and reads_run and cfg.n_train == 0 and cfg.n_val == 0:
            raise SystemExit(f"profile {cfg.name!r} trains on every CIFAR-10 training image and holds out none "
                             "(n_train 0, n_val 0): the run's models have seen any validation image. Use a run "
                             "built with -p n_val N, or --split test")
        if n_val <= 0:
            raise SystemExit(f"--n-val must be > 0, got {n_val}")
    run_dir = getattr(args, "run_dir", None)
    paths = RunPaths.of(run_dir) if run_dir else None
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    set_seed(cfg.seed)
    return Bench(cfg=cfg, paths=paths, device=get_device(cfg.device), split=split, n_val=n_val)


def resume(out, bench: Bench) -> dict:
    """The JSON at ``out`` to add rows to ({} when there is none); exits when it was measured on
    another split (files from before ``--split`` were measured on the test set)."""
    out = Path(out)
    if not out.is_file():
        return {}
    old = json.loads(out.read_text())
    had = str(old.get("split", "test"))
    had = "val" if had.startswith("val") else had  # rnr_control wrote "validation: ..." before
    if had != bench.split:
        raise SystemExit(f"{out} holds rows measured on the {had} split, this run measures on {bench.split}: "
                         "write to another --out")
    return old


# --- portable values ------------------------------------------------------------------------------------
def portable(value):
    """A path as a committed JSON may carry it: relative to the repository when inside it, a
    relative path or a word ("torchvision", "sample") unchanged, and for an absolute path elsewhere
    ``"outside the repository: <name>"`` (never a machine's absolute path). None stays None."""
    if value is None:
        return None
    text = str(value)
    p = Path(text).expanduser()
    if not p.is_absolute():
        return Path(text).as_posix() if (os.sep in text or "/" in text) else text
    try:
        return p.resolve().relative_to(ROOT.resolve()).as_posix()
    except ValueError:
        return f"outside the repository: {p.name}"


def shown(path) -> str:
    """A path for the console: relative to the repository when inside it, else as it is."""
    p = Path(path).resolve()
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p)


# --- writing ------------------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_result(name: str, device, result: dict, out=None) -> Path:
    """``out``, or benchmarks/results/<name>-<device type>.json; printed relative to the repository."""
    out = Path(out) if out else RESULTS / f"{name}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {shown(out)}")
    return out


def parse_setting(text: str, keys: dict, defaults: dict | None = None) -> dict:
    """``"key=value,key=value"`` -> dict, each value converted by ``keys[key]``; unknown keys exit."""
    out = dict(defaults or {})
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in keys:
            raise SystemExit(f"--setting {text!r}: unknown key {key!r}; expected {sorted(keys)}")
        try:
            out[key] = keys[key](value)
        except ValueError:
            raise SystemExit(f"--setting {text!r}: {key}={value!r}: expected {keys[key].__name__}") from None
    return out


# --- the number formats of the README tables -------------------------------------------------------------
def pct(v) -> str:
    """A fraction as a percent with one decimal ("61.5%"); "–" for None."""
    return "–" if v is None else f"{100 * float(v):.1f}%"


def minutes(sec: float) -> str:
    """"45 s" under 90 s, else "2 min 10 s"."""
    return f"{sec:.0f} s" if sec < 90 else f"{int(sec // 60)} min {int(round(sec % 60)):02d} s"


def load_avg(machine: dict) -> str:
    """The load average of a machine record, "2.0, 1.9, 1.8" ("?" when not recorded)."""
    return ", ".join(f"{v:.1f}" for v in machine.get("load_avg", [])) or "?"


def threads(machine: dict):
    """The torch CPU threads of a machine record (``advlib.utils.machine_record`` or the older
    ``torch_threads`` of benchmark JSONs written before it)."""
    return machine.get("threads", machine.get("torch_threads"))


__all__ = ["add_run_args", "setup", "Bench", "profile_of", "overrides_of", "resume", "portable", "shown", "write_result",
           "parse_setting", "sync", "pct", "minutes", "load_avg", "threads", "ROOT", "RESULTS", "N_VAL", "SPLITS"]
