"""Segmentation metrics: VOC confusion matrix (mIoU, pixel and class accuracy), DAVIS IoU/J
and the DeepLab/PSPNet trimap accuracy.

Protocols followed:

* **VOC** (``VOCdevkit/VOCcode/VOCevalseg.m``): pixels with ``gt == 255`` are ignored;
  one ``K x K`` confusion matrix is accumulated over the *whole dataset* (never per
  image); ``IoU_c = TP / (TP + FP + FN)``; mIoU is the mean over classes; pixel
  accuracy ``sum(diag) / sum(all)``. A prediction outside ``[0, K)`` is an error, as in
  the devkit. A class absent from both GT and prediction has an undefined IoU (NaN in
  MATLAB); :meth:`ConfusionMatrix.miou` leaves it out of the mean (torchmetrics
  ``MulticlassJaccardIndex(average="macro")`` does the same). On VOC 2012 val every
  class occurs, so this changes nothing there.
* **DAVIS** (``davis2017-evaluation``, ``davis2017/metrics.py::db_eval_iou``): void
  pixels (``gt == 255``) are removed from intersection and union; an empty union gives
  J = 1. ``evaluation.py`` drops the first and the last frame of each sequence, takes the
  mean over frames per object, and the reported J-Mean is the mean over objects.
* **DAVIS boundary F** (``davis2017/metrics.py::f_measure``, the same measure as the DAVIS
  2016 toolkit): the one-pixel boundary maps of both masks (``_seg2bmap``: a pixel is on the
  boundary when it differs from its east, south or south-east neighbour, i.e. the boundary
  shifted half a pixel towards the origin), void pixels set to background first; a boundary
  pixel matches when the other map has a boundary pixel within the tolerance, a disc of radius
  ``ceil(0.008 * ||(H, W)||)`` (8 px at 854 x 480); precision and recall of the matches give
  ``F = 2PR / (P + R)``, with the toolkit's conventions for empty maps (both empty: F = 1; one
  empty: F = 0). Sequences are averaged like J (frames ``[1:-1]``, then objects).
* **Trimap** (``hszhao/PSPNet matlab/my_script/MyVOCevalsegBoundary.m``, the DeepLab
  lineage): ``band = imdilate(gt == 255, strel('square', 2w+1)) & gt ~= 255``, i.e.
  the VOC void outline dilated by a ``(2w+1) x (2w+1)`` square, void excluded; one
  confusion matrix over the dataset restricted to the band. "Trimap accuracy within 8 px"
  is the pixel accuracy at ``w = 8`` (17 x 17 square).
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
from scipy import ndimage

from metrics import _checks

__all__ = ["ConfusionMatrix", "iou", "davis_j", "boundary_map", "boundary_f", "davis_f", "trimap_mask",
           "trimap_accuracy", "trimap_confusion"]


class ConfusionMatrix:
    """Streaming ``K x K`` confusion matrix (rows = ground truth, columns = prediction).

    Args:
        num_classes: number of classes ``K`` (21 for VOC).
        ignore_index: GT label that is skipped (255 for VOC); ``None`` for none.

    Example:
        >>> cm = ConfusionMatrix(21)
        >>> for pred, gt in pairs: cm.update(pred, gt)   # doctest: +SKIP
        >>> cm.miou(), cm.pixel_accuracy()               # doctest: +SKIP
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        if ignore_index is not None:
            if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
                raise ValueError(f"ignore_index: expected an integer or None, got {ignore_index!r}")
            if 0 <= ignore_index < num_classes:
                raise ValueError(f"ignore_index: {ignore_index} is a valid class in [0, {num_classes}); "
                                 "choose a label outside the class range")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: Any, gt: Any, mask: Any = None) -> "ConfusionMatrix":
        """Add one prediction / ground-truth pair (any shape, the same for both).

        Args:
            pred: predicted labels in ``[0, K)``.
            gt: ground-truth labels in ``[0, K)`` or ``ignore_index``.
            mask: optional bool mask of the same shape; only pixels where it is True count
                (used for the trimap band).

        Raises:
            ValueError: shape mismatch, non-integer labels, a prediction outside
            ``[0, K)`` or a GT label that is neither a class nor ``ignore_index``.
        """
        pred_array = _checks.prediction(pred, "pred")
        gt_array = _checks.to_numpy(gt, "gt")
        _checks.check_numeric(gt_array, "gt")
        _checks.check_nonempty(gt_array, "gt")
        _checks.check_same_shape(pred_array, gt_array, "pred", "gt")
        _checks.check_integer_labels(pred_array, "pred")
        _checks.check_integer_labels(gt_array, "gt")
        pred_labels = pred_array.astype(np.int64).ravel()
        gt_labels = gt_array.astype(np.int64).ravel()
        keep = np.ones(gt_labels.shape, dtype=bool)
        if self.ignore_index is not None:
            keep &= gt_labels != self.ignore_index
        if mask is not None:
            mask_array = _checks.to_numpy(mask, "mask")
            _checks.check_binary(mask_array, "mask")
            _checks.check_same_shape(mask_array, gt_array, "mask", "gt")
            keep &= mask_array.astype(bool).ravel()
        bad_gt = keep & ((gt_labels < 0) | (gt_labels >= self.num_classes))
        if bad_gt.any():
            raise ValueError(f"gt: labels must be in [0, {self.num_classes}) or ignore_index="
                             f"{self.ignore_index}, got {np.unique(gt_labels[bad_gt])[:5].tolist()}")
        bad_pred = (pred_labels < 0) | (pred_labels >= self.num_classes)
        if bad_pred.any():
            raise ValueError(f"pred: labels must be in [0, {self.num_classes}), "
                             f"got {np.unique(pred_labels[bad_pred])[:5].tolist()}")
        index = gt_labels[keep] * self.num_classes + pred_labels[keep]
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, -1)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add the counts of ``other`` (e.g. from another worker) in place; returns self."""
        if not isinstance(other, ConfusionMatrix):
            raise ValueError(f"other: expected a ConfusionMatrix, got {_checks.describe(other)}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(f"other: expected num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
                             f"got num_classes={other.num_classes}, ignore_index={other.ignore_index}")
        self.matrix += other.matrix
        return self

    def _require_counts(self) -> None:
        if self.matrix.sum() == 0:
            raise ValueError("ConfusionMatrix: no pixel counted yet (call update() with non-ignored pixels)")

    def iou_per_class(self) -> np.ndarray:
        """``(K,)`` IoU per class, NaN for a class absent from both GT and predictions."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over classes (classes with an undefined IoU are left out), in [0, 1]."""
        self._require_counts()
        return float(np.nanmean(self.iou_per_class()))

    def pixel_accuracy(self) -> float:
        """Overall pixel accuracy ``sum(diag) / sum(all)``, in [0, 1]."""
        self._require_counts()
        return float(np.trace(self.matrix) / self.matrix.sum())

    def class_accuracy(self) -> float:
        """Mean over classes present in the GT of ``TP_c / (TP_c + FN_c)`` (per-class recall)."""
        self._require_counts()
        gt_counts = self.matrix.sum(axis=1)
        present = gt_counts > 0
        return float(np.mean(np.diag(self.matrix)[present] / gt_counts[present]))


def iou(pred: Any, gt: Any, ignore_index: int | None = None) -> Any:
    """Region similarity J of binary masks (DAVIS ``db_eval_iou``).

    ``J = |P & G & ~void| / |(P | G) & ~void|`` with ``void = (gt == ignore_index)``;
    ``J = 1`` when that union is empty (both masks empty outside void).

    Args:
        pred: binary mask(s), bool or {0, 1}, shape ``(..., H, W)``.
        gt: binary mask(s) of the same shape; may also hold ``ignore_index`` (void).
        ignore_index: void label in ``gt`` (255 for DAVIS), or None.

    Returns:
        float for a single ``(H, W)`` pair, else an array of shape ``(...)``.
    """
    pred_array = _checks.prediction(pred, "pred")
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_nonempty(gt_array, "gt")
    _checks.check_same_shape(pred_array, gt_array, "pred", "gt")
    if pred_array.ndim < 2:
        raise ValueError(f"pred: expected masks of shape (..., H, W), got shape {tuple(pred_array.shape)}")
    _checks.check_binary(pred_array, "pred")
    _checks.check_binary(gt_array, "gt", extra=() if ignore_index is None else (ignore_index,))
    void = gt_array == ignore_index if ignore_index is not None else np.zeros(gt_array.shape, bool)
    pred_mask = pred_array.astype(bool) & ~void
    gt_mask = (gt_array == 1) & ~void if gt_array.dtype != bool else gt_array
    inter = np.sum(pred_mask & gt_mask, axis=(-2, -1))
    union = np.sum(pred_mask | gt_mask, axis=(-2, -1))
    result = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return float(result) if result.ndim == 0 else result


def _check_void_is_not_foreground(gt: np.ndarray, ignore_index: int | None, name: str) -> None:
    """Refuse ground truth whose only non-zero value is the void label: raw DAVIS-2016 masks store
    the object as 255, and read with ``ignore_index=255`` the whole object would be void, so every
    prediction, even an empty one, would score J = 1."""
    if ignore_index is None or gt.dtype == bool or not np.any(gt == ignore_index) or np.any(gt == 1):
        return
    raise ValueError(f"{name}: holds the void value {ignore_index} but no foreground value 1; raw DAVIS masks store "
                     f"the object as 255: convert them to {{0, 1}} first (e.g. (gt > 127)), or pass ignore_index=None "
                     f"if 255 really is the object")


def _davis_sequences(masks: Any, gts: Any, ignore_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and ground truth as ``(O, T, H, W)`` arrays with ``T >= 3`` (DAVIS drops the first
    and last frame), or ValueError naming what was wrong (including, per object, a sequence whose
    only non-zero ground-truth value is ``ignore_index``)."""
    pred_array = _checks.prediction(masks, "masks")
    gt_array = _checks.to_numpy(gts, "gts")
    _checks.check_same_shape(pred_array, gt_array, "masks", "gts")
    if pred_array.ndim == 3:
        pred_array, gt_array = pred_array[None], gt_array[None]
    if pred_array.ndim != 4:
        raise ValueError(f"masks: expected shape (O, T, H, W) or (T, H, W), got {tuple(pred_array.shape)}")
    if pred_array.shape[1] < 3:
        raise ValueError(f"masks: need at least 3 frames (first and last are excluded), got T={pred_array.shape[1]}")
    for o in range(gt_array.shape[0]):
        _check_void_is_not_foreground(gt_array[o], ignore_index, f"gts (object {o})")
    return pred_array, gt_array


def davis_j(masks: Any, gts: Any, *, ignore_index: int | None = 255, reduction: str = "mean") -> Any:
    """DAVIS J-Mean of one sequence (semi-supervised protocol).

    Per object: J of every frame except the first and the last (``evaluation.py`` uses
    ``[1:-1]``), then the mean over those frames; then the mean over objects. For a
    dataset, collect ``reduction="none"`` per sequence and average all objects.

    Args:
        masks: predicted binary masks, ``(O, T, H, W)`` (or ``(T, H, W)`` for one object,
            the DAVIS-2016 case).
        gts: ground-truth masks of the same shape, {0, 1} with ``ignore_index`` as void.
        ignore_index: void label (255), or None.
        reduction: ``"mean"`` (float, mean over objects) or ``"none"`` (``(O,)``).

    Raises:
        ValueError: fewer than 3 frames (nothing left once first and last are dropped); an
            object whose ground truth holds ``ignore_index`` but never 1 (raw DAVIS-2016 masks,
            stored 0/255, would otherwise be all void and score J = 1 for any prediction).
    """
    _checks.check_choice(reduction, "reduction", ("mean", "none"))
    pred_array, gt_array = _davis_sequences(masks, gts, ignore_index)
    per_frame = iou(pred_array[:, 1:-1], gt_array[:, 1:-1], ignore_index)
    per_object = np.asarray(per_frame, dtype=np.float64).reshape(pred_array.shape[0], -1).mean(axis=1)
    return float(per_object.mean()) if reduction == "mean" else per_object


def boundary_map(mask: Any) -> np.ndarray:
    """One-pixel boundary map of a binary mask, the DAVIS / BSDS ``seg2bmap`` convention.

    ``b_p = m_p xor m_E(p)  or  m_p xor m_S(p)  or  m_p xor m_SE(p)`` with the east, south and
    south-east neighbours, which are 0 outside the image; on the last row only the east
    neighbour is compared, on the last column only the south one, and the bottom-right pixel is
    never a boundary (exactly as ``_seg2bmap`` of the DAVIS toolkit, after D. Martin's BSDS code).

    Args:
        mask: ``(H, W)`` bool or {0, 1}.

    Returns:
        bool ``(H, W)``.

    Raises:
        ValueError: not 2-D, empty or not binary.
    """
    array = _checks.prediction(mask, "mask")
    _checks.check_ndim(array, "mask", 2, "(H, W)")
    _checks.check_binary(array, "mask")
    seg = array.astype(bool)
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_f(pred: Any, gt: Any, *, bound_th: float = 0.008, ignore_index: int | None = 255) -> float:
    """DAVIS boundary F-measure of one frame (``f_measure`` of the DAVIS toolkit).

    Boundaries of ``pred`` and ``gt`` (void pixels, ``gt == ignore_index``, set to background in
    both first) by :func:`boundary_map`; a predicted boundary pixel is a match when a ground-truth
    boundary pixel lies within the tolerance disc (and vice versa); ``P`` = matched predicted /
    predicted boundary pixels, ``R`` = matched ground-truth / ground-truth boundary pixels,
    ``F = 2PR / (P + R)`` (0 when ``P + R = 0``). Empty boundaries: both empty gives F = 1, only
    the prediction's gives F = 0 (P = 1, R = 0), only the ground truth's F = 0 (P = 0, R = 1).

    Args:
        pred: ``(H, W)`` binary mask.
        gt: ``(H, W)`` {0, 1} (bool allowed) with ``ignore_index`` as void.
        bound_th: tolerance: a fraction of the image diagonal when < 1 (the radius is
            ``ceil(bound_th * sqrt(H^2 + W^2))``, 8 px at 854 x 480 for the default 0.008), a
            radius in pixels when >= 1.
        ignore_index: void label in ``gt`` or None.

    Returns:
        F in [0, 1].

    Raises:
        ValueError: shapes differ, not 2-D, non-binary masks, a non-positive ``bound_th`` or one
            whose radius exceeds the image diagonal, a ground truth whose only non-zero value is
            ``ignore_index`` (raw 0/255 masks, see :func:`davis_j`).
    """
    gt_array = _checks.to_numpy(gt, "gt")
    _check_void_is_not_foreground(gt_array, ignore_index, "gt")
    return _boundary_f(pred, gt_array, bound_th=bound_th, ignore_index=ignore_index)


def _boundary_f(pred: Any, gt: Any, *, bound_th: float, ignore_index: int | None) -> float:
    """:func:`boundary_f` without the void check (a sequence checks it once over all frames: one
    frame may legitimately hold void and no object)."""
    import cv2
    from skimage.morphology import disk

    pred_array = _checks.prediction(pred, "pred")
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_nonempty(gt_array, "gt")
    _checks.check_same_shape(pred_array, gt_array, "pred", "gt")
    _checks.check_ndim(pred_array, "pred", 2, "(H, W)")
    _checks.check_binary(pred_array, "pred")
    _checks.check_binary(gt_array, "gt", extra=() if ignore_index is None else (ignore_index,))
    _checks.check_positive(bound_th, "bound_th")
    valid = gt_array != ignore_index if ignore_index is not None else np.ones(gt_array.shape, bool)
    pred_boundary = boundary_map(pred_array.astype(bool) & valid)
    gt_boundary = boundary_map((gt_array == 1) & valid)
    diagonal = float(np.hypot(*gt_array.shape))
    radius = bound_th if bound_th >= 1 else float(np.ceil(bound_th * diagonal))
    if radius > diagonal + 1:
        # past the diagonal every pixel is near every other; the disc would only cost memory
        raise ValueError(f"bound_th: the tolerance radius {radius:g} px exceeds the image diagonal "
                         f"({diagonal:.0f} px for {gt_array.shape[0]}x{gt_array.shape[1]}); expected a fraction < 1 "
                         "of the diagonal (0.008 in DAVIS) or a radius in pixels")
    footprint = disk(int(radius)).astype(np.uint8)
    pred_near = cv2.dilate(pred_boundary.astype(np.uint8), footprint).astype(bool)
    gt_near = cv2.dilate(gt_boundary.astype(np.uint8), footprint).astype(bool)
    n_pred, n_gt = int(pred_boundary.sum()), int(gt_boundary.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    precision = float((pred_boundary & gt_near).sum()) / n_pred
    recall = float((gt_boundary & pred_near).sum()) / n_gt
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def davis_f(masks: Any, gts: Any, *, bound_th: float = 0.008, ignore_index: int | None = 255,
            reduction: str = "mean") -> Any:
    """DAVIS F-Mean of one sequence (semi-supervised protocol), the counterpart of :func:`davis_j`.

    Per object: :func:`boundary_f` of every frame except the first and the last, their mean;
    then the mean over objects.

    Args:
        masks: predicted binary masks ``(O, T, H, W)`` or ``(T, H, W)``.
        gts: ground truth of the same shape, {0, 1} with ``ignore_index`` as void.
        bound_th: the tolerance of :func:`boundary_f`.
        reduction: ``"mean"`` (float) or ``"none"`` (``(O,)``).

    Raises:
        ValueError: shapes differ, fewer than 3 frames, non-binary masks, an object whose ground
            truth holds ``ignore_index`` but never 1 (raw 0/255 masks, see :func:`davis_j`).
    """
    _checks.check_choice(reduction, "reduction", ("mean", "none"))
    pred_array, gt_array = _davis_sequences(masks, gts, ignore_index)
    per_object = np.array([np.mean([_boundary_f(pred_array[o, t], gt_array[o, t], bound_th=bound_th,
                                               ignore_index=ignore_index)
                                    for t in range(1, pred_array.shape[1] - 1)])
                           for o in range(pred_array.shape[0])], dtype=np.float64)
    return float(per_object.mean()) if reduction == "mean" else per_object


MAX_TRIMAP_WIDTH = 4096


def trimap_mask(gt: Any, width: int, *, void: int = 255) -> np.ndarray:
    """Trimap band of the DeepLab/PSPNet protocol.

    ``band = dilate(gt == void, ones((2 width + 1, 2 width + 1))) & (gt != void)``
    (``MyVOCevalsegBoundary.m``: ``imdilate(gt==255, strel('square', 2w+1))``). Outside
    the image the dilation sees no void (MATLAB pads a binary dilation with 0).

    Args:
        gt: label map ``(H, W)`` whose ``void`` pixels trace the object outlines (VOC).
        width: half-width ``w`` in pixels (>= 0); ``w = 0`` keeps no pixel.

    Returns:
        bool ``(H, W)``.
    """
    gt_array = _checks.to_numpy(gt, "gt")
    _checks.check_numeric(gt_array, "gt")
    _checks.check_nonempty(gt_array, "gt")
    _checks.check_ndim(gt_array, "gt", 2, "(H, W)")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 0 <= width <= MAX_TRIMAP_WIDTH:
        raise ValueError(f"width: expected an integer in [0, {MAX_TRIMAP_WIDTH}] (the trimap band's half-width in "
                         f"pixels; the papers use up to 40), got {width!r}")
    void_mask = gt_array == void
    if width == 0:
        return np.zeros(gt_array.shape, dtype=bool)
    # a band wider than the image covers it all: the same answer with a bounded structuring element
    width = min(int(width), max(gt_array.shape))
    structure = np.ones((2 * width + 1, 2 * width + 1), dtype=bool)
    band = ndimage.binary_dilation(void_mask, structure=structure, border_value=0)
    return band & ~void_mask


def trimap_confusion(preds: Iterable[Any], gts: Iterable[Any], width: int, *, num_classes: int = 21,
                     void: int = 255) -> ConfusionMatrix:
    """One confusion matrix over the dataset restricted to each image's trimap band."""
    matrix = ConfusionMatrix(num_classes, ignore_index=void)
    count = 0
    for index, (pred, gt) in enumerate(_zip_strict(preds, gts, "preds", "gts")):
        gt_array = _checks.to_numpy(gt, f"gts[{index}]")
        matrix.update(pred, gt_array, mask=trimap_mask(gt_array, width, void=void))
        count += 1
    if count == 0:
        raise ValueError("preds: expected at least one image, got none")
    return matrix


def trimap_accuracy(preds: Iterable[Any], gts: Iterable[Any], width: int, *, num_classes: int = 21,
                    void: int = 255) -> float:
    """Pixel accuracy inside the trimap band of width ``width``, pooled over the dataset.

    Args:
        preds: predicted label maps ``(H, W)``, one per image.
        gts: ground-truth label maps (void = ``void``), one per image, same shapes.
        width: band half-width ``w`` (8 and 16 in the ADM paper).

    Returns:
        accuracy in [0, 1]. :func:`trimap_confusion` gives the matrix for mIoU and mean
        class accuracy in the band, which the PSPNet script also prints.
    """
    return trimap_confusion(preds, gts, width, num_classes=num_classes, void=void).pixel_accuracy()


def _zip_strict(first: Iterable[Any], second: Iterable[Any], name_a: str, name_b: str):
    if isinstance(first, (np.ndarray,)) or type(first).__module__.startswith("torch"):
        first = list(first)
    if isinstance(second, (np.ndarray,)) or type(second).__module__.startswith("torch"):
        second = list(second)
    first, second = list(first), list(second)
    if len(first) != len(second):
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(first)} and {len(second)}")
    return zip(first, second)
