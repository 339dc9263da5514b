"""Generated datasets: determinism, exact ground truth, and one reader path for real and generated."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from scipy import ndimage

from suite.data import compose, generate, manage, readers, registry


def test_build_is_deterministic(smoke_build, tmp_path):
    root, report = smoke_build
    again = manage.build(profile="smoke", root=tmp_path / "again", seed=0, progress=False, workers=1)
    for dataset_id, entry in report["datasets"].items():
        first = registry.manifest(root / dataset_id, use_cache=False)
        second = registry.manifest(tmp_path / "again" / dataset_id, use_cache=False)
        assert first["files"] == second["files"], dataset_id
        assert entry["version"] == again["datasets"][dataset_id]["version"]
    other = manage.build(profile="smoke", root=tmp_path / "other", seed=1, progress=False, workers=1,
                         datasets=["mini-flow"])
    assert other["datasets"]["mini-flow"]["version"] != report["datasets"]["mini-flow"]["version"]


def test_build_report(smoke_build):
    root, report = smoke_build
    assert set(report["datasets"]) == set(generate.GENERATORS)
    assert report["dvc"]["recorded"] is False
    assert sorted(p.name for p in root.iterdir()) == sorted(generate.GENERATORS)  # no staging left behind
    meta = json.loads((root / "mini-flow" / "meta.json").read_text())
    assert meta["profile"] == "smoke" and meta["seed"] == 0


def test_mini_flow_is_exact(smoke_build):
    root, _ = smoke_build
    dataset = readers.FlyingChairs(root / "mini-flow")
    assert len(dataset) == generate.PROFILES["smoke"]["flow"]
    assert len(readers.FlyingChairs(root / "mini-flow", split="val")) == 1
    for sample in dataset:
        height, width = sample["image1"].shape[:2]
        flow, occluded = sample["flow"], sample["occlusions"]
        assert np.abs(flow).max() <= width / 8 + 1e-4
        assert 0 < (~occluded).mean()
        xs, ys = compose.pixel_grid(height, width)
        warped = cv2.remap(sample["image2"].astype(np.float32), (xs + flow[..., 0]).astype(np.float32),
                           (ys + flow[..., 1]).astype(np.float32), cv2.INTER_LINEAR)
        error = np.abs(warped - sample["image1"]).mean(axis=2)
        # Visible pixels match up to interpolation; occluded ones do not.
        assert np.median(error[~occluded]) < 6
        if occluded.sum() > 20:
            assert np.median(error[occluded]) > np.median(error[~occluded])


def test_flow_ground_truth_of_a_pure_translation():
    """With the motions forced to one translation, the flow is that translation everywhere."""
    rng = np.random.default_rng(3)
    layers = compose.random_scene(rng, 32, 48, objects=(1, 1))
    shift = compose.affine(translation=(2.0, -1.0))
    first = [layer.placement for layer in layers]
    second = [shift @ t for t in first]
    image1, _, _ = compose.render(layers, first, 32, 48)
    image2, _, _ = compose.render(layers, second, 32, 48)
    # Content at (x, y) in frame 1 is at (x + 2, y - 1) in frame 2.
    np.testing.assert_array_equal(image2[:-1, 2:], image1[1:, :-2])


def test_mini_stereo_is_exact(smoke_build):
    root, _ = smoke_build
    dataset = readers.MiddleburyStereo(root / "mini-stereo")
    for sample in dataset:
        height, width = sample["left"].shape[:2]
        for key in ("disparity", "disparity_right"):
            assert sample[key].min() > 0 and sample[key].max() <= width / 8 + 1
        visible = sample["nonoccluded"]
        xs, ys = compose.pixel_grid(height, width)
        warped = cv2.remap(sample["right"].astype(np.float32), (xs - sample["disparity"]).astype(np.float32),
                           ys.astype(np.float32), cv2.INTER_LINEAR)
        assert np.median(np.abs(warped - sample["left"]).mean(axis=2)[visible]) < 6
        # Left-right consistency: a visible left pixel lands on a right pixel with the same disparity.
        target = np.clip(np.round(xs - sample["disparity"]).astype(int), 0, width - 1)
        back = sample["disparity_right"][ys.astype(int), target]
        assert np.median(np.abs(back - sample["disparity"])[visible]) < 0.1
        assert sample["calib"]["width"] == width


def test_motorcycle_is_skimage_pair(smoke_build):
    import skimage.data

    root, _ = smoke_build
    sample = registry.get("middlebury2014-motorcycle").open(root / "middlebury2014-motorcycle")[0]
    left, right, disparity = skimage.data.stereo_motorcycle()
    np.testing.assert_array_equal(sample["left"], left)
    np.testing.assert_array_equal(sample["right"], right)
    np.testing.assert_array_equal(sample["disparity"], disparity.astype(np.float32))


def test_mini_masks_and_scribbles(smoke_build):
    root, _ = smoke_build
    folder = root / "mini-masks"
    dataset = readers.VOC2012(folder, split="trainval")
    assert len(dataset) == generate.PROFILES["smoke"]["masks"]
    for index, sample in enumerate(dataset):
        label, objects, mask = sample["label"], sample["objects"], sample["mask"]
        assert (label == 255).any() and ((label == 255) == (objects == 255)).all()
        assert set(np.unique(mask)) <= {0, 1, 255} and (mask == 1).sum() >= 0.02 * mask.size
        assert ((mask == 1) == (objects == 1)).all()  # the binary mask is the main object
        lengths = []
        for length in readers.SCRIBBLE_LENGTHS:
            scribbles = readers.ScribbleSup(folder, length=length)[index]["scribbles"]
            labelled = scribbles != 255
            # Scribbles never touch the void band and always carry the class of the pixel.
            assert not (labelled & (label == 255)).any()
            assert (scribbles[labelled] == label[labelled]).all()
            lengths.append(int(labelled.sum()))
            if length == 1.0:
                present = set(np.unique(label)) - {255}
                assert set(np.unique(scribbles[labelled])) == present
        assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]


def test_shorten_and_skeleton_path():
    region = np.zeros((20, 40), bool)
    region[8:13, 3:37] = True
    path = generate.skeleton_path(region)
    assert len(path) >= 25 and (np.abs(np.diff(path, axis=0)) <= 1).all()  # a connected stroke
    assert len(generate.shorten(path, 0.5)) == round(0.5 * len(path))
    click = generate.shorten(path, 0.0)
    assert len(click) == 1 and abs(click[0][1] - 20) <= 2


def test_mini_video_davis_layout(smoke_build):
    root, _ = smoke_build
    sequences, frames = generate.PROFILES["smoke"]["video"]
    dataset = registry.get("mini-video").open(root / "mini-video")
    assert len(dataset) == sequences
    sample = dataset[0]
    assert len(sample["images"]) == len(sample["masks"]) == frames
    assert sample["masks"][0].max() >= 1
    assert len(readers.Davis(root / "mini-video", split="val", year="2016")) >= 1


def test_mini_edges_bsds_layout(smoke_build):
    root, _ = smoke_build
    total = sum(len(readers.BSDS500(root / "mini-edges", split=s)) for s in ("train", "val", "test"))
    assert total == generate.PROFILES["smoke"]["edges"]
    sample = readers.BSDS500(root / "mini-edges", split="train")[0]
    annotators = sample["ground_truth"]
    assert len(annotators) == generate.ANNOTATORS
    reference = annotators[0]["boundaries"]
    for annotator in annotators:
        assert annotator["boundaries"].any()
        np.testing.assert_array_equal(annotator["boundaries"],
                                      readers.segmentation_boundaries(annotator["segmentation"]))
    # Simulated annotators disagree near outlines but agree on most boundary pixels.
    assert any((a["boundaries"] != reference).any() for a in annotators[1:])
    near = ndimage.binary_dilation(reference, iterations=3)
    assert np.mean([near[a["boundaries"]].mean() for a in annotators[1:]]) > 0.8


def test_mini_denoise_kair_protocol(smoke_build):
    root, _ = smoke_build
    seeds = json.loads((root / "mini-denoise" / "noise.json").read_text())
    for sigma in generate.DENOISE_SIGMAS:
        dataset = readers.DenoisingSet(root / "mini-denoise", sigma=sigma)
        sample = dataset[1]
        expected = readers.kair_noisy(sample["clean"], sigma, seed=seeds[sample["name"]])
        np.testing.assert_array_equal(sample["noisy"], expected)
        assert sample["noisy"].dtype == np.float32
    assert len(set(seeds.values())) == len(seeds)


def test_generated_sets_open_through_the_registry(smoke_build, monkeypatch):
    root, _ = smoke_build
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root))
    for dataset_id in generate.GENERATORS:
        assert registry.locate(dataset_id) == root / dataset_id
        opened = registry.get(dataset_id).open()
        opened.check()


def test_unknown_profile():
    with pytest.raises(ValueError, match="profile"):
        manage.build(profile="huge", root="/nonexistent-energybench", progress=False)
