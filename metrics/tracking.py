"""Single-object tracking accuracy: VOT region overlap and the unsupervised average overlap.

Reference: votchallenge toolkit (vot-toolkit 0.9.0) ``vot/region/raster.py::calculate_overlap``
(regions rasterised inside the image bounds, IoU counted in pixels),
``vot/analysis/accuracy.py`` (``gather_overlaps``, ``SequenceAccuracy``,
``AverageAccuracy``) and ``vot/stack/vot2018/shortterm.yaml`` (the ``unsupervised``
experiment runs ``average_accuracy``: burn-in of 10 frames after the initialisation at
frame 0, per-sequence mean overlap, then the mean over sequences weighted by sequence
length).

Regions are axis-aligned rectangles ``(x, y, w, h)`` in pixels (OTB / VOT rectangle
format). As in VOT, coordinates are rounded to integers (numpy's round half to even) and a
rectangle covers the pixels ``x .. x + w - 1`` and ``y .. y + h - 1`` (pixel-inclusive:
two 10 x 10 boxes offset by 5 px in x have IoU 50 / 150). Rotated polygons (VOT2018's
own ground truth) are not supported here.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from metrics import _checks

__all__ = ["overlap", "average_overlap"]


def _pixel_span(start: np.ndarray, length: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    first = np.maximum(start, 0)
    last = np.minimum(start + length - 1, limit - 1)
    return first, last


def overlap(boxes: Any, gt: Any, *, bounds: tuple[int, int]) -> np.ndarray:
    """Per-frame region overlap (IoU in pixels inside the image).

    Args:
        boxes: predicted rectangles ``(N, 4)`` as ``(x, y, w, h)``; NaN is rejected.
        gt: ground-truth rectangles ``(N, 4)``; a row of NaN marks an unknown frame (its
            overlap is NaN and :func:`average_overlap` skips it).
        bounds: image size ``(width, height)``; pixels outside are not counted
            (always pass it: without bounds VOT scores two off-image boxes as 1).

    Returns:
        float64 ``(N,)`` overlaps in [0, 1]; two empty regions (zero width or height)
        have overlap 1, as in VOT.
    """
    pred = _checks.prediction(boxes, "boxes").astype(np.float64)
    truth = _checks.to_numpy(gt, "gt")
    _checks.check_numeric(truth, "gt", allow_bool=False)
    _checks.check_same_shape(pred, truth, "boxes", "gt")
    if pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"boxes: expected rectangles of shape (N, 4) as (x, y, w, h), got {tuple(pred.shape)}")
    _checks.check_finite(pred, "boxes")
    truth = truth.astype(np.float64)
    unknown = np.isnan(truth).any(axis=1)
    if (np.isnan(truth[unknown]).sum(axis=1) != 4).any():
        raise ValueError("gt: a row must be all NaN (unknown frame) or all finite, got partially NaN rows")
    if np.isinf(truth).any():
        raise ValueError("gt: contains infinite coordinates")
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds: expected (width, height), got {bounds!r}")
    width, height = (int(_checks.check_positive(b, "bounds")) for b in bounds)
    pred = np.round(pred)
    truth = np.round(np.where(unknown[:, None], 0.0, truth))
    empty_pred = (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
    empty_gt = (truth[:, 2] <= 0) | (truth[:, 3] <= 0)
    px0, px1 = _pixel_span(pred[:, 0], pred[:, 2], width)
    py0, py1 = _pixel_span(pred[:, 1], pred[:, 3], height)
    gx0, gx1 = _pixel_span(truth[:, 0], truth[:, 2], width)
    gy0, gy1 = _pixel_span(truth[:, 1], truth[:, 3], height)
    area_pred = np.where(empty_pred, 0, np.maximum(0, px1 - px0 + 1) * np.maximum(0, py1 - py0 + 1))
    area_gt = np.where(empty_gt, 0, np.maximum(0, gx1 - gx0 + 1) * np.maximum(0, gy1 - gy0 + 1))
    inter_w = np.maximum(0, np.minimum(px1, gx1) - np.maximum(px0, gx0) + 1)
    inter_h = np.maximum(0, np.minimum(py1, gy1) - np.maximum(py0, gy0) + 1)
    inter = np.where(empty_pred | empty_gt, 0, inter_w * inter_h)
    union = area_pred + area_gt - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    result = np.where(empty_pred & empty_gt, 1.0, result)
    return np.where(unknown, np.nan, result)


def average_overlap(sequences: Sequence[Any], *, burnin: int = 10) -> float:
    """VOT unsupervised average overlap (``average_accuracy``).

    Per sequence: the mean of the per-frame overlaps after dropping frames ``0 ..
    burnin - 1`` (the initialisation frame and the burn-in) and frames with unknown GT
    (NaN); a sequence with no frame left scores 0 (as VOT). Over sequences: the mean
    weighted by each sequence's full length (``AverageAccuracy(weighted=True)``).

    Args:
        sequences: one 1-D array of per-frame overlaps per sequence (as from
            :func:`overlap`), NaN only for unknown GT frames.
        burnin: frames skipped at the start (10 in VOT2018).

    Returns:
        average overlap in [0, 1].
    """
    items = list(sequences)
    if not items:
        raise ValueError("sequences: expected at least one sequence, got none")
    if isinstance(burnin, bool) or not isinstance(burnin, (int, np.integer)) or burnin < 0:
        raise ValueError(f"burnin: expected an integer >= 0, got {burnin!r}")
    total, frames = 0.0, 0
    for index, values in enumerate(items):
        array = _checks.to_numpy(values, f"sequences[{index}]")
        _checks.check_numeric(array, f"sequences[{index}]", allow_bool=False)
        _checks.check_nonempty(array, f"sequences[{index}]")
        _checks.check_ndim(array, f"sequences[{index}]", 1, "(T,)")
        known = array[~np.isnan(array)]
        _checks.check_range(known, f"sequences[{index}]", 0.0, 1.0)
        kept = array[burnin:]
        kept = kept[~np.isnan(kept)]
        accuracy = float(kept.mean()) if kept.size else 0.0
        total += accuracy * array.size
        frames += array.size
    return total / frames
