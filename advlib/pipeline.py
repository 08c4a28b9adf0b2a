"""The steps the notebooks call, one function per step, so every notebook stays a table of
contents. Each reads sizes and settings from the profile and files from the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from . import config, data
from .paths import RunPaths
from .utils import Timer, get_device


def cifar(cfg: config.Profile, paths: RunPaths, split: str):
    """The profile's CIFAR-10 split: n_train / n_test images, seeded and class-balanced."""
    n = cfg.n_train if split == "train" else cfg.n_test
    return data.load_cifar10(cfg.cifar_source, split, n=n, seed=cfg.seed, root=paths.data)


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
    return data.extract_release(tar, paths.release)


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


def train_source_models(cfg, paths, train, test, progress=True):
    """Standard and L2-robust source models (trained, or loaded when already there)."""
    from . import construct

    return construct.source_models(cfg, *train, paths, eval_data=test, progress=progress)


def construct_sets(cfg, paths, train, models, which: str = "", progress=True) -> dict[str, dict]:
    from . import construct

    names = [s.strip() for s in which.split(",") if s.strip()] or cfg.dataset_list
    return construct.construct_all(cfg, paths, *train, models, which=names, progress=progress)


def train_on_sets(cfg, paths, sets: dict, test, progress=True) -> dict[str, dict]:
    """Train a fresh model on each loaded set (resuming from checkpoints); {name: history}."""
    from . import train as tr

    histories = {}
    for name, (x, y) in sets.items():
        _, hist = tr.train_or_load(tr.train_config(cfg, "dataset", name), x, y, paths.model(name),
                                   eval_data=test, progress=progress, device=get_device(cfg.device))
        histories[name] = hist
    return histories


def evaluate_all(cfg, paths, test, source: str = "", progress=True) -> dict:
    """Clean + PGD accuracy of every trained model in the run dir on the real test set → results.json."""
    from . import evaluate as ev
    from . import train as tr

    source = source or cfg.dataset_source
    # (model folder, results row name, row source): the two source models are CIFAR-10 baselines
    rows = [("source_standard", "standard", "cifar10"), ("source_robust", "adversarial", "cifar10")]
    rows += [(name, name, source) for name in cfg.dataset_list]
    results = ev.load_results(paths.results) if paths.results.is_file() else {}
    for model_dir, row_name, row_source in rows:
        if not (paths.model(model_dir) / "checkpoint.pt").is_file():
            continue
        model = tr.load_trained(paths.model(model_dir))
        with Timer() as t:
            metrics = ev.evaluate_model(model, *test, cfg)
        row = ev.results_row(row_name, row_source, metrics, model=model_dir, arch=cfg.arch,
                             eval_seconds=round(t.seconds, 2))
        results = ev.update_results(paths.results, row, profile=cfg)
    return results


# --- small tables for the notebooks ---------------------------------------------------------------
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

    idx = ev.eval_subset(test[1], cfg.eval_n, cfg.seed)
    rows = []
    for name in ("standard", "robust"):
        model = sources[name]
        rows.append({"source model": name, "arch": cfg.arch,
                     "clean acc": ev.accuracy(model, *test),
                     f"PGD L2 {cfg.eval_eps} acc (n={len(idx)})": ev.robust_accuracy(
                         model, test[0][idx], test[1][idx], eps=cfg.eval_eps, steps=cfg.eval_steps)})
    return rows


def construction_rows(metas: dict[str, dict]) -> list[dict]:
    return [{"dataset": name, "n": m.get("n"), "algorithm": m.get("algorithm"),
             "target hit rate": m.get("hit_rate"), "final rel. feature distance": m.get("final_rel_distance"),
             "seconds": m.get("seconds"), "images/s": m.get("images_per_second")} for name, m in metas.items()]


def history_rows(histories: dict[str, dict]) -> list[dict]:
    rows = []
    for name, h in histories.items():
        rows.append({"trained on": name, "epochs": len(h.get("loss", [])),
                     "final loss": (h.get("loss") or [None])[-1],
                     "train acc": (h.get("train_acc") or [None])[-1],
                     "test acc (CIFAR-10)": (h.get("eval_acc") or [None])[-1],
                     "seconds": round(sum(h.get("seconds", [])), 1)})
    return rows


def load_results(paths: RunPaths) -> dict:
    from . import evaluate as ev

    if not paths.results.is_file():
        raise FileNotFoundError(f"{paths.results} not found: run notebook 05 (evaluation) first")
    return ev.load_results(paths.results)


def results_markdown(results: dict) -> str:
    from . import evaluate as ev

    return ev.results_table(results)


def write_report(paths: RunPaths, results: dict) -> Path:
    """report.md in the run directory: the table, timings and the exact settings."""
    from .utils import atomic_write_text

    # the runner writes timings.json after each notebook, so the report sees every earlier one
    timings = dict(results.get("timings_s", {}))
    if paths.timings.is_file():
        timings.update({f"notebook:{k}": v for k, v in json.loads(paths.timings.read_text()).items()})
    text = "\n".join([
        f"# Run report: profile `{results.get('profile')}`, seed {results.get('seed')}", "",
        "Fractions in [0,1]; robust accuracy is L2 PGD on the real CIFAR-10 test set. "
        "Paper numbers: ResNet-50 on the original CIFAR-10 (Ilyas et al. 2019).", "",
        results_markdown(results), "",
        "## Timings (s)", "", markdown_table([{"step": k, "seconds": v} for k, v in sorted(timings.items())]), "",
        "## Settings", "", "```json", json.dumps(results.get("config", {}), indent=2, sort_keys=True), "```", "",
    ])
    return atomic_write_text(paths.root / "report.md", text)
