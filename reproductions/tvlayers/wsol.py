"""CAM backbones of Sec. 4.3 (VGG-16, Inception-V3, ResNet-50 in Choe et al.'s CAM form) with the TV layer.

Class Activation Mapping (Zhou et al., CVPR 2016) as in clovaai/wsolevaluation (Choe et al., CVPR
2020): a convolutional backbone gives a feature map F (B, C, h, w); the CAM layer is global average
pooling followed by a linear classifier W; the CAM of class k is sum_c W[k, c] F_c (wsolevaluation
takes the mean over channels, the same map up to a factor, which min-max normalisation removes).
The paper (Sec. 4.3) inserts a *fixed* TV2D-Smooth layer, one lambda = 1 shared by all channels,
"right before the CAM layer": F <- Prox_TV2D(F, 1) (Eq. 2), used in training and inference.

Backbones, parameter names as torchvision's so that a user-supplied ImageNet checkpoint loads by
name (:func:`load_pretrained`, strict):

* :class:`VGGCam` -- VGG-16's ``features`` without the last max-pool (14 x 14 at 224), then
  ``conv6`` (3x3, 1024) + ReLU, as wsolevaluation's ``vgg16`` CAM;
* :class:`ResNetCam` -- ResNet-50 (bottleneck blocks 3-4-6-3) with the strides of
  wsolevaluation's large-feature-map variant (layer3 and layer4 at stride 1: 28 x 28 at 224);
* :class:`InceptionCam` -- Inception-V3's stem, Mixed_5b-5d (Inception-A), Mixed_6a (reduction),
  Mixed_6b-6e (Inception-C), then ``conv6`` (3x3, 1024) + ReLU, as wsolevaluation's ``inception_v3``
  CAM (its stride changes to the stem are not reproduced: the map is 12 x 12 at 224 here, 28 x 28
  there).

At mini the same classes are built smaller: fewer stages or blocks, channel counts divided by a
factor (``width``), on 64 x 64 images.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.solvers.tv import TVLayer

__all__ = ["VGGCam", "ResNetCam", "InceptionCam", "build_backbone", "load_pretrained", "train_cam", "cams",
           "BACKBONES"]

BACKBONES = ("VGG16", "InceptionV3", "ResNet50")


def _c(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def initialize_weights(modules, *, init_mode: str) -> None:
    """wsolevaluation's initialisation (``wsol/util.py``), which its VGG (``he``), ResNet and Inception
    (``xavier``) CAM models apply to all their layers: without it a deep plain VGG from PyTorch's
    default init starts with vanishing activations and does not train from random init.

    Raises:
        ValueError: unknown ``init_mode``.
    """
    if init_mode not in ("he", "xavier"):
        raise ValueError(f"init_mode: expected 'he' or 'xavier', got {init_mode!r}")
    for module in modules:
        if isinstance(module, nn.Conv2d):
            if init_mode == "he":
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


class CamModel(nn.Module):
    """Shared CAM head: ``features`` -> [TV2D-Smooth, lam fixed] -> GAP -> ``fc``; subclasses set
    ``self.features_out`` (channels) and implement ``extract``."""

    def _head(self, channels: int, classes: int, tv_lam: float | None, *, init_mode: str) -> None:
        """Add the TV layer and the classifier, then initialise every weight as wsolevaluation does
        (``wsol/util.py: initialize_weights``: He (fan_out) or Xavier convolutions, zero biases, unit BN,
        N(0, 0.01) linear layers); a pretrained checkpoint then overwrites the backbone."""
        self.features_out = channels
        if tv_lam is None:
            self.tv = nn.Identity()
        else:
            self.tv = TVLayer(channels, mode="smooth", direction="2d", lam_init=float(tv_lam), shared=True)
            # The paper's WSOL layer is fixed (lambda = 1), not learned.
            self.tv.lam_raw.requires_grad_(False)
        self.fc = nn.Linear(channels, classes)
        initialize_weights(self.modules(), init_mode=init_mode)

    def extract(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def feature_map(self, x: Tensor) -> Tensor:
        """F after the TV layer, ``(B, C, h, w)``."""
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x: expected a (B, 3, H, W) tensor, got {got}")
        return self.tv(self.extract(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.feature_map(x).mean(dim=(2, 3)))

    def cam(self, x: Tensor, labels: Tensor) -> Tensor:
        """CAMs ``(B, h, w)`` of the given classes: sum_c W[label, c] F_c."""
        features = self.feature_map(x)
        weights = self.fc.weight[labels]  # (B, C)
        return torch.einsum("bc,bchw->bhw", weights, features)


class VGGCam(CamModel):
    """VGG with a CAM head. ``config``: channels or ``"M"`` (2x2 max-pool), as torchvision's
    VGG configurations (VGG-16's without its last ``"M"`` at full)."""

    def __init__(self, *, config: Sequence[int | str], conv6: int = 1024, classes: int = 1000,
                 tv_lam: float | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.conv6 = nn.Conv2d(channels, conv6, 3, padding=1)
        self._head(conv6, classes, tv_lam, init_mode="he")

    def extract(self, x: Tensor) -> Tensor:
        return F.relu(self.conv6(self.features(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetCam(CamModel):
    """ResNet (bottleneck) with a CAM head; ``layers`` blocks per stage, ``base`` the first stage's
    width (64 in ResNet-50), ``strides`` of the four stages."""

    def __init__(self, *, layers: Sequence[int] = (3, 4, 6, 3), base: int = 64, strides: Sequence[int] = (1, 2, 1, 1),
                 classes: int = 1000, tv_lam: float | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = base
        for index, (blocks, stride) in enumerate(zip(layers, strides), 1):
            setattr(self, f"layer{index}", self._make_layer(base * 2 ** (index - 1), blocks, stride))
        self._head(self.inplanes, classes, tv_lam, init_mode="xavier")

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def extract(self, x: Tensor) -> Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int, width: float) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, _c(64, width), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, _c(48, width), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(_c(48, width), _c(64, width), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, _c(64, width), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(_c(64, width), _c(96, width), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(_c(96, width), _c(96, width), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)
        self.out_channels = _c(64, width) * 2 + _c(96, width) + pool_features

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)), b3, pool], 1)


class InceptionB(nn.Module):
    """The grid reduction Mixed_6a."""

    def __init__(self, in_channels: int, width: float) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, _c(384, width), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, _c(64, width), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(_c(64, width), _c(96, width), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(_c(96, width), _c(96, width), kernel_size=3, stride=2)
        self.out_channels = _c(384, width) + _c(96, width) + in_channels

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """The 7x7-factorised modules Mixed_6b-6e."""

    def __init__(self, in_channels: int, channels_7x7: int, width: float) -> None:
        super().__init__()
        c7, c192 = channels_7x7, _c(192, width)
        self.branch1x1 = BasicConv2d(in_channels, c192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, c192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, c192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, c192, kernel_size=1)
        self.out_channels = 4 * c192

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), b7, d, pool], 1)


class InceptionCam(CamModel):
    """Inception-V3 up to Mixed_6e with a CAM head (``conv6`` 3x3 + ReLU).

    Args:
        width: channel multiplier (1 = Inception-V3's channels).
        a_modules: Inception-A modules (3 in V3: Mixed_5b-5d); c_modules: Inception-C modules (4).
        stem_pools: whether the stem max-pools (two of them in V3).
    """

    def __init__(self, *, width: float = 1.0, a_modules: int = 3, c_modules: int = 4, conv6: int = 1024,
                 stem_pools: bool = True, classes: int = 1000, tv_lam: float | None = None) -> None:
        super().__init__()
        w = width
        self.stem_pools = stem_pools
        self.Conv2d_1a_3x3 = BasicConv2d(3, _c(32, w), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(_c(32, w), _c(32, w), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(_c(32, w), _c(64, w), kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(_c(64, w), _c(80, w), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(_c(80, w), _c(192, w), kernel_size=3)
        channels = _c(192, w)
        for index, pool_features in zip(range(a_modules), (32, 64, 64)):
            module = InceptionA(channels, _c(pool_features, w), w)
            setattr(self, f"Mixed_5{'bcd'[index]}", module)
            channels = module.out_channels
        self.Mixed_6a = InceptionB(channels, w)
        channels = self.Mixed_6a.out_channels
        for index, c7 in zip(range(c_modules), (128, 160, 160, 192)):
            module = InceptionC(channels, _c(c7, w), w)
            setattr(self, f"Mixed_6{'bcde'[index]}", module)
            channels = module.out_channels
        self.a_modules, self.c_modules = a_modules, c_modules
        self.conv6 = nn.Conv2d(channels, conv6, 3, padding=1)
        self._head(conv6, classes, tv_lam, init_mode="xavier")

    def extract(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        if self.stem_pools:
            x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        if self.stem_pools:
            x = F.max_pool2d(x, 3, stride=2)
        for index in range(self.a_modules):
            x = getattr(self, f"Mixed_5{'bcd'[index]}")(x)
        x = self.Mixed_6a(x)
        for index in range(self.c_modules):
            x = getattr(self, f"Mixed_6{'bcde'[index]}")(x)
        return F.relu(self.conv6(x))


VGG16_CAM_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def build_backbone(name: str, options: dict[str, Any], *, classes: int, tv_lam: float | None) -> CamModel:
    """A CAM model by name (:data:`BACKBONES`) with the profile's ``options`` for it.

    Raises:
        ValueError: unknown backbone name.
    """
    if name == "VGG16":
        return VGGCam(config=options.get("config", VGG16_CAM_CONFIG), conv6=options.get("conv6", 1024),
                      classes=classes, tv_lam=tv_lam)
    if name == "ResNet50":
        return ResNetCam(layers=tuple(options.get("layers", (3, 4, 6, 3))), base=options.get("base", 64),
                         strides=tuple(options.get("strides", (1, 2, 1, 1))), classes=classes, tv_lam=tv_lam)
    if name == "InceptionV3":
        return InceptionCam(width=options.get("width", 1.0), a_modules=options.get("a_modules", 3),
                            c_modules=options.get("c_modules", 4), conv6=options.get("conv6", 1024),
                            stem_pools=options.get("stem_pools", True), classes=classes, tv_lam=tv_lam)
    raise ValueError(f"backbone: expected one of {BACKBONES}, got {name!r}")


def load_pretrained(model: CamModel, path: str | Path, *, ignore_prefixes: Sequence[str] = ("fc.", "classifier.",
                                                                                         "AuxLogits.", "Mixed_7")):
    """Load an ImageNet checkpoint (torchvision parameter names) into ``model``'s backbone, strictly.

    Keys starting with ``ignore_prefixes`` (the ImageNet classifier and the parts of the network a
    CAM model drops) are skipped; every other checkpoint key must exist in ``model`` with the same
    shape, and every backbone parameter of ``model`` (all but ``conv6``, ``fc`` and ``tv``) must
    be in the checkpoint.

    Raises:
        ValueError: unreadable file, or unmapped / missing / mis-shaped keys (listed).
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is a user error
        raise ValueError(f"pretrained checkpoint {path}: not a readable torch state dict ({error})") from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(tuple(ignore_prefixes))}
    own = model.state_dict()
    unmapped = sorted(k for k in state if k not in own)
    shapes = sorted(k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    head = ("conv6.", "fc.", "tv.")
    missing = sorted(k for k in own if k not in state and not k.startswith(head) and not k.endswith("num_batches_tracked"))
    if unmapped or shapes or missing:
        raise ValueError(f"pretrained checkpoint {path} does not match {type(model).__name__}: "
                         f"unmapped keys {unmapped[:5]}{'...' if len(unmapped) > 5 else ''}, "
                         f"shape mismatches {shapes[:5]}, missing backbone keys {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}")
    model.load_state_dict(state, strict=False)
    return model


def normalise(images: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 with ImageNet's channel statistics (as wsolevaluation)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (tensor - mean) / std


def train_cam(model: CamModel, images: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int, lr: float,
              weight_decay: float, seed: int, checkpoint=None, device: str = "cpu",
              progress: Callable[..., Any] = lambda it, **_: it) -> dict[str, Any]:
    """Train the classifier (image labels only) by SGD, momentum 0.9, cosine schedule, random
    horizontal flips; resumable from ``checkpoint``.

    Args:
        images: ``(N, H, W, 3)`` uint8, or any object with ``len`` that returns such a stack for an
            index array (a lazy reader of a large set).

    Returns:
        ``{"state": state_dict, "loss": [...], "step_ms": per-step wall times (ms)}``.

    Raises:
        ValueError: mismatched images and labels, or non-positive steps / batch size.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"images and labels: expected the same non-zero length, got {len(images)} and {len(labels)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    # ``images`` is indexed per batch (an array, or a lazy reader of a large set).
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    model.to(device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9,
                                weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    step_ms: list[float] = []
    start = 0
    state = checkpoint.resume(model, optimizer, schedule) if checkpoint is not None else None
    if state is not None:
        generator.set_state(state["generator"])
        losses, step_ms, start = state["loss"], state["step_ms"], state["step"]
    model.train()
    for step in progress(range(start, steps), desc="train", total=steps - start):
        began = time.perf_counter()
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        batch = normalise(images[index.numpy()])
        flip = torch.rand(batch_size, generator=generator) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        loss = F.cross_entropy(model(batch.to(device)), targets[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step_ms.append(1000 * (time.perf_counter() - began))
        losses.append(float(loss.detach()))
        if checkpoint is not None and checkpoint.due(step + 1) and step + 1 < steps:
            checkpoint.save_training(step=step + 1, model=model, optimizer=optimizer, scheduler=schedule,
                                     generator=generator.get_state(), loss=losses, step_ms=step_ms)
    return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "loss": losses,
            "step_ms": step_ms}


@torch.no_grad()
def cams(model: CamModel, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 64,
         device: str = "cpu") -> tuple[list[np.ndarray], np.ndarray]:
    """CAMs of the true classes resized to each image's size (bicubic, as wsolevaluation), and the
    predicted labels. Returns ``(maps, predicted)``: a list of ``(H, W)`` float32 maps, ``(N,)``."""
    import cv2

    model.eval().to(device)
    maps, predicted = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start: start + batch_size]
        x = normalise(chunk).to(device)
        target = torch.as_tensor(np.asarray(labels[start: start + batch_size]), dtype=torch.long, device=device)
        features = model.feature_map(x)
        predicted.append(model.fc(features.mean(dim=(2, 3))).argmax(1).cpu().numpy())
        cam = torch.einsum("bc,bchw->bhw", model.fc.weight[target], features).cpu().numpy()
        for image, one in zip(chunk, cam):
            maps.append(cv2.resize(one.astype(np.float32), (image.shape[1], image.shape[0]),
                                   interpolation=cv2.INTER_CUBIC))
    return maps, np.concatenate(predicted) if predicted else np.zeros(0, np.int64)
