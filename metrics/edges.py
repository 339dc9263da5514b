"""BSDS-style boundary benchmark: precision/recall over thresholds, ODS, OIS, AP, R50.

Protocol (BSDS500 benchmark, Arbelaez et al. TPAMI 2011, as packaged by P. Dollar's
Structured Edge toolbox ``edgesEvalImg.m`` / ``edgesEvalDir.m``):

* thresholds ``linspace(1/(K+1), 1 - 1/(K+1), K)`` with K = 99; the edge map (values in
  [0, 1], 1 = edge) is binarised with ``E >= max(eps, t)`` and thinned with
  ``bwmorph(E, 'thin', inf)`` (here :func:`skimage.morphology.thin`, the same Guo-Hall
  lookup tables iterated until nothing changes);
* each binarised map is matched to *each* ground truth with ``correspondPixels``
  (:func:`correspond_pixels`): a minimum-cost bipartite matching between edge pixels no
  farther apart than ``max_dist * sqrt(H^2 + W^2)`` pixels, where leaving a pixel
  unmatched costs ``outlier_cost`` times that radius;
* per image and threshold: ``cntR`` = matched GT pixels summed over the GTs,
  ``sumR`` = GT pixels summed over the GTs, ``cntP`` = predicted pixels matched to at
  least one GT, ``sumP`` = predicted pixels;
* ODS: counts summed over the dataset, ``R = cntR / sumR``, ``P = cntP / sumP``, and
  the best F over a 100-point linear interpolation between adjacent thresholds
  (``findBestRPF``); OIS: per image the counts at its argmax-F threshold (no
  interpolation), summed over images; AP: unique recalls, ``interp1(R, P, 0:0.01:1)``,
  NaNs dropped, sum / 100 (the toolbox's own comment says /101; kept as published); R50:
  recall at 50 % precision (``interp1(P, R, max(P_min, 0.5))``).

Correspondence. ``correspondPixels`` (``match.cc``) solves the assignment with Goldberg's
CSA on a graph whose outlier edges are drawn at random (degree 6), so it is not
deterministic (pyEdgeEval repeats differ by a pixel or two). Here the same objective,
``sum_matched rint(100 d) + ceil(100 * outlier cost) * (#unmatched-pred +
#unmatched-GT + #matched)`` over the matchable pixels, is minimised *exactly* with every
outlier option available: each predicted pixel is assigned either to a GT pixel within the
radius (cost ``rint(100 d)``) or to its own "unmatched" node (cost ``ceil(100 * outlier
cost)``), which is the same objective, solved by successive shortest augmenting paths
with integer dual potentials (the Jonker-Volgenant / Crouse scheme of
:func:`scipy.optimize.linear_sum_assignment`, on the sparse graph; compiled with numba in
``metrics/_edges_kernels.py``). Same input, same output. The tests check optimality
against a dense :func:`scipy.optimize.linear_sum_assignment` of the full BSDS graph with
outlier nodes, and the counts against pyEdgeEval (ours match as many pixels or up to
two more, at equal or lower cost). Where several matchings share the optimal cost the one
chosen may differ from CSA's; ODS/OIS/AP agree with pyEdgeEval to < 0.001 on BSDS.

Thinning uses the Guo-Hall tables iterated until a whole iteration changes nothing, which
equals :func:`skimage.morphology.thin` (tested) and MATLAB's ``'thin', inf``. pyEdgeEval's
``binary_thin`` stops as soon as one sub-iteration changes nothing, which leaves a few
extra pixels on some maps (87 pixels over 3 x 99 Sobel maps); this is the main source of
the remaining small ODS difference.

Speed-ups that keep the result exact: a threshold whose thinned map equals the previous
threshold's reuses its counts; matching and thinning are compiled loops; images are
evaluated in parallel processes (``workers``).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from metrics import _checks
from metrics import _edges_kernels as _kernels

__all__ = [
    "correspond_pixels",
    "evaluate_image",
    "boundary_benchmark",
    "summarize_counts",
    "bsds_thresholds",
    "thin_edges",
    "load_bsds_ground_truth",
    "sobel_edges",
    "canny_edges",
    "run_bsds",
]

_MULTIPLIER = 100  # match.cc: integer costs are distances times 100


# Bounds on the benchmark's options: beyond them the answer does not change (a radius past a
# tenth of the diagonal matches everything with everything; 1000 thresholds resolve any PR curve
# far below an annotator's disagreement) while time and memory grow without bound (the matching
# graph has O(radius^2) edges per pixel; each threshold is a full matching).
MAX_THRESHOLDS = 1000
MAX_DIST_LIMIT = 0.1


def _check_max_dist(max_dist: Any) -> float:
    radius = _checks.check_positive(max_dist, "max_dist")
    if radius > MAX_DIST_LIMIT:
        raise ValueError(f"max_dist: expected a fraction of the image diagonal in (0, {MAX_DIST_LIMIT}] "
                         f"(0.0075 for BSDS, 0.011 for NYUD), got {max_dist!r}")
    return radius


def bsds_thresholds(count: int) -> np.ndarray:
    """``linspace(1/(K+1), 1 - 1/(K+1), K)``, the thresholds of ``edgesEvalImg``."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"thresholds: expected a positive integer count or an array, got {count!r}")
    if count > MAX_THRESHOLDS:
        raise ValueError(f"thresholds: expected a count of at most {MAX_THRESHOLDS} (99 in BSDS), got {count!r}")
    return np.linspace(1.0 / (count + 1), 1.0 - 1.0 / (count + 1), int(count))


def thin_edges(edges: np.ndarray) -> np.ndarray:
    """``bwmorph(edges, 'thin', inf)``: Guo-Hall thinning iterated until nothing changes."""
    array = _checks.to_numpy(edges, "edges")
    _checks.check_ndim(array, "edges", 2, "(H, W)")
    return _kernels.thin(array.astype(bool))


def _offsets(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reach = int(math.ceil(radius))
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    squared = dy**2 + dx**2
    keep = squared <= radius * radius  # match.cc skips d2 > maxDist^2
    costs = np.rint(np.sqrt(squared[keep]) * _MULTIPLIER).astype(np.int64)
    return dy[keep].astype(np.int64), dx[keep].astype(np.int64), costs


def _match(pred: np.ndarray, gt: np.ndarray, max_dist: float, outlier_cost: float):
    """Matched-pixel masks and the match.cc cost for two boolean edge maps."""
    height, width = pred.shape
    radius = max_dist * math.hypot(height, width)
    outlier = int(math.ceil(outlier_cost * radius * _MULTIPLIER))  # match.cc: ow
    off_y, off_x, off_cost = _offsets(radius)
    pred_partner, gt_partner = _kernels._match_kernel(
        np.ascontiguousarray(pred, dtype=np.bool_), np.ascontiguousarray(gt, dtype=np.bool_),
        off_y, off_x, off_cost, np.int64(outlier))
    pred_mask = (pred_partner >= 0).reshape(pred.shape)
    gt_mask = (gt_partner >= 0).reshape(gt.shape)
    source = np.flatnonzero(pred_partner >= 0)
    target = pred_partner[source]
    distance = float(np.hypot(source // width - target // width, source % width - target % width).sum())
    # match.cc's returned cost: each unmatched pixel of either map costs the outlier cost
    # in pixels, each matched pair its Euclidean distance.
    unmatched = int(pred.sum() - pred_mask.sum() + gt.sum() - gt_mask.sum())
    return pred_mask, gt_mask, distance + unmatched * outlier_cost * radius


def _binary_map(x: Any, name: str) -> np.ndarray:
    array = _checks.prediction(x, name)
    _checks.check_ndim(array, name, 2, "(H, W)")
    _checks.check_binary(array, name)
    return array.astype(bool)


def correspond_pixels(pred: Any, gt: Any, *, max_dist: float = 0.0075,
                      outlier_cost: float = 100.0) -> tuple[np.ndarray, np.ndarray, float]:
    """BSDS ``correspondPixels``: optimal one-to-one matching of two binary edge maps.

    Args:
        pred: binary edge map ``(H, W)`` (bool or {0, 1}).
        gt: binary edge map of the same shape.
        max_dist: matching radius as a fraction of the image diagonal (0.0075 for BSDS,
            about 4.3 px at 481 x 321).
        outlier_cost: cost of an unmatched pixel, in units of the radius (> 1, 100 in BSDS).

    Returns:
        ``(matched_pred, matched_gt, cost)``: bool masks of the matched pixels of each map
        and the total cost in pixels (``match.cc``'s return value, integer costs / 100).
        ``matched_pred.sum() == matched_gt.sum()``.
    """
    pred_map, gt_map = _binary_map(pred, "pred"), _binary_map(gt, "gt")
    _checks.check_same_shape(pred_map, gt_map, "pred", "gt")
    radius = _check_max_dist(max_dist)
    cost = _checks.check_positive(outlier_cost, "outlier_cost")
    if cost <= 1:
        raise ValueError(f"outlier_cost: expected a number > 1 (match.cc requires outlierCost > maxDist), got {outlier_cost!r}")
    return _match(pred_map, gt_map, radius, cost)


def _evaluate_counts(pred: np.ndarray, gts: list[np.ndarray], thresholds: np.ndarray, max_dist: float,
                     thin: bool) -> np.ndarray:
    counts = np.zeros((thresholds.size, 4), dtype=np.int64)
    sum_r = int(sum(int(g.sum()) for g in gts))
    previous: np.ndarray | None = None
    for k, threshold in enumerate(thresholds):
        edges = pred >= max(np.finfo(np.float64).eps, threshold)
        if thin:
            edges = _kernels.thin(edges)
        if previous is not None and np.array_equal(edges, previous):
            counts[k] = counts[k - 1]
            continue
        matched_any = np.zeros(pred.shape, dtype=bool)
        count_r = 0
        for gt in gts:
            matched_pred, matched_gt, _ = _match(edges, gt, max_dist, 100.0)
            matched_any |= matched_pred
            count_r += int(matched_gt.sum())
        counts[k] = (count_r, sum_r, int(matched_any.sum()), int(edges.sum()))
        previous = edges
    return counts


def _check_edge_map(pred: Any, name: str) -> np.ndarray:
    array = _checks.prediction(pred, name)
    _checks.check_ndim(array, name, 2, "(H, W)")
    _checks.check_finite(array, name)
    _checks.check_range(array, name, 0.0, 1.0)
    return array.astype(np.float64)


def _check_gts(gts: Any, shape: tuple[int, ...], name: str) -> list[np.ndarray]:
    if isinstance(gts, np.ndarray) or type(gts).__module__.startswith("torch"):
        gts = list(_checks.to_numpy(gts, name)) if _checks.to_numpy(gts, name).ndim == 3 else [gts]
    gts = list(gts)
    if not gts:
        raise ValueError(f"{name}: expected at least one ground-truth map, got none")
    maps = []
    for g, gt in enumerate(gts):
        gt_map = _binary_map(gt, f"{name}[{g}]")
        if gt_map.shape != shape:
            raise ValueError(f"{name}[{g}]: expected shape {shape} like its prediction, got {gt_map.shape}")
        maps.append(gt_map)
    return maps


def _thresholds(thresholds: Any) -> np.ndarray:
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        return bsds_thresholds(int(thresholds))
    values = _checks.to_numpy(thresholds, "thresholds").astype(np.float64)
    if values.ndim != 1 or values.size == 0 or values.size > MAX_THRESHOLDS:
        raise ValueError(f"thresholds: expected a count or a non-empty 1-D array of at most {MAX_THRESHOLDS} "
                         f"values, got shape {values.shape}")
    _checks.check_finite(values, "thresholds")
    _checks.check_range(values, "thresholds", 0.0, 1.0)
    if np.any(np.diff(values) <= 0):
        raise ValueError(f"thresholds: expected strictly increasing values, got {values.tolist()}")
    return values


def evaluate_image(pred: Any, gts: Any, *, thresholds: Any = 99, max_dist: float = 0.0075,
                   thin: bool = True) -> np.ndarray:
    """Per-threshold counts of one image (``edgesEvalImg``).

    Args:
        pred: edge strength ``(H, W)`` in [0, 1] (1 = edge).
        gts: the image's ground-truth boundary maps (list of binary ``(H, W)`` or ``(G, H, W)``).

    Returns:
        int64 ``(K, 4)``: columns ``cntR, sumR, cntP, sumP``.
    """
    pred_map = _check_edge_map(pred, "pred")
    gt_maps = _check_gts(gts, pred_map.shape, "gts")
    radius = _check_max_dist(max_dist)
    return _evaluate_counts(pred_map, gt_maps, _thresholds(thresholds), radius, bool(thin))


def _compute_rpf(cnt_r, sum_r, cnt_p, sum_p):
    eps = np.finfo(np.float64).eps
    recall = cnt_r / np.maximum(eps, sum_r)
    precision = cnt_p / np.maximum(eps, sum_p)
    f = 2 * precision * recall / np.maximum(eps, precision + recall)
    return recall, precision, f


def _find_best_rpf(thresholds, recall, precision):
    """``findBestRPF``: best F on 100-point linear interpolations between thresholds."""
    eps = np.finfo(np.float64).eps
    if thresholds.size == 1:
        f = 2 * precision[0] * recall[0] / max(eps, precision[0] + recall[0])
        return float(recall[0]), float(precision[0]), float(f), float(thresholds[0])
    a = np.linspace(0, 1, 100)
    b = 1 - a
    best = (-1.0, 0.0, 0.0, 0.0)
    for j in range(1, thresholds.size):
        rj = recall[j] * a + recall[j - 1] * b
        pj = precision[j] * a + precision[j - 1] * b
        tj = thresholds[j] * a + thresholds[j - 1] * b
        fj = 2 * pj * rj / np.maximum(eps, pj + rj)
        k = int(np.argmax(fj))
        if fj[k] > best[0]:
            best = (float(fj[k]), float(rj[k]), float(pj[k]), float(tj[k]))
    return best[1], best[2], best[0], best[3]


def summarize_counts(counts: Any, thresholds: Any = 99) -> dict[str, Any]:
    """Dataset scores from per-image counts (``edgesEvalDir``).

    Args:
        counts: ``(N, K, 4)`` counts (``cntR, sumR, cntP, sumP``) from :func:`evaluate_image`.
        thresholds: the K thresholds (or their count).

    Returns:
        dict with ``ods``, ``ods_precision``, ``ods_recall``, ``ods_threshold``, ``ois``,
        ``ois_precision``, ``ois_recall``, ``ap``, ``r50``, the dataset curve
        ``thresholds``, ``recall``, ``precision``, ``f`` and ``num_images``.
    """
    values = _checks.to_numpy(counts, "counts").astype(np.float64)
    thresholds = _thresholds(thresholds)
    if values.ndim != 3 or values.shape[1:] != (thresholds.size, 4) or values.shape[0] == 0:
        raise ValueError(f"counts: expected shape (N, {thresholds.size}, 4) with N >= 1, got {values.shape}")
    total = values.sum(axis=0)
    recall, precision, f = _compute_rpf(*total.T)
    ods_r, ods_p, ods_f, ods_t = _find_best_rpf(thresholds, recall, precision)
    best = np.zeros(4)
    for image in values:
        _, _, f_image = _compute_rpf(*image.T)
        best += image[int(np.argmax(f_image))]
    ois_r, ois_p, ois_f = (float(v) for v in _compute_rpf(*best))
    # AP: MATLAB's [~, k] = unique(R) keeps the first occurrence (R2013a+), as numpy does.
    unique_r, first = np.unique(recall, return_index=True)
    ap = 0.0
    if unique_r.size > 1:
        grid = np.arange(101) / 100.0
        inside = (grid >= unique_r[0]) & (grid <= unique_r[-1])  # interp1 gives NaN outside
        ap = float(np.interp(grid[inside], unique_r, precision[first]).sum() / 100.0)
    unique_p, first_p = np.unique(precision, return_index=True)
    if unique_p.size > 1:
        query = max(unique_p[0], 0.5)
        r50 = float(np.interp(query, unique_p, recall[first_p])) if query <= unique_p[-1] else float("nan")
    else:
        r50 = float(recall[first_p[0]])
    return {
        "ods": ods_f, "ods_precision": ods_p, "ods_recall": ods_r, "ods_threshold": ods_t,
        "ois": ois_f, "ois_precision": ois_p, "ois_recall": ois_r,
        "ap": ap, "r50": r50,
        "thresholds": thresholds, "recall": recall, "precision": precision, "f": f,
        "num_images": int(values.shape[0]),
    }


def _evaluate_job(job):
    pred, gts, thresholds, max_dist, thin = job
    return _evaluate_counts(pred, gts, thresholds, max_dist, thin)


def boundary_benchmark(preds: Sequence[Any], gts_per_image: Sequence[Any], *, thresholds: Any = 99,
                       max_dist: float = 0.0075, thin: bool = True, workers: int = 1) -> dict[str, Any]:
    """BSDS boundary benchmark of a set of edge maps (ODS, OIS, AP, R50, PR curve).

    Args:
        preds: one edge map per image, ``(H, W)`` floats in [0, 1], 1 = edge (PNG / 255 in
            the MATLAB toolbox; apply NMS yourself if your detector needs it).
        gts_per_image: for each image, its ground-truth boundary maps (BSDS: the
            ``Boundaries`` of the 4-9 annotators), binary, same shape as the prediction.
        thresholds: number K of thresholds (99) or an increasing array in [0, 1].
        max_dist: matching tolerance as a fraction of the diagonal (0.0075; NYUD uses 0.011).
        thin: thin each binarised map (``bwmorph thin inf``) before matching.
        workers: number of processes across images (1 = in this process).

    Returns:
        the dict of :func:`summarize_counts` plus ``counts`` (``(N, K, 4)``).

    Raises:
        ValueError: empty input, different numbers of predictions and GT lists, shape
        mismatches, values outside [0, 1], NaN.
    """
    preds = list(preds) if not isinstance(preds, np.ndarray) or preds.ndim == 3 else [preds]
    gts_per_image = list(gts_per_image)
    if not preds:
        raise ValueError("preds: expected at least one edge map, got none")
    if len(preds) != len(gts_per_image):
        raise ValueError(f"preds and gts_per_image must have the same length, got {len(preds)} and {len(gts_per_image)}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    values = _thresholds(thresholds)
    radius = _check_max_dist(max_dist)
    jobs = []
    for i, (pred, gts) in enumerate(zip(preds, gts_per_image)):
        pred_map = _check_edge_map(pred, f"preds[{i}]")
        jobs.append((pred_map, _check_gts(gts, pred_map.shape, f"gts_per_image[{i}]"), values, radius, bool(thin)))
    if workers == 1 or len(jobs) == 1:
        counts = [_evaluate_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            counts = list(pool.map(_evaluate_job, jobs, chunksize=1))
    stacked = np.stack(counts)
    summary = summarize_counts(stacked, values)
    summary["counts"] = stacked
    return summary


# --- BSDS500 data and simple detectors ------------------------------------------------

def load_bsds_ground_truth(path: str | os.PathLike) -> list[np.ndarray]:
    """The ``Boundaries`` maps (uint8 {0, 1}) of a BSDS500 ``groundTruth/*.mat`` file."""
    from scipy.io import loadmat

    try:
        cells = loadmat(str(path), squeeze_me=False)["groundTruth"]
    except Exception as error:
        raise ValueError(f"{path}: not a BSDS500 groundTruth .mat file ({error})") from error
    return [np.asarray(cells[0, k]["Boundaries"][0, 0], dtype=np.uint8) for k in range(cells.shape[1])]


def sobel_edges(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grey image, divided by its maximum (in [0, 1])."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    grey = rgb2gray(image) if image.ndim == 3 else image.astype(np.float64)
    magnitude = sobel(grey)
    peak = magnitude.max()
    return magnitude / peak if peak > 0 else magnitude


def canny_edges(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Binary Canny edges (skimage, ``sigma=2``) as a 0/1 float map."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    grey = rgb2gray(image) if image.ndim == 3 else image.astype(np.float64)
    return canny(grey, sigma=sigma).astype(np.float64)


_DETECTORS = {"sobel": sobel_edges, "canny": canny_edges}


def _bsds_job(job):
    image_path, gt_path, detector, thresholds, max_dist = job
    from skimage.io import imread

    pred = _DETECTORS[detector](imread(image_path))
    return _evaluate_counts(pred, [g.astype(bool) for g in load_bsds_ground_truth(gt_path)],
                            thresholds, max_dist, True)


def run_bsds(root: str | os.PathLike, *, split: str = "val", detector: str = "sobel", workers: int = 1,
             limit: int | None = None, thresholds: int = 99) -> dict[str, Any]:
    """Run the BSDS500 boundary benchmark of a simple detector on one split.

    Args:
        root: BSDS500 folder holding ``data/images/<split>/*.jpg`` and
            ``data/groundTruth/<split>/*.mat``.
        split: ``"val"``, ``"test"`` or ``"train"``.
        detector: ``"sobel"`` (normalised gradient magnitude) or ``"canny"``.
        workers: processes across images.
        limit: evaluate only the first ``limit`` images (sorted by name).

    Returns:
        the summary dict (``ods``, ``ois``, ``ap``, ``r50``, ... as
        :func:`summarize_counts`) plus ``split``, ``detector`` and ``images``.
    """
    _checks.check_choice(detector, "detector", sorted(_DETECTORS))
    base = Path(root)
    gt_dir = base / "data" / "groundTruth" / split
    image_dir = base / "data" / "images" / split
    if not gt_dir.is_dir() or not image_dir.is_dir():
        raise ValueError(f"root: expected {image_dir} and {gt_dir} (BSDS500 layout), not found")
    names = sorted(p.stem for p in gt_dir.glob("*.mat"))
    if limit is not None:
        names = names[:limit]
    if not names:
        raise ValueError(f"root: no ground truth found in {gt_dir}")
    missing = [n for n in names if not (image_dir / f"{n}.jpg").is_file()]
    if missing:
        raise ValueError(f"root: images missing for {missing[:5]} in {image_dir}")
    values = bsds_thresholds(thresholds)
    jobs = [(image_dir / f"{n}.jpg", gt_dir / f"{n}.mat", detector, values, 0.0075) for n in names]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            counts = list(pool.map(_bsds_job, jobs, chunksize=1))
    else:
        counts = [_bsds_job(job) for job in jobs]
    summary = summarize_counts(np.stack(counts), values)
    summary.update(split=split, detector=detector, images=names, counts=np.stack(counts))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m metrics.edges --bsds ROOT --split val --detector sobel -j N``."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m metrics.edges",
                                     description="BSDS500 boundary benchmark (ODS/OIS/AP) of a simple edge detector")
    parser.add_argument("--bsds", required=True, help="BSDS500 root (with data/images and data/groundTruth)")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--detector", default="sobel", choices=sorted(_DETECTORS))
    parser.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--thresholds", type=int, default=99)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run_bsds(args.bsds, split=args.split, detector=args.detector, workers=args.workers,
                      limit=args.limit, thresholds=args.thresholds)
    elapsed = time.perf_counter() - start
    print(f"BSDS500 {args.split} ({result['num_images']} images), detector={args.detector}, "
          f"{args.thresholds} thresholds, {args.workers} workers, {elapsed:.1f} s")
    print(f"ODS={result['ods']:.4f} (P={result['ods_precision']:.4f} R={result['ods_recall']:.4f} "
          f"t={result['ods_threshold']:.3f})  OIS={result['ois']:.4f}  AP={result['ap']:.4f}  R50={result['r50']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
