"""Training recipes: how each model of a run is trained.

A profile (:mod:`advlib.config`) holds one :class:`Recipe` per role: ``sources.standard``,
``sources.robust`` and ``sources.targeted`` (the source models, trained on CIFAR-10) and
``sets.rnr``, ``sets.rand``, ``sets.det`` and ``sets.relabel`` (a fresh model on a constructed or
released set; a set's matched control and the controls built like it share its recipe:
``SET_RECIPE``). ``train_config(profile, role, dataset)`` joins a recipe with the profile's shared
optimizer settings (batch size, momentum, Nesterov, lr steps, label smoothing, amp, channels_last,
compile) and seed into the :class:`TrainConfig` that :func:`advlib.train.fit` runs.

This module imports nothing heavy at load time (``advlib.config`` builds on it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SCHEDULES = ("step", "onecycle", "constant")  # the lr schedules advlib.train.make_scheduler knows
ADV_NORMS = ("l2", "linf")  # the threat models adversarial training attacks in (advlib.attacks.THREAT_MODELS)
SOURCE_ROLES = ("standard", "robust", "targeted")  # the source models (profile group ``sources``)
SET_RECIPES = ("rnr", "rand", "det", "relabel")  # the recipes of models trained on a set (group ``sets``)
ROLES = SOURCE_ROLES + ("dataset",)  # train_config's roles
RECIPE_KEYS = tuple(f"sources.{r}" for r in SOURCE_ROLES) + tuple(f"sets.{r}" for r in SET_RECIPES)  # in a profile
# The recipe of each set a model is trained on. D_R and D_NR share one (they are compared); the
# controls and subset variants of notebook 07 follow the set they imitate; a matched control (real
# images, true labels) trains exactly as its set does; the relabel control has its own.
SET_RECIPE = {
    "d_robust": "rnr", "d_non_robust": "rnr", "control_rnr": "rnr",
    "d_rand": "rand", "d_other": "rand", "d_rand_synthetic": "rand", "d_rand_t_ne_y": "rand",
    "d_rand_hits": "rand", "control_rand": "rand",
    "d_det": "det", "d_det_synthetic": "det", "d_det_hits": "det", "control_det": "det",
    "relabel": "relabel",
}


def _each(leaf: str, groups=RECIPE_KEYS) -> tuple[str, ...]:
    return tuple(f"{g}.{leaf}" for g in groups)


_SET_KEYS = tuple(f"sets.{r}" for r in SET_RECIPES)
# The flat keys of the profile before it held recipes, kept for one release (a DeprecationWarning
# names the new keys): each sets what it set then. The first five set several recipes and apply
# before the others; rand_det_epochs 0 (then: "as epochs") copies sets.rnr.epochs.
ALIASES = {
    "epochs": _each("epochs", _SET_KEYS),
    "lr": _each("lr", tuple(k for k in RECIPE_KEYS if k != "sets.rand")),
    "schedule": _each("schedule"),
    "augment": _each("augment", ("sources.robust", "sets.rand", "sets.relabel")),
    "weight_decay": _each("weight_decay", ("sources.robust",) + _SET_KEYS),
    "dataset_source": ("origin",),
    "source_epochs": ("sources.standard.epochs",),
    "source_augment": ("sources.standard.augment",),
    "source_weight_decay": ("sources.standard.weight_decay",),
    "target_source_epochs": ("sources.targeted.epochs",),
    "target_source_augment": ("sources.targeted.augment",),
    "target_source_weight_decay": ("sources.targeted.weight_decay",),
    "robust_epochs": ("sources.robust.epochs",),
    "adv_eps": ("sources.robust.adv_eps",),
    "adv_steps": ("sources.robust.adv_steps",),
    "adv_step_size": ("sources.robust.adv_step_size",),
    "adv_random_start": ("sources.robust.adv_random_start",),
    "rnr_augment": ("sets.rnr.augment",),
    "lr_drand": ("sets.rand.lr",),
    "rand_det_epochs": ("sets.rand.epochs", "sets.det.epochs"),
}
BROAD_ALIASES = ("epochs", "lr", "schedule", "augment", "weight_decay")


@dataclass(frozen=True)
class Recipe:
    """One model's training: SGD for ``epochs`` at peak ``lr``, standard or adversarial (L2, or L∞ with ``adv_norm``)."""

    arch: str = ""  # architecture, a name of advlib.models.ARCHS; "" = the profile's arch
    epochs: int = 150  # passes over the training set (sources.targeted: 0 = no model of its own)
    lr: float = 0.1  # peak learning rate, for one batch of the profile's batch_size images
    schedule: str = "step"  # "step" (x lr_gamma every lr_step epochs) | "onecycle" (per batch) | "constant"
    augment: str = "crop,flip"  # batch augmentation, applied in order: "" | "flip" | "crop,flip" | "crop,flip,jitter,rotate"
    weight_decay: float = 5e-4  # L2 penalty on every parameter (as the robustness library does)
    adv_eps: float = 0.0  # L2 radius of the training attack; 0 = standard training (adv_* unused)
    adv_steps: int = 7  # PGD steps of the training attack, per batch
    adv_step_size: float = 0.1  # L2 length of each PGD step of the training attack
    adv_random_start: bool = True  # the training attack starts at a random point of the ball (robustness library: at x)
    adv_norm: str = "l2"  # the training attack's threat model: "l2" (the paper's) | "linf" (notebook 10)

    @property
    def adversarial(self) -> bool:
        return self.adv_eps > 0

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def problems(self) -> list[str]:
        """What is wrong with the recipe (empty when nothing is), each naming its field."""
        from .loader import parse_augment
        from .models import ARCHS

        out = []
        if self.arch and self.arch not in ARCHS:
            out.append(f"arch must be '' (the profile's) or one of {ARCHS}, got {self.arch!r}")
        for k in ("epochs", "lr", "weight_decay", "adv_eps", "adv_step_size"):
            if getattr(self, k) < 0:
                out.append(f"{k} must be >= 0, got {getattr(self, k)}")
        if self.adv_steps <= 0:
            out.append(f"adv_steps must be > 0, got {self.adv_steps}")
        if self.adv_norm not in ADV_NORMS:
            out.append(f"adv_norm must be one of {'|'.join(ADV_NORMS)}, got {self.adv_norm!r}")
        if self.schedule not in SCHEDULES:
            out.append(f"schedule must be one of {'|'.join(SCHEDULES)}, got {self.schedule!r}")
        try:
            parse_augment(self.augment)
        except ValueError as e:
            out.append(f"augment: {e}")
        return out

    def line(self) -> str:
        """The recipe on one line, as ``-p`` keys: ``epochs=100 lr=0.05 schedule=onecycle ...``
        (adv_* only when adversarial, arch only when it is not the profile's)."""
        keys = [f.name for f in dataclasses.fields(self)]
        if not self.adversarial:
            keys = [k for k in keys if not k.startswith("adv_")]
        if not self.arch:
            keys.remove("arch")
        from .dotted import text

        return " ".join(f"{k}={text(getattr(self, k))}" for k in keys)


@dataclass(frozen=True)
class TrainConfig:
    arch: str  # a name from advlib.models.ARCHS
    epochs: int  # passes over the training set
    batch_size: int = 128  # images per SGD step
    lr: float = 0.1  # peak learning rate (for batch_size images)
    momentum: float = 0.9
    weight_decay: float = 5e-4  # L2 penalty on every parameter (as the robustness library does)
    nesterov: bool = False
    schedule: str = "step"  # "step": x lr_gamma every lr_step epochs | "onecycle" (per batch) | "constant"
    lr_step: int = 50  # epochs between drops (step schedule)
    lr_gamma: float = 0.1  # factor at each drop (step schedule)
    label_smoothing: float = 0.0
    augment: str = "crop,flip"  # batch augmentation: "", "flip", "crop,flip" (crop = translate by <= 4 px)
    adversarial: bool = False  # train on PGD examples (in the adv_norm ball) instead of clean ones
    adv_eps: float = 0.5  # radius of the training attack (in the adv_norm)
    adv_steps: int = 7  # PGD steps per batch
    adv_step_size: float = 0.1  # L2 length of each PGD step
    adv_random_start: bool = True  # start the training attack at a random point of the ball (robustness lib: no)
    # The training attack's norm. Added after the L2-only configs: a checkpoint whose config lacks it
    # counts as "l2" (advlib.train._config_diff), so every model trained before keeps its key
    adv_norm: str = "l2"
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # NHWC memory format for model and batches
    compile: bool = False  # torch.compile the model (CUDA only)
    seed: int = 0  # seeds batch order, augmentation, attack starts (and the model init in train_or_load)

    def validate(self) -> None:
        from .loader import parse_augment

        def need(cond, msg):
            if not cond:
                raise ValueError(f"TrainConfig: {msg}")

        need(isinstance(self.arch, str) and self.arch, f"arch must be a model name, got {self.arch!r}")
        need(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        need(self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}")
        need(self.lr >= 0, f"lr must be >= 0, got {self.lr}")
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        need(self.lr_step > 0, f"lr_step must be > 0, got {self.lr_step}")
        need(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0,1), got {self.label_smoothing}")
        need(self.adv_eps >= 0, f"adv_eps must be >= 0, got {self.adv_eps}")
        need(self.adv_steps > 0, f"adv_steps must be > 0, got {self.adv_steps}")
        need(self.adv_step_size >= 0, f"adv_step_size must be >= 0, got {self.adv_step_size}")
        need(self.adv_norm in ADV_NORMS, f"adv_norm must be one of {ADV_NORMS}, got {self.adv_norm!r}")
        parse_augment(self.augment)


def recipe_for(profile, role: str, dataset: str | None = None) -> Recipe:
    """The profile's recipe for ``role``: ``profile.sources.<role>``, or for role "dataset" the set
    recipe of ``dataset`` (``SET_RECIPE``)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    if role == "dataset" and dataset not in SET_RECIPE:
        raise ValueError(f"role 'dataset' needs dataset= one of {tuple(SET_RECIPE)}, got {dataset!r}")
    if role != "dataset" and dataset is not None:
        raise ValueError(f"dataset= is only used with role='dataset', got role {role!r} and dataset {dataset!r}")
    if role == "dataset":
        return getattr(profile.sets, SET_RECIPE[dataset])
    if role == "targeted" and not profile.sources.has_targeted:
        raise ValueError(f"profile {profile.name!r} has no sources.targeted recipe (epochs 0): its targeted sets "
                         "attack the standard source model, there is no 'targeted' model to train")
    return getattr(profile.sources, role)


def train_config(profile, role: str, dataset: str | None = None) -> TrainConfig:
    """The TrainConfig a profile prescribes: role "standard" | "robust" | "targeted" (the source
    models: ``profile.sources.<role>``) or "dataset" (a fresh model on the set ``dataset``:
    ``profile.sets.<SET_RECIPE[dataset]>``), with the profile's shared optimizer settings and seed.
    A recipe with ``adv_eps`` > 0 trains adversarially; otherwise the TrainConfig's adv_* keep
    their defaults (unused)."""
    return recipe_config(profile, recipe_for(profile, role, dataset))


def recipe_config(profile, r: Recipe) -> TrainConfig:
    """The TrainConfig of recipe ``r`` with ``profile``'s shared optimizer settings and seed (what
    :func:`train_config` gives for a role's recipe; notebook 10 passes recipes of its own)."""
    p = profile
    cfg = TrainConfig(
        arch=r.arch or p.arch, epochs=r.epochs, batch_size=p.batch_size, lr=r.lr, momentum=p.momentum,
        weight_decay=r.weight_decay, nesterov=p.nesterov, schedule=r.schedule, lr_step=p.lr_step,
        lr_gamma=p.lr_gamma, label_smoothing=p.label_smoothing, augment=r.augment, amp=p.amp,
        channels_last=p.channels_last, compile=p.compile, seed=p.seed,
    )
    if r.adversarial:
        cfg = dataclasses.replace(cfg, adversarial=True, adv_eps=r.adv_eps, adv_steps=r.adv_steps,
                                  adv_step_size=r.adv_step_size, adv_random_start=r.adv_random_start,
                                  adv_norm=r.adv_norm)
    cfg.validate()
    return cfg


__all__ = ["Recipe", "TrainConfig", "train_config", "recipe_config", "recipe_for", "SCHEDULES", "ADV_NORMS", "SOURCE_ROLES", "SET_RECIPES",
           "ROLES", "SET_RECIPE", "RECIPE_KEYS", "ALIASES", "BROAD_ALIASES"]
