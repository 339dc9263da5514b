"""VOT overlap against hand-computed cases and the VOT toolkit's rasterised overlap."""
import numpy as np
import pytest

from metrics import tracking


def test_overlap_hand_values_pixel_inclusive():
    boxes = np.array([[10, 10, 10, 10], [15, 10, 10, 10], [-5, 0, 10, 10], [0, 0, 0, 5]], dtype=float)
    gt = np.array([[10, 10, 10, 10], [10, 10, 10, 10], [0, 0, 10, 10], [3, 3, 0, 0]], dtype=float)
    result = tracking.overlap(boxes, gt, bounds=(100, 100))
    # shift by 5: 50 px shared, 150 px union; off-image half of the box does not count
    np.testing.assert_allclose(result, [1.0, 50 / 150, 50 / 100, 1.0])


def test_unknown_gt_frames_are_nan_and_skipped():
    boxes = np.tile([0.0, 0.0, 10.0, 10.0], (14, 1))
    gt = boxes.copy()
    gt[12] = np.nan
    gt[13] = [5, 0, 10, 10]
    values = tracking.overlap(boxes, gt, bounds=(50, 50))
    assert np.isnan(values[12])
    # frames 10, 11, 13 count (burn-in 10; frame 12 unknown): (1 + 1 + 50/150) / 3
    assert tracking.average_overlap([values]) == pytest.approx((2 + 50 / 150) / 3)


def test_average_overlap_weights_sequences_by_length():
    long = np.r_[np.zeros(10), np.full(30, 0.5)]
    short = np.r_[np.zeros(10), np.full(10, 1.0)]
    assert tracking.average_overlap([long, short]) == pytest.approx((0.5 * 40 + 1.0 * 20) / 60)


def test_overlap_matches_vot_toolkit_rasteriser():
    raster = pytest.importorskip("vot.region.raster")
    from vot.region.shapes import Rectangle

    rng = np.random.default_rng(0)
    width, height = 64, 48
    boxes = np.c_[rng.integers(-20, 60, 200), rng.integers(-20, 45, 200), rng.integers(2, 40, 200), rng.integers(2, 30, 200)]
    gt = np.c_[rng.integers(-5, 50, 200), rng.integers(-5, 40, 200), rng.integers(2, 40, 200), rng.integers(2, 30, 200)]
    ours = tracking.overlap(boxes.astype(float), gt.astype(float), bounds=(width, height))
    reference = [raster.calculate_overlap(Rectangle(*b), Rectangle(*g), bounds=(width, height)) for b, g in zip(boxes, gt)]
    np.testing.assert_allclose(ours, reference, atol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: tracking.overlap(np.zeros((2, 4)), np.zeros((3, 4)), bounds=(10, 10)), "same shape"),
    (lambda: tracking.overlap(np.zeros((2, 8)), np.zeros((2, 8)), bounds=(10, 10)), r"\(N, 4\)"),
    (lambda: tracking.overlap(np.full((1, 4), np.nan), np.zeros((1, 4)), bounds=(10, 10)), "boxes: contains 4 NaN"),
    (lambda: tracking.overlap(np.zeros((1, 4)), np.zeros((1, 4)), bounds=(0, 10)), "bounds"),
    (lambda: tracking.average_overlap([]), "at least one sequence"),
    (lambda: tracking.average_overlap([np.array([1.5])]), r"values must lie in \[0.0, 1.0\]"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
