"""Helpers shared by the wibergian experiments (no experiment logic)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

LAMBDA = 0.1  # the paper's damping (Fig. 1, Sec. 3: "we simply set it to 0.1")
DAMPED, UNDAMPED = "damped", "undamped"
METHOD_LAMBDA = {DAMPED: LAMBDA, UNDAMPED: 0.0}


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run small batched solves on one thread: for problems of a few variables per item,
    torch's intra-op thread pool costs more than it saves (10x on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def not_converged_note(reason: str) -> str:
    return f"did not converge: {reason}"
