"""Readers for the sets of LSM's full profile that the other reader modules do not cover.

* :class:`VGGInteractive`: the VGG interactive segmentation benchmark of Gulshan et al.
  (CVPR 2010, "Geodesic Star Convexity for Interactive Image Segmentation"), the test set of
  LSM's Fig. 5: 151 images (49 GrabCut, 99 PASCAL VOC, 3 alpha-matting), each with a ground
  truth and the robot user's initial scribbles, in the layout of its distribution
  (``images/``, ``images-gt/``, ``images-labels/<name>-anno.png``).
* :class:`SBDExcluding`: SBD (Hariharan et al. 2011) with the images a benchmark shares with it
  removed; LSM trains on "SBD ... and the overlapped 99 images are excluded from the training
  set" (Sec. 4.1).
* :class:`DavisSplit`: DAVIS with its official split lists in either distribution: the
  DAVIS-2017 package (``ImageSets/2016/val.txt``, ``ImageSets/2017/train.txt``: one sequence
  per line) and the DAVIS-2016 package (``ImageSets/480p/val.txt``: one
  ``/JPEGImages/480p/<seq>/00000.jpg /Annotations/480p/<seq>/00000.png`` pair per frame).
  LSM trains on DAVIS-2017 train and tests on DAVIS-2016 val.
* :class:`FlyingThings3DCRL`: FlyingThings3D with the training / testing split of Pang et al.
  (CRL, ICCVW 2017, LSM's [54]): ``TRAIN`` for training, ``TEST`` without the frames whose left
  disparity exceeds 300 px on more than 25% of the pixels (:func:`crl_excluded`).

MPI-Sintel (LSM's flow test set) is read by :class:`suite.data.readers.Sintel`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._common import LayoutError, LazySequence, MalformedFileError, PathLike, read_image, sorted_glob
from .flow import FlyingThings3D, read_disparity_pfm
from .segmentation import SBD, Davis, read_grabcut_mask, read_gsc_scribble

#: A PASCAL VOC image id (``2008_000123``): the VGG benchmark's images taken from VOC, the ones
#: SBD may share with it.
VOC_ID = re.compile(r"^\d{4}_\d{6}$")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif")


class VGGInteractive(LazySequence):
    """The VGG interactive segmentation benchmark (Gulshan et al. 2010).

    Layout (the distribution's ``data/`` folder, or its contents):
    ``images/<name>.{jpg,png,bmp}``, ``images-gt/<name>.png`` (0 background, 255 foreground,
    128 the unknown band, i.e. void) and ``images-labels/<name>-anno.png`` (the robot user's
    initial scribbles: palette indices 0 none, 1 foreground, 2 background, as in the GSC files
    that Andrade & Carrera redistribute for GrabCut).

    Samples: ``name``, ``image`` (H, W, 3) uint8, ``mask`` (H, W) bool foreground, ``void``
    (H, W) bool, ``scribbles`` (H, W) uint8 (0 / 1 / 2) and ``source`` (``"pascal"`` for a VOC id,
    else ``"other"``: GrabCut or alpha-matting images).

    Args:
        root: the benchmark folder.
        scribbles: require and read ``images-labels/`` (False: ground truth only).

    Raises:
        LayoutError: a folder is missing, or an image has no ground truth or scribble file, or a
            ground truth has no image (the message names them).
    """

    layout = "images/<name>.jpg, images-gt/<name>.png (0/128/255), images-labels/<name>-anno.png (palette 0/1/2)"

    def __init__(self, root: PathLike, *, scribbles: bool = True):
        super().__init__(root)
        base = self.root / "data" if (self.root / "data" / "images-gt").is_dir() else self.root
        self.base, self.with_scribbles = base, scribbles
        for folder in ("images", "images-gt") + (("images-labels",) if scribbles else ()):
            if not (base / folder).is_dir():
                raise LayoutError(self.root, f"folder {folder}/ not found", self.layout)
        images = {p.stem: p for p in sorted_glob(base / "images", "*") if p.suffix.lower() in _IMAGE_SUFFIXES}
        truths = {p.stem: p for p in sorted_glob(base / "images-gt", "*") if p.suffix.lower() in _IMAGE_SUFFIXES}
        without_truth = sorted(set(images) - set(truths))
        without_image = sorted(set(truths) - set(images))
        if without_truth:
            raise LayoutError(self.root, f"{len(without_truth)} images have no images-gt/ file "
                              f"(e.g. {without_truth[:3]})", self.layout)
        if without_image:
            raise LayoutError(self.root, f"{len(without_image)} images-gt/ files have no image in images/ "
                              f"(e.g. {without_image[:3]})", self.layout)
        if scribbles:
            labels = {p.name[: -len("-anno.png")] for p in sorted_glob(base / "images-labels", "*-anno.png")}
            without_labels = sorted(set(images) - labels)
            if without_labels:
                raise LayoutError(self.root, f"{len(without_labels)} images have no images-labels/<name>-anno.png "
                                  f"(e.g. {without_labels[:3]})", self.layout)
        self.items = sorted(images)
        self._images, self._truths = images, truths
        self._require_items("images in images/")

    @property
    def pascal_ids(self) -> list[str]:
        """The names that are PASCAL VOC ids (the images the benchmark may share with SBD)."""
        return [name for name in self.items if VOC_ID.match(name)]

    def load(self, name: str) -> dict:
        image = read_image(self._images[name])
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        truth_path = self._truths[name]
        foreground, void = read_grabcut_mask(truth_path)
        if foreground.shape != image.shape[:2]:
            raise MalformedFileError(truth_path, f"ground truth is {foreground.shape[1]} x {foreground.shape[0]}, "
                                     f"its image {image.shape[1]} x {image.shape[0]}")
        sample = {"name": name, "image": image, "mask": foreground, "void": void,
                  "source": "pascal" if VOC_ID.match(name) else "other"}
        if self.with_scribbles:
            path = self.base / "images-labels" / f"{name}-anno.png"
            scribbles = read_gsc_scribble(path)
            if scribbles.shape != image.shape[:2]:
                raise MalformedFileError(path, f"scribbles are {scribbles.shape[1]} x {scribbles.shape[0]}, "
                                         f"the image {image.shape[1]} x {image.shape[0]}")
            sample["scribbles"] = scribbles
        return sample


class SBDExcluding(SBD):
    """SBD without the images a benchmark shares with it (LSM Sec. 4.1: the 99 VGG benchmark
    images are excluded from training).

    Args:
        root: the SBD folder (``dataset/img``, ``dataset/cls``, ``dataset/{train,val}.txt``).
        split: ``"train"`` / ``"val"`` (the official lists) or None for every ``cls/*.mat``.
        exclude: image ids to leave out.
        exclude_benchmark: a :class:`VGGInteractive` folder whose PASCAL ids are left out.

    ``excluded`` lists the ids that were in the split and were removed.

    Raises:
        LayoutError: the SBD layout is wrong, the benchmark folder is not a VGG benchmark or has no
            image named by a PASCAL VOC id, or no image is left.
    """

    def __init__(self, root: PathLike, *, split: str | None = "train", exclude=(),
                 exclude_benchmark: PathLike | None = None):
        super().__init__(root, split=split)
        if isinstance(exclude, str):
            raise ValueError(f"exclude: expected a collection of image ids, got the string {exclude!r}")
        drop = set(exclude)
        if exclude_benchmark is not None:
            benchmark = VGGInteractive(exclude_benchmark, scribbles=False)
            if not benchmark.pascal_ids:  # excluding nothing would train on test images without a word
                raise LayoutError(benchmark.base, "no image of images/ is named by a PASCAL VOC id (e.g. "
                                  "2008_000123.jpg), so the images the benchmark shares with SBD cannot be found",
                                  VGGInteractive.layout)
            drop |= set(benchmark.pascal_ids)
        self.excluded = sorted(set(self.items) & drop)
        self.items = [item for item in self.items if item not in drop]
        self._require_items(f"SBD {split or 'all'} images outside the excluded ones")


def read_davis_split(path: PathLike) -> list[str]:
    """The sequence names of a DAVIS split list, in their first order.

    Two official formats: one sequence per line (DAVIS-2017 package, ``ImageSets/<year>/``), or
    one ``/JPEGImages/480p/<seq>/<frame>.jpg /Annotations/480p/<seq>/<frame>.png`` pair per frame
    (DAVIS-2016 package, ``ImageSets/<resolution>/``).

    Raises:
        MalformedFileError: a line of neither format, or an empty list.
    """
    path = Path(path)
    names: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 1 and "/" not in fields[0]:
            name = fields[0]
        elif len(fields) == 2 and fields[0].lstrip("/").startswith("JPEGImages/"):
            parts = fields[0].strip("/").split("/")
            if len(parts) != 4:
                raise MalformedFileError(path, f"line {number}: expected /JPEGImages/<resolution>/<sequence>/<frame>, "
                                         f"got {fields[0]!r}")
            name = parts[2]
        else:
            raise MalformedFileError(path, f"line {number}: expected a sequence name or a '/JPEGImages/... "
                                     f"/Annotations/...' pair, got {line.strip()!r}")
        if name not in names:
            names.append(name)
    if not names:
        raise MalformedFileError(path, "empty split list")
    return names


class DavisSplit(Davis):
    """DAVIS restricted to an official split, read from either distribution's list
    (:func:`read_davis_split`): ``ImageSets/<year>/<split>.txt`` first, then
    ``ImageSets/<resolution>/<split>.txt``.

    Args:
        root: the DAVIS folder (``JPEGImages/``, ``Annotations/``, ``ImageSets/``).
        year: ``"2016"`` or ``"2017"``.
        split: ``"train"`` or ``"val"``.
        binary: merge every object into one foreground (the DAVIS-2016 task).
        resolution: ``"480p"`` by default when present.

    Raises:
        LayoutError: no list for the split, or a listed sequence without frames (named).
    """

    def __init__(self, root: PathLike, *, year: str = "2016", split: str = "val", binary: bool = True,
                 resolution: str | None = None):
        if year not in ("2016", "2017"):
            raise ValueError(f"year: expected '2016' or '2017', got {year!r}")
        if split not in ("train", "val", "trainval", "test-dev"):
            raise ValueError(f"split: expected 'train', 'val', 'trainval' or 'test-dev', got {split!r}")
        super().__init__(root, resolution=resolution, year=year, split=None, binary=binary)
        candidates = [self.root / "ImageSets" / year / f"{split}.txt",
                      self.root / "ImageSets" / self.resolution / f"{split}.txt"]
        listed = next((c for c in candidates if c.is_file()), None)
        if listed is None:
            raise LayoutError(self.root, f"no split list among {[str(c) for c in candidates]}", self.layout)
        wanted = read_davis_split(listed)
        missing = [name for name in wanted if name not in set(self.items)]
        if missing:
            raise LayoutError(self.root, f"{len(missing)} sequences of {listed.relative_to(self.root)} have no frames "
                              f"in JPEGImages/{self.resolution}/ (e.g. {missing[:3]})", self.layout)
        self.items, self.split_file = wanted, listed


#: The CRL test filter (Pang et al. 2017): a test frame is left out when more than
#: ``CRL_MAX_LARGE_FRACTION`` of its pixels have a disparity above ``CRL_LARGE_DISPARITY`` px.
CRL_LARGE_DISPARITY = 300.0
CRL_MAX_LARGE_FRACTION = 0.25


def crl_excluded(disparity: np.ndarray) -> bool:
    """Whether the CRL protocol leaves a FlyingThings3D test frame out: more than 25% of the
    pixels of its (left-view) disparity are above 300 px (frames of objects very close to the
    camera). Exactly 25% is kept; NaN counts as not large.

    Args:
        disparity: ``(H, W)`` float disparity in pixels.

    Raises:
        ValueError: not a non-empty 2-D array.
    """
    disparity = np.asarray(disparity)
    if disparity.ndim != 2 or disparity.size == 0:
        raise ValueError(f"disparity: expected a non-empty (H, W) array, got shape {disparity.shape}")
    with np.errstate(invalid="ignore"):
        large = np.count_nonzero(disparity > CRL_LARGE_DISPARITY)
    return large > CRL_MAX_LARGE_FRACTION * disparity.size


class FlyingThings3DCRL(FlyingThings3D):
    """FlyingThings3D with the training / testing split of Pang et al. (CRL, "Cascade Residual
    Learning", ICCVW 2017), which LSM uses for stereo (Sec. 4.1: "the training/testing split of
    FlyingThings3D from [54]").

    The rule, as the public code that reproduces the CRL protocol states it (the CRL paper's own
    text is not available offline): every ``TEST`` frame of ``frames_<pass>/TEST`` (all 4370, the
    DispNet unused-file list is *not* applied) except those where more than 25% of the pixels have
    a disparity above 300 px (:func:`crl_excluded`). Sources: ``practical_deep_stereo/
    flyingthings3d_dataset.py`` of tlkvstepan/PracticalDeepStereo_NIPS2018 (its "crl" benchmark
    protocol: ``MAXIMUM_PERCENTAGE_OF_LARGE_DISPARITIES = 25.0``, ``LARGE_DISPARITY = 300.0``,
    applied to the TEST examples only), and a stereo-uncertainty (PSMNU) README that filters the
    4370 test pairs the same way "following [Liang et al. 2018] [Pang et al. 2017]", keeping 4349.
    Training uses ``TRAIN``; no source states a training filter for CRL, so the frames the
    dataset's authors list in ``all_unused_files.txt`` (their "extremely hard" samples, disparity
    magnitudes above 300 px, lmb-freiburg/flownet2 issue 212) are left out as in DispNet, which
    CRL builds on.

    The test filter reads every TEST disparity once on construction (about 2 MB each); the result
    per file (path, size, modification time) is remembered for the process.

    Args:
        root: the FlyingThings3D folder (the layout of :class:`suite.data.readers.FlyingThings3D`).
        split: ``"TRAIN"`` or ``"TEST"``.
        pass_name: ``"cleanpass"`` (CRL's) or ``"finalpass"``.

    ``excluded`` lists the TEST frames the filter left out (empty for TRAIN).

    Raises:
        LayoutError: no frame, a frame without its disparity file, or no TEST frame left (named).
        MalformedFileError: a disparity file is not a single-channel PFM (named).
    """

    def __init__(self, root: PathLike, *, split: str = "TEST", pass_name: str = "cleanpass"):
        super().__init__(root, split=split, task="disparity", pass_name=pass_name, exclude_unused=split == "TRAIN")
        self.excluded: list[str] = []
        if split == "TEST":
            kept = []
            for item in self.items:
                (self.excluded if _crl_excluded_file(item[3]) else kept).append(item)
            self.excluded = [item[0] for item in self.excluded]
            self.items = kept
            self._require_items("TEST frames left by the CRL filter (more than 25% of pixels above 300 px)")


_CRL_MEMO: dict[tuple[str, int, int], bool] = {}


def _crl_excluded_file(path: Path) -> bool:
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    if key not in _CRL_MEMO:
        _CRL_MEMO[key] = crl_excluded(read_disparity_pfm(path))
    return _CRL_MEMO[key]


def write_vgg_interactive(root: PathLike, samples: list[dict]) -> Path:
    """Write samples (``name``, ``image``, ``mask``, optional ``void`` and ``scribbles``) in the
    benchmark's layout (tests, and converting a set to the benchmark's form); returns ``root``."""
    from PIL import Image

    from .segmentation import write_palette_png

    root = Path(root)
    for folder in ("images", "images-gt", "images-labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = [0, 0, 0, 255, 255, 207, 219, 0, 0] + [0] * (256 * 3 - 9)
    for sample in samples:
        name = sample["name"]
        Image.fromarray(np.asarray(sample["image"], np.uint8)).save(root / "images" / f"{name}.jpg", quality=95)
        truth = np.where(np.asarray(sample["mask"], bool), 255, 0).astype(np.uint8)
        if sample.get("void") is not None:
            truth[np.asarray(sample["void"], bool)] = 128
        Image.fromarray(truth, mode="L").save(root / "images-gt" / f"{name}.png")
        if sample.get("scribbles") is not None:
            write_palette_png(root / "images-labels" / f"{name}-anno.png", np.asarray(sample["scribbles"]), palette)
    return root


__all__ = ["VOC_ID", "VGGInteractive", "SBDExcluding", "DavisSplit", "read_davis_split", "write_vgg_interactive",
           "CRL_LARGE_DISPARITY", "CRL_MAX_LARGE_FRACTION", "crl_excluded", "FlyingThings3DCRL"]
