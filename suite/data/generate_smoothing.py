"""Generator of ``mini-smoothing``: a stand-in for the edge-preserving smoothing benchmark of
Zhu et al. (TIP 2019), written in the layout the ``eps-zhu`` reader reads.

What the benchmark is, and what is imitated. Zhu et al. ran existing edge-preserving smoothing
algorithms on natural images, let people vote for the results they judged best, kept the five
most chosen results of each image as its "ground truths" and their normalised votes as weights
(used by WRMSE/WMAE). Here each image is a *piecewise-smooth structure* (shapes with smoothly
shaded colours and anti-aliased outlines) plus a *texture* (the high-pass detail of a photograph
shipped in scikit-image / scikit-learn, a different patch and strength per region); the five
ground truths are the outputs of five edge-preserving smoothers run on that input (TV
denoising at two strengths, iterated bilateral filtering, the recursive domain-transform filter
of OpenCV, iterated median filtering) and the votes come from simulated voters who prefer the
results closest to the hidden structure (each voter picks the result with the highest noisy
score). So the targets are, as in the benchmark, smoothings of the input that differ among
themselves and carry unequal weights, and the metric's code path is the one of the real data.

Layout: the benchmark release's, read by the same ``eps-zhu`` reader (:class:`suite.data.readers.EPSBenchmark`):
``dataset/origin_images/NNNN.png``, ``dataset/gt_images/NNNN_k.png`` (k = 1..5) and
``dataset/weight_matrix.mat`` (variable ``weight_matrix``, 500 x 5, row n - 1 = image n: the votes
of image n divided by their sum; rows of absent images are zero). The release splits by number
(train 0001-0400, test 0401-0500), so the training images here are numbered from 0001 and the
test images from 0401.

Deterministic: every sample draws from its own stream ``default_rng([seed, 7, index])`` and
the smoothers are deterministic.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

#: Samples and image side per profile (the profile names of ``suite.data.generate``).
PROFILES = {
    "smoke": {"count": 6, "test": 2, "side": 32},
    "mini": {"count": 160, "test": 32, "side": 64},
}
DATASET_NUMBER = 7  # the stream number of this dataset in sample_rng (generate.py uses 0-6)
GROUND_TRUTHS = 5
VOTERS = 14
TEXTURE_SOURCES = ("skimage:brick", "skimage:grass", "skimage:gravel", "skimage:moon", "sklearn:china.jpg",
                   "skimage:coffee", "skimage:chelsea", "skimage:astronaut")


def _settings(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


def sample_count(settings: dict) -> int:
    """Number of samples for ``suite.data.generate`` profile settings (its GENERATORS contract)."""
    from .generate import PROFILES as GENERATE_PROFILES

    for name, values in GENERATE_PROFILES.items():
        if values is settings or values == settings:
            return _settings(name)["count"]
    return PROFILES["mini"]["count"]


def structure_image(rng: np.random.Generator, side: int) -> np.ndarray:
    """A piecewise-smooth colour image (float64, 0-255): a shaded background and 3-6 shaded
    shapes with anti-aliased outlines."""
    from . import compose

    ys, xs = np.mgrid[0:side, 0:side] / max(side - 1, 1)

    def shaded() -> np.ndarray:
        base = rng.uniform(30, 225, 3)
        slope = rng.uniform(-40, 40, (2, 3))
        return base + xs[..., None] * slope[0] + ys[..., None] * slope[1]

    image = shaded()
    labels = np.zeros((side, side), np.int64)
    for index in range(int(rng.integers(3, 7))):
        size = int(rng.integers(side // 3, side))
        mask = compose.shape_mask(size, rng)
        top, left = (int(rng.integers(-size // 3, side - size // 2)) for _ in range(2))
        canvas = np.zeros((side, side), np.float64)
        rows = slice(max(top, 0), min(top + size, side))
        cols = slice(max(left, 0), min(left + size, side))
        canvas[rows, cols] = mask[rows.start - top: rows.stop - top, cols.start - left: cols.stop - left]
        image = image * (1 - canvas[..., None]) + shaded() * canvas[..., None]
        labels[canvas >= 0.5] = index + 1
    return np.clip(image, 0, 255), labels


def texture_layer(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Zero-mean detail (float64, grey levels) from photographs: per region its own patch,
    high-passed (the photograph minus its Gaussian blur) and scaled to a random strength."""
    from . import compose

    side = labels.shape[0]
    detail = np.zeros((side, side, 3))
    for region in np.unique(labels):
        source = TEXTURE_SOURCES[int(rng.integers(len(TEXTURE_SOURCES)))]
        patch = compose.texture(source, side, side, rng, zoom=(0.6, 1.5)).astype(np.float64).mean(axis=2)
        high = patch - ndimage.gaussian_filter(patch, rng.uniform(1.0, 2.5))
        high /= max(float(high.std()), 1e-6)
        strength = rng.uniform(8.0, 28.0)
        tint = rng.uniform(0.7, 1.0, 3)
        detail[labels == region] = (high[..., None] * strength * tint)[labels == region]
    return detail


def smoothings(image: np.ndarray) -> list[np.ndarray]:
    """The five candidate smoothings of a uint8 image (uint8 each): TV denoising (Chambolle)
    at two weights, iterated bilateral filtering, OpenCV's recursive domain-transform filter and
    iterated median filtering."""
    from skimage.restoration import denoise_tv_chambolle

    results = []
    for weight in (0.08, 0.15):
        tv = denoise_tv_chambolle(image.astype(np.float64) / 255.0, weight=weight, channel_axis=-1)
        results.append(np.clip(np.round(tv * 255), 0, 255).astype(np.uint8))
    bilateral = image.copy()
    for _ in range(3):
        bilateral = cv2.bilateralFilter(bilateral, 5, 40, 3)
    results.append(bilateral)
    results.append(cv2.edgePreservingFilter(np.ascontiguousarray(image), flags=cv2.RECURS_FILTER,
                                            sigma_s=15, sigma_r=0.25))
    median = image.copy()
    for _ in range(2):
        median = cv2.medianBlur(median, 5)
    results.append(median)
    return results


def votes(rng: np.random.Generator, candidates: list[np.ndarray], structure: np.ndarray) -> np.ndarray:
    """Votes of :data:`VOTERS` simulated people: each picks the candidate with the best
    noisy score, where a candidate's score is minus its RMSE to the hidden structure."""
    rmse = np.array([np.sqrt(np.mean((c.astype(np.float64) - structure) ** 2)) for c in candidates])
    scores = -rmse / max(float(rmse.std()), 1e-6)
    picks = np.argmax(scores[None] + rng.gumbel(0.0, 1.0, (VOTERS, len(candidates))), axis=1)
    return np.bincount(picks, minlength=len(candidates))


def generate_smoothing(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-smoothing`` in the layout of the ``eps-zhu`` reader (see the module doc)."""
    from .generate import sample_rng, write_meta, write_rgb
    from .readers.edges import EPS_SPLITS, EPSBenchmark, write_weight_matrix

    settings = _settings(profile)
    count, test, side = settings["count"], settings["test"], settings["side"]
    train_last, test_first = EPS_SPLITS["train"][1], EPS_SPLITS["test"][0]
    if count - test > train_last:
        raise ValueError(f"mini-smoothing: at most {train_last} training images fit the release's numbering")
    base = folder / "dataset"
    (base / "origin_images").mkdir(parents=True)
    (base / "gt_images").mkdir(parents=True)
    weights = np.zeros((EPS_SPLITS["all"][1], GROUND_TRUTHS))
    for index in range(count):
        rng = sample_rng(seed, DATASET_NUMBER, index)
        structure, labels = structure_image(rng, side)
        image = np.clip(np.round(structure + texture_layer(rng, labels)), 0, 255).astype(np.uint8)
        candidates = smoothings(image)
        counts = votes(rng, candidates, structure)
        if counts.sum() == 0:  # cannot happen with VOTERS > 0; kept so a reader never sees all zeros
            counts[:] = 1
        number = index + 1 if index < count - test else test_first + index - (count - test)
        name = f"{number:04d}"
        write_rgb(base / "origin_images" / f"{name}.png", image)
        for k, candidate in enumerate(candidates, 1):
            write_rgb(base / "gt_images" / f"{name}_{k}.png", candidate)
        weights[number - 1] = counts / counts.sum()
        tick()
    write_weight_matrix(base / "weight_matrix.mat", weights)
    write_meta(folder, "mini-smoothing", profile, seed, samples=count, test=test, side=side,
               ground_truths=GROUND_TRUTHS, voters=VOTERS, generator_module="suite.data.generate_smoothing",
               layout=EPSBenchmark.layout,
               note="stand-in for Zhu et al.'s benchmark: piecewise-smooth structure + photographic texture; "
                    "ground truths = five edge-preserving smoothers; votes of simulated voters")
    return count
