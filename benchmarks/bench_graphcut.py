"""Alpha-expansion on a 321 x 321 photo with 21 labels, 5 cycles: ours (PyMaxflow) vs GCO-v3.

The problem is the one the ADM public layer solves per image (crop 321, 21 VOC classes):

* image: ``skimage.data.astronaut()`` resized to 321 x 321 (a real photo shipped with
  scikit-image);
* unary: ``-log softmax(z)`` with smooth random logits ``z`` (Gaussian-filtered noise, sigma 32
  px, scaled to a standard deviation of 20: confident, blob-shaped predictions like a trained
  network's; fixed seed). The max-flow work, hence both times, depends strongly on this
  choice (GCO here: about 9 s for this setting, 16-47 s for less confident/less smooth
  logits with the same lambda = 80), so only the ratio is meaningful;
* pairwise: :func:`suite.solvers.graphcut.grid_weights` with the public settings (8 neighbours,
  diagonals / sqrt(2), Boykov-Jolly sigma^2, lambda = GC_POTTS = 80);
* both solvers get the same integer problem, scaled as the public layer does:
  ``int(1000 * unary)`` and ``int(1000 * w)``, so energies compare exactly;
* both start from all zeros and run at most 5 cycles; both stop early after a cycle that
  changes nothing.

Energies of both labellings are evaluated by the same function (``potts_energy``). Runs
alternate (ours, GCO, ours, GCO, ...) in one process, so both see the same machine load; the
report gives the median time of each, the median of the per-pair ratios, the energy gap and the
load average (``os.getloadavg``) at the start and the end. The machine may be shared with other
jobs: compare the ratio, not the seconds.

End to end (section ``e2e``, issue 13): one ADM training step with and without ADM's
regularized loss (alpha-expansion with the scribbles as hard constraints, Eqs. 7-8; over the
mini settings' worker processes, and in this process), the loss's share of the step
(``benchmarks/adm_step.py``).

Run: ``python benchmarks/bench_graphcut.py [--repeats 5] [--size 321] [--labels 21] [--sections solver,e2e]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from suite.solvers.graphcut import NEIGHBOURHOOD_OFFSETS, _pair_slices, alpha_expansion, grid_weights, potts_energy


def make_problem(size: int = 321, num_labels: int = 21, seed: int = 0, smoothness: float = 80.0):
    from scipy.ndimage import gaussian_filter
    from skimage import data
    from skimage.transform import resize

    image = resize(data.astronaut(), (size, size), anti_aliasing=True, preserve_range=True)
    rng = np.random.default_rng(seed)
    logits = gaussian_filter(rng.standard_normal((size, size, num_labels)), sigma=(32, 32, 0))
    logits *= 20.0 / logits.std()
    logits -= logits.max(axis=2, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    unary = np.floor(1000.0 * -log_probs)
    weights = np.floor(1000.0 * grid_weights(image, smoothness=smoothness))
    return image, unary, weights


def gco_expansion(unary: np.ndarray, weights: np.ndarray, cycles: int) -> np.ndarray:
    """GCO-v3 (gco-wrapper) alpha-expansion on the same integer problem, from all zeros."""
    import gco

    height, width, num_labels = unary.shape
    index = np.arange(height * width).reshape(height, width)
    first, second, capacity = [], [], []
    for d, offset in enumerate(NEIGHBOURHOOD_OFFSETS[4 if len(weights) == 2 else 8]):
        src, dst = _pair_slices(offset, height, width)
        p, q = index[src].ravel(), index[dst].ravel()
        first.append(np.minimum(p, q))
        second.append(np.maximum(p, q))
        capacity.append(weights[d][src].ravel())
    graph = gco.GCO()
    graph.create_general_graph(height * width, num_labels, energy_is_float=False)
    graph.set_data_cost(unary.reshape(-1, num_labels).astype(np.intc))
    graph.set_all_neighbors(np.concatenate(first), np.concatenate(second), np.concatenate(capacity).astype(np.intc))
    graph.set_smooth_cost((1 - np.eye(num_labels)).astype(np.intc))
    graph.expansion(cycles)
    labels = graph.get_labels().reshape(height, width).astype(np.int64)
    graph.destroy_graph()
    return labels


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--labels", type=int, default=21)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sections", default="all", help="comma-separated: solver (vs GCO), e2e (training steps)")
    parser.add_argument("--e2e-size", type=int, default=None, help="training image side (default: ADM mini, 64)")
    parser.add_argument("--e2e-batch", type=int, default=None, help="training batch (default: ADM mini, 8)")
    parser.add_argument("--e2e-repeats", type=int, default=5)
    args = parser.parse_args()
    sections = {"solver", "e2e"} if args.sections == "all" else set(args.sections.split(","))
    if sections - {"solver", "e2e"}:
        raise ValueError(f"--sections: unknown {sorted(sections - {'solver', 'e2e'})}; expected solver, e2e")
    if "e2e" in sections:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))  # `energybench bench` runs this file by path
        from adm_step import training_step_rows

        training_step_rows(["grid-adm", "grid-adm-serial"], size=args.e2e_size, batch=args.e2e_batch,
                           repeats=args.e2e_repeats)
        print()
    if "solver" not in sections:
        return

    _, unary, weights = make_problem(args.size, args.labels)
    print(f"problem: {args.size}x{args.size}, {args.labels} labels, {args.cycles} cycles, lambda 80, int(1000x) scaling")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    try:
        import gco  # noqa: F401
    except ImportError:
        gco = None
        print("gco-wrapper not importable: no GCO comparison")
    alpha_expansion(unary[:8, :8], weights[:, :8, :8], cycles=1)  # compiles / loads the numba builder

    def timed(function):
        start = time.perf_counter()
        result = function()
        return time.perf_counter() - start, result

    ours_times, gco_times = [], []
    ours_labels = gco_labels = ours_energies = None
    for repeat in range(args.repeats):
        elapsed, (ours_labels, ours_energies) = timed(lambda: alpha_expansion(unary, weights, cycles=args.cycles))
        ours_times.append(elapsed)
        line = f"  run {repeat + 1}: ours {elapsed:.3f} s"
        if gco is not None:
            elapsed, gco_labels = timed(lambda: gco_expansion(unary, weights, args.cycles))
            gco_times.append(elapsed)
            line += f", GCO {elapsed:.3f} s, ratio {ours_times[-1] / elapsed:.3f}"
        print(line, flush=True)
    ours_energy = potts_energy(ours_labels, unary, weights)
    ours_time = statistics.median(ours_times)
    print(f"ours (PyMaxflow): median {ours_time:.3f} s  energy {ours_energy:.10g}  per cycle {ours_energies.tolist()}")
    if gco is None:
        return
    gco_energy = potts_energy(gco_labels, unary, weights)
    gco_time = statistics.median(gco_times)
    ratios = [a / b for a, b in zip(ours_times, gco_times)]
    print(f"GCO-v3 (gco-wrapper): median {gco_time:.3f} s  energy {gco_energy:.10g}")
    print(f"time ratio ours/GCO: {ours_time / gco_time:.3f} (ratio of medians); median of per-run ratios "
          f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")
    print(f"relative energy gap (ours - GCO) / GCO: {(ours_energy - gco_energy) / gco_energy:+.4%}")
    print(f"labels agreeing with GCO: {np.mean(ours_labels == gco_labels):.2%}")
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
