"""A scene composer with exact ground truth, from photographs shipped inside installed packages.

A scene is a background layer plus foreground layers, each a texture cut from a real
photograph (scikit-image's sample images, its Middlebury-2014 Motorcycle pair, scikit-learn's
sample images; nothing is downloaded) through a shape mask. Every layer carries a parametric
transform per frame (an affine map from layer to image coordinates, as in FlyingChairs) and,
for stereo, a disparity plane. Rendering uses hard ownership (a pixel belongs to the front-most
layer whose mask is at least 0.5 there), so flow, disparity, occlusion and segmentation follow
exactly from the parameters.
"""
from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

# Foreground classes: each class is the texture of one photograph (class id -> (name, source)).
FOREGROUND_CLASSES = {
    1: ("cat", "skimage:chelsea"),
    2: ("coffee", "skimage:coffee"),
    3: ("astronaut", "skimage:astronaut"),
    4: ("rocket", "skimage:rocket"),
    5: ("flower", "sklearn:flower.jpg"),
    6: ("motorcycle", "skimage:motorcycle_left"),
}
BACKGROUND_SOURCES = (
    "sklearn:china.jpg", "skimage:hubble_deep_field", "skimage:brick", "skimage:grass", "skimage:gravel",
    "skimage:moon", "skimage:camera", "skimage:coins", "skimage:immunohistochemistry", "skimage:retina",
    "skimage:page",
)
SHAPES = ("blob", "blob", "ellipse", "polygon", "horse")


@functools.lru_cache(maxsize=None)
def photo(source: str) -> np.ndarray:
    """A photograph shipped in an installed package, as (H, W, 3) uint8 (grey ones replicated).

    ``source`` is ``"skimage:<function>"``, ``"skimage:motorcycle_left"`` / ``"..._right"`` or
    ``"sklearn:<file>"``. Only files inside the installed wheels are read.
    """
    package, name = source.split(":", 1)
    if package == "skimage":
        import skimage.data

        if name.startswith("motorcycle_"):
            left, right, _ = skimage.data.stereo_motorcycle()
            image = left if name == "motorcycle_left" else right
        else:
            image = getattr(skimage.data, name)()
    elif package == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(name)
    else:
        raise ValueError(f"source: expected 'skimage:...' or 'sklearn:...', got {source!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float64) / max(float(image.max()), 1.0))).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


@functools.lru_cache(maxsize=None)
def _horse() -> np.ndarray:
    import skimage.data

    silhouette = ~skimage.data.horse()
    rows, cols = np.nonzero(silhouette)
    return silhouette[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1].astype(np.float32)


def texture(source: str, height: int, width: int, rng: np.random.Generator, *, zoom=(1.5, 3.0),
            tint: bool = False) -> np.ndarray:
    """A (height, width, 3) float32 crop of a photograph, downscaled by a random zoom."""
    image = photo(source)
    factor = rng.uniform(*zoom)
    crop_h = int(min(image.shape[0], max(height, round(height * factor))))
    crop_w = int(min(image.shape[1], max(width, round(width * factor))))
    top = int(rng.integers(0, image.shape[0] - crop_h + 1))
    left = int(rng.integers(0, image.shape[1] - crop_w + 1))
    crop = image[top: top + crop_h, left: left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    if tint:
        crop *= rng.uniform(0.55, 1.0, size=3).astype(np.float32)
    return crop


def shape_mask(size: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A (size, size) float32 mask in [0, 1] (anti-aliased outline) of a random shape."""
    kind = kind or SHAPES[int(rng.integers(len(SHAPES)))]
    scale = 4
    big = size * scale
    canvas = np.zeros((big, big), np.uint8)
    centre = big / 2
    if kind == "horse":
        silhouette = _horse()
        side = max(silhouette.shape)
        padded = np.zeros((side, side), np.float32)
        top, left = (side - silhouette.shape[0]) // 2, (side - silhouette.shape[1]) // 2
        padded[top: top + silhouette.shape[0], left: left + silhouette.shape[1]] = silhouette
        if rng.random() < 0.5:
            padded = padded[:, ::-1]
        return cv2.resize(np.ascontiguousarray(padded), (size, size), interpolation=cv2.INTER_AREA)
    if kind == "ellipse":
        axes = (int(centre * rng.uniform(0.5, 0.95)), int(centre * rng.uniform(0.35, 0.8)))
        cv2.ellipse(canvas, (int(centre), int(centre)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        count = 96 if kind == "blob" else int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count)) if kind == "polygon" else np.linspace(0, 2 * np.pi, count, endpoint=False)
        radius = np.full(count, 0.62)
        if kind == "blob":
            for harmonic in range(2, 6):
                radius += rng.uniform(0, 0.22 / harmonic * 2) * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
        else:
            radius = rng.uniform(0.6, 0.95, count)
        radius = np.clip(radius, 0.2, 0.97) * centre
        points = np.stack([centre + radius * np.cos(angles), centre + radius * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def affine(angle: float = 0.0, scale: float = 1.0, translation=(0.0, 0.0), centre=(0.0, 0.0)) -> np.ndarray:
    """3x3 matrix: rotate by ``angle`` (radians) and scale about ``centre``, then translate."""
    cosine, sine = np.cos(angle) * scale, np.sin(angle) * scale
    cx, cy = centre
    tx, ty = translation
    return np.array([[cosine, -sine, cx - cosine * cx + sine * cy + tx],
                     [sine, cosine, cy - sine * cx - cosine * cy + ty],
                     [0.0, 0.0, 1.0]])


@dataclasses.dataclass
class Layer:
    """A texture with a mask; ``placement`` maps layer (x, y) to image coordinates at frame 0."""

    texture: np.ndarray  # (h, w, 3) float32
    mask: np.ndarray | None  # (h, w) float32 in [0, 1]; None = opaque everywhere (background)
    placement: np.ndarray  # (3, 3)
    label: int = 0  # class id (0 = background)

    @property
    def opaque(self) -> bool:
        return self.mask is None

    def centre(self) -> np.ndarray:
        h, w = self.texture.shape[:2]
        return (self.placement @ np.array([(w - 1) / 2, (h - 1) / 2, 1.0]))[:2]

    def corners(self, transform: np.ndarray) -> np.ndarray:
        h, w = self.texture.shape[:2]
        box = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
        return (transform @ box)[:2].T


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return xs, ys


def sample(layer: Layer, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture (..., 3) and coverage (...) of ``layer`` at layer coordinates (xs, ys)."""
    map_x, map_y = xs.astype(np.float32), ys.astype(np.float32)
    colour = cv2.remap(layer.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if layer.mask is None:
        cover = np.ones(xs.shape, bool)
    else:
        cover = cv2.remap(layer.mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0) >= 0.5
    return colour, cover


def to_layer_coordinates(transform: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    inverse = np.linalg.inv(transform)
    return (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2],
            inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2])


def render(layers: list[Layer], transforms: list[np.ndarray], height: int, width: int):
    """Composite layers (back to front) under per-layer transforms.

    Returns:
        image (H, W, 3) uint8, owner (H, W) int (index of the visible layer),
        covers (L, H, W) bool (where each layer's mask is at least 0.5).
    """
    xs, ys = pixel_grid(height, width)
    image = np.zeros((height, width, 3), np.float32)
    owner = np.zeros((height, width), np.int32)
    covers = np.zeros((len(layers), height, width), bool)
    for index, (layer, transform) in enumerate(zip(layers, transforms)):
        colour, cover = sample(layer, *to_layer_coordinates(transform, xs, ys))
        covers[index] = cover
        image[cover] = colour[cover]
        owner[cover] = index
    return np.clip(np.round(image), 0, 255).astype(np.uint8), owner, covers


def background_layer(source: str, height: int, width: int, rng: np.random.Generator, *,
                     margin: int, tint: bool) -> Layer:
    tex = texture(source, height + 2 * margin, width + 2 * margin, rng, zoom=(1.0, 2.0), tint=tint)
    return Layer(tex, None, affine(translation=(-margin, -margin)), 0)


def foreground_layer(label: int, size: int, centre, rng: np.random.Generator, *, angle: float = 0.0,
                     shape: str | None = None) -> Layer:
    source = FOREGROUND_CLASSES[label][1]
    tex = texture(source, size, size, rng, zoom=(1.2, 2.5))
    mask = shape_mask(size, rng, shape)
    half = (size - 1) / 2
    placement = affine(angle, 1.0, (centre[0] - half, centre[1] - half), (half, half))
    return Layer(tex, mask, placement, label)


def random_scene(rng: np.random.Generator, height: int, width: int, *, objects: tuple[int, int] = (1, 3),
                 margin: int | None = None, size_range=(0.35, 0.7)) -> list[Layer]:
    """A background and ``objects`` foreground layers with random classes, shapes and places."""
    margin = margin if margin is not None else width // 4
    source = BACKGROUND_SOURCES[int(rng.integers(len(BACKGROUND_SOURCES)))]
    layers = [background_layer(source, height, width, rng, margin=margin, tint=bool(rng.random() < 0.5))]
    side = min(height, width)
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        label = int(rng.integers(1, len(FOREGROUND_CLASSES) + 1))
        size = int(round(side * rng.uniform(*size_range)))
        centre = (rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height)
        layers.append(foreground_layer(label, size, centre, rng, angle=rng.uniform(-np.pi, np.pi)))
    return layers


# --------------------------------------------------------------------------- flow


def random_motion(layer: Layer, rng: np.random.Generator, *, rotation: float, zoom: float, shift: float) -> np.ndarray:
    """A FlyingChairs-style affine motion about the layer's centre (3x3, image coordinates)."""
    return affine(rng.uniform(-rotation, rotation), float(np.exp(rng.uniform(-zoom, zoom))),
                  tuple(rng.uniform(-shift, shift, 2)), tuple(layer.centre()))


def limit_motion(motion: np.ndarray, points: np.ndarray, limit: float) -> np.ndarray:
    """Shrink an affine motion towards the identity until no point moves more than ``limit``."""
    for _ in range(30):
        homogeneous = np.c_[points, np.ones(len(points))]
        moved = (motion @ homogeneous.T)[:2].T
        largest = float(np.max(np.linalg.norm(moved - points, axis=1)))
        if largest <= limit:
            return motion
        motion = np.eye(3) + (motion - np.eye(3)) * (0.9 * limit / largest)
    return np.eye(3)


def flow_scene(rng: np.random.Generator, height: int, width: int):
    """Two frames of a layered scene with exact forward flow and occlusions.

    Displacements stay within width / 8. Returns image1, image2 (uint8), flow (H, W, 2)
    float32, occlusions (H, W) bool (pixels of frame 1 hidden or out of view in frame 2).
    """
    layers = random_scene(rng, height, width, objects=(1, 3))
    limit = width / 8.0
    image_corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], float)
    first = [layer.placement for layer in layers]
    motions = []
    for index, layer in enumerate(layers):
        if index == 0:
            motion = random_motion(layer, rng, rotation=np.deg2rad(5), zoom=0.05, shift=limit * 0.5)
            motion = limit_motion(motion, image_corners, limit * 0.6)
        else:
            motion = random_motion(layer, rng, rotation=np.deg2rad(15), zoom=0.1, shift=limit)
            motion = limit_motion(motion, layer.corners(layer.placement), limit)
        motions.append(motion)
    second = [motion @ transform for motion, transform in zip(motions, first)]
    image1, owner, _ = render(layers, first, height, width)
    image2, _, _ = render(layers, second, height, width)

    xs, ys = pixel_grid(height, width)
    flow = np.zeros((height, width, 2), np.float64)
    target_x, target_y = xs.copy(), ys.copy()
    for index, motion in enumerate(motions):
        here = owner == index
        tx = motion[0, 0] * xs + motion[0, 1] * ys + motion[0, 2]
        ty = motion[1, 0] * xs + motion[1, 1] * ys + motion[1, 2]
        target_x[here], target_y[here] = tx[here], ty[here]
    flow[..., 0], flow[..., 1] = target_x - xs, target_y - ys
    occluded = (target_x < 0) | (target_x > width - 1) | (target_y < 0) | (target_y > height - 1)
    for index in range(1, len(layers)):
        _, cover = sample(layers[index], *to_layer_coordinates(second[index], target_x, target_y))
        occluded |= cover & (owner < index)
    return image1, image2, flow.astype(np.float32), occluded


# --------------------------------------------------------------------------- stereo


def stereo_scene(rng: np.random.Generator, height: int, width: int):
    """A rectified pair with exact disparity planes, both views, and occlusions.

    Each layer k has disparity d_k(x, y) = a + b x + c y in left-image coordinates; the right
    view sees left point (x, y) at x - d_k(x, y). Visibility is a z-buffer on disparity.

    Returns:
        dict with left, right (uint8), disparity_left, disparity_right (float32, positive),
        occluded_left, occluded_right (bool).
    """
    layers = random_scene(rng, height, width, objects=(1, 3), margin=width // 4)
    limit = width / 8.0
    planes = [np.array([rng.uniform(0.5, 2.5), rng.uniform(-0.004, 0.004), rng.uniform(-0.004, 0.004)])]
    for _ in layers[1:]:
        planes.append(np.array([rng.uniform(4.0, limit - 3.0), rng.uniform(-0.015, 0.015), rng.uniform(-0.015, 0.015)]))
    transforms = [layer.placement for layer in layers]
    xs, ys = pixel_grid(height, width)

    def view(right: bool, at_x: np.ndarray, at_y: np.ndarray):
        """Per layer: colour, cover and disparity seen at (at_x, at_y) of the left or right view."""
        results = []
        for layer, transform, (a, b, c) in zip(layers, transforms, planes):
            left_x = (at_x + a + c * at_y) / (1.0 - b) if right else at_x
            disparity = a + b * left_x + c * at_y
            colour, cover = sample(layer, *to_layer_coordinates(transform, left_x, at_y))
            results.append((colour, cover, disparity))
        return results

    def composite(results):
        depth = np.full(xs.shape, -np.inf)
        image = np.zeros(xs.shape + (3,), np.float32)
        for colour, cover, disparity in results:
            front = cover & (disparity > depth)
            depth[front] = disparity[front]
            image[front] = colour[front]
        return np.clip(np.round(image), 0, 255).astype(np.uint8), depth

    left, disparity_left = composite(view(False, xs, ys))
    right, disparity_right = composite(view(True, xs, ys))

    def occlusion(disparity, other_view_is_right: bool):
        target_x = xs - disparity if other_view_is_right else xs + disparity
        hidden = (target_x < 0) | (target_x > width - 1)
        for _, cover, other in view(other_view_is_right, target_x, ys):
            hidden |= cover & (other > disparity + 1e-6)
        return hidden

    return {
        "left": left, "right": right,
        "disparity_left": disparity_left.astype(np.float32), "disparity_right": disparity_right.astype(np.float32),
        "occluded_left": occlusion(disparity_left, True), "occluded_right": occlusion(disparity_right, False),
    }
