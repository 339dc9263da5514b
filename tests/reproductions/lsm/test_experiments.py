"""LSM experiments at smoke: runs through the harness, model and evaluation caches, plots,
the subspace residual, and the leaderboard methods."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import reproductions.lsm  # noqa: F401  (registers the experiments)
from reproductions.lsm import evaluation, plots, subspace_analysis
from suite.harness import registry, runner, store


def _run(exp_id, results):
    exp = registry.get(exp_id)
    summary = runner.run([exp], runner.Options(profile="smoke", device="cpu", results=results, progress=False))
    assert summary.ok, summary.failed
    return store.frame(results)


def test_efficiency_smoke_trains_caches_and_records(lsm_data, tmp_path):
    df = _run("lsm.efficiency", tmp_path / "results")
    values = df.set_index("metric").value
    from reproductions.lsm.model import parameter_count
    from reproductions.lsm.settings import PROFILES
    from reproductions.lsm.trained import build

    assert values["parameters"] == parameter_count(build(PROFILES["smoke"]))
    assert values["training iterations"] == PROFILES["smoke"]["train_iterations"]
    assert all(values[f"{t} time"] > 0 for t in ("interactive", "video", "stereo", "flow"))
    # a second run finds the joint model in the cache: same parameters, no retraining note missing
    again = _run("lsm.efficiency", tmp_path / "results-2")
    note = again[again.metric == "training time"].note.iloc[0]
    assert "cache" in str(note)


def test_baseline_evaluations_are_cached_and_repeated_per_seed(lsm_data, smoke_ctx):
    from reproductions.lsm import experiments

    ctx = smoke_ctx()
    first = experiments.measure(ctx, task="stereo", dataset="mini-stereo", method="opencv-sgbm",
                                direction="left-to-right")
    calls = []
    original = evaluation.evaluate
    evaluation.evaluate = lambda *a, **k: calls.append(a) or original(*a, **k)
    try:
        ctx.seed = 1
        second = experiments.measure(ctx, task="stereo", dataset="mini-stereo", method="opencv-sgbm",
                                     direction="left-to-right")
    finally:
        evaluation.evaluate = original
    assert first == second and not calls
    assert first["EPE"][0] > 0 and first["EPE"][2] >= 1


def test_projection_residual_golden():
    # basis spans the first two coordinate images; x = (3, 4, 12) -> the part outside is 12
    basis = torch.zeros(2, 1, 3, dtype=torch.float64)
    basis[0, 0, 0] = basis[1, 0, 1] = 1.0
    target = torch.tensor([[3.0, 4.0, 12.0]], dtype=torch.float64)
    rest, total = subspace_analysis.residual(basis, target, torch.ones(1, 3, dtype=torch.bool))
    assert rest == pytest.approx(144.0) and total == pytest.approx(169.0)
    # invalid pixels are left out
    rest, total = subspace_analysis.residual(basis, target, torch.tensor([[True, True, False]]))
    assert rest == pytest.approx(0.0) and total == pytest.approx(25.0)


def test_finest_bases_splits_flow_into_vx_vy():
    from reproductions.lsm.model import LSMOutput

    flow = LSMOutput(solution=torch.zeros(1, 2, 4, 4), bases=[torch.zeros(1, 2, 3, 2, 2), torch.ones(1, 2, 5, 4, 4)])
    parts = subspace_analysis.finest_bases(flow, "flow")
    assert [tuple(p.shape) for p in parts] == [(1, 5, 4, 4), (1, 5, 4, 4)]
    with pytest.raises(ValueError, match="no bases"):
        subspace_analysis.finest_bases(LSMOutput(solution=torch.zeros(1, 1, 4, 4)), "interactive")


def _frame(rows):
    return pd.DataFrame([{"paper": "lsm", "row": r, "column": c, "metric": m, "value": v, "std": None,
                          "unit": "", "step": None, "note": None} for r, c, m, v in rows])


def test_plots_draw_measured_bars_and_say_when_empty():
    import matplotlib

    matplotlib.use("Agg")
    frame = _frame([("LSM (Single)", "mini-flow", "EPE", 2.0), ("opencv-dis", "mini-flow", "EPE", 3.0),
                    ("LSM (Single)", "mini-flow", "EPE", 2.2)])
    fig = plots.task_bars(frame, "flow")
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [2.1, 3.0]  # the mean over the two runs, and the baseline
    zero = _frame([("LSM (Zero-shot)", "stereo", "EPE", 1.5)])
    bars = [round(p.get_width(), 3) for p in plots.zero_shot_bars(zero).axes[2].patches]  # horizontal bars
    assert bars == [1.5, 2.47]  # ours, then the paper's printed zero-shot EPE
    empty = plots.ablation_bars(_frame([]).reindex(columns=["row", "column", "metric", "value", "std", "step"]))
    assert "no measured values" in empty.axes[0].texts[0].get_text()


def test_leaderboard_methods_use_the_joint_model_of_the_data_profile(lsm_data, monkeypatch):
    from reproductions.lsm import methods
    from suite.harness.methods import TASKS, get_method

    assert methods.leaderboard_profile() == "smoke"  # the session's generated sets are smoke-built
    monkeypatch.setenv("ENERGYBENCH_LSM_PROFILE", "tiny")
    with pytest.raises(ValueError, match="ENERGYBENCH_LSM_PROFILE"):
        methods.leaderboard_profile()
    monkeypatch.delenv("ENERGYBENCH_LSM_PROFILE")
    for task in ("interactive-segmentation", "stereo", "flow", "video-segmentation"):
        assert task in TASKS and get_method(task, "lsm-joint").kind == "paper"
    rng = np.random.default_rng(0)
    left, right = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2))
    disparity = get_method("stereo", "lsm-joint").func(left, right, max_disparity=8)
    assert disparity.shape == (48, 64) and np.isfinite(disparity).all()
