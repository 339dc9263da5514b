"""Training step times of the TV tasks, as recorded beside their results (the cost of a TV layer)."""
from __future__ import annotations

import numpy as np


def step_time_ms(history: dict, *, skip: int = 2) -> tuple[float, float, int]:
    """Mean and std (ms) of the training step times, the first ``skip`` (warm-up) left out."""
    times = np.asarray(history["step_seconds"][skip:] or history["step_seconds"], float) * 1e3
    return float(times.mean()), float(times.std(ddof=1)) if times.size > 1 else 0.0, int(times.size)
