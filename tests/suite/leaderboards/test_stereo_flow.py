"""Stereo and flow leaderboards: the classical methods, the scoring, the checks, a run end to end."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

import suite.leaderboards.stereo_flow as stereo_flow
from suite.harness import registry, runner, store
from suite.harness.methods import TASKS, get_method, methods_for
from suite.leaderboards.benchmarks import Sample, all_benchmarks, mean_and_error

OURS = stereo_flow.__name__
BENCHMARK_IDS = ("stereo-mini-v1", "stereo-motorcycle-v1", "flow-mini-v1", "flow-middlebury-v1")
STEREO_METHODS = [m.name for m in methods_for("stereo")]
FLOW_METHODS = [m.name for m in methods_for("flow")]


@pytest.fixture(scope="module")
def texture():
    """scikit-image's astronaut photograph, 256x256: real texture, with integer shifts taken by cropping."""
    return cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


def _stereo_pair(texture, shift, height=96, width=128):
    # right(x - shift) = left(x): every left pixel has disparity `shift` (x < shift is unmatched).
    return texture[40:40 + height, 60:60 + width], texture[40:40 + height, 60 + shift:60 + shift + width]


def _flow_pair(texture, u, v, height=96, width=128):
    # image2(x + u, y + v) = image1(x, y) for integer (u, v).
    return texture[40:40 + height, 60:60 + width], texture[40 - v:40 - v + height, 60 - u:60 - u + width]


# --------------------------------------------------------------------------- registration


def test_methods_and_benchmarks_are_registered():
    assert {"opencv-sgbm", "opencv-bm"} <= set(STEREO_METHODS)
    assert {"skimage-tvl1", "skimage-ilk", "opencv-farneback", "opencv-dis"} <= set(FLOW_METHODS)
    for task in ("stereo", "flow"):
        for m in methods_for(task):
            if m.func.__module__ == OURS:
                assert m.kind == "classical" and m.citation and m.settings
    benchmarks = all_benchmarks()
    for benchmark_id in BENCHMARK_IDS:
        assert benchmark_id in benchmarks and benchmark_id.endswith("-v1")
        assert registry.get(f"leaderboard.{benchmark_id}") is not None
        assert benchmarks[benchmark_id].check is not None and benchmarks[benchmark_id].protocol
    assert list(benchmarks["stereo-mini-v1"].metrics) == ["EPE", "bad-2.0"]
    assert list(benchmarks["flow-mini-v1"].metrics) == ["EPE", "Fl-all"]


# --------------------------------------------------------------------------- methods


@pytest.mark.parametrize("name", STEREO_METHODS)
def test_stereo_method_follows_the_contract(name, texture):
    left, right = _stereo_pair(texture, 5, 48, 64)
    disparity = get_method("stereo", name).func(left, right, max_disparity=12)
    assert isinstance(disparity, np.ndarray) and disparity.shape == (48, 64), TASKS["stereo"]
    assert disparity.dtype in (np.float32, np.float64) and np.isfinite(disparity).all()


@pytest.mark.parametrize("name", FLOW_METHODS)
def test_flow_method_follows_the_contract(name, texture):
    image1, image2 = _flow_pair(texture, 2, 1, 48, 64)
    flow = get_method("flow", name).func(image1, image2)
    assert isinstance(flow, np.ndarray) and flow.shape == (48, 64, 2), TASKS["flow"]
    assert flow.dtype in (np.float32, np.float64) and np.isfinite(flow).all()


@pytest.mark.parametrize("name", ["opencv-sgbm", "opencv-bm"])
def test_stereo_methods_recover_a_constant_disparity(name, texture):
    # Measured on this 96x128 crop, d = 7, max_disparity 16 (interior: 8 px margin, x >= 40, past the
    # 32 searched columns): sgbm mean error 0.003 px, bm 0.042 px, no pixel off by more than 0.4 px.
    left, right = _stereo_pair(texture, 7)
    disparity = get_method("stereo", name).func(left, right, max_disparity=16)
    error = np.abs(disparity - 7.0)[8:-8, 40:-8]
    assert error.mean() < 0.25 and (error > 1.0).mean() < 0.01


@pytest.mark.parametrize("name, mean_bound", [("skimage-tvl1", 0.1), ("skimage-ilk", 0.1), ("opencv-dis", 0.1),
                                              ("opencv-farneback", 1.0)])
def test_flow_methods_recover_a_translation(name, mean_bound, texture):
    # Flow (3, -2) on the astronaut crop, 16 px margin. Measured: median EPE tvl1 0.005, ilk 1e-6,
    # dis 0.032, farneback 4e-4 px; mean EPE tvl1 0.009, ilk 1e-4, dis 0.034, farneback 0.47 px
    # (Farneback's polynomial fit fails on flat patches: 10 % of pixels above 2.6 px).
    image1, image2 = _flow_pair(texture, 3, -2)
    flow = get_method("flow", name).func(image1, image2)
    error = np.linalg.norm(flow - np.array([3.0, -2.0]), axis=-1)[16:-16, 16:-16]
    assert np.median(error) < 0.5 and error.mean() < mean_bound


def test_methods_reject_bad_images():
    image = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(ValueError, match=r"right: expected the shape of left"):
        stereo_flow.opencv_sgbm(image, image[:, :40], max_disparity=8)
    with pytest.raises(ValueError, match="max_disparity: expected a positive"):
        stereo_flow.opencv_bm(image, image, max_disparity=0)
    with pytest.raises(ValueError, match=r"image1: expected an \(H, W, 3\) uint8"):
        stereo_flow.skimage_tvl1(image.astype(np.float32), image)


def test_num_disparities_searches_max_disparity_itself():
    assert stereo_flow._num_disparities(16, 640) == 32  # OpenCV searches 0 .. 31, so 16 is included
    assert stereo_flow._num_disparities(15.5, 640) == 16
    assert stereo_flow._num_disparities(60, 741) == 64
    assert stereo_flow._num_disparities(200, 100) == 96  # capped below the image width


def test_fill_takes_the_background_neighbour():
    # Hand-worked: row 0 holes between 5 and 2 take min(5, 2) = 2, the left border hole takes its only
    # neighbour 5, the trailing hole its only neighbour 2; row 1 has no valid pixel, so 0.
    disparity = np.array([[9.0, 5.0, -1.0, -1.0, 2.0, -1.0], [-1.0] * 6])
    valid = disparity >= 0
    valid[0, 0] = False
    filled = stereo_flow.fill_invalid_disparity(disparity, valid)
    np.testing.assert_array_equal(filled, [[5, 5, 2, 2, 2, 2], [0] * 6])
    assert filled.dtype == np.float32


# --------------------------------------------------------------------------- scoring and checks


def test_stereo_scoring_matches_hand_computed_values():
    # Image A: errors 0, 3, 0, 0.5, 3 on its 5 finite pixels (inf = no GT): EPE 6.5 / 5 = 1.3 px,
    # bad-2.0 = 2 / 5 = 40 %. Image B: one pixel, error 1: EPE 1, bad-2.0 0 %.
    # Per-image means, then the mean over images: EPE 1.15, bad-2.0 20 %.
    gt = np.array([[1.0, 2.0, np.inf], [4.0, 5.0, 6.0]], np.float32)
    prediction = np.array([[1.0, 5.0, 0.0], [4.0, 5.5, 9.0]], np.float32)
    first = stereo_flow.score_stereo(prediction, {"disparity": gt, "valid": np.isfinite(gt)})
    assert first == pytest.approx({"EPE": 1.3, "bad-2.0": 40.0})
    second = stereo_flow.score_stereo(np.array([[3.0]]), {"disparity": np.array([[2.0]]), "valid": None})
    aggregate = mean_and_error([first, second])
    assert aggregate["EPE"][0] == pytest.approx(1.15) and aggregate["bad-2.0"][0] == pytest.approx(20.0)
    assert aggregate["EPE"][1] == pytest.approx(0.15)  # std (ddof 1) / sqrt(2) of (1.3, 1.0)


def test_flow_scoring_matches_hand_computed_values():
    # Three pixels; the third is Middlebury's unknown marker (1e10) and is excluded. Errors 5 and 1:
    # EPE 3.0 px. Fl-all: 5 > 3 and > 0.05 * |(3, 4)| = 0.25 is an outlier, 1 is not: 50 %.
    gt = np.array([[[3.0, 4.0], [0.0, 0.0], [1e10, 0.0]]], np.float32)
    prediction = np.array([[[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]]], np.float32)
    result = stereo_flow.score_flow(prediction, {"flow": gt, "valid": None})
    assert result == pytest.approx({"EPE": 3.0, "Fl-all": 50.0})
    assert stereo_flow.score_flow(prediction, {"flow": gt, "valid": None}, outliers=False) == pytest.approx(
        {"EPE": 3.0})


def test_stereo_max_disparity_from_calib_else_ground_truth():
    gt = np.array([[1.2, np.inf], [59.9, 3.0]])
    assert stereo_flow.stereo_max_disparity({"disparity": gt}) == 60
    assert stereo_flow.stereo_max_disparity({"disparity": gt, "calib": {"ndisp": 70}}) == 70


@pytest.mark.parametrize("benchmark_id", BENCHMARK_IDS)
def test_check_rejects_wrong_shape_and_nan(benchmark_id):
    spec = all_benchmarks()[benchmark_id]
    if spec.task == "stereo":
        sample = Sample("s", {}, {"disparity": np.zeros((4, 5), np.float32), "valid": None})
        good, wrong = np.zeros((4, 5), np.float32), np.zeros((5, 4), np.float32)
    else:
        sample = Sample("s", {}, {"flow": np.zeros((4, 5, 2), np.float32), "valid": None})
        good, wrong = np.zeros((4, 5, 2), np.float32), np.zeros((4, 5), np.float32)
    spec.check(good, sample)
    with pytest.raises(ValueError, match=r"expected a float .* of shape \(4, 5.*got shape"):
        spec.check(wrong, sample)
    with pytest.raises(ValueError, match="expected a float"):
        spec.check(good.astype(np.int16), sample)
    nan = good.copy()
    nan[(0,) * nan.ndim] = np.nan
    with pytest.raises(ValueError, match="expected finite values, got 1 NaN"):
        spec.check(nan, sample)
    with pytest.raises(ValueError, match="expected a numpy float array"):
        spec.check(good.tolist(), sample)


# --------------------------------------------------------------------------- data and end to end


def test_samples_are_the_validation_splits(smoke_data):
    benchmarks = all_benchmarks()
    stereo = list(benchmarks["stereo-mini-v1"].samples(smoke_data / "mini-stereo", None))
    # smoke: 4 scenes, val.txt lists the last one (20 %, at least one)
    assert [s.name for s in stereo] == ["scene0004"]
    assert stereo[0].inputs["max_disparity"] == stereo_flow.stereo_max_disparity(
        {"disparity": stereo[0].truth["disparity"]}) + 1  # generated calib.txt: ndisp = ceil(max) + 1
    flow = list(benchmarks["flow-mini-v1"].samples(smoke_data / "mini-flow", None))
    assert [s.name for s in flow] == ["00003"]  # FlyingChairs_train_val.txt: 1 1 1 2
    motorcycle = list(benchmarks["stereo-motorcycle-v1"].samples(smoke_data / "middlebury2014-motorcycle", None))
    assert len(motorcycle) == 1 and motorcycle[0].inputs["left"].shape == (500, 741, 3)
    assert motorcycle[0].inputs["max_disparity"] == 60


def test_leaderboards_end_to_end(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(smoke_data))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    options = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    experiments = [registry.get("leaderboard.stereo-mini-v1"), registry.get("leaderboard.flow-mini-v1")]
    summary = runner.run(experiments, options)
    assert summary.ok and summary.ran == len(STEREO_METHODS) + len(FLOW_METHODS)
    df = store.frame(tmp_path / "results")
    stereo = df[df.experiment == "leaderboard.stereo-mini-v1"]
    assert set(stereo.row) == set(STEREO_METHODS) and set(stereo.column) == {"mini-stereo"}
    epe = stereo[stereo.metric == "EPE"].set_index("row")
    assert len(epe) == len(STEREO_METHODS) and np.isfinite(epe.value).all() and (epe.unit == "px").all()
    assert (epe.n == 1).all() and not epe.higher_is_better.any()
    bad = stereo[stereo.metric == "bad-2.0"].value
    assert len(bad) == len(STEREO_METHODS) and ((bad >= 0) & (bad <= 100)).all()
    # Measured on scene0004 at the smoke size: EPE sgbm 0.53 px, bm 0.58 px.
    assert epe.loc["opencv-sgbm", "value"] < 1.5
    flow = df[df.experiment == "leaderboard.flow-mini-v1"]
    assert len(flow) == 2 * len(FLOW_METHODS) and set(flow.metric) == {"EPE", "Fl-all"}
    assert np.isfinite(flow.value).all() and set(flow.row) == set(FLOW_METHODS)
    again = runner.run(experiments, options)
    assert again.cached == len(STEREO_METHODS) + len(FLOW_METHODS) and again.ran == 0


# --------------------------------------------------------------------------- real data


def test_sgbm_on_the_real_motorcycle_pair(shared_data):
    from suite.data.readers._common import read_image
    from suite.data.readers.flow import read_motorcycle_npz

    folder = shared_data("stereo/middlebury2014_motorcycle_skimage")
    left, right = read_image(folder / "motorcycle_left.png"), read_image(folder / "motorcycle_right.png")
    disparity = read_motorcycle_npz(folder / "motorcycle_disp.npz")
    max_disparity = stereo_flow.stereo_max_disparity({"disparity": disparity})
    prediction = stereo_flow.opencv_sgbm(left, right, max_disparity=max_disparity)
    score = stereo_flow.score_stereo(prediction, {"disparity": disparity, "valid": np.isfinite(disparity)})
    # Measured: EPE 1.52 px, bad-2.0 9.75 % (opencv 5.0); Motorcycle at quarter size, all finite-GT pixels.
    assert max_disparity == 60 and score["bad-2.0"] < 12.0 and score["EPE"] < 2.0


def test_tvl1_on_middlebury_rubberwhale(shared_data):
    folder = shared_data("middlebury_flow")
    samples = list(all_benchmarks()["flow-middlebury-v1"].samples(folder, None))
    assert [s.name for s in samples] == ["Dimetrodon", "Grove2", "Grove3", "Hydrangea", "RubberWhale", "Urban2",
                                        "Urban3", "Venus"]
    rubber = samples[4]
    assert 0 < (~rubber.truth["valid"]).sum()  # RubberWhale has unknown-flow pixels
    flow = stereo_flow.skimage_tvl1(**rubber.inputs)
    stereo_flow.check_flow(flow, rubber)
    epe = stereo_flow.score_flow(flow, rubber.truth, outliers=False)["EPE"]
    # Measured: EPE 0.256 px with scikit-image 0.26's defaults.
    assert math.isfinite(epe) and epe < 0.35
