"""Generator of ``mini-wsol``: weakly supervised localization data in the wsolevaluation layout.

A stand-in for the CUB / ImageNet sets of Choe et al.'s protocol (CVPR 2020), which cannot be had
offline. Each image holds one object on a textured background: the object's class is the
photograph its texture is cut from (the six classes of :data:`suite.data.compose.FOREGROUND_CLASSES`:
cat, coffee, astronaut, rocket, flower, motorcycle), its outline a random shape (blob, ellipse,
polygon, horse silhouette) at a random size, angle and place; the background is a crop of one of
the other photographs (:data:`suite.data.compose.BACKGROUND_SOURCES`), sometimes tinted; half of
the images get a second, smaller distractor patch of background texture. The ground-truth box is
the tight box of the object's visible pixels, inclusive corners ``(x0, y0, x1, y1)``, as in the
protocol's ``localization.txt``. Training uses the class labels only.

Layout (the ``WSOLMetadata`` reader's, with the dataset name ``MINI``)::

    metadata/MINI/{train,val,test}/image_ids.txt      <split>/<name>.png per line
                                   class_labels.txt   <path>,<label>
                                   image_sizes.txt    <path>,<w>,<h>
                                   localization.txt   <path>,<x0>,<y0>,<x1>,<y1> (val and test)
    dataset/MINI/<split>/<name>.png

Deterministic: image ``i`` of split ``s`` draws from ``default_rng([seed, 9, s, i])``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from . import compose

#: Sizes per profile (the profile names of ``suite.data.generate``).
PROFILES = {
    "smoke": {"train": 24, "val": 6, "test": 12, "side": 64},
    "mini": {"train": 720, "val": 60, "test": 150, "side": 64},
}
DATASET_NUMBER = 9  # this dataset's stream in sample_rng (generate.py 0-6, smoothing 7, classification 8)
NAME = "MINI"
SPLITS = ("train", "val", "test")
CLASSES = tuple(name for name, _ in compose.FOREGROUND_CLASSES.values())
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 6]


def _settings(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


def progress_steps(settings: dict) -> int:
    """Ticks the generator makes (one per split), the ``GENERATORS`` count of ``suite.data.generate``."""
    return len(SPLITS)


def scene(label: int, rng: np.random.Generator, side: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One image of class ``label`` (0-based) and the inclusive box of its object's visible pixels."""
    source = compose.BACKGROUND_SOURCES[int(rng.integers(len(compose.BACKGROUND_SOURCES)))]
    layers = [compose.background_layer(source, side, side, rng, margin=side // 4, tint=bool(rng.random() < 0.5))]
    if rng.random() < 0.5:  # a distractor: background texture of another photograph, no class
        other = compose.BACKGROUND_SOURCES[int(rng.integers(len(compose.BACKGROUND_SOURCES)))]
        size = int(side * rng.uniform(0.2, 0.35))
        texture = compose.texture(other, size, size, rng, tint=True)
        half = (size - 1) / 2
        where = rng.uniform(0.15, 0.85, 2) * side
        layers.append(compose.Layer(texture, compose.shape_mask(size, rng), compose.affine(
            rng.uniform(-np.pi, np.pi), 1.0, (where[0] - half, where[1] - half), (half, half)), 0))
    size = int(round(side * rng.uniform(0.35, 0.75)))
    centre = rng.uniform(0.3, 0.7, 2) * side
    layers.append(compose.foreground_layer(label + 1, size, tuple(centre), rng, angle=rng.uniform(-np.pi, np.pi)))
    image, owner, _ = compose.render(layers, [layer.placement for layer in layers], side, side)
    rows, cols = np.nonzero(owner == len(layers) - 1)
    if rows.size == 0:  # cannot happen with a centred object of this size; keep the box valid anyway
        return image, (0, 0, side - 1, side - 1)
    return image, (int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max()))


def generate_wsol(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """Write ``mini-wsol`` into ``folder`` (see the module docstring)."""
    settings = _settings(profile)
    side = settings["side"]
    total = 0
    for split_number, split in enumerate(SPLITS):
        meta = folder / "metadata" / NAME / split
        images = folder / "dataset" / NAME / split
        meta.mkdir(parents=True)
        images.mkdir(parents=True)
        ids, labels, sizes, boxes = [], [], [], []
        count = settings[split]
        for index in range(count):
            label = index % len(CLASSES)
            image, box = scene(label, np.random.default_rng([seed, DATASET_NUMBER, split_number, index]), side)
            path = f"{split}/{index + 1:06d}.png"
            if not cv2.imwrite(str(images / f"{index + 1:06d}.png"), np.ascontiguousarray(image[..., ::-1]), PNG_OPTIONS):
                raise OSError(f"could not write {images / f'{index + 1:06d}.png'}")
            ids.append(path)
            labels.append(f"{path},{label}")
            sizes.append(f"{path},{side},{side}")
            boxes.append(f"{path},{box[0]},{box[1]},{box[2]},{box[3]}")
        (meta / "image_ids.txt").write_text("".join(i + "\n" for i in ids))
        (meta / "class_labels.txt").write_text("".join(i + "\n" for i in labels))
        (meta / "image_sizes.txt").write_text("".join(i + "\n" for i in sizes))
        if split != "train":
            (meta / "localization.txt").write_text("".join(i + "\n" for i in boxes))
        total += count
        tick()
    info = {"id": "mini-wsol", "generator": "suite.data.generate_wsol", "profile": profile, "seed": seed,
            "side": side, "classes": list(CLASSES), "counts": {s: settings[s] for s in SPLITS},
            "stand_in_for": "CUB-200-2011 / ImageNet in the wsolevaluation protocol (Choe et al., CVPR 2020)",
            "sources": "photographs shipped in scikit-image (skimage.data) and scikit-learn (load_sample_image)",
            "layout": "metadata/MINI/<split>/{image_ids,class_labels,image_sizes,localization}.txt; "
                      "dataset/MINI/<split>/<name>.png"}
    (folder / "meta.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return total
