"""Stereo and optical-flow leaderboards: classical library baselines and four benchmarks.

Methods (``suite.harness.methods``; fixed settings from the libraries' documentation and
samples, never tuned on benchmark data):

* stereo -- :func:`opencv_sgbm` (``opencv-sgbm``), :func:`opencv_bm` (``opencv-bm``);
* flow -- :func:`skimage_tvl1` (``skimage-tvl1``), :func:`skimage_ilk` (``skimage-ilk``),
  :func:`opencv_farneback` (``opencv-farneback``), :func:`opencv_dis` (``opencv-dis``).

Benchmarks (experiments ``leaderboard.<id>``):

* ``stereo-mini-v1`` (``mini-stereo``) and ``stereo-motorcycle-v1``
  (``middlebury2014-motorcycle``): EPE and bad-2.0 over pixels with finite ground truth;
* ``flow-mini-v1`` (``mini-flow``, the FlyingChairs-style validation split): EPE and Fl-all;
* ``flow-middlebury-v1`` (``middlebury-flow``, the 8 sequences with ground truth): EPE.

Every metric is a per-image mean over the image's valid pixels, then the unweighted mean over
images (:func:`suite.leaderboards.benchmarks.mean_and_error`, with its standard error). This is
RAFT-Stereo's ``validate_things`` and ptlflow's aggregation, not RAFT's pooled Sintel mean
(see ``metric-protocols.md``); the pixel errors come from :mod:`metrics.flow`.

Conventions (``suite.data.readers.flow``): disparity ``d`` of the left view puts left pixel
``x`` at ``x - d`` in the right view; flow ``(u, v)`` puts pixel ``(x, y)`` of image 1 at
``(x + u, y + v)`` in image 2.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from metrics import flow as flow_metrics
from suite.harness.methods import method

from .benchmarks import Benchmark, Sample, benchmark, open_dataset, rgb_image

__all__ = [
    "opencv_sgbm", "opencv_bm", "fill_invalid_disparity", "skimage_tvl1", "skimage_ilk", "opencv_farneback",
    "opencv_dis", "stereo_max_disparity", "score_stereo", "score_flow", "check_stereo", "check_flow",
]

#: Middlebury's "bad 2.0": a pixel is bad when its disparity error is above 2 px.
BAD_THRESHOLD = 2.0
_OPENCV_CITATION = "Bradski. The OpenCV Library. Dr. Dobb's Journal 2000"


# --------------------------------------------------------------------------- input helpers


def _pair(first: Any, second: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    first, second = rgb_image(first, names[0]), rgb_image(second, names[1])
    if first.shape != second.shape:
        raise ValueError(f"{names[1]}: expected the shape of {names[0]} {first.shape}, got {second.shape}")
    return first, second


def _grey_uint8(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _grey_float(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return rgb2gray(image)


# --------------------------------------------------------------------------- stereo methods


def _num_disparities(max_disparity: Any, width: int) -> int:
    """OpenCV's ``numDisparities``: the smallest multiple of 16 above ``max_disparity`` (OpenCV
    searches ``0 .. numDisparities - 1``, so a disparity equal to ``max_disparity`` is searched),
    at most the largest multiple of 16 below the image width."""
    try:
        value = float(max_disparity)
    except (TypeError, ValueError):
        raise ValueError(f"max_disparity: expected a positive number of pixels, got {max_disparity!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"max_disparity: expected a positive finite number of pixels, got {max_disparity!r}")
    if width <= 16:
        raise ValueError(f"left: OpenCV stereo needs an image wider than 16 px, got width {width}")
    wanted = 16 * math.ceil((math.floor(value) + 1) / 16)
    return min(wanted, 16 * ((width - 1) // 16))


def fill_invalid_disparity(disparity: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid disparities along each row with the background of their two neighbours.

    Each invalid pixel takes the smaller (farther, background) of the nearest valid disparities
    to its left and to its right on the same row, or the one that exists; a row without any
    valid pixel gets 0. Invalid pixels are mostly occlusions and the left border, which belong
    to the background: this is the simple form of the background extrapolation of occlusions
    in Hirschmüller (TPAMI 2008), which takes the second-lowest of eight directions.

    Args:
        disparity: (H, W) float disparities; values at invalid pixels are ignored.
        valid: (H, W) bool, True where ``disparity`` holds a match.

    Returns:
        (H, W) float32, equal to ``disparity`` at valid pixels.
    """
    disparity = np.asarray(disparity, np.float32)
    valid = np.asarray(valid, bool)
    if disparity.ndim != 2 or valid.shape != disparity.shape:
        raise ValueError(f"valid: expected the (H, W) shape of disparity {disparity.shape}, got {valid.shape}")
    height, width = disparity.shape
    columns = np.broadcast_to(np.arange(width), (height, width))
    left_index = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    right_index = np.minimum.accumulate(np.where(valid, columns, width)[:, ::-1], axis=1)[:, ::-1]
    left_value = np.where(left_index >= 0, np.take_along_axis(disparity, np.clip(left_index, 0, width - 1), 1), np.inf)
    right_value = np.where(right_index < width,
                           np.take_along_axis(disparity, np.clip(right_index, 0, width - 1), 1), np.inf)
    fill = np.minimum(left_value, right_value)
    fill[~np.isfinite(fill)] = 0.0
    return np.where(valid, disparity, fill).astype(np.float32)


def _opencv_disparity(matcher, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    # OpenCV returns int16 disparities times 16; unmatched pixels are (minDisparity - 1) * 16 < 0.
    raw = matcher.compute(left, right)
    disparity = raw.astype(np.float32) / 16.0
    return fill_invalid_disparity(disparity, raw >= 0)


_SGBM_BLOCK = 5


@method("opencv-sgbm", task="stereo", kind="classical",
        citation=f"Hirschmüller. Stereo Processing by Semiglobal Matching and Mutual Information. TPAMI 2008; "
                 f"{_OPENCV_CITATION} (cv2.StereoSGBM)",
        settings=f"MODE_SGBM_3WAY, RGB, blockSize {_SGBM_BLOCK}, P1 8*3*{_SGBM_BLOCK}^2, P2 32*3*{_SGBM_BLOCK}^2, "
                 "preFilterCap 63, uniquenessRatio 10, speckleWindowSize 100, speckleRange 32, disp12MaxDiff 1 "
                 "(OpenCV samples/cpp/stereo_match.cpp); numDisparities = smallest multiple of 16 above "
                 "max_disparity; unmatched pixels filled with the smaller of the nearest valid row neighbours")
def opencv_sgbm(left: Any, right: Any, *, max_disparity: float) -> np.ndarray:
    """Semi-global matching (OpenCV ``StereoSGBM``, 3-way mode) with a background fill.

    Minimises, along 8 (3-way: 5) image paths, the SGM energy
    ``E(D) = sum_p C(p, D_p) + sum_{q in N_p} P1 [|D_p - D_q| = 1] + P2 [|D_p - D_q| > 1]``
    (Hirschmüller 2008, Eq. 11) with Birchfield-Tomasi block costs; unmatched pixels (failed
    uniqueness or left-right check, speckles, the left border) are filled by
    :func:`fill_invalid_disparity` so the error is defined on every pixel.

    Args:
        left, right: (H, W, 3) uint8 RGB, rectified.
        max_disparity: the largest disparity to search, in pixels (> 0).

    Returns:
        (H, W) float32 disparity of the left view, in pixels (quarter-pixel steps: OpenCV's
        1/16 fixed point).

    Raises:
        ValueError: images not (H, W, 3) uint8 of one shape, or a non-positive ``max_disparity``.
    """
    import cv2

    left, right = _pair(left, right, ("left", "right"))
    matcher = cv2.StereoSGBM_create(
        minDisparity=0, numDisparities=_num_disparities(max_disparity, left.shape[1]), blockSize=_SGBM_BLOCK,
        P1=8 * 3 * _SGBM_BLOCK**2, P2=32 * 3 * _SGBM_BLOCK**2, disp12MaxDiff=1, preFilterCap=63,
        uniquenessRatio=10, speckleWindowSize=100, speckleRange=32, mode=cv2.StereoSGBM_MODE_SGBM_3WAY)
    return _opencv_disparity(matcher, left, right)


_BM_BLOCK = 9


@method("opencv-bm", task="stereo", kind="classical",
        citation=f"Konolige. Small Vision Systems: Hardware and Implementation. ISRR 1997; {_OPENCV_CITATION} "
                 "(cv2.StereoBM)",
        settings=f"grey images, blockSize {_BM_BLOCK}, preFilterCap 31, textureThreshold 10, uniquenessRatio 15, "
                 "speckleWindowSize 100, speckleRange 32, disp12MaxDiff 1 (OpenCV samples/cpp/stereo_match.cpp); "
                 "numDisparities and the fill as opencv-sgbm")
def opencv_bm(left: Any, right: Any, *, max_disparity: float) -> np.ndarray:
    """Block matching (OpenCV ``StereoBM``: SAD over ``blockSize``-square windows of
    x-Sobel-prefiltered grey images, winner takes all) with the background fill of
    :func:`fill_invalid_disparity`.

    Args:
        left, right: (H, W, 3) uint8 RGB, rectified (converted to grey).
        max_disparity: the largest disparity to search, in pixels (> 0).

    Returns:
        (H, W) float32 disparity of the left view, in pixels.

    Raises:
        ValueError: as :func:`opencv_sgbm`.
    """
    import cv2

    left, right = _pair(left, right, ("left", "right"))
    matcher = cv2.StereoBM_create(numDisparities=_num_disparities(max_disparity, left.shape[1]), blockSize=_BM_BLOCK)
    matcher.setPreFilterCap(31)
    matcher.setMinDisparity(0)
    matcher.setTextureThreshold(10)
    matcher.setUniquenessRatio(15)
    matcher.setSpeckleWindowSize(100)
    matcher.setSpeckleRange(32)
    matcher.setDisp12MaxDiff(1)
    return _opencv_disparity(matcher, _grey_uint8(left), _grey_uint8(right))


# --------------------------------------------------------------------------- flow methods


def _uv_from_rows_columns(flow: np.ndarray) -> np.ndarray:
    # scikit-image returns (row, column) = (v, u) stacked on the first axis.
    return np.stack([flow[1], flow[0]], axis=-1).astype(np.float32)


@method("skimage-tvl1", task="flow", kind="classical",
        citation="Zach, Pock, Bischof. A Duality Based Approach for Realtime TV-L1 Optical Flow. DAGM 2007; "
                 "Wedel et al. An Improved Algorithm for TV-L1 Optical Flow. 2009; "
                 "scikit-image skimage.registration.optical_flow_tvl1",
        settings="scikit-image defaults on grey float images (rgb2gray): attachment 15, tightness 0.3, "
                 "num_warp 5, num_iter 10, tol 1e-4, prefilter False")
def skimage_tvl1(image1: Any, image2: Any) -> np.ndarray:
    """TV-L1 optical flow (scikit-image): minimises
    ``E(u) = sum |grad u| + lambda sum |I_1(x) - I_2(x + u(x))|`` (Zach et al. 2007, Eq. 1)
    by the duality-based scheme with coarse-to-fine warping.

    Args:
        image1, image2: (H, W, 3) uint8 RGB (converted to grey floats in [0, 1]).

    Returns:
        (H, W, 2) float32 flow (u, v) in pixels from ``image1`` to ``image2``.

    Raises:
        ValueError: images not (H, W, 3) uint8 of one shape.
    """
    from skimage.registration import optical_flow_tvl1

    image1, image2 = _pair(image1, image2, ("image1", "image2"))
    return _uv_from_rows_columns(optical_flow_tvl1(_grey_float(image1), _grey_float(image2)))


@method("skimage-ilk", task="flow", kind="classical",
        citation="Lucas, Kanade. An Iterative Image Registration Technique with an Application to Stereo Vision. "
                 "IJCAI 1981; Le Besnerais, Champagnat. Dense optical flow by iterative local window registration. "
                 "ICIP 2005; scikit-image skimage.registration.optical_flow_ilk",
        settings="scikit-image defaults on grey float images (rgb2gray): radius 7, num_warp 10, gaussian False, "
                 "prefilter False")
def skimage_ilk(image1: Any, image2: Any) -> np.ndarray:
    """Iterative Lucas-Kanade dense flow (scikit-image): per pixel, the least-squares
    translation of a ``(2 radius + 1)``-square window, iterated with warping, coarse to fine.

    Args:
        image1, image2: (H, W, 3) uint8 RGB (converted to grey floats in [0, 1]).

    Returns:
        (H, W, 2) float32 flow (u, v) in pixels from ``image1`` to ``image2``.

    Raises:
        ValueError: images not (H, W, 3) uint8 of one shape.
    """
    from skimage.registration import optical_flow_ilk

    image1, image2 = _pair(image1, image2, ("image1", "image2"))
    return _uv_from_rows_columns(optical_flow_ilk(_grey_float(image1), _grey_float(image2)))


@method("opencv-farneback", task="flow", kind="classical",
        citation=f"Farnebäck. Two-Frame Motion Estimation Based on Polynomial Expansion. SCIA 2003; "
                 f"{_OPENCV_CITATION} (cv2.calcOpticalFlowFarneback)",
        settings="grey uint8 images; pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2, "
                 "flags 0 (OpenCV samples/python/opt_flow.py)")
def opencv_farneback(image1: Any, image2: Any) -> np.ndarray:
    """Farnebäck polynomial-expansion flow (OpenCV): each neighbourhood is approximated by a
    quadratic polynomial and the displacement solved from the change of its coefficients,
    over an image pyramid.

    Args:
        image1, image2: (H, W, 3) uint8 RGB (converted to grey).

    Returns:
        (H, W, 2) float32 flow (u, v) in pixels from ``image1`` to ``image2``.

    Raises:
        ValueError: images not (H, W, 3) uint8 of one shape.
    """
    import cv2

    image1, image2 = _pair(image1, image2, ("image1", "image2"))
    flow = cv2.calcOpticalFlowFarneback(_grey_uint8(image1), _grey_uint8(image2), None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return np.asarray(flow, np.float32)


@method("opencv-dis", task="flow", kind="classical",
        citation=f"Kroeger, Timofte, Dai, Van Gool. Fast Optical Flow using Dense Inverse Search. ECCV 2016; "
                 f"{_OPENCV_CITATION} (cv2.DISOpticalFlow)",
        settings="grey uint8 images; DISOPTICAL_FLOW_PRESET_MEDIUM (OpenCV's preset, variational refinement on)")
def opencv_dis(image1: Any, image2: Any) -> np.ndarray:
    """Dense Inverse Search flow (OpenCV, medium preset): inverse-compositional patch
    alignment on a grid of patches, densified and refined variationally, coarse to fine.

    Args:
        image1, image2: (H, W, 3) uint8 RGB (converted to grey).

    Returns:
        (H, W, 2) float32 flow (u, v) in pixels from ``image1`` to ``image2``.

    Raises:
        ValueError: images not (H, W, 3) uint8 of one shape.
    """
    import cv2

    image1, image2 = _pair(image1, image2, ("image1", "image2"))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return np.asarray(dis.calc(_grey_uint8(image1), _grey_uint8(image2), None), np.float32)


# --------------------------------------------------------------------------- benchmark samples


def stereo_max_disparity(sample: dict) -> int:
    """The ``max_disparity`` a stereo method gets: ``ndisp`` of the scene's ``calib.txt`` when
    present (Middlebury's bound on the disparity range), else the ceiling of the largest finite
    ground-truth disparity (at least 1)."""
    calib = sample.get("calib") or {}
    if calib.get("ndisp"):
        return int(calib["ndisp"])
    disparity = sample["disparity"]
    finite = disparity[np.isfinite(disparity)]
    return max(1, int(math.ceil(float(finite.max())))) if finite.size else 1


def _validation_scenes(root: Path) -> set[str] | None:
    listed = root / "val.txt"
    if not listed.is_file():
        return None
    return {line.strip() for line in listed.read_text().splitlines() if line.strip()}


def _stereo_samples(dataset_id: str):
    def samples(root, limit: int | None) -> Iterator[Sample]:
        root = Path(root)
        dataset = open_dataset(dataset_id, root)
        wanted = _validation_scenes(root)
        if wanted is not None:
            dataset.items = [scene for scene in dataset.items if str(scene.relative_to(root)) in wanted]
        for index in range(len(dataset) if limit is None else min(limit, len(dataset))):
            sample = dataset[index]
            if "disparity" not in sample:
                continue
            yield Sample(name=sample["name"],
                         inputs={"left": sample["left"], "right": sample["right"],
                                 "max_disparity": stereo_max_disparity(sample)},
                         truth={"disparity": sample["disparity"], "valid": sample["valid"]})

    return samples


def _flow_samples(dataset_id: str, **options):
    def samples(root, limit: int | None) -> Iterator[Sample]:
        dataset = open_dataset(dataset_id, Path(root), **options)
        for index in range(len(dataset) if limit is None else min(limit, len(dataset))):
            sample = dataset[index]
            if sample.get("flow") is None:
                continue
            yield Sample(name=sample["name"], inputs={"image1": sample["image1"], "image2": sample["image2"]},
                         truth={"flow": sample["flow"], "valid": sample["valid"]})

    return samples


# --------------------------------------------------------------------------- checks and scores


def _check_prediction(prediction: Any, expected: tuple[int, ...], what: str) -> None:
    if not isinstance(prediction, np.ndarray):
        raise ValueError(f"prediction: expected a numpy float array {what} of shape {expected}, "
                         f"got {type(prediction).__name__}")
    if prediction.shape != expected or not np.issubdtype(prediction.dtype, np.floating):
        raise ValueError(f"prediction: expected a float {what} array of shape {expected}, "
                         f"got shape {prediction.shape} dtype {prediction.dtype}")
    finite = np.isfinite(prediction)
    if not finite.all():
        nans = int(np.isnan(prediction).sum())
        raise ValueError(f"prediction: expected finite values, got {nans} NaN and "
                         f"{int((~finite).sum()) - nans} infinite value(s)")


def check_stereo(prediction: Any, sample: Sample) -> None:
    """Raise ValueError unless ``prediction`` is a finite float (H, W) array of the ground
    truth's shape."""
    _check_prediction(prediction, tuple(sample.truth["disparity"].shape), "(H, W) disparity")


def check_flow(prediction: Any, sample: Sample) -> None:
    """Raise ValueError unless ``prediction`` is a finite float (H, W, 2) array of the ground
    truth's shape."""
    _check_prediction(prediction, tuple(sample.truth["flow"].shape), "(H, W, 2) flow")


def score_stereo(prediction: np.ndarray, truth: dict) -> dict[str, float]:
    """One image's disparity errors over its valid pixels (finite ground truth, ``valid``).

    Args:
        prediction: (H, W) float disparity.
        truth: ``disparity`` (H, W) float (inf = no ground truth), ``valid`` (H, W) bool or None.

    Returns:
        ``{"EPE": mean |d - d_gt| in px, "bad-2.0": % of pixels with |d - d_gt| > 2}``.
    """
    gt = np.asarray(truth["disparity"], np.float64)[None]
    valid = None if truth.get("valid") is None else np.asarray(truth["valid"], bool)[None]
    pred = np.asarray(prediction, np.float64)[None]
    return {"EPE": float(flow_metrics.epe(pred, gt, valid)),
            "bad-2.0": 100.0 * float(flow_metrics.bad_pixel_rate(pred, gt, valid, threshold=BAD_THRESHOLD))}


def score_flow(prediction: np.ndarray, truth: dict, *, outliers: bool = True) -> dict[str, float]:
    """One image's flow errors over its valid pixels (finite, not Middlebury's unknown marker,
    ``valid``).

    Args:
        prediction: (H, W, 2) float flow (u, v).
        truth: ``flow`` (H, W, 2) float, ``valid`` (H, W) bool or None.
        outliers: also return Fl-all.

    Returns:
        ``{"EPE": mean ||f - f_gt||_2 in px}`` and, with ``outliers``, ``"Fl-all"``: % of pixels
        with error > 3 px and > 5 % of ``||f_gt||`` (KITTI 2015).
    """
    gt = np.moveaxis(np.asarray(truth["flow"], np.float64), -1, 0)[None]
    valid = None if truth.get("valid") is None else np.asarray(truth["valid"], bool)[None]
    pred = np.moveaxis(np.asarray(prediction, np.float64), -1, 0)[None]
    result = {"EPE": float(flow_metrics.epe(pred, gt, valid))}
    if outliers:
        result["Fl-all"] = 100.0 * float(flow_metrics.d1(pred, gt, valid))
    return result


def _score_flow_epe(prediction: np.ndarray, truth: dict) -> dict[str, float]:
    return score_flow(prediction, truth, outliers=False)


# --------------------------------------------------------------------------- benchmarks

_STEREO_METRICS = {"EPE": ("px", False), "bad-2.0": ("%", False)}
_STEREO_PROTOCOL = (
    "Input: the left and right images (uint8 RGB) and max_disparity = ndisp of calib.txt when present, "
    "else the ceiling of the largest finite ground-truth disparity. Pixels scored: every pixel of the left "
    "view with finite ground truth (Middlebury 'all', occluded pixels included; no disparity cap). "
    "Per image: EPE = mean |d - d_gt| (px) and bad-2.0 = % of those pixels with |d - d_gt| > 2 px; "
    "then the unweighted mean over images (± standard error). The prediction must be a finite float (H, W) "
    "array, so a method fills its own holes.")

STEREO_MINI = benchmark(Benchmark(
    id="stereo-mini-v1", task="stereo", dataset="mini-stereo",
    title="Stereo, mini-stereo validation scenes (v1)",
    metrics=_STEREO_METRICS, samples=_stereo_samples("mini-stereo"), score=score_stereo, check=check_stereo,
    protocol="Scenes: those listed in val.txt (the generated set's validation split, 20 %), in order. "
             + _STEREO_PROTOCOL,
    limits={"smoke": 2, "mini": None, "full": None}))

STEREO_MOTORCYCLE = benchmark(Benchmark(
    id="stereo-motorcycle-v1", task="stereo", dataset="middlebury2014-motorcycle",
    title="Stereo, Middlebury 2014 Motorcycle (scikit-image, 741x500) (v1)",
    metrics=_STEREO_METRICS, samples=_stereo_samples("middlebury2014-motorcycle"), score=score_stereo,
    check=check_stereo,
    protocol="Scene: the Motorcycle pair of Middlebury 2014 at scikit-image's reduced size (741x500; max_disparity "
             "60 from its ground truth, which has no calib.txt). " + _STEREO_PROTOCOL,
    limits={"smoke": 1, "mini": None, "full": None}))

FLOW_MINI = benchmark(Benchmark(
    id="flow-mini-v1", task="flow", dataset="mini-flow",
    title="Optical flow, mini-flow validation pairs (v1)",
    metrics={"EPE": ("px", False), "Fl-all": ("%", False)}, samples=_flow_samples("mini-flow", split="val"),
    score=score_flow, check=check_flow,
    protocol="Pairs: the validation split of FlyingChairs_train_val.txt (label 2), in order. Pixels scored: every "
             "pixel with finite ground truth that is not Middlebury's unknown-flow marker (|u| or |v| > 1e9); "
             "occluded pixels included ('all'). Per image: EPE = mean ||f - f_gt||_2 (px) and Fl-all = % of those "
             "pixels with error > 3 px and > 5 % of ||f_gt|| (KITTI 2015 devkit rule); then the unweighted mean over "
             "images (± standard error).",
    limits={"smoke": 2, "mini": None, "full": None}))

FLOW_MIDDLEBURY = benchmark(Benchmark(
    id="flow-middlebury-v1", task="flow", dataset="middlebury-flow",
    title="Optical flow, Middlebury other-data with ground truth (v1)",
    metrics={"EPE": ("px", False)}, samples=_flow_samples("middlebury-flow", require_flow=True),
    score=_score_flow_epe, check=check_flow,
    protocol="Pairs: frame10 -> frame11 of the sequences with other-gt-flow/<Seq>/flow10.flo (8 in the public "
             "release: Dimetrodon, Grove2, Grove3, Hydrangea, RubberWhale, Urban2, Urban3, Venus), by name. Pixels "
             "scored: finite ground truth that is not the unknown-flow marker (|u| or |v| > 1e9). Per image: "
             "EPE = mean ||f - f_gt||_2 (px); then the unweighted mean over sequences (± standard error).",
    limits={"smoke": 2, "mini": None, "full": None}))
