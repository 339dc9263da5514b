"""Flow / stereo errors against hand-computed values and an independent numpy EPE on the
real Middlebury and Sintel ground truths (``.flo`` read here with numpy, not by the
project's readers)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from metrics import flow


def read_flo(path: Path) -> np.ndarray:
    """Middlebury .flo: float32 magic 202021.25, int32 width, height, then (u, v) interleaved."""
    with open(path, "rb") as handle:
        magic = np.fromfile(handle, np.float32, count=1)[0]
        assert magic == np.float32(202021.25), path
        width, height = np.fromfile(handle, np.int32, count=2)
        data = np.fromfile(handle, np.float32, count=2 * width * height)
    return data.reshape(height, width, 2)


def test_epe_hand_values_and_reductions():
    pred = np.zeros((2, 2, 1, 2))
    gt = np.zeros((2, 2, 1, 2))
    gt[0, :, 0, 0] = (3, 4)  # error 5
    gt[1, :, 0, 1] = (0, 1)  # error 1 (and 0 at the other pixel)
    valid = np.array([[[1, 0]], [[1, 1]]])
    assert flow.epe(pred, gt) == pytest.approx((5 + 0 + 0 + 1) / 4)
    # pooled over 3 valid pixels vs mean of per-image means (5 and 0.5)
    assert flow.epe(pred, gt, valid) == pytest.approx(6 / 3)
    np.testing.assert_allclose(flow.epe(pred, gt, valid, reduction="per_image"), [5.0, 0.5])
    dense = flow.epe(pred, gt, valid, reduction="none")
    assert dense.shape == (2, 1, 2) and np.isnan(dense[0, 0, 1])


def test_valid_from_nonfinite_unknown_marker_and_cap():
    gt = np.zeros((1, 2, 1, 3))
    gt[0, 0, 0, 1] = 1.5e9  # Middlebury unknown
    gt[0, 1, 0, 2] = np.nan
    pred = np.ones((1, 2, 1, 3))
    assert flow.valid_mask(gt).tolist() == [[[True, False, False]]]
    assert flow.epe(pred, gt) == pytest.approx(np.sqrt(2))
    disp_gt = np.array([[[10.0, 200.0, np.inf]]])
    disp_pred = np.array([[[11.0, 100.0, 0.0]]])
    assert flow.epe(disp_pred, disp_gt) == pytest.approx((1 + 100) / 2)
    assert flow.epe(disp_pred, disp_gt, max_disparity=192) == pytest.approx(1.0)


def test_bad_pixel_rate_and_kitti_d1():
    gt = np.array([[[10.0, 100.0, 50.0, 2.0]]])
    pred = np.array([[[14.0, 104.0, 50.5, 5.5]]])  # errors 4, 4, 0.5, 3.5
    assert flow.bad_pixel_rate(pred, gt, threshold=3.0) == pytest.approx(3 / 4)
    # D1: > 3 px and > 5 % of |gt|: 4 > 0.5 yes; 4 > 5 no; 0.5 no; 3.5 > 0.1 yes
    assert flow.d1(pred, gt) == pytest.approx(2 / 4)


def test_torch_input_matches_numpy():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(2, 2, 5, 6))
    assert flow.epe(torch.from_numpy(pred), torch.from_numpy(gt)) == pytest.approx(flow.epe(pred, gt))


@pytest.mark.parametrize("call, message", [
    (lambda: flow.epe(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 4))), "same shape"),
    (lambda: flow.epe(np.full((1, 3, 3), np.nan), np.zeros((1, 3, 3))), "pred: contains 9 NaN"),
    (lambda: flow.epe(np.zeros((1, 3, 3, 3)), np.zeros((1, 3, 3, 3))), "pred: optical flow"),
    (lambda: flow.epe(np.zeros((0, 3, 3)), np.zeros((0, 3, 3))), "non-empty"),
    (lambda: flow.epe(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), reduction="sum"), "reduction"),
    (lambda: flow.epe(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), np.full((1, 3, 3), 2)), "valid: expected a binary"),
    (lambda: flow.epe(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), np.ones((3, 3))), "valid: expected shape"),
    (lambda: flow.epe(np.zeros((1, 3, 3)), np.full((1, 3, 3), np.inf)), "no valid pixel"),
    (lambda: flow.epe(np.array([["a"]]), np.zeros((1, 1))), "pred: expected a bool"),
    (lambda: flow.bad_pixel_rate(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), threshold=-1), "threshold"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _zero_flow_check(paths):
    gts = [read_flo(p) for p in paths]
    # independent computation: per-image numpy EPE of the zero predictor, pooled over pixels
    errors = []
    for g in gts:
        ok = np.isfinite(g).all(-1) & (np.abs(g) <= 1e9).all(-1)
        errors.append(np.sqrt(g[..., 0].astype(np.float64) ** 2 + g[..., 1].astype(np.float64) ** 2)[ok])
    for g, e in zip(gts, errors):
        batch = np.moveaxis(g, -1, 0)[None]
        ours = flow.epe(np.zeros_like(batch), batch)
        assert ours == pytest.approx(e.mean(), rel=1e-9)
    return gts, errors


def test_zero_flow_epe_on_middlebury(shared_data):
    root = shared_data("middlebury_flow") / "other-gt-flow"
    paths = sorted(root.glob("*/flow10.flo"))
    assert len(paths) == 8
    gts, errors = _zero_flow_check(paths)
    # some Middlebury GTs hold the unknown marker; they must be excluded, not averaged in
    assert any((np.abs(g) > 1e9).any() for g in gts)


def test_zero_flow_epe_on_sintel_pooled_equals_per_image(shared_data):
    root = shared_data("mpi_sintel") / "training" / "flow"
    paths = sorted(root.glob("*/frame_0002.flo"))
    assert len(paths) == 3
    gts, errors = _zero_flow_check(paths)
    batch = np.stack([np.moveaxis(g, -1, 0) for g in gts])
    pooled = flow.epe(np.zeros_like(batch), batch)
    assert pooled == pytest.approx(np.concatenate(errors).mean(), rel=1e-9)
    # Sintel frames all have the same size and no mask: pooled == mean of per-image means
    per_image = flow.epe(np.zeros_like(batch), batch, reduction="per_image")
    assert pooled == pytest.approx(per_image.mean(), rel=1e-9)
