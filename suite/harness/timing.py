"""Wall-clock timing of forward and backward passes, the way the papers time their layers."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class Timing:
    """Milliseconds per run: forward, backward, and their sum, each as mean and std over runs."""

    forward: np.ndarray
    backward: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.forward + self.backward


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_forward_backward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, repeats: int,
                          warmup: int = 2, warmup_input: torch.Tensor | None = None,
                          backward: bool = True) -> Timing:
    """Time ``y = fn(x)`` and ``y.backward(g)`` (a fixed random ``g``) ``repeats`` times.

    The device is synchronised before each clock read, so asynchronous CUDA work is counted.
    ``warmup_input`` lets a slow peer warm up on a small slice instead of the whole batch.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = str(x.device)
    generator = torch.Generator().manual_seed(0)
    for _ in range(warmup):
        w = (warmup_input if warmup_input is not None else x).detach().clone().requires_grad_(backward)
        out = fn(w)
        if backward:
            out.backward(torch.ones_like(out))
    forward, backward_ms = [], []
    for _ in range(repeats):
        inp = x.detach().clone().requires_grad_(backward)
        _sync(device)
        start = time.perf_counter()
        out = fn(inp)
        _sync(device)
        forward.append((time.perf_counter() - start) * 1e3)
        if backward:
            grad = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
            _sync(device)
            start = time.perf_counter()
            out.backward(grad)
            _sync(device)
            backward_ms.append((time.perf_counter() - start) * 1e3)
        else:
            backward_ms.append(0.0)
    return Timing(np.asarray(forward), np.asarray(backward_ms))
