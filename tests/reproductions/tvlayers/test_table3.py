"""tvlayers.table3: the fixed TV2D-Smooth layer sits right before the CAM layer of each backbone, the
CAM is the class-weighted feature map, pretrained weights load strictly, a smoke cell runs, and the
generated WSOL data is deterministic with boxes around its objects."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from reproductions.tvlayers import table3, wsol
from reproductions.tvlayers.wsol import BACKBONES, build_backbone, load_pretrained
from suite.data.generate_wsol import generate_wsol
from suite.data.readers import WSOLMetadata, read_image
from suite.harness import registry, runner, store
from suite.solvers.tv import TVLayer, tv_prox_2d

SMALL = table3.PROFILES["smoke"]["backbones"]


@pytest.mark.parametrize("name", BACKBONES)
def test_fixed_tv_layer_right_before_the_cam_layer(name):
    torch.manual_seed(0)
    model = build_backbone(name, SMALL[name], classes=5, tv_lam=1.0).eval()
    assert isinstance(model.tv, TVLayer) and model.tv.mode == "smooth" and model.tv.direction == "2d"
    assert model.tv.shared and float(model.tv.lam) == pytest.approx(1.0, abs=1e-6)
    assert not model.tv.lam_raw.requires_grad  # fixed, as in the paper
    assert model.tv not in [p for p in model.parameters() if p.requires_grad]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.extract(x)
        expected = model.fc(tv_prox_2d(features, 1.0).mean(dim=(2, 3)))
        torch.testing.assert_close(model(x), expected)
        # CAM = sum_c W[k, c] F_c of the TV-smoothed map: its spatial mean is the logit minus the bias
        labels = torch.tensor([1, 3])
        cam = model.cam(x, labels)
        logits = model(x)
        torch.testing.assert_close(cam.mean(dim=(1, 2)) + model.fc.bias[labels], logits[[0, 1], labels],
                                   rtol=1e-5, atol=1e-5)
    baseline = build_backbone(name, SMALL[name], classes=5, tv_lam=None)
    assert isinstance(baseline.tv, torch.nn.Identity)
    assert not any(isinstance(m, TVLayer) for m in baseline.modules())


def test_pretrained_weights_load_strictly(tmp_path):
    torch.manual_seed(0)
    source = build_backbone("ResNet50", SMALL["ResNet50"], classes=5, tv_lam=None)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith(("conv6.", "tv."))}
    state["fc.weight"] = torch.zeros(1000, 3)  # an ImageNet head is skipped
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    target = build_backbone("ResNet50", SMALL["ResNet50"], classes=5, tv_lam=1.0)
    load_pretrained(target, path)
    torch.testing.assert_close(target.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    state["layer9.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ValueError, match="unmapped keys.*layer9"):
        load_pretrained(target, path)
    del state["layer9.weight"], state["layer1.0.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing backbone keys.*layer1.0.conv1.weight"):
        load_pretrained(target, path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_pretrained(target, path)


def test_unknown_backbone_is_named():
    with pytest.raises(ValueError, match="backbone"):
        build_backbone("AlexNet", {}, classes=5, tv_lam=None)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_generated_wsol_data_is_deterministic_with_tight_boxes(tmp_path):
    generate_wsol(tmp_path / "a", "smoke", 0, lambda: None)
    generate_wsol(tmp_path / "b", "smoke", 0, lambda: None)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    root = tmp_path / "a"
    test = WSOLMetadata(root, dataset="MINI", split="test", images_root=root / "dataset" / "MINI")
    train = WSOLMetadata(root, dataset="MINI", split="train")
    assert len(train) == 24 and not train.boxes  # training has labels only
    for item in test:
        (x0, y0, x1, y1), = item["boxes"]
        assert 0 <= x0 < x1 < 64 and 0 <= y0 < y1 < 64
        assert (x1 - x0) * (y1 - y0) >= 0.04 * 64 * 64
        assert item["image"].shape == (64, 64, 3)
    assert read_image(root / "dataset" / "MINI" / test.items[0]).dtype == np.uint8


def test_table3_smoke_cell(tmp_path):
    exp = registry.get("tvlayers.table3")
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    runner.ensure_generated([exp], opts)
    tasks = [t for t in runner.plan([exp], opts) if t.cell["backbone"] == "ResNet50"]
    assert {t.cell["model"] for t in tasks} == {"CAM-repro", "+TV"}
    for task in tasks:
        assert runner.execute(task, opts) == runner.STATUS_OK
    df = store.frame(tmp_path / "results")
    boxacc = df[df.table == table3.TABLE]
    assert set(boxacc.row) == {"CAM-repro", "+TV"} and boxacc.value.between(0, 100).all()
    assert boxacc.note.str.contains("random init").all() and boxacc.note.str.contains("stand-in").all()
    assert set(df[df.table == table3.COST].row) == {"CAM-repro", "+TV"}


def test_backbones_are_initialised_as_wsolevaluation():
    """He (fan_out) convolutions for VGG, Xavier for ResNet / Inception, N(0, 0.01) classifier, zero
    biases (wsolevaluation's wsol/util.py initialize_weights); PyTorch's default left the mini VGG dead."""
    import math

    from torch import nn

    torch.manual_seed(0)
    vgg = build_backbone("VGG16", {"config": [64, "M", 64], "conv6": 64}, classes=3, tv_lam=None)
    conv = next(m for m in vgg.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 64)
    assert float(conv.weight.std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.1)
    assert float(conv.bias.abs().max()) == 0.0
    assert float(vgg.fc.weight.std()) == pytest.approx(0.01, rel=0.2) and float(vgg.fc.bias.abs().max()) == 0.0
    resnet = build_backbone("ResNet50", {"layers": [1, 1, 1, 1], "base": 8}, classes=3, tv_lam=1.0)
    conv = next(m for m in resnet.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    bound = math.sqrt(6 / (conv.in_channels * 9 + conv.out_channels * 9))
    assert 0.8 * bound < float(conv.weight.abs().max()) <= bound
    assert float(resnet.tv.lam.detach().reshape(-1)[0]) == pytest.approx(1.0)  # the TV layer is left as set
    with pytest.raises(ValueError, match="init_mode"):
        wsol.initialize_weights(vgg.modules(), init_mode="orthogonal")
