"""The context an experiment cell runs in: profile settings, device, seed, data, progress."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from .records import Record


class DataAccess:
    """Locates datasets through ``suite.data`` and remembers the versions a cell read."""

    def __init__(self, allowed: Iterable[str]):
        self.allowed = set(allowed)
        self.read: dict[str, str] = {}

    def path(self, dataset_id: str):
        """Folder of ``dataset_id``; raises ``DatasetMissing`` naming where it looked."""
        from suite.data import registry

        if dataset_id not in self.allowed:
            raise ValueError(
                f"dataset {dataset_id!r} is read but not declared by the experiment "
                f"(declared: {sorted(self.allowed)}); declare it so its version enters the cell key"
            )
        location = registry.locate(dataset_id)
        self.read[dataset_id] = registry.version(dataset_id)
        return location

    def present(self, dataset_id: str) -> bool:
        from suite.data import registry

        try:
            registry.locate(dataset_id)
        except FileNotFoundError:
            return False
        return True


def _no_progress(iterable=None, **_):
    return iterable


@dataclass
class Context:
    """What a cell gets besides its parameters.

    ``settings`` are the experiment's settings for ``profile`` (read-only). ``progress`` wraps
    an iterable like ``tqdm`` (a no-op in worker processes). ``record``/``not_run`` build
    records with the paper, table and device filled in.
    """

    paper: str
    table: str
    profile: str
    settings: Mapping[str, Any]
    device: str
    seed: int
    data: DataAccess
    progress: Callable[..., Any] = _no_progress
    records: list[Record] = field(default_factory=list)

    def __post_init__(self):
        self.settings = MappingProxyType(dict(self.settings))

    def record(self, *, row: str, column: str, metric: str, value, unit: str = "",
               higher_is_better: bool, std=None, n=None, step=None, note=None,
               device: str | None = None, table: str | None = None) -> Record:
        rec = Record(
            paper=self.paper, table=table or self.table, row=row, column=column, metric=metric,
            value=value, unit=unit, higher_is_better=higher_is_better, device=device or self.device,
            std=std, n=n, step=step, note=note,
        )
        self.records.append(rec)
        return rec

    def not_run(self, *, row: str, column: str, metric: str, reason: str, unit: str = "",
                higher_is_better: bool = True, device: str | None = None,
                table: str | None = None) -> Record:
        return self.record(row=row, column=column, metric=metric, value=None, unit=unit,
                           higher_is_better=higher_is_better, note=f"not run: {reason}",
                           device=device, table=table)
