"""The peers of Table 1, as the paper ran them: CVXPYLayers and ProxTV called per row.

ProxTV has no backward; as in the paper, its backward is written in PyTorch: per row, the
exact Jacobian of the 1D TV prox (block-diagonal averaging over the segments of the solution)
is built densely and applied to the incoming gradient. Both peers are optional extras
(``pip install energybench[peers]``); ``available()`` says whether each one imports.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import torch

# The paper's two per-row methods, and proxTV's default (hybrid taut string) per row.
PROXTV_METHODS = {"ProxTV-TS": "classictautstring", "ProxTV-PN": "pn", "ProxTV-hybrid (default), per row": "hybridtautstring"}
# proxTV's batched entry point: ``tvgen`` on the whole array, one penalty along the last dim.
PROXTV_BATCHED = "ProxTV tvgen, whole batch"


def available(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _row_jacobian(y: np.ndarray) -> np.ndarray:
    """Dense (N, N) Jacobian dy/dx of the 1D TV prox at its solution ``y`` (Eq. 8)."""
    n = y.shape[0]
    starts = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    ends = np.r_[starts[1:], n]
    jac = np.zeros((n, n))
    for a, b in zip(starts, ends):
        jac[a:b, a:b] = 1.0 / (b - a)
    return jac


class _ProxTVRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam, method):
        import prox_tv

        rows = x.detach().cpu().double().numpy().reshape(-1, x.shape[-1])
        out = np.stack([prox_tv.tv1_1d(row, lam, method=method) for row in rows])
        ctx.save_for_backward(torch.from_numpy(out))
        return torch.from_numpy(out).to(x).reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        g = grad.detach().cpu().double().numpy().reshape(out.shape)
        gx = np.stack([_row_jacobian(y).T @ gi for y, gi in zip(out.numpy(), g)])
        return torch.from_numpy(gx).to(grad).reshape(grad.shape), None, None


def proxtv_rows(x: torch.Tensor, lam: float, *, method: str) -> torch.Tensor:
    """1D TV prox of every row of ``x`` (last dim) with ``prox_tv.tv1_1d``; differentiable in x."""
    return _ProxTVRows.apply(x, float(lam), method)


def proxtv_2d(x: torch.Tensor, lam: float) -> np.ndarray:
    """Anisotropic 2D TV prox of each (H, W) slice with ``prox_tv.tv1_2d`` (forward only)."""
    import prox_tv

    arr = x.detach().cpu().double().numpy()
    return np.stack([prox_tv.tv1_2d(img, lam) for img in arr.reshape(-1, *arr.shape[-2:])]).reshape(arr.shape)


def cvxpylayers_tv1d(length: int):
    """A CvxpyLayer for argmin_y 1/2||y - x||^2 + lam ||D y||_1 with x (batched) and lam as parameters."""
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    x = cp.Parameter(length)
    lam = cp.Parameter(nonneg=True)
    y = cp.Variable(length)
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(y - x) + lam * cp.norm1(cp.diff(y))))
    layer = CvxpyLayer(problem, parameters=[x, lam], variables=[y])

    def solve(signals: torch.Tensor, lam_value: float) -> torch.Tensor:
        flat = signals.reshape(-1, length).double()
        (out,) = layer(flat, torch.tensor(float(lam_value), dtype=torch.float64))
        return out.reshape(signals.shape)

    return solve


def _segment_means(out: np.ndarray, g: np.ndarray) -> np.ndarray:
    """J^T g for every row at once: the mean of g over each segment (run of equal values) of out."""
    rows, n = out.shape
    starts = np.ones((rows, n), dtype=np.int64)
    starts[:, 1:] = out[:, 1:] != out[:, :-1]
    segment = np.cumsum(starts.reshape(-1)) - 1
    sums = np.bincount(segment, weights=g.reshape(-1))
    lengths = np.bincount(segment)
    return (sums / lengths)[segment].reshape(rows, n)


class _ProxTVBatched(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        import prox_tv

        arr = np.ascontiguousarray(x.detach().cpu().double().numpy())
        out = prox_tv.tvgen(arr, [lam], [arr.ndim], [1])  # dims are 1-based in proxTV
        ctx.save_for_backward(torch.from_numpy(out.reshape(-1, arr.shape[-1])))
        return torch.from_numpy(out).to(x)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        g = grad.detach().cpu().double().numpy().reshape(out.shape)
        return torch.from_numpy(_segment_means(out.numpy(), g)).to(grad).reshape(grad.shape), None


def proxtv_batched(x: torch.Tensor, lam: float) -> torch.Tensor:
    """1D TV prox along the last dim of ``x`` in one ``prox_tv.tvgen`` call (proxTV's batched
    entry point), with a vectorised (numpy, whole-batch) segment-mean backward: the fastest way
    we found to use proxTV. Differentiable in x."""
    return _ProxTVBatched.apply(x, float(lam))
