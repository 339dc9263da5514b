"""Registry of experiments: explicit ids, registered by decorator.

An experiment is a function ``fn(ctx, cell) -> list[Record]`` registered under an explicit
id such as ``tvlayers.table1``. Paper packages register theirs when imported; the harness
finds the paper packages through the ``energybench.experiments`` entry-point group declared in
``pyproject.toml`` (so ``suite`` never imports ``reproductions`` by name, and a user's own
package can add experiments the same way).
"""
from __future__ import annotations

import difflib
import importlib
import itertools
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence

PROFILES = ("smoke", "mini", "full")
DEFAULT_PROFILE = "mini"
ENTRY_POINT_GROUP = "energybench.experiments"

_EXPERIMENTS: dict[str, "Experiment"] = {}


class UnknownIdError(ValueError):
    """An id that is not registered; the message suggests close names."""


@dataclass(frozen=True)
class Experiment:
    """One registered experiment (usually one paper table or figure).

    Attributes:
        id: ``"<paper>.<table>"``, e.g. ``"tvlayers.table1"``.
        func: ``func(ctx, cell) -> list[Record]``.
        paper: paper id (``tvlayers``); the report groups by it.
        table: the paper's name for what is rebuilt (``"Table 1"``).
        title: one line for listings.
        grid: mapping of parameter -> list of values (cartesian product) or a callable
            ``grid(settings) -> list[dict]``.
        profiles: per-profile settings, one dict for each of ``smoke``, ``mini``, ``full``.
        datasets: ids of the datasets a cell reads, or ``datasets(cell, settings) -> ids``;
            their versions enter the cell key.
        timing: timing cells run alone, in the main process, never beside other cells.
        plots: ``plots(frame) -> {name: matplotlib Figure}`` for the report.
        protocol: text shown in the report under the table (how the paper's protocol was read).
    """

    id: str
    func: Callable[..., Any]
    paper: str
    table: str
    title: str
    grid: Mapping[str, Sequence[Any]] | Callable[[Mapping[str, Any]], list[dict]]
    profiles: Mapping[str, Mapping[str, Any]]
    datasets: Sequence[str] | Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[str]] = ()
    timing: bool = False
    plots: Callable[[Any], dict] | None = None
    protocol: str = ""
    module: str = field(default="")

    def settings(self, profile: str) -> dict[str, Any]:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        return dict(self.profiles[profile])

    def cells(self, profile: str) -> list[dict[str, Any]]:
        settings = self.settings(profile)
        if callable(self.grid):
            cells = [dict(c) for c in self.grid(settings)]
        else:
            names = list(self.grid)
            cells = [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))]
        return cells

    def dataset_ids(self, cell: Mapping[str, Any], profile: str) -> list[str]:
        ids = self.datasets(cell, self.settings(profile)) if callable(self.datasets) else self.datasets
        return sorted(set(ids))


# Ids become file names (results/metrics/<id>.json, report plots): letters, digits, '_' and '-'
# on each side of one dot, so no id can be absolute, climb out with '..' or hide a separator.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class PluginError(ImportError):
    """A module named in ``ENERGYBENCH_PLUGINS`` (or an entry point) is missing or fails to import."""


def check_id(id: Any) -> str:
    """``id`` if it is a valid experiment id (``paper.table``), else ValueError saying why."""
    if not isinstance(id, str) or not ID_PATTERN.fullmatch(id):
        raise ValueError(f"experiment id must look like 'paper.table' (letters, digits, '_' or '-' on each side of "
                         f"one dot, at most 64 each), got {id!r}")
    return id


def experiment(
    id: str,
    *,
    table: str,
    title: str,
    grid,
    profiles: Mapping[str, Mapping[str, Any]],
    datasets=(),
    timing: bool = False,
    plots=None,
    protocol: str = "",
):
    """Register ``fn(ctx, cell)`` under ``id``; the paper is the part of ``id`` before the dot.

    Raises:
        ValueError: ``id`` is not ``paper.name``, is already registered, or ``profiles``
            misses one of ``smoke``, ``mini``, ``full``.
    """
    check_id(id)
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise ValueError(f"experiment {id!r}: profiles must define {PROFILES}, missing {missing}")

    def register(fn):
        existing = _EXPERIMENTS.get(id)
        # Re-importing the same module re-registers the same function: that is not a clash.
        if existing and (existing.module, existing.func.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(
                f"experiment id {id!r} is already registered by {existing.module}.{existing.func.__qualname__}"
            )
        _EXPERIMENTS[id] = Experiment(
            id=id, func=fn, paper=id.split(".")[0], table=table, title=title, grid=grid,
            profiles=profiles, datasets=datasets, timing=timing, plots=plots, protocol=protocol,
            module=fn.__module__,
        )
        return fn

    return register


def load_plugins() -> None:
    """Import the packages that register experiments.

    Those named in the ``energybench.experiments`` entry-point group (the papers, and any
    installed package of a user's), then the modules listed in ``ENERGYBENCH_PLUGINS``
    (comma-separated module paths: a user's own experiments without packaging).

    Raises:
        PluginError: a module of ``ENERGYBENCH_PLUGINS`` or an entry point is missing or raises
            on import; the message names the variable (or entry point), the module and the error.
    """
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as error:
            raise PluginError(f"the {ENTRY_POINT_GROUP} entry point {entry.name!r} ({entry.value}) failed to "
                              f"import: {type(error).__name__}: {error}") from error
    for name in filter(None, (n.strip() for n in os.environ.get("ENERGYBENCH_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if not error.name or not (name == error.name or name.startswith(error.name + ".")):
                raise PluginError(f"ENERGYBENCH_PLUGINS names the module {name!r}, which failed to import: "
                                  f"{type(error).__name__}: {error}") from error
            raise PluginError(f"ENERGYBENCH_PLUGINS names the module {name!r}, which cannot be found "
                              f"({error}); fix the variable or install the module") from error
        except Exception as error:
            raise PluginError(f"ENERGYBENCH_PLUGINS names the module {name!r}, which failed to import: "
                              f"{type(error).__name__}: {error}") from error


def all_experiments() -> dict[str, Experiment]:
    load_plugins()
    return dict(sorted(_EXPERIMENTS.items()))


def suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def get(id: str) -> Experiment:
    experiments = all_experiments()
    if id not in experiments:
        raise UnknownIdError(f"unknown experiment {id!r}{suggest(id, experiments)}")
    return experiments[id]


def resolve(targets: Sequence[str]) -> list[Experiment]:
    """Targets are experiment ids or paper ids (all of that paper's experiments); none = all."""
    experiments = all_experiments()
    if not targets:
        return list(experiments.values())
    chosen: dict[str, Experiment] = {}
    papers = {e.paper for e in experiments.values()}
    for target in targets:
        if target in experiments:
            chosen[target] = experiments[target]
        elif target in papers:
            chosen.update({k: e for k, e in experiments.items() if e.paper == target})
        else:
            raise UnknownIdError(
                f"unknown experiment or paper {target!r}{suggest(target, [*experiments, *papers])}"
            )
    return list(chosen.values())
