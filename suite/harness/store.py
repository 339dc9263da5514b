"""Result store: cell files on disk, read into one tidy DataFrame (one row per measured value).

Every file the harness writes (cells, metrics, report pages, plots) goes through one atomic
writer (:func:`atomic_write`): a temporary file in the same folder, fsync, then a rename, with the
permissions the user's umask gives a new file (a teammate sharing the results folder can read
it). A write that fails (full disk, read-only folder) raises :class:`StoreError` naming the path.

A cell file that cannot be used (unreadable bytes, not UTF-8, not JSON, nested too deep, JSON of
the wrong shape) is reported once per process on stderr by name and treated as absent: ``run``
computes it again (and replaces the file), ``report`` leaves it out. A cell file this user may
not read raises :class:`StoreError`: a permission problem is reported, never taken for an
absent result.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import pandas as pd

from .records import Record

CELL_DIR = "cells"
RECORD_COLUMNS = [
    "paper", "table", "row", "column", "metric", "value", "std", "n", "unit", "higher_is_better",
    "device", "step", "note",
]
CELL_COLUMNS = ["experiment", "key", "profile", "seed", "status", "device_class", "cell", "git_commit", "host"]
CELL_STATUSES = ("ok", "not_run", "failed")
# A cell file is a few kB to a few MB (curves); anything far larger is not one of ours.
MAX_CELL_BYTES = 256 * 2**20


class StoreError(OSError):
    """A results or report file could not be written or read; the message names the path and why."""

    def __init__(self, path: os.PathLike | str, problem: str, error_number: int | None = None):
        self.path = Path(path)
        self.problem = problem
        super().__init__(error_number or 0, problem, str(path))

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def __reduce__(self):  # raised in a -j worker, it is pickled back to the driver
        return (type(self), (str(self.path), self.problem, self.errno or None))


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _problem(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno == errno.EROFS:
        return "the file system is read-only"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return error.strerror or str(error)


@contextlib.contextmanager
def atomic_write(path: os.PathLike | str, mode: str = "w", *, newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit fsync it and rename it
    over ``path`` (readers see the old file or the new one, never half of one).

    The file gets the permissions a plain ``open(path, "w")`` would give (``0o666 & ~umask``;
    ``mkstemp`` alone leaves 0600). A killed writer leaves at most a hidden ``.tmp`` file that
    loaders ignore; any other failure removes it.

    Args:
        path: the file to write.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
        newline: as ``open``'s (``""`` for the csv module), text mode only.

    Raises:
        StoreError: the folder cannot be created or written (permission, read-only, full disk),
            naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise StoreError(path, f"cannot write ({_problem(error)})", error.errno) from error
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": newline} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError) and not isinstance(error, StoreError):
            raise StoreError(path, f"cannot write ({_problem(error)})", error.errno) from error
        raise


def write_text_atomic(path: os.PathLike | str, text: str) -> None:
    """:func:`atomic_write` of a text (UTF-8)."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_bytes_atomic(path: os.PathLike | str, data: bytes) -> None:
    """:func:`atomic_write` of bytes."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through :func:`atomic_write` (indent 1, sorted keys)."""
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, default=str)


def write_json_if_changed(path: Path, payload: Any) -> bool:
    """Write JSON atomically unless ``path`` already holds exactly that content.

    A rerun that changes nothing then writes nothing, so a read-only results folder whose
    cells are all cached still works. Returns whether the file was written.
    """
    text = json.dumps(payload, indent=1, sort_keys=True, default=str)
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return False
    except (OSError, ValueError):
        pass  # absent or unreadable: write it
    write_text_atomic(path, text)
    return True


def cell_path(results: Path, key: str) -> Path:
    return Path(results) / CELL_DIR / f"{key}.json"


_REPORTED: set[tuple[str, str]] = set()


def _report_unusable(path: Path, problem: str) -> None:
    """One stderr line per unusable cell file and process (a run reads the folder several times)."""
    if (str(path), problem) in _REPORTED:
        return
    _REPORTED.add((str(path), problem))
    print(f"energybench: ignoring the cell file {path}: {problem}; it counts as absent "
          "(`run` computes it again, `report` leaves it out)", file=sys.stderr, flush=True)


def cell_problem(data: Any, path: Path | None = None) -> str | None:
    """What is wrong with the shape of a parsed cell file, or None when it is usable."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    expected = {"key": str, "experiment": str, "profile": str, "status": str, "device_class": str, "cell": dict,
                "records": list}
    for name, kind in expected.items():
        if not isinstance(data.get(name), kind):
            return f"field {name!r}: expected {kind.__name__}, got {type(data.get(name)).__name__}"
    if isinstance(data.get("seed"), bool) or not isinstance(data.get("seed"), int):
        return f"field 'seed': expected an integer, got {data.get('seed')!r}"
    if data["status"] not in CELL_STATUSES:
        return f"field 'status': expected one of {CELL_STATUSES}, got {data['status']!r}"
    if path is not None and data["key"] != path.stem:
        return f"its key {data['key'][:40]!r} is not its file name"
    if not isinstance(data.get("provenance", {}), dict):
        return "field 'provenance': expected an object"
    for i, record in enumerate(data["records"]):
        if not isinstance(record, dict):
            return f"records[{i}]: expected an object"
        try:
            Record.from_dict(record)
        except (TypeError, ValueError, OverflowError) as error:
            return f"records[{i}]: {error}"
    return None


def read_cell(path: Path) -> dict[str, Any] | None:
    """A cell file's content, or None when it is absent or unusable (reported once by name).

    Raises:
        StoreError: the file exists but this user may not read it (or another I/O error):
            never taken for an absent result.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CELL_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        _report_unusable(path, "a folder, not a file")
        return None
    except OSError as error:
        raise StoreError(path, f"cannot read the cell file ({_problem(error)}); make the results folder readable "
                         "(e.g. chmod -R g+r) or pass another --results", error.errno) from error
    if len(raw) > MAX_CELL_BYTES:
        _report_unusable(path, f"larger than {MAX_CELL_BYTES // 2**20} MB, not a cell file")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        _report_unusable(path, "not UTF-8 text")
        return None
    except RecursionError:
        _report_unusable(path, "JSON nested too deeply")
        return None
    except ValueError as error:
        _report_unusable(path, f"not valid JSON ({error})")
        return None
    problem = cell_problem(data, path)
    if problem is not None:
        _report_unusable(path, problem)
        return None
    return data


def load_cells(results: Path) -> list[dict[str, Any]]:
    """Every usable cell under ``results/cells`` (unusable files are reported and left out).

    Raises:
        StoreError: ``results`` is a file, or a cell file cannot be read for lack of permission.
    """
    results = Path(results)
    if results.exists() and not results.is_dir():
        raise StoreError(results, "the results folder is a file, not a folder (pass another --results)")
    folder = results / CELL_DIR
    if not folder.is_dir():
        return []
    try:
        paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    except OSError as error:
        raise StoreError(folder, f"cannot list the cell files ({_problem(error)})", error.errno) from error
    cells = (read_cell(p) for p in paths)
    return [c for c in cells if c is not None]


def frame(results: Path | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """All records of all cells as one DataFrame; cell-level fields repeated on each row."""
    cells = load_cells(results) if isinstance(results, (str, Path)) else list(results)
    rows = []
    for cell in cells:
        prov = cell.get("provenance", {})
        shared = {
            "experiment": cell["experiment"], "key": cell["key"], "profile": cell["profile"],
            "seed": cell["seed"], "status": cell["status"], "device_class": cell["device_class"],
            "cell": json.dumps(cell["cell"], sort_keys=True), "git_commit": prov.get("git_commit"),
            "host": prov.get("host"),
        }
        for rec in cell.get("records", []):
            rows.append({**Record.from_dict(rec).to_dict(), **shared})
    df = pd.DataFrame(rows, columns=RECORD_COLUMNS + CELL_COLUMNS)
    return df.astype({"value": "float64", "std": "float64"})
