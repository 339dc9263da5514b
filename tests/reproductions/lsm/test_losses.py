"""reproductions.lsm.losses: the IoU loss (Rahman & Wang's soft IoU, golden values computed by hand
below), EPE, the multi-scale sum over levels with downsampled ground truth, bad targets."""
from __future__ import annotations

import pytest
import torch

from reproductions.lsm import losses
from reproductions.lsm.model import LSMOutput


def test_iou_loss_golden_values():
    p = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    g = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])
    # intersection 1 + 0.5 = 1.5, union (1) + (1) + (0) + (1) = 3  ->  1 - 0.5
    assert float(losses.iou_loss(p, g)) == pytest.approx(0.5)
    valid = torch.tensor([[[[True, True], [True, False]]]])
    # the last pixel ignored: union 2, intersection 1.5
    assert float(losses.iou_loss(p, g, valid)) == pytest.approx(0.25)
    assert float(losses.iou_loss(g, g)) == pytest.approx(0.0)
    # empty prediction and empty mask: no error, zero loss
    assert float(losses.iou_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))) == 0.0


def test_end_point_error_golden_values():
    pred = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]])  # (1, 2, 1, 2)
    gt = torch.zeros(1, 2, 1, 2)
    assert float(losses.end_point_error(pred, gt)) == pytest.approx(2.5, abs=1e-5)  # (5 + 0) / 2
    valid = torch.tensor([[[[True, False]]]])
    assert float(losses.end_point_error(pred, gt, valid)) == pytest.approx(5.0, abs=1e-5)


def test_downsample_target_respects_valid_and_scales_displacements():
    target = torch.tensor([[[[2.0, 4.0], [6.0, 100.0]]]])
    valid = torch.tensor([[[[True, True], [True, False]]]])
    out, mask = losses.downsample_target(target, valid, (1, 1), padded=(2, 2), displacement=True)
    assert float(out) == pytest.approx(4.0 / 2)  # mean of the valid 2, 4, 6, halved (2 px -> 1 px)
    assert bool(mask)
    out, mask = losses.downsample_target(target, valid, (1, 1), padded=(2, 2), displacement=False)
    assert float(out) == pytest.approx(4.0)
    # padding beyond the image is invalid: a level cell made only of padding is not counted
    out, mask = losses.downsample_target(target, valid, (1, 2), padded=(2, 4), displacement=False)
    assert mask.tolist() == [[[[True, False]]]]


def test_task_loss_sums_levels():
    b, h, w = 1, 64, 64
    gt = torch.full((b, 1, h, w), 3.0)
    valid = torch.ones(b, 1, h, w, dtype=torch.bool)
    levels = [torch.zeros(b, 1, h // s, w // s) for s in (32, 16, 8, 4)]
    out = LSMOutput(solution=torch.zeros(b, 1, h, w), levels=levels)
    # the level at stride s sees a ground truth of 3 / s pixels
    expected = 3.0 + sum(3.0 / s for s in (32, 16, 8, 4))
    loss = losses.task_loss("stereo", out, {"disparity": gt, "valid": valid})
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(losses.task_loss("stereo", out, {"disparity": gt, "valid": valid}, multiscale=False)) == \
        pytest.approx(3.0, rel=1e-5)
    mask = torch.ones(b, 1, h, w)
    labeling = LSMOutput(solution=torch.full((b, 1, h, w), 20.0), levels=[torch.full_like(x, 20.0) for x in levels])
    assert float(losses.task_loss("video", labeling, {"mask": mask, "valid": valid})) == pytest.approx(0.0, abs=1e-6)


def test_task_loss_bad_targets():
    out = LSMOutput(solution=torch.zeros(1, 2, 8, 8), levels=[])
    valid = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"targets: task 'flow' needs keys \('flow', 'valid'\)"):
        losses.task_loss("flow", out, {"disparity": torch.zeros(1, 2, 8, 8), "valid": valid})
    with pytest.raises(ValueError, match=r"targets\['flow'\]: expected shape \(1, 2, 8, 8\)"):
        losses.task_loss("flow", out, {"flow": torch.zeros(1, 1, 8, 8), "valid": valid})
    with pytest.raises(ValueError, match=r"targets\['valid'\]: expected a bool tensor"):
        losses.task_loss("flow", out, {"flow": torch.zeros(1, 2, 8, 8), "valid": valid.float()})
    with pytest.raises(ValueError, match="task: expected one of"):
        losses.task_loss("depth", out, {})
