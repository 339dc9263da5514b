"""Dense CRF loss with gradient at 321 x 321 x 21 (sigma_xy 100, sigma_rgb 15) on CPU.

Times, in one process, separately and honestly:

* lattice construction (once per image; reusable across loss evaluations, as training does);
* loss + gradient (forward and backward of ``dense_crf_loss`` on a leaf tensor with a prebuilt
  lattice), the number to compare with the goal of 30 ms (pydensecrf's 5 mean-field
  iterations: 145 ms on the issue author's machine; not installed here, not re-measured);
* the peers, in the same run, alternating with ours: the two-step numba path (pixels-first
  ``PermutohedralLattice.filter`` then the loss in numpy: the filter the previous fused kernel
  was built on) and the plain-torch path (no numba; also the CUDA path).

Each is reported as wall-clock and as CPU time of the process (all threads): on a shared machine
the wall clock includes waiting for a core, the CPU time does not. Input:
``skimage.data.astronaut()`` resized to 321 x 321, probabilities a softmax of smooth random
logits, float32. Medians over ``--repeats`` rounds after one warm-up (numba compiles, or loads
its cache, on first use). Run with the default numba / torch thread counts and, with
``--threads N``, with N threads for both.

End to end (section ``e2e``, issue 13): one ADM training step with and without the regularized
loss (dense CRF with lattices prebuilt per stored image, as mini training does; built in the
step, as with random crops; the relaxed grid CRF), the loss's share of the step
(``benchmarks/adm_step.py``).

Run: ``python benchmarks/bench_crf.py [--repeats 15] [--threads N] [--sections loss,e2e] [--e2e-size 321 --e2e-batch 2]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import suite.solvers.crf as crf


def make_problem(size: int = 321, classes: int = 21, seed: int = 0):
    from scipy.ndimage import gaussian_filter
    from skimage import data
    from skimage.transform import resize

    image = resize(data.astronaut(), (size, size), anti_aliasing=True, preserve_range=True)
    images = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None]
    rng = np.random.default_rng(seed)
    logits = gaussian_filter(rng.standard_normal((1, classes, size, size)), (0, 0, 8, 8))
    logits *= 4.0 / logits.std()
    return images, torch.softmax(torch.from_numpy(logits).float(), dim=1)


def measure(functions: dict, repeats: int) -> dict:
    """Median (wall, cpu) seconds of each function, run in alternation, after one warm-up each."""
    for function in functions.values():
        function()
    times = {name: ([], []) for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(time.process_time() - cpu)
    return {name: (statistics.median(w), statistics.median(c), min(w)) for name, (w, c) in times.items()}


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="numba and torch threads (default: theirs)")
    parser.add_argument("--sections", default="all", help="comma-separated: loss (the loss alone), e2e (training steps)")
    parser.add_argument("--e2e-size", type=int, default=None, help="training image side (default: ADM mini, 64)")
    parser.add_argument("--e2e-batch", type=int, default=None, help="training batch (default: ADM mini, 8)")
    parser.add_argument("--e2e-repeats", type=int, default=5)
    args = parser.parse_args()
    sections = {"loss", "e2e"} if args.sections == "all" else set(args.sections.split(","))
    if sections - {"loss", "e2e"}:
        raise ValueError(f"--sections: unknown {sorted(sections - {'loss', 'e2e'})}; expected loss, e2e")
    if "e2e" in sections:
        # First, before this script changes numba's or torch's thread counts.
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))  # `energybench bench` runs this file by path
        from adm_step import training_step_rows

        training_step_rows(["dense-gd", "dense-gd-crop", "grid-gd"], size=args.e2e_size, batch=args.e2e_batch,
                           repeats=args.e2e_repeats)
        print()
    if "loss" not in sections:
        return

    images, probs = make_problem(args.size, args.classes)
    print(f"dense CRF loss, {args.size}x{args.size}x{args.classes}, sigma_xy 100, sigma_rgb 15, float32")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    try:
        import numba

        if args.threads:
            numba.set_num_threads(args.threads)
        print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, layer ", end="")
    except ImportError:
        numba = None
        print("numba not importable: torch path only")
    if args.threads:
        torch.set_num_threads(args.threads)

    lattices = crf.dense_crf_lattices(images)
    if numba is not None:
        print(f"{numba.threading_layer()}; torch threads {torch.get_num_threads()}")
    build = measure({"build": lambda: crf.dense_crf_lattices(images)}, max(1, args.repeats // 3))["build"]
    print(f"lattice construction: {1000 * build[0]:.1f} ms wall (min {1000 * build[2]:.1f}), {1000 * build[1]:.1f} ms cpu; "
          f"{lattices[0].num_vertices} lattice points, calibration x{lattices[0].scale:.3f}")

    leaf = probs.clone().requires_grad_()

    def ours():
        leaf.grad = None
        crf.dense_crf_loss(leaf, lattices=lattices).backward()

    def two_step():
        # The peer: the pixels-first filter, then loss and gradient in numpy (W~ symmetric).
        segmentation = np.ascontiguousarray(probs[0].reshape(args.classes, -1).numpy().T)
        filtered = lattices[0].filter(segmentation)
        degree = lattices[0].degree.astype(np.float32)
        loss = float((segmentation.sum(1) * degree).sum() - (segmentation * filtered).sum())
        return loss, (degree[:, None] - 2 * filtered).T

    def plain_torch():
        kernels = crf._numba_kernels
        crf._numba_kernels = lambda: None
        try:
            ours()
        finally:
            crf._numba_kernels = kernels

    functions = {"ours (fused numba)": ours}
    if numba is not None:
        functions["peer: numba filter + numpy loss"] = two_step
    functions["peer: plain torch"] = plain_torch
    results = measure(functions, args.repeats)
    reference = results["ours (fused numba)"]
    for name, (wall, cpu, best) in results.items():
        ratio = "" if name.startswith("ours") else f"  ours/peer {reference[0] / wall:.3f} wall, {reference[1] / cpu:.3f} cpu"
        print(f"loss + gradient, {name}: {1000 * wall:.1f} ms wall (min {1000 * best:.1f}), {1000 * cpu:.1f} ms cpu{ratio}")
    print(f"goal <= 30 ms (prebuilt lattice): ours {1000 * reference[0]:.1f} ms wall, {1000 * reference[1]:.1f} ms cpu; "
          f"lattice + loss + gradient (no reuse): {1000 * (build[0] + reference[0]):.1f} ms wall")
    # Same results: the fused path and the peer compute the same operator (float32 rounding).
    loss = crf.dense_crf_loss(probs, lattices=lattices, reduction="sum").item()
    if numba is not None:
        peer_loss, peer_grad = two_step()
        leaf.grad = None
        crf.dense_crf_loss(leaf, lattices=lattices, reduction="sum").backward()
        gap = np.abs(leaf.grad[0].reshape(args.classes, -1).numpy() - peer_grad).max() / np.abs(peer_grad).max()
        print(f"loss ours {loss:.7g}, peer {peer_loss:.7g} (relative gap {abs(loss - peer_loss) / abs(peer_loss):.1e}); "
              f"max gradient gap {gap:.1e} of max |grad|")
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
