"""Fixtures of the LSM tests: the generated sets at the smoke profile, built once per session."""
from __future__ import annotations

import pytest

GENERATED = ["mini-masks", "mini-video", "mini-stereo", "mini-flow", "middlebury2014-motorcycle"]


@pytest.fixture(scope="session")
def lsm_data():
    """Build the generated sets the LSM experiments read into the session's data root."""
    from suite.data import manage, registry

    root = registry.data_roots()[0]
    missing = [d for d in GENERATED if not (root / d).is_dir()]
    if missing:
        manage.build(profile="smoke", root=root, seed=0, progress=False, workers=1, record=False, datasets=missing)
    return root


class Ctx:
    """The parts of a harness context the data functions use."""

    def __init__(self, settings, datasets, seed=0, profile="smoke"):
        from suite.harness.context import DataAccess

        self.settings, self.seed, self.profile, self.device = dict(settings), seed, profile, "cpu"
        self.data = DataAccess(datasets)
        self.progress = lambda iterable=None, **_: iterable


@pytest.fixture
def smoke_ctx(lsm_data):
    from reproductions.lsm.settings import PROFILES

    def make(**overrides):
        return Ctx({**PROFILES["smoke"], **overrides}, GENERATED + ["grabcut", "gsc-scribbles", "davis2016"])

    return make
