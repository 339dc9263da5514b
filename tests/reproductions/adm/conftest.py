"""Fixtures for the ADM tests: a smoke build of ``mini-masks`` and an isolated model cache."""
from __future__ import annotations

import pytest

from suite.harness.context import Context, DataAccess


@pytest.fixture(scope="session")
def smoke_masks(tmp_path_factory):
    """``mini-masks`` generated at the smoke profile into a temporary data root (built once)."""
    from suite.data import manage

    root = tmp_path_factory.mktemp("adm-data")
    manage.build(profile="smoke", root=root, seed=0, progress=False, datasets=["mini-masks"], workers=1,
                 record=False)
    return root


@pytest.fixture
def adm_env(smoke_masks, tmp_path, monkeypatch):
    """ENERGYBENCH_DATA = the smoke build; a private model cache and manifest cache."""
    monkeypatch.setenv("ENERGYBENCH_DATA", str(smoke_masks))
    monkeypatch.setenv("ENERGYBENCH_ADM_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    return smoke_masks


def make_context(profile: str = "smoke", datasets=("mini-masks",), seed: int = 0, table: str = "test", **overrides):
    from reproductions.adm.settings import PROFILES

    settings = {**PROFILES[profile], **overrides}
    return Context(paper="adm", table=table, profile=profile, settings=settings, device="cpu", seed=seed,
                   data=DataAccess(list(datasets)))
