"""Speed and agreement of the boundary benchmark: metrics.edges vs pyEdgeEval.

Runs both on the same BSDS500 val image(s) with the Sobel detector (99 thresholds, all
ground truths, thinning, maxDist 0.0075) and prints wall times, the speed ratio and the
ODS / OIS / AP of both (pyEdgeEval's ``AUC`` field is the BSDS AP; its ``AP`` field is a
different interpolation and is printed for reference only).

    python benchmarks/bench_boundary.py --bsds ../shared/data/bsds500 --images 1 -j 1

pyEdgeEval is optional (``pip install pyedgeeval``, needs a C++ compiler); without it only
our timing is printed. Its per-image work runs in this process (one core) unless ``-j``
is given, in which case both use ``-j`` processes across images.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics import edges  # noqa: E402


def load(root: Path, count: int):
    from skimage.io import imread

    base = root / "data"
    names = sorted(p.stem for p in (base / "groundTruth" / "val").glob("*.mat"))[:count]
    preds = [edges.sobel_edges(imread(base / "images" / "val" / f"{n}.jpg")) for n in names]
    gts = [[g.astype(bool) for g in edges.load_bsds_ground_truth(base / "groundTruth" / "val" / f"{n}.mat")]
           for n in names]
    return names, preds, gts


def _pyedgeeval_counts(job):
    from pyEdgeEval.common.binary_label.evaluate_boundaries import evaluate_boundaries_threshold_multiple_gts

    pred, gts, thresholds = job
    return evaluate_boundaries_threshold_multiple_gts(thresholds, pred, gts, max_dist=0.0075, apply_thinning=True)


def run_pyedgeeval(preds, gts, thresholds, workers):
    from pyEdgeEval.common.binary_label.calculate_metrics import calculate_metrics

    jobs = [(p, g, thresholds) for p, g in zip(preds, gts)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            counts = list(pool.map(_pyedgeeval_counts, jobs))
    else:
        counts = [_pyedgeeval_counts(job) for job in jobs]
    samples = [{"index": i, "name": str(i)} for i in range(len(jobs))]
    _, _, overall = calculate_metrics(lambda s: counts[s["index"]], len(thresholds), samples, nproc=1)
    return overall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bsds500"))
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("-j", "--workers", type=int, default=1)
    parser.add_argument("--thresholds", type=int, default=99)
    parser.add_argument("--skip-reference", action="store_true", help="do not run pyEdgeEval")
    args = parser.parse_args()
    names, preds, gts = load(Path(args.bsds), args.images)
    thresholds = edges.bsds_thresholds(args.thresholds)
    # compile the numba kernels outside the timing (cached on disk after the first run)
    edges.boundary_benchmark([preds[0][:40, :40]], [[g[:40, :40] for g in gts[0]]], thresholds=2)
    start = time.perf_counter()
    ours = edges.boundary_benchmark(preds, gts, thresholds=args.thresholds, workers=args.workers)
    ours_time = time.perf_counter() - start
    print(f"images: {len(names)} ({', '.join(names[:5])}{'...' if len(names) > 5 else ''}), "
          f"{args.thresholds} thresholds, {sum(len(g) for g in gts)} ground truths, {args.workers} worker(s)")
    print(f"ours      : {ours_time:8.2f} s  ODS={ours['ods']:.4f} OIS={ours['ois']:.4f} AP={ours['ap']:.4f} "
          f"R50={ours['r50']:.4f}")
    try:
        import pyEdgeEval  # noqa: F401
    except ImportError:
        print("pyEdgeEval: not installed (pip install pyedgeeval); no reference timing")
        return 0
    if args.skip_reference:
        return 0
    start = time.perf_counter()
    reference = run_pyedgeeval(preds, gts, thresholds, args.workers)
    reference_time = time.perf_counter() - start
    print(f"pyEdgeEval: {reference_time:8.2f} s  ODS={reference['ODS_f1']:.4f} OIS={reference['OIS_f1']:.4f} "
          f"AP(AUC)={reference['AUC']:.4f} (its AP field: {reference['AP']:.4f})")
    print(f"speed-up  : {reference_time / ours_time:.1f}x; |dODS|={abs(ours['ods'] - reference['ODS_f1']):.4f} "
          f"|dOIS|={abs(ours['ois'] - reference['OIS_f1']):.4f} |dAP|={abs(ours['ap'] - reference['AUC']):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
