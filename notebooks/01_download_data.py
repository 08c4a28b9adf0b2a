# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1 · Data: CIFAR-10 and the authors' release
#
# **The question.** Ilyas et al., *Adversarial Examples Are Not Bugs, They Are Features*, NeurIPS 2019 ([arXiv 1905.02175](https://arxiv.org/abs/1905.02175)) claim that adversarial examples exist because image datasets contain
# *non-robust features*: patterns that predict the label well yet flip under tiny perturbations. To
# test it we need the data the features live in: CIFAR-10, and optionally the four datasets the
# authors released (`d_robust_CIFAR`, `d_non_robust_CIFAR`, `drand_CIFAR`, `ddet_CIFAR`).
#
# **Definitions (paper Section 2).** For a binary task with labels $y \in \{-1,+1\}$, a feature is a
# function $f: \mathcal{X} \to \mathbb{R}$. It is *ρ-useful* if $\mathbb{E}[y\,f(x)] \ge \rho$;
# *γ-robustly useful* if it stays useful under the worst perturbation in a set Δ(x):
# $\mathbb{E}[\inf_{\delta \in \Delta(x)} y\,f(x+\delta)] \ge \gamma$; a *useful non-robust feature* is
# ρ-useful but not γ-robustly useful for any γ ≥ 0. Here Δ(x) is an L2 ball of radius ε around x.
#
# **What to look for.** The split sizes and class balance; where the data came from (`cifar_source`).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.data as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## CIFAR-10
#
# The profile's class-balanced subset (seeded), from torchvision, a local archive, or the sample embedded in the package.

# %%
step.splits_table(run)

# %% [markdown]
# ## A look at the images

# %%
step.image_grid(run)

# %% [markdown]
# ## The authors' release (optional)
#
# 2.5 GB with no published checksum (pass `release_sha256` once you have verified a copy); an interrupted download resumes, members are checked before anything is written.

# %%
released = step.fetch_release(run)

# %% [markdown]
# ## What the run directory holds

# %%
step.inventory(run)

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, released)
