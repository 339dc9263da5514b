"""Training samplers and evaluation sets of the four LSM tasks, read through the data registry.

Nothing here parses a file format: every dataset is opened with its registered reader, or with
the split reader of ``suite.data.readers.lsm_sets`` that the paper's protocol needs, on the folder
``ctx.data.path(id)`` gives.

Training sets (``settings["data"]``):

* ``generated`` (``smoke`` / ``mini``): ``mini-masks`` (the main object's mask, ScribbleSup-style
  strokes of the five lengths 1, .8, .5, .3, 0 = clicks; strokes on the object are foreground
  seeds, all others background seeds, as in the interactive leaderboard), ``mini-video`` (DAVIS
  layout, all objects merged into one foreground as in DAVIS 2016), ``mini-stereo`` (Middlebury
  layout, disparity of both views) and ``mini-flow`` (FlyingChairs layout), their training splits.
* ``paper`` (``full``), the data of the paper's Sec. 4.1:

  - interactive: SBD ``train`` minus the images it shares with the VGG interactive benchmark
    (``SBDExcluding``: the benchmark's PASCAL VOC ids, the paper's "overlapped 99 images", are
    left out, so ``vgg-interactive`` is read for training too: ``training_datasets``); a
    foreground object = the largest non-background class of an image, its scribbles drawn by the
    generator's ScribbleSup-style skeleton strokes. Tested on the VGG benchmark (Fig. 5) with
    its robot user's initial scribbles, and on GrabCut + GSC scribbles.
  - video: DAVIS-2017 ``train`` from its list ``ImageSets/2017/train.txt`` (``DavisSplit``,
    objects merged); tested on DAVIS-2016 ``val`` from its list (``ImageSets/480p/val.txt`` of
    the DAVIS-2016 package or ``ImageSets/2016/val.txt`` of the DAVIS-2017 one): a sequence of
    the folder that the list does not name is not evaluated.
  - stereo: FlyingThings3D with the split of Pang et al. (CRL, the paper's [54]):
    ``FlyingThings3DCRL``: ``TRAIN`` (minus the dataset's ``all_unused_files.txt``) for training,
    ``TEST`` without the frames whose disparity exceeds 300 px on more than 25% of the pixels
    for testing (the class's docstring gives the sources).
  - flow: FlyingThings3D ``TRAIN`` (forward flow of the left view, minus ``all_unused_files.txt``)
    for training; MPI-Sintel ``training`` for testing, clean pass (``flow_samples`` takes
    ``pass_name="final"`` for the final pass).

  ``generated`` (mini, smoke) never reads a split list: the real samples there are evaluated whole.

Conventions of the model (``reproductions.lsm.model``): images ``(B, 3, H, W)`` float in [0, 1];
stereo solves ``target(p) ~ source(p + u)`` with ``u`` horizontal: left-to-right is
``target = left, source = right, u = -disparity_left`` (a left pixel ``x`` is seen at
``x - d`` in the right view), right-to-left is ``target = right, source = left,
u = +disparity_right``; flow ``(u, v)`` goes from ``image1`` to ``image2``.

Samplers: ``sampler(generator) -> (inputs, targets)`` draws one batch with the given
``torch.Generator`` (indices, crop offsets, stroke lengths, flips), so that a seeded trainer
sees the same batches on every run. Scribbled scenes are resized to ``mask_side`` (strokes are
kept by an any-pixel vote so thin strokes and clicks survive); the other tasks take random
``train_crop`` crops at native resolution (displacements unchanged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

TASKS = ("interactive", "video", "stereo", "flow")
VOID = 255

#: Training datasets per task and data setting.
TRAINING_DATASETS = {
    "generated": {"interactive": "mini-masks", "video": "mini-video", "stereo": "mini-stereo", "flow": "mini-flow"},
    "paper": {"interactive": "sbd", "video": "davis2017", "stereo": "flyingthings3d", "flow": "flyingthings3d"},
}

#: Evaluation datasets per task: the generated split first (the one the mini claims judge), then
#: the real samples used when present. ``full`` evaluates on the paper's test sets.
EVALUATION_DATASETS = {
    "generated": {
        "interactive": ("mini-masks", "gsc-scribbles"),
        "video": ("mini-video", "davis2016"),
        "stereo": ("mini-stereo", "middlebury2014-motorcycle", "eth3d-twoview"),
        "flow": ("mini-flow", "middlebury-flow", "mpi-sintel", "flyingchairs"),
    },
    "paper": {
        "interactive": ("vgg-interactive", "gsc-scribbles"),
        "video": ("davis2016",),
        "stereo": ("flyingthings3d",),
        "flow": ("mpi-sintel",),
    },
}
#: Datasets an evaluation set needs besides its own (the GSC scribbles lie on the GrabCut images).
EXTRA_DATASETS = {"gsc-scribbles": ("grabcut",)}
#: Datasets a training set reads besides its own, per data setting: the paper's SBD training set
#: leaves out the images of the VGG interactive benchmark, found by reading that benchmark.
TRAINING_EXTRAS = {"generated": {}, "paper": {"interactive": ("vgg-interactive",)}}


class DataUnavailable(RuntimeError):
    """A dataset a cell needs is absent; the message names the id and how to add it."""


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    return task


def training_dataset(task: str, settings) -> str:
    """The dataset ``task`` trains on (its samples); :func:`training_datasets` adds what else it reads."""
    return TRAINING_DATASETS[settings["data"]][check_task(task)]


def training_datasets(task: str, settings) -> tuple[str, ...]:
    """Every dataset ``task``'s training set reads: its own, then :data:`TRAINING_EXTRAS` (the
    ids an experiment declares and a trained model's key holds)."""
    return (training_dataset(task, settings), *TRAINING_EXTRAS[settings["data"]].get(task, ()))


def evaluation_datasets(task: str, settings) -> tuple[str, ...]:
    return EVALUATION_DATASETS[settings["data"]][check_task(task)]


def with_extras(ids: Sequence[str]) -> list[str]:
    out = []
    for dataset in ids:
        out += [dataset, *EXTRA_DATASETS.get(dataset, ())]
    return sorted(set(out))


# ---------------------------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------------------------
def image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB (or float in [0, 1]) -> ``(3, H, W)`` float32 in [0, 1]."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image: expected an (H, W, 3) RGB image, got shape {array.shape}")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / scale).permute(2, 0, 1).contiguous()


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def resize_indicator(indicator: np.ndarray, height: int, width: int, *, rule: str) -> np.ndarray:
    """Resize a bool map: ``rule='any'`` keeps a cell set when any of its pixels is (strokes),
    ``'majority'`` when at least half are (masks)."""
    import cv2

    if indicator.shape == (height, width):
        return indicator.astype(bool)
    fraction = cv2.resize(indicator.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return fraction > 0 if rule == "any" else fraction >= 0.5


def scribble_seeds(strokes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Seeds in the task's convention (1 foreground, 0 background, 255 none) from a stroke map
    (255 = no stroke) and the binary truth (1 object, 0 background, 255 void): strokes on the
    object are foreground, those on the background are background, those on void are dropped."""
    labelled = (strokes != VOID) & (truth != VOID)
    return np.where(labelled, (truth == 1).astype(np.uint8), VOID).astype(np.uint8)


def _random_crop(generator: torch.Generator, shape: tuple[int, int], crop: Sequence[int]) -> tuple[slice, slice]:
    height, width = shape
    ch, cw = min(int(crop[0]), height), min(int(crop[1]), width)
    top = int(torch.randint(0, height - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - cw + 1, (1,), generator=generator))
    return slice(top, top + ch), slice(left, left + cw)


def _pick(generator: torch.Generator, count: int, size: int) -> list[int]:
    if count <= 0:
        raise DataUnavailable("the training set is empty")
    return torch.randint(0, count, (size,), generator=generator).tolist()


# ---------------------------------------------------------------------------------------------
# Training sets: preprocessed samples (numpy), then batch samplers
# ---------------------------------------------------------------------------------------------
class Prepared:
    """A dataset's samples after ``prepare``: read lazily, kept in memory when ``keep`` (the
    generated sets are small; the full-profile sets are read on demand)."""

    def __init__(self, dataset, prepare: Callable[[dict], dict | None], *, keep: bool):
        self.dataset, self.prepare, self.keep = dataset, prepare, keep
        self._memo: dict[int, dict | None] = {}
        self.indices = list(range(len(dataset)))
        if keep:
            self._memo = {i: prepare(dataset[i]) for i in self.indices}
            self.indices = [i for i in self.indices if self._memo[i] is not None]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict:
        index = self.indices[position]
        if index in self._memo:
            return self._memo[index]
        for offset in range(len(self.indices)):  # a sample without usable labels: take the next one
            sample = self.prepare(self.dataset[self.indices[(position + offset) % len(self.indices)]])
            if sample is not None:
                return sample
        raise DataUnavailable("no sample of the training set has usable labels")


def _open(dataset_id: str, root: Path, **options):
    from suite.data import registry

    return registry.get(dataset_id).open(root, **options)


def interactive_training_set(root: Path, settings, *, extra: dict[str, Path] | None = None) -> Prepared:
    """Scribbled scenes at ``mask_side``: image, truth and one seed map per stroke length.

    Args:
        root: the training dataset's folder (``mini-masks`` or ``sbd``).
        extra: the folders of :data:`TRAINING_EXTRAS` (``paper``: ``vgg-interactive``, whose
            PASCAL images are left out of SBD).

    Raises:
        DataUnavailable: ``paper`` without the VGG benchmark's folder.
    """
    from suite.data.readers import SCRIBBLE_LENGTHS, ScribbleSup

    side = int(settings["mask_side"])
    if settings["data"] == "generated":
        scenes = _open("mini-masks", root, split="train")
        strokes = {length: ScribbleSup(root, length=length, split="train") for length in SCRIBBLE_LENGTHS}
        positions = {length: {name: i for i, name in enumerate(reader.items)} for length, reader in strokes.items()}

        def prepare(sample):
            truth = sample.get("mask")
            if truth is None:
                raise DataUnavailable(f"mini-masks sample {sample['name']} has no masks/ file: rebuild the dataset")
            seeds = []
            for length, reader in strokes.items():
                if sample["name"] in positions[length]:
                    lines = reader[positions[length][sample["name"]]]["scribbles"]
                    seeds.append(scribble_seeds(lines, truth))
            return _prepare_scribbled(sample["image"], truth, seeds, side)
    else:
        from suite.data.readers.lsm_sets import SBDExcluding

        benchmark = (extra or {}).get("vgg-interactive")
        if benchmark is None:
            raise DataUnavailable("vgg-interactive: the paper's SBD training set leaves out the images it shares with "
                                  "the VGG interactive benchmark, so the benchmark's folder is needed to train")
        scenes = SBDExcluding(root, split="train", exclude_benchmark=benchmark)

        def prepare(sample):
            truth = largest_class_mask(sample["label"])
            if truth is None:
                return None
            return _prepare_scribbled(sample["image"], truth, synthetic_scribbles(truth), side)

    return Prepared(scenes, prepare, keep=settings["data"] == "generated")


def largest_class_mask(label: np.ndarray) -> np.ndarray | None:
    """The largest non-background class of a VOC/SBD label map as a binary truth (255 kept)."""
    classes, counts = np.unique(label[(label != 0) & (label != VOID)], return_counts=True)
    if classes.size == 0:
        return None
    chosen = classes[np.argmax(counts)]
    return np.where(label == VOID, VOID, (label == chosen).astype(np.uint8)).astype(np.uint8)


def synthetic_scribbles(truth: np.ndarray) -> list[np.ndarray]:
    """ScribbleSup-style strokes (the generator's skeleton strokes) on the object and the
    background of a binary truth, at the five stroke lengths, as seed maps."""
    from suite.data.generate import draw_scribbles, skeleton_path
    from suite.data.readers import SCRIBBLE_LENGTHS

    regions = []
    for label in (0, 1):
        region = truth == label
        if region.sum() >= 12:
            regions.append((region, (skeleton_path(region), label)))
    return [draw_scribbles(regions, truth.shape, length) for length in SCRIBBLE_LENGTHS]


def _prepare_scribbled(image, truth, seed_maps, side) -> dict | None:
    usable = []
    for seeds in seed_maps:
        foreground = resize_indicator(seeds == 1, side, side, rule="any")
        background = resize_indicator(seeds == 0, side, side, rule="any") & ~foreground
        if foreground.any() and background.any():
            usable.append((foreground, background))
    if not usable:
        return None  # one interaction needs a foreground and a background seed
    return {"image": resize_image(image, side, side),
            "mask": resize_indicator(truth == 1, side, side, rule="majority"),
            "valid": ~resize_indicator(truth == VOID, side, side, rule="majority"),
            "seeds": usable}


def video_training_set(root: Path, settings, *, extra: dict[str, Path] | None = None) -> Prepared:
    """Sequences as (T, H, W, 3) frames and (T, H, W) binary masks (objects merged): the
    ``mini-video`` training split, or (``paper``) DAVIS-2017 ``train`` from its list."""
    if settings["data"] == "generated":
        sequences = _open("mini-video", root, year="2016", split="train", binary=True)
    else:
        from suite.data.readers.lsm_sets import DavisSplit

        sequences = DavisSplit(root, year="2017", split="train", binary=True)

    def prepare(sample):
        names = set(sample["mask_names"])
        frames = [i for i, name in enumerate(sample["frame_names"]) if name in names]
        if len(frames) < 2:
            return None
        images = np.stack([sample["images"][i] for i in frames])
        masks = np.stack([np.asarray(m) for m in sample["masks"]])
        return {"images": images, "masks": (masks == 1), "valid": masks != VOID}

    return Prepared(sequences, prepare, keep=settings["data"] == "generated")


def stereo_training_set(root: Path, settings, *, extra: dict[str, Path] | None = None) -> Prepared:
    """Stereo scenes: the ``mini-stereo`` scenes of ``train.txt``, or (``paper``) the CRL split's
    FlyingThings3D ``TRAIN`` frames."""
    if settings["data"] == "generated":
        scenes = _open("mini-stereo", root)
        listed = root / "train.txt"
        if listed.is_file():
            wanted = {line.strip() for line in listed.read_text().splitlines() if line.strip()}
            scenes.items = [s for s in scenes.items if str(s.relative_to(root)) in wanted]
    else:
        from suite.data.readers.lsm_sets import FlyingThings3DCRL

        scenes = FlyingThings3DCRL(root, split="TRAIN")

    def prepare(sample):
        if "disparity" not in sample:
            return None
        return {key: sample[key] for key in ("left", "right", "disparity", "disparity_right") if key in sample}

    return Prepared(scenes, prepare, keep=settings["data"] == "generated")


def flow_training_set(root: Path, settings, *, extra: dict[str, Path] | None = None) -> Prepared:
    """Flow pairs: the ``mini-flow`` training split, or (``paper``) FlyingThings3D ``TRAIN``."""
    if settings["data"] == "generated":
        pairs = _open("mini-flow", root, split="train")
    else:
        pairs = _open("flyingthings3d", root, split="TRAIN", task="flow")

    def prepare(sample):
        flow = sample.get("flow")
        if flow is None:
            return None
        from suite.data.readers import flow_valid

        return {"image1": sample["image1"], "image2": sample["image2"], "flow": flow, "valid": flow_valid(flow)}

    return Prepared(pairs, prepare, keep=settings["data"] == "generated")


TRAINING_SETS = {"interactive": interactive_training_set, "video": video_training_set,
                 "stereo": stereo_training_set, "flow": flow_training_set}


def stereo_pair(sample: dict, direction: str) -> dict:
    """Target, source and the displacement ``u`` (model convention) of one stereo direction.

    Args:
        sample: ``left``, ``right`` (H, W, 3), ``disparity`` (H, W) of the left view and, for
            right-to-left, ``disparity_right`` of the right view (inf = no ground truth).
        direction: ``"left-to-right"`` (target = left, ``u = -disparity``) or
            ``"right-to-left"`` (target = right, ``u = +disparity_right``).

    Returns:
        ``{"target", "source", "displacement" (H, W) float32, "valid" (H, W) bool}``.

    Raises:
        ValueError: unknown direction, or right-to-left without ``disparity_right``.
    """
    if direction == "left-to-right":
        disparity = np.asarray(sample["disparity"], np.float32)
        target, source, sign = sample["left"], sample["right"], -1.0
    elif direction == "right-to-left":
        if sample.get("disparity_right") is None:
            raise ValueError(f"sample {sample.get('name', '')!r}: right-to-left needs disparity_right (disp1GT.pfm)")
        disparity = np.asarray(sample["disparity_right"], np.float32)
        target, source, sign = sample["right"], sample["left"], 1.0
    else:
        raise ValueError(f"direction: expected 'left-to-right' or 'right-to-left', got {direction!r}")
    valid = np.isfinite(disparity)
    return {"target": target, "source": source, "displacement": np.where(valid, sign * disparity, 0.0).astype(np.float32),
            "valid": valid}


def make_sampler(task: str, prepared: Prepared, settings) -> Callable[[torch.Generator], tuple[dict, dict]]:
    """The batch sampler of ``task`` over a prepared training set (module doc for the layout)."""
    check_task(task)
    batch = int(settings["batch"][task])
    crop = settings["train_crop"]

    def interactive(generator):
        images, foreground, background, masks, valid = [], [], [], [], []
        for index in _pick(generator, len(prepared), batch):
            sample = prepared[index]
            choice = int(torch.randint(0, len(sample["seeds"]), (1,), generator=generator))
            fg, bg = sample["seeds"][choice]
            flip = bool(torch.rand((), generator=generator) < 0.5)
            arrays = [sample["image"], fg, bg, sample["mask"], sample["valid"]]
            if flip:
                arrays = [a[:, ::-1] for a in arrays]
            images.append(image_tensor(arrays[0]))
            for store, array in zip((foreground, background, masks, valid), arrays[1:]):
                store.append(torch.from_numpy(np.ascontiguousarray(array))[None])
        inputs = {"image": torch.stack(images), "foreground": torch.stack(foreground),
                  "background": torch.stack(background)}
        return inputs, {"mask": torch.stack(masks).float(), "valid": torch.stack(valid)}

    def video(generator):
        references = int(settings["video_references"])
        current, ref_images, ref_masks, masks, valid = [], [], [], [], []
        for index in _pick(generator, len(prepared), batch):
            sample = prepared[index]
            frames = len(sample["images"])
            t = int(torch.randint(1, frames, (1,), generator=generator))
            chosen = [0, t - 1][:references]
            rows, cols = _random_crop(generator, sample["images"].shape[1:3], crop)
            current.append(image_tensor(sample["images"][t, rows, cols]))
            ref_images.append(torch.stack([image_tensor(sample["images"][r, rows, cols]) for r in chosen]))
            ref_masks.append(torch.stack([torch.from_numpy(np.ascontiguousarray(sample["masks"][r, rows, cols]))[None]
                                          for r in chosen]).float())
            masks.append(torch.from_numpy(np.ascontiguousarray(sample["masks"][t, rows, cols]))[None])
            valid.append(torch.from_numpy(np.ascontiguousarray(sample["valid"][t, rows, cols]))[None])
        inputs = {"image": torch.stack(current), "reference_images": torch.stack(ref_images),
                  "reference_masks": torch.stack(ref_masks)}
        return inputs, {"mask": torch.stack(masks).float(), "valid": torch.stack(valid)}

    def stereo(generator):
        directions = list(settings["stereo_directions"])
        targets, sources, displacement, valid = [], [], [], []
        for index in _pick(generator, len(prepared), batch):
            sample = prepared[index]
            direction = directions[int(torch.randint(0, len(directions), (1,), generator=generator))]
            pair = stereo_pair(sample, direction)
            rows, cols = _random_crop(generator, pair["displacement"].shape, crop)
            targets.append(image_tensor(pair["target"][rows, cols]))
            sources.append(image_tensor(pair["source"][rows, cols]))
            displacement.append(torch.from_numpy(np.ascontiguousarray(pair["displacement"][rows, cols]))[None])
            valid.append(torch.from_numpy(np.ascontiguousarray(pair["valid"][rows, cols]))[None])
        return ({"target": torch.stack(targets), "source": torch.stack(sources)},
                {"disparity": torch.stack(displacement), "valid": torch.stack(valid)})

    def flow(generator):
        first, second, flows, valid = [], [], [], []
        for index in _pick(generator, len(prepared), batch):
            sample = prepared[index]
            rows, cols = _random_crop(generator, sample["flow"].shape[:2], crop)
            first.append(image_tensor(sample["image1"][rows, cols]))
            second.append(image_tensor(sample["image2"][rows, cols]))
            field = np.nan_to_num(sample["flow"][rows, cols], nan=0.0, posinf=0.0, neginf=0.0)
            flows.append(torch.from_numpy(np.ascontiguousarray(np.moveaxis(field, -1, 0), dtype=np.float32)))
            valid.append(torch.from_numpy(np.ascontiguousarray(sample["valid"][rows, cols]))[None])
        return ({"image1": torch.stack(first), "image2": torch.stack(second)},
                {"flow": torch.stack(flows), "valid": torch.stack(valid)})

    return {"interactive": interactive, "video": video, "stereo": stereo, "flow": flow}[task]


def training_samplers(ctx, tasks: Sequence[str]) -> dict[str, Callable]:
    """``{task: sampler}`` for ``tasks`` from the datasets of ``ctx.settings['data']``.

    Raises:
        DataUnavailable: a training dataset is absent (the message says how to add it).
    """
    samplers = {}
    for task in tasks:
        dataset, *extras = training_datasets(task, ctx.settings)
        try:
            root = ctx.data.path(dataset)
            extra = {d: Path(ctx.data.path(d)) for d in extras}
        except FileNotFoundError as error:
            raise DataUnavailable(str(error)) from None
        prepared = TRAINING_SETS[task](Path(root), ctx.settings, extra=extra)
        if len(prepared) == 0:
            raise DataUnavailable(f"{dataset}: no training sample with usable labels for {task}")
        samplers[task] = make_sampler(task, prepared, ctx.settings)
    return samplers


# ---------------------------------------------------------------------------------------------
# Evaluation sets (native resolution, numpy, the leaderboards' sample conventions)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSample:
    name: str
    inputs: dict[str, Any]
    truth: dict[str, Any]


def _paths(ctx, dataset: str) -> tuple[Path, dict[str, Path]]:
    try:
        root = Path(ctx.data.path(dataset))
        extra = {d: Path(ctx.data.path(d)) for d in EXTRA_DATASETS.get(dataset, ())}
    except FileNotFoundError as error:
        raise DataUnavailable(str(error)) from None
    return root, extra


def _limited(iterator, limit):
    for index, item in enumerate(iterator):
        if limit is not None and index >= limit:
            return
        yield item


def interactive_samples(ctx, dataset: str, limit: int | None, *, scale: float = 1.0) -> Iterator[EvalSample]:
    """Image, initial scribbles (1 / 0 / 255) and truth (1 / 0 / 255 void) per scene: the
    generated validation scenes or the GrabCut images with the GSC initial scribbles, read by the
    interactive leaderboard's own sample functions (one definition of the benchmark), or the VGG
    interactive benchmark (its robot user's initial scribbles, its unknown band as void). ``scale``
    resizes a scene (image by area, scribbles by an any-pixel vote, truth and void by majority),
    so that a CPU profile can run the simulated user on the 640 x 480 GrabCut photographs."""
    from suite.leaderboards import segmentation

    root, extra = _paths(ctx, dataset)
    if dataset == "mini-masks":
        samples = segmentation.mini_samples(root, limit)
    elif dataset == "gsc-scribbles":
        samples = segmentation.grabcut_gsc_samples(root, limit, extra)
    elif dataset == "vgg-interactive":
        samples = _vgg_samples(root)
    else:
        raise ValueError(f"dataset: no interactive evaluation set {dataset!r}")
    for sample in _limited(samples, limit):
        image, scribbles, truth = sample.inputs["image"], sample.inputs["scribbles"], sample.truth["mask"]
        if scale != 1.0:
            height, width = (max(8, int(round(v * scale))) for v in image.shape[:2])
            image = resize_image(image, height, width)
            foreground = resize_indicator(scribbles == 1, height, width, rule="any")
            background = resize_indicator(scribbles == 0, height, width, rule="any") & ~foreground
            scribbles = np.where(foreground, 1, np.where(background, 0, VOID)).astype(np.uint8)
            void = resize_indicator(truth == VOID, height, width, rule="majority")
            truth = np.where(void, VOID, resize_indicator(truth == 1, height, width, rule="majority")).astype(np.uint8)
        yield EvalSample(sample.name, {"image": image, "scribbles": scribbles}, {"mask": truth})


def _vgg_samples(root: Path) -> Iterator[EvalSample]:
    from suite.data.readers import gsc_seeds

    for sample in _open("vgg-interactive", root):
        truth = np.where(sample["void"], VOID, sample["mask"]).astype(np.uint8)
        yield EvalSample(sample["name"], {"image": sample["image"], "scribbles": gsc_seeds(sample["scribbles"])},
                         {"mask": truth})


def video_sequences(ctx, dataset: str, limit: int | None, *, frames: int | None = None,
                    scale: float = 1.0) -> Iterator[EvalSample]:
    """Sequences: ``frames`` (T, H, W, 3) uint8 and ``first_mask`` (H, W) bool as inputs, the
    per-frame binary truth ``masks`` (T, H, W) uint8 (255 void) as truth; the first ``frames``
    frames only, resized by ``scale`` (the real DAVIS frames are 854 x 480; masks are scored at
    the resized resolution). With ``ctx.settings["data"] == "paper"`` a DAVIS folder is read
    through its ``val`` list (``DavisSplit``: DAVIS-2016 val, the paper's test set); otherwise
    every sequence of the folder is evaluated (the real samples of the mini profile).

    Raises:
        LayoutError: ``paper`` and the DAVIS folder has no ``val`` list, or the list names a
            sequence without frames.
    """
    root, _ = _paths(ctx, dataset)
    if dataset == "mini-video":
        reader = _open(dataset, root, year="2016", split="val", binary=True)
    elif dataset in ("davis2016", "davis2017") and ctx.settings.get("data") == "paper":
        from suite.data.readers.lsm_sets import DavisSplit

        reader = DavisSplit(root, year=dataset[-4:], split="val", binary=True)
    elif dataset in ("davis2016", "davis2017"):
        reader = _open(dataset, root)
    else:
        raise ValueError(f"dataset: no video evaluation set {dataset!r}")
    for sample in _limited(iter(reader), limit):
        names = set(sample["mask_names"])
        if sample["frame_names"][0] not in names:
            continue
        annotated = [i for i, name in enumerate(sample["frame_names"]) if name in names]
        if annotated != list(range(len(annotated))):
            annotated = annotated[: next(i for i, a in enumerate(annotated + [-1]) if a != i)]
        count = len(annotated) if frames is None else min(frames, len(annotated))
        images = [sample["images"][i] for i in range(count)]
        masks = [np.asarray(sample["masks"][i]) for i in range(count)]
        if scale != 1.0:
            height, width = (max(8, int(round(s * scale))) for s in images[0].shape[:2])
            images = [resize_image(image, height, width) for image in images]
            masks = [np.where(resize_indicator(m == VOID, height, width, rule="majority"), VOID,
                              resize_indicator(m == 1, height, width, rule="majority")).astype(np.uint8)
                     for m in masks]
        truth = np.stack(masks).astype(np.uint8)
        yield EvalSample(sample["name"], {"frames": np.stack(images), "first_mask": truth[0] == 1},
                         {"masks": truth})


def stereo_samples(ctx, dataset: str, limit: int | None) -> Iterator[EvalSample]:
    """Stereo scenes as the stereo leaderboard reads them (validation split of mini-stereo),
    keeping ``disparity_right`` for the right-to-left test; FlyingThings3D is read with the CRL
    split (``FlyingThings3DCRL``: TEST minus the frames with more than 25% of pixels above 300 px)."""
    from suite.leaderboards.stereo_flow import stereo_max_disparity

    root, _ = _paths(ctx, dataset)
    if dataset == "flyingthings3d":
        from suite.data.readers.lsm_sets import FlyingThings3DCRL

        reader = FlyingThings3DCRL(root, split="TEST")
    else:
        reader = _open(dataset, root)
        listed = root / "val.txt"
        if listed.is_file():
            wanted = {line.strip() for line in listed.read_text().splitlines() if line.strip()}
            reader.items = [s for s in reader.items if str(s.relative_to(root)) in wanted]
    for sample in _limited((s for s in reader if "disparity" in s), limit):
        truth = {"disparity": sample["disparity"], "valid": sample.get("valid", np.isfinite(sample["disparity"])),
                 "disparity_right": sample.get("disparity_right")}
        yield EvalSample(sample["name"], {"left": sample["left"], "right": sample["right"],
                                          "max_disparity": stereo_max_disparity(sample)}, truth)


def flow_samples(ctx, dataset: str, limit: int | None, *, pass_name: str = "clean") -> Iterator[EvalSample]:
    """Flow pairs with ground truth: the mini-flow validation split, Middlebury (the sequences
    with ground truth), Sintel ``training`` (``pass_name``: ``"clean"`` or ``"final"``; the
    paper tests on both), FlyingChairs (all pairs present), FlyingThings3D ``TEST``."""
    if pass_name not in ("clean", "final"):
        raise ValueError(f"pass_name: expected 'clean' or 'final', got {pass_name!r}")
    root, _ = _paths(ctx, dataset)
    options = {"mini-flow": {"split": "val"}, "middlebury-flow": {"require_flow": True},
               "mpi-sintel": {"pass_name": pass_name}, "flyingchairs": {}}
    if dataset == "flyingthings3d":
        reader = _open(dataset, root, split="TEST", task="flow")
    elif dataset in options:
        reader = _open(dataset, root, **options[dataset])
    else:
        raise ValueError(f"dataset: no flow evaluation set {dataset!r}")
    from suite.data.readers import flow_valid

    for sample in _limited((s for s in reader if s.get("flow") is not None), limit):
        valid = sample.get("valid")
        yield EvalSample(sample["name"], {"image1": sample["image1"], "image2": sample["image2"]},
                         {"flow": sample["flow"], "valid": flow_valid(sample["flow"]) if valid is None else valid})


def real_limit(settings, dataset: str) -> int | None:
    """How many samples of ``dataset`` a cell evaluates: ``eval_limit`` for the generated sets,
    ``real_limit`` for real samples."""
    from suite.data import registry

    generated = registry.get(dataset).kind == "generated"
    return settings["eval_limit"] if generated else settings["real_limit"]


def pad_to_multiple(height: int, width: int, multiple: int) -> tuple[int, int]:
    return int(math.ceil(height / multiple) * multiple), int(math.ceil(width / multiple) * multiple)
