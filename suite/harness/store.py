"""Result store: cell files on disk, read into one tidy DataFrame (one row per measured value)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .records import Record

CELL_DIR = "cells"
RECORD_COLUMNS = [
    "paper", "table", "row", "column", "metric", "value", "std", "n", "unit", "higher_is_better",
    "device", "step", "note",
]
CELL_COLUMNS = ["experiment", "key", "profile", "seed", "status", "device_class", "cell", "git_commit", "host"]


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A reader sees the old file or the new one, never half of one; a killed writer leaves at
    most a ``.tmp`` file that loaders ignore.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def cell_path(results: Path, key: str) -> Path:
    return Path(results) / CELL_DIR / f"{key}.json"


def read_cell(path: Path) -> dict[str, Any] | None:
    """A cell file's content, or None when it is unreadable (reported, never fatal)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "key" in data else None


def load_cells(results: Path) -> list[dict[str, Any]]:
    folder = Path(results) / CELL_DIR
    if not folder.is_dir():
        return []
    cells = (read_cell(p) for p in sorted(folder.glob("*.json")))
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
