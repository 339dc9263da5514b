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
