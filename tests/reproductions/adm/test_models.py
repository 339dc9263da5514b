"""The segmentation networks: shapes, capacities, the strict ImageNet initialisation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reproductions.adm import models


@pytest.mark.parametrize("name", models.MINI_NETWORKS)
def test_mini_networks_output_logits_at_stride_two(name):
    torch.manual_seed(0)
    net = models.build_network(name, num_classes=7).eval()
    with torch.no_grad():
        out = net(255 * torch.rand(2, 3, 32, 48))
    assert out.shape == (2, 7, 16, 24) and torch.isfinite(out).all()


def test_the_two_mini_networks_differ_in_capacity():
    small, large = (models.parameter_count(models.build_network(n, num_classes=7)) for n in models.MINI_NETWORKS)
    assert 2 * small < large


def test_same_seed_same_initialisation():
    torch.manual_seed(5)
    a = models.build_network("mini-LargeFOV", num_classes=3)
    torch.manual_seed(5)
    b = models.build_network("mini-LargeFOV", num_classes=3)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="name: expected one of"):
        models.build_network("deeplab", num_classes=7)
    with pytest.raises(ValueError, match="num_classes"):
        models.build_network("mini-ASPP", num_classes=1)
    with pytest.raises(ValueError, match="weights: expected a local state-dict file"):
        models.build_network("ResNet-101", num_classes=21, weights="/nonexistent/resnet101.pth")


def test_importing_the_package_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, reproductions.adm; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


WIDTH = 1 / 16  # the full architectures with 1/16 of the channels: same code, a small checkpoint


@pytest.mark.parametrize("name", models.FULL_NETWORKS)
def test_full_networks_have_output_stride_eight(name):
    net = models.build_network(name, num_classes=21, width=WIDTH).eval()
    with torch.no_grad():
        out = net(255 * torch.rand(1, 3, 65, 65))
    assert out.shape == (1, 21, 9, 9)


def _he(*shape) -> torch.Tensor:
    """Random values at He scale (a trainable start, like a real checkpoint's)."""
    fan_in = int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1
    return torch.randn(*shape) * (2.0 / fan_in) ** 0.5 if len(shape) > 1 else 0.01 * torch.randn(*shape)


def vgg16_checkpoint(width=WIDTH) -> dict:
    """A state dict with torchvision vgg16's names and shapes (at ``width``), random values."""
    torch.manual_seed(1)
    state = {f"features.{k}": _he(*v.shape) for k, v in models._vgg16_features(width).state_dict().items()}
    fc, top = int(4096 * width), int(512 * width)
    state.update({"classifier.0.weight": _he(fc, top * 49), "classifier.0.bias": _he(fc),
                  "classifier.3.weight": _he(fc, fc), "classifier.3.bias": _he(fc),
                  "classifier.6.weight": _he(1000, fc), "classifier.6.bias": _he(1000)})
    return state


def resnet101_checkpoint(width=WIDTH) -> dict:
    torch.manual_seed(2)
    state = {k: (torch.randn_like(v) if v.is_floating_point() else v)
             for k, v in models._ResNet101(width).state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, int(2048 * width)), torch.randn(1000)
    return state


def test_vgg16_20m_decimates_fc6_and_fc7_explicitly():
    state = vgg16_checkpoint()
    fc = models.vgg16_20m(state)
    full6 = state["classifier.0.weight"].view(256, 32, 7, 7)
    assert fc["fc6.weight"].shape == (64, 32, 3, 3) and fc["fc7.weight"].shape == (64, 64, 1, 1)
    # filter 4 of the result is ImageNet filter 16; tap (1, 2) is the 7 x 7 tap (3, 6)
    torch.testing.assert_close(fc["fc6.weight"][4, :, 1, 2], full6[16, :, 3, 6])
    torch.testing.assert_close(fc["fc7.weight"][5, 7, 0, 0], state["classifier.3.weight"][20, 28])
    torch.testing.assert_close(fc["fc6.bias"], state["classifier.0.bias"][::4])


@pytest.mark.parametrize("name", models.FULL_NETWORKS)
def test_initial_checkpoint_loads_strictly_into_every_full_network(name, tmp_path):
    path = tmp_path / "init.pth"
    state = resnet101_checkpoint() if name == "ResNet-101" else vgg16_checkpoint()
    torch.save(state, path)
    net = models.build_network(name, num_classes=21, width=WIDTH, weights=path)
    if name == "ResNet-101":
        torch.testing.assert_close(net.stages[0][0].weight, state["conv1.weight"])
        torch.testing.assert_close(net.stages[4][2].bn3.running_var, state["layer4.2.bn3.running_var"])
    else:
        torch.testing.assert_close(net.stages[0][0].weight, state["features.0.weight"])
        torch.testing.assert_close(net.stages[4][4].weight, state["features.28.weight"])  # conv5_3 (dilated)
        fc = models.vgg16_20m(state)
        for head in net.heads:  # every ASPP branch starts from the same fc6 / fc7
            torch.testing.assert_close(head[0].weight, fc["fc6.weight"])
            torch.testing.assert_close(head[3].weight, fc["fc7.weight"])


def test_a_checkpoint_that_does_not_fit_names_missing_and_unexpected_keys(tmp_path):
    state = vgg16_checkpoint()
    del state["features.2.weight"]
    state["features.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"missing keys \['stages.0.2.weight'\].*unexpected keys"):
        models.build_network("Deeplab-largeFOV", num_classes=21, width=WIDTH, weights=tmp_path / "bad.pth")
    torch.save(resnet101_checkpoint(), tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="unexpected keys"):
        models.build_network("Deeplab-VGG16", num_classes=21, width=WIDTH, weights=tmp_path / "resnet.pth")
    torch.save(vgg16_checkpoint(width=1 / 8), tmp_path / "wide.pth")
    with pytest.raises(ValueError, match="shape mismatches"):
        models.build_network("Deeplab-largeFOV", num_classes=21, width=WIDTH, weights=tmp_path / "wide.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="readable torch state dict"):
        models.build_network("ResNet-101", num_classes=21, width=WIDTH, weights=tmp_path / "junk.pth")


def test_initial_weights_from_the_setting_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)
    assert models.initial_weights({"weights": {}}, "ResNet-101") is None
    (tmp_path / "vgg16.pth").write_bytes(b"")
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    assert models.initial_weights({}, "Deeplab-VGG16") == tmp_path / "vgg16.pth"
    assert models.initial_weights({}, "ResNet-101") is None  # resnet101.pth absent
    assert models.initial_weights({"weights": {"ResNet-101": "/x/r.pth"}}, "ResNet-101") == Path("/x/r.pth")
    assert models.initial_weights({}, "mini-ASPP") is None
