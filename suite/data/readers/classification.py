"""Classification and localization: CIFAR-10 python batches, CIFAR-10-C (``.npy`` per
corruption, 5 severities), and the wsolevaluation metadata (CUB, ImageNet)."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ._common import LayoutError, LazySequence, MalformedFileError, PathLike, read_bytes, read_image

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; only builtins and numpy arrays may be rebuilt from them."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_cifar_batch(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a CIFAR-10 python batch (``data_batch_k`` / ``test_batch``).

    The pickle holds ``b'data'`` (N, 3072) uint8, channel-planar R, G, B rows of 32 x 32, and
    ``b'labels'`` (N integers in 0..9).

    Returns:
        images (N, 32, 32, 3) uint8, labels (N,) int64.

    Raises:
        MalformedFileError: not a CIFAR batch pickle or inconsistent contents.
    """
    data = read_bytes(path, minimum=2)
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # pickle raises many exception types on corrupt input
        raise MalformedFileError(path, f"not a CIFAR python batch ({type(error).__name__}: {error})") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise MalformedFileError(path, "CIFAR batch must be a dict with b'data' and b'labels'")
    raw = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], np.int64)
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != 3072:
        raise MalformedFileError(path, f"b'data' must be uint8 (N, 3072), got {raw.dtype} {raw.shape}")
    if labels.shape != (raw.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise MalformedFileError(path, f"b'labels' must hold {raw.shape[0]} ids in 0..9")
    return raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def write_cifar_batch(path: PathLike, images: np.ndarray, labels: np.ndarray, *, name: str = "batch") -> None:
    """Write images (N, 32, 32, 3) uint8 and labels as a CIFAR-10 python batch."""
    images = np.asarray(images, np.uint8)
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"images: expected shape (N, 32, 32, 3), got {images.shape}")
    batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
             b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
             b"filenames": [f"{i:05d}.png".encode() for i in range(len(images))]}
    Path(path).write_bytes(pickle.dumps(batch, protocol=2))


class CIFAR10(LazySequence):
    """CIFAR-10 python version: ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``.
    Batches are decoded on first access and kept."""

    layout = "cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta"

    def __init__(self, root: PathLike, *, split: str = "test"):
        super().__init__(root)
        base = self.root / "cifar-10-batches-py" if (self.root / "cifar-10-batches-py").is_dir() else self.root
        names = ["test_batch"] if split == "test" else [f"data_batch_{k}" for k in range(1, 6)]
        self.files = [base / n for n in names if (base / n).is_file()]
        if not self.files:
            raise LayoutError(self.root, f"no {split} batches found", self.layout)
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None

    def _batches(self):
        if self._cache is None:
            self._cache = [read_cifar_batch(f) for f in self.files]
            self.items = [(b, i) for b, (_, labels) in enumerate(self._cache) for i in range(len(labels))]
        return self._cache

    def __len__(self):
        self._batches()
        return len(self.items)

    def __iter__(self):
        self._batches()
        return super().__iter__()

    def __getitem__(self, index):
        self._batches()
        return super().__getitem__(index)

    def load(self, item):
        batch, index = item
        images, labels = self._cache[batch]
        return {"image": images[index], "label": int(labels[index])}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images (N, 32, 32, 3) and labels (N,) at once."""
        batches = self._batches()
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise MalformedFileError(path, f"not a readable .npy array ({error})") from error


class CIFAR10C(LazySequence):
    """CIFAR-10-C (Hendrycks & Dietterich 2019): ``CIFAR-10-C/<corruption>.npy`` of shape
    (5 * N, 32, 32, 3) uint8, severities 1..5 stacked in blocks of N, and ``labels.npy``.
    Arrays are memory-mapped; images are read on access."""

    layout = "CIFAR-10-C/<corruption>.npy (50000, 32, 32, 3) uint8, CIFAR-10-C/labels.npy (50000,)"

    def __init__(self, root: PathLike, *, corruption: str, severity: int):
        super().__init__(root)
        if corruption not in CIFAR10C_CORRUPTIONS:
            raise ValueError(f"corruption: expected one of {CIFAR10C_CORRUPTIONS}, got {corruption!r}")
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity: expected 1..5, got {severity!r}")
        base = self.root / "CIFAR-10-C" if (self.root / "CIFAR-10-C").is_dir() else self.root
        path, labels_path = base / f"{corruption}.npy", base / "labels.npy"
        for required in (path, labels_path):
            if not required.is_file():
                raise LayoutError(self.root, f"{required.name} not found", self.layout)
        images, labels = _load_npy(path), _load_npy(labels_path)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(images) % 5:
            raise MalformedFileError(path, f"expected uint8 (5*N, 32, 32, 3), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise MalformedFileError(labels_path, f"expected {len(images)} labels, got shape {labels.shape}")
        block = len(images) // 5
        start = (severity - 1) * block
        self.images, self.labels = images, labels
        self.items = list(range(start, start + block))

    def load(self, index):
        return {"image": np.asarray(self.images[index]), "label": int(self.labels[index])}


def _read_csv_lines(path: Path, fields: int, *, at_least: bool = False) -> list[list[str]]:
    rows = []
    for number, line in enumerate(read_bytes(path).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != fields and not (at_least and len(parts) >= fields):
            raise MalformedFileError(path, f"line {number}: expected {fields} comma-separated fields, got {line!r}")
        rows.append(parts)
    return rows


class WSOLMetadata(LazySequence):
    """wsolevaluation metadata (Choe et al., CVPR 2020): ``metadata/<CUB|ILSVRC>/<split>/``
    with ``image_ids.txt``, ``class_labels.txt`` (``path,label``), ``image_sizes.txt``
    (``path,w,h``) and ``localization.txt`` (``path,x0,y0,x1,y1``, one line per box).
    Images are read from ``images_root / path`` when given."""

    layout = "metadata/{CUB,ILSVRC}/{train,val,test}/image_ids.txt, class_labels.txt, image_sizes.txt, localization.txt"

    def __init__(self, root: PathLike, *, dataset: str = "CUB", split: str = "test",
                 images_root: PathLike | None = None):
        super().__init__(root)
        base = self.root / "metadata" / dataset / split
        if not base.is_dir():
            base = self.root / dataset / split
        if not (base / "image_ids.txt").is_file():
            raise LayoutError(self.root, f"image_ids.txt not found for {dataset}/{split}", self.layout)
        self.images_root = Path(images_root) if images_root is not None else None
        ids = [line.strip() for line in (base / "image_ids.txt").read_text().splitlines() if line.strip()]
        self.labels = {p: int(v) for p, v in _read_csv_lines(base / "class_labels.txt", 2)}
        self.sizes = {}
        if (base / "image_sizes.txt").is_file():
            self.sizes = {p: (int(w), int(h)) for p, w, h in _read_csv_lines(base / "image_sizes.txt", 3)}
        self.boxes: dict[str, list[list[float]]] = {}
        if (base / "localization.txt").is_file():
            for path, *coords in _read_csv_lines(base / "localization.txt", 5):
                self.boxes.setdefault(path, []).append([float(c) for c in coords])
        missing = [i for i in ids if i not in self.labels]
        if missing:
            raise MalformedFileError(base / "class_labels.txt", f"no label for {len(missing)} image(s), e.g. {missing[0]}")
        self.items = ids
        self._require_items("image ids")

    def load(self, image_id: str):
        sample = {"name": image_id, "label": self.labels[image_id], "size": self.sizes.get(image_id),
                  "boxes": np.array(self.boxes.get(image_id, []), np.float64).reshape(-1, 4)}
        if self.images_root is not None:
            sample["image"] = read_image(self.images_root / image_id)
        return sample
