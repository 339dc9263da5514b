"""Edges, smoothing and denoising images: BSDS500 ``.mat`` ground truth (several annotators),
BIPED, MDBD (Multicue), the edge-preserving smoothing benchmark of Zhu et al., and the
denoising test sets (CBSD68, Kodak24, McMaster, Set12) with KAIR-protocol noise."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ._common import (
    mat_variables,
    read_mat,
    LayoutError,
    LazySequence,
    MalformedFileError,
    PathLike,
    read_image,
    sorted_glob,
)
from .segmentation import IMAGE_EXTENSIONS, find_image

MAT_HEADER = b"MATLAB 5.0 MAT-file, written by energybench (deterministic header)"


def read_bsds_gt(path: PathLike) -> list[dict]:
    """Read a BSDS500 ground-truth ``.mat``: cell ``groundTruth{k}`` of structs with
    ``Segmentation`` (uint16 region labels, 1-based) and ``Boundaries`` (logical).

    Returns:
        one dict per annotator: ``segmentation`` (H, W) uint16, ``boundaries`` (H, W) bool.

    Raises:
        MalformedFileError: not a MAT file, no ``groundTruth`` cell, or inconsistent shapes.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"BSDS ground truth not found: {path}")
    path, mat = read_mat(path)
    if "groundTruth" not in mat:
        raise MalformedFileError(path, f"no 'groundTruth' cell; found {mat_variables(mat)}")
    cell = mat["groundTruth"]
    annotators = []
    for index, entry in enumerate(cell.ravel()):
        try:
            segmentation = np.asarray(entry["Segmentation"][0, 0])
            boundaries = np.asarray(entry["Boundaries"][0, 0])
        except (ValueError, IndexError, KeyError, TypeError) as error:
            raise MalformedFileError(path, f"groundTruth{{{index + 1}}} lacks Segmentation/Boundaries") from error
        if segmentation.ndim != 2 or segmentation.shape != boundaries.shape:
            raise MalformedFileError(
                path, f"groundTruth{{{index + 1}}}: Segmentation {segmentation.shape} and Boundaries "
                f"{boundaries.shape} must be equal 2-D shapes")
        annotators.append({"segmentation": segmentation.astype(np.uint16), "boundaries": boundaries.astype(bool)})
    if not annotators:
        raise MalformedFileError(path, "groundTruth cell is empty")
    return annotators


def savemat_deterministic(path: PathLike, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header (scipy writes the creation time into it)."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=True, oned_as="row")
    data = bytearray(buffer.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    Path(path).write_bytes(bytes(data))


def write_bsds_gt(path: PathLike, annotators: list[dict]) -> None:
    """Write BSDS-style ground truth (``groundTruth`` cell of Segmentation/Boundaries structs)."""
    cell = np.empty((1, len(annotators)), dtype=object)
    for index, annotator in enumerate(annotators):
        cell[0, index] = {
            "Segmentation": np.asarray(annotator["segmentation"], np.uint16),
            "Boundaries": np.asarray(annotator["boundaries"], bool),
        }
    savemat_deterministic(path, {"groundTruth": cell})


def segmentation_boundaries(segmentation: np.ndarray) -> np.ndarray:
    """Thin boundaries of a label map: a pixel whose right or lower neighbour has another label."""
    boundaries = np.zeros(segmentation.shape, bool)
    boundaries[:, :-1] |= segmentation[:, :-1] != segmentation[:, 1:]
    boundaries[:-1, :] |= segmentation[:-1, :] != segmentation[1:, :]
    return boundaries


class BSDS500(LazySequence):
    """BSDS500: ``data/images/<split>/<id>.jpg`` and ``data/groundTruth/<split>/<id>.mat``;
    also the benchmark's small set ``bench/data/{images,groundTruth}`` (``split='bench'``).
    The generated ``mini-edges`` set uses this layout with PNG images."""

    layout = "data/images/{train,val,test}/<id>.jpg, data/groundTruth/{train,val,test}/<id>.mat"

    def __init__(self, root: PathLike, *, split: str = "test"):
        super().__init__(root)
        if split == "bench":
            images, truths = self.root / "bench/data/images", self.root / "bench/data/groundTruth"
        else:
            images, truths = self.root / "data/images" / split, self.root / "data/groundTruth" / split
        for truth in sorted_glob(truths, "*.mat"):
            image = find_image(images, truth.stem)
            if image is not None:
                self.items.append((truth.stem, image, truth))
        self._require_items(f"{split} images with groundTruth .mat")

    def load(self, item):
        name, image, truth = item
        return {"name": name, "image": read_image(image), "ground_truth": read_bsds_gt(truth)}


def read_edge_map(path: PathLike) -> np.ndarray:
    """A greyscale edge map (PNG 0..255) as float32 in [0, 1]."""
    array = read_image(path)
    if array.ndim == 3:
        array = array.mean(axis=2)
    return (array.astype(np.float32) / 255.0)


class BIPED(LazySequence):
    """BIPED (Soria et al.): ``edges/imgs/<split>/rgbr/**/<name>.jpg`` and
    ``edges/edge_maps/<split>/rgbr/**/<name>.png`` (one annotation per image)."""

    layout = "edges/imgs/{train,test}/rgbr/[real/]<name>.jpg, edges/edge_maps/{train,test}/rgbr/[real/]<name>.png"

    def __init__(self, root: PathLike, *, split: str = "test"):
        super().__init__(root)
        base = self.root / "BIPED" if (self.root / "BIPED" / "edges").is_dir() else self.root
        images = base / "edges" / "imgs" / split
        for image in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            relative = image.relative_to(images).with_suffix(".png")
            edges = base / "edges" / "edge_maps" / split / relative
            if edges.is_file():
                self.items.append((image.stem, image, edges))
        self._require_items(f"{split} images with edge maps")

    def load(self, item):
        name, image, edges = item
        return {"name": name, "image": read_image(image), "edges": read_edge_map(edges)}


class MDBD(LazySequence):
    """MDBD / Multicue (Mély et al. 2016), layout as assumed here (not checked against a copy):
    ``images/<name>.png`` and, per annotator k, ``ground-truth/**/<name>.<task>.<k>.png`` with
    ``task`` 'edges' or 'boundaries'. Samples hold the list of annotator maps."""

    layout = "images/<scene>_left_<frame>.png, ground-truth/**/<scene>_left_<frame>.{edges,boundaries}.<k>.png"

    def __init__(self, root: PathLike, *, task: str = "boundaries"):
        super().__init__(root)
        if task not in ("edges", "boundaries"):
            raise ValueError(f"task: expected 'edges' or 'boundaries', got {task!r}")
        self.task = task
        truths: dict[str, list[Path]] = {}
        for truth in sorted((self.root / "ground-truth").rglob(f"*.{task}.*.png")):
            truths.setdefault(truth.name.split(f".{task}.")[0], []).append(truth)
        for name in sorted(truths):
            image = find_image(self.root / "images", name)
            if image is not None:
                self.items.append((name, image, sorted(truths[name], key=lambda p: p.name)))
        self._require_items(f"images with {task} annotations")

    def load(self, item):
        name, image, truths = item
        return {"name": name, "image": read_image(image), "annotations": [read_edge_map(t) > 0.5 for t in truths]}


#: Variable of ``weight_matrix.mat`` holding the vote weights: row ``n - 1`` for image ``n``, one
#: column per ground truth (the release's ``compute_WMAE_WRMSE.py`` reads ``temp['weight_matrix']``).
EPS_WEIGHT_VARIABLE = "weight_matrix"
#: The release's split by image number: 0001-0400 train, 0401-0500 test (README and scripts).
EPS_SPLITS = {"train": (1, 400), "test": (401, 500), "all": (1, 500)}


def read_weight_matrix(path: PathLike) -> np.ndarray:
    """The vote weights of Zhu et al.'s benchmark: ``weight_matrix`` of ``weight_matrix.mat``,
    float64 ``(N, K)`` (row ``n - 1`` belongs to image ``n``; K = 5 ground truths).

    Raises:
        MalformedFileError: not a MAT file, no ``weight_matrix`` variable, not a 2-D numeric
            matrix, or negative / non-finite entries.
    """
    path, mat = read_mat(path)
    if EPS_WEIGHT_VARIABLE not in mat:
        raise MalformedFileError(path, f"no {EPS_WEIGHT_VARIABLE!r} variable; found {mat_variables(mat)}")
    try:
        matrix = np.asarray(mat[EPS_WEIGHT_VARIABLE], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MalformedFileError(path, f"{EPS_WEIGHT_VARIABLE} is not numeric ({error})") from error
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise MalformedFileError(path, f"{EPS_WEIGHT_VARIABLE}: expected an (images, ground truths) matrix, "
                                       f"got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise MalformedFileError(path, f"{EPS_WEIGHT_VARIABLE}: expected finite non-negative weights")
    return matrix


def write_weight_matrix(path: PathLike, matrix: np.ndarray) -> None:
    """Write ``weight_matrix.mat`` as the benchmark ships it (variable ``weight_matrix``, (N, K) float64)."""
    savemat_deterministic(path, {EPS_WEIGHT_VARIABLE: np.asarray(matrix, np.float64)})


class EPSBenchmark(LazySequence):
    """The edge-preserving smoothing benchmark of Zhu et al. (TIP 2019) in the layout of its release
    (zhufeida/Benchmark_EPS: README and ``dataset/compute_WMAE_WRMSE.py``): images
    ``dataset/origin_images/NNNN.png`` (0001-0500), five voted ground-truth smoothings per image
    ``dataset/gt_images/NNNN_k.png`` (k = 1..5) and their vote weights in ``dataset/weight_matrix.mat``
    (variable ``weight_matrix``, row n - 1 for image n). Splits by number as the release:
    ``train`` 0001-0400, ``test`` 0401-0500 (``all`` both). ``root`` is the release folder or its
    ``dataset`` folder. Samples: ``{"name", "image", "ground_truths": [K images], "weights": (K,)}``
    with the weights as stored (the benchmark's metric multiplies by them as they are)."""

    layout = ("dataset/origin_images/<NNNN>.png, dataset/gt_images/<NNNN>_<k>.png (k=1..5), "
              "dataset/weight_matrix.mat (variable weight_matrix, row n-1 = image n); train 0001-0400, "
              "test 0401-0500 (the 'dataset' folder itself may be the root)")

    def __init__(self, root: PathLike, *, split: str = "test"):
        super().__init__(root)
        if split not in EPS_SPLITS:
            raise ValueError(f"split: expected one of {sorted(EPS_SPLITS)}, got {split!r}")
        base = self.root / "dataset" if (self.root / "dataset").is_dir() else self.root
        weights_file = base / "weight_matrix.mat"
        if not (base / "origin_images").is_dir() or not weights_file.is_file():
            raise LayoutError(self.root, "origin_images/ or weight_matrix.mat not found", self.layout)
        self.base, self.weights_file = base, weights_file
        self.weights = read_weight_matrix(weights_file)
        first, last = EPS_SPLITS[split]
        for image in sorted_glob(base / "origin_images", "*.png"):
            if not image.stem.isdigit() or not first <= int(image.stem) <= last:
                continue
            truths = sorted(sorted_glob(base / "gt_images", f"{image.stem}_*.png"),
                            key=lambda p: int(p.stem.rsplit("_", 1)[1]) if p.stem.rsplit("_", 1)[1].isdigit() else 0)
            if truths:
                self.items.append((image.stem, image, truths))
        self._require_items(f"{split} images ({first:04d}-{last:04d}) with ground truths")

    def load(self, item):
        name, image, truths = item
        row = int(name) - 1
        if row >= len(self.weights):
            raise MalformedFileError(self.weights_file, f"no row for image {name} ({len(self.weights)} rows)")
        weights = self.weights[row]
        if len(weights) != len(truths):
            raise MalformedFileError(self.weights_file, f"image {name}: {len(truths)} ground truths but "
                                                        f"{len(weights)} weights")
        if weights.sum() <= 0:
            raise MalformedFileError(self.weights_file, f"image {name}: all its weights are zero")
        return {"name": name, "image": read_image(image), "ground_truths": [read_image(t) for t in truths],
                "weights": weights.copy()}


def kair_noisy(clean: np.ndarray, sigma: float, *, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise following the KAIR test protocol.

    ``x = uint8 / 255`` as float32, reseed NumPy with ``seed`` for each image, then
    ``x += normal(0, sigma / 255, x.shape)``; the noisy input is **not** clipped.

    Returns:
        float32 array of the input's shape, values around [0, 1].
    """
    clean = np.asarray(clean)
    if clean.dtype != np.uint8:
        raise ValueError(f"clean: expected a uint8 image, got {clean.dtype}")
    noisy = clean.astype(np.float32) / 255.0
    noisy += np.random.RandomState(seed).normal(0, sigma / 255.0, noisy.shape)
    return noisy


class DenoisingSet(LazySequence):
    """A folder of clean test images (CBSD68, Kodak24, McMaster, Set12, or the generated
    ``mini-denoise/clean``). With ``sigma`` set, each sample also holds the noisy input: read
    from ``noisy/sigma<s>/<name>.npy`` when stored there, else made by :func:`kair_noisy`."""

    layout = "<name>.png|tif|bmp (or clean/<name>.png with noisy/sigma<s>/<name>.npy)"

    def __init__(self, root: PathLike, *, sigma: float | None = None, grey: bool = False, seed: int = 0):
        super().__init__(root)
        folder = self.root / "clean" if (self.root / "clean").is_dir() else self.root
        self.folder, self.sigma, self.grey, self.seed = folder, sigma, grey, seed
        self.items = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        self._require_items("images")

    def load(self, path: Path):
        clean = read_image(path, grey=self.grey)
        sample = {"name": path.stem, "clean": clean}
        if self.sigma is not None:
            stored = self.root / "noisy" / f"sigma{self.sigma:g}" / f"{path.stem}.npy"
            if stored.is_file():
                try:
                    noisy = np.load(stored, allow_pickle=False)
                except (ValueError, OSError) as error:
                    raise MalformedFileError(stored, f"not a readable .npy ({error})") from error
                if noisy.shape != clean.shape or noisy.dtype != np.float32:
                    raise MalformedFileError(
                        stored, f"expected float32 {clean.shape}, got {noisy.dtype} {noisy.shape}")
            else:
                noisy = kair_noisy(clean, self.sigma, seed=self.seed)
            sample["noisy"] = noisy
            sample["sigma"] = self.sigma
        return sample
