"""Shared test fixtures.

The real dataset samples live in ``../shared/data`` beside the repository root (or in the
folder named by ``ENERGYBENCH_SHARED_DATA``). They are never copied into the repository;
tests that need them skip with a reason where they are absent (a user's fresh machine).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import suite  # noqa: F401  -- sets OMP_WAIT_POLICY before any test module imports torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    return Path(os.environ.get("ENERGYBENCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data():
    """Return a function ``shared_data("bsds500")`` giving that sample folder, or skipping."""

    def locate(name: str) -> Path:
        path = shared_data_root() / name
        if not path.is_dir():
            pytest.skip(f"real data sample {name!r} not found at {path} (set ENERGYBENCH_SHARED_DATA)")
        return path

    return locate


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, skipped unless --runslow")
    config.addinivalue_line("markers", "gpu: needs CUDA, skipped when torch.cuda is unavailable")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    import torch

    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    skip_gpu = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def _private_data_root(tmp_path_factory):
    """Datasets that a test run generates go to a temporary folder, never into the checkout's data/,
    and the checkout's data/, results/ and caches are never read. A caller's own ENERGYBENCH_DATA
    and ENERGYBENCH_CACHE are replaced too: a user who exported them for their runs (the README's
    way to add real datasets) must get the same test results as one who did not, and no test
    model may land in their cache. Tests that need the real samples find them through
    ENERGYBENCH_SHARED_DATA (the ``shared_data`` fixture)."""
    from suite.data import manage, registry

    repo_data = tmp_path_factory.mktemp("repo-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENERGYBENCH_DATA", str(tmp_path_factory.mktemp("energybench-data")))
        patch.setenv("ENERGYBENCH_CACHE", str(tmp_path_factory.mktemp("energybench-cache")))
        # The checkout's data/ (what `energybench reproduce` built there) must not leak into the
        # tests: its fallback root becomes an empty folder of the test session.
        patch.setattr(registry, "default_data_root", lambda: repo_data)
        patch.setattr(manage, "default_data_root", lambda: repo_data)
        yield


#: Every skip for an absent real-data sample says this (the ``shared_data`` fixture and the tests
#: that look for a sample themselves): the closing line counts them.
REAL_DATA_SKIP = "(set ENERGYBENCH_SHARED_DATA)"


def pytest_terminal_summary(terminalreporter):
    """One line: how many tests skipped because the real-data samples are absent, and how to run them."""
    count = 0
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
        count += REAL_DATA_SKIP in message
    if count:
        terminalreporter.write_line(
            f"{count} test(s) skipped: the real-data samples are absent (looked in {shared_data_root()}); "
            "to run them, set ENERGYBENCH_SHARED_DATA=/path/to/shared/data (see tests/conftest.py)", yellow=True)
