"""Profile settings shared by every LSM experiment: one training recipe, one model cache.

Every experiment of ``reproductions.lsm`` reads the same settings dict per profile, so a model
trained for one figure (the joint model above all) is found in the cache by every other figure:
the cache key of a model is built from :data:`TRAINING_KEYS` only (plus the model's task set,
variant and seed), never from an experiment's own options.

``full`` follows the paper (Sec. 4.1, App. B) and its public code (``frobelbest/LSM``):
pyramid channels (512, 256, 128, 64), K = (2, 4, 8, 16) basis vectors from coarse to fine,
(1, 6, 4, 3) LSM iterations per level, AdamW (0.9, 0.999), lr 3e-4 with cosine decay and no
restarts, batch 12 / 6 / 4 / 4 (interactive / video / stereo / flow), 143.2K iterations; the
paper's datasets through the registry (SBD minus the VGG benchmark's images, DAVIS-2017 ->
DAVIS-2016, FlyingThings3D with the CRL split, FlyingThings3D -> Sintel).

``mini`` keeps every part of the method and shrinks sizes so that the whole ``lsm`` profile
fits about an hour on two CPU cores: the generated ``mini-*`` sets (96 x 128 flow / stereo /
video scenes, 128 x 128 scribbled scenes), training on 64 x 64 crops (masks: the 128 x 128 scene
resized to 64 x 64, since a crop would often cut the scribbled object away), narrow pyramid
channels, the paper's K and iteration schedule, and a few hundred AdamW steps with the paper's
learning rate and cosine decay. Evaluation runs at the generated sets' native size.

Mini budget (issues 10-11: part 1 and part 2 at most 30 minutes each on 2 CPU cores), measured
by H1 on 2026-12-03 with one torch thread pinned to one core of the shared 2-core machine (other
jobs shared that core: the run got 35-50 % of it, so wall times are about twice the CPU times).

* CPU time per optimizer step (forward + backward, 64 x 64 crops, thread CPU time, mean of 10
  steps): single-task interactive 0.061 s, video 0.080 s, stereo 0.050 s, flow 0.067 s; joint
  (four tasks) 0.296 s; the joint ablation variants 0.227 s (implicit CNN), 0.329 s (without
  minimization context), 0.311 s (without projection). Wall per step in the contended runs:
  0.09-0.18 s single, 0.39 s joint, 0.24-0.50 s leave-one-out, 0.59-0.99 s ablation variants.
* One seed (seed 0), fresh cache, real samples present: part 1 (``lsm.interactive / video /
  stereo / flow / efficiency``, 46 cells) 281 s of cell time (``wall_s``), 156 s of CPU;
  part 2 (``lsm.zero_shot / ablations / subspaces``, 34 cells, on part 1's cached models)
  722 s of cell time, 258 s of CPU.
* Where the time goes: the trainings (per seed at 120 steps about 31 s of CPU for the four
  single-task models, 36 s joint, 107 s for the four leave-one-out models, 104 s for the three
  ablation variants) and the simulated user of interactive segmentation: a model that never
  reaches IoU 0.85 is run for all ``max_rounds`` = 10 rounds on each of the ``eval_limit`` = 30
  scenes, so the interactive cells that train a model are the longest (zero-shot 99 s, the three
  ablation variants 91-166 s of cell time); TV-L1 on each real flow set 14 s; every other cell
  under 10 s (real-sample evaluation of a cached model: 1-8 s a set). Baseline evaluations
  are cached across seeds (deterministic methods), so seeds 1 and 2 cost their trainings and
  LSM evaluations only.
* The whole ``lsm`` profile, 3 seeds (the learning curve seed 0 only, see ``learning_curve.py``),
  fresh cache, real samples present, ``-j 1`` on one core at one thread: part 1 (138 cells)
  561 s of cell time, 576 s wall, 412 s of CPU; part 2 (102 cells) 748 s of cell time, 756 s
  wall, 732 s of CPU; learning curve (24 cells) 150 s, 156 s wall, 148 s of CPU. In all 1459 s
  (24.3 min) of cell time, 21.5 min of CPU: each part is well inside its 30-minute budget even on
  one core, so no size was cut. Seeds 1 and 2 cost less than seed 0 in part 1 (134 and 184 s vs
  243 s of cell time: the baselines' evaluations are cached) and the same in part 2 (244-253 s).
  3 seeds are kept (the ablation and zero-shot gaps need a spread over trainings) at the price of
  short trainings. GroupNorm replaces DRN's BatchNorm at smoke / mini, where a task's batch is one
  or two crops.

Why 120 steps and not more (the H1a diagnosis, 2026-12-03, measured on the shared 2-core machine
under a load of 15-22, one torch thread, scripts kept out of the repository). Test metric on the
generated validation split (20 samples) of a single-task model of these settings:

* stereo EPE 2.33 at 120 steps, 2.00 at 400; the zero-disparity prediction scores 2.37, a
  per-image constant (the median of the truth, an oracle) 1.10, OpenCV SGBM 0.66;
* interactive IoU after the first scribbles 0.36 at 120 steps, 0.42 at 400 (GrabCut 0.97;
  alpha > beta of the kernel densities of raw RGB on the scribbles, no learning: 0.62 with the
  model's bandwidth 0.5, 0.87 with 0.1, on 4 training crops).

The curve falls slowly (about 0.3 EPE per 3.3x steps for stereo): the baselines are out of reach
at any step count the budget affords (``lsm.learning_curve`` records this on the LSM page; its mini
run, 40 / 120 / 480 steps, 30 validation samples: stereo EPE 2.46 / 2.41 / 2.26 vs zero 2.44 and
SGBM 0.66; flow 7.05 / 6.96 / 7.09 vs zero 5.52 and DIS 1.73; interactive IoU 0.33 / 0.37 / 0.42
vs GrabCut 0.97; video J 0.16 / 0.18 / 0.44 vs the first mask repeated 0.33 and DIS propagation
0.63). Time per single-task step with one torch thread on the lightly loaded machine: 0.07-0.3 s
(stereo, flow: 0.07-0.11; interactive, video: 0.27-0.31); with torch's default of two threads on
the machine shared by eight jobs a step took 10-50x longer (OMP_NUM_THREADS=1 on a shared box).
No sign, scale or gradient bug was found: the energy of Eq. 11 on the raw images is lowest at the
ground truth (stereo 638 vs 2170 at zero over 6 crops, flow 666 vs 2334), a minimization over
V = [x_gt] decreases the energy at every step and the EPE from 1.83 to 0.70 in 8 steps, the
labeling data term separates the scribbled classes, the model reduces the loss of a fixed batch
(stereo EPE 2.06 -> 1.10 in 300 steps; the "implicit" CNN variant 0.96), and the output at stride
4 is not the limit on the test split (the ground truth pooled to stride 4 and upsampled scores
EPE 0.25 stereo, 0.28 flow, IoU 0.995). What limits the fit of even one batch is the width of the
generator at these channels (m = c / 8 = 2 groups at the finest level, a generator 16 channels
wide): m = c / 2 or channels (64, 48, 32, 32) with m = c / 4 reach a fixed-batch stereo EPE of
0.71 / 0.63 in 300 steps, at about twice the time per step, but not a better test EPE at 120 steps
(m = c / 4: stereo 2.12, interactive 0.24). The paper's model starts from ImageNet features
(DRN-22) and trains 143.2K steps; at mini both the features and the subspace generator start from
random weights, and a few hundred CPU steps do not make them discriminative.

Flow is worse than predicting zero flow at mini (Fig. 8: EPE 6.96 single vs 5.52 for zero flow)
because of the paper's Cramer's-rule system (App. A, ``flow_system="cramer"``), not a bug: the 1-D
problems weight each pixel by det = D_uu D_vv - D_uv^2 (fourth power of the feature gradients), and
on these data the coarse-to-fine minimization diverges even over an oracle subspace V = [x_gt, 1]
on raw pooled RGB (EPE 26.7 vs 5.5 at zero over 4 crops), where the coupled 2K x 2K system of the
official code (``flow_system="joint"``) does not (4.96). A single-task flow model of these settings
trained 120 steps scores EPE 7.09 with "cramer" and 5.73 with "joint" (20 validation pairs). The
paper's form is kept (a profile changes sizes, never the method); "joint" is the documented option.

``smoke`` is the same code at a few steps and tiny widths (tests); its crops are 32 x 64 (the
generated smoke scenes are 48 x 64, and the coarsest level, stride 32, must hold K = 2 pixels).
"""
from __future__ import annotations

from typing import Any

#: The settings a trained model depends on (its cache key); every experiment shares them.
TRAINING_KEYS = (
    "model", "train_iterations", "lr", "weight_decay", "batch", "train_crop", "mask_side",
    "video_references", "stereo_directions", "data",
)

PAPER = {
    # App. B: "about 15M parameters", "57.26 MB", "25 ms for 512 x 384", "143.2K iterations",
    # "roughly 20 hours" on four TITAN-Xp (one task per GPU).
    "parameters": 15e6, "memory_mb": 57.26, "inference_ms": 25.0, "iterations": 143_200, "train_hours": 20.0,
}

_COMMON: dict[str, Any] = {
    "lr": 3e-4,
    "weight_decay": 1e-4,
    "video_references": 2,  # the first frame (given mask) and the previous frame (its estimate)
    "stereo_directions": ["left-to-right"],  # Fig. 7b tests right-to-left on a model never trained on it
    "success_iou": 0.85,  # Fig. 5a: interactions needed for IoU > 0.85
    "efficiency_size": [384, 512],  # App. B: inference time at 512 x 384 (H, W)
    "efficiency_repeats": 5,
    "threads": None,  # torch threads in a training cell (None: torch's default, i.e. all cores)
}

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        **_COMMON,
        "data": "generated",
        "model": {"channels": [16, 8, 8, 8], "subspace_dims": [2, 4, 8, 16], "iterations": [1, 1, 1, 1],
                  "norm": "group", "max_scribble_points": 32},
        "train_iterations": 2,
        "batch": {"interactive": 2, "video": 1, "stereo": 1, "flow": 1},
        "train_crop": [32, 64], "mask_side": 64,  # the coarsest level (stride 32) must hold K = 2 pixels
        "max_rounds": 3, "eval_limit": 2, "real_limit": 1, "video_frames": 3, "real_scale": 0.125,
        "seeds": [0], "efficiency_size": [64, 64], "efficiency_repeats": 1,
        "subspace_samples": 1,
    },
    "mini": {
        **_COMMON,
        "data": "generated",
        # Measured on 2 CPU cores (forward + backward of one batch, 64 x 64): the paper's schedule
        # (1, 6, 4, 3) with channels (48, 32, 24, 16) and batches (4, 2, 2, 2) costs about 7 CPU-s per
        # joint step; (1, 2, 2, 2) with (32, 24, 16, 16) and batches (2, 1, 1, 1) about 1.6 CPU-s.
        "model": {"channels": [32, 24, 16, 16], "subspace_dims": [2, 4, 8, 16], "iterations": [1, 2, 2, 2],
                  "norm": "group", "max_scribble_points": 64},
        "train_iterations": 120,
        "batch": {"interactive": 2, "video": 1, "stereo": 1, "flow": 1},
        "train_crop": [64, 64], "mask_side": 64,
        "max_rounds": 10, "eval_limit": 30, "real_limit": 10, "video_frames": 16, "real_scale": 0.25,
        "seeds": [0, 1, 2],
        "subspace_samples": 2,
    },
    "full": {
        **_COMMON,
        "data": "paper",
        "model": {"channels": [512, 256, 128, 64], "subspace_dims": [2, 4, 8, 16], "iterations": [1, 6, 4, 3]},
        "train_iterations": 143_200,
        "batch": {"interactive": 12, "video": 6, "stereo": 4, "flow": 4},
        "train_crop": [384, 512], "mask_side": 384,
        "max_rounds": 20, "eval_limit": None, "real_limit": None, "video_frames": None, "real_scale": 1.0,
        "seeds": [0, 1, 2],
        "subspace_samples": 4,
    },
}


def profiles_with(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shared profiles, each updated with ``overrides[profile]`` (experiment-only options,
    never a key of :data:`TRAINING_KEYS`)."""
    out = {}
    for profile, settings in PROFILES.items():
        extra = dict(overrides.get(profile, {}))
        clash = sorted(set(extra) & set(TRAINING_KEYS))
        if clash:
            raise ValueError(f"profiles_with: {clash} are training settings shared by every experiment; "
                             "change them in reproductions/lsm/settings.py")
        out[profile] = {**settings, **extra}
    return out
