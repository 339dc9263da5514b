"""MaxBoxAccV2 against hand-constructed score maps whose boxes and IoUs are known exactly
(wsolevaluation conventions: +1 inclusive IoU, x1 = x + w clipped to W - 1)."""
import numpy as np
import pytest

from metrics import localization as loc


def test_boxes_from_scoremap_conventions():
    score = np.zeros((20, 30))
    score[5:10, 4:12] = 1.0  # columns 4..11, rows 5..9
    score[15:18, 20:30] = 0.5  # touches the right border
    boxes = sorted(loc.boxes_from_scoremap(score, 0.2).tolist())
    # boundingRect gives w = 8 -> x1 = x + w = 12 (one past the last column, as in wsolevaluation)
    assert boxes == [[4, 5, 12, 10], [20, 15, 29, 18]]
    assert loc.boxes_from_scoremap(np.zeros((5, 5)), 0.5).tolist() == [[0, 0, 0, 0]]


def test_max_box_acc_v2_hand_case():
    score = np.zeros((20, 30))
    score[5:10, 4:12] = 1.0
    exact_gt = np.array([[4, 5, 12, 10]])
    # second image: its box is (4, 5, 12, 10) (54 px inclusive) vs GT (4, 5, 7, 10) (24 px): IoU = 24/54 = 0.444
    half_gt = np.array([[4, 5, 7, 10]])
    curves = loc.box_accuracy([score, score], [exact_gt, half_gt], cam_curve_interval=0.1)[1]
    assert curves[30].max() == 100.0 and curves[50].max() == 50.0 and curves[70].max() == 50.0
    assert loc.max_box_acc_v2([score, score], [exact_gt, half_gt]) == pytest.approx((100 + 50 + 50) / 3)


def test_multi_contour_uses_every_contour():
    score = np.zeros((20, 30))
    score[2:6, 2:6] = 1.0  # strongest blob, far from the GT
    score[12:18, 15:25] = 0.8
    gt = np.array([[15, 12, 25, 18]])
    assert loc.max_box_acc_v2([score], [gt]) == pytest.approx(100.0)


def test_normalisation_constant_and_scale_invariance():
    assert not loc.normalize_scoremap(np.full((4, 4), 3.0)).any()
    score = np.zeros((20, 30))
    score[5:10, 4:12] = 1.0
    gt = [np.array([[4, 5, 12, 10]])]
    assert loc.max_box_acc_v2([score * 7 + 2], gt) == loc.max_box_acc_v2([score], gt)


def test_resize_boxes_truncates():
    np.testing.assert_array_equal(loc.resize_boxes([[10, 10, 99, 49]], (100, 50), (224, 224)), [[22, 44, 221, 219]])


@pytest.mark.parametrize("call, message", [
    (lambda: loc.max_box_acc_v2([], []), "at least one score map"),
    (lambda: loc.max_box_acc_v2([np.zeros((4, 4))], []), "same length"),
    (lambda: loc.max_box_acc_v2([np.full((4, 4), np.nan)], [np.zeros((1, 4))]), r"score_maps\[0\]: contains 16 NaN"),
    (lambda: loc.max_box_acc_v2([np.zeros((4, 4))], [np.zeros((1, 3))]), r"gt_boxes\[0\]: expected shape \(K, 4\)"),
    (lambda: loc.max_box_acc_v2([np.zeros((4, 4))], [np.zeros((1, 4))], cam_curve_interval=0), "cam_curve_interval"),
    (lambda: loc.max_box_acc_v2([np.zeros(4)], [np.zeros((1, 4))]), r"\(H, W\)"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
