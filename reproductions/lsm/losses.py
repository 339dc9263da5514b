"""Training losses of LSM (Tang & Tan, CVPR 2020, Sec. 4.1).

* Interactive and video segmentation: the IoU loss of Ahmed et al. ("Optimizing Intersection-
  over-Union in Deep Neural Networks for Image Segmentation", i.e. Rahman & Wang, ISVC 2016):
  ``1 - sum(p g) / sum(p + g - p g)`` over the valid pixels of each image, p the foreground
  probability ``(tanh(x) + 1) / 2``.
* Stereo and flow: the end-point error (DispNet / FlowNet), the mean over valid pixels of
  ``||x - x_gt||_2``.

"Since our solution is estimated coarse-to-fine, we downsample the ground-truth to multiple
scales and sum the loss over all scales as in [PWC-Net]": the loss of each task is the sum over
the four pyramid levels (ground truth averaged over the valid pixels of each cell, displacements
scaled to the level's pixel units, a cell valid when any of its pixels is) plus the loss of the
final solution at the input resolution. The levels are unweighted (the paper gives no weights).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import STRIDES

__all__ = ["iou_loss", "end_point_error", "downsample_target", "task_loss"]

_TARGET_KEY = {"interactive": "mask", "video": "mask", "stereo": "disparity", "flow": "flow"}


def foreground_probability(logit: Tensor) -> Tensor:
    """``(tanh(x) + 1) / 2``, the foreground probability of the labeling logit x."""
    return (torch.tanh(logit) + 1) / 2


def iou_loss(probability: Tensor, mask: Tensor, valid: Tensor | None = None) -> Tensor:
    """Soft IoU loss ``1 - sum(p g) / sum(p + g - p g)`` per image, averaged over the batch.

    Args:
        probability: ``(B, 1, H, W)`` foreground probability in [0, 1].
        mask: ``(B, 1, H, W)`` ground truth in [0, 1] (soft at coarse levels).
        valid: ``(B, 1, H, W)`` bool, the pixels that count (all when None).

    Returns:
        A scalar; an image with neither foreground nor prediction contributes 0.
    """
    if probability.shape != mask.shape:
        raise ValueError(f"mask: expected the shape of the prediction {tuple(probability.shape)}, got "
                         f"{tuple(mask.shape)}")
    weight = torch.ones_like(mask) if valid is None else valid.to(mask.dtype)
    intersection = (probability * mask * weight).flatten(1).sum(1)
    union = ((probability + mask - probability * mask) * weight).flatten(1).sum(1)
    return (1 - intersection / union.clamp_min(1e-6)).where(union > 1e-6, torch.zeros_like(union)).mean()


def end_point_error(prediction: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean over the valid pixels of ``||prediction - target||_2`` (over the channel dim), per image,
    averaged over the batch (an image without valid pixels contributes 0).

    Shape: prediction, target ``(B, C, H, W)``; valid ``(B, 1, H, W)`` bool.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"target: expected the shape of the prediction {tuple(prediction.shape)}, got "
                         f"{tuple(target.shape)}")
    # sqrt(sum + eps): the EPE's gradient is undefined where the error is exactly 0
    error = ((prediction - target).square().sum(1, keepdim=True) + 1e-12).sqrt()
    weight = torch.ones_like(error) if valid is None else valid.to(error.dtype)
    count = weight.flatten(1).sum(1)
    return ((error * weight).flatten(1).sum(1) / count.clamp_min(1)).mean()


def downsample_target(target: Tensor, valid: Tensor, size: tuple[int, int], *, padded: tuple[int, int],
                      displacement: bool) -> tuple[Tensor, Tensor]:
    """Ground truth at a level's resolution: zero-padded to the model's padded input size, then
    averaged over the valid pixels of each cell; displacements scaled to the level's pixels.

    Returns ``(target, valid)`` at ``size``; a cell is valid when any of its pixels is.
    """
    height, width = target.shape[-2:]
    pad = (0, padded[1] - width, 0, padded[0] - height)
    weight = valid.to(target.dtype)
    values = F.pad(target * weight, pad)
    weight = F.pad(weight, pad)
    total = F.adaptive_avg_pool2d(values, size)
    share = F.adaptive_avg_pool2d(weight, size)
    out = total / share.clamp_min(1e-12)
    if displacement:
        out = out * (size[1] / padded[1])
    return out, share > 0


def _check_targets(task: str, output_solution: Tensor, targets: dict) -> tuple[Tensor, Tensor]:
    key = _TARGET_KEY[task]
    if not isinstance(targets, dict) or key not in targets or "valid" not in targets:
        raise ValueError(f"targets: task {task!r} needs keys ({key!r}, 'valid'), got "
                         f"{sorted(targets) if isinstance(targets, dict) else type(targets).__name__}")
    target, valid = targets[key], targets["valid"]
    b, c, h, w = output_solution.shape
    if not isinstance(target, Tensor) or tuple(target.shape) != (b, c, h, w):
        raise ValueError(f"targets[{key!r}]: expected shape {(b, c, h, w)} like the solution, got "
                         f"{tuple(getattr(target, 'shape', ()))}")
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or tuple(valid.shape) != (b, 1, h, w):
        raise ValueError(f"targets['valid']: expected a bool tensor of shape {(b, 1, h, w)}, got "
                         f"{getattr(valid, 'dtype', None)} {tuple(getattr(valid, 'shape', ()))}")
    return target.to(output_solution), valid.to(output_solution.device)


def task_loss(task: str, output, targets: dict, *, multiscale: bool = True) -> Tensor:
    """The training loss of ``task`` for an :class:`~reproductions.lsm.model.LSMOutput`.

    Args:
        task: ``interactive``, ``video`` (IoU loss) or ``stereo``, ``flow`` (EPE).
        output: the model's output (``solution`` and ``levels``).
        targets: ``{"mask": (B, 1, H, W) float, "valid": (B, 1, H, W) bool}`` for labeling,
            ``{"disparity": (B, 1, H, W) or "flow": (B, 2, H, W) in the solution's convention,
            "valid"}`` for correspondence (stereo: the displacement u, i.e. -disparity for a
            left-to-right pair).
        multiscale: add the loss of every level (Sec. 4.1); False: the final solution only.

    Returns:
        A scalar: the final loss plus the sum over levels.

    Raises:
        ValueError: unknown task, missing or misshapen targets.
    """
    if task not in _TARGET_KEY:
        raise ValueError(f"task: expected one of {tuple(_TARGET_KEY)}, got {task!r}")
    solution = output.solution
    target, valid = _check_targets(task, solution, targets)
    displacement = task in ("stereo", "flow")

    def one(prediction: Tensor, truth: Tensor, mask: Tensor) -> Tensor:
        if displacement:
            return end_point_error(prediction, truth, mask)
        return iou_loss(foreground_probability(prediction), truth, mask)

    loss = one(solution, target, valid)
    if multiscale and output.levels:
        finest = output.levels[-1].shape[-2:]
        # The model pads inputs to multiples of 32; the finest level has stride STRIDES[-1].
        padded = (finest[0] * STRIDES[-1], finest[1] * STRIDES[-1])
        for level in output.levels:
            truth, mask = downsample_target(target, valid, tuple(level.shape[-2:]), padded=padded,
                                            displacement=displacement)
            loss = loss + one(level, truth, mask)
    return loss
