"""Registry, runner/cache, store, claims, report and CLI, on toy experiments."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from suite.harness import claims, keys, registry, runner, store
from suite.harness.records import Record
from tests.suite.harness import toy_experiments  # noqa: F401  (registers toypaper.*)

REPO = Path(__file__).resolve().parents[3]


def options(tmp_path, **kw):
    return runner.Options(results=tmp_path / "results", progress=False, device="cpu", **kw)


def ran(log: Path) -> list[int]:
    return [int(v) for v in log.read_text().split()] if log.exists() else []


# --- registry -------------------------------------------------------------------------

def test_duplicate_id_raises():
    with pytest.raises(ValueError, match="already registered"):
        @registry.experiment("toypaper.square", table="T", title="t", grid={"n": [1]}, profiles=toy_experiments.PROFILES)
        def other(ctx, cell):  # noqa: ARG001
            return []


def test_bad_ids_and_profiles_raise():
    with pytest.raises(ValueError, match="paper.table"):
        registry.experiment("nodot", table="T", title="t", grid={}, profiles=toy_experiments.PROFILES)
    with pytest.raises(ValueError, match="missing"):
        registry.experiment("a.b", table="T", title="t", grid={}, profiles={"mini": {}})


def test_typo_suggests_close_name():
    with pytest.raises(registry.UnknownIdError, match="did you mean 'toypaper.square'"):
        registry.get("toypaper.sqaure")
    with pytest.raises(registry.UnknownIdError, match="did you mean"):
        registry.resolve(["toypapr"])


def test_resolve_paper_and_grid():
    chosen = registry.resolve(["toypaper"])
    assert {e.id for e in chosen} == {"toypaper.square", "toypaper.flaky", "toypaper.skipped"}
    assert registry.get("toypaper.square").cells("smoke") == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]


# --- keys --------------------------------------------------------------------------------

def test_cell_key_is_canonical_and_sensitive():
    base = dict(experiment="e.x", cell={"a": 1, "b": 2}, profile="mini", seed=0, source="s",
                data_versions={"d": "v1"}, device_class="cpu:x")
    same = dict(base, cell={"b": 2, "a": 1})
    assert keys.cell_key(**base) == keys.cell_key(**same)
    for change in ({"seed": 1}, {"profile": "full"}, {"source": "t"}, {"data_versions": {"d": "v2"}},
                   {"device_class": "cuda:y"}, {"cell": {"a": 1, "b": 3}}):
        assert keys.cell_key(**{**base, **change}) != keys.cell_key(**base), change


def test_source_hash_follows_imports():
    digest = keys.source_hash("reproductions.tvlayers.table1")
    assert len(digest) == 64
    # table1 imports the TV solver: its hash covers that file, not the harness.
    seen = keys._imports(REPO / "reproductions/tvlayers/table1.py", "reproductions.tvlayers.table1")
    assert "suite.solvers.tv" in seen
    assert not keys._tracked("suite.harness.runner") and keys._tracked("suite.solvers.tv")


def test_source_hash_leaves_out_figure_modules():
    """Restyling a paper's chart module must not invalidate its results or trained models."""
    assert not keys._tracked("reproductions.lsm.plots")
    assert keys._tracked("reproductions.lsm.model")
    seen = keys._imports(REPO / "reproductions/lsm/experiments.py", "reproductions.lsm.experiments")
    assert "reproductions.lsm.plots" in seen  # imported, so only the rule above keeps it out of the hash


def test_source_hash_of_an_experiment_leaves_out_its_sibling_tables(tmp_path, monkeypatch):
    """A paper package's __init__ registers all its tables; one table's hash must not cover the others."""
    package = tmp_path / "reproductions" / "toyhash"
    package.mkdir(parents=True)
    (tmp_path / "reproductions" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from . import first, second\n")
    (package / "helper.py").write_text("SCALE = 2\n")
    (package / "first.py").write_text("from . import helper\nVALUE = helper.SCALE\n")
    (package / "second.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import reproductions
    monkeypatch.setattr(reproductions, "__path__", [str(tmp_path / "reproductions"), *reproductions.__path__])

    def digest():
        keys.source_hash.cache_clear()
        return keys.source_hash("reproductions.toyhash.first")

    before = digest()
    (package / "second.py").write_text("VALUE = 2  # a sibling table changed\n")
    assert digest() == before
    (package / "helper.py").write_text("SCALE = 3  # what first.py imports changed\n")
    assert digest() != before
    keys.source_hash.cache_clear()


# --- runner, cache, store --------------------------------------------------------------------

def test_run_caches_and_force_reruns(tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv("TOY_LOG", str(log))
    exp = [registry.get("toypaper.square")]
    summary = runner.run(exp, options(tmp_path, profile="smoke"))
    assert (summary.ran, summary.cached, summary.failed) == (4, 0, [])
    assert sorted(ran(log)) == [1, 2, 3, 4]
    summary = runner.run(exp, options(tmp_path, profile="smoke"))
    assert (summary.ran, summary.cached) == (0, 4) and len(ran(log)) == 4
    summary = runner.run(exp, options(tmp_path, profile="smoke", force=True))
    assert summary.ran == 4 and len(ran(log)) == 8
    files = list((tmp_path / "results" / "cells").glob("*.json"))
    assert len(files) == 4
    # only results in cells/: merging machines is copying that folder
    assert sorted(p.suffix for p in (tmp_path / "results" / "cells").iterdir()) == [".json"] * 4
    cell = json.loads(files[0].read_text())
    for field in ("git_commit", "git_dirty", "python", "torch", "numpy", "cpu", "device_name", "seed",
                  "wall_s", "peak_rss_mb", "command"):
        assert field in cell["provenance"], field
    metrics = json.loads((tmp_path / "results" / "metrics" / "toypaper.square.json").read_text())
    # the dvc metrics file (suite/harness/dvc_metrics.py): cells done and the first measured row
    assert metrics["cells"] == {"planned": 4, "done": 4, "failed": 0}
    assert metrics["headline"]["ours"] in (1.0, 4.0, 9.0, 16.0)


def test_seeds_and_frame(tmp_path):
    runner.run([registry.get("toypaper.square")], options(tmp_path, profile="mini"))
    df = store.frame(tmp_path / "results")
    assert len(df) == 4 * 2 * 2  # cells x seeds x records
    squares = df[(df.column == "square")].groupby("row").value.agg(["mean", "count"])
    assert squares.loc["n=2", "count"] == 2 and squares.loc["n=2", "mean"] == pytest.approx(4.05)
    assert set(store.RECORD_COLUMNS) <= set(df.columns)


def test_failed_cell_is_recorded_and_others_run(tmp_path):
    summary = runner.run([registry.get("toypaper.flaky")], options(tmp_path, profile="smoke"))
    assert len(summary.failed) == 1 and summary.ran == 1
    cells = store.load_cells(tmp_path / "results")
    failed = [c for c in cells if c["status"] == "failed"]
    assert len(failed) == 1 and "boom in cell 2" in failed[0]["error"]


def test_not_run_cells_are_retried(tmp_path, monkeypatch):
    marker = tmp_path / "installed"
    monkeypatch.setenv("TOY_MARKER", str(marker))
    exp = [registry.get("toypaper.skipped")]
    assert runner.run(exp, options(tmp_path, profile="smoke")).not_run == 1
    marker.write_text("now the peer is there")
    assert runner.run(exp, options(tmp_path, profile="smoke")).ran == 1


def test_parallel_jobs_match_sequential(tmp_path):
    seq = runner.run([registry.get("toypaper.square")], options(tmp_path / "a", profile="smoke"))
    os.environ["ENERGYBENCH_PLUGINS"] = "tests.suite.harness.toy_experiments"
    try:
        par = runner.run([registry.get("toypaper.square")], options(tmp_path / "b", profile="smoke", jobs=2))
    finally:
        del os.environ["ENERGYBENCH_PLUGINS"]
    assert seq.ran == par.ran == 4
    a = store.frame(tmp_path / "a" / "results").sort_values(["row", "column"]).value.tolist()
    b = store.frame(tmp_path / "b" / "results").sort_values(["row", "column"]).value.tolist()
    assert a == b


def test_atomic_write_never_leaves_partial_json(tmp_path):
    path = tmp_path / "x.json"
    store.write_json_atomic(path, {"key": "a"})
    with pytest.raises(TypeError):
        store.write_json_atomic(path, {"key": object.__new__(type("Bad", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"key": "a"}
    assert list(tmp_path.iterdir()) == [path]


def test_sigkill_midway_then_resume(tmp_path):
    """Kill a run with SIGKILL halfway; the rerun finishes without redoing finished cells."""
    log = tmp_path / "log"
    env = {**os.environ, "ENERGYBENCH_PLUGINS": "tests.suite.harness.toy_experiments", "TOY_LOG": str(log),
           "TOY_SLEEP": "0.7", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "suite.cli", "run", "toypaper.square", "--profile", "smoke", "--device", "cpu",
           "--results", str(tmp_path / "results"), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(ran(log)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = [store.read_cell(p) for p in (tmp_path / "results" / "cells").glob("*.json")]
    assert all(c is not None for c in done_before), "a killed run left an unreadable cell file"
    assert 1 <= len(done_before) < 4
    env.pop("TOY_SLEEP")
    subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished_first = {c["cell"]["n"] for c in done_before}
    reran = ran(log)[len(ran(log)) - (4 - len(finished_first)):]
    assert not finished_first & set(reran), "finished cells were computed again"
    assert len(store.load_cells(tmp_path / "results")) == 4


# --- claims ------------------------------------------------------------------------------------

def _frame(rows):
    recs = []
    for i, (row, value, std, device) in enumerate(rows):
        r = Record(paper="p", table="T", row=row, column="c", metric="time", value=value, unit="ms",
                   higher_is_better=False, device=device, std=std).to_dict()
        recs.append({**r, "experiment": "p.t", "key": f"k{i}", "profile": "mini", "seed": 0, "status": "ok",
                     "device_class": f"{device}:x", "cell": "{}", "git_commit": None, "host": None})
    return pd.DataFrame(recs)


def _claim(kind, **spec):
    return claims.Claim(id="c", kind=kind, text="", source="", spec=spec)


@pytest.mark.parametrize("fast,slow,need,verdict", [
    (1.0, 50.0, 37, claims.REPRODUCED),
    (1.0, 30.0, 37, claims.NOT_REPRODUCED),
    (1.0, 36.0, 37, claims.WITHIN_NOISE),  # 36 + std 2 over 1 - 0.1 reaches 37
])
def test_ratio_claim(fast, slow, need, verdict):
    df = _frame([("ours", fast, 0.1, "cpu"), ("peer", slow, 2.0, "cpu")])
    claim = _claim("ratio", faster={"row": "ours"}, slower={"row": "peer"}, at_least=need)
    assert claims.judge(claim, df, paper="p", profile="mini").verdict == verdict


def test_ratio_across_device_classes_is_not_judged():
    df = _frame([("ours", 1.0, 0.0, "cuda"), ("peer", 100.0, 0.0, "cpu")])
    claim = _claim("ratio", faster={"row": "ours"}, slower={"row": "peer"}, at_least=2)
    result = claims.judge(claim, df, paper="p", profile="mini")
    assert result.verdict == claims.NOT_RUN and "device class" in result.evidence


def test_not_run_claim_names_the_rows_and_the_cells_reasons():
    df = _frame([("ours", 1.0, 0.1, "cpu"), ("peer", 2.0, None, "cpu")])
    df.loc[df.row == "peer", ["value", "note"]] = [None, "not run: prox-tv not installed"]
    claim = _claim("ratio", faster={"row": "ours"}, slower={"row": "peer", "metric": "time"}, at_least=2)
    result = claims.judge(claim, df, paper="p", profile="mini")
    assert result.verdict == claims.NOT_RUN
    assert result.evidence == "no measurement of peer/time (not run: prox-tv not installed)"
    missing = claims.judge(_claim("ordering", chain=[{"row": "ours"}, {"row": "gone"}]), df, paper="p", profile="mini")
    assert missing.evidence == "no measurement of gone (not run at this profile)"


def test_ordering_improvement_value_and_not_run():
    df = _frame([("a", 1.0, 0.1, "cpu"), ("b", 2.0, 0.1, "cpu"), ("c", 2.05, 0.1, "cpu")])
    judge = lambda c, profile="mini": claims.judge(c, df, paper="p", profile=profile).verdict  # noqa: E731
    assert judge(_claim("ordering", chain=[{"row": "a"}, {"row": "b"}])) == claims.REPRODUCED  # lower time wins
    assert judge(_claim("ordering", chain=[{"row": "b"}, {"row": "a"}])) == claims.NOT_REPRODUCED
    assert judge(_claim("ordering", chain=[{"row": "b"}, {"row": "c"}])) == claims.WITHIN_NOISE
    assert judge(_claim("ordering", chain=[{"row": "a"}, {"row": "zzz"}])) == claims.NOT_RUN
    assert judge(_claim("improvement", method={"row": "a"}, baseline={"row": "b"}, paper_gain=1)) == claims.REPRODUCED
    assert judge(_claim("improvement", method={"row": "b"}, baseline={"row": "a"}, paper_gain=1)) == claims.NOT_REPRODUCED
    value = _claim("value", select={"row": "a"}, expected=1.05, tolerance=0.1)
    assert judge(value) == claims.NOT_JUDGED  # value claims wait for the full profile
    df.profile = "full"
    assert judge(value, "full") == claims.REPRODUCED
    assert judge(_claim("value", select={"row": "a"}, expected=1.5, tolerance=0.1), "full") == claims.NOT_REPRODUCED


def test_malformed_paper_yaml_names_the_problem(tmp_path):
    bad = tmp_path / "paper.yaml"
    bad.write_text("paper: x\nclaims:\n  - {id: a, kind: guess}\n")
    with pytest.raises(claims.PaperFileError, match="kind must be one of"):
        claims.load_paper(bad)
    bad.write_text("paper: x\nclaims:\n  - {id: a, kind: ratio, faster: {row: a}}\n")
    with pytest.raises(claims.PaperFileError, match="misses"):
        claims.load_paper(bad)
    bad.write_text("paper: [unclosed\n")
    with pytest.raises(claims.PaperFileError, match="not valid YAML"):
        claims.load_paper(bad)


# --- report and CLI -----------------------------------------------------------------------------

def test_report_escapes_and_shows_failures(tmp_path):
    from suite.report.render import build

    runner.run(registry.resolve(["toypaper"]), options(tmp_path, profile="smoke"))
    cells = store.load_cells(tmp_path / "results")
    done = next(c for c in cells if c["records"])  # keys are hashes: any order
    evil = dict(done, records=[dict(done["records"][0], row="<script>alert(1)</script>")])
    store.write_json_atomic(store.cell_path(tmp_path / "results", done["key"]), evil)
    index = build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    page = (tmp_path / "reports" / "toypaper.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "boom in cell 2" in page and "not run: peer not installed" in page
    assert "toypaper.html" in index.read_text()


def test_report_leaves_out_results_of_other_code_or_grids(tmp_path):
    from suite.report.render import build

    runner.run([registry.get("toypaper.square")], options(tmp_path, profile="smoke"))
    cells = store.load_cells(tmp_path / "results")
    current, stale = runner.current_cells(cells)
    assert len(current) == 4 and stale == 0
    # a result of older code (another key) and one of a cell no longer in the grid
    old = dict(cells[0], key="toypaper-square-0000", records=[dict(cells[0]["records"][0], value=-1.0)])
    gone = dict(cells[1], key=cells[1]["key"] + "x", cell={"n": 99})
    for extra in (old, gone):
        store.write_json_atomic(store.cell_path(tmp_path / "results", extra["key"]), extra)
    current, stale = runner.current_cells(store.load_cells(tmp_path / "results"))
    assert len(current) == 4 and stale == 2
    index = build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    assert "2 stored cell result(s) of other code" in index.read_text()
    assert -1.0 not in store.frame(current).value.tolist()


def test_report_lists_rows_in_grid_order_not_hash_order(tmp_path):
    from suite.report.render import build

    runner.run([registry.get("toypaper.square")], options(tmp_path, profile="smoke"))
    build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    page = (tmp_path / "reports" / "toypaper.html").read_text()
    positions = [page.index(f">n={n}<") for n in (1, 2, 3, 4)]
    assert positions == sorted(positions)


def _cli(*args, env_extra=None):
    env = {**os.environ, "ENERGYBENCH_PLUGINS": "tests.suite.harness.toy_experiments", "PYTHONPATH": str(REPO),
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_cli_exit_codes(tmp_path):
    res = _cli("run", "toypaper.sqare", "--results", str(tmp_path))
    assert res.returncode == 2 and "did you mean 'toypaper.square'" in res.stderr
    res = _cli("run", "toypaper.flaky", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert res.returncode == 1 and "FAILED" in res.stderr
    res = _cli("run", "toypaper.square", "--profile", "nope")
    assert res.returncode == 2
    import torch

    if not torch.cuda.is_available():
        res = _cli("run", "toypaper.square", "--device", "cuda", "--results", str(tmp_path))
        assert res.returncode == 2 and "cuda" in res.stderr
    # bad data input: a clear message and exit 2, no traceback
    res = _cli("data", "add", str(tmp_path / "missing"), "--as", "otb")
    assert res.returncode == 2 and "expected a dataset folder" in res.stderr and "Traceback" not in res.stderr
    res = _cli("data", "add", str(tmp_path), "--as", "otbb")
    assert res.returncode == 2 and "unknown dataset id 'otbb'" in res.stderr
    res = _cli("data", "add", str(tmp_path), "--as", "otb")
    assert res.returncode == 2 and "expected layout" in res.stderr
    res = _cli("report", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "reports"))
    assert res.returncode == 0 and "no results under" in res.stderr


def test_peak_memory_is_per_cell_not_per_process():
    import numpy as np

    from suite.harness import provenance

    if not provenance.reset_peak_rss():
        pytest.skip("no /proc/self/clear_refs on this system")
    block = np.ones(40_000_000)  # 320 MB resident
    high = provenance.peak_rss_mb()
    del block
    provenance.reset_peak_rss()
    assert provenance.peak_rss_mb() < high - 200


# --- executors ----------------------------------------------------------------------------------

def test_ray_executor_runs_stores_and_resumes(tmp_path):
    """A local Ray instance stands in for a cluster: the cells run on Ray workers, the driver
    writes them like a local run, and a rerun finds them done."""
    pytest.importorskip("ray")
    results = tmp_path / "results"
    args = ("run", "toypaper.square", "--profile", "smoke", "--device", "cpu", "--executor", "ray",
            "--results", str(results), "--no-progress")
    env = {"TOY_LOG": str(tmp_path / "log"), "RAY_AUTH_MODE": "disabled"}
    first = _cli(*args, env_extra=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "cells: 4 ran, 0 already done" in first.stdout
    cells = store.load_cells(results)
    assert sorted(c["cell"]["n"] for c in cells) == [1, 2, 3, 4]
    assert all(c["provenance"]["executor"] == "ray" and "--executor ray" in c["provenance"]["command"] for c in cells)
    # the same keys as a local run: the cells are the same cells
    local = runner.plan([registry.get("toypaper.square")], options(tmp_path, profile="smoke"))
    assert {t.key for t in local} == {c["key"] for c in cells}
    second = _cli(*args, env_extra=env)
    assert second.returncode == 0 and "cells: 0 ran, 4 already done" in second.stdout
    assert len(ran(tmp_path / "log")) == 4


def test_a_worker_with_other_code_refuses_the_cell(tmp_path):
    (task,) = [t for t in runner.plan([registry.get("toypaper.skipped")], options(tmp_path, profile="smoke"))]
    stale = dataclasses.replace(task, source="0" * 64)
    with pytest.raises(RuntimeError, match="code differs from the code the run was planned with"):
        runner.compute(stale, options(tmp_path, profile="smoke"), device="cpu")
    assert runner.compute(task, options(tmp_path, profile="smoke"), device="cpu")["status"] == "not_run"


def test_ray_executor_without_ray_says_how_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RuntimeError, match=r"pip install -e \"\.\[ray\]\""):
        runner.run([registry.get("toypaper.square")], options(tmp_path, profile="smoke", executor="ray"))
    with pytest.raises(ValueError, match="--executor must be local or ray"):
        runner.run([registry.get("toypaper.square")], options(tmp_path, profile="smoke", executor="slurm"))
