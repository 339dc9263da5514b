"""Records: one measured value each, the only shape reports and leaderboards read."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Record:
    """One measured value of one cell.

    ``value`` is None only for a value that was not measured; ``note`` then says why
    ("not run: prox-tv not installed"). ``std`` and ``n`` describe repeated measurements
    inside one cell (e.g. 25 timing runs); ``step`` indexes a curve (loss per iteration).
    """

    paper: str
    table: str
    row: str
    column: str
    metric: str
    value: float | None
    unit: str
    higher_is_better: bool
    device: str
    std: float | None = None
    n: int | None = None
    step: int | None = None
    note: str | None = None

    def __post_init__(self):
        for name in ("paper", "table", "row", "column", "metric"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Record.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.value is None:
            if not self.note:
                raise ValueError(f"Record {self.row}/{self.column}: a missing value needs a note saying why")
        else:
            value = float(self.value)
            if math.isnan(value):
                raise ValueError(f"Record {self.row}/{self.column}: value is NaN; record None with a note instead")
            object.__setattr__(self, "value", value)
        if self.std is not None:
            object.__setattr__(self, "std", float(self.std))

    @property
    def measured(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
