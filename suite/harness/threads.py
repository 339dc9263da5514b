"""Thread-pool limits for a block of work, restored afterwards.

Experiments run small solves whose cost is dominated by thread-pool overhead (a few variables
per batch item, or numba kernels beside torch's own threads on a shared 2-core machine); they
set their pools here rather than each paper keeping its own copy.

The TV prox's CPU kernels (suite/solvers/tv.py) start no pool of their own: they split large
batches over ``torch.get_num_threads()`` Python threads, so ``torch_threads`` limits them too.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def limit_threads(*, torch_threads: int | None = None, numba_threads: int | None = None) -> Iterator[None]:
    """Run the block with ``torch_threads`` intra-op torch threads and ``numba_threads`` numba
    threads (None or 0 leaves that pool as it is; numba absent is fine).

    numba's pool is limited only when something has already started it: asking numba for its
    thread count starts its threading layer, by default a second OpenMP runtime whose workers
    spin against torch's (issue 13), and no kernel of this project needs it any more.
    """
    with contextlib.ExitStack() as stack:
        if torch_threads:
            previous_torch = torch.get_num_threads()
            torch.set_num_threads(int(torch_threads))
            stack.callback(torch.set_num_threads, previous_torch)
        if numba_threads:
            try:
                import numba
            except ImportError:
                numba = None
            if numba is not None and _numba_pool_started():
                previous_numba = numba.get_num_threads()
                numba.set_num_threads(min(int(numba_threads), numba.config.NUMBA_NUM_THREADS))
                stack.callback(numba.set_num_threads, previous_numba)
        yield


def _numba_pool_started() -> bool:
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - numba without its parallel module
        return False
    return bool(getattr(parallel, "_is_initialized", False))
