"""Every reader with a real sample in ../shared/data, run on it (skipped where absent).

Golden values below were read once from the samples and cross-checked by hand where noted.
"""
from __future__ import annotations

import numpy as np
import pytest

from suite.data import readers


def test_middlebury_flo(shared_data):
    root = shared_data("middlebury_flow")
    dataset = readers.MiddleburyFlow(root, require_flow=True)
    assert [s for s, *_ in dataset.items] == ["Dimetrodon", "Grove2", "Grove3", "Hydrangea", "RubberWhale",
                                              "Urban2", "Urban3", "Venus"]
    sample = dataset[0]
    assert sample["flow"].dtype == np.float32 and sample["flow"].shape == sample["image1"].shape[:2] + (2,)
    # Middlebury marks unknown flow with ~1e9; RubberWhale has such pixels.
    whale = readers.read_flo(root / "other-gt-flow/RubberWhale/flow10.flo")
    invalid = ~readers.flow_valid(whale)
    assert invalid.any() and np.abs(whale[invalid]).max() > 1e9
    assert np.abs(whale[~invalid]).max() < 100
    assert len(readers.MiddleburyFlow(root)) == 12


def test_sintel(shared_data):
    root = shared_data("mpi_sintel")
    for pass_name in ("clean", "final"):
        dataset = readers.Sintel(root, pass_name=pass_name)
        assert [item[0] for item in dataset.items] == ["alley_1", "cave_2", "market_5"]
        sample = dataset[1]
        assert sample["name"] == "cave_2/frame_0002"
        assert sample["image1"].shape == (436, 1024, 3) and sample["flow"].shape == (436, 1024, 2)
        assert sample["occlusions"].dtype == bool and 0 < sample["occlusions"].mean() < 0.5
        assert (sample["valid"] == ~sample["invalid"]).all()


def test_flyingchairs_and_split_list(shared_data):
    root = shared_data("flyingchairs")
    dataset = readers.FlyingChairs(root)
    assert len(dataset) == 6
    sample = dataset[0]
    assert sample["image1"].shape == (384, 512, 3) and sample["flow"].shape == (384, 512, 2)
    assert readers.flow_valid(sample["flow"]).all()
    labels = readers.FlyingChairs.read_split_list(next(root.glob("*.list")))
    assert len(labels) == 22872 and set(np.unique(labels)) == {1, 2}
    assert (labels == 2).sum() == 640  # the official validation set size
    train = readers.FlyingChairs(root, split="train")
    assert len(train) == int((labels[:6] == 1).sum())


def test_kitti_16bit_png(shared_data):
    folder = shared_data("stereo") / "kitti2015_devkit_sample/matlab/data"
    flow, valid = readers.read_kitti_flow(folder / "flow_gt.png")
    assert flow.shape == (375, 1242, 2) and valid.dtype == bool
    assert 0.1 < valid.mean() < 0.5 and (flow[~valid] == 0).all()
    # The pitfall: PIL decodes this 16-bit RGB PNG as 8-bit, losing the flow.
    from PIL import Image

    with Image.open(folder / "flow_gt.png") as image:
        assert np.asarray(image).dtype == np.uint8
    disparity, disparity_valid = readers.read_kitti_disparity(folder / "disp_gt.png")
    assert disparity.shape == (375, 1242) and 0 < disparity[disparity_valid].min() < disparity.max() < 256
    # Flow and disparity ground truth of the devkit sample cover the same pixels.
    assert (disparity_valid == valid).all()
    with pytest.raises(ValueError, match="16-bit"):
        readers.read_kitti_flow(folder / "image.png")
    with pytest.raises(ValueError, match="disp_gt.png"):
        readers.read_kitti_flow(folder / "disp_gt.png")


def test_eth3d_pfm_and_calib(shared_data):
    root = shared_data("stereo") / "eth3d_twoview_pfm_tumchallenge"
    dataset = readers.MiddleburyStereo(root)
    assert [s.name for s in dataset.items] == ["playground", "terrace"]
    sample = dataset[0]
    assert sample["disparity"].shape == sample["left"].shape[:2] == (490, 941)
    assert np.isinf(sample["disparity"]).any() and (sample["valid"] == np.isfinite(sample["disparity"])).all()
    assert sample["calib"]["width"] == 941 and sample["calib"]["cam0"][0, 0] == pytest.approx(542.019)
    # PFM rows are stored bottom-up: the first stored row is the image's last one.
    raw = (root / "playground/disp0.pfm").read_bytes()
    header_end = raw.index(b"-1\n") + 3
    first_stored = np.frombuffer(raw, "<f4", count=941, offset=header_end)
    np.testing.assert_array_equal(first_stored, sample["disparity"][-1])


def test_motorcycle_npz_matches_skimage(shared_data):
    import skimage.data

    folder = shared_data("stereo") / "middlebury2014_motorcycle_skimage"
    disparity = readers.read_motorcycle_npz(folder / "motorcycle_disp.npz")
    _, _, expected = skimage.data.stereo_motorcycle()
    np.testing.assert_array_equal(disparity, expected.astype(np.float32))


def test_bsds500(shared_data):
    root = shared_data("bsds500")
    val = readers.BSDS500(root, split="val")
    assert len(val) == 100 and len(readers.BSDS500(root, split="bench")) == 5
    sample = val[0]
    assert sample["image"].shape[:2] == sample["ground_truth"][0]["segmentation"].shape
    assert 4 <= len(sample["ground_truth"]) <= 9
    for annotator in sample["ground_truth"]:
        assert annotator["segmentation"].min() >= 1 and annotator["boundaries"].dtype == bool
        # BSDS boundaries lie where the segmentation changes.
        changes = readers.segmentation_boundaries(annotator["segmentation"].astype(np.int64))
        assert annotator["boundaries"].any() and changes.any()
    with pytest.raises(ValueError, match="groundTruth"):
        readers.read_bsds_gt(next((root / "bench/data/segs").glob("*.mat")))


def test_davis2016(shared_data):
    root = shared_data("davis2016")
    dataset = readers.Davis(root, binary=True)
    assert len(dataset) == 8
    sample = dataset[dataset.items.index("libby")]
    assert len(sample["images"]) == len(sample["masks"]) > 0
    assert sample["images"][0].shape == (480, 854, 3)
    mask = sample["masks"][0]
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_grabcut_void_band(shared_data):
    root = shared_data("interactive_seg")
    dataset = readers.GrabCut(root)
    assert len(dataset) == 50
    voids = [dataset[i]["void"].mean() for i in range(len(dataset))]
    assert sum(v > 0 for v in voids) == 42  # 42 of the 50 masks carry a 128 band
    sample = dataset[[n for n, *_ in dataset.items].index("stone1")]
    assert sample["void"].any() and not (sample["void"] & sample["mask"]).any()


def test_gsc_scribbles_name_alias(shared_data):
    root = shared_data("interactive_seg") / "GrabCut_scribbles_andrade2015"
    for scribble_set in (1, 2):
        dataset = readers.GSCScribbles(root, scribble_set=scribble_set)
        assert len(dataset) == 50
        index = dataset.items.index("124084")
        sample = dataset[index]
        assert sample["name"] == "124080"
        assert sample["image"].shape[:2] == sample["scribbles"].shape == sample["mask"].shape
        assert set(np.unique(sample["scribbles"])) == {0, 1, 2}
        # Foreground scribbles lie on the object, background scribbles off it.
        assert sample["mask"][sample["scribbles"] == 1].mean() > 0.95
        assert sample["mask"][sample["scribbles"] == 2].mean() < 0.05


def test_berkeley_masks(shared_data):
    root = shared_data("interactive_seg") / "Berkeley"
    dataset = readers.BerkeleyInteractive(root, images_root=shared_data("bsds500"))
    assert len(dataset) == 100
    sample = dataset[0]
    assert sample["mask"].dtype == bool and 0 < sample["mask"].mean() < 1


def test_otb(shared_data):
    root = shared_data("otb")
    dataset = readers.OTB(root)
    lengths = {s["name"]: (len(s["images"]), len(s["boxes"])) for s in dataset}
    assert lengths == {"Couple": (140, 140), "Crossing": (120, 120), "Football1": (74, 74)}
    football = dataset[2]
    assert len(list((root / "Football1/img").glob("*.jpg"))) == 81
    np.testing.assert_array_equal(football["boxes"][0], [153, 105, 26, 43])
    assert football["images"][0].ndim == 3
    assert len(readers.OTB(root, sequence_list="tb_100")) == 3


@pytest.mark.parametrize("name, count, shape", [("CBSD68", 68, 3), ("Kodak24", 24, 3), ("McMaster", 18, 3),
                                                 ("Set12", 12, 2)])
def test_denoising_sets(shared_data, name, count, shape):
    root = shared_data("denoising") / name
    dataset = readers.DenoisingSet(root, sigma=25, grey=name == "Set12")
    assert len(dataset) == count
    sample = dataset[0]
    assert sample["clean"].ndim == shape and sample["noisy"].dtype == np.float32
    noise = sample["noisy"] - sample["clean"] / np.float32(255)
    assert noise.std() == pytest.approx(25 / 255, rel=0.05)
    assert sample["noisy"].min() < 0 or sample["noisy"].max() > 1  # not clipped
    # KAIR reseeds with 0 for each image: the same noise for the same seed.
    np.testing.assert_array_equal(sample["noisy"], dataset[0]["noisy"])
