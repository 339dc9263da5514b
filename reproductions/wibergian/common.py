"""Helpers shared by the wibergian experiments (no experiment logic)."""
from __future__ import annotations

from suite.harness.threads import limit_threads

LAMBDA = 0.1  # the paper's damping (Fig. 1, Sec. 3: "we simply set it to 0.1")
DAMPED, UNDAMPED = "damped", "undamped"
METHOD_LAMBDA = {DAMPED: LAMBDA, UNDAMPED: 0.0}


def single_thread():
    """Run small batched solves on one thread: for problems of a few variables per item,
    torch's intra-op thread pool costs more than it saves (10x on a busy 2-core machine)."""
    return limit_threads(torch_threads=1)


def not_converged_note(reason: str) -> str:
    return f"did not converge: {reason}"
