"""What a run shows while it works: the cells bar (or plain lines), the ETA, the closing summary.

The ETA is the sum of each remaining cell's *expected* cost, not the mean time of the cells
done so far: cells of one run differ by orders of magnitude (a smoke check beside a training
run), so a running mean swings and overshoots. A cell's expected cost is the wall time last
recorded for the same cell (experiment, parameters, profile, seed) in the results folder, even
under an older key; else the median recorded for the same experiment at that profile; else the
``expected_s`` its profile settings state; else :data:`DEFAULT_COST_S` for the profile.

On a terminal the cells show as a tqdm bar on stderr; when stderr is not a terminal (a log
file, CI) each finished cell is one plain line on stdout instead, so a log holds no cursor
movements; ``--no-progress`` turns both off.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TextIO

from . import store

# Seconds a cell is assumed to take when nothing of its experiment was ever recorded here and its
# profile settings give no ``expected_s``: the mean cell of a whole run measured on 2 CPU cores
# (smoke: 239 cells in 2m42s; mini: 87 cells in 39 min), not a worst case, so that a first run's
# ETA is of the right size (5 s per smoke cell showed 19m55s for a 2m42s run).
DEFAULT_COST_S = {"smoke": 0.7, "mini": 27.0, "full": 1800.0}


def _cell_id(experiment: str, cell: Mapping[str, Any], profile: str, seed: int) -> str:
    return json.dumps([experiment, dict(cell), profile, seed], sort_keys=True, default=str)


@dataclass(frozen=True)
class CostModel:
    """Expected wall time of cells, from what a results folder recorded (see the module docstring)."""

    by_cell: Mapping[str, float]
    by_experiment: Mapping[tuple[str, str], float]
    default: float

    @classmethod
    def from_cells(cls, cells: Iterable[Mapping[str, Any]], *, profile: str) -> "CostModel":
        """Build from cell payloads (``store.load_cells``); the latest ``finished_at`` wins per cell."""
        latest: dict[str, tuple[str, float]] = {}
        experiment_of: dict[str, tuple[str, str]] = {}
        for cell in cells:
            prov = cell.get("provenance") or {}
            wall = prov.get("wall_s")
            if not isinstance(wall, (int, float)) or wall < 0 or cell.get("status") == "failed":
                continue  # a failed cell's time says little about a successful run
            ident = _cell_id(cell.get("experiment", ""), cell.get("cell", {}), cell.get("profile", ""),
                             cell.get("seed", 0))
            when = str(prov.get("finished_at") or "")
            if ident not in latest or when >= latest[ident][0]:
                latest[ident] = (when, float(wall))
            experiment_of[ident] = (cell.get("experiment", ""), cell.get("profile", ""))
        walls: dict[tuple[str, str], list[float]] = defaultdict(list)
        for ident, (_, wall) in latest.items():  # each cell's latest time, not the ones it superseded
            walls[experiment_of[ident]].append(wall)
        return cls(by_cell={k: w for k, (_, w) in latest.items()},
                   by_experiment={k: statistics.median(v) for k, v in walls.items()},
                   default=DEFAULT_COST_S.get(profile, DEFAULT_COST_S["mini"]))

    @classmethod
    def from_results(cls, results: Path, *, profile: str) -> "CostModel":
        return cls.from_cells(store.load_cells(results), profile=profile)

    def expected(self, experiment: str, cell: Mapping[str, Any], profile: str, seed: int) -> float:
        """Seconds: this cell's last recorded time, else its experiment's median, else the default."""
        return self.estimate(experiment, cell, profile, seed)[0]

    def estimate(self, experiment: str, cell: Mapping[str, Any], profile: str, seed: int) -> tuple[float, bool]:
        """``(seconds, known)``: ``known`` is False when the time is a guess (the experiment's
        median or the default), which :meth:`Eta.observed` may replace with this run's times."""
        hit = self.by_cell.get(_cell_id(experiment, cell, profile, seed))
        if hit is not None:
            return hit, True
        median = self.by_experiment.get((experiment, profile))
        if median is not None:
            return median, False
        stated = profile_cost(experiment, profile)
        return (stated if stated is not None else self.default), False


def profile_cost(experiment: str, profile: str) -> float | None:
    """The seconds per cell an experiment's profile settings state (``expected_s``), if any: the
    estimate of an experiment never run on this machine, before the default."""
    from . import registry

    try:
        value = registry.get(experiment).settings(profile).get("expected_s")
    except Exception:  # noqa: BLE001  (an unknown id or a broken settings function only costs the hint)
        return None
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Eta:
    """Remaining time = expected cost of the cells not finished, over the workers running them.

    The cell in progress counts for what is left of its expected cost (never below zero), so
    the estimate falls while a long cell runs instead of standing still.
    """

    def __init__(self, expected: Mapping[Any, float], *, workers: int = 1, clock=time.monotonic,
                 guessed: Mapping[Any, str] | None = None):
        self._left = dict(expected)
        self._workers = max(1, workers)
        self._clock = clock
        self._started: dict[Any, float] = {}
        # task -> its experiment, for the tasks whose cost is a guess (no time of that very cell)
        self._guessed = dict(guessed or {})
        self._seen: dict[str, list[float]] = defaultdict(list)

    def observed(self, task: Any, experiment: str, seconds: float) -> None:
        """A cell of ``experiment`` took ``seconds`` in this run: the cells of the same experiment
        whose cost was a guess now expect the median of this run's times of that experiment
        (its own cells, never the mean over every experiment)."""
        self._seen[experiment].append(seconds)
        median = statistics.median(self._seen[experiment])
        for other, exp in self._guessed.items():
            if exp == experiment and other in self._left and other != task:
                self._left[other] = median

    def start(self, task: Any) -> None:
        self._started[task] = self._clock()

    def finish(self, task: Any) -> None:
        self._left.pop(task, None)
        self._started.pop(task, None)

    def remaining(self) -> float:
        now = self._clock()
        total = 0.0
        for task, cost in self._left.items():
            began = self._started.get(task)
            total += max(0.0, cost - (now - began)) if began is not None else cost
        return total / self._workers


class CellProgress:
    """The run's progress display: a tqdm bar on a terminal, plain lines otherwise, or nothing.

    Args:
        total: cells in the run (cached ones included).
        done: cells already finished (cached).
        eta: the estimator, or None for no ETA.
        mode: ``"bar"``, ``"lines"`` or ``"off"``; :func:`choose_mode` picks it.
    """

    def __init__(self, total: int, *, done: int = 0, eta: Eta | None = None, mode: str = "bar",
                 stream: TextIO | None = None):
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"progress mode must be bar, lines or off, got {mode!r}")
        self.total, self.done, self.eta, self.mode = total, done, eta, mode
        self.stream = stream
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm

            # the ETA is ours (expected costs), not tqdm's rate-based one
            self._bar = tqdm(total=total, initial=done, desc="cells", unit="cell", file=stream,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        "[{elapsed}{postfix}]")
            self._postfix("")

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def _eta_text(self) -> str:
        return f"eta {format_seconds(self.eta.remaining())}" if self.eta is not None else ""

    def _postfix(self, label: str) -> None:
        if self._bar is not None:
            parts = [p for p in (self._eta_text(), label) if p]
            self._bar.set_postfix_str(", ".join(parts), refresh=True)  # shown as "[elapsed, eta ..., cell]"

    def started(self, task: Any, label: str) -> None:
        if self.eta is not None:
            self.eta.start(task)
        self._postfix(label)

    def finished(self, task: Any, label: str, status: str, wall_s: float | None = None) -> None:
        if self.eta is not None:
            self.eta.finish(task)
        self.done += 1
        if self._bar is not None:
            self._bar.update()
            self._postfix(label)
        elif self.mode == "lines":
            width = len(str(self.total))
            took = f" {wall_s:.1f}s" if wall_s is not None else ""
            eta = f" ({self._eta_text()})" if self.eta is not None and self.done < self.total else ""
            print(f"[{self.done:{width}d}/{self.total}] {status:8s} {label}{took}{eta}", file=self._out(),
                  flush=True)

    def note(self, text: str) -> None:
        """A status line (what the run does between and after cells), in any mode but off."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream or sys.stderr)
        else:
            print(text, file=self._out(), flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def choose_mode(progress: bool, streams: Sequence[TextIO | None] | None = None) -> str:
    """``off`` when progress is not wanted; ``bar`` when stdout and stderr (where tqdm draws)
    are both terminals; else ``lines`` (a log file, a pipe, CI)."""
    if not progress:
        return "off"
    streams = (sys.stdout, sys.stderr) if streams is None else streams
    return "bar" if all(_isatty(s) for s in streams) else "lines"


class Phase:
    """``with Phase(show, "metrics"):`` prints what starts and how long it took (no silent minutes)."""

    def __init__(self, show, text: str):
        self.show, self.text = show, text

    def __enter__(self):
        self.start = time.perf_counter()
        self.show(f"{self.text} ...")
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.show(f"{self.text}: done in {format_seconds(time.perf_counter() - self.start)}")
        return False


# --------------------------------------------------------------------------- closing summary

#: Verdicts listed by name in the summary (the others are counted only).
FAILING_VERDICTS = ("not reproduced",)


@dataclass(frozen=True)
class PaperSummary:
    paper: str
    title: str
    counts: Mapping[str, int]
    failures: Sequence[str]  # failed claims' ids and failed cells


def paper_summaries(results: Path, *, profile: str, papers_root: Path | None = None) -> list[PaperSummary]:
    """Per paper: the claim engine's verdict counts and what failed, judged the way the report
    judges them (today's cells only, the same coverage), by calling its public functions.
    ``papers_root``: a folder of ``<paper>/paper.yaml`` instead of those beside the experiments."""
    from suite.harness import claims as claims_mod, registry, runner
    from suite.report import coverage as coverage_mod

    experiments = registry.all_experiments()
    cells, _ = runner.current_cells([c for c in store.load_cells(results) if c.get("profile") == profile])
    frame = store.frame(cells)
    papers = {p.id: p for p in coverage_mod.paper_files(experiments.values(), papers_root)}
    grid = coverage_mod.grid_coverage(
        experiments, cells, profile,
        ids=[t.experiment for p in papers.values() for t in p.tables if t.experiment]
        + [e for p in papers.values() for c in p.claims for e in claims_mod.claim_experiments(c, p.tables)])
    out = []
    for pid in sorted(set(papers) | {e.paper for e in experiments.values()}):
        paper = papers.get(pid)
        verdicts = claims_mod.judge_all(paper, frame, profile=profile, coverage=grid) if paper else []
        counts = {v: 0 for v in claims_mod.VERDICTS}
        for v in verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        failed_claims = [f"{v.verdict}: {v.claim.id}" for v in verdicts if v.verdict in FAILING_VERDICTS]
        failed_cells = [f"cell failed: {c['experiment']} {json.dumps(c['cell'], sort_keys=True)} seed={c['seed']}"
                        for c in cells if c["status"] == "failed"
                        and experiments.get(c["experiment"]) is not None
                        and experiments[c["experiment"]].paper == pid]
        out.append(PaperSummary(pid, paper.title if paper else pid, counts, failed_claims + failed_cells))
    return out


def summary_text(summaries: Sequence[PaperSummary], *, report: Path | None, max_failures: int = 5) -> str:
    """The closing screen of ``reproduce``: one block per paper, then the report's path."""
    lines = ["", "summary (claims by verdict; see the report for the evidence)"]
    for s in summaries:
        counts = ", ".join(f"{n} {v}" for v, n in s.counts.items() if n) or "no claims"
        lines.append(f"  {s.paper:12s} {counts}")
        for failure in s.failures[:max_failures]:
            lines.append(f"      {failure}")
        if len(s.failures) > max_failures:
            lines.append(f"      ... and {len(s.failures) - max_failures} more")
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report reuse


def report_fingerprint(results: Path, out: Path, *, profile: str) -> str:
    """A hash of everything a rendered report depends on, from file metadata only (no reads).

    Covered: every cell file under ``results/cells`` (name, size, mtime), every file of the
    code and paper descriptions (``suite/``, ``metrics/``, ``reproductions/`` and the module
    file of each registered experiment, plugins included: templates, ``paper.yaml``, plot
    functions), the version of each present dataset and the presence of every registered one
    (the leaderboards page lists absent datasets), the profile, the output folder and
    ``ENERGYBENCH_PLUGINS``. Any change to any of them gives another hash, so a report is
    reused only when rendering it again would read exactly the same inputs.
    """
    import hashlib
    import os

    from suite.data import registry as data_registry
    from suite.harness import registry

    digest = hashlib.sha256()

    def add(*parts: Any) -> None:
        digest.update(json.dumps(parts, default=str).encode())
        digest.update(b"\n")

    add("profile", profile, "out", str(Path(out).resolve()), "plugins", os.environ.get("ENERGYBENCH_PLUGINS", ""))
    cells = Path(results) / store.CELL_DIR
    if cells.is_dir():
        for entry in sorted(os.scandir(cells), key=lambda e: e.name):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                st = entry.stat()
                add("cell", entry.name, st.st_size, st.st_mtime_ns)
    root = Path(__file__).resolve().parents[2]
    files = set()
    for top in ("suite", "metrics", "reproductions"):
        if (root / top).is_dir():
            files.update(p for p in (root / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    experiments = registry.all_experiments()
    for exp in experiments.values():
        try:
            module = sys.modules.get(exp.module)
            origin = getattr(module, "__file__", None)
        except Exception:  # noqa: BLE001  (a broken plugin only costs the reuse)
            origin = None
        if origin:
            files.add(Path(origin))
            files.update(p for p in Path(origin).parent.glob("paper.yaml"))
    for path in sorted(files):
        st = path.stat()
        add("file", str(path), st.st_size, st.st_mtime_ns)
    for dataset_id in sorted(data_registry.DATASETS):
        found = data_registry.find(dataset_id)
        add("data", dataset_id, None if found is None else (str(found), data_registry.version(dataset_id)))
    return digest.hexdigest()


REPORT_STAMP = ".energybench-report.json"


def reusable_report(results: Path, out: Path, *, profile: str) -> tuple[str, dict | None]:
    """``(fingerprint, stamp)``: the stamp a previous ``reproduce`` left in ``out`` when it
    rendered from exactly these inputs and its pages are still there, else None."""
    fingerprint = report_fingerprint(results, out, profile=profile)
    stamp_path = Path(out) / REPORT_STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return fingerprint, None
    pages = stamp.get("pages") or []
    if (stamp.get("fingerprint") != fingerprint or not pages
            or not all((Path(out) / page).is_file() for page in pages)):
        return fingerprint, None
    return fingerprint, stamp


def write_report_stamp(out: Path, fingerprint: str, summary: str) -> None:
    """Remember what ``out`` was rendered from (see :func:`reusable_report`)."""
    out = Path(out)
    pages = sorted(p.name for p in out.glob("*.html"))
    store.write_json_atomic(out / REPORT_STAMP, {"fingerprint": fingerprint, "pages": pages, "summary": summary})
