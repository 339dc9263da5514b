"""The CIFAR-10-C corruptions (Hendrycks & Dietterich, ICLR 2019), implemented from their definitions.

Fifteen corruptions in four families, each at severities 1-5, with the parameters the authors used
for 32 x 32 images (``ImageNet-C/create_c/make_cifar_c.py`` in hendrycks/robustness, read for its
numbers; the code here is written anew on numpy, SciPy, OpenCV, scikit-image and Pillow):

* noise: ``gaussian_noise`` (std 0.04 .. 0.10 on [0, 1]), ``shot_noise`` (Poisson with 500 .. 50
  photons per unit), ``impulse_noise`` (salt and pepper on 1 % .. 7 % of the values);
* blur: ``defocus_blur`` (anti-aliased disk, radius 0.3 .. 1.5), ``glass_blur`` (Gaussian blur,
  local pixel swaps, Gaussian blur), ``motion_blur`` (see below), ``zoom_blur`` (mean of centre
  zooms up to 1.06 .. 1.26);
* weather: ``snow`` (a zoomed, thresholded, motion-blurred snow layer and a lightened image),
  ``frost`` (an ice texture blended in; see below), ``fog`` (a diamond-square plasma fractal);
* digital: ``brightness`` (V of HSV + 0.05 .. 0.3), ``contrast`` (about the channel means,
  factor 0.75 .. 0.15), ``elastic_transform`` (random affine + smoothed random displacement),
  ``pixelate`` (box down- and up-sampling to 95 % .. 65 %), ``jpeg_compression`` (quality 80 .. 40).

Two corruptions depend on things the original took from outside Python; both are stand-ins,
documented here and in the generated dataset's ``meta.json``:

* ``motion_blur`` (and the snow layer's blur) called ImageMagick's ``MotionBlurImage`` through
  Wand. It is re-implemented from ImageMagick's definition: a one-sided Gaussian kernel of width
  ``2 ceil(radius) + 1`` and standard deviation ``sigma``, its taps placed at the rounded points
  ``i (cos a, sin a)`` along the blur angle ``a``, edge pixels replicated. The numbers differ from
  ImageMagick's by its internal quantisation only.
* ``frost`` blends crops of six photographs of frost (``frost1.png`` .. ``frost6.jpg``) that ship
  with the original code, not with any package here. :func:`frost_texture` draws a stand-in: a
  pale blue-white plasma fractal with branching ice-crystal strokes, at the scale of the original
  crops (the photographs are shrunk to a fifth before cropping 32 x 32). The blend weights are the
  original ones.

Every function takes a ``numpy.random.Generator``: the same generator state gives the same image.
The result is converted to uint8 as the original does (``np.uint8`` of the clipped float image,
i.e. truncation).
"""
from __future__ import annotations

import functools
import io
from typing import Callable

import cv2
import numpy as np

__all__ = [
    "CORRUPTIONS", "FAMILIES", "SEVERITIES", "corrupt", "corrupt_batch", "frost_texture", "motion_blur_kernel",
    "plasma_fractal",
]

#: The 15 corruptions in CIFAR-10-C's order (the order of the released files and of Table 2).
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
SEVERITIES = (1, 2, 3, 4, 5)

# Parameters per severity 1..5 for 32 x 32 images (make_cifar_c.py).
_GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
_SHOT_NOISE = (500, 250, 100, 75, 50)
_IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
_DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # disk radius, alias blur
_GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max delta, passes
_MOTION = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))  # radius, sigma
_ZOOM_MAX = (1.06, 1.11, 1.16, 1.21, 1.26)  # zoom factors np.arange(1, max, 0.01)
# snow: mean, std, zoom, threshold, blur radius, blur sigma, blend
_SNOW = ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
_FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image weight, frost weight
_FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))  # strength, wibble decay
_BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
_ELASTIC = tuple((32 * a, 32 * s, 32 * f) for a, s, f in  # alpha, sigma, affine jitter (x IMSIZE = 32)
                 ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)))
_PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)
_JPEG = (80, 65, 58, 50, 40)


# --------------------------------------------------------------------------- helpers


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.filters import gaussian

    # skimage's defaults, as the original calls it: mode 'nearest', truncate 4, channels last.
    return gaussian(image, sigma=sigma, channel_axis=-1 if image.ndim == 3 else None)


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    # The aliased disk on a 17 x 17 grid (radius <= 8), normalised, then smoothed by a 3 x 3 Gaussian.
    half = 8 if radius <= 8 else int(np.ceil(radius))
    size = (3, 3) if radius <= 8 else (5, 5)
    grid = np.arange(-half, half + 1)
    xs, ys = np.meshgrid(grid, grid)
    disk = ((xs ** 2 + ys ** 2) <= radius ** 2).astype(np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=size, sigmaX=alias_blur)


def _clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the central ``H / factor`` square by ``factor`` (bilinear) and crop back to ``H``."""
    from scipy.ndimage import zoom

    height = image.shape[0]
    crop = int(np.ceil(height / factor))
    top = (height - crop) // 2
    zoomed = zoom(image[top: top + crop, top: top + crop], (factor, factor, 1), order=1)
    trim = (zoomed.shape[0] - height) // 2
    return zoomed[trim: trim + height, trim: trim + height]


def motion_blur_kernel(radius: float, sigma: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """ImageMagick's motion-blur taps: weights ``(K,)`` and integer offsets ``(K, 2)`` as (dx, dy).

    ``K = 2 ceil(radius) + 1``; weight_i is proportional to exp(-i^2 / (2 sigma^2)), i = 0..K-1
    (one-sided: the blur trails in one direction); offset_i = round-half-down of i (cos a, sin a)
    for the angle ``a`` in degrees.
    """
    width = int(2 * np.ceil(radius) + 1)
    steps = np.arange(width, dtype=np.float64)
    weights = np.exp(-steps ** 2 / (2.0 * sigma ** 2))
    weights /= weights.sum()
    radians = np.deg2rad(angle)
    offsets = np.stack([np.ceil(steps * np.cos(radians) - 0.5), np.ceil(steps * np.sin(radians) - 0.5)], axis=1)
    return weights, offsets.astype(np.int64)


def _motion_blur_array(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """Motion blur of an (H, W[, C]) float image, edge pixels replicated (ImageMagick's default)."""
    weights, offsets = motion_blur_kernel(radius, sigma, angle)
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    out = np.zeros(image.shape, np.float64)
    for weight, (dx, dy) in zip(weights, offsets):
        out += weight * image[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)]
    return out


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) diamond-square height map in [0, 1] (``size`` a power of two).

    The corner starts at 0; each level sets square centres and diamond points to the mean of
    their four neighbours (wrapping around) plus uniform noise of amplitude ``wibble``, which
    starts at 100 and is divided by ``decay`` after each level.
    """
    if size < 2 or size & (size - 1):
        raise ValueError(f"size: expected a power of two >= 2, got {size}")
    height_map = np.zeros((size, size), np.float64)
    step = size
    wibble = 100.0

    def jitter(mean):
        return mean / 4 + wibble * rng.uniform(-wibble, wibble, mean.shape)

    while step >= 2:
        half = step // 2
        corners = height_map[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        height_map[half:size:step, half:size:step] = jitter(square)
        centres = height_map[half:size:step, half:size:step]
        corners = height_map[0:size:step, 0:size:step]
        left_right = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        height_map[0:size:step, half:size:step] = jitter(left_right)
        up_down = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        height_map[half:size:step, 0:size:step] = jitter(up_down)
        step //= 2
        wibble /= decay
    height_map -= height_map.min()
    return height_map / height_map.max()


@functools.lru_cache(maxsize=8)
def frost_texture(index: int, size: int = 200) -> np.ndarray:
    """Stand-in for the original's frost photographs: (size, size, 3) uint8 RGB, deterministic in
    ``index`` (0..5, one per original file).

    A pale blue-white plasma fractal (the haze of frost on glass) with branching strokes of
    brighter ice crystals drawn by a seeded random walk, anti-aliased. The original crops a
    32 x 32 patch from a photograph shrunk to a fifth of its size; ``size`` = 200 is of that order.
    """
    if index not in range(6):
        raise ValueError(f"index: expected 0..5 (one per original frost image), got {index!r}")
    rng = np.random.default_rng([20190101, index])
    side = 1 << int(np.ceil(np.log2(size)))
    haze = plasma_fractal(side, 2.0, rng)[:size, :size]
    strokes = np.zeros((size * 2, size * 2), np.float32)
    for _ in range(60):
        point = rng.uniform(0, size * 2, 2)
        direction = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(4, 12))):
            length = rng.uniform(6, 30)
            end = point + length * np.array([np.cos(direction), np.sin(direction)])
            cv2.line(strokes, tuple(np.round(point).astype(int)), tuple(np.round(end).astype(int)),
                     float(rng.uniform(0.5, 1.0)), 1, cv2.LINE_AA)
            if rng.random() < 0.4:  # a side branch at +-60 degrees, as ice dendrites grow
                side_direction = direction + rng.choice([-1, 1]) * np.pi / 3
                side_end = end + rng.uniform(4, 12) * np.array([np.cos(side_direction), np.sin(side_direction)])
                cv2.line(strokes, tuple(np.round(end).astype(int)), tuple(np.round(side_end).astype(int)),
                         float(rng.uniform(0.3, 0.8)), 1, cv2.LINE_AA)
            point = end
            direction += rng.normal(0, 0.5)
    strokes = cv2.resize(strokes, (size, size), interpolation=cv2.INTER_AREA)
    strokes = cv2.GaussianBlur(strokes, (3, 3), 0.6)
    brightness = np.clip(0.35 + 0.35 * haze + 0.9 * strokes, 0, 1)
    tint = np.array([0.86, 0.93, 1.0])  # frost is slightly blue
    return np.clip(np.round(255 * brightness[..., None] * tint), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the corruptions
# Each takes x (H, W, 3) float64 in [0, 1] and returns (H, W, 3) in [0, 255] (float or uint8).


def _gaussian_noise(x, severity, rng):
    scale = _GAUSSIAN_NOISE[severity - 1]
    return np.clip(x + rng.normal(size=x.shape, scale=scale), 0, 1) * 255


def _shot_noise(x, severity, rng):
    photons = _SHOT_NOISE[severity - 1]
    return np.clip(rng.poisson(x * photons) / photons, 0, 1) * 255


def _impulse_noise(x, severity, rng):
    from skimage.util import random_noise

    noisy = random_noise(x, mode="s&p", amount=_IMPULSE_NOISE[severity - 1], rng=rng)
    return np.clip(noisy, 0, 1) * 255


def _defocus_blur(x, severity, rng):
    kernel = _disk(*_DEFOCUS[severity - 1])
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(x.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0, 1) * 255


def _glass_blur(x, severity, rng):
    sigma, delta, passes = _GLASS[severity - 1]
    image = np.uint8(_gaussian(x, sigma) * 255)
    height, width = image.shape[:2]
    # Local shuffling: every interior pixel, visited bottom-right to top-left, swaps with a
    # neighbour at an offset drawn from [-delta, delta). Swapping pixels is tracked as swaps in a
    # list of source positions (plain ints, fast in Python), applied to the image once.
    source = list(range(height * width))
    for _ in range(passes):
        for h in range(height - delta, delta, -1):
            offsets = rng.integers(-delta, delta, size=(width - 2 * delta, 2)).tolist()
            for (dx, dy), w in zip(offsets, range(width - delta, delta, -1)):
                here, there = h * width + w, (h + dy) * width + (w + dx)
                source[here], source[there] = source[there], source[here]
    image = image.reshape(height * width, -1)[source].reshape(height, width, -1)
    return np.clip(_gaussian(image / 255.0, sigma), 0, 1) * 255


def _motion_blur(x, severity, rng):
    radius, sigma = _MOTION[severity - 1]
    # The original blurs the uint8 image and reads back 8 bits.
    image = np.round(x * 255)
    blurred = _motion_blur_array(image, radius, sigma, rng.uniform(-45, 45))
    return np.clip(np.round(blurred), 0, 255)


def _zoom_blur(x, severity, rng):
    x = x.astype(np.float32)
    out = np.zeros_like(x)
    factors = np.arange(1, _ZOOM_MAX[severity - 1], 0.01)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def _snow(x, severity, rng):
    mean, std, zoom, threshold, radius, sigma, blend = _SNOW[severity - 1]
    x = x.astype(np.float32)
    height, width = x.shape[:2]
    layer = rng.normal(size=(height, width), loc=mean, scale=std)[..., None]
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = np.round(np.clip(layer[..., 0], 0, 1) * 255)
    layer = np.clip(np.round(_motion_blur_array(layer, radius, sigma, rng.uniform(-135, -45))), 0, 255) / 255.0
    layer = layer[..., None]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def _frost(x, severity, rng):
    image_weight, frost_weight = _FROST[severity - 1]
    texture = frost_texture(int(rng.integers(5)))  # the original draws from the first five files
    height, width = x.shape[:2]
    top = int(rng.integers(0, texture.shape[0] - height))
    left = int(rng.integers(0, texture.shape[1] - width))
    crop = texture[top: top + height, left: left + width].astype(np.float64)
    return np.clip(image_weight * x * 255 + frost_weight * crop, 0, 255)


def _fog(x, severity, rng):
    strength, decay = _FOG[severity - 1]
    height, width = x.shape[:2]
    side = 1 << int(np.ceil(np.log2(max(height, width, 2))))
    peak = x.max()
    x = x + strength * plasma_fractal(side, decay, rng)[:height, :width, None]
    return np.clip(x * peak / (peak + strength), 0, 1) * 255


def _brightness(x, severity, rng):
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(x)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + _BRIGHTNESS[severity - 1], 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def _contrast(x, severity, rng):
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * _CONTRAST[severity - 1] + means, 0, 1) * 255


def _elastic_transform(x, severity, rng):
    from scipy.ndimage import map_coordinates

    alpha, sigma, jitter = _ELASTIC[severity - 1]
    image = x.astype(np.float32)
    height, width = image.shape[:2]
    centre = np.float32([height, width]) // 2
    square = min(height, width) // 3
    source = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    target = source + rng.uniform(-jitter, jitter, size=source.shape).astype(np.float32)
    image = cv2.warpAffine(image, cv2.getAffineTransform(source, target), (width, height),
                           borderMode=cv2.BORDER_REFLECT_101)
    from skimage.filters import gaussian

    dx = (gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, mode="reflect", truncate=3) * alpha)
    dy = (gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, mode="reflect", truncate=3) * alpha)
    dx, dy = dx.astype(np.float32)[..., None], dy.astype(np.float32)[..., None]
    cols, rows, chans = np.meshgrid(np.arange(width), np.arange(height), np.arange(image.shape[2]))
    coords = (np.reshape(rows + dy, (-1, 1)), np.reshape(cols + dx, (-1, 1)), np.reshape(chans, (-1, 1)))
    warped = map_coordinates(image, coords, order=1, mode="reflect").reshape(image.shape)
    return np.clip(warped, 0, 1) * 255


def _pil(x):
    from PIL import Image

    return Image.fromarray(np.uint8(np.round(x * 255)))


def _pixelate(x, severity, rng):
    from PIL import Image

    image = _pil(x)
    width, height = image.size
    factor = _PIXELATE[severity - 1]
    small = image.resize((int(width * factor), int(height * factor)), Image.BOX)
    return np.asarray(small.resize((width, height), Image.BOX))


def _jpeg_compression(x, severity, rng):
    from PIL import Image

    buffer = io.BytesIO()
    _pil(x).save(buffer, "JPEG", quality=_JPEG[severity - 1])
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


_FUNCTIONS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur, "glass_blur": _glass_blur, "motion_blur": _motion_blur, "zoom_blur": _zoom_blur,
    "snow": _snow, "frost": _frost, "fog": _fog, "brightness": _brightness, "contrast": _contrast,
    "elastic_transform": _elastic_transform, "pixelate": _pixelate, "jpeg_compression": _jpeg_compression,
}


def _check(image, corruption, severity) -> np.ndarray:
    if corruption not in _FUNCTIONS:
        raise ValueError(f"corruption: expected one of {CORRUPTIONS}, got {corruption!r}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity: expected an int in 1..5, got {severity!r}")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image: expected a uint8 (H, W, 3) RGB array, got {array.dtype} {array.shape}")
    if min(array.shape[:2]) < 8:
        raise ValueError(f"image: expected at least 8 x 8 pixels, got {array.shape[:2]}")
    return array


def corrupt(image: np.ndarray, corruption: str, severity: int, *, rng: np.random.Generator) -> np.ndarray:
    """Apply one CIFAR-10-C corruption at one severity.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (the parameters are those for 32 x 32).
        corruption: one of :data:`CORRUPTIONS`.
        severity: 1..5.
        rng: the random source (the same state gives the same output).

    Returns:
        ``(H, W, 3)`` uint8, the clipped result truncated to integers as the original does.

    Raises:
        ValueError: unknown corruption, severity outside 1..5, not a uint8 RGB image, or ``rng``
            not a ``numpy.random.Generator``.
    """
    array = _check(image, corruption, severity)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    out = _FUNCTIONS[corruption](array.astype(np.float64) / 255.0, severity, rng)
    return np.uint8(np.clip(out, 0, 255))


def corrupt_batch(images: np.ndarray, corruption: str, severity: int, *, seed: int) -> np.ndarray:
    """:func:`corrupt` on every image of ``(N, H, W, 3)`` uint8; image ``i`` draws from
    ``default_rng([seed, corruption number, severity, i])``, so any subset is reproducible alone."""
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"images: expected (N, H, W, 3) uint8, got shape {array.shape}")
    if corruption not in _FUNCTIONS:
        raise ValueError(f"corruption: expected one of {CORRUPTIONS}, got {corruption!r}")
    number = CORRUPTIONS.index(corruption)
    out = np.empty_like(array)
    for index, image in enumerate(array):
        out[index] = corrupt(image, corruption, severity, rng=np.random.default_rng([seed, number, severity, index]))
    return out
