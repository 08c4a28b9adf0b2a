# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5 · Clean, PGD and AutoAttack accuracy on the real CIFAR-10 test set
#
# **The question.** How robust is each model? Robust accuracy at radius ε is
# $$\Pr_{(x,y)}\Big[\, C(x+\delta) = y \;\; \forall \, \|\delta\|_2 \le \varepsilon \Big],$$
# estimated from above by an attack: an image counts as robust only if the attack fails on it.
#
# **Method.** L2 PGD: from a random start in the ball, `steps` steps of size $2.5\,\varepsilon/\text{steps}$
# along the normalized gradient of the loss, each followed by projection onto the ball and onto $[0,1]$;
# the best iterate per image is kept. PGD can be fooled (gradient masking), so a seeded class-balanced subset
# is attacked again with torchattacks' APGD-CE + APGD-T (the core of AutoAttack): if AutoAttack finds
# clearly more adversarial examples than PGD on the same images, PGD was not enough. Every number is
# computed in float32 and comes with a 95% Wilson interval.
#
# **What to look for.** D_R above D_NR at ε = 0.25; AutoAttack close to PGD (a few points at most).

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile-field overrides, e.g. {"epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures
source = ""                # constructed | released; empty: profile.dataset_source

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
from IPython.display import Markdown, display
import advlib.pipeline as pl
from advlib import narrate, viz

cfg, paths, fig_dir = pl.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## Evaluate every trained model
#
# A dataset's model is evaluated only if it learned from the dataset now on disk (sha256 match); rows already computed for the same weights and settings are kept.

# %%
test = pl.cifar(cfg, paths, "test")
results = pl.evaluate_all(cfg, paths, test, source)

# %% [markdown]
# ## The table

# %%
display(Markdown(pl.results_markdown(results)))

# %% [markdown]
# ## Accuracy against ε

# %%
fig = viz.accuracy_vs_eps(results)
viz.save_figure(fig, "fig_accuracy_vs_eps", fig_dir)
fig

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(narrate.results(results)))
