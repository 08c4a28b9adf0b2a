"""The notebooks' steps: one module per notebook, on one shared base.

===========================  ==========================================================
notebook                     its steps (tables, figures and "what this run shows")
===========================  ==========================================================
01_download_data             :mod:`advlib.steps.data`
02_construct_datasets        :mod:`advlib.steps.construct` (algorithms: :mod:`advlib.construct`)
03_visualize                 :mod:`advlib.steps.visualize` (figures: :mod:`advlib.viz`)
04_train                     :mod:`advlib.steps.train` (the loop: :mod:`advlib.train`)
05_evaluate                  :mod:`advlib.steps.evaluate` (attacks: :mod:`advlib.evaluate`)
06_report                    :mod:`advlib.steps.report` (claims: :mod:`advlib.verdicts`)
07_controls                  :mod:`advlib.steps.controls` (sets: :mod:`advlib.controls`)
08_transfer                  :mod:`advlib.steps.transfer` (pieces: :mod:`advlib.transfer`)
09_gaussian_model            :mod:`advlib.gaussian` (theory and views; no run directory work)
10_beyond                    :mod:`advlib.steps.beyond` (sets: :mod:`advlib.beyond`; L∞, synthesis,
                             just bugs, leakage)
===========================  ==========================================================

Every step takes the notebook's :class:`~advlib.steps.base.Run` (the profile, the run directory,
the CIFAR-10 splits) and returns what the cell shows: a table or paragraph as markdown, a figure,
or the objects the next cell needs. :mod:`advlib.steps.base` holds what they share: ``setup``, the
one place models are trained or loaded, and the markdown helpers.
"""
