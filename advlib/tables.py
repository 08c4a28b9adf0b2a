"""A run's tables in markdown, from its results.json: what ``python -m advlib table`` prints, what
the report and the README quote.

- :func:`results_table`: clean and robust accuracy on the same test images (the headline attack,
  PGD alone beside it), each set beside its matched control, the paper's numbers;
- :func:`claims_table`: the paper's claims with their verdicts (:mod:`advlib.claims`);
- :func:`autoattack_table`: the standard AutoAttack against the headline on the same images;
- :func:`sweep_table`: accuracy against the radius (the run's own seed).

A cell over several seeds is their mean with the 95% bootstrap interval over seeds and images
(:mod:`advlib.stats`); over one seed, the Wilson interval over images.
"""

from __future__ import annotations

from . import stats
from .evaluate import unpack_mask
from .results import grouped_rows, in_l2_tables, row_label
from .verdicts import claim_numbers
from .verdicts import claims as run_claims

# rows in reading order: the source models, then each set beside its matched control
ORDER = ("standard", "adversarial", "standard_targeted", "d_robust", "d_non_robust", "control_rnr", "d_rand",
         "control_rand", "d_det", "control_det")


def pct(v) -> str:
    """A fraction as a percent with one decimal ("61.5%"); "–" for None."""
    return "–" if v is None else f"{100 * float(v):.1f}%"


def _key(eps) -> str:
    return str(float(eps))


def _l2(results: dict) -> dict:
    """``results`` with only the rows of the paper's L2 tables (``results.in_l2_tables``)."""
    return {**results, "rows": [r for r in results.get("rows", []) if in_l2_tables(r)]}


def _ordered(results: dict):
    groups = grouped_rows(_l2(results))
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(groups, key=lambda g: rank.get(g[0], len(ORDER)))


def _stored(rows: list[dict], what: str) -> str:
    """A cell from stored numbers (rows written before per-image outcomes were kept): the value with
    its Wilson interval for one seed, mean ± std over several."""
    get = (lambda r: (r.get("clean_acc"), r.get("clean_ci95"))) if what == "clean" else \
        (lambda r: ((r.get("robust_acc") or {}).get(what), (r.get("robust_ci95") or {}).get(what)))
    vals = [get(r) for r in rows if get(r)[0] is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        v, ci = vals[0]
        return pct(v) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
    xs = [v for v, _ in vals]
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5
    return f"{pct(mean)} ± {100 * std:.1f} ({len(xs)} seeds)"


def cell(rows: list[dict], what: str) -> str:
    """One cell: "61.5% [59.4, 63.6]" (one seed: Wilson) or "61.5% [60.1, 62.9] (3 seeds)" (the
    bootstrap over seeds and images). ``what``: a mask name ("clean" or a radius key); rows
    written without masks fall back to their stored numbers (mean ± std over seeds)."""
    with_masks = [r for r in rows if (r.get("masks") or {}).get(what) is not None]
    if not with_masks:
        return _stored(rows, what)
    rows = with_masks
    masks = [unpack_mask(r["masks"][what], int(r["clean_n"])).numpy() for r in rows]
    if len(rows) == 1:
        m = masks[0]
        from .utils import wilson_interval

        lo, hi = wilson_interval(int(m.sum()), len(m))
        return f"{pct(m.mean())} [{100 * lo:.1f}, {100 * hi:.1f}]"
    est, lo, hi = stats.bootstrap_mean(masks)
    return f"{pct(est)} [{100 * lo:.1f}, {100 * hi:.1f}] ({len(rows)} seeds)"


def _mean(rows: list[dict], get) -> float | None:
    vals = [v for v in (get(r) for r in rows) if v is not None]
    return sum(vals) / len(vals) if vals else None


def results_table(results: dict) -> str:
    """Clean and robust accuracy on the same test images, per row (mean over seeds with its interval)."""
    cfg = results.get("config") or {}
    eps, ceps = _key(cfg.get("eval_eps", 0.25)), _key(cfg.get("claim_eps", cfg.get("eval_eps", 0.25)))
    steps = cfg.get("eval_steps", 20)
    cols = ["trained on", "data", "clean [95% CI]", f"robust @ {eps} [95% CI]", f"PGD-{steps} @ {eps}"]
    if ceps != eps:
        cols += [f"robust @ {ceps} (declared) [95% CI]"]
    cols += ["clean, all test images", "paper clean", "paper robust @ 0.25"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for dataset, origin, rows in _ordered(results):
        paper = rows[0].get("paper") or {}
        # rows written before the headline attack stored PGD alone as robust_acc
        pgd = _mean(rows, lambda r: (r.get("pgd_acc") or ({} if r.get("masks") else r.get("robust_acc")) or {}).get(eps))
        cells = [row_label(dataset), origin, cell(rows, "clean"), cell(rows, eps), pct(pgd)]
        if ceps != eps:
            cells.append(cell(rows, ceps))
        full = _mean(rows, lambda r: r.get("full_clean_acc"))
        cells += [f"{pct(full)} (n={rows[0].get('full_clean_n')})" if full is not None else "–",
                  pct(paper.get("clean_acc")), pct((paper.get("robust_acc") or {}).get("0.25"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def claims_table(results: dict) -> str:
    """The paper's claims this run tests, with the numbers, the 95% interval and the verdict."""
    rows = run_claims(results)
    if not rows:
        return "_(no claim can be tested: the run has no rows with per-image outcomes)_\n"
    return _claims_markdown(rows)


def _claims_markdown(rows: list[dict]) -> str:
    lines = ["| claim | this run (95% interval) | verdict |", "|---|---|---|"]
    lines += [f"| {c['claim']} | {claim_numbers(c)} | **{c['verdict']}** |" for c in rows]
    return "\n".join(lines) + "\n"


def autoattack_table(results: dict) -> str:
    """The standard AutoAttack against the headline attack on the same images (the run's own seed)."""
    rows = [r for r in _l2(results)["rows"] if r.get("autoattack_acc")]
    if not rows:
        return ""
    radii = sorted({k for r in rows for k in r["autoattack_acc"]}, key=float)
    cols = ["trained on", "images"] + [f"AutoAttack @ {e} (headline on the same images)" for e in radii]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rank = {name: i for i, name in enumerate(ORDER)}
    for r in sorted(rows, key=lambda r: rank.get(r["dataset"], len(ORDER))):
        same = r.get("autoattack_headline_acc") or r.get("autoattack_pgd_acc") or {}  # older rows: PGD beside it
        cells = [f"{pct(r['autoattack_acc'].get(e))} ({pct(same.get(e))})" for e in radii]
        lines.append(f"| {row_label(r['dataset'])} | {r.get('autoattack_n')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_table(results: dict) -> str:
    """Accuracy against the L2 radius for the run's own seed: clean, then the headline attack at every
    radius (nested: each radius attacks the survivors of the smaller ones)."""
    seed = results.get("seed")
    rows = [r for r in _l2(results)["rows"] if r.get("seed") == seed or seed is None]
    radii = sorted({float(k) for r in rows for k in (r.get("robust_acc") or {})})
    keys = [_key(e) for e in radii]
    lines = ["| trained on | data | clean | " + " | ".join(f"ε = {k}" for k in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for dataset, origin, group in _ordered({"rows": rows}):
        r = group[0]
        cells = [pct(r.get("clean_acc"))] + [pct((r.get("robust_acc") or {}).get(k)) for k in keys]
        lines.append(f"| {row_label(dataset)} | {origin} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# notebook 10's L∞ rows and the row of the L2 tables each stands beside
LINF_COUNTERPART = {"standard_linf": "standard", "adversarial_l2_linf": "adversarial", "adversarial_linf": "adversarial",
                    "d_robust_linf": "d_robust", "d_non_robust_linf": "d_non_robust", "control_rnr_linf": "control_rnr",
                    "d_rand_linf": "d_rand", "control_rand_linf": "control_rand", "d_det_linf": "d_det",
                    "control_det_linf": "control_det"}


def linf_table(results: dict) -> str:
    """Notebook 10's rows under L∞ (clean and robust accuracy on the same test images), each beside the
    L2 row it answers (its robust accuracy at ``eval_eps``, as the tables above give it)."""
    rows = [r for r in results.get("rows", []) if r.get("norm") == "linf"]
    if not rows:
        return ""
    cfg = results.get("config") or {}
    from .verdicts import linf_key

    eps, linf = _key(cfg.get("eval_eps", 0.25)), linf_key(results)
    if linf is None:
        return ""
    lines = [f"| under L∞ | clean [95% CI] | robust @ L∞ {float(linf) * 255:.3g}/255 [95% CI] | beside: L2 row | "
             f"its robust @ L2 {eps} [95% CI] |", "|---|---|---|---|---|"]
    order = {name: i for i, name in enumerate(LINF_COUNTERPART)}
    for dataset, _, group in sorted(grouped_rows({"rows": rows}), key=lambda g: order.get(g[0], len(order))):
        twin = LINF_COUNTERPART.get(dataset)
        l2 = [r for r in results.get("rows", []) if r.get("dataset") == twin and in_l2_tables(r)]
        lines.append(f"| {row_label(dataset)} | {cell(group, 'clean')} | {cell(group, linf)} | "
                     f"{row_label(twin) if twin else '–'} | {cell(l2, eps) if l2 else '–'} |")
    return "\n".join(lines) + "\n"


def beyond_claims_table(results: dict) -> str:
    """Notebook 10's claims (:func:`advlib.verdicts.beyond_claims`) as :func:`claims_table` shows the paper's."""
    from .verdicts import beyond_claims

    rows = beyond_claims(results)
    return _claims_markdown(rows) if rows else ""


def _short_commit(commit) -> str:
    if not commit:
        return "unknown"
    head, _, dirty = str(commit).partition("+")
    return head[:12] + (f"+{dirty}" if dirty else "")


def data_source_name(source) -> str:
    """How a table names the CIFAR-10 source: torchvision and the embedded sample by name, a user's
    file or folder as a local copy with its kind (a table never carries a machine's paths)."""
    src = str(source or "?")
    if src in ("torchvision", "sample", "?"):
        return {"torchvision": "torchvision's CIFAR-10", "sample": "the embedded sample"}.get(src, src)
    kind = "JPEGs" if "jpg" in src.lower() or "jpeg" in src.lower() else "images"
    return f"a local copy of CIFAR-10 ({kind}, {'zip' if src.lower().endswith('.zip') else 'folder'})"


def describe_run(results: dict) -> str:
    """One paragraph: profile, seeds, data, hardware, commit and the evaluation protocol."""
    cfg = results.get("config") or {}
    m = results.get("machine") or {}
    rows = results.get("rows", [])
    seeds = sorted({r.get("seed") for r in rows if r.get("seed") is not None})
    eval_n = sorted({r.get("clean_n") for r in _l2(results)["rows"] if r.get("clean_n")})  # not notebook 10's probes
    attack = next((r.get("attack_desc") for r in rows if r.get("attack_desc")), None)
    if not any(r.get("masks") for r in rows):
        return _describe_legacy(results, seeds)
    return (f"Profile `{results.get('profile')}`, seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(str(s) for s in seeds) or results.get('seed')}; CIFAR-10 source: "
            f"{data_source_name(cfg.get('cifar_source'))}; device {m.get('device', '?')} ({m.get('threads', '?')} "
            f"thread(s)), torch {m.get('torch', '?')}, commit {_short_commit(m.get('commit'))}. Clean and robust "
            f"accuracy on the same seeded, class-balanced {'/'.join(map(str, eval_n)) or '?'} test images; robust: "
            f"{attack or 'PGD'} (L2, float32), each larger radius attacking the images that survived the smaller "
            "ones. Several seeds: mean and 95% bootstrap interval over seeds and images; one seed: Wilson interval.")


def _describe_legacy(results: dict, seeds) -> str:
    """A run written before clean and robust accuracy came from the same images (and before the
    headline attack): clean on every test image, PGD alone on a seeded subset."""
    cfg, m, rows = results.get("config") or {}, results.get("machine") or {}, results.get("rows", [])
    clean_n = sorted({r.get("clean_n") for r in rows if r.get("clean_n")})
    eval_n = sorted({r.get("eval_n") for r in rows if r.get("eval_n")})
    return (f"Profile `{results.get('profile')}`, seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(str(s) for s in seeds) or results.get('seed')}; CIFAR-10 source: "
            f"{data_source_name(cfg.get('cifar_source'))}; device {m.get('device', '?')} ({m.get('threads', '?')} "
            f"thread(s)), torch {m.get('torch', '?')}, commit {_short_commit(m.get('commit'))}. Written before clean and "
            f"robust accuracy came from the same images: clean on {'/'.join(map(str, clean_n)) or '?'} test images, "
            f"robust by PGD-{cfg.get('eval_steps')} alone (cross-entropy) on a seeded class-balanced "
            f"{'/'.join(map(str, eval_n)) or '?'}; several seeds: mean ± std; AutoAttack beside PGD on the same images.")


def render(results: dict) -> str:
    """What ``python -m advlib table results.json`` prints (and the README quotes)."""
    parts = [describe_run(results), "", results_table(results), "The paper's claims, tested "
             "(each set against its matched control: the same training on the real images it was built from):", "",
             claims_table(results)]
    aa = autoattack_table(results)
    if aa:
        parts += ["Cross-check: the standard AutoAttack on part of the same images (the run's own seed):", "", aa]
    parts += ["Accuracy against the L2 radius (the run's own seed, headline attack):", "", sweep_table(results)]
    linf, beyond = linf_table(results), beyond_claims_table(results)
    if linf:
        parts += ["Notebook 10: the same models and sets under L∞ (headline attack, L∞), beside their L2 rows:", "", linf]
    if beyond:
        parts += ["Notebook 10's claims (L∞, synthesis, just bugs, leakage):", "", beyond]
    return "\n".join(parts)


__all__ = ["render", "results_table", "claims_table", "autoattack_table", "sweep_table", "describe_run", "linf_table",
           "beyond_claims_table", "LINF_COUNTERPART",
           "data_source_name", "cell", "pct", "ORDER"]
