"""Notebook 01: CIFAR-10 (the profile's splits) and, optionally, the authors' released datasets."""

from __future__ import annotations

from pathlib import Path

from .. import config, data
from .base import Run, markdown_table, save, setup, show, smoke_note  # noqa: F401 (setup: the notebook's first call)


def summary_row(split: str, images, labels) -> dict:
    s = data.dataset_summary(images, labels)
    return {"split": split, "n": s["n"], "per class": "/".join(str(c) for c in s["counts"]),
            "mean": round(float(s["mean"]), 4), "std": round(float(s["std"]), 4)}


def splits_table(run: Run):
    """The three splits: training, validation (held out of the training images), test."""
    rows = [summary_row("train", *run.train)]
    if run.val is not None:
        rows.append(summary_row("validation (held out of train)", *run.val))
    rows.append(summary_row("test", *run.test))
    return show(markdown_table(rows))


def image_grid(run: Run):
    from .. import viz

    x, y = run.train
    return save(run, viz.image_grid(x[:32], y[:32], nrow=8, title="CIFAR-10 training images"), "fig_cifar_grid")


def fetch_release(run: Run) -> dict[str, Path]:
    """Download and/or extract the authors' tarball as ``release`` says; {} when skipped."""
    cfg, paths = run.cfg, run.paths
    if cfg.release == "skip":
        return {}
    if cfg.release == "download":
        tar = data.download(config.RELEASE_URL, paths.data / "datasets.tar", sha256=cfg.release_sha256 or None)
    else:
        tar = Path(cfg.release).expanduser()
        if not tar.is_file():
            raise FileNotFoundError(f"profile field 'release': no tarball at {tar} (use 'download' or 'skip')")
    return data.extract_release(tar, paths.datasets / "released", short_names=True)


def inventory(run: Run):
    """What feature datasets the run directory holds: one row per (origin, dataset)."""
    rows = []
    for origin in ("released", "constructed"):
        for name in config.DATASETS:
            d = run.paths.dataset(name, origin)
            files = [d / "CIFAR_ims", d / "CIFAR_lab"]
            rows.append({"origin": origin, "dataset": name, "present": all(f.is_file() for f in files),
                         "MB": round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 1),
                         "path": str(d.relative_to(run.paths.root))})
    return show(markdown_table(rows))


def conclusions(run: Run, released: dict):
    n_tr, n_te = len(run.train[1]), len(run.test[1])
    n_va = 0 if run.val is None else len(run.val[1])
    rel = ", ".join(sorted(released)) if released else "none (profile field `release` is `skip`)"
    held = (f", with **{n_va:,} validation** images held out of the training images it does not train on "
            "(recipes are chosen on them; the test set only reports)") if n_va else ""
    return show(f"{smoke_note(run.cfg.name)}This run uses **{n_tr:,} training** and **{n_te:,} test** images of "
                f"CIFAR-10, class-balanced ({n_tr // 10:,} / {n_te // 10:,} per class){held}. The paper uses all "
                f"50,000 / 10,000. Released datasets extracted: {rel}.")


__all__ = ["setup", "splits_table", "image_grid", "fetch_release", "inventory", "conclusions", "summary_row"]
