"""Accuracy against torchmetrics; corruption summary against hand values."""
import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from metrics import classification as cls


def test_accuracy_matches_torchmetrics_micro():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10))
    target = rng.integers(0, 10, 200)
    reference = MulticlassAccuracy(num_classes=10, average="micro")(torch.from_numpy(logits), torch.from_numpy(target))
    assert cls.accuracy(logits, target) == pytest.approx(float(reference))
    assert cls.accuracy(logits.argmax(1), target) == pytest.approx(float(reference))


def test_corruption_summary_means():
    accuracies = {name: [0.9, 0.8, 0.7, 0.6, 0.5] for name in cls.CIFAR10C_CORRUPTIONS}
    accuracies["gaussian_noise"] = [0.4] * 5
    accuracies["speckle_noise"] = [0.0] * 5  # extra: reported, not averaged
    result = cls.corruption_summary(accuracies)
    assert result["per_corruption"]["gaussian_noise"] == pytest.approx(0.4)
    assert result["per_corruption"]["speckle_noise"] == 0.0
    assert result["mean"] == pytest.approx((14 * 0.7 + 0.4) / 15)
    np.testing.assert_allclose(result["per_severity"], (14 * np.array([0.9, 0.8, 0.7, 0.6, 0.5]) + 0.4) / 15)


@pytest.mark.parametrize("call, message", [
    (lambda: cls.accuracy(np.zeros(3), np.zeros(4)), "same shape"),
    (lambda: cls.accuracy(np.zeros((3, 2)), np.array([0, 1, 2])), r"target: labels must be in \[0, 2\)"),
    (lambda: cls.accuracy(np.array([np.nan, 1.0]), np.zeros(2)), "pred: contains 1 NaN"),
    (lambda: cls.accuracy(np.zeros(0), np.zeros(0)), "non-empty"),
    (lambda: cls.corruption_summary({"snow": [0.5]}), "missing corruptions"),
    (lambda: cls.corruption_summary({n: [1.5] for n in cls.CIFAR10C_CORRUPTIONS}), r"values must lie in \[0.0, 1.0\]"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
