"""Metric defaults that would silently change the answer, and options without bounds.

Generated cases: 30 raw 0/255 DAVIS sequences (hypothesis: shapes, objects, predictions) refused
by davis_j / davis_f / boundary_f with the default ignore_index, and 30 converted {0, 1, 255}
sequences scored as an independent per-frame IoU computes them; 12 out-of-range max_dist and
threshold counts; 20 trimap widths (in range: the band equals scipy's dilation; past the image:
the whole non-void image; out of range: ValueError naming width)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from metrics import edges, segmentation

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sequences(draw, raw: bool):
    objects, frames = draw(st.integers(1, 2)), draw(st.integers(3, 5))
    height, width = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    gts = (rng.random((objects, frames, height, width)) < 0.3).astype(np.uint8)
    gts[:, :, 0, 0] = 1  # every object is present somewhere
    if raw:
        gts = gts * 255  # DAVIS-2016 files: the object stored as 255
    else:
        void = rng.random(gts.shape) < 0.1
        gts[void] = 255
        gts[:, :, 0, 0] = 1
    preds = (rng.random(gts.shape) < draw(st.floats(0.0, 1.0))).astype(np.uint8)
    return preds, gts


@settings(max_examples=30, **SETTINGS)
@given(case=sequences(raw=True), empty=st.booleans())
def test_raw_davis_masks_are_refused_not_scored_perfect(case, empty):
    preds, gts = case
    if empty:
        preds = np.zeros_like(preds)
    for metric in (segmentation.davis_j, segmentation.davis_f):
        with pytest.raises(ValueError, match="void value 255 but no foreground"):
            metric(preds, gts)
    with pytest.raises(ValueError, match="gt: holds the void value"):
        segmentation.boundary_f(preds[0, 1], gts[0, 1])
    # asked for explicitly, 255 is the object: an empty prediction then scores 0, not 1
    assert segmentation.davis_j(np.zeros_like(preds), gts // 255, ignore_index=None) == 0.0


@settings(max_examples=30, **SETTINGS)
@given(case=sequences(raw=False))
def test_converted_masks_score_as_an_independent_iou(case):
    preds, gts = case
    expected = []
    for o in range(gts.shape[0]):
        values = []
        for t in range(1, gts.shape[1] - 1):  # DAVIS drops the first and last frame
            valid = gts[o, t] != 255
            p, g = (preds[o, t] == 1) & valid, (gts[o, t] == 1) & valid
            union = np.logical_or(p, g).sum()
            values.append(1.0 if union == 0 else np.logical_and(p, g).sum() / union)
        expected.append(np.mean(values))
    assert segmentation.davis_j(preds, gts) == pytest.approx(float(np.mean(expected)))
    f = segmentation.davis_f(preds, gts)
    assert 0.0 <= f <= 1.0


def _edge_case():
    rng = np.random.default_rng(0)
    return rng.random((12, 16)), [(rng.random((12, 16)) < 0.1).astype(np.uint8)]


@pytest.mark.parametrize("max_dist", [0.0, -0.01, 0.11, 1.0, 1e6, float("inf"), float("nan")])
def test_boundary_benchmark_bounds_max_dist(max_dist):
    pred, gts = _edge_case()
    with pytest.raises(ValueError, match="max_dist"):
        edges.boundary_benchmark([pred], [gts], max_dist=max_dist, thresholds=5)
    with pytest.raises(ValueError, match="max_dist"):
        edges.evaluate_image(pred, gts, max_dist=max_dist, thresholds=5)


@pytest.mark.parametrize("thresholds", [0, -3, 1001, 10**9, np.linspace(0.001, 0.999, 1001)])
def test_boundary_benchmark_bounds_the_threshold_count(thresholds):
    pred, gts = _edge_case()
    with pytest.raises(ValueError, match="thresholds"):
        edges.boundary_benchmark([pred], [gts], thresholds=thresholds)


def test_boundary_f_bounds_its_radius():
    gt = np.zeros((10, 10), np.uint8)
    gt[3:6, 3:6] = 1
    with pytest.raises(ValueError, match="bound_th"):
        segmentation.boundary_f(gt, gt, bound_th=1e7)


@settings(max_examples=20, **SETTINGS)
@given(height=st.integers(3, 10), width=st.integers(3, 10), band=st.integers(0, 25), seed=st.integers(0, 1000))
def test_trimap_width_is_bounded_and_exact(height, width, band, seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 3, (height, width)).astype(np.uint8)
    gt[rng.random((height, width)) < 0.2] = 255
    void = gt == 255
    result = segmentation.trimap_mask(gt, band)
    if band == 0:
        expected = np.zeros_like(void)
    else:
        expected = ndimage.binary_dilation(void, structure=np.ones((2 * band + 1,) * 2, bool)) & ~void
    np.testing.assert_array_equal(result, expected)
    if band >= max(height, width) and void.any():
        np.testing.assert_array_equal(result, ~void)  # the whole non-void image


@pytest.mark.parametrize("band", [-1, 4097, 10**12, 2.5, True, "3"])
def test_trimap_width_out_of_range_names_width(band):
    with pytest.raises(ValueError, match="width"):
        segmentation.trimap_mask(np.zeros((4, 4), np.uint8), band)
