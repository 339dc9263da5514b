"""Run experiment cells: cached by key, resumable, sequential or in local processes."""
from __future__ import annotations

import json
import os
import random
import time
import traceback
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock
from tqdm.auto import tqdm

from . import keys, progress, provenance, registry, store
from .context import Context, DataAccess
from .records import Record

STATUS_OK, STATUS_NOT_RUN, STATUS_FAILED = "ok", "not_run", "failed"


@dataclass(frozen=True)
class Options:
    profile: str = registry.DEFAULT_PROFILE
    device: str = "auto"
    jobs: int = 1
    force: bool = False
    results: Path = Path("results")
    seeds: tuple[int, ...] | None = None
    progress: bool = True
    executor: str = "local"  # "local" (-j processes) or "ray" (a Ray cluster, see executors.py)
    address: str | None = None  # the Ray cluster's address (None: $RAY_ADDRESS, else a local Ray)


@dataclass(frozen=True)
class Task:
    experiment: str
    cell: dict
    seed: int
    key: str
    data_versions: dict
    timing: bool
    source: str = ""  # the experiment's source hash at planning time (checked by remote workers)


@dataclass
class Summary:
    ran: int = 0
    cached: int = 0
    not_run: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch.cuda.is_available() is False on this machine")
    return device


def _data_versions(dataset_ids: list[str], memo: dict[str, str] | None = None) -> dict[str, str]:
    """Each dataset's version (its manifest hash). ``memo``: versions already computed in this
    pass; a version walks and stats every file of the dataset, and one pass over hundreds of
    cells asks for the same few datasets again and again."""
    if not dataset_ids:
        return {}
    from suite.data import registry as data_registry

    memo = {} if memo is None else memo
    for d in dataset_ids:
        if d not in memo:
            memo[d] = data_registry.version(d)
    return {d: memo[d] for d in dataset_ids}


def ensure_generated(experiments: list[registry.Experiment], options: Options) -> list[str]:
    """Build the generated datasets the cells declare and that are absent (a fresh clone has none).

    They are written deterministically into the first data root (``ENERGYBENCH_DATA`` when set,
    else ``data/``) at the smoke sizes for a smoke run and the mini sizes otherwise, and are not
    recorded with DVC here: ``energybench data build`` records the whole folder.
    """
    wanted = {d for exp in experiments for cell in exp.cells(options.profile)
              for d in exp.dataset_ids(cell, options.profile)}
    if not wanted:
        return []
    from suite.data import manage
    from suite.data import registry as data_registry

    missing = []
    for dataset_id in sorted(wanted):
        if data_registry.get(dataset_id).kind != "generated":
            continue
        try:
            data_registry.locate(dataset_id)
        except FileNotFoundError:
            missing.append(dataset_id)
    if missing:
        if options.progress:
            print(f"data: building the generated datasets {', '.join(missing)} (absent)", flush=True)
        manage.build(profile="smoke" if options.profile == "smoke" else "mini", root=data_registry.data_roots()[0],
                     datasets=missing, record=False,
                     progress=progress.choose_mode(options.progress) == "bar")
    return missing


def plan(experiments: list[registry.Experiment], options: Options, *, device_class: str | None = None) -> list[Task]:
    """The cells to run, each with its key. ``device_class``: where they will run when that is
    not this machine (a Ray cluster's workers); default: this machine's resolved device."""
    dclass = device_class or provenance.device_class(resolve_device(options.device))
    tasks, memo = [], {}
    for exp in experiments:
        seeds = options.seeds or tuple(exp.settings(options.profile).get("seeds", (0,)))
        source = keys.source_hash(exp.module)
        for cell in exp.cells(options.profile):
            versions = _data_versions(exp.dataset_ids(cell, options.profile), memo)
            for seed in seeds:
                key = keys.cell_key(experiment=exp.id, cell=cell, profile=options.profile, seed=seed,
                                    source=source, data_versions=versions, device_class=dclass)
                tasks.append(Task(exp.id, cell, seed, key, versions, exp.timing, source))
    return tasks


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_done(path: Path) -> bool:
    cell = store.read_cell(path)
    return cell is not None and cell.get("status") == STATUS_OK


def compute(task: Task, options: Options, *, device: str, show_progress: bool = False) -> dict[str, Any]:
    """Run one cell and return its result payload (what ``results/cells/<key>.json`` holds),
    without touching the results folder: local workers and remote (Ray) workers share it."""
    import torch

    exp = registry.get(task.experiment)
    if task.source and keys.source_hash(exp.module) != task.source:
        # a remote worker with other code would store results under a key that does not describe them
        raise RuntimeError(f"{task.experiment}: this worker's code differs from the code the run was planned "
                           f"with (source hash {keys.source_hash(exp.module)[:12]} != {task.source[:12]}); "
                           "install the same commit on every node")
    ctx = Context(
        paper=exp.paper, table=exp.table, profile=options.profile,
        settings=exp.settings(options.profile), device=device, seed=task.seed,
        data=DataAccess(task.data_versions),
        progress=(lambda it=None, **kw: tqdm(it, leave=False, position=1, **kw)) if show_progress
        else (lambda it=None, **kw: it),
    )
    _seed_everything(task.seed)
    provenance.reset_peak_rss()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    error = None
    start = time.perf_counter()
    try:
        returned = exp.func(ctx, dict(task.cell))
        records = list(returned) if returned is not None else ctx.records
        if not all(isinstance(r, Record) for r in records):
            raise TypeError(f"experiment {exp.id} must return Record objects, got {records[:3]!r}")
    except Exception:  # a failing cell is recorded; the others still run
        error = traceback.format_exc()
        records = ctx.records
    wall = time.perf_counter() - start
    status = STATUS_FAILED if error else (STATUS_OK if any(r.measured for r in records) else STATUS_NOT_RUN)
    prov = provenance.environment(device)
    prov.update({
        "seed": task.seed, "wall_s": wall, "peak_rss_mb": provenance.peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
        "data_versions": dict(task.data_versions), "data_read": dict(ctx.data.read),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return {
        "key": task.key, "experiment": task.experiment, "cell": task.cell, "profile": options.profile,
        "seed": task.seed, "device_class": provenance.device_class(device), "status": status,
        "records": [r.to_dict() for r in records], "error": error, "provenance": prov,
    }


def _cell_lock(options: Options, task: Task) -> FileLock:
    # locks live apart from the results, so that copying results/cells/ merges machines cleanly
    lock = Path(options.results) / ".locks" / f"{task.key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock))


def execute(task: Task, options: Options, *, threads: int | None = None, show_progress: bool = False) -> str:
    """Run one cell unless a finished result exists; write it atomically. Returns its status.

    A lock per key makes a second run that reaches the same cell wait for the first and then
    reuse its result, instead of computing it twice or interleaving writes.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    path = store.cell_path(options.results, task.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _cell_lock(options, task):
        previous = store.read_cell(path)
        if not options.force and previous is not None and previous.get("status") == STATUS_OK:
            return "cached"
        payload = compute(task, options, device=resolve_device(options.device), show_progress=show_progress)
        if not options.force and _same_not_run(previous, payload):
            # a retried not-run cell that again measured nothing, for the same reasons: the file
            # already says so (same key: same code, data and device), so it is kept, and a
            # rerun leaves results/ (and the report rendered from it) unchanged
            return payload["status"]
        store.write_json_atomic(path, payload)
        return payload["status"]


def _same_not_run(previous: dict[str, Any] | None, payload: dict[str, Any]) -> bool:
    if previous is None or payload["status"] != STATUS_NOT_RUN or previous.get("status") != STATUS_NOT_RUN:
        return False
    normal = json.loads(json.dumps({"records": payload["records"], "error": payload["error"]}, default=str))
    return normal == {"records": previous.get("records"), "error": previous.get("error")}


def store_result(task: Task, options: Options, payload: dict[str, Any]) -> str:
    """Write a payload computed elsewhere (a remote worker) under the cell's lock."""
    path = store.cell_path(options.results, task.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _cell_lock(options, task):
        if not options.force and is_done(path):
            return "cached"  # another run finished it meanwhile; keep the first result
        store.write_json_atomic(path, payload)
    return payload["status"]


def _tally(summary: Summary, task: Task, status: str) -> None:
    if status == "cached":
        summary.cached += 1
    elif status == STATUS_FAILED:
        summary.failed.append(f"{task.experiment} {task.cell} seed={task.seed}")
    elif status == STATUS_NOT_RUN:
        summary.not_run += 1
    else:
        summary.ran += 1


def _label(task: Task) -> str:
    return f"{task.experiment} {keys.canonical(task.cell)} seed={task.seed}"


def run(experiments: list[registry.Experiment], options: Options) -> Summary:
    """Run every cell of ``experiments``; finished cells are skipped unless ``options.force``.

    Progress (see :mod:`suite.harness.progress`): a bar with an ETA from the cells' expected
    costs on a terminal, one plain line per finished cell otherwise, nothing without
    ``options.progress``; what runs after the last cell (the metrics files) is announced too.
    """
    if options.executor not in ("local", "ray"):
        raise ValueError(f"--executor must be local or ray, got {options.executor!r}")
    mode = progress.choose_mode(options.progress)
    say = (lambda text: None) if mode == "off" else (lambda text: print(text, flush=True))
    ensure_generated(experiments, options)
    cluster = None
    if options.executor == "ray":
        from . import executors

        cluster = executors.RayCluster.connect(options)
    tasks = plan(experiments, options, device_class=cluster.device_class if cluster else None)
    summary = Summary()
    # one read of the results folder: which cells are done, and what each cell cost last time
    recorded = store.load_cells(options.results)
    done_keys = {c["key"] for c in recorded if c.get("status") == STATUS_OK}
    todo = [t for t in tasks if options.force or t.key not in done_keys]
    summary.cached += len(tasks) - len(todo)
    costs = progress.CostModel.from_cells(recorded, profile=options.profile)
    workers = 1 if cluster is None and options.jobs <= 1 else max(1, options.jobs)
    estimates = {t.key: costs.estimate(t.experiment, t.cell, options.profile, t.seed) for t in todo}
    eta = progress.Eta({k: seconds for k, (seconds, _) in estimates.items()}, workers=workers,
                       guessed={t.key: t.experiment for t in todo if not estimates[t.key][1]})
    if todo and mode != "off":
        say(f"cells: {len(tasks)} planned, {summary.cached} already done, {len(todo)} to run "
            f"(expected {progress.format_seconds(eta.remaining())})")
    bar = progress.CellProgress(len(tasks), done=summary.cached, eta=eta, mode=mode)

    def finished(task: Task, status: str, wall: float | None = None) -> None:
        _tally(summary, task, status)
        if wall is not None and status in (STATUS_OK, STATUS_NOT_RUN):
            eta.observed(task.key, task.experiment, wall)
        bar.finished(task.key, _label(task), status, wall)

    # timing cells run alone on their device: after the others, one at a time
    parallel = [t for t in todo if not t.timing] if (options.jobs > 1 or cluster) else []
    sequential = [t for t in todo if t not in parallel]
    try:
        if cluster is not None:
            def stored(task: Task, payload: dict | None) -> None:
                wall = (payload or {}).get("provenance", {}).get("wall_s")
                finished(task, store_result(task, options, payload) if payload is not None else STATUS_FAILED, wall)

            try:
                cluster.run(parallel, options, on_result=stored)
                cluster.run(sequential, options, on_result=stored, one_at_a_time=True)
            finally:
                cluster.close()
            sequential = []
        elif parallel:
            from . import executors

            threads = max(1, (os.cpu_count() or 1) // options.jobs)
            pool = executors.local_pool(options.jobs)
            try:
                futures = {pool.submit(execute, t, options, threads=threads): t for t in parallel}
                for future in as_completed(futures):
                    try:
                        status = future.result()
                    except store.StoreError:  # the results folder cannot be written: stop, naming it
                        raise
                    except Exception:  # the worker died (e.g. out of memory): the cell is not written
                        status = STATUS_FAILED
                    finished(futures[future], status)
            except BaseException:
                # interrupted (Ctrl-C, SIGTERM) or failing: no worker may outlive this run
                executors.stop_local_pool(pool)
                raise
            pool.shutdown(wait=True)
        for task in sequential:
            bar.started(task.key, _label(task))
            start = time.perf_counter()
            status = execute(task, options, show_progress=mode == "bar")
            finished(task, status, time.perf_counter() - start)
    finally:
        bar.close()
    with progress.Phase(say, f"metrics: one file per registered experiment under {Path(options.results) / 'metrics'}"):
        write_all_metrics(experiments, options)
    return summary


def current_cells(cells: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The cells that today's code and data would produce, and how many others were left out.

    A cell is current when its parameters are still in its experiment's grid and its key is the
    one planned now (source hash of the code, dataset versions) for the device class it ran on,
    so results merged from other machines count while results of older code or data do not mix
    into today's numbers. A dataset that is not present here counts at the version the cell
    recorded (a report can be rendered where the data is not). Cells of experiments that are
    not registered here are left out too.
    """
    from suite.data.registry import ABSENT

    experiments = registry.all_experiments()
    keep, grids, sources, stale, memo = [], {}, {}, 0, {}
    for cell in cells:
        exp = experiments.get(cell.get("experiment"))
        if exp is None:
            stale += 1
            continue
        profile = cell["profile"]
        if (exp.id, profile) not in grids:
            grids[exp.id, profile] = [keys.canonical(c) for c in exp.cells(profile)]
            sources[exp.id] = keys.source_hash(exp.module)
        if keys.canonical(cell["cell"]) not in grids[exp.id, profile]:
            stale += 1
            continue
        # a dataset absent here (results copied from another machine) keeps the version the cell
        # recorded; one present here must be the version the cell read
        recorded = cell.get("provenance", {}).get("data_versions", {})
        versions = {d: recorded.get(d, v) if v == ABSENT else v
                    for d, v in _data_versions(exp.dataset_ids(cell["cell"], profile), memo).items()}
        key = keys.cell_key(experiment=exp.id, cell=cell["cell"], profile=profile, seed=cell["seed"],
                            source=sources[exp.id], data_versions=versions, device_class=cell["device_class"])
        if key == cell["key"]:
            keep.append(cell)
        else:
            stale += 1
    return keep, stale


def write_all_metrics(experiments: list[registry.Experiment], options: Options) -> list[Path]:
    """The ``dvc metrics`` files of every registered experiment (:mod:`suite.harness.dvc_metrics`;
    ``experiments`` is the run's list, kept for callers: every stage gets its file)."""
    from . import dvc_metrics

    return dvc_metrics.write_all(options.results, profile=options.profile)
