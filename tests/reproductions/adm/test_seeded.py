"""Segmentation from seeds: colour models, grid CRF (graph cut), dense CRF (mean-field)."""
from __future__ import annotations

import numpy as np
import pytest

from reproductions.adm import seeded
from suite.solvers import crf


def _two_regions(size=32, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros((size, size), np.int64)
    yy, xx = np.mgrid[:size, :size]
    truth[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2] = 1
    colours = np.array([[40, 90, 160], [200, 120, 40]], np.float64)
    image = np.clip(colours[truth] + rng.normal(0, 25, (size, size, 3)), 0, 255)
    seeds = np.full((size, size), 255, np.int64)
    seeds[size // 2, size // 2 - 2: size // 2 + 3] = 1
    seeds[2, 2:30] = 0
    return image, seeds, truth


def test_colour_unaries_prefer_the_seed_colours():
    image, seeds, truth = _two_regions()
    unaries = seeded.colour_unaries(image, seeds, 2)
    assert unaries.shape == (32, 32, 2) and np.isfinite(unaries).all()
    assert ((unaries.argmin(axis=2) == truth).mean()) > 0.9


def test_grid_segmentation_recovers_two_regions_and_keeps_seeds():
    image, seeds, truth = _two_regions()
    labels = seeded.grid_segmentation(image, seeds, smoothness=10.0)
    assert (labels == truth).mean() > 0.97
    assert (labels[seeds != 255] == seeds[seeds != 255]).all()


def test_multi_label_proposals_use_only_the_scribbled_labels():
    image, seeds, truth = _two_regions()
    seeds = np.where(seeds == 1, 5, np.where(seeds == 0, 3, 255))
    labels = seeded.grid_segmentation(image, seeds, smoothness=10.0, iterations=2)
    assert set(np.unique(labels)) <= {3, 5}
    assert (labels == np.where(truth == 1, 5, 3)).mean() > 0.95
    single = seeded.grid_segmentation(image, np.where(seeds == 5, 5, 255), smoothness=10.0)
    assert (single == 5).all()


def test_dense_mean_field_segments_and_clamps_seeds():
    image, seeds, truth = _two_regions()
    unaries = seeded.colour_unaries(image, seeds, 2)
    q = crf.dense_crf_mean_field(unaries, image, weight=1.0, sigma_xy=8.0, sigma_rgb=13.0, seeds=seeds)
    np.testing.assert_allclose(q.sum(axis=2), 1.0)
    assert (q.argmax(axis=2) == truth).mean() > 0.9
    assert (q[seeds == 1][:, 1] == 1.0).all()


def test_bad_seeds_are_rejected():
    image, seeds, _ = _two_regions()
    with pytest.raises(ValueError, match="seeds: expected at least one labelled pixel"):
        seeded.grid_segmentation(image, np.full((32, 32), 255), smoothness=1.0)
    with pytest.raises(ValueError, match=r"seeds: expected shape \(32, 32\)"):
        seeded.grid_segmentation(image, seeds[:10], smoothness=1.0)
