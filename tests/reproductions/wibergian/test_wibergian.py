"""wibergian.fig2 / table1 / table2 at the smoke profile, plus checks of their building blocks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from reproductions.wibergian import fig2, table1, table2
from suite.harness import claims, registry, runner, store

PAPER_YAML = Path(fig2.__file__).with_name("paper.yaml")


def _run_smoke(exp_id, tmp_path, *, cells=None):
    exp = registry.get(exp_id)
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    tasks = runner.plan([exp], opts)
    for task in tasks if cells is None else [t for t in tasks if cells(t.cell)]:
        assert runner.execute(task, opts) in (runner.STATUS_OK, runner.STATUS_NOT_RUN)
    return store.frame(tmp_path / "results")


def test_paper_yaml_loads_and_references_registered_experiments():
    paper = claims.load_paper(PAPER_YAML)
    known = set(registry.all_experiments())
    assert {"wibergian.fig2", "wibergian.table1", "wibergian.table2"} <= known
    assert all(c.spec["experiment"] in known for c in paper.claims)
    values = {(t.table, v["row"], v["column"]): v["value"] for t in paper.tables for v in t.values}
    # Spot checks against official-code-notes.md section 4.
    assert values[("Table 1", "Our fusion (damped)", table1.COLUMN["frames"])] == 0.565
    assert values[("Table 1", "Median fusion", table1.COLUMN["sequences"])] == 0.4458
    assert values[("Table 2 (monocular)", "Ours - Baseline", "Avg")] == 114.2
    assert values[("Table 2 (multi-view)", "Ours - Huber", "Avg")] == 46.1
    assert values[("Table 2 (multi-view)", "Tome et al. [33] - L2", "SitD.")] == 102.0


def test_fig2_smoke_records_curves_and_verdict_inputs(tmp_path):
    df = _run_smoke("wibergian.fig2", tmp_path)
    curves = df[df.metric == "sigma^2"]
    assert set(curves.row) == set(fig2.ROW.values()) and set(curves.column) == set(fig2.COLUMN.values())
    assert curves.step.notna().all() and len(curves) == 4 * 10
    for metric in ("converged", "max |dL/dsigma|", "any exploding step"):
        assert df[df.metric == metric].value.notna().sum() == 4, metric
    fig = fig2.plot_sigma(df)
    assert len(fig.axes) == 2
    # The evidence behind the verdicts: the curvature at t* and the gradient, per iteration, for both methods.
    for metric in ("E''(t*)", "|dL/dsigma|"):
        curve = df[df.metric == metric]
        assert len(curve) == 4 * 10 and curve.step.notna().all() and set(curve.row) == set(fig2.ROW.values()), metric
    assert (df[df.metric == "smallest E''(t*)"].value > 0).sum() == 4
    assert len(fig2.plot_curvature(df).axes) == 4


def test_toy_curvature_is_the_hessian_the_gradient_inverts():
    from suite.solvers.implicit import minimize

    """The recorded E''(t*) and |dL/dsigma| agree with a hand computation: dt*/dsigma = -E_tsigma / (E'' + lam)."""
    for method in (fig2.DAMPED, fig2.UNDAMPED):
        run = fig2.learn_sigma("paper", method, iterations=1, seed=3)
        gen = torch.Generator().manual_seed(3)
        x, inliers = fig2.sample_points("paper", generator=gen)
        sigma = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
        t = minimize(fig2.rbf_energy, x.unsqueeze(-1), (x, sigma), max_iter=10, lam=fig2.METHOD_LAMBDA[method])
        # d(grad_t E)/dsigma at t*; the Hessian is the one of the final Newton step (where L-BFGS stopped)
        tt = t.y.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fig2.rbf_energy(tt, x, sigma).sum(), tt, create_graph=True)
        (g_sigma,) = torch.autograd.grad(g.sum(), sigma)
        lam = fig2.METHOD_LAMBDA[method]
        expected = abs(2 * float(t.y[0, 0] - inliers.mean()) * float(g_sigma) / (float(t.hessian[0, 0, 0]) + lam))
        assert run["grad"][0] == pytest.approx(expected, rel=1e-6)
        assert run["curvature"][0] == pytest.approx(float(t.hessian[0, 0, 0]), rel=1e-12)


def test_toy_damped_gradient_respects_the_bound():
    """|dt*/dsigma| <= |d(grad E)/dsigma| / lambda on the toy energy, whatever the data."""
    from suite.solvers.implicit import argmin

    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, _ = fig2.sample_points("paper", generator=gen)
        sigma = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
        t = argmin(fig2.rbf_energy, x.unsqueeze(-1), (x, sigma), lam=0.1, warn=False)
        (dt,) = torch.autograd.grad(t.sum(), sigma)
        tt = t.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(fig2.rbf_energy(tt, x, sigma).sum(), tt, create_graph=True)
        (dg,) = torch.autograd.grad(g.sum(), sigma)
        assert abs(float(dt)) <= abs(float(dg)) / 0.1 + 1e-12


def test_table1_smoke_generated(tmp_path):
    df = _run_smoke("wibergian.table1", tmp_path, cells=lambda c: c["split"] == "frames")
    iou = df[(df.table == table1.TABLE) & (df.metric == "IoU")].set_index("row")
    for row in (table1.ROW_MEAN, table1.ROW_MEDIAN, "Tracker #1", table1.ROW_OURS):
        assert 0.0 <= iou.loc[row, "value"] <= 1.0, row
    # Undamped: a number, or "did not converge" said plainly.
    samuel = iou.loc[table1.ROW_SAMUEL]
    assert not np.isnan(samuel.value) or "did not converge" in samuel.note
    # The evidence behind the verdicts, for both methods: curvature at the minima and gradient size per step.
    steps = table1.PROFILES["smoke"]["steps"]
    for metric in table1.STEP_CURVES:
        curve = df[df.metric == metric]
        assert set(curve.row) == {table1.ROW_OURS, table1.ROW_SAMUEL} and curve.step.notna().all(), metric
        assert curve.groupby("row").size().max() == steps, metric
    summary = df[df.step.isna()].set_index(["row", "metric"]).value
    for row in (table1.ROW_OURS, table1.ROW_SAMUEL):
        assert summary[(row, "largest gradient norm")] >= summary[(row, "median gradient norm")] > 0
        assert np.isfinite(summary[(row, "smallest Hessian eigenvalue")])
    figures = table1.plot_training(df)
    assert list(figures) == ["training"] and len(figures["training"].axes) == 3


def test_fusion_hessians_are_the_energy_s_and_the_damped_gradient_is_bounded():
    """fuse(return_hessian=True) gives the Hessians of the corner energies (autograd on one problem), and the
    damped gradient of a corner obeys ||dy*/dw|| <= ||d(grad E)/dw|| / 0.1 in pixels."""
    rng = np.random.default_rng(0)
    gts, names = table1.generate_tracks(1, length=(12, 12), rng=rng)
    frames = table1.flatten(table1.simulated_set(gts, names, [(640, 480)], n_trackers=5, seed=0)).take(slice(3, 5))
    model = table1.FusionModel(5)
    pred, hess = table1.fuse(model, frames, lam=0.1, return_hessian=True)
    assert hess.shape == (4, 2, 2)
    points, weight, width = model.terms(frames)
    from suite.solvers.implicit import minimize

    info = minimize(table1.fusion_energy, points.detach(), (points, weight, width), max_iter=10)
    p0 = info.y[0]
    # Hessian of problem 0 where L-BFGS stopped: one damped Newton step before y*; check at y* with tolerance
    h0 = torch.autograd.functional.hessian(
        lambda p: table1.fusion_energy(p[None], points[:1].detach(), weight[:1].detach(), width[:1].detach())[0], p0)
    torch.testing.assert_close(hess[0], h0, rtol=1e-3, atol=1e-6)
    # Jacobians of corner 0 (2 coordinates) and of grad_y E there, w.r.t. all widths: ||J_y||_F <= ||J_g||_F / lambda
    jy = torch.stack([torch.autograd.grad(pred.reshape(-1, 2)[0, i], model.log_width, retain_graph=True)[0]
                      for i in range(2)])
    pp = p0.clone().requires_grad_(True)
    e = table1.fusion_energy(pp[None], points[:1], weight[:1], width[:1])[0]
    (grad_p,) = torch.autograd.grad(e, pp, create_graph=True)
    jg = torch.stack([torch.autograd.grad(grad_p[i], model.log_width, retain_graph=True)[0] for i in range(2)])
    assert float(jg.norm()) > 0
    assert float(jy.norm()) <= float(jg.norm()) / 0.1 * (1 + 1e-9)


def test_fusion_energy_minimum_is_the_common_corner():
    """Identical candidates: the fused corners are theirs, and the boxes survive the round trip."""
    boxes = torch.tensor([[[10.0, 20.0, 30.0, 40.0]] * 4], dtype=torch.float64)
    frames = table1.Frames(boxes, boxes[:, 0], torch.zeros(1, dtype=torch.float64),
                           boxes[:, 0, :2] + boxes[:, 0, 2:] / 2, torch.tensor([35.0], dtype=torch.float64),
                           torch.zeros(1, dtype=torch.long))
    with torch.no_grad():
        fused = table1.fuse(table1.FusionModel(4), frames, lam=0.1)
    torch.testing.assert_close(table1.to_pixels(fused, frames), boxes[:, 0])
    assert table1.mean_iou(table1.to_pixels(fused, frames), frames, [(640, 480)]) == 1.0


def test_table1_otb_cells_use_the_registry_or_say_why(tmp_path, monkeypatch, shared_data):
    root = shared_data("otb")
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root.parent))
    tracks = table1.otb_set(root, n_trackers=4, seed=0)
    assert len(tracks.gt) == 3 and all(c.shape[1] == 4 for c in tracks.candidates)
    assert all(len(g) == len(c) for g, c in zip(tracks.gt, tracks.candidates))
    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "empty"))
    from suite.harness.context import Context, DataAccess

    ctx = Context(paper="wibergian", table=table1.TABLE, profile="mini", settings=table1.PROFILES["mini"],
                  device="cpu", seed=0, data=DataAccess(["otb"]))
    records = table1.table1(ctx, {"data": "otb", "split": "frames"})
    assert records and all(r.value is None and "otb not present" in r.note for r in records)


def test_table2_smoke_first_cells(tmp_path):
    df = _run_smoke("wibergian.table2", tmp_path, cells=lambda c: c["variant"] in ("multi-baseline", "multi-l2"))
    mv = df[(df.table == table2.TABLE_MULTI) & (df.column == table2.AVG)].set_index("row")
    assert mv.loc[table2.ROW_BASELINE, "value"] > 0 and mv.loc[table2.ROW_L2, "value"] > 0
    assert set(df.column) == {*table2.ACTIONS.values(), table2.AVG}


def test_pose_evaluation_in_chunks_equals_one_batch():
    data = table2.synthetic_poses((9,), frames=2, seed=0)
    model = table2.PoseMixture([table2.fit_ppca(data["world"], basis=4)])
    prob = table2.Problem(data, "multi")
    whole = table2.evaluate(model, prob, robust="l2", max_iter=10, chunk=len(prob))
    parts = table2.evaluate(model, prob, robust="l2", max_iter=10, chunk=3)
    assert whole.keys() == parts.keys()
    for key in whole:
        assert parts[key] == pytest.approx(whole[key], rel=1e-9), key


def test_table3_parameter_counts_follow_the_learned_groups():
    poses = table2.synthetic_poses((1, 5), frames=8, seed=0)["world"]
    model = table2.PoseMixture(table2.fit_ppca_mixture(poses, basis=8, models=3))
    full = table2.parameter_counts(model, table2.VARIANTS["multi-huber"][4])
    assert full["Body Models"][0] == 3 * (51 + 8 * 51) and full["Covariance"][0] == 3 * 8
    assert full["Reprojection"][0] == 3 * 17 and full["Huber ‡"][0] == 3 and full["Cameras"][0] == 3 * 4
    assert full["Scaling ‡"][0] == 0 and full["Fusion ‡"][0] == 3 + 1
    assert full["Total"][0] == sum(p.numel() for p in model.parameters())  # every weight is learned there
    partial = table2.parameter_counts(model, table2.VARIANTS["multi-partial"][4])
    assert partial["Reprojection"][0] == partial["Fusion ‡"][0] == 0
    assert partial["Total"][0] == 3 * (51 + 8 * 51 + 8 + 4)


def test_ppca_mixture_clusters_the_poses_and_rejects_tiny_clusters():
    data = table2.synthetic_poses((1, 5, 6), frames=12, seed=0)
    ppcas = table2.fit_ppca_mixture(data["world"], basis=4, models=3)
    assert len(ppcas) == 3 and all(p["basis"].shape == (4, 17, 3) for p in ppcas)
    for p in ppcas:  # orthonormal bases, positive variances
        flat = p["basis"].reshape(4, -1)
        np.testing.assert_allclose(flat @ flat.T, np.eye(4), atol=1e-9)
        assert (p["variance"] > 0).all()
    # Distinct clusters: the means differ (sitting and standing poses do not share a mean).
    assert max(np.abs(a["mean"] - b["mean"]).max() for a in ppcas for b in ppcas) > 50
    single = table2.fit_ppca_mixture(data["world"], basis=4, models=1)[0]
    np.testing.assert_allclose(single["mean"], table2.fit_ppca(data["world"], basis=4)["mean"])
    with pytest.raises(ValueError, match="clusters"):
        table2.fit_ppca_mixture(data["world"][:12], basis=4, models=3)
    with pytest.raises(ValueError, match="models"):
        table2.fit_ppca_mixture(data["world"], basis=4, models=0)


def test_mixture_reconstruction_is_a_weighted_average_learned_end_to_end():
    data = table2.synthetic_poses((9,), frames=2, seed=0)
    ppca = table2.fit_ppca(data["world"], basis=4)
    prob = table2.Problem(data, "multi")
    single = table2.PoseMixture([ppca])
    with torch.no_grad():
        one = table2.reconstruct(single.models[0], prob, robust="l2", lam=0.1, max_iter=10)
        # one model: weight 1; two identical models: whatever the weights, the same pose
        torch.testing.assert_close(table2.reconstruct_mixture(single, prob, robust="l2", lam=0.1, max_iter=10), one)
        twin = table2.PoseMixture([ppca, ppca])
        twin.fusion_bias.data = torch.tensor([2.0, -1.0], dtype=torch.float64)
        torch.testing.assert_close(table2.reconstruct_mixture(twin, prob, robust="l2", lam=0.1, max_iter=10), one)
    # Different models: the gradient of the loss reaches the fusion weights and every model's basis.
    other = table2.fit_ppca(table2.synthetic_poses((1,), frames=2, seed=1)["world"], basis=4)
    mix = table2.PoseMixture([ppca, other])
    pred = table2.reconstruct_mixture(mix, prob.take(torch.arange(4)), robust="l2", lam=0.1, max_iter=10)
    pred.square().sum().backward()
    for p in (mix.fusion_bias, mix.log_temperature, mix.models[0].basis, mix.models[1].basis):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_pose_energy_minimum_recovers_a_clean_model_pose():
    """Noise-free detections of a pose inside the model: the multi-view minimiser finds it."""
    data = table2.synthetic_poses((1,), frames=2, seed=0)
    model = table2.PoseModel(table2.fit_ppca(data["world"], basis=8))
    coeffs = torch.tensor([[30.0, -20.0, 10.0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    with torch.no_grad():
        pose = model.shape(torch.tensor([0.7], dtype=torch.float64), coeffs)[0].numpy() + [0, 900, 0]
    clean = {"world": pose[None], "detections": np.stack([table2.project(pose, c) for c in data["cameras"]])[None],
             "actions": ["Walk"], "cameras": data["cameras"]}
    prob = table2.Problem(clean, "multi")
    with torch.no_grad():
        pred = table2.reconstruct(model, prob, robust="l2", lam=0.1, max_iter=60)
    assert float((pred - prob.gt).norm(dim=-1).mean()) < 5.0  # mm; the prior pulls a little


@pytest.mark.slow
def test_mini_profile_end_to_end(tmp_path):
    """The whole paper at mini (minutes): report with the three tables and the Fig. 2 plot."""
    from suite.report.render import build

    exps = registry.resolve(["wibergian"])
    opts = runner.Options(profile="mini", device="cpu", results=tmp_path / "results", progress=False)
    assert runner.run(exps, opts).ok
    build(tmp_path / "results", tmp_path / "reports", profile="mini")
    page = (tmp_path / "reports" / "wibergian.html").read_text()
    assert "Table 1" in page and "Table 2 (multi-view)" in page and ".svg" in page
    assert os.path.exists(tmp_path / "reports" / "wibergian")
