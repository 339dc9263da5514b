"""Progress of a run: ETA from recorded costs, plain lines in logs, the closing summary, and a
cached rerun that recomputes nothing (suite/harness/progress.py, runner.run, cli reproduce)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from suite.harness import keys, progress, registry, runner, store
from tests.suite.harness import toy_experiments  # noqa: F401  (registers toypaper.*)

REPO = Path(__file__).resolve().parents[3]


def _cell(experiment, n, wall, *, profile="mini", seed=0, when="2026-01-01T00:00:00", status="ok"):
    return {"key": f"{experiment}-{n}-{when}", "experiment": experiment, "cell": {"n": n}, "profile": profile,
            "seed": seed, "status": status, "provenance": {"wall_s": wall, "finished_at": when}}


def test_expected_cost_is_the_cells_last_time_then_its_experiments_median_then_the_default():
    cells = [
        _cell("p.a", 1, 100.0, when="2026-01-01T00:00:00"),
        _cell("p.a", 1, 40.0, when="2026-01-02T00:00:00"),  # the same cell under a newer key: it wins
        _cell("p.a", 2, 10.0),
        _cell("p.a", 3, 20.0),
        _cell("p.a", 4, 999.0, status="failed"),  # a failed cell's time is not a cost
        _cell("p.a", 1, 5.0, profile="smoke"),  # another profile is another cell
    ]
    model = progress.CostModel.from_cells(cells, profile="mini")
    assert model.expected("p.a", {"n": 1}, "mini", 0) == 40.0
    assert model.expected("p.a", {"n": 1}, "smoke", 0) == 5.0
    # an unseen cell or seed: the median of the experiment's cells (their latest times 40, 10, 20)
    assert model.expected("p.a", {"n": 9}, "mini", 0) == 20.0
    assert model.expected("p.a", {"n": 1}, "mini", 1) == 20.0
    assert model.expected("p.b", {"n": 1}, "mini", 0) == progress.DEFAULT_COST_S["mini"]


def test_eta_sums_the_expected_costs_left_not_the_mean_so_far():
    now = [0.0]
    eta = progress.Eta({"slow": 600.0, "fast1": 1.0, "fast2": 1.0}, clock=lambda: now[0])
    assert eta.remaining() == 602.0
    eta.start("fast1")
    now[0] = 0.5
    assert eta.remaining() == 601.5  # the cell in progress counts for what is left of it
    now[0] = 30.0  # a slow finish of a fast cell does not scale the others (a running mean would)
    eta.finish("fast1")
    assert eta.remaining() == 601.0
    eta.start("slow")
    now[0] = 330.0
    assert eta.remaining() == 301.0
    now[0] = 2000.0
    assert eta.remaining() == 1.0  # an overrun cell counts as zero, never negative
    assert progress.Eta({"a": 60.0, "b": 60.0}, workers=2).remaining() == 60.0
    assert [progress.format_seconds(s) for s in (42, 185, 3720)] == ["42s", "3m05s", "1h02m"]


def test_mode_is_bar_only_on_a_terminal(tmp_path):
    class Tty:
        def isatty(self):
            return True

    with open(tmp_path / "log", "w") as log:
        assert progress.choose_mode(True, [log, Tty()]) == "lines"
        assert progress.choose_mode(True, [Tty(), log]) == "lines"
    assert progress.choose_mode(True, [Tty(), Tty()]) == "bar"
    assert progress.choose_mode(False, [Tty(), Tty()]) == "off"


def _cli(*args, env_extra=None):
    env = {**os.environ, "ENERGYBENCH_PLUGINS": "tests.suite.harness.toy_experiments", "PYTHONPATH": str(REPO),
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_a_log_gets_one_plain_line_per_cell_and_no_cursor_movement(tmp_path):
    res = _cli("run", "toypaper.square", "toypaper.flaky", "--profile", "smoke", "--device", "cpu",
               "--results", str(tmp_path / "results"))
    assert res.returncode == 1  # toypaper.flaky fails one cell
    out = res.stdout + res.stderr
    assert "\r" not in out and "\x1b[" not in out
    lines = [line for line in res.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 6
    assert lines[0].startswith("[1/6] ") and lines[-1].startswith("[6/6] ")
    assert any(" failed " in line and "toypaper.flaky" in line for line in lines)
    assert sum(" ok " in line for line in lines) == 5
    assert "metrics:" in res.stdout and "done in" in res.stdout  # after the last cell, not silence
    quiet = _cli("run", "toypaper.square", "--profile", "smoke", "--device", "cpu", "--no-progress",
                 "--results", str(tmp_path / "results"))
    assert quiet.returncode == 0 and not [line for line in quiet.stdout.splitlines() if line.startswith("[")]


def test_help_describes_the_tool_with_examples_and_exit_codes():
    res = _cli("--help")
    assert res.returncode == 0
    assert "The ``energybench`` command" not in res.stdout
    assert "examples:" in res.stdout and "energybench reproduce" in res.stdout and "exit codes:" in res.stdout
    assert "--no-progress" in _cli("run", "--help").stdout


def test_summary_counts_verdicts_per_paper_and_names_failures(tmp_path):
    papers = tmp_path / "papers" / "toypaper"
    papers.mkdir(parents=True)
    (papers / "paper.yaml").write_text(
        "paper: toypaper\ntitle: Toy\nclaims:\n"
        "  - {id: bigger-wins, kind: ordering, text: n=4 above n=1, chain: [{row: n=4}, {row: n=1}]}\n"
        "  - {id: smaller-wins, kind: ordering, text: n=1 above n=4, chain: [{row: n=1}, {row: n=4}]}\n"
        "  - {id: peer-measured, kind: ordering, text: peer, chain: [{row: peer}, {row: ok}]}\n")
    # mini: claims are not judged at smoke
    opts = runner.Options(results=tmp_path / "results", progress=False, device="cpu", profile="mini")
    runner.run(registry.resolve(["toypaper"]), opts)
    summaries = progress.paper_summaries(tmp_path / "results", profile="mini", papers_root=tmp_path / "papers")
    toy = next(s for s in summaries if s.paper == "toypaper")
    assert toy.counts["reproduced"] == 1 and toy.counts["not reproduced"] == 1 and toy.counts["not run"] == 1
    assert "not reproduced: smaller-wins" in toy.failures
    assert any(f.startswith("cell failed: toypaper.flaky") for f in toy.failures)
    text = progress.summary_text(summaries, report=tmp_path / "reports" / "index.html")
    assert "toypaper     1 reproduced, 1 not reproduced, 1 not run" in text
    assert "not reproduced: smaller-wins" in text and text.rstrip().endswith("reports/index.html")
    assert len(text.splitlines()) < 25  # one screen


def test_a_cached_rerun_recomputes_nothing_and_reads_each_file_once(tmp_path, monkeypatch):
    experiments = [registry.get("toypaper.square"), registry.get("toypaper.skipped")]
    opts = runner.Options(results=tmp_path / "results", progress=False, device="cpu", profile="mini")
    first = runner.run(experiments, opts)
    assert first.ran == 8 and first.not_run == 2  # 4 cells x 2 seeds; skipped measures nothing

    calls = {"current_cells": 0, "parse": 0, "compute": []}
    current, parse, compute = runner.current_cells, keys._parse_imports, runner.compute

    def counting_compute(task, *args, **kwargs):
        calls["compute"].append(task.experiment)
        return compute(task, *args, **kwargs)

    def counting_current(cells):
        calls["current_cells"] += 1
        return current(cells)

    def counting_parse(path, module):
        calls["parse"] += 1
        return parse(path, module)

    monkeypatch.setattr(runner, "compute", counting_compute)
    monkeypatch.setattr(runner, "current_cells", counting_current)
    monkeypatch.setattr(keys, "_parse_imports", counting_parse)
    keys.source_hash.cache_clear()
    again = runner.run(experiments, opts)
    assert again.cached == 8 and again.ran == 0
    # only the cells that measured nothing are tried again (a peer may have been installed since)
    assert calls["compute"] == ["toypaper.skipped"] * 2
    assert calls["current_cells"] == 1  # once for every experiment's metrics file, not once each
    parsed_once = calls["parse"]
    keys.source_hash.cache_clear()
    keys.source_hash("tests.suite.harness.toy_experiments")
    assert calls["parse"] == parsed_once  # a file already parsed (same mtime and size) is not parsed again
    assert (tmp_path / "results" / "metrics" / "toypaper.square.json").is_file()


def test_reproduce_reuses_an_up_to_date_report_and_renders_again_after_a_change(tmp_path):
    args = ("reproduce", "toypaper.square", "toypaper.skipped", "--profile", "smoke", "--device", "cpu",
            "--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports"))
    first = _cli(*args)
    assert first.returncode == 0 and "rendering" in first.stdout and "summary: judging" in first.stdout
    assert "report: " in first.stdout.splitlines()[-1]
    not_run = [p for p in (tmp_path / "results" / "cells").glob("toypaper-skipped-*.json")]
    stamp = not_run[0].stat().st_mtime_ns
    second = _cli(*args)
    if "is up to date" not in second.stdout:  # a code file was edited meanwhile (a shared checkout)
        second = _cli(*args)
    assert second.returncode == 0 and "is up to date" in second.stdout and "rendering" not in second.stdout
    # the retried not-run cell measured nothing again, for the same reason: its file is kept
    assert not_run[0].stat().st_mtime_ns == stamp
    assert second.stdout.split("summary (claims")[1] == first.stdout.split("summary (claims")[1]
    # a changed cell (here: one more result) makes the report stale
    extra = _cli("run", "toypaper.flaky", "--profile", "smoke", "--device", "cpu", "--no-progress",
                 "--results", str(tmp_path / "results"))
    assert extra.returncode == 1
    third = _cli(*args)
    assert "rendering" in third.stdout and "is up to date" not in third.stdout
    assert "cell failed: toypaper.flaky" in third.stdout


def test_guessed_costs_follow_this_runs_times_of_the_same_experiment_only():
    eta = progress.Eta({"a1": 60.0, "a2": 60.0, "a3": 60.0, "b1": 60.0, "known": 7.0}, clock=lambda: 0.0,
                       guessed={"a1": "p.a", "a2": "p.a", "a3": "p.a", "b1": "p.b"})
    eta.finish("a1")
    eta.observed("a1", "p.a", 2.0)
    assert eta.remaining() == 2.0 + 2.0 + 60.0 + 7.0  # p.b keeps its guess, a recorded cost stays


def test_a_first_runs_eta_uses_the_profiles_stated_cost_then_a_measured_default(monkeypatch):
    """Nothing recorded anywhere: an experiment's ``expected_s`` setting, else the default for
    the profile, which is of the size of a real run's mean cell (issue 14: 5 s per smoke cell
    showed 19m55s for a run of 239 cells that took 2m42s)."""

    class Stated:
        def settings(self, profile):
            return {"expected_s": 12.5} if profile == "mini" else {}

    real_get = registry.get
    monkeypatch.setattr(registry, "get", lambda i: Stated() if i == "p.stated" else real_get(i))
    model = progress.CostModel.from_cells([], profile="mini")
    assert model.estimate("p.stated", {"n": 1}, "mini", 0) == (12.5, False)
    assert model.estimate("p.unknown", {"n": 1}, "mini", 0) == (progress.DEFAULT_COST_S["mini"], False)
    smoke = progress.CostModel.from_cells([], profile="smoke")
    assert smoke.expected("p.stated", {"n": 1}, "smoke", 0) == progress.DEFAULT_COST_S["smoke"]
    # the first ETA of a smoke run of 239 unseen cells is within 2x of the 162 s it took
    first = progress.Eta({i: smoke.expected("p.unknown", {"n": i}, "smoke", 0) for i in range(239)}).remaining()
    assert 81 <= first <= 324, first
