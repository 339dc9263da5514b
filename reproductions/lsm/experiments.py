"""Figs. 5-8, 12, 13 and App. B of Tang & Tan, "Learning Subspace Minimization for Low-level
Vision" (CVPR 2020): four tasks solved by one network, single-task and joint training, zero-shot
task generalization, the three ablations and the learned subspaces.

Protocol. LSM models are trained by ``reproductions.lsm.training.train_lsm`` (IoU loss for the
labelling tasks, multi-scale EPE for stereo and flow, AdamW (0.9, 0.999), lr 3e-4 with cosine
decay) and cached by content (``trained.py``): "Single" is trained on one task, "Joint" on all
four with one parameter set, a zero-shot model on the other three tasks (tested on the fourth
with frozen parameters). Stereo models are trained left-to-right only; right-to-left (Fig. 7b)
is the same model with target and source swapped. Scoring (``evaluation.py``): interactive
segmentation with a simulated user who adds a dot in the largest error region each round
(NoC to IoU > 0.85, failures counted as the round cap, and IoU after the initial scribbles);
video segmentation from the first frame's mask (DAVIS J and F means, first and last frames
excluded); stereo and flow EPE per image over the pixels with ground truth, then the mean over
images. Classical baselines are the registered leaderboard methods with their fixed settings.
Records carry the standard error over images as ``std``; seeds (``--seeds``; mini: 0, 1, 2) give
the spread of a trained model.

At the mini profile the models are narrow and trained for a few hundred steps on the generated
``mini-*`` sets on a CPU (``settings.py``), evaluated on the generated validation splits and, when
present, on real samples (GrabCut + GSC, DAVIS-2016 at a quarter of its size, Middlebury
Motorcycle / ETH3D, Middlebury / Sintel / FlyingChairs flow). Absolute values are not the
paper's; the claims judged at mini are orderings. The paper's own numbers are mostly bar charts
(Figs. 5-8, 12): only what its text states is transcribed (``paper.yaml``).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from suite.harness import experiment
from suite.harness.methods import get_method

from . import data as lsm_data
from . import evaluation, plots
from .methods import predict_flow, predict_interactive, predict_stereo, predict_video
from .settings import profiles_with
from .trained import JOINT, LEAVE_OUT, SINGLE, model_key, trained_lsm

PROTOCOL = __doc__.split("\n\n", 1)[1]

#: Classical baselines per task (registered leaderboard methods), in the order of the paper's figures.
BASELINES = {
    "interactive": ("skimage-random-walker", "adm-grid-crf", "opencv-grabcut"),
    "video": ("opencv-dis-propagation",),
    "stereo": ("opencv-sgbm",),
    "flow": ("opencv-dis", "skimage-tvl1", "opencv-farneback"),
}
#: The baseline each zero-shot model is compared with (the paper: SGM for stereo, an LDOF-like
#: variational flow, OFL-like flow propagation for video, GSC / random walk for interactive).
ZERO_SHOT_BASELINE = {"interactive": "skimage-random-walker", "video": "opencv-dis-propagation", "stereo": "opencv-sgbm",
                      "flow": "skimage-tvl1"}
LEADERBOARD_TASK = {"interactive": "interactive-segmentation", "video": "video-segmentation", "stereo": "stereo",
                    "flow": "flow"}
ROWS = {"lsm-single": "LSM (Single)", "lsm-joint": "LSM (Joint)", "lsm-zero-shot": "LSM (Zero-shot)"}
VARIANT_ROWS = {"full": "LSM (full)", "implicit": "CNN as implicit solver", "no_min_context": "w/o minimization context",
                "no_projection": "w/o subspace projection"}
PROFILES = profiles_with()


def model_tasks(method: str, task: str) -> tuple[str, ...]:
    return {"lsm-single": SINGLE[task], "lsm-joint": JOINT, "lsm-zero-shot": LEAVE_OUT[task]}[method]


def row_name(method: str) -> str:
    return ROWS.get(method, method)


# ---------------------------------------------------------------------------------------------
# One evaluation: a model or a baseline on one dataset
# ---------------------------------------------------------------------------------------------
def lsm_predictor(model, task: str, settings, direction: str | None = None) -> Callable:
    if task == "interactive":
        return lambda image, scribbles: predict_interactive(model, image, scribbles)
    if task == "video":
        return lambda frames, first_mask: predict_video(model, frames, first_mask,
                                                        references=int(settings["video_references"]))
    if task == "stereo":
        return lambda left, right, *, max_disparity: predict_stereo(model, left, right,
                                                                    direction=direction or "left-to-right")
    return lambda image1, image2: predict_flow(model, image1, image2)


def baseline_predictor(task: str, name: str, direction: str | None = None) -> Callable:
    found = get_method(LEADERBOARD_TASK[task], name).func
    if task == "stereo" and direction == "right-to-left":
        return evaluation.flipped_stereo(found)
    return found


def measure(ctx, *, task: str, dataset: str, method: str, variant: str = "full",
            direction: str | None = None) -> dict[str, tuple]:
    """Metrics of ``method`` (``lsm-single`` / ``lsm-joint`` / ``lsm-zero-shot`` or a baseline's
    registered name) on ``dataset``; models and evaluations come from the caches."""
    if method in ROWS:
        tasks = model_tasks(method, task)
        identity = {"model": model_key(ctx, tasks=tasks, variant=variant)}

        def predictor():
            trained = trained_lsm(ctx, tasks=tasks, variant=variant)
            return lsm_predictor(trained.model, task, ctx.settings, direction)
    else:
        found = get_method(LEADERBOARD_TASK[task], method)  # raises for an unknown name
        identity = {"method": method, "code": found.code}

        def predictor():
            return baseline_predictor(task, method, direction)
    metrics, _ = evaluation.cached_evaluation(ctx, task=task, dataset=dataset, identity=identity,
                                              predictor=predictor, direction=direction)
    return metrics


def _record(ctx, *, row: str, column: str, task: str, metrics: dict[str, tuple], note: str | None = None,
            only: tuple[str, ...] | None = None, table: str | None = None) -> None:
    for metric, (unit, higher) in evaluation.METRICS[task].items():
        if only is not None and metric not in only:
            continue
        if metric not in metrics:
            continue
        value, error, n = metrics[metric]
        ctx.record(row=row, column=column, metric=metric, value=value, std=error, n=n, unit=unit,
                   higher_is_better=higher, note=note, table=table)


def _not_run(ctx, *, row: str, columns: list[str], task: str, reason: str, only=None) -> None:
    for column in columns:
        for metric, (unit, higher) in evaluation.METRICS[task].items():
            if only is None or metric in only:
                ctx.not_run(row=row, column=column, metric=metric, unit=unit, higher_is_better=higher, reason=reason)


def _unknown_method_reason(task: str, method: str) -> str | None:
    from suite.harness.registry import UnknownIdError

    if method in ROWS:
        return None
    try:
        get_method(LEADERBOARD_TASK[task], method)
    except (UnknownIdError, ValueError) as error:
        return f"baseline not registered here: {error}"
    return None


# ---------------------------------------------------------------------------------------------
# Figs. 5-8: each task, Single and Joint, against the classical baselines
# ---------------------------------------------------------------------------------------------
def _task_cells(task: str):
    def cells(settings):
        return [{"method": method, "dataset": dataset}
                for dataset in lsm_data.evaluation_datasets(task, settings)
                for method in ("lsm-single", "lsm-joint", *BASELINES[task])]

    return cells


def _task_datasets(task: str):
    def datasets(cell, settings):
        ids = lsm_data.with_extras([cell["dataset"]])
        if cell["method"] in ROWS:
            ids += [d for t in model_tasks(cell["method"], task) for d in lsm_data.training_datasets(t, settings)]
        return sorted(set(ids))

    return datasets


def run_task_cell(ctx, cell, task: str):
    method, dataset = cell["method"], cell["dataset"]
    row = row_name(method)
    directions = [None]
    if task == "stereo":
        # Fig. 7b: right-to-left where the set has the right view's ground truth (the generated
        # scenes and FlyingThings3D's disparity/right); the real two-view samples have the left only
        directions = ["left-to-right"] + (["right-to-left"] if dataset in ("mini-stereo", "flyingthings3d") else [])
    columns = [evaluation.column(dataset, d) for d in directions]
    reason = _unknown_method_reason(task, method)
    if reason:
        _not_run(ctx, row=row, columns=columns, task=task, reason=reason)
        return ctx.records
    for direction, column in zip(directions, columns):
        try:
            metrics = measure(ctx, task=task, dataset=dataset, method=method, direction=direction)
        except lsm_data.DataUnavailable as error:
            _not_run(ctx, row=row, columns=[column], task=task, reason=str(error))
            continue
        _record(ctx, row=row, column=column, task=task, metrics=metrics)
    return ctx.records


def _register_task(task: str, id: str, table: str, title: str, plot: Callable):
    def fn(ctx, cell):
        return run_task_cell(ctx, cell, task)

    fn.__qualname__ = fn.__name__ = f"{task}_figure"
    experiment(id, table=table, title=title, grid=_task_cells(task), profiles=PROFILES,
               datasets=_task_datasets(task), plots=plot, protocol=PROTOCOL)(fn)
    return fn


interactive = _register_task(
    "interactive", "lsm.interactive", "Fig. 5",
    "Interactive segmentation: scribbles to IoU > 0.85 and IoU after one interaction, Single / Joint vs baselines",
    lambda frame: {"fig5": plots.task_bars(frame, "interactive")})
video = _register_task(
    "video", "lsm.video", "Fig. 6",
    "Video segmentation from the first-frame mask: DAVIS J and F means, Single / Joint vs flow propagation",
    lambda frame: {"fig6": plots.task_bars(frame, "video")})
stereo = _register_task(
    "stereo", "lsm.stereo", "Fig. 7",
    "Stereo EPE, left-to-right and right-to-left with the same model, Single / Joint vs SGM",
    lambda frame: {"fig7": plots.task_bars(frame, "stereo")})
flow = _register_task(
    "flow", "lsm.flow", "Fig. 8",
    "Optical flow EPE (mean over all pixels per image), Single / Joint vs DIS, TV-L1, Farneback",
    lambda frame: {"fig8": plots.task_bars(frame, "flow")})


# ---------------------------------------------------------------------------------------------
# App. B: model size, memory, inference and training time
# ---------------------------------------------------------------------------------------------
def _inference_inputs(task: str, height: int, width: int, generator: torch.Generator) -> dict:
    image = lambda: torch.rand(1, 3, height, width, generator=generator)  # noqa: E731
    if task == "interactive":
        foreground = torch.zeros(1, 1, height, width, dtype=torch.bool)
        background = torch.zeros_like(foreground)
        foreground[..., height // 2 - 4: height // 2 + 4, width // 2 - 4: width // 2 + 4] = True
        background[..., :4, :] = True
        return {"image": image(), "foreground": foreground, "background": background}
    if task == "video":
        masks = torch.zeros(1, 2, 1, height, width)
        masks[..., height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 1.0
        return {"image": image(), "reference_images": torch.rand(1, 2, 3, height, width, generator=generator),
                "reference_masks": masks}
    if task == "stereo":
        return {"target": image(), "source": image()}
    return {"image1": image(), "image2": image()}


@experiment(
    "lsm.efficiency",
    table="App. B",
    title="Model size, memory, inference time per task at 512 x 384, training iterations and time (joint model)",
    grid=lambda settings: [{"model": "lsm-joint"}],
    profiles=PROFILES,
    datasets=lambda cell, settings: sorted({d for t in JOINT for d in lsm_data.training_datasets(t, settings)}),
    timing=True,
    protocol=PROTOCOL + "\n\nApp. B: parameters of the joint model; memory = the parameters' and buffers' bytes in MiB "
                        "(the paper's 57.26 MB is 15M float32 parameters); inference = median wall time of one forward "
                        "pass per task on a random 512 x 384 input after one warm-up, on the cell's device "
                        "(CUDA synchronised); training = the steps and wall time of the joint model's training.",
)
def efficiency(ctx, cell):
    try:
        trained = trained_lsm(ctx, tasks=JOINT)
    except lsm_data.DataUnavailable as error:
        for metric in ("parameters", "memory", "training iterations"):
            ctx.not_run(row="LSM (Joint)", column="model", metric=metric, reason=str(error), higher_is_better=False)
        return ctx.records
    from .model import model_memory_mb, parameter_count

    model = trained.model
    parameters = parameter_count(model)
    memory = model_memory_mb(model)
    row = "LSM (Joint)"
    ctx.record(row=row, column="model", metric="parameters", value=float(parameters), unit="count",
               higher_is_better=False, note=f"weights: {trained.initialization}")
    ctx.record(row=row, column="model", metric="memory", value=memory, unit="MiB", higher_is_better=False)
    height, width = (int(v) for v in ctx.settings["efficiency_size"])
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    for task in lsm_data.TASKS:
        inputs = {k: v.to(device) for k, v in _inference_inputs(task, height, width, generator).items()}
        times = []
        with torch.no_grad():
            for repeat in range(int(ctx.settings["efficiency_repeats"]) + 1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(task, inputs)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if repeat:  # the first pass is a warm-up
                    times.append(1000.0 * (time.perf_counter() - start))
        ctx.record(row=row, column=f"inference {width}x{height}", metric=f"{task} time", value=float(np.median(times)),
                   std=float(np.std(times)) if len(times) > 1 else None, n=len(times), unit="ms",
                   higher_is_better=False)
    ctx.record(row=row, column="training", metric="training iterations", value=float(trained.steps or 0),
               unit="steps", higher_is_better=False)
    if trained.seconds is not None:
        note = "measured when the model was trained (loaded from the cache now)" if trained.cached else None
        ctx.record(row=row, column="training", metric="training time", value=float(trained.seconds) / 3600.0,
                   unit="h", higher_is_better=False, note=note)
        ctx.record(row=row, column="training", metric="time per step", value=1000.0 * float(trained.seconds)
                   / max(1, trained.steps or 1), unit="ms", higher_is_better=False, note=note)
    return ctx.records


# ---------------------------------------------------------------------------------------------
# Figs. 9-11, 15: zero-shot task generalization
# ---------------------------------------------------------------------------------------------
def _headline_cells(settings):
    return [{"task": task, "method": method} for task in lsm_data.TASKS
            for method in ("lsm-zero-shot", "lsm-single", "lsm-joint", ZERO_SHOT_BASELINE[task])]


def _headline_datasets(cell, settings):
    task = cell["task"]
    ids = lsm_data.with_extras([lsm_data.evaluation_datasets(task, settings)[0]])
    if cell.get("method", "lsm-joint") in ROWS:
        tasks = model_tasks(cell.get("method", "lsm-joint"), task)
        ids += [d for t in tasks for d in lsm_data.training_datasets(t, settings)]
    return sorted(set(ids))


@experiment(
    "lsm.zero_shot",
    table="Figs. 9-11, 15",
    title="Zero-shot task generalization: a model trained on the other three tasks vs Single, Joint and the "
          "task's classical baseline",
    grid=_headline_cells,
    profiles=PROFILES,
    datasets=_headline_datasets,
    plots=lambda frame: {"zero-shot": plots.zero_shot_bars(frame)},
    protocol=PROTOCOL + "\n\nZero-shot: four leave-one-out models, each trained jointly on three tasks with the joint "
                        "settings and tested on the fourth with its parameters frozen; one headline metric per task "
                        "(interactive: IoU after one interaction; video: J mean; stereo: EPE left-to-right; flow: "
                        "EPE) on the first evaluation set of the task (mini: the generated validation split).",
)
def zero_shot(ctx, cell):
    task, method = cell["task"], cell["method"]
    dataset = lsm_data.evaluation_datasets(task, ctx.settings)[0]
    direction = "left-to-right" if task == "stereo" else None
    row, column = row_name(method), task
    headline = (evaluation.HEADLINE[task],)
    reason = _unknown_method_reason(task, method)
    if reason is None:
        try:
            metrics = measure(ctx, task=task, dataset=dataset, method=method, direction=direction)
        except lsm_data.DataUnavailable as error:
            reason = str(error)
    if reason:
        _not_run(ctx, row=row, columns=[column], task=task, reason=reason, only=headline)
        return ctx.records
    _record(ctx, row=row, column=column, task=task, metrics=metrics, only=headline, note=f"on {dataset}")
    return ctx.records


# ---------------------------------------------------------------------------------------------
# Fig. 12: ablations
# ---------------------------------------------------------------------------------------------
@experiment(
    "lsm.ablations",
    table="Fig. 12",
    title="Ablations: CNN as implicit solver, without minimization context, without subspace projection, "
          "vs the full model (joint training, every task)",
    grid=lambda settings: [{"variant": v, "task": t} for t in lsm_data.TASKS for v in VARIANT_ROWS],
    profiles=PROFILES,
    datasets=lambda cell, settings: sorted(set(
        lsm_data.with_extras([lsm_data.evaluation_datasets(cell["task"], settings)[0]])
        + [d for t in JOINT for d in lsm_data.training_datasets(t, settings)])),
    plots=lambda frame: {"fig12": plots.ablation_bars(frame)},
    protocol=PROTOCOL + "\n\nAblations (Sec. 4.4): (a) the subspace generator's last layer outputs the solution (one "
                        "channel), no minimization; (b) the subspace from the image context only; (c) Eq. (4) "
                        "instead of Eqs. (5)-(6) (no projection onto the new subspace). Each variant is trained "
                        "jointly on the four tasks with the full model's protocol and evaluated like the zero-shot "
                        "table (one headline metric per task on its first evaluation set).",
)
def ablations(ctx, cell):
    variant, task = cell["variant"], cell["task"]
    dataset = lsm_data.evaluation_datasets(task, ctx.settings)[0]
    direction = "left-to-right" if task == "stereo" else None
    headline = (evaluation.HEADLINE[task],)
    row = VARIANT_ROWS[variant]
    try:
        metrics = measure(ctx, task=task, dataset=dataset, method="lsm-joint", variant=variant, direction=direction)
    except lsm_data.DataUnavailable as error:
        _not_run(ctx, row=row, columns=[task], task=task, reason=str(error), only=headline)
        return ctx.records
    _record(ctx, row=row, column=task, task=task, metrics=metrics, only=headline, note=f"on {dataset}")
    return ctx.records


# ---------------------------------------------------------------------------------------------
# Fig. 13: the learned subspaces
# ---------------------------------------------------------------------------------------------
def _subspace_datasets(cell, settings):
    from . import subspace_analysis

    return subspace_analysis.dataset_ids(cell, settings)


@experiment(
    "lsm.subspaces",
    table="Fig. 13",
    title="Learned subspaces: basis vectors as heat maps, and how much of the ground truth lies in span(V) at the "
          "finest level (full model vs without minimization context vs a fixed DCT basis of the same K)",
    grid=lambda settings: [{"variant": "full"}, {"variant": "no_min_context"}],
    profiles=PROFILES,
    datasets=_subspace_datasets,
    plots=lambda frame: {"fig13": plots.subspace_panel(frame), "residual": plots.residual_bars(frame)},
    protocol=PROTOCOL + "\n\nFig. 13: the joint model's basis vectors V at the finest level (after its last "
                        "iteration), drawn for the first sample of the real set when present (Sintel / Middlebury "
                        "flow, GrabCut + GSC scribbles, the VGG benchmark at full), else of the generated validation "
                        "split: the vectors carrying most of the ground truth (largest |coefficient| x norm). "
                        "Projection residual (our quantitative addition; the paper states no number): "
                        "||(I - P) x_gt|| / ||x_gt|| with P = V (V'V)^-1 V' at the finest level, x_gt the ground "
                        "truth brought to that level (flow: area-resized and scaled, u against V_x and v against "
                        "V_y; interactive: the +-1 label image tau(x) = 2 mask - 1, void pixels left out), the mean "
                        "over the samples, on every present source; the full model, the variant without "
                        "minimization context (same joint training, shared with Fig. 12) and, as a reference, the "
                        "K lowest-frequency 2-D DCT images of the same level (no learning).",
)
def subspaces(ctx, cell):
    from . import subspace_analysis

    return subspace_analysis.run_cell(ctx, cell, row=VARIANT_ROWS[cell["variant"]])


__all__ = ["interactive", "video", "stereo", "flow", "efficiency", "zero_shot", "ablations", "subspaces",
           "BASELINES", "ZERO_SHOT_BASELINE", "measure"]
