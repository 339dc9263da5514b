"""Shared pieces of the format readers: errors, image decoding, lazy sample sequences.

Every failure to read a dataset file surfaces as a :class:`MalformedFileError` naming the file,
and the translation happens here, in one place, rather than in each reader: the low-level
helpers (:func:`read_bytes`, :func:`read_image`, :func:`read_indexed_png`, :func:`read_json`,
:func:`check_payload_size`) raise it directly, and :class:`LazySequence` turns whatever a
reader's ``load`` lets escape from a library (``cv2.error``, ``zipfile.BadZipFile``, ``EOFError``,
a ``KeyError`` in an archive, ...) into one, naming the file the error names or the sample's
files. :func:`open_reader` does the same for what a reader's constructor reads (index files,
``cfg.json``). Files that are not regular files (FIFOs, devices, sockets) are refused before
they are opened, so reading one never hangs.
"""
from __future__ import annotations

import json
import os
import stat
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

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

    def __reduce__(self):  # raised in a worker process, it is pickled back whole
        return (type(self), (str(self.path), self.problem))


class LayoutError(ValueError):
    """A dataset folder does not have the layout its reader expects."""

    def __init__(self, root: PathLike, problem: str, expected: str = ""):
        self.root = Path(root)
        self.problem = problem
        message = f"{self.root}: {problem}"
        if expected:
            message += f"; expected layout: {expected}"
        self.expected = expected
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (str(self.root), self.problem, self.expected))


# Images above this many pixels are refused before they are decoded (PIL's own bound, about
# 89 megapixels: 9459 x 9459; the largest frames of the papers' datasets are 4K): a decompression
# bomb (a small PNG declaring gigapixels) would otherwise take all memory.
MAX_IMAGE_PIXELS = 89_478_485


_ERRORS: tuple[type[BaseException], ...] | None = None


def read_errors() -> tuple[type[BaseException], ...]:
    """The exception types a decoding library raises on bad bytes (``OSError``, ``ValueError``,
    ``EOFError``, ``zipfile.BadZipFile``, ``struct.error``, ``cv2.error``, ...): a reader catches
    ``read_errors()`` around a library call and raises a MalformedFileError naming the file."""
    global _ERRORS
    if _ERRORS is None:
        _ERRORS = _library_errors()
    return _ERRORS


def _library_errors() -> tuple[type[BaseException], ...]:
    """What the decoding libraries raise on bad bytes (their own types, when installed)."""
    errors: list[type[BaseException]] = [OSError, ValueError, EOFError, KeyError, IndexError, TypeError,
                                         OverflowError, MemoryError, RecursionError, UnicodeError,
                                         zipfile.BadZipFile, SyntaxError]
    try:
        import struct

        errors.append(struct.error)
    except ImportError:  # pragma: no cover
        pass
    try:
        import cv2

        errors.append(cv2.error)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def require_file(path: PathLike) -> Path:
    """``path`` if it is a regular file (or a link to one).

    Raises:
        FileNotFoundError: nothing there (or a dangling link).
        MalformedFileError: something that is not a regular file (a folder, FIFO, device,
            socket): opening a FIFO would block until a writer comes.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {path}") from None
    except OSError as error:
        raise MalformedFileError(path, f"cannot be read ({error.strerror or error})") from error
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise MalformedFileError(path, f"expected a regular file, found {kind}")
    return path


def check_payload_size(path: PathLike, size: int, expected: int, what: str, *, slack: int = 0) -> None:
    """Refuse a payload that does not match its header: shorter (truncated) or longer by more
    than ``slack`` bytes (a header declaring fewer pixels than the file holds is not silently
    cropped).

    Args:
        path: the file, for the message.
        size: bytes of payload present.
        expected: bytes the header declares.
        what: the declared content, e.g. ``"640x480x2 float32"``.
        slack: trailing bytes tolerated (e.g. a newline some writers append).
    """
    if size < expected:
        raise MalformedFileError(path, f"truncated payload: {size} bytes, expected {expected} for {what}")
    if size > expected + slack:
        raise MalformedFileError(path, f"payload of {size} bytes, more than the {expected} its header declares "
                                       f"({what}): the header or the file is wrong")


def read_bytes(path: PathLike, *, minimum: int = 0) -> bytes:
    """Read a whole file, failing with the file's name when it is missing or too short."""
    path = require_file(path)
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
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    require_file(path)
    if unchanged:
        array = imread_unchanged(path)
        if array.ndim == 3:
            # OpenCV stores colour as BGR(A); flip to RGB(A).
            array = array[..., ::-1] if array.shape[2] == 3 else array[..., [2, 1, 0, 3]]
            array = np.ascontiguousarray(array)
        return array
    from PIL import UnidentifiedImageError

    try:
        with _pil_open(path) as image:
            image.load()
            if grey:
                image = image.convert("L")
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            return np.asarray(image).copy()
    except MalformedFileError:
        raise
    except (UnidentifiedImageError, *read_errors()) as error:  # PIL raises ValueError, EOFError, ... too
        raise MalformedFileError(path, f"not a decodable image ({type(error).__name__}: {error})") from error


def read_mat(path: PathLike) -> tuple[Path, dict[str, Any]]:
    """A MATLAB file's variables (``scipy.io.loadmat``) and its path.

    Raises:
        MalformedFileError: the file cannot be read as a MAT file.
    """
    import scipy.io

    path = Path(path)
    try:
        return path, scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise MalformedFileError(path, f"not a readable MATLAB file ({error})") from error


def mat_variables(mat: dict[str, Any]) -> list[str]:
    """The variable names of a loaded MAT file (without scipy's ``__header__``-style entries)."""
    return [k for k in mat if not k.startswith("__")]


def read_indexed_png(path: PathLike) -> np.ndarray:
    """Read the stored indices of a palette ('P') or greyscale ('L') PNG without mapping colours."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"label image not found: {path}")
    require_file(path)
    try:
        with _pil_open(path) as image:
            image.load()
            if image.mode not in ("P", "L"):
                raise MalformedFileError(
                    path, f"expected a palette (P) or greyscale (L) PNG of class ids, got mode {image.mode}"
                )
            return np.asarray(image).copy()
    except MalformedFileError:
        raise
    except (UnidentifiedImageError, *read_errors()) as error:
        raise MalformedFileError(path, f"not a decodable PNG ({type(error).__name__}: {error})") from error


def imread_unchanged(path: PathLike) -> np.ndarray:
    """``cv2.imread(path, IMREAD_UNCHANGED)`` (BGR order, stored bit depth), safe: a missing file
    raises FileNotFoundError, a FIFO, a decompression bomb, a ``cv2.error`` or an undecodable file
    a MalformedFileError naming it."""
    import cv2

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    require_file(path)
    check_image_size(path)
    try:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise MalformedFileError(path, f"not a decodable image (OpenCV: {' '.join(str(error).split())})") from error
    if array is None:
        raise MalformedFileError(path, "not a decodable image (OpenCV returned nothing)")
    return array


def _pil_open(path: Path):
    """``PIL.Image.open`` refusing images above :data:`MAX_IMAGE_PIXELS` (a decompression bomb)
    with a MalformedFileError, before any pixel is decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MalformedFileError(path, f"image too large to decode safely ({error})") from error
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise MalformedFileError(path, f"image of {width}x{height} pixels declared, more than the "
                                       f"{MAX_IMAGE_PIXELS} decoded safely (a decompression bomb?)")
    return image


def check_image_size(path: PathLike) -> None:
    """Read only an image's header and refuse one above :data:`MAX_IMAGE_PIXELS` (for decoders,
    such as OpenCV's, that would allocate first). Formats PIL cannot identify pass on to the decoder."""
    from PIL import UnidentifiedImageError

    try:
        _pil_open(Path(path)).close()
    except MalformedFileError:
        raise
    except (UnidentifiedImageError, *read_errors()):
        pass  # not PIL's to judge: the decoder that follows says whether it decodes


def read_json(path: PathLike, *, required: dict[str, Callable[[Any], Any]] | None = None) -> Any:
    """Parse a JSON file; with ``required``, an object whose fields convert with the given callables
    (``{"startFrame": int}``), converted.

    Raises:
        FileNotFoundError: no such file.
        MalformedFileError: not UTF-8, not JSON, or a required field missing or of the wrong kind.
    """
    path = Path(path)
    data = read_bytes(path)
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MalformedFileError(path, f"not valid JSON ({type(error).__name__}: {error})") from error
    if required:
        if not isinstance(parsed, dict):
            raise MalformedFileError(path, f"expected a JSON object, got {type(parsed).__name__}")
        for name, convert in required.items():
            if name not in parsed:
                raise MalformedFileError(path, f"field {name!r} missing")
            try:
                parsed[name] = convert(parsed[name])
            except (TypeError, ValueError, OverflowError) as error:
                raise MalformedFileError(path, f"field {name!r}: {error}") from error
    return parsed


def _paths_in(item: Any, limit: int = 3) -> list[Path]:
    """The file paths a sample's item names (a path, or paths inside tuples, lists and dicts)."""
    found: list[Path] = []

    def visit(value: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for part in value:
                visit(part)
        elif isinstance(value, dict):
            for part in value.values():
                visit(part)

    visit(item)
    return found


def as_malformed(error: BaseException, where: PathLike, item: Any = None) -> MalformedFileError:
    """A library error met while reading a dataset, as a MalformedFileError naming the file:
    the one the error names, else the sample's files, else the dataset folder and the sample."""
    problem = f"{type(error).__name__}: {' '.join(str(error).split()) or 'no message'}"
    filename = getattr(error, "filename", None)
    if filename:
        return MalformedFileError(filename, problem)
    paths = _paths_in(item)
    if len(paths) == 1:
        return MalformedFileError(paths[0], problem)
    if paths:
        return MalformedFileError(paths[0], f"{problem} (while reading this sample's files: "
                                            f"{', '.join(str(p) for p in paths)})")
    suffix = f"sample {item!r}: " if item is not None else ""
    return MalformedFileError(where, f"{suffix}{problem}")


def open_reader(reader: Callable[..., Any], root: PathLike, **options) -> Any:
    """``reader(root, **options)`` with the files its constructor reads (index lists, ``cfg.json``)
    failing as a MalformedFileError naming the file (a LayoutError or a missing file passes as is)."""
    try:
        return reader(root, **options)
    except (MalformedFileError, LayoutError, FileNotFoundError):
        raise
    except read_errors() as error:
        raise as_malformed(error, root) from error


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

    def _load(self, item: Any) -> dict:
        try:
            return self.load(item)
        except (MalformedFileError, LayoutError, FileNotFoundError):
            raise
        except read_errors() as error:
            raise as_malformed(error, self.root, item) from error

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        return self._load(self.items[index])

    def __iter__(self) -> Iterator[dict]:
        for item in self.items:
            yield self._load(item)

    def check(self, *, limit: int | None = 2) -> list[int]:
        """Read samples so a broken layout or file fails before a long run.

        Args:
            limit: how many samples to read: ``None`` reads every one; otherwise the first, the
                last and ``limit - 2`` evenly spaced between them (2: first and last).

        Returns:
            the indices read.
        """
        self._require_items("samples")
        indices = check_indices(len(self), limit)
        for index in indices:
            sample = self[index]
            _touch_frames(sample)
        return indices

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)})"


def sorted_glob(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


def stem_of(path: Path) -> str:
    return path.name.split(".")[0]


def check_indices(count: int, limit: int | None) -> list[int]:
    """All of ``range(count)`` when ``limit`` is None or not below ``count``; else the first, the
    last and evenly spaced indices between them, ``limit`` in all (deterministic)."""
    if limit is None or count <= limit:
        return list(range(count))
    if limit < 2:
        return [0]
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _touch_frames(sample: Any) -> None:
    """Decode the first and last frame of lazy frame lists in a sample (video datasets load frames
    on access, so a check that only loads the sample would decode none)."""
    if not isinstance(sample, dict):
        return
    for value in sample.values():
        lazy = (hasattr(value, "__getitem__") and hasattr(value, "__len__") and not hasattr(value, "shape")
                and not isinstance(value, (str, bytes, list, tuple, dict)))
        if lazy and len(value) > 0:
            value[0]
            if len(value) > 1:
                value[len(value) - 1]


def _check_npy_payload(path: Path) -> None:
    """An ``.npy`` file's size against what its header declares (``np.load`` ignores extra bytes)."""
    from numpy.lib import format as npy_format

    with open(path, "rb") as handle:
        version = npy_format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            return  # version 3 (UTF-8 field names): np.load's own checks only
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read_header(handle)
        offset = handle.tell()
    if dtype.hasobject:
        return  # pickled objects: np.load(allow_pickle=False) refuses them anyway
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    check_payload_size(path, path.stat().st_size - offset, expected, f"{'x'.join(map(str, shape)) or 'scalar'} {dtype}")


# Files `energybench data add` decodes on their own (besides the reader's samples), by suffix.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff")


def check_file(path: PathLike) -> str | None:
    """Decode one file by its suffix (images, ``.npz``/``.npy``, ``.json``), the check ``data add``
    runs on every file of a small dataset; returns the kind checked, or None for other suffixes.

    Raises:
        MalformedFileError: the file does not decode (or is not a regular file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        read_image(path, unchanged=True) if suffix in (".png", ".tif", ".tiff") else read_image(path)
        return "image"
    if suffix in (".npz", ".npy"):
        require_file(path)
        try:
            if suffix == ".npy":
                _check_npy_payload(path)
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    for name in loaded.files:
                        loaded[name]
        except MalformedFileError:
            raise
        except read_errors() as error:
            raise as_malformed(error, path, path) from error
        return "array"
    if suffix == ".json":
        read_json(path)
        return "json"
    return None
