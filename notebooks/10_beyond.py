# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Four questions the paper's readers still ask
#
# Ilyas et al., *Adversarial Examples Are Not Bugs, They Are Features*, NeurIPS 2019 ([arXiv 1905.02175](https://arxiv.org/abs/1905.02175)), and the six responses in Distill ([2019](https://distill.pub/2019/advex-bugs-discussion/)) leave four questions this run can answer with its own models, each as a claim with a verdict that follows its 95% interval (`advlib/verdicts.py`, `beyond_claims`):
#
# 1. **The L∞ threat model.** The paper works in L2 (ε = 0.25 to 0.5); the field's standard is L∞ with ε = 8/255. Do its findings hold there? An L∞-robust source model (PGD adversarial training in the L∞ ball) gives D_R; D_NR does not depend on the norm (the run's own, and its matched control where the images are the same); D_rand / D_det are built with targeted L∞ PGD. Each set and its matched control (the same recipe and seeds on the real images it was built from, true labels) is evaluated under L∞ with the headline attack (PGD, then APGD-T on what it left). *Claims*: D_R more robust than its control under L∞; D_rand and D_det above chance.
# 2. **Robust gradients look like objects** (Santurkar et al. 2019; Engstrom et al. 2019). A targeted L2 attack far beyond the usual radius (ε up to 10–40) turns an image into the target class *as a person sees it* on the L2-robust model, and stays noise on the standard model. A robust model used for neither attack (part 1's L∞-robust one) judges what the images show. *Claim*: the robust model's images show the target to the judge more often.
# 3. **Examples that are "just bugs"** (Nakkiran, Distill 2019, response 5). Targeted examples that flip the targeted sets' source model while an ensemble of independently trained standard models (notebook 08's) keeps predicting on x' what it predicted on x carry no feature the ensemble shares. *Claims*: a D_det of such examples teaches less than D_det from the same images, and sits at chance; both sets' transfer rates to a held-out model stand beside.
# 4. **How much of D_rand / D_det is leakage** (Goh, Distill 2019, "Robust feature leakage"). A linear classifier on the L2-robust model's features, fitted to the set's training images with their (target) labels, and measured on the true test labels: what robust features planted by the attack explain. *Claims*: it beats chance for D_rand (Goh: 23.5% of the 88% a ResNet-50 reaches), and not for D_det (Goh: none found).
#
# **What it costs.** At the `smoke` profile the whole notebook runs in about half a minute (numbers near chance by design). At `cpu` (2 cores, estimated from the suite's measured rates: the `small` CNN trains ~1,000 images/s and attacks ~2,000 image·steps/s): part 1 ~13 min (the L∞ source 6 epochs of 3-step PGD on the 10k pool ~3 min, 3.1× a standard epoch as measured here; D_R (L∞) on the run's 3,000 D_R images ~1.5 min and its models over two seeds ~2 min; D_rand / D_det (L∞) on 1,000 images with their controls ~2.5 min; 17 L∞ evaluations on 1,000 test images ~4 min), part 2 ~0.5 min, part 3 ~2.5 min (1,500 images, 4 models), part 4 seconds: ~16 min in all, within the 20 this notebook may add. The settings are the profile's `beyond` group (`python -m advlib profiles`); the time each part took is in `results.json` (`timings_s`, `beyond:<part>`) and below.

# %% tags=["parameters"]
profile = "smoke"          # smoke | cpu | fast | paper (python -m advlib profiles)
run_dir = ""               # empty: runs/demo for smoke (where make demo writes), else runs/<profile>
overrides = ""             # JSON object of profile overrides, e.g. {"beyond.seeds": "0,1"}; the runner fills it
figures_dir = ""           # empty: <run_dir>/figures

# %% [markdown]
# The cell above only names things; every size, step count and learning rate comes from the profile (its `beyond` group). This notebook reads notebooks 02, 04, 05 and 08's results in the run directory.

# %%
import advlib.steps.beyond as step

run = step.setup(profile, run_dir, overrides, figures_dir)

# %% [markdown]
# ## 1 · The L∞ threat model
#
# ### The L∞-robust source model
#
# PGD adversarial training in the L∞ ball of radius `beyond.linf_source.adv_eps` (8/255), the recipe `beyond.linf_source`, on the run's training pool (`models/cifar10/robust_linf`).

# %%
linf = step.linf_source(run)

# %% [markdown]
# ### The sets
#
# **D_R (L∞)**: representation matching of the L∞-robust model's penultimate layer, from the same images and start images as the run's D_R. **D_rand (L∞)**, **D_det (L∞)**: targeted PGD in the L∞ ball ($\|x' - x\|_\infty \le 8/255$) on the model the run's D_rand / D_det attack, from the first `beyond.linf_n` training images, relabelled with the target.

# %%
metas = step.linf_sets(run, linf)
step.sets_table(metas)

# %% [markdown]
# ### A model on each set and on its matched control
#
# Each with its set's recipe (D_R: `sets.rnr`; D_rand: `sets.rand`; D_det: `sets.det`) and the seeds `beyond.seeds`. D_R (L∞) is built from the run's D_R / D_NR images, so its control is the run's own control of D_R / D_NR (notebook 04) when that model learned from exactly these images; otherwise one is trained here.

# %%
histories = step.linf_models(run)
step.history_table(histories)

# %% [markdown]
# ### Under L∞, beside L2
#
# Every model on the same seeded, class-balanced `beyond.eval_n` test images, under L∞ at ε = 8/255 with the headline attack (PGD-`eval_steps`, then APGD-T on what it left, L∞), beside the L2 row of notebook 05 it answers.

# %%
results = step.linf_evaluate(run)
step.linf_table(results)

# %%
step.linf_figure(run, results)

# %%
step.verdicts(run, "linf")

# %% [markdown]
# ## 2 · Robust gradients look like objects
#
# For `beyond.synth_images` test images and every target class $t$: $x'_\varepsilon = \arg\max_{\|x' - x\|_2 \le \varepsilon} \log p(t \mid x')$ by `beyond.synth_steps` normalized-gradient steps per radius of `beyond.synth_eps`, each radius starting where the smaller one ended, on the standard and on the L2-robust source model. The grid shows one radius; the slider all of them. The judge is part 1's L∞-robust model: it took part in neither attack, and being robust it reads the features a person would rather than the noise that fools a standard model.

# %%
synth = step.synthesis(run, judge=linf)
step.synthesis_table(synth)

# %%
step.synthesis_figure(run, synth)

# %%
step.synthesis_slider(synth)

# %%
step.verdicts(run, "synthesis")

# %% [markdown]
# ## 3 · Examples that are just bugs
#
# From the first `beyond.bugs_n` training images, with the run's targeted-attack settings (`target_eps`, `target_steps`, `target_step_size`) and $t = y + 1$: $x'$ minimizes $\mathrm{CE}(C(x'), t) + \lambda \cdot \tfrac1K \sum_k \mathrm{CE}(f_k(x'), f_k(x))$ in the L2 ball, keeping per image the best point at which every $f_k$ still predicts $f_k(x)$ (`advlib/bugs.py`); $C$ is the model the run's D_det attacks, $f_k$ notebook 08's standard models but the held-out one (`beyond.bugs_holdout`). Beside it, the run's D_det rows of the same images. Transfer: how often the held-out model predicts the target on a set's images.

# %%
bugs = step.just_bugs(run)
step.bugs_table(bugs)

# %%
step.bugs_figure(run, bugs)

# %%
step.verdicts(run, "bugs")

# %% [markdown]
# ## 4 · How much of D_rand / D_det is leakage
#
# **What the number means.** A linear classifier (multinomial logistic regression, `beyond.probe_steps` L-BFGS steps) on the L2-robust model's penultimate features $g(x')$ of a set's training images, fitted to the set's labels $t$, and its accuracy on the *true* labels of the test images notebook 05 evaluates the set's models on. A linear function of robust features can only use robust features, and in D_rand $t$ is independent of $x$: what it gets above chance (10%) was planted into robust features by the attack. So it is a **lower bound** on how much of a D_rand model's accuracy robust-feature leakage can explain (a non-linear classifier of the same features could explain more), not an estimate of what the model actually uses. "Explained" is the probe's points above chance, capped at the set's own. For D_det the probe learns $y \to y + 1$ from $x$'s own robust features and predicts $y + 1$ on the test images: below chance, and no leakage.

# %%
leak = step.leakage(run)
step.leakage_table(leak)

# %%
step.leakage_figure(run, leak)

# %%
step.verdicts(run, "leakage")

# %% [markdown]
# ## What this run shows

# %%
step.conclusions(run)
