"""The paper's claims as data, each with a verdict that follows its interval.

``claims(results)`` reads the rows of a results.json (their per-image masks) and returns one entry
per claim of Ilyas et al. (2019) that the run can test:

- standard training is non-robust (its robust accuracy at ``eval_eps`` below 10%);
- D_R is more robust than its matched control (the same training on the real images D_R was
  built from, true labels), at the declared radius ``claim_eps`` and at the paper's ``eval_eps``;
- D_NR is less robust than its matched control (both radii);
- D_R is more robust than D_NR at ``eval_eps``;
- D_rand and D_det each beat chance on the true test labels; D_det also beats the accuracy of
  predicting y + 1 (what a model that learned D_det's labels as a person sees them would score).

Each entry: ``{"id", "claim", "verdict", "numbers", "test", "eps"}``. The verdict is "supported"
when the 95% interval of the tested quantity lies wholly on the claimed side of its threshold,
"not supported" when it lies wholly on the other side, and "inconclusive" otherwise
(:func:`advlib.stats.verdict`). The intervals are the bootstrap of :mod:`advlib.stats` over test
images and training seeds; a claim about what training on a set does needs at least ``MIN_SEEDS``
training seeds per arm for a verdict other than "inconclusive". Claims whose rows the run lacks are
left out; nothing here is typed in.
"""

from __future__ import annotations

from . import stats
from .results import rows_of

CHANCE = 0.1  # ten classes
NON_ROBUST_BELOW = 0.10  # "standard training is non-robust": robust accuracy under 10%
VERDICTS = ("supported", "not supported", "inconclusive")


MIN_SEEDS = 2  # a claim about what training on a set does needs the spread over training seeds


def _needs_seeds(c: dict | None, *arms: list[dict]) -> dict | None:
    """A verdict about training on a set rests on at least MIN_SEEDS training seeds per arm: with
    fewer, the spread between seeds is unknown and the verdict is "inconclusive" (the numbers stay)."""
    if c is None:
        return None
    short = [len(a) for a in arms if len(a) < MIN_SEEDS]
    if short and c["verdict"] != "inconclusive":
        c = {**c, "verdict": "inconclusive",
             "test": c["test"] + f"; inconclusive: {min(short)} training seed(s), {MIN_SEEDS} needed for a verdict"}
    return c


def _key(eps) -> str:
    return str(float(eps))


def _masks(rows: list[dict], what: str) -> list | None:
    """Per-seed 0/1 outcome lists of ``what`` ("clean", "shifted" or a radius key); None when a row
    has no such mask (results written before masks were stored)."""
    from .evaluate import unpack_mask

    out = []
    for r in rows:
        text = (r.get("masks") or {}).get(what)
        if text is None:
            return None
        out.append(unpack_mask(text, int(r["clean_n"])).numpy())
    return out if out else None


def _pts(v: float) -> float:
    return round(100 * v, 1)


def _interval_numbers(est, lo, hi) -> dict:
    return {"estimate": _pts(est), "ci95": [_pts(lo), _pts(hi)]}


def _mean_claim(cid, text, rows, what, threshold, direction, eps=None) -> dict | None:
    m = _masks(rows, what)
    if m is None:
        return None
    est, lo, hi = stats.bootstrap_mean(m)
    return {"id": cid, "claim": text, "verdict": stats.verdict(lo, hi, threshold, direction), "eps": eps,
            "numbers": {**_interval_numbers(est, lo, hi), "threshold": _pts(threshold), "seeds": len(rows),
                        "images": int(rows[0]["clean_n"])},
            "test": f"mean over seeds and images; {stats.TEST}; claimed {direction} {_pts(threshold)}%"}


def _diff_claim(cid, text, rows_a, rows_b, what_a, what_b, direction, eps=None, names=("a", "b"),
                paired_seeds=False) -> dict | None:
    a, b = _masks(rows_a, what_a), _masks(rows_b, what_b)
    if a is None or b is None:
        return None
    if len(a[0]) != len(b[0]):
        return None  # not measured on the same images: no paired comparison
    est, lo, hi = stats.bootstrap_difference(a, b, paired_seeds=paired_seeds)
    mean_a, mean_b = float(sum(x.mean() for x in a) / len(a)), float(sum(x.mean() for x in b) / len(b))
    return {"id": cid, "claim": text, "verdict": stats.verdict(lo, hi, 0.0, direction), "eps": eps,
            "numbers": {names[0]: _pts(mean_a), names[1]: _pts(mean_b), "difference": _pts(est),
                        "ci95": [_pts(lo), _pts(hi)], "ratio": round(mean_a / mean_b, 3) if mean_b else None,
                        "seeds": [len(rows_a), len(rows_b)], "images": len(a[0])},
            "test": f"{names[0]} − {names[1]}; {stats.TEST}; claimed {direction} 0"}


def _both(cid, text, parts: list[dict]) -> dict | None:
    """A claim that holds only if every part does: supported if all are, not supported if any is not."""
    if any(p is None for p in parts):
        return None
    verdicts = [p["verdict"] for p in parts]
    v = ("supported" if all(x == "supported" for x in verdicts)
         else "not supported" if "not supported" in verdicts else "inconclusive")
    return {"id": cid, "claim": text, "verdict": v, "eps": None,
            "numbers": {p["id"]: p["numbers"] for p in parts}, "test": " and ".join(p["test"] for p in parts)}


def claims(results: dict) -> list[dict]:
    """The paper's claims this run can test, each with its verdict (see the module docstring)."""
    cfg = results.get("config") or {}
    eps = _key(cfg.get("eval_eps", 0.25))
    claim_eps = _key(cfg.get("claim_eps", cfg.get("eval_eps", 0.25)))
    radii = [claim_eps] + ([eps] if eps != claim_eps else [])
    std, d_r, d_nr = rows_of(results, "standard"), rows_of(results, "d_robust"), rows_of(results, "d_non_robust")
    ctrl = lambda name: rows_of(results, (rows_of(results, name) or [{}])[0].get("control") or "")  # noqa: E731
    out = []
    if std:
        out.append(_mean_claim("standard_non_robust", f"Standard training gives a non-robust model: robust "
                               f"accuracy at ε = {eps} below {_pts(NON_ROBUST_BELOW):.0f}%", std, eps,
                               NON_ROBUST_BELOW, "below", eps))
    for e in radii:
        declared = " (the radius declared for this claim)" if e == claim_eps and e != eps else ""
        if d_r and ctrl("d_robust"):
            out.append(_needs_seeds(_diff_claim(
                f"d_robust_vs_control@{e}", f"A model trained on D_R is more robust than the same training on the "
                f"real images D_R was built from, at ε = {e}{declared}", d_r, ctrl("d_robust"), e, e, "above", e,
                ("D_R", "control")), d_r, ctrl("d_robust")))
        if d_nr and ctrl("d_non_robust"):
            out.append(_needs_seeds(_diff_claim(
                f"d_non_robust_vs_control@{e}", f"A model trained on D_NR is less robust than the same training on "
                f"the real images D_NR was built from, at ε = {e}{declared}", d_nr, ctrl("d_non_robust"), e, e,
                "below", e, ("D_NR", "control")), d_nr, ctrl("d_non_robust")))
    if d_r and d_nr:
        out.append(_needs_seeds(_diff_claim(
            f"d_robust_vs_d_non_robust@{eps}", f"A model trained on D_R is more robust than one trained on D_NR, at "
            f"ε = {eps}", d_r, d_nr, eps, eps, "above", eps, ("D_R", "D_NR")), d_r, d_nr))
    d_rand, d_det = rows_of(results, "d_rand"), rows_of(results, "d_det")
    if d_rand:
        out.append(_needs_seeds(_mean_claim(
            "d_rand_generalizes", "A model trained on D_rand (every label the attack's random target; about 1 in 10 "
            "equals the true class) beats chance on "
            "the true test labels", d_rand, "clean", CHANCE, "above"), d_rand))
    if d_det:
        chance = _mean_claim("d_det_above_chance", "beats chance on the true labels", d_det, "clean", CHANCE, "above")
        shifted = _diff_claim("d_det_above_shifted", "beats predicting y + 1", d_det, d_det, "clean", "shifted",
                              "above", None, ("true labels", "y + 1"), paired_seeds=True)
        out.append(_needs_seeds(_both(
            "d_det_generalizes", "A model trained on D_det (every label wrong to a person) beats chance on the true "
            "test labels and beats predicting y + 1", [chance, shifted]), d_det))
    return [c for c in out if c is not None]


CHANCE_BAND = 0.05  # "at chance": within 5 points of 10%


def _band_claim(cid, text, rows, what, center, half) -> dict | None:
    """The mean lies within ``center`` ± ``half``: supported when the whole interval does, not
    supported when the whole interval lies outside the band, inconclusive otherwise."""
    m = _masks(rows, what)
    if m is None:
        return None
    est, lo, hi = stats.bootstrap_mean(m)
    inside, outside = lo > center - half and hi < center + half, hi < center - half or lo > center + half
    v = "supported" if inside else "not supported" if outside else "inconclusive"
    return {"id": cid, "claim": text, "verdict": v, "eps": None,
            "numbers": {**_interval_numbers(est, lo, hi), "threshold": _pts(center),
                        "band": [_pts(center - half), _pts(center + half)], "seeds": len(rows),
                        "images": int(rows[0]["clean_n"])},
            "test": f"mean over seeds and images; {stats.TEST}; claimed within {_pts(center - half)}–"
                    f"{_pts(center + half)}%"}


def _linf_key(results: dict) -> str | None:
    """The L∞ radius as the rows spell it (the config's ``beyond.linf_eps``, else the L∞ rows' own)."""
    eps = ((results.get("config") or {}).get("beyond") or {}).get("linf_eps")
    if eps is not None:
        return _key(eps)
    row = next((r for r in results.get("rows", []) if r.get("norm") == "linf" and r.get("robust_acc")), None)
    return next(iter(row["robust_acc"]), None) if row else None


linf_key = _linf_key  # for the tables and figures of notebook 10


def beyond_claims(results: dict) -> list[dict]:
    """The claims of notebook 10 this run can test, each with its verdict (as :func:`claims`):

    - under L∞ (ε = ``beyond.linf_eps``): standard training is non-robust; D_R built from an
      L∞-robust model is more robust than its matched control; D_rand and D_det built with L∞
      targeted attacks beat chance (D_det also beats predicting y + 1);
    - robust gradients look like objects: large-ε targeted attacks on the L2-robust model make images
      that a robust model used for neither attack (the L∞-robust one) classifies as the target more
      often than those made on the standard model;
    - just bugs: D_det from the same images beats chance; D_det from examples that leave an ensemble of
      standard models unchanged teaches less than it, and sits at chance (within ±5 points of 10%);
    - leakage: a linear classifier on the L2-robust model's features, fitted to D_rand's labels, beats
      chance on the true labels; fitted to D_det's labels, it does not.
    """
    out = []
    key = _linf_key(results)
    r = lambda name: rows_of(results, name)  # noqa: E731
    if key is not None:
        eps_txt = f"L∞ ε = {float(key) * 255:.3g}/255"
        if r("standard_linf"):
            out.append(_mean_claim(f"linf_standard_non_robust@{key}", f"Standard training gives a model that is "
                                   f"non-robust under {eps_txt}: robust accuracy below "
                                   f"{_pts(NON_ROBUST_BELOW):.0f}%", r("standard_linf"), key, NON_ROBUST_BELOW,
                                   "below", key))
        if r("d_robust_linf") and r("control_rnr_linf"):
            out.append(_needs_seeds(_diff_claim(
                f"d_robust_linf_vs_control@{key}", f"A model trained on D_R built from an L∞-robust model is more "
                f"robust under {eps_txt} than the same training on the real images D_R was built from",
                r("d_robust_linf"), r("control_rnr_linf"), key, key, "above", key, ("D_R (L∞)", "control")),
                r("d_robust_linf"), r("control_rnr_linf")))
        if r("d_rand_linf"):
            out.append(_needs_seeds(_mean_claim(
                "d_rand_linf_generalizes", "A model trained on D_rand built with L∞ targeted attacks beats chance on "
                "the true test labels", r("d_rand_linf"), "clean", CHANCE, "above"), r("d_rand_linf")))
        if r("d_det_linf"):
            rows = r("d_det_linf")
            out.append(_needs_seeds(_both("d_det_linf_generalizes", "A model trained on D_det built with L∞ targeted "
                                          "attacks beats chance on the true test labels and beats predicting y + 1", [
                _mean_claim("d_det_linf_above_chance", "beats chance", rows, "clean", CHANCE, "above"),
                _diff_claim("d_det_linf_above_shifted", "beats y + 1", rows, rows, "clean", "shifted", "above", None,
                            ("true labels", "y + 1"), paired_seeds=True)]), rows))
    if r("synthesis_robust") and r("synthesis_standard"):
        a, b = r("synthesis_robust"), r("synthesis_standard")
        eps = a[0].get("judge_eps")
        out.append(_diff_claim(
            "synthesis_robust_vs_standard", f"Large-ε targeted L2 attacks (ε = {eps}) on the L2-robust model make "
            f"images that a robust model used for neither attack ({a[0].get('judge', '?')}) classifies as the target "
            "more often than those made on the standard model", a, b, "judge", "judge", "above", eps,
            ("L2-robust", "standard")))
    bugs, sub = r("d_det_bugs"), r("d_det_subset")
    if sub:
        out.append(_needs_seeds(_mean_claim("d_det_subset_generalizes", "D_det built from the same images beats "
                                            "chance on the true test labels", sub, "clean", CHANCE, "above"), sub))
    if bugs and sub:
        out.append(_needs_seeds(_diff_claim(
            "d_det_bugs_below_d_det", "A D_det of examples that leave an ensemble of standard models unchanged "
            "(\"just bugs\") teaches less than D_det from the same images", bugs, sub, "clean", "clean", "below",
            None, ("just-bugs D_det", "D_det")), bugs, sub))
    if bugs:
        out.append(_needs_seeds(_band_claim(
            "d_det_bugs_at_chance", "A model trained on the just-bugs D_det is at chance on the true test labels "
            f"(within ±{_pts(CHANCE_BAND):.0f} points of {_pts(CHANCE):.0f}%)", bugs, "clean", CHANCE, CHANCE_BAND),
            bugs))
    if r("leakage_d_rand"):
        out.append(_mean_claim("leakage_d_rand", "A linear classifier on the L2-robust model's features, fitted to "
                               "D_rand's labels, beats chance on the true test labels (robust features leak into "
                               "D_rand)", r("leakage_d_rand"), "clean", CHANCE, "above"))
    if r("leakage_d_det"):
        out.append(_mean_claim("leakage_d_det", "A linear classifier on the L2-robust model's features, fitted to "
                               "D_det's labels, stays below chance on the true test labels (no robust-feature "
                               "leakage into D_det)", r("leakage_d_det"), "clean", CHANCE, "below"))
    return [c for c in out if c is not None]


def claim_numbers(c: dict) -> str:
    """A claim's numbers in words: "D_R 23.3% vs control 28.7%: -5.4 pts [-7.0, -3.9]"."""
    n = c["numbers"]
    if "difference" in n:
        a, b = [k for k in n if k not in ("difference", "ci95", "ratio", "seeds", "images")][:2]
        return f"{a} {n[a]:.1f}% vs {b} {n[b]:.1f}%: {n['difference']:+.1f} pts [{n['ci95'][0]:+.1f}, {n['ci95'][1]:+.1f}]"
    if "estimate" in n and "band" in n:
        return f"{n['estimate']:.1f}% [{n['ci95'][0]:.1f}, {n['ci95'][1]:.1f}] (band {n['band'][0]:.0f}–{n['band'][1]:.0f}%)"
    if "estimate" in n:
        return f"{n['estimate']:.1f}% [{n['ci95'][0]:.1f}, {n['ci95'][1]:.1f}] (threshold {n['threshold']:.0f}%)"
    return "; ".join(claim_numbers({"numbers": v}) for v in n.values())


VERDICT_WORDS = {"supported": "Supported", "not supported": "Not supported at this scale",
                 "inconclusive": "Inconclusive at this scale"}


def tally(found: list[dict], why: str = "a verdict needs the whole interval on one side") -> str:
    """One sentence: how many of ``found`` are supported, not supported and inconclusive."""
    n = {v: sum(c["verdict"] == v for c in found) for v in VERDICTS}
    return (f"{n['supported']} of {len(found)} claims supported, {n['not supported']} not supported and "
            f"{n['inconclusive']} inconclusive at this scale (95% intervals over test images and training seeds; {why}).")


def verdict_sentence(c: dict) -> str:
    """One markdown line per claim: its verdict in words, the claim, its numbers."""
    return f"**{VERDICT_WORDS[c['verdict']]}**: {c['claim']} ({claim_numbers(c)})."


__all__ = ["claims", "beyond_claims", "linf_key", "CHANCE_BAND", "claim_numbers", "verdict_sentence", "tally", "CHANCE", "NON_ROBUST_BELOW", "VERDICTS", "VERDICT_WORDS"]
