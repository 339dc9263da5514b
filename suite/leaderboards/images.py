"""Colour denoising and boundary-detection leaderboards: library baselines, the TV-layers paper's
TV prox, and four benchmarks.

Methods (``suite.harness.methods``; fixed settings from the literature or the libraries'
documentation, or an a-priori rule in the noise level stated below, never tuned on benchmark data):

* denoising -- :func:`energybench_tv_prox` (``energybench-tv-prox``, the paper's anisotropic TV
  prox), :func:`skimage_tv_chambolle` (``skimage-tv-chambolle``), :func:`opencv_nlmeans`
  (``opencv-nlmeans``), :func:`skimage_wavelet` (``skimage-wavelet``; PyWavelets is a dependency), and
  :func:`noisy_input` (``noisy-input``, the identity: the floor of the leaderboard);
* edges -- :func:`sobel` (``sobel``, the detector :mod:`metrics.edges` ships), :func:`scharr`
  (``scharr``) and :func:`canny_multiscale` (``canny-multiscale``).

Benchmarks (experiments ``leaderboard.<id>``):

* ``denoise-mini-sigma25-v1`` (``mini-denoise``) and ``denoise-cbsd68-sigma25-v1`` (``cbsd68``):
  PSNR at sigma 25 under the KAIR protocol (:mod:`metrics.image`), per image, then the mean over
  images (± standard error);
* ``edges-mini-v1`` (``mini-edges``) and ``edges-bsds500-v1`` (``bsds500``), test split: ODS, OIS
  and AP of the BSDS boundary benchmark (:mod:`metrics.edges`, 99 thresholds, thinning,
  maxDist 0.0075), computed over the dataset from per-image counts (one value, no standard error).

Profiles change only how many images are scored (``Benchmark.limits``), never the protocol.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from metrics import edges as edge_metrics
from metrics import image as image_metrics
from suite.harness.methods import method

from .benchmarks import Benchmark, Sample, benchmark, open_dataset, rgb_image

__all__ = [
    "SIGMA", "getreuer_weight", "nlmeans_parameters", "energybench_tv_prox", "skimage_tv_chambolle",
    "opencv_nlmeans", "skimage_wavelet", "noisy_input", "sobel", "scharr", "canny_multiscale",
    "score_denoising", "check_denoising", "score_edges", "aggregate_edges", "check_edges",
]

#: The noise level of the denoising benchmarks (0-255 units), the TV-layers paper's Table 6 level.
SIGMA = 25.0
#: Dykstra iterations of ``energybench-tv-prox`` (see :func:`energybench_tv_prox`).
TV_PROX_ITERS = 50
#: The scales of ``canny-multiscale``: skimage's default sigma 1 and two octaves above it.
CANNY_SIGMAS = (1.0, 2.0, 4.0)

_OPENCV_CITATION = "Bradski. The OpenCV Library. Dr. Dobb's Journal 2000"
_SKIMAGE_CITATION = "van der Walt et al. scikit-image: image processing in Python. PeerJ 2014"
_GETREUER_CITATION = ("Getreuer. Rudin-Osher-Fatemi Total Variation Denoising using Split Bregman. "
                      "IPOL 2012 (the rule lambda = 0.7079/sigma + 0.6849/sigma^2)")

# IPOL NL-means parameters (Buades, Coll, Morel, IPOL 2011, and its reference code
# nlmeans_ipol): (largest sigma, half patch size, half search size, h / sigma).
_IPOL_NLMEANS_COLOUR = ((25.0, 1, 10, 0.55), (55.0, 2, 17, 0.40), (100.0, 3, 17, 0.35))
_IPOL_NLMEANS_GREY = ((15.0, 1, 10, 0.40), (30.0, 2, 10, 0.40), (45.0, 3, 17, 0.35), (75.0, 4, 17, 0.35),
                      (100.0, 5, 17, 0.30))


# --------------------------------------------------------------------------- input helpers


def _noisy(noisy: Any) -> np.ndarray:
    array = np.asarray(noisy)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"noisy: expected an (H, W, C) float image in 0-255 units, got shape {array.shape} "
                         f"dtype {array.dtype}")
    return array.astype(np.float64)


def _sigma(sigma: Any) -> float:
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma: expected a positive noise standard deviation in 0-255 units, got {sigma!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"sigma: expected a positive finite noise standard deviation in 0-255 units, got {sigma!r}")
    return value


def _grey(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return rgb2gray(image)


def _normalised(magnitude: np.ndarray) -> np.ndarray:
    peak = float(magnitude.max())
    return magnitude / peak if peak > 0 else np.zeros_like(magnitude)


# --------------------------------------------------------------------------- denoising methods


def getreuer_weight(sigma: float) -> float:
    """The TV weight ``1 / lambda`` of Getreuer's rule, in 0-255 units.

    Getreuer (IPOL 2012) fits the lambda of the ROF model
    ``min_u TV(u) + lambda / 2 ||u - f||^2`` to the noise level as
    ``lambda = 0.7079 / sigma + 0.6849 / sigma^2``, sigma in 0-255 units (the scale of his demo's
    noise parameter); the same minimiser is ``min_u 1/2 ||u - f||^2 + (1 / lambda) TV(u)``.
    At sigma 25 the weight is 34.0 (0.133 on [0, 1] data).

    Raises:
        ValueError: sigma not a positive finite number.
    """
    sigma = _sigma(sigma)
    return 1.0 / (0.7079 / sigma + 0.6849 / sigma**2)


@method("energybench-tv-prox", task="denoising", kind="paper",
        citation="Yeh, Hu, Ren, Schwing. Total Variation Optimization Layers for Computer Vision. CVPR 2022 "
                 f"(Eq. 2, Alg. 1; suite.solvers.tv.tv_prox_2d); weight rule: {_GETREUER_CITATION}",
        settings=f"anisotropic TV prox per RGB channel on 0-255 data, lam = (pi/4) / (0.7079/sigma + 0.6849/sigma^2) "
                 f"(26.7 at sigma 25), {TV_PROX_ITERS} proximal Dykstra iterations")
def energybench_tv_prox(noisy: Any, *, sigma: float) -> np.ndarray:
    r"""Anisotropic TV denoising by the TV-layers paper's 2D prox (Eq. 2), one channel at a time.

    .. math::
        \hat Y_c = \arg\min_Y \tfrac12 \|Y - X_c\|_F^2 + \lambda \Big(\sum_m \|D Y_{row(m)}\|_1
        + \sum_n \|D Y_{col(n)}\|_1\Big)

    solved by :func:`suite.solvers.tv.tv_prox_2d` (proximal Dykstra over the exact 1D prox, Alg. 1)
    on the unclipped 0-255 input. A-priori rule for lambda: Getreuer's isotropic weight
    (:func:`getreuer_weight`) times pi/4. The anisotropic TV ``|dx| + |dy|`` of a gradient whose
    orientation is uniform exceeds its isotropic TV ``sqrt(dx^2 + dy^2)`` by 4/pi on average, so
    pi/4 gives the two models the same expected penalty. ``TV_PROX_ITERS`` = 50 Dykstra
    iterations: on scikit-image's astronaut at sigma 25 (not benchmark data) the result is then
    within 0.05 grey levels (mean) and 0.02 % in energy of the 400-iteration solution (the paper's
    3-4 iterations, meant for layers inside a network, are 0.7 grey levels away).

    Args:
        noisy: (H, W, C) float image in 0-255 units, not clipped.
        sigma: noise standard deviation in 0-255 units (> 0).

    Returns:
        (H, W, C) float32 estimate in 0-255 units (not clipped).

    Raises:
        ValueError: ``noisy`` not an (H, W, C) float array, or a non-positive ``sigma``.
    """
    import torch

    from suite.solvers.tv import tv_prox_2d

    x = _noisy(noisy)
    lam = (math.pi / 4.0) * getreuer_weight(sigma)
    channels = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0)))
    estimate = tv_prox_2d(channels, lam, iters=TV_PROX_ITERS)
    return np.moveaxis(estimate.numpy(), 0, -1).astype(np.float32)


@method("skimage-tv-chambolle", task="denoising", kind="classical",
        citation=f"Chambolle. An Algorithm for Total Variation Minimization and Applications. JMIV 2004; "
                 f"{_SKIMAGE_CITATION} (denoise_tv_chambolle); weight rule: {_GETREUER_CITATION}",
        settings="isotropic TV per channel on [0, 1] data (channel_axis=-1), weight = "
                 "(1/255) / (0.7079/sigma + 0.6849/sigma^2) (0.133 at sigma 25), scikit-image defaults "
                 "eps 2e-4, max_num_iter 200")
def skimage_tv_chambolle(noisy: Any, *, sigma: float) -> np.ndarray:
    r"""ROF (isotropic TV) denoising by Chambolle's dual projection (scikit-image), per channel.

    .. math::
        \hat u_c = \arg\min_u \tfrac12 \|u - f_c\|_2^2 + w \sum_p \|\nabla u(p)\|_2

    on ``f = noisy / 255``. A-priori rule for the weight: Getreuer's ``w = 1 / lambda(sigma)``
    (:func:`getreuer_weight`, fitted by its author on 0-255 data) divided by 255 because TV is
    1-homogeneous. Getreuer regularises colour with a vectorial TV; scikit-image's channels are
    independent, so the same weight smooths colour images somewhat more than his fit assumed.
    On scikit-image's astronaut at sigma 25 (not benchmark data) it lands 0.7 dB below the best
    weight in hindsight; it is not adjusted.

    Args:
        noisy: (H, W, C) float image in 0-255 units, not clipped.
        sigma: noise standard deviation in 0-255 units (> 0).

    Returns:
        (H, W, C) float32 estimate in 0-255 units.

    Raises:
        ValueError: ``noisy`` not an (H, W, C) float array, or a non-positive ``sigma``.
    """
    from skimage.restoration import denoise_tv_chambolle

    x = _noisy(noisy)
    weight = getreuer_weight(sigma) / 255.0
    return (denoise_tv_chambolle(x / 255.0, weight=weight, channel_axis=-1) * 255.0).astype(np.float32)


def nlmeans_parameters(sigma: float, *, colour: bool) -> tuple[int, int, float]:
    """IPOL NL-means parameters for a noise level: (patch size, search window size, h).

    The table of Buades, Coll and Morel (IPOL 2011; their ``nlmeans_ipol`` reference code),
    colour: sigma <= 25: 3x3 patches, 21x21 search, h = 0.55 sigma; <= 55: 5x5, 35x35, 0.40 sigma;
    <= 100: 7x7, 35x35, 0.35 sigma. Grey: <= 15: 3x3, 21x21, 0.40 sigma; <= 30: 5x5, 21x21,
    0.40 sigma; <= 45: 7x7, 35x35, 0.35 sigma; <= 75: 9x9, 35x35, 0.35 sigma; <= 100: 11x11, 35x35,
    0.30 sigma. IPOL stops at sigma 100; above it the last row is used.

    Raises:
        ValueError: sigma not a positive finite number.
    """
    sigma = _sigma(sigma)
    table = _IPOL_NLMEANS_COLOUR if colour else _IPOL_NLMEANS_GREY
    row = next((r for r in table if sigma <= r[0]), table[-1])
    _, half_patch, half_search, factor = row
    return 2 * half_patch + 1, 2 * half_search + 1, factor * sigma


@method("opencv-nlmeans", task="denoising", kind="classical",
        citation=f"Buades, Coll, Morel. Non-Local Means Denoising. IPOL 2011; {_OPENCV_CITATION} "
                 "(cv2.fastNlMeansDenoisingColored / fastNlMeansDenoising)",
        settings="input rounded and clipped to uint8; colour: IPOL's colour table by sigma (at sigma 25: 3x3 "
                 "patches, 21x21 search, h = hColor = 0.55 sigma = 13.75); one channel: IPOL's grey patch and "
                 "search sizes (5x5, 21x21 at sigma 25) with h = sigma (scikit-image's rule for unoffset weights)")
def opencv_nlmeans(noisy: Any, *, sigma: float) -> np.ndarray:
    """Non-local means (OpenCV): each pixel becomes a weighted mean of the pixels of its search
    window, with weights ``exp(-d^2 / h^2)`` from the mean squared difference ``d^2`` of the
    patches around them.

    The noisy input is rounded and clipped to uint8 (OpenCV's input type). Patch and search sizes
    follow the IPOL table for the noise level (:func:`nlmeans_parameters`). IPOL's ``h`` assumes
    IPOL's weights ``exp(-max(d^2 - 2 sigma^2, 0) / h^2)``; OpenCV does not subtract the expected
    noise distance ``2 sigma^2``, so the rule for ``h`` depends on the space OpenCV filters:

    * colour images go through ``fastNlMeansDenoisingColored``, which filters 8-bit CIELAB (L with
      ``h``, a and b with ``hColor``), whose channels carry roughly half the RGB noise; IPOL's
      colour ``h`` is used as is for both (``h = hColor = 0.55 sigma`` at sigma <= 25);
    * single-channel images go through ``fastNlMeansDenoising`` on the intensities themselves,
      where IPOL's grey ``h`` (0.4 sigma) would give a patch differing by noise alone the weight
      ``exp(-12.5)`` and leave the image almost unchanged; ``h = sigma`` is used instead,
      scikit-image's rule of thumb for weights without the noise subtraction (``denoise_nl_means``).

    Args:
        noisy: (H, W, 3) or (H, W, 1) float image in 0-255 units, not clipped.
        sigma: noise standard deviation in 0-255 units (> 0).

    Returns:
        (H, W, C) float32 estimate in 0-255 units.

    Raises:
        ValueError: ``noisy`` not (H, W, 3) or (H, W, 1) float, or a non-positive ``sigma``.
    """
    import cv2

    x = _noisy(noisy)
    if x.shape[2] not in (1, 3):
        raise ValueError(f"noisy: expected 1 or 3 channels, got shape {x.shape}")
    quantised = np.clip(np.round(x), 0, 255).astype(np.uint8)
    patch, search, h = nlmeans_parameters(sigma, colour=x.shape[2] == 3)
    if x.shape[2] == 1:
        h = _sigma(sigma)
        return cv2.fastNlMeansDenoising(quantised[..., 0], None, h, patch, search)[..., None].astype(np.float32)
    bgr = np.ascontiguousarray(quantised[..., ::-1])  # OpenCV's colour conversion expects BGR
    denoised = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, patch, search)
    return np.ascontiguousarray(denoised[..., ::-1]).astype(np.float32)


def skimage_wavelet(noisy: Any, *, sigma: float) -> np.ndarray:
    """Wavelet shrinkage (scikit-image ``denoise_wavelet``): BayesShrink soft thresholds per
    sub-band, ``T = sigma^2 / sigma_signal`` (Chang, Yu, Vetterli 2000), each RGB channel on its own.

    Settings are scikit-image's defaults (db1 wavelet, levels = three fewer than the maximum,
    soft thresholding, RGB not converted to YCbCr) with the known noise level passed as
    ``sigma / 255`` on [0, 1] data instead of being estimated.

    Args:
        noisy: (H, W, C) float image in 0-255 units, not clipped.
        sigma: noise standard deviation in 0-255 units (> 0).

    Returns:
        (H, W, C) float32 estimate in 0-255 units.

    Raises:
        ValueError: ``noisy`` not an (H, W, C) float array, or a non-positive ``sigma``.
    """
    from skimage.restoration import denoise_wavelet

    x = _noisy(noisy)
    estimate = denoise_wavelet(x / 255.0, sigma=_sigma(sigma) / 255.0, method="BayesShrink", mode="soft",
                               channel_axis=-1, rescale_sigma=True)
    return (estimate * 255.0).astype(np.float32)


method("skimage-wavelet", task="denoising", kind="classical",
       citation=f"Chang, Yu, Vetterli. Adaptive Wavelet Thresholding for Image Denoising and Compression. "
                f"TIP 2000; {_SKIMAGE_CITATION} (denoise_wavelet)",
       settings="BayesShrink, soft, scikit-image defaults (db1, default levels, RGB channels), "
                "sigma given as sigma/255 on [0, 1] data")(skimage_wavelet)


@method("noisy-input", task="denoising", kind="classical",
        citation="the identity (the noisy input itself): the floor of the leaderboard",
        settings="none: returns the noisy input unchanged (scored after the protocol's clip and rounding)")
def noisy_input(noisy: Any, *, sigma: float) -> np.ndarray:
    """The identity: returns the noisy input, the score every denoiser must beat.

    Args:
        noisy: (H, W, C) float image in 0-255 units.
        sigma: ignored (checked to be positive, as for every denoiser).

    Returns:
        (H, W, C) float32 copy of ``noisy``.

    Raises:
        ValueError: ``noisy`` not an (H, W, C) float array, or a non-positive ``sigma``.
    """
    _sigma(sigma)
    return _noisy(noisy).astype(np.float32)


# --------------------------------------------------------------------------- edge methods


@method("sobel", task="edges", kind="classical",
        citation=f"Sobel, Feldman. A 3x3 Isotropic Gradient Operator for Image Processing. 1968; {_SKIMAGE_CITATION} "
                 "(skimage.filters.sobel; metrics.edges.sobel_edges)",
        settings="grey image (rgb2gray), Sobel gradient magnitude divided by its maximum; no smoothing, no NMS")
def sobel(image: Any) -> np.ndarray:
    """Sobel gradient magnitude of the grey image, divided by its maximum: the detector
    :func:`metrics.edges.sobel_edges` that ``run_bsds`` evaluates, reused as is.

    Args:
        image: (H, W, 3) uint8 RGB (a grey (H, W) image is accepted and repeated).

    Returns:
        (H, W) float64 edge strength in [0, 1] (all zero for a constant image).

    Raises:
        ValueError: ``image`` not (H, W, 3) uint8.
    """
    return np.asarray(edge_metrics.sobel_edges(rgb_image(image)), np.float64)


@method("scharr", task="edges", kind="classical",
        citation=f"Scharr. Optimale Operatoren in der digitalen Bildverarbeitung. PhD thesis, Heidelberg 2000; "
                 f"{_SKIMAGE_CITATION} (skimage.filters.scharr)",
        settings="grey image (rgb2gray), Scharr gradient magnitude divided by its maximum; no smoothing, no NMS")
def scharr(image: Any) -> np.ndarray:
    """Scharr gradient magnitude of the grey image (scikit-image), divided by its maximum.

    Args:
        image: (H, W, 3) uint8 RGB (a grey (H, W) image is accepted and repeated).

    Returns:
        (H, W) float64 edge strength in [0, 1] (all zero for a constant image).

    Raises:
        ValueError: ``image`` not (H, W, 3) uint8.
    """
    from skimage.filters import scharr as scharr_magnitude

    return _normalised(scharr_magnitude(_grey(rgb_image(image))))


@method("canny-multiscale", task="edges", kind="classical",
        citation=f"Canny. A Computational Approach to Edge Detection. TPAMI 1986; {_SKIMAGE_CITATION} "
                 "(skimage.feature.canny)",
        settings="grey image (rgb2gray), skimage canny at sigma 1, 2, 4 with its default hysteresis thresholds "
                 "(0.1, 0.2), the three binary maps averaged (values 0, 1/3, 2/3, 1)")
def canny_multiscale(image: Any) -> np.ndarray:
    """Canny edges at three scales averaged into a soft map: the fraction of the scales at which
    each pixel is an edge.

    The scales are scikit-image's default ``sigma = 1`` and two octaves above it (2, 4); the
    hysteresis thresholds are scikit-image's defaults. Every map is thin already (Canny's
    non-maximum suppression), so a pixel found at all three scales scores 1.

    Args:
        image: (H, W, 3) uint8 RGB (a grey (H, W) image is accepted and repeated).

    Returns:
        (H, W) float64 edge strength in {0, 1/3, 2/3, 1}.

    Raises:
        ValueError: ``image`` not (H, W, 3) uint8.
    """
    from skimage.feature import canny

    grey = _grey(rgb_image(image))
    return np.mean([canny(grey, sigma=s) for s in CANNY_SIGMAS], axis=0, dtype=np.float64)


# --------------------------------------------------------------------------- benchmark samples


def _denoising_samples(dataset_id: str):
    def samples(root, limit: int | None) -> Iterator[Sample]:
        dataset = open_dataset(dataset_id, Path(root), sigma=SIGMA)
        for index in range(len(dataset) if limit is None else min(limit, len(dataset))):
            sample = dataset[index]
            clean, noisy = sample["clean"], sample["noisy"]
            if clean.ndim == 2:  # a grey set: one channel, as the contract's (H, W, C)
                clean, noisy = clean[..., None], noisy[..., None]
            yield Sample(name=sample["name"],
                         inputs={"noisy": (noisy * np.float32(255.0)).astype(np.float32), "sigma": SIGMA},
                         truth={"clean": clean})

    return samples


def _edge_samples(dataset_id: str):
    def samples(root, limit: int | None) -> Iterator[Sample]:
        dataset = open_dataset(dataset_id, Path(root), split="test")
        for index in range(len(dataset) if limit is None else min(limit, len(dataset))):
            sample = dataset[index]
            yield Sample(name=sample["name"], inputs={"image": rgb_image(sample["image"])},
                         truth={"boundaries": [a["boundaries"] for a in sample["ground_truth"]]})

    return samples


# --------------------------------------------------------------------------- checks and scores


def _check_array(prediction: Any, expected: tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(prediction, np.ndarray):
        raise ValueError(f"prediction: expected a numpy float {what} array of shape {expected}, "
                         f"got {type(prediction).__name__}")
    if prediction.shape != expected or not np.issubdtype(prediction.dtype, np.floating):
        raise ValueError(f"prediction: expected a float {what} array of shape {expected}, "
                         f"got shape {prediction.shape} dtype {prediction.dtype}")
    finite = np.isfinite(prediction)
    if not finite.all():
        nans = int(np.isnan(prediction).sum())
        raise ValueError(f"prediction: expected finite values, got {nans} NaN and "
                         f"{int((~finite).sum()) - nans} infinite value(s)")
    return prediction


def check_denoising(prediction: Any, sample: Sample) -> None:
    """Raise ValueError unless ``prediction`` is a finite float array of the noisy input's
    (H, W, C) shape (any range: the score clips)."""
    _check_array(prediction, tuple(sample.inputs["noisy"].shape), "(H, W, C) image")


def check_edges(prediction: Any, sample: Sample) -> None:
    """Raise ValueError unless ``prediction`` is a finite float (H, W) array of the image's
    height and width with values in [0, 1]."""
    array = _check_array(prediction, tuple(sample.inputs["image"].shape[:2]), "(H, W) edge map")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"prediction: expected edge strengths in [0, 1], got values in [{low:g}, {high:g}]")


def score_denoising(prediction: np.ndarray, truth: dict) -> dict[str, float]:
    """One image's PSNR under the KAIR protocol.

    The estimate (0-255 units) is divided by 255, clipped to [0, 1], multiplied by 255 and rounded
    to uint8 (:func:`metrics.image.to_uint8`, KAIR ``single2uint``); PSNR ``10 log10(255^2 / MSE)``
    is taken over all pixels and channels against the clean uint8 image
    (:func:`metrics.image.psnr` with ``data_range=255``).

    Args:
        prediction: (H, W, C) float estimate in 0-255 units.
        truth: ``clean`` (H, W, C) uint8.

    Returns:
        ``{"PSNR": dB}`` (inf for an exact estimate).
    """
    estimate = image_metrics.to_uint8(np.asarray(prediction, np.float64) / 255.0)
    return {"PSNR": float(image_metrics.psnr(estimate, truth["clean"], data_range=255))}


def score_edges(prediction: np.ndarray, truth: dict) -> np.ndarray:
    """One image's boundary counts (:func:`metrics.edges.evaluate_image` with its defaults: 99
    thresholds, thinning, maxDist 0.0075), against every annotator of ``truth["boundaries"]``.

    Returns:
        int64 (99, 4): ``cntR, sumR, cntP, sumP`` per threshold.
    """
    return edge_metrics.evaluate_image(prediction, truth["boundaries"])


def aggregate_edges(results: list[np.ndarray]) -> dict[str, tuple[float, None]]:
    """Dataset ODS, OIS and AP from the per-image counts (:func:`metrics.edges.summarize_counts`,
    ``edgesEvalDir``); one value per dataset, so no standard error."""
    summary = edge_metrics.summarize_counts(np.stack(results))
    return {"ODS": (summary["ods"], None), "OIS": (summary["ois"], None), "AP": (summary["ap"], None)}


# --------------------------------------------------------------------------- benchmarks

_DENOISING_METRICS = {"PSNR": ("dB", True)}
_DENOISING_PROTOCOL = (
    "Noise (KAIR protocol, metrics.image): x = clean uint8 / 255 as float32, then "
    "numpy.random.RandomState(seed).normal(0, 25/255, x.shape) added; not clipped, not quantised. The method "
    "receives noisy = 255 x (float32, (H, W, C), 0-255 units) and sigma = 25. Scoring: the estimate / 255 is "
    "clipped to [0, 1], times 255 and rounded to uint8 (KAIR single2uint); PSNR = 10 log10(255^2 / MSE) over all "
    "pixels and all RGB channels (no Y channel, no border crop) per image; reported: the unweighted mean of the "
    "per-image PSNRs (± standard error), not the PSNR of the pooled MSE. The prediction must be a finite float "
    "array of the input's shape.")

DENOISE_MINI = benchmark(Benchmark(
    id="denoise-mini-sigma25-v1", task="denoising", dataset="mini-denoise",
    title="Colour denoising, sigma 25, mini-denoise (protocol v1)",
    metrics=_DENOISING_METRICS, samples=_denoising_samples("mini-denoise"), score=score_denoising,
    check=check_denoising,
    protocol="Images: clean/<name>.png of the generated set in name order, with the noisy inputs it stores "
             "(noisy/sigma25/<name>.npy, made with a seed per image listed in noise.json). " + _DENOISING_PROTOCOL,
    limits={"smoke": 2, "mini": None, "full": None}))

DENOISE_CBSD68 = benchmark(Benchmark(
    id="denoise-cbsd68-sigma25-v1", task="denoising", dataset="cbsd68",
    title="Colour denoising, sigma 25, CBSD68 (protocol v1)",
    metrics=_DENOISING_METRICS, samples=_denoising_samples("cbsd68"), score=score_denoising,
    check=check_denoising,
    protocol="Images: the 68 CBSD68 PNGs in name order (mini: the first 12). Seed 0 for every image, as KAIR's "
             "np.random.seed(seed=0) before each image. " + _DENOISING_PROTOCOL,
    limits={"smoke": 2, "mini": 12, "full": None}))

_EDGE_METRICS = {"ODS": ("", True), "OIS": ("", True), "AP": ("", True)}
_EDGE_PROTOCOL = (
    "Ground truth: every annotator's Boundaries map of groundTruth/<id>.mat. The method returns an (H, W) edge "
    "map in [0, 1] (1 = edge), evaluated as is (no NMS added). Per image (metrics.edges.evaluate_image, BSDS "
    "edgesEvalImg): 99 thresholds linspace(1/100, 99/100); E >= t, thinned (bwmorph 'thin' inf), matched to each "
    "annotator by correspondPixels at maxDist 0.0075 of the image diagonal; counts cntR and sumR summed over "
    "annotators, cntP = predicted pixels matched to any annotator, sumP. Dataset (metrics.edges.summarize_counts, "
    "edgesEvalDir): ODS = the best F of the counts summed over images (100-point interpolation between "
    "thresholds); OIS = F of the sum over images of each image's counts at its own best threshold; AP = the area "
    "under the dataset precision-recall curve (interp1 at recall 0:0.01:1, sum / 100). One value per dataset (no "
    "standard error). The matching is solved exactly, not by CSA's randomised graph, so values may differ from "
    "the MATLAB benchmark by < 0.001.")

EDGES_MINI = benchmark(Benchmark(
    id="edges-mini-v1", task="edges", dataset="mini-edges",
    title="Boundary detection, mini-edges test split (protocol v1)",
    metrics=_EDGE_METRICS, samples=_edge_samples("mini-edges"), score=score_edges, aggregate=aggregate_edges,
    check=check_edges,
    protocol="Images: data/images/test of the generated set in name order (5 simulated annotators each). "
             + _EDGE_PROTOCOL,
    limits={"smoke": 2, "mini": None, "full": None}))

EDGES_BSDS500 = benchmark(Benchmark(
    id="edges-bsds500-v1", task="edges", dataset="bsds500",
    title="Boundary detection, BSDS500 test split (protocol v1)",
    metrics=_EDGE_METRICS, samples=_edge_samples("bsds500"), score=score_edges, aggregate=aggregate_edges,
    check=check_edges,
    protocol="Images: the 200 BSDS500 test images (data/images/test/*.jpg) in name order (mini: the first 10). "
             + _EDGE_PROTOCOL,
    limits={"smoke": 2, "mini": 10, "full": None}))
