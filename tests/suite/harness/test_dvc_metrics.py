"""The dvc metrics files (suite/harness/dvc_metrics.py): one per stage, one small shared schema."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from suite.harness import claims, dvc_metrics, registry, runner
from tests.suite.harness import toy_experiments  # noqa: F401  (registers toypaper.*)

ROOT = Path(__file__).resolve().parents[3]


def _run(tmp_path, *ids):
    options = runner.Options(results=tmp_path / "results", progress=False, device="cpu", profile="smoke")
    runner.run([registry.get(i) for i in ids], options)
    return tmp_path / "results"


def test_every_registered_experiment_and_every_dvc_stage_gets_a_file_after_any_run(tmp_path):
    results = _run(tmp_path, "toypaper.square", "toypaper.flaky")
    written = {p.stem for p in (results / "metrics").glob("*.json")}
    assert written == set(registry.all_experiments())
    # dvc.yaml names results/metrics/<id>.json for each stage: none may be missing after a run
    # ("DVC failed to load some metrics"), whichever tables ran
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    named = {next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])}
    assert named, "dvc.yaml declares no metrics"
    for path in named:
        assert (results / Path(path).relative_to("results")).is_file(), path


def test_the_schema_is_small_and_shared_and_the_headline_is_the_first_grid_row(tmp_path):
    results = _run(tmp_path, "toypaper.square", "toypaper.flaky")
    square = json.loads((results / "metrics" / "toypaper.square.json").read_text())
    flaky = json.loads((results / "metrics" / "toypaper.flaky.json").read_text())
    assert square["cells"] == {"planned": 4, "done": 4, "failed": 0}
    assert flaky["cells"] == {"planned": 2, "done": 1, "failed": 1}
    # the grid's first cell (n=1), not whichever cell file sorts first by hash
    assert square["headline"] == {"what": "Table 1: n=1 / square / value", "ours": 1.0}
    assert square["claims"] == {"total": 0, "reproduced": 0, "within_noise": 0, "not_reproduced": 0, "undecided": 0}
    untouched = json.loads((results / "metrics" / "toypaper.skipped.json").read_text())
    assert untouched["cells"]["done"] == 0 and "headline" not in untouched
    # one schema: the keys dvc metrics show turns into columns are the same in every file
    shapes = set()
    for path in (results / "metrics").glob("*.json"):
        content = json.loads(path.read_text())
        shapes.add(tuple(sorted(k for k in content if k != "headline")))
        assert set(content.get("headline", {})) <= {"what", "ours", "paper"}
    assert shapes == {("cells", "claims", "profile")}


def test_a_cached_rerun_rewrites_no_metrics_file(tmp_path):
    results = _run(tmp_path, "toypaper.square")
    before = {p.name: p.stat().st_mtime_ns for p in (results / "metrics").glob("*.json")}
    _run(tmp_path, "toypaper.square")
    assert {p.name: p.stat().st_mtime_ns for p in (results / "metrics").glob("*.json")} == before


def test_the_headline_prefers_the_paper_rows_in_the_papers_order():
    frame = pd.DataFrame([
        {"table": "Table 1", "row": "b", "column": "c", "metric": "m", "value": 2.0, "step": None},
        {"table": "Table 1", "row": "a", "column": "c", "metric": "m", "value": 1.0, "step": None},
        {"table": "Table 1", "row": "a", "column": "c", "metric": "m", "value": 3.0, "step": None},
    ])
    table = claims.PaperTable("x.t1", "Table 1", "", "", {}, (
        {"row": "z", "column": "c", "metric": "m", "value": 9.0},  # not measured: skipped
        {"row": "a", "column": "c", "metric": "m", "value": 1.5},
    ))
    assert dvc_metrics.headline("x.t1", frame, [table]) == {"what": "Table 1: a / c / m", "ours": 2.0, "paper": 1.5}
    assert dvc_metrics.headline("x.t1", frame.iloc[0:0], [table]) is None
    assert dvc_metrics.headline("other", frame, [table])["what"] == "Table 1: b / c / m"
