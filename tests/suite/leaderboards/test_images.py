"""Denoising and edge leaderboards: the methods' contracts, the scoring, the checks, runs end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data

import suite.leaderboards.images as images
from metrics import edges as edge_metrics
from suite.data.readers.edges import kair_noisy
from suite.harness import registry, runner, store
from suite.harness.methods import get_method, methods_for
from suite.leaderboards.benchmarks import Sample, all_benchmarks, mean_and_error

DENOISE_IDS = ("denoise-mini-sigma25-v1", "denoise-cbsd68-sigma25-v1")
EDGE_IDS = ("edges-mini-v1", "edges-bsds500-v1")
DENOISERS = [m.name for m in methods_for("denoising")]
EDGE_METHODS = [m.name for m in methods_for("edges")]


@pytest.fixture(scope="module")
def photo():
    """A 96x96 crop of scikit-image's astronaut (a real photograph), its KAIR noisy version at
    sigma 25 (seed 0) in 0-255 units, and the noisy PSNR under the protocol."""
    clean = skimage.data.astronaut()[100:196, 200:296]
    noisy = kair_noisy(clean, 25, seed=0) * np.float32(255.0)
    return clean, noisy, images.score_denoising(noisy, {"clean": clean})["PSNR"]


@pytest.fixture(scope="module")
def step_image():
    """64x64 RGB, grey level 60 left of column 32 and 190 from it on, plus seeded noise (sigma 4)."""
    image = np.full((64, 64, 3), 60.0)
    image[:, 32:] = 190.0
    image += np.random.default_rng(0).normal(0, 4, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def test_methods_and_benchmarks_are_registered():
    assert {"energybench-tv-prox", "skimage-tv-chambolle", "opencv-nlmeans", "noisy-input"} <= set(DENOISERS)
    assert "skimage-wavelet" in DENOISERS
    assert get_method("denoising", "energybench-tv-prox").kind == "paper"
    assert {"sobel", "scharr", "canny-multiscale"} <= set(EDGE_METHODS)
    benchmarks = all_benchmarks()
    for benchmark_id in DENOISE_IDS + EDGE_IDS:
        assert registry.get(f"leaderboard.{benchmark_id}").datasets == (benchmarks[benchmark_id].dataset,)
    assert list(benchmarks["denoise-cbsd68-sigma25-v1"].metrics) == ["PSNR"]
    assert list(benchmarks["edges-bsds500-v1"].metrics) == ["ODS", "OIS", "AP"]


# --------------------------------------------------------------------------- methods


@pytest.mark.parametrize("name", DENOISERS)
def test_denoiser_follows_the_contract_and_beats_the_noise(name, photo):
    clean, noisy, noisy_psnr = photo
    before = noisy.copy()
    estimate = get_method("denoising", name).func(noisy, sigma=25.0)
    assert isinstance(estimate, np.ndarray) and estimate.shape == noisy.shape
    assert np.issubdtype(estimate.dtype, np.floating) and np.isfinite(estimate).all()
    np.testing.assert_array_equal(noisy, before)  # the input is not modified in place
    psnr = images.score_denoising(estimate, {"clean": clean})["PSNR"]
    if name == "noisy-input":
        np.testing.assert_array_equal(estimate, noisy)
        assert psnr == noisy_psnr
    else:
        # Measured on this crop (noisy 20.65 dB): tv-chambolle 27.80, tv-prox 27.17, nlmeans 27.36.
        assert psnr > noisy_psnr + 4.0


@pytest.mark.parametrize("name", [n for n in DENOISERS if n != "noisy-input"])
def test_denoiser_handles_one_channel(name, photo):
    clean, noisy, _ = photo
    grey = np.ascontiguousarray(noisy[..., :1])
    estimate = get_method("denoising", name).func(grey, sigma=25.0)
    assert estimate.shape == grey.shape
    before = images.score_denoising(grey, {"clean": clean[..., :1]})["PSNR"]
    assert images.score_denoising(estimate, {"clean": clean[..., :1]})["PSNR"] > before + 3.0


@pytest.mark.parametrize("name", DENOISERS)
def test_denoiser_rejects_bad_input(name, photo):
    _, noisy, _ = photo
    func = get_method("denoising", name).func
    with pytest.raises(ValueError, match=r"noisy: expected an \(H, W, C\) float image"):
        func(noisy[..., 0], sigma=25.0)
    with pytest.raises(ValueError, match="sigma: expected a positive"):
        func(noisy, sigma=0.0)


def test_weight_rules():
    # Getreuer's lambda at sigma 25: 0.7079/25 + 0.6849/625 = 0.0294118 -> weight 33.99991.
    assert images.getreuer_weight(25) == pytest.approx(33.99991, abs=1e-5)
    assert images.nlmeans_parameters(25, colour=True) == (3, 21, pytest.approx(13.75))
    assert images.nlmeans_parameters(25.5, colour=True) == (5, 35, pytest.approx(10.2))
    assert images.nlmeans_parameters(25, colour=False) == (5, 21, pytest.approx(10.0))
    assert images.nlmeans_parameters(150, colour=False) == (11, 35, pytest.approx(45.0))


@pytest.mark.parametrize("name", EDGE_METHODS)
def test_edge_method_follows_the_contract_and_finds_a_step(name, step_image):
    edge_map = get_method("edges", name).func(step_image)
    assert isinstance(edge_map, np.ndarray) and edge_map.shape == (64, 64)
    assert np.issubdtype(edge_map.dtype, np.floating) and np.isfinite(edge_map).all()
    assert edge_map.min() >= 0.0 and edge_map.max() == pytest.approx(1.0)
    _, columns = np.nonzero(edge_map >= 0.9 * edge_map.max())
    assert set(columns.tolist()) <= {31, 32}  # the step lies between columns 31 and 32
    # ... and along it: each row's strongest response is on the step in at least 90 % of the rows
    # (canny-multiscale: a row where the scales disagree by a pixel peaks at 2/3 there).
    assert np.isin(edge_map.argmax(axis=1), [31, 32]).mean() >= 0.9
    flat = get_method("edges", name).func(np.full((16, 16, 3), 128, np.uint8))
    assert flat.shape == (16, 16) and not flat.any()
    with pytest.raises(ValueError, match=r"image: expected an \(H, W, 3\) uint8 RGB image"):
        get_method("edges", name).func(step_image.astype(np.float32))


def test_sobel_is_the_metrics_detector(step_image):
    np.testing.assert_array_equal(images.sobel(step_image), edge_metrics.sobel_edges(step_image))


# --------------------------------------------------------------------------- scoring and checks


def test_psnr_score_matches_a_hand_computed_value():
    # Hand-made pair (computed by hand, not by the code under test): 12 values, one of them off by
    # 10 after KAIR's clip and rounding (110.4 -> 110; 300 -> 255 equals its 255; 99.6 -> 100), so
    # MSE = 100 / 12 and PSNR = 10 log10(255^2 * 12 / 100) = 10 log10(7803) = 38.922616 dB.
    clean = np.full((2, 2, 3), 100, np.uint8)
    clean[1, 1, 2] = 255
    estimate = clean.astype(np.float32)
    estimate[0, 0, 0], estimate[1, 1, 2], estimate[0, 1, 1] = 110.4, 300.0, 99.6
    assert images.score_denoising(estimate, {"clean": clean})["PSNR"] == pytest.approx(38.922616, abs=1e-6)
    # The leaderboard value is the mean of per-image PSNRs (KAIR), not the PSNR of the pooled MSE:
    # a second image off by 2 in one value has 10 log10(255^2 * 12 / 4) = 52.902016 dB.
    other = clean.astype(np.float32)
    other[0, 0, 0] = 102.0
    spec = all_benchmarks()["denoise-mini-sigma25-v1"]
    results = [spec.score(estimate, {"clean": clean}), spec.score(other, {"clean": clean})]
    assert spec.aggregate is None  # the default: mean_and_error
    value, error = mean_and_error(results)["PSNR"]
    assert value == pytest.approx((38.922616 + 52.902016) / 2, abs=1e-6)
    assert error == pytest.approx(abs(52.902016 - 38.922616) / 2, abs=1e-6)  # std (ddof 1) / sqrt(2)


def test_edge_aggregate_equals_the_boundary_benchmark():
    rng = np.random.default_rng(1)
    preds, truths = [], []
    for shape in ((40, 50), (36, 44)):
        gt_a = np.zeros(shape, bool)
        gt_a[shape[0] // 2, 5:-5] = True
        gt_a[5:-5, shape[1] // 3] = True
        gt_b = np.roll(gt_a, 1, axis=0)
        pred = np.clip(0.8 * gt_a + 0.3 * rng.random(shape), 0, 1)
        preds.append(pred)
        truths.append([gt_a, gt_b])
    spec = all_benchmarks()["edges-mini-v1"]
    result = spec.aggregate([spec.score(p, {"boundaries": t}) for p, t in zip(preds, truths)])
    reference = edge_metrics.boundary_benchmark(preds, truths)
    assert result == {"ODS": (reference["ods"], None), "OIS": (reference["ois"], None), "AP": (reference["ap"], None)}
    assert 0.3 < reference["ods"] < 1.0  # the maps hold the boundaries: a non-trivial score


@pytest.mark.parametrize("benchmark_id", DENOISE_IDS + EDGE_IDS)
def test_check_rejects_wrong_shape_and_nan(benchmark_id):
    spec = all_benchmarks()[benchmark_id]
    if spec.task == "denoising":
        sample = Sample("s", {"noisy": np.zeros((4, 5, 3), np.float32), "sigma": 25.0},
                        {"clean": np.zeros((4, 5, 3), np.uint8)})
        good, wrong = np.full((4, 5, 3), 300.0, np.float32), np.zeros((4, 5), np.float32)
    else:
        sample = Sample("s", {"image": np.zeros((4, 5, 3), np.uint8)}, {"boundaries": [np.zeros((4, 5), bool)]})
        good, wrong = np.full((4, 5), 0.5), np.zeros((5, 4))
    spec.check(good, sample)
    with pytest.raises(ValueError, match=r"expected a float .* of shape \(4, 5.*got shape"):
        spec.check(wrong, sample)
    nan = good.copy()
    nan[(0,) * nan.ndim] = np.nan
    with pytest.raises(ValueError, match="expected finite values, got 1 NaN"):
        spec.check(nan, sample)
    with pytest.raises(ValueError, match="expected a numpy float"):
        spec.check(good.tolist(), sample)
    if spec.task == "edges":
        with pytest.raises(ValueError, match=r"expected edge strengths in \[0, 1\], got values in \[0.5, 1.5\]"):
            spec.check(good + np.eye(4, 5), sample)


# --------------------------------------------------------------------------- data and end to end


def test_samples_follow_the_contracts(smoke_data):
    benchmarks = all_benchmarks()
    denoise = list(benchmarks["denoise-mini-sigma25-v1"].samples(smoke_data / "mini-denoise", None))
    assert [s.name for s in denoise] == ["0001", "0002", "0003"]
    first = denoise[0]
    assert first.inputs["sigma"] == 25.0 and first.inputs["noisy"].dtype == np.float32
    assert first.inputs["noisy"].shape == first.truth["clean"].shape == (32, 32, 3)
    stored = np.load(smoke_data / "mini-denoise" / "noisy" / "sigma25" / "0001.npy")
    np.testing.assert_allclose(first.inputs["noisy"], stored * 255.0, rtol=1e-6)  # 0-255 units
    edges = list(benchmarks["edges-mini-v1"].samples(smoke_data / "mini-edges", None))
    assert [s.name for s in edges] == ["000004"]  # smoke: 4 images, the test split is the last
    assert edges[0].inputs["image"].shape == (64, 64, 3) and len(edges[0].truth["boundaries"]) == 5


def test_denoising_leaderboard_end_to_end(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(smoke_data))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    options = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    experiment = registry.get("leaderboard.denoise-mini-sigma25-v1")
    summary = runner.run([experiment], options)
    assert summary.ok and summary.ran == len(DENOISERS)
    df = store.frame(tmp_path / "results")
    psnr = df[(df.experiment == experiment.id) & (df.metric == "PSNR")].set_index("row")
    assert sorted(psnr.index) == sorted(DENOISERS)  # one row per method
    assert np.isfinite(psnr.value).all() and (psnr.unit == "dB").all() and psnr.higher_is_better.all()
    assert (psnr.n == 2).all() and set(psnr.column) == {"mini-denoise"}
    assert psnr.value.idxmin() == "noisy-input"
    assert (psnr.value.drop("noisy-input") > psnr.loc["noisy-input", "value"] + 2.0).all()


def test_edge_leaderboard_end_to_end(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(smoke_data))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    options = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    experiment = registry.get("leaderboard.edges-mini-v1")
    summary = runner.run([experiment], options)
    assert summary.ok and summary.ran == len(EDGE_METHODS)
    df = store.frame(tmp_path / "results")
    df = df[df.experiment == experiment.id]
    assert len(df) == 3 * len(EDGE_METHODS) and set(df.metric) == {"ODS", "OIS", "AP"}
    assert set(df.row) == set(EDGE_METHODS) and (df.n == 1).all() and df["std"].isna().all()
    assert ((df.value > 0) & (df.value <= 1)).all()


# --------------------------------------------------------------------------- real data


def test_real_layouts_give_contract_samples(shared_data):
    benchmarks = all_benchmarks()
    cbsd68 = shared_data("denoising/CBSD68")
    sample = next(iter(benchmarks["denoise-cbsd68-sigma25-v1"].samples(cbsd68, 1)))
    assert sample.name == "101085" and sample.inputs["noisy"].shape == sample.truth["clean"].shape == (481, 321, 3)
    # KAIR noise: seed 0 for every image, not clipped.
    expected = kair_noisy(sample.truth["clean"], 25, seed=0) * np.float32(255.0)
    np.testing.assert_array_equal(sample.inputs["noisy"], expected)
    assert sample.inputs["noisy"].min() < 0
    bsds = shared_data("bsds500")
    sample = next(iter(benchmarks["edges-bsds500-v1"].samples(bsds, 1)))
    assert sample.name == "100007" and sample.inputs["image"].shape == (321, 481, 3)
    assert len(sample.truth["boundaries"]) == 5 and sample.truth["boundaries"][0].dtype == bool


def test_tv_chambolle_on_two_cbsd68_images(shared_data):
    spec = all_benchmarks()["denoise-cbsd68-sigma25-v1"]
    samples = list(spec.samples(shared_data("denoising/CBSD68"), 2))
    estimates = [images.skimage_tv_chambolle(s.inputs["noisy"], sigma=25.0) for s in samples]
    for estimate, sample in zip(estimates, samples):
        spec.check(estimate, sample)
    value, _ = mean_and_error([spec.score(e, s.truth) for e, s in zip(estimates, samples)])["PSNR"]
    # Measured: 101085 23.96 dB, 101087 27.62 dB, mean 25.79 dB (noisy input: 20.77 dB mean).
    assert math.isfinite(value) and value > 25.5
