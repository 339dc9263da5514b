"""Video object segmentation (semi-supervised): benchmarks and classical baselines.

Task contract (``suite.harness.methods.TASKS["video-segmentation"]``): a method gets the frames
``(T, H, W, 3)`` uint8 RGB and the object's mask in the first frame ``(H, W)`` bool, and returns the
masks of every frame ``(T, H, W)`` bool, with ``masks[0] == first_mask``. One object per sequence
(the DAVIS 2016 task; a DAVIS 2017 sequence's objects are merged into one foreground).

Protocol: the official DAVIS semi-supervised evaluation (``davis2017-evaluation``
``evaluation.py``, the same measures as the DAVIS 2016 toolkit). Per sequence, over every frame
except the first (it is given) and the last: J = region IoU (``metrics.segmentation.davis_j``,
void excluded, empty union = 1) and F = boundary F-measure with the DAVIS tolerance of
``ceil(0.008 * image diagonal)`` px (``metrics.segmentation.davis_f``), each the mean over those
frames; then the mean over sequences (the J-Mean and F-Mean of the DAVIS tables), and
J&F = (J + F) / 2. The ± is the standard error over sequences.

Benchmarks:

* ``video-davis2016-v1``: DAVIS-2016 val (Perazzi et al. 2016), 480p, the 20 sequences of the
  official val list (the sequences of that list present under ``data/davis2016``; the shared
  sample has 8 of them). LSM's Fig. 6a reports the J mean on it.
* ``video-mini-v1``: the validation sequences of the generated ``mini-video`` (objects merged).

Classical baselines: the first mask copied to every frame (the floor: what no motion model
gives), and mask propagation by optical flow: each frame's mask is the previous frame's mask
warped by the backward flow (frame t to frame t-1, so every pixel of frame t looks up where it
came from; bilinear, threshold 0.5), with OpenCV's DIS (medium preset) and Farneback flows, the
same settings as the flow leaderboard's methods.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from metrics.segmentation import davis_f, davis_j
from suite.harness.methods import method

from .benchmarks import Benchmark, Sample, benchmark, open_dataset

TASK = "video-segmentation"
VOID = 255
#: DAVIS 2016 val (``ImageSets/480p/val.txt`` of the DAVIS 2016 release): 20 sequences
DAVIS2016_VAL = ("blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows",
                 "dance-twirl", "dog", "drift-chicane", "drift-straight", "goat", "horsejump-high", "kite-surf",
                 "libby", "motocross-jump", "paragliding-launch", "parkour", "scooter-black", "soapbox")


def _check_video(frames: Any, first_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    frames, first_mask = np.asarray(frames), np.asarray(first_mask)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8 RGB with T >= 1, got shape {frames.shape} "
                         f"dtype {frames.dtype}")
    if first_mask.shape != frames.shape[1:3] or first_mask.dtype != bool:
        raise ValueError(f"first_mask: expected an {frames.shape[1:3]} bool mask (the frames' height and width), "
                         f"got shape {first_mask.shape} dtype {first_mask.dtype}")
    return frames, first_mask


def warp_backward(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``mask`` (frame t-1) pulled into frame t by the backward flow ``flow`` (frame t to t-1):
    ``out(x) = mask(x + flow(x)) >= 0.5`` with bilinear interpolation, outside the image = 0.

    Shape: mask ``(H, W)`` bool, flow ``(H, W, 2)`` (u, v) in pixels; returns ``(H, W)`` bool.

    Raises:
        ValueError: shapes disagree or the flow has NaN / inf values.
    """
    import cv2

    mask, flow = np.asarray(mask), np.asarray(flow, dtype=np.float32)
    if flow.shape != (*mask.shape, 2):
        raise ValueError(f"flow: expected shape {(*mask.shape, 2)} (the mask's, with (u, v)), got {flow.shape}")
    if not np.isfinite(flow).all():
        raise ValueError("flow: expected finite values, got NaN or inf")
    height, width = mask.shape
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(mask.astype(np.float32), columns + flow[..., 0], rows + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped >= 0.5


def propagate_by_flow(frames: Any, first_mask: Any, *, flow: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Mask propagation by optical flow: ``masks[t] = warp(masks[t-1], flow(frames[t], frames[t-1]))``.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        first_mask: ``(H, W)`` bool, the object in frame 0.
        flow: ``flow(image1, image2) -> (H, W, 2)`` flow from image1 to image2 (the contract of the
            ``flow`` task: any registered flow method).

    Returns:
        ``(T, H, W)`` bool masks, ``masks[0] == first_mask``.

    Raises:
        ValueError: frames or mask outside the contract, a flow of the wrong shape.
    """
    frames, first_mask = _check_video(frames, first_mask)
    masks = np.zeros(frames.shape[:3], bool)
    masks[0] = first_mask
    for t in range(1, len(frames)):
        masks[t] = warp_backward(masks[t - 1], flow(frames[t], frames[t - 1]))
    return masks


_OPENCV = "Bradski. The OpenCV Library. Dr. Dobb's Journal 2000"


@method("copy-first-mask", task=TASK, kind="classical", citation="the floor: no motion model",
        settings="masks[t] = first_mask for every t")
def copy_first_mask(frames: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
    """The first mask repeated over the sequence: what a method scores without following motion."""
    frames, first_mask = _check_video(frames, first_mask)
    return np.repeat(first_mask[None], len(frames), axis=0)


@method("opencv-dis-propagation", task=TASK, kind="classical",
        citation="Kroeger, Timofte, Dai, Van Gool. Fast Optical Flow using Dense Inverse Search. ECCV 2016; "
                 f"{_OPENCV} (cv2.DISOpticalFlow)",
        settings="backward flow frame t -> t-1 by DIS (grey, PRESET_MEDIUM), previous mask warped bilinearly, "
                 "threshold 0.5")
def opencv_dis_propagation(frames: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
    from .stereo_flow import opencv_dis

    return propagate_by_flow(frames, first_mask, flow=opencv_dis)


@method("opencv-farneback-propagation", task=TASK, kind="classical",
        citation="Farnebäck. Two-Frame Motion Estimation Based on Polynomial Expansion. SCIA 2003; "
                 f"{_OPENCV} (cv2.calcOpticalFlowFarneback)",
        settings="backward flow frame t -> t-1 by Farneback (grey; pyr_scale 0.5, levels 3, winsize 15, "
                 "iterations 3, poly_n 5, poly_sigma 1.2), previous mask warped bilinearly, threshold 0.5")
def opencv_farneback_propagation(frames: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
    from .stereo_flow import opencv_farneback

    return propagate_by_flow(frames, first_mask, flow=opencv_farneback)


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------
def check_masks(prediction, sample: Sample) -> None:
    """The contract: ``(T, H, W)`` binary masks whose first one is the given first mask."""
    frames, first = sample.inputs["frames"], sample.inputs["first_mask"]
    array = np.asarray(prediction)
    if array.shape != frames.shape[:3]:
        raise ValueError(f"expected {frames.shape[:3]} masks (T, H, W), got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"expected bool (or 0/1) masks, got dtype {array.dtype} with other values")
    if not (array[0].astype(bool) == first).all():
        raise ValueError("masks[0] must equal first_mask (the given frame is not re-estimated)")


def score_sequence(prediction, truth: dict) -> dict[str, float]:
    """J and F means of one sequence (frames 1 .. T-2) and their average."""
    masks = np.asarray(prediction).astype(bool)
    j = float(davis_j(masks, truth["masks"], ignore_index=VOID))
    f = float(davis_f(masks, truth["masks"], ignore_index=VOID))
    return {"J": j, "F": f, "J&F": (j + f) / 2}


def _sequence_sample(reader, index: int) -> Sample:
    item = reader[index]
    name = item["name"]
    if item["mask_names"] != item["frame_names"]:
        raise ValueError(f"{name}: every frame needs an annotation for this protocol, got "
                         f"{len(item['mask_names'])} annotations for {len(item['frame_names'])} frames")
    frames = np.stack([np.asarray(item["images"][t])[..., :3] for t in range(len(item["images"]))])
    labels = np.stack([np.asarray(item["masks"][t]) for t in range(len(item["masks"]))])
    if frames.dtype != np.uint8:
        raise ValueError(f"{name}: expected 8-bit frames, got dtype {frames.dtype}")
    truth = np.where(labels == VOID, VOID, labels > 0).astype(np.uint8)  # objects merged, void kept
    if len(frames) < 3:
        raise ValueError(f"{name}: need at least 3 frames (the first and last are not scored), got {len(frames)}")
    return Sample(name, {"frames": frames, "first_mask": truth[0] == 1}, {"masks": truth})


def davis2016_samples(root, limit):
    reader = open_dataset("davis2016", root, binary=False)
    wanted = [i for i, name in enumerate(reader.items) if name in DAVIS2016_VAL]
    if not wanted:
        raise ValueError(f"davis2016 at {root}: none of the 20 DAVIS-2016 val sequences is present "
                         f"(found {reader.items[:5]})")
    for index in wanted if limit is None else wanted[:limit]:
        yield _sequence_sample(reader, index)


def mini_video_samples(root, limit):
    reader = open_dataset("mini-video", root, year="2016", split="val")
    for index in range(len(reader) if limit is None else min(limit, len(reader))):
        yield _sequence_sample(reader, index)


METRICS = {"J": ("", True), "F": ("", True), "J&F": ("", True)}
PROTOCOL = ("Semi-supervised (DAVIS): the method gets the frames and the first frame's mask and returns a mask per "
            "frame. Per sequence over frames 1..T-2 (the first and the last are not scored, as in the DAVIS "
            "toolkit): J = region IoU (void excluded, empty union = 1) and F = boundary F-measure (seg2bmap "
            "boundaries, tolerance disc of radius ceil(0.008 x diagonal) px); J and F are the means over frames, "
            "J&F their average; reported as the mean over sequences with its standard error.")

DAVIS2016 = benchmark(Benchmark(
    id="video-davis2016-v1", task=TASK, dataset="davis2016",
    title="Video object segmentation, DAVIS-2016 val (v1)",
    metrics=METRICS, samples=davis2016_samples, score=score_sequence, check=check_masks,
    protocol=PROTOCOL + " Data: DAVIS-2016 480p, the sequences of the official 20-sequence val list that are present.",
    limits={"smoke": 1, "mini": None, "full": None},
))
MINI = benchmark(Benchmark(
    id="video-mini-v1", task=TASK, dataset="mini-video",
    title="Video object segmentation, generated sequences (v1)",
    metrics=METRICS, samples=mini_video_samples, score=score_sequence, check=check_masks,
    protocol=PROTOCOL + " Data: the validation sequences of the generated mini-video, all objects merged into one "
                        "foreground.",
    limits={"smoke": None, "mini": None, "full": None},
))
