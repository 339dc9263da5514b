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
    gts = np.stack([np.full((2, 2), 100.0), np.full((2, 2), 151.0)])  # errors 0 and 51 (= 0.2 on [0, 1])
    weights = np.array([3, 1])  # votes -> 0.75, 0.25
    assert image.wmae(pred, gts, weights, data_range=255) == pytest.approx(0.25 * 0.2)
    assert image.wrmse(pred, gts, weights, data_range=255) == pytest.approx(np.sqrt(0.25 * 0.04))


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
