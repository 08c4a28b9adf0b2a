# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6 · Report: which of the paper's claims this run supports
#
# **The question.** The paper makes five claims a run can test: standard training is non-robust; a model
# trained on D_R is *more* robust, and one trained on D_NR *less* robust, than the same training on the
# real images the set was built from; D_R beats D_NR; and models trained on D_rand / D_det, whose labels
# look wrong, still beat chance on the true test labels. Each claim here is a comparison whose 95%
# interval (over test images and training seeds) decides its verdict: **supported** when the whole
# interval lies on the claimed side, **not supported** when it lies on the other, **inconclusive at this
# scale** otherwise.
#
# The paper's numbers (ResNet-50 on the original CIFAR-10): standard training 95% clean / 4.5% at
# ε = 0.25; D_R 84% / 48%; D_NR 88% / 0%; D_rand 63%; D_det 44% on the true test labels.
#
# Writes `report.md` into the run directory; `python -m advlib table <run>/results.json` prints the same
# tables, and `python -m advlib report <run>` the HTML report.

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"sets.rnr.epochs": 3}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (`python -m advlib profiles` lists them).

# %%
import advlib.steps.report as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## The paper's claims, tested

# %%
results = step.load(run)
step.verdicts(results)

# %% [markdown]
# ## Beside the paper
#
# Clean and robust accuracy on the same test images; each set beside its matched control.

# %%
step.paper_table(results)

# %%
step.paper_figure(run, results)

# %% [markdown]
# ## What this run does not show

# %%
step.not_shown(results)

# %% [markdown]
# ## report.md

# %%
step.write_report(run, results)
