"""LSM data: samplers' shapes and conventions, evaluation sets, helpers (smoke-built generated sets)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reproductions.lsm import data

TRAINING = ["mini-masks", "mini-video", "mini-stereo", "mini-flow"]


def _warp(image: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``(x + dx, y + dy)`` (bilinear), as the model's data term warps the source."""
    import cv2

    height, width = dx.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), xs + dx.astype(np.float32), ys + dy.astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _inside(dx, dy):
    height, width = dx.shape
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    return (xs + dx >= 1) & (xs + dx <= width - 2) & (ys + dy >= 1) & (ys + dy <= height - 2)


@pytest.mark.parametrize("direction", ["left-to-right", "right-to-left"])
def test_stereo_sign_convention_matches_a_generated_pair(smoke_ctx, direction):
    """target(p) ~ source(p + u): the warp with the sampler's u explains the pair; the opposite
    sign does not."""
    ctx = smoke_ctx()
    sample = next(iter(data.stereo_training_set(ctx.data.path("mini-stereo"), ctx.settings).dataset))
    pair = data.stereo_pair(sample, direction)
    u, valid = pair["displacement"], pair["valid"]
    assert np.isfinite(u).all() and valid.mean() > 0.9
    zero = np.zeros_like(u)
    occluded = sample["nonoccluded"] if direction == "left-to-right" else sample["nonoccluded_right"]
    errors = {}
    for sign in (1.0, -1.0):
        warped = _warp(pair["source"], sign * u, zero)
        keep = valid & occluded & _inside(sign * u, zero) & (np.abs(u) > 0.5)
        errors[sign] = float(np.abs(warped - pair["target"].astype(np.float32)).mean(axis=2)[keep].mean())
    assert errors[1.0] < 0.5 * errors[-1.0], errors
    # the sign itself: left-to-right displacements point left (u = -d <= 0), right-to-left right
    assert (np.sign(u[valid & (np.abs(u) > 0.5)]) == (-1 if direction == "left-to-right" else 1)).all()


def test_flow_convention_matches_a_generated_pair(smoke_ctx):
    ctx = smoke_ctx()
    sample = data.flow_training_set(ctx.data.path("mini-flow"), ctx.settings)[0]
    flow = sample["flow"]
    warped = _warp(sample["image2"], flow[..., 0], flow[..., 1])
    keep = sample["valid"] & _inside(flow[..., 0], flow[..., 1])
    error = np.abs(warped - sample["image1"].astype(np.float32)).mean(axis=2)[keep].mean()
    flipped = _warp(sample["image2"], -flow[..., 0], -flow[..., 1])
    assert error < 0.5 * np.abs(flipped - sample["image1"].astype(np.float32)).mean(axis=2)[keep].mean()


def test_samplers_shapes_dtypes_and_determinism(smoke_ctx):
    ctx = smoke_ctx()
    samplers = data.training_samplers(ctx, data.TASKS)
    crop = tuple(ctx.settings["train_crop"])
    side = ctx.settings["mask_side"]
    expected = {
        "interactive": ({"image": (2, 3, side, side), "foreground": (2, 1, side, side), "background": (2, 1, side, side)},
                        {"mask": (2, 1, side, side), "valid": (2, 1, side, side)}),
        "video": ({"image": (1, 3, *crop), "reference_images": (1, 2, 3, *crop), "reference_masks": (1, 2, 1, *crop)},
                  {"mask": (1, 1, *crop), "valid": (1, 1, *crop)}),
        "stereo": ({"target": (1, 3, *crop), "source": (1, 3, *crop)}, {"disparity": (1, 1, *crop), "valid": (1, 1, *crop)}),
        "flow": ({"image1": (1, 3, *crop), "image2": (1, 3, *crop)}, {"flow": (1, 2, *crop), "valid": (1, 1, *crop)}),
    }
    for task, sampler in samplers.items():
        inputs, targets = sampler(torch.Generator().manual_seed(3))
        shapes = ({k: tuple(v.shape) for k, v in inputs.items()}, {k: tuple(v.shape) for k, v in targets.items()})
        batch = ctx.settings["batch"][task]
        want = tuple({k: (batch, *s[1:]) for k, s in part.items()} for part in expected[task])
        assert shapes == want, task
        for key in ("image", "target", "source", "image1", "image2", "reference_images"):
            if key in inputs:
                assert inputs[key].dtype == torch.float32 and 0 <= inputs[key].min() and inputs[key].max() <= 1
        assert targets["valid"].dtype == torch.bool
        again, _ = sampler(torch.Generator().manual_seed(3))
        assert all(torch.equal(inputs[k], again[k]) for k in inputs), f"{task} sampler is not seeded"
    inputs, targets = samplers["interactive"](torch.Generator().manual_seed(0))
    assert inputs["foreground"].any() and inputs["background"].any()
    assert not (inputs["foreground"] & inputs["background"]).any()
    # foreground seeds lie on the object (up to the any-pixel downscaling of the strokes' edges)
    on_object = targets["mask"].bool()[inputs["foreground"]].float().mean()
    assert on_object > 0.8


def test_scribble_seeds_and_resizing_golden():
    strokes = np.array([[255, 3, 3], [7, 255, 255]], np.uint8)
    truth = np.array([[1, 1, 255], [0, 0, 1]], np.uint8)
    # stroke on the object -> 1, on the background -> 0, on void -> dropped, no stroke -> 255
    assert data.scribble_seeds(strokes, truth).tolist() == [[255, 1, 255], [0, 255, 255]]
    thin = np.zeros((4, 4), bool)
    thin[0, 0] = True
    assert data.resize_indicator(thin, 2, 2, rule="any").tolist() == [[True, False], [False, False]]
    assert data.resize_indicator(thin, 2, 2, rule="majority").tolist() == [[False, False], [False, False]]
    assert data.pad_to_multiple(48, 65, 32) == (64, 96)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="direction"):
        data.stereo_pair({"left": np.zeros((2, 2, 3)), "right": np.zeros((2, 2, 3)), "disparity": np.zeros((2, 2))},
                         "up-down")
    with pytest.raises(ValueError, match="disparity_right"):
        data.stereo_pair({"left": np.zeros((2, 2, 3)), "right": np.zeros((2, 2, 3)), "disparity": np.zeros((2, 2))},
                         "right-to-left")
    with pytest.raises(ValueError, match="task"):
        data.check_task("segmentation")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        data.image_tensor(np.zeros((2, 2, 4), np.uint8))


def test_evaluation_sets_read_the_generated_validation_splits(smoke_ctx):
    ctx = smoke_ctx()
    scenes = list(data.interactive_samples(ctx, "mini-masks", None))
    assert scenes and all(((s.inputs["scribbles"] == 1).any() and (s.inputs["scribbles"] == 0).any()) for s in scenes)
    sequences = list(data.video_sequences(ctx, "mini-video", None, frames=4))
    assert sequences and all(s.inputs["frames"].shape[0] == 4 and s.truth["masks"].shape[0] == 4 for s in sequences)
    assert all((s.inputs["first_mask"] == (s.truth["masks"][0] == 1)).all() for s in sequences)
    stereo = list(data.stereo_samples(ctx, "mini-stereo", None))
    assert stereo and all(s.truth["disparity_right"] is not None for s in stereo)
    train = (ctx.data.path("mini-stereo") / "train.txt").read_text().split()
    assert not {s.name for s in stereo} & set(train)
    flows = list(data.flow_samples(ctx, "mini-flow", None))
    assert flows and all(s.truth["flow"].shape[:2] == s.inputs["image1"].shape[:2] for s in flows)


def test_missing_dataset_is_data_unavailable(smoke_ctx, tmp_path, monkeypatch):
    from suite.data import registry

    monkeypatch.setenv(registry.ENV_DATA, str(tmp_path))
    monkeypatch.setattr(registry, "default_data_root", lambda: tmp_path / "nothing")
    ctx = smoke_ctx()
    with pytest.raises(data.DataUnavailable, match="davis2016"):
        list(data.video_sequences(ctx, "davis2016", 1))
