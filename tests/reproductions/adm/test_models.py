"""The segmentation networks: shapes, capacities, the lazy torchvision path."""
from __future__ import annotations

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


def test_full_networks_without_torchvision_say_what_to_install():
    if models.torchvision_available():
        pytest.skip("torchvision is installed here")
    with pytest.raises(models.NetworkUnavailable, match="pip install torchvision"):
        models.build_network("Deeplab-largeFOV", num_classes=21)


def test_importing_the_package_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, reproductions.adm; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(not models.torchvision_available(), reason="torchvision not installed")
@pytest.mark.parametrize("name", models.FULL_NETWORKS)
def test_full_networks_have_output_stride_eight(name):
    net = models.build_network(name, num_classes=21).eval()
    with torch.no_grad():
        out = net(255 * torch.rand(1, 3, 65, 65))
    assert out.shape[:2] == (1, 21) and out.shape[-1] in (9, 10)
