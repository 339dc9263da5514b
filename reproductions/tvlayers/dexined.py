"""DexiNed (Soria, Riba, Sappa, WACV 2020) in plain torch, and DexiNed + TV (Yeh et al., Sec. 4.4).

The architecture follows the authors' PyTorch release (xavysp/DexiNed ``model.py``): six blocks
(a stride-2 double convolution, a double convolution, then dense blocks of 2, 3, 3 and 3 layers
whose layers average their output with a "pre-dense" skip), max-pooling between blocks 2-5, left
skips (``side_*``: strided 1x1 conv + BN added after each pooling) and right skips
(``pre_dense_*``), six upsampling heads (1x1 conv, ReLU, stride-2 transposed conv, repeated
log2(scale) times, 16 features in between) giving one edge map per block at the input
resolution, and a 1x1 fusion of the six maps. Widths are a configuration: the release's are
``(64, 128, 256, 512, 512, 256)`` with a 32-channel first convolution and 16 features in the
heads; the mini profile divides them.

DexiNed + TV (Sec. 4.4). The edge maps of blocks 1 and 2 are upsampled 2x, block 3's 4x, block
4's 8x, blocks 5 and 6's 16x. "We added TV2D-Sharp layers, with trainable lambda, at the 2x, 4x
and 8x edge-maps. At the final edge-map, we added a TV2D-Smooth layer": here a
:class:`~suite.solvers.tv.TVLayer` (2D, sharp, one lambda) on each of the four maps upsampled
2x, 4x or 8x (outputs 1-4, on their logits, before they enter the loss and the fusion), and a
2D smooth TVLayer on the fused map's logits. The paper does not give the initial lambdas; the
default 0.05 is the one it states for classification (Sec. 4.2).

Loss: DexiNed's weighted cross-entropy (``losses.py::bdcn_loss2``): per map, positives weighted
by the fraction of negatives, negatives by 1.1 times the fraction of positives, the BCE averaged
over pixels and summed over the batch; maps weighted ``(0.7, 0.7, 1.1, 1.1, 0.3, 0.3, 1.3)``.
Labels follow the release's BIPED loader (``gt /= 255; gt[gt > 0.2] += 0.6; clip``; the loss
casts to long), i.e. a pixel is an edge where the label is at least 0.4.

The evaluated map is DexiNed-a, the one the TV paper's DexiNed row copies (.859/.867/.905 on
BIPED): the mean of the seven maps after sigmoid and per-image min-max normalisation (the
release's ``save_image_batch_to_disk``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.solvers.tv import TVLayer

__all__ = ["DexiNed", "DEXINED_WIDTHS", "LOSS_WEIGHTS", "dexined_loss", "edge_labels", "average_edge_map",
           "TV_OUTPUTS"]

#: The release's widths: blocks 1-6 (block 1's first conv has half of block 1's width).
DEXINED_WIDTHS = (64, 128, 256, 512, 512, 256)
#: Weights of the six side maps and the fused map in the loss (release, ``main.py``).
LOSS_WEIGHTS = (0.7, 0.7, 1.1, 1.1, 0.3, 0.3, 1.3)
#: Upsampling factor of each side map (blocks 1-6).
SCALES = (2, 2, 4, 8, 16, 16)
#: Side maps that get a TV2D-Sharp layer: the 2x, 4x and 8x ones (indices into the six).
TV_OUTPUTS = tuple(i for i, s in enumerate(SCALES) if s in (2, 4, 8))
#: DexiNed's input size must be a multiple of this (four stride-2 stages).
STRIDE = 16


class _DoubleConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, *, stride: int = 1, activate: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(x) if self.activate else x


class _SingleConv(nn.Module):
    """1x1 conv (optionally strided) + BN: DexiNed's left/right skip connections."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        # padding 2 then none: the release's layout (same output size).
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=2)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        new = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(F.relu(x))))))
        return 0.5 * (new + skip)


class _DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, cout: int):
        super().__init__()
        self.layers = nn.ModuleList(_DenseLayer(cin if i == 0 else cout, cout) for i in range(layers))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, skip)
        return x


class _UpBlock(nn.Module):
    """log2(scale) x (1x1 conv, ReLU, stride-2 transposed conv); the last stage has one channel."""

    def __init__(self, cin: int, scale: int, features: int):
        super().__init__()
        stages = scale.bit_length() - 1
        kernel = 2 ** stages
        padding = (0, 0, 1, 3, 7)[stages]
        layers: list[nn.Module] = []
        for i in range(stages):
            cout = 1 if i == stages - 1 else features
            layers += [nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True),
                       nn.ConvTranspose2d(cout, cout, kernel, stride=2, padding=padding)]
            cin = cout
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def _init_weights(module: nn.Module) -> None:
    # The release's ``weight_init``: Xavier-normal weights and zero biases for convolutions and
    # transposed convolutions. Its special cases (``m.weight.data.shape[1] == torch.Size([1])``)
    # compare an int with a torch.Size, which is never true, so they never apply; not copied.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_normal_(module.weight, gain=1.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DexiNed(nn.Module):
    """DexiNed, optionally with the TV layers of Yeh et al. (see the module doc).

    Args:
        widths: channels of blocks 1-6 (release: :data:`DEXINED_WIDTHS`).
        up_features: channels inside the upsampling heads (release: 16).
        tv: add TV2D-Sharp on the 2x/4x/8x maps and TV2D-Smooth on the fused map.
        tv_lam_init: initial lambda of those layers (> 0: trainable).
        tv_iters: Dykstra iterations of the 2D TV prox.

    Shape:
        input ``(B, 3, H, W)`` with H and W multiples of 16 (see :func:`pad_to_stride`);
        output: a list of seven ``(B, 1, H, W)`` logit maps (six sides, then the fused one).

    Raises:
        ValueError: six positive widths are not given, or the input is not ``(B, 3, H, W)`` with
            H, W multiples of 16.
    """

    def __init__(self, *, widths: Sequence[int] = DEXINED_WIDTHS, up_features: int = 16, tv: bool = False,
                 tv_lam_init: float = 0.05, tv_iters: int = 4):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 6 or min(widths) < 2:
            raise ValueError(f"widths: expected six channel counts >= 2 (blocks 1-6), got {widths}")
        w1, w2, w3, w4, w5, w6 = widths
        self.widths, self.tv = widths, bool(tv)
        self.block_1 = _DoubleConv(3, w1 // 2, w1, stride=2)
        self.block_2 = _DoubleConv(w1, w2, w2, activate=False)
        self.dblock_3 = _DenseBlock(2, w2, w3)
        self.dblock_4 = _DenseBlock(3, w3, w4)
        self.dblock_5 = _DenseBlock(3, w4, w5)
        self.dblock_6 = _DenseBlock(3, w5, w6)
        self.side_1 = _SingleConv(w1, w2, 2)
        self.side_2 = _SingleConv(w2, w3, 2)
        self.side_3 = _SingleConv(w3, w4, 2)
        self.side_4 = _SingleConv(w4, w5, 1)
        self.pre_dense_2 = _SingleConv(w2, w3, 2)
        self.pre_dense_3 = _SingleConv(w2, w3, 1)
        self.pre_dense_4 = _SingleConv(w3, w4, 1)
        self.pre_dense_5 = _SingleConv(w4, w5, 1)
        self.pre_dense_6 = _SingleConv(w5, w6, 1)
        self.up_blocks = nn.ModuleList(_UpBlock(c, s, up_features) for c, s in zip(widths, SCALES))
        self.block_cat = nn.Conv2d(6, 1, 1)
        self.apply(_init_weights)
        if self.tv:
            self.tv_sharp = nn.ModuleList(TVLayer(1, mode="sharp", direction="2d", lam_init=tv_lam_init,
                                                  iters=tv_iters) for _ in TV_OUTPUTS)
            self.tv_smooth = TVLayer(1, mode="smooth", direction="2d", lam_init=tv_lam_init, iters=tv_iters)

    def forward(self, x: Tensor) -> list[Tensor]:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected a (B, 3, H, W) tensor, got {tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(f"x: H and W must be multiples of {STRIDE} (use pad_to_stride), got {tuple(x.shape)}")
        maxpool = lambda t: F.max_pool2d(t, 3, stride=2, padding=1)  # noqa: E731
        block_1 = self.block_1(x)
        block_2 = self.block_2(block_1)
        block_2_down = maxpool(block_2)
        block_2_add = block_2_down + self.side_1(block_1)
        block_3 = self.dblock_3(block_2_add, self.pre_dense_3(block_2_down))
        block_3_down = maxpool(block_3)
        block_3_add = block_3_down + self.side_2(block_2_add)
        block_4_pre = self.pre_dense_4(block_3_down + self.pre_dense_2(block_2_down))
        block_4 = self.dblock_4(block_3_add, block_4_pre)
        block_4_down = maxpool(block_4)
        block_4_add = block_4_down + self.side_3(block_3_add)
        block_5 = self.dblock_5(block_4_add, self.pre_dense_5(block_4_down))
        block_5_add = block_5 + self.side_4(block_4_add)
        block_6 = self.dblock_6(block_5_add, self.pre_dense_6(block_5))
        sides = [up(b) for up, b in zip(self.up_blocks, (block_1, block_2, block_3, block_4, block_5, block_6))]
        if self.tv:
            for layer, index in zip(self.tv_sharp, TV_OUTPUTS):
                sides[index] = layer(sides[index])
        fused = self.block_cat(torch.cat(sides, dim=1))
        if self.tv:
            fused = self.tv_smooth(fused)
        return sides + [fused]

    def tv_lambdas(self) -> dict[str, float]:
        """Current lambda of each TV layer (empty without TV)."""
        if not self.tv:
            return {}
        values = {f"sharp {SCALES[i]}x (out {i + 1})": float(layer.lam.detach()[0])
                  for layer, i in zip(self.tv_sharp, TV_OUTPUTS)}
        values["smooth fused"] = float(self.tv_smooth.lam.detach()[0])
        return values


def pad_to_stride(x: Tensor, stride: int = STRIDE) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad ``(B, C, H, W)`` at the bottom/right to multiples of ``stride``; returns the
    padded tensor and the original ``(H, W)`` to crop the outputs back."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % stride, (-width) % stride
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(height, width) > max(pad_h, pad_w) else "replicate")
    return x, (height, width)


def edge_labels(annotation: Tensor) -> Tensor:
    """Binary training labels from an edge annotation in [0, 1] (the mean of the annotators
    for BSDS-style data): the release's ``gt[gt > 0.2] += 0.6; clip; long()`` keeps a pixel
    exactly where the annotation is at least 0.4."""
    return (annotation >= 0.4 - 1e-6).to(annotation.dtype)


def dexined_loss(outputs: Sequence[Tensor], labels: Tensor, *, weights: Sequence[float] = LOSS_WEIGHTS) -> Tensor:
    """DexiNed's weighted BCE (``bdcn_loss2``), summed over the seven maps with ``weights``.

    Args:
        outputs: seven logit maps ``(B, 1, H, W)``.
        labels: binary labels ``(B, 1, H, W)`` (see :func:`edge_labels`).

    Returns:
        scalar loss: sum over maps of ``weight * sum_b mean_pixels(w_p * BCE_p)`` where
        ``w = negatives / total`` on edges and ``1.1 * positives / total`` elsewhere (counts
        over the whole batch).
    """
    if len(outputs) != len(weights):
        raise ValueError(f"outputs: expected {len(weights)} maps, got {len(outputs)}")
    positives = labels.sum()
    total = float(labels.numel())
    mask = torch.where(labels > 0, (total - positives) / total, 1.1 * positives / total)
    loss = labels.new_zeros(())
    for logits, weight in zip(outputs, weights):
        cost = F.binary_cross_entropy_with_logits(logits, labels, weight=mask, reduction="none")
        loss = loss + weight * cost.mean(dim=(1, 2, 3)).sum()
    return loss


def average_edge_map(outputs: Sequence[Tensor]) -> Tensor:
    """DexiNed-a: the mean over the seven maps of ``sigmoid`` rescaled to [0, 1] per image
    (``image_normalization`` of the release), shape ``(B, H, W)``."""
    maps = []
    for logits in outputs:
        probability = torch.sigmoid(logits[:, 0])
        low = probability.amin(dim=(1, 2), keepdim=True)
        high = probability.amax(dim=(1, 2), keepdim=True)
        maps.append((probability - low) / (high - low).clamp_min(1e-12))
    return torch.stack(maps).mean(dim=0)
