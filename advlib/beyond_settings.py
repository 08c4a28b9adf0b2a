"""Notebook 10's settings: the ``beyond`` group of a profile (the L∞ threat model, large-ε synthesis,
"just bugs", leakage) and its values per profile.

Budgets, estimated on 2 CPU cores from the rates measured for the suite (a 95k-parameter ``small``
CNN trains ~1,000 images/s and attacks ~2,000 image·steps/s): smoke <= 30 s; cpu <= 20 min, of which
the L∞ source (6 epochs of 3-step PGD on the 10k pool, an epoch 3.1x a standard one) ~3 min, D_R (ℓ∞) (50 matching steps on the
first 3,000 of the run's D_R / D_NR images, ``linf_invert_n``) ~1.5 min and its models and their own
matched control (2 seeds) ~3 min, D_rand / D_det (ℓ∞) on
1,000 images with their controls ~2.5 min, the L∞ evaluations (17 models, 1,000 test images, PGD-20
then APGD-T) ~4 min, synthesis ~0.5 min, just bugs on 1,500 images with 4 models ~2.5 min, leakage a
few seconds: ~16 min. fast / paper keep the defaults (full scale, for a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import dotted
from .recipes import Recipe


@dataclass(frozen=True)
class Beyond:
    """Notebook 10's settings: the L∞ threat model, large-ε synthesis, "just bugs" and leakage."""

    seeds: tuple[int, ...] = ()  # training seeds of its models (each set and its control); () = the run's seeds
    eval_n: int = 0  # test images of its L∞ evaluations (seeded, class-balanced); 0 = eval_n
    # 1 · L∞: the source model (Madry et al.'s CIFAR L∞ training: ε 8/255, 7 steps of 2/255), the
    # radius of every L∞ attack, and the targeted L∞ PGD of D_rand / D_det (ℓ∞)
    linf_eps: float = 8 / 255
    linf_source: Recipe = field(default_factory=lambda: Recipe(adv_eps=8 / 255, adv_steps=7, adv_step_size=2 / 255,
                                                               adv_norm="linf"))
    linf_n: int = 0  # training images turned into D_rand / D_det (ℓ∞); 0 = construct_n
    # training images turned into D_R (ℓ∞), a prefix of D_R's; 0 = invert_n (then D_R's own matched
    # control serves it too; fewer images train a control of their own)
    linf_invert_n: int = 0
    linf_target_steps: int = 100
    linf_target_step_size: float = 1 / 255
    # 2 · large-ε targeted L2 attacks on the source models ("robust gradients look like objects")
    synth_eps: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 40.0)  # L2 radii (a slider indexes them)
    synth_show: float = 10.0  # the radius of the grid figure (the nearest of synth_eps)
    synth_steps: int = 100  # PGD steps per radius (step size 2.5 ε / steps)
    synth_images: int = 8  # test images (seeded, class-balanced), each attacked toward all ten classes
    # 3 · "just bugs": targeted examples that leave an ensemble of standard models unchanged
    bugs_n: int = 0  # training images turned into the just-bugs D_det (and the D_det subset beside it); 0 = construct_n
    bugs_weight: float = 1.0  # weight of the ensemble's loss beside the source's
    bugs_holdout: str = "tiny"  # the architecture of notebook 08's standard models held out of the ensemble
    # 4 · leakage: a linear classifier on the L2-robust model's features (Goh 2019)
    probe_steps: int = 200  # L-BFGS iterations of the multinomial logistic regression
    probe_weight_decay: float = 1e-4  # L2 penalty on its weights (features standardized first)

    def __post_init__(self):
        hints = dotted.hints(Beyond)
        for key in ("seeds", "synth_eps"):
            object.__setattr__(self, key, dotted.coerce(f"beyond.{key}", getattr(self, key), hints[key],
                                                        "profile field"))


def per_profile(bases: dict[str, Recipe]) -> dict[str, Beyond]:
    """Each profile's values (``bases``: the recipe each profile's recipes start from). fast and paper
    keep :class:`Beyond`'s full-scale defaults but train the L∞ source with their own recipe (Madry et
    al.'s L∞ attack: ε 8/255, 7 steps of 2/255); a profile not named keeps every default."""
    smoke, cpu = bases["smoke"], bases["cpu"]
    madry = {"adv_eps": 8 / 255, "adv_norm": "linf", "adv_steps": 7, "adv_step_size": 2 / 255}
    full = {name: Beyond(linf_source=bases[name].replace(**madry)) for name in ("fast", "paper") if name in bases}
    return {**full,
        "smoke": Beyond(linf_source=smoke.replace(adv_eps=8 / 255, adv_norm="linf", adv_steps=2, adv_step_size=4 / 255),
                        linf_n=100, linf_target_steps=5, linf_target_step_size=2 / 255, synth_eps=(2.0, 10.0),
                        synth_show=10.0, synth_steps=8, synth_images=3, bugs_n=100, probe_steps=30),
        "cpu": Beyond(seeds=(0, 1), eval_n=1000,
                      linf_source=cpu.replace(epochs=6, adv_eps=8 / 255, adv_norm="linf", adv_steps=3,
                                              adv_step_size=2.5 * 8 / 255 / 3),
                      linf_n=1000, linf_invert_n=3000, linf_target_steps=30, linf_target_step_size=1 / 255,
                      synth_eps=(2.0, 5.0, 10.0, 20.0), synth_show=10.0, synth_steps=60, synth_images=6, bugs_n=1500),
    }


def validate_beyond(p, need) -> None:
    """What :func:`advlib.config.validate` checks of ``p.beyond`` (``need(cond, msg)`` raises)."""
    b = p.beyond
    for problem in b.linf_source.problems():
        need(False, f"beyond.linf_source.{problem}")
    need(b.linf_source.adversarial and b.linf_source.adv_norm == "linf",
         "beyond.linf_source must train adversarially in the L∞ ball (adv_eps > 0, adv_norm linf)")
    for k in ("eval_n", "linf_n", "bugs_n"):
        need(getattr(b, k) >= 0, f"beyond.{k} must be >= 0, got {getattr(b, k)}")
    for k in ("linf_target_steps", "synth_steps", "synth_images", "probe_steps"):
        need(getattr(b, k) > 0, f"beyond.{k} must be > 0, got {getattr(b, k)}")
    for k in ("linf_eps", "linf_target_step_size", "bugs_weight", "probe_weight_decay"):
        need(getattr(b, k) >= 0, f"beyond.{k} must be >= 0, got {getattr(b, k)}")
    need(b.synth_eps and all(e > 0 for e in b.synth_eps), f"beyond.synth_eps: positive radii, got {b.synth_eps}")
    from .models import ARCHS

    need(b.bugs_holdout in ARCHS, f"beyond.bugs_holdout must be one of {ARCHS}, got {b.bugs_holdout!r}")


__all__ = ["Beyond", "per_profile", "validate_beyond"]
