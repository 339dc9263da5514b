"""paper.yaml of LSM: loads, names registered experiments, and selects rows the experiments record."""
from __future__ import annotations

from pathlib import Path

import pytest

import reproductions.lsm  # noqa: F401  (registers the experiments)
from reproductions.lsm import evaluation, experiments
from suite.harness import claims, registry
from suite.harness.methods import TASKS

PAPER = Path(experiments.__file__).with_name("paper.yaml")

#: What each experiment records: (rows, columns, metrics), from the experiments' own constants.
_GENERATED = {"interactive": "mini-masks", "video": "mini-video", "stereo": "mini-stereo", "flow": "mini-flow"}


def _producible():
    rows = {task: [experiments.row_name(m) for m in ("lsm-single", "lsm-joint", *experiments.BASELINES[task])]
            for task in _GENERATED}
    out = {}
    for task, dataset in _GENERATED.items():
        columns = [evaluation.column(dataset, d) for d in (evaluation.DIRECTIONS if task == "stereo" else (None,))]
        out[f"lsm.{task}"] = (set(rows[task]), set(columns), set(evaluation.METRICS[task]))
    out["lsm.zero_shot"] = ({"LSM (Zero-shot)", "LSM (Single)", "LSM (Joint)", *experiments.ZERO_SHOT_BASELINE.values()},
                            set(_GENERATED), set(evaluation.HEADLINE.values()))
    out["lsm.ablations"] = (set(experiments.VARIANT_ROWS.values()), set(_GENERATED), set(evaluation.HEADLINE.values()))
    from reproductions.lsm import subspace_analysis

    out["lsm.subspaces"] = ({experiments.VARIANT_ROWS["full"], experiments.VARIANT_ROWS["no_min_context"],
                             subspace_analysis.DCT_ROW},
                            {f"{task}: {d}" for task, sources in subspace_analysis.SOURCES["generated"].items()
                             for d in sources}, {subspace_analysis.METRIC})
    out["lsm.efficiency"] = ({"LSM (Joint)"}, {"model", "training", "inference 512x384"},
                             {"parameters", "memory", "training iterations", "training time", "time per step",
                              *(f"{t} time" for t in _GENERATED)})
    from reproductions.lsm import learning_curve
    from reproductions.lsm.settings import PROFILES

    out["lsm.learning_curve"] = ({learning_curve.ROW, *learning_curve.TRIVIAL.values()},
                                 {c for t in _GENERATED for c in (f"{t}: level",
                                                                  f"{t}: {PROFILES['mini']['train_iterations']} steps")},
                                 set(evaluation.HEADLINE.values()))
    return out


def test_paper_yaml_loads_and_covers_every_experiment():
    paper = claims.load_paper(PAPER)
    known = set(registry.all_experiments())
    lsm = {e for e in known if e.startswith("lsm.")}
    assert lsm == {"lsm.interactive", "lsm.video", "lsm.stereo", "lsm.flow", "lsm.efficiency", "lsm.zero_shot",
                   "lsm.ablations", "lsm.subspaces", "lsm.learning_curve"}
    assert {t.experiment for t in paper.tables} == lsm
    # Fig. 13 states no number and no claim: its projection residual is a measured table without a verdict
    assert {c.spec["experiment"] for c in paper.claims} == lsm - {"lsm.subspaces"}
    # the printed numbers of the text
    values = {(v["row"], v["column"], v["metric"]): v["value"] for t in paper.tables for v in t.values}
    assert values[("LSM (Zero-shot)", "stereo", "EPE")] == 2.47
    assert values[("LSM (Zero-shot)", "flow", "EPE")] == 4.6
    assert values[("LSM (Zero-shot)", "video", "J mean")] == 0.682
    assert values[("LSM (Zero-shot)", "interactive", "IoU, 1 interaction")] == 0.802
    assert values[("LSM (Joint)", "model", "memory")] == 57.26


@pytest.mark.parametrize("claim", claims.load_paper(PAPER).claims, ids=lambda c: c.id)
def test_every_claim_selects_rows_its_experiment_records(claim):
    rows, columns, metrics = _producible()[claim.spec["experiment"]]
    for selection in claims.selections(claim):
        if "published" in selection:
            continue
        assert selection["row"] in rows, selection
        assert selection["column"] in columns, selection
        assert selection["metric"] in metrics, selection


def test_baselines_are_registered_methods_of_their_task():
    from suite.harness.methods import methods_for

    for task, names in experiments.BASELINES.items():
        leaderboard_task = experiments.LEADERBOARD_TASK[task]
        assert leaderboard_task in TASKS
        registered = {m.name for m in methods_for(leaderboard_task)}
        missing = set(names) - registered
        assert not missing, f"{task}: {missing} not registered (have {sorted(registered)})"
