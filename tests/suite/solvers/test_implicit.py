"""suite.solvers.implicit: the damped / undamped implicit gradient of an argmin (Toso et al. 2019)."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from suite.solvers.implicit import (
    Argmin,
    NonFiniteEnergyError,
    SingularHessianError,
    argmin,
    damped_solve,
    hessian,
    implicit_gradient,
    minimize,
    select_seed,
)

DT = torch.float64


def quadratic(y, a, b):
    """E = 1/2 y^T A y - b^T y, per problem: y* = A^-1 b."""
    return 0.5 * torch.einsum("...bi,bij,...bj->...b", y, a, y) - (b * y).sum(-1)


def spd(batch, dim, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(batch, dim, dim, generator=g, dtype=DT)
    return m @ m.transpose(1, 2) + dim * torch.eye(dim, dtype=DT)


def smooth(y, w, c):
    """A smooth, strictly convex, non-quadratic energy: sum_i softplus-like + quartic terms.

    E(y; w, c) = sum_i [ log cosh(y_i - w_i) + 0.1 (y_i - c_i)^4 ] + 0.5 w_0^2 y_0 y_1
    """
    return (torch.log(torch.cosh(y - w)) + 0.1 * (y - c) ** 4).sum(-1) + 0.5 * w[..., 0] ** 2 * y[..., 0] * y[..., 1]


def flat(y, w):
    """E = y^4/4 - w y: y* = w^(1/3), H = 3 w^(2/3) -> 0 as w -> 0, d(grad E)/dw = -1."""
    return (0.25 * y**4 - w * y).sum(-1)


def test_quadratic_undamped_equals_analytic():
    a, b0 = spd(3, 4), torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(1))
    b = b0.clone().requires_grad_(True)
    a_param = a.clone().requires_grad_(True)
    y = argmin(quadratic, torch.zeros(3, 4, dtype=DT), (a_param, b), lam=0.0)
    torch.testing.assert_close(y, torch.linalg.solve(a, b0.unsqueeze(-1)).squeeze(-1), rtol=0, atol=1e-10)
    g = torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(2))
    grad_b, grad_a = torch.autograd.grad((y * g).sum(), (b, a_param))
    # Analytic: y* = A^-1 b  =>  dL/db = A^-1 g,  dL/dA = -(A^-1 g) y*^T (symmetrised by the energy).
    u = torch.linalg.solve(a, g.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(grad_b, u, rtol=1e-9, atol=1e-10)
    analytic_a = -0.5 * (u.unsqueeze(-1) * y.detach().unsqueeze(-2) + y.detach().unsqueeze(-1) * u.unsqueeze(-2))
    torch.testing.assert_close(grad_a, analytic_a, rtol=1e-9, atol=1e-10)


def test_quadratic_damped_equals_formula():
    """lam > 0: dy/db = (A + lam I)^-1, the trust-region prediction of Eq. 10."""
    a = spd(2, 3)
    b = torch.randn(2, 3, dtype=DT, requires_grad=True)
    y = argmin(quadratic, torch.zeros(2, 3, dtype=DT), (a, b), lam=0.1)
    g = torch.randn(2, 3, dtype=DT)
    (grad_b,) = torch.autograd.grad((y * g).sum(), b)
    expected = torch.linalg.solve(a + 0.1 * torch.eye(3, dtype=DT), g.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(grad_b, expected, rtol=1e-9, atol=1e-10)


def _minimiser(w, c):
    y0 = torch.stack([w, c], -1).mean(-1)
    return minimize(smooth, y0, (w, c), tol=1e-13, max_iter=200, lam=0.0).y


def test_smooth_undamped_matches_central_differences():
    w = torch.tensor([[0.3, -0.7, 1.1], [-1.2, 0.4, 0.2]], dtype=DT)
    c = torch.tensor([[1.0, 0.5, -0.5], [0.0, -1.0, 2.0]], dtype=DT)
    wp = w.clone().requires_grad_(True)
    y = argmin(smooth, torch.zeros_like(w), (wp, c), lam=0.0, tol=1e-13, max_iter=200)
    jac = torch.stack([torch.autograd.grad(y[:, i].sum(), wp, retain_graph=True)[0] for i in range(3)], 1)
    h = 1e-5
    fd = torch.zeros(2, 3, 3, dtype=DT)
    for j in range(3):
        e = torch.zeros_like(w)
        e[:, j] = h
        fd[:, :, j] = (_minimiser(w + e, c) - _minimiser(w - e, c)) / (2 * h)
    torch.testing.assert_close(jac, fd, rtol=1e-6, atol=1e-8)


def test_unrolled_agrees_with_implicit_on_a_well_conditioned_energy():
    w = torch.tensor([[0.3, -0.7, 1.1]], dtype=DT, requires_grad=True)
    c = torch.tensor([[1.0, 0.5, -0.5]], dtype=DT)
    y_imp = argmin(smooth, torch.zeros(1, 3, dtype=DT), (w, c), lam=0.0, tol=1e-12, max_iter=100)
    y_unr = argmin(smooth, torch.zeros(1, 3, dtype=DT), (w, c), mode="unrolled", tol=1e-12, max_iter=100)
    torch.testing.assert_close(y_imp, y_unr, rtol=0, atol=1e-9)
    (g_imp,) = torch.autograd.grad(y_imp.sum(), w)
    (g_unr,) = torch.autograd.grad(y_unr.sum(), w)
    torch.testing.assert_close(g_imp, g_unr, rtol=1e-4, atol=1e-6)


def test_gradcheck_undamped():
    c = torch.tensor([[1.0, 0.5], [0.0, -1.0]], dtype=DT)
    w = torch.tensor([[0.3, -0.7], [-1.2, 0.4]], dtype=DT, requires_grad=True)

    def fn(w):
        return argmin(smooth, torch.zeros(2, 2, dtype=DT), (w, c), lam=0.0, tol=1e-13, max_iter=200)

    assert torch.autograd.gradcheck(fn, (w,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_damped_solve():
    m = spd(2, 3).requires_grad_(True)
    b = torch.randn(2, 3, dtype=DT, requires_grad=True)
    # Symmetric perturbations only: the Cholesky factor reads one triangle of H.
    assert torch.autograd.gradcheck(lambda m, b: damped_solve(0.5 * (m + m.transpose(1, 2)), b, lam=0.1), (m, b))


def test_damped_gradient_is_bounded_where_undamped_explodes():
    """||dy*/dw|| <= ||d(grad E)/dw|| / lam = 1 / lam on E = y^4/4 - w y as w -> 0."""
    lam = 0.1
    undamped = []
    for w0 in (1e-3, 1e-6, 1e-9):
        w = torch.tensor([[w0]], dtype=DT, requires_grad=True)
        start = torch.tensor([[w0 ** (1 / 3) * 1.5]], dtype=DT)
        y = argmin(flat, start, (w,), lam=lam, tol=1e-14, max_iter=200, warn=False)
        (gd,) = torch.autograd.grad(y.sum(), w)
        assert abs(float(gd)) <= 1 / lam + 1e-9
        y0 = argmin(flat, start, (w,), lam=0.0, tol=1e-14, max_iter=200, warn=False)
        (gu,) = torch.autograd.grad(y0.sum(), w)
        undamped.append(abs(float(gu)))
        # Exact derivative of w^(1/3), where the minimiser is accurate enough to resolve it.
        ystar = float(y0.detach())
        torch.testing.assert_close(float(gu), 1 / (3 * ystar**2), rtol=1e-3, atol=0)
    assert undamped[-1] > 1e3 / lam > 1e2 * max(abs(float(gd)), 1.0) and undamped[0] < undamped[1] < undamped[2]


def test_singular_hessian_undamped_raises_and_damped_does_not():
    def degenerate(y, w):  # E depends on y_0 only: H = diag(2, 0) is singular
        return ((y[..., 0] - w[..., 0]) ** 2)

    w = torch.tensor([[1.0, 2.0]], dtype=DT, requires_grad=True)
    with pytest.raises(SingularHessianError, match="lam"):
        argmin(degenerate, torch.zeros(1, 2, dtype=DT), (w,), lam=0.0)
    y = argmin(degenerate, torch.zeros(1, 2, dtype=DT), (w,), lam=0.1)
    (g,) = torch.autograd.grad(y[:, 0].sum(), w)
    torch.testing.assert_close(g, torch.tensor([[2 / 2.1, 0.0]], dtype=DT))


def test_non_finite_energy_raises_clear_error():
    def bad(y, w):
        return (y - w).pow(2).sum(-1) * torch.tensor(float("nan"), dtype=y.dtype)

    with pytest.raises(NonFiniteEnergyError, match="non-finite"):
        argmin(bad, torch.zeros(2, 3, 1, dtype=DT), (torch.zeros(2, 1, dtype=DT),))
    with pytest.raises(NonFiniteEnergyError):
        argmin(bad, torch.zeros(2, 1, dtype=DT), (torch.zeros(2, 1, dtype=DT),))


def test_bad_arguments_name_the_argument():
    w = torch.zeros(2, 1, dtype=DT)
    with pytest.raises(ValueError, match="lam"):
        argmin(flat, torch.ones(2, 1, dtype=DT), (w,), lam=-1.0)
    with pytest.raises(ValueError, match="mode"):
        argmin(flat, torch.ones(2, 1, dtype=DT), (w,), mode="newton")
    with pytest.raises(ValueError, match="y_init"):
        argmin(flat, torch.ones(2, dtype=DT), (w,))
    with pytest.raises(ValueError, match="energy"):
        argmin(lambda y, w: y.sum(), torch.ones(2, 1, dtype=DT), (w,))
    with pytest.raises(ValueError, match="hessian"):
        implicit_gradient(flat, torch.ones(2, 1, dtype=DT), (w,), hessian_mode="qr")


def test_best_seed_and_batch_equals_loop():
    """Seeds: the lowest-energy one starts L-BFGS; a batch gives what a loop over problems gives."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 30, generator=gen, dtype=DT) * 10
    x[:, :6] = x[:, :1] + 0.3 * torch.randn(4, 6, generator=gen, dtype=DT)
    sigma = torch.full((4, 1), 2.0, dtype=DT, requires_grad=True)

    def rbf(t, x, sigma):
        return -torch.exp(-((x - t) ** 2) / sigma**2).sum(-1)

    seeds = x.unsqueeze(-1)
    y0, index = select_seed(rbf, seeds, (x, sigma))
    per_seed = torch.stack([rbf(seeds[:, s], x, sigma.detach()) for s in range(30)], 1)
    assert torch.equal(index, per_seed.argmin(1))
    y = argmin(rbf, seeds, (x, sigma))
    (g,) = torch.autograd.grad(y.sum(), sigma)
    for b in range(4):
        sb = sigma[b:b + 1].detach().clone().requires_grad_(True)
        yb = argmin(rbf, seeds[b:b + 1], (x[b:b + 1], sb))
        torch.testing.assert_close(yb, y[b:b + 1].detach(), rtol=0, atol=1e-8)
        (gb,) = torch.autograd.grad(yb.sum(), sb)
        torch.testing.assert_close(gb, g[b:b + 1], rtol=1e-6, atol=1e-8)


def test_cg_path_matches_dense():
    a = spd(3, 5)
    b = torch.randn(3, 5, dtype=DT, requires_grad=True)
    y_star = torch.linalg.solve(a, b.detach().unsqueeze(-1)).squeeze(-1)
    gd = torch.autograd.grad(implicit_gradient(quadratic, y_star, (a, b), lam=0.1, hessian_mode="dense").sum(), b)[0]
    gc = torch.autograd.grad(implicit_gradient(quadratic, y_star, (a, b), lam=0.1, hessian_mode="hvp").sum(), b)[0]
    torch.testing.assert_close(gc, gd, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(hessian(quadratic, y_star, (a, b)), a)


def test_module_equals_function_and_float32():
    a = spd(2, 3).float()
    b = torch.randn(2, 3, requires_grad=True)
    layer = Argmin(quadratic, lam=0.1)
    assert "lam=0.1" in repr(layer)
    y_mod = layer(torch.zeros(2, 3), a, b)
    y_fun = argmin(quadratic, torch.zeros(2, 3), (a, b), lam=0.1)
    torch.testing.assert_close(y_mod, y_fun)
    assert y_mod.dtype == torch.float32


def test_warns_when_not_converged():
    a = spd(1, 6) * 1e3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        argmin(quadratic, torch.zeros(1, 6, dtype=DT), (a, torch.ones(1, 6, dtype=DT)), max_iter=1,
               newton_step=False, tol=1e-14)
    assert any("did not reach tol" in str(w.message) for w in caught)
    assert math.isfinite(1.0)
