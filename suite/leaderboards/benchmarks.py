"""Benchmarks and their leaderboards: every registered method of a task, scored the same way.

A benchmark is (task, dataset, metrics, protocol version). Each one is registered as the
experiment ``leaderboard.<id>`` whose grid is the task's registered methods (the papers',
classical baselines, a user's), so a leaderboard is cached, resumed, versioned and reported like
any paper table: one cell per method, keyed by the method's code hash and the dataset's version.
Leaderboards never mix protocol versions: the version is part of the benchmark id and of the
table name, and a changed protocol is a new benchmark.

Why this lives in ``suite/leaderboards`` and not in ``suite/harness`` (DESIGN.md puts registries in
the harness): the sample loading and scoring here change measured values, so they must enter the
cells' source hash, which leaves the harness out on purpose. The method registry itself is in
``suite.harness.methods``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from suite.harness import experiment
from suite.harness.methods import TASKS, Method, get_method, methods_for

PAPER = "leaderboard"
_BENCHMARKS: dict[str, "Benchmark"] = {}


@dataclass(frozen=True)
class Sample:
    """One benchmark item: the method's inputs (keyword arguments) and the ground truth."""

    name: str
    inputs: dict[str, Any]
    truth: dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """A task on a dataset with a fixed protocol.

    Attributes:
        id: ``"<task>-<dataset>-v<version>"`` style id; the experiment is ``leaderboard.<id>``.
        task: one of ``suite.harness.methods.TASKS``.
        dataset: the data-registry id the samples come from.
        title: one line (the table's name in the report).
        metrics: ``{metric: (unit, higher_is_better)}``; the first one ranks the leaderboard.
        samples: ``samples(root, limit) -> iterable of Sample`` from the dataset's folder, the first
            ``limit`` items (None: all); with ``extra_datasets``, ``samples(root, limit, extra)``
            where ``extra`` maps each of those ids to its folder.
        score: ``score(prediction, truth) -> per-sample result`` (a dict of metric -> float for
            per-image means, or anything ``aggregate`` understands).
        aggregate: ``aggregate(results) -> {metric: (value, std)}``; default: the mean of each
            metric over the samples and its standard error.
        check: ``check(prediction, sample)`` raises ValueError when a method's output breaks the
            task's contract (shape, range, NaN); default: none.
        protocol: how the benchmark is run and scored (shown under the table).
        limits: samples per profile (``smoke``, ``mini``, ``full``; None = all).
        extra_datasets: other datasets the samples need (e.g. the images of a scribble set).
        predict: ``predict(func, sample) -> prediction`` when a method is run more than once per
            sample (a simulated user that scribbles until the mask is good, ``simulated_user``);
            default: ``func(**sample.inputs)``.
    """

    id: str
    task: str
    dataset: str
    title: str
    metrics: dict[str, tuple[str, bool]]
    samples: Callable[[Any, int | None], Iterable[Sample]]
    score: Callable[[Any, dict[str, Any]], Any]
    protocol: str
    aggregate: Callable[[list[Any]], dict[str, tuple[float, float | None]]] | None = None
    check: Callable[[Any, Sample], None] | None = None
    limits: dict[str, int | None] = field(default_factory=lambda: {"smoke": 2, "mini": 20, "full": None})
    extra_datasets: tuple[str, ...] = ()
    predict: Callable[[Callable[..., Any], Sample], Any] | None = None

    @property
    def primary(self) -> str:
        return next(iter(self.metrics))


def mean_and_error(results: list[dict[str, float]]) -> dict[str, tuple[float, float | None]]:
    """Per-sample means: the mean of each metric and its standard error (None for one sample)."""
    out = {}
    for metric in results[0]:
        values = np.array([r[metric] for r in results], dtype=np.float64)
        error = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
        out[metric] = (float(values.mean()), error)
    return out


def benchmark(spec: Benchmark) -> Benchmark:
    """Register ``spec`` and its leaderboard experiment ``leaderboard.<id>``."""
    if spec.task not in TASKS:
        raise ValueError(f"{spec.id}: task must be one of {sorted(TASKS)}, got {spec.task!r}")
    if not spec.metrics:
        raise ValueError(f"{spec.id}: a benchmark needs at least one metric")
    if spec.id in _BENCHMARKS and _BENCHMARKS[spec.id] is not spec and _BENCHMARKS[spec.id] != spec:
        raise ValueError(f"benchmark {spec.id!r} is already registered")
    _BENCHMARKS[spec.id] = spec
    profiles = {profile: {"limit": limit} for profile, limit in spec.limits.items()}

    def grid(_settings):
        return [{"method": m.name, "code": m.code} for m in methods_for(spec.task)]

    def run(ctx, cell):
        return evaluate(spec, get_method(spec.task, cell["method"]), ctx)

    run.__qualname__ = f"leaderboard_{spec.id.replace('-', '_').replace('.', '_')}"
    experiment(f"{PAPER}.{spec.id}", table=spec.title, title=f"Leaderboard: {spec.title}", grid=grid,
               profiles=profiles, datasets=(spec.dataset, *spec.extra_datasets), protocol=spec.protocol)(run)
    return spec


def all_benchmarks() -> dict[str, Benchmark]:
    return dict(sorted(_BENCHMARKS.items()))


def open_dataset(dataset_id: str, root, **options):
    """The registered reader of ``dataset_id`` on the folder ``root`` (a benchmark's samples)."""
    from suite.data import registry

    return registry.get(dataset_id).open(root, **options)


def rgb_image(image: Any, name: str = "image") -> np.ndarray:
    """``image`` as the tasks' (H, W, 3) uint8 RGB (a grey (H, W) image is repeated); ValueError
    naming ``name`` otherwise."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{name}: expected an (H, W, 3) uint8 RGB image, got shape {array.shape} dtype {array.dtype}")
    return array


def evaluate(spec: Benchmark, method: Method, ctx) -> list:
    """Run ``method`` on the benchmark's samples and record each metric (row = method)."""
    column = spec.dataset
    try:
        root = ctx.data.path(spec.dataset)
        extra = {dataset: ctx.data.path(dataset) for dataset in spec.extra_datasets}
    except FileNotFoundError as missing:
        for metric, (unit, higher) in spec.metrics.items():
            ctx.not_run(row=method.name, column=column, metric=metric, unit=unit, higher_is_better=higher,
                        reason=str(missing))
        return ctx.records
    results = []
    limit = ctx.settings["limit"]
    samples = spec.samples(root, limit, extra) if spec.extra_datasets else spec.samples(root, limit)
    for sample in ctx.progress(_limited(samples, limit), desc=method.name):
        prediction = spec.predict(method.func, sample) if spec.predict is not None else method.func(**sample.inputs)
        if spec.check is not None:
            try:
                spec.check(prediction, sample)
            except ValueError as error:
                raise ValueError(f"method {method.name!r} on {sample.name}: {error} "
                                 f"(the {spec.task} contract: {TASKS[spec.task]})") from None
        results.append(spec.score(prediction, sample.truth))
    if not results:
        raise ValueError(f"{spec.id}: the dataset {spec.dataset!r} at {root} gave no samples")
    aggregate = spec.aggregate or mean_and_error
    for metric, (value, error) in aggregate(results).items():
        unit, higher = spec.metrics[metric]
        ctx.record(row=method.name, column=column, metric=metric, value=value, std=error, n=len(results),
                   unit=unit, higher_is_better=higher)
    return ctx.records


def _limited(samples: Iterable[Sample], limit: int | None) -> Iterator[Sample]:
    for index, sample in enumerate(samples):
        if limit is not None and index >= limit:
            return
        yield sample
