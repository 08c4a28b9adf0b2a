"""Write notebooks 01, 02, 04, 05, 06 from the cell lists below (outputs stripped).

The notebooks are the product; this script only keeps their shared header cells identical.
Edit here, run `python tools/make_notebooks.py`, commit both. (03 is edited by hand.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "notebooks"

PARAMS = '''profile = "smoke"          # smoke | cpu | fast | paper (see advlib/config.py)
run_dir = "../runs/smoke"  # data, datasets, models, results and figures of this run
overrides = ""             # JSON object of profile-field overrides, e.g. {"epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures (the README figures come from the cpu run)'''

SETUP = '''import json
from IPython.display import Markdown, display
import advlib.config, advlib.pipeline as pl
from advlib import viz
from advlib.paths import RunPaths
from advlib.utils import set_seed

cfg = advlib.config.load(profile, overrides)
paths = RunPaths.of(run_dir)
fig_dir = figures_dir or paths.figures
set_seed(cfg.seed)'''


def notebook(title: str, intro: str, extra_params: str, cells: list[tuple[str, str]]):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = new_code_cell(PARAMS + ("\n" + extra_params if extra_params else ""))
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {title}\n\n{intro}"), params,
                new_markdown_cell("Settings come from the profile; the cell above only names it."),
                new_code_cell(SETUP)]
    for kind, text in cells:
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    return nb


NOTEBOOKS = {
    "01_download_data.ipynb": notebook(
        "1 · Data: CIFAR-10 and the authors' release",
        "CIFAR-10 comes from torchvision (downloaded into the run directory), a local archive or folder "
        "laid out `<split>/<class>/<image>`, or the small sample embedded in the package (profile field "
        "`cifar_source`). The authors' tarball is optional (`release`: download | a local path | skip).",
        "",
        [
            ("md", "## CIFAR-10"),
            ("code", 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                     'display(Markdown(pl.markdown_table([pl.summary_row("train", *train), pl.summary_row("test", *test)])))'),
            ("md", "## A look at the images"),
            ("code", 'fig = viz.image_grid(train[0][:32], train[1][:32], nrow=8, title=f"CIFAR-10 ({cfg.cifar_source})")\n'
                     'viz.save_figure(fig, "fig_cifar_grid", fig_dir)\nfig'),
            ("md", "## The authors' release (optional)\n\n2.5 GB, no published checksum: pass `release_sha256` "
                   "once you have verified a copy. Resumes an interrupted download."),
            ("code", 'released = pl.fetch_release(cfg, paths)\nprint(f"release: {cfg.release!r}; extracted: {sorted(released) or \'nothing\'}")'),
            ("md", "## What the run directory holds"),
            ("code", "display(Markdown(pl.markdown_table(pl.inventory(paths))))"),
        ]),
    "02_construct_datasets.ipynb": notebook(
        "2 · Build D_R, D_NR, D_rand and D_det (paper Section 3)",
        "Two source models — standard and L2-adversarially trained — then: **D_R / D_NR** match the "
        "penultimate representation of the robust / standard model starting from another training image; "
        "**D_rand / D_det** are targeted L2 PGD examples on the standard model toward a random class / "
        "(y+1) mod 10, relabelled with the target. Built in shards, so a killed run resumes.",
        'which = ""                 # comma-separated subset of d_robust,d_non_robust,d_rand,d_det; empty: the profile datasets',
        [
            ("md", "## Source models"),
            ("code", 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                     "sources = pl.train_source_models(cfg, paths, train, test)\n"
                     "display(Markdown(pl.markdown_table(pl.source_model_rows(cfg, sources, test))))"),
            ("md", "## Construct the datasets\n\n(Skipped when the profile uses the released sets.)"),
            ("code", 'metas = pl.construct_sets(cfg, paths, train, sources, which) if cfg.dataset_source == "constructed" else {}\n'
                     "display(Markdown(pl.markdown_table(pl.construction_rows(metas))))"),
            ("md", "## Matching loss (D_R, D_NR)"),
            ("code", 'fig = viz.construction_curves(metas)\nviz.save_figure(fig, "fig_construction", fig_dir)\nfig'),
        ]),
    "04_train.ipynb": notebook(
        "4 · Train a fresh model on each dataset",
        "Standard training (no adversary) on each constructed or released set, with the paper's recipe "
        "scaled by the profile: lr x0.1 for D_rand, no augmentation for D_det. Checkpoints resume.",
        'dataset = "all"            # one of d_robust,d_non_robust,d_rand,d_det, or "all" (every set present)\n'
        'source = ""                # constructed | released; empty: profile.dataset_source',
        [
            ("code", 'sets = pl.feature_sets(cfg, paths, source, only=dataset)\ntest = pl.cifar(cfg, paths, "test")\n'
                     'print({k: len(v[1]) for k, v in sets.items()} or "no datasets present: run notebooks 01-02 first")'),
            ("md", "## Training"),
            ("code", "histories = pl.train_on_sets(cfg, paths, sets, test)\n"
                     "display(Markdown(pl.markdown_table(pl.history_rows(histories))))"),
            ("md", "## Curves"),
            ("code", 'fig = viz.training_curves(histories)\nviz.save_figure(fig, "fig_training", fig_dir)\nfig'),
        ]),
    "05_evaluate.ipynb": notebook(
        "5 · Clean and L2-PGD accuracy on the real CIFAR-10 test set",
        "Every trained model in the run directory — the two source models and one per dataset — against "
        "L2 PGD (step 2.5·eps/steps, random start), eps = 0.25 headline plus a sweep. Writes `results.json`.",
        'source = ""                # constructed | released; empty: profile.dataset_source',
        [
            ("code", 'test = pl.cifar(cfg, paths, "test")\nresults = pl.evaluate_all(cfg, paths, test, source)'),
            ("md", "## Table (fractions; paper: ResNet-50 on the original CIFAR-10)"),
            ("code", "display(Markdown(pl.results_markdown(results)))"),
            ("md", "## Accuracy against eps"),
            ("code", 'fig = viz.accuracy_vs_eps(results)\nviz.save_figure(fig, "fig_accuracy_vs_eps", fig_dir)\nfig'),
        ]),
    "06_report.ipynb": notebook(
        "6 · Report: our numbers beside the paper's",
        "Reads `results.json` and writes `report.md` (table, settings, timings) and the summary figure.",
        "",
        [
            ("code", "results = pl.load_results(paths)\ndisplay(Markdown(pl.results_markdown(results)))"),
            ("code", 'fig = viz.results_bars(results)\nviz.save_figure(fig, "fig_results_vs_paper", fig_dir)\nfig'),
            ("code", 'report = pl.write_report(paths, results)\nprint(f"wrote {report}")'),
        ]),
}


def main():
    OUT.mkdir(exist_ok=True)
    for name, nb in NOTEBOOKS.items():
        nbformat.validate(nb)
        nbformat.write(nb, OUT / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
