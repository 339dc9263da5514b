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

import csv
import html
import json
import math
import re
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
    spread: str = ""  # which spread ``ours`` shows ("sd over 3 seeds", "in-cell spread, 1 seed", "1 seed")


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


def _spread_name(std: float | None, count: int, group: pd.DataFrame) -> str:
    """Which spread our value shows: the sd over seeds (several runs), the record's own spread
    (one run: e.g. over images), or "1 seed" when there is none."""
    seeds = int(group[group.value.notna()].seed.nunique()) if "seed" in group else count
    if count > 1:
        runs = f"{seeds} seeds" if seeds == count else f"{count} runs"
        return f"sd over {runs}" if std else f"{runs}, no spread"
    return "in-cell spread, 1 seed" if std else "1 seed"


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


def _why_not_measured(coverage: claims_mod.Coverage | None, experiment: str | None, profile: str) -> str:
    """Why a paper row has no measurement of ours when its cells left no note saying so."""
    if coverage is None or experiment is None:
        return ""
    run = f"`energybench run {experiment} --profile {profile}`"
    if coverage.done == 0:
        failed = f" ({coverage.failed} failed)" if coverage.failed else ""
        return f"not run yet: none of the {coverage.expected} cell runs of {experiment} has a result{failed}; {run}"
    if coverage.done < coverage.expected:
        return (f"not measured yet: {coverage.done} of {coverage.expected} cell runs of {experiment} have results"
                + (f", {coverage.failed} failed" if coverage.failed else "") + f"; {run}")
    if profile != "full":
        return (f"none of the {coverage.expected} cell runs of the {profile} grid records this row (all ran); "
                "the paper's value is shown for reference")
    return "every cell ran and none measured this row"


#: The folders a missing-dataset note lists (absolute paths of the machine that ran the cell):
#: left out of the report, which may be read on another machine; the ``data add`` hint stays.
_LOOKED_IN = re.compile(r"(dataset '[^']+' is missing): looked in .*?\. (To add it: )")


def _short_note(note: str) -> str:
    """A cell's note as the report shows it: a missing dataset without the folders searched."""
    return _LOOKED_IN.sub(r"\1 here. \2", note)


def table_lines(table: str, paper_table: claims_mod.PaperTable | None, df: pd.DataFrame, profile: str,
                *, registered: bool = True, coverage: claims_mod.Coverage | None = None) -> list[Line]:
    """The rebuilt table in long form: one line per (row, column, metric); with no registered
    experiment, the paper's values with "no experiment yet". ``coverage``: the experiment's
    grid coverage, to say why a paper row has no measurement when its cells did not."""
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
        ours, std, count = _ours(group)
        pv = paper_values.get(key)
        paper_value = float(pv["value"]) if pv is not None and pv["value"] is not None else None
        notes = sorted({_short_note(n) for n in group.note.dropna()}) if ours is None else []
        if ours is None and not notes and registered:
            why = _why_not_measured(coverage, paper_table.experiment if paper_table else None, profile)
            notes = [why] if why else []
        if pv is not None and pv.get("printed_as"):
            notes.append(f"paper row: {pv['printed_as']}")
        unit = (pv or {}).get("unit") or (group.unit.iloc[0] if not group.empty else "")
        verdict = cell_verdict(judge, paper_value, ours, std, profile) if registered else coverage_mod.NO_EXPERIMENT
        random_init = sorted(n for n in set(group.note.dropna()) if claims_mod.is_random_init(n))
        if random_init and verdict in (claims_mod.REPRODUCED, claims_mod.WITHIN_NOISE, claims_mod.NOT_REPRODUCED):
            # A network the paper starts from ImageNet weights, trained here from random init: its
            # number is shown, but comparing it with the paper's would judge the missing weights.
            verdict = f"{claims_mod.NOT_JUDGED}: {claims_mod.RANDOM_INIT}"
            notes.append(random_init[0])
        lines.append(Line(
            row=key[0], column=key[1], metric=key[2], unit=unit,
            paper=fmt(paper_value, (pv or {}).get("std")),
            ours=(fmt(ours, std) if ours is not None else ("not run" if notes or group.empty else ""))
            if registered else coverage_mod.NO_EXPERIMENT,
            delta=fmt(ours - paper_value) if ours is not None and paper_value is not None else "",
            verdict=verdict,
            note="; ".join(notes),
            spread=_spread_name(std, count, group) if ours is not None and registered else "",
        ))
    return lines


#: Provenance fields that are usually the same for every cell of a page: listed once above the
#: table (with the number of cells of each combination) instead of in every row.
ENVIRONMENT_FIELDS = ("python", "torch", "numpy", "cuda", "device_name", "cpu", "host", "torch_threads")


def _short_versions(versions: dict[str, str] | None) -> str:
    return ", ".join(f"{k} {str(v)[:8]}" for k, v in sorted((versions or {}).items()))


def _provenance(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The page's provenance, compact: the environments (what is shared by many cells) once with
    their cell counts, the commands once, then one short row per cell (short hashes; no peak
    memory for a cell that did not run: there was nothing to measure)."""
    rows, environments, commands = [], defaultdict(int), defaultdict(int)
    for cell in cells:
        prov = cell.get("provenance", {})
        environment = tuple((k, prov.get(k)) for k in ENVIRONMENT_FIELDS)
        environments[environment] += 1
        if prov.get("command"):
            commands[prov["command"]] += 1
        ran = cell["status"] != "not_run"
        rows.append({
            "experiment": cell["experiment"], "key": cell["key"], "short_key": cell["key"].rsplit("-", 1)[-1][:10],
            "cell": json.dumps(cell["cell"], sort_keys=True, separators=(", ", ": ")),
            "seed": cell["seed"], "status": cell["status"],
            "commit": (prov.get("git_commit") or "")[:7] + ("+" if prov.get("git_dirty") else ""),
            "wall_s": prov.get("wall_s"),
            "peak_mb": (prov.get("peak_cuda_mb") or prov.get("peak_rss_mb")) if ran else None,
            "peak_kind": "GPU" if ran and prov.get("peak_cuda_mb") else "RSS",
            "data": _short_versions(prov.get("data_versions")),
            "finished": str(prov.get("finished_at") or "")[:16].replace("T", " "),
        })
    envs = [{"fields": [(k, v) for k, v in env if v not in (None, "")], "cells": n}
            for env, n in sorted(environments.items(), key=lambda item: -item[1])]
    return {"rows": rows, "environments": envs,
            "commands": [{"command": c, "cells": n} for c, n in sorted(commands.items(), key=lambda item: -item[1])]}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "table"


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """A table as CSV next to the page (the page links it: "download CSV")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def verdict_chart(counts: dict[str, int], *, width: int = 320, bar: int = 14) -> str:
    """A small horizontal bar chart of verdict counts as inline SVG (one bar per verdict that
    occurs; the bars scale to the largest count), for the summary at the top of each page."""
    shown = [(name, n) for name, n in counts.items() if n]
    if not shown:
        return ""
    label_w, gap, top = 120, 4, 2
    most = max(n for _, n in shown)
    height = top + len(shown) * (bar + gap)
    parts = [f'<svg class="chart" role="img" aria-label="claims by verdict" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (name, n) in enumerate(shown):
        y = top + i * (bar + gap)
        length = max(2, round((width - label_w - 40) * n / most))
        css = name.replace(" ", "-")
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 3}" text-anchor="end" font-size="12">{html.escape(name)}</text>'
                     f'<rect class="bar {css}" x="{label_w}" y="{y}" width="{length}" height="{bar}"/>'
                     f'<text x="{label_w + length + 4}" y="{y + bar - 3}" font-size="12">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


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
        with store.atomic_write(path, "wb") as handle:  # a full disk leaves no truncated SVG
            # the box of what is drawn, not the figure's: a title wider than its figure is kept
            # whole instead of cut at the SVG's edge (suite.report.figures sizes the figures)
            fig.savefig(handle, format="svg", bbox_inches="tight", pad_inches=0.05)
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
    # a benchmark whose dataset is absent here: one line saying how to add it (the cells' notes
    # name the folders searched, absolute paths of the machine that ran them), not a table of
    # "not run" rows
    absent = None
    missing = sorted({m for line in lines for m in re.findall(r"dataset '([^']+)' is missing", line["note"])})
    if not measured and missing:
        from suite.data import registry as data_registry

        hints = []
        for dataset in missing:
            try:
                hints.append(f"{dataset}: {data_registry.get(dataset).how_to_add}")
            except (KeyError, ValueError):
                hints.append(f"{dataset}: energybench data add PATH --as {dataset}")
        absent = "; ".join(hints)
    return {"metrics": [(m, unit, "higher" if hib else "lower") for m, (unit, hib) in spec.metrics.items()],
            "lines": measured + [line for line in lines if line["values"][primary][0] is None],
            "task": spec.task, "dataset": spec.dataset, "versions": versions, "primary": primary,
            "absent": absent, "measured": len(measured)}


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


def _table_csv(folder: Path, pid: str, name: str, lines: list[Line]) -> str:
    path = folder / f"{_slug(name)}.csv"
    _write_csv(path, ["row", "column", "metric", "unit", "paper", "ours", "spread", "delta", "verdict", "note"],
               [[ln.row, ln.column, ln.metric, ln.unit, ln.paper, ln.ours, ln.spread, ln.delta, ln.verdict, ln.note]
                for ln in lines])
    return f"{pid}/{path.name}"


def _leaderboard_csv(folder: Path, pid: str, name: str, lb: dict) -> str:
    path = folder / f"{_slug(name)}.csv"
    metrics = [m for m, _, _ in lb["metrics"]]
    _write_csv(path, ["rank", "method", "kind", *metrics, "n", "settings", "note"],
               [[ln["rank"] or "", ln["method"], ln["kind"], *(ln["values"][m][1] for m in metrics), ln["n"] or "",
                 ln["settings"], ln["note"]] for ln in lb["lines"]])
    return f"{pid}/{path.name}"


def _protocols(sections: list[dict]) -> list[dict]:
    """Each distinct protocol text once per page (several experiments of a paper often share
    one), numbered; each section keeps the number of its protocol."""
    numbered: dict[str, dict] = {}
    for sec in sections:
        text = (sec.get("protocol") or "").strip()
        if not text:
            sec["protocol_id"] = None
            continue
        entry = numbered.setdefault(text, {"id": f"protocol-{len(numbered) + 1}", "n": len(numbered) + 1,
                                           "text": text, "used_by": []})
        entry["used_by"].append(sec["heading"])
        sec["protocol_id"] = entry["id"]
        sec["protocol_n"] = entry["n"]
    return list(numbered.values())


def build(results: Path, out: Path, *, profile: str = registry.DEFAULT_PROFILE,
          papers_root: Path | None = None) -> Path:
    """Render ``out/index.html`` and one page per paper from the cells under ``results``.

    Each page opens with a summary (claims by verdict, a small chart, tables with results),
    then its tables (sortable, each with a CSV file beside the page), the plots, the failed
    cells, the claims (filterable by verdict), each distinct protocol text once, and the
    provenance (the environments once, one short row per cell). A results folder with no cell
    of this profile gives pages that say so.
    """
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
        folder = out / pid
        sections = []
        for exp in exps:
            eframe = _in_grid_order(frame[frame.experiment == exp.id], exp, profile)
            ecells = [c for c in cells if c["experiment"] == exp.id]
            mine = {t.table: t for t in ptables if t.experiment == exp.id}
            tables = list(dict.fromkeys(list(mine) + list(eframe.table.dropna().unique())))
            cov = grid[exp.id]
            rendered = []
            for t in tables:
                lines = table_lines(t, mine.get(t), eframe, profile, coverage=cov)
                rendered.append({"name": t, "caption": mine[t].caption if t in mine else "",
                                 "source": mine[t].source if t in mine else "", "lines": lines,
                                 "csv": _table_csv(folder, pid, f"{exp.id}-{t}", lines) if lines else None})
            lb = leaderboard(exp, eframe, ecells)
            sections.append({
                "id": exp.id, "heading": exp.table, "title": exp.title, "registered": True,
                "protocol": exp.protocol, "tables": rendered,
                "plots": _save_plots(exp, eframe, folder),
                "leaderboard": lb,
                "leaderboard_csv": _leaderboard_csv(folder, pid, exp.id, lb) if lb and lb["lines"] and not lb["absent"]
                else None,
                "failures": [c for c in ecells if c["status"] == "failed"],
                "n_cells": cov.expected, "n_done": cov.done,
            })
        # tables and figures of the paper with no registered experiment: shown, never hidden
        pending: dict[str, list[claims_mod.PaperTable]] = {}
        for t in ptables:
            if not (t.experiment and t.experiment in experiments):
                pending.setdefault(t.experiment or f"(none) {t.table}", []).append(t)
        for exp_id, group in pending.items():
            rendered = []
            for t in group:
                lines = table_lines(t.table, t, frame.iloc[0:0], profile, registered=False)
                rendered.append({"name": t.table, "caption": t.caption, "source": t.source, "lines": lines,
                                 "csv": _table_csv(folder, pid, f"{exp_id}-{t.table}", lines) if lines else None})
            sections.append({
                "id": group[0].experiment or "", "key": exp_id, "heading": ", ".join(t.table for t in group),
                "title": coverage_mod.NO_EXPERIMENT, "registered": False, "protocol": "", "tables": rendered,
                "plots": [], "leaderboard": None, "leaderboard_csv": None, "failures": [], "n_cells": 0, "n_done": 0,
            })
        # in the paper's order (its file lists tables and figures as printed); others after
        first = {}
        for i, t in enumerate(ptables):
            first.setdefault(t.experiment if t.experiment in experiments else (t.experiment or f"(none) {t.table}"), i)
        sections.sort(key=lambda sec: first.get(sec["id"] if sec["registered"] else sec["key"], len(ptables)))
        if pid == "leaderboard":
            # benchmarks with results first, then those that ran without a measurement, then
            # those whose dataset is absent here (one line each)
            def rank(sec: dict) -> int:
                lb = sec["leaderboard"]
                if lb is None:
                    return 1
                return 0 if lb["measured"] else (2 if lb["absent"] else 1)

            sections.sort(key=rank)
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
            # a benchmark whose cells all ended "not run" (its dataset is absent) has no results
            tables_done = sum(1 for s in sections
                              if (s["leaderboard"]["measured"] if s["leaderboard"] else s["n_done"]))
        page = f"{pid}.html"
        all_counts = {v: counts[v] for v in claims_mod.VERDICTS}
        pcells = [c for c in cells if c["experiment"] in {e.id for e in exps}]
        provenance = _provenance(pcells)
        provenance["csv"] = None
        if provenance["rows"]:
            path = folder / "provenance.csv"
            keys_ = ["experiment", "key", "cell", "seed", "status", "commit", "wall_s", "peak_mb", "data", "finished"]
            _write_csv(path, keys_, [[row[k] if row[k] is not None else "" for k in keys_] for row in provenance["rows"]])
            provenance["csv"] = f"{pid}/{path.name}"
        store.write_text_atomic(out / page, env.get_template("paper.html.j2").render(
            paper=paper, pid=pid, profile=profile, sections=sections, verdicts=verdicts,
            protocols=_protocols(sections), provenance=provenance,
            counts=all_counts, chart=verdict_chart(all_counts),
            tables_done=tables_done, tables_total=tables_total,
            cells_done=sum(s["n_done"] for s in sections), cells_total=sum(s["n_cells"] for s in sections),
            failures=sum(len(s["failures"]) for s in sections), empty=not cells,
            verdict_names=claims_mod.VERDICTS,
        ))
        summary.append({
            "id": pid, "title": paper.title if paper else ("Leaderboards" if pid == "leaderboard" else pid), "page": page,
            "tables_done": tables_done, "tables": tables_total,
            "claims": len(verdicts), "counts": all_counts,
            "failures": sum(len(s["failures"]) for s in sections), "rows": len(pframe),
        })
    totals = {v: sum(p["counts"][v] for p in summary) for v in claims_mod.VERDICTS}
    index = out / "index.html"
    store.write_text_atomic(index, env.get_template("index.html.j2").render(
        papers=summary, profile=profile, stale=stale, verdict_names=claims_mod.VERDICTS,
        totals=totals, chart=verdict_chart(totals), empty=not cells, n_cells=len(cells)))
    return index


def _paper_files(experiments, papers_root: Path | None) -> list[claims_mod.Paper]:
    """``paper.yaml`` beside each registered experiment's module and in its sibling paper
    folders (or under ``papers_root``); see ``suite.report.coverage.paper_files``."""
    return coverage_mod.paper_files(experiments, papers_root)


__all__ = ["build"]
