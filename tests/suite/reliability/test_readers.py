"""Every reader failure is a MalformedFileError naming the file; headers that declare fewer values
than the payload holds are refused; reading a FIFO never hangs.

Generated cases: .flo and .pfm with payloads from 16 bytes short to 16 bytes long (hypothesis,
40 each); 30 random byte strings under 6 image suffixes, both decoders; PNG and JPEG cut at 25
random points; decompression bombs (PNG headers declaring 10^8 to 10^10 pixels, 2 decoders);
.npz cut at 20 points; 10 readers on a FIFO; 7 broken OTB cfg.json files; 8 library errors x 4
item shapes escaping a reader's load."""
from __future__ import annotations

import io
import os
import signal
import struct
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suite.data import readers
from suite.data.readers import _common
from suite.data.readers import MalformedFileError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@contextmanager
def no_hang(seconds: int = 10):
    def alarm(signum, frame):
        raise TimeoutError(f"the reader blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _flo_bytes(width: int, height: int, extra: int) -> bytes:
    header = np.array([202021.25], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    payload = np.arange(width * height * 2, dtype="<f4").tobytes()
    return header + (payload + b"\x00" * extra if extra >= 0 else payload[:extra])


@settings(max_examples=40, **SETTINGS)
@given(width=st.integers(1, 9), height=st.integers(1, 9), extra=st.integers(-16, 16))
def test_flo_payload_must_match_its_header(tmp_path_factory, width, height, extra):
    path = tmp_path_factory.mktemp("flo") / "x.flo"
    data = _flo_bytes(width, height, extra)
    if extra < 0 and len(data) < 12:
        return
    path.write_bytes(data)
    if extra == 0:
        assert readers.read_flo(path).shape == (height, width, 2)
        return
    with pytest.raises(MalformedFileError, match="truncated" if extra < 0 else "more than") as raised:
        readers.read_flo(path)
    assert str(path) in str(raised.value)


@settings(max_examples=40, **SETTINGS)
@given(width=st.integers(1, 9), height=st.integers(1, 9), channels=st.sampled_from([1, 3]),
       extra=st.integers(-16, 16))
def test_pfm_payload_must_match_its_header(tmp_path_factory, width, height, channels, extra):
    path = tmp_path_factory.mktemp("pfm") / "x.pfm"
    header = f"{'PF' if channels == 3 else 'Pf'}\n{width} {height}\n-1.0\n".encode()
    payload = np.zeros(width * height * channels, "<f4").tobytes()
    path.write_bytes(header + (payload + b"\n" * extra if extra >= 0 else payload[:extra]))
    if 0 <= extra <= 3:  # a trailing newline some writers add
        assert readers.read_pfm(path).shape[:2] == (height, width)
        return
    with pytest.raises(MalformedFileError, match="truncated" if extra < 0 else "more than") as raised:
        readers.read_pfm(path)
    assert str(path) in str(raised.value)


@settings(max_examples=30, **SETTINGS)
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".png", ".jpg", ".ppm", ".bmp", ".tif", ".jpeg"]),
       unchanged=st.booleans())
def test_random_bytes_as_an_image(tmp_path_factory, data, suffix, unchanged):
    path = tmp_path_factory.mktemp("img") / f"x{suffix}"
    path.write_bytes(data)
    with pytest.raises(MalformedFileError) as raised:
        readers.read_image(path, unchanged=unchanged)
    assert str(path) in str(raised.value)


def _encoded(fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


ENCODED = {"PNG": _encoded("PNG"), "JPEG": _encoded("JPEG")}


@settings(max_examples=25, **SETTINGS)
@given(fmt=st.sampled_from(["PNG", "JPEG"]), cut=st.floats(0.0, 0.95), unchanged=st.booleans())
def test_truncated_images_fail_by_name(tmp_path_factory, fmt, cut, unchanged):
    data = ENCODED[fmt]
    path = tmp_path_factory.mktemp("cut") / f"x.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        readers.read_image(path, unchanged=unchanged)
    except MalformedFileError as error:
        assert str(path) in str(error)
    # OpenCV may decode a JPEG cut late into its scan as a partly grey image (libjpeg's choice);
    # anything but a MalformedFileError or an image is the defect this test looks for


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 20_000, 100_000])
@pytest.mark.parametrize("unchanged", [False, True], ids=["PIL", "OpenCV"])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, side, unchanged):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    with pytest.raises(MalformedFileError, match="too large|decompression bomb") as raised:
        readers.read_image(path, unchanged=unchanged)
    assert str(path) in str(raised.value)
    for read in (readers.read_indexed_png, readers.read_kitti_flow, readers.read_kitti_disparity):
        with pytest.raises(MalformedFileError, match="too large|decompression bomb"):
            read(path)


@settings(max_examples=20, **SETTINGS)
@given(cut=st.floats(0.05, 0.98))
def test_truncated_npz_fails_by_name(tmp_path_factory, cut):
    folder = tmp_path_factory.mktemp("npz")
    whole = folder / "whole.npz"
    np.savez(whole, arr_0=np.arange(500, dtype=np.float32).reshape(20, 25))
    data = whole.read_bytes()
    path = folder / "disparity.npz"
    path.write_bytes(data[: int(len(data) * cut)])
    for read in (_common.check_file, readers.read_motorcycle_npz):
        with pytest.raises(MalformedFileError) as raised:
            read(path)
        assert str(path) in str(raised.value)


FIFO_READERS = {
    "read_bytes": _common.read_bytes, "read_image": readers.read_image,
    "read_image_unchanged": lambda p: readers.read_image(p, unchanged=True), "read_indexed_png": readers.read_indexed_png,
    "read_flo": readers.read_flo, "read_pfm": readers.read_pfm, "read_json": _common.read_json,
    "check_file": _common.check_file, "read_kitti_flow": readers.read_kitti_flow,
    "read_kitti_disparity": readers.read_kitti_disparity,
}


@pytest.mark.parametrize("name", sorted(FIFO_READERS))
def test_reading_a_fifo_does_not_hang(tmp_path, name):
    suffix = {"read_flo": ".flo", "read_pfm": ".pfm", "read_json": ".json", "check_file": ".png"}.get(name, ".png")
    path = tmp_path / f"pipe{suffix}"
    os.mkfifo(path)
    with no_hang(), pytest.raises(MalformedFileError, match="FIFO") as raised:
        FIFO_READERS[name](path)
    assert str(path) in str(raised.value)


def _otb(tmp_path: Path) -> Path:
    from PIL import Image

    sequence = tmp_path / "otb" / "Toy"
    (sequence / "img").mkdir(parents=True)
    for frame in (1, 2, 3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(sequence / "img" / f"{frame:04d}.jpg")
    (sequence / "groundtruth_rect.txt").write_text("1,1,3,3\n2,2,3,3\n")
    return tmp_path / "otb"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"endFrame": 2}', b'{"startFrame": "abc", "endFrame": 2}',
                                     b'{"startFrame": null, "endFrame": 2}', b"\xff\xfe\x00", b"[" * 5000])
def test_broken_otb_cfg_json_names_the_file(tmp_path, content):
    root = _otb(tmp_path)
    cfg = root / "Toy" / "cfg.json"
    cfg.write_bytes(content)
    with pytest.raises(MalformedFileError) as raised:
        readers.OTB(root)[0]
    assert str(cfg) in str(raised.value)


def _cv2_error():
    import cv2

    return cv2.error("OpenCV(4.x) error: (-215:Assertion failed) !buf.empty()")


LIBRARY_ERRORS = {
    "cv2.error": _cv2_error, "BadZipFile": lambda: zipfile.BadZipFile("File is not a zip file"),
    "EOFError": lambda: EOFError("Ran out of input"), "KeyError": lambda: KeyError("arr_0"),
    "struct.error": lambda: struct.error("unpack requires a buffer of 4 bytes"),
    "UnicodeDecodeError": lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    "ValueError": lambda: ValueError("cannot reshape array"), "OSError": lambda: OSError(5, "I/O error"),
}


class _Failing(_common.LazySequence):
    def __init__(self, root, items, error):
        super().__init__(root)
        self.items, self.error = items, error

    def load(self, item):
        raise self.error()


@pytest.mark.parametrize("error", sorted(LIBRARY_ERRORS))
@pytest.mark.parametrize("shape", ["path", "tuple", "dict", "id"])
def test_library_errors_escaping_a_reader_name_the_file(tmp_path, error, shape):
    frame = tmp_path / "seq" / "0001.png"
    item = {"path": frame, "tuple": ("seq", frame), "dict": {"image": frame}, "id": "seq-0001"}[shape]
    dataset = _Failing(tmp_path, [item], LIBRARY_ERRORS[error])
    for read in (lambda: dataset[0], lambda: next(iter(dataset)), dataset.check):
        with pytest.raises(MalformedFileError) as raised:
            read()
        expected = str(frame) if shape != "id" else f"{tmp_path}: sample 'seq-0001'"
        assert str(raised.value).startswith(expected), str(raised.value)


def test_a_reader_constructor_failing_names_the_file(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xff\xfe not text")

    def reader(root):
        listing.read_text(encoding="utf-8")  # what a reader's constructor does with an index file

    with pytest.raises(MalformedFileError) as raised:
        _common.open_reader(reader, tmp_path)
    assert str(tmp_path) in str(raised.value) and "UnicodeDecodeError" in str(raised.value)
