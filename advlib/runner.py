"""Run the notebooks in order with papermill: ``python -m advlib run --profile P``.

Each notebook's ``parameters`` cell declares ``profile``, ``run_dir`` and ``overrides`` (a JSON
object string of profile overrides) plus its own scalars. ``-p key value`` goes to the profile
when ``key`` is a profile key (``seed``, a dotted recipe key such as ``sources.standard.epochs``,
or an old flat key of ``config.ALIASES``, which is translated, with a notice, to its new keys
before the notebooks see it), else to every notebook that declares ``key``; a key that is
neither is an error before anything runs.

Before any notebook starts, every value is checked (profile keys, dataset / ``which`` /
``origin`` names, paths that must exist, CUDA when asked for), and paths given on the command
line are made absolute against the caller's working directory (the notebooks run inside
``notebooks/``). While a notebook runs, its cells' output (progress bars included, as text)
streams to the console.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

from . import config, dotted, htmlreport
from .paths import ORIGINS, RunPaths
from .utils import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
COMMON = ("profile", "run_dir", "overrides")
# cifar_source / release: a path unless one of these words; figures_dir: always a path ("" = default)
PATH_FIELDS = {"cifar_source": ("torchvision", "sample"), "release": ("download", "skip"),
               "standard_checkpoint": ("",), "robust_checkpoint": ("",)}
PATH_PARAMS = ("figures_dir",)
GPU_PROFILES = {"fast": "about 10 minutes on one H100/H200, many hours on a CPU",
                "paper": "GPU-hours on a data-center GPU, weeks on a CPU"}
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]  # no "Kernel is running over TCP" warning per notebook
# notebook parameters renamed: old -> new (notebooks 03-05's "origin" is also the profile's key, which
# the runner sets for every notebook)
RENAMED_PARAMS = {"source": "origin"}


class RunError(RuntimeError):
    """A notebook failed or the run was misconfigured; the message names which."""


def list_notebooks(directory: Path = NOTEBOOKS, select: list[str] | None = None) -> list[Path]:
    """Notebooks named ``NN_*.ipynb`` in order; ``select`` keeps those whose name starts with an entry."""
    if not directory.is_dir():
        raise RunError(f"notebook folder {directory} not found (run from a source checkout)")
    found = sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))
    if select:
        unknown = [s for s in select if not any(p.name.startswith(s) for p in found)]
        if unknown:
            raise RunError(f"no notebook matches {unknown}; available: {[p.name for p in found]}")
        found = [p for p in found if any(p.name.startswith(s) for s in select)]
    if not found:
        raise RunError(f"no notebooks NN_*.ipynb in {directory}")
    return found


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The parameters a notebook declares (papermill's inspection of its ``parameters`` cell)."""
    import papermill as pm

    params = pm.inspect_notebook(str(path))
    if not params:
        raise RunError(f"{path.name}: no cell tagged 'parameters'")
    missing = [k for k in COMMON if k not in params]
    if missing:
        raise RunError(f"{path.name}: parameters cell lacks {missing} (every notebook declares {COMMON})")
    return params


def split_parameters(pairs: list[tuple[str, str]], declared: dict[str, dict]) -> tuple[dict, dict[str, dict]]:
    """Sort ``-p key value`` pairs into profile overrides and per-notebook parameters."""
    overrides, per_nb = {}, {name: {} for name in declared}
    for key, value in pairs:
        if key in COMMON:
            raise RunError(f"parameter {key!r} is set by the runner itself (use --profile / --out)")
        if key in RENAMED_PARAMS and not any(key in params for params in declared.values()):
            print(f"[advlib] -p {key}: the notebooks' parameter {key!r} is now {RENAMED_PARAMS[key]!r}; "
                  f"use -p {RENAMED_PARAMS[key]}", file=sys.stderr)
            key = RENAMED_PARAMS[key]
        if config.is_key(key):
            overrides[key] = value
            continue
        owners = [name for name, params in declared.items() if key in params]
        if not owners and "." in key:  # a profile key into a group: name the group's valid keys
            try:
                dotted.resolve(config.Profile, key, "profile key", skip=("name",))
            except ValueError as e:
                raise RunError(str(e)) from None
        if not owners:
            nb_keys = sorted({k for params in declared.values() for k in params} - set(COMMON))
            top = sorted(k for k in config.keys() if "." not in k)
            raise RunError(f"unknown parameter {key!r}: not a profile key and not declared by any notebook.\n"
                           f"  profile keys: {top}, and the recipes' {', '.join(config.RECIPE_KEYS)}.<key> "
                           f"(python -m advlib profiles shows them)\n  notebook parameters: {nb_keys}")
        for name in owners:
            per_nb[name][key] = typed_value(key, value, declared[name][key], name)
    return overrides, per_nb


def typed_value(key: str, value, declared: dict, notebook: str):
    """A ``-p`` value (text) as the type of the notebook's default (int, float, bool or str), so a
    notebook receives ``eps = 0.8``, not ``eps = "0.8"``; a value that does not parse is an error."""
    import ast

    try:
        default = ast.literal_eval(declared.get("default", "''"))
    except (ValueError, SyntaxError):
        return value
    if not isinstance(value, str) or isinstance(default, str):
        return value
    kind = type(default)
    try:
        if kind is bool:
            low = value.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return low in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise RunError(f"parameter {key!r} ({notebook}): expected {kind.__name__}, got {value!r}") from None


def resolve_paths(overrides: dict, per_nb: dict[str, dict], cwd: Path | None = None) -> None:
    """Make path values absolute against ``cwd`` (the caller's directory), in place, and check
    that the ones that must exist do."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    for key, words in PATH_FIELDS.items():
        value = overrides.get(key)
        if value is None or str(value) in words:
            continue
        path = (cwd / Path(str(value)).expanduser()).resolve()
        if not path.exists():
            raise RunError(f"profile field {key!r}: {value!r} is neither one of {words} nor an existing path "
                           f"(looked for {path})")
        overrides[key] = str(path)
    for params in per_nb.values():
        for key in PATH_PARAMS:
            if params.get(key):
                params[key] = str((cwd / Path(str(params[key])).expanduser()).resolve())


def check_notebook_values(per_nb: dict[str, dict]) -> None:
    """The notebooks' own parameters: dataset names, ``which`` lists and the sets' origin."""
    for name, params in per_nb.items():
        for key, value in params.items():
            value = str(value)
            if key == "dataset" and value != "all" and value not in config.DATASETS:
                raise RunError(f"parameter 'dataset' ({name}): {value!r}; expected 'all' or one of {config.DATASETS}")
            if key == "which":
                bad = [v.strip() for v in value.split(",") if v.strip() and v.strip() not in config.DATASETS]
                if bad:
                    raise RunError(f"parameter 'which' ({name}): unknown {bad}; expected names from {config.DATASETS}")
            if key == "origin" and value and value not in ORIGINS:
                raise RunError(f"parameter 'origin' ({name}): {value!r}; expected one of {ORIGINS} (or empty)")


def current_keys(profile: str, overrides: dict) -> dict:
    """``overrides`` with every old flat key translated to the keys it sets now (a notice on stderr
    for each), so that the notebooks receive today's keys only."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        pairs = config.expand(overrides, config.get_profile(profile))
    for w in caught:
        print(f"[advlib] -p: {w.message}", file=sys.stderr)
    return dict(pairs)


def check_device(cfg: config.Profile) -> None:
    """A GPU profile on a machine without CUDA would run for days: ask for an explicit choice."""
    import torch

    if cfg.name in GPU_PROFILES and cfg.device == "auto" and not torch.cuda.is_available():
        raise RunError(f"profile {cfg.name!r} is sized for a GPU ({GPU_PROFILES[cfg.name]}) and this machine has "
                       "no CUDA device; pass -p device cpu to run it here anyway, or use --profile cpu")


def run(profile: str, out: str | Path | None = None, params: list[tuple[str, str]] = (),
        select: list[str] | None = None, notebooks_dir: Path = NOTEBOOKS, kernel: str = "python3",
        log_output: bool = True) -> dict:
    """Execute the notebooks in order into ``out``/notebooks; return {notebook: seconds}.

    ``out`` defaults to ``runs/demo`` for smoke and ``runs/<profile>`` otherwise (the notebooks'
    own default). ``log_output``: stream every cell's output to this process's stdout/stderr."""
    import papermill as pm

    from .steps.base import default_run_dir

    nbs = list_notebooks(notebooks_dir, select)
    declared = {p.name: notebook_parameters(p) for p in nbs}
    overrides, per_nb = split_parameters(list(params), declared)
    resolve_paths(overrides, per_nb)
    check_notebook_values(per_nb)
    overrides = current_keys(profile, overrides)
    cfg = config.get_profile(profile, **overrides)  # validate before any notebook runs
    check_device(cfg)
    paths = RunPaths.of(out if out else default_run_dir(profile))
    paths.notebooks.mkdir(parents=True, exist_ok=True)
    atomic_write_json(paths.config, cfg.to_dict())

    timings = _load_timings(paths)
    os.environ["ADVLIB_PROGRESS"] = "text"  # the kernels inherit it: progress bars as streamed text
    for i, nb in enumerate(nbs, 1):
        parameters = {"profile": profile, "run_dir": str(paths.root), "overrides": json.dumps(overrides)}
        parameters.update(per_nb[nb.name])
        out_nb = paths.notebooks / nb.name
        print(f"[advlib] ({i}/{len(nbs)}) {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(out_nb), parameters=parameters, kernel_name=kernel,
                                cwd=str(notebooks_dir), progress_bar=False,
                                stdout_file=sys.stdout if log_output else None,
                                stderr_file=sys.stderr if log_output else None,
                                extra_arguments=KERNEL_ARGS)
        except pm.PapermillExecutionError as e:
            raise RunError(f"notebook {nb.name} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                           f"{e.ename}: {e.evalue}\n  executed copy with the traceback: {out_nb}") from None
        seconds = time.perf_counter() - t0
        timings[nb.name] = round(seconds, 2)
        atomic_write_json(paths.timings, timings)
        print(f"[advlib] {nb.name} done in {seconds:.1f} s", flush=True)
        if nb.name == htmlreport.REPORT_NOTEBOOK:  # the report notebook ran: its HTML page beside it
            print(f"[advlib] wrote {htmlreport.write(paths.root).relative_to(paths.root)}", flush=True)
    _merge_timings_into_results(paths, timings)
    return timings


def _load_timings(paths: RunPaths) -> dict:
    if paths.timings.is_file():
        return json.loads(paths.timings.read_text())
    return {}


def _merge_timings_into_results(paths: RunPaths, timings: dict) -> None:
    if not paths.results.is_file():
        return
    results = json.loads(paths.results.read_text())
    results.setdefault("timings_s", {}).update({f"notebook:{k}": v for k, v in timings.items()})
    results["timings_s"]["total_notebooks"] = round(sum(timings.values()), 2)
    atomic_write_json(paths.results, results)


def main_run(args) -> int:
    try:
        timings = run(args.profile, args.out, args.param or [], args.notebooks, log_output=not args.quiet)
    except (RunError, ValueError) as e:
        print(f"advlib run: error: {e}", file=sys.stderr)
        return 1
    total = sum(timings.values())
    print("[advlib] wall time per notebook:")
    for k, v in timings.items():
        print(f"  {k:32s} {v:8.1f} s")
    print(f"  {'total':32s} {total:8.1f} s")
    return 0
