"""The full-profile data paths of wibergian.table1 (VOT2018 archived results) and wibergian.table2
(Human3.6M, 3d-pose-baseline layout), each on a tiny tree in the real layout that the test writes,
run end to end through the runner with the profile's sizes shrunk (same code path as full)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reproductions.wibergian import table1, table2
from suite.harness import registry, runner, store

h5py = pytest.importorskip("h5py")

# --------------------------------------------------------------------------- Human3.6M tree

# 3d-pose-baseline data_utils.py: H36M_NAMES (32 joints; '' unused) and SH_NAMES (16 joints).
H36M_NAMES = {0: "Hip", 1: "RHip", 2: "RKnee", 3: "RFoot", 6: "LHip", 7: "LKnee", 8: "LFoot", 12: "Spine",
              13: "Thorax", 14: "Neck/Nose", 15: "Head", 17: "LShoulder", 18: "LElbow", 19: "LWrist",
              25: "RShoulder", 26: "RElbow", 27: "RWrist"}
SH_NAMES = ["RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax", "Head", "RWrist",
            "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist"]
# The model's 17 joints in order: H36M indices sorted (3d-pose-baseline dimensions_to_use).
JOINTS_17 = [H36M_NAMES[i] for i in sorted(H36M_NAMES)]
CAMERA_NAMES = ["54138969", "55011271", "58860488", "60457274"]
FOCAL = np.array([1150.0, 1140.0])  # fx != fy: the loader must keep both
SEQUENCES = {"Directions 1": "directions", "Directions": "directions", "Walking 1": "walking", "WalkDog": "walking"}
FRAMES_PER_SEQUENCE = 5


def _yup_to_h36m(points: np.ndarray) -> np.ndarray:
    """The model's y-up world (x, y, z) -> Human3.6M's z-up world (x, -z, y)."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], -1)


def _subject_cameras(subject: int) -> list[dict]:
    """The synthetic rig, moved a little per subject (Human3.6M calibrates each session)."""
    cams = table2.make_cameras()
    for cam in cams:
        cam["C"] = cam["C"] + np.array([10.0 * subject, 0.0, -5.0 * subject])
        cam["f"] = FOCAL
    return cams


def _project(points: np.ndarray, cam: dict) -> np.ndarray:
    local = (points - cam["C"]) @ cam["R"].T
    return cam["f"] * local[..., :2] / local[..., 2:3] + cam["c"]


def write_h36m_tree(base: Path, *, damaged_s11_directions: bool = True) -> dict:
    """The 3d-pose-baseline layout under ``base``; returns the true y-up poses and detections by
    (subject, sequence) for checking the loader."""
    truth = {}
    base.mkdir(parents=True, exist_ok=True)
    with h5py.File(base / "cameras.h5", "w") as file:
        for subject in (1, 5, 6, 7, 8, 9, 11):
            for number, cam in enumerate(_subject_cameras(subject), 1):
                group = file.create_group(f"subject{subject}/camera{number}")
                # R world (z up) -> camera: R_yup M; stored transposed. T: the centre in the z-up world.
                rotation = cam["R"] @ table2.Z_UP_TO_Y_UP
                group["R"] = rotation.T
                group["T"] = _yup_to_h36m(cam["C"]).reshape(3, 1)
                group["f"] = cam["f"].reshape(2, 1)
                group["c"] = cam["c"].reshape(2, 1)
                group["k"] = np.zeros((3, 1))
                group["p"] = np.zeros((2, 1))
                group["Name"] = np.array([ord(ch) for ch in CAMERA_NAMES[number - 1]], np.uint8)
    for subject in (1, 5, 6, 7, 8, 9, 11):
        cams = _subject_cameras(subject)
        for index, (sequence, family) in enumerate(SEQUENCES.items()):
            data = table2.synthetic_poses((subject,), frames=FRAMES_PER_SEQUENCE, seed=index)
            world = data["world"][[i for i, a in enumerate(data["actions"]) if a == table2.ACTIONS[family]]]
            full = np.random.default_rng(subject).normal(0, 100, (len(world), 32, 3))
            for j, name in enumerate(JOINTS_17):
                full[:, [i for i, n in H36M_NAMES.items() if n == name][0]] = _yup_to_h36m(world[:, j])
            path = base / f"S{subject}" / "MyPoses" / "3D_positions" / f"{sequence}.h5"
            path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(path, "w") as file:
                file["3D_positions"] = full.reshape(len(world), 96).T
            detections = np.stack([_project(world, cam) for cam in cams], 1)  # (T, 4, 17, 2)
            folder = base / f"S{subject}" / "StackedHourglass"
            folder.mkdir(parents=True, exist_ok=True)
            damaged = damaged_s11_directions and subject == 11 and sequence.startswith("Directions")
            for c, name in enumerate(CAMERA_NAMES[:3] if damaged else CAMERA_NAMES):
                sh = np.stack([detections[:, c, JOINTS_17.index(n)] for n in SH_NAMES], 1)
                with h5py.File(folder / f"{sequence.replace(' ', '_')}.{name}.h5", "w") as file:
                    file["poses"] = sh
            truth[(subject, sequence)] = (world, detections)
    return truth


@pytest.fixture
def h36m_root(tmp_path):
    root = tmp_path / "data" / "h36m"
    truth = write_h36m_tree(root)
    return root, truth


def test_h36m_loader_gives_the_arrays_of_the_mini_path(h36m_root):
    root, truth = h36m_root
    data = table2.h36m_poses(root, table2.TEST_SUBJECTS, frames=None)
    n = len(data["world"])
    assert data["world"].shape == (n, 17, 3) and data["detections"].shape == (n, 4, 17, 2)
    assert data["visible"].shape == (n, 4, 17) and len(data["actions"]) == n == len(data["subjects"])
    # S11 Directions (3 cameras only here, damaged on Human3.6M) is skipped; the rest is read.
    pairs = set(zip(data["subjects"].tolist(), data["actions"]))
    assert pairs == {(9, "Dir."), (9, "Walk"), (9, "WalkD."), (11, "Walk"), (11, "WalkD.")}
    assert n == 6 * FRAMES_PER_SEQUENCE
    # Neck/nose has no Stacked Hourglass detection: masked; every other joint is seen.
    assert not data["visible"][..., table2.NECK].any() and data["visible"].sum() == n * 4 * 16
    seen = data["visible"][:, 0]
    for subject, sequence in [(9, "Directions 1"), (9, "WalkDog"), (11, "Walking 1")]:
        rows = [i for i, (s, q) in enumerate(zip(data["subjects"], data["sequences"]))
                if s == subject and q == sequence]
        world, detections = truth[(subject, sequence)]
        np.testing.assert_allclose(data["world"][rows], world, atol=1e-9)  # y up again, 17 joints in order
        np.testing.assert_allclose(data["detections"][rows][:, :, seen[rows[0]]], detections[:, :, seen[rows[0]]],
                                   atol=1e-9)
    # The cameras the energy uses reproject the loaded poses onto the loaded detections.
    cams = table2.camera_arrays(data["cameras"], data["subjects"], frames=n)
    local = np.einsum("ncik,ncjk->ncji", cams["R"], data["world"][:, None] - cams["C"][:, :, None])
    proj = cams["f"][:, :, None] * local[..., :2] / local[..., 2:3] + cams["c"][:, :, None]
    np.testing.assert_allclose(proj[data["visible"]], data["detections"][data["visible"]], atol=1e-6)
    assert not np.allclose(cams["C"][data["subjects"] == 9][0], cams["C"][data["subjects"] == 11][0])
    # Loader, Problem and energy agree: noise-free detections of poses inside a rich model are fitted
    # closely (18.6 mm here, the prior pulling; camera rotations left transposed give 89 mm).
    model = table2.PoseModel(table2.fit_ppca(data["world"], basis=20))
    prob = table2.Problem(data, "multi")
    with torch.no_grad():
        pred = table2.scale_to_gt(table2.reconstruct(model, prob, robust="l2", lam=0.1, max_iter=100), prob.gt)
    assert float((pred - prob.gt).norm(dim=-1).mean()) < 30.0
    # frames: evenly spaced frames per subject and action (both sequences together).
    few = table2.h36m_poses(root, (9,), frames=3)
    assert len(few["world"]) == 9 and few["sequences"][:3] == ["Directions 1", "Directions 1", "Directions"]


def test_h36m_loader_stride_keeps_every_kth_frame_of_each_sequence(h36m_root):
    root, _ = h36m_root
    every = table2.h36m_poses(root, (9,), frames=None)
    strided = table2.h36m_poses(root, (9,), frames=None, stride=2)
    for sequence in set(every["sequences"]):
        rows = [i for i, q in enumerate(every["sequences"]) if q == sequence]
        kept = [i for i, q in enumerate(strided["sequences"]) if q == sequence]
        np.testing.assert_array_equal(strided["world"][kept], every["world"][rows[::2]])
    with pytest.raises(ValueError, match="stride"):
        table2.h36m_poses(root, (9,), frames=None, stride=0)
    # full profile: the whole test set at the public code's stride, not a sample per action
    assert table2.PROFILES["full"]["test_frames"] is None and table2.PROFILES["full"]["stride"] == 5


def test_h36m_loader_rejects_bad_input(h36m_root, tmp_path):
    root, _ = h36m_root
    with pytest.raises(ValueError, match="frames"):
        table2.h36m_poses(root, (9,), frames=0)
    bad = root / "S9" / "StackedHourglass" / "Walking_1.55011271.h5"
    with h5py.File(bad, "w") as file:
        file["poses"] = np.zeros((FRAMES_PER_SEQUENCE + 1, 16, 2))
    with pytest.raises(ValueError, match=r"Walking_1\.55011271\.h5.*6 frames of detections but 5"):
        table2.h36m_poses(root, (9,), frames=None)
    bad.unlink()
    with pytest.raises(ValueError, match=r"Walking_1\.55011271\.h5: missing"):
        table2.h36m_poses(root, (9,), frames=None)
    with h5py.File(root / "S5" / "MyPoses" / "3D_positions" / "Dancing 1.h5", "w") as file:
        file["3D_positions"] = np.zeros((96, 2))
    with pytest.raises(ValueError, match=r"Dancing 1\.h5.*not one of the 15"):
        table2.h36m_poses(root, (5,), frames=None)


def _shrink(monkeypatch, profiles: dict, **sizes):
    for key, value in sizes.items():
        monkeypatch.setitem(profiles["full"], key, value)


def _run_full(exp_id, tmp_path, monkeypatch, *, cells):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path / "cache"))
    opts = runner.Options(profile="full", device="cpu", results=tmp_path / "results", progress=False)
    tasks = [t for t in runner.plan([registry.get(exp_id)], opts) if cells(t.cell)]
    assert tasks
    for task in tasks:
        assert runner.execute(task, opts) == runner.STATUS_OK
    return store.frame(tmp_path / "results")


def test_table2_full_profile_runs_on_a_human36m_tree(h36m_root, tmp_path, monkeypatch):
    assert table2.PROFILES["full"]["data"] == "h36m"
    # 3 models as at full; 2 basis vectors so that each k-means cluster of this tiny tree can hold a PPCA
    _shrink(monkeypatch, table2.PROFILES, frames=3, basis=2, steps=2, batch=8, max_iter=10)
    assert table2.PROFILES["full"]["models"] == 3
    df = _run_full("wibergian.table2", tmp_path, monkeypatch,
                   cells=lambda c: c["variant"] in ("mono", "multi-baseline", "multi-huber"))
    assert (df.profile == "full").all()
    counts = df[df.table == table2.TABLE3].set_index("row").value
    assert counts["Total"] == sum(counts[r] for r in counts.index if r != "Total") > 0
    assert counts["Body Models"] == 3 * 17 * 3 * (1 + 2) and counts["Cameras"] == 3 * 4 and counts["Fusion ‡"] == 4
    df = df[df.table != table2.TABLE3]
    measured = df[df.value.notna()]
    assert set(measured.column) == {"Dir.", "Walk", "WalkD.", table2.AVG}
    assert set(zip(measured.table, measured.row)) == {(table2.TABLE_MONO, table2.ROW_MONO),
                                                      (table2.TABLE_MULTI, table2.ROW_BASELINE),
                                                      (table2.TABLE_MULTI, table2.ROW_HUBER)}
    assert ((measured.value > 0) & (measured.value < 1000)).all()
    learned = measured[measured.row != table2.ROW_BASELINE]
    assert learned.note.str.contains("train loss").all()  # the learning loop ran
    # The other 12 Human3.6M columns are present, each saying why there is no number.
    missing = df[df.value.isna()]
    assert len(set(missing.column)) == 12 and missing.note.str.contains("no test frames").all()


# --------------------------------------------------------------------------- VOT2018 tree

VOT_SIZE = (320, 240)
VOT_TRACKERS = [f"T{k}" for k in range(6)]


def _polygon(box: np.ndarray, tilt: float) -> np.ndarray:
    """A rotated-rectangle polygon x1,y1,...,x4,y4 around the box centre (VOT2018 ground-truth style)."""
    cx, cy, w, h = box[0] + box[2] / 2, box[1] + box[3] / 2, box[2], box[3]
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    rot = np.array([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]])
    return (corners @ rot.T + [cx, cy]).ravel()


def write_vot_tree(root: Path) -> dict:
    """list.txt, <seq>/groundtruth.txt + color/*.jpg, results/<tracker>/unsupervised/<seq>/<seq>_001.txt."""
    rng = np.random.default_rng(0)
    gts, names = table1.generate_tracks(3, length=(10, 14), rng=rng, bounds=VOT_SIZE)
    names = [f"seq{i}" for i in range(3)]
    written = {"gt_polygons": {}, "results": {}}
    root.mkdir(parents=True)
    (root / "list.txt").write_text("\n".join(names) + "\n")
    for name, gt in zip(names, gts):
        folder = root / name / "color"
        folder.mkdir(parents=True)
        for i in range(len(gt)):
            Image.new("RGB", VOT_SIZE, (i, 0, 0)).save(folder / f"{i + 1:08d}.jpg")
        polygons = np.stack([_polygon(b, 0.1) for b in gt]).round(4)
        (root / name / "groundtruth.txt").write_text("\n".join(",".join(f"{v:.4f}" for v in p) for p in polygons))
        written["gt_polygons"][name] = polygons
        for k, tracker in enumerate(VOT_TRACKERS):
            boxes = gt * [1, 1, 0.9, 0.9] + rng.normal(0, 2 + 2 * k, gt.shape) * [1, 1, 0.3, 0.3]
            lines = ["1"]
            for i, box in enumerate(boxes[1:], 1):
                if k == 0:  # polygons (the tightest box is what counts)
                    lines.append(",".join(f"{v:.4f}" for v in _polygon(box, 0.2)))
                elif k == 1 and i in (4, 5):  # a failure and a skipped frame: keep the last box
                    lines.append("2" if i == 4 else "0")
                elif k == 2 and i == 3:
                    lines.append("nan,nan,nan,nan")
                else:
                    lines.append(",".join(f"{v:.4f}" for v in box))
            path = root / "results" / tracker / "unsupervised" / name / f"{name}_001.txt"
            path.parent.mkdir(parents=True)
            path.write_text("\n".join(lines) + "\n")
            written["results"][(tracker, name)] = lines
    # Not candidates: a tracker without one sequence, and one with only the baseline (reset) experiment.
    for name in names[:2]:
        path = root / "results" / "Partial" / "unsupervised" / name / f"{name}_001.txt"
        path.parent.mkdir(parents=True)
        path.write_text((root / "results" / "T3" / "unsupervised" / name / f"{name}_001.txt").read_text())
    for name in names:
        path = root / "results" / "BaselineOnly" / "baseline" / name / f"{name}_001.txt"
        path.parent.mkdir(parents=True)
        path.write_text((root / "results" / "T3" / "unsupervised" / name / f"{name}_001.txt").read_text())
    return written


@pytest.fixture
def vot_root(tmp_path):
    root = tmp_path / "data" / "vot2018"
    return root, write_vot_tree(root)


def test_vot_result_reader(tmp_path):
    path = tmp_path / "seq_001.txt"
    path.write_text("1\n10,20,30,40\n11 21 31 41\n0,0,4,1,5,3,1,2\n2\n0\nnan,nan,nan,nan\nNaN,NaN,NaN,-2\n")
    boxes, codes = table1.read_vot_result(path, frames=8)
    np.testing.assert_array_equal(codes, [1, -1, -1, -1, 2, 0, -1, 2])
    np.testing.assert_array_equal(boxes[1:4], [[10, 20, 30, 40], [11, 21, 31, 41], [0, 0, 5, 3]])
    assert np.isnan(boxes[[0, 4, 5, 6, 7]]).all()
    gt = np.tile([[1.0, 2.0, 3.0, 4.0]], (8, 1))
    filled = table1.vot_candidates(path, gt)
    np.testing.assert_array_equal(filled[0], gt[0])  # initialised on the ground truth
    np.testing.assert_array_equal(filled[4:8], [[0, 0, 5, 3]] * 4)  # failure, skipped, NaN: last box
    with pytest.raises(ValueError, match=r"seq_001\.txt: expected 9 lines"):
        table1.read_vot_result(path, frames=9)
    for text, pattern in (("1\n1,2,3\n", "line 2: expected 1, 4 or an even"), ("1\nx,y,w,h\n", "line 2: not numbers"),
                          ("1\n3\n", "line 2: expected a region or a code")):
        path.write_text(text)
        with pytest.raises(ValueError, match=r"seq_001\.txt: " + pattern):
            table1.read_vot_result(path, frames=2)


def test_vot_set_reads_the_toolkit_layout(vot_root):
    root, written = vot_root
    tracks = table1.vot_set(root)
    assert tracks.names == ["seq0", "seq1", "seq2"] and tracks.trackers == VOT_TRACKERS
    assert tracks.bounds == [VOT_SIZE] * 3
    name = "seq1"
    gt = tracks.gt[1]
    polygons = written["gt_polygons"][name]
    np.testing.assert_allclose(gt[:, :2], np.stack([polygons[:, 0::2].min(1), polygons[:, 1::2].min(1)], 1),
                               atol=1e-9)  # the polygons as written (4 decimals)
    cand = tracks.candidates[1]
    assert cand.shape == (len(gt), len(VOT_TRACKERS), 4)
    np.testing.assert_array_equal(cand[0], np.repeat(gt[:1], len(VOT_TRACKERS), 0))
    polygon = np.array([float(v) for v in written["results"][("T0", name)][2].split(",")])
    np.testing.assert_allclose(cand[2, 0], [polygon[0::2].min(), polygon[1::2].min(),
                                            np.ptp(polygon[0::2]), np.ptp(polygon[1::2])], atol=1e-9)
    np.testing.assert_array_equal(cand[4, 1], cand[3, 1])
    np.testing.assert_array_equal(cand[5, 1], cand[3, 1])
    np.testing.assert_array_equal(cand[3, 2], cand[2, 2])
    assert np.isfinite(np.concatenate(tracks.candidates)).all()


def test_table1_full_profile_runs_on_a_vot2018_tree(vot_root, tmp_path, monkeypatch):
    assert "vot2018" in table1.PROFILES["full"]["data"]
    _shrink(monkeypatch, table1.PROFILES, steps=3, batch=32, seeds=[0])
    df = _run_full("wibergian.table1", tmp_path, monkeypatch, cells=lambda c: c["data"] == "vot2018")
    assert (df.table == table1.TABLE).all() and (df.profile == "full").all()
    assert set(df.column) == set(table1.COLUMN.values())
    for column in table1.COLUMN.values():
        iou = df[(df.column == column) & (df.metric == table1.METRIC)].set_index("row")
        assert set(iou.index) == set(table1.ALL_ROWS), column
        for row in (table1.ROW_MEAN, table1.ROW_MEDIAN, "Tracker #1", "Tracker #5", table1.ROW_INIT,
                    table1.ROW_OURS):
            assert 0.0 < iou.loc[row, "value"] <= 1.0, (column, row)
        assert iou.loc["Tracker #1", "note"].split(" ")[0] in VOT_TRACKERS
        samuel = iou.loc[table1.ROW_SAMUEL]
        assert not np.isnan(samuel.value) or "did not converge" in samuel.note
