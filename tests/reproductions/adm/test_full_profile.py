"""The full profile's data path of the ADM reproduction, end to end: a tiny PASCAL VOC 2012 + SBD
+ ScribbleSup (rloss distribution) tree in the official layouts, a strictly loaded ImageNet-style
VGG16 checkpoint (torchvision names), the official lists, and adm.table2 run through the runner
with the full profile's sizes shrunk (same code path: DeepLab-LargeFOV at 1/16 width, a few
iterations). Also: no validation image is ever trained on."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from reproductions.adm import data as adm_data
from reproductions.adm import models, training
from suite.data.readers import write_palette_png
from suite.harness import registry, runner, store
from tests.reproductions.adm.conftest import make_context
from tests.reproductions.adm.test_models import vgg16_checkpoint

VOC_TRAIN = ["2007_000032", "2007_000039"]        # VOC train, dense labels in SegmentationClass
SBD_ONLY = ["2008_000002", "2008_000003", "2009_000001"]  # train_aug images labelled by SBD only
VAL = ["2007_000033", "2007_000042"]              # VOC val: scribbles exist for them too, as distributed
SHAPES = {0: (40, 56), 1: (48, 40)}


def _scene(index: int, shape):
    rng = np.random.default_rng(index)
    h, w = shape
    label = np.zeros((h, w), np.uint8)
    cls = 1 + index % 20
    label[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = cls
    image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    image[label == cls] += np.uint8(150)
    outline = label.copy()
    edge = (np.abs(np.diff(label.astype(int), axis=0, prepend=0)) > 0) | (np.abs(np.diff(label.astype(int), axis=1, prepend=0)) > 0)
    outline[edge] = 255
    scribbles = np.full((h, w), 255, np.uint8)
    scribbles[h // 2, w // 4 + 2: 3 * w // 4 - 2] = cls
    scribbles[2, 2:w - 2] = 0
    return image, outline, scribbles


def write_tree(base):
    """VOC 2012 (VOCdevkit layout), SBD (benchmark_RELEASE/dataset) and the rloss scribbles with
    list/train.txt, list/train<r>.txt and list/val.txt; returns the data root."""
    voc = base / "voc2012" / "VOCdevkit" / "VOC2012"
    sbd = base / "sbd" / "benchmark_RELEASE" / "dataset"
    scrib = base / "scribblesup"
    for folder in (voc / "JPEGImages", voc / "SegmentationClass", voc / "ImageSets" / "Segmentation",
                   sbd / "img", sbd / "cls", scrib / "list"):
        folder.mkdir(parents=True, exist_ok=True)
    everything = VOC_TRAIN + SBD_ONLY + VAL
    for i, name in enumerate(everything):
        image, label, scribbles = _scene(i, SHAPES[i % 2])
        Image.fromarray(image).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        if name in VOC_TRAIN + VAL:
            write_palette_png(voc / "SegmentationClass" / f"{name}.png", label)
        if name in SBD_ONLY:
            Image.fromarray(image).save(sbd / "img" / f"{name}.jpg", quality=95)
            gt = np.where(label == 255, 0, label)  # SBD has no void band
            scipy.io.savemat(sbd / "cls" / f"{name}.mat",
                             {"GTcls": {"Segmentation": gt, "Boundaries": np.zeros(1), "CategoriesPresent": np.zeros(1)}})
        for length in (1.0, 0.8, 0.5, 0.3, 0.0):
            folder = scrib / ("pascal_2012_scribble" if length == 1.0 else f"pascal_2012_scribble_len{length:g}")
            folder.mkdir(exist_ok=True)
            kept = scribbles.copy()
            if length < 1.0:  # shorter strokes; 0 = one click per stroke
                cols = np.where(kept != 255)[1]
                keep = int(max(1, round(len(cols) * length)))
                kept[:, :] = 255
                kept[SHAPES[i % 2][0] // 2, SHAPES[i % 2][1] // 2] = 1 + i % 20
                kept[2, 2: 2 + keep // 2] = 0
            write_palette_png(folder / f"{name}.png", kept)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(VOC_TRAIN) + "\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(VAL) + "\n")
    (sbd / "train.txt").write_text("\n".join(SBD_ONLY[:2]) + "\n")
    (sbd / "val.txt").write_text(SBD_ONLY[2] + "\n")
    train = VOC_TRAIN + SBD_ONLY
    (scrib / "list" / "train.txt").write_text(
        "".join(f"/JPEGImages/{n}.jpg /pascal_2012_scribble/{n}.png\n" for n in train))
    for length in (0.8, 0.5, 0.3, 0.0):
        (scrib / "list" / f"train{length:g}.txt").write_text(
            "".join(f"/JPEGImages/{n}.jpg /pascal_2012_scribble_len{length:g}/{n}.png\n" for n in train))
    (scrib / "list" / "val.txt").write_text("".join(f"/JPEGImages/{n}.jpg\n" for n in VAL))
    return base


@pytest.fixture
def full_tree(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "data")
    monkeypatch.setenv("ENERGYBENCH_DATA", str(root))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ENERGYBENCH_ADM_CACHE", str(tmp_path / "models"))
    return root


def _full_context(**overrides):
    return make_context("full", datasets=("scribblesup", "voc2012", "sbd"), **overrides)


def test_official_lists_and_no_validation_image_is_trained_on(full_tree, tmp_path):
    ctx = _full_context()
    val = set(training.evaluation_set(ctx).names)
    assert val == set(VAL)
    for length in (1.0, 0.5, 0.0):
        train = adm_data.load_training_set(ctx, length=length)
        assert train.names == VOC_TRAIN + SBD_ONLY and not set(train.names) & val
        # dense labels: VOC SegmentationClass, else SBD's cls/*.mat (full supervision)
        assert all(label is not None for label in train.labels)
        assert train.images[0].shape[1:] == SHAPES[0]  # native size: no side at full
    # a training list that names a validation image is refused, naming it
    lst = full_tree / "scribblesup" / "list" / "train.txt"
    lst.write_text(lst.read_text() + f"/JPEGImages/{VAL[0]}.jpg /pascal_2012_scribble/{VAL[0]}.png\n")
    with pytest.raises(ValueError, match=f"expected no validation image.*{VAL[0]}"):
        adm_data.load_training_set(_full_context(), length=1.0)


def test_the_training_set_is_streamed_not_held(full_tree):
    ctx = _full_context(train_cache=2)
    train = adm_data.load_training_set(ctx, length=1.0)
    for i in range(len(train)):
        train.images[i]
    assert len(train._cache) == 2  # at most train_cache decoded samples in memory
    torch.testing.assert_close(train.images[0], adm_data.load_training_set(ctx, length=1.0).images[0])


def test_table2_full_profile_runs_on_an_official_layout_tree(full_tree, tmp_path, monkeypatch):
    checkpoint = tmp_path / "weights" / "vgg16.pth"
    checkpoint.parent.mkdir()
    torch.save(vgg16_checkpoint(), checkpoint)
    monkeypatch.setenv(models.WEIGHTS_ENV, str(checkpoint.parent))
    full = registry.get("adm.table2").profiles["full"]
    for key, value in {"networks": ["Deeplab-largeFOV"], "backbone_width": 1 / 16, "crop": 33, "batch_size": 2,
                       "phase1_iterations": 2, "phase2_iterations": 1, "full_iterations": 2, "curve_every": 1,
                       "train_subset": 2, "processes": 1, "threads": 1,
                       "proposals": {"smoothness": 50.0, "iterations": 1}}.items():
        monkeypatch.setitem(full, key, value)
    opts = runner.Options(profile="full", device="cpu", results=tmp_path / "results", progress=False)
    tasks = [t for t in runner.plan([registry.get("adm.table2")], opts)
             if t.cell["method"] in ("pce", "full", "grid-adm")]
    assert len(tasks) == 3
    for task in tasks:
        status = runner.execute(task, opts)
        assert status == runner.STATUS_OK, store.read_cell(store.cell_path(opts.results, task.key))
    df = store.frame(tmp_path / "results")
    miou = df[(df.metric == "miou") & df.value.notna()]
    assert set(miou.column) == {"pCE loss", "Full sup.", "+grid CRF ADM"}
    assert ((miou.value >= 0) & (miou.value <= 100)).all()
    # initialised from the checkpoint (not "random init"), with the published weights (no search)
    assert all(note.startswith(f"initialised from {checkpoint}") for note in miou.note)
    assert not (df.table == "Weight selection (held-out)").any()
    # and without a checkpoint: another cell (its key names the init), every record "random init" first
    monkeypatch.delenv(models.WEIGHTS_ENV)
    task = next(t for t in runner.plan([registry.get("adm.table2")], opts) if t.cell["method"] == "pce")
    assert task.cell["init"] == "random" and task.key not in {t.key for t in tasks}
    assert runner.execute(task, opts) == runner.STATUS_OK
    df = store.frame(tmp_path / "results")
    notes = df[(df.metric == "miou") & (df.key == task.key)].note
    assert len(notes) == 1 and notes.iloc[0].startswith("random init")
