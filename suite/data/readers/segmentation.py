"""Segmentation formats: VOC palette PNG (255 = void), SBD ``.mat``, ScribbleSup scribbles as
distributed for regularized-loss training (PNG of class ids, 255 = unlabelled) and their
shortened variants, DAVIS 2016/2017, GrabCut masks (128 = void band), the GSC / Andrade
scribble sets and the Berkeley interactive masks."""
from __future__ import annotations

import functools
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
    read_indexed_png,
    sorted_glob,
)

VOID = 255
UNLABELLED = 255
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
SCRIBBLE_LENGTHS = (1.0, 0.8, 0.5, 0.3, 0.0)
IMAGE_EXTENSIONS = (".jpg", ".png", ".bmp", ".jpeg", ".ppm", ".tif")


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (256 RGB triples, flattened), index 255 = (224, 224, 192)."""
    return list(_voc_palette())


@functools.lru_cache(maxsize=1)
def _voc_palette() -> tuple[int, ...]:
    palette = []
    for index in range(256):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette.extend((red, green, blue))
    return tuple(palette)


def read_palette_png(path: PathLike) -> np.ndarray:
    """Read a label PNG as class ids (the palette indices, not the colours).

    Returns:
        (H, W) uint8 class ids; 255 = void / unlabelled.

    Raises:
        MalformedFileError: the PNG is RGB (colours, not ids) or not decodable.
    """
    labels = read_indexed_png(path)
    if labels.dtype != np.uint8:
        raise MalformedFileError(path, f"class-id PNG must be 8-bit, got {labels.dtype}")
    return labels


def write_palette_png(path: PathLike, labels: np.ndarray, palette: list[int] | None = None) -> None:
    """Write (H, W) integer class ids as an 8-bit palette PNG (VOC colours by default)."""
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels: expected shape (H, W), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels: expected values in [0, 255], got [{labels.min()}, {labels.max()}]")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(palette or voc_palette())
    image.save(path, optimize=False, compress_level=9)


def read_grabcut_mask(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut / GSC ground truth: 0 background, 255 foreground, 128 = void band.

    Returns:
        foreground (H, W) bool, void (H, W) bool.

    Raises:
        MalformedFileError: values other than 0, 128, 255 (after greyscale conversion).
    """
    grey = read_image(path, grey=True)
    values = np.unique(grey)
    if not np.isin(values, (0, 128, 255)).all():
        raise MalformedFileError(path, f"GrabCut mask values must be 0, 128 or 255, found {values[:8].tolist()}")
    return grey == 255, grey == 128


def read_binary_mask(path: PathLike) -> np.ndarray:
    """A 0/255 mask stored as greyscale, RGB or palette PNG; returns (H, W) bool."""
    array = read_image(path)
    if array.max() <= 1:
        array = array * 255
    # A few real Berkeley masks carry isolated anti-aliased values or channels that disagree:
    # tolerate them (threshold, majority over channels) but reject grey-level images.
    stray = ~np.isin(array, (0, 255))
    if stray.mean() > 0.01:
        raise MalformedFileError(
            path, f"not a binary 0/255 mask: {stray.mean():.1%} of values are neither 0 nor 255")
    if array.ndim == 3:
        return (array > 127).sum(axis=2) * 2 > array.shape[2]
    return array > 127


def read_gsc_scribble(path: PathLike) -> np.ndarray:
    """An Andrade & Carrera (GSC) scribble PNG: palette indices 0 none, 1 foreground, 2 background.

    Returns:
        (H, W) uint8 with 0 = none, 1 = foreground, 2 = background.
    """
    labels = read_indexed_png(path)
    values = np.unique(labels)
    if not np.isin(values, (0, 1, 2)).all():
        raise MalformedFileError(path, f"GSC scribble indices must be 0, 1, 2, found {values[:8].tolist()}")
    return labels


def gsc_seeds(scribbles: np.ndarray) -> np.ndarray:
    """GSC palette indices (0 none, 1 foreground, 2 background) as seeds: 1 foreground,
    0 background, 255 unlabelled (uint8), the convention of the interactive-segmentation task."""
    scribbles = np.asarray(scribbles)
    return np.where(scribbles == 1, 1, np.where(scribbles == 2, 0, 255)).astype(np.uint8)


def read_sbd_mat(path: PathLike, *, key: str = "GTcls") -> np.ndarray:
    """SBD ground truth ``cls/<id>.mat`` (struct ``GTcls``) or ``inst/<id>.mat`` (``GTinst``).

    Returns:
        (H, W) uint8 segmentation (class ids, or instance ids for ``GTinst``).
    """
    path, mat = read_mat(path)
    if key not in mat:
        raise MalformedFileError(path, f"missing struct {key!r}; found {mat_variables(mat)}")
    try:
        segmentation = mat[key]["Segmentation"][0, 0]
    except (ValueError, IndexError, KeyError) as error:
        raise MalformedFileError(path, f"{key} has no 'Segmentation' field") from error
    if segmentation.ndim != 2:
        raise MalformedFileError(path, f"{key}.Segmentation must be 2-D, got {segmentation.shape}")
    return segmentation.astype(np.uint8)


def find_image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _voc_base(root: Path) -> Path:
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise LayoutError(root, "no JPEGImages/ folder found", VOC2012.layout)


def _read_id_list(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


class VOC2012(LazySequence):
    """PASCAL VOC 2012 segmentation: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``
    (palette, 255 = void), optional ``SegmentationObject/``, ``ImageSets/Segmentation/<split>.txt``.
    ``label_folder='SegmentationClassAug'`` reads the SBD-augmented labels (train_aug)."""

    layout = "VOC2012/JPEGImages/<id>.jpg, SegmentationClass/<id>.png, ImageSets/Segmentation/{train,val}.txt"

    def __init__(self, root: PathLike, *, split: str | None = "train", label_folder: str = "SegmentationClass"):
        super().__init__(root)
        self.base = _voc_base(self.root)
        self.label_folder = label_folder
        split_file = self.base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if split is not None and split_file.is_file():
            ids = _read_id_list(split_file)
        elif split is not None and split not in ("train", "val", "trainval"):
            raise LayoutError(self.root, f"split list {split_file} not found", self.layout)
        else:
            ids = [p.stem for p in sorted_glob(self.base / label_folder, "*.png")]
        self.items = ids
        self._require_items(f"images in split {split!r}")

    def load(self, image_id: str):
        image_path = find_image(self.base / "JPEGImages", image_id)
        if image_path is None:
            raise FileNotFoundError(f"image {image_id!r} not found in {self.base / 'JPEGImages'}")
        sample = {"name": image_id, "image": read_image(image_path)}
        label = self.base / self.label_folder / f"{image_id}.png"
        sample["label"] = read_palette_png(label) if label.is_file() else None
        objects = self.base / "SegmentationObject" / f"{image_id}.png"
        if objects.is_file():
            sample["objects"] = read_palette_png(objects)
        mask = self.base / "masks" / f"{image_id}.png"
        if mask.is_file():  # the generated mini-masks: binary main object, 255 = void band
            sample["mask"] = read_palette_png(mask)
        return sample


class SBD(LazySequence):
    """Semantic Boundaries Dataset (Hariharan et al.): ``dataset/img/<id>.jpg``,
    ``dataset/cls/<id>.mat`` (GTcls), ``dataset/inst/<id>.mat`` (GTinst), ``dataset/{train,val}.txt``."""

    layout = ("[benchmark_RELEASE/]dataset/img/<id>.jpg, dataset/cls/<id>.mat, dataset/inst/<id>.mat, "
              "dataset/{train,val}.txt")

    def __init__(self, root: PathLike, *, split: str | None = "train"):
        super().__init__(root)
        # the SBD tarball unpacks to benchmark_RELEASE/dataset/
        base = next((c for c in (self.root / "dataset", self.root / "benchmark_RELEASE" / "dataset")
                     if c.is_dir()), self.root)
        self.base = base
        if split is not None and (base / f"{split}.txt").is_file():
            self.items = _read_id_list(base / f"{split}.txt")
        else:
            self.items = [p.stem for p in sorted_glob(base / "cls", "*.mat")]
        self._require_items("cls/*.mat ground truth")

    def load(self, image_id: str):
        sample = {"name": image_id, "image": read_image(self.base / "img" / f"{image_id}.jpg"),
                  "label": read_sbd_mat(self.base / "cls" / f"{image_id}.mat")}
        instances = self.base / "inst" / f"{image_id}.mat"
        if instances.is_file():
            sample["objects"] = read_sbd_mat(instances, key="GTinst")
        return sample


def scribble_folder(length: float) -> str:
    """Folder name of a scribble variant: ``pascal_2012_scribble`` for full length, else
    ``pascal_2012_scribble_len<ratio>`` (``_len0`` = clicks)."""
    if length not in SCRIBBLE_LENGTHS:
        raise ValueError(f"length: expected one of {SCRIBBLE_LENGTHS}, got {length!r}")
    return "pascal_2012_scribble" if length == 1.0 else f"pascal_2012_scribble_len{length:g}"


def _read_list_ids(path: Path) -> list[str]:
    """Image ids of a list file: one id per line, or DeepLab-style path pairs
    (``/JPEGImages/<id>.jpg /pascal_2012_scribble/<id>.png``: the stem of the first path)."""
    return [Path(line.split()[0]).stem for line in path.read_text().splitlines() if line.strip()]


#: Where the official lists of the regularized-loss distribution are looked for (``exper/
#: pascal_scribble/list/`` of rloss / adm-seg, copied beside the scribble folders).
SCRIBBLE_LIST_FOLDERS = ("list", "lists", "exper/pascal_scribble/list", ".")
#: The list names of a split: rloss calls the 10,582-image train_aug list ``train.txt``; the
#: shortened-scribble lists are ``train<r>.txt`` (``train0.txt`` = clicks).
SCRIBBLE_SPLITS = {"train_aug": ("train_aug", "train"), "val": ("val",), "train_sample": ("train_sample",)}


def scribble_list(root: PathLike, split: str, *, length: float = 1.0) -> Path | None:
    """The official list file of ``split`` for scribbles of ``length`` under ``root``, or None.

    For ``train_aug`` and a shortened length ``r`` the list ``train<r>.txt`` comes first (rloss
    ships one per length), then the full-length list.
    """
    root = Path(root)
    names = list(SCRIBBLE_SPLITS.get(split, (split,)))
    if split == "train_aug" and length != 1.0:
        names.insert(0, f"train{length:g}")
    for name in names:
        for folder in SCRIBBLE_LIST_FOLDERS:
            candidate = root / folder / f"{name}.txt"
            if candidate.is_file():
                return candidate
    return None


class ScribbleSup(LazySequence):
    """ScribbleSup scribbles as distributed for regularized-loss training: one PNG of class ids
    per image (255 = unlabelled) in ``pascal_2012_scribble/``; shortened variants in
    ``pascal_2012_scribble_len{0.8,0.5,0.3,0}/`` (0 = clicks). Images come from a VOC layout in
    ``images_root`` (default: ``root``); dense labels are added when present there.

    ``split``: None = every scribble PNG; ``train_aug`` / ``val`` / ``train_sample`` = the
    official rloss list (:func:`scribble_list`: ``list/train.txt``, ``list/train<r>.txt`` for the
    shortened scribbles, ``list/val.txt``) when ``root`` has it, else for ``train``/``val`` /
    ``trainval`` the VOC ``ImageSets/Segmentation/<split>.txt``. A named split whose list is
    absent raises :class:`LayoutError`; an id of the list without a scribble PNG raises too.
    """

    layout = ("pascal_2012_scribble/<id>.png (+ pascal_2012_scribble_len<r>/), list/{train,train<r>,val}.txt; "
              "VOC JPEGImages/ for the images")

    def __init__(self, root: PathLike, *, length: float = 1.0, images_root: PathLike | None = None,
                 split: str | None = None):
        super().__init__(root)
        self.folder = self.root / scribble_folder(length)
        if not self.folder.is_dir():
            raise LayoutError(self.root, f"scribble folder {self.folder.name}/ not found", self.layout)
        self.voc = _voc_base(Path(images_root) if images_root is not None else self.root)
        present = [p.stem for p in sorted_glob(self.folder, "*.png")]
        self.list_file = None
        if split is None:
            ids = present
        else:
            self.list_file = scribble_list(self.root, split, length=length)
            if self.list_file is None:
                voc_list = self.voc / "ImageSets" / "Segmentation" / f"{split}.txt"
                if not voc_list.is_file():
                    raise LayoutError(self.root, f"no list for split {split!r} (looked for "
                                      f"{', '.join(SCRIBBLE_SPLITS.get(split, (split,)))}.txt in "
                                      f"{', '.join(SCRIBBLE_LIST_FOLDERS)} and {voc_list})", self.layout)
                wanted = set(_read_id_list(voc_list))
                ids = [i for i in present if i in wanted]
            else:
                ids = list(dict.fromkeys(_read_list_ids(self.list_file)))
                absent = sorted(set(ids) - set(present))
                if absent:
                    raise LayoutError(self.root, f"{len(absent)} ids of {self.list_file.name} have no scribble PNG "
                                      f"in {self.folder.name}/ (e.g. {absent[:3]})", self.layout)
        self.items = ids
        self._require_items("scribble PNGs")

    def scribbles(self, image_id: str) -> np.ndarray:
        """Only the scribble map of ``image_id`` (no image read)."""
        return read_palette_png(self.folder / f"{image_id}.png")

    def load(self, image_id: str):
        image_path = find_image(self.voc / "JPEGImages", image_id)
        if image_path is None:
            raise FileNotFoundError(f"image {image_id!r} not found in {self.voc / 'JPEGImages'}")
        sample = {"name": image_id, "image": read_image(image_path), "scribbles": self.scribbles(image_id)}
        label = self.voc / "SegmentationClass" / f"{image_id}.png"
        sample["label"] = read_palette_png(label) if label.is_file() else None
        return sample


def read_davis_annotation(path: PathLike) -> np.ndarray:
    """A DAVIS annotation as object ids: DAVIS 2016 greyscale 0/255 becomes 0/1, DAVIS 2017
    palette indices are kept (0 background, 1..K objects, 255 void)."""
    labels = read_indexed_png(path)
    values = np.unique(labels)
    if np.isin(values, (0, 255)).all() and 255 in values and _png_mode(path) == "L":
        return (labels > 0).astype(np.uint8)
    return labels


def _png_mode(path: PathLike) -> str:
    from PIL import Image

    with Image.open(path) as image:
        return image.mode


class LazyFrames:
    """An indexable list of files decoded on access."""

    def __init__(self, paths: list[Path], reader):
        self.paths, self.reader = paths, reader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.reader(p) for p in self.paths[index]]
        return self.reader(self.paths[index])

    def __iter__(self):
        return (self.reader(p) for p in self.paths)


class Davis(LazySequence):
    """DAVIS 2016 / 2017: ``JPEGImages/<res>/<seq>/NNNNN.jpg``, ``Annotations/<res>/<seq>/NNNNN.png``,
    optional ``ImageSets/<year>/<split>.txt``. Each sample is one sequence whose ``images`` and
    ``masks`` are lazy frame lists. ``binary=True`` merges all objects (DAVIS 2016 task)."""

    layout = "JPEGImages/480p/<seq>/00000.jpg, Annotations/480p/<seq>/00000.png, [ImageSets/2017/val.txt]"

    def __init__(self, root: PathLike, *, resolution: str | None = None, year: str = "2017",
                 split: str | None = None, binary: bool = False):
        super().__init__(root)
        if resolution is None:
            options = sorted(p.name for p in (self.root / "JPEGImages").glob("*") if p.is_dir())
            resolution = "480p" if "480p" in options else (options[0] if len(options) == 1 else None)
            if resolution is None:
                raise LayoutError(self.root, f"cannot choose a resolution folder among {options}", self.layout)
        self.resolution, self.binary = resolution, binary
        images = self.root / "JPEGImages" / resolution
        sequences = sorted(p.name for p in images.glob("*") if p.is_dir())
        if split is not None:
            split_file = self.root / "ImageSets" / year / f"{split}.txt"
            if not split_file.is_file():
                raise LayoutError(self.root, f"split list {split_file} not found", self.layout)
            wanted = _read_id_list(split_file)
            sequences = [s for s in wanted if s in set(sequences)]
        self.items = sequences
        self._require_items(f"sequences in JPEGImages/{resolution}")

    def _mask(self, path: Path) -> np.ndarray:
        labels = read_davis_annotation(path)
        if self.binary:
            return ((labels > 0) & (labels != VOID)).astype(np.uint8)
        return labels

    def load(self, sequence: str):
        frames = sorted(p for p in (self.root / "JPEGImages" / self.resolution / sequence).iterdir()
                        if p.suffix.lower() in IMAGE_EXTENSIONS)
        annotations = self.root / "Annotations" / self.resolution / sequence
        masks = [annotations / f"{p.stem}.png" for p in frames]
        present = [m for m in masks if m.is_file()]
        return {"name": sequence, "images": LazyFrames(frames, read_image),
                "masks": LazyFrames(present, self._mask), "frame_names": [p.stem for p in frames],
                "mask_names": [p.stem for p in present]}


class GrabCut(LazySequence):
    """GrabCut (Rother et al. 2004): ``data_GT/<name>.{jpg,bmp,...}`` and
    ``boundary_GT/<name>.bmp`` (0 background, 255 foreground, 128 = void band)."""

    layout = "data_GT/<name>.jpg|bmp, boundary_GT/<name>.bmp"

    def __init__(self, root: PathLike):
        super().__init__(root)
        base = self.root / "GrabCut" if (self.root / "GrabCut" / "boundary_GT").is_dir() else self.root
        self.base = base
        for mask in sorted_glob(base / "boundary_GT", "*"):
            image = find_image(base / "data_GT", mask.stem)
            if image is not None:
                self.items.append((mask.stem, image, mask))
        self._require_items("boundary_GT masks with images in data_GT")

    def load(self, item):
        name, image, mask = item
        foreground, void = read_grabcut_mask(mask)
        return {"name": name, "image": read_image(image), "mask": foreground, "void": void}


class GSCScribbles(LazySequence):
    """The GrabCut scribble sets of Andrade & Carrera 2015 (GSC robot-user scribbles):
    ``ground-truth/<name>.png`` (0/128/255), ``scribbles-set-1/<name>-anno.png`` and
    ``scribbles-set-2/`` (palette 0 none, 1 foreground, 2 background). Images come from the
    GrabCut ``data_GT`` folder (``images_root``, default ``<root>/images`` or the sibling
    ``GrabCut/data_GT``). The files for image ``124080`` are named ``124084``."""

    layout = "ground-truth/<name>.png, scribbles-set-1/<name>-anno.png, scribbles-set-2/; images/ or ../GrabCut/data_GT"
    NAME_TO_IMAGE = {"124084": "124080"}

    def __init__(self, root: PathLike, *, scribble_set: int = 1, images_root: PathLike | None = None):
        super().__init__(root)
        if scribble_set not in (1, 2):
            raise ValueError(f"scribble_set: expected 1 or 2, got {scribble_set!r}")
        self.scribbles = self.root / f"scribbles-set-{scribble_set}"
        candidates = [Path(images_root)] if images_root is not None else [
            self.root / "images", self.root.parent / "GrabCut" / "data_GT", self.root / "data_GT"]
        self.images = next((c for c in candidates if c.is_dir()), None)
        if self.images is None:
            raise LayoutError(self.root, f"no image folder among {[str(c) for c in candidates]}", self.layout)
        for scribble in sorted_glob(self.scribbles, "*-anno.png"):
            name = scribble.name[: -len("-anno.png")]
            self.items.append(name)
        self._require_items(f"scribbles in {self.scribbles.name}/")

    def load(self, name: str):
        image_name = self.NAME_TO_IMAGE.get(name, name)
        image = find_image(self.images, image_name)
        if image is None:
            raise FileNotFoundError(f"image {image_name!r} (for scribble {name!r}) not found in {self.images}")
        foreground, void = read_grabcut_mask(self.root / "ground-truth" / f"{name}.png")
        return {"name": image_name, "image": read_image(image), "mask": foreground, "void": void,
                "scribbles": read_gsc_scribble(self.scribbles / f"{name}-anno.png")}


class BerkeleyInteractive(LazySequence):
    """The Berkeley interactive-segmentation masks (100 masks on BSDS images, 0/255):
    ``masks/<id>.png`` and images in ``images/`` (or a BSDS500 ``data/images/*/`` folder)."""

    layout = "masks/<id>.png, images/<id>.jpg (or images_root = a BSDS500 folder)"

    def __init__(self, root: PathLike, *, images_root: PathLike | None = None):
        super().__init__(root)
        folders = [Path(images_root)] if images_root is not None else [self.root / "images"]
        self.image_folders = [f for base in folders for f in [base, *sorted(base.glob("data/images/*"))] if f.is_dir()]
        for mask in sorted_glob(self.root / "masks", "*.png"):
            self.items.append(mask)
        self._require_items("masks/*.png")

    def load(self, mask: Path):
        image = next((p for f in self.image_folders if (p := find_image(f, mask.stem))), None)
        return {"name": mask.stem, "mask": read_binary_mask(mask),
                "image": read_image(image) if image is not None else None}
