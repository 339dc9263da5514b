"""Differentiating through argmin (wibergian, Toso, Campbell & Russell, NeurIPS 2019).

Given a smooth energy ``E(y; w)`` batched over ``B`` independent problems, the forward pass
finds a local minimiser ``y*(w) = argmin_y E(y; w)`` (Eq. 1) and the backward pass predicts how
that minimiser moves with the weights ``w``:

* damped (trust-region) implicit gradient, Eq. (10)::

      dy*/dw = -(H + lam I)^-1 d(grad_y E)/dw        at y*,  H = d^2 E / dy^2 at y*

  with ``lam = 0.1`` in the paper. Since ``H`` is positive semi-definite at a minimum,
  ``||dy*/dw|| <= ||d(grad_y E)/dw|| / lam`` whatever the curvature;
* ``lam = 0``: the undamped implicit gradient of Samuel & Tappen (CVPR 2009), Eq. (9),
  exact for a strict minimum but unbounded when ``H`` is nearly singular;
* ``mode="unrolled"``: backpropagation through the iterations of the minimiser.

The default minimiser follows the public code (``RanSac/wiberg.py``): L-BFGS from the seed of
lowest energy among the given candidates, then one damped Newton step
``y <- y - (H + lam I)^-1 grad_y E`` so that ``y*`` satisfies the fixed-point equation (6) of
the step whose derivative is taken. Here L-BFGS is batched: every problem keeps its own
curvature pairs and its own Armijo backtracking step, so one slow problem never changes
another's iterates.

Implementation of the backward: with ``y*`` fixed (detached), the returned tensor is
``y* + (delta - delta.detach())`` where ``delta = -(H + lam I)^-1 grad_y E(y*; w)``, with ``H``
detached. Its value is ``y*`` and its derivative with respect to ``w`` is exactly Eq. (10); one
vector-Jacobian product through ``grad_y E`` serves the whole batch (no loop over problems).
``H`` is built densely from ``D`` Hessian-vector products of the summed energy (the Hessian of
a sum of independent problems is block diagonal), or never formed (conjugate gradients on
Hessian-vector products) when ``D`` is large. Dense solves use a batched Cholesky
factorisation; problems whose matrix is not positive definite fall back to LU.

Shapes: ``y`` is ``(B, D)``; seeds are ``(B, S, D)``; ``energy(y, *params)`` maps ``(..., B, D)``
to ``(..., B)``. Energies written with broadcasting over leading dimensions let all seeds be
scored in one call (``y`` of shape ``(S, B, D)``); others are called once per seed.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "DEFAULT_LAMBDA",
    "MODES",
    "ArgminError",
    "NonFiniteEnergyError",
    "SingularHessianError",
    "Minimum",
    "minimize",
    "select_seed",
    "hessian",
    "hessian_vector_product",
    "damped_solve",
    "implicit_gradient",
    "argmin",
    "Argmin",
]

DEFAULT_LAMBDA = 0.1
MODES = ("implicit", "unrolled")
HESSIAN_MODES = ("auto", "dense", "hvp")
# Beyond this many variables per problem the Hessian is not formed (CG on products instead).
DENSE_MAX_DIM = 64

Energy = Callable[..., Tensor]


class ArgminError(ArithmeticError):
    """The minimiser or the implicit gradient cannot be computed (bad energy, singular Hessian)."""


class NonFiniteEnergyError(ArgminError):
    """The energy or its gradient is NaN or infinite where it must be finite."""


class SingularHessianError(ArgminError):
    """``H + lam I`` is singular (typically ``lam = 0`` at a flat minimum)."""


@dataclass(frozen=True)
class Minimum:
    """Result of :func:`minimize`.

    Attributes:
        y: ``(B, D)`` minimisers.
        energy: ``(B,)`` energies at ``y``.
        grad_norm: ``(B,)`` max-abs gradient ``||grad_y E||_inf`` at ``y``.
        converged: ``(B,)`` bool, ``grad_norm <= tol``.
        iterations: L-BFGS iterations run (the most any problem needed).
        seed_index: ``(B,)`` index of the chosen seed, or None when one start was given.
        hessian: ``(B, D, D)`` Hessian used by the final Newton step (at the point one step before
            ``y``), or None; :func:`argmin` reuses it for the gradient.
    """

    y: Tensor
    energy: Tensor
    grad_norm: Tensor
    converged: Tensor
    iterations: int
    seed_index: Tensor | None = None
    hessian: Tensor | None = None


# ------------------------------------------------------------------------------- checks


def _check_energy(energy: object) -> None:
    if not callable(energy):
        raise ValueError(f"energy: expected a callable energy(y, *params) -> (B,), got {type(energy).__name__}")


def _check_params(params: object) -> tuple:
    if isinstance(params, Tensor):
        return (params,)
    if params is None:
        return ()
    if not isinstance(params, (tuple, list)):
        raise ValueError(f"params: expected a sequence of tensors (or one tensor), got {type(params).__name__}")
    return tuple(params)


def _check_y(y: object, name: str) -> Tensor:
    if not isinstance(y, Tensor):
        raise ValueError(f"{name}: expected a tensor of shape (B, D) or (B, S, D), got {type(y).__name__}")
    if y.ndim not in (2, 3) or y.shape[0] == 0 or y.shape[-1] == 0:
        raise ValueError(f"{name}: expected shape (B, D) or (B, S, D) with B, S, D >= 1, got {tuple(y.shape)}")
    if not y.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {y.dtype}")
    return y


def _check_lam(lam: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lam: expected a finite number >= 0, got {lam!r}")
    return float(lam)


def _check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-9 if dtype == torch.float64 else 1e-5


def _detached(params: tuple) -> tuple:
    return tuple(p.detach() if isinstance(p, Tensor) else p for p in params)


# ------------------------------------------------------------------------------- energy calls


def _energy(energy: Energy, y: Tensor, params: tuple) -> Tensor:
    e = energy(y, *params)
    if not isinstance(e, Tensor) or e.shape != y.shape[:-1]:
        shape = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        raise ValueError(f"energy: must map y of shape {tuple(y.shape)} to energies of shape "
                         f"{tuple(y.shape[:-1])}, got {shape}")
    return e


def _value_and_grad(energy: Energy, y: Tensor, params: tuple, *, create_graph: bool) -> tuple[Tensor, Tensor]:
    """``E(y)`` (B,) and ``grad_y E`` (B, D); detached unless ``create_graph``."""
    with torch.enable_grad():
        if not create_graph or not y.requires_grad:
            y = y.detach().requires_grad_(True) if not create_graph else y.requires_grad_(True)
        e = _energy(energy, y, params)
        (g,) = torch.autograd.grad(e.sum(), y, create_graph=create_graph)
    if not create_graph:
        return e.detach(), g.detach()
    return e, g


def select_seed(energy: Energy, seeds: Tensor, params: Sequence[Tensor] = ()) -> tuple[Tensor, Tensor]:
    """The seed of lowest energy of each problem.

    Args:
        energy: ``energy(y, *params)``, ``(..., B, D) -> (..., B)``.
        seeds: ``(B, S, D)`` candidate starting points.
        params: the energy's weights and data.

    Returns:
        ``(y0, index)``: ``(B, D)`` best seeds and ``(B,)`` their indices.

    Raises:
        NonFiniteEnergyError: every seed of some problem has a non-finite energy.
    """
    _check_energy(energy)
    seeds = _check_y(seeds, "seeds")
    if seeds.ndim != 3:
        raise ValueError(f"seeds: expected shape (B, S, D), got {tuple(seeds.shape)}")
    params = _detached(_check_params(params))
    stacked = seeds.detach().transpose(0, 1)  # (S, B, D)
    with torch.no_grad():
        try:
            values = energy(stacked, *params)
            broadcast = isinstance(values, Tensor) and values.shape == stacked.shape[:-1]
        except (RuntimeError, IndexError, ValueError):
            broadcast = False
        if not broadcast:  # an energy that only takes (B, D): one call per seed
            values = torch.stack([_energy(energy, stacked[s], params) for s in range(stacked.shape[0])])
    values = torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))
    best, index = values.min(dim=0)
    bad = ~torch.isfinite(best)
    if bad.any():
        problems = bad.nonzero().flatten().tolist()
        raise NonFiniteEnergyError(f"energy is non-finite at every seed of problem(s) {problems[:10]}"
                                   f"{'...' if len(problems) > 10 else ''}; check the energy and its weights")
    y0 = seeds.detach().gather(1, index.view(-1, 1, 1).expand(-1, 1, seeds.shape[-1])).squeeze(1)
    return y0, index


# ------------------------------------------------------------------------------- second order


def hessian_vector_product(energy: Energy, y: Tensor, v: Tensor, params: Sequence[Tensor] = ()) -> Tensor:
    """``H v`` per problem, ``H = d^2 E/dy^2`` at ``y``: shapes ``(B, D)``, detached."""
    params = _detached(_check_params(params))
    with torch.enable_grad():
        yy = y.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_energy(energy, yy, params).sum(), yy, create_graph=True)
        (hv,) = torch.autograd.grad(g, yy, grad_outputs=v.detach(), allow_unused=True)
    return torch.zeros_like(y) if hv is None else hv.detach()


def hessian(energy: Energy, y: Tensor, params: Sequence[Tensor] = ()) -> Tensor:
    """Dense per-problem Hessians ``(B, D, D)`` of ``E`` with respect to ``y`` (detached).

    Built from ``D`` Hessian-vector products of ``sum_b E_b`` with the unit vectors (one
    product gives column ``j`` of every problem's block), vectorised when autograd allows.
    """
    _check_energy(energy)
    y = _check_y(y, "y")
    params = _detached(_check_params(params))
    b, d = y.shape
    with torch.enable_grad():
        yy = y.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_energy(energy, yy, params).sum(), yy, create_graph=True)
        if not g.requires_grad:  # linear energy
            return y.new_zeros(b, d, d)
        basis = torch.eye(d, dtype=y.dtype, device=y.device).unsqueeze(1).expand(d, b, d)
        try:
            (cols,) = torch.autograd.grad(g, yy, grad_outputs=basis, is_grads_batched=True,
                                          retain_graph=True, allow_unused=True)
        except RuntimeError:  # an op without a batching rule: one product per column
            cols = [torch.autograd.grad(g, yy, grad_outputs=basis[j], retain_graph=True, allow_unused=True)[0]
                    for j in range(d)]
            cols = None if any(c is None for c in cols) else torch.stack(cols)
    if cols is None:
        return y.new_zeros(b, d, d)
    h = cols.detach().permute(1, 2, 0)  # (B, D_i, D_j): column j = H e_j
    return 0.5 * (h + h.transpose(1, 2))


def _dense_factor(h: Tensor, lam: float):
    """Factor ``A = H + lam I`` once: Cholesky where positive definite, LU elsewhere."""
    eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
    a = h + lam * eye
    if not torch.isfinite(a).all():
        raise NonFiniteEnergyError("the Hessian of the energy at the minimiser is not finite")
    chol, info = torch.linalg.cholesky_ex(a)
    bad = info != 0
    lu = None
    if bad.any():
        lu = torch.linalg.lu_factor_ex(a[bad])
        singular = lu[2] != 0
        if singular.any() or not torch.isfinite(lu[0]).all():
            idx = bad.nonzero().flatten()[singular].tolist() if singular.any() else bad.nonzero().flatten().tolist()
            raise SingularHessianError(
                f"H + lam I is singular (lam = {lam:g}) for problem(s) {idx[:10]}: the minimum is flat in some "
                "direction; use the damped gradient (lam > 0, the paper uses 0.1) or regularise the energy")
    return chol, bad, lu


def _dense_apply(factor, b: Tensor) -> Tensor:
    chol, bad, lu = factor
    x = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
    if lu is not None:
        x_lu = torch.linalg.lu_solve(lu[0], lu[1], b[bad].unsqueeze(-1)).squeeze(-1)
        x = x.index_put((bad.nonzero().flatten(),), x_lu)
    return x


def _conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, *, max_iter: int, tol: float) -> Tensor:
    """Batched CG for ``A x = b`` with ``A`` symmetric positive definite per problem."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = (r * r).sum(-1)
    stop = tol * tol * (b * b).sum(-1).clamp_min(torch.finfo(b.dtype).tiny)
    for _ in range(max_iter):
        active = rr > stop
        if not active.any():
            break
        ap = matvec(p)
        curvature = (p * ap).sum(-1)
        if ((curvature <= 0) & active).any():
            idx = ((curvature <= 0) & active).nonzero().flatten().tolist()
            raise SingularHessianError(f"H + lam I is not positive definite for problem(s) {idx[:10]} "
                                       "(conjugate gradients); use lam > 0 or hessian='dense'")
        alpha = torch.where(active, rr / curvature.where(active, torch.ones_like(curvature)), torch.zeros_like(rr))
        x = x + alpha.unsqueeze(-1) * p
        r = r - alpha.unsqueeze(-1) * ap
        rr_new = (r * r).sum(-1)
        beta = torch.where(active, rr_new / rr.clamp_min(torch.finfo(b.dtype).tiny), torch.zeros_like(rr))
        p = r + beta.unsqueeze(-1) * p
        rr = rr_new
    return x


class _CGSolve(torch.autograd.Function):
    """``x = (H + lam I)^-1 b`` on Hessian-vector products; backward is the same solve (A = A^T)."""

    @staticmethod
    def forward(ctx, b, matvec, max_iter, tol):
        ctx.matvec, ctx.max_iter, ctx.tol = matvec, max_iter, tol
        return _conjugate_gradient(matvec, b.detach(), max_iter=max_iter, tol=tol)

    @staticmethod
    def backward(ctx, grad):
        return _conjugate_gradient(ctx.matvec, grad, max_iter=ctx.max_iter, tol=ctx.tol), None, None, None


def damped_solve(h: Tensor, b: Tensor, *, lam: float = DEFAULT_LAMBDA) -> Tensor:
    """``x = (H + lam I)^-1 b`` per problem, batched Cholesky (LU where not positive definite).

    Differentiable with respect to ``b`` (and ``h``).

    Args:
        h: ``(B, D, D)`` symmetric matrices.
        b: ``(B, D)`` right-hand sides.
        lam: damping ``>= 0``.

    Raises:
        SingularHessianError: ``H + lam I`` is singular for some problem.
    """
    lam = _check_lam(lam)
    if not isinstance(h, Tensor) or h.ndim != 3 or h.shape[-1] != h.shape[-2]:
        raise ValueError(f"h: expected a tensor of shape (B, D, D), got {getattr(h, 'shape', type(h).__name__)}")
    if not isinstance(b, Tensor) or b.shape != h.shape[:-1]:
        raise ValueError(f"b: expected shape {tuple(h.shape[:-1])}, got {getattr(b, 'shape', type(b).__name__)}")
    return _dense_apply(_dense_factor(h, lam), b)


def _resolve_hessian_mode(hessian_mode: str, d: int) -> str:
    if hessian_mode not in HESSIAN_MODES:
        raise ValueError(f"hessian: expected one of {HESSIAN_MODES}, got {hessian_mode!r}")
    if hessian_mode == "auto":
        return "dense" if d <= DENSE_MAX_DIM else "hvp"
    return hessian_mode


# ------------------------------------------------------------------------------- minimiser


def _lbfgs_direction(g: Tensor, pairs: list, gamma: Tensor) -> Tensor:
    """Two-loop recursion, per problem; a pair with ``rho = 0`` is a no-op for that problem."""
    q = g
    alphas = []
    for s, yv, rho in reversed(pairs):
        a = rho * (s * q).sum(-1, keepdim=True)
        alphas.append(a)
        q = q - a * yv
    r = gamma * q
    for (s, yv, rho), a in zip(pairs, reversed(alphas)):
        beta = rho * (yv * r).sum(-1, keepdim=True)
        r = r + s * (a - beta)
    return -r


def minimize(energy: Energy, y_init: Tensor, params: Sequence[Tensor] = (), *, max_iter: int = 50,
             history: int = 10, tol: float | None = None, newton_step: bool = True,
             lam: float = DEFAULT_LAMBDA, max_line_search: int = 30, differentiable: bool = False) -> Minimum:
    """Batched L-BFGS from the best seed, then one damped Newton step.

    Minimises every problem ``b`` of ``E(y; w)`` independently (Eq. 1): L-BFGS with a memory of
    ``history`` pairs and Armijo backtracking (``c1 = 1e-4``, halving) per problem, stopped when
    ``||grad_y E||_inf <= tol``; then ``y <- y - (H + lam I)^-1 grad_y E`` where that lowers the
    energy or the gradient (the fixed point of Eq. 6 / its damped version).

    Args:
        energy: ``energy(y, *params)``, ``(..., B, D) -> (..., B)``.
        y_init: ``(B, D)`` start, or ``(B, S, D)`` seeds (the lowest-energy seed is used).
        params: weights and data of the energy (used detached unless ``differentiable``).
        max_iter: L-BFGS iterations (the public code uses 10).
        history: L-BFGS memory.
        tol: gradient tolerance; default 1e-9 (float64) or 1e-5 (float32).
        newton_step: take the final damped Newton step.
        lam: damping of that step.
        max_line_search: backtracking halvings before a problem is declared stalled.
        differentiable: keep the autograd graph through the iterations (``mode="unrolled"``);
            the final Newton step is then skipped.

    Returns:
        :class:`Minimum`.

    Raises:
        ValueError: malformed arguments; NonFiniteEnergyError: the energy is non-finite at the
            start or at the result.
    """
    _check_energy(energy)
    y_init = _check_y(y_init, "y_init")
    params = _check_params(params)
    max_iter = _check_positive_int(max_iter, "max_iter", minimum=0)
    history = _check_positive_int(history, "history")
    max_line_search = _check_positive_int(max_line_search, "max_line_search")
    lam = _check_lam(lam)
    tol = _default_tol(y_init.dtype) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    if not differentiable:
        params = _detached(params)
    seed_index = None
    if y_init.ndim == 3:
        y, seed_index = select_seed(energy, y_init, params)
    else:
        y = y_init.detach()
    y = y.clone()
    f, g = _value_and_grad(energy, y, params, create_graph=differentiable)
    if not (torch.isfinite(f).all() and torch.isfinite(g).all()):
        bad = (~torch.isfinite(f) | ~torch.isfinite(g).all(-1)).nonzero().flatten().tolist()
        raise NonFiniteEnergyError(f"energy or its gradient is non-finite at the start of problem(s) {bad[:10]}")
    if differentiable:
        y = y.requires_grad_(True) if not y.requires_grad else y
    b = y.shape[0]
    pairs: list = []
    gamma = torch.ones(b, 1, dtype=y.dtype, device=y.device)
    active = g.detach().abs().amax(-1) > tol
    iterations = 0
    for it in range(max_iter):
        if not active.any():
            break
        iterations = it + 1
        d = _lbfgs_direction(g, pairs, gamma)
        slope = (d * g).sum(-1)
        not_descent = ~(slope < 0)
        if not_descent.any():  # reset to steepest descent where the quasi-Newton model misleads
            d = torch.where(not_descent.unsqueeze(-1), -g, d)
            slope = (d * g).sum(-1)
        t = torch.ones(b, dtype=y.dtype, device=y.device)
        if it == 0:
            t = torch.clamp(1.0 / g.detach().abs().sum(-1).clamp_min(1e-300), max=1.0)
        accepted = ~active
        with torch.no_grad():
            fd, dd, sd = f.detach(), d.detach(), slope.detach()
            # Energy changes below rounding cannot decide Armijo's test: allow them (Hager & Zhang's
            # approximate Wolfe condition), else L-BFGS stalls short of a tight tolerance.
            rounding = 16 * torch.finfo(y.dtype).eps * fd.abs()
            for _ in range(max_line_search):
                trial = _energy(energy, y.detach() + t.unsqueeze(-1) * dd, _detached(params))
                ok = (trial <= fd + 1e-4 * t * sd + rounding) & torch.isfinite(trial)
                accepted = accepted | ok
                if accepted.all():
                    break
                t = torch.where(accepted, t, 0.5 * t)
        stalled = active & ~accepted
        t = torch.where(active & accepted, t, torch.zeros_like(t))
        y_new = y + t.unsqueeze(-1) * d
        f_new, g_new = _value_and_grad(energy, y_new, params, create_graph=differentiable)
        s, yv = (y_new - y), (g_new - g)
        sy = (s * yv).sum(-1, keepdim=True)
        good = (sy > 1e-10 * (s * s).sum(-1, keepdim=True).sqrt() * (yv * yv).sum(-1, keepdim=True).sqrt()) & (sy > 0)
        rho = torch.where(good, 1.0 / sy.where(good, torch.ones_like(sy)), torch.zeros_like(sy))
        pairs.append((s, yv, rho))
        if len(pairs) > history:
            pairs.pop(0)
        yy = (yv * yv).sum(-1, keepdim=True)
        gamma = torch.where(good, sy / yy.where(good, torch.ones_like(yy)), gamma)
        y, f, g = y_new, f_new, g_new
        active = active & ~stalled & (g.detach().abs().amax(-1) > tol)
    h = None
    if newton_step and not differentiable:
        h = hessian(energy, y, params)
        try:
            step = -_dense_apply(_dense_factor(h, lam), g)
        except ArgminError:
            step = None
        if step is not None and torch.isfinite(step).all():
            f_try, g_try = _value_and_grad(energy, y + step, params, create_graph=False)
            better = torch.isfinite(f_try) & ((f_try < f) | (g_try.abs().amax(-1) < g.abs().amax(-1)))
            y = torch.where(better.unsqueeze(-1), y + step, y)
            f = torch.where(better, f_try, f)
            g = torch.where(better.unsqueeze(-1), g_try, g)
    grad_norm = g.detach().abs().amax(-1)
    if not (torch.isfinite(y).all() and torch.isfinite(f).all()):
        bad = (~torch.isfinite(y).all(-1) | ~torch.isfinite(f)).nonzero().flatten().tolist()
        raise NonFiniteEnergyError(f"the minimiser is non-finite for problem(s) {bad[:10]}")
    return Minimum(y if differentiable else y.detach(), f if differentiable else f.detach(), grad_norm,
                   grad_norm <= tol, iterations, seed_index, h)


# ------------------------------------------------------------------------------- gradients


def implicit_gradient(energy: Energy, y_star: Tensor, params: Sequence[Tensor], *, lam: float = DEFAULT_LAMBDA,
                      hessian_mode: str = "auto", h: Tensor | None = None, cg_max_iter: int | None = None,
                      cg_tol: float | None = None) -> Tensor:
    """``y*`` with the backward of Eq. (10): ``dy*/dw = -(H + lam I)^-1 d(grad_y E)/dw``.

    Args:
        energy: the energy.
        y_star: ``(B, D)`` minimisers (treated as constants: the Newton step that follows is what
            is differentiated, Eq. 7-8).
        params: the weights ``w`` (those with ``requires_grad`` get gradients).
        lam: damping; 0 gives the undamped gradient of Samuel & Tappen (Eq. 9).
        hessian_mode: ``"dense"`` (batched Cholesky), ``"hvp"`` (CG on Hessian-vector products) or
            ``"auto"`` (dense up to 64 variables per problem).
        h: a ``(B, D, D)`` Hessian already computed at (or one Newton step from) ``y_star``;
            the dense path then skips recomputing it (the difference is of the order of that step).

    Returns:
        ``(B, D)`` tensor equal to ``y_star`` whose gradient flows to ``params``.

    Raises:
        SingularHessianError: ``H + lam I`` is singular (only possible with ``lam = 0``).
    """
    lam = _check_lam(lam)
    params = _check_params(params)
    y_star = _check_y(y_star, "y_star").detach()
    mode = _resolve_hessian_mode(hessian_mode, y_star.shape[-1])
    with torch.enable_grad():
        yy = y_star.clone().requires_grad_(True)
        e = _energy(energy, yy, params)
        (g,) = torch.autograd.grad(e.sum(), yy, create_graph=True)
    if not g.requires_grad:
        return y_star
    if not torch.isfinite(g).all():
        raise NonFiniteEnergyError("grad_y E is non-finite at the minimiser")
    if mode == "dense":
        if h is None or h.shape != (*y_star.shape, y_star.shape[-1]):
            h = hessian(energy, y_star, params)
        delta = -_dense_apply(_dense_factor(h, lam), g)
    else:
        detached = _detached(params)

        def matvec(v: Tensor) -> Tensor:
            return hessian_vector_product(energy, y_star, v, detached) + lam * v

        d = y_star.shape[-1]
        tol = cg_tol if cg_tol is not None else (1e-10 if y_star.dtype == torch.float64 else 1e-6)
        delta = -_CGSolve.apply(g, matvec, cg_max_iter or 2 * d, tol)
    return y_star + (delta - delta.detach())


def argmin(energy: Energy, y_init: Tensor, params: Sequence[Tensor] = (), *, lam: float = DEFAULT_LAMBDA,
           mode: str = "implicit", max_iter: int = 50, history: int = 10, tol: float | None = None,
           newton_step: bool = True, hessian_mode: str = "auto", warn: bool = True,
           return_info: bool = False):
    """Differentiable ``y*(w) = argmin_y E(y; w)`` (Eq. 1), batched over problems.

    Forward: :func:`minimize` (best seed, batched L-BFGS, one damped Newton step). Backward:
    ``mode="implicit"`` gives Eq. (10) with damping ``lam`` (0.1 in the paper; 0 = Eq. 9,
    Samuel & Tappen); ``mode="unrolled"`` backpropagates through the L-BFGS iterations.

    Args:
        energy: ``energy(y, *params)``, ``(..., B, D) -> (..., B)``, smooth in ``y`` and ``params``.
        y_init: ``(B, D)`` start or ``(B, S, D)`` seeds; no gradient flows into it.
        params: tensors the energy depends on; gradients reach those with ``requires_grad``.
        lam, max_iter, history, tol, newton_step: see :func:`minimize`.
        mode: ``"implicit"`` or ``"unrolled"``.
        hessian_mode: see :func:`implicit_gradient`.
        warn: warn when some problems did not reach ``tol``.
        return_info: also return the :class:`Minimum`.

    Returns:
        ``(B, D)`` minimisers (and the :class:`Minimum` if ``return_info``).

    Raises:
        ValueError: malformed arguments. NonFiniteEnergyError: NaN/inf energy.
        SingularHessianError: singular ``H + lam I`` (``lam = 0`` at a flat minimum).
    """
    _check_energy(energy)
    lam = _check_lam(lam)
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    params = _check_params(params)
    if mode == "unrolled":
        result = minimize(energy, y_init, params, max_iter=max_iter, history=history, tol=tol,
                          newton_step=False, lam=lam, differentiable=True)
        y = result.y
    else:
        result = minimize(energy, y_init, params, max_iter=max_iter, history=history, tol=tol,
                          newton_step=newton_step, lam=lam)
        needs_grad = torch.is_grad_enabled() and any(isinstance(p, Tensor) and p.requires_grad for p in params)
        y = implicit_gradient(energy, result.y, params, lam=lam, hessian_mode=hessian_mode,
                              h=result.hessian) if needs_grad else result.y
    if warn and not bool(result.converged.all()):
        missed = int((~result.converged).sum())
        warnings.warn(f"argmin: {missed} of {len(result.converged)} problems did not reach tol (largest "
                      f"|grad E| = {float(result.grad_norm.max()):.3g}); raise max_iter or rescale the energy",
                      RuntimeWarning, stacklevel=2)
    return (y, result) if return_info else y


class Argmin(nn.Module):
    """Module form of :func:`argmin`: stores the energy and the options.

    ``Argmin(energy, lam=0.1)(y_init, *params)`` equals ``argmin(energy, y_init, params, lam=0.1)``.
    """

    def __init__(self, energy: Energy, *, lam: float = DEFAULT_LAMBDA, mode: str = "implicit", max_iter: int = 50,
                 history: int = 10, tol: float | None = None, newton_step: bool = True,
                 hessian_mode: str = "auto"):
        super().__init__()
        _check_energy(energy)
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        self.energy = energy
        self.options = dict(lam=_check_lam(lam), mode=mode, max_iter=max_iter, history=history, tol=tol,
                            newton_step=newton_step, hessian_mode=hessian_mode)

    def forward(self, y_init: Tensor, *params: Tensor) -> Tensor:
        return argmin(self.energy, y_init, params, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())
