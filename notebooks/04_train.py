# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4 · Train a fresh model on each dataset
#
# **The question.** Does a model trained *by standard training* on D_R become robust, and on D_NR
# non-robust? Do models trained on D_rand / D_det — whose labels look wrong — generalize to the real
# test set?
#
# **Method.** Plain empirical risk minimization, $\min_\theta \sum_i \ell(\theta; x_i, y_i)$ over the
# constructed set, with the paper's recipe scaled by the profile (lr ×0.1 for D_rand, no augmentation for
# D_det), and the real CIFAR-10 test set watched after every epoch. Each model is keyed by what it learned
# from: the sha256 of its training tensors is stored with the checkpoint, and a model trained on other
# data is set aside and retrained, never reused. With `train_seeds` the training is repeated per seed.
#
# **What to look for.** Training accuracy on D_rand / D_det (the model can fit the target labels) and test
# accuracy above chance (10%).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile-field overrides, e.g. {"epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
dataset = "all"            # one of d_robust,d_non_robust,d_rand,d_det, or all (every set present)
source = ""                # constructed | released; empty: profile.dataset_source

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
from IPython.display import Markdown, display
import advlib.pipeline as pl
from advlib import narrate, viz

cfg, paths, fig_dir = pl.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## The datasets present

# %%
sets = pl.feature_sets(cfg, paths, source, only=dataset)
test = pl.cifar(cfg, paths, "test")
print(pl.describe_sets(sets, source or cfg.dataset_source))

# %% [markdown]
# ## Training

# %%
histories = pl.train_on_sets(cfg, paths, sets, test, source)
histories.update(pl.train_standard_seeds(cfg, paths, pl.cifar(cfg, paths, "train"), test))
display(Markdown(pl.markdown_table(pl.history_rows(histories))))

# %% [markdown]
# ## Curves

# %%
fig = viz.training_curves(histories)
viz.save_figure(fig, "fig_training", fig_dir)
fig

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(narrate.training(histories)))
