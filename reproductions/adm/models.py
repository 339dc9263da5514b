"""Segmentation networks: two small ones for the mini profile, the paper's four DeepLabs for full.

Every network maps an image batch ``(B, 3, H, W)`` (RGB, 0-255) to logits ``(B, K, h, w)`` at its
output stride (DeepLab: 8; mini nets: 2); the losses upsample them bilinearly to the input size
where the paper's layers do (``fc8_interp``).

* ``mini-LargeFOV`` (about 40k parameters): VGG-like conv blocks, one 2x pooling, an
  ``fc6`` 3x3 convolution with dilation 4 (the LargeFOV field of view in miniature), ``fc7`` and
  ``fc8`` 1x1 convolutions.
* ``mini-ASPP`` (about 0.12M parameters): a residual network with one 2x downsampling, dilated
  residual blocks and a DeepLab-v2 ASPP head (four 3x3 branches, dilations 1, 2, 4, 6, summed).

Full profile (built here in torch with torchvision's parameter names, so torchvision is not
needed): ``Deeplab-largeFOV`` (VGG16, pool4/pool5 with stride 1, conv5 dilation 2,
fc6 3x3 dilation 12 with 1024 channels), ``Deeplab-MSc-largeFOV`` (the same plus the multi-scale
branches on the input and pool1-pool4, 128 channels each), ``Deeplab-VGG16`` (DeepLab-v2 VGG16:
ASPP with fc6 dilations 6, 12, 18, 24) and ``ResNet-101`` (DeepLab-v2: dilated ResNet-101, output
stride 8, ASPP 6/12/18/24). The ImageNet initialisation the paper starts from is a local
torchvision checkpoint the user gives (the ``weights`` setting, or ``$ENERGYBENCH_WEIGHTS/vgg16.pth``
and ``resnet101.pth``); it is loaded strictly, with DeepLab's fc6 / fc7 decimation ("vgg16_20M")
done explicitly (:func:`load_initial_weights`). Nothing is downloaded; without a checkpoint the
network starts from random weights and every record says so ("random init").
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
    """A network cannot be built here; the message says why (kept for callers; no network raises it now)."""


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
# Full profile: VGG16 and ResNet-101 trunks (torchvision's parameter names, built here in torch)
# ---------------------------------------------------------------------------------------------
#: VGG16 configuration "D" (Simonyan & Zisserman): output channels, "M" = max pooling.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: The ImageNet checkpoint file each full network starts from, in ``$ENERGYBENCH_WEIGHTS``
#: (torchvision parameter names; the same folder and convention as TV Table 3).
WEIGHTS_ENV = "ENERGYBENCH_WEIGHTS"
WEIGHT_FILES = {"Deeplab-largeFOV": "vgg16.pth", "Deeplab-MSc-largeFOV": "vgg16.pth", "Deeplab-VGG16": "vgg16.pth",
                "ResNet-101": "resnet101.pth"}
#: DeepLab's "vgg16_20M" fc6/fc7: ImageNet's 4096 x (512 x 7 x 7) fc6 decimated to 1024 filters of
#: 3 x 3 (every 4th filter; the 7 x 7 taps 0, 3, 6 of each row and column), fc7 to 1024 x 1024.
FC_DECIMATION, FC6_TAPS = 4, (0, 3, 6)


def torchvision_available() -> bool:
    """Kept for callers of the old lazy path: the full networks no longer need torchvision."""
    return importlib.util.find_spec("torchvision") is not None


def _vgg16_features(width: float) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (same indices, so the same state-dict keys), channels x ``width``."""
    layers, cin = [], 3
    for item in VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = max(1, int(round(item * width)))
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers)


def _deeplab_vgg_trunk(features: nn.Sequential) -> tuple[list[nn.Module], list[int]]:
    layers = list(features.children())
    # DeepLab-LargeFOV: every pooling 3x3 with padding 1; pool4 and pool5 with stride 1; conv5 dilation 2.
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
    for i in pools:
        layers[i] = nn.MaxPool2d(3, stride=2 if i in pools[:3] else 1, padding=1)
    for i in range(pools[3] + 1, pools[4]):
        if isinstance(layers[i], nn.Conv2d):
            layers[i].dilation, layers[i].padding = (2, 2), (2, 2)
    return layers, pools


class _FullDeepLab(nn.Module):
    """DeepLab on a VGG16 / ResNet-101 trunk: trunk stages + heads summed (ASPP / MSc branches)."""

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
    """fc6 (3x3, dilated) - fc7 (1x1) - fc8 (1x1); indices 0 and 3 take the ImageNet fc6 / fc7."""
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True),
                         nn.Dropout2d(0.5), nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                         nn.Conv2d(width, num_classes, 1))


def _build_vgg(name: str, num_classes: int, width: float) -> nn.Module:
    features = _vgg16_features(width)
    layers, pools = _deeplab_vgg_trunk(features)
    bounds = [0, *[p + 1 for p in pools]]
    stages = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in zip(bounds, bounds[1:]))
    top = max(1, int(round(512 * width)))
    fc = max(1, int(round(4096 * width))) // FC_DECIMATION
    if name == "Deeplab-VGG16":
        heads = nn.ModuleList(_fc_head(top, num_classes, d, fc) for d in (6, 12, 18, 24))
        return _FullDeepLab(stages, heads)
    heads = nn.ModuleList([_fc_head(top, num_classes, 12, fc)])
    if name == "Deeplab-largeFOV":
        return _FullDeepLab(stages, heads)
    channels = {0: 3, **{t: max(1, int(round(c * width))) for t, c in {1: 64, 2: 128, 3: 256, 4: 512}.items()}}
    strides = {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}
    branches = nn.ModuleList(
        nn.Sequential(nn.Conv2d(channels[t], 128, 3, stride=strides[t], padding=1), nn.ReLU(inplace=True),
                      nn.Dropout2d(0.5), nn.Conv2d(128, 128, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                      nn.Conv2d(128, num_classes, 1))
        for t in (0, 1, 2, 3, 4))
    return _FullDeepLab(stages, heads, (0, 1, 2, 3, 4), branches)


class _Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck (same parameter names), dilation as ``replace_stride_with_dilation``."""

    expansion = 4

    def __init__(self, cin: int, planes: int, *, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class _ResNet101(nn.Module):
    """torchvision's ``resnet101(replace_stride_with_dilation=[False, True, True])`` trunk (output
    stride 8), same parameter names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), no ``fc``."""

    def __init__(self, width: float = 1.0, blocks=(3, 4, 23, 3)):
        super().__init__()
        self.inplanes = max(1, int(round(64 * width)))
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        planes = [max(1, int(round(p * width))) for p in (64, 128, 256, 512)]
        self.layer1 = self._layer(planes[0], blocks[0])
        self.layer2 = self._layer(planes[1], blocks[1], stride=2)
        self.layer3 = self._layer(planes[2], blocks[2], stride=2, dilate=True)
        self.layer4 = self._layer(planes[3], blocks[3], stride=2, dilate=True)
        self.out_channels = planes[3] * 4

    def _layer(self, planes: int, count: int, *, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous = self.dilation
        if dilate:  # torchvision: the stride becomes dilation, from the second block of the layer on
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [_Bottleneck(self.inplanes, planes, stride=stride, dilation=previous, downsample=downsample)]
        self.inplanes = planes * 4
        layers += [_Bottleneck(self.inplanes, planes, dilation=self.dilation) for _ in range(1, count)]
        return nn.Sequential(*layers)


def _build_resnet(num_classes: int, width: float) -> nn.Module:
    resnet = _ResNet101(width)
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
    stages = nn.ModuleList([stem, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
    heads = nn.ModuleList(nn.Conv2d(resnet.out_channels, num_classes, 3, padding=d, dilation=d)
                          for d in (6, 12, 18, 24))
    return _FullDeepLab(stages, heads)


# ---------------------------------------------------------------------------------------------
# Initial checkpoints
# ---------------------------------------------------------------------------------------------
def initial_weights(settings, network: str) -> Path | None:
    """The ImageNet checkpoint ``network`` starts from: the ``weights`` setting's path for it, else
    ``$ENERGYBENCH_WEIGHTS/<file>`` (:data:`WEIGHT_FILES`) when that file exists, else None
    (random init; the mini networks have no pretrained counterpart and always return None)."""
    import os

    if network not in FULL_NETWORKS:
        return None
    given = (settings.get("weights") or {}).get(network)
    if given:
        return Path(given).expanduser()
    folder = os.environ.get(WEIGHTS_ENV)
    if folder and (Path(folder).expanduser() / WEIGHT_FILES[network]).is_file():
        return Path(folder).expanduser() / WEIGHT_FILES[network]
    return None


def _read_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is a user error
        raise ValueError(f"weights {path}: expected a readable torch state dict ({error})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"weights {path}: expected a state dict (parameter name -> tensor), got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def vgg16_20m(state: dict) -> dict:
    """DeepLab's "vgg16_20M" fc6 / fc7 from an ImageNet VGG16 state dict (torchvision names),
    decimated explicitly: fc6 ``(4096, 512*7*7)`` -> ``(1024, 512, 3, 3)`` (every 4th filter,
    taps 0, 3, 6 of the 7 x 7 window), fc7 ``(4096, 4096)`` -> ``(1024, 1024, 1, 1)``.

    Returns:
        ``{"fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"}`` as convolution parameters.

    Raises:
        ValueError: ``classifier.0`` / ``classifier.3`` missing or not of VGG16's shapes.
    """
    for key in ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"):
        if key not in state:
            raise ValueError(f"weights: the VGG16 checkpoint has no {key!r} (fc6/fc7 of torchvision's vgg16)")
    fc6, fc7 = state["classifier.0.weight"], state["classifier.3.weight"]
    if fc6.dim() != 2 or fc6.shape[1] % 49 or fc7.dim() != 2 or fc7.shape[1] != fc6.shape[0]:
        raise ValueError(f"weights: expected fc6 (F, C*7*7) and fc7 (F, F), got {tuple(fc6.shape)} and {tuple(fc7.shape)}")
    taps = torch.tensor(FC6_TAPS)
    six = fc6.view(fc6.shape[0], fc6.shape[1] // 49, 7, 7)[::FC_DECIMATION][:, :, taps][:, :, :, taps]
    return {"fc6.weight": six.contiguous(), "fc6.bias": state["classifier.0.bias"][::FC_DECIMATION].clone(),
            "fc7.weight": fc7[::FC_DECIMATION, ::FC_DECIMATION, None, None].contiguous(),
            "fc7.bias": state["classifier.3.bias"][::FC_DECIMATION].clone()}


def _strict_copy(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], path: Path, network: str) -> None:
    """Copy ``source`` into ``target`` (both name -> tensor); every key on each side must match."""
    unexpected = sorted(k for k in source if k not in target)
    missing = sorted(k for k in target if k not in source and not k.endswith("num_batches_tracked"))
    shapes = sorted(f"{k} {tuple(source[k].shape)} vs {tuple(target[k].shape)}" for k in source
                    if k in target and tuple(source[k].shape) != tuple(target[k].shape))
    if unexpected or missing or shapes:
        def few(keys):
            return f"{keys[:6]}{f' ... ({len(keys)} in all)' if len(keys) > 6 else ''}"

        raise ValueError(f"weights {path} do not fit {network}: missing keys {few(missing)}, unexpected keys "
                         f"{few(unexpected)}, shape mismatches {few(shapes)}")
    with torch.no_grad():
        for key, value in source.items():
            target[key].copy_(value)


def load_initial_weights(model: nn.Module, network: str, path: str | Path) -> dict:
    """Initialise ``model`` (a full network of :func:`build_network`) from an ImageNet checkpoint, strictly.

    VGG networks: every ``features.*`` key of torchvision's vgg16 goes to the trunk, the fc6 / fc7
    of :func:`vgg16_20m` to the fc6 / fc7 of every head (each ASPP branch of Deeplab-VGG16 starts
    from the same fc6 / fc7); ``classifier.6`` (ImageNet's fc8) is dropped. ResNet-101: every key
    of torchvision's resnet101 but ``fc.*`` (ImageNet's classifier). Left random: fc8, the ASPP
    convolutions of ResNet-101 and the MSc branches (new layers in DeepLab too).

    Returns:
        ``{"loaded": n_tensors, "dropped": [...], "random": [...]}`` (parameter-name prefixes).

    Raises:
        ValueError: unreadable file, or a key missing, unexpected or of another shape (all listed).
    """
    path = Path(path)
    state = _read_state(path)
    own = model.state_dict()
    if network == "ResNet-101":
        dropped = sorted(k for k in state if k.startswith("fc."))
        names = {"conv1": "stages.0.0", "bn1": "stages.0.1", **{f"layer{i}": f"stages.{i}" for i in range(1, 5)}}
        source = {}
        for key, value in state.items():
            if key in dropped:
                continue
            head, _, rest = key.partition(".")
            source[f"{names.get(head, head)}.{rest}"] = value
        target = {k: v for k, v in own.items() if k.startswith("stages.")}
        randoms = ["heads"]
    else:
        dropped = sorted(k for k in state if k.startswith("classifier.6."))
        unexpected = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
        if unexpected:
            raise ValueError(f"weights {path} do not fit {network}: unexpected keys {unexpected[:6]} "
                             "(expected torchvision vgg16 names: features.*, classifier.*)")
        index = _trunk_index(model)
        source = {}
        for key, value in state.items():
            if key.startswith("features."):
                _, number, rest = key.split(".", 2)
                # an index the trunk lacks keeps its name and is reported as unexpected
                mapped = index.get(int(number)) if number.isdigit() else None
                source[f"stages.{mapped}.{rest}" if mapped else key] = value
        fc = vgg16_20m(state)
        for h in range(len(model.heads)):
            for layer, slot in (("fc6", 0), ("fc7", 3)):
                for kind in ("weight", "bias"):
                    source[f"heads.{h}.{slot}.{kind}"] = fc[f"{layer}.{kind}"]
        target = {k: v for k, v in own.items() if k.startswith("stages.")
                  or (k.startswith("heads.") and k.split(".")[2] in ("0", "3"))}
        randoms = ["heads.*.6 (fc8)"] + (["branches (MSc)"] if model.branches is not None else [])
    _strict_copy(target, source, path, network)
    return {"loaded": len(source), "dropped": dropped, "random": randoms}


def _trunk_index(model: _FullDeepLab) -> dict[int, str]:
    """torchvision ``features`` index -> ``"<stage>.<position>"`` in the DeepLab trunk."""
    out, index = {}, 0
    for s, stage in enumerate(model.stages):
        for position in range(len(stage)):
            out[index] = f"{s}.{position}"
            index += 1
    return out


def build_network(name: str, *, num_classes: int, weights: str | Path | None = None, width: float = 1.0) -> nn.Module:
    """The network ``name`` with ``num_classes`` outputs, randomly initialised from torch's seed,
    then (full networks, ``weights`` given) initialised from an ImageNet checkpoint strictly
    (:func:`load_initial_weights`).

    Args:
        name: one of :data:`MINI_NETWORKS` or :data:`FULL_NETWORKS`.
        num_classes: K.
        weights: a local torchvision state-dict file (vgg16 or resnet101, ImageNet) for the full
            networks; None trains from a random initialisation.
        width: channel multiplier of the full networks (1 = the paper's; smaller only in tests).

    Raises:
        ValueError: unknown name, K < 2, ``weights`` naming a missing file or one that does not fit.
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
    if not (isinstance(width, (int, float)) and 0 < width <= 1):
        raise ValueError(f"width: expected a channel multiplier in (0, 1], got {width!r}")
    model = _build_resnet(num_classes, width) if name == "ResNet-101" else _build_vgg(name, num_classes, width)
    if weights is not None:
        load_initial_weights(model, name, weights)
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
