"""lsm.learning_curve at smoke: one model per step count (the profile's own count shares the
figures' cached Single model), the baselines' and the trivial prediction's levels, the plot, and
the trivial metrics against values computed here from the ground truth."""
from __future__ import annotations

import numpy as np
import pytest

import reproductions.lsm  # noqa: F401  (registers the experiments)
from reproductions.lsm import learning_curve
from reproductions.lsm.settings import PROFILES
from reproductions.lsm.trained import SINGLE, model_key
from suite.harness import registry


class _Recorder:
    """The smoke context plus ``record`` / ``not_run`` (what the experiment function calls)."""

    def __init__(self, ctx):
        self._ctx, self.records = ctx, []

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def record(self, **fields):
        self.records.append(fields)

    def not_run(self, **fields):
        self.records.append({**fields, "value": None})


def test_stereo_curve_cells_train_one_model_per_step_count_and_plot(lsm_data, smoke_ctx):
    import pandas as pd

    exp = registry.get("lsm.learning_curve")
    cells = [c for c in exp.grid(exp.settings("smoke")) if c["task"] == "stereo"]
    assert [c["steps"] for c in cells if "steps" in c] == exp.settings("smoke")["curve_steps"] == [1, 2]
    ctx = _Recorder(smoke_ctx(**exp.settings("smoke")))
    for cell in cells:
        if cell.get("steps", 1) == 1:  # one training (the key per step count: next test)
            learning_curve.learning_curve(ctx, cell)
    df = pd.DataFrame(ctx.records)
    epe = df[(df.metric == "EPE") & (df.row == learning_curve.ROW)]
    assert list(epe.column) == ["stereo: 1 steps"] and epe.value.notna().all()
    levels = df[df.column == "stereo: level"]
    assert set(levels.row) == {"opencv-sgbm", "zero disparity"} and levels.value.notna().all()
    per_step = df[df.metric == "stereo seconds per step"]
    assert (per_step.value > 0).all() and len(per_step) == 1
    figure = learning_curve.curve_plot(df.assign(paper="lsm"))
    assert len(figure.axes) == 4


def test_profile_step_count_is_the_figures_single_model(lsm_data, smoke_ctx):
    ctx = smoke_ctx()
    same = learning_curve._WithSettings(ctx, train_iterations=ctx.settings["train_iterations"])
    other = learning_curve._WithSettings(ctx, train_iterations=1)
    assert model_key(same, tasks=SINGLE["flow"]) == model_key(ctx, tasks=SINGLE["flow"])
    assert model_key(other, tasks=SINGLE["flow"]) != model_key(ctx, tasks=SINGLE["flow"])


def test_trivial_metrics_match_the_ground_truth(lsm_data, smoke_ctx):
    from reproductions.lsm import data as lsm_data_module

    ctx = smoke_ctx()
    value, _, n = learning_curve.trivial_metric(ctx, "stereo", "mini-stereo")
    truths = [s.truth for s in lsm_data_module.stereo_samples(ctx, "mini-stereo", ctx.settings["eval_limit"])]
    expected = np.mean([np.abs(t["disparity"][t["valid"]]).mean() for t in truths])
    assert n == len(truths) and value == pytest.approx(expected)
    value, _, _ = learning_curve.trivial_metric(ctx, "interactive", "mini-masks")
    assert 0 < value < 1  # IoU of "everything foreground" = the foreground fraction
