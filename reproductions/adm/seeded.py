"""Segmentation from seeds ("shallow" segmentation): colour models, grid CRF, dense CRF.

Used for the "train w/ proposals" baseline (GrabCut-style proposals grown from the scribbles,
multi-label) and for the shallow experiment of Figs. 1-2 (binary, scribbles of a user).

* Colour model (:func:`colour_unaries`): per label, a 3-D colour histogram of its seed pixels
  (``bins`` per channel, smoothed by one bin and mixed with 1 % of a uniform distribution so no
  colour is impossible); ``U_p(l) = -log P(I_p | l)``.
* Grid CRF (:func:`grid_segmentation`): ``E(X) = sum_p U_p(X_p) + sum_pq w_pq [X_p != X_q]`` with
  Eq. (2) weights (8-neighbourhood, Boykov-Jolly sigma), seeds as hard constraints; two labels
  by one s-t cut (the global optimum), more by alpha-expansion (``suite.solvers.graphcut``).
  ``iterations > 1`` re-estimates the colour models from the segmentation (GrabCut).
* Dense CRF: the same unaries with the fully connected Potts model of Eq. (3), inferred by
  mean-field (:func:`suite.solvers.crf.dense_crf_mean_field`), seeds clamped to their label.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from suite.solvers import graphcut

UNLABELLED = 255


def _check_image_and_seeds(image: Any, seeds: Any) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    seeds = np.asarray(seeds)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected an (H, W, 3) colour image, got shape {image.shape}")
    if seeds.shape != image.shape[:2]:
        raise ValueError(f"seeds: expected shape {image.shape[:2]} (the image's), got {seeds.shape}")
    if not (seeds != UNLABELLED).any():
        raise ValueError("seeds: expected at least one labelled pixel, got only 255 (unlabelled)")
    return image.astype(np.float64), seeds.astype(np.int64)


def colour_unaries(image: Any, labels: Any, num_labels: int, *, bins: int = 16, uniform: float = 0.01) -> np.ndarray:
    """``-log P(I_p | l)`` from the colour histogram of the pixels labelled ``l`` in ``labels``.

    Args:
        image: ``(H, W, 3)`` colours in 0-255.
        labels: ``(H, W)`` labels in ``[0, num_labels)`` or 255 (not used for the models).
        num_labels: L. bins: histogram bins per channel. uniform: weight of the uniform mixture.

    Returns:
        ``(H, W, L)`` float64 unaries (a label without any pixel gets the uniform model).
    """
    image = np.asarray(image, dtype=np.float64)
    labels = np.asarray(labels)
    quantised = np.clip((image * bins / 256.0).astype(np.int64), 0, bins - 1)
    index = (quantised[..., 0] * bins + quantised[..., 1]) * bins + quantised[..., 2]
    unaries = np.empty((*labels.shape, num_labels))
    for label in range(num_labels):
        counts = np.bincount(index[labels == label], minlength=bins**3).astype(np.float64).reshape(bins, bins, bins)
        if counts.sum() > 0:
            counts = ndimage.gaussian_filter(counts, 1.0, mode="constant")
            density = counts / counts.sum()
        else:
            density = np.zeros_like(counts)
        density = (1.0 - uniform) * density + uniform / bins**3
        unaries[..., label] = -np.log(density.ravel()[index])
    return unaries


def grid_segmentation(image: Any, seeds: Any, *, smoothness: float, iterations: int = 1, bins: int = 16,
                      cycles: int = 5) -> np.ndarray:
    """Grid-CRF segmentation from seeds with colour-model unaries (see module doc).

    Args:
        image: ``(H, W, 3)`` in 0-255. seeds: ``(H, W)`` labels, 255 = unseeded. The labels that
            occur in ``seeds`` are the only ones allowed.
        smoothness: lambda of Eq. (2). iterations: colour-model re-estimations (GrabCut); 1 = none.

    Returns:
        ``(H, W)`` int64 labels taken from the seed labels.

    Raises:
        ValueError: bad shapes or no seed at all.
    """
    image, seeds = _check_image_and_seeds(image, seeds)
    present = np.unique(seeds[seeds != UNLABELLED])
    if present.size == 1:
        return np.full(seeds.shape, present[0], dtype=np.int64)
    compact = np.full(seeds.shape, UNLABELLED, dtype=np.int64)
    for i, label in enumerate(present):
        compact[seeds == label] = i
    weights = graphcut.grid_weights(image, neighbourhood=8, smoothness=smoothness)
    current = compact
    for _ in range(max(1, int(iterations))):
        unaries = colour_unaries(image, current, present.size, bins=bins)
        if present.size == 2:
            current, _ = graphcut.binary_graphcut(unaries, weights, hard=compact)
        else:
            current, _ = graphcut.alpha_expansion(unaries, weights, cycles=cycles, hard=compact)
    return present[current]
