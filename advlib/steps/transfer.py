"""Notebook 08, the paper's Figure 3: models of several architectures trained on the same D_det /
D_rand, against the rate at which the source's targeted examples transfer to each architecture
→ ``transfer.json`` (pieces: :mod:`advlib.transfer`)."""

from __future__ import annotations

from .. import data
from .. import evaluate as ev
from .. import transfer as transfer_study
from ..construct import source_role
from . import base
from .base import MissingInput, Run, setup, targeted_source  # noqa: F401 (the names notebook cells call through this module)

ORIGIN = "constructed"
CHANCE = 0.10


def examples(run: Run, source) -> dict:
    """Targeted L2 PGD (``transfer_eps``, ``target_steps`` of ``target_step_size``, t = y + 1) on the
    model that built D_det for ``transfer_n`` seeded class-balanced test images, with the source's
    own (white-box) hit rate."""
    cfg = run.cfg
    adv = transfer_study.targeted_examples(source, *run.test, n=cfg.transfer_n, eps=cfg.transfer_eps,
                                           steps=cfg.target_steps, step_size=cfg.target_step_size,
                                           restarts=cfg.target_restarts, seed=cfg.seed,
                                           batch_size=cfg.construct_batch, amp=cfg.amp)
    adv["whitebox_rate"] = transfer_study.transfer_rate(source, adv, cfg.eval_batch)
    return adv


def whitebox_line(adv: dict) -> str:
    return f"white-box hit rate of the source model: {base.pct(adv['whitebox_rate'])} on {adv['n']} test images"


def standard_seed(run: Run, arch: str) -> int:
    """The seed of the standard model of ``arch``: the source model's own architecture gets
    seed + 1, so that its transfer rate is a transfer rate and not the source's white-box one."""
    return run.cfg.seed + 1 if arch == run.cfg.arch else run.cfg.seed


def models(run: Run, progress: bool = True) -> dict[str, dict]:
    """For each architecture of ``transfer_archs``: models trained on the run's D_det and D_rand (the
    profile's own architecture reuses notebook 04's models) and a standard model trained on the
    training pool (``models/cifar10/standard-<arch>``, the recipe of the targeted sets' source).
    {arch: {"d_det": model, "d_rand": model | None, "standard": model, "histories": {...}, "dirs": {...}}}."""
    cfg, paths = run.cfg, run.paths
    sets = {name: data.load_feature_dataset(paths.dataset(name, ORIGIN)) for name in ("d_det", "d_rand")
            if name in paths.available(ORIGIN)}
    if "d_det" not in sets:
        raise MissingInput(f"{paths.dataset('d_det', ORIGIN)}: no constructed D_det in this run; run notebook 02 "
                                "(with d_det among the profile's datasets) first")
    out = {}
    for arch in cfg.transfer_arch_list:
        entry = {"histories": {}, "dirs": {}, "d_rand": None}
        for name, (x, y) in sets.items():
            folder = paths.model(name if arch == cfg.arch else f"{name}@{arch}", ORIGIN)
            entry[name], entry["histories"][f"{name}@{arch}"] = base.train_or_load(
                run, base.recipe(run, "dataset", name, arch=arch), x, y, folder, origin=ORIGIN, dataset=name,
                progress=progress)
            entry["dirs"][name] = folder
        folder = paths.model(f"standard-{arch}", "cifar10")
        scfg = base.recipe(run, source_role("d_det", cfg), arch=arch, seed=standard_seed(run, arch))
        entry["standard"], entry["histories"][f"standard-{arch}"] = base.train_or_load(
            run, scfg, *run.train, folder, origin="cifar10", dataset="cifar10", progress=progress)
        entry["dirs"]["standard"] = folder
        entry["standard_seed"] = scfg.seed
        out[arch] = entry
    return out


def model_table(trained: dict):
    """Training of every transfer model."""
    return base.show(base.markdown_table(base.history_rows({k: h for m in trained.values() for k, h in m["histories"].items()})))


def results(run: Run, trained: dict, adv: dict, source=None) -> dict:
    """Accuracy of each architecture's D_det / D_rand model on the true test labels and the rate at
    which the source's targeted examples transfer to its standard model → ``transfer.json``
    (atomic), with the fitted lines; returns its contents."""
    from dataclasses import asdict

    from ..construct import model_fingerprint
    from ..models import count_parameters
    from ..recipes import recipe_for
    from ..utils import machine_record

    cfg, paths, test = run.cfg, run.paths, run.test

    def rel(p):
        return str(p.relative_to(paths.root)) if p.is_relative_to(paths.root) else str(p)

    rows = []
    for arch, m in trained.items():
        rows.append(transfer_study.row(
            arch, params=count_parameters(m["standard"]),
            ddet_acc=ev.accuracy(m["d_det"], *test, batch_size=cfg.eval_batch),
            drand_acc=ev.accuracy(m["d_rand"], *test, batch_size=cfg.eval_batch) if m.get("d_rand") is not None else None,
            rate=transfer_study.transfer_rate(m["standard"], adv, cfg.eval_batch), n_test=len(test[1]),
            n_attacked=adv["n"], eps=cfg.transfer_eps,
            standard_acc=ev.accuracy(m["standard"], *test, batch_size=cfg.eval_batch),
            standard_seed=m.get("standard_seed"), model_dirs={k: rel(v) for k, v in m.get("dirs", {}).items()}))
    from ..tables import data_source_name

    settings = {"transfer_eps": cfg.transfer_eps, "transfer_n": adv["n"], "steps": cfg.target_steps,
                "step_size": cfg.target_step_size, "restarts": cfg.target_restarts,
                "target_rule": transfer_study.TARGET_RULE, "seed": cfg.seed, "n_test": len(test[1]),
                "cifar_source": data_source_name(cfg.cifar_source),
                "recipes": {"d_det": asdict(cfg.sets.det), "d_rand": asdict(cfg.sets.rand),
                            "standard": asdict(recipe_for(cfg, source_role("d_det", cfg)))}}
    src = {"arch": cfg.arch, "model_dir": rel(paths.source_model(source_role("d_det", cfg))),
           "whitebox_rate": adv.get("whitebox_rate")}
    if source is not None:
        src["fingerprint"] = model_fingerprint(source)
    result = transfer_study.summarize(rows, whitebox_rate=adv.get("whitebox_rate"), settings=settings, source=src)
    result.update(profile=cfg.name, machine=machine_record(run.device))
    transfer_study.write_transfer(paths.root / transfer_study.FILENAME, result)
    return result


def table(result: dict):
    rows = [{"arch": r["arch"], "params": f"{r['params']:,}", "standard model acc": base.pct(r.get("standard_acc")),
             f"transfer rate (ε={r['transfer_eps']}, n={r['transfer_n']})": base.pct(r.get("transfer_rate")),
             "trained on D_det: test acc": base.pct(r.get("ddet_acc")),
             "trained on D_rand: test acc": base.pct(r.get("drand_acc"))} for r in result.get("rows", [])]
    return base.show(base.markdown_table(rows))


def figure(run: Run, result: dict):
    from .. import viz

    return base.save(run, viz.transfer_scatter(result), "fig_transfer")


def _transfer_text(result: dict, profile: str | None = None) -> str:
    """The paper's Section 3.3 claim checked on transfer.json (notebook 08)."""
    rows = [r for r in (result or {}).get("rows", []) if r.get("transfer_rate") is not None]
    if not rows:
        return "No transfer result yet: run the steps above."
    out = [base.smoke_note(profile)] if profile == "smoke" else []
    fit = result.get("fit") or {}
    wb = fit.get("source_whitebox_rate")
    lo, hi = min(rows, key=lambda r: r["transfer_rate"]), max(rows, key=lambda r: r["transfer_rate"])
    out.append(f"- **Transfer**: the source model's targeted examples (L2 ε = {rows[0].get('transfer_eps')}, "
               f"{rows[0].get('transfer_n')} test images) fool the source itself {base.pct(wb)} of the time (white-box); "
               f"standard models of the {len(rows)} architectures follow them from {base.pct(lo['transfer_rate'])} "
               f"({lo['arch']}) to {base.pct(hi['transfer_rate'])} ({hi['arch']}); a model the examples did not affect "
               "would land on the target only through its ordinary errors (about (1 − accuracy) / 9).")
    acc = ", ".join(f"{r['arch']} {base.pct(r.get('ddet_acc'))}" for r in rows)
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


def conclusions(run: Run, result: dict):
    """The paper's Section 3.3 claim checked on transfer.json."""
    return base.show(_transfer_text(result, run.cfg.name))


__all__ = ["setup", "targeted_source", "examples", "whitebox_line", "standard_seed", "models", "model_table", "results", "table", "figure",
           "conclusions"]
