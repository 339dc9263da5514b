"""The paper's own 1D TV solver: batched projected Newton on the dual (Yeh et al., Sec. 3.2).

A port of proxTV's ``PN_TV1`` (Barbero and Sra) as the official CUDA code runs it
(``tv_opt_layers/ops/batched_tvl1_op.py::pn_tv1``), written in torch so that the same code runs
on CPU and CUDA, every signal of the batch at once:

* dual (Eq. 6): min_w phi(w) = 1/2 ||D^T w||^2 - w^T D y  s.t. |w_i| <= lam, with the primal
  x = y - D^T w and the gradient g = D D^T w - D y = -D x;
* start: the unconstrained minimiser, D D^T w = D y (a tridiagonal solve), clipped to the box;
* each Newton step: the inactive set S (indices not held at a bound by a gradient pointing out
  of the box), the reduced tridiagonal system H_SS d_S = g_S of Eq. 7 solved by a batched
  Thomas algorithm (sequential in N, parallel over the batch, as the official kernels are),
  then a projected step w <- clip(w - alpha d) with Armijo backtracking (sigma = 0.05) by
  quadratic interpolation;
* stop: the duality gap sum_i (lam |g_i| + w_i g_i) below ``tol`` (1e-6) or no longer
  changing, or ``max_iters`` (100) steps.

The result is the PN iterate x = y - D^T w, a minimiser up to the gap tolerance (Condat's
algorithm in ``tv_prox_1d`` is exact up to rounding). The backward pass is the closed form of
Eq. 8-9 on the structure the dual identifies (a jump wherever |w_i| = lam, of the sign of
w_i): the same segment-mean Jacobian as ``tv_prox_1d``'s.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from . import _check_dim, _check_lam, _check_x, _closed_form, _compute_dtype, _segment_backward

__all__ = ["tv_prox_1d_newton"]

SIGMA = 0.05  # Armijo constant of proxTV / the official code
_MAX_BACKTRACKS = 30


def _thomas(sub: Tensor, diag: Tensor, sup: Tensor, rhs: Tensor) -> Tensor:
    """Solve the tridiagonal systems (B, M): sub[:, i] couples i to i-1, sup[:, i] i to i+1.

    The sweeps run along M (sequential, as the official kernels' one thread per row), each step
    over the whole batch; the work is laid out (M, B) so that each step reads contiguous memory.
    """
    sub, diag, sup, rhs = (t.t().contiguous() for t in (sub, diag, sup, rhs))
    m = diag.shape[0]
    c = torch.empty_like(diag)
    d = torch.empty_like(diag)
    c[0] = sup[0] / diag[0]
    d[0] = rhs[0] / diag[0]
    for i in range(1, m):
        denominator = diag[i] - sub[i] * c[i - 1]
        c[i] = sup[i] / denominator
        d[i] = (rhs[i] - sub[i] * d[i - 1]) / denominator
    out = torch.empty_like(diag)
    out[m - 1] = d[m - 1]
    for i in range(m - 2, -1, -1):
        out[i] = d[i] - c[i] * out[i + 1]
    return out.t()


def _dual(y: Tensor, dy: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Primal x = y - D^T w, gradient g = -D x and dual objective phi(w), per row."""
    zero = w.new_zeros(w.shape[0], 1)
    dtw = torch.cat([zero, w], 1) - torch.cat([w, zero], 1)  # (D^T w)_j = w_{j-1} - w_j
    x = y - dtw
    g = x[:, :-1] - x[:, 1:]
    phi = 0.5 * (dtw * dtw).sum(1) - (w * dy).sum(1)
    return x, g, phi


def _projected_newton_rows(y: Tensor, lam: Tensor, *, tol: float, max_iters: int) -> tuple[Tensor, Tensor, int]:
    """PN on the rows of ``y`` (B, N) with lam (B,): returns (x, w, iterations)."""
    n_rows, n = y.shape
    if n == 1:
        return y.clone(), y.new_zeros(n_rows, 0), 0
    eps = 1e-5 if y.dtype == torch.float32 else 1e-10  # the official code's EPS per dtype
    lam_c = lam.unsqueeze(1)
    dy = y[:, 1:] - y[:, :-1]
    m = n - 1
    ones = torch.ones_like(dy)
    off = -ones
    w = _thomas(off, 2 * ones, off, dy)  # D D^T = tridiag(-1, 2, -1); the end couplings are unused
    w = torch.maximum(torch.minimum(w, lam_c), -lam_c)
    x, g, phi = _dual(y, dy, w)
    todo = torch.ones(n_rows, dtype=torch.bool, device=y.device)
    previous_gap = torch.full((n_rows,), float("inf"), dtype=y.dtype, device=y.device)
    # A row stops when its gap is below tol, or below what rounding lets the gap resolve (its
    # terms lam |g_i| carry errors of a few eps * (max|y| + lam) each, so in float32 the floor can
    # lie above 1e-6), or when it no longer changes (the official code's stopping rule).
    unit = torch.finfo(y.dtype).eps
    floor = 8 * n * unit * lam * (y.abs().amax(1) + lam)
    stop_at = torch.clamp(floor, min=tol)
    iterations = 0
    for iterations in range(1, max_iters + 1):
        gap = (lam_c * g.abs() + w * g).sum(1)
        todo = todo & (gap > stop_at) & (gap != previous_gap)
        if not bool(todo.any()):
            iterations -= 1
            break
        previous_gap = gap
        inactive = ~(((w <= -lam_c + eps) & (g > eps)) | ((w >= lam_c - eps) & (g < -eps)))
        # Eq. 7 on the inactive set, embedded in a full-length system: an active index gets the
        # row of the identity (d_i = 0); two inactive neighbours are coupled by -1.
        coupled = torch.zeros_like(dy, dtype=torch.bool)
        coupled[:, 1:] = inactive[:, 1:] & inactive[:, :-1]
        sub = torch.where(coupled, -1.0, 0.0).to(y.dtype)
        sup = torch.zeros_like(sub)
        sup[:, :-1] = sub[:, 1:]
        diag = torch.where(inactive, 2.0, 1.0).to(y.dtype)
        direction = _thomas(sub, diag, sup, torch.where(inactive, g, torch.zeros_like(g)))
        alpha = torch.ones(n_rows, dtype=y.dtype, device=y.device)
        accepted = ~todo
        w_next, x_next, g_next, phi_next = w, x, g, phi
        for _ in range(_MAX_BACKTRACKS):
            trial = torch.maximum(torch.minimum(w - alpha.unsqueeze(1) * direction, lam_c), -lam_c)
            x_t, g_t, phi_t = _dual(y, dy, trial)
            decrease = (g * (w - trial)).sum(1)
            ok = ~accepted & (phi_t <= phi - SIGMA * decrease)
            take = ok.unsqueeze(1)
            w_next = torch.where(take, trial, w_next)
            x_next = torch.where(take, x_t, x_next)
            g_next = torch.where(take, g_t, g_next)
            phi_next = torch.where(ok, phi_t, phi_next)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            # Quadratic interpolation of phi along the step, kept in [0.1, 0.5] alpha.
            slope = decrease / alpha
            curvature = 2 * (phi_t - phi + alpha * slope)
            interpolated = torch.where(curvature > 0, slope * alpha * alpha / curvature, 0.5 * alpha)
            alpha = torch.where(accepted, alpha, interpolated.clamp(0.1 * alpha, 0.5 * alpha))
        todo = todo & accepted  # a row that found no descent is at its best
        w, x, g, phi = w_next, x_next, g_next, phi_next
    return x, w, iterations


# Iterations of the last call, for tests and benchmarks.
NEWTON_STATS: dict[str, int] = {"iterations": 0}


class _NewtonRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: Tensor, lam: Tensor, tol: float, max_iters: int) -> Tensor:
        x, w, iterations = _projected_newton_rows(y, lam, tol=tol, max_iters=max_iters)
        NEWTON_STATS["iterations"] = iterations
        if iterations >= max_iters:
            warnings.warn(
                f"tv_prox_1d_newton: stopped after max_iters={max_iters} with duality gap above tol={tol}; "
                "raise max_iters or use tv_prox_1d (exact)", RuntimeWarning, stacklevel=3,
            )
        # The structure the dual identifies: a jump where |w_i| = lam, of the sign of w_i.
        eps = 1e-5 if y.dtype == torch.float32 else 1e-10
        lam_c = lam.unsqueeze(1)
        jump = torch.where(w >= lam_c - eps, 1.0, torch.where(w <= -lam_c + eps, -1.0, 0.0)).to(y.dtype)
        structure = torch.where((lam == 0).unsqueeze(1), y, _closed_form(y, lam, jump))
        ctx.save_for_backward(structure, lam)
        return torch.where((lam == 0).unsqueeze(1), y, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        structure, lam = ctx.saved_tensors
        grad_x, grad_lam = _segment_backward(structure, grad.contiguous(), lam, ctx.needs_input_grad[1])
        return (grad_x if ctx.needs_input_grad[0] else None), grad_lam, None, None


def tv_prox_1d_newton(
    x: Tensor, lam: float | Tensor, *, dim: int = -1, tol: float = 1e-6, max_iters: int = 100
) -> Tensor:
    r"""1D TV proximity operator (Eq. 1) by the paper's batched projected Newton (Sec. 3.2).

    Same problem, arguments and broadcasting as :func:`tv_prox_1d`; solved on the dual (Eq. 6)
    to a duality gap of ``tol`` per signal (so not exact, unlike :func:`tv_prox_1d`), on CPU or
    CUDA by the same torch code. Differentiable in ``x`` and ``lam`` (Eq. 8-9 on the identified
    structure).

    Args:
        x: signals, float32 or float64, any shape.
        lam: weight(s) >= 0, as in :func:`tv_prox_1d`.
        dim: the signal dimension.
        tol: duality-gap tolerance per signal (the official code: 1e-6).
        max_iters: Newton steps at most (the official code: 100); a warning names the gap when
            it is reached.

    Returns:
        The PN solution, same shape, dtype and device as ``x``.

    Shape:
        as :func:`tv_prox_1d`.

    Raises:
        ValueError: as :func:`tv_prox_1d`; ``tol`` not positive or ``max_iters`` < 1.
    """
    x, x_max = _check_x(x, 1, "(the signal dim)")
    dim = _check_dim(dim, x.dim())
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters must be an int >= 1, got {max_iters!r}")
    dtype = _compute_dtype(x)
    batch_shape = x.shape[:dim] + x.shape[dim + 1 :]
    lam_b = _check_lam(lam, batch_shape, x, dtype, x_max=x_max, n=x.shape[dim])
    moved = x.to(dtype).movedim(dim, -1)
    if moved.numel() == 0:
        return x.clone()
    n = moved.shape[-1]
    rows = moved.reshape(-1, n).contiguous()
    y = _NewtonRows.apply(rows, lam_b.reshape(-1).contiguous(), float(tol), int(max_iters))
    return y.reshape(moved.shape).movedim(-1, dim).to(x.dtype)
