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
overrides = ""             # JSON object of profile-field overrides, e.g. {"epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
from IPython.display import Markdown, display
import advlib.pipeline as pl
from advlib import narrate, viz

cfg, paths, fig_dir = pl.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## CIFAR-10
#
# The profile's class-balanced subset (seeded), from torchvision, a local archive, or the sample embedded in the package.

# %%
train, test = pl.cifar(cfg, paths, "train"), pl.cifar(cfg, paths, "test")
display(Markdown(pl.markdown_table([pl.summary_row("train", *train), pl.summary_row("test", *test)])))

# %% [markdown]
# ## A look at the images

# %%
fig = viz.image_grid(train[0][:32], train[1][:32], nrow=8, title=f"CIFAR-10 ({cfg.cifar_source})")
viz.save_figure(fig, "fig_cifar_grid", fig_dir)
fig

# %% [markdown]
# ## The authors' release (optional)
#
# 2.5 GB with no published checksum (pass `release_sha256` once you have verified a copy); an interrupted download resumes, members are checked before anything is written.

# %%
released = pl.fetch_release(cfg, paths)

# %% [markdown]
# ## What the run directory holds

# %%
display(Markdown(pl.markdown_table(pl.inventory(paths))))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(narrate.data_summary(cfg.name, train, test, released)))
