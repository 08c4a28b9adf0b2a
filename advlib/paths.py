"""The run directory: one folder per run that every notebook reads from and writes to.

    <run_dir>/
      config.json              the profile the run was started with (runner)
      data/                    CIFAR-10 cache (torchvision) and the authors' tarball
      datasets/constructed/<d_robust|d_non_robust|d_rand|d_det>/{CIFAR_ims,CIFAR_lab,meta.json}
      datasets/released/<name>/{CIFAR_ims,CIFAR_lab}        (extracted from the authors' tarball)
      models/cifar10/<standard|robust>/                      the two source models (CIFAR-10 training set)
      models/cifar10/robust_linf/                            notebook 10's L∞-robust source model
      models/<constructed|released>/<dataset>/              a model trained on that set
                   each: checkpoint.pt, history.json, config.json, provenance.json
      figures/                 PNG + PDF written by the notebooks
      notebooks/               executed copies (runner)
      results.json, report.md  the table (advlib.evaluate) and its report
      timings.json             wall time per notebook (runner)

A model folder is keyed by what the model learned from (the data's origin + dataset name); its
``provenance.json`` adds the sha256 of the training tensors and the training config, so a model
trained on other data is never reused (see :mod:`advlib.train`). Released and constructed sets,
and the models trained on them, never share a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import (
    ALL_SETS,
    BEYOND_CONTROLS,
    BEYOND_SETS,
    DATASETS,
    LINF_SOURCE,
    MATCHED_CONTROLS,
    ORIGINS,
    RELEASE_NAMES,
    SUBSET_VARIANTS,
)
from .recipes import SOURCE_ROLES

# what a model was trained on: CIFAR-10 (the source models, the matched controls) or a set of an origin
MODEL_ORIGINS = ("cifar10", *ORIGINS)
# the source models, trained on CIFAR-10: SOURCE_ROLES, "targeted" only where the profile gives the
# targeted sets a standard model of their own (a ``sources.targeted`` recipe)
# other models trained on CIFAR-10: "brief" (the relabel control's model) and "<role>-<arch>" /
# "standard-<arch>" standard models of other architectures (the transfer study)


def check_origin(origin: str, allowed=ORIGINS, what: str = "origin of a dataset") -> str:
    if origin not in allowed:
        raise ValueError(f"unknown {what} {origin!r}; expected one of {allowed}")
    return origin


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

    def dataset(self, name: str, origin: str = "constructed") -> Path:
        """Folder holding CIFAR_ims / CIFAR_lab for dataset ``name`` (one of ``ALL_SETS``: the paper's
        four and the controls; or, constructed, one of notebook 10's ``BEYOND_SETS``) of ``origin``
        ("constructed" | "released")."""
        if name not in ALL_SETS + BEYOND_SETS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {ALL_SETS + BEYOND_SETS}")
        if origin == "released" and name not in DATASETS:
            raise ValueError(f"the authors released only {DATASETS}; {name!r} is constructed here")
        return self.datasets / check_origin(origin) / name

    def model(self, name: str, origin: str, seed: int | None = None) -> Path:
        """Folder of the model trained on dataset ``name`` of ``origin`` ("constructed" | "released"),
        or of a model trained on CIFAR-10: ``model("standard" | "robust" | "brief" | "standard-<arch>",
        "cifar10")``. ``seed``: a model trained with an extra training seed (profile field
        ``train_seeds``) lives beside, in ``<name>-seed<k>``. A name may carry an ``@<arch>`` suffix
        for a model of another architecture trained on the same set (the transfer study)."""
        check_origin(origin, MODEL_ORIGINS, "origin of a model's data")
        base = name.split("@", 1)[0]
        if origin == "cifar10":
            known = SOURCE_ROLES + MATCHED_CONTROLS + ("brief", LINF_SOURCE) + BEYOND_CONTROLS
            if base not in known and not base.startswith("standard-"):
                raise ValueError(f"models trained on CIFAR-10 are {SOURCE_ROLES}, the matched controls "
                                 f"{MATCHED_CONTROLS}, 'brief', 'standard-<arch>' or notebook 10's "
                                 f"{(LINF_SOURCE,) + BEYOND_CONTROLS}, got {name!r}")
        elif base not in ALL_SETS + SUBSET_VARIANTS + BEYOND_SETS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {ALL_SETS + SUBSET_VARIANTS + BEYOND_SETS}")
        return self.models / origin / (name if seed is None else f"{name}-seed{int(seed)}")

    def source_model(self, role: str) -> Path:
        """Folder of a source model (``role`` "standard" | "robust" | "targeted")."""
        return self.model(role, "cifar10")

    def available(self, origin: str = "constructed") -> list[str]:
        """Datasets of ``origin`` whose CIFAR_ims and CIFAR_lab both exist."""
        out = []
        for n in DATASETS:
            d = self.dataset(n, origin)
            if (d / "CIFAR_ims").is_file() and (d / "CIFAR_lab").is_file():
                out.append(n)
        return out

    def trained(self, seeds=(None,)) -> list[tuple[str, str, int | None]]:
        """(origin, name, seed) of every model folder holding a checkpoint, for each of ``seeds``
        (None = the run's own seed), origins in MODEL_ORIGINS order."""
        out = []
        for origin in MODEL_ORIGINS:
            names = SOURCE_ROLES if origin == "cifar10" else DATASETS
            out += [(origin, n, s) for n in names for s in seeds
                    if (self.model(n, origin, s) / "checkpoint.pt").is_file()]
        return out


__all__ = ["RunPaths", "ORIGINS", "MODEL_ORIGINS", "SOURCE_ROLES", "RELEASE_NAMES", "check_origin"]
