"""Generators of the embedded datasets, written in the real formats the readers read.

Each generator writes one dataset folder deterministically from (profile, seed): every sample
draws from its own random stream ``default_rng([seed, dataset number, sample index])``, files
carry no timestamps, and ``meta.json`` records the parameters. The same seed and pinned
environment give byte-identical files.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, shortest_path

from . import compose
from .readers import (
    SCRIBBLE_LENGTHS,
    kair_noisy,
    scribble_folder,
    segmentation_boundaries,
    write_bsds_gt,
    write_flo,
    write_middlebury_calib,
    write_palette_png,
    write_pfm,
)

GENERATOR_VERSION = 1
PROFILES = {
    "smoke": {"size": (48, 64), "square": 64, "denoise_size": 32, "flow": 4, "stereo": 4, "masks": 6,
              "video": (2, 5), "edges": 4, "denoise": 3},
    "mini": {"size": (96, 128), "square": 128, "denoise_size": 96, "flow": 160, "stereo": 160, "masks": 300,
             "video": (20, 16), "edges": 200, "denoise": 48},
}
DENOISE_SIGMAS = (15, 25, 50)
ANNOTATORS = 5
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 6]


def profile_settings(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


def sample_rng(seed: int, dataset_number: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, dataset_number, index])


def write_rgb(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), PNG_OPTIONS):
        raise OSError(f"could not write {path}")


def write_grey(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(image.astype(np.uint8)), PNG_OPTIONS):
        raise OSError(f"could not write {path}")


def write_meta(folder: Path, dataset_id: str, profile: str, seed: int, **extra) -> None:
    meta = {"id": dataset_id, "generator": "suite.data.generate", "generator_version": GENERATOR_VERSION,
            "profile": profile, "seed": seed,
            "sources": "photographs shipped in scikit-image (skimage.data) and scikit-learn (load_sample_image)",
            **extra}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _split_flags(count: int, validation_fraction: float = 0.2) -> list[int]:
    validation = max(1, int(round(count * validation_fraction))) if count > 1 else 0
    return [1] * (count - validation) + [2] * validation


# --------------------------------------------------------------------------- flow / stereo


def generate_flow(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-flow`` in the FlyingChairs release layout (PNG images, ``.flo``, occlusion PNG)."""
    settings = profile_settings(profile)
    height, width = settings["size"]
    data = folder / "data"
    data.mkdir(parents=True)
    count = settings["flow"]
    for index in range(count):
        image1, image2, flow, occluded = compose.flow_scene(sample_rng(seed, 1, index), height, width)
        stem = f"{index + 1:05d}"
        write_rgb(data / f"{stem}_img1.png", image1)
        write_rgb(data / f"{stem}_img2.png", image2)
        write_flo(data / f"{stem}_flow.flo", flow)
        write_grey(data / f"{stem}_occ.png", occluded.astype(np.uint8) * 255)
        tick()
    (folder / "FlyingChairs_train_val.txt").write_text("".join(f"{v}\n" for v in _split_flags(count)))
    write_meta(folder, "mini-flow", profile, seed, samples=count, height=height, width=width,
               max_displacement=width / 8, layout="FlyingChairs release (data/NNNNN_img1.png, _img2.png, _flow.flo, _occ.png)")
    return count


def generate_stereo(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-stereo`` in the Middlebury 2014 layout (disparity of both views, non-occlusion masks)."""
    settings = profile_settings(profile)
    height, width = settings["size"]
    count = settings["stereo"]
    for index in range(count):
        scene = compose.stereo_scene(sample_rng(seed, 2, index), height, width)
        sample_folder = folder / f"scene{index + 1:04d}"
        sample_folder.mkdir(parents=True)
        write_rgb(sample_folder / "im0.png", scene["left"])
        write_rgb(sample_folder / "im1.png", scene["right"])
        write_pfm(sample_folder / "disp0GT.pfm", scene["disparity_left"])
        write_pfm(sample_folder / "disp1GT.pfm", scene["disparity_right"])
        for view, key in (("0", "occluded_left"), ("1", "occluded_right")):
            write_grey(sample_folder / f"mask{view}nocc.png", np.where(scene[key], 128, 255))
        camera = np.array([[float(width), 0.0, (width - 1) / 2], [0.0, float(width), (height - 1) / 2], [0.0, 0.0, 1.0]])
        ndisp = int(np.ceil(max(scene["disparity_left"].max(), scene["disparity_right"].max()))) + 1
        write_middlebury_calib(sample_folder / "calib.txt", {"cam0": camera, "cam1": camera, "doffs": 0,
                                                             "baseline": 1.0, "width": width, "height": height,
                                                             "ndisp": ndisp})
        tick()
    names = [f"scene{i + 1:04d}" for i in range(count)]
    flags = _split_flags(count)
    (folder / "train.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 1))
    (folder / "val.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 2))
    write_meta(folder, "mini-stereo", profile, seed, samples=count, height=height, width=width,
               max_disparity=width / 8, layout="Middlebury 2014 (<scene>/im0.png, im1.png, disp0GT.pfm, disp1GT.pfm, mask0nocc.png, mask1nocc.png, calib.txt)")
    return count


def generate_motorcycle(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """scikit-image's Middlebury-2014 Motorcycle pair (quarter size) with its ground truth."""
    import skimage.data

    left, right, disparity = skimage.data.stereo_motorcycle()
    scene = folder / "Motorcycle"
    scene.mkdir(parents=True)
    write_rgb(scene / "im0.png", left)
    write_rgb(scene / "im1.png", right)
    write_pfm(scene / "disp0GT.pfm", np.asarray(disparity, np.float32))
    tick()
    write_meta(folder, "middlebury2014-motorcycle", profile, seed, samples=1,
               source="skimage.data.stereo_motorcycle() (Middlebury 2014 Motorcycle, reduced); inf = no ground truth",
               layout="Middlebury 2014 (Motorcycle/im0.png, im1.png, disp0GT.pfm)")
    return 1


# --------------------------------------------------------------------------- masks and scribbles


def boundary_band(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label (a band two pixels wide along each boundary)."""
    band = np.zeros(labels.shape, bool)
    horizontal = labels[:, 1:] != labels[:, :-1]
    vertical = labels[1:, :] != labels[:-1, :]
    band[:, 1:] |= horizontal
    band[:, :-1] |= horizontal
    band[1:, :] |= vertical
    band[:-1, :] |= vertical
    return band


def skeleton_path(region: np.ndarray) -> np.ndarray:
    """The longest path (ordered (row, col) pixels) through the skeleton of a region."""
    from skimage.morphology import skeletonize

    inner = ndimage.binary_erosion(region, iterations=1)
    if inner.sum() < 4:
        inner = region
    skeleton = skeletonize(inner)
    if not skeleton.any():
        distance = ndimage.distance_transform_edt(region)
        return np.array([np.unravel_index(int(np.argmax(distance)), region.shape)])
    coords = np.argwhere(skeleton)
    index = -np.ones(region.shape, np.int64)
    index[coords[:, 0], coords[:, 1]] = np.arange(len(coords))
    rows, cols = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ny, nx = coords[:, 0] + dy, coords[:, 1] + dx
        inside = (ny >= 0) & (ny < region.shape[0]) & (nx >= 0) & (nx < region.shape[1])
        neighbour = np.full(len(coords), -1)
        neighbour[inside] = index[ny[inside], nx[inside]]
        linked = neighbour >= 0
        rows.append(np.nonzero(linked)[0])
        cols.append(neighbour[linked])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(coords), len(coords))).tocsr()
    _, component = connected_components(graph, directed=False)
    largest = np.argmax(np.bincount(component))
    start = int(np.nonzero(component == largest)[0][0])
    distances = shortest_path(graph, directed=False, unweighted=True, indices=start)
    distances[~np.isfinite(distances)] = -1
    end_a = int(np.argmax(distances))
    distances, predecessors = shortest_path(graph, directed=False, unweighted=True, indices=end_a,
                                            return_predecessors=True)
    distances[~np.isfinite(distances)] = -1
    node = int(np.argmax(distances))
    path = [node]
    while predecessors[node] >= 0:
        node = int(predecessors[node])
        path.append(node)
    return coords[np.array(path[::-1])]


def shorten(path: np.ndarray, ratio: float) -> np.ndarray:
    """The central ``ratio`` of a stroke; ratio 0 keeps the single central pixel (a click)."""
    keep = max(1, int(round(ratio * len(path))))
    start = (len(path) - keep) // 2
    return path[start: start + keep]


def draw_scribbles(regions: list[tuple[np.ndarray, int]], shape, ratio: float) -> np.ndarray:
    """ScribbleSup-style scribbles: per region a 3-pixel-wide stroke along its skeleton (255 = unlabelled)."""
    scribbles = np.full(shape, 255, np.uint8)
    cross = ndimage.generate_binary_structure(2, 1)
    for region, (path, label) in regions:
        stroke = np.zeros(shape, bool)
        part = shorten(path, ratio)
        stroke[part[:, 0], part[:, 1]] = True
        stroke = ndimage.binary_dilation(stroke, cross) & region
        scribbles[stroke] = label
    return scribbles


def masks_scene(rng: np.random.Generator, side: int):
    """A static scene: image, instance ids (0 = background, 1 = the main, front-most object),
    class ids."""
    for _ in range(20):
        layers = compose.random_scene(rng, side, side, objects=(1, 3), size_range=(0.35, 0.65))
        main = layers[-1]
        half = (main.texture.shape[0] - 1) / 2
        main.placement = compose.affine(rng.uniform(-np.pi, np.pi), 1.0,
                                        tuple(side * rng.uniform(0.35, 0.65, 2) - half), (half, half))
        image, owner, _ = compose.render(layers, [layer.placement for layer in layers], side, side)
        visible = np.bincount(owner.ravel(), minlength=len(layers))
        if visible[-1] >= 0.06 * side * side:
            break
    order = [0, len(layers) - 1] + [i for i in range(1, len(layers) - 1) if visible[i] > 0]
    relabel = np.zeros(len(layers), np.int64)
    relabel[order] = np.arange(len(order))
    instances = relabel[owner]
    classes = np.array([layers[i].label for i in order])[instances]
    return image, instances.astype(np.uint8), classes.astype(np.uint8)


def generate_masks(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-masks`` in the VOC 2012 layout plus binary masks and ScribbleSup-style scribbles."""
    settings = profile_settings(profile)
    side = settings["square"]
    count = settings["masks"]
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "masks", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True)
    for length in SCRIBBLE_LENGTHS:
        (folder / scribble_folder(length)).mkdir()
    names = []
    for index in range(count):
        name = f"mini_{index + 1:06d}"
        names.append(name)
        image, instances, classes = masks_scene(sample_rng(seed, 3, index), side)
        void = boundary_band(instances)
        write_rgb(folder / "JPEGImages" / f"{name}.png", image)
        write_palette_png(folder / "SegmentationClass" / f"{name}.png", np.where(void, 255, classes))
        write_palette_png(folder / "SegmentationObject" / f"{name}.png", np.where(void, 255, instances))
        main = instances == 1
        write_palette_png(folder / "masks" / f"{name}.png", np.where(boundary_band(main), 255, main))
        regions = []
        for instance in range(int(instances.max()) + 1):
            region = (instances == instance) & ~void
            if region.sum() >= 12:
                label = int(classes[instances == instance][0])
                regions.append((region, (skeleton_path(region), label)))
        for length in SCRIBBLE_LENGTHS:
            write_palette_png(folder / scribble_folder(length) / f"{name}.png",
                              draw_scribbles(regions, instances.shape, length))
        tick()
    flags = _split_flags(count)
    sets = folder / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 1))
    (sets / "val.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 2))
    (sets / "trainval.txt").write_text("".join(n + "\n" for n in names))
    classes = {str(k): v[0] for k, v in compose.FOREGROUND_CLASSES.items()}
    write_meta(folder, "mini-masks", profile, seed, samples=count, side=side, classes={"0": "background", **classes},
               void=255, scribble_lengths=list(SCRIBBLE_LENGTHS),
               layout="VOC 2012 (JPEGImages/*.png, SegmentationClass, SegmentationObject, ImageSets/Segmentation) "
                      "+ masks/ (binary main object, 255 void band) + pascal_2012_scribble[_len<r>]/ (255 unlabelled)")
    return count


# --------------------------------------------------------------------------- video


def generate_video(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-video`` in the DAVIS 2017 layout (palette annotations with object ids)."""
    settings = profile_settings(profile)
    height, width = settings["size"]
    sequences, frames = settings["video"]
    names = []
    for index in range(sequences):
        rng = sample_rng(seed, 4, index)
        name = f"seq{index + 1:03d}"
        names.append(name)
        images = folder / "JPEGImages" / "480p" / name
        annotations = folder / "Annotations" / "480p" / name
        images.mkdir(parents=True)
        annotations.mkdir(parents=True)
        layers = compose.random_scene(rng, height, width, objects=(1, 2), size_range=(0.4, 0.7))
        step = width / 48.0
        motions = [compose.limit_motion(compose.random_motion(layers[0], rng, rotation=np.deg2rad(1), zoom=0.01, shift=step / 2),
                                        np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], float), step / 2)]
        for layer in layers[1:]:
            motions.append(compose.limit_motion(compose.random_motion(layer, rng, rotation=np.deg2rad(4), zoom=0.02, shift=step),
                                                layer.corners(layer.placement), step))
        transforms = [layer.placement for layer in layers]
        for frame in range(frames):
            image, owner, _ = compose.render(layers, transforms, height, width)
            write_rgb(images / f"{frame:05d}.png", image)
            write_palette_png(annotations / f"{frame:05d}.png", owner)
            transforms = [motion @ transform for motion, transform in zip(motions, transforms)]
        tick()
    flags = _split_flags(sequences, 0.25)
    for year in ("2016", "2017"):
        sets = folder / "ImageSets" / year
        sets.mkdir(parents=True)
        (sets / "train.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 1))
        (sets / "val.txt").write_text("".join(n + "\n" for n, f in zip(names, flags) if f == 2))
    write_meta(folder, "mini-video", profile, seed, sequences=sequences, frames=frames, height=height, width=width,
               layout="DAVIS 2017 (JPEGImages/480p/<seq>/00000.png, Annotations/480p/<seq>/00000.png, ImageSets/2017/*.txt); "
                      "the folder name 480p is kept for layout compatibility")
    return sequences


# --------------------------------------------------------------------------- edges


def generate_edges(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-edges`` in the BSDS500 layout: several annotators simulated by omitting small
    layers and perturbing outlines by a smooth sub-pixel-to-pixel displacement."""
    settings = profile_settings(profile)
    side = settings["square"]
    count = settings["edges"]
    splits = ["train"] * (count // 2) + ["val"] * (count // 4)
    splits += ["test"] * (count - len(splits))
    for split in ("train", "val", "test"):
        (folder / "data" / "images" / split).mkdir(parents=True)
        (folder / "data" / "groundTruth" / split).mkdir(parents=True)
    xs, ys = compose.pixel_grid(side, side)
    for index in range(count):
        rng = sample_rng(seed, 5, index)
        layers = compose.random_scene(rng, side, side, objects=(2, 4), size_range=(0.25, 0.6))
        region_source = compose.BACKGROUND_SOURCES[int(rng.integers(len(compose.BACKGROUND_SOURCES)))]
        region_size = int(side * 1.4)
        region = compose.Layer(compose.texture(region_source, region_size, region_size, rng, tint=True),
                               compose.shape_mask(region_size, rng, "blob"),
                               compose.affine(translation=tuple(rng.uniform(-0.9, 0.1, 2) * region_size)), 0)
        layers.insert(1, region)
        image, owner, covers = compose.render(layers, [layer.placement for layer in layers], side, side)
        areas = covers.reshape(len(layers), -1).sum(axis=1)
        annotators = []
        for annotator in range(ANNOTATORS):
            active = np.ones(len(layers), bool)
            if annotator > 0:
                small = (np.arange(len(layers)) >= 2) & (areas < 0.08 * side * side)
                active &= ~(small & (rng.random(len(layers)) < 0.5))
            labels = np.zeros((side, side), np.int64)
            for layer_index in range(len(layers)):
                if active[layer_index]:
                    labels[covers[layer_index]] = layer_index
            if annotator > 0:
                shift = [ndimage.gaussian_filter(rng.normal(size=(side, side)), 6.0) for _ in range(2)]
                amplitude = max(float(np.abs(np.stack(shift)).max()), 1e-9)
                dx, dy = (s / amplitude * rng.uniform(1.0, 2.0) for s in shift)
                labels = cv2.remap(labels.astype(np.float32), (xs + dx).astype(np.float32), (ys + dy).astype(np.float32),
                                   cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE).astype(np.int64)
            segmentation = (np.unique(labels, return_inverse=True)[1].reshape(labels.shape) + 1).astype(np.uint16)
            annotators.append({"segmentation": segmentation, "boundaries": segmentation_boundaries(segmentation)})
        name = f"{index + 1:06d}"
        write_rgb(folder / "data" / "images" / splits[index] / f"{name}.png", image)
        write_bsds_gt(folder / "data" / "groundTruth" / splits[index] / f"{name}.mat", annotators)
        tick()
    write_meta(folder, "mini-edges", profile, seed, samples=count, side=side, annotators=ANNOTATORS,
               layout="BSDS500 (data/images/<split>/<id>.png, data/groundTruth/<split>/<id>.mat)")
    return count


# --------------------------------------------------------------------------- denoising


def generate_denoise(folder: Path, profile: str, seed: int, tick: Callable[[], None]) -> int:
    """``mini-denoise``: clean photograph crops and KAIR-protocol noisy versions (not clipped)."""
    settings = profile_settings(profile)
    side = settings["denoise_size"]
    count = settings["denoise"]
    clean_folder = folder / "clean"
    clean_folder.mkdir(parents=True)
    for sigma in DENOISE_SIGMAS:
        (folder / "noisy" / f"sigma{sigma}").mkdir(parents=True)
    sources = [v[1] for v in compose.FOREGROUND_CLASSES.values()] + list(compose.BACKGROUND_SOURCES)
    seeds = {}
    for index in range(count):
        rng = sample_rng(seed, 6, index)
        source = sources[index % len(sources)]
        clean = np.clip(np.round(compose.texture(source, side, side, rng, zoom=(1.0, 2.5))), 0, 255).astype(np.uint8)
        name = f"{index + 1:04d}"
        write_rgb(clean_folder / f"{name}.png", clean)
        noise_seed = seed * 100_003 + index
        seeds[name] = noise_seed
        for sigma in DENOISE_SIGMAS:
            np.save(folder / "noisy" / f"sigma{sigma}" / f"{name}.npy", kair_noisy(clean, sigma, seed=noise_seed),
                    allow_pickle=False)
        tick()
    (folder / "noise.json").write_text(json.dumps(seeds, indent=1, sort_keys=True) + "\n")
    write_meta(folder, "mini-denoise", profile, seed, samples=count, side=side, sigmas=list(DENOISE_SIGMAS),
               protocol="KAIR: x = uint8/255 (float32); x += RandomState(noise_seed).normal(0, sigma/255); not clipped",
               layout="clean/<name>.png, noisy/sigma<s>/<name>.npy (float32, HxWx3), noise.json (seed per image)")
    return count


from .generate_smoothing import generate_smoothing, sample_count as smoothing_count  # noqa: E402  (mini-smoothing)

from .generate_classification import generate_classification, progress_steps as classification_steps  # noqa: E402,E501  (mini-classification)
from .generate_wsol import generate_wsol, progress_steps as wsol_steps  # noqa: E402  (mini-wsol)

GENERATORS: dict[str, tuple[Callable, Callable[[dict], int]]] = {
    "mini-flow": (generate_flow, lambda s: s["flow"]),
    "mini-stereo": (generate_stereo, lambda s: s["stereo"]),
    "middlebury2014-motorcycle": (generate_motorcycle, lambda s: 1),
    "mini-masks": (generate_masks, lambda s: s["masks"]),
    "mini-video": (generate_video, lambda s: s["video"][0]),
    "mini-edges": (generate_edges, lambda s: s["edges"]),
    "mini-denoise": (generate_denoise, lambda s: s["denoise"]),
    "mini-classification": (generate_classification, classification_steps),
    "mini-wsol": (generate_wsol, wsol_steps),
    "mini-smoothing": (generate_smoothing, smoothing_count),
}
