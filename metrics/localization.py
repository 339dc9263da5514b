"""Weakly supervised object localisation: MaxBoxAccV2 (Choe et al., CVPR 2020).

Follows clovaai/wsolevaluation: ``inference.py::normalize_scoremap`` (min-max
normalisation; a constant or NaN map becomes all zeros), ``evaluation.py``
(``compute_bboxes_from_scoremaps`` with ``multi_contour_eval=True``, ``BoxEvaluator``,
``calculate_multiple_iou``) and ``config.py::box_v2_metric``:

* CAM thresholds ``tau in np.arange(0, 1, cam_curve_interval)`` (0.01 in the standalone
  ``evaluation.py``; ``config.py`` uses 0.001);
* the map is quantised to uint8 (``(map * 255).astype(uint8)``), thresholded with
  ``cv2.threshold(..., int(tau * max), 255, THRESH_BINARY)`` (strictly greater), and
  *every* contour of ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` gives a box
  ``(x, y, x + w, y + h)`` clipped to ``(W - 1, H - 1)``; no contour gives the box
  ``(0, 0, 0, 0)``;
* IoU is pixel-inclusive (``+1`` on widths and heights); an image is correct at
  ``(tau, delta)`` when the best IoU over (estimated boxes x GT boxes) is >= delta / 100;
* ``BoxAcc(tau, delta)`` is the percentage of correct images, and MaxBoxAccV2 the mean
  over ``delta in {30, 50, 70}`` of ``max_tau BoxAcc`` (tau chosen per delta).

Score maps are taken at the evaluation resolution (wsolevaluation resizes CAMs to
224 x 224 with cubic interpolation, and GT boxes with :func:`resize_boxes`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from metrics import _checks

__all__ = ["normalize_scoremap", "resize_boxes", "boxes_from_scoremap", "box_accuracy", "max_box_acc_v2"]


def normalize_scoremap(score_map: Any) -> np.ndarray:
    """Min-max normalise to [0, 1] (float64); a constant or NaN map becomes zeros."""
    array = _checks.to_numpy(score_map, "score_map")
    _checks.check_numeric(array, "score_map")
    _checks.check_nonempty(array, "score_map")
    _checks.check_ndim(array, "score_map", 2, "(H, W)")
    array = array.astype(np.float64)
    if np.isnan(array).any() or array.min() == array.max():
        return np.zeros_like(array)
    array = array - array.min()
    return array / array.max()


def resize_boxes(boxes: Any, image_size: tuple[int, int], target_size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """wsolevaluation ``resize_bbox``: scale ``(x0, y0, x1, y1)`` boxes from ``image_size``
    ``(W, H)`` to ``target_size`` ``(W, H)`` with ``int()`` truncation."""
    array = _checks.to_numpy(boxes, "boxes").astype(np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4) as (x0, y0, x1, y1), got {tuple(array.shape)}")
    (w, h), (tw, th) = image_size, target_size
    scale = np.array([tw / w, th / h, tw / w, th / h])
    return np.trunc(array * scale).astype(np.int64)


def boxes_from_scoremap(score_map: np.ndarray, threshold: float) -> np.ndarray:
    """All contour boxes of a normalised map at one CAM threshold, ``(N, 4)`` int."""
    import cv2

    height, width = score_map.shape
    image = (score_map * 255).astype(np.uint8)
    _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if len(contours) == 0:
        return np.zeros((1, 4), dtype=np.int64)
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes, dtype=np.int64)


def _multiple_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    a = boxes_a[:, None, :].astype(np.float64)
    b = boxes_b[None, :, :].astype(np.float64)
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def box_accuracy(score_maps: Sequence[Any], gt_boxes: Sequence[Any], *,
                 iou_thresholds: Sequence[int] = (30, 50, 70),
                 cam_curve_interval: float = 0.01) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """BoxAcc curves: ``(cam_thresholds, {delta: BoxAcc(tau, delta) in %})``.

    Args:
        score_maps: one ``(H, W)`` score map per image (any real range; min-max normalised
            here, as ``normalize_scoremap``). NaN maps are rejected.
        gt_boxes: one ``(K_i, 4)`` array of ``(x0, y0, x1, y1)`` GT boxes per image in the
            score map's pixel coordinates (inclusive corners).
        iou_thresholds: IoU thresholds delta in percent.
        cam_curve_interval: step of the CAM threshold grid (0.01 or 0.001).
    """
    maps, boxes = list(score_maps), list(gt_boxes)
    if not maps:
        raise ValueError("score_maps: expected at least one score map, got none")
    if len(maps) != len(boxes):
        raise ValueError(f"score_maps and gt_boxes must have the same length, got {len(maps)} and {len(boxes)}")
    step = _checks.check_positive(cam_curve_interval, "cam_curve_interval")
    if step >= 1:
        raise ValueError(f"cam_curve_interval: expected a value in (0, 1), got {cam_curve_interval!r}")
    deltas = [int(d) for d in iou_thresholds]
    if not deltas or any(d <= 0 or d > 100 for d in deltas):
        raise ValueError(f"iou_thresholds: expected percentages in (0, 100], got {list(iou_thresholds)}")
    cam_thresholds = np.arange(0, 1, step)
    correct = {d: np.zeros(cam_thresholds.size) for d in deltas}
    for i, (score_map, gt) in enumerate(zip(maps, boxes)):
        raw = _checks.prediction(score_map, f"score_maps[{i}]")
        _checks.check_ndim(raw, f"score_maps[{i}]", 2, "(H, W)")
        _checks.check_finite(raw, f"score_maps[{i}]")
        normalised = normalize_scoremap(raw)
        gt_array = _checks.to_numpy(gt, f"gt_boxes[{i}]")
        _checks.check_numeric(gt_array, f"gt_boxes[{i}]", allow_bool=False)
        if gt_array.ndim != 2 or gt_array.shape[1] != 4 or gt_array.shape[0] == 0:
            raise ValueError(f"gt_boxes[{i}]: expected shape (K, 4) with K >= 1, got {tuple(gt_array.shape)}")
        _checks.check_finite(gt_array, f"gt_boxes[{i}]")
        if (gt_array[:, 2] < gt_array[:, 0]).any() or (gt_array[:, 3] < gt_array[:, 1]).any():
            raise ValueError(f"gt_boxes[{i}]: expected x1 >= x0 and y1 >= y0, got {gt_array.tolist()}")
        best = np.array([_multiple_iou(boxes_from_scoremap(normalised, t), gt_array).max()
                         for t in cam_thresholds])
        for d in deltas:
            correct[d] += best >= d / 100
    return cam_thresholds, {d: correct[d] * 100.0 / len(maps) for d in deltas}


def max_box_acc_v2(score_maps: Sequence[Any], gt_boxes: Sequence[Any], *,
                   iou_thresholds: Sequence[int] = (30, 50, 70), cam_curve_interval: float = 0.01) -> float:
    """MaxBoxAccV2 in percent: mean over ``iou_thresholds`` of the best BoxAcc over CAM
    thresholds (see the module docstring and :func:`box_accuracy` for the arguments)."""
    _, curves = box_accuracy(score_maps, gt_boxes, iou_thresholds=iou_thresholds,
                             cam_curve_interval=cam_curve_interval)
    return float(np.mean([curve.max() for curve in curves.values()]))
