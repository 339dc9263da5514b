"""Shared fixtures of the leaderboard tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """The generated datasets the leaderboards score, built once at the smoke profile."""
    from suite.data import manage

    root = tmp_path_factory.mktemp("leaderboard-data")
    manage.build(profile="smoke", root=root, seed=0, progress=False, workers=1, record=False,
                 datasets=["mini-stereo", "mini-flow", "middlebury2014-motorcycle", "mini-denoise", "mini-edges"])
    return root
