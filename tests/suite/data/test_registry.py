"""Registry contract: explicit ids, suggestions on typos, locating, versions, status."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from suite.data import registry
from suite.data.registry import DATASETS, Dataset, DatasetMissing


def _dummy_reader(root):
    return [root]


@pytest.mark.parametrize("dataset_id", sorted(DATASETS))
def test_every_dataset_is_described(dataset_id):
    dataset = DATASETS[dataset_id]
    assert dataset.id == dataset_id
    assert dataset.kind in ("real", "generated")
    assert dataset.layout and dataset.citation and dataset.terms and dataset.how_to_add
    assert callable(dataset.reader)
    if dataset.kind == "generated":
        assert "energybench data build" in dataset.how_to_add
    else:
        assert f"--as {dataset_id}" in dataset.how_to_add


def test_generated_sets_match_generators():
    from suite.data.generate import GENERATORS

    generated = {d for d in DATASETS if DATASETS[d].kind == "generated"}
    assert generated == set(GENERATORS)


def test_register_by_call_and_decorator_and_duplicate():
    dataset = Dataset(id="test-dummy-call", kind="real", layout="x/", reader=_dummy_reader, citation="c", terms="t")
    try:
        assert registry.register(dataset) is dataset
        assert registry.get("test-dummy-call") is dataset

        @registry.register(id="test-dummy-decorated", kind="generated", layout="y/", citation="c", terms="t")
        def reader(root):
            return [root]

        assert registry.get("test-dummy-decorated").reader is reader
        with pytest.raises(ValueError, match="already registered"):
            registry.register(dataset)
    finally:
        DATASETS.remove("test-dummy-call")
        DATASETS.remove("test-dummy-decorated")


def test_dataset_rejects_bad_fields():
    with pytest.raises(ValueError, match="kind"):
        Dataset(id="x", kind="synthetic", layout="", reader=_dummy_reader, citation="", terms="")
    with pytest.raises(ValueError, match="id"):
        Dataset(id="a/b", kind="real", layout="", reader=_dummy_reader, citation="", terms="")


def test_unknown_id_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean 'mini-flow'"):
        registry.get("mini-flwo")
    with pytest.raises(ValueError, match="unknown dataset id"):
        registry.locate("no-such-dataset-at-all")


def test_data_roots_order(monkeypatch, tmp_path):
    monkeypatch.setenv("ENERGYBENCH_DATA", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    roots = registry.data_roots()
    assert roots[:2] == [tmp_path / "a", tmp_path / "b"]
    assert roots[-1] == registry.default_data_root()
    monkeypatch.delenv("ENERGYBENCH_DATA")
    assert registry.data_roots() == [registry.default_data_root()]
    assert (registry.repo_root() / "suite" / "data" / "registry.py").is_file()


def test_missing_dataset_message(isolated_roots):
    with pytest.raises(DatasetMissing) as raised:
        registry.locate("bsds500")
    message = str(raised.value)
    assert "'bsds500' is missing" in message
    assert str(isolated_roots / "bsds500") in message and "repo-data/bsds500" in message
    assert "energybench data add PATH --as bsds500" in message
    assert isinstance(raised.value, FileNotFoundError)
    assert raised.value.looked_in[0] == isolated_roots
    with pytest.raises(DatasetMissing, match="energybench data build"):
        registry.locate("mini-flow")
    assert registry.version("mini-flow") == "absent"


def test_locate_version_status(isolated_roots):
    folder = isolated_roots / "otb"
    (folder / "Seq").mkdir(parents=True)
    (folder / "Seq" / "groundtruth_rect.txt").write_text("1,2,3,4\n")
    assert registry.locate("otb") == folder
    first = registry.version("otb")
    assert len(first) == 64 and first == registry.version("otb")
    expected = registry.manifest_hash([("Seq/groundtruth_rect.txt", registry.file_md5(folder / "Seq/groundtruth_rect.txt"))])
    assert first == expected
    # A change of content (same size, new mtime) changes the version despite the cache.
    path = folder / "Seq" / "groundtruth_rect.txt"
    path.write_text("1,2,3,5\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert registry.version("otb") != first
    rows = {row["id"]: row for row in registry.status()}
    assert set(rows) == set(DATASETS)
    assert rows["otb"]["present"] and rows["otb"]["size_bytes"] == 8 and rows["otb"]["path"] == str(folder)
    assert rows["bsds500"] == {"id": "bsds500", "kind": "real", "present": False, "version": "absent",
                               "size_bytes": 0, "path": None}


def test_empty_folder_is_absent(isolated_roots):
    (isolated_roots / "otb").mkdir()
    assert registry.find("otb") is None


def test_manifest_cache_is_outside_the_data(isolated_roots):
    folder = isolated_roots / "set12"
    folder.mkdir()
    (folder / "01.png").write_bytes(b"x")
    before = sorted(p.name for p in folder.iterdir())
    registry.version("set12")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert list(Path(os.environ["ENERGYBENCH_CACHE"]).rglob("*.json"))
