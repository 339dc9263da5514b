"""Optical flow and stereo errors: end-point error and outlier rates.

Shapes: optical flow is ``(B, 2, H, W)`` (channel 0 = u, horizontal; 1 = v, vertical),
disparity is ``(B, H, W)``. Both are in pixels at ground-truth resolution (unpad and
rescale before calling). A single image is a batch of one: a ``(2, H, W)`` array is read
as two disparity maps, never as one flow field, so add the batch axis yourself.

Valid pixels (:func:`valid_mask`) are the intersection of

* the ``valid`` mask you pass (bool, or 0/1; KITTI's ``valid`` channel, Sintel's
  ``invalid`` complement, ...),
* pixels whose ground truth is finite (Middlebury-2014 / ETH3D store ``inf`` for no GT),
* for flow, pixels that are not the Middlebury unknown-flow marker ``|u| > 1e9`` or
  ``|v| > 1e9`` (``.flo`` files store 1e9 or more for unknown flow; Baker et al. 2011),
* for disparity with ``max_disparity`` set, pixels with ``|d_gt| < max_disparity``
  (RAFT-Stereo ``validate_things``: ``valid & |d| < 192``).

Aggregation is always explicit (``reduction``):

* ``"mean"``: pooled over every valid pixel of the batch. This is RAFT's
  ``validate_sintel`` (per-image EPE vectors are concatenated, then averaged) and
  ``mmflow`` ``end_point_error``. On Sintel every frame has the same size and no mask,
  so pooled equals per-image mean there; on masked data (KITTI) it does not.
* ``"per_image"``: a ``(B,)`` array, each the mean over that image's valid pixels (NaN
  for an image without any valid pixel). RAFT-Stereo's FlyingThings3D number is
  ``epe(pred, gt, valid, reduction="per_image", max_disparity=192).mean()`` summed over
  the dataset in the same way (mean per image, then mean over images), which is also
  ptlflow's ``FlowMetrics`` convention.
* ``"none"``: the per-pixel error map, ``(B, H, W)``, NaN at invalid pixels.

Reference implementations: princeton-vl/RAFT ``evaluate.py`` (``validate_sintel``,
``validate_kitti``), princeton-vl/RAFT-Stereo ``evaluate_stereo.py``
(``validate_things``, ``validate_kitti``), KITTI devkit ``flow_error`` /
``disp_error`` (D1 / Fl: error > 3 px and > 5 % of the ground-truth magnitude).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from metrics import _checks

__all__ = ["valid_mask", "epe", "bad_pixel_rate", "d1", "UNKNOWN_FLOW_THRESHOLD"]

#: Middlebury ``.flo``: a component above this magnitude marks unknown flow.
UNKNOWN_FLOW_THRESHOLD = 1e9

_REDUCTIONS = ("mean", "per_image", "none")


def _check_pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    pred_array = _checks.prediction(pred, "pred")
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_numeric(gt_array, "gt", allow_bool=False)
    _checks.check_nonempty(gt_array, "gt")
    _checks.check_same_shape(pred_array, gt_array, "pred", "gt")
    is_flow = pred_array.ndim == 4
    if is_flow and pred_array.shape[1] != 2:
        raise ValueError(f"pred: optical flow must have shape (B, 2, H, W), got {tuple(pred_array.shape)}")
    if pred_array.ndim not in (3, 4):
        raise ValueError("pred: expected flow of shape (B, 2, H, W) or disparity of shape (B, H, W), "
                         f"got shape {tuple(pred_array.shape)}")
    if not np.isfinite(pred_array).all():
        raise ValueError(f"pred: contains {int((~np.isfinite(pred_array)).sum())} infinite value(s)")
    return pred_array.astype(np.float64), gt_array.astype(np.float64)


def valid_mask(gt: Any, valid: Any = None, *, max_disparity: float | None = None) -> np.ndarray:
    """Valid-pixel mask of a flow or disparity ground truth.

    Args:
        gt: ground truth, flow ``(B, 2, H, W)`` or disparity ``(B, H, W)``.
        valid: optional mask ``(B, H, W)``, bool or values in {0, 1}.
        max_disparity: disparity only: keep pixels with ``|d_gt| < max_disparity``
            (RAFT-Stereo uses 192 on FlyingThings3D). ``None`` keeps all.

    Returns:
        bool array ``(B, H, W)``: user mask AND finite GT AND (flow) not the Middlebury
        unknown marker AND (disparity) below the cap.

    Raises:
        ValueError: wrong shapes or dtypes, ``max_disparity`` given for flow, or a
        ``valid`` that is not a binary mask of shape ``(B, H, W)``.
    """
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_numeric(gt_array, "gt", allow_bool=False)
    _checks.check_nonempty(gt_array, "gt")
    if gt_array.ndim == 4:
        if gt_array.shape[1] != 2:
            raise ValueError(f"gt: optical flow must have shape (B, 2, H, W), got {tuple(gt_array.shape)}")
        if max_disparity is not None:
            raise ValueError("max_disparity: only applies to disparity (B, H, W), got flow of shape "
                             f"{tuple(gt_array.shape)}")
        with np.errstate(invalid="ignore"):
            mask = np.isfinite(gt_array).all(axis=1)
            mask &= (np.abs(np.nan_to_num(gt_array, nan=0.0, posinf=0.0, neginf=0.0))
                     <= UNKNOWN_FLOW_THRESHOLD).all(axis=1)
    elif gt_array.ndim == 3:
        mask = np.isfinite(gt_array)
        if max_disparity is not None:
            cap = _checks.check_positive(max_disparity, "max_disparity")
            with np.errstate(invalid="ignore"):
                mask &= np.abs(np.where(mask, gt_array, 0.0)) < cap
    else:
        raise ValueError("gt: expected flow of shape (B, 2, H, W) or disparity of shape (B, H, W), "
                         f"got shape {tuple(gt_array.shape)}")
    if valid is not None:
        valid_array = _checks.to_numpy(valid, "valid")
        _checks.check_binary(valid_array, "valid")
        if valid_array.shape != mask.shape:
            raise ValueError(f"valid: expected shape {tuple(mask.shape)} (B, H, W) to match gt, "
                             f"got {tuple(valid_array.shape)}")
        mask &= valid_array.astype(bool)
    return mask


def _error_map(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    safe_gt = np.where(mask[:, None] if pred.ndim == 4 else mask, gt, 0.0)
    if pred.ndim == 4:
        return np.sqrt(np.sum((pred - safe_gt) ** 2, axis=1))
    return np.abs(pred - safe_gt)


def _gt_magnitude(gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if gt.ndim == 4:
        safe = np.where(mask[:, None], gt, 0.0)
        return np.sqrt(np.sum(safe**2, axis=1))
    return np.abs(np.where(mask, gt, 0.0))


def _reduce(values: np.ndarray, mask: np.ndarray, reduction: str, metric: str) -> Any:
    if reduction == "none":
        return np.where(mask, values, np.nan)
    if reduction == "per_image":
        counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
        sums = np.where(mask, values, 0.0).reshape(mask.shape[0], -1).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    total = int(mask.sum())
    if total == 0:
        raise ValueError(f"{metric}: no valid pixel (valid mask, finite GT, unknown-flow marker and "
                         "max_disparity together exclude every pixel)")
    return float(values[mask].sum() / total)


def epe(pred: Any, gt: Any, valid: Any = None, *, reduction: str = "mean",
        max_disparity: float | None = None) -> Any:
    """End-point error, ``||f_pred - f_gt||_2`` per pixel (``|d_pred - d_gt|`` for disparity).

    Args:
        pred: prediction, flow ``(B, 2, H, W)`` or disparity ``(B, H, W)``, finite.
        gt: ground truth, same shape; non-finite and unknown-marker pixels are invalid.
        valid: optional mask ``(B, H, W)`` (see :func:`valid_mask`).
        reduction: ``"mean"`` (pooled over all valid pixels of the batch),
            ``"per_image"`` (``(B,)`` means), ``"none"`` (``(B, H, W)``, NaN at invalid).
        max_disparity: disparity only, see :func:`valid_mask`.

    Returns:
        float for ``"mean"``, else a float64 array.

    Raises:
        ValueError: shape mismatch, NaN/inf in ``pred``, bad ``valid``, unknown
        ``reduction``, or (``"mean"``) no valid pixel at all.
    """
    _checks.check_choice(reduction, "reduction", _REDUCTIONS)
    pred_array, gt_array = _check_pair(pred, gt)
    mask = valid_mask(gt_array, valid, max_disparity=max_disparity)
    return _reduce(_error_map(pred_array, gt_array, mask), mask, reduction, "epe")


def bad_pixel_rate(pred: Any, gt: Any, valid: Any = None, *, threshold: float,
                   reduction: str = "mean", max_disparity: float | None = None) -> Any:
    """Fraction of valid pixels whose end-point error is strictly above ``threshold`` pixels.

    This is Middlebury's "bad N.0" and RAFT-Stereo's FlyingThings3D D1 (``epe > 1``,
    pooled). RAFT's flow "1px/3px/5px" numbers are the complement (fraction *below*).

    Args:
        pred, gt, valid, max_disparity: as in :func:`epe`.
        threshold: error threshold in pixels (> 0).
        reduction: ``"mean"`` (pooled fraction), ``"per_image"`` (``(B,)``), ``"none"``
            (``(B, H, W)`` of 0.0/1.0, NaN at invalid).

    Returns:
        a fraction in [0, 1] (float) or an array, as for :func:`epe`.
    """
    _checks.check_choice(reduction, "reduction", _REDUCTIONS)
    limit = _checks.check_positive(threshold, "threshold")
    pred_array, gt_array = _check_pair(pred, gt)
    mask = valid_mask(gt_array, valid, max_disparity=max_disparity)
    outliers = (_error_map(pred_array, gt_array, mask) > limit).astype(np.float64)
    return _reduce(outliers, mask, reduction, "bad_pixel_rate")


def d1(pred: Any, gt: Any, valid: Any = None, *, reduction: str = "mean",
       max_disparity: float | None = None) -> Any:
    """KITTI outlier rate (D1 for disparity, Fl for flow).

    A valid pixel is an outlier when its end-point error is > 3 px **and** > 5 % of the
    ground-truth magnitude (``|d_gt|`` or ``||f_gt||``), the KITTI 2015 devkit rule
    (``tau = [3, 0.05]`` in ``disp_error.m`` / ``flow_error.m``). Pass KITTI's own valid
    mask (``disp > 0`` for disparity PNGs, the B channel for flow PNGs).

    Returns:
        fraction in [0, 1] (multiply by 100 for the KITTI table), or per-image / per-pixel
        values as in :func:`bad_pixel_rate`.
    """
    _checks.check_choice(reduction, "reduction", _REDUCTIONS)
    pred_array, gt_array = _check_pair(pred, gt)
    mask = valid_mask(gt_array, valid, max_disparity=max_disparity)
    error = _error_map(pred_array, gt_array, mask)
    magnitude = _gt_magnitude(gt_array, mask)
    outliers = ((error > 3.0) & (error > 0.05 * magnitude)).astype(np.float64)
    return _reduce(outliers, mask, reduction, "d1")
