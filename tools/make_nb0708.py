"""Write notebooks 07 (controls) and 08 (transfer) from the cell lists below (outputs stripped).

The header cells (title, parameters, setup) come from tools/make_notebooks.py, loaded from its
file path, so they stay identical to 01-06. Edit here, run `.venv/bin/python tools/make_nb0708.py`,
commit both.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("advlib_make_notebooks", HERE / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mk = _make_notebooks()
notebook, OUT = mk.notebook, mk.OUT

NB07 = notebook(
    "7 · Controls: non-robust features, or label leakage?",
    f"""**The question.** A model trained on D_rand or D_det scores above chance on the real test labels although
every training label is the attack's target ({mk.PAPER}, Section 3.2). The paper's reading: the targeted
attack planted *non-robust features* of the target class, and they generalize. Other readings predict the
same number; each control below removes one of them. All are built from the same first `construct_n`
training images as D_rand / D_det, trained with the recipe of the set they imitate (D_rand-like: lr
`lr_drand`; D_det-like: no augmentation) and evaluated on the same test split.

| set | built as | if it still generalizes |
|---|---|---|
| **D_other** | $x' = \\arg\\min_{{\\|x'-x\\|_2 \\le \\varepsilon}} \\ell(C(x'), t)$, relabelled $t \\sim \\mathcal{{U}}\\{{c \\ne y\\}}$ | D_rand's ≈10% rows with $t = y$ are not the explanation |
| **synthetic** (as D_rand / D_det) | $x' = \\mathrm{{clip}}_{{[0,1]}}(x + P_t)$, one fixed $P_c \\sim \\mathcal{{N}}(0, I)$ per class, $\\|P_c\\|_2 = \\varepsilon$ | a trivially learnable shortcut of the same size suffices: accuracy alone does not prove "features" |
| **relabel** | $\\{{(x, \\hat y(x)) : \\hat y(x) \\ne y\\}}$, $\\hat y$ a model trained for `relabel_epochs` epochs | a model's mistakes carry transferable signal without any perturbation |
| **subsets** | D_rand rows with $t \\ne y$; D_rand / D_det rows with $C(x') = t$ (hits) | which rows carry the signal |

$C$ is the run's standard source model, ε = `target_eps`, and the true label of a row is the label of the
training image it was made from.

**What to look for.** Bars above the dashed chance line (10%) and how they compare with D_rand / D_det.
Markers are published full-size numbers, references rather than targets for a small profile: K. Jordan's
ResNet-9 replication (D_rand 83.9%, D_other 67.3%, synthetic 79.5% / 32.3%) and E. Wallace's response in
Distill (2019; ResNet-18 on 18.8k relabelled mistakes: 49.7%).""",
    "",
    [
        ("md", "## The run's training images and source model\n\nThe class-balanced subset and the standard model "
               "that D_rand and D_det were built with (notebook 02: the standard source model, or the profile's own "
               "model for the targeted sets when `target_source_epochs` > 0)."),
        ("code", "import advlib.studies as st\n"
                 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                 "source = st.targeted_source(cfg, paths, train, test)"),
        ("md", "## Build the four controls\n\nD_other with the same targeted attack as D_rand; the synthetic sets with "
               "no attack; relabel from a briefly trained model (`models/cifar10/brief`). Each is saved under "
               "`datasets/constructed/<name>/` with its `meta.json` (settings, `source_indices`, true labels, "
               "targets, sha256) and reused while its settings match."),
        ("code", "brief = st.brief_model(cfg, paths, train, test)\n"
                 "metas = st.build_controls(cfg, paths, train, source, brief)\n"
                 "display(Markdown(pl.markdown_table(st.construction_rows(metas))))"),
        ("md", "## Subsets of D_rand and D_det\n\nRows chosen from the constructed sets by their recorded targets and "
               "`source_indices`; where `meta.json` records no per-row hits, the source model recomputes them on the "
               "stored images."),
        ("code", "variants = st.subset_variants(cfg, paths, train, source)\n"
                 "display(Markdown(pl.markdown_table(st.variant_rows(variants))))"),
        ("md", "## Train a fresh model on each\n\nKeyed by the sha256 of its training tensors, as in notebook 04: a "
               "model trained on other data is set aside and retrained, never reused. (Test accuracy is measured "
               "once, in the next step, not after every epoch.)"),
        ("code", "sets = st.control_sets(paths, metas, variants)\n"
                 "histories = st.train_controls(cfg, paths, sets)\n"
                 "display(Markdown(pl.markdown_table(pl.history_rows(histories))))"),
        ("md", "## Evaluate on the real test set\n\nClean accuracy on every test image (the number that matters here) "
               "with its 95% Wilson interval, and PGD at `eval_eps` only (no AutoAttack); one row per set in "
               "results.json, with `train_n` and the training set's sha256."),
        ("code", "results = st.evaluate_controls(cfg, paths, sets, test)\n"
                 "summary = st.controls_summary(cfg, paths, results, test, metas, variants)\n"
                 "display(Markdown(pl.markdown_table(st.summary_rows(summary))))"),
        ("md", "## Every set beside D_rand and D_det"),
        ("code", 'fig = viz.controls_bars(summary)\nviz.save_figure(fig, "fig_controls", fig_dir)\nfig'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.controls(summary, cfg.name)))"),
    ])

NB08 = notebook(
    "8 · Transfer across architectures (paper Section 3.3, Figure 3)",
    f"""**The question.** If D_det teaches through the *source model's* non-robust features, a model can learn from it
only as far as it can use those features. Whether an architecture uses them can be measured without D_det:
the source model's adversarial examples then fool it too. {mk.PAPER} train several architectures on one
D_det and find that test accuracy rises with that transfer rate (their Figure 3).

**Method.** For each architecture $a$ of `transfer_archs` (default: a linear model, an MLP, the tiny and
small CNNs):
- train $f_a$ on the run's D_det (and on D_rand) with that set's recipe, and measure
  $\\mathrm{{acc}}_a = \\Pr[f_a(x) = y]$ on the real test set (for the profile's own architecture this is
  notebook 04's model);
- train a standard model $g_a$ on the CIFAR-10 training subset (the source's own architecture with seed + 1,
  since the source itself would give a white-box rate);
- attack $n$ = `transfer_n` seeded, class-balanced test images with targeted L2 PGD on the standard source
  model $C$: $x'_i = \\arg\\min_{{\\|x' - x_i\\|_2 \\le \\varepsilon}} \\ell(C(x'), t_i)$, $t_i = (y_i + 1) \\bmod 10$,
  ε = `transfer_eps` (paper: 0.5);
- the transfer rate $\\tau_a = \\frac{{1}}{{n}} \\sum_i \\mathbf{{1}}[g_a(x'_i) = t_i]$; $C$'s own rate is the
  white-box reference.

Over the architectures, the least-squares line $\\mathrm{{acc}}_a \\approx \\beta\\,\\tau_a + \\alpha$ and Pearson's
$r$ summarize the relation; everything goes to `transfer.json` in the run directory.

**What to look for.** Points that rise from left to right (β > 0, r > 0) for D_det. A linear model or an
MLP shares little with a CNN source; the source's own architecture (another seed) usually shares most.
With four architectures and one seed each, r is a rough summary: read it with the points.""",
    "",
    [
        ("md", "## The source model's targeted examples\n\nThe same standard model that built D_det (notebook 02)."),
        ("code", "import advlib.studies as st\n"
                 'train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")\n'
                 "source = st.targeted_source(cfg, paths, train, test)\n"
                 "adv = st.transfer_examples(cfg, test, source)\n"
                 "print(f\"white-box hit rate of the source model: {pl.pct(adv['whitebox_rate'])} on {adv['n']} test images\")"),
        ("md", "## Models of every architecture\n\nOn D_det, on D_rand, and a standard one on CIFAR-10 "
               "(`models/constructed/<set>@<arch>`, `models/cifar10/standard-<arch>`; resumed or reused when "
               "already trained on the same data). Their test accuracy is measured in the next step."),
        ("code", "models = st.transfer_models(cfg, paths, train)\n"
                 "display(Markdown(pl.markdown_table(st.transfer_model_rows(models))))"),
        ("md", "## Accuracy and transfer rate\n\nWritten to `transfer.json` (atomically) with the fitted lines."),
        ("code", "result = st.transfer_results(cfg, paths, models, adv, test, source)\n"
                 "display(Markdown(pl.markdown_table(st.transfer_table(result))))"),
        ("md", "## Figure 3: what a model learns from D_det against how far the source's examples fool it"),
        ("code", 'fig = viz.transfer_scatter(result)\nviz.save_figure(fig, "fig_transfer", fig_dir)\nfig'),
        ("md", "## What this run shows"),
        ("code", "display(Markdown(narrate.transfer(result, cfg.name)))"),
    ])

NOTEBOOKS = {"07_controls.ipynb": NB07, "08_transfer.ipynb": NB08}


if __name__ == "__main__":
    mk.write(NOTEBOOKS)
