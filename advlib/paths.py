"""The run directory: one folder per run that every notebook reads from and writes to.

    <run_dir>/
      config.json              the profile the run was started with (runner)
      data/                    CIFAR-10 cache (torchvision) and the authors' tarball
      datasets/constructed/<d_robust|d_non_robust|d_rand|d_det>/{CIFAR_ims,CIFAR_lab,meta.json}
      datasets/released/<name>/{CIFAR_ims,CIFAR_lab}        (extracted from the authors' tarball)
      models/cifar10/<standard|robust>/                      the two source models (CIFAR-10 training set)
      models/<constructed|released>/<dataset>/              a model trained on that set
                   each: checkpoint.pt, history.json, config.json, provenance.json
      figures/                 PNG + PDF written by the notebooks
      notebooks/               executed copies (runner)
      results.json, report.md  the table (advlib.evaluate) and its report
      timings.json             wall time per notebook (runner)

A model folder is keyed by what the model learned from (data source + dataset name); its
``provenance.json`` adds the sha256 of the training tensors and the training config, so a model
trained on other data is never reused (see :mod:`advlib.train`). Released and constructed sets,
and the models trained on them, never share a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ALL_SETS, DATASETS, MATCHED_CONTROLS, RELEASE_NAMES, SUBSET_VARIANTS

DATA_SOURCES = ("constructed", "released")  # where a feature dataset comes from
MODEL_SOURCES = ("cifar10", *DATA_SOURCES)  # what a model was trained on
# the source models, trained on CIFAR-10; "targeted" only where the profile gives the targeted
# sets a standard model of their own (``target_source_epochs``)
SOURCE_ROLES = ("standard", "robust", "targeted")
# other models trained on CIFAR-10: "brief" (the relabel control's model) and "<role>-<arch>" /
# "standard-<arch>" standard models of other architectures (the transfer study)


def check_source(source: str, allowed=DATA_SOURCES, what: str = "dataset source") -> str:
    if source not in allowed:
        raise ValueError(f"unknown {what} {source!r}; expected one of {allowed}")
    return source


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
    def datasets(self) -> Path:
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
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def dataset(self, name: str, source: str = "constructed") -> Path:
        """Folder holding CIFAR_ims / CIFAR_lab for dataset ``name`` (one of ``ALL_SETS``: the paper's
        four and the controls) from ``source``."""
        if name not in ALL_SETS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {ALL_SETS}")
        if source == "released" and name not in DATASETS:
            raise ValueError(f"the authors released only {DATASETS}; {name!r} is constructed here")
        return self.datasets / check_source(source) / name

    def model(self, name: str, source: str, seed: int | None = None) -> Path:
        """Folder of the model trained on dataset ``name`` of ``source`` ("constructed" | "released"),
        or of a model trained on CIFAR-10: ``model("standard" | "robust" | "brief" | "standard-<arch>",
        "cifar10")``. ``seed``: a model trained with an extra training seed (profile field
        ``train_seeds``) lives beside, in ``<name>-seed<k>``. A name may carry an ``@<arch>`` suffix
        for a model of another architecture trained on the same set (the transfer study)."""
        check_source(source, MODEL_SOURCES, "model source")
        base = name.split("@", 1)[0]
        if source == "cifar10":
            if base not in SOURCE_ROLES + MATCHED_CONTROLS + ("brief",) and not base.startswith("standard-"):
                raise ValueError(f"models trained on CIFAR-10 are {SOURCE_ROLES}, the matched controls "
                                 f"{MATCHED_CONTROLS}, 'brief' or 'standard-<arch>', got {name!r}")
        elif base not in ALL_SETS + SUBSET_VARIANTS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {ALL_SETS + SUBSET_VARIANTS}")
        return self.models / source / (name if seed is None else f"{name}-seed{int(seed)}")

    def source_model(self, role: str) -> Path:
        """Folder of a source model (``role`` "standard" | "robust" | "targeted")."""
        return self.model(role, "cifar10")

    def available(self, source: str = "constructed") -> list[str]:
        """Datasets of ``source`` whose CIFAR_ims and CIFAR_lab both exist."""
        out = []
        for n in DATASETS:
            d = self.dataset(n, source)
            if (d / "CIFAR_ims").is_file() and (d / "CIFAR_lab").is_file():
                out.append(n)
        return out

    def trained(self, seeds=(None,)) -> list[tuple[str, str, int | None]]:
        """(source, name, seed) of every model folder holding a checkpoint, for each of ``seeds``
        (None = the run's own seed), sources in MODEL_SOURCES order."""
        out = []
        for source in MODEL_SOURCES:
            names = SOURCE_ROLES if source == "cifar10" else DATASETS
            out += [(source, n, s) for n in names for s in seeds
                    if (self.model(n, source, s) / "checkpoint.pt").is_file()]
        return out


__all__ = ["RunPaths", "DATA_SOURCES", "MODEL_SOURCES", "SOURCE_ROLES", "RELEASE_NAMES", "check_source"]
