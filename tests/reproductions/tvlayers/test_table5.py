"""tvlayers.table5: Zhu et al.'s ResNet, the TV placement of ResNetTV, the loss, the generated
mini-smoothing set (layout, determinism), and a smoke training run end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reproductions.tvlayers import smoothing, table5
from suite.data import manage
from suite.data.readers import EPSBenchmark
from suite.harness import claims, registry, runner, store
from suite.solvers.tv import TVLayer


def test_resnet_layout_of_the_release():
    model = smoothing.SmoothingResNet(channels=8, blocks=16)
    assert len(model.blocks) == 16 and all(b.tv is None for b in model.blocks) and model.smooth is None
    assert model.tail1.out_channels == model.tail2.out_channels == 32 and model.out.kernel_size == (1, 1)
    x = torch.rand(2, 3, 20, 24) * 2 - 1
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == x.shape
    # y = x + tanh(delta): the output stays within 1 of the input.
    assert float((out - x).abs().max()) <= 1.0


def test_resnettv_placement_four_sharp_1d_alternating_and_shared_smooth_2d_at_the_output():
    assert smoothing.tv_block_indices(16) == [3, 7, 11, 15]
    assert smoothing.tv_block_indices(4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least 4"):
        smoothing.tv_block_indices(3)
    model = smoothing.SmoothingResNet(channels=8, blocks=16, tv=True)
    sharp = [(i, b.tv) for i, b in enumerate(model.blocks) if b.tv is not None]
    assert [i for i, _ in sharp] == [3, 7, 11, 15]
    assert [t.direction for _, t in sharp] == ["row", "col", "row", "col"]
    assert all(isinstance(t, TVLayer) and t.mode == "sharp" and not t.shared and t.channels == 8 for _, t in sharp)
    assert model.smooth.mode == "smooth" and model.smooth.direction == "2d" and model.smooth.shared
    assert model.smooth.lam_raw.numel() == 1


def test_resnettv_layers_act_where_placed():
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    plain = smoothing.SmoothingResNet(channels=4, blocks=4).eval()
    torch.manual_seed(0)
    identity = smoothing.SmoothingResNet(channels=4, blocks=4, tv=True, sharp_lam_init=0.0, smooth_lam_init=0.0).eval()
    torch.testing.assert_close(plain(x), identity(x))  # lambda = 0 everywhere: the same network (Eq. 5)
    torch.manual_seed(0)
    smooth_only = smoothing.SmoothingResNet(channels=4, blocks=4, tv=True, sharp_lam_init=0.0,
                                            smooth_lam_init=0.3).eval()
    # The final layer is the 2D TV prox of the plain network's output image.
    torch.testing.assert_close(smooth_only(x), smooth_only.smooth(plain(x)))


def test_loss_matches_a_direct_reading_of_the_release():
    torch.manual_seed(0)
    out = torch.rand(2, 3, 7, 6)
    gts = torch.rand(2, 5, 3, 7, 6)
    w = torch.softmax(torch.randn(2, 5), dim=1)
    expected = torch.zeros(2)
    for b in range(2):
        for k in range(5):
            s, g = out[b], gts[b, k]
            term = (s - g).abs().mean()
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    if (dy, dx) == (0, 0):
                        continue
                    h, wd = s.shape[-2:]
                    values = []
                    for i in range(h):
                        for j in range(wd):
                            if 0 <= i + dy < h and 0 <= j + dx < wd:
                                values.append((s[:, i + dy, j + dx] - s[:, i, j]) - (g[:, i + dy, j + dx] - g[:, i, j]))
                    term = term + torch.stack(values).abs().mean()
            expected[b] += w[b, k] * term
    torch.testing.assert_close(smoothing.smoothing_loss(out, gts, w), expected.mean())
    assert len(smoothing.DISPLACEMENTS) == 24


def _eps_tree(root: Path, numbers, *, truths=5, rows=500):
    """A tiny tree in the layout of Zhu et al.'s release: dataset/origin_images/NNNN.png,
    dataset/gt_images/NNNN_k.png, dataset/weight_matrix.mat (variable weight_matrix, row n-1 = image n)."""
    import cv2

    from suite.data.readers import write_weight_matrix

    base = root / "dataset"
    (base / "origin_images").mkdir(parents=True)
    (base / "gt_images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    weights = np.zeros((rows, 5))
    for number in numbers:
        cv2.imwrite(str(base / "origin_images" / f"{number:04d}.png"), rng.integers(0, 256, (6, 7, 3), np.uint8))
        for k in range(1, truths + 1):
            cv2.imwrite(str(base / "gt_images" / f"{number:04d}_{k}.png"), np.full((6, 7, 3), 10 * k, np.uint8))
        if number <= rows:
            weights[number - 1] = np.arange(1, 6) / 15.0
    write_weight_matrix(base / "weight_matrix.mat", weights)
    return root


def test_eps_zhu_reader_reads_the_release_layout_and_split(tmp_path):
    from suite.data.readers import MalformedFileError

    root = _eps_tree(tmp_path / "Benchmark_EPS", [1, 2, 400, 401, 500])
    train, test = EPSBenchmark(root, split="train"), EPSBenchmark(root, split="test")
    assert [s["name"] for s in train] == ["0001", "0002", "0400"]  # the release: 0001-0400 train
    assert [s["name"] for s in test] == ["0401", "0500"]  # 0401-0500 test
    sample = test[1]
    assert sample["image"].shape == (6, 7, 3) and len(sample["ground_truths"]) == 5
    assert [int(g[0, 0, 0]) for g in sample["ground_truths"]] == [10, 20, 30, 40, 50]  # _1 .. _5 in order
    np.testing.assert_allclose(sample["weights"], np.arange(1, 6) / 15.0)  # row 499 = image 0500, as stored
    assert len(EPSBenchmark(root / "dataset", split="all")) == 5  # the dataset folder itself as root
    # four ground truths for five weights, a matrix too short, an unknown split: named errors
    short = _eps_tree(tmp_path / "short", [401], truths=4)
    with pytest.raises(MalformedFileError, match="4 ground truths but 5 weights"):
        EPSBenchmark(short)[0]
    few_rows = _eps_tree(tmp_path / "rows", [401], rows=400)
    with pytest.raises(MalformedFileError, match="no row for image 0401"):
        EPSBenchmark(few_rows)[0]
    with pytest.raises(ValueError, match="split: expected one of"):
        EPSBenchmark(root, split="val")
    with pytest.raises(ValueError, match="weight_matrix.mat not found"):
        EPSBenchmark(tmp_path / "short" / "dataset" / "gt_images")


def test_generated_smoothing_set_layout_and_determinism(tmp_path):
    versions = []
    for name in ("a", "b"):
        report = manage.build(profile="smoke", root=tmp_path / name, datasets=["mini-smoothing"], progress=False,
                              record=False)
        versions.append(report["datasets"]["mini-smoothing"]["version"])
    assert versions[0] == versions[1]  # byte-identical files from the same seed
    other = manage.build(profile="smoke", root=tmp_path / "c", datasets=["mini-smoothing"], progress=False,
                         record=False, seed=1)
    assert other["datasets"]["mini-smoothing"]["version"] != versions[0]
    train = EPSBenchmark(tmp_path / "a" / "mini-smoothing", split="train")
    test = EPSBenchmark(tmp_path / "a" / "mini-smoothing", split="test")
    assert (len(train), len(test)) == (4, 2)
    sample = test[0]
    assert sample["image"].shape == (32, 32, 3) and len(sample["ground_truths"]) == 5
    assert sample["name"] == "0401" and [s["name"] for s in train] == ["0001", "0002", "0003", "0004"]
    assert sample["weights"].sum() == pytest.approx(1.0) and (sample["weights"] >= 0).all()
    # The ground truths are smoothings: closer to each other than the textured input is to them.
    image = sample["image"].astype(float)
    gts = np.stack(sample["ground_truths"]).astype(float)
    assert np.abs(np.diff(gts[..., 0], axis=-1)).mean() < np.abs(np.diff(image[..., 0], axis=-1)).mean()


def test_table5_smoke_end_to_end(tmp_path):
    exp = registry.get("tvlayers.table5")
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    summary = runner.run([exp], opts)
    assert summary.ok
    df = store.frame(tmp_path / "results")
    column = table5.COLUMN["mini-smoothing"]
    for row in (*table5.ROWS.values(), table5.ROW_INPUT, table5.ROW_UNTRAINED):
        for metric in ("wrmse", "wmae"):
            values = df[(df.row == row) & (df.metric == metric) & (df.column == column)].value
            assert len(values) == 1 and float(values.iloc[0]) > 0
    assert len(df[(df.row == "ResNetTV") & (df.metric == "lam")]) == 5
    lam = df[(df.row == "ResNetTV") & (df.metric == "lam_255")].value
    assert len(lam) == 1 and float(lam.iloc[0]) > 0
    paper = claims.load_paper(table5.__file__.replace("table5.py", "paper.yaml"))
    # No claim is judged at smoke; judged as if at mini, the records must decide the stand-in claims.
    verdicts = {v.claim.id: v.verdict for v in claims.judge_all(paper, df.assign(profile="mini"), profile="mini")}
    for metric in ("wrmse", "wmae"):
        assert verdicts[f"resnettv-improves-resnet-stand-in-{metric}"] in claims.JUDGED


def test_claims_state_the_paper_gain_as_an_improvement():
    """The engine signs gains by higher_is_better: the paper's improvements are positive gains."""
    paper = claims.load_paper(Path(registry.get("tvlayers.table5").func.__code__.co_filename).with_name("paper.yaml"))
    mine = [c for c in paper.claims if c.id.startswith("resnettv-improves-resnet")]
    assert len(mine) >= 4 and all(c.kind == "improvement" and float(c.spec["paper_gain"]) > 0 for c in mine)
