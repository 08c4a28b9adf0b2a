# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6 · Report: our numbers beside the paper's
#
# **The question.** Which of the paper's claims does this run reproduce, and by how much?
#
# The paper's Table / Figure 2 numbers (ResNet-50 on the original CIFAR-10): standard training 95% clean /
# 4.5% at ε = 0.25; D_R 84% / 48%; D_NR 88% / 0%; D_rand 63%; D_det 44% on the true test labels.
#
# Writes `report.md` (tables, timings, machine, settings) and the summary figure into the run directory;
# `python -m advlib table <run>/results.json` prints the same tables.

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
# ## The tables

# %%
results = pl.load_results(paths)
display(Markdown(pl.results_markdown(results)))

# %% [markdown]
# ## Beside the paper

# %%
fig = viz.results_bars(results)
viz.save_figure(fig, "fig_results_vs_paper", fig_dir)
fig

# %% [markdown]
# ## Report

# %%
print(f"wrote {pl.write_report(paths, results)}")

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(narrate.results(results)))
