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
# constructed set, with the paper's recipe scaled by the profile (its `sets` recipes: lr ×0.1 for D_rand, no
# augmentation for D_det), and the validation split (held out of the training images) watched during training; the test
# set is only for notebook 05. **Each set gets a matched control**: the same architecture, recipe and seeds
# trained on the *real* images the set was built from, with their true labels, so that whatever D_R or D_NR
# does to robustness is measured against what those images teach anyway. Each model is keyed by what it
# learned from: the sha256 of its training tensors is stored with the checkpoint, and a model trained on
# other data is set aside and retrained, never reused. With `train_seeds` the training is repeated per seed.
#
# **What to look for.** Training accuracy on D_rand / D_det (the model can fit the target labels) and test
# accuracy above chance (10%).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
dataset = "all"            # one of d_robust,d_non_robust,d_rand,d_det, or all (every set present)
origin = ""                # the sets' origin: constructed | released; empty: the profile's origin

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.train as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## The datasets present

# %%
sets = step.feature_sets(run, origin, only=dataset)
print(step.describe(run, sets, origin))

# %% [markdown]
# ## Training

# %%
histories = step.train_all(run, sets, origin)
step.history_table(histories)

# %% [markdown]
# ## Curves

# %%
step.training_figure(run, histories)

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, histories)
