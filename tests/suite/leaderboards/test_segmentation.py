"""Interactive-segmentation leaderboards: the baselines, the paper's methods, scoring, end to end."""
from __future__ import annotations

import numpy as np
import pytest

import suite.leaderboards.segmentation as segmentation
from suite.harness import registry, runner, store
from suite.harness.methods import methods_for
from suite.leaderboards.benchmarks import Sample

TASK = "interactive-segmentation"


def two_regions(size=48):
    """A real photo's texture in two colour-shifted regions, scribbles inside each."""
    from skimage import data
    from skimage.transform import resize

    texture = resize(data.astronaut(), (size, size), preserve_range=True, anti_aliasing=True)
    truth = np.zeros((size, size), np.uint8)
    truth[:, size // 2:] = 1
    image = 0.4 * texture + np.where(truth[..., None] == 1, [200.0, 40, 40], [30.0, 60, 200]) * 0.6
    scribbles = np.full((size, size), 255, np.uint8)
    scribbles[size // 4: 3 * size // 4, size // 8] = 0
    scribbles[size // 4: 3 * size // 4, 7 * size // 8] = 1
    return np.clip(image, 0, 255).astype(np.uint8), scribbles, truth


@pytest.mark.parametrize("name", ["opencv-grabcut", "skimage-random-walker", "adm-grid-crf", "adm-dense-crf"])
def test_every_method_keeps_the_contract_and_separates_two_regions(name):
    import reproductions.adm  # noqa: F401  (registers the paper's methods)

    method = {m.name: m for m in methods_for(TASK)}[name]
    image, scribbles, truth = two_regions()
    mask = method.func(image=image, scribbles=scribbles)
    segmentation.check_mask(mask, Sample("x", {"image": image, "scribbles": scribbles}, {}))
    assert segmentation.score_mask(mask, {"mask": truth})["IoU"] > 0.9


def test_score_golden_values():
    # 2 x 3, one void pixel: prediction right on 4 of the 5 others
    truth = np.array([[1, 1, 0], [0, 255, 0]], np.uint8)
    prediction = np.array([[1, 0, 0], [0, 1, 0]], bool)
    scores = segmentation.score_mask(prediction, {"mask": truth})
    # foreground: |P & G| = 1, |P | G| = 2 (void left out) -> IoU 0.5; errors 1 of 5 -> 20 %
    assert scores == {"IoU": 0.5, "error rate": 20.0}


def test_check_rejects_wrong_shape_and_non_binary():
    sample = Sample("x", {"image": np.zeros((4, 5, 3), np.uint8)}, {})
    with pytest.raises(ValueError, match=r"expected a \(4, 5\) mask, got shape \(5, 4\)"):
        segmentation.check_mask(np.zeros((5, 4), bool), sample)
    with pytest.raises(ValueError, match="bool"):
        segmentation.check_mask(np.full((4, 5), 0.5), sample)


def test_mini_leaderboard_end_to_end_and_report(tmp_path):
    import reproductions.adm  # noqa: F401
    from suite.report.render import build

    exp = registry.get("leaderboard.interactive-mini-v1")
    summary = runner.run([exp], runner.Options(profile="smoke", device="cpu", results=tmp_path / "results",
                                               progress=False))
    assert summary.ok and summary.not_run == 0, summary.failed
    df = store.frame(tmp_path / "results")
    iou = df[df.metric == "IoU"].set_index("row").value
    assert set(iou.index) >= {"opencv-grabcut", "skimage-random-walker", "adm-grid-crf", "adm-dense-crf"}
    # the smoke scenes give one with both a foreground and a background stroke
    assert iou.between(0, 1).all() and (df[df.metric == "IoU"].n >= 1).all()
    build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    page = (tmp_path / "reports" / "leaderboard.html").read_text()
    # ranked by IoU, best first (ties in any order)
    shown = sorted(iou.index, key=lambda name: page.index(f">{name}<"))
    assert list(iou[shown]) == sorted(iou, reverse=True)
    assert "ranked by IoU" in page and "mini-masks" in page


def test_a_leaderboard_whose_dataset_is_absent_renders_its_reasons(tmp_path, monkeypatch):
    import reproductions.adm  # noqa: F401
    from suite.report.render import build

    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    exp = registry.get("leaderboard.interactive-grabcut-gsc-v1")
    count = len(exp.cells("smoke"))  # one cell per registered interactive method
    assert count >= 4
    summary = runner.run([exp], runner.Options(profile="smoke", device="cpu", results=tmp_path / "results",
                                               progress=False))
    assert summary.ok and summary.not_run == count
    build(tmp_path / "results", tmp_path / "reports", profile="smoke")
    page = (tmp_path / "reports" / "leaderboard.html").read_text()
    # one line for the benchmark (issue 14): how to add the dataset, no table of "not run" rows and no
    # absolute paths of the machine that ran the cells
    assert "Benchmarks whose dataset is absent here" in page and "--as gsc-scribbles" in page
    assert f"{count} methods waiting" in page and "looked in" not in page
    assert page.count('<td class="num">not run</td>') == 0


def test_a_broken_method_fails_its_cell_with_the_contract(tmp_path):
    from suite.harness.methods import _METHODS, method

    @method("broken-shape", task=TASK)
    def broken(image, scribbles):
        return np.zeros((3, 3), bool)

    try:
        exp = registry.get("leaderboard.interactive-mini-v1")
        opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
        runner.ensure_generated([exp], opts)  # execute() alone does not build the data
        (task,) = [t for t in runner.plan([exp], opts) if t.cell["method"] == "broken-shape"]
        assert runner.execute(task, opts) == runner.STATUS_FAILED
        (cell,) = store.load_cells(tmp_path / "results")
        assert "method 'broken-shape'" in cell["error"] and "expected a (" in cell["error"]
    finally:
        _METHODS.pop((TASK, "broken-shape"))


def test_grabcut_gsc_real_images(shared_data, tmp_path, monkeypatch):
    """Two real GrabCut images with the GSC robot's initial scribbles (measured on the first
    two: IoU 0.28 and 0.97 for adm-grid-crf, 0.92 and 0.97 for opencv-grabcut)."""
    root = shared_data("interactive_seg")
    data = tmp_path / "data"
    data.mkdir()
    (data / "grabcut").symlink_to(root, target_is_directory=True)
    (data / "gsc-scribbles").symlink_to(root / "GrabCut_scribbles_andrade2015", target_is_directory=True)
    monkeypatch.setenv("ENERGYBENCH_DATA", str(data))
    import reproductions.adm  # noqa: F401

    samples = list(segmentation.grabcut_gsc_samples(data / "gsc-scribbles", 2, {"grabcut": data / "grabcut"}))
    assert len(samples) == 2 and all(set(np.unique(s.inputs["scribbles"])) <= {0, 1, 255} for s in samples)
    for name in ("adm-grid-crf", "opencv-grabcut"):
        method = {m.name: m for m in methods_for(TASK)}[name]
        scores = [segmentation.score_mask(method.func(**s.inputs), s.truth)["IoU"] for s in samples]
        print(name, scores)
        assert np.mean(scores) > 0.5


def test_leaderboard_ranks_by_the_first_metric_and_lists_unmeasured_last():
    import pandas as pd

    from suite.harness.records import Record
    from suite.report.render import leaderboard

    def rec(row, metric, value, note=None):
        return {**Record(paper="leaderboard", table="t", row=row, column="mini-masks", metric=metric, value=value,
                         unit="", higher_is_better=metric == "IoU", device="cpu", n=3, note=note).to_dict(),
                "cell": "{}"}

    frame = pd.DataFrame([rec("b", "IoU", 0.7), rec("b", "error rate", 3.0), rec("a", "IoU", 0.9),
                          rec("a", "error rate", 1.0), rec("c", "IoU", None, "not run: dataset missing"),
                          rec("c", "error rate", None, "not run: dataset missing")])
    table = leaderboard(registry.get("leaderboard.interactive-mini-v1"), frame,
                        [{"provenance": {"data_versions": {"mini-masks": "abcdef0123456789"}}}])
    assert [(line["method"], line.get("rank")) for line in table["lines"]] == [("a", 1), ("b", 2), ("c", None)]
    assert table["lines"][2]["values"]["IoU"][1] == "not run" and "dataset missing" in table["lines"][2]["note"]
    assert table["versions"] == ["mini-masks abcdef012345"] and table["primary"] == "IoU"


def test_a_users_method_joins_the_leaderboard_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "my_methods.py").write_text(
        "import numpy as np\n"
        "from suite.harness.methods import method\n\n"
        "@method('everything-foreground', task='interactive-segmentation', citation='a test')\n"
        "def everything(image, scribbles):\n"
        "    return np.ones(scribbles.shape, bool)\n")
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "ENERGYBENCH_PLUGINS": "my_methods",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    command = [sys.executable, "-m", "suite.cli", "run", "leaderboard.interactive-mini-v1", "--profile", "smoke",
               "--device", "cpu", "--results", str(tmp_path / "results"), "--no-progress"]
    done = subprocess.run(command, env=env, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    df = store.frame(tmp_path / "results")
    mine = df[(df.row == "everything-foreground") & (df.metric == "error rate")]
    assert len(mine) == 1 and mine.value.iloc[0] > 0  # labelling the background foreground is wrong


def test_results_stay_current_where_the_data_is_absent_but_not_where_it_differs(tmp_path, monkeypatch):
    import shutil

    import reproductions.adm  # noqa: F401

    data = tmp_path / "data"
    monkeypatch.setenv("ENERGYBENCH_DATA", str(data))
    runner.run([registry.get("leaderboard.interactive-mini-v1")],
               runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False))
    cells = store.load_cells(tmp_path / "results")
    assert runner.current_cells(cells) == (cells, 0)
    # rendered on a machine without the dataset: the recorded version counts
    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    assert runner.current_cells(cells)[1] == 0
    # with another version of it: the results are of other data
    shutil.copytree(data / "mini-masks", tmp_path / "elsewhere" / "mini-masks")
    extra = tmp_path / "elsewhere" / "mini-masks" / "changed.txt"
    extra.write_text("another version\n")
    assert runner.current_cells(cells) == ([], len(cells))
