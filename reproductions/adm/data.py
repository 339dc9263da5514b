"""Scribble-supervised training sets and evaluation sets for the ADM reproduction.

Everything is read through the data registry (``ctx.data.path(id)``) and the readers of
``suite.data.readers``; nothing here parses a file format.

* ``mini`` / ``smoke``: the generated ``mini-masks`` dataset (VOC 2012 layout: scenes composed
  from photographs, class maps with a VOC-like void band, ScribbleSup-style scribbles drawn along
  object skeletons and their shortened versions, length ratios 1, 0.8, 0.5, 0.3 and 0 = clicks).
* ``full``: PASCAL VOC 2012 (``voc2012``), the ScribbleSup scribbles as distributed for the
  regularized-loss code (``scribblesup``: ``pascal_2012_scribble[_len<r>]/``) and SBD (``sbd``)
  for the dense labels of the 10,582 augmented training images (full supervision only).

Training samples are brought to the training resolution once: the image by antialiased
bilinear resizing, the scribbles and dense labels by a block vote (:func:`shrink_labels`), so
that thin strokes and clicks survive the downscaling. Evaluation keeps the ground truth at its
native resolution; the network's logits are upsampled to it.

Bad input never passes silently: labels outside ``[0, K)`` other than 255 and images whose
size differs from their scribbles or labels raise a ValueError naming the sample; a training
sample whose scribbles are all void is skipped and the reason is logged and kept in
``TrainingSet.skipped``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

UNLABELLED = 255
log = logging.getLogger(__name__)


class DataUnavailable(RuntimeError):
    """A dataset the cell needs is absent; the message says which id and how to add it."""


# ---------------------------------------------------------------------------------------------
# Validation and resizing
# ---------------------------------------------------------------------------------------------
def validate_sample(image: Any, *, scribbles: Any = None, label: Any = None, num_classes: int,
                    name: str = "sample") -> None:
    """Check one sample: an (H, W, 3) image and (H, W) label maps in ``[0, K)`` or 255.

    Raises:
        ValueError: naming the argument (``image``, ``scribbles`` or ``label``) and the sample,
            with what was expected and what was received.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image of {name}: expected an (H, W, 3) colour image, got shape {image.shape}")
    for argument, labels in (("scribbles", scribbles), ("label", label)):
        if labels is None:
            continue
        labels = np.asarray(labels)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{argument} of {name}: expected shape {image.shape[:2]} (the image's), "
                             f"got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{argument} of {name}: expected integer class ids, got dtype {labels.dtype}")
        bad = (labels != UNLABELLED) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            raise ValueError(f"{argument} of {name}: expected labels in [0, {num_classes}) or {UNLABELLED}, "
                             f"got values {np.unique(labels[bad])[:5].tolist()}")


def resize_image(image: Any, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 or float image -> (3, h, w) float32 in 0-255, antialiased bilinear."""
    tensor = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32).permute(2, 0, 1)
    if tuple(tensor.shape[1:]) == tuple(size):
        return tensor.contiguous()
    return F.interpolate(tensor[None], size=tuple(size), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp_(0, 255)


def shrink_labels(labels: Any, size: tuple[int, int], *, num_classes: int) -> torch.Tensor:
    """Block vote of a label map down (or up) to ``size``.

    Each output pixel takes the most frequent class among the labelled input pixels of its
    block (``adaptive_avg_pool2d`` blocks); a block without a labelled pixel is 255. Unlike a
    nearest-neighbour subsampling, no stroke or click vanishes.

    Shape:
        labels ``(H, W)`` or ``(B, H, W)`` integers in ``[0, K)`` or 255 -> same rank, ``size``.
    """
    tensor = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).long()
    squeeze = tensor.dim() == 2
    if squeeze:
        tensor = tensor[None]
    if tuple(tensor.shape[1:]) == tuple(size):
        return tensor[0] if squeeze else tensor
    labelled = tensor != UNLABELLED
    one_hot = F.one_hot(torch.where(labelled, tensor, 0), num_classes).permute(0, 3, 1, 2).float()
    one_hot = one_hot * labelled[:, None]
    if size[0] >= tensor.shape[1]:
        votes = F.interpolate(one_hot, size=tuple(size), mode="nearest")
    else:
        votes = F.adaptive_avg_pool2d(one_hot, tuple(size))
    out = torch.where(votes.sum(1) > 0, votes.argmax(1), torch.full_like(votes[:, 0], UNLABELLED, dtype=torch.long))
    return out[0] if squeeze else out


def training_size(shape: Sequence[int], side: int | None) -> tuple[int, int]:
    """The training resolution: ``side`` x ``side`` for the square mini scenes, or the native size."""
    if side is None:
        return int(shape[0]), int(shape[1])
    return int(side), int(side)


# ---------------------------------------------------------------------------------------------
# Sets
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainingSet:
    """Training samples at the training resolution.

    Attributes:
        names: sample ids. images: ``(3, h, w)`` float32 tensors in 0-255 (RGB).
        scribbles: ``(h, w)`` int64, 255 = unlabelled. labels: ``(h, w)`` dense labels (255 void)
            or None where the dataset has none. skipped: ``(name, reason)`` of left-out samples.
    """

    names: list[str] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)
    scribbles: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor | None] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: Sequence[int]) -> "TrainingSet":
        return TrainingSet([self.names[i] for i in indices], [self.images[i] for i in indices],
                           [self.scribbles[i] for i in indices], [self.labels[i] for i in indices], [])


@dataclass
class EvaluationSet:
    """Evaluation samples: the network input at training resolution, the truth at native size.

    Attributes:
        names, inputs (``(3, h, w)`` float32), images (native ``(H, W, 3)`` uint8),
        labels (native ``(H, W)`` int64, 255 void), skipped.
    """

    names: list[str] = field(default_factory=list)
    inputs: list[torch.Tensor] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def _skip(skipped: list, name: str, reason: str) -> None:
    log.warning("adm: skipping sample %s: %s", name, reason)
    skipped.append((name, reason))


def add_training_sample(dataset: TrainingSet, sample: dict, *, num_classes: int, side: int | None,
                        label: Any = None) -> bool:
    """Validate, resize and append one sample; returns False (and logs why) when it is skipped."""
    name = str(sample.get("name", len(dataset)))
    image, scribbles = sample["image"], sample.get("scribbles")
    if image is not None and np.asarray(image).ndim == 2:
        image = np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
    if scribbles is None:
        raise ValueError(f"scribbles of {name}: expected a (H, W) scribble map, got None")
    validate_sample(image, scribbles=scribbles, label=label, num_classes=num_classes, name=name)
    if (np.asarray(scribbles) == UNLABELLED).all():
        _skip(dataset.skipped, name, "all scribble pixels are void (255): no supervision")
        return False
    size = training_size(np.asarray(image).shape, side)
    dataset.names.append(name)
    dataset.images.append(resize_image(image, size))
    dataset.scribbles.append(shrink_labels(scribbles, size, num_classes=num_classes))
    dataset.labels.append(None if label is None else shrink_labels(label, size, num_classes=num_classes))
    return True


def add_evaluation_sample(dataset: EvaluationSet, sample: dict, *, num_classes: int, side: int | None) -> bool:
    name = str(sample.get("name", len(dataset)))
    image, label = np.asarray(sample["image"]), sample.get("label")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if label is None:
        raise ValueError(f"label of {name}: expected a dense (H, W) label map for evaluation, got None")
    validate_sample(image, label=label, num_classes=num_classes, name=name)
    label = np.asarray(label).astype(np.int64)
    if (label == UNLABELLED).all():
        _skip(dataset.skipped, name, "the ground truth is all void (255): nothing to evaluate")
        return False
    dataset.names.append(name)
    dataset.inputs.append(resize_image(image, training_size(image.shape, side)))
    dataset.images.append(image.astype(np.uint8))
    dataset.labels.append(label)
    return True


def _locate(ctx, dataset_id: str):
    from suite.data.registry import DatasetMissing

    try:
        return ctx.data.path(dataset_id)
    except DatasetMissing as missing:
        raise DataUnavailable(str(missing)) from missing


def missing_datasets(ctx, dataset_ids: Sequence[str]) -> list[str]:
    """Messages for the declared datasets that are absent (empty when all are present)."""
    from suite.data import registry

    messages = []
    for dataset_id in dataset_ids:
        if not ctx.data.present(dataset_id):
            messages.append(f"dataset {dataset_id!r} is missing; to add it: {registry.get(dataset_id).how_to_add}")
    return messages


def _limit(count: int, limit: int | None) -> range:
    return range(count if limit is None else min(count, int(limit)))


def load_training_set(ctx, *, length: float) -> TrainingSet:
    """The scribble-supervised training set of the profile, scribbles shortened to ``length``.

    ``ctx.settings``: ``data`` ("mini-masks" or "voc"), ``num_classes``, ``side`` (training
    resolution of the square mini scenes; None keeps the native size), ``train_images`` (None = all).

    Raises:
        DataUnavailable: a dataset is absent (the message names it and how to add it).
        ValueError: a malformed sample (bad labels, size mismatch).
    """
    from suite.data.readers import SBD, ScribbleSup

    s = ctx.settings
    dataset = TrainingSet()
    if s["data"] == "mini-masks":
        root = _locate(ctx, "mini-masks")
        reader = ScribbleSup(root, length=length, split="train")
        sbd = None
    else:
        scribbles_root, voc_root = _locate(ctx, "scribblesup"), _locate(ctx, "voc2012")
        reader = ScribbleSup(scribbles_root, length=length, images_root=voc_root, split=None)
        sbd = SBD(_locate(ctx, "sbd"), split=None)
    sbd_index = {name: i for i, name in enumerate(sbd.items)} if sbd is not None else {}
    for index in _limit(len(reader), s.get("train_images")):
        sample = reader[index]
        label = sample.get("label")
        if label is None and sample["name"] in sbd_index:
            label = sbd[sbd_index[sample["name"]]]["label"]
        add_training_sample(dataset, sample, num_classes=s["num_classes"], side=s.get("side"), label=label)
    if not len(dataset):
        raise ValueError(f"length {length}: every training sample was skipped ({dataset.skipped[:3]} ...)")
    return dataset


def load_evaluation_set(ctx) -> EvaluationSet:
    """The validation set (mini-masks val split, or VOC 2012 val: 1,449 images)."""
    from suite.data.readers import VOC2012

    s = ctx.settings
    root = _locate(ctx, "mini-masks" if s["data"] == "mini-masks" else "voc2012")
    reader = VOC2012(root, split="val")
    dataset = EvaluationSet()
    for index in _limit(len(reader), s.get("val_images")):
        add_evaluation_sample(dataset, reader[index], num_classes=s["num_classes"], side=s.get("side"))
    return dataset


def dataset_ids(settings) -> list[str]:
    """The registry ids a training cell of this profile reads."""
    return ["mini-masks"] if settings["data"] == "mini-masks" else ["scribblesup", "voc2012", "sbd"]
