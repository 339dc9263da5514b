"""Table 1 of Toso et al. (NeurIPS 2019): tracker fusion by a learned sum of RBFs (a re-implementation:
there is no public code and the supplement with the exact model is unavailable).

Model (Sec. 4 as read here). Every candidate tracker k gives a box per frame; its two corners
(top-left, bottom-right) are predicted independently, each as the minimiser of

    E(p) = -sum_k a_k(t) exp(-||p - c_k||^2 / (2 s_{k,corner}^2)),     a_k(t) = exp(alpha_k + beta_k t / 100)

where c_k is tracker k's corner after a learned scale correction of its box about its centre
(width and height factors exp(g_k)), s_{k,corner} a learned width per tracker and corner, and t the
frame index since the tracker's initialisation (temporal weights discount drifting trackers).
Coordinates are pixels, centred per frame on the median candidate centre (taken from the candidates,
never from the ground truth; a translation, which changes neither the Hessian nor the gradient). The
energy is posed in pixels because the damping lambda = 0.1 is a fixed number in the paper's units
(VOT regions are pixels): rescaling the coordinates by s scales the Hessian by 1/s^2 and so decides
whether lambda matters. (An earlier version divided by the median box size, about 30-110 px: the
smallest Hessian eigenvalue met in training was then about 20, 200 times lambda, so damping changed
nothing and the undamped method trained exactly as well: 0.9377 vs 0.9375 IoU at mini. In pixels the
smallest eigenvalue met is about 1e-3 and the median about 1e-2.) Initial widths 20 px (the paper asks
for initially broad components), weights 1, scale corrections 1. L-BFGS starts from the lowest-energy
corrected candidate, followed by one damped Newton step; the loss is the L1 distance (px) of the two
corners to the ground truth, averaged over a mini-batch of frames; gradients through the minimiser by
the damped implicit gradient (lambda = 0.1, row "Our fusion (damped)") or the undamped one (lambda = 0,
row "Samuel et al. [1] (undamped)"; when training fails -- a minimisation error, a non-finite
gradient or weight, or a final training loss above the initial one -- the row records "did not
converge" instead of a number). Implicit gradients are batched over all frames of a mini-batch.

Optimiser. The paper trains by "stochastic subgradient descent" and says [1] could sometimes be made
to converge by "a careful tuning of step sizes"; for the toy it rejects adaptive methods (Adam,
Adadelta) as hiding the volatility. Columns "frames/sequences assigned at random" use SGD with
momentum 0.9 and lr 0.005 for both methods (settings ``optimizer``, ``lr``, ``momentum``); 0.005 was
chosen on the damped method alone in one preliminary run (seed 0, generated data, frames split, before
the simulator's scale bias was made symmetric: lr 0.005 reached the IoU Adam reaches, 0.936, and lr
0.02 gave 0.906), never on test numbers of the undamped one. Where the Hessian is flatter than lambda the undamped
gradient is larger by about (H + 0.1) / H, so at one learning rate the undamped method takes larger
steps; two extra columns on generated data (frames split; setting ``extra_optimizers``) show what
the step size and the optimiser do: "..., SGD lr 0.02" and "..., Adam lr 0.02" (Adam divides each
weight's step by the running RMS of its gradient, so a larger gradient moves the weights no further:
it was the earlier protocol here). Evidence recorded along training for both methods
(records with step=, plotted): the smallest eigenvalue of the 2 x 2 Hessians at the minima of the
mini-batch (the matrix Eq. 9 inverts; Eq. 10 adds 0.1), the norm of the gradient of the loss with
respect to the weights, and the training loss; summaries "smallest Hessian eigenvalue" (the smallest
met in training; negative when L-BFGS stopped where the energy is not convex), "largest gradient
norm" and "median gradient norm".

Metric: the VOT region overlap (IoU in pixels inside the image, ``metrics.tracking.overlap``),
averaged over the test frames (``average_overlap`` with no burn-in, i.e. the frame-weighted
mean). Splits (about 2/3 train, 1/3 test): column "frames assigned at random" (each frame
independently) and "sequences assigned at random" (whole sequences). Baselines: the mean and the
median of the candidates' corners, and the five best single trackers on the test frames (rows
"Tracker #1".."#5", as the paper ranks VOT2018 entries on its test partitions).

Data. Table "Table 1" at smoke/mini: generated box tracks (smooth random motion and scale change in
a 640 x 480 image) with simulated trackers. Assumptions of the simulator, all of them: a tracker's
faults are set by one weakness q ~ U[0, 1] drawn per tracker and kept across sequences (a few good
trackers, many poor, as among VOT entries); given q, the centre jitters by N(0, (0.02 + 0.30 q)^2)
box sizes per frame, drifts as a random walk of step 0.02 q box sizes, the width and height carry a
fixed log-scale bias drawn from N(0, (0.05 + 0.30 q)^2) -- as likely to over- as to underestimate the
size: the paper's "trackers that consistently underestimate the size" is not built in -- and a
per-frame log-size noise of N(0, ((0.02 + 0.30 q) / 2)^2); with probability 0.012 q per frame the
tracker fails and then stays on a wrong location 1-3 box sizes away, following the target at 30% of
its motion (no re-initialisation); every tracker starts on the ground truth. Errors are independent
between trackers given q (no shared failure modes), and nothing depends on the method trained.
Table "Table 1 (OTB ground truth)": the same simulated trackers around the real OTB ground-truth
tracks (dataset ``otb``; image size from the first frame). Table "Table 1" at full: VOT2018 with
the archived results of its entries (dataset ``vot2018``: ``list.txt``, ``<seq>/groundtruth.txt``, and
``results/<tracker>/unsupervised/<seq>/<seq>_001.txt``, VOT toolkit layout, the no-reset experiment;
see :func:`vot_set`). Polygons, of the ground truth and of the results alike, are reduced to the
tightest axis-aligned box around their vertices; a frame without a region (a toolkit code line) keeps
the tracker's last box; only trackers with results on every sequence are candidates. The
numbers at smoke/mini are ours on simulated candidates: only the orderings are judged.

Seeds. mini runs 3 seeds (a seed draws the generated tracks, the simulated trackers, the split and
the training batches), so a claim's noise is the spread over seeds and "did not converge" is
judged on three trainings, not one: a cell took 40-80 s here (generated data, one split, both
methods trained; the shared 2-core machine at a load average of about 20), so the 6 generated cells x 3
seeds take about 15 minutes there and a few on a quiet machine. smoke keeps one (tests); full runs 3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metrics.tracking import average_overlap, overlap
from suite.harness import experiment
from suite.solvers.implicit import ArgminError, argmin

from .common import DAMPED, METHOD_LAMBDA, UNDAMPED, single_thread

TABLE = "Table 1"
TABLE_OTB = "Table 1 (OTB ground truth)"
FRAMES, SEQUENCES = "frames", "sequences"
COLUMN = {FRAMES: "frames assigned at random", SEQUENCES: "sequences assigned at random"}
# Per-step records of the two trained rows: metric -> key of the training log.
STEP_CURVES = {"smallest Hessian eigenvalue (step)": "min_eig", "gradient norm (step)": "grad_norm",
               "training L1 loss (step)": "losses"}
ROW_MEAN, ROW_MEDIAN = "Mean fusion", "Median fusion"
ROW_OURS, ROW_SAMUEL, ROW_INIT = "Our fusion (damped)", "Samuel et al. [1] (undamped)", "Our fusion (before training)"
ROW_METHOD = {DAMPED: ROW_OURS, UNDAMPED: ROW_SAMUEL}
TOP = 5
METRIC = "IoU"

PROFILES = {
    "smoke": {"sequences": 3, "length": [30, 40], "trackers": 8, "steps": 20, "batch": 64, "optimizer": "sgd",
              "lr": 0.005, "momentum": 0.9, "width": 20.0, "extra_optimizers": [], "data": ["generated"],
              "seeds": [0]},
    "mini": {"sequences": 12, "length": [80, 140], "trackers": 24, "steps": 100, "batch": 192, "optimizer": "sgd",
             "lr": 0.005, "momentum": 0.9, "width": 20.0, "extra_optimizers": [["sgd", 0.02], ["adam", 0.02]],
             "data": ["generated", "otb"], "seeds": [0, 1, 2]},
    "full": {"sequences": 60, "length": [100, 300], "trackers": 72, "steps": 1000, "batch": 512, "optimizer": "sgd",
             "lr": 0.005, "momentum": 0.9, "width": 20.0, "extra_optimizers": [], "data": ["vot2018", "otb"],
             "seeds": [0, 1, 2]},
}


@dataclass
class TrackSet:
    """Ground truth and candidates of several sequences (boxes as x, y, w, h in pixels).

    Attributes:
        names: sequence names.
        gt: per sequence ``(T, 4)``.
        candidates: per sequence ``(T, K, 4)``.
        bounds: per sequence image ``(width, height)``.
        trackers: the K tracker names.
    """

    names: list
    gt: list
    candidates: list
    bounds: list
    trackers: list


# ------------------------------------------------------------------------------- data


def generate_tracks(n_sequences: int, *, length: tuple[int, int], rng: np.random.Generator,
                    bounds: tuple[int, int] = (640, 480)) -> tuple[list, list]:
    """Smooth random box tracks inside ``bounds``: ``(gt list of (T, 4), names)``."""
    width, height = bounds
    tracks, names = [], []
    for i in range(n_sequences):
        n = int(rng.integers(length[0], length[1] + 1))
        size = rng.uniform(30, 110)
        aspect = rng.uniform(0.5, 2.0)
        w, h = size * math.sqrt(aspect), size / math.sqrt(aspect)
        cx, cy = rng.uniform(w, width - w), rng.uniform(h, height - h)
        vx, vy, log_scale = rng.normal(0, 2), rng.normal(0, 2), 0.0
        boxes = []
        for _ in range(n):
            vx = 0.95 * vx + rng.normal(0, 0.8)
            vy = 0.95 * vy + rng.normal(0, 0.8)
            log_scale = 0.98 * log_scale + rng.normal(0, 0.015)
            cx, cy = cx + vx, cy + vy
            sw, sh = w * math.exp(log_scale), h * math.exp(log_scale)
            if not sw / 2 < cx < width - sw / 2:
                vx = -vx
                cx = min(max(cx, sw / 2 + 1), width - sw / 2 - 1)
            if not sh / 2 < cy < height - sh / 2:
                vy = -vy
                cy = min(max(cy, sh / 2 + 1), height - sh / 2 - 1)
            boxes.append([cx - sw / 2, cy - sh / 2, sw, sh])
        tracks.append(np.asarray(boxes))
        names.append(f"gen-{i:02d}")
    return tracks, names


def tracker_profiles(n_trackers: int, *, rng: np.random.Generator) -> list[dict]:
    """Characters of the simulated trackers (fixed across sequences).

    A weakness q ~ U[0, 1] per tracker sets all its faults together, as on VOT where a few entries
    are good and many are poor: jitter 2-32% of the box size, a log-scale bias ~ N(0, (0.05 + 0.3 q)^2)
    (symmetric: poor trackers err more in size, in either direction), random-walk drift and a failure
    rate.
    """
    profiles = []
    for _ in range(n_trackers):
        q = float(rng.uniform(0.0, 1.0))
        profiles.append({
            "noise": 0.02 + 0.30 * q,
            "scale": float(np.exp(rng.normal(0.0, 0.05 + 0.30 * q))),
            "drift": 0.02 * q,
            "failure": 0.012 * q,
        })
    return profiles


def simulate_trackers(gt: np.ndarray, profiles: list[dict], *, rng: np.random.Generator) -> np.ndarray:
    """Candidate boxes ``(T, K, 4)`` of the simulated trackers on one ground-truth track."""
    n = len(gt)
    out = np.empty((n, len(profiles), 4))
    centre = gt[:, :2] + gt[:, 2:] / 2
    size = np.sqrt(np.maximum(gt[:, 2] * gt[:, 3], 1.0))
    for k, p in enumerate(profiles):
        drift = np.cumsum(rng.normal(0, p["drift"], (n, 2)), axis=0) * size[:, None]
        jitter = rng.normal(0, p["noise"], (n, 2)) * size[:, None]
        wh = gt[:, 2:] * p["scale"] * np.exp(rng.normal(0, p["noise"] / 2, (n, 2)))
        c = centre + drift + jitter
        failed = np.flatnonzero(rng.random(n) < p["failure"])
        failed = failed[failed > 0]
        if failed.size:  # stays on a wrong location, following it loosely
            start = failed[0]
            angle = rng.uniform(0, 2 * math.pi)
            offset = rng.uniform(1.0, 3.0) * size[start] * np.array([math.cos(angle), math.sin(angle)])
            c[start:] = c[start] + offset + 0.3 * (centre[start:] - centre[start])
        c[0], wh[0] = centre[0], gt[0, 2:]  # every tracker is initialised on the ground truth
        out[:, k, :2] = c - wh / 2
        out[:, k, 2:] = wh
    return out


def simulated_set(gt_tracks: list, names: list, bounds: list, *, n_trackers: int, seed: int) -> TrackSet:
    rng = np.random.default_rng(seed)
    profiles = tracker_profiles(n_trackers, rng=rng)
    candidates = [simulate_trackers(g, profiles, rng=rng) for g in gt_tracks]
    return TrackSet(list(names), [np.asarray(g, float) for g in gt_tracks], candidates, list(bounds),
                    [f"sim-{k:02d}" for k in range(n_trackers)])


def otb_set(root: Path, *, n_trackers: int, seed: int) -> TrackSet:
    """Simulated trackers around the real OTB ground truths (``suite.data.readers.OTB``)."""
    from suite.data.readers import OTB

    dataset = OTB(root)
    gts, names, bounds = [], [], []
    for sample in dataset:
        boxes = np.asarray(sample["boxes"], float)
        boxes[:, :2] -= 1.0  # OTB stores 1-based corners
        first = np.asarray(sample["images"][0])
        gts.append(boxes)
        names.append(sample["name"])
        bounds.append((int(first.shape[1]), int(first.shape[0])))
    return simulated_set(gts, names, bounds, n_trackers=n_trackers, seed=seed)


VOT_EXPERIMENT = "unsupervised"  # VOT2018's no-reset experiment (the paper: no re-initialisation)
VOT_INIT, VOT_FAILURE, VOT_SKIPPED = 1, 2, 0  # one-number lines of a VOT result file


def vot_results_root(root: Path) -> Path | None:
    """The folder of the archived results: ``<root>/results`` (the VOT toolkit's workspace layout,
    ``results/<tracker>/<experiment>/<seq>/<seq>_001.txt``) or a sibling ``vot2018-results``; None when
    neither holds anything."""
    for candidate in (root / "results", root.parent / "vot2018-results"):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None


def read_vot_result(path: Path, *, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """One tracker's VOT result file ``<seq>_001.txt``: one line per frame.

    A line is a region -- a rectangle ``x,y,w,h`` or a polygon ``x1,y1,x2,y2,...`` (at least 3
    points; VOT2018 entries write 4) -- or one number: ``1`` the initialisation frame, ``2`` a failure,
    ``0`` a frame skipped after a failure (the toolkit's codes; in the unsupervised experiment only
    the first line is ``1``). This is what the VOT toolkit's region parser reads (one value: a special
    code, four: a rectangle, an even number above four: a polygon). The first toolkit (VOT2013-14)
    wrote the codes as ``NaN,NaN,NaN,-c``; such lines are read as code ``c``. Commas, tabs or spaces
    separate the values; ``nan`` is accepted. Polygons are reduced to the tightest axis-aligned box
    around their vertices (x = min x_i, y = min y_i, w = max x_i - min x_i, h = max y_i - min y_i), the
    conversion of the toolkit (``Polygon.convert(RegionType.RECTANGLE)``) and of
    ``suite.data.readers.polygon_to_box``, which the ground truth goes through, so results and ground
    truth stay comparable.

    Args:
        path: the result file.
        frames: the sequence's number of frames (lines expected).

    Returns:
        boxes ``(frames, 4)`` x, y, w, h in pixels (NaN where the line is a code or has NaN), and
        codes ``(frames,)`` int: the one-number code of the line, or -1 for a region.

    Raises:
        ValueError: not numbers, a count of values that is neither 1, 4 nor an even number >= 6, an
            unknown code, or a number of lines other than ``frames`` (the file and line are named).
    """
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != frames:
        raise ValueError(f"path: {path}: expected {frames} lines (one per frame), got {len(lines)}")
    boxes = np.full((frames, 4), np.nan)
    codes = np.full(frames, -1, dtype=int)
    for i, line in enumerate(lines):
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError as error:
            raise ValueError(f"path: {path}: line {i + 1}: not numbers: {line!r}") from error
        if len(values) == 1:
            if values[0] not in (VOT_INIT, VOT_FAILURE, VOT_SKIPPED):
                raise ValueError(f"path: {path}: line {i + 1}: expected a region or a code 0, 1 or 2, got {line!r}")
            codes[i] = int(values[0])
        elif len(values) == 4 and np.isnan(values[:3]).all() and -values[3] in (VOT_INIT, VOT_FAILURE, VOT_SKIPPED):
            codes[i] = int(-values[3])
        elif len(values) == 4:
            boxes[i] = values
        elif len(values) >= 6 and len(values) % 2 == 0:
            xs, ys = np.asarray(values[0::2]), np.asarray(values[1::2])
            boxes[i] = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        else:
            raise ValueError(f"path: {path}: line {i + 1}: expected 1, 4 or an even number >= 6 of values, "
                             f"got {len(values)}")
    return boxes, codes


def vot_candidates(path: Path, gt: np.ndarray) -> np.ndarray:
    """A tracker's boxes on one sequence ``(T, 4)``: its regions, the ground truth on an
    initialisation frame (and on frame 0, where every tracker starts), and on a frame without a region
    (a code or NaN) the last box it gave."""
    boxes, codes = read_vot_result(path, frames=len(gt))
    init = codes == VOT_INIT
    init[0] = True
    boxes[init] = gt[init]
    for i in range(1, len(boxes)):
        if np.isnan(boxes[i]).any():
            boxes[i] = boxes[i - 1]
    return boxes


def vot_set(root: Path) -> TrackSet:
    """VOT2018 ground truth with the archived results of its entries.

    Ground truth: ``suite.data.readers.VOT`` (``list.txt``, ``<seq>/groundtruth.txt`` polygons reduced to
    their axis-aligned bounding boxes, image size from the first frame). Candidates: for every tracker
    folder of :func:`vot_results_root` with an ``unsupervised/`` experiment,
    ``<tracker>/unsupervised/<seq>/<seq>_001.txt`` read by :func:`vot_candidates`. Only trackers with a
    result for every sequence are kept (a tracker without a sequence would have no candidate there).

    Raises:
        FileNotFoundError: no results folder. ValueError: a malformed result file (named), or no tracker
            with results for every sequence.
    """
    from suite.data.readers import VOT

    results = vot_results_root(root)
    if results is None:
        raise FileNotFoundError(
            f"VOT2018 archived tracker results not found under {root / 'results'} (expected "
            f"results/<tracker>/{VOT_EXPERIMENT}/<seq>/<seq>_001.txt as the VOT toolkit writes them)")
    dataset = VOT(root)
    sequences = [(sample["name"], np.asarray(sample["boxes"], float), np.asarray(sample["images"][0]).shape[:2])
                 for sample in dataset]
    trackers = sorted(p.name for p in results.iterdir() if (p / VOT_EXPERIMENT).is_dir()
                      and all((p / VOT_EXPERIMENT / name / f"{name}_001.txt").is_file() for name, _, _ in sequences))
    if not trackers:
        raise ValueError(f"root: {results}: no tracker has {VOT_EXPERIMENT}/<seq>/<seq>_001.txt for all "
                         f"{len(sequences)} sequences of {root / 'list.txt'}")
    gts, names, bounds, candidates = [], [], [], []
    for name, gt, (height, width) in sequences:
        per_tracker = [vot_candidates(results / t / VOT_EXPERIMENT / name / f"{name}_001.txt", gt) for t in trackers]
        gts.append(gt)
        names.append(name)
        bounds.append((int(width), int(height)))
        candidates.append(np.stack(per_tracker, 1))
    return TrackSet(names, gts, candidates, bounds, trackers)


# ------------------------------------------------------------------------------- model


def to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` x, y, w, h -> ``(..., 2, 2)`` [[x1, y1], [x2, y2]]."""
    xy, wh = boxes[..., :2], boxes[..., 2:]
    return torch.stack([xy, xy + wh], -2)


def corners_to_boxes(corners: torch.Tensor) -> torch.Tensor:
    """``(..., 2, 2)`` corners -> ``(..., 4)`` x, y, w, h (width/height of swapped corners clamp to 0)."""
    lo, hi = corners[..., 0, :], corners[..., 1, :]
    return torch.cat([lo, (hi - lo).clamp_min(0.0)], -1)


@dataclass
class Frames:
    """Flattened frames of a track set (all float64 tensors).

    candidates ``(F, K, 4)`` pixels; gt ``(F, 4)``; time ``(F,)`` frame index since initialisation;
    centre ``(F, 2)`` the per-frame origin (median of the candidates' centres) and size ``(F,)`` the
    length unit of the energy's coordinates in pixels (:func:`flatten` sets 1: the energy is in pixels);
    sequence ``(F,)`` sequence index.
    """

    candidates: torch.Tensor
    gt: torch.Tensor
    time: torch.Tensor
    centre: torch.Tensor
    size: torch.Tensor
    sequence: torch.Tensor

    def take(self, index) -> "Frames":
        return Frames(*(getattr(self, f)[index] for f in ("candidates", "gt", "time", "centre", "size", "sequence")))


def flatten(tracks: TrackSet) -> Frames:
    cand = torch.from_numpy(np.concatenate(tracks.candidates)).double()
    gt = torch.from_numpy(np.concatenate(tracks.gt)).double()
    time = torch.from_numpy(np.concatenate([np.arange(len(g)) for g in tracks.gt])).double()
    seq = torch.from_numpy(np.concatenate([np.full(len(g), i) for i, g in enumerate(tracks.gt)]))
    centres = cand[..., :2] + cand[..., 2:] / 2
    centre = centres.median(dim=1).values
    # Pixels: lambda = 0.1 is stated in the units of the problem (see the module docstring).
    size = torch.ones(len(cand), dtype=cand.dtype)
    return Frames(cand, gt, time, centre, size, seq)


class FusionModel(torch.nn.Module):
    """Per-tracker widths, temporal weights and scale corrections of the RBF fusion energy."""

    def __init__(self, n_trackers: int, *, width: float = 20.0):
        super().__init__()
        dt = torch.float64
        self.log_width = torch.nn.Parameter(torch.full((n_trackers, 2), math.log(width), dtype=dt))
        self.alpha = torch.nn.Parameter(torch.zeros(n_trackers, dtype=dt))
        self.beta = torch.nn.Parameter(torch.zeros(n_trackers, dtype=dt))
        self.log_scale = torch.nn.Parameter(torch.zeros(n_trackers, 2, dtype=dt))

    def terms(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised corrected corners ``(2F, K, 2)``, weights ``(2F, K)``, widths ``(2F, K)``;
        problem ``2f`` is frame f's top-left corner and ``2f + 1`` its bottom-right corner."""
        cand = frames.candidates
        centre = cand[..., :2] + cand[..., 2:] / 2
        wh = cand[..., 2:] * torch.exp(self.log_scale)
        corners = torch.stack([centre - wh / 2, centre + wh / 2], 2)  # (F, K, 2 corners, 2)
        norm = (corners - frames.centre[:, None, None, :]) / frames.size[:, None, None, None]
        f, k = cand.shape[:2]
        points = norm.permute(0, 2, 1, 3).reshape(2 * f, k, 2)
        weight = torch.exp(self.alpha + self.beta * frames.time[:, None] / 100.0)  # (F, K)
        weight = weight.repeat_interleave(2, dim=0)
        width = torch.exp(self.log_width).T.repeat(f, 1)  # (2F, K): corner 0, corner 1, ...
        return points, weight, width


def fusion_energy(p: torch.Tensor, points: torch.Tensor, weight: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """E(p) = -sum_k weight_k exp(-||p - points_k||^2 / (2 width_k^2)); p ``(..., P, 2)`` -> ``(..., P)``."""
    d2 = ((p.unsqueeze(-2) - points) ** 2).sum(-1)
    return -(weight * torch.exp(-d2 / (2 * width**2))).sum(-1)


def fuse(model: FusionModel, frames: Frames, *, lam: float, max_iter: int = 10, return_hessian: bool = False):
    """Fused corners in the energy's coordinates, ``(F, 2, 2)``; differentiable through Eq. (10).

    With ``return_hessian``, also the ``(2F, 2, 2)`` Hessians that the implicit gradient inverts (at the
    point of the final Newton step, one per corner problem)."""
    points, weight, width = model.terms(frames)
    y, info = argmin(fusion_energy, points.detach(), (points, weight, width), lam=lam, max_iter=max_iter,
                     warn=False, return_info=True)
    return (y.reshape(-1, 2, 2), info.hessian) if return_hessian else y.reshape(-1, 2, 2)


def gt_corners(frames: Frames) -> torch.Tensor:
    return (to_corners(frames.gt) - frames.centre[:, None, :]) / frames.size[:, None, None]


def to_pixels(corners: torch.Tensor, frames: Frames) -> torch.Tensor:
    return corners_to_boxes(corners * frames.size[:, None, None] + frames.centre[:, None, :])


OPTIMIZERS = ("sgd", "adam")


def make_optimizer(name: str, params, *, lr: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``"sgd"`` (with ``momentum``) or ``"adam"``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {name!r}")


def train(frames: Frames, *, n_trackers: int, method: str, steps: int, batch: int, lr: float,
          seed: int, optimizer: str = "sgd", momentum: float = 0.9,
          width: float = 20.0) -> tuple[FusionModel, dict]:
    """SGD (or Adam) on the L1 corner loss; returns the model and a log.

    Returns:
        ``(model, log)``; log has per-step ``losses``, ``min_eig`` (smallest eigenvalue of the mini-batch's
        Hessians at the minima), ``grad_norm`` (norm of the loss gradient over all weights), and
        ``reason`` (why training failed, or None).
    """
    torch.manual_seed(seed)
    model = FusionModel(n_trackers, width=width)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    target = gt_corners(frames)
    losses, min_eig, grad_norm, reason = [], [], [], None
    n = len(frames.gt)
    for _ in range(steps):
        index = torch.randperm(n, generator=generator)[:batch]
        part = frames.take(index)
        try:
            pred, hess = fuse(model, part, lam=METHOD_LAMBDA[method], return_hessian=True)
        except ArgminError as error:
            reason = f"minimisation failed at step {len(losses)}: {error}"
            break
        loss = (pred - target[index]).abs().sum((-1, -2)).mean()
        opt.zero_grad()
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        min_eig.append(float(torch.linalg.eigvalsh(hess).min()) if torch.isfinite(hess).all() else math.nan)
        grad_norm.append(float(grads.norm()))
        if not torch.isfinite(grads).all():
            reason = f"non-finite gradient at step {len(losses)}"
            break
        opt.step()
        losses.append(float(loss.detach()))
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            reason = f"non-finite weights after step {len(losses)}"
            break
    window = max(1, len(losses) // 5)
    if reason is None and len(losses) >= 2 and np.mean(losses[-window:]) > np.mean(losses[:window]):
        reason = f"training loss rose from {np.mean(losses[:window]):.3g} to {np.mean(losses[-window:]):.3g}"
    return model, {"losses": losses, "min_eig": min_eig, "grad_norm": grad_norm, "reason": reason}


def split(tracks: TrackSet, frames: Frames, how: str, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean train / test masks over the flattened frames (about 2/3 : 1/3)."""
    rng = np.random.default_rng(seed + 1000)
    n = len(frames.gt)
    if how == FRAMES:
        train_mask = torch.from_numpy(rng.random(n) < 2 / 3)
    elif how == SEQUENCES:
        lengths = np.array([len(g) for g in tracks.gt])
        order = rng.permutation(len(lengths))
        chosen, total = [], 0
        for i in order:  # whole sequences until about 2/3 of the frames, keeping one for testing
            if total < 2 / 3 * lengths.sum() and len(chosen) < len(lengths) - 1:
                chosen.append(i)
                total += lengths[i]
        train_mask = torch.from_numpy(np.isin(frames.sequence.numpy(), chosen))
    else:
        raise ValueError(f"how: expected {FRAMES!r} or {SEQUENCES!r}, got {how!r}")
    return train_mask, ~train_mask


def mean_iou(boxes: torch.Tensor, frames: Frames, bounds: list) -> float:
    """Frame-weighted VOT average overlap of ``boxes`` ``(F, 4)`` (no burn-in)."""
    per_sequence = []
    seq = frames.sequence.numpy()
    for s in np.unique(seq):
        mask = seq == s
        ious = overlap(boxes[mask].detach().numpy(), frames.gt[mask].numpy(), bounds=tuple(bounds[s]))
        per_sequence.append(ious)
    return average_overlap(per_sequence, burnin=0)


def evaluate(tracks: TrackSet, how: str, *, settings, seed: int, methods=(DAMPED, UNDAMPED),
             converged: dict | None = None, logs: dict | None = None, optimizer: str | None = None,
             lr: float | None = None) -> dict:
    """All rows of one split: {row: (IoU or None, note)}; ``converged`` (when given) receives
    {row: (trained without failure, why not)} and ``logs`` {row: training log of :func:`train`} for each
    trained method; ``optimizer`` and ``lr`` override ``settings["optimizer"]`` and ``settings["lr"]``."""
    frames = flatten(tracks)
    train_mask, test_mask = split(tracks, frames, how, seed=seed)
    train_frames, test = frames.take(train_mask), frames.take(test_mask)
    rows: dict = {}
    corners = to_corners(test.candidates)
    rows[ROW_MEAN] = (mean_iou(corners_to_boxes(corners.mean(1)), test, tracks.bounds), None)
    rows[ROW_MEDIAN] = (mean_iou(corners_to_boxes(corners.median(1).values), test, tracks.bounds), None)
    singles = sorted(((mean_iou(test.candidates[:, k], test, tracks.bounds), tracks.trackers[k])
                      for k in range(len(tracks.trackers))), reverse=True)
    for rank, (iou, name) in enumerate(singles[:TOP], 1):
        rows[f"Tracker #{rank}"] = (iou, f"{name} (best on the test frames)")
    k = len(tracks.trackers)
    with torch.no_grad():
        rows[ROW_INIT] = (mean_iou(to_pixels(fuse(FusionModel(k), test, lam=METHOD_LAMBDA[DAMPED]), test),
                                   test, tracks.bounds), None)
    for method in methods:
        model, log = train(train_frames, n_trackers=k, method=method, steps=settings["steps"],
                           batch=settings["batch"], lr=lr or settings["lr"], seed=seed,
                           optimizer=optimizer or settings["optimizer"], momentum=settings["momentum"],
                           width=settings["width"])
        if logs is not None:
            logs[ROW_METHOD[method]] = log
        if converged is not None:
            why = None if log["reason"] is None else f"did not converge: {log['reason']}"
            converged[ROW_METHOD[method]] = (log["reason"] is None, why)
        if log["reason"] is not None:
            rows[ROW_METHOD[method]] = (None, f"did not converge: {log['reason']}")
            continue
        try:
            with torch.no_grad():
                pred = fuse(model, test, lam=METHOD_LAMBDA[method])
        except ArgminError as error:
            rows[ROW_METHOD[method]] = (None, f"did not converge: test minimisation failed: {error}")
            if converged is not None:
                converged[ROW_METHOD[method]] = (False, rows[ROW_METHOD[method]][1])
            continue
        rows[ROW_METHOD[method]] = (mean_iou(to_pixels(pred, test), test, tracks.bounds),
                                    f"train L1 {log['losses'][0]:.3g} -> {log['losses'][-1]:.3g}")
    return rows


# ------------------------------------------------------------------------------- experiment


def _grid(settings):
    cells = [{"data": d, "split": s} for d in settings["data"] for s in (FRAMES, SEQUENCES)]
    if "generated" in settings["data"]:  # other optimisers / step sizes, on generated data, frames split
        cells += [{"data": "generated", "split": FRAMES, "optimizer": o, "lr": lr}
                  for o, lr in settings.get("extra_optimizers", [])]
    return cells


def column_of(cell) -> str:
    """The split's column, or for an extra optimiser cell "<split column>, <optimiser> lr <lr>"."""
    base = COLUMN[cell["split"]]
    if cell.get("optimizer") is None:
        return base
    return f"{base}, {'Adam' if cell['optimizer'] == 'adam' else 'SGD'} lr {cell['lr']:g}"


def _datasets(cell, settings):
    return (cell["data"],) if cell["data"] in ("otb", "vot2018") else ()


ALL_ROWS = [f"Tracker #{i}" for i in range(1, TOP + 1)] + [ROW_MEAN, ROW_MEDIAN, ROW_SAMUEL, ROW_OURS, ROW_INIT]


@experiment(
    "wibergian.table1",
    table=TABLE,
    title="Tracker fusion: learned RBF energy vs mean/median fusion and single trackers (IoU)",
    grid=_grid,
    profiles=PROFILES,
    datasets=_datasets,
    plots=lambda frame: plot_training(frame),
    protocol=__doc__.split("\n\n", 1)[1],
)
def table1(ctx, cell):
    s = ctx.settings
    data, how = cell["data"], cell["split"]
    table = TABLE_OTB if data == "otb" else TABLE
    column = column_of(cell)

    def not_run(reason):
        for row in ALL_ROWS:
            ctx.not_run(row=row, column=column, metric=METRIC, reason=reason, table=table)
        for row in (ROW_OURS, ROW_SAMUEL):
            ctx.not_run(row=row, column=column, metric="converged", reason=reason, table=table)
        return ctx.records

    if data == "generated":
        rng = np.random.default_rng(ctx.seed)
        gts, names = generate_tracks(s["sequences"], length=tuple(s["length"]), rng=rng)
        tracks = simulated_set(gts, names, [(640, 480)] * len(gts), n_trackers=s["trackers"], seed=ctx.seed)
    elif data == "otb":
        if not ctx.data.present("otb"):
            return not_run("dataset otb not present (energybench data add /path/to/otb --as otb)")
        tracks = otb_set(ctx.data.path("otb"), n_trackers=s["trackers"], seed=ctx.seed)
    elif data == "vot2018":
        if not ctx.data.present("vot2018"):
            return not_run("dataset vot2018 not present (energybench data add /path/to/vot2018 --as vot2018, "
                           "with the archived results of the 72 entries under results/)")
        root = ctx.data.path("vot2018")
        if vot_results_root(root) is None:
            return not_run(f"VOT2018 archived tracker results not found under {root}/results "
                           "(results/<tracker>/unsupervised/<seq>/<seq>_001.txt)")
        tracks = vot_set(root)
    else:
        raise ValueError(f"cell data: expected generated, otb or vot2018, got {data!r}")
    converged: dict = {}
    logs: dict = {}
    with single_thread():
        rows = evaluate(tracks, how, settings=s, seed=ctx.seed, converged=converged, logs=logs,
                        optimizer=cell.get("optimizer"), lr=cell.get("lr"))
    for row, (value, note) in rows.items():
        if value is None:
            ctx.not_run(row=row, column=column, metric=METRIC, reason=note, table=table)
        else:
            ctx.record(row=row, column=column, metric=METRIC, value=value, higher_is_better=True, note=note,
                       table=table)
    # 1 = trained without failure (the paper's "*" marks the undamped method's 0)
    for row, (ok, why) in converged.items():
        ctx.record(row=row, column=column, metric="converged", value=float(ok), higher_is_better=True, note=why,
                   table=table)
    # The evidence behind "converged": curvature at the minima and gradient size along training.
    for row, log in logs.items():
        for metric, key in STEP_CURVES.items():
            for step, value in enumerate(log[key]):
                if math.isfinite(value):
                    ctx.record(row=row, column=column, metric=metric, value=value, higher_is_better=False,
                               step=step, table=table)
        eig, norm = np.asarray(log["min_eig"], float), np.asarray(log["grad_norm"], float)
        eig, norm = eig[np.isfinite(eig)], norm[np.isfinite(norm)]
        for metric, values, reduce in (("smallest Hessian eigenvalue", eig, np.min),
                                       ("largest gradient norm", norm, np.max),
                                       ("median gradient norm", norm, np.median)):
            if values.size:
                ctx.record(row=row, column=column, metric=metric, value=float(reduce(values)),
                           higher_is_better=metric == "smallest Hessian eigenvalue", table=table)
            else:
                ctx.not_run(row=row, column=column, metric=metric, reason="no training step completed",
                            table=table)
    return ctx.records


def plot_training(frame):
    """Per table: the smallest Hessian eigenvalue at the minima (symlog), the gradient norm and the training
    loss along training, damped vs undamped, one column per split; the dotted line is lambda = 0.1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from suite.report.figures import figure_size

    figures = {}
    df = frame[frame.table.isin([TABLE, TABLE_OTB]) & frame.step.notna() & frame.value.notna()
               & frame.metric.isin(list(STEP_CURVES))]
    for table, part in df.groupby("table"):
        columns = [c for c in COLUMN.values() if c in set(part.column)]
        columns += sorted(set(part.column) - set(columns))
        # capped at the report's column: a wider figure is shown scaled down, its text with it
        fig, axes = plt.subplots(3, len(columns), figsize=figure_size(4.6, 2.5, columns=len(columns), rows=3),
                                 squeeze=False, sharex="col")
        for j, column in enumerate(columns):
            for i, metric in enumerate(STEP_CURVES):
                ax = axes[i][j]
                cur = part[(part.column == column) & (part.metric == metric)]
                for row, colour in ((ROW_OURS, "tab:blue"), (ROW_SAMUEL, "tab:red")):
                    for k, (_, run) in enumerate(cur[cur.row == row].groupby("key")):
                        run = run.sort_values("step")
                        ax.plot(run.step, run.value, color=colour, lw=0.8, alpha=0.7, label=row if k == 0 else None)
                if metric == "smallest Hessian eigenvalue (step)":
                    ax.axhline(METHOD_LAMBDA[DAMPED], color="k", ls=":", lw=1)
                    ax.set_yscale("symlog", linthresh=1e-4)
                else:
                    ax.set_yscale("log")
                ax.set_ylabel(metric.replace(" (step)", ""), fontsize=8)
                if i == 0:
                    ax.set_title(column, fontsize=9)
                    ax.legend(fontsize=7)
            axes[-1][j].set_xlabel("training step")
        fig.suptitle(table, fontsize=10)
        fig.tight_layout()
        figures["training" if table == TABLE else "training_otb"] = fig
    return figures
