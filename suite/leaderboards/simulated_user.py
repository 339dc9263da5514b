"""A simulated user for interactive segmentation: scribbles until the mask is good enough.

LSM (Tang & Tan, CVPR 2020, Fig. 5a) reports "the average number of scribbles needed to reach
IoU > 0.85" on the VGG interactive benchmark, and IoU after one interaction (Fig. 5b). This
module is the user that produces those numbers for any method of the task
``suite.harness.methods.TASKS["interactive-segmentation"]`` (``f(image, scribbles) -> (H, W)
bool``, scribbles uint8: 1 foreground, 0 background, 255 unlabelled).

Protocol (:func:`simulate`):

1. Round 0 is the first interaction: the dataset's initial scribbles (the GSC robot user's
   ``scribbles-set-1`` on GrabCut, Gulshan et al. 2010 / Andrade & Carrera 2015; the generated
   ScribbleSup-style strokes of ``mini-masks``). The method runs on them; its IoU is the "IoU after
   one interaction".
2. Each further round the user looks at the errors of the current mask over the pixels that are
   not void and carry no scribble yet, splits them into false negatives (object pixels labelled
   background) and false positives (background pixels labelled object), takes the connected
   components of each (4-connectivity, ``scipy.ndimage.label``) and picks the largest of all of
   them (ties: the first in raster order of its lowest-numbered pixel).
3. Inside that region it finds the point deepest inside by the Euclidean distance transform (the
   image border counts as the region's edge), and adds a dot scribble of the region's correct label
   (1 for a false negative, 0 for a false positive): a disc of radius ``radius`` around that point,
   clipped to the region, so a new scribble is never of the wrong label, never on a void pixel and
   never over an older scribble. This is the "robot user" of Gulshan et al. (a brush dot at the
   centre of the largest error region, Sec. 5 of their CVPR 2010 paper). The radius is 8 px for an
   image with a 640 px long side (the GrabCut photographs) and scales with the image:
   ``max(1, round(8 * long side / 640))``, 2 px for the 128 px generated scenes. (Gulshan et al.'s
   exact brush radius could not be checked here; 8 px at GrabCut scale is our setting.)
4. The method reruns on all scribbles so far (the initial ones plus every dot) and the IoU is
   measured again.
5. The user stops as soon as IoU > ``threshold`` (0.85, strict), or after ``max_rounds`` added
   scribbles (20), or when no error pixel is left where a scribble could go (all errors on void or
   scribbled pixels).

The count is the number of scribbles *added* after the first interaction until IoU > threshold:
0 when the initial scribbles already suffice. A run that never gets there counts as
``max_rounds``, as the standard NoC protocol does with its 20-click cap (Xu et al. 2016, used by
DIOS, LD, BRS, which LSM compares with): failures are not left out of the mean, and the failure
rate is reported beside it. IoU is the DAVIS convention of ``metrics.segmentation.iou`` over the
non-void pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from metrics.segmentation import iou

VOID = 255
UNLABELLED = 255
#: the brush radius at the GrabCut photographs' 640 px long side (module doc, step 3)
RADIUS_AT_640 = 8


@dataclass(frozen=True)
class Scribble:
    """One added scribble: its label (1 foreground, 0 background), the point it is centred on
    ``(row, column)``, its pixels ``(H, W)`` bool and the size of the error region it was put in."""

    label: int
    centre: tuple[int, int]
    pixels: np.ndarray = field(repr=False)
    region_size: int


@dataclass(frozen=True)
class SimulationResult:
    """What the simulated user saw.

    Attributes:
        ious: IoU after each round; ``ious[0]`` is after the initial scribbles, ``ious[k]`` after
            ``k`` added scribbles.
        scribbles_needed: the number of added scribbles at which IoU first exceeds the threshold;
            ``max_rounds`` when it never did (a failure counts as the cap).
        reached: whether the threshold was exceeded within ``max_rounds``.
        added: the scribbles added, in order.
        scribbles: the final scribble map (initial plus added), uint8 1 / 0 / 255.
        threshold, max_rounds: the protocol it ran with.
    """

    ious: tuple[float, ...]
    scribbles_needed: int
    reached: bool
    added: tuple[Scribble, ...]
    scribbles: np.ndarray = field(repr=False)
    threshold: float = 0.85
    max_rounds: int = 20

    @property
    def first_iou(self) -> float:
        """IoU after one interaction (the initial scribbles)."""
        return self.ious[0]

    @property
    def final_iou(self) -> float:
        return self.ious[-1]


def default_radius(shape: tuple[int, ...]) -> int:
    """The dot radius for an image of ``shape``: 8 px at a 640 px long side, scaled, at least 1."""
    return max(1, int(round(RADIUS_AT_640 * max(shape[:2]) / 640.0)))


def _ground_truth(truth: Any, void: Any, shape: tuple[int, int]) -> np.ndarray:
    """``truth`` as uint8 1 / 0 / 255 (void), from a bool or 0/1(/255) mask plus ``void``."""
    array = np.asarray(truth)
    if array.shape != shape:
        raise ValueError(f"truth: expected an {shape} mask (the image's height and width), got shape {array.shape}")
    if array.dtype == bool:
        labels = array.astype(np.uint8)
    else:
        if not np.issubdtype(array.dtype, np.number) or not np.isin(array, (0, 1, VOID)).all():
            raise ValueError("truth: expected a bool mask or values 0 (background), 1 (object), 255 (void), "
                             f"got dtype {array.dtype} with values {np.unique(array)[:6].tolist()}")
        labels = array.astype(np.uint8)
    if void is not None:
        void = np.asarray(void)
        if void.shape != shape or void.dtype != bool:
            raise ValueError(f"void: expected an {shape} bool mask, got shape {void.shape} dtype {void.dtype}")
        labels = np.where(void, VOID, labels).astype(np.uint8)
    return labels


def _check_scribbles(scribbles: Any, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(scribbles)
    if array.shape != shape or array.dtype != np.uint8:
        raise ValueError(f"initial_scribbles: expected an {shape} uint8 map (1 foreground, 0 background, "
                         f"255 unlabelled), got shape {array.shape} dtype {array.dtype}")
    if not np.isin(array, (0, 1, UNLABELLED)).all():
        raise ValueError("initial_scribbles: expected values 0, 1 and 255 only, got "
                         f"{sorted(set(np.unique(array).tolist()) - {0, 1, UNLABELLED})[:5]}")
    return array.copy()


def _check_prediction(prediction: Any, shape: tuple[int, int], round_: int) -> np.ndarray:
    array = np.asarray(prediction)
    if array.shape != shape:
        raise ValueError(f"the method returned shape {array.shape} in round {round_}, expected an {shape} mask "
                         "(contract: f(image, scribbles) -> (H, W) bool)")
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.number) or not np.isin(array, (0, 1)).all():
            raise ValueError(f"the method returned a non-binary mask (dtype {array.dtype}) in round {round_} "
                             "(contract: f(image, scribbles) -> (H, W) bool)")
        array = array.astype(bool)
    return array


def next_scribble(prediction: Any, truth: Any, scribbles: Any, *, radius: int,
                  void: Any = None) -> Scribble | None:
    """The user's next scribble (module doc, steps 2-3), or None when no error is left to mark.

    Args:
        prediction: ``(H, W)`` bool, the method's current mask.
        truth: ``(H, W)`` bool or 0 / 1 with 255 = void.
        scribbles: ``(H, W)`` uint8 scribbles so far (1 / 0 / 255).
        radius: dot radius in pixels (>= 1).
        void: optional extra ``(H, W)`` bool void mask.

    Returns:
        A :class:`Scribble` in the largest connected error region, or None.

    Raises:
        ValueError: shapes or values outside the contract, radius < 1.
    """
    scribbles = np.asarray(scribbles)
    shape = scribbles.shape[:2]
    if scribbles.ndim != 2:
        raise ValueError(f"scribbles: expected an (H, W) map, got shape {scribbles.shape}")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise ValueError(f"radius: expected an integer >= 1, got {radius!r}")
    gt = _ground_truth(truth, void, shape)
    scribbles = _check_scribbles(scribbles, shape)
    predicted = _check_prediction(prediction, shape, 0)
    open_ = (gt != VOID) & (scribbles == UNLABELLED)
    best: tuple[int, int, np.ndarray, int] | None = None  # (size, -first pixel, region, label)
    for label, errors in ((1, (gt == 1) & ~predicted & open_), (0, (gt == 0) & predicted & open_)):
        components, count = ndimage.label(errors)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel())[1:]
        # the first pixel of each component in raster order breaks ties deterministically
        firsts = ndimage.minimum(np.arange(components.size).reshape(shape), components, np.arange(1, count + 1))
        order = sorted(range(count), key=lambda i: (-sizes[i], firsts[i]))
        top = order[0]
        key = (int(sizes[top]), -int(firsts[top]))
        if best is None or key > (best[0], best[1]):
            best = (key[0], key[1], components == top + 1, label)
    if best is None:
        return None
    size, _, region, label = best
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, column = np.unravel_index(int(np.argmax(depth)), shape)
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    dot = (rows - row) ** 2 + (columns - column) ** 2 <= radius**2
    return Scribble(label=label, centre=(int(row), int(column)), pixels=dot & region, region_size=size)


def simulate(method: Callable[[np.ndarray, np.ndarray], Any], image: Any, truth: Any, initial_scribbles: Any, *,
             threshold: float = 0.85, max_rounds: int = 20, void: Any = None,
             radius: int | None = None) -> SimulationResult:
    """Run the simulated user (module doc) on one image.

    Args:
        method: ``f(image, scribbles) -> (H, W) bool`` (the interactive-segmentation contract),
            called positionally once per round with a fresh copy of the scribbles so far.
        image: ``(H, W, 3)`` uint8 RGB.
        truth: ``(H, W)`` bool or 0 / 1, with 255 = void.
        initial_scribbles: ``(H, W)`` uint8, 1 foreground, 0 background, 255 unlabelled.
        threshold: stop once IoU > threshold, in (0, 1].
        max_rounds: the most scribbles added (the count of a failure), >= 0.
        void: optional ``(H, W)`` bool mask of more void pixels (left out of IoU, never scribbled).
        radius: dot radius in pixels; None for :func:`default_radius` of the image.

    Returns:
        :class:`SimulationResult`.

    Raises:
        ValueError: inputs outside the contract (image, truth, scribbles, threshold, max_rounds,
            radius), or a method output that is not an ``(H, W)`` binary mask.
    """
    if not callable(method):
        raise ValueError(f"method: expected a callable f(image, scribbles) -> mask, got {type(method).__name__}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    shape = image.shape[:2]
    gt = _ground_truth(truth, void, shape)
    scribbles = _check_scribbles(initial_scribbles, shape)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (0 < threshold <= 1) \
            or math.isnan(threshold):
        raise ValueError(f"threshold: expected an IoU in (0, 1], got {threshold!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) or max_rounds < 0:
        raise ValueError(f"max_rounds: expected an integer >= 0, got {max_rounds!r}")
    radius = default_radius(shape) if radius is None else radius
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise ValueError(f"radius: expected an integer >= 1 or None, got {radius!r}")

    prediction = _check_prediction(method(image, scribbles.copy()), shape, 0)
    ious = [float(iou(prediction, gt, ignore_index=VOID))]
    added: list[Scribble] = []
    while ious[-1] <= threshold and len(added) < max_rounds:
        scribble = next_scribble(prediction, gt, scribbles, radius=int(radius))
        if scribble is None:
            break  # every error is on void or scribbled pixels: the user cannot help any more
        scribbles[scribble.pixels] = scribble.label
        added.append(scribble)
        prediction = _check_prediction(method(image, scribbles.copy()), shape, len(added))
        ious.append(float(iou(prediction, gt, ignore_index=VOID)))
    reached = ious[-1] > threshold
    return SimulationResult(ious=tuple(ious), scribbles_needed=len(added) if reached else int(max_rounds),
                            reached=reached, added=tuple(added), scribbles=scribbles, threshold=float(threshold),
                            max_rounds=int(max_rounds))


def score(result: SimulationResult) -> dict[str, float]:
    """The per-image numbers a leaderboard averages: scribbles to the threshold (failures count as
    the cap), IoU after one interaction, and failure (100 when the threshold was not reached)."""
    if not isinstance(result, SimulationResult):
        raise ValueError(f"result: expected a SimulationResult, got {type(result).__name__}")
    return {f"scribbles to IoU>{result.threshold:g}": float(result.scribbles_needed),
            "IoU, 1 interaction": result.first_iou, "failed": 100.0 * (not result.reached)}
