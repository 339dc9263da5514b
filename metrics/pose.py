"""3D human pose errors: MPJPE (protocol 1) and PA-MPJPE (protocol 2), action-wise mean.

Reference: facebookresearch/VideoPose3D ``common/loss.py`` (``mpjpe``, ``p_mpjpe``) and
``run.py`` (errors averaged per action over all frames, cameras and test subjects
S9/S11, then the unweighted mean of the 15 actions). Units are those of the input
(millimetres for Human3.6M). All 17 joints count, including the root, whose
root-relative error is zero (16-joint variants scale the number by 17/16).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from metrics import _checks

__all__ = ["mpjpe", "pa_mpjpe", "procrustes_align", "action_wise_mean"]


def _poses(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    pred_array = _checks.prediction(pred, "pred")
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_numeric(gt_array, "gt", allow_bool=False)
    _checks.check_same_shape(pred_array, gt_array, "pred", "gt")
    if pred_array.ndim not in (2, 3) or pred_array.shape[-1] != 3:
        raise ValueError(f"pred: expected poses of shape (N, J, 3) or (J, 3), got {tuple(pred_array.shape)}")
    _checks.check_finite(pred_array, "pred")
    _checks.check_finite(gt_array, "gt")
    if pred_array.ndim == 2:
        pred_array, gt_array = pred_array[None], gt_array[None]
    return pred_array.astype(np.float64), gt_array.astype(np.float64)


def _reduce(errors: np.ndarray, reduction: str) -> Any:
    _checks.check_choice(reduction, "reduction", ("mean", "none"))
    return float(errors.mean()) if reduction == "mean" else errors


def mpjpe(pred: Any, gt: Any, *, root: int | None = 0, reduction: str = "mean") -> Any:
    """Protocol 1: mean Euclidean joint error after subtracting the root joint from both.

    Args:
        pred: predicted 3D poses ``(N, J, 3)`` (or ``(J, 3)``).
        gt: ground truth, same shape.
        root: index of the root joint (pelvis, 0) subtracted from both poses; ``None`` to
            compare as given (VideoPose3D's ``mpjpe`` on already root-relative poses).
        reduction: ``"mean"`` over frames and joints, or ``"none"`` for ``(N,)`` per-frame
            errors (feed these to :func:`action_wise_mean`).
    """
    p, g = _poses(pred, gt)
    if root is not None:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < p.shape[1]:
            raise ValueError(f"root: expected a joint index in [0, {p.shape[1]}) or None, got {root!r}")
        p = p - p[:, root:root + 1]
        g = g - g[:, root:root + 1]
    return _reduce(np.linalg.norm(p - g, axis=-1).mean(axis=1), reduction)


def procrustes_align(pred: Any, gt: Any) -> np.ndarray:
    """Similarity transform (scale, rotation, translation) of ``pred`` onto ``gt`` per frame,
    minimising the squared error, with reflections excluded (Umeyama 1991; VideoPose3D
    ``p_mpjpe``: when ``det(R) < 0`` the last singular vector and value change sign)."""
    p, g = _poses(pred, gt)
    mu_p = p.mean(axis=1, keepdims=True)
    mu_g = g.mean(axis=1, keepdims=True)
    p0, g0 = p - mu_p, g - mu_g
    norm_p = np.sqrt((p0**2).sum(axis=(1, 2), keepdims=True))
    norm_g = np.sqrt((g0**2).sum(axis=(1, 2), keepdims=True))
    if (norm_p == 0).any() or (norm_g == 0).any():
        raise ValueError("pred: a pose has all joints at one point; Procrustes alignment is undefined")
    p0, g0 = p0 / norm_p, g0 / norm_g
    h = np.matmul(g0.transpose(0, 2, 1), p0)
    u, s, vt = np.linalg.svd(h)
    v = vt.transpose(0, 2, 1)
    r = np.matmul(v, u.transpose(0, 2, 1))
    sign = np.sign(np.linalg.det(r))[:, None]
    v[:, :, -1] *= sign
    s[:, -1] *= sign[:, 0]
    r = np.matmul(v, u.transpose(0, 2, 1))
    trace = s.sum(axis=1)[:, None, None]
    scale = trace * norm_g / norm_p
    translation = mu_g - scale * np.matmul(mu_p, r)
    return scale * np.matmul(p, r) + translation


def pa_mpjpe(pred: Any, gt: Any, *, reduction: str = "mean") -> Any:
    """Protocol 2: MPJPE after :func:`procrustes_align` of each predicted pose onto its GT."""
    p, g = _poses(pred, gt)
    aligned = procrustes_align(p, g)
    return _reduce(np.linalg.norm(aligned - g, axis=-1).mean(axis=1), reduction)


def action_wise_mean(errors: Any, actions: Sequence[str]) -> dict[str, float]:
    """Mean per action, then the unweighted mean over actions (VideoPose3D ``run.py``).

    Args:
        errors: per-frame errors ``(N,)`` (``reduction="none"``).
        actions: the action name of each frame (Human3.6M: "Walking 1" and "Walking" are
            merged by the caller if wanted; VideoPose3D strips the sub-action number).

    Returns:
        ``{action: mean error, ..., "average": unweighted mean over actions}``.
    """
    values = _checks.to_numpy(errors, "errors")
    _checks.check_numeric(values, "errors", allow_bool=False)
    _checks.check_nonempty(values, "errors")
    _checks.check_ndim(values, "errors", 1, "(N,)")
    _checks.check_no_nan(values, "errors")
    labels = list(actions)
    if len(labels) != values.size:
        raise ValueError(f"actions: expected one label per error ({values.size}), got {len(labels)}")
    result: dict[str, float] = {}
    names = np.asarray(labels, dtype=object)
    for name in dict.fromkeys(labels):
        result[str(name)] = float(values[names == name].mean())
    if "average" in result:
        raise ValueError("actions: 'average' is reserved for the mean over actions")
    result["average"] = float(np.mean(list(result.values())))
    return result
