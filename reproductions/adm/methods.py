"""The paper's shallow segmentation models as leaderboard methods (task ``interactive-segmentation``).

The same pipelines as ``adm.shallow`` (Fig. 2: colour-histogram unaries from the scribbles,
then the grid CRF by one s-t graph cut, or the dense CRF by mean-field), with its settings at the
image's native resolution, so that they are ranked beside classical baselines and a user's
method on the same benchmarks (``suite.leaderboards``).
"""
from __future__ import annotations

import numpy as np

from suite.harness.methods import method

from .shallow import SHALLOW_PROFILES, segment

_SETTINGS = SHALLOW_PROFILES["full"]
_CITATION = "Marin, Tang, Ben Ayed, Boykov. Beyond Gradient Descent for Regularized Segmentation Losses. CVPR 2019"


@method("adm-grid-crf", task="interactive-segmentation", kind="paper", citation=_CITATION + " (grid CRF, Fig. 1)",
        settings=f"8-neighbour Potts, lambda {_SETTINGS['grid_smoothness']:g} at 480 px, colour histograms "
                 f"{_SETTINGS['bins']}^3, seeds as hard constraints, global optimum by s-t cut")
def grid_crf(image: np.ndarray, scribbles: np.ndarray) -> np.ndarray:
    return segment(image, scribbles.astype(np.int64), _SETTINGS, models=("grid",))["grid"]


@method("adm-dense-crf", task="interactive-segmentation", kind="paper", citation=_CITATION + " (dense CRF, Fig. 2)",
        settings=f"Potts with a bilateral kernel (sigma_xy {_SETTINGS['dense_sigma_xy']:g}, sigma_rgb "
                 f"{_SETTINGS['dense_sigma_rgb']:g}, weight {_SETTINGS['dense_weight']:g}), "
                 f"{_SETTINGS['mean_field_iterations']} mean-field iterations, seeds clamped")
def dense_crf(image: np.ndarray, scribbles: np.ndarray) -> np.ndarray:
    return segment(image, scribbles.astype(np.int64), _SETTINGS, models=("dense",))["dense"]
