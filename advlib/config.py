"""Profiles (one source of truth for every size, step count and learning rate) and the
paper's reference numbers.

A profile is a frozen dataclass. Its training recipes (:class:`advlib.recipes.Recipe`) sit in two
groups, ``sources`` (standard, robust, targeted: the source models) and ``sets`` (rnr, rand, det,
relabel: the models trained on the sets); everything else is a field of its own.
``get_profile(name, **overrides)`` returns one with keys replaced (``-p key value`` on the command
line and the notebooks' ``overrides`` end up here): a dotted key reaches into a group
(``sources.standard.epochs``), values are converted to the key's type, and an unknown key raises
with the valid keys of its group. The flat keys of before the recipes (``ALIASES``) still work
for one release.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field

from . import dotted
from .beyond_settings import Beyond, per_profile, validate_beyond
from .recipes import ALIASES, BROAD_ALIASES, RECIPE_KEYS, Recipe

ORIGINS = ("constructed", "released")  # where a set comes from: built here, or the authors' release
# Constructed sets keep these short names; the authors' release uses the *_CIFAR names.
DATASETS = ("d_robust", "d_non_robust", "d_rand", "d_det")
RELEASE_NAMES = {
    "d_robust": "d_robust_CIFAR",
    "d_non_robust": "d_non_robust_CIFAR",
    "d_rand": "drand_CIFAR",
    "d_det": "ddet_CIFAR",
}
# Control sets (notebook 07): built with the same recipes, they test "features or label leakage?".
CONTROL_SETS = ("d_other", "d_rand_synthetic", "d_det_synthetic", "relabel")
# Training-subset variants of D_rand / D_det (notebook 07): rows of the constructed set they name.
SUBSET_VARIANTS = ("d_rand_t_ne_y", "d_rand_hits", "d_det_hits")
ALL_SETS = DATASETS + CONTROL_SETS  # every feature dataset a run directory may hold
# The matched control of each constructed set: the same architecture, recipe and seeds, trained on
# the real training images the set was built from, with their true labels. D_R and D_NR are built
# from the same images with one recipe, so they share theirs; D_rand and D_det train differently.
MATCHED_CONTROL = {"d_robust": "control_rnr", "d_non_robust": "control_rnr", "d_rand": "control_rand",
                   "d_det": "control_det"}
MATCHED_CONTROLS = tuple(dict.fromkeys(MATCHED_CONTROL.values()))
# What advlib.robust_accuracy(attack=...) runs: PGD with cross-entropy, APGD-T, the per-image worst
# case of the two, the standard AutoAttack
ATTACKS = ("pgd", "apgd-t", "worst", "autoattack")

# Notebook 10 (four questions the paper's readers still ask): the sets it builds (datasets/constructed/),
# the matched controls it trains (models/cifar10/) and its L∞-robust source model (models/cifar10/)
BEYOND_SETS = ("d_robust_linf", "d_rand_linf", "d_det_linf", "d_det_bugs", "d_det_subset")
BEYOND_CONTROLS = ("control_rnr_linf", "control_rand_linf", "control_det_linf")
LINF_SOURCE = "robust_linf"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# The authors' release (Ilyas et al. 2019, github.com/MadryLab/constructed-datasets).
# The tarball has no published checksum; pass sha256 yourself once you have verified a copy.
RELEASE_URL = "http://andrewilyas.com/datasets.tar"

# Paper numbers: standard training on each dataset, evaluated on the real CIFAR-10 test set
# (ResNet-50; robust accuracy = L2 PGD, eps 0.25). "standard" is standard training on CIFAR-10.
# Fractions in [0,1]; None where the paper reports no number. The four dataset rows are the ones
# the authors list in the release's README (MadryLab/constructed-datasets, "Results"), which
# also gives 0% robust accuracy for D_rand and D_det.
PAPER = {
    "standard": {"clean_acc": 0.95, "robust_acc": {"0.25": 0.045}},
    "d_robust": {"clean_acc": 0.84, "robust_acc": {"0.25": 0.48}},
    "d_non_robust": {"clean_acc": 0.88, "robust_acc": {"0.25": 0.0}},
    "d_rand": {"clean_acc": 0.63, "robust_acc": {"0.25": 0.0}},
    "d_det": {"clean_acc": 0.44, "robust_acc": {"0.25": 0.0}},
}


@dataclass(frozen=True)
class Sources:
    """The source models the sets are built from, each trained on the CIFAR-10 training pool."""

    standard: Recipe = field(default_factory=Recipe)  # standard training: D_NR's features; D_rand / D_det attack it
    robust: Recipe = field(default_factory=lambda: Recipe(adv_eps=0.5))  # L2 adversarial training: D_R's features
    # The model the targeted sets (D_rand, D_det, the D_other control) attack. None or epochs 0: the
    # standard source model, as in the paper. Otherwise a second standard model trained with this
    # recipe: a small network fitted hard (non-robust, what D_NR needs) plants targeted
    # perturbations that teach their labels less well than one trained with augmentation and
    # weight decay, while the paper's ResNet-50 is both non-robust and well generalizing
    targeted: Recipe | None = None

    @property
    def has_targeted(self) -> bool:
        """Whether the targeted sets attack a model of their own (``targeted`` with epochs > 0)."""
        return self.targeted is not None and self.targeted.epochs > 0


@dataclass(frozen=True)
class Sets:
    """A fresh model on each constructed (or released) set; a set's matched control, and the controls
    and subset variants built like it, train with its recipe (``advlib.recipes.SET_RECIPE``)."""

    # D_R, D_NR and their control_rnr: one recipe, so they compare. Without augmentation a small
    # network learns D_NR's non-robust features far better (cpu: 44% instead of 30% clean accuracy)
    # and stays as non-robust
    rnr: Recipe = field(default_factory=Recipe)
    # D_rand, D_other, the d_rand_* synthetic and subset variants, control_rand (paper: 10x smaller lr)
    rand: Recipe = field(default_factory=lambda: Recipe(lr=0.01))
    # D_det, d_det_synthetic, d_det_hits, control_det (paper: no augmentation)
    det: Recipe = field(default_factory=lambda: Recipe(augment=""))
    relabel: Recipe = field(default_factory=Recipe)  # the relabel control of notebook 07 (Wallace's mistakes)


@dataclass(frozen=True)
class Profile:
    name: str
    # --- data -------------------------------------------------------------------------------
    cifar_source: str = "torchvision"  # "torchvision" | "sample" | path to a zip or folder <split>/<class>/<img>
    n_train: int = 0  # CIFAR-10 training images used (seeded, class-balanced subset); 0 = all
    n_test: int = 0  # CIFAR-10 test images for every evaluation; 0 = all
    # Validation images, held out of the CIFAR-10 *training* images the profile does not train on:
    # levers are chosen on them and training is watched on them; the test set only reports
    n_val: int = 0
    release: str = "skip"  # authors' tarball: "download" | "skip" | path to a local datasets.tar
    release_sha256: str = ""  # checksum to verify the tarball against ("" = size-only check)
    origin: str = "constructed"  # the sets the later notebooks use: constructed (here) | released (the authors')
    datasets: tuple[str, ...] = DATASETS  # the sets a run builds, trains on and evaluates (names of DATASETS)
    # --- models and training (SGD; every recipe shares these) ---------------------------------
    arch: str = "resnet50"  # every model whose recipe names no arch of its own
    batch_size: int = 128  # images per step (recipes' lr is per batch of this many)
    momentum: float = 0.9
    nesterov: bool = False
    lr_step: int = 50  # epochs between lr drops (step schedule)
    lr_gamma: float = 0.1  # lr factor at each drop
    label_smoothing: float = 0.0
    sources: Sources = field(default_factory=Sources)  # the recipes of the source models
    sets: Sets = field(default_factory=Sets)  # the recipes of the models trained on the sets
    # Bring your own source models: robustness-library CIFAR checkpoints loaded instead of training
    standard_checkpoint: str = ""  # e.g. cifar_nat.pt; "" = train the standard source model
    robust_checkpoint: str = ""  # e.g. cifar_l2_0_5.pt; "" = train the L2-robust source model
    # --- construction (paper Section 3) -------------------------------------------------------
    construct_n: int = 0  # training images turned into each set; 0 = all of n_train
    invert_n: int = 0  # images for D_R / D_NR (costlier per image); 0 = construct_n
    invert_steps: int = 1000  # representation-matching steps for D_R / D_NR (paper: 1000)
    invert_step_size: float = 0.1  # L2 step of the normalized-gradient descent (paper: 0.1); the peak if scheduled
    invert_schedule: str = "constant"  # step lengths over the descent: constant (paper) | linear | cosine decay
    target_eps: float = 0.5  # L2 radius of the targeted attack for D_rand / D_det (paper: 0.5)
    target_steps: int = 100  # targeted PGD steps (paper: 100)
    target_step_size: float = 0.1  # targeted PGD step (paper: 0.1)
    target_restarts: int = 1  # random restarts; the per-example best (lowest target loss) is kept
    keep_only_hits: bool = False  # drop D_rand/D_det examples that miss their target (a deviation)
    shard_size: int = 1000  # images per construction shard (the unit of resume)
    construct_batch: int = 500  # images per attack batch during construction
    # --- evaluation -----------------------------------------------------------------------------
    eval_eps: float = 0.25  # headline L2 radius (the paper's)
    # The radius declared for the D_R / D_NR claims against their matched controls, chosen on the
    # validation split before the test set is touched (the paper: its eval_eps)
    claim_eps: float = 0.25
    eval_attack: str = "worst"  # headline attack: pgd | apgd-t | worst (per image, PGD then APGD-T) | autoattack
    apgd_targets: int = 9  # APGD-T target classes (the most likely wrong ones; AutoAttack's standard: 9)
    apgd_steps: int = 100  # APGD-T iterations per target (standard: 100)
    eval_sweep: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5, 1.0)  # L2 radii of the sweep
    eval_steps: int = 20  # PGD steps (step size 2.5*eps/steps)
    eval_restarts: int = 1
    eval_n: int = 0  # test images for robust accuracy; 0 = all of n_test
    eval_batch: int = 500
    eval_every: int = 1  # clean accuracy on the validation split during training after every k-th epoch (and the last)
    # Cross-check: the standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) at eval_eps and claim_eps
    # on a class-balanced part of the evaluated images, the run's own seed; 0 images = skip it
    autoattack_n: int = 1000  # seeded class-balanced test images attacked
    autoattack_steps: int = 100  # iterations of APGD-CE, APGD-T and FAB-T (AutoAttack's standard: 100)
    autoattack_targets: int = 9  # target classes of APGD-T and FAB-T (standard: 9, all wrong classes)
    train_seeds: tuple[int, ...] = ()  # extra seeds for training + evaluation on the same sets, e.g. 1,2
    source_seeds: tuple[int, ...] = ()  # extra seeds for the standard source model (its spread in the table)
    # --- beyond the paper: controls (notebook 07) and transfer (notebook 08) -------------------
    relabel_epochs: int = 2  # epochs of the briefly trained model whose mistakes make the relabel control
    transfer_archs: tuple[str, ...] = ("linear", "mlp", "tiny", "small")  # trained on the same D_det / D_rand (notebook 08)
    transfer_eps: float = 0.5  # L2 radius of the targeted examples whose transfer rate is measured (paper: 0.5)
    transfer_n: int = 1000  # images attacked to measure the transfer rate
    beyond: Beyond = field(default_factory=Beyond)  # notebook 10 (each profile's values: _BEYOND below)
    # --- runtime --------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if present) | "cpu" | "cuda" | "cuda:1" ...
    amp: bool = True  # bf16 autocast, only ever on CUDA
    channels_last: bool = True
    compile: bool = False  # torch.compile the model (CUDA only)
    num_threads: int = 0  # torch CPU threads; 0 = torch's default

    def __post_init__(self):  # lists may be given as text ("1,2") or lists: stored as tuples of their type
        hints = dotted.hints(Profile)
        for key in LIST_FIELDS:
            object.__setattr__(self, key, dotted.coerce(key, getattr(self, key), hints[key], "profile field"))

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def dataset_list(self) -> list[str]:
        return list(self.datasets)

    @property
    def transfer_arch_list(self) -> list[str]:
        return list(self.transfer_archs)

    @property
    def sweep(self) -> list[float]:
        return list(self.eval_sweep)

    @property
    def seeds(self) -> list[int]:
        """The run's seed, then the extra ``train_seeds`` (training + evaluation only)."""
        return [self.seed] + [s for s in dict.fromkeys(self.train_seeds) if s != self.seed]

    @property
    def standard_seeds(self) -> list[int]:
        """The run's seed, then the extra ``source_seeds`` of the standard source model."""
        return [self.seed] + [s for s in dict.fromkeys(self.source_seeds) if s != self.seed]

    def recipes(self) -> dict[str, Recipe | None]:
        """{"sources.standard": recipe, ..., "sets.relabel": recipe} (None where a group holds none)."""
        return {key: dotted.get(self, key) for key in RECIPE_KEYS}

    def to_dict(self) -> dict:
        """Nested as the profile is (``sources`` / ``sets`` hold a dict per recipe); :func:`from_dict`
        reads it back."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


LIST_FIELDS = ("datasets", "eval_sweep", "train_seeds", "source_seeds", "transfer_archs")

# The recipes the profiles below start from (each role changes what it needs)
_SMOKE = Recipe(epochs=1, lr=0.05, schedule="constant")
_CPU = Recipe(lr=0.05, schedule="onecycle")
_FAST = Recipe(epochs=16, lr=0.2, schedule="onecycle")
_PAPER = Recipe(augment="crop,flip,jitter,rotate")  # the robustness library's CIFAR training

_PROFILES: dict[str, Profile] = {
    # CI and `make demo`: the embedded sample (600 train / 200 test JPEGs), a tiny net, few steps.
    "smoke": Profile(
        name="smoke", cifar_source="sample", arch="tiny", batch_size=64,
        sources=Sources(standard=_SMOKE.replace(epochs=2), robust=_SMOKE.replace(adv_eps=0.5, adv_steps=2, adv_step_size=0.25)),
        sets=Sets(rnr=_SMOKE, rand=_SMOKE, det=_SMOKE.replace(augment=""), relabel=_SMOKE),
        construct_n=200, invert_steps=8, invert_step_size=0.5,
        target_steps=8, target_step_size=0.15, shard_size=100, construct_batch=100,
        eval_steps=5, eval_n=100, eval_batch=100, eval_sweep=(0.0, 0.25, 1.0), n_val=100,
        apgd_targets=2, apgd_steps=10, autoattack_n=20, autoattack_steps=5, autoattack_targets=2,
        relabel_epochs=1, transfer_archs=("linear", "mlp", "tiny", "small"), transfer_n=100,
        num_threads=1,  # tiny tensors: one thread is as fast, and much faster on a busy machine
    ),
    # Laptop scale (2 CPU cores): a 10k-image subset and the small CNN; every lever chosen on the
    # 2,000-image validation split held out of the training pool (the test set only reports).
    # The standard source model is fitted hard (100 epochs, no augmentation, no weight decay,
    # training accuracy 100%): that is what makes a small network non-robust, and D_NR inherits
    # it. The targeted sets attack a usually trained standard model of their own; 30 steps of 0.1
    # at eps 1.0. D_R / D_NR are matched from the whole 10k pool (on validation, seed 0, D_R minus
    # its matched control at eps 0.5: +5.2 points from 10k images, -1.0 from 3k) and their models
    # train with crop+flip (+8.6 points against +5.2 without; 40 epochs instead of 20: -0.1).
    # The D_R claim is declared at eps 0.5, where the control is <= 10% robust on validation.
    # Three training seeds; 5,000 images for D_rand / D_det and APGD-T with 3 targets x 50 steps in
    # the headline attack keep the ten notebooks near two hours.
    "cpu": Profile(
        name="cpu", n_train=10000, n_test=2000, arch="small", batch_size=128,
        sources=Sources(standard=_CPU.replace(epochs=100, augment="", weight_decay=0.0),
                        robust=_CPU.replace(epochs=8, adv_eps=0.5, adv_steps=5, adv_step_size=0.15),
                        targeted=_CPU.replace(epochs=15)),
        sets=Sets(rnr=_CPU.replace(epochs=20), rand=_CPU.replace(epochs=15),
                  det=_CPU.replace(epochs=15, augment=""), relabel=_CPU.replace(epochs=20)),
        n_val=2000, claim_eps=0.5, eval_every=5, construct_n=5000, invert_n=10000, invert_steps=50,
        invert_step_size=0.3, target_eps=1.0, target_steps=30, target_step_size=0.1, shard_size=1000,
        eval_n=1000, eval_batch=500, eval_sweep=(0.0, 0.25, 0.5, 1.0), train_seeds=(1, 2),
        apgd_targets=3, apgd_steps=50, autoattack_n=200, autoattack_steps=50, autoattack_targets=9,
    ),
    # One GPU, minutes: full CIFAR-10, an airbench-style net, bf16.
    "fast": Profile(
        name="fast", arch="airbench", batch_size=512, nesterov=True, label_smoothing=0.2,
        sources=Sources(standard=_FAST, robust=_FAST.replace(adv_eps=0.5)),
        sets=Sets(rnr=_FAST, rand=_FAST, det=_FAST.replace(augment=""), relabel=_FAST),
        invert_steps=200, target_steps=100, shard_size=10000, construct_batch=5000, eval_batch=2000, compile=False,
    ),
    # The paper's Appendix C recipe, the robustness library's CIFAR defaults: ResNet-50, SGD lr 0.1,
    # momentum 0.9, wd 5e-4, batch 128, 150 epochs, lr x0.1 every 50, its augmentation; L2
    # adversarial training eps 0.5, 7 steps of 0.1 from x; D_rand at lr 0.01; D_det without
    # augmentation; the construction and attack settings of the field comments (D_R/D_NR 1000
    # steps of 0.1; D_rand/D_det eps 0.5, 100 steps of 0.1).
    "paper": Profile(
        name="paper", release="download", construct_batch=1000,
        sources=Sources(standard=_PAPER, robust=_PAPER.replace(adv_eps=0.5, adv_random_start=False)),
        sets=Sets(rnr=_PAPER, rand=_PAPER.replace(lr=0.01), det=_PAPER.replace(augment=""), relabel=_PAPER),
    ),
}

# Notebook 10's values per profile (advlib.beyond_settings.per_profile: the budgets are there)
_BEYOND = per_profile({"smoke": _SMOKE, "cpu": _CPU, "fast": _FAST, "paper": _PAPER})
_PROFILES = {name: dataclasses.replace(p, beyond=_BEYOND.get(name, p.beyond)) for name, p in _PROFILES.items()}

PROFILE_NAMES = tuple(_PROFILES)


# --- keys: -p sources.standard.epochs 100, the notebooks' overrides -------------------------------------


def keys() -> list[str]:
    """Every key ``-p`` and ``overrides`` take (the old flat keys of ``ALIASES`` besides)."""
    return dotted.leaf_keys(Profile, skip=("name",))


def is_key(key: str) -> bool:
    return key in ALIASES or key in keys()


def expand(overrides: dict, profile: Profile | None = None, *, warn: bool = True,
           old_keys: dict | None = None) -> list[tuple[str, object]]:
    """``overrides`` (dotted keys, nested objects, old flat keys) as ``(key, value)`` pairs of
    today's keys, in the order they apply: the broad old keys first, then the other old ones, then
    the rest. An old key warns (DeprecationWarning) naming its new keys; ``old_keys`` (a dict)
    receives {index of a pair: the old key it came from}."""
    flat = dotted.flatten(overrides, Profile, what="profile key", skip=("name",))
    rank = {k: 0 if k in BROAD_ALIASES else 1 if k in ALIASES else 2 for k in flat}
    out = []
    for key in sorted(flat, key=rank.get):
        if key not in ALIASES:
            out.append((key, flat[key]))
            continue
        if warn:
            warnings.warn(f"profile key {key!r} is deprecated (kept for one release): use "
                          f"{', '.join(ALIASES[key])}", DeprecationWarning, stacklevel=3)
        for new in ALIASES[key]:
            if key in BROAD_ALIASES and profile is not None and new.startswith("sources.targeted."):
                if profile.sources.targeted is None:
                    continue  # a broad key does not give the targeted sets a model of their own
            value = flat[key]
            if key == "rand_det_epochs" and str(value).strip() == "0":
                value = next((v for k, v in out if k == "sets.rnr.epochs"), None)
                value = value if value is not None else (profile.sets.rnr.epochs if profile else 0)
            if old_keys is not None:
                old_keys[len(out)] = key
            out.append((new, value))
    return out


def apply(profile: Profile, overrides: dict, *, warn: bool = True) -> Profile:
    """``profile`` with ``overrides`` (see :func:`expand`) applied, each converted to its key's type;
    unknown keys raise naming the key and the valid keys of its group. Not validated."""
    prof, old = profile, {}
    for i, (key, value) in enumerate(expand(overrides, profile, warn=warn, old_keys=old)):
        try:
            prof = _set(prof, key, value)
        except ValueError as e:
            raise ValueError(f"{e} (set through the old key {old[i]!r})" if i in old else str(e)) from None
    return prof


def _set(prof: Profile, key: str, value) -> Profile:
    """``prof`` with ``key`` set to ``value`` converted to its type; a ``sources.targeted`` key on a
    profile without that recipe starts from the standard recipe with epochs 0 (off)."""
    typ = dotted.resolve(Profile, key, "profile key", skip=("name",))
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, typ):
            raise ValueError(f"profile key {key!r} is a group: set its keys ({', '.join(dotted.leaf_keys(typ))})"
                             f" as {key}.<key>, or give an object")
    else:
        value = dotted.coerce(key, value, typ, "profile key")
    return dotted.replace(prof, key, value, lambda path: prof.sources.standard.replace(epochs=0))


def get_profile(name: str, **overrides) -> Profile:
    """The named profile with ``overrides`` applied (dotted keys ``sources.standard.epochs``, nested
    objects ``sources={"standard": {"epochs": 3}}``, old flat keys with a DeprecationWarning; text
    is converted to each key's type) and validated."""
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {PROFILE_NAMES}")
    prof = apply(_PROFILES[name], overrides)
    try:
        validate(prof)
    except ValueError as e:
        old = [k for k in overrides if k in ALIASES and any(n in str(e) for n in ALIASES[k])]
        if old:
            raise ValueError(f"{e} (set through the old key {old[0]!r})") from None
        raise
    return prof


def from_dict(values: dict) -> Profile:
    """A profile from :meth:`Profile.to_dict` (results.json's "config", a run's config.json); a flat
    dict of a run from before the recipes reads as the same profile. Not validated (the device or
    checkpoint files it names may be another machine's)."""
    if "sources" in values or "sets" in values:
        return _with_beyond(dotted.from_dict(Profile, values, "profile key"), values)
    rest = {k: v for k, v in values.items() if k != "name"}
    prof = apply(Profile(name=values["name"]), rest, warn=False)
    if prof.sources.targeted is not None and prof.sources.targeted.epochs == 0:
        prof = dataclasses.replace(prof, sources=dataclasses.replace(prof.sources, targeted=None))
    return _with_beyond(prof, values)


def _with_beyond(prof: Profile, values: dict) -> Profile:
    """A config written before notebook 10 holds no ``beyond`` group: it reads with the named profile's."""
    if "beyond" in values or prof.name not in _BEYOND:
        return prof
    return dataclasses.replace(prof, beyond=_BEYOND[prof.name])


def parse_overrides(text: str) -> dict:
    """Parse the notebooks' ``overrides`` parameter: a JSON object string ("" = none)."""
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"parameter 'overrides' must be a JSON object string, got {text!r}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"parameter 'overrides' must be a JSON object, got {type(data).__name__}")
    return data


def load(profile: str, overrides: str = "") -> Profile:
    """What a notebook's config cell calls: profile name + the ``overrides`` JSON string."""
    return get_profile(profile, **parse_overrides(overrides))


def validate(p: Profile) -> None:
    def need(cond, msg):
        if not cond:
            raise ValueError(f"profile {p.name!r}: {msg}")

    need(p.origin in ORIGINS, f"origin must be constructed|released, got {p.origin!r}")
    need(p.invert_schedule in ("constant", "linear", "cosine"),
         f"invert_schedule must be constant|linear|cosine, got {p.invert_schedule!r}")
    need(p.eval_attack in ATTACKS, f"eval_attack must be one of {ATTACKS}, got {p.eval_attack!r}")
    need(1 <= p.apgd_targets <= 9 and 1 <= p.autoattack_targets <= 9,
         f"apgd_targets and autoattack_targets must be in [1, 9] (CIFAR-10's wrong classes), got "
         f"{p.apgd_targets}, {p.autoattack_targets}")
    need(p.claim_eps > 0, f"claim_eps must be > 0, got {p.claim_eps}")
    for k in ("n_train", "n_test", "n_val", "construct_n", "invert_n", "eval_n", "autoattack_n", "relabel_epochs",
              "transfer_n"):
        need(getattr(p, k) >= 0, f"{k} must be >= 0, got {getattr(p, k)}")
    for k in ("batch_size", "invert_steps", "target_steps", "eval_steps", "shard_size", "construct_batch", "eval_batch",
              "eval_every", "target_restarts", "eval_restarts", "lr_step", "autoattack_steps", "apgd_steps",
              "autoattack_targets"):
        need(getattr(p, k) > 0, f"{k} must be > 0, got {getattr(p, k)}")
    for k in ("target_eps", "eval_eps", "invert_step_size", "target_step_size", "transfer_eps"):
        need(getattr(p, k) >= 0, f"{k} must be >= 0, got {getattr(p, k)}")
    for key, r in p.recipes().items():
        if r is not None:
            for problem in r.problems():
                need(False, f"{key}.{problem}")
    validate_beyond(p, need)
    need(p.sources.robust.adversarial, "sources.robust.adv_eps must be > 0 (the robust source model is trained "
         f"adversarially), got {p.sources.robust.adv_eps}")
    need(all(e >= 0 for e in p.eval_sweep), f"eval_sweep radii must be >= 0, got {p.eval_sweep}")
    bad = [n for n in p.datasets if n not in DATASETS]
    need(not bad, f"datasets: unknown {bad}; expected names from {DATASETS}")
    from .models import ARCHS

    need(p.arch in ARCHS, f"arch must be one of {ARCHS}, got {p.arch!r}")
    bad = [a for a in p.transfer_archs if a not in ARCHS]
    need(not bad, f"transfer_archs: unknown {bad}; expected names from {ARCHS}")
    check_device(p.device)
    for key in ("standard_checkpoint", "robust_checkpoint"):
        path = getattr(p, key)
        if path:
            from pathlib import Path

            from .external import ROBUSTNESS_ARCHS

            need(p.arch in ROBUSTNESS_ARCHS, f"{key} needs arch in {ROBUSTNESS_ARCHS}, got {p.arch!r}")
            need(Path(path).expanduser().is_file(), f"{key}: no checkpoint file at {path}")


def check_device(name: str) -> None:
    """"auto", "cpu", "cuda" or "cuda:N" (N an index), and CUDA present when asked for."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(name)):
        raise ValueError(f"profile field 'device': expected auto, cpu, cuda or cuda:N, got {name!r}")
    if str(name).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"profile field 'device': {name!r} asked for, but this machine has no CUDA device; "
                             "use -p device cpu (or auto)")


def paper_row(dataset: str) -> dict:
    return PAPER.get(dataset, {})


__all__ = [
    "ORIGINS", "DATASETS", "CONTROL_SETS", "SUBSET_VARIANTS", "ALL_SETS", "MATCHED_CONTROL", "MATCHED_CONTROLS",
    "ATTACKS", "RELEASE_NAMES", "CIFAR10_CLASSES", "RELEASE_URL", "PAPER", "Profile", "Sources", "Sets", "Recipe",
    "Beyond", "BEYOND_SETS", "BEYOND_CONTROLS", "LINF_SOURCE",
    "ALIASES", "RECIPE_KEYS", "PROFILE_NAMES", "get_profile", "apply", "expand", "keys", "is_key", "from_dict", "load",
    "parse_overrides", "validate", "paper_row",
]
