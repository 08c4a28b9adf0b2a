# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Look at the datasets: D_R, D_NR, D_rand, D_det beside the originals
#
# **The question.** What do robust and non-robust features look like? The paper's Figure 2 shows
# D_R images that look like their label and D_NR images that look like something else entirely.
#
# Each constructed image was made from one training image (its *original*, linked through
# `source_indices` in the set's `meta.json`): **D_R / D_NR** match the penultimate representation of that
# original under the robust / standard model, starting from another image (the *start image*, shown
# beside it so you can judge how much of it remains); **D_rand / D_det** are small targeted L2
# perturbations of the original, relabelled with the target.
#
# **What to look for.** D_R images should take on visible traits of their label; D_NR images should still
# look like their start image. The D_rand/D_det perturbations should be invisible at their true scale; where
# in frequency they live is in the spectra.

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
origin = ""                # the sets' origin: constructed | released; empty: the profile's origin

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
from IPython.display import display

import advlib.steps.visualize as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## Originals and the sets present
#
# The originals are the run's own training images (same `cifar_source`, `n_train`, `seed`), so `source_indices` point into them.

# %%
sets = step.sets(run, origin)
print(step.describe(run, sets, origin))

# %% [markdown]
# ## Side by side
#
# One row per class: the original, then the image each set built from it ("→" gives the set's label; for D_det it is the next class). For D_R / D_NR the start image the descent began from is shown beside the result.

# %%
step.side_by_side(run, sets)

# %% [markdown]
# ## Class means
#
# The mean image of each class. D_rand and D_det are labelled by their *target*, so if their class means look alike (and unlike CIFAR-10's), the label carries no visible signal: whatever a model learns from them is in the non-robust features.

# %%
step.class_means(run, sets)

# %% [markdown]
# ## Perturbations of D_rand and D_det
#
# Original, adversarial image, and the difference magnified to the full range (the factor is in the row title; the L2 norm above each column).

# %%
for fig in step.perturbations(run, sets):
    display(fig)

# %% [markdown]
# ## Frequency content: do non-robust features live in high frequencies?
#
# Radially averaged power spectra (log-log), each set's power relative to CIFAR-10's, and the spectrum of the D_rand / D_det perturbations themselves (normalized; flat = white noise, the dashed line = natural images).

# %%
step.spectra(run, sets)

# %% [markdown]
# ## Pixel statistics
#
# Histograms of pixel values and per-channel mean / std: the constructed sets should look like natural images at this level, or a model could tell them apart trivially.

# %%
step.pixel_stats(run, sets)

# %% [markdown]
# ## Explorer
#
# Pick a dataset and a class, slide through its images: the image, its original (or, for D_R / D_NR, its start image) and their difference, and the predictions of every model trained so far in this run on both.

# %%
step.explorer(run, sets, origin)

# %% [markdown]
# ## The construction, step by step
#
# For one training image, D_R and D_NR matching from a start image of another class: slide through the
# descent and watch the image take on what the robust model (D_R) or the standard model (D_NR) sees in the
# target, the feature distance fall, and the start image fade (or, for D_NR, stay).

# %%
step.construction_player(run)

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, sets)
