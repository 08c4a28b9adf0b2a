"""Profiles (one source of truth for every size, step count and learning rate) and the
paper's reference numbers.

A profile is a frozen dataclass; ``get_profile(name, **overrides)`` returns one with fields
replaced (``-p key value`` on the command line ends up here). Values are converted to the
field's type, and an unknown key raises with the list of valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

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
    dataset_source: str = "constructed"  # which sets the later notebooks use: constructed | released
    datasets: str = "d_robust,d_non_robust,d_rand,d_det"  # comma-separated subset of DATASETS
    # --- models -----------------------------------------------------------------------------
    arch: str = "resnet50"  # every model: the two source models and the one trained per dataset
    # --- training (SGD; lr is per batch of batch_size images) ----------------------------------
    batch_size: int = 128  # images per step
    lr: float = 0.1  # peak learning rate
    lr_drand: float = 0.01  # paper Appendix C: D_rand trains with a 10x smaller lr
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "step"  # "step" (x lr_gamma every lr_step epochs) | "onecycle" | "constant"
    lr_step: int = 50  # epochs between lr drops (step schedule)
    lr_gamma: float = 0.1  # lr factor at each drop
    label_smoothing: float = 0.0
    epochs: int = 150  # epochs for the model trained on each constructed/released set
    rand_det_epochs: int = 0  # epochs for D_rand, D_det and the sets built like them; 0 = epochs
    source_epochs: int = 150  # epochs for the standard source model (also the "standard" row)
    augment: str = "crop,flip"  # batch augmentation: "", "flip", "crop,flip" (none for D_det)
    # Augmentation of the models trained on D_R and D_NR (one recipe for both, so they compare):
    # the profile's augment in the paper; without it a small network learns D_NR's non-robust
    # features far better (cpu: 44% instead of 30% clean accuracy) and stays as non-robust
    rnr_augment: str = "crop,flip"
    # The standard source model's own augmentation and weight decay: a small network must fit its
    # training set hard to rely on non-robust features as a converged ResNet-50 does
    source_augment: str = "crop,flip"
    source_weight_decay: float = 5e-4
    # The model the targeted sets (D_rand, D_det, the D_other control) attack. 0 epochs: the
    # standard source model, as in the paper. Otherwise a second standard model trained with this
    # recipe: a small network fitted hard (non-robust, what D_NR needs) plants targeted
    # perturbations that teach their labels less well than one trained with augmentation and
    # weight decay, while the paper's ResNet-50 is both non-robust and well generalizing
    target_source_epochs: int = 0
    target_source_augment: str = "crop,flip"
    target_source_weight_decay: float = 5e-4
    # --- robust source model: L2 adversarial training ----------------------------------------
    robust_epochs: int = 150
    adv_eps: float = 0.5  # L2 radius of the training attack (paper: 0.5)
    adv_steps: int = 7  # PGD steps per training batch (paper: 7)
    adv_step_size: float = 0.1  # L2 step (paper: 0.1)
    adv_random_start: bool = True  # random start of the training attack (the robustness library: none)
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
    eval_sweep: str = "0,0.125,0.25,0.5,1.0"  # comma-separated L2 radii for the sweep
    eval_steps: int = 20  # PGD steps (step size 2.5*eps/steps)
    eval_restarts: int = 1
    eval_n: int = 0  # test images for robust accuracy; 0 = all of n_test
    eval_batch: int = 500
    eval_every: int = 1  # clean test accuracy during training after every k-th epoch (and the last)
    # Cross-check: the standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) at eval_eps and claim_eps
    # on a class-balanced part of the evaluated images, the run's own seed; 0 images = skip it
    autoattack_n: int = 1000  # seeded class-balanced test images attacked
    autoattack_steps: int = 100  # iterations of APGD-CE, APGD-T and FAB-T (AutoAttack's standard: 100)
    autoattack_targets: int = 9  # target classes of APGD-T and FAB-T (standard: 9, all wrong classes)
    train_seeds: str = ""  # extra seeds for training + evaluation on the same sets, e.g. "1,2"; "" = seed only
    source_seeds: str = ""  # extra seeds for the standard source model (its spread in the table); "" = seed only
    # --- beyond the paper: controls (notebook 07) and transfer (notebook 08) -------------------
    relabel_epochs: int = 2  # epochs of the briefly trained model whose mistakes make the relabel control
    transfer_archs: str = "linear,mlp,tiny,small"  # architectures trained on the same D_det / D_rand (notebook 08)
    transfer_eps: float = 0.5  # L2 radius of the targeted examples whose transfer rate is measured (paper: 0.5)
    transfer_n: int = 1000  # images attacked to measure the transfer rate
    # --- runtime --------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if present) | "cpu" | "cuda" | "cuda:1" ...
    amp: bool = True  # bf16 autocast, only ever on CUDA
    channels_last: bool = True
    compile: bool = False  # torch.compile the model (CUDA only)
    num_threads: int = 0  # torch CPU threads; 0 = torch's default

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def dataset_list(self) -> list[str]:
        names = [s.strip() for s in self.datasets.split(",") if s.strip()]
        bad = [n for n in names if n not in DATASETS]
        if bad:
            raise ValueError(f"profile field 'datasets': unknown {bad}; expected names from {DATASETS}")
        return names

    @property
    def transfer_arch_list(self) -> list[str]:
        return [s.strip() for s in self.transfer_archs.split(",") if s.strip()]

    @property
    def sweep(self) -> list[float]:
        return parse_floats(self.eval_sweep, "eval_sweep")

    @property
    def seeds(self) -> list[int]:
        """The run's seed, then the extra ``train_seeds`` (training + evaluation only)."""
        return self._seeds(self.train_seeds, "train_seeds")

    @property
    def standard_seeds(self) -> list[int]:
        """The run's seed, then the extra ``source_seeds`` of the standard source model."""
        return self._seeds(self.source_seeds, "source_seeds")

    def _seeds(self, text: str, field: str) -> list[int]:
        extra = [int(v) for v in parse_floats(text, field, integer=True)]
        return [self.seed] + [s for s in dict.fromkeys(extra) if s != self.seed]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def parse_floats(text: str, field: str, integer: bool = False) -> list[float]:
    """A comma-separated list of numbers; a bad entry raises naming the profile field."""
    out = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"profile field {field!r}: {part.strip()!r} is not a number "
                             f"(expected comma-separated numbers, got {text!r})") from None
        if not math.isfinite(v) or (integer and v != int(v)):
            raise ValueError(f"profile field {field!r}: {part.strip()!r} is not a finite "
                             f"{'integer' if integer else 'number'} (got {text!r})")
        out.append(v)
    return out


_PROFILES: dict[str, Profile] = {
    # CI and `make demo`: the embedded sample (600 train / 200 test JPEGs), a tiny net, few steps.
    "smoke": Profile(
        name="smoke", cifar_source="sample", arch="tiny", batch_size=64, lr=0.05, lr_drand=0.05,
        schedule="constant", epochs=1, source_epochs=2, robust_epochs=1, adv_steps=2,
        adv_step_size=0.25, construct_n=200, invert_steps=8, invert_step_size=0.5,
        target_steps=8, target_step_size=0.15, shard_size=100, construct_batch=100,
        eval_steps=5, eval_n=100, eval_batch=100, eval_sweep="0,0.25,1.0", n_val=100,
        apgd_targets=2, apgd_steps=10, autoattack_n=20, autoattack_steps=5, autoattack_targets=2,
        relabel_epochs=1, transfer_archs="linear,mlp,tiny,small", transfer_n=100,
        num_threads=1,  # tiny tensors: one thread is as fast, and much faster on a busy machine
    ),
    # Laptop scale (2 CPU cores, <= 60 min for notebooks 01-06): a 10k-image subset and the small
    # CNN. The standard source model is fitted hard (100 epochs, no augmentation, no weight decay,
    # training accuracy 100%): measured, that is what makes a small network non-robust (8.8% at
    # L2 0.25, against 31% with crop+flip and weight decay), and D_NR inherits its non-robustness.
    # The targeted sets attack a usually trained standard model of their own (its targeted
    # perturbations teach their labels better); 30 steps of 0.1 at eps 1.0 hit as often as 50.
    # D_R/D_NR matching: 50 steps of 0.3 (75 of 0.2 before: D_NR's model the same, 45.7% / 4.1%).
    # D_R/D_NR train without augmentation (rnr_augment), D_rand/D_det for 15 epochs (D_det 32.4%
    # against 33.7% at 20): what keeps notebooks 01-06 within the hour.
    "cpu": Profile(
        name="cpu", n_train=10000, n_test=2000, arch="small", batch_size=128, lr=0.05,
        lr_drand=0.05, schedule="onecycle", epochs=20, rand_det_epochs=15, source_epochs=100, robust_epochs=8,
        source_augment="", source_weight_decay=0.0, target_source_epochs=15, eval_every=5, rnr_augment="",
        adv_steps=5, adv_step_size=0.15, construct_n=6000, invert_n=3000, invert_steps=50,
        invert_step_size=0.3, target_eps=1.0, target_steps=30, target_step_size=0.1, shard_size=1000,
        eval_n=1000, eval_batch=500, eval_sweep="0,0.25,0.5,1.0", train_seeds="1,2",
        autoattack_n=200, autoattack_steps=50, autoattack_targets=9,
    ),
    # One GPU, minutes: full CIFAR-10, an airbench-style net, bf16.
    "fast": Profile(
        name="fast", arch="airbench", batch_size=512, lr=0.2, lr_drand=0.2,
        schedule="onecycle", nesterov=True, label_smoothing=0.2, epochs=16,
        source_epochs=16, robust_epochs=16, invert_steps=200, target_steps=100,
        shard_size=10000, construct_batch=5000, eval_batch=2000, compile=False,
    ),
    # The paper's Appendix C recipe: every field keeps the class default above, which matches
    # the robustness library's CIFAR defaults (ResNet-50, SGD lr 0.1, momentum 0.9, wd 5e-4,
    # batch 128, 150 epochs, lr x0.1 every 50) and the construction/attack settings in the
    # comments (L2 adversarial training eps 0.5, 7 steps of 0.1; D_R/D_NR 1000 steps of 0.1;
    # D_rand/D_det eps 0.5, 100 steps of 0.1; D_rand at lr 0.01; D_det without augmentation).
    "paper": Profile(name="paper", release="download", construct_batch=1000, augment="crop,flip,jitter,rotate",
                     source_augment="crop,flip,jitter,rotate", rnr_augment="crop,flip,jitter,rotate",
                     adv_random_start=False),
}

PROFILE_NAMES = tuple(_PROFILES)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Profile) if f.name != "name"]


def _coerce(key: str, value, typ):
    if isinstance(value, str):
        if typ is bool or typ == "bool":
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"profile field {key!r}: expected a boolean, got {value!r}")
        for t, name in ((int, "int"), (float, "float")):
            if typ is t or typ == name:
                try:
                    return t(value)
                except ValueError:
                    raise ValueError(f"profile field {key!r}: expected {name}, got {value!r}") from None
        return value
    if (typ is float or typ == "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def get_profile(name: str, **overrides) -> Profile:
    """The named profile with ``overrides`` applied (strings are converted to each field's type)."""
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {PROFILE_NAMES}")
    types = {f.name: f.type for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; valid fields: {field_names()}")
    clean = {k: _coerce(k, v, types[k]) for k, v in overrides.items()}
    prof = dataclasses.replace(_PROFILES[name], **clean)
    validate(prof)
    return prof


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

    need(p.dataset_source in ("constructed", "released"), f"dataset_source must be constructed|released, got {p.dataset_source!r}")
    need(p.schedule in ("step", "onecycle", "constant"), f"schedule must be step|onecycle|constant, got {p.schedule!r}")
    need(p.invert_schedule in ("constant", "linear", "cosine"),
         f"invert_schedule must be constant|linear|cosine, got {p.invert_schedule!r}")
    need(p.eval_attack in ATTACKS, f"eval_attack must be one of {ATTACKS}, got {p.eval_attack!r}")
    need(1 <= p.apgd_targets <= 9 and 1 <= p.autoattack_targets <= 9,
         f"apgd_targets and autoattack_targets must be in [1, 9] (CIFAR-10's wrong classes), got "
         f"{p.apgd_targets}, {p.autoattack_targets}")
    need(p.claim_eps > 0, f"claim_eps must be > 0, got {p.claim_eps}")
    for k in ("n_train", "n_test", "n_val", "construct_n", "invert_n", "eval_n", "epochs", "source_epochs", "robust_epochs",
              "target_source_epochs", "rand_det_epochs",
              "autoattack_n", "relabel_epochs", "transfer_n"):
        need(getattr(p, k) >= 0, f"{k} must be >= 0, got {getattr(p, k)}")
    for k in ("batch_size", "adv_steps", "invert_steps", "target_steps", "eval_steps", "shard_size",
              "construct_batch", "eval_batch", "eval_every", "target_restarts", "eval_restarts", "lr_step", "autoattack_steps",
              "apgd_steps",
              "autoattack_targets"):
        need(getattr(p, k) > 0, f"{k} must be > 0, got {getattr(p, k)}")
    for k in ("adv_eps", "target_eps", "eval_eps", "lr", "lr_drand", "adv_step_size", "invert_step_size",
              "target_step_size"):
        need(getattr(p, k) >= 0, f"{k} must be >= 0, got {getattr(p, k)}")
    need(all(e >= 0 for e in p.sweep), f"eval_sweep radii must be >= 0, got {p.eval_sweep!r}")
    _ = p.seeds, p.standard_seeds  # raise on a bad train_seeds / source_seeds entry
    _ = p.dataset_list  # raises on unknown names
    from .loader import parse_augment
    from .models import ARCHS

    need(p.arch in ARCHS, f"arch must be one of {ARCHS}, got {p.arch!r}")
    bad = [a for a in p.transfer_arch_list if a not in ARCHS]
    need(not bad, f"transfer_archs: unknown {bad}; expected names from {ARCHS}")
    need(p.transfer_eps >= 0, f"transfer_eps must be >= 0, got {p.transfer_eps}")
    need(p.target_source_weight_decay >= 0, f"target_source_weight_decay must be >= 0, got {p.target_source_weight_decay}")
    for key in ("augment", "source_augment", "target_source_augment", "rnr_augment"):
        try:
            parse_augment(getattr(p, key))
        except ValueError as e:
            raise ValueError(f"profile {p.name!r}: field {key!r}: {e}") from None
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
    "DATASETS", "CONTROL_SETS", "SUBSET_VARIANTS", "ALL_SETS", "MATCHED_CONTROL", "MATCHED_CONTROLS", "ATTACKS", "RELEASE_NAMES", "CIFAR10_CLASSES", "RELEASE_URL", "PAPER", "Profile",
    "PROFILE_NAMES", "get_profile", "load", "parse_overrides", "field_names", "validate", "paper_row",
]
