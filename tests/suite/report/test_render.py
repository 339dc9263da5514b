"""The report's layout (issue 14) on the toy experiments: summary first, then tables, then claims;
each table as CSV; a paper row without our measurement says why; provenance compact; an empty
results folder says so. The browser checks are in test_browser.py."""
from __future__ import annotations

import csv
import re

import pandas as pd

from suite.harness import claims, registry, runner, store
from suite.report import render
from tests.suite.harness import toy_experiments  # noqa: F401  (registers toypaper.*)


def _report(tmp_path):
    options = runner.Options(results=tmp_path / "results", progress=False, device="cpu", profile="smoke")
    runner.run(registry.resolve(["toypaper"]), options)
    render.build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    return (tmp_path / "reports" / "toypaper.html").read_text()


def test_a_page_opens_with_its_summary_then_tables_then_claims_and_provenance(tmp_path):
    page = _report(tmp_path)
    order = [page.index(marker) for marker in ('id="summary"', "<h3>Table 1</h3>", 'id="provenance"')]
    assert order == sorted(order)
    assert "cell runs (cells x seeds) with results: 6 / 7" in page and "1 failed" in page
    # every table is sortable and has its CSV beside the page, with the rows the page shows
    assert page.count('class="sortable"') >= 3
    links = re.findall(r'href="(toypaper/[^"]+\.csv)"', page)
    assert links and all((tmp_path / "reports" / link).is_file() for link in links)
    with open(tmp_path / "reports" / "toypaper" / "toypaper-square-table-1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["row"] for r in rows] == ["n=1", "n=2", "n=3", "n=4"] and rows[2]["ours"] == "9"
    assert rows[2]["spread"] == "1 seed"


def test_provenance_is_compact_with_short_hashes_and_no_peak_memory_for_cells_that_did_not_run(tmp_path):
    page = _report(tmp_path)
    cells = store.load_cells(tmp_path / "results")
    skipped = next(c for c in cells if c["status"] == "not_run")
    row = page[page.index(f'id="cell-{skipped["key"]}"'):]
    row = row[:row.index("</tr>")]
    peak = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert peak[-1].strip() == "", row  # the peak column of a not-run cell is blank
    commit = skipped["provenance"]["git_commit"] or ""
    if len(commit) > 7:
        assert commit not in page and commit[:7] in page
    # the environment (python, torch, cpu, ...) is listed once, not in every row
    assert page.count(f'<code>{skipped["provenance"]["python"]}</code>') == 1


def test_a_paper_row_without_our_measurement_says_why():
    frame = pd.DataFrame([{"table": "T", "row": "a", "column": "c", "metric": "m", "value": 1.0, "std": None,
                           "step": None, "note": None, "unit": "", "seed": 0}])
    table = claims.PaperTable("x.t", "T", "", "", {}, ({"row": "a", "column": "c", "metric": "m", "value": 1.0},
                                                      {"row": "gpu", "column": "c", "metric": "m", "value": 2.0}))
    waiting = render.table_lines("T", table, frame.iloc[0:0], "mini", coverage=claims.Coverage(True, 4, 0, 0))
    assert all(line.ours == "not run" and "not run yet: none of the 4 cell runs of x.t" in line.note
               and "energybench run x.t --profile mini" in line.note for line in waiting)
    partial = render.table_lines("T", table, frame, "mini", coverage=claims.Coverage(True, 4, 2, 1))
    assert partial[0].ours == "1" and partial[0].spread == "1 seed" and partial[0].note == ""
    assert "2 of 4 cell runs of x.t have results, 1 failed" in partial[1].note
    complete = render.table_lines("T", table, frame, "mini", coverage=claims.Coverage(True, 4, 4, 0))
    assert "none of the 4 cell runs of the mini grid records this row" in complete[1].note


def test_a_value_measured_on_a_random_init_network_is_shown_but_not_judged_at_full():
    note = "random init (no ImageNet checkpoint): set $ENERGYBENCH_WEIGHTS"
    frame = pd.DataFrame([{"table": "T", "row": r, "column": "c", "metric": "m", "value": 1.0, "std": None,
                           "step": None, "note": n, "unit": "", "seed": 0} for r, n in (("a", note), ("b", None))])
    table = claims.PaperTable("x.t", "T", "", "", {"tolerance": 0.5}, (
        {"row": "a", "column": "c", "metric": "m", "value": 1.0}, {"row": "b", "column": "c", "metric": "m", "value": 1.0}))
    lines = render.table_lines("T", table, frame, "full", coverage=claims.Coverage(True, 2, 2, 0))
    assert lines[0].ours == "1" and lines[0].verdict == "not judged: random init" and note in lines[0].note
    assert lines[1].verdict == claims.REPRODUCED and lines[1].note == ""


def test_an_empty_results_folder_gives_pages_that_say_so(tmp_path):
    (tmp_path / "results").mkdir()
    index = render.build(tmp_path / "results", tmp_path / "reports", profile="smoke").read_text()
    assert "No results yet" in index and "energybench reproduce --profile smoke" in index
    assert "No results yet" in (tmp_path / "reports" / "toypaper.html").read_text()


def test_the_verdict_chart_draws_one_bar_per_verdict_that_occurs():
    svg = render.verdict_chart({"reproduced": 3, "within noise": 0, "not reproduced": 1})
    assert svg.count("<rect") == 2 and "reproduced" in svg and "within noise" not in svg
    assert render.verdict_chart({"reproduced": 0}) == ""


def test_a_missing_dataset_note_names_no_folder_of_the_machine_that_ran_it():
    note = ("not run: dataset 'gsc-scribbles' is missing: looked in /tmp/x/data/gsc-scribbles, /home/u/repo/data/"
            "gsc-scribbles. To add it: get the dataset from its authors, then run `energybench data add PATH --as "
            "gsc-scribbles` (layout: images/)")
    frame = pd.DataFrame([{"table": "Fig. 5", "step": None, "row": "LSM", "column": "gsc", "metric": "IoU",
                           "value": None, "std": None, "note": note, "unit": "", "seed": 0}])
    [line] = render.table_lines("Fig. 5", None, frame, "smoke")
    assert line.ours == "not run"
    assert line.note == ("not run: dataset 'gsc-scribbles' is missing here. To add it: get the dataset from its "
                         "authors, then run `energybench data add PATH --as gsc-scribbles` (layout: images/)")
