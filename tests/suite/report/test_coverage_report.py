"""The report and README show what is not reproduced (issue 9), on a small synthetic paper: every
table and figure of its paper.yaml is listed and counted, "no experiment yet" included; a claim
waits for every cell; the README's coverage block agrees with the registry."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from suite import cli
from suite.harness import experiment, registry, runner, store
from suite.report import coverage
from suite.report.render import build

REPO = Path(__file__).resolve().parents[3]
LENGTHS = (1.0, 0.5, 0.0)
PROFILES = {"smoke": {"seeds": [0]}, "mini": {"seeds": [0, 1]}, "full": {"seeds": [0]}}

PAPER = textwrap.dedent("""\
    paper: toyrules
    title: A toy paper for the coverage rules
    tables:
    - {table: Fig. 6, experiment: toyrules.lengths, caption: lengths}
    - table: Table 2
      experiment: toyrules.later
      caption: not built yet
      judge: {tolerance: 1.0}
      values:
      - {row: ADM, column: all, metric: miou, value: 61.7}
    - {table: Fig. 7, caption: no experiment planned}
    claims:
    - id: adm-beats-gd-over-lengths
      kind: ordering
      text: ADM beats GD (mean over the three lengths).
      experiment: toyrules.lengths
      min_effect: 0.5
      chain:
      - {table: Fig. 6, row: ADM, column: [length 1, length 0.5, length 0], metric: miou, each: lengths}
      - {table: Fig. 6, row: GD, column: [length 1, length 0.5, length 0], metric: miou, each: lengths}
    - id: later-claim
      kind: ordering
      experiment: toyrules.later
      chain: [{table: Table 2, row: ADM}, {table: Table 2, row: GD}]
    - id: full-only
      kind: value
      experiment: toyrules.lengths
      select: {table: Fig. 6, row: ADM, column: length 1, metric: miou}
      expected: 61.7
      tolerance: 1.0
    """)


def lengths(ctx, cell):
    row = cell["method"]
    value = (60.0 if row == "ADM" else 50.0) - 10 * (1 - cell["length"]) + 0.3 * ctx.seed
    ctx.record(row=row, column=f"length {cell['length']:g}", metric="miou", value=value, unit="%",
               higher_is_better=True)
    return ctx.records


@pytest.fixture
def toy_paper(tmp_path):
    """Registers ``toyrules.lengths`` for one test (removed after it) and writes its paper.yaml."""
    experiment("toyrules.lengths", table="Fig. 6", title="mIOU vs scribble length",
               grid={"length": list(LENGTHS), "method": ["ADM", "GD"]}, profiles=PROFILES)(lengths)
    root = tmp_path / "papers"
    (root / "toyrules").mkdir(parents=True)
    (root / "toyrules" / "paper.yaml").write_text(PAPER)
    try:
        yield root
    finally:
        registry._EXPERIMENTS.pop("toyrules.lengths", None)


def _index_row(index: str, paper: str) -> list[str]:
    row = re.search(rf"<tr><td><a href=\"{paper}.html\">.*?</tr>", index, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_report_lists_every_paper_table_and_waits_for_every_cell(toy_paper, tmp_path):
    options = runner.Options(profile="mini", device="cpu", results=tmp_path / "results", progress=False)
    exp = registry.get("toyrules.lengths")
    tasks = runner.plan([exp], options)
    assert len(tasks) == 12  # 3 lengths x 2 methods x 2 seeds
    for task in tasks[:5]:  # a partial run
        runner.execute(task, options)
    index = build(tmp_path / "results", tmp_path / "reports", profile="mini", papers_root=toy_paper).read_text()
    page = (tmp_path / "reports" / "toyrules.html").read_text()
    for name in ("Fig. 6", "Table 2", "Fig. 7"):
        assert f"<h3>{name}</h3>" in page, name
    assert "no experiment yet: toyrules.later is not registered" in page
    assert page.count("no experiment yet") >= 3  # the two headings and Table 2's published row
    assert "61.7" in page  # the published value of a table nobody rebuilds yet is still shown
    assert ("incomplete: 1 of 3 lengths measured (missing length 0.5, length 0); "
            "5 of 12 cells of toyrules.lengths have results") in page
    head = re.findall(r"<th>(.*?)</th>", index)
    assert head[1] == "tables with results / all tables"
    assert head[3:10] == ["reproduced", "within noise", "not reproduced", "incomplete", "not run", "not judged",
                          "no experiment"]
    cells = _index_row(index, "toyrules")
    assert cells[1] == "1 / 3" and cells[2] == "3"
    assert cells[3:10] == ["0", "0", "0", "1", "0", "1", "1"]

    runner.run([exp], options)  # the rest of the grid
    index = build(tmp_path / "results", tmp_path / "reports", profile="mini", papers_root=toy_paper).read_text()
    page = (tmp_path / "reports" / "toyrules.html").read_text()
    assert _index_row(index, "toyrules")[3:10] == ["1", "0", "0", "0", "0", "1", "1"]
    claim_row = re.search(r'<tr id="claim-adm-beats-gd-over-lengths"[^>]*>.*?</tr>', page, re.S).group(0)
    assert ">reproduced<" in claim_row and "1 seed" not in claim_row and "2 seeds" in claim_row
    links = re.findall(r'href="#cell-([^"]+)"', claim_row)
    assert len(links) == 12
    for key in links:  # every link lands on a provenance row
        assert f'<tr id="cell-{key}">' in page
    # one seed only (the toy's full profile): the verdict says so
    one = tmp_path / "one-seed"
    runner.run([exp], runner.Options(profile="full", device="cpu", results=one / "results", progress=False))
    build(one / "results", one / "reports", profile="full", papers_root=toy_paper)
    page = (one / "reports" / "toyrules.html").read_text()
    claim_row = re.search(r'<tr id="claim-adm-beats-gd-over-lengths"[^>]*>.*?</tr>', page, re.S).group(0)
    assert "reproduced (1 seed)" in claim_row, claim_row
    # and nothing is judged at smoke, where runs only exercise the code path
    runner.run([exp], runner.Options(profile="smoke", device="cpu", results=one / "results", progress=False))
    build(one / "results", one / "reports", profile="smoke", papers_root=toy_paper)
    page = (one / "reports" / "toyrules.html").read_text()
    claim_row = re.search(r'<tr id="claim-adm-beats-gd-over-lengths"[^>]*>.*?</tr>', page, re.S).group(0)
    assert "not judged" in claim_row and "never judged at the smoke profile" in claim_row


def test_coverage_lists_tables_without_experiment(toy_paper):
    papers = coverage.paper_files([], toy_paper)
    rows = coverage.coverage_rows(registry.all_experiments(), papers)
    assert [(u.table, u.experiment, u.registered) for u in rows] == [
        ("Fig. 6", "toyrules.lengths", True), ("Table 2", "toyrules.later", False), ("Fig. 7", None, False)]
    assert rows[0].profiles == (("smoke", ()), ("mini", ()), ("full", ()))
    assert coverage.summary(rows) == {"toyrules": (1, 3)}
    text = coverage.markdown(rows)
    assert "| A toy paper for the coverage rules | `toyrules` | 1 of 3: Fig. 6 | Table 2, Fig. 7 |" in text
    assert "| `toyrules` | Table 2 | no experiment yet (`toyrules.later`) | - | 1 | 1 |" in text


def test_write_readme_rewrites_only_the_block(toy_paper, tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{coverage.START}\nold table\n{coverage.END}\n\nrest\n")
    rows = coverage.coverage_rows(registry.all_experiments(), coverage.paper_files([], toy_paper))
    monkeypatch.setattr(coverage, "coverage_rows", lambda: rows)
    assert cli.main(["list", "--coverage", "--write-readme", str(readme)]) == cli.EXIT_OK
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n") and text.endswith("\n\nrest\n") and "old table" not in text
    assert coverage.readme_block(text) == coverage.block(rows)
    assert cli.main(["list", "--coverage", "--write-readme", str(readme)]) == cli.EXIT_OK
    assert "already up to date" in capsys.readouterr().out
    readme.write_text("# no markers\n")
    assert cli.main(["list", "--coverage", "--write-readme", str(readme)]) == cli.EXIT_USAGE
    assert "coverage:start" in capsys.readouterr().err
    assert cli.main(["list", "--coverage", "--markdown"]) == cli.EXIT_OK
    assert capsys.readouterr().out == coverage.markdown(rows)


def test_readme_coverage_block_agrees_with_the_registry():
    """The README's table of papers is generated: regenerate it with
    ``energybench list --coverage --write-readme`` after adding an experiment or a paper table."""
    block = coverage.readme_block((REPO / "README.md").read_text())
    assert block is not None, f"README.md has no {coverage.START} ... {coverage.END} block"
    assert block == coverage.block(coverage.coverage_rows()), (
        "README.md's coverage block disagrees with the registry and the paper files: run "
        "`energybench list --coverage --write-readme`")


def test_every_paper_table_is_in_the_coverage_and_counts_match_the_paper_files():
    rows = coverage.coverage_rows()
    papers = coverage.paper_files(registry.all_experiments().values())
    for paper in papers:
        mine = [u for u in rows if u.paper == paper.id]
        assert [u.table for u in mine][:len(paper.tables)] == [t.table for t in paper.tables]
    assert {"adm", "tvlayers", "wibergian"} <= {p.id for p in papers}
    stored = store.frame([])  # the report's frame of no results: nothing counts as reproduced
    assert stored.empty
