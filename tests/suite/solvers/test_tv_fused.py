"""Tests of the fused 2D TV prox (suite/solvers/tv: `_TVProx2dPlanes`, the whole Dykstra loop of a
plane in one numba call, and its fused backward) and of the range checks of issue 16.

The reference for the fused path is the unfused loop of Alg. 1 over the batched 1D operator
(`_force_backend("torch")`: the verified active-set 1D prox, differentiated by autograd), an
implementation that shares no compiled code with it; proxTV's `tv1_2d` and the float64 gradcheck
are checked in test_tv.py and here.
"""
from __future__ import annotations

import math

import pytest
import torch

from suite.harness.threads import limit_threads
from suite.solvers import tv
from suite.solvers.tv import TVLayer, tv_prox_1d, tv_prox_2d

try:  # optional peer
    import prox_tv
except ImportError:  # pragma: no cover - depends on the environment
    prox_tv = None

pytestmark = pytest.mark.skipif(tv._numba_kernel() is None, reason="numba not installed (the fused path needs it)")

# Shapes with a width above, below and not a multiple of the column block (16), single rows or
# columns, and non-square planes.
SHAPES = [(2, 3, 7, 9), (1, 2, 40, 37), (3, 1, 1, 17), (2, 2, 19, 1), (1, 1, 32, 32)]


def _run(x: torch.Tensor, lam: torch.Tensor, grad: torch.Tensor | None, iters: int, backend: str):
    xa = x.clone().requires_grad_(True)
    la = lam.clone().requires_grad_(True)
    with tv._force_backend(backend):
        y = tv_prox_2d(xa, la, iters=iters)
        if grad is None:
            y.sum().backward()  # a stride-0 incoming gradient
        else:
            y.backward(grad)
    return y.detach(), xa.grad, la.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("grad", ["dense", "sum"])
def test_fused_2d_equals_unfused_loop(shape, dtype, grad):
    generator = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=generator, dtype=dtype)
    lam = torch.rand(shape[1], generator=generator, dtype=dtype) * 0.6
    lam[0] = 0.0  # an identity channel among the others
    g = torch.randn(*shape, generator=generator, dtype=dtype) if grad == "dense" else None
    fused = _run(x, lam, g, 3, "numba")
    loop = _run(x, lam, g, 3, "torch")
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for ours, reference in zip(fused, loop):
        torch.testing.assert_close(ours, reference, rtol=tol, atol=tol)


def test_fused_2d_gradcheck_float64():
    # Noise around blocks: many segments of different lengths in both passes; lam per channel.
    generator = torch.Generator().manual_seed(3)
    blocks = torch.tensor([[0.0, 3.0, 1.0], [5.0, 2.0, 4.0]], dtype=torch.float64)
    image = blocks.repeat_interleave(3, 0).repeat_interleave(2, 1)
    x = (image + 0.05 * torch.randn(2, 2, 6, 6, generator=generator, dtype=torch.float64)).requires_grad_(True)
    lam = torch.tensor([0.2, 0.45], dtype=torch.float64, requires_grad=True)
    with tv._force_backend("numba"):
        assert torch.autograd.gradcheck(lambda a, b: tv_prox_2d(a, b, iters=3), (x, lam))


def test_fused_2d_gradcheck_through_tv_layer():
    generator = torch.Generator().manual_seed(4)
    layer = TVLayer(2, mode="sharp", lam_init=0.3).double()
    x = (torch.randn(1, 2, 5, 7, generator=generator, dtype=torch.float64)).requires_grad_(True)
    with tv._force_backend("numba"):
        assert torch.autograd.gradcheck(lambda a, r: _layer_with(layer, r)(a), (x, layer.lam_raw.detach().clone()
                                                                                .requires_grad_(True)))


def _layer_with(layer: TVLayer, lam_raw: torch.Tensor):
    def call(x):
        lam = torch.nn.functional.softplus(lam_raw)
        return 2 * x - tv_prox_2d(x, lam, iters=layer.iters)

    return call


def test_fused_2d_without_grad_equals_with_grad():
    x = torch.randn(2, 3, 24, 20, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = tv_prox_2d(x, 0.3)
    tracked = tv_prox_2d(x.clone().requires_grad_(True), 0.3)
    assert torch.equal(plain, tracked.detach())


def test_fused_2d_parallel_launch_matches_single_thread(monkeypatch):
    # Planes split over the pool threads give the same numbers as one thread (each plane is
    # independent); forced by a threshold of one sample per thread.
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(3, 5, 16, 12, generator=generator)
    g = torch.randn(3, 5, 16, 12, generator=generator)
    lam = torch.rand(5, generator=generator)
    with limit_threads(torch_threads=1):
        single = _run(x, lam, g, 4, "numba")
    monkeypatch.setattr(tv, "_PARALLEL_MIN_SAMPLES", 1)
    with limit_threads(torch_threads=2):
        parallel = _run(x, lam, g, 4, "numba")
    for a, b in zip(single, parallel):
        assert torch.equal(a, b)


@pytest.mark.skipif(prox_tv is None, reason="prox-tv not installed")
def test_fused_2d_converges_to_proxtv():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 20, 23, generator=generator, dtype=torch.float64)
    ours = tv_prox_2d(x, 0.4, iters=300)
    for channel in range(2):
        reference = prox_tv.tv1_2d(x[channel].numpy(), 0.4, max_iters=3000)
        assert abs(ours[channel].numpy() - reference).max() < 1e-5


# ---------------------------------------------------------------------------------------------
# Issue 16: magnitudes beyond the dtype's range are a ValueError naming the argument
# ---------------------------------------------------------------------------------------------
RANGE_ERRORS = [
    ("huge finite x float32 1D", lambda: tv_prox_1d(torch.full((4, 32), 3e37), 1.0), "x"),
    ("huge finite x float32 2D", lambda: tv_prox_2d(torch.full((2, 8, 8), -2e37), 0.1), "x"),
    ("huge finite x float64", lambda: tv_prox_1d(torch.full((3, 1000), 1e306, dtype=torch.float64), 1.0), "x"),
    ("lam beyond float32", lambda: tv_prox_1d(torch.randn(4, 8), 1e39), "lam"),
    ("lam tensor beyond float32", lambda: tv_prox_2d(torch.randn(2, 4, 4), torch.tensor([1.0, 1e300],
                                                                                         dtype=torch.float64)), "lam"),
    ("lam times N overflows", lambda: tv_prox_1d(torch.randn(2, 64), 3e36), "lam"),
    ("half input, lam beyond float32", lambda: tv_prox_1d(torch.randn(2, 8).half(), 1e39), "lam"),
    ("layer input huge", lambda: TVLayer(2)(torch.full((1, 2, 4, 4), 1e38)), "x"),
    ("newton huge x", lambda: tv.tv_prox_1d_newton(torch.full((2, 16), 1e37), 1.0), "x"),
]


@pytest.mark.parametrize("name,call,argument", RANGE_ERRORS, ids=[r[0] for r in RANGE_ERRORS])
def test_out_of_range_magnitudes_raise_value_error_naming_argument(name, call, argument):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert message.startswith(f"{argument} is too large"), message
    assert "got" in message or "=" in message


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_magnitudes_within_range_stay_finite_and_equivariant(dtype):
    # Just inside the limit the prox is finite, and prox(c x, c lam) = c prox(x, lam) holds
    # (c a power of two: exact scaling), so nothing overflowed on the way.
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(4, 3, 16, 16, generator=generator, dtype=dtype)
    scale = 2.0 ** (math.floor(math.log2(torch.finfo(dtype).max / (4 * 16))) - 3)
    big = tv_prox_2d(x * scale, 0.3 * scale)
    assert bool(torch.isfinite(big).all())
    torch.testing.assert_close(big / scale, tv_prox_2d(x, 0.3), rtol=1e-5, atol=1e-6)
    rows = tv_prox_1d(x * scale, 0.3 * scale)
    assert bool(torch.isfinite(rows).all())
    torch.testing.assert_close(rows / scale, tv_prox_1d(x, 0.3), rtol=1e-5, atol=1e-6)
