"""Readers of LSM's full-profile sets (suite/data/readers/lsm_sets.py), each on a tiny tree written
in its official layout by the test: the VGG interactive benchmark, SBD minus the benchmark's PASCAL
images, DAVIS split lists of both distributions, FlyingThings3D with the CRL split."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from suite.data import registry
from suite.data.readers import FlyingThings3D, LayoutError, MalformedFileError, write_pfm
from suite.data.readers.lsm_sets import (
    CRL_LARGE_DISPARITY,
    SBDExcluding,
    DavisSplit,
    FlyingThings3DCRL,
    VGGInteractive,
    crl_excluded,
    read_davis_split,
    write_vgg_interactive,
)

VGG_NAMES = ["2007_000129", "2008_001234", "banana1", "GT04"]


def _vgg_samples(names=VGG_NAMES, shape=(24, 32)):
    rng = np.random.default_rng(0)
    samples = []
    for k, name in enumerate(names):
        mask = np.zeros(shape, bool)
        mask[6:18, 8 + k: 24 + k] = True
        void = np.zeros(shape, bool)
        void[5, 8:24] = True  # a band on the boundary
        scribbles = np.zeros(shape, np.uint8)
        scribbles[12, 12:20] = 1
        scribbles[1, 2:30] = 2
        samples.append({"name": name, "image": rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "mask": mask,
                        "void": void, "scribbles": scribbles})
    return samples


def test_vgg_interactive_reads_the_official_layout(tmp_path):
    samples = _vgg_samples()
    root = write_vgg_interactive(tmp_path / "vgg-interactive" / "data", samples).parent
    reader = registry.get("vgg-interactive").open(root)  # the distribution's data/ folder is found
    assert len(reader) == 4 and reader.items == sorted(VGG_NAMES)
    assert reader.pascal_ids == ["2007_000129", "2008_001234"]
    for written in samples:
        sample = reader[reader.items.index(written["name"])]
        assert sample["image"].shape == (24, 32, 3) and sample["image"].dtype == np.uint8
        np.testing.assert_array_equal(sample["mask"], written["mask"] & ~written["void"])
        np.testing.assert_array_equal(sample["void"], written["void"])
        np.testing.assert_array_equal(sample["scribbles"], written["scribbles"])
        assert sample["source"] == ("pascal" if written["name"][0].isdigit() else "other")
    reader.check()


def test_vgg_interactive_rejects_bad_layouts_naming_them(tmp_path):
    root = write_vgg_interactive(tmp_path / "a", _vgg_samples())
    (root / "images-labels" / "banana1-anno.png").unlink()
    with pytest.raises(LayoutError, match=r"1 images have no images-labels/<name>-anno.png.*banana1"):
        VGGInteractive(root)
    assert len(VGGInteractive(root, scribbles=False)) == 4  # ground truth only
    (root / "images-gt" / "GT04.png").unlink()
    with pytest.raises(LayoutError, match=r"images have no images-gt/ file.*GT04"):
        VGGInteractive(root, scribbles=False)
    with pytest.raises(LayoutError, match=r"folder images/ not found"):
        VGGInteractive(tmp_path / "a" / "images")
    # a ground truth of another size, a grey-level mask, a scribble file with a fourth index
    root = write_vgg_interactive(tmp_path / "b", _vgg_samples())
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "images-gt" / "banana1.png")
    reader = VGGInteractive(root)
    with pytest.raises(MalformedFileError, match=r"banana1\.png: ground truth is 10 x 10, its image 32 x 24"):
        reader[reader.items.index("banana1")]
    Image.fromarray(np.full((24, 32), 77, np.uint8)).save(root / "images-gt" / "GT04.png")
    with pytest.raises(MalformedFileError, match=r"GT04\.png: GrabCut mask values must be 0, 128 or 255"):
        reader[reader.items.index("GT04")]
    bad = np.zeros((24, 32), np.uint8)
    bad[0, 0] = 3
    Image.fromarray(bad).save(root / "images-labels" / "2007_000129-anno.png")
    with pytest.raises(MalformedFileError, match=r"2007_000129-anno\.png: GSC scribble indices"):
        reader[0]


def test_vgg_interactive_reads_real_gsc_files(shared_data, tmp_path):
    # The benchmark's GrabCut part as Andrade & Carrera redistribute it (same files, same palette):
    # linked into the benchmark's layout, never copied.
    gsc = shared_data("interactive_seg/GrabCut_scribbles_andrade2015")
    images = shared_data("interactive_seg/GrabCut/data_GT")
    root = tmp_path / "vgg"
    for folder in ("images", "images-gt", "images-labels"):
        (root / folder).mkdir(parents=True)
    names = ["106024", "153077", "181079"]
    for name in names:
        (root / "images" / f"{name}.jpg").symlink_to(images / f"{name}.jpg")
        (root / "images-gt" / f"{name}.png").symlink_to(gsc / "ground-truth" / f"{name}.png")
        (root / "images-labels" / f"{name}-anno.png").symlink_to(gsc / "scribbles-set-1" / f"{name}-anno.png")
    reader = VGGInteractive(root)
    assert reader.items == names and reader.pascal_ids == []
    for sample in reader:
        assert sample["mask"].shape == sample["image"].shape[:2]
        fg, bg = sample["scribbles"] == 1, sample["scribbles"] == 2
        assert fg.any() and bg.any()
        # the robot user's foreground strokes lie on the object, its background strokes off it
        assert sample["mask"][fg].mean() > 0.95 and sample["mask"][bg].mean() < 0.05


def _write_sbd(root, ids, *, train):
    import scipy.io

    base = root / "dataset"
    (base / "img").mkdir(parents=True)
    (base / "cls").mkdir()
    for index, image_id in enumerate(ids):
        Image.fromarray(np.full((20, 30, 3), index * 10, np.uint8)).save(base / "img" / f"{image_id}.jpg")
        segmentation = np.zeros((20, 30), np.uint8)
        segmentation[5:15, 5:25] = 1 + index % 20
        scipy.io.savemat(base / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": segmentation}})
    (base / "train.txt").write_text("\n".join(train) + "\n")
    (base / "val.txt").write_text("\n".join(sorted(set(ids) - set(train))) + "\n")
    return root


def test_sbd_excluding_drops_the_benchmarks_pascal_images(tmp_path):
    ids = ["2007_000129", "2007_000200", "2008_001234", "2008_002000", "2009_000001"]
    sbd = _write_sbd(tmp_path / "sbd", ids, train=ids[:4])
    vgg = write_vgg_interactive(tmp_path / "vgg", _vgg_samples())
    reader = SBDExcluding(sbd, split="train", exclude_benchmark=vgg)
    assert reader.items == ["2007_000200", "2008_002000"]
    assert reader.excluded == ["2007_000129", "2008_001234"]
    sample = reader[0]
    assert sample["name"] == "2007_000200" and sample["label"].max() == 2
    assert SBDExcluding(sbd, split="val").items == ["2009_000001"]  # nothing to exclude
    assert SBDExcluding(sbd, split="train", exclude=["2007_000200"]).excluded == ["2007_000200"]
    with pytest.raises(ValueError, match="exclude: expected a collection"):
        SBDExcluding(sbd, exclude="2007_000200")
    with pytest.raises(LayoutError, match=r"folder images/ not found"):
        SBDExcluding(sbd, exclude_benchmark=tmp_path / "sbd")
    with pytest.raises(LayoutError, match="no SBD val images outside the excluded ones"):
        SBDExcluding(sbd, split="val", exclude=["2009_000001"])
    # a benchmark whose PASCAL images are not named by their VOC ids: nothing could be excluded
    renamed = write_vgg_interactive(tmp_path / "renamed", _vgg_samples(["pascal_1", "banana1"]))
    with pytest.raises(LayoutError, match=r"renamed: no image of images/ is named by a PASCAL VOC id"):
        SBDExcluding(sbd, exclude_benchmark=renamed)


def _write_davis(root, sequences, frames=3):
    for sequence in sequences:
        for folder, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
            (root / folder / "480p" / sequence).mkdir(parents=True)
        for t in range(frames):
            Image.fromarray(np.full((16, 24, 3), 40 * t, np.uint8)).save(
                root / "JPEGImages" / "480p" / sequence / f"{t:05d}.jpg")
            mask = np.zeros((16, 24), np.uint8)
            mask[4:12, 4 + t: 12 + t] = 255
            Image.fromarray(mask, mode="L").save(root / "Annotations" / "480p" / sequence / f"{t:05d}.png")
    return root


def test_davis_split_lists_of_both_distributions(tmp_path):
    # DAVIS-2016 package: ImageSets/480p/val.txt with one image/annotation pair per frame.
    root = _write_davis(tmp_path / "davis2016", ["bear", "blackswan", "camel"])
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("".join(
        f"/JPEGImages/480p/{s}/{t:05d}.jpg /Annotations/480p/{s}/{t:05d}.png\n"
        for s in ("blackswan", "camel") for t in range(3)))
    reader = DavisSplit(root, year="2016", split="val")
    assert reader.items == ["blackswan", "camel"]
    sample = reader[0]
    assert sample["name"] == "blackswan" and len(sample["images"]) == 3
    assert sample["masks"][1].dtype == np.uint8 and set(np.unique(sample["masks"][1])) == {0, 1}
    # DAVIS-2017 package: ImageSets/2017/train.txt and ImageSets/2016/val.txt, one sequence a line.
    root = _write_davis(tmp_path / "davis2017", ["bear", "bike-packing", "camel"])
    for year, split, names in (("2017", "train", "bear\nbike-packing\n"), ("2016", "val", "camel\n")):
        (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / year / f"{split}.txt").write_text(names)
    assert DavisSplit(root, year="2017", split="train", binary=False).items == ["bear", "bike-packing"]
    assert DavisSplit(root, year="2016", split="val").items == ["camel"]
    with pytest.raises(LayoutError, match=r"no split list among"):
        DavisSplit(root, year="2017", split="val")
    (root / "ImageSets" / "2016" / "val.txt").write_text("camel\ndog\n")
    with pytest.raises(LayoutError, match=r"1 sequences of ImageSets/2016/val.txt have no frames.*dog"):
        DavisSplit(root, year="2016", split="val")
    with pytest.raises(ValueError, match="year: expected"):
        DavisSplit(root, year="2018")


def test_read_davis_split_rejects_other_lines(tmp_path):
    path = tmp_path / "val.txt"
    path.write_text("bear\n\nbear\ncamel\n")
    assert read_davis_split(path) == ["bear", "camel"]
    path.write_text("bear\n/JPEGImages/bear.jpg /Annotations/480p/bear/00000.png\n")
    with pytest.raises(MalformedFileError, match=r"val\.txt: line 2: expected /JPEGImages/<resolution>"):
        read_davis_split(path)
    path.write_text("bear camel dog\n")
    with pytest.raises(MalformedFileError, match=r"line 1: expected a sequence name"):
        read_davis_split(path)
    path.write_text("\n")
    with pytest.raises(MalformedFileError, match="empty split list"):
        read_davis_split(path)


def test_crl_filter_golden_values():
    # Pang et al.'s test filter as tlkvstepan/PracticalDeepStereo_NIPS2018 codes it:
    # (disparity > 300).sum() * 100 / size > 25
    disparity = np.full((4, 10), 12.0, np.float32)
    disparity[:, :2] = 300.5  # 20%
    assert not crl_excluded(disparity)
    disparity[0, 2:4] = 301.0  # 25% exactly: kept
    assert not crl_excluded(disparity)
    disparity[1, 2] = 1e4  # 27.5%
    assert crl_excluded(disparity)
    assert CRL_LARGE_DISPARITY == 300.0 and not crl_excluded(np.full((2, 2), 300.0))  # "above 300", not "at"
    nan = np.full((2, 2), np.nan)
    assert not crl_excluded(nan)
    with pytest.raises(ValueError, match=r"disparity: expected a non-empty \(H, W\) array, got shape \(3,\)"):
        crl_excluded(np.zeros(3))


def _write_things(root, frames, *, shape=(6, 8)):
    """FlyingThings3D frames ``(split, sequence, number, disparity value, large fraction)``."""
    for split, sequence, number, value, fraction in frames:
        folder = f"{split}/B/{sequence}"
        for view in ("left", "right"):
            path = root / "frames_cleanpass" / folder / view / f"{number:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((*shape, 3), number, np.uint8)).save(path)
            disparity = np.full(shape, value, np.float32)
            disparity.flat[: int(round(fraction * disparity.size))] = 350.0
            path = root / "disparity" / folder / view / f"{number:04d}.pfm"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_pfm(path, disparity if view == "left" else disparity + 1)
    return root


def test_flyingthings3d_crl_split(tmp_path):
    root = _write_things(tmp_path / "things", [
        ("TRAIN", "0001", 6, 5.0, 0.5), ("TRAIN", "0001", 7, 5.0, 0.0), ("TRAIN", "0002", 6, 5.0, 0.0),
        ("TEST", "0003", 6, 5.0, 0.0), ("TEST", "0003", 7, 5.0, 0.5), ("TEST", "0004", 9, 5.0, 0.25),
        ("TEST", "0004", 10, 5.0, 0.0)])
    (root / "all_unused_files.txt").write_text("TRAIN/B/0002/left/0006.png\nTEST/B/0004/left/0010.png\n")
    train = FlyingThings3DCRL(root, split="TRAIN")
    # training: the unused list applies, the disparity rule does not (0001/0006 has 50% large)
    assert [item[0] for item in train.items] == ["TRAIN/B/0001/left/0006.png", "TRAIN/B/0001/left/0007.png"]
    assert train.excluded == []
    test = FlyingThings3DCRL(root)  # TEST by default
    # testing: the disparity rule applies (0003/0007: 50% above 300), the unused list does not (0004/0010)
    assert [item[0] for item in test.items] == ["TEST/B/0003/left/0006.png", "TEST/B/0004/left/0009.png",
                                                "TEST/B/0004/left/0010.png"]
    assert test.excluded == ["TEST/B/0003/left/0007.png"]
    sample = test[1]
    assert sample["disparity"].shape == (6, 8) and sample["left"].shape == (6, 8, 3)
    np.testing.assert_array_equal(sample["disparity_right"], sample["disparity"] + 1)
    # the plain reader keeps its own rule: the unused list on both splits, no disparity filter
    assert len(FlyingThings3D(root, split="TEST")) == 3
    assert len(FlyingThings3D(root, split="TEST", exclude_unused=False)) == 4


def test_flyingthings3d_crl_split_rejects_bad_layouts(tmp_path):
    root = _write_things(tmp_path / "things", [("TEST", "0003", 6, 5.0, 0.6), ("TRAIN", "0001", 6, 5.0, 0.0)])
    with pytest.raises(LayoutError, match=r"no TEST frames left by the CRL filter"):
        FlyingThings3DCRL(root)
    (root / "disparity" / "TRAIN" / "B" / "0001" / "left" / "0006.pfm").unlink()
    missing = r"1 TRAIN frames have no disparity file \(e\.g\. \['disparity/TRAIN/B/0001/left/0006\.pfm'\]\)"
    with pytest.raises(LayoutError, match=missing):
        FlyingThings3DCRL(root, split="TRAIN")
    root = _write_things(tmp_path / "flow-as-disparity", [("TEST", "0003", 6, 5.0, 0.0)])
    write_pfm(root / "disparity" / "TEST" / "B" / "0003" / "left" / "0006.pfm", np.zeros((6, 8, 3), np.float32))
    with pytest.raises(MalformedFileError, match=r"0006\.pfm: disparity PFM must be single-channel"):
        FlyingThings3DCRL(root)
    with pytest.raises(ValueError, match="split: expected 'TRAIN' or 'TEST'"):
        FlyingThings3DCRL(root, split="VAL")
    with pytest.raises(ValueError, match="pass_name: expected 'cleanpass' or 'finalpass'"):
        FlyingThings3DCRL(root, pass_name="clean")
