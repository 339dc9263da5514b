"""Data of the ADM reproduction: validation of bad input, the block-vote shrink, the smoke set."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from reproductions.adm import data
from tests.reproductions.adm.conftest import make_context


def _sample(name="s1", size=(8, 8), scribbles=None):
    image = np.zeros((*size, 3), np.uint8)
    if scribbles is None:
        scribbles = np.full(size, 255, np.uint8)
        scribbles[2, 2] = 1
    return {"name": name, "image": image, "scribbles": scribbles}


def test_labels_outside_range_are_rejected_naming_the_sample():
    sample = _sample()
    sample["scribbles"][0, 0] = 9
    with pytest.raises(ValueError, match=r"scribbles of s1: expected labels in \[0, 7\) or 255, got values \[9\]"):
        data.add_training_sample(data.TrainingSet(), sample, num_classes=7, side=None)


def test_image_and_scribbles_of_different_sizes_are_rejected():
    sample = _sample(scribbles=np.full((8, 9), 255, np.uint8))
    with pytest.raises(ValueError, match=r"scribbles of s1: expected shape \(8, 8\)"):
        data.add_training_sample(data.TrainingSet(), sample, num_classes=7, side=None)
    with pytest.raises(ValueError, match="label of s1"):
        data.add_training_sample(data.TrainingSet(), _sample(), num_classes=7, side=None,
                                 label=np.zeros((4, 4), np.uint8))


def test_all_void_scribbles_are_skipped_with_a_logged_reason(caplog):
    dataset = data.TrainingSet()
    with caplog.at_level(logging.WARNING, logger="reproductions.adm.data"):
        kept = data.add_training_sample(dataset, _sample(scribbles=np.full((8, 8), 255, np.uint8)),
                                        num_classes=7, side=None)
    assert not kept and len(dataset) == 0
    assert dataset.skipped == [("s1", "all scribble pixels are void (255): no supervision")]
    assert "skipping sample s1" in caplog.text


def test_all_void_ground_truth_is_skipped_in_evaluation():
    dataset = data.EvaluationSet()
    sample = {"name": "v", "image": np.zeros((4, 4, 3), np.uint8), "label": np.full((4, 4), 255, np.uint8)}
    assert not data.add_evaluation_sample(dataset, sample, num_classes=7, side=None)
    assert dataset.skipped and len(dataset) == 0


def test_block_vote_keeps_a_click_that_subsampling_loses():
    labels = np.full((64, 64), 255, np.int64)
    labels[33, 17] = 4  # odd coordinates: labels[::2, ::2] would drop it
    shrunk = data.shrink_labels(labels, (32, 32), num_classes=7)
    assert (labels[::2, ::2] == 255).all()
    assert shrunk.shape == (32, 32) and int((shrunk != 255).sum()) == 1 and int(shrunk[16, 8]) == 4


def test_block_vote_takes_the_majority_and_ignores_void():
    labels = torch.tensor([[1, 1, 2, 255], [1, 2, 255, 255]])
    shrunk = data.shrink_labels(labels, (1, 2), num_classes=3)
    assert shrunk.tolist() == [[1, 2]]
    assert data.shrink_labels(labels, (2, 4), num_classes=3).tolist() == labels.tolist()


def test_smoke_training_and_evaluation_sets(adm_env):
    ctx = make_context()
    train = data.load_training_set(ctx, length=0.0)
    assert len(train) >= 1 and train.images[0].shape == (3, 32, 32)
    values = set(torch.cat([s.flatten() for s in train.scribbles]).tolist())
    assert values <= set(range(7)) | {255} and values - {255}
    evalset = data.load_evaluation_set(ctx)
    assert len(evalset) >= 1 and evalset.inputs[0].shape == (3, 32, 32)
    assert evalset.labels[0].shape == evalset.images[0].shape[:2] == (64, 64)
    assert "mini-masks" in ctx.data.read


def test_missing_dataset_is_reported_with_how_to_add(tmp_path, monkeypatch):
    from suite.data import registry

    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(registry, "default_data_root", lambda: tmp_path / "no-data")
    ctx = make_context()
    (message,) = data.missing_datasets(ctx, ["mini-masks"])
    assert "mini-masks" in message and "energybench data build" in message
    with pytest.raises(data.DataUnavailable, match="mini-masks"):
        data.load_training_set(ctx, length=1.0)
