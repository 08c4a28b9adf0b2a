""""What this run shows": short paragraphs built from a run's own numbers, with the paper's beside.

The notebooks close with these, so their conclusions are never typed in by hand and always say
what *this* run measured (profile, sizes, accuracies), including where it falls short of the paper.
Every function takes plain dicts (results.json, meta.json, training histories) and returns markdown.
"""

from __future__ import annotations

from .config import PAPER

CHANCE = 0.10  # ten classes


def _pct(v) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def _rows(results: dict, dataset: str, source: str | None = None) -> list[dict]:
    return [r for r in results.get("rows", []) if r.get("dataset") == dataset
            and (source is None or r.get("source") == source)]


def _mean(rows: list[dict], get) -> float | None:
    vals = [get(r) for r in rows]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _clean(results, dataset, source=None):
    return _mean(_rows(results, dataset, source), lambda r: r.get("clean_acc"))


def _robust(results, dataset, eps, source=None):
    return _mean(_rows(results, dataset, source), lambda r: (r.get("robust_acc") or {}).get(eps))


def smoke_note(profile: str | None) -> str:
    if profile != "smoke":
        return ""
    return ("*Smoke profile*: a tiny network, one or two epochs, 600 embedded images. Its numbers sit near "
            "chance (10%) by design; they show that every step runs, not the paper's result. Run the `cpu` "
            "profile (about an hour on a laptop) for the real thing.\n\n")


def data_summary(profile: str, train, test, released: dict) -> str:
    n_tr, n_te = len(train[1]), len(test[1])
    rel = ", ".join(sorted(released)) if released else "none (profile field `release` is `skip`)"
    return (f"{smoke_note(profile)}This run uses **{n_tr:,} training** and **{n_te:,} test** images of CIFAR-10, "
            f"class-balanced ({n_tr // 10:,} / {n_te // 10:,} per class). The paper uses all 50,000 / 10,000. "
            f"Released datasets extracted: {rel}.")


def source_models(profile: str, rows: list[dict]) -> str:
    """rows: ``pipeline.source_model_rows`` (already formatted)."""
    if not rows:
        return "No source models in this run (a released-data run does not need them)."
    by = {r["source model"]: r for r in rows}
    key = next(k for k in rows[0] if k.startswith("PGD"))
    std, rob = by.get("standard", {}), by.get("robust", {})
    return (f"{smoke_note(profile)}The standard model reaches {std.get('clean acc')} clean and {std.get(key)} under "
            f"attack ({key}); the adversarially trained one {rob.get('clean acc')} / {rob.get(key)}. The paper's "
            f"standard ResNet-50: 95% / 4.5% at ε = 0.25. The gap between the two models' robust accuracies is the "
            f"room the construction has: D_R inherits the robust model's features, D_NR the standard model's."
            + _targeted_note(by.get("targeted"), key))


def _targeted_note(row: dict | None, key: str) -> str:
    if not row:
        return ""
    return (f" D_rand and D_det attack a second standard model, trained with augmentation and weight decay "
            f"({row.get('clean acc')} / {row.get(key)}): at this scale the hard-fitted model above is the "
            f"non-robust one D_NR needs, while the augmented one plants targeted perturbations that teach "
            f"their labels better (profile field `target_source_epochs`).")


def construction(metas: dict) -> str:
    if not metas:
        return "No dataset was constructed in this run (the profile uses the released sets, or none was asked for)."
    parts = []
    for name, m in metas.items():
        if m.get("algorithm") == "representation_matching":
            d = (m.get("final_rel_distance") or {}).get("mean")
            agree = m.get("source_model_agreement")
            parts.append(f"**{name}**: {m.get('n_rows'):,} images, {m.get('steps')} matching steps; the images end "
                         f"at a relative feature distance of {d:.3f} from their targets, and the source model "
                         f"assigns the target's label to {_pct(agree)} of them.")
        else:
            parts.append(f"**{name}**: {m.get('n_rows'):,} images, targeted L2 PGD with ε = {m.get('eps')} "
                         f"({m.get('steps')} steps) reaches its target class on {_pct(m.get('hit_rate'))} "
                         f"(the paper's setting is ε = 0.5, 100 steps); "
                         f"the target equals the true label for {_pct(m.get('target_equals_label_fraction'))}.")
    return " ".join(parts) + (" A low hit rate weakens D_rand/D_det: a miss keeps the original image's features "
                              "under a wrong label.")


def training(histories: dict) -> str:
    if not histories:
        return "No model was trained (no dataset present)."
    parts = []
    for name, h in histories.items():
        tr = (h.get("train_acc") or [None])[-1]
        ev = (h.get("eval_acc") or [None])[-1]
        parts.append(f"{name}: {_pct(tr)} on its own training set, {_pct(ev)} on the real test set")
    return ("Training accuracy is measured on the (relabelled) training set, test accuracy against the true "
            "labels: " + "; ".join(parts) + ". A model that fits D_rand or D_det and still beats chance (10%) on the "
            "true labels learned features that generalize from images whose labels look wrong to a human.")


def results(res: dict) -> str:
    """The paper's claims, each with the verdict its interval gives (``advlib.claims``), then what the
    run cannot show. No sentence states a claim its verdict does not support."""
    from .verdicts import claims, verdict_sentence

    out = [smoke_note(res.get("profile"))] if res.get("profile") == "smoke" else []
    found = claims(res)
    if not found:
        return "No results yet: run notebooks 02, 04 and 05."
    out += [f"- {verdict_sentence(c)}" for c in found]
    counts = {v: sum(c["verdict"] == v for c in found) for v in ("supported", "not supported", "inconclusive")}
    out.append(f"\n{counts['supported']} of {len(found)} claims supported, {counts['not supported']} not supported "
               f"and {counts['inconclusive']} inconclusive at this scale (95% intervals over test images and "
               "training seeds; a verdict needs the whole interval on one side).")
    out.append(shortfall(res))
    return "\n".join(o for o in out if o)


def shortfall(res: dict) -> str:
    """What this run does not show: its clean accuracies against the paper's, and its scale."""
    cfg = res.get("config") or {}
    gaps = []
    for name in ("standard", "d_robust", "d_non_robust", "d_rand", "d_det"):
        c = _clean(res, name)
        paper = (PAPER.get(name) or {}).get("clean_acc")
        if c is not None and paper is not None:
            gaps.append(f"{name} {_pct(c)} (paper {_pct(paper)})")
    if not gaps:
        return ""
    return ("**What this run does not show.** Clean accuracies at this scale are far from the paper's: "
            + ", ".join(gaps) + f". The models are `{cfg.get('arch')}` networks trained on "
            f"{cfg.get('n_train') or 'all'} CIFAR-10 images (the paper: ResNet-50 on 50,000); a verdict here is about "
            "this scale, not the paper's.")


__all__ = ["smoke_note", "data_summary", "source_models", "construction", "training", "results"]


# --- notebooks 07 (controls) and 08 (transfer) ------------------------------------------------------
_REF_NAMES = {"jordan": "Jordan's ResNet-9", "wallace": "Wallace's ResNet-18"}


def _ci_txt(e: dict) -> str:
    ci = e.get("clean_ci95")
    return _pct(e.get("clean_acc")) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def _above_chance(e: dict | None) -> bool:
    """The 95% interval lies above chance (10%)."""
    if not e or e.get("clean_acc") is None:
        return False
    ci = e.get("clean_ci95")
    return (ci[0] if ci else e["clean_acc"]) > CHANCE


def _refs(e: dict) -> str:
    refs = e.get("references") or {}
    return ", ".join(f"{_REF_NAMES.get(k, k)}: {_pct(v)}" for k, v in refs.items())


def _differs(a: dict | None, b: dict | None) -> int:
    """+1 / -1 when a's 95% interval lies wholly above / below b's, else 0 (no difference shown)."""
    ca, cb = (a or {}).get("clean_ci95"), (b or {}).get("clean_ci95")
    if not ca or not cb:
        return 0
    return 1 if ca[0] > cb[1] else -1 if ca[1] < cb[0] else 0


def controls(summary: list[dict], profile: str | None = None) -> str:
    """What the controls of notebook 07 rule in or out, from ``studies.controls_summary``."""
    by = {e["name"]: e for e in summary or []}
    out = [smoke_note(profile)] if profile == "smoke" else []
    if not by:
        return "No control was trained yet: run the steps above (and notebooks 02 and 04 first)."
    rand, det = by.get("d_rand"), by.get("d_det")
    base_ok = _above_chance(rand) or _above_chance(det)
    if rand or det:
        parts = [f"{n} {_ci_txt(e)}" for n, e in (("D_rand", rand), ("D_det", det)) if e]
        note = "" if base_ok else (" Neither is clearly above chance here, so the controls have nothing to explain "
                                   "yet: read their numbers as a check that every step runs.")
        out.append(f"- **The sets under test**: trained on them, models score {' and '.join(parts)} on the true test "
                   f"labels (chance: 10%; paper, ResNet-50: 63% / 44%).{note}")
    other = by.get("d_other")
    if other:
        ref = f" ({_refs(other)})" if other.get("references") else ""
        if _above_chance(other):
            verdict = ("so the ~10% of D_rand rows whose random target happens to be the true label are not what the "
                       "model learns from: with every label wrong, the attack's perturbations alone teach it.")
        elif _above_chance(rand):
            verdict = ("not clearly above chance while D_rand is: in this run D_rand's correctly-labelled rows (~10%) "
                       "may carry what it teaches.")
        else:
            verdict = "not clearly above chance (nor is D_rand): this run says nothing either way."
        out.append(f"- **D_other** (targets never equal the true label): {_ci_txt(other)}{ref}, {verdict}")
    syn = [(n, by[k]) for n, k in (("D_rand", "d_rand_synthetic"), ("D_det", "d_det_synthetic")) if k in by]
    if syn:
        txt = " and ".join(f"{_ci_txt(e)} (as {n})" for n, e in syn)
        refs: dict[str, list[str]] = {}
        for _, e in syn:
            for k, v in (e.get("references") or {}).items():
                refs.setdefault(k, []).append(_pct(v))
        ref = "; ".join(f"{_REF_NAMES.get(k, k)}: {' / '.join(v)}" for k, v in refs.items())
        base = {"D_rand": rand, "D_det": det}
        reach = [n for n, e in syn if _above_chance(base.get(n)) and _above_chance(e) and _differs(e, base[n]) >= 0]
        if reach:
            verdict = (f"the shortcut reaches the accuracy of {' and '.join(reach)} (within the 95% intervals or "
                       "above): a trivially learnable pattern carrying the label suffices for that number, so accuracy "
                       "alone does not prove that the attack planted *features* of the target class.")
        elif base_ok and any(_above_chance(e) for _, e in syn):
            verdict = ("above chance but below the attacked sets: a shortcut explains part of the number, the "
                       "attack's perturbations add to it.")
        elif base_ok:
            verdict = ("near chance while the attacked sets are not: a pattern that carries the label but nothing of "
                       "the class's images teaches nothing that holds on real test images, whereas the attack's "
                       "perturbations do.")
        elif any(_above_chance(e) for _, e in syn):
            verdict = "above chance while the attacked sets are not: the shortcut is learnable and transfers here."
        else:
            verdict = "near chance, as are the attacked sets in this run: nothing to compare yet."
        out.append(f"- **Synthetic patterns** (no attack; one fixed random pattern of L2 norm ε per target class): "
                   f"{txt}{' (' + ref + ')' if ref else ''}; {verdict}")
    rel = by.get("relabel")
    if rel:
        ref = f" ({_refs(rel)})" if rel.get("references") else ""
        n = rel.get("train_n")
        if _above_chance(rel):
            verdict = ("a model's mistakes carry signal that transfers to the true labels without any perturbation: "
                       "wrong labels that follow a model's features teach those features, which is the mechanism the "
                       "paper invokes, here without adversarial examples.")
        else:
            verdict = "not clearly above chance in this run."
        what = (f" ({n:,} training images a briefly trained model gets wrong, labelled with its prediction, pixels "
                "unchanged)") if n else ""
        out.append(f"- **Relabelled mistakes**{what}: {_ci_txt(rel)}{ref}; {verdict}")
    var = [(k, by[k]) for k in ("d_rand_t_ne_y", "d_rand_hits", "d_det_hits") if k in by]
    if var:
        parts = [f"{e.get('label', k)} ({e.get('train_n') or '?'} rows): {_ci_txt(e)}" for k, e in var]
        notes = []
        for k, parent, pname in (("d_rand_t_ne_y", rand, "D_rand"), ("d_rand_hits", rand, "D_rand"),
                                 ("d_det_hits", det, "D_det")):
            if k not in by or not parent:
                continue
            d = _differs(by[k], parent)
            label = by[k].get("label", k)
            if d > 0:
                notes.append(f"{label} beat the whole of {pname}: the rows left out only add wrong labels")
            elif d < 0:
                notes.append(f"{label} fall below the whole of {pname}: the rows left out carry signal too "
                             "(or the smaller set costs more than they do)")
        summary_note = ("; ".join(notes) + ".") if notes else ("No subset differs from its whole set beyond the 95% "
                                                               "intervals.")
        out.append("- **Subsets of the attacked sets**: " + "; ".join(parts) + ". " + summary_note)
    return "\n".join(out)


def transfer(result: dict, profile: str | None = None) -> str:
    """The paper's Section 3.3 claim checked on transfer.json (notebook 08)."""
    rows = [r for r in (result or {}).get("rows", []) if r.get("transfer_rate") is not None]
    if not rows:
        return "No transfer result yet: run the steps above."
    out = [smoke_note(profile)] if profile == "smoke" else []
    fit = result.get("fit") or {}
    wb = fit.get("source_whitebox_rate")
    lo, hi = min(rows, key=lambda r: r["transfer_rate"]), max(rows, key=lambda r: r["transfer_rate"])
    out.append(f"- **Transfer**: the source model's targeted examples (L2 ε = {rows[0].get('transfer_eps')}, "
               f"{rows[0].get('transfer_n')} test images) fool the source itself {_pct(wb)} of the time (white-box); "
               f"standard models of the {len(rows)} architectures follow them from {_pct(lo['transfer_rate'])} "
               f"({lo['arch']}) to {_pct(hi['transfer_rate'])} ({hi['arch']}); a model the examples did not affect "
               "would land on the target only through its ordinary errors (about (1 − accuracy) / 9).")
    acc = ", ".join(f"{r['arch']} {_pct(r.get('ddet_acc'))}" for r in rows)
    out.append(f"- **Learning from D_det** (test accuracy on the true labels): {acc}.")
    for key, name in (("ddet", "D_det"), ("drand", "D_rand")):
        f = fit.get(key) or {}
        if f.get("slope") is None:
            continue
        r = f.get("r")
        col = "ddet" if key == "ddet" else "drand"
        informative = any((row.get(f"{col}_ci95") or [row.get(f"{col}_acc") or 0])[0] > CHANCE for row in rows)
        if not informative:
            verdict = "every model sits at chance here, so there is no relation to read."
        elif f.get("n", 0) < 3:
            verdict = "too few architectures for a correlation to mean much."
        elif r is not None and r > 0.5:
            verdict = ("as in the paper's Figure 3: the architectures the source's examples fool more, which share more "
                       "of its non-robust features, learn more from a set labelled only by those features.")
        elif r is not None and r > 0:
            verdict = "positive but weak: the paper's relation shows only faintly here."
        else:
            verdict = "this run does not show the paper's relation."
        out.append(f"- **{name} accuracy against transfer rate**: slope {f['slope']:+.2f}, r = "
                   f"{'n/a' if r is None else f'{r:+.2f}'} over {f['n']} architectures; {verdict}")
    out.append("With a handful of architectures and one seed each, r is a rough summary: read it with the spread of "
               "the points and their 95% intervals (transfer.json).")
    return "\n".join(out)


__all__ += ["controls", "transfer"]
