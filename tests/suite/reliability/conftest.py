"""Shared helpers of the reliability tests (issue 16): each test generates many variants of one
class of fault and checks the one-line error or the clean recovery."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# no example database in the checkout (.hypothesis/ would be left beside the sources); the cases
# are generated afresh from hypothesis' seed each run, and their counts stay as each test states
settings.register_profile("energybench", database=None, print_blob=True)
settings.load_profile("energybench")

REPO = Path(__file__).resolve().parents[3]
TOY_PLUGIN = "tests.suite.harness.toy_experiments"


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "ENERGYBENCH_PLUGINS": TOY_PLUGIN, "PYTHONPATH": str(REPO), **extra}


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "suite.cli", *args]


def run_cli(*args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), env=cli_env(**extra), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def one_line(text: str) -> bool:
    """stderr of a refused command: one message line, no traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in text


@pytest.fixture
def fresh_reports():
    """Forget which unusable cell files were already reported (once per process)."""
    from suite.harness import store

    store._REPORTED.clear()
    yield
    store._REPORTED.clear()
