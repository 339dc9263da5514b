"""PSNR against scikit-image; WRMSE / WMAE against hand-computed values."""
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from metrics import image


def test_psnr_matches_skimage_uint8_all_channels():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, size=(21, 17, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    assert image.psnr(pred, gt, data_range=255) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=255))


def test_psnr_is_dataset_mean_of_per_image_values():
    rng = np.random.default_rng(1)
    gts = [rng.random((8, 9, 3)), rng.random((5, 7, 3))]
    preds = [np.clip(g + rng.normal(0, s, g.shape), 0, 1) for g, s in zip(gts, (0.05, 0.2))]
    per_image = [peak_signal_noise_ratio(g, p, data_range=1.0) for g, p in zip(gts, preds)]
    np.testing.assert_allclose(image.psnr(preds, gts, data_range=1.0, reduction="none"), per_image)
    assert image.psnr(preds, gts, data_range=1.0) == pytest.approx(np.mean(per_image))
    # not the PSNR of the pooled MSE
    pooled = 10 * np.log10(1 / np.mean(np.concatenate([((p - g) ** 2).ravel() for p, g in zip(preds, gts)])))
    assert abs(image.psnr(preds, gts, data_range=1.0) - pooled) > 0.1


def test_psnr_uint8_no_wraparound_and_identical_is_inf():
    gt = np.array([[0, 255]], dtype=np.uint8)
    pred = np.array([[255, 255]], dtype=np.uint8)
    assert image.psnr(pred, gt, data_range=255) == pytest.approx(10 * np.log10(2))
    assert image.psnr(gt, gt, data_range=255) == float("inf")


def test_to_uint8_matches_kair_single2uint():
    x = np.array([-0.1, 0.0, 0.5, 0.999, 1.2])
    np.testing.assert_array_equal(image.to_uint8(x), [0, 0, 128, 255, 255])


def test_wmae_wrmse_hand_values():
    pred = np.full((2, 2), 100.0)
    gts = np.stack([np.full((2, 2), 100.0), np.full((2, 2), 151.0)])  # errors 0 and 51
    weights = np.array([3, 1])  # votes -> 0.75, 0.25
    # the benchmark's 0-255 scale (compute_WMAE_WRMSE.py reads uint8 PNGs)
    assert image.wmae(pred, gts, weights, data_range=255) == pytest.approx(0.25 * 51)
    assert image.wrmse(pred, gts, weights, data_range=255) == pytest.approx(np.sqrt(0.25 * 51**2))


# Worked example, computed by hand from the benchmark's script (zhufeida/Benchmark_EPS,
# dataset/compute_WMAE_WRMSE.py: sums of w_k * |S - G_k| and w_k * (S - G_k)^2 over all test
# images, divided by the total number of values h*w*c, square root taken once at the end).
#   image A, 1 x 2 grey: S = [10, 20]; G1 = [10, 20], G2 = [14, 23]; votes 3, 1 -> w = .75, .25
#       weighted AE = .25 * (4 + 3) = 1.75; weighted SE = .25 * (16 + 9) = 6.25; 2 values
#   image B, 1 x 1 grey: S = [100]; G1 = [90], G2 = [100]; votes 1, 1 -> w = .5, .5
#       weighted AE = .5 * 10 = 5; weighted SE = .5 * 100 = 50; 1 value
#   WMAE = (1.75 + 5) / 3 = 2.25;  WRMSE = sqrt((6.25 + 50) / 3) = sqrt(18.75) = 4.330127...
# Other readings give other numbers: mean of per-image values 2.9375 / 4.4194 (sqrt per image),
# the TV paper's N*K*H*W denominator 1.125 / 3.0619, a [0, 1] scale 2.25/255.
_WORKED_PREDS = [np.array([[10.0, 20.0]]), np.array([[100.0]])]
_WORKED_GTS = [np.array([[[10.0, 20.0]], [[14.0, 23.0]]]), np.array([[[90.0]], [[100.0]]])]
_WORKED_VOTES = [np.array([3, 1]), np.array([1, 1])]


def test_wmae_wrmse_worked_example_pooled_over_images():
    assert image.wmae(_WORKED_PREDS, _WORKED_GTS, _WORKED_VOTES, data_range=255) == pytest.approx(2.25)
    assert image.wrmse(_WORKED_PREDS, _WORKED_GTS, _WORKED_VOTES, data_range=255) == pytest.approx(np.sqrt(18.75))
    assert np.sqrt(18.75) == pytest.approx(4.330127, abs=1e-6)


def test_wmae_wrmse_scale_is_0_255_whatever_the_input_range():
    preds = [p / 255 for p in _WORKED_PREDS]
    gts = [g / 255 for g in _WORKED_GTS]
    assert image.wmae(preds, gts, _WORKED_VOTES, data_range=1) == pytest.approx(2.25)
    assert image.wrmse(preds, gts, _WORKED_VOTES, data_range=1) == pytest.approx(np.sqrt(18.75))


def test_wmae_wrmse_normalised_weights_equal_votes_and_uint8_does_not_wrap():
    weights = [v / v.sum() for v in _WORKED_VOTES]
    assert image.wmae(_WORKED_PREDS, _WORKED_GTS, weights, data_range=255) == pytest.approx(2.25)
    pred = np.array([[0, 255]], dtype=np.uint8)
    gts = np.array([[[255, 0]]], dtype=np.uint8)
    assert image.wmae(pred, gts, [1], data_range=255) == pytest.approx(255.0)


def test_wmae_wrmse_list_mismatch():
    with pytest.raises(ValueError, match="one entry per image"):
        image.wmae(_WORKED_PREDS, _WORKED_GTS[:1], _WORKED_VOTES, data_range=255)
    with pytest.raises(ValueError, match="all three as lists"):
        image.wrmse(_WORKED_PREDS, _WORKED_GTS[0], _WORKED_VOTES[0], data_range=255)


@pytest.mark.parametrize("call, message", [
    (lambda: image.psnr(np.zeros((3, 3)), np.zeros((3, 4)), data_range=1), "same shape"),
    (lambda: image.psnr(np.full((3, 3), np.nan), np.zeros((3, 3)), data_range=1), "pred: contains 9 NaN"),
    (lambda: image.psnr(np.full((3, 3), 2.0), np.zeros((3, 3)), data_range=1), r"pred: values must lie in \[0.0, 1.0\]"),
    (lambda: image.psnr(np.zeros((3, 3)), np.zeros((3, 3)), data_range=0), "data_range"),
    (lambda: image.psnr([], [], data_range=1), "at least one image"),
    (lambda: image.psnr(np.zeros((0, 3)), np.zeros((0, 3)), data_range=1), "non-empty"),
    (lambda: image.wmae(np.zeros((2, 2)), np.zeros((2, 2, 2)), [1, 1, 1], data_range=1), "weights: expected shape"),
    (lambda: image.wrmse(np.zeros((2, 2)), np.zeros((2, 3, 2)), [1, 1], data_range=1), "gts: expected shape"),
    (lambda: image.wrmse(np.zeros((2, 2)), np.zeros((2, 2, 2)), [-1, 1], data_range=1), "weights: expected non-negative"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
