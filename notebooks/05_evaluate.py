# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5 · Clean and robust accuracy on the real CIFAR-10 test set, and the claims they decide
#
# **The question.** How robust is each model, and is a model trained on D_R more robust than *the same
# training on the real images D_R was built from* (its matched control)? Robust accuracy at radius ε is
# $$\Pr_{(x,y)}\Big[\, C(x+\delta) = y \;\; \forall \, \|\delta\|_2 \le \varepsilon \Big],$$
# estimated from above by an attack: an image counts as robust only if the attack fails on it, so the
# strongest attack gives the number closest to the truth.
#
# **Method.** On one seeded, class-balanced set of test images (clean and robust accuracy come from the
# same images, so robust ≤ clean): L2 PGD with the cross-entropy loss (random start, `steps` steps of
# $2.5\,\varepsilon/\text{steps}$), then, on the images PGD did not break, APGD-T (Croce & Hein 2020: the
# targeted DLR loss toward each of the most likely wrong classes). The headline is this per-image worst
# case; PGD alone stands beside it. Cross-entropy can stop short of the nearest decision boundary (on a
# linear model with a known answer PGD-CE overestimates robust accuracy by about ten points, APGD-T finds
# it exactly: `tests/test_strong.py`). The standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square)
# cross-checks the headline on part of the images. The per-image outcomes are stored, so each claim is a
# paired comparison with a 95% bootstrap interval over test images and training seeds (`advlib/stats.py`).
#
# **What to look for.** D_R above its control at the declared radius, D_NR below it; AutoAttack no lower
# than the headline by more than a point or two.

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
origin = ""                # the sets' origin: constructed | released; empty: the profile's origin

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.evaluate as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## Evaluate every trained model
#
# A dataset's model is evaluated only if it learned from the dataset now on disk (sha256 match); rows already computed for the same weights and settings are kept.

# %%
results = step.evaluate_all(run, origin)

# %% [markdown]
# ## The table

# %%
step.tables(results)

# %% [markdown]
# ## Accuracy against ε

# %%
step.eps_figure(run, results)

# %% [markdown]
# ## Try the attack
#
# Pick a test image, slide ε and the number of PGD steps: the standard model's prediction flips at radii the
# L2-robust model shrugs off, and its perturbation (magnified) looks like noise.

# %%
step.attack_explorer(run)

# %% [markdown]
# ## Under the hood
#
# The few lines the evaluation runs, shown from the library itself.

# %%
step.under_the_hood()

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(results)
