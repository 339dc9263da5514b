"""Shared pieces of the format readers: errors, image decoding, lazy sample sequences."""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike


class MalformedFileError(ValueError):
    """A file exists but does not hold what its format promises.

    The message names the file and what was wrong (bad magic, truncated payload, wrong
    shape or bit depth), so a user can find and replace the broken file.
    """

    def __init__(self, path: PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class LayoutError(ValueError):
    """A dataset folder does not have the layout its reader expects."""

    def __init__(self, root: PathLike, problem: str, expected: str = ""):
        self.root = Path(root)
        self.problem = problem
        message = f"{self.root}: {problem}"
        if expected:
            message += f"; expected layout: {expected}"
        super().__init__(message)


def read_bytes(path: PathLike, *, minimum: int = 0) -> bytes:
    """Read a whole file, failing with the file's name when it is missing or too short."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise MalformedFileError(path, f"cannot be read ({error})") from error
    if len(data) < minimum:
        raise MalformedFileError(path, f"truncated: {len(data)} bytes, need at least {minimum}")
    return data


def read_image(path: PathLike, *, unchanged: bool = False, grey: bool = False) -> np.ndarray:
    """Decode an image file to a numpy array (RGB channel order for colour images).

    Args:
        path: image file (PNG, JPEG, PPM, BMP, TIFF).
        unchanged: keep the stored bit depth and channels (16-bit PNG stays uint16). Uses
            OpenCV because PIL decodes 16-bit RGB PNG as 8-bit.
        grey: convert to a single channel.

    Returns:
        (H, W) or (H, W, 3) array; uint8 unless ``unchanged`` keeps 16 bits.

    Raises:
        FileNotFoundError: the file does not exist.
        MalformedFileError: the file cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    if unchanged:
        import cv2

        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise MalformedFileError(path, "not a decodable image (OpenCV returned nothing)")
        if array.ndim == 3:
            # OpenCV stores colour as BGR(A); flip to RGB(A).
            array = array[..., ::-1] if array.shape[2] == 3 else array[..., [2, 1, 0, 3]]
            array = np.ascontiguousarray(array)
        return array
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if grey:
                image = image.convert("L")
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            return np.asarray(image).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MalformedFileError(path, f"not a decodable image ({error})") from error


def read_indexed_png(path: PathLike) -> np.ndarray:
    """Read the stored indices of a palette ('P') or greyscale ('L') PNG without mapping colours."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label image not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("P", "L"):
                raise MalformedFileError(
                    path, f"expected a palette (P) or greyscale (L) PNG of class ids, got mode {image.mode}"
                )
            return np.asarray(image).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MalformedFileError(path, f"not a decodable PNG ({error})") from error


class LazySequence(Sequence):
    """An indexable dataset view: the file list is found on construction, files are read on access.

    Subclasses set ``self.items`` (one entry per sample, usually paths) in ``__init__`` and
    implement ``load(item) -> dict``. Indexing reads exactly one sample; iteration streams.
    """

    layout: str = ""

    def __init__(self, root: PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise LayoutError(self.root, "dataset folder not found", self.layout)
        self.items: list[Any] = []

    def _require_items(self, what: str) -> None:
        if not self.items:
            raise LayoutError(self.root, f"no {what} found", self.layout)

    def load(self, item: Any) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        return self.load(self.items[index])

    def __iter__(self) -> Iterator[dict]:
        for item in self.items:
            yield self.load(item)

    def check(self) -> None:
        """Read the first and the last sample, so a broken layout fails before a long run."""
        self._require_items("samples")
        self[0]
        if len(self) > 1:
            self[len(self) - 1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)})"


def sorted_glob(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


def stem_of(path: Path) -> str:
    return path.name.split(".")[0]
