"""suite.solvers.subspace: LSM's subspace minimization step (Tang & Tan, CVPR 2020, Eqs. 3-6, App. A).

The peer is a dense float64 reference written here with numpy/scipy: the full N x N (2N x 2N for
the joint flow system) D, the block basis [[V_x, 0], [0, V_y]], the projection by scipy's least
squares, and the reduced problem (Eq. 5) solved as the least-squares problem
min_c ||L'(r + V c) + L^-1 d|| with D = L L' -- a different route from the module's Cholesky of
the K x K normal equations. For flow by Cramer's rule (the paper's form), the reference builds the
two 1-D problems (D = det, d = det_x / det_y) with torch.linalg.det of the per-pixel matrices.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from suite.solvers.subspace import SubspaceMinimization, subspace_coefficients, subspace_step

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these systems are tiny, and on a loaded machine two spinning OpenMP
    threads made each op many times slower than one (measured on the shared 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

# (channels, flow_system, separate bases): the scalar tasks, and flow in both systems with the
# paper's separate V_x, V_y and with one shared basis.
CASES = [(1, "cramer", False), (2, "cramer", True), (2, "cramer", False), (2, "joint", True), (2, "joint", False)]
CASE_IDS = ["scalar", "flow-cramer-separate", "flow-cramer-shared", "flow-joint-separate", "flow-joint-shared"]


def make_problem(batch=2, channels=1, k=3, height=4, width=5, *, seed=0, dtype=DT, positive=True, separate=False):
    """Random x, basis, hessian (positive definite per pixel when ``positive``), gradient.

    ``separate`` (flow only): a ``(B, 2, K, H, W)`` basis (V_x, V_y) instead of a shared one."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=g, dtype=DT)
    shape = (batch, 2, k, height, width) if separate and channels == 2 else (batch, k, height, width)
    basis = torch.randn(*shape, generator=g, dtype=DT)
    gradient = torch.randn(batch, channels, height, width, generator=g, dtype=DT)
    offset = 0.5 if positive else 0.0
    if channels == 1:
        hessian = torch.rand(batch, 1, height, width, generator=g, dtype=DT) + offset
    else:
        # D = M M' + offset I per pixel: a symmetric positive (semi-)definite 2 x 2 block.
        m = torch.randn(batch, height, width, 2, 2, generator=g, dtype=DT)
        block = m @ m.transpose(-1, -2) + offset * torch.eye(2, dtype=DT)
        hessian = torch.stack((block[..., 0, 0], block[..., 0, 1], block[..., 1, 1]), 1)
    return tuple(t.to(dtype) for t in (x, basis, hessian, gradient))


def bases_of(basis, channels):
    """``(B, C, K, H, W)`` whatever the layout."""
    if basis.ndim == 5:
        return basis
    return basis.unsqueeze(1).expand(-1, channels, -1, -1, -1)


def cramer_reference(hessian, gradient):
    """(det, det_x, det_y) per pixel by torch.linalg.det of the 2x2 matrices (Cramer's rule)."""
    duu, duv, dvv = hessian.unbind(1)
    du, dv = gradient.unbind(1)
    matrix = torch.stack((torch.stack((duu, duv), -1), torch.stack((duv, dvv), -1)), -2)  # rows
    first = torch.stack((torch.stack((du, duv), -1), torch.stack((dv, dvv), -1)), -2)
    second = torch.stack((torch.stack((duu, du), -1), torch.stack((duv, dv), -1)), -2)
    return torch.linalg.det(matrix), torch.linalg.det(first), torch.linalg.det(second)


def scalar_problems(hessian, gradient, channels, system):
    """The per-channel scalar problems (diagonal, gradient) ``(B, C, H, W)`` of a cramer solve,
    or None for the joint system."""
    if channels == 1:
        return hessian, gradient
    if system == "joint":
        return None
    det, det_x, det_y = cramer_reference(hessian, gradient)
    return torch.stack((det, det), 1), torch.stack((det_x, det_y), 1)


def dense_operators(bases, hessian, channels):
    """Per item (joint system): the dense D (CN x CN) and the block basis (CN x CK) in float64."""
    k = bases.shape[1]
    vs = [bases[c].reshape(k, -1).T.numpy().astype(np.float64) for c in range(channels)]  # (N, K) each
    h = hessian.reshape(hessian.shape[0], -1).numpy().astype(np.float64)
    if channels == 1:
        return np.diag(h[0]), vs[0]
    duu, duv, dvv = (np.diag(row) for row in h)
    return np.block([[duu, duv], [duv, dvv]]), scipy.linalg.block_diag(*vs)


def _dense_solve(dmat, vmat, xv, dv, project):
    if project:
        coef = scipy.linalg.lstsq(vmat, xv)[0]
        r = vmat @ coef - xv
    else:
        r = np.zeros_like(xv)
    lower = np.linalg.cholesky(dmat)
    # 1/2 ||L'(r + V c) + L^-1 d||^2 = Eq. (5) + a constant.
    c = scipy.linalg.lstsq(lower.T @ vmat, -(lower.T @ r + scipy.linalg.solve_triangular(lower, dv, lower=True)))[0]
    return xv + r + vmat @ c


def dense_reference(x, basis, hessian, gradient, *, project, system="cramer"):
    """The LSM step for each item by dense linear algebra (D must be positive definite)."""
    channels = x.shape[1]
    bases = bases_of(basis, channels)
    scalar = scalar_problems(hessian, gradient, channels, system)
    out = []
    for b in range(x.shape[0]):
        if scalar is None:
            dmat, vmat = dense_operators(bases[b], hessian[b], channels)
            xv = x[b].reshape(-1).numpy()  # u then v, row-major pixels: matches block_diag(V_x, V_y)
            out.append(_dense_solve(dmat, vmat, xv, gradient[b].reshape(-1).numpy(), project).reshape(x.shape[1:]))
            continue
        diagonal, grad = scalar
        rows = []
        for c in range(channels):
            dmat, vmat = dense_operators(bases[b, c:c + 1], diagonal[b, c:c + 1], 1)
            rows.append(_dense_solve(dmat, vmat, x[b, c].reshape(-1).numpy(), grad[b, c].reshape(-1).numpy(),
                                     project))
        out.append(np.stack(rows).reshape(x.shape[1:]))
    return torch.from_numpy(np.stack(out))


def quadratic_model(increment, hessian, gradient, system="joint"):
    """Eq. (3)/(5): 1/2 dx' D dx + d' dx per item, for (B, C, H, W) increments; for the cramer
    system the sum of the two 1-D models (D = det, d = det_x / det_y)."""
    scalar = scalar_problems(hessian, gradient, increment.shape[1], system)
    if scalar is not None:
        diagonal, gradient = scalar
        dd = (diagonal * increment ** 2).sum(1)
    else:
        du, dv = increment.unbind(1)
        duu, duv, dvv = hessian.unbind(1)
        dd = duu * du * du + 2 * duv * du * dv + dvv * dv * dv
    return 0.5 * dd.flatten(1).sum(1) + (gradient * increment).flatten(1).sum(1)


def span_residual(y, basis):
    """Relative residual of the least-squares fit of each channel of y onto its span(V)."""
    bases = bases_of(basis, y.shape[1])
    fits, targets = [], []
    for c in range(y.shape[1]):
        v = bases[:, c].flatten(2).transpose(1, 2)  # (B, N, K)
        target = y[:, c:c + 1].flatten(2).transpose(1, 2)  # (B, N, 1)
        fits.append(v @ torch.linalg.lstsq(v, target).solution)
        targets.append(target)
    fit, target = torch.cat(fits, -1), torch.cat(targets, -1)
    return ((fit - target).norm() / target.norm()).item()


# ---------------------------------------------------------------------------------------------
# Peer cross-check
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("project", [True, False])
def test_matches_dense_reference(channels, system, separate, project):
    x, basis, hessian, gradient = make_problem(3, channels, k=4, height=5, width=6, seed=channels, separate=separate)
    y = subspace_step(x, basis, hessian, gradient, project=project, ridge=0.0, flow_system=system)
    expected = dense_reference(x, basis, hessian, gradient, project=project, system=system)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-10)


def test_cramer_and_joint_differ_on_a_subspace():
    # The paper's decoupled form is not the coupled minimiser: on a K < N subspace they differ.
    args = make_problem(2, 2, k=3, seed=3, separate=True)
    cramer = subspace_step(*args, ridge=0.0, flow_system="cramer")
    joint = subspace_step(*args, ridge=0.0, flow_system="joint")
    assert (cramer - joint).abs().max() > 1e-3


def test_separate_bases_are_used_per_component():
    # V_x only shapes u and V_y only v: changing V_y leaves u unchanged (cramer: decoupled).
    x, basis, hessian, gradient = make_problem(2, 2, k=3, seed=5, separate=True)
    other = basis.clone()
    other[:, 1] = torch.randn_like(other[:, 1])
    a = subspace_step(x, basis, hessian, gradient, flow_system="cramer")
    b = subspace_step(x, other, hessian, gradient, flow_system="cramer")
    torch.testing.assert_close(a[:, 0], b[:, 0], rtol=0, atol=1e-12)
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-3


def test_coefficients_solve_the_reduced_normal_equations():
    # c of Eq. 6 satisfies V'DV c = -V'(d + D r) (flow, joint system: the 2K x 2K system).
    x, basis, hessian, gradient = make_problem(2, 2, k=3, seed=5, separate=True)
    c = subspace_coefficients(x, basis, hessian, gradient, ridge=0.0, flow_system="joint")
    assert c.shape == (2, 2, 3)
    for b in range(2):
        dmat, vmat = dense_operators(basis[b], hessian[b], 2)
        xv, dv = x[b].reshape(-1).numpy(), gradient[b].reshape(-1).numpy()
        r = vmat @ np.linalg.lstsq(vmat, xv, rcond=None)[0] - xv
        expected = np.linalg.solve(vmat.T @ dmat @ vmat, -vmat.T @ (dv + dmat @ r))
        np.testing.assert_allclose(c[b].reshape(-1).numpy(), expected, rtol=0, atol=1e-10)


def test_cramer_coefficients_solve_two_one_dimensional_systems():
    x, basis, hessian, gradient = make_problem(2, 2, k=3, seed=6, separate=True)
    c = subspace_coefficients(x, basis, hessian, gradient, ridge=0.0)
    det, det_x, det_y = cramer_reference(hessian, gradient)
    for b in range(2):
        for ch, d in enumerate((det_x, det_y)):
            v = basis[b, ch].reshape(3, -1).T.numpy()
            xv = x[b, ch].reshape(-1).numpy()
            r = v @ np.linalg.lstsq(v, xv, rcond=None)[0] - xv
            dmat = np.diag(det[b].reshape(-1).numpy())
            expected = np.linalg.solve(v.T @ dmat @ v, -v.T @ (d[b].reshape(-1).numpy() + dmat @ r))
            np.testing.assert_allclose(c[b, ch].numpy(), expected, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
def in_span(coefficients, basis, channels, shape):
    """V c per channel: ``(B, C, K)`` coefficients -> ``(B, C, H, W)``."""
    bases = bases_of(basis, channels).flatten(3)
    return (coefficients.unsqueeze(-2) @ bases).squeeze(-2).reshape(shape)


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_projected_result_lies_in_the_subspace(channels, system, separate):
    x, basis, hessian, gradient = make_problem(2, channels, k=3, seed=7, separate=separate)
    assert span_residual(x, basis) > 0.1  # x itself is not in span(V)
    assert span_residual(subspace_step(x, basis, hessian, gradient, flow_system=system), basis) < 1e-12
    assert span_residual(subspace_step(x, basis, hessian, gradient, project=False, flow_system=system), basis) > 0.1


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("project", [True, False])
def test_step_minimises_the_quadratic_model_over_the_affine_subspace(channels, system, separate, project):
    x, basis, hessian, gradient = make_problem(2, channels, k=3, seed=11, positive=False, separate=separate)
    y = subspace_step(x, basis, hessian, gradient, project=project, ridge=0.0, flow_system=system)
    best = quadratic_model(y - x, hessian, gradient, system)
    # Every feasible increment is (y - x) + V e for some e (r is fixed); compare with random ones
    # both far and near (a wrong c is beaten by some small e too).
    g = torch.Generator().manual_seed(3)
    for scale in (1.0, 1e-3):
        for _ in range(10):
            e = scale * torch.randn(2, channels, 3, generator=g, dtype=DT)
            other = y - x + in_span(e, basis, channels, x.shape)
            assert (quadratic_model(other, hessian, gradient, system) >= best - 1e-12).all()


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_both_variants_agree_when_x_is_in_the_subspace(channels, system, separate):
    _, basis, hessian, gradient = make_problem(2, channels, k=3, seed=13, separate=separate)
    coefficients = torch.randn(2, channels, 3, dtype=DT, generator=torch.Generator().manual_seed(1))
    x = in_span(coefficients, basis, channels, (2, channels, 4, 5))
    projected = subspace_step(x, basis, hessian, gradient, project=True, ridge=0.0, flow_system=system)
    plain = subspace_step(x, basis, hessian, gradient, project=False, ridge=0.0, flow_system=system)
    torch.testing.assert_close(projected, plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("project", [True, False])
def test_full_basis_gives_the_newton_step(channels, system, separate, project):
    # K = N: the subspace is everything, so one step is the exact minimiser x - D^-1 d (both flow
    # systems: Cramer's rule gives the same per-pixel Newton step).
    x, basis, hessian, gradient = make_problem(2, channels, k=6, height=2, width=3, seed=17, separate=separate)
    y = subspace_step(x, basis, hessian, gradient, project=project, ridge=0.0, flow_system=system)
    if channels == 1:
        newton = x - gradient / hessian
    else:
        duu, duv, dvv = hessian.unbind(1)
        blocks = torch.stack((torch.stack((duu, duv), -1), torch.stack((duv, dvv), -1)), -2)
        newton = x - torch.linalg.solve(blocks, gradient.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, newton, rtol=0, atol=1e-10)


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_default_ridge_is_a_small_perturbation(channels, system, separate):
    x, basis, hessian, gradient = make_problem(2, channels, k=3, seed=19, separate=separate)
    exact = subspace_step(x, basis, hessian, gradient, ridge=0.0, flow_system=system)
    ridged = subspace_step(x, basis, hessian, gradient, flow_system=system)
    error = ((ridged - exact).norm() / exact.norm()).item()
    assert 0 < error < 1e-4
    assert ((subspace_step(x, basis, hessian, gradient, ridge=1.0, flow_system=system) - exact).norm()
            / exact.norm()) > 1e-2


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_ridge_is_relative_so_the_step_is_scale_invariant(channels, system, separate):
    # ridge * mean(diag): scaling the data term (D, d) or the basis V leaves the step unchanged,
    # as it leaves the exact step unchanged; an absolute ridge would not.
    x, basis, hessian, gradient = make_problem(2, channels, k=3, seed=79, separate=separate)
    reference = subspace_step(x, basis, hessian, gradient, ridge=1e-2, flow_system=system)
    scaled_data = subspace_step(x, basis, 1e3 * hessian, 1e3 * gradient, ridge=1e-2, flow_system=system)
    scaled_basis = subspace_step(x, 1e-3 * basis, hessian, gradient, ridge=1e-2, flow_system=system)
    torch.testing.assert_close(scaled_data, reference, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(scaled_basis, reference, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("project", [True, False])
def test_gradcheck(channels, system, separate, project):
    inputs = tuple(t.requires_grad_(True) for t in make_problem(2, channels, k=3, seed=23, separate=separate))
    assert torch.autograd.gradcheck(lambda *a: subspace_step(*a, project=project, ridge=1e-3, flow_system=system),
                                    inputs)


@pytest.mark.parametrize("system", ["cramer", "joint"])
def test_gradgradcheck(system):
    inputs = tuple(t.requires_grad_(True) for t in make_problem(1, 2, k=2, height=3, width=3, seed=29, separate=True))
    assert torch.autograd.gradgradcheck(lambda *a: subspace_step(*a, ridge=1e-3, flow_system=system), inputs)


# ---------------------------------------------------------------------------------------------
# Batch, Module, dtype
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_batch_equals_loop_over_items(channels, system, separate):
    x, basis, hessian, gradient = make_problem(4, channels, k=3, seed=31, separate=separate)
    batched = subspace_step(x, basis, hessian, gradient, flow_system=system)
    looped = torch.cat([subspace_step(x[i:i + 1], basis[i:i + 1], hessian[i:i + 1], gradient[i:i + 1],
                                      flow_system=system) for i in range(4)])
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-12)


@pytest.mark.parametrize("project", [True, False])
@pytest.mark.parametrize("system", ["cramer", "joint"])
def test_module_equals_function(project, system):
    inputs = make_problem(2, 2, k=3, seed=37, separate=True)
    module = SubspaceMinimization(project=project, ridge=1e-4, flow_system=system)
    assert module.project is project and module.ridge == 1e-4 and module.flow_system == system
    assert "project=" in repr(module) and "flow_system" in repr(module) and list(module.parameters()) == []
    torch.testing.assert_close(module(*inputs), subspace_step(*inputs, project=project, ridge=1e-4, flow_system=system),
                               rtol=0, atol=0)


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_float32_close_to_float64(channels, system, separate):
    inputs = make_problem(2, channels, k=4, height=8, width=8, seed=41, separate=separate)
    y64 = subspace_step(*inputs, flow_system=system)
    y32 = subspace_step(*(t.float() for t in inputs), flow_system=system)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Fallback for singular systems
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("project", [True, False])
def test_rank_deficient_basis_falls_back_and_warns(channels, system, separate, project):
    x, basis, hessian, gradient = make_problem(3, channels, k=4, seed=43, separate=separate)
    basis = basis.clone()
    basis[1, ..., 1, :, :] = basis[1, ..., 0, :, :]  # only item 1 is rank deficient (both bases if separate)
    reduced = basis[..., [0, 2, 3], :, :]
    with pytest.warns(RuntimeWarning, match=r"batch item\(s\) \[1\].*larger ridge"):
        y = subspace_step(x, basis, hessian, gradient, project=project, ridge=0.0, flow_system=system)
    assert torch.isfinite(y).all()
    # The minimum-norm coefficients give the step of the basis without the duplicate ...
    expected = subspace_step(x[1:2], reduced[1:2], hessian[1:2], gradient[1:2], project=project, ridge=0.0,
                             flow_system=system)
    torch.testing.assert_close(y[1:2], expected, rtol=0, atol=1e-9)
    # ... and the other items are solved by Cholesky as if alone.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alone = subspace_step(x[::2], basis[::2], hessian[::2], gradient[::2], project=project, ridge=0.0,
                              flow_system=system)
    torch.testing.assert_close(y[::2], alone, rtol=0, atol=1e-12)


def test_fallback_keeps_gradients_of_other_items_finite():
    x, basis, hessian, gradient = make_problem(3, 2, k=4, seed=47, separate=True)
    basis = basis.clone()
    basis[1, 1, 1] = basis[1, 1, 0]  # V_y of item 1
    basis.requires_grad_(True)
    with pytest.warns(RuntimeWarning):
        y = subspace_step(x, basis, hessian, gradient, ridge=0.0)
    (grad,) = torch.autograd.grad(y[::2].square().sum(), basis)
    assert torch.isfinite(grad[::2]).all() and grad[::2].abs().sum() > 0


def test_failed_cholesky_does_not_poison_gradients():
    # D = 0 for item 1: its Cholesky fails outright (zero pivot), the pseudo-inverse gives c = 0.
    # Gradients with respect to x and d must stay finite for every item, the failed one included.
    x, basis, hessian, gradient = make_problem(3, 1, k=3, seed=73)
    hessian = hessian.clone()
    hessian[1] = 0.0
    x.requires_grad_(True)
    gradient.requires_grad_(True)
    with pytest.warns(RuntimeWarning, match=r"\[1\]"):
        y = subspace_step(x, basis, hessian, gradient, project=False, ridge=0.0)
    torch.testing.assert_close(y[1], x[1].detach(), rtol=0, atol=0)
    grads = torch.autograd.grad(y.square().sum(), (x, gradient))
    assert all(torch.isfinite(g).all() for g in grads)


def test_zero_hessian_region_is_handled_by_the_ridge():
    # D = 0 on the whole support of one basis image: V'DV is singular, the ridge makes it definite.
    x, basis, hessian, gradient = make_problem(1, 1, k=2, seed=53)
    basis = basis.clone()
    basis[:, 1] = 0.0
    basis[:, 1, 0, :2] = 1.0
    hessian = hessian.clone()
    hessian[:, :, 0, :2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = subspace_step(x, basis, hessian, gradient)
    assert torch.isfinite(y).all()
    with pytest.warns(RuntimeWarning, match="normal V'DV"):
        subspace_step(x, basis, hessian, gradient, ridge=0.0)


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
@pytest.mark.parametrize("channels", [1, 2])
def test_cuda_matches_cpu(channels):
    inputs = make_problem(3, channels, k=8, height=16, width=20, seed=59)
    cpu = [t.clone().requires_grad_(True) for t in inputs]
    gpu = [t.cuda().requires_grad_(True) for t in inputs]
    y_cpu, y_gpu = subspace_step(*cpu), subspace_step(*gpu)
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=0, atol=1e-10)
    y_cpu.square().sum().backward()
    y_gpu.square().sum().backward()
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-8, atol=1e-8)
    y32 = subspace_step(*(t.float().cuda() for t in inputs))
    torch.testing.assert_close(y32.cpu().double(), y_cpu.detach(), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def _with(**changes):
    x, basis, hessian, gradient = make_problem(2, 2, k=3, seed=61)
    args = dict(x=x, basis=basis, hessian=hessian, gradient=gradient)
    args.update({k: (v(args) if callable(v) else v) for k, v in changes.items()})
    return args


def _nan(name):
    def edit(args):
        t = args[name].clone()
        t[0, 0, 0, 0] = float("nan")
        return t
    return edit


def _non_psd_block(args):
    h = args["hessian"].clone()
    h[1, :, 2, 3] = torch.tensor([1.0, 2.0, 1.0], dtype=DT)  # det = 1 - 4 < 0
    return h


def _negative_diagonal(args):
    h = args["hessian"].clone()
    h[0, 2, 1, 1] = -1e-3
    return h


BAD_INPUTS = [
    ("x 3-dim", dict(x=lambda a: a["x"][0]), "x: expected 4 dims"),
    ("x not a tensor", dict(x=np.zeros((2, 2, 4, 5))), "x: expected a tensor"),
    ("x integer", dict(x=lambda a: a["x"].long()), "x: expected dtype"),
    ("basis 6-dim", dict(basis=lambda a: a["basis"][None, None]), "basis: expected 4 or 5 dims"),
    ("basis 5-dim with 3 bases", dict(basis=lambda a: a["basis"][:, None].expand(-1, 3, -1, -1, -1)),
     "basis: a 5-dim basis .* expected C = 2"),
    ("hessian 3-dim", dict(hessian=lambda a: a["hessian"][:, 0]), "hessian: expected 4 dims"),
    ("gradient 3-dim", dict(gradient=lambda a: a["gradient"][0]), "gradient: expected 4 dims"),
    ("C = 3", dict(x=lambda a: torch.cat([a["x"], a["x"][:, :1]], 1)), "x: expected C = 1"),
    ("basis batch", dict(basis=lambda a: a["basis"][:1]), "basis: expected batch and spatial size"),
    ("basis width", dict(basis=lambda a: a["basis"][..., :4]), "basis: expected batch and spatial size"),
    ("hessian height", dict(hessian=lambda a: a["hessian"][:, :, :3]), "hessian: expected batch and spatial"),
    ("gradient batch", dict(gradient=lambda a: a["gradient"][:1]), "gradient: expected batch and spatial"),
    ("gradient channels", dict(gradient=lambda a: a["gradient"][:, :1]), "gradient: expected C = 2"),
    ("gradient dtype", dict(gradient=lambda a: a["gradient"].float()), "gradient: expected dtype torch.float64"),
    ("hessian 1 channel for flow", dict(hessian=lambda a: a["hessian"][:, :1]), "hessian: expected 3 channel"),
    ("5-dim basis for C = 1", dict(x=lambda a: a["x"][:, :1], gradient=lambda a: a["gradient"][:, :1],
                                   hessian=lambda a: a["hessian"][:, :1],
                                   basis=lambda a: a["basis"][:, None].expand(-1, 2, -1, -1, -1)),
     "basis: a 5-dim basis .* expected C = 1.*use \\(B, K, H, W\\)"),
    ("hessian 3 channels for C = 1", dict(x=lambda a: a["x"][:, :1], gradient=lambda a: a["gradient"][:, :1]),
     "hessian: expected 1 channel"),
    ("K = 0", dict(basis=lambda a: a["basis"][:, :0]), r"basis: expected 1 <= K <= H\*W = 20"),
    ("K > H*W", dict(basis=lambda a: a["basis"][:, :1].expand(-1, 21, -1, -1)), "got K = 21"),
    ("NaN x", dict(x=_nan("x")), "x: expected finite"),
    ("inf basis", dict(basis=lambda a: a["basis"].index_fill(1, torch.tensor([2]), float("inf"))),
     "basis: expected finite"),
    ("NaN hessian", dict(hessian=_nan("hessian")), "hessian: expected finite"),
    ("NaN gradient", dict(gradient=_nan("gradient")), "gradient: expected finite"),
    ("non-PSD block", dict(hessian=_non_psd_block), "hessian: expected positive semi-definite 2x2"),
    ("negative D_vv", dict(hessian=_negative_diagonal), "hessian: expected positive semi-definite 2x2"),
]


@pytest.mark.parametrize("label, changes, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_raises(label, changes, message):
    args = _with(**changes)
    with pytest.raises(ValueError, match=message):
        subspace_step(args["x"], args["basis"], args["hessian"], args["gradient"])


def test_negative_scalar_hessian_raises():
    x, basis, hessian, gradient = make_problem(1, 1, k=2, seed=67)
    hessian = hessian.clone()
    hessian[0, 0, 3, 4] = -0.1
    with pytest.raises(ValueError, match="hessian: expected the diagonal of D >= 0"):
        subspace_step(x, basis, hessian, gradient)


def test_rounding_level_negative_entries_are_accepted():
    # A 2x2 block built as gx gx', gx gy, gy gy' has det >= 0 only up to rounding.
    x, basis, _, gradient = make_problem(1, 2, k=2, seed=71)
    gx, gy = torch.randn(2, 1, 4, 5, dtype=DT, generator=torch.Generator().manual_seed(2))
    hessian = torch.stack((gx * gx, gx * gy, gy * gy), 1)
    scalar = torch.zeros(1, 1, 4, 5, dtype=DT) - 1e-18
    scalar[..., 0, 0] = 1.0
    # accepted (no ValueError) and solved; the joint system, since a rank-one block has det = 0:
    # under Cramer's rule such a pixel carries no information (next test).
    assert torch.isfinite(subspace_step(x, basis, hessian, gradient, ridge=1e-3, flow_system="joint")).all()
    assert torch.isfinite(subspace_step(x[:, :1], basis, scalar, gradient[:, :1], ridge=1e-3)).all()


def test_cramer_with_rank_one_blocks_everywhere_falls_back():
    # One feature channel: every block g g' has det = 0, so det, det_x, det_y vanish (up to
    # rounding) and the Cramer problems are empty: the fallback warns and the step stays finite.
    x, basis, _, gradient = make_problem(1, 2, k=2, seed=71, separate=True)
    gx, gy = torch.randn(2, 1, 4, 5, dtype=DT, generator=torch.Generator().manual_seed(2))
    hessian = torch.stack((gx * gx, gx * gy, gy * gy), 1)
    with pytest.warns(RuntimeWarning, match="normal V'DV"):
        y = subspace_step(x, basis, hessian, gradient, ridge=1e-3)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("ridge", [-1e-6, float("nan"), True, "1e-6"])
def test_bad_ridge_raises(ridge):
    with pytest.raises(ValueError, match="ridge: expected a finite number >= 0"):
        subspace_step(*make_problem(), ridge=ridge)
    with pytest.raises(ValueError, match="ridge"):
        SubspaceMinimization(ridge=ridge)


@pytest.mark.parametrize("flow_system", ["newton", None, 2])
def test_bad_flow_system_raises(flow_system):
    with pytest.raises(ValueError, match="flow_system: expected one of"):
        subspace_step(*make_problem(channels=2), flow_system=flow_system)
    with pytest.raises(ValueError, match="flow_system"):
        SubspaceMinimization(flow_system=flow_system)


def test_bad_project_raises():
    with pytest.raises(ValueError, match="project: expected True or False"):
        subspace_step(*make_problem(), project=1)
    with pytest.raises(ValueError, match="project"):
        SubspaceMinimization(project="yes")


# ------------------------------------------------------------------------------- check_values=False

VALUE_CHECKS = [b for b in BAD_INPUTS if b[0] in ("NaN x", "inf basis", "NaN hessian", "NaN gradient",
                                                  "non-PSD block", "negative D_vv")]
# A NaN / inf in the basis or D reaches the pseudo-inverse fallback, which then fails itself
# (LinAlgError: garbage in, no step); these ones give a (garbage) step.
UNCHECKED_STEPS = [b for b in VALUE_CHECKS if b[0] in ("NaN x", "NaN gradient", "non-PSD block", "negative D_vv")]


@pytest.mark.parametrize("label, changes, message", UNCHECKED_STEPS, ids=[b[0] for b in UNCHECKED_STEPS])
def test_check_values_false_skips_only_the_value_checks(label, changes, message):
    # The inner loop of a caller that validated its inputs once (the LSM model) skips the value
    # checks, each of which reads the tensors (a host sync on an accelerator) ...
    args = _with(**changes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = subspace_step(args["x"], args["basis"], args["hessian"], args["gradient"], check_values=False)
    assert out.shape == args["x"].shape
    with pytest.raises(ValueError, match=message):
        subspace_step(args["x"], args["basis"], args["hessian"], args["gradient"], check_values=True)


@pytest.mark.parametrize("label, changes, message", [b for b in BAD_INPUTS if b not in VALUE_CHECKS],
                         ids=[b[0] for b in BAD_INPUTS if b not in VALUE_CHECKS])
def test_check_values_false_still_checks_shapes(label, changes, message):
    # ... but keeps the metadata checks (types, shapes, dtypes, devices: no sync).
    args = _with(**changes)
    with pytest.raises(ValueError, match=message):
        subspace_step(args["x"], args["basis"], args["hessian"], args["gradient"], check_values=False)


@pytest.mark.parametrize("channels, system, separate", CASES, ids=CASE_IDS)
def test_check_values_false_reads_no_values_and_gives_the_same_step(monkeypatch, channels, system, separate):
    x, basis, hessian, gradient = make_problem(2, channels, k=3, seed=83, separate=separate)
    expected = subspace_step(x, basis, hessian, gradient, flow_system=system)
    # isfinite is what the value checks call first; the solve itself does not use it.
    def forbidden(*_, **__):
        raise AssertionError("a value check ran with check_values=False")
    monkeypatch.setattr(torch, "isfinite", forbidden)
    got = subspace_step(x, basis, hessian, gradient, flow_system=system, check_values=False)
    coefficients = subspace_coefficients(x, basis, hessian, gradient, flow_system=system, check_values=False)
    monkeypatch.undo()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(coefficients, subspace_coefficients(x, basis, hessian, gradient, flow_system=system))
