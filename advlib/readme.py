"""Generated blocks of the project's README: every number there comes from a committed file.

A block is ``<!-- advlib <kind> <path> -->`` ... ``<!-- end -->``; its body is rebuilt from the
file at ``<path>`` (relative to the repository root) by the renderer of ``<kind>``:

- ``table``: a run's tables, exactly ``python -m advlib table <results.json>``;
- ``levers``: the CPU levers table from ``benchmarks/cpu_levers.py``'s JSON;
- ``timings``: a run's wall time per notebook (``timings.json``);
- ``ddet``: the D_det recipe search (``benchmarks/ddet_search.py``);
- ``pgd``, ``construct``, ``loader``: the ratio benchmarks' JSONs;
- ``transfer``: a run's transfer.json (notebook 08);
- ``invert``: matching distance against steps (``benchmarks/invert_schedule.py``);
- ``goals``: a cpu run's results.json (and timings.json beside it) against the laptop-scale goals;
- ``controls``: a run's control rows (notebook 07) beside the published numbers of the same controls;
- ``sets``: training recipes on one constructed set (``benchmarks/set_train_levers.py``);
- ``target``: the source model of D_rand / D_det by recipe (``benchmarks/target_source.py``);
- ``eval``: the evaluation benchmark, full sweep vs early stop and nested radii (``benchmarks/bench_eval.py``).

``regenerate(text, root)`` returns the README with every block rebuilt; the test suite checks
that the committed README equals it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

BLOCK = re.compile(r"(<!-- advlib (\w+) (\S+) -->\n)(.*?)(<!-- end -->)", re.S)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def levers_table(data: dict) -> str:
    """One row per measured setting: what changed, clean, PGD-20 robust at 0.25 and 0.5, train accuracy."""
    lines = ["| setting | model | train acc | clean | PGD-20 @ 0.25 | @ 0.5 | train time |",
             "|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        s = r.get("setting", {})
        what = r.get("what") or r["name"]
        lines.append(f"| {what} | {s.get('arch')}, {s.get('epochs')} ep, n={s.get('n')} | {_pct(r.get('train_acc'))} | "
                     f"{_pct(r.get('clean_acc'))} | {_pct(r.get('pgd20_0.25'))} | {_pct(r.get('pgd20_0.5'))} | "
                     f"{r.get('train_s', 0) / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def transfer_table(data: dict) -> str:
    rows = data.get("rows", [])
    lines = ["| architecture | parameters | transfer rate of the source's targeted examples | D_det model: test acc | "
             "D_rand model: test acc |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.get('arch')} | {r.get('params', 0):,} | {_pct(r.get('transfer_rate'))} | "
                     f"{_pct(r.get('ddet_acc'))} | {_pct(r.get('drand_acc'))} |")
    fit = data.get("fit") or {}
    for key, label in (("ddet", "D_det"), ("drand", "D_rand")):
        f = fit.get(key) or {}
        if f:
            lines.append("")
            lines.append(f"{label} accuracy vs transfer rate: slope {f.get('slope', float('nan')):.2f}, "
                         f"Pearson r = {f.get('r', float('nan')):.2f} over {len(rows)} architectures.")
    return "\n".join(lines) + "\n"


def timings_table(data: dict) -> str:
    """Wall time per notebook and the totals of 01-06 (the paper's table) and 07-09 (beyond it)."""
    lines = ["| notebook | wall time |", "|---|---|"]
    lines += [f"| {name.removesuffix('.ipynb')} | {_minutes(sec)} |" for name, sec in data.items()]
    main, beyond = _split_timings(data)
    lines.append(f"| **01–06** | **{_minutes(main)}** |")
    if beyond:
        lines.append(f"| **07–09** | **{_minutes(beyond)}** |")
    return "\n".join(lines) + "\n"


BEYOND_PAPER = ("07", "08", "09")  # notebook prefixes of the studies beyond the paper's table


def _split_timings(timings: dict) -> tuple[float, float]:
    """Seconds of notebooks 01-06 (the paper's table) and of 07-09 (beyond it)."""
    beyond = sum(sec for name, sec in timings.items() if name[:2] in BEYOND_PAPER)
    return sum(timings.values()) - beyond, beyond


def _minutes(sec: float) -> str:
    return f"{sec:.0f} s" if sec < 90 else f"{int(sec // 60)} min {int(round(sec % 60)):02d} s"


def ddet_table(data: dict) -> str:
    lines = ["| targeted attack | rows kept | target hit rate | D_det model: true labels y | vs y+1 |",
             "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        s = dict(kv.split("=") for kv in r["setting"].split(","))
        kept = "hits only" if s.get("keep") == "1" else "all"
        lines.append(f"| eps {s.get('eps')}, {s.get('steps')} steps | {kept} ({r['n_used']:,}) | "
                     f"{_pct(r['hit_rate'])} | {_pct(r['test_acc_true_labels'])} | {_pct(r['test_acc_vs_y_plus_1'])} |")
    return "\n".join(lines) + "\n"


def pgd_table(data: dict) -> str:
    m = data.get("machine", {})
    lo, hi = data.get("speed_ratio_range") or (float("nan"), float("nan"))
    return ("| attack | img/s (best of %d) | robust acc | ratio of medians | range of paired ratios | best-of ratio |\n"
            "|---|---|---|---|---|---|\n"
            "| `advlib.pgd` | %.1f | %s | **%.2fx** | %.2f–%.2fx | %.2fx |\n"
            "| torchattacks `PGDL2` | %.1f | %s | 1 | 1 | 1 |\n\n"
            "L2 PGD, eps %s, %d steps, batch %d, `%s` model, %s, %s thread(s), load average %s at the start.\n"
            % (data["repeats"], data["advlib_img_per_s"], _pct(data["robust_acc_advlib"]), data["speed_ratio_median"],
               lo, hi, data["speed_ratio"], data["torchattacks_img_per_s"], _pct(data["robust_acc_torchattacks"]),
               data["eps"], data["steps"], data["batch"], data["arch"], m.get("device"), m.get("torch_threads"),
               ", ".join(f"{v:.1f}" for v in m.get("load_avg", [])) or "?"))


def construct_table(data: dict) -> str:
    lines = ["| model | task | img·steps/s advlib | bare loop | ratio |", "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        lines.append(f"| `{r['arch']}` | {r['task']} (batch {r['batch']}, {r['steps']} steps) | "
                     f"{r['img_steps_per_s']:,.0f} | {r['peer_img_per_s'] * r['steps']:,.0f} | **{r['ratio']:.2f}x** |")
    return "\n".join(lines) + "\n"


def invert_table(data: dict) -> str:
    """One row per (source model, matching setting): final relative feature distance, how far the
    image moved from its start image, wall time for ``n`` images."""
    lines = ["| representation of | steps × step length (schedule) | rel. feature distance | moved from start (rel.) | "
             f"time for {data.get('n')} images |", "|---|---|---|---|---|"]
    for r in data.get("rows", []):
        what = "robust model (D_R)" if r["model"] == "robust" else "standard model (D_NR)"
        lines.append(f"| {what} | {r['steps']} × {r['step']} ({r['schedule']}) | {r['final_rel_distance']:.3f} | "
                     f"{r['moved_from_start_rel']:.2f} | {r['seconds']:.0f} s |")
    return "\n".join(lines) + "\n"


def sets_table(data: dict) -> str:
    """One row per training recipe on a constructed set: accuracy on the true test labels (and
    PGD-20 robust accuracy at 0.25 where the file records it)."""
    robust = any("pgd20_0.25" in r for r in data.get("rows", []))
    lines = ["| set | recipe (changed from the profile's) | final train acc | true-label test acc | "
             + ("PGD-20 @ 0.25 | " if robust else "") + "time |",
             "|---|---|---|---|" + ("---|" if robust else "") + "---|"]
    for r in data.get("rows", []):
        what = ", ".join(f"{k} {v if v != '' else 'none'}" for k, v in r["setting"].items()) or "the profile's"
        lines.append(f"| {r['set']} | {what} | {_pct(r.get('final_train_acc'))} | {_pct(r['true_test_acc'])} | "
                     + (f"{_pct(r.get('pgd20_0.25'))} | " if robust else "") + f"{_minutes(r['seconds'])} |")
    return "\n".join(lines) + "\n"


def target_table(data: dict) -> str:
    """One row per (source recipe, set): the source's clean / robust accuracy, the targeted
    attack's hit rate on it, and the true-label accuracy of models trained on the set (mean ± std)."""
    lines = ["| source model recipe | source clean | source PGD-20 @ 0.25 | set | target hit rate | "
             "true-label test acc (seeds) |", "|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        rc = r["recipe"]
        what = f"{rc['epochs']} ep, augmentation {rc['augment'] or 'none'}, wd {rc['weight_decay']:g}"
        for name, s in r["sets"].items():
            accs = ", ".join(f"{100 * a:.1f}" for a in s["true_test_acc"])
            lines.append(f"| {what} | {_pct(r['source_clean_acc'])} | {_pct(r['source_pgd20_0.25_n500'])} | {name} | "
                         f"{_pct(s['hit_rate'])} | **{100 * s['mean']:.1f}% ± {100 * s['std']:.1f}** ({accs}) |")
    return "\n".join(lines) + "\n"


def eval_table(data: dict) -> str:
    """The evaluation benchmark: the eps sweep attacked in full vs with early stop and nested radii."""
    radii = data["rows"][0]["radii"] if data.get("rows") else []
    lines = ["| model | full sweep | advlib | speed-up | " + " | ".join(f"@ {e:g} full / advlib" for e in radii) + " |",
             "|---|---|---|---|" + "---|" * len(radii)]
    for r in data.get("rows", []):
        accs = " | ".join(f"{_pct(r['full_acc'][k])} / {_pct(r['advlib_acc'][k])}" for k in r["full_acc"])
        lines.append(f"| {r['model']} | {r['full_s']:.1f} s | {r['advlib_s']:.1f} s | **{r['speedup']:.2f}x** | {accs} |")
    m = data.get("machine", {})
    lines += ["", f"PGD-{data.get('steps')} on {data.get('eval_n')} test images, medians of {data.get('repeats')} "
              f"alternating repeats, {m.get('device')}, {m.get('torch_threads')} thread(s), load average "
              f"{', '.join(f'{v:.1f}' for v in m.get('load_avg', [])) or '?'} at the end."]
    return "\n".join(lines) + "\n"


def _mean_over_seeds(rows: list[dict], dataset: str, value) -> float | None:
    vals = [value(r) for r in rows if r["dataset"] == dataset]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def goals_table(results: dict, timings: dict | None, eps: str = "0.25") -> str:
    """The laptop-scale goals, each with this run's value (mean over seeds) and whether it is met."""
    rows = results.get("rows", [])

    def rob(name):
        return _mean_over_seeds(rows, name, lambda r: (r.get("robust_acc") or {}).get(eps))

    def clean(name):
        return _mean_over_seeds(rows, name, lambda r: r.get("clean_acc"))

    std, dr, dnr = rob("standard"), rob("d_robust"), rob("d_non_robust")
    lines = ["| measure | this run | goal | met |", "|---|---|---|---|"]

    def add(what, shown, goal, ok):
        lines.append(f"| {what} | {shown} | {goal} | {'yes' if ok else '**no**'} |")

    def pts(v):
        return f"{100 * v:+.1f} pts"

    if timings:
        main, _ = _split_timings(timings)
        add("wall time, notebooks 01–06", _minutes(main), "≤ 60 min", main <= 3600)
    if std is not None:
        add(f"standard model, L2 PGD robust @ {eps}", _pct(std), "≤ 10%", std <= 0.10)
    if None not in (dr, dnr):
        add(f"D_R robust − D_NR robust @ {eps}", pts(dr - dnr), "≥ +15 pts (stretch +25)", dr - dnr >= 0.15)
    if None not in (dr, std):
        add(f"D_R robust − standard robust @ {eps}", pts(dr - std), "> 0", dr - std > 0)
    if None not in (dnr, std):
        add(f"D_NR robust @ {eps}", f"{_pct(dnr)} (standard: {_pct(std)})", "≤ 10% and < half the standard's",
            dnr <= 0.10 and dnr < std / 2)
    for name, label in (("d_rand", "D_rand"), ("d_det", "D_det")):
        c = clean(name)
        if c is not None:
            add(f"{label} clean accuracy on the true test set", _pct(c), "≥ 30%", c >= 0.30)
    return "\n".join(lines) + "\n"


CONTROL_ROWS = ("d_rand", "d_det", "d_other", "d_rand_synthetic", "d_det_synthetic", "relabel",
                "d_rand_t_ne_y", "d_rand_hits", "d_det_hits")


def controls_table(results: dict) -> str:
    """Clean accuracy on the true test labels of the sets of notebook 07 (ours, mean over the seeds
    present) beside the published accuracy of the same control (theirs, full CIFAR-10)."""
    from .controls import REFERENCE_SOURCES, REFERENCES
    from .results import row_label
    from .tables import cell

    rows = results.get("rows", [])
    lines = ["| set | ours: clean acc (true labels) | n train | theirs (published) |", "|---|---|---|---|"]
    for name in CONTROL_ROWS:
        mine = [r for r in rows if r["dataset"] == name]
        if not mine:
            continue
        ours = cell(mine, "clean")
        refs = REFERENCES.get(name, {})
        theirs = "; ".join(f"{_pct(v)} ({REFERENCE_SOURCES[k]})" for k, v in refs.items()) or "–"
        n = mine[0].get("train_n")
        lines.append(f"| {row_label(name)} | {ours} | {n if n is None else f'{n:,}'} | {theirs} |")
    return "\n".join(lines) + "\n"


def render(kind: str, path: Path) -> str:
    if kind == "table":
        from .results import load_results
        from .tables import render as render_results

        return render_results(load_results(path))
    data = json.loads(path.read_text())
    if kind == "controls":
        return controls_table(data)
    if kind == "goals":
        timings = path.parent / "timings.json"
        return goals_table(data, json.loads(timings.read_text()) if timings.is_file() else None)
    if kind == "levers":
        return levers_table(data)
    if kind == "transfer":
        return transfer_table(data)
    renderers = {"timings": timings_table, "ddet": ddet_table, "pgd": pgd_table, "construct": construct_table,
                 "invert": invert_table, "sets": sets_table, "target": target_table, "eval": eval_table}
    if kind in renderers:
        return renderers[kind](data)
    raise ValueError(f"unknown README block kind {kind!r} (table | levers | transfer | {' | '.join(renderers)})")


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(kind, path, body) of every generated block in ``text``."""
    return [(m.group(2), m.group(3), m.group(4)) for m in BLOCK.finditer(text)]


def regenerate(text: str, root: Path) -> str:
    def sub(m):
        kind, rel = m.group(2), m.group(3)
        path = Path(root) / rel
        if not path.is_file():
            raise FileNotFoundError(f"README block '{kind} {rel}': {path} is not in the repository")
        return m.group(1) + render(kind, path) + m.group(5)

    return BLOCK.sub(sub, text)


__all__ = ["regenerate", "blocks", "render", "levers_table", "transfer_table", "timings_table", "ddet_table",
           "pgd_table", "construct_table", "invert_table", "sets_table", "target_table",
           "goals_table", "controls_table"]
