"""Total variation proximity operators and the TV layer (tvlayers, Yeh et al., CVPR 2022).

* :func:`tv_prox_1d` -- the exact 1D TV proximity operator of Eq. (1), batched, with a
  backward pass read off the piecewise-constant structure of the solution (Eq. 8-9).
* :func:`tv_prox_2d` -- the anisotropic 2D TV proximity operator of Eq. (2) by proximal
  Dykstra over rows and columns (Alg. 1). On CPU with numba the whole loop of each (H, W) plane
  runs in one compiled call (planes spread over the thread pool) and its backward is one fused
  reverse pass through the kept 1D outputs (`_TVProx2dPlanes`); elsewhere the loop runs over the
  batched 1D operator and autograd differentiates it. Both give the same numbers.
* :class:`TVProx1d`, :class:`TVProx2d`, :class:`TVLayer` -- thin modules (Eq. 3-4).

The 1D forward on CPU is Condat's direct algorithm ("A Direct Algorithm for 1D Total Variation
Denoising", IEEE SPL 2013). It is not an iterative solver: it scans the signal (restarting from
the start of the current segment after each jump, O(N) in practice, O(N^2) at worst) and
decides every segment end and jump direction by comparing the running dual variable with
+-lam, in a finite number of steps. Each segment's value is then computed once from that
structure by the closed form of the KKT conditions, v_k = mean_k(x) - lam (s_{k-1} - s_k) / n_k
(s_k = sign of the jump after segment k, s_0 = s_K = 0). The result is the minimiser up to
floating-point rounding (a few ulps of the values), not up to an iteration tolerance.

Two implementations produce the same numbers (the same structure, then the same closed form):

* a numba kernel of Condat's algorithm (``@njit(nogil=True, cache=True)``, serial; large
  batches run in row chunks on a small thread pool sized by ``torch.get_num_threads()``, so
  no second OpenMP runtime competes with torch's, see `_run_rows`), used automatically for
  CPU tensors when numba is importable;
* a pure-torch one, used on CUDA or any non-CPU device, and on CPU without numba: a
  primal-dual active-set (semismooth Newton) iteration on the dual box QP over all signals at
  once, whose result is verified optimal (KKT up to rounding) row by row; see
  `_active_set_torch`. Condat's algorithm run in lockstep over the batch (`_condat_torch`)
  remains only as its last-resort fallback for rows it has not verified after a bounded number
  of turns. numba is optional: without it the torch path runs on CPU too.

The backward pass is read off the segments of the solution: by a numba kernel (one pass per
signal) for CPU tensors when numba is available, by vectorised torch otherwise; the two give
the same numbers.

Range (issue 16): an input whose magnitude would overflow the dtype inside the prox (segment
sums of up to N samples, lam / n_k terms) is a ValueError naming ``x`` or ``lam``, decided from
max |x| (found in the same pass as the NaN/inf check) and max lam, with no extra device sync: a
finite input never comes back as inf or NaN.

Broadcasting of ``lam`` (both functions): ``lam`` is a Python number or a tensor whose shape
broadcasts *to* the batch shape under numpy rules (dims aligned on the right), i.e.
``torch.broadcast_shapes(lam.shape, batch_shape) == batch_shape``. A one-element tensor of any
shape counts as a scalar. The batch shape is ``x.shape`` without ``dim`` for
:func:`tv_prox_1d` and ``x.shape[:-2]`` for :func:`tv_prox_2d`. So for ``x`` of shape
``(B, C, H, W)``, one lam per channel is ``(C,)`` for the 2D operator but ``(C, 1)`` (or
``(1, C, 1)``, ``(B, C, 1)``) for the 1D operator along rows or columns: a ``(C,)`` lam in the
1D case would align with the last batch dim, not with ``C``.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["tv_prox_1d", "tv_prox_2d", "TVProx1d", "TVProx2d", "TVLayer"]

# Computed natively; half precisions are upcast to float32 (the segment decisions of Condat's
# algorithm compare running sums, which float16 cannot resolve for useful signal lengths).
_NATIVE_DTYPES = (torch.float32, torch.float64)
_UPCAST_DTYPES = (torch.float16, torch.bfloat16)

# ---------------------------------------------------------------------------------------------
# Backend selection. "auto": numba for CPU tensors when importable, torch otherwise.
# Tests and benchmarks force one path with `_force_backend` to check both give the same result.
# ---------------------------------------------------------------------------------------------
_BACKEND = "auto"
_BACKENDS = ("auto", "torch", "numba")


@contextlib.contextmanager
def _force_backend(name: str) -> Iterator[None]:
    """Internal switch: run the 1D forward with ``"torch"``, ``"numba"`` or ``"auto"``."""
    global _BACKEND
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    previous, _BACKEND = _BACKEND, name
    try:
        yield
    finally:
        _BACKEND = previous


# numba is imported on first use, not at module import, so that importing this module (done by
# the harness to hash sources and by every experiment) stays cheap.
#
# Threads. The kernels are compiled serial (``nogil=True``, no ``parallel=True``) and the rows of
# a large batch are split into chunks that a small Python thread pool runs at the same time
# (see `_run_rows`). numba's own parallel launch would start a second thread pool beside
# torch's: with its default OpenMP layer that is a second libgomp whose workers spin after each
# kernel while torch's workers wait for a core (on 2 cores a plain ``x.clone()`` after a TV call
# went from 0.02 ms to 7.8 ms, issue 13), and its workqueue layer aborts when two Python threads
# launch kernels at once. Python threads blocked on a queue do not spin, the pool is sized by
# ``torch.get_num_threads()`` (so ``torch.set_num_threads(1)`` also makes the TV prox serial),
# and a kernel call releases the GIL, so the chunks really run in parallel.
_NUMBA_STATE: dict[str, object] = {}


def _condat_row(x, lam_b, counts, out):  # pragma: no cover - compiled by numba
    # Condat (2013), the direct algorithm, on one signal x (N,) into out (N,); see
    # `_condat_torch` for the closing of segments by the closed form. `counts[m]` is m + 1 in the
    # signal's dtype so that every division is done in that dtype, as in the torch path.
    n = x.shape[0]
    one = counts[0]
    zero = one - one
    if lam_b == 0:
        for i in range(n):
            out[i] = x[i]
        return
    neg_lam = -lam_b
    two_lam = lam_b + lam_b
    k = 0
    k0 = 0
    k_minus = 0
    k_plus = 0
    u_min = lam_b
    u_max = neg_lam
    v_min = x[0] - lam_b
    v_max = x[0] + lam_b
    left_sign = zero
    while True:
        u_min_next = u_min
        u_max_next = u_max
        # kind: 0 no jump; 1/2 negative/positive jump at the right boundary; 3 last
        # segment; 4/5 negative/positive jump inside.
        kind = 0
        end = k
        # A segment closed by a jump ends at k_minus / k_plus <= k, before the last sample. In
        # exact arithmetic that always holds; in float32 a restart after a boundary jump keeps a
        # k_minus / k_plus beyond k, and a dual one ulp outside the tube then closed a segment
        # ending at N-1 and restarted at N, out of bounds (a crash or garbage). Such a "jump" is
        # a rounding artefact: it is not taken.
        if k == n - 1:
            if u_min < 0 and k_minus < k:
                kind = 1
                end = k_minus
            elif u_max > 0 and k_plus < k:
                kind = 2
                end = k_plus
            else:
                kind = 3
        else:
            x_next = x[k + 1]
            u_min_next = u_min + x_next - v_min
            if u_min_next < neg_lam and k_minus <= k:
                kind = 4
                end = k_minus
            else:
                u_max_next = u_max + x_next - v_max
                if u_max_next > lam_b and k_plus <= k:
                    kind = 5
                    end = k_plus
        if kind == 0:
            k += 1
            u_min = u_min_next
            u_max = u_max_next
            if u_min >= lam_b:
                k_minus = k
                v_min = v_min + (u_min - lam_b) / counts[k - k0]
                u_min = lam_b
            if u_max <= neg_lam:
                k_plus = k
                v_max = v_max + (u_max + lam_b) / counts[k - k0]
                u_max = neg_lam
            continue
        right_sign = zero
        if kind == 1 or kind == 4:
            right_sign = -one
        elif kind == 2 or kind == 5:
            right_sign = one
        total = x[k0]
        for i in range(k0 + 1, end + 1):
            total += x[i]
        length = counts[end - k0]
        value = total / length - lam_b * (left_sign - right_sign) / length
        for i in range(k0, end + 1):
            out[i] = value
        if kind == 3:
            break
        left_sign = right_sign
        k0 = end + 1
        k = k0
        x_k0 = x[k0]
        if kind == 1:
            k_minus = k0
            v_min = x_k0
            u_min = lam_b
            u_max = x_k0 + lam_b - v_max
        elif kind == 2:
            k_plus = k0
            v_max = x_k0
            u_max = neg_lam
            u_min = x_k0 - lam_b - v_min
        elif kind == 4:
            k_minus = k0
            k_plus = k0
            v_min = x_k0
            v_max = x_k0 + two_lam
            u_min = lam_b
            u_max = neg_lam
        else:
            k_minus = k0
            k_plus = k0
            v_max = x_k0
            v_min = x_k0 - two_lam
            u_min = lam_b
            u_max = neg_lam


def _segment_backward_row(y, g, identity, counts, grad_x):  # pragma: no cover - compiled by numba
    # `_segment_backward` on one signal: the segments are the maximal runs of equal y (N,);
    # grad_x = the mean of g over the segment of each sample (g itself when `identity`, lam = 0),
    # and the returned dL/dlam = sum over jumps of sign(jump) * (mean before - mean after). Sums
    # run left to right and each mean is a sum divided by the length in g's dtype, as in the
    # torch version. grad_x may be g itself (each segment's g is read before it is written).
    n = y.shape[0]
    zero = counts[0] - counts[0]
    total_lam = zero
    previous_mean = zero
    start = 0
    while start < n:
        total = g[start]
        end = start + 1
        while end < n and y[end] == y[end - 1]:
            total += g[end]
            end += 1
        mean = total / counts[end - start - 1]
        if identity:
            for i in range(start, end):
                grad_x[i] = g[i]
        else:
            for i in range(start, end):
                grad_x[i] = mean
        if start > 0:
            if y[start] > y[start - 1]:
                total_lam += previous_mean - mean
            else:
                total_lam -= previous_mean - mean
        previous_mean = mean
        start = end
    return total_lam


def _condat_rows_kernel(x, lam, counts, out):  # pragma: no cover - compiled by numba
    # The 1D prox of every row of x (B, N) into out (B, N), lam (B,).
    for b in range(x.shape[0]):
        _condat_row(x[b], lam[b], counts, out[b])


def _segment_backward_kernel(y, g, lam, counts, grad_x, grad_lam):  # pragma: no cover - compiled by numba
    # The 1D backward of every row of y (B, N); g may have any strides (e.g. stride 0).
    for b in range(y.shape[0]):
        grad_lam[b] = _segment_backward_row(y[b], g[b], lam[b] == 0, counts, grad_x[b])


# Columns of a plane are moved to and from contiguous buffers this many at a time: a row of a
# block is then 16 consecutive samples (one 64-byte line in float32) instead of one sample per
# line, which keeps the column pass of a large image (512 x 512) in cache.
_COLUMN_BLOCK = 16


def _dykstra_planes_kernel(x, lam, iters, counts, out, z_store, y_store):  # pragma: no cover - compiled by numba
    # Alg. 1 (proximal Dykstra, Eq. 10-11) on each plane x[p] (H, W) with lam[p], `iters` times,
    # into out[p]; the exact 1D prox of every row, then of every column, by `_condat_row`. The
    # same operations in the same order as `_prox_2d_unchecked` (y + p, p + y - z, z + q,
    # q + z - y), so the same numbers. When z_store / y_store have `iters` entries in dim 1
    # (P, K, H, W), the row-pass output z_k and the column-pass output y_k of every iteration
    # are kept: the backward reads the segments of the 1D Jacobians off them.
    n_planes, height, width = x.shape
    store = z_store.shape[1] == iters
    block = _COLUMN_BLOCK
    p = np.empty((height, width), dtype=x.dtype)
    q = np.empty((height, width), dtype=x.dtype)
    scratch = np.empty((height, width), dtype=x.dtype)
    row = np.empty(width, dtype=x.dtype)
    cols_in = np.empty((block, height), dtype=x.dtype)
    cols_out = np.empty((block, height), dtype=x.dtype)
    for plane in range(n_planes):
        lam_p = lam[plane]
        y = out[plane]
        y[:, :] = x[plane]
        p[:, :] = 0
        q[:, :] = 0
        for k in range(iters):
            # The row pass writes straight into the kept copy when there is one.
            z = z_store[plane, k] if store else scratch
            for i in range(height):
                for j in range(width):
                    row[j] = y[i, j] + p[i, j]
                _condat_row(row, lam_p, counts, z[i])
                for j in range(width):
                    p[i, j] = p[i, j] + y[i, j] - z[i, j]
            for j0 in range(0, width, block):
                size = min(block, width - j0)
                for i in range(height):
                    for c in range(size):
                        cols_in[c, i] = z[i, j0 + c] + q[i, j0 + c]
                for c in range(size):
                    _condat_row(cols_in[c], lam_p, counts, cols_out[c])
                for i in range(height):
                    for c in range(size):
                        value = cols_out[c, i]
                        y[i, j0 + c] = value
                        q[i, j0 + c] = q[i, j0 + c] + z[i, j0 + c] - value
            if store:
                y_store[plane, k] = y


def _dykstra_backward_kernel(g, lam, counts, z_store, y_store, grad_x, grad_lam):  # pragma: no cover - compiled by numba
    # Reverse-mode pass through `_dykstra_planes_kernel`, plane by plane. Iteration k maps
    # (y, p, q) to (y', p', q') by z = P_row(y + p), p' = p + y - z, y' = P_col(z + q),
    # q' = q + z - y'. With adjoints (Gy, Gp, Gq) of (y', p', q'), and J^T the 1D backward read
    # off the segments of that pass's output (`_segment_backward_row`):
    #   gb = J_col^T (Gy - Gq);  Gz = gb + Gq - Gp;  Gq <- gb + Gq;
    #   ga = J_row^T Gz;         Gy <- ga + Gp;      Gp <- ga + Gp,
    # from Gy = g, Gp = Gq = 0 at the output; grad_x = Gy at y_0 = x (P_0 = Q_0 = 0 are
    # constants), and dL/dlam sums the lam terms of all 2K passes.
    n_planes, height, width = g.shape
    iters = z_store.shape[1]
    block = _COLUMN_BLOCK
    zero = counts[0] - counts[0]
    gp = np.empty((height, width), dtype=grad_x.dtype)
    gq = np.empty((height, width), dtype=grad_x.dtype)
    gb = np.empty((height, width), dtype=grad_x.dtype)
    cols_y = np.empty((block, height), dtype=grad_x.dtype)
    cols_g = np.empty((block, height), dtype=grad_x.dtype)
    row_g = np.empty(width, dtype=grad_x.dtype)
    for plane in range(n_planes):
        identity = lam[plane] == 0
        gy = grad_x[plane]
        gy[:, :] = g[plane]
        gp[:, :] = 0
        gq[:, :] = 0
        total_lam = zero
        for k in range(iters - 1, -1, -1):
            y_k = y_store[plane, k]
            z_k = z_store[plane, k]
            for j0 in range(0, width, block):
                size = min(block, width - j0)
                for i in range(height):
                    for c in range(size):
                        cols_y[c, i] = y_k[i, j0 + c]
                        cols_g[c, i] = gy[i, j0 + c] - gq[i, j0 + c]
                for c in range(size):
                    total_lam += _segment_backward_row(cols_y[c], cols_g[c], identity, counts, cols_g[c])
                for i in range(height):
                    for c in range(size):
                        gb[i, j0 + c] = cols_g[c, i]
            for i in range(height):
                for j in range(width):
                    row_g[j] = gb[i, j] + gq[i, j] - gp[i, j]
                    gq[i, j] = gb[i, j] + gq[i, j]
                total_lam += _segment_backward_row(z_k[i], row_g, identity, counts, row_g)
                for j in range(width):
                    value = row_g[j] + gp[i, j]
                    gy[i, j] = value
                    gp[i, j] = value
        grad_lam[plane] = total_lam


def _all_finite_kernel(values):  # pragma: no cover - compiled by numba
    # (all finite, max |value|): x - x is 0 for a finite x and NaN for NaN or inf, so one running
    # sum, checked once, finds any; the largest magnitude bounds the prox's running sums.
    total = values[0] - values[0]
    largest = total
    for i in range(values.shape[0]):
        value = values[i]
        total += value - value
        magnitude = abs(value)
        if magnitude > largest:
            largest = magnitude
    return total == 0, largest


def _numba_compile() -> None:
    if "kernel" in _NUMBA_STATE:
        return
    try:
        import numba
    except ImportError:
        for name in ("kernel", "backward", "planes", "planes_backward", "finite"):
            _NUMBA_STATE[name] = None
        return
    jit = numba.njit(cache=True, nogil=True)
    # The per-signal functions are compiled first and bound to their module names: numba resolves
    # the kernels' calls to them through the module's globals when it compiles the kernels.
    module = globals()
    for name in ("_condat_row", "_segment_backward_row"):
        if not hasattr(module[name], "py_func"):
            module[name] = jit(module[name])
    _NUMBA_STATE["kernel"] = jit(_condat_rows_kernel)
    _NUMBA_STATE["backward"] = jit(_segment_backward_kernel)
    _NUMBA_STATE["planes"] = jit(_dykstra_planes_kernel)
    _NUMBA_STATE["planes_backward"] = jit(_dykstra_backward_kernel)
    _NUMBA_STATE["finite"] = jit(_all_finite_kernel)


def _numba_kernel():
    """The compiled forward kernel, or None when numba is not importable."""
    _numba_compile()
    return _NUMBA_STATE["kernel"]


def _numba_backward_kernel():
    """The compiled backward kernel, or None when numba is not importable."""
    _numba_compile()
    return _NUMBA_STATE["backward"]

# Below this many samples per thread one thread does the whole batch: handing a chunk to a pool
# thread costs tens of microseconds (more when the cores are busy), a 32-sample row a fraction
# of a microsecond.
_PARALLEL_MIN_SAMPLES = 1 << 15
_POOL_STATE: dict[str, object] = {"pool": None, "workers": 0}
_POOL_LOCK = threading.Lock()


def _reset_pool_after_fork() -> None:
    # A forked child has none of its parent's threads; it builds its own pool on first use.
    _POOL_STATE.update(pool=None, workers=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` threads (rebuilt when torch's thread count changes)."""
    with _POOL_LOCK:
        if _POOL_STATE["workers"] != workers:
            previous = _POOL_STATE["pool"]
            _POOL_STATE.update(pool=ThreadPoolExecutor(workers, thread_name_prefix="tv-prox"), workers=workers)
            if previous is not None:
                previous.shutdown(wait=False)
        return _POOL_STATE["pool"]


def _run_rows(kernel, samples: int, *args, shared: tuple[int, ...] = ()) -> None:
    """Call a serial kernel over the rows of its array arguments, split into chunks of rows run
    at once on ``torch.get_num_threads()`` threads (the caller runs one chunk itself).

    Every argument is sliced along its first dim (the rows) except those at the positions in
    ``shared`` (e.g. the ``counts`` table). Small problems (under `_PARALLEL_MIN_SAMPLES` per
    thread) run on the calling thread only.
    """
    n_rows = args[0].shape[0]
    threads = max(1, min(torch.get_num_threads(), samples // max(1, _PARALLEL_MIN_SAMPLES), n_rows))
    if threads == 1:
        kernel(*args)
        return
    bounds = [n_rows * i // threads for i in range(threads + 1)]

    def chunk(i: int) -> tuple:
        lo, hi = bounds[i], bounds[i + 1]
        return tuple(a if j in shared else a[lo:hi] for j, a in enumerate(args))

    pool = _pool(threads - 1)
    futures = [pool.submit(kernel, *chunk(i)) for i in range(1, threads)]
    try:
        kernel(*chunk(0))
    finally:
        for future in futures:
            future.result()


def _condat_numba(x: Tensor, lam: Tensor) -> Tensor:
    # Zero-copy numpy views of contiguous CPU tensors.
    x_np = x.detach().numpy()
    lam_np = lam.detach().numpy()
    counts = _counts(x.shape[1], x_np.dtype)
    out = np.empty_like(x_np)
    _run_rows(_numba_kernel(), x_np.size, x_np, lam_np, counts, out, shared=(2,))
    return torch.from_numpy(out)


def _condat_torch(x: Tensor, lam: Tensor) -> Tensor:
    """Condat's direct algorithm run in lockstep over the rows of ``x`` (B, N), lam (B,).

    Each loop turn performs one step of the sequential algorithm for every unfinished row,
    with branch choices made by masks. The algorithm's running bounds v_min / v_max only serve
    to decide where the segments end and which way each jump goes; segments are closed left
    to right and never revisited. The values are then computed once from that structure by the
    closed form of the KKT conditions, v_k = mean_k(x) - lam (s_{k-1} - s_k) / n_k (s_k the sign
    of the jump after segment k, s_0 = s_K = 0): a segment sum and two divisions, so the error
    is a few ulps of the segment's values, whatever lam (the running bounds start at x_0 -+ lam
    and would carry an error of order eps * lam). The numba kernel does the same operations.
    """
    n_rows, n = x.shape
    device, dtype = x.device, x.dtype
    last = n - 1
    counts = torch.arange(1, n + 1, device=device, dtype=dtype)
    neg_lam = -lam
    two_lam = lam + lam
    k = torch.zeros(n_rows, dtype=torch.long, device=device)
    k0 = torch.zeros_like(k)
    k_minus = torch.zeros_like(k)
    k_plus = torch.zeros_like(k)
    u_min = lam.clone()
    u_max = neg_lam.clone()
    v_min = x[:, 0] - lam
    v_max = x[:, 0] + lam
    # right_sign[b, i]: the sign of the jump after a segment of row b that ends at i (0 inside a
    # segment and for the last one). Column n is a sink for rows that close nothing in a turn.
    right_sign = torch.zeros(n_rows, n + 1, device=device, dtype=dtype)
    done = lam == 0
    sink = torch.full_like(k, n)
    turn = 0
    # Condat's algorithm is O(N^2) in the worst case (restarts); this bound is never reached.
    max_turns = n * n + 4 * n + 8
    while True:
        # Checking for completion syncs with the device, so do it every few turns: turns on
        # finished rows change nothing.
        if turn % 4 == 0 and bool(done.all()):
            break
        turn += 1
        if turn > max_turns:
            raise RuntimeError("tv_prox_1d: Condat's algorithm did not terminate; please report this input")
        active = ~done
        at_end = k == last
        x_next = x.gather(1, (k + 1).clamp_max(last).unsqueeze(1)).squeeze(1)
        u_min_next = u_min + x_next - v_min
        u_max_next = u_max + x_next - v_max
        # Right boundary (k == N-1): the dual must end at 0.
        neg_end = u_min < 0
        pos_end = ~neg_end & (u_max > 0)
        # Interior: a jump when the dual leaves the tube [-lam, lam].
        neg_in = u_min_next < neg_lam
        pos_in = ~neg_in & (u_max_next > lam)
        neg = active & torch.where(at_end, neg_end, neg_in)
        pos = active & torch.where(at_end, pos_end, pos_in)
        final = active & at_end & ~neg_end & ~pos_end
        step = active & ~at_end & ~neg_in & ~pos_in
        jump = neg | pos

        # Close a segment: [k0, k_minus] before a negative jump, [k0, k_plus] before a positive
        # one, [k0, N-1] at the end.
        end = torch.where(neg, k_minus, torch.where(pos, k_plus, k))
        write_at = torch.where(jump | final, end, sink).unsqueeze(1)
        right_sign.scatter_(1, write_at, (pos.to(dtype) - neg.to(dtype)).unsqueeze(1))
        done = done | final

        # Restart after a jump at the first sample of the next segment.
        k0 = torch.where(jump, end + 1, k0)
        x_k0 = x.gather(1, k0.clamp_max(last).unsqueeze(1)).squeeze(1)
        k = torch.where(jump, k0, torch.where(step, k + 1, k))
        neg_in_jump = neg & ~at_end
        pos_in_jump = pos & ~at_end
        neg_end_jump = neg & at_end
        pos_end_jump = pos & at_end
        # New v_min / v_max and duals after a jump (Condat's four restart rules).
        new_v_min = torch.where(neg, x_k0, torch.where(pos_in_jump, x_k0 - two_lam, v_min))
        new_v_max = torch.where(pos, x_k0, torch.where(neg_in_jump, x_k0 + two_lam, v_max))
        new_u_min = torch.where(
            neg | pos_in_jump, lam, torch.where(pos_end_jump, x_k0 - lam - v_min, u_min_next)
        )
        new_u_max = torch.where(
            pos | neg_in_jump, neg_lam, torch.where(neg_end_jump, x_k0 + lam - v_max, u_max_next)
        )
        k_minus = torch.where(neg | pos_in_jump, k0, k_minus)
        k_plus = torch.where(pos | neg_in_jump, k0, k_plus)
        # No jump: advance k, then pull v_min / v_max in when the dual hits the tube.
        length = counts[(k - k0).clamp_min(0)]
        hit_min = step & (new_u_min >= lam)
        hit_max = step & (new_u_max <= neg_lam)
        k_minus = torch.where(hit_min, k, k_minus)
        k_plus = torch.where(hit_max, k, k_plus)
        new_v_min = torch.where(hit_min, new_v_min + (new_u_min - lam) / length, new_v_min)
        new_v_max = torch.where(hit_max, new_v_max + (new_u_max + lam) / length, new_v_max)
        new_u_min = torch.where(hit_min, lam, new_u_min)
        new_u_max = torch.where(hit_max, neg_lam, new_u_max)
        # Rows that closed their last segment (or were already done) keep their state.
        keep = ~(jump | step)
        v_min = torch.where(keep, v_min, new_v_min)
        v_max = torch.where(keep, v_max, new_v_max)
        u_min = torch.where(keep, u_min, new_u_min)
        u_max = torch.where(keep, u_max, new_u_max)

    _TORCH_STATS["fallback_turns"] = turn
    # Every interior segment end carries its jump's sign; the last segment ends at N-1, sign 0.
    y = _closed_form(x, lam, right_sign[:, : n - 1])
    # lam == 0 rows never ran: the prox is the identity (Eq. 5).
    return torch.where((lam == 0).unsqueeze(1), x, y)


def _closed_form(x: Tensor, lam: Tensor, jump: Tensor) -> Tensor:
    """The prox values from its structure: ``jump[b, i]`` in {-1, 0, +1} is the sign of the jump
    between samples i and i+1 of row b (0: same segment). Each segment k gets
    v_k = mean_k(x) - lam (s_{k-1} - s_k) / n_k (s_0 = s_K = 0): a segment sum and two divisions,
    the same operations as the numba kernel, so a few ulps of the values whatever lam."""
    n_rows, n = x.shape
    device, dtype = x.device, x.dtype
    # Segment ids unique over the batch (from 1): a segment starts at each row start and after
    # each jump. The last segment of a row has right sign 0, so the left sign of every segment
    # is the right sign of the segment before it in the flat order.
    starts = torch.ones(n_rows, n, device=device, dtype=torch.int32)
    starts[:, 1:] = jump != 0
    segment = starts.view(-1).cumsum(0, dtype=torch.int32)
    size = n_rows * n + 1
    right_sign = torch.zeros(n_rows, n, device=device, dtype=dtype)
    right_sign[:, : n - 1] = jump
    totals = torch.zeros(size, device=device, dtype=dtype).index_add_(0, segment, x.reshape(-1))
    ones = torch.ones((), device=device, dtype=dtype).expand(n_rows * n)
    lengths = torch.zeros(size, device=device, dtype=dtype).index_add_(0, segment, ones)
    right = torch.zeros(size, device=device, dtype=dtype).index_add_(0, segment, right_sign.view(-1))
    left = torch.roll(right, 1)
    length = lengths.clamp_min(1).index_select(0, segment).view(n_rows, n)
    mean = (totals.index_select(0, segment) / length.view(-1)).view(n_rows, n)
    jump_term = (left - right).index_select(0, segment).view(n_rows, n)
    return mean - lam.unsqueeze(1) * jump_term / length


# The active-set iteration below stops after _ACTIVE_SET_MAX_ITERS + N turns; the rows it has
# not verified by then (none in the tests and benchmarks; a safeguard) are solved by the
# lockstep Condat. After _ACTIVE_SET_SAFE_AFTER turns it switches to its safeguarded update.
_ACTIVE_SET_MAX_ITERS = 100
_ACTIVE_SET_SAFE_AFTER = 10
# Counters of the last torch-path solve, for tests and benchmarks: active-set turns, the rows
# handed to the lockstep Condat and the lockstep's turns.
_TORCH_STATS: dict[str, int] = {"iterations": 0, "fallback_rows": 0, "fallback_turns": 0}


def _active_set_torch(x: Tensor, lam: Tensor) -> Tensor:
    """Exact 1D TV prox of the rows of ``x`` (B, N), lam (B,), by a primal-dual active-set
    (semismooth Newton) iteration on the dual box QP, for all rows at once.

    Dual: min_w 1/2 ||D^T w||^2 - w^T D x subject to |w_i| <= lam (w has N-1 entries, (D y)_i =
    y_{i+1} - y_i), with y = x - D^T w, i.e. w = cumsum(y - x). The active set is the jump
    structure: jump[b, i] = +-1 where w_i = +-lam (a jump between samples i and i+1 of that
    sign), 0 where w_i is free. Given the structure, the Newton step on the free variables (the
    reduced Hessian is tridiagonal) is solved exactly by the closed form of the KKT conditions,
    v_k = mean_k(x) - lam (s_{k-1} - s_k) / n_k (`_closed_form`): segment sums, O(log N) depth.
    The primal-dual active-set update (Hintermueller, Ito and Kunisch 2002, with c = 1) then
    reads, with mu = D y (the jumps, the box multipliers):
      jump_i = +1 if mu_i + w_i - lam > 0, -1 if mu_i + w_i + lam < 0, 0 otherwise,
    keeping a jump whose sign the new y confirms. A row whose structure no longer changes is
    VERIFIED optimal: the dual w = cumsum(y - x) of its closed-form y satisfies |w_i| <= lam
    off the jumps, w_i = lam s_i at the jumps and every jump has its sign (a degenerate jump of
    height 0 is allowed), each up to a bound on the rounding of these sums (a few eps * N * the
    row's scale): the KKT conditions of the prox, so the result is the minimiser up to rounding,
    as the Condat kernel's is. Rows are iterated until verified, the finished ones dropped; a
    row still unverified after `_ACTIVE_SET_MAX_ITERS` + N turns (a safeguard: the iteration is
    not guaranteed to terminate for two-sided bounds) is solved by the lockstep Condat.

    Each turn is a fixed number of vectorised operations on the rows left (about 25 kernels
    and one device sync), and the turns needed grow slowly with N (a few to a few tens), unlike
    Condat in lockstep, whose turns grow like the number of samples times the restarts.
    """
    n_rows, n = x.shape
    stats = _TORCH_STATS
    stats.update(iterations=0, fallback_rows=0, fallback_turns=0)
    if n == 1 or n_rows == 0:
        return x.clone()
    # The structure is decided in float64 whatever the input dtype (a float32 input is exact in
    # float64): the dual sums then carry float64 rounding only, and the verification below is
    # tight. The values are computed at the end in the input's dtype from that structure.
    x64 = x.to(torch.float64)
    lam64 = lam.to(torch.float64)
    eps = torch.finfo(torch.float64).eps
    # Rounding bounds. The closed-form values are within a few ulps of max(|x|) + lam (y lies
    # within the range of x, and lam / n_k enters once); the running sums w_i = sum_{j<=i} r_j
    # of r = y - x (|r| <= 2 max|x| + lam) then carry at most N such errors.
    scale = x64.abs().amax(1) + lam64
    tol_y = (16 * eps) * scale
    tol_w = (16 * eps * n) * scale
    dx = x64[:, 1:] - x64[:, :-1]
    # Start from w = 0: the update above with mu = D x gives the jumps larger than lam.
    lam_col = lam64.unsqueeze(1)
    jump = torch.where(dx > lam_col, 1.0, torch.where(dx < -lam_col, -1.0, 0.0))
    todo = (lam64 > 0).nonzero().squeeze(1)
    for _ in range(_ACTIVE_SET_MAX_ITERS + n):
        if todo.numel() == 0:
            break
        stats["iterations"] += 1
        every = todo.numel() == n_rows
        xs = x64 if every else x64.index_select(0, todo)
        lam_s = lam64 if every else lam64.index_select(0, todo)
        jump_s = jump if every else jump.index_select(0, todo)
        ys = _closed_form(xs, lam_s, jump_s)
        w = (ys - xs).cumsum(1)[:, :-1]
        dy = ys[:, 1:] - ys[:, :-1]
        lam_c = lam_s.unsqueeze(1)
        tw = (tol_w if every else tol_w.index_select(0, todo)).unsqueeze(1)
        ty = (tol_y if every else tol_y.index_select(0, todo)).unsqueeze(1)
        active = jump_s != 0
        # An active index stays when the jump has its sign (up to rounding) and its dual sits on
        # the bound (true by construction up to rounding; checked, as part of the verification).
        confirmed = active & (jump_s * dy >= -ty)
        on_bound = (w - jump_s * lam_c).abs() <= tw
        plus = dy + w - lam_c > tw
        minus = dy + w + lam_c < -tw
        new_jump = torch.where(confirmed, jump_s, torch.where(plus, 1.0, torch.where(minus, -1.0, 0.0)))
        if stats["iterations"] > _ACTIVE_SET_SAFE_AFTER:
            # Safeguard against cycling (the update above may cycle with two-sided bounds, e.g.
            # by flipping two neighbouring jumps back and forth): a wrong-sign jump is removed,
            # never flipped; a row with such jumps only removes them this turn (merging
            # segments); otherwise each segment splits only at its most violated dual.
            dropping = (active & ~confirmed).any(1, keepdim=True)
            violation = torch.where(active, 0.0, w.abs() - lam_c - tw)
            starts = torch.ones_like(xs, dtype=torch.int32)
            starts[:, 1:] = active
            segment = starts.view(-1).cumsum(0, dtype=torch.int32).view(xs.shape)[:, :-1].reshape(-1)
            worst = torch.zeros(xs.numel() + 1, dtype=w.dtype, device=w.device)
            worst = worst.scatter_reduce_(0, segment.long(), violation.reshape(-1), "amax")
            most = (violation == worst.index_select(0, segment).view(w.shape)) & (violation > 0)
            new_jump = torch.where(active, torch.where(confirmed, jump_s, 0.0), torch.where(most & ~dropping, new_jump, jump_s))
        # Verified: the structure is stable and the KKT conditions hold up to rounding (free
        # duals within the box, duals on the bound at the jumps, jumps of their sign).
        feasible = torch.where(active, on_bound & confirmed, w.abs() <= lam_c + tw)
        verified = ((new_jump == jump_s) & feasible).all(1)
        if every:
            jump = new_jump
        else:
            jump.index_copy_(0, todo, new_jump)
        todo = todo[~verified]
    y = _closed_form(x, lam, jump.to(x.dtype))
    # lam == 0 rows were never iterated: the prox is the identity (Eq. 5).
    y = torch.where((lam == 0).unsqueeze(1), x, y)
    if todo.numel():
        stats["fallback_rows"] = int(todo.numel())
        y.index_copy_(0, todo, _condat_torch(x.index_select(0, todo), lam.index_select(0, todo)))
    return y


def _solve_rows(x: Tensor, lam: Tensor, backend: str) -> Tensor:
    """Exact 1D TV prox of every row of contiguous ``x`` (B, N) with ``lam`` (B,)."""
    if backend == "numba":
        return _condat_numba(x, lam)
    return _active_set_torch(x, lam)


def _pick_backend(x: Tensor) -> str:
    backend = _BACKEND
    if backend == "auto":
        return "numba" if x.device.type == "cpu" and _numba_kernel() is not None else "torch"
    if backend == "numba" and (x.device.type != "cpu" or _numba_kernel() is None):
        raise RuntimeError("the numba backend needs numba and a CPU tensor")
    return backend


def _segment_backward(y: Tensor, grad: Tensor, lam: Tensor, need_lam: bool) -> tuple[Tensor, Tensor | None]:
    """Vector-Jacobian products of the 1D prox, from the segments of ``y`` (B, N).

    With segments k = maximal runs of equal y, n_k their lengths and s_k = sign(v_{k+1} - v_k)
    (s_0 = s_K = 0), the KKT conditions give v_k = mean_k(x) - lam (s_{k-1} - s_k) / n_k.
    Locally the segments and signs are constant, so
      dL/dx_i   = m_i, the mean of dL/dy over the segment of i   (= M L^T g of Eq. 8-9),
      dL/dlam   = sum_k G_k (s_k - s_{k-1}) / n_k,  G_k = sum of dL/dy over segment k.
    With d_i = sign(y_{i+1} - y_i) (zero inside a segment), the last sample of segment k
    carries d = s_k and the first sample of segment k+1 follows it, so
    dL/dlam = sum_i d_i (m_i - m_{i+1}): one pass over the samples, no per-segment bookkeeping.
    """
    n_rows, n = y.shape
    grad = grad.reshape(n_rows, n)
    if n == 1:
        return grad, (torch.zeros_like(lam) if need_lam else None)
    direction = torch.sign(y[:, 1:] - y[:, :-1])
    # Segment ids unique over the whole batch: a new segment starts at every jump and at the
    # first sample of every row, so one flat cumsum numbers them all (ids start at 1).
    # int32 ids: enough for any tensor torch can index here, and the CPU cumsum is far faster.
    starts = torch.ones(n_rows, n, dtype=torch.int32, device=y.device)
    starts[:, 1:] = direction != 0
    segment = starts.view(-1).cumsum(0, dtype=torch.int32)
    size = n_rows * n + 1
    sums = torch.zeros(size, dtype=grad.dtype, device=y.device).index_add_(0, segment, grad.reshape(-1))
    ones = torch.ones((), dtype=grad.dtype, device=y.device).expand(n_rows * n)
    lengths = torch.zeros(size, dtype=grad.dtype, device=y.device).index_add_(0, segment, ones)
    mean = (sums / lengths.clamp_min(1)).index_select(0, segment).view(n_rows, n)
    grad_lam = None
    if need_lam:
        grad_lam = torch.linalg.vecdot(direction, mean[:, :-1] - mean[:, 1:])
    lam_zero = lam == 0
    if bool(lam_zero.any()):
        # lam == 0 is the identity map, whose Jacobian is the identity even where x has ties.
        mean = torch.where(lam_zero.unsqueeze(1), grad, mean)
    return mean, grad_lam


def _segment_backward_numba(y: Tensor, grad: Tensor, lam: Tensor, need_lam: bool) -> tuple[Tensor, Tensor | None]:
    """`_segment_backward` by the numba kernel (CPU): one pass per row, same numbers."""
    n_rows, n = y.shape
    y_np = y.detach().numpy()
    grad = grad.detach().reshape(n_rows, n)
    # A strided gradient (the stride-0 one of ``y.sum()``, or a transposed one) is read in place
    # by the kernel (numba handles any strides): a torch copy to make it contiguous would be a
    # parallel torch op, which costs a scheduler time slice on busy cores (issue 13).
    g_np = grad.numpy() if grad.stride(-1) in (0, 1) or grad.is_contiguous() else grad.contiguous().numpy()
    lam_np = lam.detach().contiguous().numpy()
    counts = np.arange(1, n + 1, dtype=g_np.dtype)
    grad_x = np.empty_like(g_np)
    grad_lam = np.empty(n_rows, dtype=g_np.dtype)
    _run_rows(_numba_backward_kernel(), g_np.size, y_np, g_np, lam_np, counts, grad_x, grad_lam, shared=(3,))
    return torch.from_numpy(grad_x), (torch.from_numpy(grad_lam) if need_lam else None)


class _TVProx1dRows(torch.autograd.Function):
    """Exact 1D TV prox of the rows of a (B, N) tensor; lam (B,). Backward from the segments."""

    @staticmethod
    def forward(ctx, x: Tensor, lam: Tensor) -> Tensor:
        backend = _pick_backend(x)
        y = _solve_rows(x, lam, backend)
        # The backward needs the segments of y (read off y itself) and lam: the output is saved
        # anyway by autograd's bookkeeping, so this costs no copy.
        ctx.backend = backend
        ctx.save_for_backward(y, lam)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor | None, Tensor | None]:
        y, lam = ctx.saved_tensors
        need_x, need_lam = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        # The backward follows the forward's backend: numba for CPU tensors (when available),
        # the vectorised torch version otherwise; both give the same numbers.
        if ctx.backend == "numba" and grad_y.device.type == "cpu" and y.shape[1] > 1:
            grad_x, grad_lam = _segment_backward_numba(y, grad_y, lam, need_lam)
        else:
            grad_x, grad_lam = _segment_backward(y, grad_y, lam, need_lam)
        return (grad_x if need_x else None), grad_lam


# ---------------------------------------------------------------------------------------------
# Input checks (ValueError naming the argument, the expectation and what was received).
# ---------------------------------------------------------------------------------------------
def _check_x(x: object, min_dims: int, what: str) -> tuple[Tensor, float]:
    """x checked (a finite float tensor of at least ``min_dims`` dims) and its largest magnitude."""
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_dims:
        raise ValueError(f"x must have at least {min_dims} dimension(s) {what}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor (float32 or float64), got dtype {x.dtype}")
    if x.dtype not in _NATIVE_DTYPES + _UPCAST_DTYPES:
        raise ValueError(f"x must be float16, bfloat16, float32 or float64, got dtype {x.dtype}")
    if not x.numel():
        return x, 0.0
    finite, largest = _finite_max_abs(x)
    if not finite:
        raise ValueError("x must be finite, got NaN or inf entries")
    return x, largest


def _finite_max_abs(x: Tensor) -> tuple[bool, float]:
    """(all entries finite, max |x|) in one pass and one host sync."""
    # On CPU with numba: one single-threaded pass (a torch reduction over a large tensor starts
    # torch's thread pool, which costs milliseconds when the cores are busy).
    if x.device.type == "cpu" and x.dtype in _NATIVE_DTYPES and _numba_kernel() is not None:
        finite, largest = _NUMBA_STATE["finite"](x.detach().reshape(-1).numpy())
        return bool(finite), float(largest)
    # amax propagates NaN, and an inf entry makes it inf: one reduction tells both.
    largest = float(x.detach().abs().amax())
    return math.isfinite(largest), largest


def _check_range(x_max: float, lam_max: float, n: int, dtype: torch.dtype) -> None:
    """ValueError when the prox's running sums could overflow ``dtype``.

    Condat's algorithm and the closed form sum up to N samples of a segment and add lam / n_k
    terms; Dykstra's dual variables stay within a few lam of the iterates. So every intermediate
    is below 4 N (max|x| + lam) (a margin of 2 over the sums), which must stay finite: otherwise
    a finite input would come back as inf or NaN. One comparison of two numbers already known on
    the host: no extra device sync.
    """
    largest = torch.finfo(dtype).max
    limit = largest / (4.0 * max(n, 1))
    if lam_max > limit or x_max > limit or x_max + lam_max > limit:
        name, value = ("x", f"max |x| = {x_max:.3g}") if x_max >= lam_max else ("lam", f"lam = {lam_max:.3g}")
        raise ValueError(
            f"{name} is too large for {str(dtype).removeprefix('torch.')}: {value}, but the prox sums up to "
            f"N = {n} samples, so max |x| + lam must be at most {limit:.3g} (the dtype's largest value "
            f"{largest:.3g} / 4N); rescale the input (the prox is equivariant: prox(c x, c lam) = c prox(x, lam))"
        )


def _check_dim(dim: object, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"dim must be an int, got {type(dim).__name__}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim must be in [{-ndim}, {ndim - 1}] for x with {ndim} dims, got {dim}")
    return dim % ndim


def _check_lam(lam: object, batch_shape: torch.Size, x: Tensor, dtype: torch.dtype, *,
               x_max: float = 0.0, n: int = 1) -> Tensor:
    """lam as a tensor of ``batch_shape`` (expanded, autograd-tracked) in ``dtype``; with
    ``x_max`` (max |x|) and ``n`` (signal length), also checks that nothing overflows ``dtype``."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float, Tensor)):
        raise ValueError(f"lam must be a float or a tensor, got {type(lam).__name__}")
    if not isinstance(lam, Tensor):
        if not math.isfinite(lam):
            raise ValueError(f"lam must be finite, got {lam}")
        if lam < 0:
            raise ValueError(f"lam must be non-negative, got {lam}")
        _check_range(x_max, float(lam), n, dtype)
        return torch.full((), float(lam), dtype=dtype, device=x.device).expand(batch_shape)
    if lam.is_complex() or lam.dtype == torch.bool:
        raise ValueError(f"lam must be a real tensor, got dtype {lam.dtype}")
    if lam.numel() == 1:
        lam = lam.reshape(())
    try:
        broadcast = torch.broadcast_shapes(lam.shape, batch_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != batch_shape:
        raise ValueError(
            f"lam must broadcast to the batch shape {tuple(batch_shape)} (dims aligned on the right), "
            f"got shape {tuple(lam.shape)}"
        )
    if lam.numel():
        # One reduction and one host sync for all three checks (NaN propagates through both).
        low, high = torch.aminmax(lam.detach().reshape(-1)) if lam.numel() > 1 else (lam.detach(),) * 2
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("lam must be finite, got NaN or inf entries")
        if low < 0:
            raise ValueError(f"lam must be non-negative, got minimum {low}")
        _check_range(x_max, high, n, dtype)
    return lam.to(device=x.device, dtype=dtype).expand(batch_shape)


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float32 if x.dtype in _UPCAST_DTYPES else x.dtype


def _prox_1d_unchecked(x: Tensor, lam: Tensor, dim: int) -> Tensor:
    """tv_prox_1d on checked inputs: ``dim`` non-negative, lam already of the batch shape."""
    moved = x.movedim(dim, -1)
    n = moved.shape[-1]
    if moved.numel() == 0:
        return x.clone()
    rows = moved.reshape(-1, n).contiguous()
    lam_rows = lam.reshape(-1).contiguous()
    y = _TVProx1dRows.apply(rows, lam_rows)
    return y.reshape(moved.shape).movedim(-1, dim)


def tv_prox_1d(x: Tensor, lam: float | Tensor, *, dim: int = -1) -> Tensor:
    r"""Exact 1D TV proximity operator (Eq. 1), batched over all dims but ``dim``.

    .. math::
        \operatorname{Prox}^{1D}_{TV}(x, \lambda) = \arg\min_y \tfrac12 \|y - x\|_2^2
        + \lambda \sum_n |y_{n+1} - y_n|

    Solved by Condat's direct algorithm on CPU (numba) and by a verified active-set iteration
    on the dual in torch (CUDA, or CPU without numba); both exact up to rounding, see the
    module docstring.
    Differentiable in ``x`` and ``lam``: the backward pass uses the segments of the solution
    (the closed form of Eq. 8-9, in O(N)). ``lam = 0`` returns ``x`` and has the identity
    Jacobian in ``x``.

    Args:
        x: signals, any shape with at least one dim; float32 or float64 (float16/bfloat16 are
            computed in float32 and returned in their dtype). CPU or CUDA.
        lam: regularisation weight(s) >= 0: a Python number, or a tensor broadcasting to the
            batch shape ``x.shape`` without ``dim`` (numpy rules, aligned on the right; a
            one-element tensor is a scalar). E.g. per channel of ``(B, C, H, W)`` along
            ``dim=-1``: shape ``(C, 1)``.
        dim: the dimension along which each signal runs.

    Returns:
        The proximal point, same shape, dtype and device as ``x``.

    Shape:
        x: ``(*, N, *)`` with N at ``dim``; lam: broadcastable to ``x.shape`` without ``dim``;
        output: as x.

    Raises:
        ValueError: x not a floating tensor, 0-dim, or with NaN/inf; ``dim`` out of range;
            lam negative, NaN/inf, or not broadcastable to the batch shape; max |x| + lam so large
            that the prox's sums of N samples would overflow the dtype (see the module docstring).
    """
    x, x_max = _check_x(x, 1, "(the signal dim)")
    dim = _check_dim(dim, x.dim())
    dtype = _compute_dtype(x)
    batch_shape = x.shape[:dim] + x.shape[dim + 1 :]
    lam_b = _check_lam(lam, batch_shape, x, dtype, x_max=x_max, n=x.shape[dim])
    y = _prox_1d_unchecked(x.to(dtype), lam_b, dim)
    return y.to(x.dtype)


def _check_iters(iters: object) -> int:
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    return iters


def _prox_2d_unchecked(x: Tensor, lam: Tensor, iters: int) -> Tensor:
    """Alg. 1 on checked inputs; ``lam`` of shape ``x.shape[:-2]``.

    CPU with numba: the whole Dykstra loop of each (H, W) plane in one compiled call
    (`_TVProx2dPlanes`), planes spread over the thread pool, a fused backward. Otherwise (CUDA,
    no numba, ``_force_backend("torch")``): the loop below over the batched 1D operator, which
    autograd differentiates; both give the same numbers.
    """
    if x.numel() == 0:
        return x.clone()
    if _pick_backend(x) == "numba":
        height, width = x.shape[-2:]
        planes = x.reshape(-1, height, width).contiguous()
        lam_planes = lam.reshape(-1).contiguous()
        if torch.is_grad_enabled() and (planes.requires_grad or lam_planes.requires_grad):
            y = _TVProx2dPlanes.apply(planes, lam_planes, iters)
        else:
            y, _, _ = _dykstra_numba(planes, lam_planes, iters, store=False)
        return y.reshape(x.shape)
    rows, cols = x.dim() - 1, x.dim() - 2
    lam_rows = lam.unsqueeze(-1).expand(x.shape[:-1])
    lam_cols = lam.unsqueeze(-1).expand(x.shape[:-2] + x.shape[-1:])
    y = x
    p = torch.zeros_like(x)
    q = torch.zeros_like(x)
    for _ in range(iters):
        z = _prox_1d_unchecked(y + p, lam_rows, rows)
        p = p + y - z
        y_next = _prox_1d_unchecked(z + q, lam_cols, cols)
        q = q + z - y_next
        y = y_next
    return y


def _counts(n: int, dtype: np.dtype) -> np.ndarray:
    # counts[m] = m + 1 in the signals' dtype (segment lengths), shared by all rows.
    return np.arange(1, n + 1, dtype=dtype)


def _dykstra_numba(planes: Tensor, lam: Tensor, iters: int, *, store: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Alg. 1 on contiguous CPU planes (P, H, W), lam (P,), by `_dykstra_planes_kernel`; with
    ``store``, also the row-pass and column-pass outputs of every iteration (P, K, H, W)."""
    _numba_compile()
    x_np = planes.detach().numpy()
    n_planes, height, width = x_np.shape
    out = np.empty_like(x_np)
    kept = (n_planes, iters if store else 0, height if store else 0, width if store else 0)
    z_store = np.empty(kept, dtype=x_np.dtype)
    y_store = np.empty(kept, dtype=x_np.dtype)
    counts = _counts(max(height, width), x_np.dtype)
    _run_rows(_NUMBA_STATE["planes"], x_np.size * 2 * iters, x_np, lam.detach().numpy(), iters, counts, out,
              z_store, y_store, shared=(2, 3))
    return torch.from_numpy(out), torch.from_numpy(z_store), torch.from_numpy(y_store)


class _TVProx2dPlanes(torch.autograd.Function):
    """Alg. 1 on CPU planes (P, H, W) with lam (P,), fused (numba); backward by
    `_dykstra_backward_kernel` through the kept 1D outputs (the same vector-Jacobian products
    as autograd through the unfused loop)."""

    @staticmethod
    def forward(ctx, planes: Tensor, lam: Tensor, iters: int) -> Tensor:
        y, z_store, y_store = _dykstra_numba(planes, lam, iters, store=True)
        ctx.save_for_backward(lam)
        ctx.stores = (z_store, y_store)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        (lam,) = ctx.saved_tensors
        z_store, y_store = ctx.stores
        n_planes, height, width = grad_y.shape
        # Any strides (the stride-0 gradient of y.sum() included): numba reads them in place.
        g_np = grad_y.detach().numpy()
        grad_x = np.empty(grad_y.shape, dtype=g_np.dtype)
        grad_lam = np.empty(n_planes, dtype=g_np.dtype)
        counts = _counts(max(height, width), g_np.dtype)
        _run_rows(_NUMBA_STATE["planes_backward"], grad_x.size * 2 * z_store.shape[1], g_np, lam.detach().numpy(),
                  counts, z_store.numpy(), y_store.numpy(), grad_x, grad_lam, shared=(2,))
        need_x, need_lam = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        return (torch.from_numpy(grad_x) if need_x else None), (torch.from_numpy(grad_lam) if need_lam else None), None


def tv_prox_2d(x: Tensor, lam: float | Tensor, *, iters: int = 4) -> Tensor:
    r"""Anisotropic 2D TV proximity operator (Eq. 2) on the last two dims, by Alg. 1.

    .. math::
        \arg\min_Y \tfrac12 \|Y - X\|_F^2 + \lambda \Big(\sum_m \|D Y_{row(m)}\|_1
        + \sum_n \|D Y_{col(n)}\|_1\Big)

    Proximal Dykstra alternating the exact 1D prox over all rows and all columns (Eq. 10-11),
    ``iters`` times from Y = X, P = Q = 0. It converges to the 2D prox as ``iters`` grows;
    the paper (and the official code) use 3-4 iterations inside networks, so the result for
    small ``iters`` is an approximation by design. Gradients are those of the K iterations
    through the exact 1D operator (Eq. 8-9 for each pass): on CPU with numba by one fused
    reverse pass per plane, elsewhere by autograd through the loop.

    Args:
        x: images, ``(*, H, W)`` with at least two dims; float32 or float64 (half precisions
            computed in float32). CPU or CUDA.
        lam: weight(s) >= 0, a Python number or a tensor broadcasting to ``x.shape[:-2]``
            (numpy rules, aligned on the right): e.g. ``(C,)`` for one lam per channel of
            ``(B, C, H, W)``. The same lam is used for rows and columns.
        iters: number of Dykstra iterations K of Alg. 1 (>= 1).

    Returns:
        Y^{K+1} of Alg. 1, same shape, dtype and device as ``x``.

    Shape:
        x: ``(*, H, W)``; lam: broadcastable to ``(*)``; output: ``(*, H, W)``.

    Raises:
        ValueError: x not a floating tensor, with fewer than 2 dims or NaN/inf; lam negative,
            NaN/inf or not broadcastable to ``x.shape[:-2]``; iters not an int >= 1; max |x| + lam
            so large that sums of max(H, W) samples would overflow the dtype.
    """
    x, x_max = _check_x(x, 2, "(H, W)")
    iters = _check_iters(iters)
    dtype = _compute_dtype(x)
    lam_b = _check_lam(lam, x.shape[:-2], x, dtype, x_max=x_max, n=max(x.shape[-2:]))
    y = _prox_2d_unchecked(x.to(dtype), lam_b, iters)
    return y.to(x.dtype)


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------
def _store_lam(module: nn.Module, lam: float | Tensor) -> None:
    # A tensor lam moves with the module (.to / .cuda); a Parameter stays trainable.
    if isinstance(lam, nn.Parameter):
        module.lam = lam
    elif isinstance(lam, Tensor):
        module.register_buffer("lam", lam)
    else:
        if isinstance(lam, bool) or not isinstance(lam, (int, float)):
            raise ValueError(f"lam must be a float or a tensor, got {type(lam).__name__}")
        if not math.isfinite(lam) or lam < 0:
            raise ValueError(f"lam must be a finite non-negative number, got {lam}")
        module.lam = float(lam)


class TVProx1d(nn.Module):
    """Module form of :func:`tv_prox_1d` (Eq. 1) with a fixed ``lam`` and ``dim``.

    Args:
        lam: as in :func:`tv_prox_1d`; a tensor is registered as a buffer, an
            ``nn.Parameter`` as a parameter.
        dim: the signal dimension.

    Shape:
        as :func:`tv_prox_1d`.
    """

    def __init__(self, lam: float | Tensor, *, dim: int = -1) -> None:
        super().__init__()
        _store_lam(self, lam)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"dim must be an int, got {type(dim).__name__}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return tv_prox_1d(x, self.lam, dim=self.dim)

    def extra_repr(self) -> str:
        lam = self.lam if isinstance(self.lam, float) else f"tensor{tuple(self.lam.shape)}"
        return f"lam={lam}, dim={self.dim}"


class TVProx2d(nn.Module):
    """Module form of :func:`tv_prox_2d` (Eq. 2, Alg. 1) with a fixed ``lam`` and ``iters``.

    Args:
        lam: as in :func:`tv_prox_2d`; a tensor is registered as a buffer, an
            ``nn.Parameter`` as a parameter.
        iters: Dykstra iterations.

    Shape:
        as :func:`tv_prox_2d`.
    """

    def __init__(self, lam: float | Tensor, *, iters: int = 4) -> None:
        super().__init__()
        _store_lam(self, lam)
        self.iters = _check_iters(iters)

    def forward(self, x: Tensor) -> Tensor:
        return tv_prox_2d(x, self.lam, iters=self.iters)

    def extra_repr(self) -> str:
        lam = self.lam if isinstance(self.lam, float) else f"tensor{tuple(self.lam.shape)}"
        return f"lam={lam}, iters={self.iters}"


def _inverse_softplus(value: float) -> float:
    # log(exp(v) - 1) without overflow for large v or cancellation for small v.
    return value + math.log(-math.expm1(-value))


class TVLayer(nn.Module):
    r"""Differentiable TV layer (Eq. 3-4, Fig. 2): a per-channel TV prox with learned lambda.

    smooth: :math:`Y_c = \operatorname{Prox}_{TV}(X_c, \lambda_c)`;
    sharp:  :math:`Y_c = 2X_c - \operatorname{Prox}_{TV}(X_c, \lambda_c)` (Eq. 4),
    with :math:`\lambda = \operatorname{softplus}(\tilde\lambda)` (Eq. 3), where the prox is 2D
    (Eq. 2, Alg. 1), along rows (each row of W samples) or along columns.

    lambda = 0: softplus never reaches 0, so ``lam_init=0.0`` builds an exact identity layer
    (both modes, Eq. 5): it has no ``lam_raw`` parameter, ``lam`` is a fixed zero and
    ``forward`` returns its input unchanged. Any ``lam_init > 0`` gives a trainable
    ``lam_raw`` initialised to softplus^{-1}(lam_init).

    Args:
        channels: C, the number of channels (one lambda each unless ``shared``).
        mode: ``"smooth"`` or ``"sharp"``.
        direction: ``"2d"`` (anisotropic 2D prox), ``"row"`` (1D prox along W) or ``"col"``
            (1D prox along H).
        lam_init: initial lambda >= 0 (0 = exact identity, see above).
        shared: one lambda for all channels.
        iters: Dykstra iterations for ``direction="2d"``.

    Shape:
        input ``(B, C, H, W)``, output ``(B, C, H, W)``.

    Raises:
        ValueError: on invalid options at construction, or an input that is not a finite
            floating ``(B, C, H, W)`` tensor with ``C == channels``.
    """

    def __init__(
        self,
        channels: int,
        *,
        mode: str = "smooth",
        direction: str = "2d",
        lam_init: float = 1.0,
        shared: bool = False,
        iters: int = 4,
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if mode not in ("smooth", "sharp"):
            raise ValueError(f"mode must be 'smooth' or 'sharp', got {mode!r}")
        if direction not in ("2d", "row", "col"):
            raise ValueError(f"direction must be '2d', 'row' or 'col', got {direction!r}")
        if isinstance(lam_init, bool) or not isinstance(lam_init, (int, float)):
            raise ValueError(f"lam_init must be a number, got {type(lam_init).__name__}")
        if not math.isfinite(lam_init) or lam_init < 0:
            raise ValueError(f"lam_init must be a finite number >= 0, got {lam_init}")
        self.channels = channels
        self.mode = mode
        self.direction = direction
        self.shared = bool(shared)
        self.iters = _check_iters(iters)
        size = 1 if self.shared else channels
        if lam_init == 0:
            self.register_parameter("lam_raw", None)
        else:
            self.lam_raw = nn.Parameter(torch.full((size,), _inverse_softplus(float(lam_init))))

    @property
    def lam(self) -> Tensor:
        """lambda per channel, shape ``(C,)`` (or ``(1,)`` when shared)."""
        if self.lam_raw is None:
            return torch.zeros(1 if self.shared else self.channels)
        return F.softplus(self.lam_raw)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a (B, C, H, W) tensor, got {got}")
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels (dim 1), got shape {tuple(x.shape)}")
        if self.lam_raw is None:
            _check_x(x, 4, "(B, C, H, W)")  # the same input checks as the prox's
            return x
        lam = F.softplus(self.lam_raw)
        if self.direction == "2d":
            y = tv_prox_2d(x, lam, iters=self.iters)
        else:
            # One lam per channel of the (B, C, H) / (B, C, W) batch of 1D signals.
            y = tv_prox_1d(x, lam.unsqueeze(-1), dim=-1 if self.direction == "row" else -2)
        if self.mode == "sharp":
            y = 2 * x - y
        return y

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, mode={self.mode!r}, direction={self.direction!r}, "
            f"shared={self.shared}, iters={self.iters}, identity={self.lam_raw is None}"
        )


# The paper's own solver (projected Newton on the dual); imported last, it uses the helpers above.
from .newton import tv_prox_1d_newton  # noqa: E402

__all__.append("tv_prox_1d_newton")
