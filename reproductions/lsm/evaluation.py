"""Scoring of the four LSM tasks, shared by every figure, with evaluations cached by content.

Each task is scored as the leaderboards score it, by the same functions:

* interactive (Fig. 5): the simulated user of ``suite.leaderboards.simulated_user`` (initial
  scribbles, then a dot in the largest error region per round): scribbles needed for
  IoU > 0.85 (a failure counts as ``max_rounds``), IoU after one interaction, failure rate;
* video (Fig. 6): from the first frame's mask, DAVIS J mean and F mean per sequence
  (``metrics.segmentation.davis_j`` / ``davis_f``: first and last frames excluded), then the
  mean over sequences;
* stereo (Fig. 7): EPE and bad-2.0 over the pixels with finite ground truth
  (``suite.leaderboards.stereo_flow.score_stereo``), left-to-right against the left view's
  disparity and right-to-left against the right view's;
* flow (Fig. 8): EPE (mean over all valid pixels of an image, the Sintel protocol) and Fl-all
  (``score_flow``).

Per-image (per-sequence) values are averaged over the set; the ``std`` of a record is the
standard error of that mean. Evaluations are cached (``suite.harness.trained`` with namespace
``lsm``) by what they depend on: the evaluated model's training key (or a baseline's code
hash), the dataset version, the evaluation settings and this module's source. A deterministic
baseline is thus evaluated once and its records repeated at every seed (zero spread), and the
zero-shot and ablation tables reuse the evaluations of Figs. 5-8.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from suite.harness import keys, provenance
from suite.harness.trained import cached_training, payload_key

from . import data as lsm_data

#: The settings an evaluation depends on.
EVAL_KEYS = ("eval_limit", "real_limit", "max_rounds", "success_iou", "video_frames", "real_scale",
             "video_references")

METRICS = {
    "interactive": {"scribbles to IoU>0.85": ("scribbles", False), "IoU, 1 interaction": ("", True),
                    "failed": ("%", False)},
    "video": {"J mean": ("", True), "F mean": ("", True)},
    "stereo": {"EPE": ("px", False), "bad-2.0": ("%", False)},
    "flow": {"EPE": ("px", False), "Fl-all": ("%", False)},
}
#: The headline metric of a task (zero-shot and ablation tables, Fig. 12).
HEADLINE = {"interactive": "IoU, 1 interaction", "video": "J mean", "stereo": "EPE", "flow": "EPE"}
DIRECTIONS = ("left-to-right", "right-to-left")
SHORT_DIRECTION = {"left-to-right": "L->R", "right-to-left": "R->L"}


def column(dataset: str, direction: str | None = None) -> str:
    return dataset if direction is None else f"{dataset} {SHORT_DIRECTION[direction]}"


def _mean(values: list[float]) -> tuple[float, float | None, int]:
    array = np.asarray(values, np.float64)
    error = float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), error, len(array)


def evaluate_interactive(ctx, dataset: str, predict: Callable) -> dict[str, tuple]:
    from suite.leaderboards.simulated_user import score, simulate

    settings = ctx.settings
    rows = []
    samples = lsm_data.interactive_samples(ctx, dataset, lsm_data.real_limit(settings, dataset),
                                           scale=1.0 if dataset.startswith("mini-") else float(settings["real_scale"]))
    for sample in ctx.progress(samples, desc=f"interactive {dataset}"):
        result = simulate(predict, sample.inputs["image"], sample.truth["mask"], sample.inputs["scribbles"],
                          threshold=float(settings["success_iou"]), max_rounds=int(settings["max_rounds"]))
        rows.append(score(result))
    if not rows:
        raise lsm_data.DataUnavailable(f"{dataset}: no scene with both a foreground and a background scribble")
    return {metric: _mean([r[metric] for r in rows]) for metric in rows[0]}


def evaluate_video(ctx, dataset: str, predict: Callable) -> dict[str, tuple]:
    from metrics.segmentation import davis_f, davis_j

    settings = ctx.settings
    generated = dataset.startswith("mini-")
    j, f = [], []
    sequences = lsm_data.video_sequences(ctx, dataset, lsm_data.real_limit(settings, dataset),
                                         frames=settings["video_frames"],
                                         scale=1.0 if generated else float(settings["real_scale"]))
    for sample in ctx.progress(sequences, desc=f"video {dataset}"):
        masks = np.asarray(predict(sample.inputs["frames"], sample.inputs["first_mask"])).astype(np.uint8)
        truth = sample.truth["masks"]
        if masks.shape != truth.shape:
            raise ValueError(f"video method returned masks of shape {masks.shape}, expected {truth.shape}")
        if len(truth) < 3:
            continue
        j.append(davis_j(masks, truth))
        f.append(davis_f(masks, truth))
    if not j:
        raise lsm_data.DataUnavailable(f"{dataset}: no sequence with at least 3 annotated frames")
    return {"J mean": _mean(j), "F mean": _mean(f)}


def flipped_stereo(predict_left: Callable) -> Callable:
    """Right-view disparity from a left-view method: mirror both images and swap them (the
    mirrored right image is a left view whose disparity is the right view's, mirrored)."""

    def predict_right(left, right, *, max_disparity):
        mirrored = predict_left(np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]),
                                max_disparity=max_disparity)
        return np.ascontiguousarray(np.asarray(mirrored)[:, ::-1])

    return predict_right


def evaluate_stereo(ctx, dataset: str, predict: Callable, *, direction: str) -> dict[str, tuple]:
    """``predict(left, right, *, max_disparity) -> disparity`` of the view ``direction`` targets."""
    from suite.leaderboards.stereo_flow import score_stereo

    rows = []
    for sample in ctx.progress(lsm_data.stereo_samples(ctx, dataset, lsm_data.real_limit(ctx.settings, dataset)),
                               desc=f"stereo {dataset}"):
        if direction == "left-to-right":
            truth = {"disparity": sample.truth["disparity"], "valid": sample.truth["valid"]}
        else:
            if sample.truth.get("disparity_right") is None:
                continue
            truth = {"disparity": sample.truth["disparity_right"], "valid": np.isfinite(sample.truth["disparity_right"])}
        prediction = np.asarray(predict(sample.inputs["left"], sample.inputs["right"],
                                        max_disparity=sample.inputs["max_disparity"]), np.float32)
        rows.append(score_stereo(prediction, truth))
    if not rows:
        raise lsm_data.DataUnavailable(f"{dataset}: no scene with the {direction} ground truth")
    return {metric: _mean([r[metric] for r in rows]) for metric in METRICS["stereo"]}


def evaluate_flow(ctx, dataset: str, predict: Callable) -> dict[str, tuple]:
    from suite.leaderboards.stereo_flow import score_flow

    rows = []
    for sample in ctx.progress(lsm_data.flow_samples(ctx, dataset, lsm_data.real_limit(ctx.settings, dataset)),
                               desc=f"flow {dataset}"):
        prediction = np.asarray(predict(sample.inputs["image1"], sample.inputs["image2"]), np.float32)
        rows.append(score_flow(prediction, sample.truth))
    if not rows:
        raise lsm_data.DataUnavailable(f"{dataset}: no pair with ground-truth flow")
    return {metric: _mean([r[metric] for r in rows]) for metric in METRICS["flow"]}


def evaluate(ctx, task: str, dataset: str, predict: Callable, *, direction: str | None = None) -> dict[str, tuple]:
    """``{metric: (mean, standard error, n)}`` of ``predict`` on ``dataset`` (module doc)."""
    if task == "interactive":
        return evaluate_interactive(ctx, dataset, predict)
    if task == "video":
        return evaluate_video(ctx, dataset, predict)
    if task == "stereo":
        return evaluate_stereo(ctx, dataset, predict, direction=direction or "left-to-right")
    if task == "flow":
        return evaluate_flow(ctx, dataset, predict)
    raise ValueError(f"task: expected one of {lsm_data.TASKS}, got {task!r}")


def cached_evaluation(ctx, *, task: str, dataset: str, identity: Any, predictor: Callable[[], Callable],
                      direction: str | None = None) -> tuple[dict[str, tuple], bool]:
    """The evaluation of the method ``identity`` on ``dataset``, from the cache or computed now.

    Args:
        identity: what the predictions depend on (a model's training key, a baseline's code hash).
        predictor: builds the predict callable only when the evaluation is not cached (so a cached
            evaluation never loads or trains a model).

    Returns:
        ``(metrics, cached)``.
    """
    from suite.data import registry

    datasets = [dataset, *lsm_data.EXTRA_DATASETS.get(dataset, ())]
    for d in datasets:
        try:
            ctx.data.path(d)  # declares the read (its version enters the cell's provenance)
        except FileNotFoundError as error:
            raise lsm_data.DataUnavailable(str(error)) from None
    payload = {"kind": "evaluation", "task": task, "dataset": dataset, "direction": direction,
               "data": {d: registry.version(d) for d in datasets}, "identity": identity,
               "settings": {k: ctx.settings.get(k) for k in EVAL_KEYS}, "profile": ctx.profile,
               "source": keys.source_hash(__name__), "device_class": provenance.device_class(ctx.device)}
    name = f"eval-{task}-{dataset}" + (f"-{SHORT_DIRECTION[direction].replace('->', '')}" if direction else "")
    result, cached = cached_training(namespace="lsm", name=name, payload=payload,
                                     train=lambda _checkpoint: {"metrics": evaluate(ctx, task, dataset, predictor(),
                                                                                    direction=direction)})
    return {k: tuple(v) for k, v in result["metrics"].items()}, cached


__all__ = ["METRICS", "HEADLINE", "DIRECTIONS", "column", "evaluate", "cached_evaluation", "flipped_stereo",
           "payload_key"]
