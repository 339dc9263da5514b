"""Scribble-supervised training sets and evaluation sets for the ADM reproduction.

Everything is read through the data registry (``ctx.data.path(id)``) and the readers of
``suite.data.readers``; nothing here parses a file format.

* ``mini`` / ``smoke``: the generated ``mini-masks`` dataset (VOC 2012 layout: scenes composed
  from photographs, class maps with a VOC-like void band, ScribbleSup-style scribbles drawn along
  object skeletons and their shortened versions, length ratios 1, 0.8, 0.5, 0.3 and 0 = clicks).
* ``full``: PASCAL VOC 2012 (``voc2012``), the ScribbleSup scribbles as distributed for the
  regularized-loss code (``scribblesup``: ``pascal_2012_scribble[_len<r>]/``) and SBD (``sbd``)
  for the dense labels of the 10,582 augmented training images (full supervision only).

Splits: the training ids are the official rloss list (``list/train.txt`` = train_aug, 10,582
ids; ``list/train<r>.txt`` for the shortened scribbles) at full and the ``train`` split of
mini-masks; evaluation is VOC 2012 val (1,449) or the mini-masks val split; a training list that
holds a validation id is refused. ``heldout_images`` training ids (a fixed draw) are set aside
as the held-out split that selects the regularizers' weights and are never trained on.

Training samples are streamed (:class:`StreamingTrainingSet`): read from disk when a batch needs
them and brought to the training resolution then: the image by antialiased bilinear resizing,
the scribbles and dense labels by a block vote (:func:`shrink_labels`), so that thin strokes and
clicks survive the downscaling. Evaluation keeps the ground truth at its
native resolution; the network's logits are upsampled to it.

Bad input never passes silently: labels outside ``[0, K)`` other than 255 and images whose
size differs from their scribbles or labels raise a ValueError naming the sample; a training
sample whose scribbles are all void is skipped and the reason is logged and kept in
``TrainingSet.skipped``.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

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


class _Column(Sequence):
    """One field (image, scribbles or label) of a :class:`StreamingTrainingSet`, read on access."""

    def __init__(self, owner: "StreamingTrainingSet", field_index: int):
        self.owner, self.field_index = owner, field_index

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.owner.sample(int(index))[self.field_index]


class StreamingTrainingSet:
    """Training samples read from disk when a batch needs them (the full training set at native
    size in float32 is about 24 GB), with the same interface as :class:`TrainingSet`.

    ``images[i]``, ``scribbles[i]``, ``labels[i]`` load sample ``i`` through ``load(name)`` (which
    returns the reader's sample and its dense label), validate and resize it as
    :func:`add_training_sample` does, and keep at most ``cache`` samples (None = all: the small
    mini sets are read once).
    """

    def __init__(self, names: Sequence[str], load: Callable[[str], tuple[dict, Any]], *, num_classes: int,
                 side: int | None, cache: int | None = None, skipped: list | None = None):
        self.names = list(names)
        self.skipped = list(skipped or [])
        self._load, self._num_classes, self._side = load, num_classes, side
        self._cache: OrderedDict[int, tuple] = OrderedDict()
        self._cache_size = cache
        self.images, self.scribbles, self.labels = _Column(self, 0), _Column(self, 1), _Column(self, 2)

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, index: int) -> tuple:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a training set of {len(self)} samples")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        raw, label = self._load(self.names[index])
        one = TrainingSet()
        if not add_training_sample(one, raw, num_classes=self._num_classes, side=self._side, label=label):
            raise ValueError(f"sample {self.names[index]}: its scribbles became all void after the index was built")
        item = (one.images[0], one.scribbles[0], one.labels[0])
        self._cache[index] = item
        if self._cache_size is not None and len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return item

    def subset(self, indices: Sequence[int]) -> "StreamingTrainingSet":
        out = StreamingTrainingSet([self.names[i] for i in indices], self._load, num_classes=self._num_classes,
                                   side=self._side, cache=self._cache_size)
        return out


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


def _heldout_names(names: Sequence[str], count: int) -> set[str]:
    """``count`` names drawn once, with a fixed seed (the same for every run seed and length), for
    the held-out validation split that selects the regularizers' weights."""
    if count <= 0:
        return set()
    if count >= len(names):
        raise ValueError(f"heldout_images: expected fewer than the {len(names)} training images, got {count}")
    rng = np.random.default_rng(20190616)  # CVPR 2019; any fixed value: the split must not move with the seed
    return {names[i] for i in rng.choice(len(names), size=count, replace=False)}


def _training_index(ctx, *, length: float):
    """The training reader's ids (official split), the label loader, the validation ids and the
    held-out ids. Raises ValueError when a validation image is in the training list."""
    from suite.data.readers import SBD, VOC2012, ScribbleSup, read_sbd_mat

    s = ctx.settings
    if s["data"] == "mini-masks":
        root = _locate(ctx, "mini-masks")
        reader = ScribbleSup(root, length=length, split="train")
        val_ids = VOC2012(root, split="val").items
        sbd = None
    else:
        scribbles_root, voc_root = _locate(ctx, "scribblesup"), _locate(ctx, "voc2012")
        # rloss's list/train.txt (train_aug, 10,582 ids) or list/train<r>.txt for shortened scribbles
        reader = ScribbleSup(scribbles_root, length=length, images_root=voc_root, split="train_aug")
        val_ids = VOC2012(voc_root, split="val").items
        sbd = SBD(_locate(ctx, "sbd"), split=None)  # only looked up by id, for the dense labels
    names = [reader.items[i] for i in _limit(len(reader), s.get("train_images"))]
    leaked = sorted(set(names) & set(val_ids))
    if leaked:
        raise ValueError(f"training list {getattr(reader, 'list_file', None) or reader.folder}: expected no "
                         f"validation image, got {len(leaked)} (e.g. {leaked[:3]})")
    sbd_ids = set(sbd.items) if sbd is not None else set()

    def load(name: str):
        sample = reader.load(name)
        label = sample.get("label")
        if label is None and name in sbd_ids:
            label = read_sbd_mat(sbd.base / "cls" / f"{name}.mat")
        return sample, label

    return reader, names, load, val_ids


def load_training_set(ctx, *, length: float, part: str = "train") -> StreamingTrainingSet:
    """The scribble-supervised training set of the profile, scribbles shortened to ``length``,
    streamed from disk (:class:`StreamingTrainingSet`).

    Splits: mini-masks ``train``; full: the official train_aug list of the rloss distribution
    (``list/train.txt``, or ``list/train<r>.txt`` for shortened scribbles). No VOC val image may
    be in it (ValueError). ``heldout_images`` of the training ids (fixed draw) form the held-out
    validation split (``part="heldout"``) that selects the regularizers' weights; ``part="train"``
    is every other id, so no held-out image is trained on.

    ``ctx.settings``: ``data`` ("mini-masks" or "voc"), ``num_classes``, ``side`` (training
    resolution of the square mini scenes; None keeps the native size), ``train_images`` (None = all),
    ``heldout_images`` (0 = none), ``train_cache`` (samples kept in memory; None = all).

    Raises:
        DataUnavailable: a dataset is absent (the message names it and how to add it).
        ValueError: a malformed sample (bad labels, size mismatch), a validation image in the
            training list, or every sample skipped.
    """
    if part not in ("train", "heldout"):
        raise ValueError(f"part: expected 'train' or 'heldout', got {part!r}")
    s = ctx.settings
    reader, names, load, _ = _training_index(ctx, length=length)
    # the held-out ids are drawn from the full-length list, so every length holds out the same images
    heldout = _heldout_names(_training_index(ctx, length=1.0)[1] if length != 1.0 else names,
                             int(s.get("heldout_images") or 0))
    kept, skipped = [], []
    for name in names:
        if (name in heldout) != (part == "heldout"):
            continue
        scribbles = reader.scribbles(name)  # cheap: the PNG only; the image is read when a batch needs it
        if (np.asarray(scribbles) == UNLABELLED).all():
            _skip(skipped, name, "all scribble pixels are void (255): no supervision")
            continue
        kept.append(name)
    if not kept:
        raise ValueError(f"length {length}: every training sample was skipped ({skipped[:3]} ...)")
    return StreamingTrainingSet(kept, load, num_classes=s["num_classes"], side=s.get("side"),
                                cache=s.get("train_cache"), skipped=skipped)


def load_heldout_set(ctx) -> EvaluationSet:
    """The held-out validation split (``heldout_images`` training images with their dense labels),
    as an evaluation set; empty when ``heldout_images`` is 0."""
    s = ctx.settings
    dataset = EvaluationSet()
    if not int(s.get("heldout_images") or 0):
        return dataset
    _, names, load, _ = _training_index(ctx, length=1.0)
    for name in sorted(_heldout_names(names, int(s["heldout_images"]))):
        sample, label = load(name)
        add_evaluation_sample(dataset, {**sample, "label": label}, num_classes=s["num_classes"], side=s.get("side"))
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
