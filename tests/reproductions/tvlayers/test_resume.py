"""A killed training of Tables 2-5 resumes from its checkpoint to the same weights as an uninterrupted
run (the shape of Table 6's test): train, kill right after a checkpoint, resume, compare."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reproductions.tvlayers import table4, table5
from reproductions.tvlayers.classification import AllConvNet, train_classifier
from reproductions.tvlayers.wsol import build_backbone, train_cam
from suite.harness.trained import Checkpoint


class _Interrupt(Exception):
    pass


class _Killing(Checkpoint):
    """A checkpoint that saves once at step ``kill_at`` and then stops the training, as a kill would."""

    def __init__(self, path, kill_at: int):
        super().__init__(path)
        self.kill_at = kill_at

    def due(self, step=None):
        return step == self.kill_at

    def save(self, state):
        super().save(state)
        raise _Interrupt


def _killed_then_resumed(train, tmp_path, kill_at):
    """(uninterrupted result, resumed result, the checkpoint's step)."""
    straight = train(None)
    path = tmp_path / "ckpt.pt"
    with pytest.raises(_Interrupt):
        train(_Killing(path, kill_at))
    checkpoint = Checkpoint(path)
    saved_step = checkpoint.load()["step"]
    return straight, train(checkpoint), saved_step


def _same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _resumes_to_the_same_weights(train, tmp_path, *history_keys):
    """Kill after step 2's checkpoint, resume; the weights and the named history entries must
    equal an uninterrupted run's. Returns (uninterrupted, resumed)."""
    straight, resumed, step = _killed_then_resumed(train, tmp_path, kill_at=2)
    assert step == 2
    _same_state(straight["state"], resumed["state"])
    for key in history_keys:
        assert resumed["history"][key] == straight["history"][key], key
    return straight, resumed


def _images(count, side, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), dtype=np.uint8)


def test_table2_classifier_resumes_to_the_same_weights(tmp_path):
    images, labels = _images(10, 16), np.arange(10) % 3

    def train(checkpoint):
        torch.manual_seed(0)
        model = AllConvNet(widths=(4, 4), classes=3, tv_mode="sharp")
        # batch 4 of 10 images: the epoch wraps at step 3, after the kill at step 2 (the batch order
        # and the augmentation stream must both come back)
        return train_classifier(model, images, labels, steps=5, batch_size=4, lr=0.05, weight_decay=5e-4, seed=1,
                                checkpoint=checkpoint, log_every=1)

    _resumes_to_the_same_weights(train, tmp_path, "step", "lam")


def test_table3_cam_resumes_to_the_same_weights(tmp_path):
    images, labels = _images(10, 32), np.arange(10) % 3

    def train(checkpoint):
        torch.manual_seed(0)
        model = build_backbone("VGG16", {"config": [4, "M", 8], "conv6": 8}, classes=3, tv_lam=1.0)
        return train_cam(model, images, labels, steps=4, batch_size=3, lr=0.05, weight_decay=1e-4, seed=1,
                         checkpoint=checkpoint)

    straight, resumed = _resumes_to_the_same_weights(train, tmp_path)
    assert resumed["loss"] == straight["loss"]


def test_table4_dexined_resumes_to_the_same_weights(tmp_path):
    rng = np.random.default_rng(0)
    samples = [{"image": rng.uniform(0, 255, (40, 40, 3)).astype(np.float32),
                "label": (rng.random((40, 40)) < 0.2).astype(np.float32)} for _ in range(3)]
    settings = {**table4.PROFILES["smoke"], "steps": 4}

    def train(checkpoint):
        return table4.train_dexined(samples, settings, tv=True, seed=0, checkpoint=checkpoint)

    _resumes_to_the_same_weights(train, tmp_path, "loss", "lam")


def test_table5_smoothing_resumes_to_the_same_weights(tmp_path):
    rng = np.random.default_rng(0)
    samples = [{"name": f"{i:04d}", "image": rng.integers(0, 256, (30, 30, 3), dtype=np.uint8),
                "gts": rng.integers(0, 256, (5, 30, 30, 3), dtype=np.uint8), "weights": np.full(5, 0.2)}
               for i in range(3)]
    settings = {**table5.PROFILES["smoke"], "steps": 4}

    def train(checkpoint):
        return table5.train_smoothing(samples, settings, tv=True, seed=0, checkpoint=checkpoint)

    _resumes_to_the_same_weights(train, tmp_path, "loss", "lam")
