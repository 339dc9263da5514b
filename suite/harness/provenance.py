"""Provenance of a cell: code, environment, hardware, data, and the command that ran it."""
from __future__ import annotations

import functools
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=None)
def git_state(cwd: str | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the code runs from (None outside a git checkout)."""
    where = cwd or str(Path(__file__).resolve().parents[2])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return {"git_commit": commit, "git_dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def device_class(device: str) -> str:
    """``cpu:<model>`` or ``cuda:<gpu name>``: results only compare within one class."""
    return f"{device.split(':')[0]}:{device_name(device)}"


def environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    return {
        **git_state(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": device,
        "device_name": device_name(device),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
        "platform": platform.platform(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def reset_peak_rss() -> bool:
    """Start a new resident-memory high-water mark, so that each cell reports its own peak and
    not the largest cell run before it in the same process. Linux only (``/proc/self/clear_refs``
    with 5 resets VmHWM); returns False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory in MiB since :func:`reset_peak_rss`
    (VmHWM), else over the whole process (``ru_maxrss``, KiB on Linux)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
