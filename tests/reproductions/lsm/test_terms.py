"""reproductions.lsm.terms: LSM's data terms and derivatives (App. A), checked against autograd in
float64 (first derivatives: autograd of the energy, halved for the dropped factor 2; Gauss-Newton
second derivatives: the squared Jacobian of the residuals, from autograd), Cramer's determinants
against torch.linalg.det, the kernel estimates against direct loops written here."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reproductions.lsm import terms

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these tensors are tiny, and on a loaded machine two spinning OpenMP
    threads made each op 20-100 times slower than one (measured on the shared 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def per_pixel_grad(scalar_fn, x):
    """d(sum of a per-pixel function)/dx: the per-pixel derivative when pixel p depends on x_p only."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(scalar_fn(x).sum(), x)
    return g


# ------------------------------------------------------------------------------- binary labeling


def test_binary_labeling_derivatives_match_autograd():
    x = 2 * randn(2, 1, 5, 6, seed=1)
    alpha, beta = rand(2, 3, 5, 6, seed=2), rand(2, 3, 5, 6, seed=3)
    gradient, hessian = terms.binary_labeling_derivatives(x, alpha, beta)
    assert gradient.shape == hessian.shape == (2, 3, 5, 6)
    for g in range(3):
        a, b = alpha[:, g:g + 1], beta[:, g:g + 1]
        # Eq. 8 is half the true derivative of Eq. 7 (the factor 2 dropped)
        expected = per_pixel_grad(lambda z: terms.binary_labeling_energy(z, a, b), x) / 2
        torch.testing.assert_close(gradient[:, g:g + 1], expected, rtol=1e-12, atol=1e-12)
        # Eq. 9 is the Gauss-Newton term: sum of squared Jacobians of the residuals
        # sqrt(alpha)(tau - 1) and sqrt(beta)(tau + 1).
        j1 = per_pixel_grad(lambda z: a.sqrt() * (torch.tanh(z) - 1), x)
        j2 = per_pixel_grad(lambda z: b.sqrt() * (torch.tanh(z) + 1), x)
        torch.testing.assert_close(hessian[:, g:g + 1], j1 ** 2 + j2 ** 2, rtol=1e-12, atol=1e-12)
        # ... which is the exact second derivative (halved) without the tau'' term
        xg = x.clone().requires_grad_(True)
        (first,) = torch.autograd.grad(terms.binary_labeling_energy(xg, a, b).sum(), xg, create_graph=True)
        (second,) = torch.autograd.grad(first.sum(), xg)
        tau = torch.tanh(x)
        tau2 = -2 * tau * (1 - tau ** 2)
        torch.testing.assert_close(hessian[:, g:g + 1], second / 2 - ((a + b) * tau + b - a) * tau2,
                                   rtol=1e-10, atol=1e-10)
    assert (hessian >= 0).all()


def test_binary_labeling_newton_step_at_zero():
    # At x = 0 (tau' = 1): gradient = beta - alpha, hessian = alpha + beta.
    alpha, beta = rand(1, 2, 3, 3, seed=4), rand(1, 2, 3, 3, seed=5)
    gradient, hessian = terms.binary_labeling_derivatives(torch.zeros(1, 1, 3, 3, dtype=DT), alpha, beta)
    torch.testing.assert_close(gradient, beta - alpha)
    torch.testing.assert_close(hessian, alpha + beta)


def test_binary_labeling_bad_inputs():
    x = torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="x: expected 1 channel"):
        terms.binary_labeling_derivatives(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="alpha, beta: expected equal shapes"):
        terms.binary_labeling_derivatives(x, torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="alpha: expected 4 dims"):
        terms.binary_labeling_derivatives(x, torch.zeros(2, 3, 3), torch.zeros(1, 1, 3, 3))


# ------------------------------------------------------------------------------- correspondence


def fractional(shape, seed, scale=2.0):
    """Displacements away from integers (autograd of bilinear sampling is one-sided there)."""
    d = scale * randn(*shape, seed=seed)
    frac = d - torch.floor(d)
    return torch.where((frac < 0.05) | (frac > 0.95), d + 0.3, d)


def interior(t, margin=3):
    return t[..., margin:-margin, margin:-margin]


@pytest.mark.parametrize("groups", [1, 2])
def test_stereo_derivatives_match_autograd(groups):
    target, source = randn(2, 4, 9, 12, seed=6), randn(2, 4, 9, 12, seed=7)
    u = fractional((2, 1, 9, 12), seed=8)
    gradient, hessian = terms.stereo_derivatives(target, source, u, groups=groups, derivative="bilinear")
    assert gradient.shape == hessian.shape == (2, groups, 9, 12)
    size = 4 // groups
    for g in range(groups):
        channels = slice(g * size, (g + 1) * size)
        t, s = target[:, channels], source[:, channels]
        expected = per_pixel_grad(lambda z: (terms.warp(s, z) - t).square().sum(1, keepdim=True), u) / 2
        torch.testing.assert_close(gradient[:, g:g + 1], expected, rtol=1e-10, atol=1e-10)
        jacobian_sq = sum(per_pixel_grad(lambda z: terms.warp(s[:, c:c + 1], z), u) ** 2 for c in range(size))
        torch.testing.assert_close(hessian[:, g:g + 1], jacobian_sq, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 4])
def test_flow_derivatives_match_autograd(groups):
    target, source = randn(2, 4, 8, 10, seed=9), randn(2, 4, 8, 10, seed=10)
    flow = fractional((2, 2, 8, 10), seed=11, scale=1.5)
    gradient, hessian = terms.flow_derivatives(target, source, flow, groups=groups, derivative="bilinear")
    assert gradient.shape == (2, groups, 2, 8, 10) and hessian.shape == (2, groups, 3, 8, 10)
    size = 4 // groups
    for g in range(groups):
        channels = slice(g * size, (g + 1) * size)
        t, s = target[:, channels], source[:, channels]
        expected = per_pixel_grad(lambda z: (terms.warp(s, z) - t).square().sum(1, keepdim=True), flow) / 2
        torch.testing.assert_close(gradient[:, g], expected, rtol=1e-10, atol=1e-10)
        jac = [per_pixel_grad(lambda z: terms.warp(s[:, c:c + 1], z), flow) for c in range(size)]  # (B, 2, H, W)
        duu = sum(j[:, 0] ** 2 for j in jac)
        duv = sum(j[:, 0] * j[:, 1] for j in jac)
        dvv = sum(j[:, 1] ** 2 for j in jac)
        torch.testing.assert_close(hessian[:, g], torch.stack((duu, duv, dvv), 1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("task", ["stereo", "flow"])
def test_central_derivative_is_exact_on_a_ramp_and_differs_on_texture(task):
    # On a source linear in x and y both derivatives are the slope (interior); on a random
    # texture the central one differs from the one-sided bilinear derivative.
    h, w = 10, 12
    ys, xs = torch.meshgrid(torch.arange(h, dtype=DT), torch.arange(w, dtype=DT), indexing="ij")
    ramp = torch.stack((0.7 * xs - 0.2 * ys, 0.1 * xs + 0.5 * ys))[None]
    target = randn(1, 2, h, w, seed=12)
    channels = 1 if task == "stereo" else 2
    disp = 0.4 * fractional((1, channels, h, w), seed=13)
    fn = terms.stereo_derivatives if task == "stereo" else terms.flow_derivatives
    central = fn(target, ramp, disp, derivative="central")
    bilinear = fn(target, ramp, disp, derivative="bilinear")
    for a, b in zip(central, bilinear):
        torch.testing.assert_close(interior(a), interior(b), rtol=1e-10, atol=1e-10)
    texture = randn(1, 2, h, w, seed=14)
    central = fn(target, texture, disp, derivative="central")[0]
    bilinear = fn(target, texture, disp, derivative="bilinear")[0]
    assert (interior(central) - interior(bilinear)).abs().max() > 1e-2


def test_warp_moves_by_the_displacement():
    source = randn(1, 3, 6, 8, seed=15)
    shift = torch.full((1, 1, 6, 8), 2.0, dtype=DT)
    torch.testing.assert_close(terms.warp(source, shift)[..., :6], source[..., 2:8])
    flow = torch.zeros(1, 2, 6, 8, dtype=DT)
    flow[:, 1] = 1.0
    torch.testing.assert_close(terms.warp(source, flow)[..., :5, :], source[..., 1:, :])


def test_cramer_matches_torch_linalg():
    m = randn(2, 3, 4, 5, 2, 2, seed=16)
    blocks = m @ m.transpose(-1, -2) + 0.1 * torch.eye(2, dtype=DT)
    hessian = torch.stack((blocks[..., 0, 0], blocks[..., 0, 1], blocks[..., 1, 1]), 2)  # (2, 3, 3, 4, 5)
    gradient = randn(2, 3, 2, 4, 5, seed=17)
    det, det_x, det_y = terms.cramer(hessian, gradient)
    d = gradient.permute(0, 1, 3, 4, 2)  # (..., 2)
    torch.testing.assert_close(det, torch.linalg.det(blocks))
    torch.testing.assert_close(det_x, torch.linalg.det(torch.stack((d, blocks[..., :, 1]), -1)))
    torch.testing.assert_close(det_y, torch.linalg.det(torch.stack((blocks[..., :, 0], d), -1)))
    # Cramer's rule solves the system: (det_x, det_y) / det = D^-1 d
    solved = torch.linalg.solve(blocks, d.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(torch.stack((det_x, det_y), -1) / det.unsqueeze(-1), solved)


def test_correspondence_bad_inputs():
    t = torch.zeros(1, 4, 5, 5)
    with pytest.raises(ValueError, match="displacement: expected shape"):
        terms.stereo_derivatives(t, t, torch.zeros(1, 2, 5, 5))
    with pytest.raises(ValueError, match="source: expected the shape of target"):
        terms.flow_derivatives(t, torch.zeros(1, 4, 5, 6), torch.zeros(1, 2, 5, 5))
    with pytest.raises(ValueError, match="groups: expected a positive divisor"):
        terms.stereo_derivatives(t, t, torch.zeros(1, 1, 5, 5), groups=3)
    with pytest.raises(ValueError, match="derivative: expected one of"):
        terms.stereo_derivatives(t, t, torch.zeros(1, 1, 5, 5), derivative="sobel")
    with pytest.raises(ValueError, match="hessian: expected"):
        terms.cramer(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))


# ------------------------------------------------------------------------------- alpha / beta


def kernel(f, g, bandwidth):
    f = f / max(np.linalg.norm(f), 1e-6)
    g = g / max(np.linalg.norm(g), 1e-6)
    return math.exp((float(f @ g) - 1) / bandwidth ** 2)


def test_scribble_probabilities_match_a_direct_loop():
    b, c, h, w, groups, bw = 2, 4, 5, 6, 2, 0.7
    features = randn(b, c, h, w, seed=18)
    fg = rand(b, 1, h, w, seed=19) > 0.8
    bg = rand(b, 1, h, w, seed=20) > 0.7
    fg[1] = False  # item 1: no foreground scribble at all
    alpha, beta = terms.scribble_probabilities(features, fg, bg, groups=groups, bandwidth=bw, eps=1e-8)
    f = features.numpy()
    for i in range(b):
        for g in range(groups):
            ch = slice(g * 2, g * 2 + 2)
            fg_points = [f[i, ch, y, x] for y in range(h) for x in range(w) if fg[i, 0, y, x]]
            bg_points = [f[i, ch, y, x] for y in range(h) for x in range(w) if bg[i, 0, y, x]]
            for y in range(h):
                for x in range(w):
                    p = f[i, ch, y, x]
                    pf = np.mean([kernel(p, q, bw) for q in fg_points]) if fg_points else 0.0
                    pb = np.mean([kernel(p, q, bw) for q in bg_points]) if bg_points else 0.0
                    assert alpha[i, g, y, x].item() == pytest.approx(pf / (pf + pb + 1e-8), abs=1e-10)
                    assert beta[i, g, y, x].item() == pytest.approx(pb / (pf + pb + 1e-8), abs=1e-10)
    assert (alpha[1] == 0).all()


def test_scribble_probabilities_separate_two_colours():
    # Left half one feature direction, right half another; scribbles in each half.
    features = torch.zeros(1, 2, 4, 8, dtype=DT)
    features[:, 0, :, :4] = 1.0
    features[:, 1, :, 4:] = 1.0
    fg = torch.zeros(1, 1, 4, 8, dtype=torch.bool)
    bg = torch.zeros(1, 1, 4, 8, dtype=torch.bool)
    fg[..., 1, 1] = True
    bg[..., 2, 6] = True
    alpha, beta = terms.scribble_probabilities(features, fg, bg, groups=1, bandwidth=0.5)
    # orthogonal features: kernel exp(-1 / 0.25) against 1 for the same feature
    expected = 1 / (1 + math.exp(-4))
    torch.testing.assert_close(alpha[..., :4], torch.full_like(alpha[..., :4], expected), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(beta[..., 4:], torch.full_like(beta[..., 4:], expected), rtol=1e-6, atol=1e-6)


def test_scribble_points_are_thinned_deterministically():
    features = randn(1, 2, 16, 16, seed=21)
    fg = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    bg = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    bg[..., 0, 0] = True
    a1 = terms.scribble_probabilities(features, fg, bg, groups=1, max_points=10)[0]
    a2 = terms.scribble_probabilities(features, fg, bg, groups=1, max_points=10)[0]
    full = terms.scribble_probabilities(features, fg, bg, groups=1, max_points=1000)[0]
    torch.testing.assert_close(a1, a2, rtol=0, atol=0)
    assert (a1 - full).abs().max() > 0  # thinned really means fewer points


def test_neighbour_probabilities_match_a_direct_loop():
    b, r, c, h, w, groups, radius, bw = 1, 2, 4, 5, 6, 2, 1, 0.6
    features = randn(b, c, h, w, seed=22)
    refs = randn(b, r, c, h, w, seed=23)
    masks = (rand(b, r, 1, h, w, seed=24) > 0.5).to(DT)
    alpha, beta = terms.neighbour_probabilities(features, refs, masks, groups=groups, radius=radius, bandwidth=bw)
    f, rf, m = features.numpy(), refs.numpy(), masks.numpy()
    window = (2 * radius + 1) ** 2
    for g in range(groups):
        ch = slice(g * 2, g * 2 + 2)
        for y in range(h):
            for x in range(w):
                a = bb = 0.0
                for k in range(r):
                    for dy in range(-radius, radius + 1):
                        for dx in range(-radius, radius + 1):
                            yy, xx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)  # replicate
                            kv = kernel(f[0, ch, y, x], rf[0, k, ch, yy, xx], bw)
                            a += kv * m[0, k, 0, yy, xx] / (r * window)
                            bb += kv * (1 - m[0, k, 0, yy, xx]) / (r * window)
                assert alpha[0, g, y, x].item() == pytest.approx(a / (a + bb + 1e-8), abs=1e-10)
                assert beta[0, g, y, x].item() == pytest.approx(bb / (a + bb + 1e-8), abs=1e-10)


def test_probability_bad_inputs():
    f = torch.zeros(1, 4, 5, 5)
    mask = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="foreground: expected a bool tensor"):
        terms.scribble_probabilities(f, mask.float(), mask, groups=2)
    with pytest.raises(ValueError, match="bandwidth: expected a finite number > 0"):
        terms.scribble_probabilities(f, mask, mask, groups=2, bandwidth=0)
    with pytest.raises(ValueError, match="reference_masks: expected shape"):
        terms.neighbour_probabilities(f, torch.zeros(1, 2, 4, 5, 5), torch.zeros(1, 1, 1, 5, 5), groups=2)
    with pytest.raises(ValueError, match="radius: expected an integer"):
        terms.neighbour_probabilities(f, torch.zeros(1, 1, 4, 5, 5), torch.zeros(1, 1, 1, 5, 5), groups=2,
                                      radius=-1)
