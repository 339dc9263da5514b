"""Timing of the TV prox (suite/solvers/tv.py) against proxTV, in the manner of Table 1 of the
tvlayers paper (Yeh et al., CVPR 2022).

1D workload: x of shape (256, 32, 32) read as 8192 signals of length 32 (the prox runs along the
last dim), a unit step (0 then 1 at the middle) plus Gaussian noise of std 0.1, lam = 1, float32.
The paper does not say which reading of "256 x 32 x 32" it used; this is the one stated here.
2D workload: a (3, 512, 512) float32 image (piecewise-constant blocks plus noise of std 0.1),
lam = 0.1, Dykstra iterations 4 (the paper's setting).

proxTV only has a forward pass: its rows are solved one call per row (taut string), its 2D prox
by `tv1_2d` per channel (Douglas-Rachford, to proxTV's own tolerance, and with max_iters=4).
The 1D peer of the speed goal (at least 12x, forward + backward) is the one of Table 1,
`reproductions/tvlayers/peers.py::proxtv_rows`: the same per-row calls (in float64) plus a
per-row dense-Jacobian backward. The pure-torch path (the CUDA path) is timed on CPU as well,
with its active-set turn counts.
Ratios compare like with like on the same device; the numbers are noisy on a shared machine.

    python benchmarks/bench_tv.py [--device cpu|cuda] [--repeats 25] [--warmup 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

try:
    from suite.solvers import tv
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from suite.solvers import tv

try:
    import prox_tv
except ImportError:
    prox_tv = None

try:
    from reproductions.tvlayers import peers
except ImportError:  # run from a checkout without installing the package
    peers = None


def timed(function: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Milliseconds of each of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


# Leaf tensors whose .grad the timing loop clears (registered by main).
_leaves: list[torch.Tensor] = []


def forward_backward_times(
    make_output: Callable[[], torch.Tensor], device: torch.device, repeats: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Forward and backward milliseconds, timed separately on the same calls.

    The incoming gradient (ones) is made once, outside the timed region, and the leaf's
    accumulated .grad is dropped before each call: only the operator is timed (filling or
    adding a 1 MB tensor starts torch's thread pool, which costs milliseconds on busy cores).
    """
    forward, backward = [], []
    grad = None
    for index in range(warmup + repeats):
        for leaf in _leaves:
            leaf.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        output = make_output()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        middle = time.perf_counter()
        if grad is None or grad.shape != output.shape or grad.dtype != output.dtype:
            grad = torch.ones_like(output)
            middle = time.perf_counter()
        output.backward(grad)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        end = time.perf_counter()
        if index >= warmup:
            forward.append((middle - start) * 1e3)
            backward.append((end - middle) * 1e3)
    return forward, backward


def show(times: list[float]) -> str:
    """mean ± std (min): on a shared machine the minimum is the least disturbed run."""
    spread = statistics.stdev(times) if len(times) > 1 else 0.0
    return f"{statistics.mean(times):8.2f} ± {spread:6.2f} ({min(times):7.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device for our operator (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--repeats", type=int, default=25, help="timed runs (the paper: 25)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(args.seed)

    print(f"torch {torch.__version__}, device {device}, torch threads {torch.get_num_threads()}, "
          f"numba {'yes' if tv._numba_kernel() is not None else 'no'}, proxTV {'yes' if prox_tv else 'no'}")
    print(f"{'1D: (256, 32, 32) float32, lam=1':48s} {'forward ms (min)':>27s} {'backward ms (min)':>27s}")

    step = (torch.arange(32) >= 16).float()
    signals = step + 0.1 * torch.randn(256, 32, 32, generator=generator)
    x = signals.to(device, copy=True).requires_grad_(True)
    _leaves.append(x)
    forward, backward = forward_backward_times(lambda: tv.tv_prox_1d(x, 1.0), device, args.repeats, args.warmup)
    total = statistics.mean(forward) + statistics.mean(backward)
    print(f"{'ours (auto path)':48s} {show(forward)} {show(backward)}")
    if device.type == "cpu" and tv._numba_kernel() is not None:
        with tv._force_backend("torch"):
            few = max(2, min(args.repeats, 5))
            torch_forward, torch_backward = forward_backward_times(lambda: tv.tv_prox_1d(x, 1.0), device, few, 1)
            stats = dict(tv._TORCH_STATS)
        print(f"{'ours (pure-torch path, ' + str(few) + ' runs)':48s} {show(torch_forward)} {show(torch_backward)}")
        print(f"  pure-torch path: {stats['iterations']} active-set turns, {stats['fallback_rows']} rows to lockstep Condat")
    if prox_tv is not None:
        rows = signals.reshape(-1, 32).double().numpy()  # signals has no grad
        # proxTV 3.2 calls the taut string 'classictautstring'; older releases 'tautstring'.
        method = "classictautstring"
        try:
            prox_tv.tv1_1d(rows[0], 1.0, method=method)
        except AssertionError:
            method = "tautstring"

        def proxtv_rows() -> None:
            for row in rows:
                prox_tv.tv1_1d(row, 1.0, method=method)

        proxtv_forward = timed(proxtv_rows, torch.device("cpu"), args.repeats, args.warmup)
        print(f"{'proxTV taut string, one call per row (CPU)':48s} {show(proxtv_forward)} {'-':>27s}")
        reference = np.stack([prox_tv.tv1_1d(row, 1.0, method=method) for row in rows])
        error = np.abs(tv.tv_prox_1d(signals, 1.0).reshape(-1, 32).double().numpy() - reference).max()
        print(f"  ratio proxTV forward / ours forward           {statistics.mean(proxtv_forward) / statistics.mean(forward):8.1f}x")
        print(f"  ratio proxTV forward / ours forward+backward  {statistics.mean(proxtv_forward) / total:8.1f}x")
        best = min(forward) + min(backward)
        print(f"  same, from the minima                         {min(proxtv_forward) / best:8.1f}x")
        print(f"  max |ours - proxTV| (float32 vs float64)      {error:8.1e}")
        if peers is not None:
            # The peer of Table 1 and of the speed goal: proxTV per row + dense-Jacobian backward.
            x64 = signals.double().requires_grad_(True)
            _leaves.append(x64)
            few_peer = max(2, min(args.repeats, 5))
            peer_forward, peer_backward = forward_backward_times(
                lambda: peers.proxtv_rows(x64, 1.0, method=method), torch.device("cpu"), few_peer, 1
            )
            peer_total = statistics.mean(peer_forward) + statistics.mean(peer_backward)
            print(f"{'proxTV per row + dense-Jacobian backward (' + str(few_peer) + ')':48s} "
                  f"{show(peer_forward)} {show(peer_backward)}")
            print(f"  ours fwd+bwd {total:8.2f} ms; proxTV peer fwd+bwd {peer_total:8.1f} ms")
            print(f"  ratio peer total / ours total (goal >= 12x)   {peer_total / total:8.1f}x")
            peer_best = min(peer_forward) + min(peer_backward)
            print(f"  same, from the minima                         {peer_best / best:8.1f}x")

    print()
    print(f"{'2D: (3, 512, 512) float32, lam=0.1, iters=4':48s} {'forward ms (min)':>27s} {'backward ms (min)':>27s}")
    blocks = (torch.rand(3, 8, 8, generator=generator) > 0.5).float()
    image = blocks.repeat_interleave(64, 1).repeat_interleave(64, 2) + 0.1 * torch.randn(3, 512, 512, generator=generator)
    image_device = image.to(device, copy=True).requires_grad_(True)
    _leaves.append(image_device)
    few_2d = max(2, min(args.repeats, 10))
    forward_2d, backward_2d = forward_backward_times(
        lambda: tv.tv_prox_2d(image_device, 0.1, iters=4), device, few_2d, 1
    )
    print(f"{'ours (auto path, ' + str(few_2d) + ' runs)':48s} {show(forward_2d)} {show(backward_2d)}")
    if prox_tv is not None:
        channels = [c.double().numpy() for c in image]
        proxtv_2d = timed(lambda: [prox_tv.tv1_2d(c, 0.1) for c in channels], torch.device("cpu"), few_2d, 1)
        print(f"{'proxTV tv1_2d per channel, to its tolerance':48s} {show(proxtv_2d)} {'-':>27s}")
        proxtv_2d_4 = timed(
            lambda: [prox_tv.tv1_2d(c, 0.1, max_iters=4) for c in channels], torch.device("cpu"), few_2d, 1
        )
        print(f"{'proxTV tv1_2d per channel, max_iters=4':48s} {show(proxtv_2d_4)} {'-':>27s}")
        print(f"  ratio proxTV (tolerance) / ours forward       {statistics.mean(proxtv_2d) / statistics.mean(forward_2d):8.1f}x")
        print(f"  ratio proxTV (4 iters) / ours forward         {statistics.mean(proxtv_2d_4) / statistics.mean(forward_2d):8.1f}x")


if __name__ == "__main__":
    main()
