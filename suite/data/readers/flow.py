"""Optical flow and stereo formats: Middlebury ``.flo``, ``.pfm``, KITTI 16-bit PNG, and the
dataset layouts that use them (Middlebury flow, MPI-Sintel, FlyingChairs, FlyingThings3D,
KITTI 2015, Middlebury 2014 / ETH3D two-view stereo).

Conventions: flow is (H, W, 2) float32 with channel 0 = horizontal u (x_2 = x_1 + u) and
channel 1 = vertical v; disparity is (H, W) float32, positive, with x_right = x_left - d for
the left view (``disp0``) and x_left = x_right + d for the right view (``disp1``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._common import (
    LayoutError,
    LazySequence,
    MalformedFileError,
    PathLike,
    check_payload_size,
    imread_unchanged,
    read_bytes,
    read_errors,
    read_image,
    sorted_glob,
)

FLO_MAGIC = 202021.25
FLO_UNKNOWN_THRESHOLD = 1e9
_MAX_SIDE = 1 << 16


# --------------------------------------------------------------------------- .flo


def read_flo(path: PathLike) -> np.ndarray:
    """Read a Middlebury ``.flo`` file.

    Format: float32 magic 202021.25 ("PIEH"), int32 width, int32 height, then
    ``height * width * 2`` little-endian float32 values, u and v interleaved, row-major.
    Unknown flow is stored as about 1e9 (see :func:`flow_valid`).

    Returns:
        flow: (H, W, 2) float32, raw values (unknown entries kept as stored).

    Raises:
        MalformedFileError: bad magic, implausible size, or truncated payload.
    """
    data = read_bytes(path, minimum=12)
    magic = np.frombuffer(data, "<f4", count=1)[0]
    if magic != np.float32(FLO_MAGIC):
        raise MalformedFileError(path, f"bad .flo magic {data[:4]!r} (expected b'PIEH' = 202021.25)")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
        raise MalformedFileError(path, f"implausible .flo size {width}x{height}")
    check_payload_size(path, len(data) - 12, width * height * 8, f"{width}x{height}x2 float32")
    return np.frombuffer(data, "<f4", count=width * height * 2, offset=12).reshape(height, width, 2).copy()


def write_flo(path: PathLike, flow: np.ndarray) -> None:
    """Write (H, W, 2) flow as a Middlebury ``.flo`` file (little-endian float32)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow: expected shape (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    Path(path).write_bytes(header + np.ascontiguousarray(flow, "<f4").tobytes())


def flow_valid(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: finite flow with |u| and |v| not above 1e9 (Middlebury's unknown marker)."""
    return np.isfinite(flow).all(axis=-1) & (np.abs(flow) <= FLO_UNKNOWN_THRESHOLD).all(axis=-1)


# --------------------------------------------------------------------------- .pfm

_PFM_HEADER = re.compile(rb"^(PF|Pf)\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s")


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a Portable Float Map, returning rows top-down.

    Format: ``PF`` (3 channels) or ``Pf`` (1 channel), width and height, a scale whose sign
    gives the byte order (negative = little-endian), one whitespace byte, then float32 rows
    stored **bottom-up**.

    Returns:
        (H, W) float32 for ``Pf``, (H, W, 3) float32 for ``PF``; rows flipped to top-down.

    Raises:
        MalformedFileError: bad header or truncated payload.
    """
    data = read_bytes(path, minimum=8)
    match = _PFM_HEADER.match(data[:256])
    if match is None:
        raise MalformedFileError(path, f"bad PFM header {data[:16]!r} (expected 'PF' or 'Pf', width, height, scale)")
    channels = 3 if match.group(1) == b"PF" else 1
    width, height = int(match.group(2)), int(match.group(3))
    try:
        scale = float(match.group(4))
    except ValueError as error:
        raise MalformedFileError(path, f"bad PFM scale {match.group(4)!r}") from error
    if scale == 0 or not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
        raise MalformedFileError(path, f"bad PFM header values: size {width}x{height}, scale {scale}")
    offset = match.end()
    count = width * height * channels
    # slack 3: a trailing newline some writers add, never a whole extra value
    check_payload_size(path, len(data) - offset, count * 4, f"{width}x{height}x{channels} float32", slack=3)
    dtype = "<f4" if scale < 0 else ">f4"
    array = np.frombuffer(data, dtype, count=count, offset=offset).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(array.reshape(shape)[::-1])


def write_pfm(path: PathLike, array: np.ndarray) -> None:
    """Write (H, W) or (H, W, 3) float32 as little-endian PFM (rows stored bottom-up)."""
    array = np.asarray(array, np.float32)
    if array.ndim == 2:
        tag = b"Pf"
    elif array.ndim == 3 and array.shape[2] == 3:
        tag = b"PF"
    else:
        raise ValueError(f"array: expected shape (H, W) or (H, W, 3), got {array.shape}")
    height, width = array.shape[:2]
    header = tag + b"\n" + f"{width} {height}\n-1\n".encode()
    Path(path).write_bytes(header + np.ascontiguousarray(array[::-1], "<f4").tobytes())


# --------------------------------------------------------------------------- KITTI PNG


def read_kitti_flow(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI 16-bit RGB flow PNG.

    u = (R - 2^15) / 64, v = (G - 2^15) / 64, valid = B > 0. Decoded with OpenCV
    ``IMREAD_UNCHANGED`` (PIL would reduce 16-bit RGB to 8 bits); OpenCV gives BGR order.

    Returns:
        flow (H, W, 2) float32, valid (H, W) bool.

    Raises:
        MalformedFileError: not a 16-bit 3-channel PNG.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"KITTI flow file not found: {path}")
    bgr = imread_unchanged(path)  # bombs, FIFOs and cv2.error: a MalformedFileError naming the file
    if bgr.dtype != np.uint16 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise MalformedFileError(
            path, f"KITTI flow must be a 16-bit 3-channel PNG, got dtype {bgr.dtype} shape {bgr.shape}"
        )
    flow = (bgr[..., [2, 1]].astype(np.float32) - 2**15) / 64.0
    valid = bgr[..., 0] > 0
    flow[~valid] = 0.0
    return flow, valid


def write_kitti_flow(path: PathLike, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write flow as a KITTI 16-bit PNG (values clipped to the representable +-512 px)."""
    import cv2

    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow: expected shape (H, W, 2), got {flow.shape}")
    if valid is None:
        valid = flow_valid(flow)
    encoded = np.clip(np.round(np.nan_to_num(flow) * 64.0 + 2**15), 0, 65535).astype(np.uint16)
    bgr = np.dstack([np.asarray(valid, np.uint16), encoded[..., 1], encoded[..., 0]])
    bgr[~np.asarray(valid, bool), 1:] = 0
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")


def read_kitti_disparity(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI disparity PNG: uint16 / 256, 0 = no ground truth.

    Returns:
        disparity (H, W) float32, valid (H, W) bool.

    Raises:
        MalformedFileError: not a single-channel 16-bit PNG.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"KITTI disparity file not found: {path}")
    raw = imread_unchanged(path)  # bombs, FIFOs and cv2.error: a MalformedFileError naming the file
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise MalformedFileError(
            path, f"KITTI disparity must be a single-channel 16-bit PNG, got dtype {raw.dtype} shape {raw.shape}"
        )
    return raw.astype(np.float32) / 256.0, raw > 0


def write_kitti_disparity(path: PathLike, disparity: np.ndarray) -> None:
    """Write disparity as KITTI uint16 PNG (d * 256; non-finite or <= 0 stored as 0 = invalid)."""
    import cv2

    disparity = np.asarray(disparity, np.float64)
    good = np.isfinite(disparity) & (disparity > 0)
    raw = np.where(good, np.clip(np.round(np.nan_to_num(disparity) * 256.0), 1, 65535), 0).astype(np.uint16)
    if not cv2.imwrite(str(path), raw):
        raise OSError(f"could not write {path}")


# --------------------------------------------------------------------------- calib.txt


def read_middlebury_calib(path: PathLike) -> dict:
    """Parse a Middlebury 2014 / ETH3D ``calib.txt`` (``key=value`` lines, ``cam0=[f 0 cx; ...]``).

    Returns:
        dict with ``cam0``/``cam1`` as (3, 3) float64 arrays and numbers for the other keys.
    """
    text = read_bytes(path).decode("utf-8", errors="replace")
    calib: dict = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if "=" not in line:
            raise MalformedFileError(path, f"line {number}: expected key=value, got {line!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if value.startswith("["):
            rows = [r.split() for r in value.strip("[]").split(";")]
            try:
                matrix = np.array([[float(v) for v in row] for row in rows])
            except ValueError as error:
                raise MalformedFileError(path, f"line {number}: bad matrix {value!r}") from error
            if matrix.shape != (3, 3):
                raise MalformedFileError(path, f"line {number}: {key} must be 3x3, got {matrix.shape}")
            calib[key] = matrix
        else:
            try:
                number_value = float(value)
            except ValueError as error:
                raise MalformedFileError(path, f"line {number}: {key} is not a number: {value!r}") from error
            calib[key] = int(number_value) if number_value.is_integer() and key != "baseline" else number_value
    return calib


def write_middlebury_calib(path: PathLike, calib: dict) -> None:
    lines = []
    for key, value in calib.items():
        if isinstance(value, np.ndarray):
            rows = "; ".join(" ".join(f"{v:g}" for v in row) for row in value)
            lines.append(f"{key}=[{rows}]")
        else:
            lines.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    Path(path).write_text("\n".join(lines) + "\n")


def _read_mask(path: Path) -> np.ndarray:
    mask = read_image(path, grey=True)
    return mask > 127


# --------------------------------------------------------------------------- datasets


class MiddleburyFlow(LazySequence):
    """Middlebury optical flow: ``other-data/<Seq>/frame10.png, frame11.png`` and, where ground
    truth exists, ``other-gt-flow/<Seq>/flow10.flo``. Samples: image1, image2, flow (or None),
    valid (or None), name."""

    layout = "other-data/<Seq>/frame10.png, frame11.png; other-gt-flow/<Seq>/flow10.flo (optional)"

    def __init__(self, root: PathLike, *, require_flow: bool = False):
        super().__init__(root)
        for frame10 in sorted_glob(self.root, "other-data/*/frame10.png"):
            name = frame10.parent.name
            flow = self.root / "other-gt-flow" / name / "flow10.flo"
            if require_flow and not flow.is_file():
                continue
            self.items.append((name, frame10, frame10.with_name("frame11.png"), flow))
        self._require_items("sequences")

    def load(self, item):
        name, first, second, flow_path = item
        flow = read_flo(flow_path) if flow_path.is_file() else None
        return {
            "name": name,
            "image1": read_image(first),
            "image2": read_image(second),
            "flow": flow,
            "valid": None if flow is None else flow_valid(flow),
        }


class Sintel(LazySequence):
    """MPI-Sintel: ``<split>/{clean,final}/<seq>/frame_%04d.png``, ``flow/<seq>/frame_%04d.flo``
    (frame i to i+1), ``occlusions/`` and ``invalid/`` PNGs (255 = occluded / invalid).
    Only pairs with ground-truth flow are listed for the training split."""

    layout = "training/{clean,final}/<seq>/frame_0001.png ..., training/flow/<seq>/frame_0001.flo, occlusions/, invalid/"

    def __init__(self, root: PathLike, *, split: str = "training", pass_name: str = "clean"):
        super().__init__(root)
        if pass_name not in ("clean", "final"):
            raise ValueError(f"pass_name: expected 'clean' or 'final', got {pass_name!r}")
        base = self.root / split if (self.root / split).is_dir() else self.root
        self.base, self.pass_name = base, pass_name
        for frame in sorted_glob(base, f"{pass_name}/*/frame_*.png"):
            index = int(frame.stem.split("_")[1])
            following = frame.with_name(f"frame_{index + 1:04d}.png")
            flow = base / "flow" / frame.parent.name / f"{frame.stem}.flo"
            if following.is_file() and (flow.is_file() or split != "training"):
                self.items.append((frame.parent.name, index, frame, following, flow))
        self._require_items(f"'{pass_name}' frame pairs with flow")

    def load(self, item):
        sequence, index, first, second, flow_path = item
        sample = {"name": f"{sequence}/frame_{index:04d}", "image1": read_image(first), "image2": read_image(second)}
        if flow_path.is_file():
            sample["flow"] = read_flo(flow_path)
            for key in ("occlusions", "invalid"):
                mask = self.base / key / sequence / f"frame_{index:04d}.png"
                sample[key] = _read_mask(mask) if mask.is_file() else None
            valid = flow_valid(sample["flow"])
            if sample["invalid"] is not None:
                valid &= ~sample["invalid"]
            sample["valid"] = valid
        return sample


class FlyingChairs(LazySequence):
    """FlyingChairs: release naming ``data/00001_img1.ppm, 00001_img2.ppm, 00001_flow.flo``
    (numbered from 1) or the examples naming ``0000000-img0.ppm, -img1.ppm, -gt.flo``
    (numbered from 0); PNG images and ``*_occ.png`` occlusions (255 = occluded) are also
    accepted. The official split list (``FlyingChairs_train_val.txt`` or
    ``*split*.list``: one line per sample, 1 = train, 2 = validation) selects ``split``."""

    layout = "data/NNNNN_img1.ppm, NNNNN_img2.ppm, NNNNN_flow.flo (+ NNNNN_occ.png); FlyingChairs_train_val.txt"
    _NAMINGS = (("_img1", "_img2", "_flow.flo", "_occ.png", 1), ("-img0", "-img1", "-gt.flo", "-occ.png", 0))

    def __init__(self, root: PathLike, *, split: str | None = None, split_file: PathLike | None = None):
        super().__init__(root)
        if split not in (None, "train", "val"):
            raise ValueError(f"split: expected None, 'train' or 'val', got {split!r}")
        for first_tag, second_tag, flow_tag, occ_tag, first_number in self._NAMINGS:
            for ext in ("ppm", "png"):
                for first in sorted_glob(self.root, f"**/*{first_tag}.{ext}"):
                    prefix = first.name[: -len(f"{first_tag}.{ext}")]
                    if not prefix.isdigit():
                        continue
                    self.items.append(
                        (
                            int(prefix) - first_number,
                            first,
                            first.with_name(f"{prefix}{second_tag}.{ext}"),
                            first.with_name(prefix + flow_tag),
                            first.with_name(prefix + occ_tag),
                        )
                    )
        self.items.sort(key=lambda item: (item[0], str(item[1])))
        self._require_items("image pairs")
        if split is not None:
            labels = self.read_split_list(split_file or self._find_split_file())
            wanted = 1 if split == "train" else 2
            for index, *_ in self.items:
                if index >= len(labels):
                    raise LayoutError(self.root, f"split list has {len(labels)} entries, sample {index} is beyond it")
            self.items = [item for item in self.items if labels[item[0]] == wanted]

    def _find_split_file(self) -> Path:
        for pattern in ("**/*train_val*.txt", "**/*split*.list", "**/*split*.txt"):
            found = sorted_glob(self.root, pattern)
            if found:
                return found[0]
        raise LayoutError(self.root, "split requested but no split list found", self.layout)

    @staticmethod
    def read_split_list(path: PathLike) -> np.ndarray:
        """The official split list: one integer per line, 1 = training, 2 = validation."""
        text = read_bytes(path).decode("ascii", errors="replace").split()
        try:
            labels = np.array([int(v) for v in text], np.int64)
        except ValueError as error:
            raise MalformedFileError(path, "split list must hold one integer (1 or 2) per line") from error
        if not np.isin(labels, (1, 2)).all():
            raise MalformedFileError(path, f"split list values must be 1 or 2, found {sorted(set(labels.tolist()))}")
        return labels

    def load(self, item):
        index, first, second, flow_path, occ_path = item
        flow = read_flo(flow_path)
        return {
            "name": f"{index:05d}",
            "image1": read_image(first),
            "image2": read_image(second),
            "flow": flow,
            "valid": flow_valid(flow),
            "occlusions": _read_mask(occ_path) if occ_path.is_file() else None,
        }


class FlyingThings3D(LazySequence):
    """FlyingThings3D (scene flow datasets, Mayer et al. 2016) with its own ``TRAIN`` / ``TEST``
    folders, minus the frames listed in ``all_unused_files.txt`` (when present and
    ``exclude_unused``): the frames the DispNet / FlowNet 2.0 authors left out.

    Layout: ``frames_{cleanpass,finalpass}/<TRAIN|TEST>/<A|B|C>/<seq>/{left,right}/NNNN.png``,
    ``disparity/<...>/{left,right}/NNNN.pfm`` and, for flow,
    ``optical_flow/<...>/into_future/{left,right}/OpticalFlowIntoFuture_NNNN_{L,R}.pfm``.
    ``task='disparity'`` yields ``left``, ``right``, ``disparity`` (of the left view) and, when
    ``disparity/.../right/NNNN.pfm`` is present, ``disparity_right`` (of the right view);
    ``task='flow'`` yields the left-view frames t, t+1 and the forward flow (channel 3 of the PFM
    dropped). LSM's split (the CRL protocol) is :class:`suite.data.readers.lsm_sets.FlyingThings3DCRL`.

    Args:
        root: the dataset folder.
        split: ``"TRAIN"`` or ``"TEST"``.
        task: ``"disparity"`` or ``"flow"``.
        pass_name: ``"cleanpass"`` or ``"finalpass"``.
        exclude_unused: leave out the frames ``all_unused_files.txt`` lists.

    Raises:
        LayoutError: no frame of the split, or a frame without its disparity / flow file (named).
    """

    layout = "frames_cleanpass/TRAIN/A/0000/left/0006.png; disparity/TRAIN/A/0000/left/0006.pfm; optical_flow/..."

    def __init__(self, root: PathLike, *, split: str = "TRAIN", task: str = "disparity", pass_name: str = "cleanpass",
                 exclude_unused: bool = True):
        super().__init__(root)
        if task not in ("disparity", "flow"):
            raise ValueError(f"task: expected 'disparity' or 'flow', got {task!r}")
        if split not in ("TRAIN", "TEST"):
            raise ValueError(f"split: expected 'TRAIN' or 'TEST', got {split!r}")
        if pass_name not in ("cleanpass", "finalpass"):
            raise ValueError(f"pass_name: expected 'cleanpass' or 'finalpass', got {pass_name!r}")
        self.task, self.split = task, split
        unused = self._unused() if exclude_unused else set()
        frames = self.root / f"frames_{pass_name}" / split
        for left in sorted_glob(frames, "*/*/left/*.png"):
            relative = left.relative_to(self.root / f"frames_{pass_name}")
            if str(relative) in unused or str(relative.relative_to(split)) in unused:
                continue
            letter, sequence = left.parts[-4], left.parts[-3]
            number = left.stem
            if task == "disparity":
                disparity = self.root / "disparity" / split / letter / sequence / "left" / f"{number}.pfm"
                self.items.append((str(relative), left, left.parent.parent / "right" / left.name, disparity))
            else:
                following = left.with_name(f"{int(number) + 1:04d}.png")
                flow = (
                    self.root / "optical_flow" / split / letter / sequence / "into_future" / "left"
                    / f"OpticalFlowIntoFuture_{number}_L.pfm"
                )
                if following.is_file():
                    self.items.append((str(relative), left, following, flow))
        self._require_items(f"{split} {task} samples")
        # a frame without its ground truth is a broken download: say which, before a long run
        missing = [str(item[3].relative_to(self.root)) for item in self.items if not item[3].is_file()]
        if missing:
            raise LayoutError(self.root, f"{len(missing)} {split} frames have no {task} file (e.g. {missing[:3]})",
                              self.layout)

    def _unused(self) -> set[str]:
        path = self.root / "all_unused_files.txt"
        if not path.is_file():
            return set()
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}

    def load(self, item):
        name, first, second, target = item
        if self.task == "disparity":
            sample = {"name": name, "left": read_image(first), "right": read_image(second),
                      "disparity": read_disparity_pfm(target)}
            right = target.parent.parent / "right" / target.name
            if right.is_file():
                sample["disparity_right"] = read_disparity_pfm(right)
            return sample
        flow = read_pfm(target)
        if flow.ndim != 3:
            raise MalformedFileError(target, "flow PFM must have 3 channels ('PF')")
        return {"name": name, "image1": read_image(first), "image2": read_image(second), "flow": flow[..., :2].copy()}


def read_disparity_pfm(path: Path) -> np.ndarray:
    """A single-channel PFM disparity map ``(H, W)`` float32 (FlyingThings3D's ``disparity/``).

    Raises:
        MalformedFileError: not a single-channel ('Pf') PFM.
    """
    disparity = read_pfm(path)
    if disparity.ndim != 2:
        raise MalformedFileError(path, "disparity PFM must be single-channel ('Pf')")
    return disparity


class Kitti2015(LazySequence):
    """KITTI 2015 scene flow: ``training/image_2/NNNNNN_10.png, NNNNNN_11.png``, ``image_3/``
    (right), ``flow_occ/NNNNNN_10.png`` (16-bit flow with valid channel) and
    ``disp_occ_0/NNNNNN_10.png`` (uint16 / 256). ``task`` is 'flow' or 'disparity'."""

    layout = "training/image_2/000000_10.png, _11.png; training/image_3/; training/flow_occ/; training/disp_occ_0/"

    def __init__(self, root: PathLike, *, task: str = "flow", split: str = "training", occ: bool = True):
        super().__init__(root)
        if task not in ("flow", "disparity"):
            raise ValueError(f"task: expected 'flow' or 'disparity', got {task!r}")
        self.task = task
        base = self.root / split if (self.root / split).is_dir() else self.root
        suffix = "occ" if occ else "noc"
        for first in sorted_glob(base, "image_2/*_10.png"):
            number = first.stem[:-3]
            if task == "flow":
                target = base / f"flow_{suffix}" / first.name
                self.items.append((number, first, first.with_name(f"{number}_11.png"), target))
            else:
                target = base / f"disp_{suffix}_0" / first.name
                self.items.append((number, first, base / "image_3" / first.name, target))
        self._require_items("image_2/*_10.png frames")

    def load(self, item):
        number, first, second, target = item
        if self.task == "flow":
            sample = {"name": number, "image1": read_image(first), "image2": read_image(second)}
            if target.is_file():
                sample["flow"], sample["valid"] = read_kitti_flow(target)
            return sample
        sample = {"name": number, "left": read_image(first), "right": read_image(second)}
        if target.is_file():
            sample["disparity"], sample["valid"] = read_kitti_disparity(target)
        return sample


class MiddleburyStereo(LazySequence):
    """Middlebury 2014 / ETH3D two-view layout: ``<scene>/im0.png, im1.png, disp0GT.pfm``
    (or ``disp0.pfm``), optional ``disp1GT.pfm``, ``mask0nocc.png`` (255 non-occluded, 128
    occluded, 0 no ground truth), ``calib.txt``. Disparity inf = no ground truth.
    The generated ``mini-stereo`` and ``middlebury2014-motorcycle`` sets use this layout."""

    layout = "<scene>/im0.png, im1.png, disp0GT.pfm (or disp0.pfm), [disp1GT.pfm, mask0nocc.png, mask1nocc.png, calib.txt]"

    def __init__(self, root: PathLike):
        super().__init__(root)
        scenes = sorted({p.parent for p in self.root.glob("**/im0.png")})
        self.items = [scene for scene in scenes if (scene / "im1.png").is_file()]
        self._require_items("scenes with im0.png and im1.png")

    def load(self, scene: Path):
        sample = {"name": str(scene.relative_to(self.root)), "left": read_image(scene / "im0.png"),
                  "right": read_image(scene / "im1.png")}
        for view in ("0", "1"):
            for name in (f"disp{view}GT.pfm", f"disp{view}.pfm"):
                if (scene / name).is_file():
                    disparity = read_pfm(scene / name)
                    if disparity.ndim != 2:
                        raise MalformedFileError(scene / name, "disparity PFM must be single-channel ('Pf')")
                    key = "disparity" if view == "0" else "disparity_right"
                    sample[key] = disparity
                    sample[f"valid{'' if view == '0' else '_right'}"] = np.isfinite(disparity)
                    break
            mask = scene / f"mask{view}nocc.png"
            if mask.is_file():
                raw = read_image(mask, grey=True)
                key = "nonoccluded" if view == "0" else "nonoccluded_right"
                sample[key] = raw == 255
        if (scene / "calib.txt").is_file():
            sample["calib"] = read_middlebury_calib(scene / "calib.txt")
        return sample


def read_motorcycle_npz(path: PathLike) -> np.ndarray:
    """The disparity of scikit-image's Middlebury-2014 Motorcycle sample (``arr_0``; inf = no GT)."""
    path = Path(path)
    try:
        with np.load(path) as archive:
            disparity = archive["arr_0"]
    except read_errors() as error:  # a truncated archive raises zipfile.BadZipFile or EOFError
        raise MalformedFileError(path, f"expected an .npz with array 'arr_0' ({type(error).__name__}: {error})") from error
    if disparity.ndim != 2:
        raise MalformedFileError(path, f"disparity must be 2-D, got shape {disparity.shape}")
    return disparity.astype(np.float32)
