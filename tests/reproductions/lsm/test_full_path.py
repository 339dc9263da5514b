"""The LSM full profile's code path on tiny trees written in the official layouts of the paper's
data (SBD, the VGG interactive benchmark, DAVIS-2017 train / DAVIS-2016 val, FlyingThings3D with
the CRL split, MPI-Sintel, GrabCut + GSC), run end to end through the runner with the profile's
sizes shrunk by settings overrides (same code path as full); each split rule of the paper checked
on the same trees (a tree holds one sample that the rule must leave out: a VGG image in SBD train,
a DAVIS sequence outside the val list, a DAVIS-2017 val sequence, a FlyingThings3D test frame with
large disparities, an unused training frame); and the backbone checkpoint: loaded strictly when
supplied (a mismatched key fails naming it), "random init" said otherwise."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import reproductions.lsm  # noqa: F401  (registers the experiments)
from reproductions.lsm import data, experiments, trained
from suite.data.readers import LayoutError, write_flo, write_palette_png, write_pfm
from suite.data.readers.lsm_sets import write_vgg_interactive
from suite.harness import registry, runner, store
from suite.harness.context import DataAccess

HEIGHT, WIDTH = 64, 96
SBD_IDS = ["2008_000002", "2008_000003", "2008_000007"]
SHARED_WITH_VGG = "2008_000003"


def _texture(rng, height=HEIGHT, width=WIDTH):
    import cv2

    noise = rng.random((height, width, 3)).astype(np.float32)
    return (255 * cv2.GaussianBlur(noise, (5, 5), 1.2)).clip(0, 255).astype(np.uint8)


def _object_mask(k, height=HEIGHT, width=WIDTH):
    mask = np.zeros((height, width), bool)
    mask[16:48, 20 + 4 * k: 60 + 4 * k] = True
    return mask


def _save(path: Path, array, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, **options).save(path)


def write_sbd(root: Path, rng):
    base = root / "dataset"
    (base / "cls").mkdir(parents=True)
    for k, image_id in enumerate(SBD_IDS):
        _save(base / "img" / f"{image_id}.jpg", _texture(rng))
        label = np.zeros((HEIGHT, WIDTH), np.uint8)
        label[_object_mask(k)] = 12  # dog
        label[0:4, :] = 255  # a void border, as SBD's boundaries
        scipy.io.savemat(base / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": label}})
    (base / "train.txt").write_text("\n".join(SBD_IDS) + "\n")
    (base / "val.txt").write_text("2008_000008\n")


def _scribbles(mask):
    scribbles = np.zeros(mask.shape, np.uint8)
    rows, cols = np.nonzero(mask)
    scribbles[int(rows.mean()), cols.min() + 3: cols.max() - 3] = 1
    scribbles[2, 4:-4] = 2
    return scribbles


def write_vgg(root: Path, rng):
    samples = []
    for k, name in enumerate([SHARED_WITH_VGG, "flower"]):
        mask = _object_mask(k)
        void = np.zeros_like(mask)
        void[15, 20:60] = True
        samples.append({"name": name, "image": _texture(rng), "mask": mask, "void": void,
                        "scribbles": _scribbles(mask)})
    write_vgg_interactive(root, samples)


def write_grabcut_gsc(grabcut: Path, gsc: Path, rng):
    for k, name in enumerate(["106024", "153077"]):
        mask = _object_mask(k)
        truth = np.where(mask, 255, 0).astype(np.uint8)
        truth[15, 20:60] = 128
        _save(grabcut / "data_GT" / f"{name}.jpg", _texture(rng))
        _save(grabcut / "boundary_GT" / f"{name}.bmp", truth, mode="L")
        _save(gsc / "ground-truth" / f"{name}.png", np.where(truth == 128, 255, truth).astype(np.uint8), mode="L")
        (gsc / "scribbles-set-1").mkdir(parents=True, exist_ok=True)
        palette = [0, 0, 0, 255, 255, 207, 219, 0, 0] + [0] * (256 * 3 - 9)
        write_palette_png(gsc / "scribbles-set-1" / f"{name}-anno.png", _scribbles(mask), palette)


def _write_sequence(root: Path, sequence: str, rng, *, palette_ids: bool, frames=3):
    background = _texture(rng, HEIGHT, WIDTH + 8)
    for t in range(frames):
        image = background[:, t: t + WIDTH].copy()
        mask = _object_mask(0)
        mask = np.roll(mask, 2 * t, axis=1)
        image[mask] = 255 - image[mask]
        _save(root / "JPEGImages" / "480p" / sequence / f"{t:05d}.jpg", image)
        path = root / "Annotations" / "480p" / sequence / f"{t:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if palette_ids:  # DAVIS-2017: palette PNG of object ids (two objects)
            ids = np.zeros((HEIGHT, WIDTH), np.uint8)
            ids[mask] = 1
            ids[40:48, 4:12] = 2
            write_palette_png(path, ids)
        else:  # DAVIS-2016: greyscale 0 / 255
            _save(path, np.where(mask, 255, 0).astype(np.uint8), mode="L")


def write_davis2017(root: Path, rng):
    for sequence in ("bike-packing", "dogs-jump", "camel"):
        _write_sequence(root, sequence, rng, palette_ids=True)
    for year, split, names in (("2017", "train", ["bike-packing", "dogs-jump"]), ("2017", "val", ["camel"]),
                               ("2016", "val", ["camel"])):
        path = root / "ImageSets" / year / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(names) + "\n")


def write_davis2016(root: Path, rng):
    # the DAVIS-2016 package's val list: one /JPEGImages ... /Annotations ... pair per frame;
    # "bear" (a DAVIS-2016 train sequence) is in the folder but not in the list
    _write_sequence(root, "blackswan", rng, palette_ids=False)
    _write_sequence(root, "bear", rng, palette_ids=False)
    path = root / "ImageSets" / "480p" / "val.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"/JPEGImages/480p/blackswan/{t:05d}.jpg /Annotations/480p/blackswan/{t:05d}.png\n"
                            for t in range(3)))


#: A FlyingThings3D test frame the CRL split leaves out: 30% of its pixels above 300 px.
CRL_EXCLUDED = "TEST/A/0001/left/0006.png"


def write_flyingthings3d(root: Path, rng):
    frames = [(split, "0000", number) for split in ("TRAIN", "TEST") for number in (6, 7, 8)] + [("TEST", "0001", 6)]
    for split, sequence, number in frames:
        left = _texture(rng, HEIGHT, WIDTH + 8)
        disparity = np.full((HEIGHT, WIDTH), 4.0, np.float32)
        if sequence == "0001":  # an object very close to the camera
            disparity[:, : int(0.3 * WIDTH) + 1] = 320.0
        folder = f"{split}/A/{sequence}"
        _save(root / "frames_cleanpass" / folder / "left" / f"{number:04d}.png", left[:, 4: 4 + WIDTH])
        _save(root / "frames_cleanpass" / folder / "right" / f"{number:04d}.png", left[:, 8: 8 + WIDTH])
        for view in ("left", "right"):
            path = root / "disparity" / folder / view / f"{number:04d}.pfm"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_pfm(path, disparity)
        flow = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        flow[..., 0], flow[..., 1] = 1.5, -0.5
        path = root / "optical_flow" / folder / "into_future" / "left" / f"OpticalFlowIntoFuture_{number:04d}_L.pfm"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pfm(path, flow)
    # frames the dataset's authors mark unused: the CRL split leaves the training one out and
    # keeps the test one (its test filter is the disparity rule, not this list)
    (root / "all_unused_files.txt").write_text("TRAIN/A/0000/left/0008.png\nTEST/A/0000/left/0007.png\n")


def write_sintel(root: Path, rng):
    base = root / "training"
    for sequence in ("alley_1", "market_5"):
        frames = [_texture(rng) for _ in range(3)]
        for pass_name in ("clean", "final"):
            for index, frame in enumerate(frames, 1):
                _save(base / pass_name / sequence / f"frame_{index:04d}.png", frame)
        for index in (1, 2):
            flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
            flow[..., 0] = 2.0
            path = base / "flow" / sequence / f"frame_{index:04d}.flo"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_flo(path, flow)
            invalid = np.zeros((HEIGHT, WIDTH), np.uint8)
            invalid[:, -2:] = 255
            _save(base / "invalid" / sequence / f"frame_{index:04d}.png", invalid, mode="L")
            _save(base / "occlusions" / sequence / f"frame_{index:04d}.png", invalid, mode="L")


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lsm-full") / "data"
    rng = np.random.default_rng(0)
    write_sbd(root / "sbd", rng)
    write_vgg(root / "vgg-interactive", rng)
    write_grabcut_gsc(root / "grabcut", root / "gsc-scribbles", rng)
    write_davis2017(root / "davis2017", rng)
    write_davis2016(root / "davis2016", rng)
    write_flyingthings3d(root / "flyingthings3d", rng)
    write_sintel(root / "mpi-sintel", rng)
    return root


TINY = {
    "model": {"channels": [16, 8, 8, 8], "subspace_dims": [2, 4, 8, 16], "iterations": [1, 1, 1, 1]},
    "train_iterations": 2, "batch": {"interactive": 1, "video": 1, "stereo": 1, "flow": 1},
    "train_crop": [32, 64], "mask_side": 64, "max_rounds": 2, "efficiency_size": [64, 64], "efficiency_repeats": 1,
}


@pytest.fixture
def full_profile(paper_data, tmp_path, monkeypatch):
    """The full profile with tiny sizes, reading ``paper_data``; returns a runner function."""
    assert experiments.PROFILES["full"]["data"] == "paper"
    for key, value in TINY.items():
        monkeypatch.setitem(experiments.PROFILES["full"], key, value)
    monkeypatch.setenv("ENERGYBENCH_DATA", str(paper_data))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(trained.BACKBONE_ENV, raising=False)

    def run(cells: dict, results: Path):
        opts = runner.Options(profile="full", device="cpu", results=results, progress=False, seeds=(0,))
        chosen = [task for task in runner.plan([registry.get(e) for e in cells], opts)
                  if cells[task.experiment](task.cell)]
        assert {task.experiment for task in chosen} == set(cells)
        statuses = {}
        for task in chosen:  # the status of an experiment's cells when they all agree
            status = runner.execute(task, opts)
            statuses[task.experiment] = status if statuses.get(task.experiment, status) == status else "mixed"
        return statuses, store.frame(results)

    return run


def test_full_profile_path_on_official_layout_trees(full_profile, tmp_path):
    joint = lambda cell: cell.get("method") == "lsm-joint"  # noqa: E731
    cells = {"lsm.subspaces": lambda cell: cell["variant"] == "full",
             "lsm.interactive": joint, "lsm.video": joint, "lsm.stereo": joint, "lsm.flow": joint,
             "lsm.efficiency": lambda cell: True}
    statuses, df = full_profile(cells, tmp_path / "results")
    assert statuses == dict.fromkeys(cells, runner.STATUS_OK), statuses
    assert (df.profile == "full").all()
    measured = df[df.value.notna()]
    # one joint model (trained on SBD, DAVIS-2017 train, FlyingThings3D TRAIN) for every figure
    models = list((tmp_path / "cache" / "lsm").glob("lsm-full-interactive+video+stereo+flow-s0-*.pt"))
    assert len([m for m in models if ".ckpt" not in m.name]) == 1
    columns = set(measured.column)
    assert {"flow: mpi-sintel", "interactive: vgg-interactive", "interactive: gsc-scribbles"} <= columns
    # the figures' test sets: Fig. 5 on the VGG benchmark (and GrabCut + GSC), Fig. 6 on DAVIS-2016
    # val, Fig. 7 on the CRL test frames, Fig. 8 on Sintel
    assert {"vgg-interactive", "gsc-scribbles", "davis2016", "flyingthings3d L->R", "mpi-sintel"} <= columns
    assert "flyingthings3d R->L" in columns  # Fig. 7b: the same model right-to-left on the CRL frames
    j_mean = measured[measured.metric == "J mean"]
    assert (j_mean.n == 1).all()  # blackswan: "bear" is in the folder, not in the val list
    subspace = measured[measured.metric == "projection residual"]
    assert ((subspace.value >= 0) & (subspace.value <= 1 + 1e-9)).all()
    assert subspace[subspace.row == "LSM (full)"].note.str.contains("random init").all()
    epe = measured[measured.metric == "EPE"]
    assert len(epe) == 3 and np.isfinite(epe.value).all()  # FlyingThings3D TEST stereo L->R and R->L, Sintel flow
    assert (measured.metric == "J mean").any() and (measured.metric == "IoU, 1 interaction").any()
    parameters = measured[measured.metric == "parameters"]
    assert parameters.note.iloc[0] == "weights: random init"


class PaperCtx:
    """The parts of a harness context the data functions read, with the full profile's settings."""

    def __init__(self, datasets, **overrides):
        self.settings = {**experiments.PROFILES["full"], **TINY, **overrides}
        self.seed, self.profile, self.device = 0, "full", "cpu"
        self.data = DataAccess(datasets)
        self.progress = lambda iterable=None, **_: iterable


def test_paper_splits_leave_out_what_the_paper_leaves_out(paper_data, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(paper_data))
    ctx = PaperCtx(["sbd", "vgg-interactive", "grabcut", "gsc-scribbles", "davis2016", "davis2017", "flyingthings3d",
                    "mpi-sintel"])
    settings = ctx.settings
    assert {t: data.training_datasets(t, settings) for t in data.TASKS} == {
        "interactive": ("sbd", "vgg-interactive"), "video": ("davis2017",), "stereo": ("flyingthings3d",),
        "flow": ("flyingthings3d",)}
    assert {t: data.evaluation_datasets(t, settings) for t in data.TASKS} == {
        "interactive": ("vgg-interactive", "gsc-scribbles"), "video": ("davis2016",), "stereo": ("flyingthings3d",),
        "flow": ("mpi-sintel",)}

    # interactive: SBD train minus the image it shares with the VGG benchmark
    interactive = data.interactive_training_set(paper_data / "sbd", settings,
                                                extra={"vgg-interactive": paper_data / "vgg-interactive"})
    assert interactive.dataset.items == ["2008_000002", "2008_000007"]
    assert interactive.dataset.excluded == [SHARED_WITH_VGG]
    with pytest.raises(data.DataUnavailable, match="vgg-interactive: the paper's SBD training set leaves out"):
        data.interactive_training_set(paper_data / "sbd", settings)
    vgg = list(data.interactive_samples(ctx, "vgg-interactive", None))
    assert [s.name for s in vgg] == sorted([SHARED_WITH_VGG, "flower"])
    for sample in vgg:
        assert set(np.unique(sample.inputs["scribbles"])) == {0, 1, 255}
        assert set(np.unique(sample.truth["mask"])) == {0, 1, 255}  # the unknown band is void

    # video: DAVIS-2017 train from its list (camel is a val sequence), DAVIS-2016 val from its list
    video = data.video_training_set(paper_data / "davis2017", settings)
    assert video.dataset.items == ["bike-packing", "dogs-jump"]
    assert [s.name for s in data.video_sequences(ctx, "davis2016", None)] == ["blackswan"]
    mini = PaperCtx(ctx.data.allowed, data="generated")  # the mini profile reads the whole folder, as before
    assert [s.name for s in data.video_sequences(mini, "davis2016", None)] == ["bear", "blackswan"]

    # stereo: the CRL split: TRAIN minus the unused frame; TEST minus the frame with large disparities
    stereo = data.stereo_training_set(paper_data / "flyingthings3d", settings)
    assert [item[0] for item in stereo.dataset.items] == ["TRAIN/A/0000/left/0006.png", "TRAIN/A/0000/left/0007.png"]
    tested = list(data.stereo_samples(ctx, "flyingthings3d", None))
    assert [s.name for s in tested] == [f"TEST/A/0000/left/{n:04d}.png" for n in (6, 7, 8)]
    assert CRL_EXCLUDED not in {s.name for s in tested}
    assert all(s.truth["disparity_right"] is not None for s in tested)  # Fig. 7b's right-to-left truth

    # flow: FlyingThings3D TRAIN (unused frame left out) -> Sintel training, clean and final passes
    flow = data.flow_training_set(paper_data / "flyingthings3d", settings)
    assert [item[0] for item in flow.dataset.items] == ["TRAIN/A/0000/left/0006.png", "TRAIN/A/0000/left/0007.png"]
    for pass_name in ("clean", "final"):
        pairs = list(data.flow_samples(ctx, "mpi-sintel", None, pass_name=pass_name))
        assert [s.name for s in pairs] == ["alley_1/frame_0001", "alley_1/frame_0002", "market_5/frame_0001",
                                           "market_5/frame_0002"]
    with pytest.raises(ValueError, match="pass_name: expected 'clean' or 'final'"):
        next(data.flow_samples(ctx, "mpi-sintel", None, pass_name="albedo"))


def test_paper_splits_name_what_is_missing(paper_data, tmp_path, monkeypatch):
    import shutil

    settings = PaperCtx([]).settings
    # a DAVIS-2016 folder without its val list: the full profile does not guess the split
    davis = tmp_path / "data" / "davis2016"
    shutil.copytree(paper_data / "davis2016", davis)
    shutil.rmtree(davis / "ImageSets")
    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "data"))
    with pytest.raises(LayoutError, match=r"no split list among .*ImageSets/2016/val\.txt.*ImageSets/480p/val\.txt"):
        next(data.video_sequences(PaperCtx(["davis2016"]), "davis2016", None))
    # a DAVIS-2017 train list naming a sequence that is not in the folder
    davis2017 = tmp_path / "davis2017"
    shutil.copytree(paper_data / "davis2017", davis2017)
    (davis2017 / "ImageSets" / "2017" / "train.txt").write_text("bike-packing\ndance-twirl\n")
    with pytest.raises(LayoutError, match=r"ImageSets/2017/train\.txt have no frames .*dance-twirl"):
        data.video_training_set(davis2017, settings)
    # a FlyingThings3D test frame without its disparity file
    things = tmp_path / "data" / "flyingthings3d"
    shutil.copytree(paper_data / "flyingthings3d", things)
    (things / "disparity" / "TEST" / "A" / "0000" / "left" / "0007.pfm").unlink()
    with pytest.raises(LayoutError, match=r"1 TEST frames have no disparity file .*TEST/A/0000/left/0007\.pfm"):
        next(data.stereo_samples(PaperCtx(["flyingthings3d"]), "flyingthings3d", None))
    # the interactive training set reads the VGG benchmark: absent, the cell is not run and says why
    shutil.copytree(paper_data / "sbd", tmp_path / "data" / "sbd")
    with pytest.raises(data.DataUnavailable, match="dataset 'vgg-interactive' is missing"):
        data.training_samplers(PaperCtx(["sbd", "vgg-interactive"]), ["interactive"])
    with pytest.raises(ValueError, match="'vgg-interactive' is read but not declared"):
        data.training_samplers(PaperCtx(["sbd"]), ["interactive"])


def test_backbone_checkpoint_is_loaded_strictly(full_profile, tmp_path, monkeypatch):
    settings = experiments.PROFILES["full"]
    backbone = trained.build(settings).pyramid.backbone.state_dict()
    good = tmp_path / "drn_d_22.pth"
    torch.save({**{k: torch.randn_like(v) if v.is_floating_point() else v for k, v in backbone.items()},
                "fc.weight": torch.zeros(10, 8)}, good)  # the classifier is not used: ignored
    monkeypatch.setenv(trained.BACKBONE_ENV, str(good))
    statuses, df = full_profile({"lsm.efficiency": lambda cell: True}, tmp_path / "good")
    assert statuses == {"lsm.efficiency": runner.STATUS_OK}
    note = df[df.metric == "parameters"].note.iloc[0]
    assert note == "weights: backbone from drn_d_22.pth, the rest random init"
    # a key the model does not have (and one it misses): the cell fails, naming both
    renamed = dict(backbone)
    first = next(iter(renamed))
    renamed[first.replace(".", "_renamed.", 1)] = renamed.pop(first)
    bad = tmp_path / "mismatched.pth"
    torch.save(renamed, bad)
    monkeypatch.setenv(trained.BACKBONE_ENV, str(bad))
    unexpected = first.replace(".", "_renamed.", 1)
    with pytest.raises(ValueError, match=rf"missing keys \['{re.escape(first)}'.*unexpected keys \['{re.escape(unexpected)}'"):
        trained.build(settings, backbone=str(bad))
    statuses, _ = full_profile({"lsm.efficiency": lambda cell: True}, tmp_path / "bad")
    assert statuses == {"lsm.efficiency": runner.STATUS_FAILED}
    cell = json.loads(next((tmp_path / "bad" / "cells").rglob("*.json")).read_text())
    assert "does not match the model" in cell["error"] and first in cell["error"]
    monkeypatch.setenv(trained.BACKBONE_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(ValueError, match=r"cannot read .*absent\.pth"):
        trained.model_payload(type("Ctx", (), {"settings": settings, "seed": 0, "profile": "full",
                                               "device": "cpu"})(), tasks=trained.JOINT)
