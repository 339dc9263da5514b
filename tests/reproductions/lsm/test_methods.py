"""LSM adapters: the tasks' numpy contracts in and out of ``LSM.forward`` (sign conventions, padding,
references), checked with a recording stand-in model and with a real untrained LSM."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reproductions.lsm import methods


class Recorder(nn.Module):
    """Returns a fixed solution and remembers what it was given (to check the adapters' wiring)."""

    size_multiple = 32

    def __init__(self, value):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.value = value
        self.calls = []

    def forward(self, task, inputs):
        from reproductions.lsm.model import LSMOutput

        self.calls.append((task, {k: v.clone() for k, v in inputs.items()}))
        first = next(iter(inputs.values()))
        channels = 2 if task == "flow" else 1
        solution = torch.zeros(first.shape[0], channels, *first.shape[-2:])
        for c in range(channels):
            solution[:, c] = self.value[c] if isinstance(self.value, tuple) else self.value
        return LSMOutput(solution=solution)


def _images(height=20, width=30, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)]


def test_stereo_adapter_signs_and_roles():
    left, right = _images()
    model = Recorder(-2.5)  # u = -2.5: the left-to-right solve of a scene at disparity 2.5
    disparity = methods.predict_stereo(model, left, right)
    assert disparity.shape == (20, 30) and disparity.dtype == np.float32 and np.allclose(disparity, 2.5)
    task, inputs = model.calls[-1]
    assert task == "stereo" and tuple(inputs["target"].shape) == (1, 3, 32, 32)
    assert torch.allclose(inputs["target"][0, :, :20, :30], torch.from_numpy(left).permute(2, 0, 1) / 255.0)
    assert torch.allclose(inputs["source"][0, :, :20, :30], torch.from_numpy(right).permute(2, 0, 1) / 255.0)
    model = Recorder(2.5)  # right-to-left: target = right, u = +d
    assert np.allclose(methods.predict_stereo(model, left, right, direction="right-to-left"), 2.5)
    _, inputs = model.calls[-1]
    assert torch.allclose(inputs["target"][0, :, :20, :30], torch.from_numpy(right).permute(2, 0, 1) / 255.0)
    with pytest.raises(ValueError, match="direction"):
        methods.predict_stereo(model, left, right, direction="up")


def test_flow_interactive_and_video_adapters():
    first, second = _images()
    flow = methods.predict_flow(Recorder((1.5, -0.5)), first, second)
    assert flow.shape == (20, 30, 2) and np.allclose(flow[..., 0], 1.5) and np.allclose(flow[..., 1], -0.5)

    scribbles = np.full((20, 30), 255, np.uint8)
    scribbles[5, 5], scribbles[15, 25] = 1, 0
    model = Recorder(0.3)  # x > 0 everywhere: P(fg) = (tanh x + 1) / 2 > 0.5
    mask = methods.predict_interactive(model, first, scribbles)
    assert mask.dtype == bool and mask.shape == (20, 30) and mask.all()
    assert not methods.predict_interactive(Recorder(-0.3), first, scribbles).any()
    _, inputs = model.calls[-1]
    assert inputs["foreground"].dtype == torch.bool and inputs["foreground"].sum() == 1
    assert inputs["background"][0, 0, 15, 25] and not inputs["background"][0, 0, 25:, :].any()  # padding: no seeds

    frames = np.stack([first, second, first])
    first_mask = np.zeros((20, 30), bool)
    first_mask[:10] = True
    model = Recorder(1.0)
    masks = methods.predict_video(model, frames, first_mask)
    assert masks.shape == (3, 20, 30) and (masks[0] == first_mask).all() and masks[1:].all()
    _, inputs = model.calls[-1]  # frame 2: references = frame 0 with the given mask, frame 1 with its estimate
    refs = inputs["reference_masks"][0, :, 0, :20, :30]
    assert torch.equal(refs[0].bool(), torch.from_numpy(first_mask)) and refs[1].bool().all()
    assert torch.allclose(inputs["reference_images"][0, 1, :, :20, :30], torch.from_numpy(second).permute(2, 0, 1) / 255)


def test_adapters_reject_bad_input():
    first, second = _images()
    model = Recorder(0.0)
    with pytest.raises(ValueError, match="scribbles"):
        methods.predict_interactive(model, first, np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="image2"):
        methods.predict_flow(model, first, second[:10])
    with pytest.raises(ValueError, match="frames"):
        methods.predict_video(model, first, np.zeros((20, 30), bool))


def test_real_untrained_lsm_through_every_adapter():
    from reproductions.lsm.settings import PROFILES
    from reproductions.lsm.trained import build

    torch.manual_seed(0)
    model = build(PROFILES["smoke"]).eval()
    first, second = _images(24, 40)
    scribbles = np.full((24, 40), 255, np.uint8)
    scribbles[10:14, 18:22], scribbles[:2, :] = 1, 0
    assert methods.predict_interactive(model, first, scribbles).shape == (24, 40)
    assert methods.predict_stereo(model, first, second).shape == (24, 40)
    flow = methods.predict_flow(model, first, second)
    assert flow.shape == (24, 40, 2) and np.isfinite(flow).all()
    masks = methods.predict_video(model, np.stack([first, second]), np.zeros((24, 40), bool))
    assert masks.shape == (2, 24, 40)
