"""Interactive segmentation from scribbles: benchmarks and classical baselines.

Task contract (``suite.harness.methods.TASKS["interactive-segmentation"]``): a method gets the
image ``(H, W, 3)`` uint8 RGB and the scribbles ``(H, W)`` uint8 (1 foreground, 0 background,
255 unlabelled) and returns a ``(H, W)`` bool foreground mask.

Benchmarks (one user interaction: the initial scribbles, no corrections):

* ``interactive-grabcut-gsc-v1``: the 50 GrabCut images (Rother et al. 2004) with the GSC robot
  user's initial scribbles (Andrade & Carrera 2015, ``scribbles-set-1``; Gulshan et al. 2010);
  ground truth from ``boundary_GT``, whose 128 band is void.
* ``interactive-mini-v1``: the generated ``mini-masks`` validation scenes: the main object is
  the foreground, the ScribbleSup-style strokes on it are foreground seeds, those elsewhere
  background seeds; the VOC-like void band is left out.

Metrics per image over the non-void pixels, then the mean over images: IoU of the foreground
(``metrics.segmentation.iou``, the DAVIS convention) and the error rate (% of pixels labelled
wrongly, the GrabCut paper's measure).

Benchmarks with a simulated user (LSM Fig. 5a/b; the protocol is in ``simulated_user.py``): the
same images and initial scribbles, then one corrective dot per round in the largest error region
until IoU > 0.85 (at most 20):

* ``interactive-noc-grabcut-gsc-v1`` and ``interactive-noc-mini-v1``: scribbles added to reach
  IoU > 0.85 (a failure counts as 20), IoU after one interaction, % of images that failed.

Graph cut with Boykov-Jolly colour models (histograms of the scribbled pixels as unaries,
contrast-sensitive Potts on the 8-neighbourhood, scribbles as hard constraints, one s-t cut on
PyMaxflow through ``suite.solvers.graphcut``) is registered once, by the ADM paper's shallow model
``adm-grid-crf`` (``reproductions/adm/methods.py``), and is not duplicated here.
"""
from __future__ import annotations

import warnings

import numpy as np

from metrics.segmentation import iou
from suite.harness.methods import method

from .benchmarks import Benchmark, Sample, benchmark

VOID = 255
TASK = "interactive-segmentation"


# ---------------------------------------------------------------------------------------------
# Classical baselines (fixed settings: the libraries' defaults and documented usage)
# ---------------------------------------------------------------------------------------------
@method("opencv-grabcut", task=TASK, kind="classical",
        citation="Rother, Kolmogorov, Blake. GrabCut. SIGGRAPH 2004 (OpenCV cv2.grabCut)",
        settings="mask init: scribbles = sure labels, other pixels probable label of the nearer scribble; "
                 "5 iterations")
def opencv_grabcut(image: np.ndarray, scribbles: np.ndarray) -> np.ndarray:
    """GrabCut initialised from the scribbles (``cv2.GC_INIT_WITH_MASK``).

    Scribbled pixels are sure foreground / background; every other pixel starts as probable
    foreground or probable background after the nearer scribble (Euclidean distance). Starting
    them all as probable background would train the background colour model on the object too,
    and GrabCut then keeps only the scribbled strokes. 5 iterations of GMM re-estimation and
    graph cut (OpenCV's 5 components per GMM).
    """
    import cv2
    from scipy import ndimage

    nearer_foreground = ndimage.distance_transform_edt(scribbles != 1) < ndimage.distance_transform_edt(scribbles != 0)
    mask = np.where(nearer_foreground, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[scribbles == 1] = cv2.GC_FGD
    mask[scribbles == 0] = cv2.GC_BGD
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[..., ::-1])
    cv2.grabCut(bgr, mask, None, background, foreground, 5, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


@method("skimage-random-walker", task=TASK, kind="classical",
        citation="Grady. Random Walks for Image Segmentation. TPAMI 2006 (skimage.segmentation.random_walker)",
        settings="beta 130 (the library default), mode cg_j, colour image in [0, 1]")
def skimage_random_walker(image: np.ndarray, scribbles: np.ndarray) -> np.ndarray:
    """Random walker from the scribbles: a pixel takes the label its walk most likely reaches."""
    from skimage.segmentation import random_walker

    labels = np.zeros(scribbles.shape, np.int32)  # 0 = unlabelled for skimage
    labels[scribbles == 1] = 1
    labels[scribbles == 0] = 2
    with warnings.catch_warnings():
        # cg_j's probabilities overshoot [0, 1] by its tolerance on some images; the labelling
        # (the argmax) is what is scored, so the library's warning says nothing about the result
        warnings.filterwarnings("ignore", message="The probability range is outside", category=UserWarning)
        result = random_walker(image.astype(np.float64) / 255.0, labels, beta=130, mode="cg_j", channel_axis=-1)
    return result == 1


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------
def check_mask(prediction, sample: Sample) -> None:
    shape = sample.inputs["image"].shape[:2]
    array = np.asarray(prediction)
    if array.shape != shape:
        raise ValueError(f"expected a ({shape[0]}, {shape[1]}) mask, got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"expected a bool (or 0/1) mask, got dtype {array.dtype} with other values")


def score_mask(prediction, truth: dict) -> dict[str, float]:
    """IoU (DAVIS convention) and error rate (%) over the non-void pixels of one image."""
    gt = truth["mask"]
    valid = gt != VOID
    predicted = np.asarray(prediction).astype(bool)
    errors = (predicted != (gt == 1)) & valid
    return {"IoU": float(iou(predicted, gt, ignore_index=VOID)),
            "error rate": 100.0 * float(errors.sum()) / max(1, int(valid.sum()))}


def grabcut_gsc_samples(root, limit, extra):
    from suite.data.readers import GrabCut, GSCScribbles, gsc_seeds

    images = GrabCut(extra["grabcut"]).base / "data_GT"
    reader = GSCScribbles(root, scribble_set=1, images_root=images)
    for index in range(len(reader) if limit is None else min(limit, len(reader))):
        sample = reader[index]
        truth = np.where(sample["void"], VOID, sample["mask"].astype(np.uint8))
        yield Sample(sample["name"], {"image": sample["image"], "scribbles": gsc_seeds(sample["scribbles"])},
                     {"mask": truth})


def mini_samples(root, limit):
    """Generated scenes: main object = foreground; strokes on it = 1, other strokes = 0."""
    from suite.data.readers import VOC2012, ScribbleSup

    masks = VOC2012(root, split="val")
    strokes = ScribbleSup(root, length=1.0, split="val")
    by_name = {name: i for i, name in enumerate(strokes.items)}
    produced = 0
    for index in range(len(masks)):
        if limit is not None and produced >= limit:
            return
        sample = masks[index]
        if sample.get("mask") is None or sample["name"] not in by_name:
            continue
        truth = sample["mask"].astype(np.uint8)  # 1 object, 0 background, 255 void
        lines = strokes[by_name[sample["name"]]]["scribbles"]
        labelled = (lines != VOID) & (truth != VOID)
        seeds = np.where(labelled, (truth == 1).astype(np.uint8), VOID).astype(np.uint8)
        if not ((seeds == 1).any() and (seeds == 0).any()):
            continue  # one interaction needs both a foreground and a background stroke
        produced += 1
        yield Sample(sample["name"], {"image": sample["image"], "scribbles": seeds}, {"mask": truth})


METRICS = {"IoU": ("", True), "error rate": ("%", False)}
PROTOCOL = ("One interaction: the method gets the image and the initial scribbles (1 foreground, 0 background, "
            "255 none) and returns a foreground mask. Per image over the non-void pixels: IoU of the foreground "
            "(DAVIS convention: 1 when both are empty) and the error rate (% of pixels labelled wrongly, as in "
            "the GrabCut paper); reported as the mean over images with its standard error.")

GRABCUT_GSC = benchmark(Benchmark(
    id="interactive-grabcut-gsc-v1", task=TASK, dataset="gsc-scribbles", extra_datasets=("grabcut",),
    title="Interactive segmentation, GrabCut images with the GSC initial scribbles (v1)",
    metrics=METRICS, samples=grabcut_gsc_samples, score=score_mask, check=check_mask,
    protocol=PROTOCOL + " Data: GrabCut boundary_GT masks (128 band = void); GSC robot-user scribbles-set-1.",
    limits={"smoke": 2, "mini": 10, "full": None},
))
MINI = benchmark(Benchmark(
    id="interactive-mini-v1", task=TASK, dataset="mini-masks",
    title="Interactive segmentation, generated scenes with scribbles (v1)",
    metrics=METRICS, samples=mini_samples, score=score_mask, check=check_mask,
    protocol=PROTOCOL + " Data: generated mini-masks validation scenes; the main object is the foreground, "
                        "its strokes are foreground seeds and all other strokes background seeds.",
    limits={"smoke": 2, "mini": 30, "full": None},
))


# ---------------------------------------------------------------------------------------------
# Number of scribbles to IoU > 0.85 with the simulated user (LSM Fig. 5a/b protocol)
# ---------------------------------------------------------------------------------------------
NOC_THRESHOLD, NOC_MAX_ROUNDS = 0.85, 20
NOC_METRICS = {f"scribbles to IoU>{NOC_THRESHOLD:g}": ("", False), "IoU, 1 interaction": ("", True),
               "failed": ("%", False)}


def simulate_sample(func, sample: Sample):
    """The simulated user (``simulated_user.simulate``) with the method ``func`` on one sample."""
    from .simulated_user import simulate

    return simulate(func, sample.inputs["image"], sample.truth["mask"], sample.inputs["scribbles"],
                    threshold=NOC_THRESHOLD, max_rounds=NOC_MAX_ROUNDS)


def score_simulation(result, truth: dict) -> dict[str, float]:
    from .simulated_user import score

    return score(result)


NOC_PROTOCOL = (f"Simulated user (suite/leaderboards/simulated_user.py): the first interaction is the dataset's "
                f"initial scribbles; each further round adds one dot scribble of the correct label at the point "
                f"deepest inside the largest connected error region (false negatives or false positives; void and "
                f"scribbled pixels excluded; radius 8 px at a 640 px long side, scaled), and the method reruns on "
                f"all scribbles so far. Per image: the number of added scribbles until IoU > {NOC_THRESHOLD:g} "
                f"(0 when the initial scribbles suffice; a failure after {NOC_MAX_ROUNDS} added scribbles, or with "
                f"no error left to mark, counts as {NOC_MAX_ROUNDS}, as in the NoC protocol), the IoU after the "
                f"first interaction (DAVIS convention over non-void pixels) and the failure rate; means over "
                f"images with their standard errors.")

NOC_GRABCUT_GSC = benchmark(Benchmark(
    id="interactive-noc-grabcut-gsc-v1", task=TASK, dataset="gsc-scribbles", extra_datasets=("grabcut",),
    title=f"Interactive segmentation, scribbles to IoU > {NOC_THRESHOLD:g}, GrabCut with GSC initial scribbles (v1)",
    metrics=NOC_METRICS, samples=grabcut_gsc_samples, score=score_simulation, predict=simulate_sample,
    protocol=NOC_PROTOCOL + " Data: GrabCut boundary_GT masks (128 band = void); GSC robot-user scribbles-set-1.",
    limits={"smoke": 1, "mini": 5, "full": None},
))
NOC_MINI = benchmark(Benchmark(
    id="interactive-noc-mini-v1", task=TASK, dataset="mini-masks",
    title=f"Interactive segmentation, scribbles to IoU > {NOC_THRESHOLD:g}, generated scenes (v1)",
    metrics=NOC_METRICS, samples=mini_samples, score=score_simulation, predict=simulate_sample,
    protocol=NOC_PROTOCOL + " Data: generated mini-masks validation scenes; the main object is the foreground, "
                            "its strokes are foreground seeds and all other strokes background seeds.",
    limits={"smoke": 2, "mini": 20, "full": None},
))
