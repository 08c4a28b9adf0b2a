"""The steps the notebooks call, one function per step, so every notebook stays a table of
contents. Each reads sizes and settings from the profile and files from the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from . import config, data
from .paths import SOURCE_ROLES, RunPaths
from .utils import get_device

REPO = Path(__file__).resolve().parents[1]


def default_run_dir(profile: str) -> Path:
    """Where a profile's run lives when none is named: ``runs/demo`` for smoke (what ``make demo``
    writes, so the notebooks opened in JupyterLab show it), ``runs/<profile>`` otherwise; under the
    source checkout when advlib runs from one, else under the current directory."""
    base = REPO if (REPO / "notebooks").is_dir() else Path.cwd()
    return base / "runs" / ("demo" if profile == "smoke" else profile)


def setup(profile: str, run_dir: str = "", overrides: str = "", figures_dir: str = ""):
    """What every notebook's second cell calls: the validated profile, the run's paths and the
    figure folder; seeds Python, NumPy and torch with the profile's seed."""
    from .utils import set_seed

    cfg = config.load(profile, overrides)
    paths = RunPaths.of(run_dir or default_run_dir(profile))
    set_seed(cfg.seed)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    return cfg, paths, Path(figures_dir).expanduser() if figures_dir else paths.figures


def cifar(cfg: config.Profile, paths: RunPaths, split: str):
    """The profile's CIFAR-10 split, seeded and class-balanced: "train" (n_train images), "val"
    (n_val images held out of the training images the profile does not train on) or "test" (n_test)."""
    if split == "val" and cfg.n_val == 0:
        return None  # the profile holds out no validation images
    n = cfg.n_test if split == "test" else cfg.n_train
    return data.load_cifar10(cfg.cifar_source, split, n=n, seed=cfg.seed, root=paths.data, val=cfg.n_val)


def fetch_release(cfg: config.Profile, paths: RunPaths) -> dict[str, Path]:
    """Download and/or extract the authors' tarball as ``cfg.release`` says; {} when skipped."""
    if cfg.release == "skip":
        return {}
    if cfg.release == "download":
        tar = data.download(config.RELEASE_URL, paths.data / "datasets.tar", sha256=cfg.release_sha256 or None)
    else:
        tar = Path(cfg.release).expanduser()
        if not tar.is_file():
            raise FileNotFoundError(f"profile field 'release': no tarball at {tar} (use 'download' or 'skip')")
    return data.extract_release(tar, paths.datasets / "released", short_names=True)


def inventory(paths: RunPaths) -> list[dict]:
    """What feature datasets the run directory holds: one row per (source, dataset)."""
    rows = []
    for source in ("released", "constructed"):
        for name in config.DATASETS:
            d = paths.dataset(name, source)
            files = [d / "CIFAR_ims", d / "CIFAR_lab"]
            present = all(f.is_file() for f in files)
            rows.append({"source": source, "dataset": name, "present": present,
                         "MB": round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 1),
                         "path": str(d)})
    return rows


def feature_sets(cfg: config.Profile, paths: RunPaths, source: str = "", only: str = "all") -> dict[str, tuple]:
    """The profile's datasets that exist for ``source`` (default: cfg.dataset_source), loaded.

    ``only``: "all" or one dataset name (which must then be present)."""
    source = source or cfg.dataset_source
    names = cfg.dataset_list
    if only != "all":
        if only not in config.DATASETS:
            raise ValueError(f"parameter 'dataset': unknown {only!r}; expected 'all' or one of {config.DATASETS}")
        if only not in paths.available(source):
            raise FileNotFoundError(f"parameter 'dataset': {only!r} ({source}) not found at {paths.dataset(only, source)}")
        names = [only]
    return {name: data.load_feature_dataset(paths.dataset(name, source))
            for name in names if name in paths.available(source)}


def train_source_models(cfg, paths, train, test, progress=True) -> dict:
    """Standard and L2-robust source models (trained, or loaded when already there); {} for a
    run on the released sets, which needs neither."""
    from . import construct

    if cfg.dataset_source == "released":
        return {}
    return construct.source_models(cfg, *train, paths, eval_data=test, progress=progress)


def parse_which(which: str, default: list[str]) -> list[str]:
    """Notebook parameter ``which``: comma-separated dataset names ("" = ``default``)."""
    names = [s.strip() for s in str(which).split(",") if s.strip()]
    bad = [n for n in names if n not in config.DATASETS]
    if bad:
        raise ValueError(f"parameter 'which': unknown {bad}; expected names from {config.DATASETS}")
    return names or list(default)


def construct_sets(cfg, paths, train, models, which: str = "", progress=True) -> dict[str, dict]:
    """Build the profile's datasets (or those named in ``which``); {} for a released-data run."""
    from . import construct

    names = parse_which(which, cfg.dataset_list)
    if cfg.dataset_source == "released" or not models:
        return {}
    return construct.construct_all(cfg, paths, *train, models, which=names, progress=progress)


def describe_sets(sets: dict, source: str) -> str:
    """One line: which sets of ``source`` are present and their sizes (or what to run first)."""
    if not sets:
        return f"No {source} datasets in this run yet: run notebooks 01-02 first (or pass source=released)."
    return f"{source} sets: " + ", ".join(f"{n} ({len(s[1] if isinstance(s, tuple) else s):,} images)"
                                          for n, s in sets.items())


def visual_sets(cfg, paths, source: str = "") -> dict:
    """The profile's datasets of ``source`` as ``viz.FeatureSet`` (images, labels, meta) for figures."""
    from . import viz

    return viz.load_sets(paths, source or cfg.dataset_source, names=cfg.dataset_list)


def _seed_arg(cfg, seed: int):
    """None for the run's own seed (the model's plain folder), else the extra seed."""
    return None if seed == cfg.seed else seed


def matched_controls(cfg, paths, train, source: str = "") -> dict[str, tuple]:
    """{control name: (images, labels)}: for each set of ``source`` in the run, the real training
    images it was built from (its meta.json ``source_indices`` into this run's training pool) with
    their true labels. D_R and D_NR share one control, so they must come from the same images. A
    released set was built from the whole CIFAR-10 training set: its control is the whole pool."""
    import torch

    from .construct import pool_fingerprint

    source = source or cfg.dataset_source
    out: dict[str, tuple] = {}
    for name in paths.available(source):
        if name not in cfg.dataset_list:
            continue
        control = config.MATCHED_CONTROL[name]
        if source == "released":
            idx = torch.arange(len(train[1]))
        else:
            meta_f = paths.dataset(name, source) / "meta.json"
            meta = json.loads(meta_f.read_text())
            pool = (meta.get("pool") or {}).get("fingerprint")
            if pool != pool_fingerprint(*train):
                raise ValueError(f"{meta_f}: built from another training pool ({pool}) than this run's "
                                 f"({pool_fingerprint(*train)}): rerun notebook 02 with this profile")
            idx = torch.as_tensor(meta["source_indices"], dtype=torch.int64)
        pair = (train[0][idx], train[1][idx])
        if control in out and not (len(out[control][1]) == len(idx) and torch.equal(out[control][0], pair[0])):
            raise ValueError(f"{name} was built from other images than the other set sharing the control "
                             f"{control!r}; build both with the same profile (invert_n, seed)")
        out[control] = pair
    return out


def _train_each_seed(cfg, paths, name, x, y, source, watch, progress) -> dict[str, dict]:
    import dataclasses

    from . import train as tr

    out = {}
    for seed in cfg.seeds:
        tcfg = dataclasses.replace(tr.train_config(cfg, "dataset", name), seed=seed)
        _, hist = tr.train_or_load(tcfg, x, y, paths.model(name, source, _seed_arg(cfg, seed)), eval_data=watch,
                                   progress=progress, device=get_device(cfg.device), source=source, dataset=name,
                                   eval_every=cfg.eval_every)
        out[name if seed == cfg.seed else f"{name}-seed{seed}"] = hist
    return out


def train_on_sets(cfg, paths, sets: dict, watch=None, source: str = "", progress=True, controls=None) -> dict[str, dict]:
    """Train a fresh model on each loaded set of ``source`` (default ``cfg.dataset_source``), once
    per seed of ``cfg.seeds``, in ``models/<source>/<name>[-seed<k>]`` (resuming from checkpoints;
    a model trained on other data is set aside and retrained), and each set's matched control
    (``controls``, from :func:`matched_controls`) with the same recipe and seeds in
    ``models/cifar10/<control>``. ``watch``: images whose accuracy is logged during training (the
    validation split; never the test set). Returns {name or name-seed<k>: history}."""
    source = source or cfg.dataset_source
    histories = {}
    for name, (x, y) in sets.items():
        histories.update(_train_each_seed(cfg, paths, name, x, y, source, watch, progress))
    for name, (x, y) in (controls or {}).items():
        histories.update(_train_each_seed(cfg, paths, name, x, y, "cifar10", watch, progress))
    return histories


def train_standard_seeds(cfg, paths, train, test, progress=True) -> dict[str, dict]:
    """The standard source model again with each extra seed of ``cfg.source_seeds`` (its spread is
    part of the comparison); the run's own seed was trained in notebook 02. {name: history}."""
    import dataclasses

    from . import train as tr

    out = {}
    for seed in cfg.standard_seeds[1:]:
        tcfg = dataclasses.replace(tr.train_config(cfg, "standard"), seed=seed)
        _, hist = tr.train_or_load(tcfg, *train, paths.model("standard", "cifar10", seed), eval_data=test,
                                   progress=progress, device=get_device(cfg.device), source="cifar10", dataset="cifar10",
                                   eval_every=cfg.eval_every)
        out[f"standard-seed{seed}"] = hist
    return out


def eval_settings(cfg, full: bool = True) -> dict:
    """What an evaluation depends on besides the weights (a stored row is reused only if equal)."""
    keys = ("n_test", "cifar_source", "eval_eps", "claim_eps", "eval_sweep", "eval_steps", "eval_restarts", "eval_n",
            "seed", "eval_attack", "apgd_targets", "apgd_steps", "autoattack_n", "autoattack_steps",
            "autoattack_targets")
    from . import evaluate as ev

    # the protocol is part of the settings: rows from before nested radii, masks and the headline
    # attack are computed again
    return {**{k: getattr(cfg, k) for k in keys}, "sweep": ev.SWEEP, "full": full, "format": 2}


def _check_current(paths, source: str, name: str, prov: dict | None, model_dir) -> str:
    """The sha256 of the dataset on disk, which must be what the model in ``model_dir`` learned from."""
    from .utils import tensors_sha256

    x, y = data.load_feature_dataset(paths.dataset(name, source))
    current = tensors_sha256(x, y)
    trained_on = (prov or {}).get("dataset_sha256")
    if trained_on != current:
        raise ValueError(f"{model_dir} was trained on {name} ({source}) with sha256 {str(trained_on)[:12]}, but "
                         f"{paths.dataset(name, source)} now holds sha256 {current[:12]}: rerun notebook 04 "
                         "(training) so that the model matches the data before evaluating it")
    return current


# The rows whose robustness a claim rests on: the run's own seed of these is cross-checked with
# the standard AutoAttack (the others are either not claimed robust or near 0% already)
AUTOATTACK_ROWS = ("standard", "adversarial", "d_robust", "d_non_robust", "control_rnr")


def _todo(cfg, source: str) -> list[tuple[str, str, int]]:
    """(model source, name, seed) of every model notebook 05 evaluates, in table order."""
    from .construct import source_roles

    todo = [("cifar10", "standard", seed) for seed in cfg.standard_seeds]
    todo += [("cifar10", role, cfg.seed) for role in source_roles(cfg) if role != "standard"]
    for name in cfg.dataset_list:
        todo += [(source, name, seed) for seed in cfg.seeds]
    todo += [("cifar10", c, seed) for c in dict.fromkeys(config.MATCHED_CONTROL[n] for n in cfg.dataset_list)
             for seed in cfg.seeds]
    return todo


def evaluate_all(cfg, paths, test, source: str = "", progress=True, train=None) -> dict:
    """Clean and robust accuracy of every trained model in the run dir on the real test set →
    results.json (float32, per-image outcomes, intervals, provenance of each row).

    A dataset model is evaluated only if it learned from the dataset now on disk (its recorded
    sha256 equals the file's), so a rebuilt set is never answered by the old model; with ``train``
    (the run's training pool) a matched control is checked the same way against the images its set
    was built from. A row already in results.json for the same weights and evaluation settings is
    kept as it is (a killed notebook resumes). The run's own seed gets the whole sweep (and, for
    ``AUTOATTACK_ROWS``, the AutoAttack cross-check); extra seeds and the targeted sets' own source
    model are attacked at ``eval_eps`` and ``claim_eps``."""
    from . import evaluate as ev
    from . import results as rs
    from . import train as tr
    from .utils import machine_record, state_dict_sha256, tensors_sha256

    source = source or cfg.dataset_source
    device = get_device(cfg.device)
    controls = matched_controls(cfg, paths, train, source) if train is not None else {}
    results = rs.load_results(paths.results) if paths.results.is_file() else {"rows": []}
    machine = machine_record(device)
    for model_source, name, seed in _todo(cfg, source):
        model_dir = paths.model(name, model_source, _seed_arg(cfg, seed))
        if not (model_dir / "checkpoint.pt").is_file():
            continue
        prov = tr.read_provenance(model_dir)
        row_name = rs.ROW_OF_ROLE.get(name, name) if model_source == "cifar10" else name
        dataset_sha = (prov or {}).get("dataset_sha256")
        if model_source != "cifar10":
            dataset_sha = _check_current(paths, model_source, name, prov, model_dir)
        elif name in controls and tensors_sha256(*controls[name]) != dataset_sha:
            raise ValueError(f"{model_dir} was trained on other images than those its set was built from now: "
                             "rerun notebook 04 (training) before evaluating")
        full = seed == cfg.seed and name != "targeted"
        settings = eval_settings(cfg, full)
        model = tr.load_trained(model_dir, device=device)
        ckpt_sha = state_dict_sha256(model)
        old = next((r for r in results.get("rows", []) if (r.get("dataset"), r.get("source"), r.get("seed"))
                    == (row_name, model_source, seed)), None)
        if old and old.get("checkpoint_sha256") == ckpt_sha and old.get("eval_settings") == settings:
            continue
        if progress:
            print(f"[advlib] evaluating {model_dir.relative_to(paths.root)}", flush=True)
        metrics = ev.evaluate_model(model, *test, cfg, seed=cfg.seed, full=full,
                                    autoattack=full and row_name in AUTOATTACK_ROWS and cfg.autoattack_n > 0)
        tcfg = (prov or {}).get("train_config") or json.loads((model_dir / "config.json").read_text())
        row = rs.results_row(row_name, model_source, metrics, arch=tcfg.get("arch"), seed=seed,
                             train_n=(prov or {}).get("n"), dataset_sha256=dataset_sha, checkpoint_sha256=ckpt_sha,
                             model_dir=str(model_dir.relative_to(paths.root)), eval_settings=settings)
        results = rs.update_results(paths.results, row, profile=cfg, machine=machine)
    if not paths.results.is_file():
        raise FileNotFoundError(f"no trained model found under {paths.models}: run notebooks 02 and 04 first")
    return rs.load_results(paths.results)


# --- small tables for the notebooks ---------------------------------------------------------------
def pct(v) -> str:
    """A fraction as a percent with one decimal ("61.5%"); "–" for None."""
    return "–" if v is None else f"{100 * float(v):.1f}%"


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 else f"{v:.1f}"
    return "–" if v is None else str(v)


def markdown_table(rows: list[dict]) -> str:
    """A list of flat dicts as a markdown table (columns in first-seen order)."""
    if not rows:
        return "_(nothing)_"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def summary_row(split: str, images, labels) -> dict:
    s = data.dataset_summary(images, labels)
    return {"split": split, "n": s["n"], "per class": "/".join(str(c) for c in s["counts"]),
            "mean": round(float(s["mean"]), 4), "std": round(float(s["std"]), 4)}


def source_model_rows(cfg, sources: dict, test) -> list[dict]:
    from . import evaluate as ev

    if not sources:
        return []
    idx = ev.eval_subset(test[1], cfg.eval_n, cfg.seed)
    rows = []
    for name in [r for r in SOURCE_ROLES if r in sources]:
        model = sources[name]
        rows.append({"source model": name, "arch": cfg.arch,
                     "clean acc": pct(ev.accuracy(model, *test)),
                     f"PGD L2 {cfg.eval_eps} acc (n={len(idx)})": pct(ev.robust_accuracy(
                         model, test[0][idx], test[1][idx], eps=cfg.eval_eps, steps=cfg.eval_steps, seed=cfg.seed))})
    return rows


def construction_rows(metas: dict[str, dict]) -> list[dict]:
    rows = []
    for name, m in metas.items():
        dist = m.get("final_rel_distance")
        rows.append({"dataset": name, "images": m.get("n_rows"), "algorithm": m.get("algorithm"),
                     "steps": m.get("steps"),
                     "target hit rate": pct(m["hit_rate"]) if m.get("hit_rate") is not None else "–",
                     "target = true label": pct(m["target_equals_label_fraction"])
                     if m.get("target_equals_label_fraction") is not None else "–",
                     "final rel. feature distance": f"{dist['mean']:.3f}" if isinstance(dist, dict) else "–",
                     "minutes": round(m.get("seconds", 0) / 60, 1), "images/s": round(m.get("images_per_second") or 0)})
    return rows


def history_rows(histories: dict[str, dict]) -> list[dict]:
    rows = []
    for name, h in histories.items():
        loss = (h.get("loss") or [None])[-1]
        rows.append({"trained on": name, "epochs": len(h.get("loss", [])),
                     "final loss": "–" if loss is None else f"{loss:.3f}",
                     "train acc": pct((h.get("train_acc") or [None])[-1]),
                     "test acc (CIFAR-10)": pct((h.get("eval_acc") or [None])[-1]),
                     "seconds": round(sum(h.get("seconds", [])), 1)})
    return rows


def load_results(paths: RunPaths) -> dict:
    from . import results as rs

    if not paths.results.is_file():
        raise FileNotFoundError(f"{paths.results} not found: run notebook 05 (evaluation) first")
    return rs.load_results(paths.results)


def results_markdown(results: dict) -> str:
    """The run's tables exactly as ``python -m advlib table results.json`` prints them."""
    from . import tables

    return tables.render(results)


def write_report(paths: RunPaths, results: dict) -> Path:
    """report.md in the run directory: the tables, timings and the exact settings."""
    from .utils import atomic_write_text

    # the runner writes timings.json after each notebook, so the report sees every earlier one
    timings = dict(results.get("timings_s", {}))
    if paths.timings.is_file():
        timings.update({f"notebook:{k}": v for k, v in json.loads(paths.timings.read_text()).items()})
    note = ""
    if results.get("profile") == "smoke":
        note = ("> **Smoke profile**: a tiny network trained for one or two epochs on 600 embedded images. Its numbers "
                "are near chance by design; they show that every step runs, not the paper's result.\n\n")
    text = "\n".join([
        f"# Run report: profile `{results.get('profile')}`", "",
        note + "Accuracies on the real CIFAR-10 test set (fractions shown as percent). Paper numbers: ResNet-50 "
        "on the original CIFAR-10 (Ilyas et al. 2019).", "",
        results_markdown(results),
        "## Timings (s)", "", markdown_table([{"step": k, "seconds": v} for k, v in sorted(timings.items())]), "",
        "## Machine", "", "```json", json.dumps(results.get("machine") or {}, indent=2, sort_keys=True), "```", "",
        "## Settings", "", "```json", json.dumps(results.get("config", {}), indent=2, sort_keys=True), "```", "",
    ])
    return atomic_write_text(paths.report, text)
