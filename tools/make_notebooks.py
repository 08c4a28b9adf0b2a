"""Write notebooks 01-08 from the cell lists below (outputs stripped).

The notebooks are the product; this script keeps their shared header cells identical and their
code cells thin (1-5 lines, each calling advlib). Edit here, run
`.venv/bin/python tools/make_notebooks.py`, commit both. (09 is written by tools/make_nb09.py.)

Every notebook: a question, the method in the paper's terms (with equations), what to look for,
one `parameters` cell of plain scalars, then one markdown header per step, and a closing
"What this run shows" built from the run's own numbers by advlib.narrate (never typed in).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "notebooks"

PARAMS = '''profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile-field overrides, e.g. {"epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures'''

SETUP = '''from IPython.display import Markdown, display
import advlib.pipeline as pl
from advlib import narrate, viz

cfg, paths, fig_dir = pl.setup(profile, run_dir, overrides, figures_dir)'''

PAPER = "Ilyas et al., *Adversarial Examples Are Not Bugs, They Are Features*, NeurIPS 2019 ([arXiv 1905.02175](https://arxiv.org/abs/1905.02175))"


def notebook(title: str, intro: str, extra_params: str, cells: list[tuple[str, str]]):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = new_code_cell(PARAMS + ("\n" + extra_params if extra_params else ""))
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {title}\n\n{intro}"), params,
                new_markdown_cell("The cell above only names things; every size, step count and learning rate "
                                  "comes from the profile (`python -m advlib profiles` lists them)."),
                new_code_cell(SETUP)]
    for kind, text in cells:
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    stem = title.split("·")[0].strip() or "nb"
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating an unchanged notebook changes nothing
        cell.id = f"nb{stem}-{i:02d}"
    return nb


NB01 = notebook(
    "1 · Data: CIFAR-10 and the authors' release",
    f"""**The question.** {PAPER} claim that adversarial examples exist because image datasets contain
*non-robust features*: patterns that predict the label well yet flip under tiny perturbations. To
test it we need the data the features live in: CIFAR-10, and optionally the four datasets the
authors released (`d_robust_CIFAR`, `d_non_robust_CIFAR`, `drand_CIFAR`, `ddet_CIFAR`).

**Definitions (paper Section 2).** For a binary task with labels $y \\in \\{{-1,+1\\}}$, a feature is a
function $f: \\mathcal{{X}} \\to \\mathbb{{R}}$. It is *ρ-useful* if $\\mathbb{{E}}[y\\,f(x)] \\ge \\rho$;
*γ-robustly useful* if it stays useful under the worst perturbation in a set Δ(x):
$\\mathbb{{E}}[\\inf_{{\\delta \\in \\Delta(x)}} y\\,f(x+\\delta)] \\ge \\gamma$; a *useful non-robust feature* is
ρ-useful but not γ-robustly useful for any γ ≥ 0. Here Δ(x) is an L2 ball of radius ε around x.

**What to look for.** The split sizes and class balance; where the data came from (`cifar_source`).""",
    "",
    [
        ("md", "## CIFAR-10\n\nThe profile's class-balanced subset (seeded), from torchvision, a local archive, or the "
               "sample embedded in the package."),
        ("code", 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                 'display(Markdown(pl.markdown_table([pl.summary_row("train", *train), pl.summary_row("test", *test)])))'),
        ("md", "## A look at the images"),
        ("code", 'fig = viz.image_grid(train[0][:32], train[1][:32], nrow=8, title=f"CIFAR-10 ({cfg.cifar_source})")\n'
                 'viz.save_figure(fig, "fig_cifar_grid", fig_dir)\nfig'),
        ("md", "## The authors' release (optional)\n\n2.5 GB with no published checksum (pass `release_sha256` "
               "once you have verified a copy); an interrupted download resumes, members are checked before "
               "anything is written."),
        ("code", "released = pl.fetch_release(cfg, paths)"),
        ("md", "## What the run directory holds"),
        ("code", "display(Markdown(pl.markdown_table(pl.inventory(paths))))"),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.data_summary(cfg.name, train, test, released)))"),
    ])

NB02 = notebook(
    "2 · Build D_R, D_NR, D_rand and D_det (paper Section 3)",
    """**The question.** If non-robust features are real, we can *separate* them: build one training set
whose images carry only robust features and another whose images carry only non-robust ones, and
build training sets whose labels are explained *only* by non-robust features.

**Two source models.** A standard model $C$ (trained on clean CIFAR-10) and an L2-adversarially trained
model $C_R$ ($\\min_\\theta \\mathbb{E}\\,\\max_{\\|\\delta\\|_2\\le\\varepsilon} \\ell(\\theta; x+\\delta, y)$, ε = 0.5 in the paper).
Let $g$ be a model's penultimate-layer representation.

**D_R and D_NR (Section 3.1).** For each training pair $(x, y)$, start from a *different*, random training
image $x_0$ and solve, by normalized-gradient L2 descent,
$$x_r = \\arg\\min_{z} \\; \\| g(z) - g(x) \\|_2 ,$$
keeping the label $y$. With $g$ from the robust model the result carries (only) the features the robust
model uses: **D_R**. With $g$ from the standard model: **D_NR**, whose images look like $x_0$ but whose
label is $y$ — the features that make it a $y$ are invisible to us.

**D_rand and D_det (Section 3.2).** A targeted L2 attack on the standard model,
$x_{adv} = \\arg\\min_{\\|x' - x\\|_2 \\le \\varepsilon} \\ell(C(x'), t)$, relabelled with the target $t$: random
for **D_rand** ($t$ uniform over the classes, so ≈10% of targets equal $y$), $t = (y+1) \\bmod 10$ for
**D_det**. To a human every D_det label is wrong; only the planted non-robust features agree with it.
A profile may give these two sets a standard model of their own (`target_source_epochs` > 0: the `cpu`
profile trains it with augmentation and weight decay, as the paper's standard model was), because a small
network fitted hard enough to be non-robust plants perturbations that teach their labels less well.

**What to look for.** The source models' accuracies (the robust one should keep far more accuracy under
attack); for D_R/D_NR how close the matched representations get; for D_rand/D_det how often the attack
reaches its target (a miss keeps a wrong label on an unchanged image).""",
    'which = ""                 # comma-separated subset of d_robust,d_non_robust,d_rand,d_det; empty: the profile datasets',
    [
        ("md", "## Source models\n\n(Not needed, and not trained, when the profile uses the released sets.)"),
        ("code", 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                 "sources = pl.train_source_models(cfg, paths, train, test)\n"
                 "source_rows = pl.source_model_rows(cfg, sources, test)\n"
                 "display(Markdown(pl.markdown_table(source_rows)))"),
        ("md", "## Construct the datasets\n\nBuilt in shards written atomically, so a killed run resumes where it "
               "stopped and produces the same tensors."),
        ("code", "metas = pl.construct_sets(cfg, paths, train, sources, which)\n"
                 "display(Markdown(pl.markdown_table(pl.construction_rows(metas))))"),
        ("md", "## Matching loss (D_R, D_NR)\n\nMean $\\|g(x_r) - g(x)\\|_2$ against the descent step."),
        ("code", 'fig = viz.construction_curves(metas)\nviz.save_figure(fig, "fig_construction", fig_dir)\nfig'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.source_models(cfg.name, source_rows) + '\\n\\n' + narrate.construction(metas)))"),
    ])

NB03_INTRO = """**The question.** What do robust and non-robust features look like? The paper's Figure 2 shows
D_R images that look like their label and D_NR images that look like something else entirely.

Each constructed image was made from one training image (its *original*, linked through
`source_indices` in the set's `meta.json`): **D_R / D_NR** match the penultimate representation of that
original under the robust / standard model, starting from another image (the *start image*, shown
beside it so you can judge how much of it remains); **D_rand / D_det** are small targeted L2
perturbations of the original, relabelled with the target.

**What to look for.** D_R images should take on visible traits of their label; D_NR images should still
look like their start image. The D_rand/D_det perturbations should be invisible at their true scale; where
in frequency they live is in the spectra."""

NB03 = notebook(
    "3 · Look at the datasets: D_R, D_NR, D_rand, D_det beside the originals",
    NB03_INTRO,
    'source = ""                # constructed | released; empty: profile.dataset_source',
    [
        ("md", "## Originals and the sets present\n\nThe originals are the run's own training images (same "
               "`cifar_source`, `n_train`, `seed`), so `source_indices` point into them."),
        ("code", "x0, y0 = pl.cifar(cfg, paths, \"train\")\nsets = pl.visual_sets(cfg, paths, source)\n"
                 "print(pl.describe_sets(sets, source))"),
        ("md", "## Side by side\n\nOne row per class: the original, then the image each set built from it (\"→\" "
               "gives the set's label; for D_det it is the next class). For D_R / D_NR the start image the descent "
               "began from is shown beside the result."),
        ("code", 'fig = viz.side_by_side_for(x0, y0, sets)\nviz.save_figure(fig, "fig_side_by_side", fig_dir)\nfig'),
        ("md", "## Class means\n\nThe mean image of each class. D_rand and D_det are labelled by their *target*, so "
               "if their class means look alike (and unlike CIFAR-10's), the label carries no visible signal: "
               "whatever a model learns from them is in the non-robust features."),
        ("code", 'fig = viz.class_means({"CIFAR-10": (x0, y0), **sets})\nviz.save_figure(fig, "fig_class_means", fig_dir)\nfig'),
        ("md", "## Perturbations of D_rand and D_det\n\nOriginal, adversarial image, and the difference magnified "
               "to the full range (the factor is in the row title; the L2 norm above each column)."),
        ("code", "for name, fig in viz.perturbation_figures(sets, (x0, y0)).items():\n"
                 '    viz.save_figure(fig, f"fig_perturbations_{name}", fig_dir)\n    display(fig)'),
        ("md", "## Frequency content: do non-robust features live in high frequencies?\n\nRadially averaged power "
               "spectra (log-log), each set's power relative to CIFAR-10's, and the spectrum of the D_rand / D_det "
               "perturbations themselves (normalized; flat = white noise, the dashed line = natural images)."),
        ("code", 'fig = viz.spectra_for(x0, sets)\nviz.save_figure(fig, "fig_spectra", fig_dir)\nfig'),
        ("md", "## Pixel statistics\n\nHistograms of pixel values and per-channel mean / std: the constructed sets "
               "should look like natural images at this level, or a model could tell them apart trivially."),
        ("code", 'fig = viz.pixel_stats_figure({"CIFAR-10": x0, **{n: s.images for n, s in sets.items()}})\n'
                 'viz.save_figure(fig, "fig_pixel_stats", fig_dir)\nfig'),
        ("md", "## Explorer\n\nPick a dataset and a class, slide through its images: the image, its original (or, "
               "for D_R / D_NR, its start image) and their difference, and the predictions of every model trained "
               "so far in this run on both."),
        ("code", "from advlib import widgets\nwidgets.Explorer(sets, (x0, y0), models=widgets.load_models(paths, source or cfg.dataset_source))"),
    ])

NB04 = notebook(
    "4 · Train a fresh model on each dataset",
    """**The question.** Does a model trained *by standard training* on D_R become robust, and on D_NR
non-robust? Do models trained on D_rand / D_det — whose labels look wrong — generalize to the real
test set?

**Method.** Plain empirical risk minimization, $\\min_\\theta \\sum_i \\ell(\\theta; x_i, y_i)$ over the
constructed set, with the paper's recipe scaled by the profile (lr ×0.1 for D_rand, no augmentation for
D_det), and the real CIFAR-10 test set watched after every epoch. Each model is keyed by what it learned
from: the sha256 of its training tensors is stored with the checkpoint, and a model trained on other
data is set aside and retrained, never reused. With `train_seeds` the training is repeated per seed.

**What to look for.** Training accuracy on D_rand / D_det (the model can fit the target labels) and test
accuracy above chance (10%).""",
    'dataset = "all"            # one of d_robust,d_non_robust,d_rand,d_det, or all (every set present)\n'
    'source = ""                # constructed | released; empty: profile.dataset_source',
    [
        ("md", "## The datasets present"),
        ("code", 'sets = pl.feature_sets(cfg, paths, source, only=dataset)\ntest = pl.cifar(cfg, paths, "test")\n'
                 "print(pl.describe_sets(sets, source or cfg.dataset_source))"),
        ("md", "## Training"),
        ("code", "histories = pl.train_on_sets(cfg, paths, sets, test, source)\n"
                 "histories.update(pl.train_standard_seeds(cfg, paths, pl.cifar(cfg, paths, \"train\"), test))\n"
                 "display(Markdown(pl.markdown_table(pl.history_rows(histories))))"),
        ("md", "## Curves"),
        ("code", 'fig = viz.training_curves(histories)\nviz.save_figure(fig, "fig_training", fig_dir)\nfig'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.training(histories)))"),
    ])

NB05 = notebook(
    "5 · Clean, PGD and AutoAttack accuracy on the real CIFAR-10 test set",
    """**The question.** How robust is each model? Robust accuracy at radius ε is
$$\\Pr_{(x,y)}\\Big[\\, C(x+\\delta) = y \\;\\; \\forall \\, \\|\\delta\\|_2 \\le \\varepsilon \\Big],$$
estimated from above by an attack: an image counts as robust only if the attack fails on it.

**Method.** L2 PGD: from a random start in the ball, `steps` steps of size $2.5\\,\\varepsilon/\\text{steps}$
along the normalized gradient of the loss, each followed by projection onto the ball and onto $[0,1]$;
the best iterate per image is kept. PGD can be fooled (gradient masking), so a seeded class-balanced subset
is attacked again with torchattacks' APGD-CE + APGD-T (the core of AutoAttack): if AutoAttack finds
clearly more adversarial examples than PGD on the same images, PGD was not enough. Every number is
computed in float32 and comes with a 95% Wilson interval.

**What to look for.** D_R above D_NR at ε = 0.25; AutoAttack close to PGD (a few points at most).""",
    'source = ""                # constructed | released; empty: profile.dataset_source',
    [
        ("md", "## Evaluate every trained model\n\nA dataset's model is evaluated only if it learned from the "
               "dataset now on disk (sha256 match); rows already computed for the same weights and settings are kept."),
        ("code", 'test = pl.cifar(cfg, paths, "test")\nresults = pl.evaluate_all(cfg, paths, test, source)'),
        ("md", "## The table"),
        ("code", "display(Markdown(pl.results_markdown(results)))"),
        ("md", "## Accuracy against ε"),
        ("code", 'fig = viz.accuracy_vs_eps(results)\nviz.save_figure(fig, "fig_accuracy_vs_eps", fig_dir)\nfig'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.results(results)))"),
    ])

NB06 = notebook(
    "6 · Report: our numbers beside the paper's",
    """**The question.** Which of the paper's claims does this run reproduce, and by how much?

The paper's Table / Figure 2 numbers (ResNet-50 on the original CIFAR-10): standard training 95% clean /
4.5% at ε = 0.25; D_R 84% / 48%; D_NR 88% / 0%; D_rand 63%; D_det 44% on the true test labels.

Writes `report.md` (tables, timings, machine, settings) and the summary figure into the run directory;
`python -m advlib table <run>/results.json` prints the same tables.""",
    "",
    [
        ("md", "## The tables"),
        ("code", "results = pl.load_results(paths)\ndisplay(Markdown(pl.results_markdown(results)))"),
        ("md", "## Beside the paper"),
        ("code", 'fig = viz.results_bars(results)\nviz.save_figure(fig, "fig_results_vs_paper", fig_dir)\nfig'),
        ("md", "## Report"),
        ("code", 'print(f"wrote {pl.write_report(paths, results)}")'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.results(results)))"),
    ])

NOTEBOOKS = {
    "01_download_data.ipynb": NB01,
    "02_construct_datasets.ipynb": NB02,
    "03_visualize.ipynb": NB03,
    "04_train.ipynb": NB04,
    "05_evaluate.ipynb": NB05,
    "06_report.ipynb": NB06,
}


def write(notebooks: dict) -> None:
    """Validate and write each notebook (the other generators call this too)."""
    OUT.mkdir(exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.validate(nb)
        nbformat.write(nb, OUT / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    write(NOTEBOOKS)
