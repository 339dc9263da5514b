"""Classification accuracy and the CIFAR-10-C corruption summary.

Reference: hendrycks/robustness (CIFAR-10-C, the released ``.npy`` files: each corruption
file stacks severities 1..5 of the 10,000 test images). Reported: top-1 accuracy per
corruption and severity; per corruption the mean over the 5 severities; and the mean
over the 15 core corruptions (speckle_noise, gaussian_blur, spatter and saturate are
held-out extras and stay out of the mean). Accuracies are fractions in [0, 1].
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from metrics import _checks

__all__ = ["accuracy", "corruption_summary", "CIFAR10C_CORRUPTIONS", "CIFAR10C_EXTRA_CORRUPTIONS"]

#: The 15 core corruptions of Hendrycks & Dietterich (ICLR 2019).
CIFAR10C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
)
#: Held-out extras, reported but not averaged.
CIFAR10C_EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


def accuracy(pred: Any, target: Any) -> float:
    """Top-1 accuracy (micro average over samples).

    Args:
        pred: predicted labels ``(N,)`` (integers) or scores/logits ``(N, C)`` (argmax taken;
            ties go to the lowest class index, as ``argmax``).
        target: true labels ``(N,)``, integers in ``[0, C)`` when scores are given.

    Returns:
        fraction of correct predictions in [0, 1].
    """
    pred_array = _checks.prediction(pred, "pred")
    target_array = _checks.to_numpy(target, "target")
    _checks.check_nonempty(target_array, "target")
    _checks.check_integer_labels(target_array, "target")
    _checks.check_ndim(target_array, "target", 1, "(N,)")
    if pred_array.ndim == 2:
        if pred_array.shape[0] != target_array.shape[0]:
            raise ValueError(f"pred and target must have the same number of samples, got {pred_array.shape[0]} "
                             f"and {target_array.shape[0]}")
        if (target_array < 0).any() or (target_array >= pred_array.shape[1]).any():
            raise ValueError(f"target: labels must be in [0, {pred_array.shape[1]}) for scores of shape "
                             f"{tuple(pred_array.shape)}, got range [{target_array.min()}, {target_array.max()}]")
        labels = pred_array.argmax(axis=1)
    elif pred_array.ndim == 1:
        _checks.check_integer_labels(pred_array, "pred")
        _checks.check_same_shape(pred_array, target_array, "pred", "target")
        labels = pred_array
    else:
        raise ValueError(f"pred: expected labels (N,) or scores (N, C), got shape {tuple(pred_array.shape)}")
    return float(np.mean(labels.astype(np.int64) == target_array.astype(np.int64)))


def corruption_summary(accuracies: Mapping[str, Any], *,
                       corruptions: tuple[str, ...] = CIFAR10C_CORRUPTIONS) -> dict[str, Any]:
    """Summarise accuracies per corruption and severity.

    Args:
        accuracies: ``{corruption: [acc_severity1, ..., acc_severity5]}`` (fractions in
            [0, 1]; a mapping ``{severity: acc}`` is accepted too). Extras may be present.
        corruptions: the corruptions that enter the mean (all of them must be given).

    Returns:
        ``{"per_corruption": {name: mean over severities}, "per_severity": (S,) mean over
        the averaged corruptions per severity, "mean": mean over those corruptions}``.
    """
    if not isinstance(accuracies, Mapping) or not accuracies:
        raise ValueError(f"accuracies: expected a non-empty mapping corruption -> per-severity accuracies, "
                         f"got {_checks.describe(accuracies)}")
    missing = [c for c in corruptions if c not in accuracies]
    if missing:
        raise ValueError(f"accuracies: missing corruptions {missing} (got {sorted(accuracies)})")
    per_corruption: dict[str, float] = {}
    table = {}
    severities = None
    for name, values in accuracies.items():
        if isinstance(values, Mapping):
            values = [values[k] for k in sorted(values)]
        array = _checks.to_numpy(values, f"accuracies[{name!r}]").astype(np.float64)
        _checks.check_nonempty(array, f"accuracies[{name!r}]")
        _checks.check_ndim(array, f"accuracies[{name!r}]", 1, "(severities,)")
        _checks.check_no_nan(array, f"accuracies[{name!r}]")
        _checks.check_range(array, f"accuracies[{name!r}]", 0.0, 1.0)
        if name in corruptions:
            if severities is None:
                severities = array.size
            elif array.size != severities:
                raise ValueError(f"accuracies[{name!r}]: expected {severities} severities like the others, "
                                 f"got {array.size}")
            table[name] = array
        per_corruption[str(name)] = float(array.mean())
    stacked = np.stack([table[c] for c in corruptions])
    return {
        "per_corruption": per_corruption,
        "per_severity": stacked.mean(axis=0),
        "mean": float(stacked.mean()),
    }
