"""Fixtures for the data tests: one smoke build shared by the module tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_manifest_cache(tmp_path_factory):
    """Keep the manifest sidecars these tests write out of the user's cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENERGYBENCH_CACHE", str(tmp_path_factory.mktemp("manifest-cache")))
        yield


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory, private_manifest_cache):
    """The generated datasets at the smoke profile, built once (2 worker processes)."""
    from suite.data import manage

    root = tmp_path_factory.mktemp("smoke-data")
    report = manage.build(profile="smoke", root=root, seed=0, progress=False, workers=2)
    return root, report


@pytest.fixture
def isolated_roots(tmp_path, monkeypatch):
    """ENERGYBENCH_DATA pointing at an empty temporary folder, the repository's data/ replaced
    by another empty one (so the repository's state does not matter), a private manifest cache."""
    from suite.data import registry

    data = tmp_path / "data-root"
    data.mkdir()
    monkeypatch.setattr(registry, "default_data_root", lambda: tmp_path / "repo-data")
    monkeypatch.setenv("ENERGYBENCH_DATA", str(data))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    return data
