# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Build D_R, D_NR, D_rand and D_det (paper Section 3)
#
# **The question.** If non-robust features are real, we can *separate* them: build one training set
# whose images carry only robust features and another whose images carry only non-robust ones, and
# build training sets whose labels are explained *only* by non-robust features.
#
# **Two source models.** A standard model $C$ (trained on clean CIFAR-10) and an L2-adversarially trained
# model $C_R$ ($\min_\theta \mathbb{E}\,\max_{\|\delta\|_2\le\varepsilon} \ell(\theta; x+\delta, y)$, ε = 0.5 in the paper).
# Let $g$ be a model's penultimate-layer representation.
#
# **D_R and D_NR (Section 3.1).** For each training pair $(x, y)$, start from a *different*, random training
# image $x_0$ and solve, by normalized-gradient L2 descent,
# $$x_r = \arg\min_{z} \; \| g(z) - g(x) \|_2 ,$$
# keeping the label $y$. With $g$ from the robust model the result carries (only) the features the robust
# model uses: **D_R**. With $g$ from the standard model: **D_NR**, whose images look like $x_0$ but whose
# label is $y$ — the features that make it a $y$ are invisible to us.
#
# **D_rand and D_det (Section 3.2).** A targeted L2 attack on the standard model,
# $x_{adv} = \arg\min_{\|x' - x\|_2 \le \varepsilon} \ell(C(x'), t)$, relabelled with the target $t$: random
# for **D_rand** ($t$ uniform over the classes, so ≈10% of targets equal $y$), $t = (y+1) \bmod 10$ for
# **D_det**. To a human every D_det label is wrong; only the planted non-robust features agree with it.
# A profile may give these two sets a standard model of their own (a `sources.targeted` recipe: the `cpu`
# profile trains it with augmentation and weight decay, as the paper's standard model was), because a small
# network fitted hard enough to be non-robust plants perturbations that teach their labels less well.
#
# **What to look for.** The source models' accuracies (the robust one should keep far more accuracy under
# attack); for D_R/D_NR how close the matched representations get; for D_rand/D_det how often the attack
# reaches its target (a miss keeps a wrong label on an unchanged image).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
which = ""                 # comma-separated subset of d_robust,d_non_robust,d_rand,d_det; empty: the profile datasets

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.construct as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## Source models
#
# (Not needed, and not trained, when the profile uses the released sets.)

# %%
sources = step.source_models(run)
step.source_table(run, sources)

# %% [markdown]
# ## Construct the datasets
#
# Built in shards written atomically, so a killed run resumes where it stopped and produces the same tensors.

# %%
metas = step.build_sets(run, sources, which)
step.construction_table(metas)

# %% [markdown]
# ## Matching loss (D_R, D_NR)
#
# Mean $\|g(x_r) - g(x)\|_2$ against the descent step.

# %%
step.construction_figure(run, metas)

# %% [markdown]
# ## Under the hood
#
# The few lines the construction runs, shown from the library itself: one normalized-gradient L2 step, the
# projection, and the matching loop.

# %%
step.under_the_hood()

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run, sources, metas)
