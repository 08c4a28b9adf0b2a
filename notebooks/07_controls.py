# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7 · Controls: non-robust features, or label leakage?
#
# **The question.** A model trained on D_rand or D_det scores above chance on the real test labels although
# every training label is the attack's target (Ilyas et al., *Adversarial Examples Are Not Bugs, They Are Features*, NeurIPS 2019 ([arXiv 1905.02175](https://arxiv.org/abs/1905.02175)), Section 3.2). The paper's reading: the targeted
# attack planted *non-robust features* of the target class, and they generalize. Other readings predict the
# same number; each control below removes one of them. All are built from the same first `construct_n`
# training images as D_rand / D_det, trained with the recipe of the set they imitate (D_rand-like: `sets.rand`;
# D_det-like: `sets.det`, no augmentation) and evaluated on the same test split.
#
# | set | built as | if it still generalizes |
# |---|---|---|
# | **D_other** | $x' = \arg\min_{\|x'-x\|_2 \le \varepsilon} \ell(C(x'), t)$, relabelled $t \sim \mathcal{U}\{c \ne y\}$ | D_rand's ≈10% rows with $t = y$ are not the explanation |
# | **synthetic** (as D_rand / D_det) | $x' = \mathrm{clip}_{[0,1]}(x + P_t)$, one fixed $P_c \sim \mathcal{N}(0, I)$ per class, $\|P_c\|_2 = \varepsilon$ | a trivially learnable shortcut of the same size suffices: accuracy alone does not prove "features" |
# | **relabel** | $\{(x, \hat y(x)) : \hat y(x) \ne y\}$, $\hat y$ a model trained for `relabel_epochs` epochs | a model's mistakes carry transferable signal without any perturbation |
# | **subsets** | D_rand rows with $t \ne y$; D_rand / D_det rows with $C(x') = t$ (hits) | which rows carry the signal |
#
# $C$ is the run's standard source model, ε = `target_eps`, and the true label of a row is the label of the
# training image it was made from.
#
# **What to look for.** Bars above the dashed chance line (10%) and how they compare with D_rand / D_det.
# Markers are published full-size numbers, references rather than targets for a small profile: K. Jordan's
# ResNet-9 replication (D_rand 83.9%, D_other 67.3%, synthetic 79.5% / 32.3%) and E. Wallace's response in
# Distill (2019; ResNet-18 on 18.8k relabelled mistakes: 49.7%).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.controls as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## The run's training images and source model
#
# The class-balanced subset and the standard model that D_rand and D_det were built with (notebook 02: the standard source model, or the profile's own model for the targeted sets when it has a `sources.targeted` recipe).

# %%
source = step.targeted_source(run)

# %% [markdown]
# ## Build the four controls
#
# D_other with the same targeted attack as D_rand; the synthetic sets with no attack; relabel from a briefly trained model (`models/cifar10/brief`). Each is saved under `datasets/constructed/<name>/` with its `meta.json` (settings, `source_indices`, true labels, targets, sha256) and reused while its settings match.

# %%
brief = step.brief_model(run)
metas = step.build_controls(run, source, brief)
step.construction_table(metas)

# %% [markdown]
# ## Subsets of D_rand and D_det
#
# Rows chosen from the constructed sets by their recorded targets and `source_indices`; where `meta.json` records no per-row hits, the source model recomputes them on the stored images.

# %%
variants = step.subset_variants(run, source)
step.variant_table(variants)

# %% [markdown]
# ## Train a fresh model on each
#
# Keyed by the sha256 of its training tensors, as in notebook 04: a model trained on other data is set aside and retrained, never reused. (Test accuracy is measured once, in the next step, not after every epoch.)

# %%
sets = step.control_sets(run, metas, variants)
histories = step.train_controls(run, sets)
step.history_table(histories)

# %% [markdown]
# ## Evaluate on the real test set
#
# Clean accuracy on every test image (the number that matters here) with its 95% Wilson interval, and PGD at `eval_eps` only (no AutoAttack); one row per set in results.json, with `train_n` and the training set's sha256.

# %%
results = step.evaluate_controls(run, sets)
entries = step.summary(run, results, metas, variants)
step.summary_table(entries)

# %% [markdown]
# ## Every set beside D_rand and D_det

# %%
step.figure(run, entries)

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, entries)
