"""Image restoration metrics: PSNR (colour denoising) and WRMSE / WMAE (edge-preserving
smoothing benchmark of Zhu et al., TIP 2019).

PSNR follows the KAIR / Restormer colour-denoising protocol (cszn/KAIR
``main_test_dncnn.py`` + ``utils/utils_image.py::calculate_psnr``; swz30/Restormer
``Denoising/test_gaussian_color_denoising.py``): the restored image is clamped to
[0, 1] and rounded to uint8 (:func:`to_uint8`), PSNR ``10 log10(255^2 / MSE)`` is
computed on *all* RGB channels (no Y channel, no border crop), per image, and the
reported number is the arithmetic mean of the per-image PSNRs (not the PSNR of the pooled
MSE, which is what ``torchmetrics.PeakSignalNoiseRatio(dim=None)`` returns).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from metrics import _checks

__all__ = ["psnr", "to_uint8", "wrmse", "wmae"]


def to_uint8(image: Any) -> np.ndarray:
    """KAIR ``single2uint``: ``uint8(round(clip(image, 0, 1) * 255))`` for a [0, 1] float image."""
    array = _checks.prediction(image, "image")
    return np.uint8(np.round(np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0))


def _image_pair(pred: Any, gt: Any, data_range: float, index: str = "") -> tuple[np.ndarray, np.ndarray]:
    pred_array = _checks.prediction(pred, f"pred{index}")
    gt_array = _checks.to_numpy(gt, f"gt{index}")
    _checks.check_numeric(gt_array, f"gt{index}")
    _checks.check_nonempty(gt_array, f"gt{index}")
    _checks.check_same_shape(pred_array, gt_array, f"pred{index}", f"gt{index}")
    _checks.check_ndim(pred_array, f"pred{index}", (2, 3), "(H, W) or (H, W, C)")
    _checks.check_finite(pred_array, f"pred{index}")
    _checks.check_finite(gt_array, f"gt{index}")
    _checks.check_range(pred_array, f"pred{index}", 0.0, data_range)
    _checks.check_range(gt_array, f"gt{index}", 0.0, data_range)
    # float64 before subtracting: uint8 differences wrap around.
    return pred_array.astype(np.float64), gt_array.astype(np.float64)


def _is_collection(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def psnr(pred: Any, gt: Any, *, data_range: float, reduction: str = "mean") -> Any:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB.

    The MSE is over all pixels and all channels of one image. Identical images give
    ``inf`` (KAIR returns ``float('inf')``), and so does a dataset mean containing one.

    Args:
        pred: restored image ``(H, W)`` or ``(H, W, C)``, values in ``[0, data_range]``;
            or a list/tuple of such images (sizes may differ between images).
        gt: clean image(s), same shape(s).
        data_range: peak value: 255 for uint8 images (the KAIR protocol), 1 for [0, 1]
            floats. Required: skimage infers 1 for floats and 255 for uint8, and a wrong
            guess shifts PSNR by 48 dB.
        reduction: for a list of images, ``"mean"`` (the dataset mean of per-image PSNRs)
            or ``"none"`` (a ``(N,)`` array). Ignored for a single pair.

    Returns:
        float (one pair or the mean), or an array for ``reduction="none"``.

    Raises:
        ValueError: shapes differ, NaN/inf, values outside ``[0, data_range]``, empty input.
    """
    span = _checks.check_positive(data_range, "data_range")
    _checks.check_choice(reduction, "reduction", ("mean", "none"))
    if _is_collection(pred) or _is_collection(gt):
        if not (_is_collection(pred) and _is_collection(gt)):
            raise ValueError(f"pred and gt: pass both as lists of images or both as single images, got "
                             f"{_checks.describe(pred)} and {_checks.describe(gt)}")
        if len(pred) != len(gt):
            raise ValueError(f"pred and gt must hold the same number of images, got {len(pred)} and {len(gt)}")
        if len(pred) == 0:
            raise ValueError("pred: expected at least one image, got an empty list")
        values = np.array([_psnr_single(*_image_pair(p, g, span, f"[{i}]"), span)
                           for i, (p, g) in enumerate(zip(pred, gt))])
        return float(values.mean()) if reduction == "mean" else values
    return _psnr_single(*_image_pair(pred, gt, span), span)


def _psnr_single(pred: np.ndarray, gt: np.ndarray, span: float) -> float:
    mse = float(np.mean((pred - gt) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(span**2 / mse))


def _smoothing_inputs(pred: Any, gts: Any, weights: Any, span: float, index: str = ""):
    pred_array = _checks.prediction(pred, f"pred{index}")
    _checks.check_ndim(pred_array, f"pred{index}", (2, 3), "(H, W) or (H, W, C)")
    _checks.check_finite(pred_array, f"pred{index}")
    _checks.check_range(pred_array, f"pred{index}", 0.0, span)
    gts_array = _checks.to_numpy(gts, f"gts{index}")
    _checks.check_numeric(gts_array, f"gts{index}")
    _checks.check_nonempty(gts_array, f"gts{index}")
    if gts_array.shape[1:] != pred_array.shape or gts_array.ndim != pred_array.ndim + 1:
        raise ValueError(f"gts{index}: expected shape (K, *pred.shape) = (K, {', '.join(map(str, pred_array.shape))}), "
                         f"got {tuple(gts_array.shape)}")
    _checks.check_finite(gts_array, f"gts{index}")
    _checks.check_range(gts_array, f"gts{index}", 0.0, span)
    weight_array = _checks.to_numpy(weights, f"weights{index}")
    _checks.check_numeric(weight_array, f"weights{index}", allow_bool=False)
    if weight_array.shape != (gts_array.shape[0],):
        raise ValueError(f"weights{index}: expected shape ({gts_array.shape[0]},), one weight per ground truth, "
                         f"got {tuple(weight_array.shape)}")
    _checks.check_finite(weight_array, f"weights{index}")
    if (weight_array < 0).any() or weight_array.sum() <= 0:
        raise ValueError(f"weights{index}: expected non-negative votes with a positive sum, got {weight_array.tolist()}")
    normalised = weight_array.astype(np.float64) / weight_array.sum()
    return pred_array.astype(np.float64), gts_array.astype(np.float64), normalised


def _smoothing_sums(pred: Any, gts: Any, weights: Any, data_range: float) -> tuple[float, float, int]:
    """Weighted absolute and squared error sums on the 0-255 scale, and the value count
    ``sum_n H_n W_n C_n``, over one image or a list of images."""
    span = _checks.check_positive(data_range, "data_range")
    if _is_collection(pred):
        if not (_is_collection(gts) and _is_collection(weights)):
            raise ValueError("pred, gts and weights: pass all three as lists (one entry per image) or all three "
                             f"for one image, got {_checks.describe(pred)}, {_checks.describe(gts)} and "
                             f"{_checks.describe(weights)}")
        if not len(pred) == len(gts) == len(weights):
            raise ValueError(f"pred, gts and weights must hold one entry per image, got {len(pred)}, {len(gts)} "
                             f"and {len(weights)}")
        if len(pred) == 0:
            raise ValueError("pred: expected at least one image, got an empty list")
        items = [(p, g, w, f"[{i}]") for i, (p, g, w) in enumerate(zip(pred, gts, weights))]
    else:
        items = [(pred, gts, weights, "")]
    # The benchmark compares PNGs read as 0-255 values: rescale whatever range came in.
    scale = 255.0 / span
    absolute = squared = 0.0
    count = 0
    for one_pred, one_gts, one_weights, index in items:
        pred_array, gts_array, w = _smoothing_inputs(one_pred, one_gts, one_weights, span, index)
        difference = (gts_array - pred_array[None]) * scale
        absolute += float(np.dot(w, np.abs(difference).reshape(len(w), -1).sum(axis=1)))
        squared += float(np.dot(w, np.square(difference).reshape(len(w), -1).sum(axis=1)))
        count += pred_array.size
    return absolute, squared, count


_SMOOTHING_PROTOCOL = """
    Definition (Zhu, Liang, Jia, Zhang, Yu, "A Benchmark for Edge-Preserving Image Smoothing",
    IEEE TIP 2019; settled from the benchmark's own evaluation script
    ``dataset/compute_WMAE_WRMSE.py`` of zhufeida/Benchmark_EPS, read in the public repository)::

        WMAE  =      sum_n sum_k w_nk sum_p |S_n(p) - G_nk(p)|   / sum_n H_n W_n C_n
        WRMSE = sqrt(sum_n sum_k w_nk sum_p (S_n(p) - G_nk(p))^2 / sum_n H_n W_n C_n)

    * values on the 0-255 scale (the script reads the result and ground-truth PNGs as
      uint8 and subtracts in float64); inputs in ``[0, data_range]`` are rescaled by
      ``255 / data_range``, so the result is on the published scale whatever range came in;
    * the sums are pooled over the whole test set (images 0401-0500) before dividing, so
      larger images weigh more, and the square root is taken once, over the pooled weighted
      squared error (not per image, not a mean of per-image values);
    * there is no division by K: the TV-layers paper's formula (Sec. 4.5) writes
      ``N * K * H * W`` in the denominator, which would shrink every value K = 5 times; the
      published numbers (ResNet 9.03 / 5.55, copied from Zhu et al.) come from the script;
    * ``w_nk`` are the image's normalised votes (``weight_matrix.mat`` rows; the votes given
      here are divided by their sum, which leaves already normalised rows unchanged);
    * the prediction is whatever is passed: the script evaluates saved 8-bit PNGs, so round
      a float result to uint8 first (:func:`to_uint8`) to match it exactly.
"""


def wmae(pred: Any, gts: Any, weights: Any, *, data_range: float) -> float:
    """Weighted mean absolute error of edge-preserving smoothing results (Zhu et al. 2019).
    {protocol}
    Args:
        pred: smoothed image ``(H, W)`` or ``(H, W, C)`` in ``[0, data_range]``, or a
            list of them (one per test image; sizes may differ).
        gts: the image's ground truths ``(K, *pred.shape)`` (K = 5 in the benchmark), or a
            list of them.
        weights: ``(K,)`` non-negative votes of the ground truths, or a list of them.
        data_range: peak value of the inputs (255 for 8-bit images, 1 for [0, 1] floats).

    Returns:
        float, on the 0-255 scale.

    Raises:
        ValueError: shapes that do not match, NaN/inf, values outside ``[0, data_range]``,
            negative votes or votes summing to 0, lists of different lengths, empty input.
    """
    absolute, _, count = _smoothing_sums(pred, gts, weights, data_range)
    return absolute / count


def wrmse(pred: Any, gts: Any, weights: Any, *, data_range: float) -> float:
    """Weighted root-mean-square error of edge-preserving smoothing results (Zhu et al. 2019).
    {protocol}
    Args, Returns and Raises: as :func:`wmae`.
    """
    _, squared, count = _smoothing_sums(pred, gts, weights, data_range)
    return float(np.sqrt(squared / count))


wmae.__doc__ = wmae.__doc__.format(protocol=_SMOOTHING_PROTOCOL)
wrmse.__doc__ = wrmse.__doc__.format(protocol=_SMOOTHING_PROTOCOL)
