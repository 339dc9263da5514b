"""MPJPE / PA-MPJPE against hand values and scikit-image's Umeyama similarity transform."""
import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from metrics import pose


def _skimage_pa(pred, gt):
    errors = []
    for p, g in zip(pred, gt):
        if hasattr(SimilarityTransform, "from_estimate"):
            transform = SimilarityTransform.from_estimate(p, g)
        else:  # older scikit-image
            transform = SimilarityTransform(dimensionality=3)
            transform.estimate(p, g)
        errors.append(np.linalg.norm(transform(p) - g, axis=-1).mean())
    return np.array(errors)


def test_pa_mpjpe_matches_skimage_umeyama_including_reflected_poses():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(50, 17, 3)) * 300
    pred = gt + rng.normal(size=gt.shape) * 40
    pred[::4] = pred[::4] * np.array([-1, 1, 1])  # reflected: the best proper rotation differs
    ours = pose.pa_mpjpe(pred, gt, reduction="none")
    np.testing.assert_allclose(ours, _skimage_pa(pred, gt), rtol=1e-9, atol=1e-9)


def test_pa_mpjpe_is_zero_for_a_similar_pose():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 17, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    pred = 2.5 * gt @ q + np.array([1.0, -2.0, 3.0])
    assert pose.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_mpjpe_root_relative_hand_value():
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, :, 0] = 100.0  # a pure translation: zero after root subtraction
    pred[0, 2, 1] = 30.0
    pred[0, 2, 2] = 40.0  # joint 2 off by 50 mm
    assert pose.mpjpe(pred, gt) == pytest.approx(50 / 3)  # the root (error 0) still counts
    assert pose.mpjpe(pred, gt, root=None) == pytest.approx((100 + 100 + np.sqrt(100**2 + 50**2)) / 3)


def test_action_wise_mean_is_unweighted_over_actions():
    errors = np.array([10.0, 10.0, 10.0, 40.0])
    result = pose.action_wise_mean(errors, ["Walk", "Walk", "Walk", "Sit"])
    assert result == {"Walk": 10.0, "Sit": 40.0, "average": 25.0}
    assert result["average"] != errors.mean()


@pytest.mark.parametrize("call, message", [
    (lambda: pose.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3))), "same shape"),
    (lambda: pose.mpjpe(np.zeros((2, 17, 2)), np.zeros((2, 17, 2))), r"expected poses of shape \(N, J, 3\)"),
    (lambda: pose.mpjpe(np.full((1, 2, 3), np.nan), np.zeros((1, 2, 3))), "pred: contains 6 NaN"),
    (lambda: pose.mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), root=5), "root"),
    (lambda: pose.pa_mpjpe(np.zeros((1, 4, 3)), np.ones((1, 4, 3))), "undefined"),
    (lambda: pose.action_wise_mean(np.zeros(3), ["a"]), "one label per error"),
    (lambda: pose.mpjpe(np.zeros((0, 17, 3)), np.zeros((0, 17, 3))), "non-empty"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
