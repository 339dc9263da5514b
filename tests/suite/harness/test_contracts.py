"""Contract tests over every registered experiment and every paper.yaml."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from suite.harness import claims, registry, runner, store
from suite.report.render import _paper_files

REPO = Path(__file__).resolve().parents[3]
EXPERIMENTS = {k: v for k, v in registry.all_experiments().items() if not k.startswith("toypaper.")}
PAPERS = _paper_files(EXPERIMENTS.values(), None)


def test_papers_are_registered():
    assert {"tvlayers"} <= {e.paper for e in EXPERIMENTS.values()}


@pytest.mark.parametrize("exp_id", sorted(EXPERIMENTS))
def test_experiment_contract(exp_id):
    exp = EXPERIMENTS[exp_id]
    for profile in registry.PROFILES:
        cells = exp.cells(profile)
        assert cells, f"{exp_id} has no cells at {profile}"
        assert all(isinstance(c, dict) for c in cells)
        for cell in cells:
            exp.dataset_ids(cell, profile)
    assert exp.table and exp.title


@pytest.mark.parametrize("exp_id", sorted(EXPERIMENTS))
def test_experiment_has_a_dvc_stage(exp_id):
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    commands = {s["cmd"] for s in stages.values()}
    assert f"energybench run {exp_id}" in commands


@pytest.mark.parametrize("paper", PAPERS, ids=lambda p: p.id)
def test_paper_yaml_references_known_experiments(paper):
    """A claim names a registered experiment, or one its paper's tables list as planned (shown as
    "no experiment yet" until it is registered); planned ids belong to the paper."""
    known = set(registry.all_experiments())
    planned = {t.experiment for t in paper.tables if t.experiment}
    for claim in paper.claims:
        if "experiment" in claim.spec:
            assert claim.spec["experiment"] in known | planned, claim.id
    for exp_id in planned:
        assert exp_id.startswith(f"{paper.id}."), exp_id


@pytest.mark.parametrize("exp_id", sorted(EXPERIMENTS))
def test_smoke_profile_runs_first_cell(exp_id, tmp_path):
    """Every experiment's smoke profile runs its first cell to records with numbers or reasons."""
    exp = EXPERIMENTS[exp_id]
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path, progress=False)
    task = runner.plan([exp], opts)[0]
    status = runner.execute(task, opts)
    assert status in (runner.STATUS_OK, runner.STATUS_NOT_RUN)
    cell = store.load_cells(tmp_path)[0]
    assert cell["records"], "a cell must return records"
    for rec in cell["records"]:
        assert rec["value"] is not None or rec["note"]
