"""Readers for formats with no real sample here, run on small files written in the official
format from its published description; and every reader's rejection of malformed files."""
from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from suite.data import readers
from suite.data.readers import MalformedFileError

RNG = np.random.default_rng(0)


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _rgb(height=8, width=10):
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- flo / pfm / kitti


def test_flo_roundtrip_layout_and_unknown(tmp_path):
    flow = RNG.normal(size=(5, 7, 2)).astype(np.float32)
    flow[1, 2] = (1.5e9, 0)
    readers.write_flo(tmp_path / "a.flo", flow)
    raw = (tmp_path / "a.flo").read_bytes()
    assert raw[:4] == b"PIEH" and np.frombuffer(raw, "<i4", count=2, offset=4).tolist() == [7, 5]
    # u and v interleaved, row-major: the second float of the payload is v at (0, 0).
    assert np.frombuffer(raw, "<f4", count=2, offset=12).tolist() == flow[0, 0].tolist()
    np.testing.assert_array_equal(readers.read_flo(tmp_path / "a.flo"), flow)
    valid = readers.flow_valid(readers.read_flo(tmp_path / "a.flo"))
    assert not valid[1, 2] and valid.sum() == 34


def test_flo_malformed(tmp_path):
    readers.write_flo(tmp_path / "good.flo", np.zeros((4, 4, 2), np.float32))
    raw = (tmp_path / "good.flo").read_bytes()
    (tmp_path / "magic.flo").write_bytes(b"XXXX" + raw[4:])
    (tmp_path / "short.flo").write_bytes(raw[:-4])
    (tmp_path / "tiny.flo").write_bytes(raw[:6])
    with pytest.raises(MalformedFileError, match=r"magic\.flo.*bad \.flo magic"):
        readers.read_flo(tmp_path / "magic.flo")
    with pytest.raises(MalformedFileError, match=r"short\.flo.*truncated"):
        readers.read_flo(tmp_path / "short.flo")
    with pytest.raises(ValueError, match="tiny.flo"):
        readers.read_flo(tmp_path / "tiny.flo")


def test_pfm_bottom_up_endianness_and_channels(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    # Big-endian (positive scale) written by hand, rows bottom-up as the format stores them.
    (tmp_path / "big.pfm").write_bytes(b"Pf\n4 3\n1.0\n" + image[::-1].astype(">f4").tobytes())
    np.testing.assert_array_equal(readers.read_pfm(tmp_path / "big.pfm"), image)
    colour = RNG.normal(size=(3, 4, 3)).astype(np.float32)
    readers.write_pfm(tmp_path / "colour.pfm", colour)
    assert (tmp_path / "colour.pfm").read_bytes().startswith(b"PF\n4 3\n-1\n")
    np.testing.assert_array_equal(readers.read_pfm(tmp_path / "colour.pfm"), colour)
    (tmp_path / "bad.pfm").write_bytes(b"P6\n4 3\n255\n" + bytes(36))
    (tmp_path / "short.pfm").write_bytes(b"Pf\n4 3\n-1\n" + bytes(40))
    with pytest.raises(MalformedFileError, match=r"bad\.pfm.*header"):
        readers.read_pfm(tmp_path / "bad.pfm")
    with pytest.raises(MalformedFileError, match=r"short\.pfm.*truncated"):
        readers.read_pfm(tmp_path / "short.pfm")


def test_kitti_roundtrip_and_channel_order(tmp_path):
    flow = np.round(RNG.normal(scale=20, size=(6, 9, 2)) * 64) / 64
    valid = RNG.random((6, 9)) > 0.3
    readers.write_kitti_flow(tmp_path / "flow.png", flow, valid)
    bgr = cv2.imread(str(tmp_path / "flow.png"), cv2.IMREAD_UNCHANGED)
    # Stored as RGB = (u, v, valid); OpenCV returns BGR.
    assert (bgr[..., 0] == valid).all()
    decoded, decoded_valid = readers.read_kitti_flow(tmp_path / "flow.png")
    assert (decoded_valid == valid).all()
    np.testing.assert_allclose(decoded[valid], flow[valid])
    disparity = np.where(valid, np.round(RNG.uniform(1, 100, valid.shape) * 256) / 256, 0)
    readers.write_kitti_disparity(tmp_path / "disp.png", disparity)
    read, read_valid = readers.read_kitti_disparity(tmp_path / "disp.png")
    assert (read_valid == valid).all() and np.allclose(read, disparity)
    _png(tmp_path / "eight.png", _rgb())
    with pytest.raises(MalformedFileError, match="eight.png.*16-bit"):
        readers.read_kitti_flow(tmp_path / "eight.png")
    with pytest.raises(MalformedFileError, match="eight.png.*16-bit"):
        readers.read_kitti_disparity(tmp_path / "eight.png")


def test_kitti2015_layout(tmp_path):
    training = tmp_path / "training"
    for folder in ("image_2", "image_3"):
        _png(training / folder / "000000_10.png", _rgb())
    _png(training / "image_2" / "000000_11.png", _rgb())
    readers.write_kitti_flow(_parent(training / "flow_occ" / "000000_10.png"), np.ones((8, 10, 2)))
    readers.write_kitti_disparity(_parent(training / "disp_occ_0" / "000000_10.png"), np.full((8, 10), 3.5))
    flow = readers.Kitti2015(tmp_path)[0]
    assert flow["valid"].all() and np.allclose(flow["flow"], 1)
    stereo = readers.Kitti2015(tmp_path, task="disparity")[0]
    assert np.allclose(stereo["disparity"], 3.5)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_flyingthings3d_dispnet_split(tmp_path):
    for split in ("TRAIN", "TEST"):
        for number in (6, 7):
            for side in ("left", "right"):
                _png(tmp_path / f"frames_cleanpass/{split}/A/0000/{side}/{number:04d}.png", _rgb())
            disparity = RNG.uniform(1, 50, (8, 10)).astype(np.float32)
            readers.write_pfm(_parent(tmp_path / f"disparity/{split}/A/0000/left/{number:04d}.pfm"), disparity)
            flow = np.dstack([RNG.normal(size=(8, 10, 2)), np.zeros((8, 10))]).astype(np.float32)
            readers.write_pfm(_parent(tmp_path / f"optical_flow/{split}/A/0000/into_future/left/"
                                                f"OpticalFlowIntoFuture_{number:04d}_L.pfm"), flow)
    (tmp_path / "all_unused_files.txt").write_text("TRAIN/A/0000/left/0007.png\n")
    train = readers.FlyingThings3D(tmp_path, split="TRAIN")
    assert len(train) == 1 and train[0]["disparity"].shape == (8, 10)
    assert len(readers.FlyingThings3D(tmp_path, split="TEST")) == 2
    flow = readers.FlyingThings3D(tmp_path, split="TEST", task="flow")
    assert len(flow) == 1 and flow[0]["flow"].shape == (8, 10, 2)


def test_middlebury_calib_malformed(tmp_path):
    (tmp_path / "calib.txt").write_text("cam0=[1 0 2; 0 1 3]\n")
    with pytest.raises(MalformedFileError, match="calib.txt.*3x3"):
        readers.read_middlebury_calib(tmp_path / "calib.txt")


# --------------------------------------------------------------------------- segmentation


def _voc_tree(root: Path, ids):
    voc = root / "VOCdevkit" / "VOC2012"
    for image_id in ids:
        Image.fromarray(_rgb(16, 20)).save(_parent(voc / "JPEGImages" / f"{image_id}.jpg"), quality=95)
        labels = np.zeros((16, 20), np.uint8)
        labels[4:12, 5:15] = 15
        labels[3, 4:16] = 255
        readers.write_palette_png(_parent(voc / "SegmentationClass" / f"{image_id}.png"), labels)
    _parent(voc / "ImageSets/Segmentation/train.txt").write_text("".join(f"{i}\n" for i in ids))
    return voc


def test_voc_palette_png(tmp_path):
    voc = _voc_tree(tmp_path, ["2007_000032", "2007_000039"])
    dataset = readers.VOC2012(tmp_path, split="train")
    sample = dataset[0]
    assert sample["label"].dtype == np.uint8 and set(np.unique(sample["label"])) == {0, 15, 255}
    # The palette holds VOC colours: index 15 (person) is (192, 128, 128), 255 (void) is (224, 224, 192).
    with Image.open(voc / "SegmentationClass/2007_000032.png") as image:
        palette = image.getpalette()
    assert palette[45:48] == [192, 128, 128] and palette[765:768] == [224, 224, 192]
    _png(tmp_path / "rgb.png", _rgb())
    with pytest.raises(MalformedFileError, match="rgb.png.*mode RGB"):
        readers.read_palette_png(tmp_path / "rgb.png")


def test_sbd_mat(tmp_path):
    base = tmp_path / "dataset"
    segmentation = np.zeros((12, 14), np.uint8)
    segmentation[2:8, 3:9] = 7
    scipy.io.savemat(_parent(base / "cls" / "2008_000002.mat"),
                     {"GTcls": {"Segmentation": segmentation, "CategoriesPresent": np.array([[7]])}})
    scipy.io.savemat(_parent(base / "inst" / "2008_000002.mat"), {"GTinst": {"Segmentation": (segmentation > 0).astype(np.uint8)}})
    Image.fromarray(_rgb(12, 14)).save(_parent(base / "img" / "2008_000002.jpg"))
    (base / "train.txt").write_text("2008_000002\n")
    sample = readers.SBD(tmp_path)[0]
    np.testing.assert_array_equal(sample["label"], segmentation)
    assert sample["objects"].max() == 1
    scipy.io.savemat(tmp_path / "wrong.mat", {"other": np.zeros(3)})
    with pytest.raises(MalformedFileError, match="wrong.mat.*GTcls"):
        readers.read_sbd_mat(tmp_path / "wrong.mat")


def test_scribblesup_and_shortened_variants(tmp_path):
    _voc_tree(tmp_path, ["2007_000032"])
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for length in readers.SCRIBBLE_LENGTHS:
        scribbles = np.full((16, 20), 255, np.uint8)
        scribbles[8, 6: 6 + max(1, int(8 * length))] = 15
        readers.write_palette_png(_parent(tmp_path / readers.scribble_folder(length) / "2007_000032.png"), scribbles)
    assert readers.scribble_folder(0.0) == "pascal_2012_scribble_len0"
    counts = []
    for length in readers.SCRIBBLE_LENGTHS:
        sample = readers.ScribbleSup(tmp_path, length=length, images_root=voc)[0]
        assert set(np.unique(sample["scribbles"])) == {15, 255}
        counts.append(int((sample["scribbles"] != 255).sum()))
    assert counts == sorted(counts, reverse=True) and counts[-1] == 1
    with pytest.raises(ValueError, match="length"):
        readers.ScribbleSup(tmp_path, length=0.7, images_root=voc)


def test_davis2017_palette(tmp_path):
    for frame in range(3):
        _png(tmp_path / f"JPEGImages/480p/bike/{frame:05d}.jpg", _rgb())
        labels = np.zeros((8, 10), np.uint8)
        labels[2:5, 2:5], labels[5:7, 6:9] = 1, 2
        readers.write_palette_png(_parent(tmp_path / f"Annotations/480p/bike/{frame:05d}.png"), labels)
    _parent(tmp_path / "ImageSets/2017/val.txt").write_text("bike\n")
    sample = readers.Davis(tmp_path, split="val")[0]
    assert len(sample["images"]) == 3 and set(np.unique(sample["masks"][0])) == {0, 1, 2}
    assert set(np.unique(readers.Davis(tmp_path, binary=True)[0]["masks"][2])) == {0, 1}


def test_grabcut_and_gsc_malformed(tmp_path):
    bad = np.zeros((6, 6), np.uint8)
    bad[0, 0] = 77
    _png(tmp_path / "mask.bmp", bad)
    with pytest.raises(MalformedFileError, match="mask.bmp.*0, 128 or 255"):
        readers.read_grabcut_mask(tmp_path / "mask.bmp")
    readers.write_palette_png(tmp_path / "scribble-anno.png", np.full((6, 6), 3, np.uint8))
    with pytest.raises(MalformedFileError, match="scribble-anno.png.*0, 1, 2"):
        readers.read_gsc_scribble(tmp_path / "scribble-anno.png")


# --------------------------------------------------------------------------- edges and images


def test_biped(tmp_path):
    base = tmp_path / "BIPED" / "edges"
    Image.fromarray(_rgb()).save(_parent(base / "imgs/test/rgbr/RGB_008.jpg"))
    edges = np.zeros((8, 10), np.uint8)
    edges[4] = 255
    _png(base / "edge_maps/test/rgbr/RGB_008.png", edges)
    sample = readers.BIPED(tmp_path, split="test")[0]
    assert sample["edges"].dtype == np.float32 and sample["edges"][4].min() == 1 and sample["edges"].sum() == 10


def test_mdbd(tmp_path):
    _png(tmp_path / "images/0001_left_0001.png", _rgb())
    for annotator in (1, 2, 3):
        edges = np.zeros((8, 10), np.uint8)
        edges[annotator] = 255
        _png(tmp_path / f"ground-truth/0001_left_0001.boundaries.{annotator}.png", edges)
    sample = readers.MDBD(tmp_path)[0]
    assert len(sample["annotations"]) == 3 and sample["annotations"][2][3].all()


def test_eps_benchmark(tmp_path):
    # The release's layout (zhufeida/Benchmark_EPS): dataset/origin_images, gt_images, weight_matrix.mat.
    base = tmp_path / "dataset"
    _png(base / "origin_images/0401.png", _rgb())
    for k in range(1, 6):
        _png(base / f"gt_images/0401_{k}.png", _rgb())
    weights = np.zeros((500, 5))
    weights[400] = [0.5, 0.3, 0.1, 0.1, 0.0]
    readers.write_weight_matrix(base / "weight_matrix.mat", weights)
    sample = readers.EPSBenchmark(tmp_path)[0]
    assert sample["name"] == "0401" and len(sample["ground_truths"]) == 5
    np.testing.assert_allclose(sample["weights"], [0.5, 0.3, 0.1, 0.1, 0.0])
    scipy.io.savemat(base / "weight_matrix.mat", {"votes": weights})
    with pytest.raises(MalformedFileError, match="weight_matrix.mat.*no 'weight_matrix'"):
        readers.EPSBenchmark(tmp_path)


def test_bsds_write_read_and_malformed(tmp_path):
    segmentation = np.ones((6, 7), np.uint16)
    segmentation[:, 4:] = 2
    readers.write_bsds_gt(tmp_path / "gt.mat", [{"segmentation": segmentation,
                                                  "boundaries": readers.segmentation_boundaries(segmentation)}] * 2)
    annotators = readers.read_bsds_gt(tmp_path / "gt.mat")
    assert len(annotators) == 2 and annotators[1]["boundaries"][:, 3].all()
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(MalformedFileError, match="junk.mat"):
        readers.read_bsds_gt(tmp_path / "junk.mat")


def test_stored_noisy_must_match(tmp_path):
    _png(tmp_path / "clean/0001.png", _rgb())
    np.save(_parent(tmp_path / "noisy/sigma25/0001.npy"), np.zeros((3, 3), np.float32))
    with pytest.raises(MalformedFileError, match="0001.npy"):
        readers.DenoisingSet(tmp_path, sigma=25)[0]


# --------------------------------------------------------------------------- classification


def test_cifar10_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    images = RNG.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(6) % 10
    readers.write_cifar_batch(base / "test_batch", images, labels)
    # Official layout: each row is 1024 red, then 1024 green, then 1024 blue values.
    with open(base / "test_batch", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")[b"data"]
    assert raw[0, 1024] == images[0, 0, 0, 1]
    dataset = readers.CIFAR10(tmp_path, split="test")
    assert len(dataset) == 6 and dataset[3]["label"] == 3
    np.testing.assert_array_equal(dataset[5]["image"], images[5])
    (base / "evil").write_bytes(pickle.dumps({b"data": Path("x")}))
    with pytest.raises(MalformedFileError, match="evil.*not allowed"):
        readers.read_cifar_batch(base / "evil")
    (base / "shape").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(MalformedFileError, match="shape.*3072"):
        readers.read_cifar_batch(base / "shape")


def test_cifar10c_severity_blocks(tmp_path):
    base = tmp_path / "CIFAR-10-C"
    base.mkdir()
    images = np.zeros((5 * 4, 32, 32, 3), np.uint8)
    for severity in range(5):
        images[severity * 4: (severity + 1) * 4] = severity + 1
    np.save(base / "fog.npy", images)
    np.save(base / "labels.npy", np.tile(np.arange(4, dtype=np.uint8), 5))
    dataset = readers.CIFAR10C(tmp_path, corruption="fog", severity=3)
    assert len(dataset) == 4 and (dataset[0]["image"] == 3).all() and dataset[2]["label"] == 2
    np.save(base / "snow.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(MalformedFileError, match="snow.npy"):
        readers.CIFAR10C(tmp_path, corruption="snow", severity=1)
    with pytest.raises(ValueError, match="corruption"):
        readers.CIFAR10C(tmp_path, corruption="rain", severity=1)


def test_wsol_metadata(tmp_path):
    base = tmp_path / "metadata/CUB/test"
    base.mkdir(parents=True)
    paths = ["001.Black_footed_Albatross/a.jpg", "002.Laysan_Albatross/b.jpg"]
    (base / "image_ids.txt").write_text("\n".join(paths) + "\n")
    (base / "class_labels.txt").write_text(f"{paths[0]},0\n{paths[1]},1\n")
    (base / "image_sizes.txt").write_text(f"{paths[0]},500,400\n{paths[1]},300,200\n")
    (base / "localization.txt").write_text(f"{paths[0]},10,20,110,220\n{paths[0]},5,5,50,50\n{paths[1]},1,2,3,4\n")
    for path in paths:
        Image.fromarray(_rgb()).save(_parent(tmp_path / "images" / path))
    dataset = readers.WSOLMetadata(tmp_path, dataset="CUB", split="test", images_root=tmp_path / "images")
    sample = dataset[0]
    assert sample["label"] == 0 and sample["size"] == (500, 400) and sample["boxes"].shape == (2, 4)
    assert sample["image"].shape == (8, 10, 3)
    (base / "localization.txt").write_text(f"{paths[0]},10,20\n")
    with pytest.raises(MalformedFileError, match="localization.txt.*line 1"):
        readers.WSOLMetadata(tmp_path, dataset="CUB", split="test")


# --------------------------------------------------------------------------- tracking and pose


def test_vot2018_polygons(tmp_path):
    folder = tmp_path / "ants1"
    (folder / "color").mkdir(parents=True)
    lines = ["10,20,30,20,30,40,10,40", "5,6,10,20"]
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    for frame in (1, 2):
        Image.fromarray(_rgb()).save(folder / "color" / f"{frame:08d}.jpg")
    (folder / "occlusion.tag").write_text("0\n1\n")
    (tmp_path / "list.txt").write_text("ants1\n")
    sample = readers.VOT(tmp_path)[0]
    np.testing.assert_array_equal(sample["polygons"][1], [5, 6, 15, 6, 15, 26, 5, 26])
    np.testing.assert_array_equal(sample["boxes"][0], [10, 20, 20, 20])
    assert len(sample["images"]) == 2 and sample["tags"]["occlusion"] == ["0", "1"]
    (folder / "groundtruth.txt").write_text("1,2,3,4,5\n1,2,3,4\n")
    with pytest.raises(MalformedFileError, match="groundtruth.txt.*line 1.*4 or 8"):
        readers.VOT(tmp_path)[0]


def test_otb_malformed(tmp_path):
    (tmp_path / "gt.txt").write_text("1 2 3\n")
    with pytest.raises(MalformedFileError, match="gt.txt.*line 1"):
        readers.read_otb_groundtruth(tmp_path / "gt.txt")


def test_human36m_3d_pose_baseline_layout(tmp_path):
    import h5py

    base = tmp_path / "h36m"
    positions = RNG.normal(size=(96, 5))
    with h5py.File(_parent(base / "S9/MyPoses/3D_positions/Directions 1.h5"), "w") as handle:
        handle["3D_positions"] = positions
    for camera in ("54138969", "55011271"):
        with h5py.File(_parent(base / f"S9/StackedHourglass/Directions_1.{camera}.h5"), "w") as handle:
            handle["poses"] = RNG.normal(size=(5, 16, 2))
    with h5py.File(base / "cameras.h5", "w") as handle:
        group = handle.create_group("subject9/camera1")
        rotation = np.arange(9.0).reshape(3, 3)
        for key, value in (("R", rotation), ("T", np.zeros((3, 1))), ("f", np.ones((2, 1))), ("c", np.ones((2, 1))),
                           ("k", np.zeros((3, 1))), ("p", np.zeros((2, 1)))):
            group[key] = value
        group["Name"] = np.array([ord(c) for c in "54138969"], np.uint8)
    dataset = readers.Human36M(tmp_path, subjects=(9,))
    sample = dataset[0]
    assert sample["action"] == "Directions" and sample["positions_3d"].shape == (5, 32, 3)
    np.testing.assert_array_equal(sample["positions_3d"][2, 1], positions[3:6, 2])
    assert sorted(sample["detections_2d"]) == ["54138969", "55011271"]
    cameras = dataset.cameras()
    assert cameras[(9, 1)]["name"] == "54138969" and (cameras[(9, 1)]["R"] == rotation.T).all()
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle["poses"] = np.zeros((5, 17, 2))
    with pytest.raises(MalformedFileError, match="bad.h5.*16, 2"):
        readers.read_h36m_detections(tmp_path / "bad.h5")
    with pytest.raises(MalformedFileError, match="bad.h5.*3D_positions"):
        readers.read_h36m_positions(tmp_path / "bad.h5")


def test_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(readers.LayoutError, match=str(tmp_path)):
        readers.BSDS500(tmp_path)
    with pytest.raises(readers.LayoutError, match="not found"):
        readers.OTB(tmp_path / "nowhere")


def test_datasets_are_lazy_and_indexable(tmp_path):
    """Nothing is decoded on construction; a broken file fails only when its sample is read."""
    _png(tmp_path / "clean/0001.png", _rgb())
    (tmp_path / "clean/0002.png").write_bytes(b"broken")
    dataset = readers.DenoisingSet(tmp_path)
    assert len(dataset) == 2 and dataset[-2]["clean"].shape == (8, 10, 3)
    with pytest.raises(MalformedFileError, match="0002.png"):
        dataset[1]
    with pytest.raises(IndexError):
        dataset[2]


def test_gsc_seeds_golden():
    # GSC palette: 0 none, 1 foreground, 2 background (Andrade & Carrera 2015) -> 255, 1, 0
    seeds = readers.gsc_seeds(np.array([[0, 1, 2], [2, 0, 1]], np.uint8))
    assert seeds.dtype == np.uint8 and seeds.tolist() == [[255, 1, 0], [0, 255, 1]]
