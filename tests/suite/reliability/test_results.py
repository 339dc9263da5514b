"""Results folders: unusable cell files, permissions, full disks, read-only folders, ids as paths.

Generated cases: 60 unusable cell files (hypothesis: random bytes, non-UTF-8, deep nesting, JSON
of the wrong shape, one field of a good cell broken) read beside good ones; 8 umasks; 4 write
failures (ENOSPC, EROFS, EACCES, EIO) at 2 moments each; 120 candidate experiment ids; one
run and one report over a folder holding every kind of bad file; a rerun with every cell
cached that writes nothing (what a read-only folder needs)."""
from __future__ import annotations

import copy
import errno
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suite.harness import registry, runner, store
from tests.suite.harness import toy_experiments  # noqa: F401  (registers toypaper.*)

from .conftest import one_line

GOOD = {
    "key": "k", "experiment": "toypaper.square", "cell": {"n": 1}, "profile": "smoke", "seed": 0,
    "device_class": "cpu", "status": "ok", "error": None, "provenance": {},
    "records": [{"paper": "toypaper", "table": "Table 1", "row": "n=1", "column": "square", "metric": "value",
                 "value": 1.0, "unit": "", "higher_is_better": True, "device": "cpu"}],
}


def _options(tmp_path, **kw):
    return runner.Options(results=tmp_path / "results", progress=False, device="cpu", profile="smoke", **kw)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=8)
# values that break each field of a cell file (a record, a key, the status, ...)
BROKEN = {
    "key": [None, 5, [], {}], "experiment": [None, 5, []], "profile": [None, 5, {}], "device_class": [None, 5, []],
    "cell": [None, "x", [1], 5], "seed": [None, "0", 1.5, True, []], "status": ["done", None, 5, "OK"],
    "records": [None, "x", {}, [1], ["r"]], "provenance": ["x", [1], 5],
}
BROKEN_RECORD = {"value": ["abc", [1], {"a": 1}, None], "row": [None, "", [1], 5], "paper": [None, "", 5],
                 "higher_is_better": []}
@st.composite
def unusable_cells(draw):
    """(bytes of a file that must be refused, the kind)."""
    kind = draw(st.sampled_from(["bytes", "latin1", "nested", "shape", "field", "record"]))
    if kind == "bytes":
        data = draw(st.binary(min_size=1, max_size=64))
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return data, kind
        if store.cell_problem(parsed) is None:  # pragma: no cover - random bytes are never a cell
            return b"\xff", kind
        return data, kind
    if kind == "latin1":
        return json.dumps(dict(GOOD, key="KEY")).replace("square", "squ\u00e4re").encode("latin-1"), kind
    if kind == "nested":
        depth = draw(st.integers(2_000, 20_000))
        return ("[" * depth + "]" * depth).encode(), kind
    if kind == "shape":
        value = draw(json_values)
        return json.dumps(value).encode(), kind
    cell = copy.deepcopy(dict(GOOD, key="KEY"))
    if kind == "field":
        name = draw(st.sampled_from(sorted(BROKEN)))
        cell[name] = draw(st.sampled_from(BROKEN[name]))
    else:
        name = draw(st.sampled_from(["value", "row", "paper"]))
        cell["records"][0][name] = draw(st.sampled_from(BROKEN_RECORD[name]))
    return json.dumps(cell, default=str).encode(), kind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(bad=unusable_cells())
def test_unusable_cell_files_are_reported_once_and_left_out(tmp_path_factory, capsys, fresh_reports, bad):
    data, kind = bad
    results = tmp_path_factory.mktemp("results")
    good_path = store.cell_path(results, "good")
    store.write_json_atomic(good_path, dict(GOOD, key="good"))
    bad_path = store.cell_path(results, "KEY")
    bad_path.write_bytes(data)
    store._REPORTED.clear()
    for _ in range(3):  # a run reads the folder several times; the file is reported once
        cells = store.load_cells(results)
        assert [c["key"] for c in cells] == ["good"], kind
        frame = store.frame(results)
        assert len(frame) == 1
    err = capsys.readouterr().err
    assert err.count(str(bad_path)) == 1 and err.count("\n") == 1, (kind, err)


def test_run_and_report_survive_every_kind_of_bad_cell(tmp_path, capsys, fresh_reports):
    from suite.report.render import build

    options = _options(tmp_path)
    experiments = [registry.get("toypaper.square")]
    runner.run(experiments, options)
    paths = sorted((tmp_path / "results" / "cells").glob("*.json"))
    assert len(paths) == 4
    damaged = [b"\x00\x01\x02binary", "{\"key\": \"\u00e9\"}".encode("latin-1"), b"[" * 5_000 + b"]" * 5_000,
               json.dumps(["a", "list"]).encode()]
    for path, data in zip(paths, damaged):
        path.write_bytes(data)
    (tmp_path / "results" / "cells" / "folder.json").mkdir()
    summary = runner.run(experiments, options)
    assert summary.ran == 4 and summary.cached == 0  # each damaged cell computed again
    assert all(store.read_cell(p) is not None for p in paths)  # and replaced by a good file
    err = capsys.readouterr().err
    for path in paths:
        assert err.count(str(path)) == 1, err
    index = build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    assert index.is_file()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027, 0o007, 0o000, 0o037, 0o066])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        store.write_json_atomic(tmp_path / "a" / "cell.json", {"x": 1})
        store.write_text_atomic(tmp_path / "page.html", "<p>")
        with store.atomic_write(tmp_path / "plot.svg", "wb") as handle:
            handle.write(b"<svg/>")
        plain = tmp_path / "plain.txt"
        plain.write_text("reference")  # what open() gives under this umask
    finally:
        os.umask(previous)
    expected = stat.S_IMODE(plain.stat().st_mode)
    for name in ("a/cell.json", "page.html", "plot.svg"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected == 0o666 & ~umask, name


def test_a_cell_file_that_cannot_be_read_is_reported_not_taken_for_absent(tmp_path, monkeypatch):
    path = store.cell_path(tmp_path, "KEY")
    store.write_json_atomic(path, dict(GOOD, key="KEY"))
    real_open = open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    # simulated: the tests may run as root, whom chmod 000 does not stop
    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(store.StoreError, match="permission denied") as raised:
        store.load_cells(tmp_path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
@pytest.mark.parametrize("moment", ["create", "write"])
def test_a_failed_write_names_the_path_and_leaves_the_old_file(tmp_path, monkeypatch, code, moment):
    path = tmp_path / "metrics" / "x.json"
    store.write_json_atomic(path, {"old": True})

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.tempfile if moment == "create" else store.os, "mkstemp" if moment == "create"
                        else "fsync", fail)
    with pytest.raises(store.StoreError) as raised:
        store.write_json_atomic(path, {"new": True})
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary file left


def test_full_disk_in_the_cli_is_one_line(tmp_path, monkeypatch, capsys):
    from suite import cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "fsync", full)
    code = cli.main(["run", "toypaper.square", "--profile", "smoke", "--device", "cpu", "--results",
                     str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and one_line(err) and "no space left" in err and str(tmp_path) in err, err


def test_cached_rerun_writes_nothing(tmp_path, monkeypatch):
    """A rerun with every cell done writes no file (so a read-only results folder still works)."""
    options = _options(tmp_path)
    experiments = [registry.get("toypaper.square")]
    runner.run(experiments, options)

    def no_write(path, *args, **kwargs):
        raise AssertionError(f"a cached rerun wrote {path}")

    monkeypatch.setattr(store, "atomic_write", no_write)
    summary = runner.run(experiments, options)
    assert summary.cached == 4 and summary.ran == 0


def test_report_from_a_folder_whose_files_cannot_be_replaced(tmp_path, monkeypatch):
    from suite.report.render import build

    runner.run([registry.get("toypaper.square")], _options(tmp_path))
    results = tmp_path / "results"
    real = store.atomic_write

    def guarded(path, *args, **kwargs):
        if Path(results) in Path(path).parents:
            raise AssertionError(f"rendering wrote into the results folder: {path}")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store, "atomic_write", guarded)
    assert build(results, tmp_path / "reports", profile="smoke").is_file()


segment = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=8)
candidate_ids = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", segment, segment),
    st.sampled_from(["../x.y", "/abs.y", "a./b", "a.b/../../c", "a..b", ".a.b", "a.b.", "a.b\x00", "a.b\n", "a . b",
                     "toypaper.square"]),
    segment,
)


@settings(max_examples=120, deadline=None)
@given(id=candidate_ids)
def test_experiment_ids_never_escape_the_results_folder(id):
    results = Path("/results-root")
    try:
        checked = registry.check_id(id)
    except ValueError as error:
        assert "experiment id" in str(error)
        return
    target = (results / "metrics" / f"{checked}.json")
    assert os.path.normpath(target) == str(target) and target.parent == results / "metrics"
    assert "/" not in checked and "\x00" not in checked and ".." not in checked


@pytest.mark.parametrize("bad", ["../../escape.x", "/tmp/abs.x", "a.b/c", "a..b", "nodot"])
def test_registering_a_path_like_id_is_refused(bad):
    with pytest.raises(ValueError, match="experiment id"):
        registry.experiment(bad, table="T", title="t", grid={"n": [1]}, profiles=toy_experiments.PROFILES)


@pytest.mark.parametrize("make", [
    lambda: store.StoreError("/r/cells/k.json", "cannot write (no space left on the device)", errno.ENOSPC),
    lambda: __import__("suite.data.readers", fromlist=["x"]).MalformedFileError("/d/x.png", "not a decodable image"),
    lambda: __import__("suite.data.readers", fromlist=["x"]).LayoutError("/d", "no images found", "img/*.png"),
], ids=["StoreError", "MalformedFileError", "LayoutError"])
def test_errors_raised_in_a_worker_reach_the_driver_whole(make):
    import pickle

    error = make()
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is type(error) and str(copy_) == str(error)
