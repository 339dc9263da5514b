"""Generator of ``mini-classification``: a CIFAR-10 / CIFAR-10-C stand-in, written in their layouts.

No CIFAR data can be had offline, so the TV-layers classification experiment (Table 2) runs at the
mini profile on generated 32 x 32 RGB images of ten classes. A class is a *shape* (disk, square,
triangle, star, cross, ring, crescent, bar, arrow, horse silhouette) cut from the class's own
photograph (its material) and pasted at a random size, angle and place on a crop of one of the
other photographs (the photographs ship in scikit-image and scikit-learn, see
:mod:`suite.data.compose`), both with a random tint. So the label is carried by an outline and a
texture on a natural background, as an object's appearance in CIFAR, and noise and blur destroy
them as they do there. Images are drawn at 4x and area-downsampled (anti-aliased outlines).

The test images are then corrupted with the 15 CIFAR-10-C corruptions at severities 1-5
(:mod:`suite.data.corruptions`, the authors' 32 x 32 parameters; frost and motion blur are
documented stand-ins there), exactly as CIFAR-10-C was made from the CIFAR-10 test set.

Layout, so that the CIFAR readers read it unchanged (one code path for mini and full):
``cifar-10-batches-py/data_batch_1`` (training), ``test_batch``, ``batches.meta`` (python
pickles, as CIFAR-10's) and ``CIFAR-10-C/<corruption>.npy`` ((5 N, 32, 32, 3) uint8, severities
1..5 stacked) with ``CIFAR-10-C/labels.npy``.

Deterministic: image ``i`` of a split draws from ``default_rng([seed, 8, split, i])``, the
corruption of test image ``i`` from ``default_rng([seed, corruption number, severity, i])``.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from . import compose, corruptions
from .readers import write_cifar_batch

#: Sizes per profile (the profile names of ``suite.data.generate``).
PROFILES = {
    "smoke": {"train": 60, "test": 20},
    "mini": {"train": 2500, "test": 120},
}
DATASET_NUMBER = 8  # this dataset's stream in sample_rng (generate.py uses 0-6, mini-smoothing 7)
SIDE = 32
SUPERSAMPLE = 4
CLASSES = ("disk", "square", "triangle", "star", "cross", "ring", "crescent", "bar", "arrow", "horse")
TEXTURES = tuple(source for _, source in compose.FOREGROUND_CLASSES.values()) + compose.BACKGROUND_SOURCES
#: Class k's object is cut from photograph OBJECT_TEXTURES[k]; backgrounds come from the rest.
OBJECT_TEXTURES = TEXTURES[: len(CLASSES)]
BACKGROUND_TEXTURES = TEXTURES[len(CLASSES):]
# one tick per training chunk, one for the test set, one per corruption
_TRAIN_CHUNKS = 10


def _settings(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


def progress_steps(settings: dict) -> int:
    """Ticks the generator makes (its ``GENERATORS`` count in ``suite.data.generate``): the same at
    every profile."""
    return _TRAIN_CHUNKS + 1 + len(corruptions.CORRUPTIONS)


def _polygon(canvas: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)


def shape_mask(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float32 mask in [0, 1] of class ``label``'s shape, upright, centred."""
    canvas = np.zeros((size, size), np.uint8)
    c = size / 2
    r = size * 0.46
    name = CLASSES[label]
    angles = lambda n, start=-np.pi / 2: start + np.arange(n) * 2 * np.pi / n  # noqa: E731
    if name == "disk":
        cv2.circle(canvas, (int(c), int(c)), int(r), 255, -1)
    elif name == "square":
        half = r * 0.8
        _polygon(canvas, np.array([[c - half, c - half], [c + half, c - half], [c + half, c + half], [c - half, c + half]]))
    elif name == "triangle":
        a = angles(3)
        _polygon(canvas, np.stack([c + r * np.cos(a), c + 0.15 * r + r * np.sin(a)], 1))
    elif name == "star":
        a = angles(10)
        radius = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
        _polygon(canvas, np.stack([c + radius * np.cos(a), c + radius * np.sin(a)], 1))
    elif name == "cross":
        w = r * 0.32
        _polygon(canvas, np.array([[c - w, c - r], [c + w, c - r], [c + w, c + r], [c - w, c + r]]))
        _polygon(canvas, np.array([[c - r, c - w], [c + r, c - w], [c + r, c + w], [c - r, c + w]]))
    elif name == "ring":
        cv2.circle(canvas, (int(c), int(c)), int(r), 255, -1)
        cv2.circle(canvas, (int(c), int(c)), int(r * 0.55), 0, -1)
    elif name == "crescent":
        cv2.circle(canvas, (int(c), int(c)), int(r), 255, -1)
        cv2.circle(canvas, (int(c + r * 0.45), int(c - r * 0.2)), int(r * 0.8), 0, -1)
    elif name == "bar":
        _polygon(canvas, np.array([[c - r, c - r * 0.25], [c + r, c - r * 0.25], [c + r, c + r * 0.25], [c - r, c + r * 0.25]]))
    elif name == "arrow":
        w, head = r * 0.22, r * 0.2
        _polygon(canvas, np.array([[c - r, c - w], [c + head, c - w], [c + head, c - r * 0.6], [c + r, c],
                                   [c + head, c + r * 0.6], [c + head, c + w], [c - r, c + w]]))
    else:  # horse: scikit-image's silhouette (compose.shape_mask draws it)
        return compose.shape_mask(size, rng, "horse")
    return canvas.astype(np.float32) / 255.0


def render(label: int, rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """One (side, side, 3) uint8 image of class ``label`` (see the module docstring)."""
    big = side * SUPERSAMPLE
    # The object's material is its class's photograph (OBJECT_TEXTURES), the background one of the
    # others (BACKGROUND_TEXTURES), both tinted at random: shape *and* texture carry the label, as
    # an object's appearance does in CIFAR. With the shape alone (any texture) the mini-sized
    # All-CNN stayed at chance for 800 steps.
    background = compose.texture(BACKGROUND_TEXTURES[int(rng.integers(len(BACKGROUND_TEXTURES)))], big, big, rng,
                                 zoom=(1.0, 2.0), tint=True)
    size = int(round(big * rng.uniform(0.55, 0.9)))
    foreground = compose.texture(OBJECT_TEXTURES[label], size, size, rng, zoom=(1.0, 2.0), tint=True)
    # Objects differ from their background in brightness as often as not, never by design.
    foreground *= np.float32(rng.uniform(0.6, 1.4))
    mask = shape_mask(label, size, rng)
    half = (size - 1) / 2
    centre = big / 2 + rng.uniform(-0.15, 0.15, 2) * big
    scale = 1.0 if CLASSES[label] != "bar" else rng.uniform(0.8, 1.0)
    transform = compose.affine(rng.uniform(-np.pi, np.pi), scale, (centre[0] - half, centre[1] - half), (half, half))
    layers = [compose.Layer(background, None, compose.affine(), 0),
              compose.Layer(np.clip(foreground, 0, 255), mask, transform, label + 1)]
    image, _, _ = compose.render(layers, [layer.placement for layer in layers], big, big)
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return small


def _split(seed: int, split: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(count) % len(CLASSES)  # balanced
    images = np.stack([render(int(labels[i]), np.random.default_rng([seed, DATASET_NUMBER, split, i]))
                       for i in range(count)]) if count else np.zeros((0, SIDE, SIDE, 3), np.uint8)
    return images, labels


def generate_classification(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """Write ``mini-classification`` (CIFAR-10 python batches + CIFAR-10-C arrays) into ``folder``."""
    settings = _settings(profile)
    batches = folder / "cifar-10-batches-py"
    corrupted = folder / "CIFAR-10-C"
    batches.mkdir(parents=True)
    corrupted.mkdir()
    train_count, test_count = settings["train"], settings["test"]
    chunks = np.array_split(np.arange(train_count), _TRAIN_CHUNKS)
    train_images, train_labels = [], []
    for chunk in chunks:
        labels = chunk % len(CLASSES)
        train_images += [render(int(label), np.random.default_rng([seed, DATASET_NUMBER, 0, int(i)]))
                         for i, label in zip(chunk, labels)]
        train_labels += labels.tolist()
        tick()
    write_cifar_batch(batches / "data_batch_1", np.stack(train_images), np.array(train_labels),
                      name="training batch 1 of 1")
    test_images, test_labels = _split(seed, 1, test_count)
    write_cifar_batch(batches / "test_batch", test_images, test_labels, name="testing batch 1 of 1")
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": train_count, b"num_vis": 3072}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    tick()
    for corruption in corruptions.CORRUPTIONS:
        stacked = np.concatenate([corruptions.corrupt_batch(test_images, corruption, severity, seed=seed)
                                  for severity in corruptions.SEVERITIES])
        np.save(corrupted / f"{corruption}.npy", stacked, allow_pickle=False)
        tick()
    np.save(corrupted / "labels.npy", np.tile(test_labels, len(corruptions.SEVERITIES)).astype(np.uint8),
            allow_pickle=False)
    info = {"id": "mini-classification", "generator": "suite.data.generate_classification", "profile": profile,
            "seed": seed, "train": train_count, "test": test_count, "side": SIDE, "classes": list(CLASSES),
            "stand_in_for": "CIFAR-10 and CIFAR-10-C (Krizhevsky 2009; Hendrycks & Dietterich, ICLR 2019)",
            "corruptions": list(corruptions.CORRUPTIONS),
            "corruption_notes": "the authors' 32x32 parameters; motion blur re-implemented from ImageMagick's "
                                "definition; frost blends a procedural ice texture (the original's frost "
                                "photographs are not available): suite.data.corruptions",
            "sources": "photographs shipped in scikit-image (skimage.data) and scikit-learn (load_sample_image)",
            "layout": "cifar-10-batches-py/{data_batch_1,test_batch,batches.meta}; CIFAR-10-C/<corruption>.npy "
                      "(5N,32,32,3) uint8 + labels.npy"}
    (folder / "meta.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return train_count + test_count
