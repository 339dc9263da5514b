"""Environment variables and arguments that name something unusable: one line naming the variable
or path, exit 2, never a traceback.

Generated cases: ENERGYBENCH_PLUGINS naming missing modules (hypothesis: 25 names) and modules
that fail on import with 6 exception types; ENERGYBENCH_DATA, ENERGYBENCH_CACHE and --results /
--out naming a file (6 cases); an unreadable manifest cache and damaged ones (5 shapes)."""
from __future__ import annotations

import json
import keyword
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suite import cli
from suite.data import registry as data_registry

from .conftest import one_line

identifiers = st.from_regex(r"[a-z][a-z0-9_]{2,12}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=identifiers, dotted=st.booleans())
def test_missing_plugin_module_is_one_line(monkeypatch, capsys, tmp_path, name, dotted):
    module = f"energybench_absent_{name}" + (".sub" if dotted else "")
    monkeypatch.setenv("ENERGYBENCH_PLUGINS", f"  {module} ,")
    code = cli.main(["run", "--results", str(tmp_path / "r"), "--no-progress", "nothing.here"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert "ENERGYBENCH_PLUGINS" in err and module in err and "cannot be found" in err


@pytest.mark.parametrize("raise_line", [
    "raise RuntimeError('plugin broke')", "raise ValueError('bad value')", "1/0", "import energybench_no_such_dep",
    "raise SyntaxError('fake syntax')", "raise KeyError('k')",
])
def test_failing_plugin_module_is_one_line(monkeypatch, capsys, tmp_path, raise_line):
    package = tmp_path / "plugins"
    package.mkdir()
    stem = f"broken_{abs(hash(raise_line)) % 10**8}"
    (package / f"{stem}.py").write_text(f"{raise_line}\n")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setenv("ENERGYBENCH_PLUGINS", stem)
    try:
        code = cli.main(["list"])
    finally:
        sys.modules.pop(stem, None)
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and one_line(err), err
    assert "ENERGYBENCH_PLUGINS" in err and stem in err and "failed to import" in err


@pytest.mark.parametrize("variable", ["ENERGYBENCH_DATA", "ENERGYBENCH_CACHE"])
def test_data_and_cache_variables_naming_a_file(monkeypatch, capsys, tmp_path, variable):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv(variable, str(afile))
    with pytest.raises(data_registry.ConfigurationError, match=variable):
        if variable == "ENERGYBENCH_DATA":
            data_registry.data_roots()
        else:
            folder = tmp_path / "ds"
            folder.mkdir()
            (folder / "a.txt").write_text("a")
            data_registry.manifest(folder)
    code = cli.main(["data", "status"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and one_line(err) and variable in err and str(afile) in err, err


@pytest.mark.parametrize("verb", ["run", "report", "reproduce", "report-out"])
def test_results_or_out_naming_a_file(monkeypatch, capsys, tmp_path, verb):
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    if verb == "report-out":
        argv = ["report", "--results", str(tmp_path / "empty"), "--out", str(afile)]
    elif verb == "report":
        argv = ["report", "--results", str(afile), "--out", str(tmp_path / "reports")]
    else:
        argv = [verb, "toypaper.square", "--profile", "smoke", "--results", str(afile), "--no-progress"]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and one_line(err) and str(afile) in err and "a file" in err, err
    assert afile.read_text() == "not a folder"


def _folder_with_a_cached_manifest(monkeypatch, tmp_path):
    """A one-file dataset folder whose manifest is cached; returns (folder, the cache file)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(cache))
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    data_registry.manifest(folder)
    (sidecar,) = (cache / "manifests").glob("*.json")
    return folder, sidecar


@pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"[1, 2, 3]", b'{"files": [1]}',
                                     b'{"files": {"a.txt": "not-a-list"}}', b"[" * 100000])
def test_damaged_manifest_cache_is_recomputed(monkeypatch, tmp_path, content):
    folder, sidecar = _folder_with_a_cached_manifest(monkeypatch, tmp_path)
    expected = data_registry.manifest(folder, use_cache=False)
    sidecar.write_bytes(content)
    assert data_registry.manifest(folder) == expected
    assert json.loads(sidecar.read_text())["files"]["a.txt"][0] == expected["files"]["a.txt"]  # rewritten


def test_unreadable_manifest_cache_names_it(monkeypatch, capsys, tmp_path):
    folder, sidecar = _folder_with_a_cached_manifest(monkeypatch, tmp_path)
    real_read_bytes = type(sidecar).read_bytes

    def denied(self):
        if self == sidecar:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    # the tests may run as root, which chmod cannot lock out: the refusal is simulated
    monkeypatch.setattr(type(sidecar), "read_bytes", denied)
    with pytest.raises(data_registry.ConfigurationError, match="manifest cache") as raised:
        data_registry.manifest(folder)
    assert str(sidecar) in str(raised.value) and "ENERGYBENCH_CACHE" in str(raised.value)


def test_an_unreadable_data_folder_is_reported_not_taken_for_absent(monkeypatch, tmp_path):
    root = tmp_path / "data"
    (root / "mini-flow").mkdir(parents=True)
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root))
    real_iterdir = type(root).iterdir

    def denied(self):
        if self == root / "mini-flow":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(type(root), "iterdir", denied)  # simulated: root ignores chmod
    with pytest.raises(data_registry.ConfigurationError, match="cannot be read") as raised:
        data_registry.find("mini-flow")
    assert str(root / "mini-flow") in str(raised.value)
