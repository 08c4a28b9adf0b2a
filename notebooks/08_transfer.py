# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8 · Transfer across architectures (paper Section 3.3, Figure 3)
#
# **The question.** If D_det teaches through the *source model's* non-robust features, a model can learn from it
# only as far as it can use those features. Whether an architecture uses them can be measured without D_det:
# the source model's adversarial examples then fool it too. Ilyas et al., *Adversarial Examples Are Not Bugs, They Are Features*, NeurIPS 2019 ([arXiv 1905.02175](https://arxiv.org/abs/1905.02175)) train several architectures on one
# D_det and find that test accuracy rises with that transfer rate (their Figure 3).
#
# **Method.** For each architecture $a$ of `transfer_archs` (default: a linear model, an MLP, the tiny and
# small CNNs):
# - train $f_a$ on the run's D_det (and on D_rand) with that set's recipe, and measure
#   $\mathrm{acc}_a = \Pr[f_a(x) = y]$ on the real test set (for the profile's own architecture this is
#   notebook 04's model);
# - train a standard model $g_a$ on the CIFAR-10 training subset (the source's own architecture with seed + 1,
#   since the source itself would give a white-box rate);
# - attack $n$ = `transfer_n` seeded, class-balanced test images with targeted L2 PGD on the standard source
#   model $C$: $x'_i = \arg\min_{\|x' - x_i\|_2 \le \varepsilon} \ell(C(x'), t_i)$, $t_i = (y_i + 1) \bmod 10$,
#   ε = `transfer_eps` (paper: 0.5);
# - the transfer rate $\tau_a = \frac{1}{n} \sum_i \mathbf{1}[g_a(x'_i) = t_i]$; $C$'s own rate is the
#   white-box reference.
#
# Over the architectures, the least-squares line $\mathrm{acc}_a \approx \beta\,\tau_a + \alpha$ and Pearson's
# $r$ summarize the relation; everything goes to `transfer.json` in the run directory.
#
# **What to look for.** Points that rise from left to right (β > 0, r > 0) for D_det. A linear model or an
# MLP shares little with a CNN source; the source's own architecture (another seed) usually shares most.
# With four architectures and one seed each, r is a rough summary: read it with the points.

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.transfer as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## The source model's targeted examples
#
# The same standard model that built D_det (notebook 02).

# %%
source = step.targeted_source(run)
adv = step.examples(run, source)
print(step.whitebox_line(adv))

# %% [markdown]
# ## Models of every architecture
#
# On D_det, on D_rand, and a standard one on CIFAR-10 (`models/constructed/<set>@<arch>`, `models/cifar10/standard-<arch>`; resumed or reused when already trained on the same data). Their test accuracy is measured in the next step.

# %%
trained = step.models(run)
step.model_table(trained)

# %% [markdown]
# ## Accuracy and transfer rate
#
# Written to `transfer.json` (atomically) with the fitted lines.

# %%
result = step.results(run, trained, adv, source)
step.table(result)

# %% [markdown]
# ## Figure 3: what a model learns from D_det against how far the source's examples fool it

# %%
step.figure(run, result)

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, result)
