"""What the suite reproduces: every table and figure of each paper's ``paper.yaml`` beside the
experiment registered for it (or "no experiment yet"), and how much of a grid has results.

Two views, both from the registry and the paper files only (never from results, so the README
cannot claim more than the code has):

* :func:`coverage_rows` / :func:`markdown` / :func:`text`: one line per paper table or figure,
  with its experiment and the profiles (and their datasets) it runs at; ``energybench list
  --coverage [--markdown]`` prints it and ``energybench list --coverage --write-readme``
  rewrites the README block between :data:`START` and :data:`END`.
* :func:`grid_coverage`: per experiment, how many of the profile's cells x seeds have a result
  (the claim engine's completeness rule, ``suite.harness.claims.Coverage``).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from suite.harness import claims as claims_mod
from suite.harness import keys, registry

START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"
NO_EXPERIMENT = "no experiment yet"
_DONE_STATUSES = ("ok", "not_run")


@dataclass(frozen=True)
class Unit:
    """One table or figure of a paper (a ``paper.yaml`` table entry, or a registered experiment
    that no entry names).

    Attributes:
        paper: paper id.
        table: the paper's name for it ("Table 2 (multi-view)", "Fig. 6").
        experiment: the experiment id that rebuilds it, or None.
        registered: that experiment is registered.
        profiles: per profile, the dataset ids its cells read (registered experiments only).
        values: how many published values the paper file holds for it.
        claims: how many of the paper's claims read it.
    """

    paper: str
    table: str
    experiment: str | None
    registered: bool
    profiles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    values: int = 0
    claims: int = 0
    title: str = ""


def paper_files(experiments: Iterable[registry.Experiment], papers_root: Path | None = None) -> list[claims_mod.Paper]:
    """Every ``paper.yaml``: beside each registered experiment's module and in the sibling
    folders of those packages (a paper with no experiment yet still counts), or under
    ``papers_root`` when given."""
    if papers_root is not None:
        return claims_mod.find_papers(Path(papers_root))
    folders: set[Path] = set()
    for exp in experiments:
        try:
            spec = importlib.util.find_spec(exp.module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            folder = Path(spec.origin).parent
            folders.add(folder)
            if (folder / "paper.yaml").is_file():  # a paper package: its siblings are papers too
                folders.update(p.parent for p in folder.parent.glob("*/paper.yaml"))
    return [_load_paper(f / "paper.yaml") for f in sorted(folders) if (f / "paper.yaml").is_file()]


_PAPERS: dict[tuple[str, int, int], claims_mod.Paper] = {}


def _load_paper(path: Path) -> claims_mod.Paper:
    """``claims.load_paper``, once per file version in a process: the report, the metrics files
    and the closing summary each ask for every paper, and parsing them is seconds on 2 cores."""
    st = path.stat()
    ident = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if ident not in _PAPERS:
        _PAPERS[ident] = claims_mod.load_paper(path)
    return _PAPERS[ident]


def _profiles(exp: registry.Experiment) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for profile in registry.PROFILES:
        cells = exp.cells(profile)
        if not cells:
            continue
        datasets = sorted({d for cell in cells for d in exp.dataset_ids(cell, profile)})
        out.append((profile, tuple(datasets)))
    return tuple(out)


def units(paper: claims_mod.Paper, experiments: Mapping[str, registry.Experiment]) -> list[Unit]:
    """The paper's tables and figures in its file's order, then registered experiments of the
    paper that no entry names."""
    out, named = [], set()
    for table in paper.tables:
        exp = experiments.get(table.experiment) if table.experiment else None
        # A selection without a table reads its experiment's own table (the claim engine's rule).
        own = exp.table if exp is not None else None
        n_claims = sum(1 for c in paper.claims
                       if table.table in {s.get("table") or own for s in claims_mod.selections(c)}
                       and table.experiment in claims_mod.claim_experiments(c, paper.tables))
        out.append(Unit(paper.id, table.table, table.experiment, exp is not None,
                        _profiles(exp) if exp is not None else (), len(table.values), n_claims, paper.title))
        named.add(table.experiment)
    for exp in experiments.values():
        if exp.paper == paper.id and exp.id not in named:
            n_claims = sum(1 for c in paper.claims if exp.id in claims_mod.claim_experiments(c, paper.tables))
            out.append(Unit(paper.id, exp.table, exp.id, True, _profiles(exp), 0, n_claims, paper.title))
    return out


def coverage_rows(experiments: Mapping[str, registry.Experiment] | None = None,
                  papers: list[claims_mod.Paper] | None = None) -> list[Unit]:
    """Every unit of every paper (papers sorted by id)."""
    if experiments is None:
        experiments = registry.all_experiments()
    if papers is None:
        papers = paper_files(experiments.values())
    return [u for p in sorted(papers, key=lambda p: p.id) for u in units(p, experiments)]


def _profile_text(unit: Unit) -> str:
    if not unit.registered:
        return NO_EXPERIMENT
    return "; ".join(f"{p}" + (f" ({', '.join(d)})" if d else "") for p, d in unit.profiles)


def summary(rows: list[Unit]) -> dict[str, tuple[int, int]]:
    """Per paper: (units with a registered experiment, all units)."""
    out: dict[str, tuple[int, int]] = {}
    for u in rows:
        done, total = out.get(u.paper, (0, 0))
        out[u.paper] = (done + u.registered, total + 1)
    return out


def _names(rows: list[Unit], paper: str, registered: bool) -> str:
    return ", ".join(u.table for u in rows if u.paper == paper and u.registered == registered) or "-"


def markdown(rows: list[Unit]) -> str:
    """The README block: a line per paper with its counts, then a line per table or figure."""
    lines = ["| paper | id | tables and figures with an experiment | no experiment yet |", "|---|---|---|---|"]
    titles = {u.paper: u.title for u in rows}
    for paper, (done, total) in summary(rows).items():
        lines.append(f"| {titles[paper] or paper} | `{paper}` | {done} of {total}: {_names(rows, paper, True)} "
                     f"| {_names(rows, paper, False)} |")
    lines += ["", "| paper | table / figure | experiment | profiles (datasets) | published values | claims |",
              "|---|---|---|---|---|---|"]
    for u in rows:
        exp = f"`{u.experiment}`" if u.experiment and u.registered else (
            f"{NO_EXPERIMENT} (`{u.experiment}`)" if u.experiment else NO_EXPERIMENT)
        profiles = _profile_text(u) if u.registered else "-"
        lines.append(f"| `{u.paper}` | {u.table} | {exp} | {profiles} | {u.values} | {u.claims} |")
    return "\n".join(lines) + "\n"


def text(rows: list[Unit]) -> str:
    """The same as :func:`markdown`, for a terminal."""
    out = []
    for paper, (done, total) in summary(rows).items():
        out.append(f"{paper}: {done} of {total} tables and figures have an experiment")
        for u in (r for r in rows if r.paper == paper):
            exp = u.experiment or "-"
            state = _profile_text(u)
            out.append(f"  {u.table:34s} {exp:26s} {state}")
    return "\n".join(out) + "\n"


def block(rows: list[Unit]) -> str:
    """The README block, markers included."""
    return (f"{START}\n<!-- generated by `energybench list --coverage --write-readme`; do not edit by hand -->\n"
            f"{markdown(rows)}{END}")


def readme_block(readme_text: str) -> str | None:
    """The block currently in a README (markers included), or None when its markers are absent."""
    start, end = readme_text.find(START), readme_text.find(END)
    if start < 0 or end < start:
        return None
    return readme_text[start:end + len(END)]


def write_readme(path: Path, rows: list[Unit]) -> bool:
    """Replace the block between the markers of ``path``; True when the file changed.

    Raises:
        ValueError: the README has no ``<!-- coverage:start -->`` ... ``<!-- coverage:end -->`` markers.
    """
    path = Path(path)
    current = path.read_text()
    old = readme_block(current)
    if old is None:
        raise ValueError(f"{path}: expected the markers {START} and {END} around the table of papers; "
                         "add them where the table should go")
    new = current.replace(old, block(rows), 1)
    if new != current:
        path.write_text(new)
    return new != current


def grid_coverage(experiments: Mapping[str, registry.Experiment], cells: list[dict[str, Any]], profile: str,
                  ids: Iterable[str] = ()) -> dict[str, claims_mod.Coverage]:
    """Per experiment id (the registered ones and ``ids``): how many of the profile's cells x
    seeds have a stored result among ``cells`` (current cells of any profile)."""
    out: dict[str, claims_mod.Coverage] = {}
    for exp_id in set(experiments) | set(ids):
        exp = experiments.get(exp_id)
        if exp is None:
            out[exp_id] = claims_mod.Coverage(registered=False)
            continue
        seeds = tuple(exp.settings(profile).get("seeds", (0,)))
        expected = {(keys.canonical(c), int(s)) for c in exp.cells(profile) for s in seeds}
        done, failed = set(), set()
        for cell in cells:
            if cell.get("experiment") != exp_id or cell.get("profile") != profile:
                continue
            key = (keys.canonical(cell["cell"]), int(cell["seed"]))
            if key not in expected:
                continue
            (done if cell.get("status") in _DONE_STATUSES else failed).add(key)
        out[exp_id] = claims_mod.Coverage(True, len(expected), len(done), len(failed - done))
    return out


__all__ = ["Unit", "paper_files", "units", "coverage_rows", "markdown", "text", "block", "readme_block",
           "write_readme", "grid_coverage", "START", "END"]
