"""ipywidgets for the notebooks. Each is a class whose object a notebook cell ends with (or passes to
``display``); ``.widget`` is its ipywidgets box. Images travel as PNGs through ``ipywidgets.Image``,
and every control and image carries a stable ``advlib-*`` CSS class (tests and styling find them).

- :class:`Explorer` (:mod:`.explorer`): browse the feature datasets image by image, with the original
  each was built from, model predictions, and filters on per-image facts (:mod:`.facts`).
- :class:`AttackExplorer` (:mod:`.attack`): L2 PGD live on a test image against several models side
  by side, with sliders for ε and the number of steps.
- :class:`ConstructionPlayer` (:mod:`.player`): step through the D_R / D_NR representation-matching
  trajectory of one training image.
- :class:`SynthesisSlider` (:mod:`.synthesis`): large-ε targeted attacks on the standard and the
  L2-robust model, a slider over the precomputed radii (notebook 10).
"""

from .attack import AttackExplorer
from .common import predict, to_png
from .explorer import ALL, Explorer, explorer, from_run_dir, load_models
from .facts import FILTERS, SetFacts
from .player import ConstructionPlayer
from .synthesis import SynthesisSlider

__all__ = ["Explorer", "explorer", "from_run_dir", "load_models", "to_png", "predict", "ALL", "AttackExplorer",
           "ConstructionPlayer", "FILTERS", "SetFacts", "SynthesisSlider"]
