"""Edge-preserving smoothing networks: Zhu et al.'s ResNet and ResNetTV (Yeh et al., Sec. 4.5).

ResNet (Zhu, Liang, Jia, Zhang, Yu, TIP 2019; zhufeida/Benchmark_EPS ``Resnet_tl/module.py::SRGAN_delta``):
the input scaled to [-1, 1]; a 3x3 conv + ReLU (C channels); B residual blocks
``x + BN(conv(ReLU(BN(conv(x)))))``; a 3x3 conv + BN added to the first conv's output (the long
skip); two 3x3 convs with 4C channels and ReLU; a 1x1 conv to 3 channels with tanh, added to the
scaled input (the "skip connection from the input"). The release has C = 64, B = 16.

ResNetTV (Sec. 4.5): "four TV1D-Sharp layers with alternating row/column directions into the
Residual Blocks and lastly a TV2D-Smooth layer (with shared lambda across channels) after the last
skip connection". Placement here, where the text leaves it open: the four sharp layers (one
lambda per channel) act on the residual branch (after its second BN, before the addition:
the branch is what carries the high frequencies the paper wants sharpened) of four blocks spread
evenly over the B blocks (blocks 4, 8, 12, 16 of 16), directions row, column, row, column; the
smooth layer acts on the output image, ``TV2D(x + delta)``. Initial lambdas are settings (the
paper gives none for this task). Lambda is in the network's [-1, 1] units; the TV prox is
1-homogeneous (``prox(a x, a lam) = a prox(x, lam)``), so the same smoothing on the 0-255
scale has ``lam * 127.5``: both are reported next to the paper's 15.1, whose scale it does not
state.

Loss (Zhu et al.'s ``model_resnet_delta.py``): per sample, ``sum_k w_k (mean |S - G_k| + R_k)``
with ``R_k`` the sum over the 24 displacements ``(dy, dx)`` with ``|dy|, |dx| <= 2`` (not both 0)
of ``mean |(S(p + d) - S(p)) - (G_k(p + d) - G_k(p))|``; all on the [-1, 1] scale; averaged over
the batch (the release minimises the batch sum, the same up to the learning rate's scale).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.solvers.tv import TVLayer

__all__ = ["SmoothingResNet", "smoothing_loss", "tv_block_indices", "DISPLACEMENTS"]

#: The 24 displacements of the release's gradient term (both signs of the 12 directions).
DISPLACEMENTS = tuple((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0))
TV_SHARP_LAYERS = 4


def tv_block_indices(blocks: int, count: int = TV_SHARP_LAYERS) -> list[int]:
    """Blocks that hold a TV1D-Sharp layer: ``count`` blocks spread evenly, the last of each
    group (16 blocks: 3, 7, 11, 15)."""
    if blocks < count:
        raise ValueError(f"blocks: ResNetTV needs at least {count} residual blocks, got {blocks}")
    return [round((i + 1) * blocks / count) - 1 for i in range(count)]


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, tv: TVLayer | None):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.tv = tv

    def forward(self, x: Tensor) -> Tensor:
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.tv is not None:
            branch = self.tv(branch)
        return x + branch


class SmoothingResNet(nn.Module):
    """Zhu et al.'s ResNet, optionally with the TV layers of ResNetTV (see the module doc).

    Args:
        channels: C (release 64); the last two convolutions have 4C.
        blocks: B residual blocks (release 16).
        tv: build ResNetTV.
        sharp_lam_init: initial lambda of the four TV1D-Sharp layers.
        smooth_lam_init: initial lambda of the final TV2D-Smooth layer ([-1, 1] units).
        tv_iters: Dykstra iterations of the 2D prox.

    Shape:
        input ``(B, 3, H, W)`` in [-1, 1]; output ``(B, 3, H, W)`` (not clipped).
    """

    def __init__(self, *, channels: int = 64, blocks: int = 16, tv: bool = False, sharp_lam_init: float = 0.05,
                 smooth_lam_init: float = 0.05, tv_iters: int = 4):
        super().__init__()
        if channels < 1 or blocks < 1:
            raise ValueError(f"channels and blocks must be >= 1, got {channels} and {blocks}")
        self.tv = bool(tv)
        sharp_at = tv_block_indices(blocks) if tv else []
        directions = ("row", "col")
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        layers = []
        for index in range(blocks):
            layer = None
            if index in sharp_at:
                layer = TVLayer(channels, mode="sharp", direction=directions[sharp_at.index(index) % 2],
                                lam_init=sharp_lam_init)
            layers.append(_ResidualBlock(channels, layer))
        self.blocks = nn.ModuleList(layers)
        self.merge = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.merge_bn = nn.BatchNorm2d(channels)
        self.tail1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)
        self.tail2 = nn.Conv2d(4 * channels, 4 * channels, 3, padding=1)
        self.out = nn.Conv2d(4 * channels, 3, 1)
        self.smooth = (TVLayer(3, mode="smooth", direction="2d", lam_init=smooth_lam_init, shared=True,
                               iters=tv_iters) if tv else None)
        for module in self.modules():
            # The release's initialisers: N(0, 0.02) weights, BN gamma N(1, 0.02).
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected a (B, 3, H, W) tensor, got {tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        first = F.relu(self.head(x))
        features = first
        for block in self.blocks:
            features = block(features)
        features = self.merge_bn(self.merge(features)) + first
        features = F.relu(self.tail2(F.relu(self.tail1(features))))
        output = x + torch.tanh(self.out(features))
        if self.smooth is not None:
            output = self.smooth(output)
        return output

    def tv_lambdas(self) -> dict[str, float]:
        """Mean lambda of each TV layer ([-1, 1] units); empty without TV."""
        if not self.tv:
            return {}
        values = {f"sharp {block.tv.direction} (block {i + 1})": float(block.tv.lam.detach().mean())
                  for i, block in enumerate(self.blocks) if block.tv is not None}
        values["smooth final"] = float(self.smooth.lam.detach()[0])
        return values


def _gradient_term(output: Tensor, target: Tensor) -> Tensor:
    """Per-sample sum over :data:`DISPLACEMENTS` of mean |grad_d S - grad_d G|."""
    height, width = output.shape[-2:]
    total = output.new_zeros(output.shape[0])
    difference = output - target
    for dy, dx in DISPLACEMENTS:
        # (S - G)(p + d) - (S - G)(p) over the pixels where p + d is inside the image.
        rows_a = slice(max(dy, 0), height + min(dy, 0))
        rows_b = slice(max(-dy, 0), height + min(-dy, 0))
        cols_a = slice(max(dx, 0), width + min(dx, 0))
        cols_b = slice(max(-dx, 0), width + min(-dx, 0))
        shifted = difference[..., rows_a, cols_a] - difference[..., rows_b, cols_b]
        total = total + shifted.abs().mean(dim=(1, 2, 3))
    return total


def smoothing_loss(output: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Zhu et al.'s training loss (module doc).

    Args:
        output: ``(B, 3, H, W)`` prediction in [-1, 1] units.
        targets: ``(B, K, 3, H, W)`` ground truths in [-1, 1].
        weights: ``(B, K)`` normalised votes.

    Returns:
        scalar: mean over the batch of ``sum_k w_k (mean|S - G_k| + R_k)``.
    """
    if targets.dim() != 5 or targets.shape[0] != output.shape[0] or targets.shape[2:] != output.shape[1:]:
        raise ValueError(f"targets: expected (B, K, *output.shape[1:]), got {tuple(targets.shape)} for output "
                         f"{tuple(output.shape)}")
    if weights.shape != targets.shape[:2]:
        raise ValueError(f"weights: expected shape {tuple(targets.shape[:2])}, got {tuple(weights.shape)}")
    per_sample = output.new_zeros(output.shape[0])
    for k in range(targets.shape[1]):
        target = targets[:, k]
        term = (output - target).abs().mean(dim=(1, 2, 3)) + _gradient_term(output, target)
        per_sample = per_sample + weights[:, k] * term
    return per_sample.mean()
