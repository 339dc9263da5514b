"""Segmentation networks: two small ones for the mini profile, the paper's four DeepLabs for full.

Every network maps an image batch ``(B, 3, H, W)`` (RGB, 0-255) to logits ``(B, K, h, w)`` at its
output stride (DeepLab: 8; mini nets: 2); the losses upsample them bilinearly to the input size
where the paper's layers do (``fc8_interp``).

* ``mini-LargeFOV`` (about 40k parameters): VGG-like conv blocks, one 2x pooling, an
  ``fc6`` 3x3 convolution with dilation 4 (the LargeFOV field of view in miniature), ``fc7`` and
  ``fc8`` 1x1 convolutions.
* ``mini-ASPP`` (about 0.12M parameters): a residual network with one 2x downsampling, dilated
  residual blocks and a DeepLab-v2 ASPP head (four 3x3 branches, dilations 1, 2, 4, 6, summed).

Full profile (built lazily from torchvision, which is imported only inside
:func:`build_network`): ``Deeplab-largeFOV`` (VGG16, pool4/pool5 with stride 1, conv5 dilation 2,
fc6 3x3 dilation 12 with 1024 channels), ``Deeplab-MSc-largeFOV`` (the same plus the multi-scale
branches on the input and pool1-pool4, 128 channels each), ``Deeplab-VGG16`` (DeepLab-v2 VGG16:
ASPP with fc6 dilations 6, 12, 18, 24) and ``ResNet-101`` (DeepLab-v2: dilated ResNet-101, output
stride 8, ASPP 6/12/18/24). Pretrained backbone weights are loaded only from a local file the
user names (``weights``); nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
import torch
from torch import nn

#: Mean and standard deviation of the 0-255 RGB input (ImageNet statistics, as DeepLab's mean).
INPUT_MEAN = (122.675, 116.669, 104.008)
INPUT_STD = (58.4, 57.1, 57.4)

MINI_NETWORKS = ("mini-LargeFOV", "mini-ASPP")
FULL_NETWORKS = ("Deeplab-largeFOV", "Deeplab-MSc-largeFOV", "Deeplab-VGG16", "ResNet-101")


class NetworkUnavailable(RuntimeError):
    """A network cannot be built here (torchvision missing); the message says what to install."""


def normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) 0-255 RGB -> zero-mean, unit-variance input."""
    mean = images.new_tensor(INPUT_MEAN)[None, :, None, None]
    std = images.new_tensor(INPUT_STD)[None, :, None, None]
    return (images - mean) / std


def _conv(cin: int, cout: int, *, dilation: int = 1, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MiniLargeFOV(nn.Module):
    """Small VGG-like LargeFOV: output stride 2, dilated fc6. Shape: (B, 3, H, W) -> (B, K, H/2, W/2)."""

    def __init__(self, num_classes: int, *, width: int = 16, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, width), _conv(width, width), nn.MaxPool2d(3, stride=2, padding=1),
            _conv(width, 2 * width), _conv(2 * width, 2 * width, dilation=2),
        )
        self.fc6 = _conv(2 * width, 4 * width, dilation=4)
        self.fc7 = nn.Sequential(nn.Conv2d(4 * width, 4 * width, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.fc8 = nn.Conv2d(4 * width, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc8(self.fc7(self.fc6(self.features(normalise(images)))))


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, dilation=dilation),
                                  nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class MiniASPP(nn.Module):
    """Small dilated ResNet with a DeepLab-v2 ASPP head. Shape: (B, 3, H, W) -> (B, K, H/2, W/2)."""

    def __init__(self, num_classes: int, *, width: int = 32, rates=(1, 2, 4, 6), dropout: float = 0.3):
        super().__init__()
        self.stem = nn.Sequential(_conv(3, width // 2), _conv(width // 2, width, stride=2))
        self.blocks = nn.Sequential(_Residual(width, 1), _Residual(width, 2), _Residual(width, 2), _Residual(width, 4))
        self.aspp = nn.ModuleList(nn.Sequential(_conv(width, width, dilation=r), nn.Dropout2d(dropout),
                                                nn.Conv2d(width, num_classes, 1)) for r in rates)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(normalise(images)))
        return sum(branch(x) for branch in self.aspp)


# ---------------------------------------------------------------------------------------------
# Full profile: torchvision backbones
# ---------------------------------------------------------------------------------------------
def torchvision_available() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def _vgg16_trunk(weights: Path | None):
    import torchvision

    vgg = torchvision.models.vgg16(weights=None)
    if weights is not None:
        vgg.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
    layers = list(vgg.features.children())
    # DeepLab-LargeFOV: pool4 and pool5 become 3x3 / stride 1; conv5 uses dilation 2.
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
    for i in pools:
        layers[i] = nn.MaxPool2d(3, stride=2 if i in pools[:3] else 1, padding=1)
    for i in range(pools[3] + 1, pools[4]):
        if isinstance(layers[i], nn.Conv2d):
            layers[i].dilation, layers[i].padding = (2, 2), (2, 2)
    return layers, pools


class _FullDeepLab(nn.Module):
    """DeepLab on a torchvision trunk: trunk stages + heads summed (ASPP / MSc branches)."""

    def __init__(self, stages: nn.ModuleList, heads: nn.ModuleList, branch_taps: tuple[int, ...] = (),
                 branches: nn.ModuleList | None = None):
        super().__init__()
        self.stages, self.heads = stages, heads
        self.branch_taps, self.branches = branch_taps, branches

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalise(images)
        taps = {0: x}
        for index, stage in enumerate(self.stages, start=1):
            x = stage(x)
            taps[index] = x
        out = sum(head(x) for head in self.heads)
        if self.branches is not None:
            for tap, branch in zip(self.branch_taps, self.branches):
                y = branch(taps[tap])
                if y.shape[-2:] != out.shape[-2:]:
                    y = nn.functional.interpolate(y, size=out.shape[-2:], mode="bilinear", align_corners=False)
                out = out + y
        return out


def _fc_head(cin: int, num_classes: int, dilation: int, width: int = 1024) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True),
                         nn.Dropout2d(0.5), nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                         nn.Conv2d(width, num_classes, 1))


def _build_vgg(name: str, num_classes: int, weights: Path | None) -> nn.Module:
    layers, pools = _vgg16_trunk(weights)
    bounds = [0, *[p + 1 for p in pools]]
    stages = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in zip(bounds, bounds[1:]))
    if name == "Deeplab-VGG16":
        heads = nn.ModuleList(_fc_head(512, num_classes, d) for d in (6, 12, 18, 24))
        return _FullDeepLab(stages, heads)
    heads = nn.ModuleList([_fc_head(512, num_classes, 12)])
    if name == "Deeplab-largeFOV":
        return _FullDeepLab(stages, heads)
    channels = {0: 3, 1: 64, 2: 128, 3: 256, 4: 512}
    strides = {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}
    branches = nn.ModuleList(
        nn.Sequential(nn.Conv2d(channels[t], 128, 3, stride=strides[t], padding=1), nn.ReLU(inplace=True),
                      nn.Dropout2d(0.5), nn.Conv2d(128, 128, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                      nn.Conv2d(128, num_classes, 1))
        for t in (0, 1, 2, 3, 4))
    return _FullDeepLab(stages, heads, (0, 1, 2, 3, 4), branches)


def _build_resnet(num_classes: int, weights: Path | None) -> nn.Module:
    import torchvision

    resnet = torchvision.models.resnet101(weights=None, replace_stride_with_dilation=[False, True, True])
    if weights is not None:
        resnet.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
    stages = nn.ModuleList([stem, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
    heads = nn.ModuleList(nn.Conv2d(2048, num_classes, 3, padding=d, dilation=d) for d in (6, 12, 18, 24))
    return _FullDeepLab(stages, heads)


def build_network(name: str, *, num_classes: int, weights: str | Path | None = None) -> nn.Module:
    """The network ``name`` with ``num_classes`` outputs, randomly initialised from torch's seed.

    Args:
        name: one of :data:`MINI_NETWORKS` or :data:`FULL_NETWORKS`.
        num_classes: K.
        weights: a local torchvision state-dict file of the backbone (VGG16 or ResNet-101) for
            the full networks; None trains from a random initialisation.

    Raises:
        ValueError: unknown name, K < 2, or ``weights`` naming a file that does not exist.
        NetworkUnavailable: a full network is asked for and torchvision is not installed.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    if name == "mini-LargeFOV":
        return MiniLargeFOV(num_classes)
    if name == "mini-ASPP":
        return MiniASPP(num_classes)
    if name not in FULL_NETWORKS:
        raise ValueError(f"name: expected one of {MINI_NETWORKS + FULL_NETWORKS}, got {name!r}")
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"weights: expected a local state-dict file for {name}, got {str(weights)!r} (not found)")
    if not torchvision_available():
        raise NetworkUnavailable(
            f"{name} needs torchvision for its backbone (pip install torchvision); it is not installed here")
    weights = Path(weights) if weights is not None else None
    if name == "ResNet-101":
        return _build_resnet(num_classes, weights)
    return _build_vgg(name, num_classes, weights)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

