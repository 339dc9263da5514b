"""``lsm.learning_curve``: why LSM loses to the classical baselines at mini (issues 10-11).

Not a figure of the paper: the evidence a reader needs beside Figs. 5-8 when the mini models do
not beat SGM / GrabCut / DIS. For each task, a single-task LSM (the figures' model, same
settings) is trained for each step count of ``curve_steps`` (each run with its own cosine
schedule, so every point is a finished training of that length, not a snapshot), and its
headline metric on the generated validation split is recorded beside each classical baseline's
level and the trivial prediction (zero displacement; for segmentation, the whole image as
foreground). The point at the profile's ``train_iterations`` is the figures' Single model (same
cache key), so it costs nothing extra. Measured per training: seconds per step.

A curve still falling at the profile's step count says "undertrained at this budget"; a flat one
far above the baseline says the budget is not the limit.
"""
from __future__ import annotations

import numpy as np

from suite.harness import experiment

from . import data as lsm_data
from . import evaluation
from .experiments import BASELINES, PROTOCOL, measure, row_name
from .settings import profiles_with
from .trained import SINGLE, model_key, trained_lsm

__all__ = ["learning_curve", "trivial_metric", "curve_plot"]

ROW = row_name("lsm-single")
TRIVIAL = {"interactive": "everything foreground", "video": "first mask repeated", "stereo": "zero disparity",
           "flow": "zero flow"}

PROFILES = profiles_with(
    smoke={"curve_steps": [1, 2], "seeds": [0]},
    # 120 = train_iterations (the figures' Single models, cached); 40 and 480 around it. One seed:
    # the curve's shape, not a spread, is what it shows (480 steps x 4 tasks is its cost).
    mini={"curve_steps": [40, 120, 480], "seeds": [0]},
    full={"curve_steps": [], "seeds": [0]},
)


class _WithSettings:
    """``ctx`` with some settings replaced (a model trained for another step count)."""

    def __init__(self, ctx, **overrides):
        self._ctx = ctx
        self.settings = {**ctx.settings, **overrides}

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def _cells(settings):
    cells = []
    for task in lsm_data.TASKS:
        cells += [{"task": task, "steps": int(n)} for n in settings["curve_steps"]]
        cells += [{"task": task, "method": m} for m in BASELINES[task]]
        cells.append({"task": task, "method": "trivial"})
    return cells


def _datasets(cell, settings):
    task = cell["task"]
    ids = lsm_data.with_extras([lsm_data.evaluation_datasets(task, settings)[0]])
    if "steps" in cell:
        ids += lsm_data.training_datasets(task, settings)
    return sorted(set(ids))


def trivial_metric(ctx, task: str, dataset: str) -> tuple[float, float | None, int]:
    """The headline metric of the trivial prediction on ``dataset`` (mean, std error, images)."""
    settings = ctx.settings
    values = []
    if task == "stereo":
        for sample in lsm_data.stereo_samples(ctx, dataset, lsm_data.real_limit(settings, dataset)):
            d, v = np.asarray(sample.truth["disparity"], np.float64), sample.truth["valid"]
            values.append(float(np.abs(d[v]).mean()))
    elif task == "flow":
        for sample in lsm_data.flow_samples(ctx, dataset, lsm_data.real_limit(settings, dataset)):
            f, v = np.nan_to_num(np.asarray(sample.truth["flow"], np.float64)), sample.truth["valid"]
            values.append(float(np.sqrt((f ** 2).sum(-1))[v].mean()))
    elif task == "interactive":
        for sample in lsm_data.interactive_samples(ctx, dataset, lsm_data.real_limit(settings, dataset)):
            m = sample.truth["mask"]
            values.append(float((m == 1).sum() / max(1, (m != lsm_data.VOID).sum())))
    else:
        from metrics.segmentation import davis_j

        for sample in lsm_data.video_sequences(ctx, dataset, lsm_data.real_limit(settings, dataset),
                                               frames=settings.get("video_frames")):
            masks = sample.truth["masks"]
            if len(masks) < 3:
                continue
            first = np.broadcast_to(masks[0] == 1, masks.shape).astype(np.uint8)
            values.append(float(davis_j(first, masks)))
    if not values:
        raise lsm_data.DataUnavailable(f"{dataset}: no sample for the trivial {task} prediction")
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return float(np.mean(values)), se, len(values)


@experiment(
    "lsm.learning_curve",
    table="Learning curve",
    title="Why LSM loses at mini: test error of single-task LSM vs training steps, beside each classical "
          "baseline's level and the trivial prediction",
    grid=_cells,
    profiles=PROFILES,
    datasets=_datasets,
    plots=lambda frame: {"learning-curve": curve_plot(frame)},
    protocol=PROTOCOL + "\n\nLearning curve (not in the paper): for each task a single-task LSM with the figures' "
                        "settings trained for each step count of curve_steps (each with its own cosine schedule), "
                        "scored by the task's headline metric on the generated validation split (interactive: IoU "
                        "after the initial scribbles; video: J mean; stereo: EPE left-to-right; flow: EPE), beside "
                        "the classical baselines and the trivial prediction (zero disparity / flow, everything "
                        "foreground, the first mask repeated). One seed.",
)
def learning_curve(ctx, cell):
    task = cell["task"]
    dataset = lsm_data.evaluation_datasets(task, ctx.settings)[0]
    metric = evaluation.HEADLINE[task]
    unit, higher = evaluation.METRICS[task][metric]
    if "steps" in cell:
        steps = int(cell["steps"])
        column = f"{task}: {steps} steps"  # one column per task: stereo and flow share the metric EPE
        sub = _WithSettings(ctx, train_iterations=steps)
        try:
            metrics = measure(sub, task=task, dataset=dataset, method="lsm-single")
            trained = trained_lsm(sub, tasks=SINGLE[task])  # cached by measure's predictor (or by a figure)
        except lsm_data.DataUnavailable as error:
            ctx.not_run(row=ROW, column=column, metric=metric, reason=str(error), unit=unit, higher_is_better=higher)
            return ctx.records
        value, std, n = metrics[metric]
        # No ``step=``: a record with a step is a point of a training history, which claims skip;
        # the step count is in the column ("stereo: 120 steps").
        ctx.record(row=ROW, column=column, metric=metric, value=value, std=std, n=n, unit=unit,
                   higher_is_better=higher, note=f"{task}; model {model_key(sub, tasks=SINGLE[task])[:12]}")
        per_step = trained.history.get("seconds_per_step")
        if per_step is not None and np.isfinite(per_step):
            ctx.record(row=ROW, column=column, metric=f"{task} seconds per step", value=float(per_step), unit="s",
                       higher_is_better=False)
        losses = trained.history.get("loss", {}).get(task) or []
        if losses:
            tail = losses[-max(1, len(losses) // 10):]
            ctx.record(row=ROW, column=column, metric=f"{task} final training loss", value=float(np.mean(tail)),
                       higher_is_better=False, note="mean of the last 10% of steps")
        return ctx.records
    method = cell["method"]
    row = TRIVIAL[task] if method == "trivial" else method
    try:
        if method == "trivial":
            value, std, n = trivial_metric(ctx, task, dataset)
        else:
            value, std, n = measure(ctx, task=task, dataset=dataset, method=method)[metric]
    except lsm_data.DataUnavailable as error:
        ctx.not_run(row=row, column=f"{task}: level", metric=metric, reason=str(error), unit=unit, higher_is_better=higher)
        return ctx.records
    ctx.record(row=row, column=f"{task}: level", metric=metric, value=value, std=std, n=n, unit=unit, higher_is_better=higher,
               note=task)
    return ctx.records


def curve_plot(frame):
    """One panel per task: LSM's headline metric vs training steps, baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from suite.report.figures import FONT, figure_size

    # two panels a row: four in a row were wider than the report's column, so the page shrank them
    columns = min(2, len(lsm_data.TASKS))
    rows = -(-len(lsm_data.TASKS) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=figure_size(6, 3.2, columns=columns, rows=rows), squeeze=False)
    for ax, task in zip(axes.flat, lsm_data.TASKS):
        metric = evaluation.HEADLINE[task]
        df = frame[(frame.metric == metric) & frame.value.notna()]
        df = df[df.note.fillna("").str.startswith(task)] if "note" in df else df.iloc[:0]
        curve = df[df.row == ROW]
        if len(curve):
            steps = curve.column.str.extract(r"^\w+: (\d+) steps$", expand=False).astype(float)
            points = curve.assign(steps=steps).groupby("steps").value.agg(["mean", "std"]).sort_index()
            ax.errorbar(points.index, points["mean"], yerr=points["std"].fillna(0), marker="o", label=ROW)
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(list(points.index), [str(int(v)) for v in points.index])
        for i, (row, group) in enumerate(df[df.row != ROW].groupby("row", sort=False)):
            ax.axhline(group.value.mean(), linestyle="--" if row not in TRIVIAL.values() else ":",
                       color=f"C{i + 1}", label=row)
        ax.set_title(f"{task}: {metric}", fontsize=FONT["title"])
        ax.set_xlabel("training steps", fontsize=FONT["label"])
        ax.tick_params(labelsize=FONT["tick"])
        if len(df):
            ax.legend(fontsize=FONT["legend"])
        else:
            ax.text(0.5, 0.5, "no measured values yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig
