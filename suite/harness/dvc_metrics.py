"""The per-table metrics files that ``dvc metrics show`` and ``dvc metrics diff`` read.

One file per registered experiment (one per ``dvc.yaml`` stage), ``results/metrics/<id>.json``,
written after every run for *every* registered experiment, so that no stage's file is missing
("DVC failed to load some metrics") whichever tables ran. All files share one small schema, so
that ``dvc metrics show`` (one row per file, one column per key found in any file) prints a
dozen columns, not the union of every table's rows and columns::

    {"profile": "mini",
     "cells": {"planned": 12, "done": 12, "failed": 0},
     "claims": {"total": 3, "reproduced": 2, "within_noise": 0, "not_reproduced": 1, "undecided": 0},
     "headline": {"what": "Table 1: Ours / 2D / time", "ours": 0.0123, "paper": 0.02}}

``cells``: the profile's cells x seeds and how many have a current result (the report's
counts). ``claims``: the verdicts of the paper's claims that read this experiment's records,
judged as the report judges them ("undecided": incomplete, not run, not judged). ``headline``:
one key measured value, the first row of the experiment's first paper table (in the order
``paper.yaml`` prints it) that has a measurement, with the published value beside it when there
is one; absent when nothing was measured. The full tables are in the HTML report.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from . import keys, registry, store

METRICS_DIR = "metrics"


def metrics_path(results: Path, experiment: str) -> Path:
    """``results/metrics/<experiment id>.json`` (the path ``dvc.yaml`` names for the stage)."""
    return Path(results) / METRICS_DIR / f"{experiment}.json"


def _claim_counts(verdicts: Iterable[Any]) -> dict[str, int]:
    from . import claims as claims_mod

    verdicts = list(verdicts)
    counts = {"total": len(verdicts)}
    for name in claims_mod.JUDGED:
        counts[name.replace(" ", "_")] = sum(v.verdict == name for v in verdicts)
    counts["undecided"] = sum(v.verdict not in claims_mod.JUDGED for v in verdicts)
    return counts


def headline(exp_id: str, frame: pd.DataFrame, paper_tables: Iterable[Any]) -> dict[str, Any] | None:
    """The experiment's key measured value (module doc), or None when nothing was measured.

    Args:
        exp_id: the experiment id.
        frame: today's records of that experiment at one profile (``store.frame``).
        paper_tables: the paper's tables (``claims.PaperTable``) whose experiment is ``exp_id``.
    """
    if frame.empty:
        return None
    frame = frame[frame.value.notna() & frame.step.isna()]
    if frame.empty:
        return None
    for table in paper_tables:
        if table.experiment != exp_id:
            continue
        for value in table.values:
            rows = frame[(frame.table == table.table) & (frame.row == value["row"])
                         & (frame.column == value["column"]) & (frame.metric == value["metric"])]
            if not rows.empty:
                out = {"what": f"{table.table}: {value['row']} / {value['column']} / {value['metric']}",
                       "ours": float(f"{rows.value.mean():.6g}")}
                if value.get("value") is not None:
                    out["paper"] = float(value["value"])
                return out
    first = frame.iloc[0]  # no paper value measured (a leaderboard, a row only we have): the first record
    rows = frame[(frame.table == first.table) & (frame.row == first.row) & (frame.column == first.column)
                 & (frame.metric == first.metric)]
    return {"what": f"{first.table}: {first.row} / {first.column} / {first.metric}",
            "ours": float(f"{rows.value.mean():.6g}")}


def summaries(cells: list[dict[str, Any]], *, profile: str,
              experiments: Iterable[registry.Experiment] | None = None) -> dict[str, dict[str, Any]]:
    """Per experiment id, the content of its metrics file (module doc).

    Args:
        cells: today's cells (``runner.current_cells``), any experiments and profiles.
        profile: the profile summarized.
        experiments: those to summarize (default: every registered one).
    """
    from suite.report import coverage as coverage_mod

    from . import claims as claims_mod

    registered = registry.all_experiments()
    experiments = list(registered.values()) if experiments is None else list(experiments)
    cells = [c for c in cells if c.get("profile") == profile]
    frame = store.frame(cells)
    papers = {p.id: p for p in coverage_mod.paper_files(registered.values(), None)}
    grid = coverage_mod.grid_coverage(
        registered, cells, profile,
        ids=[e for p in papers.values() for c in p.claims for e in claims_mod.claim_experiments(c, p.tables)])
    verdicts: dict[str, list] = {}
    for paper in papers.values():
        if any(e.paper == paper.id for e in experiments):
            verdicts[paper.id] = claims_mod.judge_all(paper, frame, profile=profile, coverage=grid)
    out = {}
    for exp in experiments:
        paper = papers.get(exp.paper)
        mine = [v for v in verdicts.get(exp.paper, [])
                if exp.id in claims_mod.claim_experiments(v.claim, paper.tables if paper else ())]
        cov = grid[exp.id]
        eframe = frame[(frame.experiment == exp.id)] if not frame.empty else frame
        if not eframe.empty:
            # in the grid's order (cells are stored by hash): the headline stays the same row
            # when the code changes the keys
            position = {keys.canonical(c): i for i, c in enumerate(exp.cells(profile))}
            order = eframe.cell.map(lambda c: position.get(keys.canonical(json.loads(c)), len(position)))
            eframe = eframe.assign(_grid=order.to_numpy()).sort_values("_grid", kind="stable")
        content: dict[str, Any] = {
            "profile": profile,
            "cells": {"planned": cov.expected, "done": cov.done, "failed": cov.failed},
            "claims": _claim_counts(mine),
        }
        top = headline(exp.id, eframe, paper.tables if paper else ())
        if top is not None:
            content["headline"] = top
        out[exp.id] = content
    return out


def write_all(results: Path, *, profile: str, cells: list[dict[str, Any]] | None = None) -> list[Path]:
    """Write ``results/metrics/<id>.json`` for every registered experiment; returns the paths.

    ``cells``: today's cells when the caller has them (else the results folder is read and
    re-keyed once, ``runner.current_cells``).
    """
    if cells is None:
        from . import runner

        cells = runner.current_cells([c for c in store.load_cells(results) if c.get("profile") == profile])[0]
    paths = []
    for exp_id, content in summaries(cells, profile=profile).items():
        path = metrics_path(results, exp_id)
        # an unchanged file is not rewritten: a cached rerun writes nothing (a read-only results
        # folder whose cells are all done still reruns and reports)
        store.write_json_if_changed(path, content)
        paths.append(path)
    return paths


__all__ = ["metrics_path", "headline", "summaries", "write_all", "METRICS_DIR"]
