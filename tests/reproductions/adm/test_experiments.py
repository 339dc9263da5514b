"""The ADM experiments end to end at the smoke profile, not-run reasons, the shallow experiment."""
from __future__ import annotations

import os

import numpy as np
import pytest

from reproductions.adm import experiments, shallow
from suite.harness import claims, registry, runner, store
from tests.conftest import shared_data_root
from tests.reproductions.adm.conftest import make_context

IDS = ("adm.table1", "adm.table2", "adm.table3", "adm.fig3", "adm.fig6", "adm.shallow")


def test_experiments_are_registered_with_cells_at_every_profile():
    for exp_id in IDS:
        exp = registry.get(exp_id)
        for profile in registry.PROFILES:
            assert exp.cells(profile)
    assert registry.get("adm.fig3").plots and registry.get("adm.fig6").plots and registry.get("adm.shallow").plots
    assert len(registry.get("adm.fig6").cells("mini")) == 5 * 4
    assert {c["network"] for c in registry.get("adm.table2").cells("full")} == set(
        ["Deeplab-largeFOV", "Deeplab-MSc-largeFOV", "Deeplab-VGG16", "ResNet-101"])


def test_tables_end_to_end_at_smoke(adm_env, tmp_path):
    """Tables 1-3 and Fig. 3 at smoke: every value measured, the report renders, claims are judged."""
    exps = [registry.get(i) for i in ("adm.table1", "adm.table2", "adm.table3", "adm.fig3")]
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    summary = runner.run(exps, opts)
    assert summary.ok and summary.not_run == 0, summary.failed
    df = store.frame(tmp_path / "results")
    t2 = df[(df.table == "Table 2") & (df.metric == "miou")]
    # The paper's six columns, the public-code ADM variant and the pCE-continued control, both mini networks.
    assert len(t2) == 16 and t2.value.between(0, 100).all()
    assert "pCE loss, continued for phase 2 (control: no regularizer)" in set(t2.column)
    assert "+grid CRF ADM (public code: no hard constraints)" in set(t2.column)
    t3 = df[df.table == "Table 3"]
    assert "+grid CRF ADM (public code: no hard constraints)" not in set(t3.column)
    assert set(df[df.table == "Table 3"].metric) == {"accuracy", "trimap16_accuracy", "trimap8_accuracy"}
    t1 = df[(df.table == "Table 1") & (df.metric == "grid_crf_loss")]
    assert set(t1.column) == {"train GD", "train ADM", "val GD", "val ADM"} and (t1.value >= 0).all()
    curve = df[(df.table == "Fig. 3") & (df.metric == "grid_crf_loss")]
    assert curve.step.notna().all() and curve.step.min() == 0
    gap = df[df.metric == "miou_gap"]
    assert len(gap) == 2

    from suite.report.render import build

    build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    page = (tmp_path / "reports" / "adm.html").read_text()
    assert "Table 2" in page and "Deeplab-MSc-largeFOV" in page and "adm-fig3-loss-vs-iterations.svg" in page
    paper = claims.load_paper(os.path.join(os.path.dirname(experiments.__file__), "paper.yaml"))
    verdicts = {v.claim.id: v for v in claims.judge_all(paper, df, profile="smoke")}
    for claim_id in ("t1-val-adm-lower-mini-largefov", "t2-adm-beats-gd-mini-aspp", "t2-adm-near-dense-mini-aspp",
                     "t3-trimap8-adm-beats-gd-mini-largefov", "fig3-adm-lower-loss"):
        assert verdicts[claim_id].verdict != claims.NOT_RUN, verdicts[claim_id].evidence
    assert verdicts["t2-adm-beats-gd-resnet-101"].verdict == claims.NOT_JUDGED  # full profile only


def test_missing_data_gives_not_run_with_the_reason(tmp_path, monkeypatch):
    from suite.data import registry as data_registry

    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data_registry, "default_data_root", lambda: tmp_path / "none")
    records = experiments.table2(make_context(table="Table 2"), {"network": "mini-LargeFOV", "method": "grid-adm"})
    assert [r.value for r in records] == [None, None]
    assert "mini-masks" in records[0].note and "energybench data build" in records[0].note


def test_full_profile_without_voc_says_which_dataset_and_how_to_add(tmp_path, monkeypatch):
    from suite.data import registry as data_registry

    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(data_registry, "default_data_root", lambda: tmp_path / "none")
    ctx = make_context("full", datasets=("scribblesup", "voc2012", "sbd"), table="Table 1")
    records = experiments.table1(ctx, {"network": "ResNet-101", "method": "grid-adm"})
    assert records and all(r.value is None for r in records)
    note = records[0].note
    assert "scribblesup" in note and "voc2012" in note and "energybench data add" in note


def test_fig6_cell_records_the_drop_from_full_length(adm_env):
    ctx = make_context(table="Fig. 6")
    records = experiments.fig6(ctx, {"length": 0.0, "method": "grid-adm"})
    metrics = {r.metric: r.value for r in records}
    assert set(metrics) == {"miou", "accuracy", "miou_drop", "accuracy_drop"}
    full = experiments.fig6(make_context(table="Fig. 6"), {"length": 1.0, "method": "grid-adm"})
    assert metrics["miou_drop"] == pytest.approx([r.value for r in full if r.metric == "miou"][0] - metrics["miou"])


def test_shallow_on_generated_scenes(adm_env):
    ctx = make_context(table="Fig. 2 (shallow)", **shallow.SHALLOW_PROFILES["smoke"])
    records = shallow.shallow(ctx, {"data": "generated"})
    values = {r.row: r.value for r in records}
    assert set(values) == set(shallow.ROWS.values())
    assert all(v is not None and 0 <= v <= 100 for v in values.values())


def test_shallow_seeds_and_bad_input():
    assert shallow.seeds_from_gsc(np.array([[0, 1, 2]])).tolist() == [[255, 1, 0]]
    assert shallow.seeds_from_mask(np.array([[3, 255, 4]]), np.array([[1, 1, 255]])).tolist() == [[1, 255, 255]]
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="seeds: expected both foreground"):
        shallow.segment(image, np.where(np.eye(8) > 0, 1, 255), shallow.SHALLOW_PROFILES["smoke"])
    with pytest.raises(ValueError, match=r"scribbles of shallow image: expected shape \(8, 8\)"):
        shallow.segment(image, np.full((4, 4), 255), shallow.SHALLOW_PROFILES["smoke"])


@pytest.fixture
def grabcut_root(tmp_path, monkeypatch):
    """The GrabCut images and the GSC scribbles of ../shared/data, linked as registry datasets."""
    source = shared_data_root() / "interactive_seg"
    if not (source / "GrabCut_scribbles_andrade2015").is_dir() or not (source / "GrabCut").is_dir():
        pytest.skip(f"GrabCut / GSC scribbles not found under {source} (set ENERGYBENCH_SHARED_DATA)")
    root = tmp_path / "data"
    root.mkdir()
    (root / "gsc-scribbles").symlink_to(source / "GrabCut_scribbles_andrade2015")
    (root / "grabcut").symlink_to(source / "GrabCut")
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    return root


def test_shallow_on_grabcut_with_gsc_scribbles(grabcut_root):
    settings = {**shallow.SHALLOW_PROFILES["smoke"], "images": 3}
    ctx = make_context(table="Fig. 2 (shallow)", datasets=("gsc-scribbles", "grabcut"), **settings)
    records = shallow.shallow(ctx, {"data": "grabcut-gsc"})
    values = {r.row: r for r in records}
    grid = values[shallow.ROWS["grid"]]
    assert grid.n == 3 and grid.value > 50.0  # interactive graph cuts from GSC seeds segment the object
    assert values[shallow.ROWS["dense"]].value is not None
    assert set(ctx.data.read) == {"gsc-scribbles", "grabcut"}


def test_fig1_cost_curves_against_a_brute_force_potts_cost():
    """Fig. 1's cut costs equal Eq. (1) evaluated directly on each labelling S^t (independent loop)."""
    import numpy as np

    from reproductions.adm import fig1

    intensity = fig1.profile_1d(length=30, edge=20, step=0.5, weak=0.05, noise=0.02, seed=3)
    sigma2 = np.mean(np.diff(intensity) ** 2)
    for delta in (None, 4.0):
        costs = fig1.cut_costs(intensity, delta=delta)
        for t in (1, 7, 20, 29):
            labels = (np.arange(30) >= t).astype(int)
            energy = flat = 0.0
            for p in range(30):
                for q in range(p + 1, 30):
                    k = float(q - p == 1) if delta is None else np.exp(-(q - p) ** 2 / (2 * delta ** 2))
                    w = k * np.exp(-(intensity[p] - intensity[q]) ** 2 / (2 * sigma2))
                    energy += w * (labels[p] != labels[q])
                    flat += k * (labels[p] != labels[q])
            assert costs[t - 1] == pytest.approx(energy / flat, rel=1e-10)
    with pytest.raises(ValueError, match="intensity"):
        fig1.cut_costs(np.array([1.0, np.nan, 2.0]), delta=None)
    with pytest.raises(ValueError, match="delta"):
        fig1.cut_costs(intensity, delta=0.0)


def test_fig1_grid_minimum_is_sharp_and_flat_elsewhere_dense_is_wider(tmp_path):
    from reproductions.adm import fig1
    from suite.harness.context import Context, DataAccess

    rows = {}
    for model in fig1.ROWS:
        ctx = Context(paper="adm", table=fig1.TABLE, profile="mini", settings=fig1.PROFILES["mini"], device="cpu",
                      seed=0, data=DataAccess([]))
        records = fig1.fig1(ctx, {"model": model})
        rows[model] = {r.metric: r.value for r in records if r.column == "summary"}
        assert sum(r.metric == "cost" for r in records) == fig1.PROFILES["mini"]["length"] - 1
    assert rows["grid"]["argmin_error"] == rows["dense"]["argmin_error"] == 0.0
    assert rows["grid"]["basin_width"] < rows["dense"]["basin_width"]
    assert rows["grid"]["flat_fraction"] > rows["dense"]["flat_fraction"]
