"""Killing the driver of a ``-j N`` run (SIGTERM, SIGKILL: what ``timeout``, schedulers and CI
send) leaves no worker process behind; Ctrl-C and SIGTERM exit with one line.

Cases: SIGTERM and SIGKILL of a ``-j 2`` driver while both workers compute (2 runs), SIGINT to
the process group of a sequential run (1 run). Each starts the CLI in a subprocess (a few
seconds of imports on a loaded machine)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO, cli_command, cli_env


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find workers")


def _default_sigint() -> None:
    # A command started in the background by a non-interactive shell (`cmd &`, as CI scripts and
    # nohup wrappers do) inherits SIGINT ignored, and Python then leaves it ignored; a terminal
    # user's driver has the default, so give the child that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path: Path, *extra: str, **env: str) -> subprocess.Popen:
    command = cli_command("run", "toypaper.square", "--profile", "smoke", "--device", "cpu", "--results",
                          str(tmp_path / "results"), "--no-progress", *extra)
    return subprocess.Popen(command, env=cli_env(TOY_SLEEP="120", TOY_LOG=str(tmp_path / "log"), **env), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_driver_leaves_no_workers(tmp_path, signum):
    driver = _start(tmp_path, "-j", "2")
    workers: list[int] = []
    try:
        # both workers have started a cell (each cell appends to the log before sleeping)
        assert _wait_for(lambda: (tmp_path / "log").exists() and len((tmp_path / "log").read_text().split()) >= 2,
                         180), "the workers never started their cells"
        workers = [p for p in _children(driver.pid) if _alive(p)]
        assert len(workers) >= 2, f"expected 2 worker processes under the driver, found {workers}"
        driver.send_signal(signum)
        driver.wait(timeout=60)
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 15), \
            f"workers {[p for p in workers if _alive(p)]} outlived the driver ({signum.name})"
        if signum == signal.SIGTERM:
            stderr = driver.stderr.read()
            assert driver.returncode == 143, stderr
            assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr, stderr
        assert not list((tmp_path / "results" / "cells").glob("*.json")), "a cell was stored though none finished"
    finally:
        for pid in [driver.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        driver.wait(timeout=30)


def test_ctrl_c_exits_with_one_line(tmp_path):
    driver = _start(tmp_path)
    try:
        assert _wait_for(lambda: (tmp_path / "log").exists(), 180), "the cell never started"
        os.killpg(driver.pid, signal.SIGINT)  # a terminal sends it to the whole foreground group
        driver.wait(timeout=60)
        stderr = driver.stderr.read()
        assert driver.returncode == 130, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in stderr, stderr
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
