"""Tracking and pose: OTB (``groundtruth_rect.txt``), VOT2018 (polygon ground truth) and
Human3.6M in the 3d-pose-baseline layout (h5 3D positions, Stacked Hourglass 2D detections,
cameras)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._common import LayoutError, LazySequence, MalformedFileError, PathLike, read_bytes, read_image, read_json
from .segmentation import IMAGE_EXTENSIONS, LazyFrames


def _read_number_rows(path: PathLike, widths: tuple[int, ...]) -> list[np.ndarray]:
    rows = []
    text = read_bytes(path).decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        try:
            values = np.array([float(p) for p in parts])
        except ValueError as error:
            raise MalformedFileError(path, f"line {number}: not numbers: {line!r}") from error
        if len(values) not in widths:
            raise MalformedFileError(path, f"line {number}: expected {' or '.join(map(str, widths))} values, got {len(values)}")
        rows.append(values)
    if not rows:
        raise MalformedFileError(path, "no ground-truth rows")
    return rows


def read_otb_groundtruth(path: PathLike) -> np.ndarray:
    """OTB ``groundtruth_rect.txt``: one ``x, y, w, h`` per frame (comma, tab or space separated).

    Returns:
        (N, 4) float64 boxes (1-based top-left corner, as OTB stores them).
    """
    return np.stack(_read_number_rows(path, (4,)))


def read_vot_groundtruth(path: PathLike) -> np.ndarray:
    """VOT ``groundtruth.txt``: per frame a polygon ``x1,y1,...,x4,y4`` or a rectangle ``x,y,w,h``.

    Returns:
        (N, 8) float64 polygons; rectangles are converted to their four corners.
    """
    polygons = []
    for row in _read_number_rows(path, (4, 8)):
        if len(row) == 4:
            x, y, w, h = row
            row = np.array([x, y, x + w, y, x + w, y + h, x, y + h])
        polygons.append(row)
    return np.stack(polygons)


def polygon_to_box(polygons: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes (x, y, w, h) around (N, 8) polygons."""
    xs, ys = polygons[:, 0::2], polygons[:, 1::2]
    return np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class OTB(LazySequence):
    """OTB-2013/2015 (Wu et al.): ``<Seq>/img/NNNN.jpg``, ``<Seq>/groundtruth_rect[.k].txt``,
    optional ``<Seq>/cfg.json`` (startFrame / endFrame: e.g. Football1 has 74 boxes for 81
    images), and sequence lists ``cvpr13.txt`` / ``tb_50.txt`` / ``tb_100.txt``. Without a
    frame range the first len(boxes) frames are used. Each sample is one target track."""

    layout = "<Seq>/img/0001.jpg, <Seq>/groundtruth_rect.txt, [<Seq>/cfg.json], [tb_100.txt]"

    def __init__(self, root: PathLike, *, sequence_list: str | None = None):
        super().__init__(root)
        wanted = None
        if sequence_list is not None:
            list_file = self.root / f"{sequence_list}.txt"
            if not list_file.is_file():
                raise LayoutError(self.root, f"sequence list {list_file.name} not found", self.layout)
            wanted = {line.split()[0] for line in list_file.read_text().splitlines() if line.strip()}
        for truth in sorted(self.root.glob("*/groundtruth_rect*.txt")):
            sequence = truth.parent.name
            if wanted is not None and sequence not in wanted:
                continue
            suffix = truth.name[len("groundtruth_rect"):-len(".txt")].strip(".")
            self.items.append((f"{sequence}-{suffix}" if suffix else sequence, truth))
        self._require_items("sequences with groundtruth_rect.txt")

    def load(self, item):
        name, truth = item
        folder = truth.parent
        boxes = read_otb_groundtruth(truth)
        frames = _frames(folder / "img")
        start, end = 1, len(boxes)
        attributes = []
        if (folder / "cfg.json").is_file():
            config = read_json(folder / "cfg.json", required={"startFrame": int, "endFrame": int})
            start, end = config["startFrame"], config["endFrame"]
            attributes = list(config.get("attributes", []))
        by_number = {int(re.sub(r"\D", "", p.stem) or -1): p for p in frames}
        selected = [by_number[n] for n in range(start, end + 1) if n in by_number]
        if len(selected) != len(boxes):
            raise MalformedFileError(truth, f"{len(boxes)} boxes but {len(selected)} frames in {start}..{end}")
        return {"name": name, "images": LazyFrames(selected, read_image), "boxes": boxes,
                "attributes": attributes}


class VOT(LazySequence):
    """VOT2018 short-term: ``list.txt``, ``<seq>/groundtruth.txt`` (polygons), images in
    ``<seq>/color/NNNNNNNN.jpg`` (toolkit layout) or ``<seq>/NNNNNNNN.jpg`` (original)."""

    layout = "list.txt, <seq>/groundtruth.txt, <seq>/color/00000001.jpg (or <seq>/00000001.jpg)"

    def __init__(self, root: PathLike):
        super().__init__(root)
        listing = self.root / "list.txt"
        if listing.is_file():
            names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        else:
            names = sorted(p.parent.name for p in self.root.glob("*/groundtruth.txt"))
        self.items = names
        self._require_items("sequences")

    def load(self, name: str):
        folder = self.root / name
        polygons = read_vot_groundtruth(folder / "groundtruth.txt")
        image_folder = folder / "color" if (folder / "color").is_dir() else folder
        frames = _frames(image_folder)
        if len(frames) != len(polygons):
            raise MalformedFileError(folder / "groundtruth.txt", f"{len(polygons)} polygons but {len(frames)} frames")
        tags = {p.stem: p.read_text().split() for p in folder.glob("*.tag")}
        return {"name": name, "images": LazyFrames(frames, read_image), "polygons": polygons,
                "boxes": polygon_to_box(polygons), "tags": tags}


H36M_JOINTS = 32
SH_JOINTS = 16


def _h5_dataset(path: Path, key: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise MalformedFileError(path, f"missing dataset {key!r}; found {list(handle.keys())}")
            return handle[key][()]
    except OSError as error:
        raise MalformedFileError(path, f"not a readable HDF5 file ({error})") from error


def read_h36m_positions(path: PathLike) -> np.ndarray:
    """3d-pose-baseline ``S<k>/MyPoses/3D_positions/<Action> <n>.h5``: dataset ``3D_positions``
    of shape (96, N) (32 joints x 3, millimetres, world frame). Returns (N, 32, 3) float64."""
    path = Path(path)
    positions = _h5_dataset(path, "3D_positions")
    if positions.ndim != 2 or positions.shape[0] != H36M_JOINTS * 3:
        raise MalformedFileError(path, f"3D_positions must be (96, N), got {positions.shape}")
    return positions.T.reshape(-1, H36M_JOINTS, 3).astype(np.float64)


def read_h36m_detections(path: PathLike) -> np.ndarray:
    """Stacked Hourglass detections ``S<k>/StackedHourglass/<Action>_<n>.<camera>.h5``:
    dataset ``poses`` of shape (N, 16, 2) in SH joint order. Returns float64 (N, 16, 2)."""
    path = Path(path)
    poses = _h5_dataset(path, "poses")
    if poses.ndim != 3 or poses.shape[1:] != (SH_JOINTS, 2):
        raise MalformedFileError(path, f"poses must be (N, 16, 2), got {poses.shape}")
    return poses.astype(np.float64)


def read_h36m_cameras(path: PathLike) -> dict:
    """``cameras.h5``: groups ``subject<s>/camera<c>`` with R (3x3, stored transposed), T, f, c,
    k, p and Name (character codes). Returns {(subject, camera): dict}."""
    import h5py

    path = Path(path)
    cameras = {}
    try:
        with h5py.File(path, "r") as handle:
            for subject_key in handle:
                subject = int(subject_key.replace("subject", ""))
                for camera_key in handle[subject_key]:
                    group = handle[subject_key][camera_key]
                    camera = {k: np.asarray(group[k][()], np.float64) for k in ("R", "T", "f", "c", "k", "p")}
                    camera["R"] = camera["R"].T
                    camera["name"] = "".join(chr(int(v)) for v in np.ravel(group["Name"][()]))
                    cameras[(subject, int(camera_key.replace("camera", "")))] = camera
    except (OSError, KeyError, ValueError) as error:
        raise MalformedFileError(path, f"not a Human3.6M cameras.h5 ({type(error).__name__}: {error})") from error
    return cameras


class Human36M(LazySequence):
    """Human3.6M in the 3d-pose-baseline layout (licensed; never redistributed):
    ``S<k>/MyPoses/3D_positions/<Action> <n>.h5``, ``S<k>/<detections>/<Action>_<n>.<camera>.h5``
    and ``cameras.h5``. One sample per (subject, sequence) with 3D positions and the 2D
    detections of each camera found."""

    layout = "S<k>/MyPoses/3D_positions/<Action> <n>.h5, S<k>/StackedHourglass/<Action>_<n>.<cam>.h5, cameras.h5"
    TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
    TEST_SUBJECTS = (9, 11)

    def __init__(self, root: PathLike, *, subjects=TEST_SUBJECTS, detections: str = "StackedHourglass"):
        super().__init__(root)
        base = self.root / "h36m" if (self.root / "h36m").is_dir() else self.root
        self.base, self.detections = base, detections
        for subject in subjects:
            for path in sorted((base / f"S{subject}" / "MyPoses" / "3D_positions").glob("*.h5")):
                self.items.append((subject, path))
        self._require_items(f"3D_positions for subjects {tuple(subjects)}")

    def load(self, item):
        subject, path = item
        sequence = path.stem
        detections = {}
        folder = self.base / f"S{subject}" / self.detections
        key = sequence.replace(" ", "_")
        for candidate in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
            stem, _, camera = candidate.name[: -len(".h5")].rpartition(".")
            if stem.replace(" ", "_") == key:
                detections[camera] = read_h36m_detections(candidate)
        return {"subject": subject, "sequence": sequence, "action": sequence.split(" ")[0].split("_")[0],
                "positions_3d": read_h36m_positions(path), "detections_2d": detections}

    def cameras(self) -> dict:
        return read_h36m_cameras(self.base / "cameras.h5")
