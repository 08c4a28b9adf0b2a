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
            f"room the construction has: D_R inherits the robust model's features, D_NR the standard model's.")


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
    """The paper's four claims, each checked against this run's numbers."""
    eps = "0.25"
    src = (res.get("config") or {}).get("dataset_source", "constructed")
    out = [smoke_note(res.get("profile"))] if res.get("profile") == "smoke" else []
    std_c, std_r = _clean(res, "standard"), _robust(res, "standard", eps)
    r_c, r_r = _clean(res, "d_robust", src), _robust(res, "d_robust", eps, src)
    n_c, n_r = _clean(res, "d_non_robust", src), _robust(res, "d_non_robust", eps, src)
    if std_c is not None:
        out.append(f"- **Standard training** is accurate but brittle: {_pct(std_c)} clean, {_pct(std_r)} at "
                   f"ε = {eps} (paper: 95% / 4.5%).")
    if r_r is not None and n_r is not None:
        verdict = "more" if r_r > n_r else "not more"
        out.append(f"- **Robust features suffice for robustness**: standard training on D_R gives {_pct(r_c)} clean "
                   f"and {_pct(r_r)} robust, {verdict} robust than on D_NR ({_pct(n_c)} / {_pct(n_r)}); gap "
                   f"{100 * (r_r - n_r):+.1f} points (paper: 84% / 48% vs 88% / 0%, gap +48)."
                   + (f" Against the standard model: {100 * (r_r - std_r):+.1f} points." if std_r is not None else ""))
    for name, label in (("d_rand", "D_rand"), ("d_det", "D_det")):
        c = _clean(res, name, src)
        if c is not None:
            paper = PAPER[name]["clean_acc"]
            out.append(f"- **Non-robust features generalize** ({label}): every training label is the attack's target, "
                       f"yet the model scores {_pct(c)} on the true test labels ({c / CHANCE:.1f}x chance; "
                       f"paper {_pct(paper)}).")
    if len(out) <= (1 if res.get("profile") == "smoke" else 0):
        return "No results yet: run notebooks 02, 04 and 05."
    return "\n".join(out)


__all__ = ["smoke_note", "data_summary", "source_models", "construction", "training", "results"]
