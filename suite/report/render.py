"""Static HTML report: an index of papers and one page per paper, rendered with jinja2.

Each paper page rebuilds every table as: paper value | ours (mean ± std over runs) | delta |
verdict, lists the claims with their verdicts, the numbers that decided them and links to the
cells behind them, shows the plots as SVG files, the cells that failed with their tracebacks,
and the provenance of every cell at the bottom. Every table and figure of the paper's
``paper.yaml`` appears, with "no experiment yet" where none is registered; the index counts
them all (tables with results / all tables) and every claim verdict, "not judged" and "no
experiment" included.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from suite.harness import claims as claims_mod
from suite.harness import registry, runner, store
from suite.report import coverage as coverage_mod

TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Line:
    row: str
    column: str
    metric: str
    unit: str
    paper: str
    ours: str
    delta: str
    verdict: str
    note: str


def fmt(value: float | None, std: float | None = None, *, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = f"{value:.{digits}g}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)) and std > 0:
        text += f" ± {std:.2g}"
    return text


def _ours(group: pd.DataFrame) -> tuple[float | None, float | None, int]:
    measured = group[group.value.notna()]
    if measured.empty:
        return None, None, 0
    if len(measured) == 1:
        std = measured["std"].iloc[0]
        return float(measured.value.iloc[0]), (None if pd.isna(std) else float(std)), 1
    return float(measured.value.mean()), float(measured.value.std(ddof=1)), len(measured)


def cell_verdict(judge: dict, paper_value: float | None, ours: float | None, std: float | None, profile: str) -> str:
    if paper_value is None or ours is None:
        return ""
    if judge.get("reference"):
        return "reference only"
    if profile != "full":
        return f"not judged at {profile}"
    tol = judge.get("tolerance")
    if tol is None:
        tol = abs(paper_value) * float(judge.get("rel_tolerance", 0.0))
    diff = abs(ours - paper_value)
    if diff <= tol:
        return claims_mod.REPRODUCED
    return claims_mod.WITHIN_NOISE if diff <= tol + 2 * (std or 0.0) else claims_mod.NOT_REPRODUCED


def table_lines(table: str, paper_table: claims_mod.PaperTable | None, df: pd.DataFrame, profile: str,
                *, registered: bool = True) -> list[Line]:
    """The rebuilt table in long form: one line per (row, column, metric); with no registered
    experiment, the paper's values with "no experiment yet"."""
    df = df[(df.table == table) & df.step.isna()]
    paper_values = {(v["row"], v["column"], v["metric"]): v for v in (paper_table.values if paper_table else ())}
    keys = list(paper_values)
    for key in df[["row", "column", "metric"]].drop_duplicates().itertuples(index=False):
        if tuple(key) not in paper_values:
            keys.append(tuple(key))
    # Paper rows first in the paper's order, then rows only we have.
    row_order = list(dict.fromkeys([k[0] for k in keys]))
    keys.sort(key=lambda k: row_order.index(k[0]))
    judge = dict(paper_table.judge) if paper_table else {"reference": True}
    lines = []
    for key in keys:
        group = df[(df.row == key[0]) & (df.column == key[1]) & (df.metric == key[2])]
        ours, std, _ = _ours(group)
        pv = paper_values.get(key)
        paper_value = float(pv["value"]) if pv is not None and pv["value"] is not None else None
        notes = sorted(set(group.note.dropna())) if ours is None else []
        if pv is not None and pv.get("printed_as"):
            notes.append(f"paper row: {pv['printed_as']}")
        unit = (pv or {}).get("unit") or (group.unit.iloc[0] if not group.empty else "")
        lines.append(Line(
            row=key[0], column=key[1], metric=key[2], unit=unit,
            paper=fmt(paper_value, (pv or {}).get("std")),
            ours=(fmt(ours, std) if ours is not None else ("not run" if notes or group.empty else ""))
            if registered else coverage_mod.NO_EXPERIMENT,
            delta=fmt(ours - paper_value) if ours is not None and paper_value is not None else "",
            verdict=cell_verdict(judge, paper_value, ours, std, profile) if registered else coverage_mod.NO_EXPERIMENT,
            note="; ".join(notes),
        ))
    return lines


def _provenance(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("git_commit", "git_dirty", "python", "torch", "numpy", "cuda", "device_name", "cpu", "host",
            "torch_threads", "wall_s", "peak_rss_mb", "peak_cuda_mb", "data_versions", "command", "finished_at")
    out = []
    for cell in cells:
        prov = cell.get("provenance", {})
        out.append({"experiment": cell["experiment"], "key": cell["key"], "cell": json.dumps(cell["cell"], sort_keys=True),
                    "seed": cell["seed"], "status": cell["status"],
                    **{k: prov.get(k) for k in keep}})
    return out


def _save_plots(exp: registry.Experiment, frame: pd.DataFrame, folder: Path) -> list[str]:
    if exp.plots is None or frame.empty:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for name, fig in exp.plots(frame).items():
        path = folder / f"{exp.id.replace('.', '-')}-{name}.svg"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="svg")
        plt.close(fig)
        names.append(f"{folder.name}/{path.name}")
    return names


def leaderboard(exp: registry.Experiment, frame: pd.DataFrame, cells: list[dict[str, Any]]) -> dict | None:
    """A benchmark's ranking (``leaderboard.*`` experiments): one line per method, ranked by the
    benchmark's first metric, with the dataset versions the numbers came from."""
    if exp.paper != "leaderboard":
        return None
    from suite.harness.methods import get_method
    from suite.leaderboards.benchmarks import all_benchmarks

    spec = all_benchmarks().get(exp.id.split(".", 1)[1])
    if spec is None:
        return None
    frame = frame[frame.step.isna()] if not frame.empty else frame
    lines = []
    for name in (frame.row.unique() if not frame.empty else []):
        group = frame[frame.row == name]
        values, notes = {}, sorted(set(group.note.dropna()))
        for metric in spec.metrics:
            mean, std, _ = _ours(group[group.metric == metric])
            values[metric] = (mean, fmt(mean, std) if mean is not None else "not run")
        try:
            info = get_method(spec.task, name)
        except registry.UnknownIdError:
            info = None
        lines.append({"method": name, "values": values, "rank": None, "n": int(group.n.max()) if group.n.notna().any() else None,
                      "kind": info.kind if info else "", "citation": info.citation if info else "",
                      "settings": info.settings if info else "", "note": "; ".join(notes)})
    primary, (_, higher) = spec.primary, spec.metrics[spec.primary]
    measured = sorted((line for line in lines if line["values"][primary][0] is not None),
                      key=lambda line: line["values"][primary][0], reverse=higher)
    for rank, line in enumerate(measured, 1):
        line["rank"] = rank
    versions = sorted({f"{k} {v[:12]}" for c in cells for k, v in c.get("provenance", {}).get("data_versions", {}).items()})
    return {"metrics": [(m, unit, "higher" if hib else "lower") for m, (unit, hib) in spec.metrics.items()],
            "lines": measured + [line for line in lines if line["values"][primary][0] is None],
            "task": spec.task, "dataset": spec.dataset, "versions": versions, "primary": primary}


def _in_grid_order(frame: pd.DataFrame, exp: registry.Experiment, profile: str) -> pd.DataFrame:
    """Records in the order of the experiment's grid (cells are stored by hash, in no order),
    so that rows and columns only we have appear as the experiment lists them."""
    if frame.empty:
        return frame
    position = {json.dumps(c, sort_keys=True): i for i, c in enumerate(exp.cells(profile))}
    order = frame.cell.map(lambda c: position.get(c, len(position)))
    return frame.assign(_grid=order.to_numpy()).sort_values("_grid", kind="stable").drop(columns="_grid")


def _has_results(frame: pd.DataFrame, experiment: str | None, table: str) -> bool:
    if frame.empty or experiment is None:
        return False
    return bool(((frame.experiment == experiment) & (frame.table == table) & frame.value.notna()).any())


def build(results: Path, out: Path, *, profile: str = registry.DEFAULT_PROFILE,
          papers_root: Path | None = None) -> Path:
    """Render ``out/index.html`` and one page per paper from the cells under ``results``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    experiments = registry.all_experiments()
    # only what today's code and data produce: older results would mix into the means
    cells, stale = runner.current_cells([c for c in store.load_cells(results) if c["profile"] == profile])
    frame = store.frame(cells)
    papers = {p.id: p for p in _paper_files(experiments.values(), papers_root)}
    paper_ids = sorted(set(papers) | {e.paper for e in experiments.values()})
    grid = coverage_mod.grid_coverage(
        experiments, cells, profile,
        ids=[t.experiment for p in papers.values() for t in p.tables if t.experiment]
        + [e for p in papers.values() for c in p.claims for e in claims_mod.claim_experiments(c, p.tables)])
    summary = []
    for pid in paper_ids:
        paper = papers.get(pid)
        exps = [e for e in experiments.values() if e.paper == pid]
        pframe = frame[frame.paper == pid] if not frame.empty else frame
        verdicts = claims_mod.judge_all(paper, frame, profile=profile, coverage=grid) if paper else []
        ptables = list(paper.tables) if paper else []
        sections = []
        for exp in exps:
            eframe = _in_grid_order(frame[frame.experiment == exp.id], exp, profile)
            ecells = [c for c in cells if c["experiment"] == exp.id]
            mine = {t.table: t for t in ptables if t.experiment == exp.id}
            tables = list(dict.fromkeys(list(mine) + list(eframe.table.dropna().unique())))
            cov = grid[exp.id]
            sections.append({
                "id": exp.id, "heading": exp.table, "title": exp.title, "registered": True,
                "protocol": exp.protocol,
                "tables": [{"name": t, "caption": mine[t].caption if t in mine else "",
                            "source": mine[t].source if t in mine else "",
                            "lines": table_lines(t, mine.get(t), eframe, profile)} for t in tables],
                "plots": _save_plots(exp, eframe, out / pid),
                "leaderboard": leaderboard(exp, eframe, ecells),
                "failures": [c for c in ecells if c["status"] == "failed"],
                "n_cells": cov.expected, "n_done": cov.done,
            })
        # tables and figures of the paper with no registered experiment: shown, never hidden
        pending: dict[str, list[claims_mod.PaperTable]] = {}
        for t in ptables:
            if not (t.experiment and t.experiment in experiments):
                pending.setdefault(t.experiment or f"(none) {t.table}", []).append(t)
        for exp_id, group in pending.items():
            sections.append({
                "id": group[0].experiment or "", "key": exp_id, "heading": ", ".join(t.table for t in group),
                "title": coverage_mod.NO_EXPERIMENT, "registered": False, "protocol": "",
                "tables": [{"name": t.table, "caption": t.caption, "source": t.source,
                            "lines": table_lines(t.table, t, frame.iloc[0:0], profile, registered=False)}
                           for t in group],
                "plots": [], "leaderboard": None, "failures": [], "n_cells": 0, "n_done": 0,
            })
        # in the paper's order (its file lists tables and figures as printed); others after
        first = {}
        for i, t in enumerate(ptables):
            first.setdefault(t.experiment if t.experiment in experiments else (t.experiment or f"(none) {t.table}"), i)
        sections.sort(key=lambda sec: first.get(sec["id"] if sec["registered"] else sec["key"], len(ptables)))
        counts = defaultdict(int)
        for v in verdicts:
            counts[v.verdict] += 1
        if paper:
            named = {t.experiment for t in ptables}
            extra = [e for e in exps if e.id not in named]  # experiments no paper.yaml entry names
            tables_total = len(ptables) + len(extra)
            tables_done = (sum(_has_results(frame, t.experiment, t.table) for t in ptables)
                           + sum(1 for e in extra if not frame.empty
                                 and ((frame.experiment == e.id) & frame.value.notna()).any()))
        else:
            tables_total = len(sections)
            tables_done = sum(1 for s in sections if s["n_done"])
        page = f"{pid}.html"
        (out / page).write_text(env.get_template("paper.html.j2").render(
            paper=paper, pid=pid, profile=profile, sections=sections, verdicts=verdicts,
            provenance=_provenance([c for c in cells if c["experiment"] in {e.id for e in exps}]),
        ))
        summary.append({
            "id": pid, "title": paper.title if paper else ("Leaderboards" if pid == "leaderboard" else pid), "page": page,
            "tables_done": tables_done, "tables": tables_total,
            "claims": len(verdicts), "counts": {v: counts[v] for v in claims_mod.VERDICTS},
            "failures": sum(len(s["failures"]) for s in sections), "rows": len(pframe),
        })
    index = out / "index.html"
    index.write_text(env.get_template("index.html.j2").render(
        papers=summary, profile=profile, stale=stale, verdict_names=claims_mod.VERDICTS))
    return index


def _paper_files(experiments, papers_root: Path | None) -> list[claims_mod.Paper]:
    """``paper.yaml`` beside each registered experiment's module and in its sibling paper
    folders (or under ``papers_root``); see ``suite.report.coverage.paper_files``."""
    return coverage_mod.paper_files(experiments, papers_root)


__all__ = ["build"]
