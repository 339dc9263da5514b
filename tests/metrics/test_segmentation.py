"""Segmentation metrics against torchmetrics, independent loops and scipy/cv2 dilation."""
import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from torchmetrics.classification import BinaryJaccardIndex, MulticlassAccuracy, MulticlassJaccardIndex

from metrics import segmentation as seg


def _random_pairs(seed, count=4, classes=5):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        gt = rng.integers(0, classes, size=(12, 15))
        gt[rng.random(gt.shape) < 0.1] = 255
        pred = np.where(rng.random(gt.shape) < 0.6, np.where(gt == 255, 0, gt), rng.integers(0, classes, gt.shape))
        pairs.append((pred, gt))
    return pairs


def test_confusion_matrix_against_torchmetrics_streaming():
    pairs = _random_pairs(0)
    cm = seg.ConfusionMatrix(5, ignore_index=255)
    jaccard = MulticlassJaccardIndex(num_classes=5, ignore_index=255, average="macro")
    acc = MulticlassAccuracy(num_classes=5, ignore_index=255, average="micro")
    for pred, gt in pairs:
        cm.update(pred, gt)
        jaccard.update(torch.from_numpy(pred), torch.from_numpy(gt))
        acc.update(torch.from_numpy(pred), torch.from_numpy(gt))
    assert cm.miou() == pytest.approx(float(jaccard.compute()), abs=1e-6)
    assert cm.pixel_accuracy() == pytest.approx(float(acc.compute()), abs=1e-6)


def test_class_accuracy_and_merge_against_loop():
    pairs = _random_pairs(1)
    first, second = seg.ConfusionMatrix(5), seg.ConfusionMatrix(5)
    for k, (pred, gt) in enumerate(pairs):
        (first if k % 2 else second).update(pred, gt)
    merged = first.merge(second)
    preds = np.concatenate([p.ravel() for p, _ in pairs])
    gts = np.concatenate([g.ravel() for _, g in pairs])
    keep = gts != 255
    recalls = [np.mean(preds[keep & (gts == c)] == c) for c in range(5)]
    ious = [np.sum(keep & (preds == c) & (gts == c)) / np.sum(keep & ((preds == c) | (gts == c))) for c in range(5)]
    assert merged.class_accuracy() == pytest.approx(np.mean(recalls))
    assert merged.miou() == pytest.approx(np.mean(ious))
    assert merged.pixel_accuracy() == pytest.approx(np.mean(preds[keep] == gts[keep]))


def test_absent_class_is_left_out_of_miou():
    cm = seg.ConfusionMatrix(3)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert np.isnan(cm.iou_per_class()[2])
    assert cm.miou() == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_iou_davis_conventions_against_torchmetrics():
    rng = np.random.default_rng(2)
    pred = rng.random((6, 8, 9)) < 0.4
    gt = (rng.random((6, 8, 9)) < 0.4).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.1] = 255
    gt[0] = 0
    pred[0] = False  # empty vs empty: J = 1 (torchmetrics needs zero_division=1)
    ours = seg.iou(pred, gt, ignore_index=255)
    metric = BinaryJaccardIndex(ignore_index=255, zero_division=1)
    reference = [float(metric(torch.from_numpy(p.astype(np.int64)), torch.from_numpy(g.astype(np.int64))))
                 for p, g in zip(pred, gt)]
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    assert ours[0] == 1.0


def test_davis_j_excludes_first_and_last_frame_and_averages_objects():
    gt = np.zeros((2, 4, 2, 2), dtype=np.uint8)
    gt[:, :, 0, 0] = 1
    pred = gt.copy().astype(bool)
    pred[0, 0] = False  # first frame wrong: ignored
    pred[0, -1] = True  # last frame wrong: ignored
    pred[1, 1, 1, 1] = True  # frame 1 of object 1: J = 1/2
    np.testing.assert_allclose(seg.davis_j(pred, gt, reduction="none"), [1.0, 0.75])
    assert seg.davis_j(pred, gt) == pytest.approx(0.875)


def test_trimap_band_matches_cv2_dilate_and_scipy():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 3, size=(40, 50)).astype(np.uint8)
    gt[10:12, 5:45] = 255
    gt[25, 20] = 255
    for width in (1, 3, 8):
        void = (gt == 255).astype(np.uint8)
        reference = cv2.dilate(void, np.ones((2 * width + 1, 2 * width + 1), np.uint8)).astype(bool) & (gt != 255)
        np.testing.assert_array_equal(seg.trimap_mask(gt, width), reference)
    # band of w = 1 around an isolated void pixel is its 3x3 ring
    assert seg.trimap_mask(gt, 1)[24:27, 19:22].sum() == 8


def test_trimap_accuracy_pools_over_images():
    gt1 = np.zeros((5, 5), dtype=np.uint8)
    gt1[2, 2] = 255
    gt2 = np.ones((5, 5), dtype=np.uint8)
    gt2[0, 0] = 255
    pred1 = np.zeros((5, 5), dtype=np.uint8)
    pred1[1, 1] = 1  # 1 of the 8 band pixels wrong
    pred2 = np.ones((5, 5), dtype=np.uint8)  # 3 band pixels right
    assert seg.trimap_accuracy([pred1, pred2], [gt1, gt2], 1, num_classes=2) == pytest.approx(10 / 11)


@pytest.mark.parametrize("call, message", [
    (lambda: seg.ConfusionMatrix(3).update(np.zeros((2, 2)), np.zeros((2, 3))), "same shape"),
    (lambda: seg.ConfusionMatrix(3).update(np.full((2, 2), 3), np.zeros((2, 2))), r"pred: labels must be in \[0, 3\)"),
    (lambda: seg.ConfusionMatrix(3).update(np.zeros((2, 2)), np.full((2, 2), 7)), "gt: labels"),
    (lambda: seg.ConfusionMatrix(3).update(np.full((2, 2), 0.5), np.zeros((2, 2))), "pred: expected integer labels"),
    (lambda: seg.ConfusionMatrix(3).update(np.array([np.nan]), np.zeros(1)), "pred: contains 1 NaN"),
    (lambda: seg.ConfusionMatrix(3).miou(), "no pixel counted"),
    (lambda: seg.ConfusionMatrix(3, ignore_index=1), "ignore_index"),
    (lambda: seg.iou(np.full((2, 2), 2), np.zeros((2, 2))), "pred: expected a binary mask"),
    (lambda: seg.iou(np.zeros((0, 2)), np.zeros((0, 2))), "non-empty"),
    (lambda: seg.davis_j(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), "at least 3 frames"),
    (lambda: seg.trimap_mask(np.zeros((4, 4)), -1), "width"),
    (lambda: seg.trimap_accuracy([np.zeros((2, 2))], [], 1), "same length"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------ DAVIS boundary F (davis_f)
def _square_pair():
    """6 x 8 masks: a 3 x 3 object at rows 1-3, columns 1-3, and the prediction shifted 2 px right."""
    gt = np.zeros((6, 8), np.uint8)
    gt[1:4, 1:4] = 1
    pred = np.zeros((6, 8), bool)
    pred[1:4, 3:6] = True
    return pred, gt


def test_boundary_map_golden():
    # Worked by hand from the seg2bmap rule (a pixel differing from its E, S or SE neighbour): the
    # 3 x 3 square's boundary is shifted half a pixel towards the origin, 12 pixels.
    _, gt = _square_pair()
    expected = np.zeros((6, 8), bool)
    expected[0, 0:4] = True          # above the square, and (0, 0) through its SE neighbour
    expected[1:4, 0] = True          # left of it (E neighbour inside)
    expected[1:4, 3] = True          # its last column (E neighbour outside)
    expected[3, 1:3] = True          # its last row (S neighbour outside)
    assert (seg.boundary_map(gt) == expected).all() and expected.sum() == 12
    # last row / column rules: a mask filling the image has no boundary; one on the last row
    # compares east only, one on the last column south only
    assert not seg.boundary_map(np.ones((4, 5), bool)).any()
    edge = np.zeros((4, 5), bool)
    edge[3, 2] = True
    assert seg.boundary_map(edge)[3].tolist() == [False, True, True, False, False]


def test_boundary_f_golden_hand_computed():
    # Hand-worked (see _square_pair): tolerance ceil(0.008 * hypot(6, 8)) = ceil(0.08) = 1 px, a cross
    # (skimage disk(1)). Of the prediction's 12 boundary pixels, the 4 on its right side (column 5
    # and (0, 5)) have no ground-truth boundary pixel within the cross: P = 8/12; of the ground
    # truth's 12, (0, 0) and column 0 rows 1-3 have none: R = 8/12. F = 2/3.
    pred, gt = _square_pair()
    assert seg.boundary_f(pred, gt) == pytest.approx(2 / 3, abs=1e-12)
    assert seg.boundary_f(pred, gt, bound_th=1) == pytest.approx(2 / 3, abs=1e-12)
    # radius 2 (bound_th >= 1 is pixels): every boundary pixel is within 2 of the other map
    assert seg.boundary_f(pred, gt, bound_th=2) == pytest.approx(1.0)
    assert seg.iou(pred, gt) == pytest.approx(3 / 15)
    # empty conventions of the toolkit
    empty = np.zeros((6, 8), bool)
    assert seg.boundary_f(empty, empty.astype(np.uint8)) == 1.0
    assert seg.boundary_f(empty, gt) == 0.0 and seg.boundary_f(pred, empty.astype(np.uint8)) == 0.0


def test_boundary_f_void_pixels_are_background_in_both_maps():
    pred, gt = _square_pair()
    gt = gt.copy()
    gt[:, 4:] = 255  # void covers the prediction's extra columns
    # with void removed the prediction is columns 3 of rows 1-3 and the truth columns 1-3
    clipped = pred & (gt != 255)
    assert seg.boundary_f(pred, gt) == seg.boundary_f(clipped, np.where(gt == 255, 0, gt))


def _f_by_distance(pred, gt, radius):
    """Independent formulation: a boundary pixel matches when the Euclidean distance to the
    nearest boundary pixel of the other map is <= radius (skimage's disk(r) holds the offsets with
    dy^2 + dx^2 <= r^2), distances by scipy's exact EDT."""
    bp, bg = seg.boundary_map(pred), seg.boundary_map(gt)
    if not bp.any() or not bg.any():
        return float(bp.any() == bg.any())
    precision = (ndimage.distance_transform_edt(~bg)[bp] <= radius).mean()
    recall = (ndimage.distance_transform_edt(~bp)[bg] <= radius).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_f_against_distance_transform(seed):
    rng = np.random.default_rng(seed)
    gt = ndimage.binary_opening(ndimage.gaussian_filter(rng.random((60, 90)), 3) > 0.5)
    pred = ndimage.binary_dilation(gt, iterations=int(rng.integers(1, 5))) ^ (rng.random(gt.shape) < 0.02)
    radius = int(np.ceil(0.008 * np.hypot(60, 90)))  # 1
    assert seg.boundary_f(pred, gt.astype(np.uint8)) == pytest.approx(_f_by_distance(pred, gt, radius), abs=1e-12)
    assert seg.boundary_f(pred, gt.astype(np.uint8), bound_th=4) == pytest.approx(_f_by_distance(pred, gt, 4),
                                                                                  abs=1e-12)


def test_davis_f_excludes_first_and_last_frame_and_averages_objects():
    pred, gt = _square_pair()
    # three frames: first and last perfect, the middle one the hand-worked pair (F = 2/3)
    masks = np.stack([gt == 1, pred, gt == 1, np.zeros_like(pred)])
    truths = np.stack([gt, gt, gt, gt])
    assert seg.davis_f(masks, truths) == pytest.approx((2 / 3 + 1.0) / 2)
    two = seg.davis_f(np.stack([masks, np.stack([gt == 1] * 4)]), np.stack([truths, truths]), reduction="none")
    assert two == pytest.approx([(2 / 3 + 1.0) / 2, 1.0])
    with pytest.raises(ValueError, match="at least 3 frames"):
        seg.davis_f(masks[:2], truths[:2])
    with pytest.raises(ValueError, match="bound_th"):
        seg.boundary_f(pred, gt, bound_th=0)
    with pytest.raises(ValueError, match="pred"):
        seg.boundary_f(np.full((6, 8), 0.5), gt)
