"""``data add``, ``data status`` and the manifest on folders holding whatever a real download or
a user's disk holds: links of every kind (to files, to folders, back to an ancestor, to the
root, dangling), FIFOs, names that are not UTF-8, empty and unrelated subfolders; corrupt files
anywhere in the sequence; a copy interrupted halfway.

Generated cases: 30 folder trees (hypothesis, up to 12 entries each, every entry kind), each
added by copy and by link, re-added with and without overwrite; 12 positions x kinds of a
corrupt array in a 12-sample dataset; a corrupt image the reader never reads (3 kinds);
interruptions at 3 points x 2 errors x {first add, overwrite}; the CLI's --overwrite; the
sampled check of a large dataset."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suite import cli
from suite.data import manage
from suite.data import registry as data_registry
from suite.data.readers import LazySequence, MalformedFileError
from suite.data.readers._common import PathLike

DATASET = "reliability-npy"


class NpySet(LazySequence):
    """Every ``.npy`` file below the folder, one sample each (links followed, cycles not)."""

    layout = "*.npy anywhere below the folder"

    def __init__(self, root: PathLike):
        super().__init__(root)
        self.items = [path for _, path in data_registry.walk_dataset(self.root).files if path.suffix == ".npy"]
        self._require_items("arrays")

    def load(self, path: Path) -> dict:
        return {"array": np.load(path, allow_pickle=False)}


@pytest.fixture(autouse=True)
def npy_dataset(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    data_registry.register(data_registry.Dataset(id=DATASET, kind="real", layout=NpySet.layout, reader=NpySet,
                                                 citation="test", terms="test"))
    yield
    data_registry.DATASETS.remove(DATASET)


def _array_file(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.full((2, 3), value, np.int16))


ENTRY_KINDS = ["file", "array", "dir", "empty_dir", "link_file", "link_dir", "link_ancestor", "link_root",
               "dangling", "fifo", "non_utf8", "link_self"]


@st.composite
def trees(draw):
    """A list of (kind, depth, name index) entries; the builder turns them into a folder."""
    count = draw(st.integers(1, 12))
    return [(draw(st.sampled_from(ENTRY_KINDS)), draw(st.integers(0, 3)), draw(st.integers(0, 4)))
            for _ in range(count)]


def _build(root: Path, entries) -> None:
    """Build the tree; folders by depth are d0/d1/..., every tree gets one valid array."""
    _array_file(root / "base.npy", 0)
    for i, (kind, depth, index) in enumerate(entries):
        folder = root.joinpath(*[f"d{k}" for k in range(depth)])
        folder.mkdir(parents=True, exist_ok=True)
        name = f"e{i}_{index}"
        target = folder / name
        if kind == "file":
            target.with_suffix(".txt").write_text(f"text {i}")
        elif kind == "array":
            _array_file(target.with_suffix(".npy"), i)
        elif kind == "dir":
            _array_file(target / "inner.npy", i)
        elif kind == "empty_dir":
            target.mkdir()
        elif kind == "link_file":
            target.with_suffix(".npy").symlink_to(root / "base.npy")
        elif kind == "link_dir":
            other = root / f"other{i}"
            _array_file(other / "x.npy", i)
            target.symlink_to(other, target_is_directory=True)
        elif kind == "link_ancestor":
            target.symlink_to(folder.parent if depth else folder, target_is_directory=True)
        elif kind == "link_root":
            target.symlink_to(root, target_is_directory=True)
        elif kind == "link_self":
            target.symlink_to(target)  # a loop of one link
        elif kind == "dangling":
            target.symlink_to(root / "nowhere" / name)
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "non_utf8":
            raw = os.fsencode(folder) + b"/bad\xff\xfe" + str(i).encode() + b".npy"
            with open(raw, "wb") as handle:  # a bytes path: the name is not valid UTF-8
                np.save(handle, np.arange(3))


def _debris(root: Path) -> list[str]:
    return sorted(p.name for p in root.parent.iterdir() if p.name.startswith(f".{root.name}-"))


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {relative: path.read_bytes() for relative, path in data_registry.walk_dataset(folder).files}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(entries=trees())
def test_any_folder_is_added_completely_or_not_at_all(tmp_path_factory, entries):
    base = tmp_path_factory.mktemp("tree")
    source, root = base / "source", base / "data"
    source.mkdir()
    _build(source, entries)
    walk = data_registry.walk_dataset(source)  # terminates on every tree
    assert all(path.is_file() for _, path in walk.files)
    assert len({r for r, _ in walk.files}) == len(walk.files)
    kinds = {kind for kind, _, _ in entries}
    if {"link_ancestor", "link_root"} & kinds:
        assert any("cycle" in why for _, why in walk.skipped)
    if "fifo" in kinds:
        assert any("special file" in why for _, why in walk.skipped)
    report = manage.add(source, as_id=DATASET, root=root, record=False)
    target = root / DATASET
    assert _tree_bytes(target) == _tree_bytes(source), "the copy differs from what the walk found"
    assert report["samples"] == sum(1 for r, _ in walk.files if r.endswith(".npy"))
    assert report["skipped"] == walk.skipped and "every sample" in report["checked"]["mode"]
    assert _debris(root) == []
    assert report["version"] == data_registry.manifest(target)["version"]  # status works afterwards
    with pytest.raises(FileExistsError, match="overwrite"):
        manage.add(source, as_id=DATASET, root=root, record=False)
    linked = manage.add(source, as_id=DATASET, root=root, record=False, link=True, overwrite=True)
    assert (root / DATASET).is_symlink() and linked["version"] == report["version"]
    again = manage.add(source, as_id=DATASET, root=root, record=False, overwrite=True)
    assert not (root / DATASET).is_symlink() and again["version"] == report["version"] and _debris(root) == []


def _dataset(folder: Path, count: int = 12) -> Path:
    for i in range(count):
        _array_file(folder / "seq" / f"{i:04d}.npy", i)
    return folder


CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"\x93NUMPY garbage" + bytes(range(40)),
    "empty": lambda data: b"",
    "longer": lambda data: data + b"\x00" * 8,  # header declares fewer values than the payload holds
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 11), kind=st.sampled_from(sorted(CORRUPTIONS)))
def test_a_corrupt_file_anywhere_in_the_sequence_is_refused_by_name(tmp_path_factory, position, kind):
    base = tmp_path_factory.mktemp("corrupt")
    source = _dataset(base / "source")
    bad = source / "seq" / f"{position:04d}.npy"
    bad.write_bytes(CORRUPTIONS[kind](bad.read_bytes()))
    root = base / "data"
    with pytest.raises(MalformedFileError) as raised:
        manage.add(source, as_id=DATASET, root=root, record=False)
    assert bad.name in str(raised.value)
    assert not (root / DATASET).exists() and _debris(root) == []


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n truncated", b"GIF89a nonsense"])
def test_files_the_reader_never_reads_are_decoded_too(tmp_path, content):
    source = _dataset(tmp_path / "source", count=3)
    (source / "seq" / "frames").mkdir()
    (source / "seq" / "frames" / "00002.png").write_bytes(content)
    with pytest.raises(MalformedFileError, match="00002.png"):
        manage.add(source, as_id=DATASET, root=tmp_path / "data", record=False)
    assert not (tmp_path / "data" / DATASET).exists()


@pytest.mark.parametrize("overwrite", [False, True], ids=["first-add", "overwrite"])
@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["ENOSPC", "Ctrl-C"])
@pytest.mark.parametrize("after", [0, 5, 11])
def test_an_interrupted_copy_leaves_the_dataset_as_it_was(tmp_path, monkeypatch, overwrite, error, after):
    source = _dataset(tmp_path / "source")
    root = tmp_path / "data"
    before = None
    if overwrite:
        old = _dataset(tmp_path / "old", count=2)
        manage.add(old, as_id=DATASET, root=root, record=False)
        before = _tree_bytes(root / DATASET)
    real_copy, copied = shutil.copy2, []

    def failing_copy(src, dst, *args, **kwargs):
        if len(copied) == after:
            raise error
        copied.append(src)
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(manage.shutil, "copy2", failing_copy)
    with pytest.raises(type(error)):
        manage.add(source, as_id=DATASET, root=root, record=False, overwrite=overwrite)
    if overwrite:
        assert _tree_bytes(root / DATASET) == before
    else:
        assert not (root / DATASET).exists()
    assert _debris(root) == []


def test_cli_add_offers_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(manage, "_dvc_add", lambda root: {"recorded": False, "reason": "test"})
    root = tmp_path / "data"
    monkeypatch.setattr(manage, "default_data_root", lambda: root)
    source = _dataset(tmp_path / "source", count=3)
    assert cli.main(["data", "add", str(source), "--as", DATASET]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "checked: every sample (3)" in out
    assert cli.main(["data", "add", str(source), "--as", DATASET]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["data", "add", str(source), "--as", DATASET, "--overwrite"]) == cli.EXIT_OK
    (source / "seq" / "0001.npy").write_bytes(b"broken")
    assert cli.main(["data", "add", str(source), "--as", DATASET, "--overwrite"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "0001.npy" in err and "Traceback" not in err
    assert _tree_bytes(root / DATASET)["seq/0001.npy"] != b"broken"  # the previous version stays


def test_a_large_dataset_is_checked_on_a_stated_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(manage, "CHECK_ALL_SAMPLES", 5)
    monkeypatch.setattr(manage, "CHECK_SAMPLED_SAMPLES", 4)
    source = _dataset(tmp_path / "source", count=12)
    report = manage.add(source, as_id=DATASET, root=tmp_path / "data", record=False)
    checked = report["checked"]
    assert checked["samples_checked"] == 4 and checked["samples"] == 12
    assert "4 of 12 samples" in checked["mode"] and "first, the last and evenly spaced" in checked["mode"]
