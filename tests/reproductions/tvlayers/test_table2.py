"""tvlayers.table2: the TV layers sit where Sec. 4.2 puts them, a smoke cell runs end to end, and the
generated stand-in data is deterministic."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reproductions.tvlayers import table2
from reproductions.tvlayers.classification import AllConvNet, ConvBlock, lam_values, train_classifier, tv_layers
from suite.data.generate_classification import CLASSES, generate_classification
from suite.data.readers import CIFAR10, CIFAR10C
from suite.harness import registry, runner, store
from suite.solvers.tv import TVLayer, tv_prox_2d


@pytest.mark.parametrize("mode", ["smooth", "sharp"])
def test_tv_layers_before_batch_norm_in_the_first_three_blocks(mode):
    model = AllConvNet(widths=(8, 16), tv_mode=mode)
    blocks = list(model.blocks)
    assert len(blocks) == 9 and all(isinstance(b, ConvBlock) for b in blocks)
    for index, block in enumerate(blocks):
        if index < 3:
            assert isinstance(block.tv, TVLayer) and block.tv.mode == mode and block.tv.direction == "2d"
            assert block.tv.shared and block.tv.lam_raw.shape == (1,)  # one lambda for all channels
            assert block.tv.channels == block.conv.out_channels == block.bn.num_features
        else:
            assert isinstance(block.tv, torch.nn.Identity)
    assert lam_values(model) == pytest.approx([0.05] * 3, abs=1e-7)
    # The order inside a block: conv -> TV -> BN -> ReLU.
    calls = []
    for name in ("conv", "tv", "bn"):
        getattr(blocks[0], name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    model(torch.randn(2, 3, 32, 32))
    assert calls == ["conv", "tv", "bn"]
    # The TV output is what BN sees: Prox_TV2D of the conv output (Eq. 3), or 2x - prox (Eq. 4).
    x = torch.randn(2, 3, 32, 32)
    conv = blocks[0].conv(x)
    seen = []
    blocks[0].bn.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model(x)
    prox = tv_prox_2d(conv, 0.05)
    torch.testing.assert_close(seen[-1], prox if mode == "smooth" else 2 * conv - prox, rtol=1e-5, atol=1e-5)


def test_baseline_has_no_tv_layer_and_lambda_is_trained():
    assert tv_layers(AllConvNet(widths=(8, 16))) == []
    torch.manual_seed(0)
    model = AllConvNet(widths=(8, 16), tv_mode="sharp")
    assert all(layer.lam_raw.requires_grad for layer in tv_layers(model))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    result = train_classifier(model, images, np.arange(16) % 10, steps=2, batch_size=8, lr=0.5, weight_decay=0.0,
                              seed=0, log_every=1)
    first, last = result["history"]["lam"][0], result["history"]["lam"][-1]
    assert first == pytest.approx([0.05] * 3, abs=1e-7)
    assert all(not math.isclose(a, b) for a, b in zip(first, last)), "lambda did not move in training"
    assert result["history"]["step"] == [0, 1, 2] and len(result["step_ms"]) == 2


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="tv_mode"):
        AllConvNet(tv_mode="blur")
    with pytest.raises(ValueError, match="widths"):
        AllConvNet(widths=(8,))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        AllConvNet(widths=(8, 16))(torch.randn(3, 32, 32))


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_generated_classification_data_is_deterministic_and_readable(tmp_path):
    ticks = []
    generate_classification(tmp_path / "a", "smoke", 0, lambda: ticks.append(1))
    generate_classification(tmp_path / "b", "smoke", 0, lambda: None)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    images, labels = CIFAR10(tmp_path / "a", split="train").arrays()
    assert images.shape[1:] == (32, 32, 3) and set(labels) == set(range(len(CLASSES)))
    test_images, test_labels = CIFAR10(tmp_path / "a", split="test").arrays()
    corrupted = CIFAR10C(tmp_path / "a", corruption="gaussian_noise", severity=5)
    assert len(corrupted) == len(test_images)
    sample = corrupted[3]
    assert sample["label"] == test_labels[3] and not np.array_equal(sample["image"], test_images[3])
    assert len(ticks) == 26


def test_table2_smoke_cell(tmp_path):
    exp = registry.get("tvlayers.table2")
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    runner.ensure_generated([exp], opts)
    task = next(t for t in runner.plan([exp], opts) if t.cell == {"model": "TV-Sharp"})
    assert runner.execute(task, opts) == runner.STATUS_OK
    df = store.frame(tmp_path / "results")
    main = df[(df.table == table2.TABLE) & df.step.isna()]
    assert set(main.column) == set(table2.COLUMNS.values()) | {"All"}
    assert main.value.between(0, 100).all()
    assert len(df[df.table == table2.CLEAN]) == 1
    assert set(df[df.table == table2.FAMILY_TABLE].column) == {"noise", "blur"}
    curve = df[(df.table == table2.FIGURE) & df.step.notna()]
    assert set(curve.column) == {"block 1", "block 2", "block 3"} and curve.step.max() == exp.settings("smoke")["steps"]
    cost = df[df.table == table2.COST]
    assert len(cost) == 1 and cost.value.iloc[0] > 0 and cost.unit.iloc[0] == "ms"
    figures = table2._plots(df)
    assert set(figures) == {"fig3-lambda"}


def test_tv_strength_and_bypass_measure_the_trained_layers():
    from reproductions.tvlayers.classification import channel_stats, normalise, predict, predict_without_tv, tv_strength

    torch.manual_seed(0)
    model = AllConvNet(widths=(4, 8), tv_mode="smooth", lam_init=0.3).eval()
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    stats = tv_strength(model, images, mean, std)
    assert len(stats) == 3
    # Block 1 by hand: its conv output F, then ||Prox_TV2D(F, 0.3) - F|| / ||F||.
    with torch.no_grad():
        features = model.blocks[0].conv(normalise(images, mean, std))
        change = float((tv_prox_2d(features, torch.tensor(0.3)) - features).norm() / features.norm())
    assert stats[0][0] == pytest.approx(float(features.abs().mean()), rel=1e-5)
    assert stats[0][1] == pytest.approx(change, rel=1e-4) and stats[0][1] > 0.01
    # Bypassing the layers at test time is the same network with identities in their place, and
    # the model keeps its TV layers afterwards.
    plain = AllConvNet(widths=(4, 8), tv_mode=None).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".tv." not in k})
    np.testing.assert_array_equal(predict_without_tv(model, images, mean, std), predict(plain, images, mean, std))
    assert len(tv_layers(model)) == 3
    assert tv_strength(plain, images, mean, std) == []
