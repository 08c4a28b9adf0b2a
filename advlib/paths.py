"""The run directory: one folder per run that every notebook reads from and writes to.

    <run_dir>/
      data/                    CIFAR-10 cache (torchvision) and the authors' tarball
      release/release_datasets/<d_robust_CIFAR|...>/{CIFAR_ims,CIFAR_lab}   (extracted release)
      datasets/<d_robust|d_non_robust|d_rand|d_det>/{CIFAR_ims,CIFAR_lab,meta.json,shards/}
      models/<name>/{checkpoint.pt,history.json,config.json}
                   name: source_standard, source_robust, or a dataset name (trained on it)
      figures/                 PNG + PDF written by the notebooks
      notebooks/               executed copies (written by the runner)
      results.json             the table (see advlib.evaluate)
      timings.json             wall time per notebook (runner)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import DATASETS, RELEASE_NAMES


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @classmethod
    def of(cls, run_dir) -> "RunPaths":
        return cls(Path(run_dir).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def constructed(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    def dataset(self, name: str, source: str = "constructed") -> Path:
        """Folder holding CIFAR_ims / CIFAR_lab for dataset ``name`` from ``source``."""
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
        if source == "constructed":
            return self.constructed / name
        if source == "released":
            return self.release / "release_datasets" / RELEASE_NAMES[name]
        raise ValueError(f"unknown dataset source {source!r}; expected 'constructed' or 'released'")

    def model(self, name: str) -> Path:
        return self.models / name

    def available(self, source: str = "constructed") -> list[str]:
        """Datasets of ``source`` whose CIFAR_ims and CIFAR_lab both exist."""
        out = []
        for n in DATASETS:
            d = self.dataset(n, source)
            if (d / "CIFAR_ims").is_file() and (d / "CIFAR_lab").is_file():
                out.append(n)
        return out
