"""The LSM network: feature pyramid, subspace generator, coarse-to-fine subspace minimization
(Tang & Tan, CVPR 2020, Sec. 3.1-3.4, Fig. 2-3, App. A-B).

One network, one parameter set for the four tasks (:data:`TASKS`). For each input image a
feature pyramid F^1..F^4 (strides 32/16/8/4; channels ``config.channels``, the paper's
512/256/128/64) is built by a DRN-22 backbone without dilation merged FPN-style (the official
code's ``drn22_no_dilation`` + ``feature/pyramid/baseline.py``). The solution ``x`` starts at zero
on the coarsest level; on each level, for ``config.iterations[l]`` iterations (official:
1, 6, 4, 3):

1. the data term of the task (``reproductions.lsm.terms``) is evaluated on each of the m feature
   groups at the current x, giving per-group first and second derivatives;
2. the subspace generator (Fig. 3) maps [normalised x | image context (1x1 conv of F to m
   channels) | minimization context (the 2m per-group derivatives, each RMS-normalised)] through
   average pooling at 4 kernel sizes (integral images, stride 1), a 1x1 projection to 2m channels
   per scale (8m in all), four residual blocks and a 1x1 conv to the K basis images
   (K = ``config.subspace_dims[l]``, the paper's 2/4/8/16);
3. the quadratic model of the data term over all channels (the sum over groups) is minimised
   over span(V) by :func:`suite.solvers.subspace.subspace_step` with the projection of Eqs. 5-6.

Flow follows App. A: Cramer's rule turns each pixel's 2 x 2 system into two one-dimensional
problems, u with (det, det_x) and v with (det, det_y); the same generator runs on each (as two
items of one batch) and yields separate subspaces V_x and V_y, which the solver's
``flow_system="cramer"`` uses. Between levels x is upsampled x2 (bilinear; displacements doubled)
and finally to the input resolution.

Conventions: images float in [0, 1], ``(B, 3, H, W)``; H and W are padded (replicate) to
multiples of 32 internally. Labeling: x is a logit, foreground probability (tanh(x) + 1) / 2.
Stereo: ``target(p) ~ source(p + u)``, u horizontal (left-to-right: target = left, u =
-disparity; right-to-left: target = right, u = +disparity). Flow: (u, v) from image1 to image2.

Variants (the ablations of Sec. 4.4, Fig. 12), one code path with switches:

* ``full``: the paper's model.
* ``implicit``: "CNN as implicit solver": the generator's last conv outputs one channel per
  dimension that *is* the new solution; no minimization.
* ``no_min_context``: the subspace from the image context alone (no derivatives, no x).
* ``no_projection``: Eq. 4 instead of Eqs. 5-6 (``project=False``).

Differences from the paper that are choices here (documented, configurable): m = c / 8 as the
paper says (official code: c / 16, ``config.group_divisor``); 1x1 head (official: 3x3,
``config.head_kernel``); no occlusion weights (official: 2 extra softmax channels weighting the
data term, not in the paper); the generator's residual blocks are bottlenecks (8m -> 2m -> 8m, as
the official code); pool sizes per level ``config.pool_sizes`` (the official lists have 3 sizes
on the two coarsest levels; a size 1 = identity makes 4 there); the minimization context is
RMS-normalised per channel (official: ``rsqrt(var + 1e-3)``); D gets a relative Levenberg-Marquardt
damping of ``config.damping`` = 1e-6 (so that a level where the data term is flat, e.g. across a
one-pixel-wide coarsest level, gives a zero step rather than a singular system); where a level has
fewer pixels than K, its first h w basis images are used. Parameter count of the full config:
13.77M (the paper: "about 15M"; the FPN and generator details are not fully specified).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.solvers.subspace import subspace_step

from . import terms

__all__ = ["TASKS", "VARIANTS", "LSMConfig", "LSMOutput", "LSM", "build_lsm", "integral_average_pool",
           "parameter_count", "model_memory_mb"]

TASKS = ("interactive", "video", "stereo", "flow")
VARIANTS = ("full", "implicit", "no_min_context", "no_projection")
NORMS = ("batch", "group")
STRIDES = (32, 16, 8, 4)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: Keys of an ImageNet DRN-D-22 checkpoint that this backbone does not use (the classifier and
#: the two dilated layers after layer6, which the pyramid does not take); skipped by name.
DRN_UNUSED_PREFIXES = ("fc.", "layer7.", "layer8.")


@dataclass(frozen=True)
class LSMConfig:
    """The model's sizes and options; the defaults are the paper's full model.

    Attributes:
        channels: pyramid channels, coarse -> fine (strides 32, 16, 8, 4).
        subspace_dims: K per level, coarse -> fine.
        iterations: LSM iterations per level (official code: 1, 6, 4, 3).
        variant: one of :data:`VARIANTS`.
        stem_channels: DRN layer0/1/2 widths; None: (c4 / 4, c4 / 4, c4 / 2) with c4 the finest
            pyramid channels (the paper's 16, 16, 32).
        blocks: BasicBlocks per DRN stage layer3..layer6 (DRN-22: 2 each).
        group_divisor: m = c / group_divisor feature groups (paper: 8; official code: 16).
        pool_sizes: the 4 average-pooling kernel sizes per level, coarse -> fine.
        residual_blocks: residual blocks of the generator (paper: 4).
        head_kernel: kernel of the generator's last conv (paper: 1; official code: 3).
        norm: ``"batch"`` (DRN's BatchNorm) or ``"group"`` (GroupNorm, for tiny batches).
        ridge: relative diagonal shift of the K x K systems (numerical safety in float32).
        damping: relative Levenberg-Marquardt shift of the diagonal of D (see ``_damp``).
        kernel_bandwidth: width of the feature kernel of the alpha/beta estimates.
        max_scribble_points: scribble points per class and image for the kernel density.
        video_radius: neighbourhood half width (pixels of each level) for video alpha/beta.
        derivative: ``"central"`` or ``"bilinear"`` source gradients (see ``terms``).
        flow_system: ``"cramer"`` (App. A: separate V_x, V_y) or ``"joint"`` (one 2K x 2K system
            over V_x x V_y with the x/y coupling, as the official code's solve).
    """

    channels: tuple[int, ...] = (512, 256, 128, 64)
    subspace_dims: tuple[int, ...] = (2, 4, 8, 16)
    iterations: tuple[int, ...] = (1, 6, 4, 3)
    variant: str = "full"
    stem_channels: tuple[int, ...] | None = None
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    group_divisor: int = 8
    pool_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5, 7), (1, 3, 5, 9), (3, 5, 9, 13), (3, 7, 15, 23))
    residual_blocks: int = 4
    head_kernel: int = 1
    norm: str = "batch"
    ridge: float = 1e-4
    damping: float = 1e-6
    kernel_bandwidth: float = 0.5
    max_scribble_points: int = 256
    video_radius: int = 3
    derivative: str = "central"
    flow_system: str = "cramer"

    def __post_init__(self):
        # Lists from YAML/JSON settings become tuples so the config stays hashable and comparable.
        for name in ("channels", "subspace_dims", "iterations", "blocks"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.stem_channels is not None:
            object.__setattr__(self, "stem_channels", tuple(int(v) for v in self.stem_channels))
        object.__setattr__(self, "pool_sizes", tuple(tuple(int(k) for k in s) for s in self.pool_sizes))
        levels = len(STRIDES)
        for name in ("channels", "subspace_dims", "iterations", "blocks", "pool_sizes"):
            if len(getattr(self, name)) != levels:
                raise ValueError(f"{name}: expected {levels} values (one per pyramid level, coarse -> fine), got "
                                 f"{getattr(self, name)!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {self.variant!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {self.norm!r}")
        if self.flow_system not in ("cramer", "joint"):
            raise ValueError(f"flow_system: expected 'cramer' or 'joint', got {self.flow_system!r}")
        if self.derivative not in ("central", "bilinear"):
            raise ValueError(f"derivative: expected 'central' or 'bilinear', got {self.derivative!r}")
        for c in self.channels:
            if c < self.group_divisor or c % self.group_divisor:
                raise ValueError(f"channels: expected multiples of group_divisor = {self.group_divisor}, got "
                                 f"{self.channels}")
        if min(self.subspace_dims) < 1 or min(self.iterations) < 1 or min(self.blocks) < 1:
            raise ValueError("subspace_dims, iterations, blocks: expected values >= 1")
        if any(k < 1 or k % 2 == 0 for s in self.pool_sizes for k in s) or any(len(s) != 4 for s in self.pool_sizes):
            raise ValueError(f"pool_sizes: expected 4 odd kernel sizes >= 1 per level, got {self.pool_sizes}")
        if self.head_kernel not in (1, 3):
            raise ValueError(f"head_kernel: expected 1 or 3, got {self.head_kernel}")
        if self.residual_blocks < 0:
            raise ValueError(f"residual_blocks: expected >= 0, got {self.residual_blocks}")

    @property
    def groups(self) -> tuple[int, ...]:
        """m per level."""
        return tuple(c // self.group_divisor for c in self.channels)

    @property
    def stem(self) -> tuple[int, int, int]:
        if self.stem_channels is not None:
            return self.stem_channels  # type: ignore[return-value]
        finest = self.channels[-1]
        return (max(finest // 4, 1), max(finest // 4, 1), max(finest // 2, 1))


@dataclass
class LSMOutput:
    """What :meth:`LSM.forward` returns.

    Attributes:
        solution: at input resolution: ``(B, 1, H, W)`` logit (interactive, video), horizontal
            displacement u in pixels (stereo), or ``(B, 2, H, W)`` flow.
        levels: the solution after each level, at that level's resolution and pixel units,
            coarse -> fine.
        bases: the last basis of each level, ``(B, K, h, w)`` (``(B, 2, K, h, w)`` for flow: V_x,
            V_y); empty for the ``implicit`` variant, which has none.
    """

    solution: Tensor
    levels: list[Tensor] = field(default_factory=list)
    bases: list[Tensor] = field(default_factory=list)


# ------------------------------------------------------------------------------- building blocks


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class BasicBlock(nn.Module):
    """ResNet/DRN basic block (two 3x3 convs), names as DRN's (conv1, bn1, conv2, bn2, downsample)."""

    def __init__(self, inputs: int, outputs: int, *, stride: int = 1, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = _norm(norm, outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                            _norm(norm, outputs))

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + skip)


def _conv_layer(inputs: int, outputs: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, stride=stride, padding=kernel // 2, bias=False),
                         _norm(norm, outputs), nn.ReLU(inplace=True))


class DRN22(nn.Module):
    """DRN-D-22 without dilation (Yu et al. 2017; the official ``drn22_no_dilation``): layer0-2
    convolutions, layer3-6 two BasicBlocks each at strides 4, 8, 16, 32. Parameter names follow
    DRN's so an ImageNet DRN-D-22 state dict maps key for key (minus fc, layer7, layer8)."""

    def __init__(self, config: LSMConfig):
        super().__init__()
        s0, s1, s2 = config.stem
        widths = tuple(reversed(config.channels))  # stride 4, 8, 16, 32
        self.layer0 = _conv_layer(3, s0, 7, 1, config.norm)
        self.layer1 = _conv_layer(s0, s1, 3, 1, config.norm)
        self.layer2 = _conv_layer(s1, s2, 3, 2, config.norm)
        inputs = s2
        for index, (width, count) in enumerate(zip(widths, reversed(config.blocks))):
            blocks = [BasicBlock(inputs, width, stride=2, norm=config.norm)]
            blocks += [BasicBlock(width, width, norm=config.norm) for _ in range(count - 1)]
            setattr(self, f"layer{index + 3}", nn.Sequential(*blocks))
            inputs = width

    def forward(self, image: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` normalised image -> [layer6, layer5, layer4, layer3] (coarse -> fine)."""
        x = self.layer2(self.layer1(self.layer0(image)))
        outs = []
        for index in range(3, 7):
            x = getattr(self, f"layer{index}")(x)
            outs.append(x)
        return outs[::-1]


class FeaturePyramid(nn.Module):
    """DRN-22 + FPN-style top-down merge: P1 = C1; P_l = smooth(C_l + lateral(up2(P_{l-1})))."""

    def __init__(self, config: LSMConfig):
        super().__init__()
        self.backbone = DRN22(config)
        c = config.channels
        self.lateral = nn.ModuleList(nn.Conv2d(c[i - 1], c[i], 1) for i in range(1, len(c)))
        self.smooth = nn.ModuleList(nn.Sequential(nn.Conv2d(c[i], c[i], 3, padding=1), nn.ReLU(inplace=True))
                                    for i in range(1, len(c)))

    def forward(self, image: Tensor) -> list[Tensor]:
        mean = image.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = image.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        levels = self.backbone((image - mean) / std)
        out = [levels[0]]
        for i in range(1, len(levels)):
            up = F.interpolate(out[-1], size=levels[i].shape[-2:], mode="bilinear", align_corners=False)
            out.append(self.smooth[i - 1](levels[i] + self.lateral[i - 1](up)))
        return out


def _box_sum(values: Tensor, radius: int, dim: int) -> Tensor:
    """Sum over ``[i - radius, i + radius]`` (clipped) along ``dim`` (-1 or -2) by a 1-D integral
    image: ``I[min(i + r + 1, n)] - I[max(i - r, 0)]`` with ``I`` the cumulative sum after a zero,
    read as two slices of ``I`` edge-padded by r on both sides."""
    n = values.shape[dim]
    integral = values.cumsum(dim)
    zero = torch.zeros_like(values.narrow(dim, 0, 1))
    integral = torch.cat((zero, integral), dim)  # I[0] = 0, length n + 1
    pad = (0, 0, radius, radius) if dim == -2 else (radius, radius, 0, 0)
    padded = F.pad(integral, pad, mode="replicate")
    return padded.narrow(dim, 2 * radius + 1, n) - padded.narrow(dim, 0, n)


def integral_average_pool(values: Tensor, kernel: int) -> Tensor:
    """Average over the ``kernel x kernel`` window around each pixel (stride 1, same size) by
    integral images (Sec. 3.2; separable: a 1-D integral image per axis); windows are clipped at
    the border and divided by their in-image pixel count.

    Shape: ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """
    if kernel == 1:
        return values
    radius = kernel // 2
    h, w = values.shape[-2:]
    total = _box_sum(_box_sum(values, radius, -2), radius, -1)
    rows = torch.arange(h, device=values.device)
    cols = torch.arange(w, device=values.device)
    count_h = (rows + radius + 1).clamp(max=h) - (rows - radius).clamp(min=0)
    count_w = (cols + radius + 1).clamp(max=w) - (cols - radius).clamp(min=0)
    return total / (count_h[:, None] * count_w[None, :]).to(values.dtype)


class Bottleneck(nn.Module):
    """Residual bottleneck block 8m -> 2m (3x3) -> 8m."""

    def __init__(self, channels: int, inner: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, inner, 1)
        self.conv = nn.Conv2d(inner, inner, 3, padding=1)
        self.expand = nn.Conv2d(inner, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.expand(F.relu(self.conv(F.relu(self.reduce(x))))))


class SubspaceGenerator(nn.Module):
    """Fig. 3 for one pyramid level: contexts -> multi-scale pooling -> 8m -> residual blocks -> K."""

    def __init__(self, channels: int, groups: int, k: int, pool_sizes: tuple[int, ...], config: LSMConfig):
        super().__init__()
        m = groups
        self.pool_sizes = pool_sizes
        self.use_min_context = config.variant != "no_min_context"
        self.image_context = nn.Conv2d(channels, m, 1)
        inputs = 3 * m + 1 if self.use_min_context else m
        self.scales = nn.ModuleList(nn.Conv2d(inputs, 2 * m, 1) for _ in pool_sizes)
        self.blocks = nn.Sequential(*(Bottleneck(8 * m, 2 * m) for _ in range(config.residual_blocks)))
        outputs = 1 if config.variant == "implicit" else k
        self.head = nn.Conv2d(8 * m, outputs, config.head_kernel, padding=config.head_kernel // 2)

    def forward(self, features: Tensor, solution: Tensor | None, context: Tensor | None) -> Tensor:
        """``features (B, c, h, w)``, normalised ``solution (B, 1, h, w)``, minimization ``context
        (B, 2m, h, w)`` -> ``(B, K, h, w)`` (``(B, 1, h, w)`` for the implicit variant)."""
        parts = [self.image_context(features)]
        if self.use_min_context:
            parts = [solution, parts[0], context]
        inputs = torch.cat(parts, 1)
        pooled = [F.relu(conv(integral_average_pool(inputs, size))) for conv, size in zip(self.scales, self.pool_sizes)]
        return self.head(self.blocks(torch.cat(pooled, 1)))


# ------------------------------------------------------------------------------- input checks


_REQUIRED = {
    "interactive": ("image", "foreground", "background"),
    "video": ("image", "reference_images", "reference_masks"),
    "stereo": ("target", "source"),
    "flow": ("image1", "image2"),
}


def _check_image(value: object, name: str, batch: int | None = None) -> Tensor:
    if not isinstance(value, Tensor) or value.ndim != 4 or value.shape[1] != 3 or not value.is_floating_point():
        raise ValueError(f"inputs[{name!r}]: expected a float tensor (B, 3, H, W) in [0, 1], got "
                         f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}")
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"inputs[{name!r}]: expected batch size {batch}, got {value.shape[0]}")
    if value.shape[0] < 1 or value.shape[2] < 1 or value.shape[3] < 1:
        raise ValueError(f"inputs[{name!r}]: expected a non-empty image, got shape {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"inputs[{name!r}]: expected finite values, got NaN or inf")
    return value


def check_inputs(task: str, inputs: dict) -> None:
    """Raise ValueError naming what is wrong with ``inputs`` for ``task`` (see :class:`LSM`)."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    if not isinstance(inputs, dict):
        raise ValueError(f"inputs: expected a dict with keys {_REQUIRED[task]}, got {type(inputs).__name__}")
    missing = [k for k in _REQUIRED[task] if k not in inputs]
    if missing:
        raise ValueError(f"inputs: task {task!r} needs keys {_REQUIRED[task]}, missing {missing}")
    first = _REQUIRED[task][0]
    image = _check_image(inputs[first], first)
    b, _, h, w = image.shape
    if task in ("stereo", "flow"):
        other = _check_image(inputs[_REQUIRED[task][1]], _REQUIRED[task][1], b)
        if other.shape != image.shape:
            raise ValueError(f"inputs[{_REQUIRED[task][1]!r}]: expected the shape of inputs[{first!r}] "
                             f"{tuple(image.shape)}, got {tuple(other.shape)}")
    elif task == "interactive":
        for name in ("foreground", "background"):
            mask = inputs[name]
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (b, 1, h, w):
                raise ValueError(f"inputs[{name!r}]: expected a bool tensor of shape {(b, 1, h, w)}, got "
                                 f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
    else:
        refs, masks = inputs["reference_images"], inputs["reference_masks"]
        if (not isinstance(refs, Tensor) or refs.ndim != 5 or refs.shape[0] != b or refs.shape[1] < 1
                or tuple(refs.shape[2:]) != (3, h, w) or not refs.is_floating_point()):
            raise ValueError(f"inputs['reference_images']: expected a float tensor (B, R, 3, H, W) = ({b}, R>=1, 3, "
                             f"{h}, {w}), got {tuple(getattr(refs, 'shape', ()))}")
        r = refs.shape[1]
        if (not isinstance(masks, Tensor) or tuple(masks.shape) != (b, r, 1, h, w)
                or not masks.is_floating_point()):
            raise ValueError(f"inputs['reference_masks']: expected a float tensor of shape {(b, r, 1, h, w)} in "
                             f"[0, 1], got {getattr(masks, 'dtype', None)} {tuple(getattr(masks, 'shape', ()))}")
        for name, t in (("reference_images", refs), ("reference_masks", masks)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"inputs[{name!r}]: expected finite values, got NaN or inf")
        if bool((masks < 0).any()) or bool((masks > 1).any()):
            raise ValueError("inputs['reference_masks']: expected values in [0, 1]")


def _pad_to(t: Tensor, height: int, width: int, mode: str) -> Tensor:
    pad = (0, width - t.shape[-1], 0, height - t.shape[-2])
    if pad[1] == 0 and pad[3] == 0:
        return t
    if mode == "constant":
        return F.pad(t, pad)
    shape = t.shape
    return F.pad(t.reshape(-1, *shape[-3:]), pad, mode="replicate").reshape(*shape[:-2], height, width)


def _rms_normalise(values: Tensor) -> Tensor:
    """Each channel of each item divided by its root mean square over the pixels (keeps sign and
    zero; makes the context independent of the data term's scale, which differs by task)."""
    # + tiny inside the root: sqrt's derivative is infinite at 0 (an all-zero channel)
    scale = (values.square().mean((-2, -1), keepdim=True) + 1e-20).sqrt()
    return values / (scale + 1e-6 * scale.amax(1, keepdim=True))


def _standardise(x: Tensor) -> Tensor:
    """x normalised with its mean and variance (Sec. 3.2), per item."""
    mean = x.mean((-2, -1), keepdim=True)
    var = x.var((-2, -1), keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(var + 1e-3)


# ------------------------------------------------------------------------------- the model


class LSM(nn.Module):
    """The LSM network (see the module docstring); build with :func:`build_lsm`.

    ``forward(task, inputs)`` with ``task`` in :data:`TASKS` and ``inputs``:

    * interactive: ``image (B, 3, H, W)``, ``foreground``, ``background`` ``(B, 1, H, W)`` bool;
    * video: ``image``, ``reference_images (B, R, 3, H, W)``, ``reference_masks (B, R, 1, H, W)``
      float in {0, 1} (soft values in [0, 1] accepted);
    * stereo: ``target``, ``source`` ``(B, 3, H, W)``;
    * flow: ``image1`` (target), ``image2`` (source).

    Attributes:
        config: the :class:`LSMConfig`.
        initialization: ``"random init"``, or where the weights came from.
    """

    def __init__(self, config: LSMConfig):
        super().__init__()
        if not isinstance(config, LSMConfig):
            raise ValueError(f"config: expected an LSMConfig, got {type(config).__name__}")
        self.config = config
        self.initialization = "random init"
        self.pyramid = FeaturePyramid(config)
        self.generators = nn.ModuleList(
            SubspaceGenerator(c, m, k, sizes, config)
            for c, m, k, sizes in zip(config.channels, config.groups, config.subspace_dims, config.pool_sizes))

    # --------------------------------------------------------------------- data terms per level

    def _labeling_probabilities(self, task: str, level: int, features: Tensor, extra: dict) -> tuple[Tensor, Tensor]:
        m = self.config.groups[level]
        size = features.shape[-2:]
        if task == "interactive":
            stride = extra["padded"][0] // size[0]
            # Any scribble pixel inside a cell marks the cell, so thin strokes and clicks survive.
            fg = F.max_pool2d(extra["foreground"].float(), stride) > 0.5
            bg = F.max_pool2d(extra["background"].float(), stride) > 0.5
            return terms.scribble_probabilities(features, fg, bg, groups=m, bandwidth=self.config.kernel_bandwidth,
                                                max_points=self.config.max_scribble_points)
        references = extra["reference_features"][level]
        masks = F.adaptive_avg_pool2d(extra["reference_masks"].flatten(0, 1), size).reshape(
            *extra["reference_masks"].shape[:3], *size)
        return terms.neighbour_probabilities(features, references, masks, groups=m, radius=self.config.video_radius,
                                             bandwidth=self.config.kernel_bandwidth)

    def _derivatives(self, task: str, level: int, x: Tensor, features: Tensor, extra: dict):
        """Per-group derivatives and the totals for the solve.

        Returns ``(context, hessian, gradient)``: context ``(P B, 2m, h, w)`` with P = 1 problem
        (P = 2 for flow: u then v); hessian and gradient in the solver's layout for x.
        """
        m = self.config.groups[level]
        if task in ("interactive", "video"):
            alpha, beta = extra["probabilities"][level]
            gradient, hessian = terms.binary_labeling_derivatives(x, alpha, beta)
            return (torch.cat((gradient, hessian), 1), hessian.sum(1, keepdim=True), gradient.sum(1, keepdim=True))
        target, source = extra["target"][level], extra["source"][level]
        if task == "stereo":
            gradient, hessian = terms.stereo_derivatives(target, source, x, groups=m,
                                                         derivative=self.config.derivative)
            return (torch.cat((gradient, hessian), 1), hessian.sum(1, keepdim=True), gradient.sum(1, keepdim=True))
        gradient, hessian = terms.flow_derivatives(target, source, x, groups=m, derivative=self.config.derivative)
        det, det_x, det_y = terms.cramer(hessian, gradient)  # (B, m, h, w) each
        context = torch.cat((torch.cat((det_x, det), 1), torch.cat((det_y, det), 1)), 0)
        return context, hessian.sum(1), gradient.sum(1)

    # --------------------------------------------------------------------- forward

    def forward(self, task: str, inputs: dict) -> LSMOutput:
        """Solve ``task`` on ``inputs`` coarse to fine; see the class docstring.

        Raises:
            ValueError: unknown task, missing keys, wrong shapes or dtypes, NaN or inf.
        """
        check_inputs(task, inputs)
        config = self.config
        dtype = next(self.parameters()).dtype
        device = next(self.parameters()).device
        first = inputs[_REQUIRED[task][0]]
        b, _, height, width = first.shape
        padded = (max(32, -(-height // 32) * 32), max(32, -(-width // 32) * 32))

        def image(t: Tensor) -> Tensor:
            return _pad_to(t.to(device=device, dtype=dtype), *padded, mode="replicate")

        extra: dict = {"padded": padded}
        if task in ("stereo", "flow"):
            a, s = _REQUIRED[task]
            pyramid = self.pyramid(torch.cat((image(inputs[a]), image(inputs[s])), 0))
            extra["target"] = [f[:b] for f in pyramid]
            extra["source"] = [f[b:] for f in pyramid]
            features = extra["target"]
        elif task == "interactive":
            features = self.pyramid(image(inputs["image"]))
            extra["foreground"] = _pad_to(inputs["foreground"].to(device), *padded, mode="constant")
            extra["background"] = _pad_to(inputs["background"].to(device), *padded, mode="constant")
        else:
            refs = inputs["reference_images"]
            r = refs.shape[1]
            pyramid = self.pyramid(torch.cat((image(inputs["image"]), image(refs.flatten(0, 1))), 0))
            features = [f[:b] for f in pyramid]
            extra["reference_features"] = [f[b:].reshape(b, r, *f.shape[1:]) for f in pyramid]
            extra["reference_masks"] = image(inputs["reference_masks"])
        if task in ("interactive", "video"):
            extra["probabilities"] = [self._labeling_probabilities(task, level, f, extra)
                                      for level, f in enumerate(features)]

        dims = 2 if task == "flow" else 1
        displacement = task in ("stereo", "flow")
        x = features[0].new_zeros(b, dims, *features[0].shape[-2:])
        levels, bases = [], []
        for level, feature in enumerate(features):
            if level > 0:
                scale = feature.shape[-1] / x.shape[-1]
                x = F.interpolate(x, size=feature.shape[-2:], mode="bilinear", align_corners=False)
                if displacement:
                    x = x * scale
            basis = None
            for _ in range(config.iterations[level]):
                x, basis = self._iterate(task, level, x, feature, extra)
            levels.append(x)
            if basis is not None:
                bases.append(basis)
        scale = padded[1] / x.shape[-1]
        solution = F.interpolate(x, size=padded, mode="bilinear", align_corners=False)
        if displacement:
            solution = solution * scale
        return LSMOutput(solution=solution[..., :height, :width], levels=levels, bases=bases)

    def _iterate(self, task: str, level: int, x: Tensor, feature: Tensor, extra: dict) -> tuple[Tensor, Tensor | None]:
        config = self.config
        generator = self.generators[level]
        b = x.shape[0]
        problems = x.shape[1]  # 2 for flow: u and v are two 1-D problems (App. A)
        context, hessian, gradient = self._derivatives(task, level, x, feature, extra)
        hessian = _damp(hessian, config.damping)
        # (P B, ...): the u problem's items, then the v problem's.
        solution = torch.cat(x.unbind(1), 0).unsqueeze(1)
        features = feature.repeat(problems, 1, 1, 1)
        out = generator(features, _standardise(solution), _rms_normalise(context))
        if config.variant == "implicit":
            return torch.cat(out.split(b, 0), 1), None
        # A level with fewer pixels than K (a 1 x 1 coarsest level of a 32-pixel input) cannot
        # hold K independent images: the first h w are used.
        out = out[:, :min(out.shape[1], out.shape[-2] * out.shape[-1])]
        # Flow: V_x from the u problem's items, V_y from the v problem's: (B, 2, K, h, w).
        basis = out if problems == 1 else torch.stack(out.split(b, 0), 1)
        # The inputs were validated once at the entry (check_inputs); D is a damped Gauss-Newton
        # matrix (sums of squares, PSD by construction), so the solver's value checks (a host
        # sync each, at every iteration of every level) are skipped; shapes are still checked.
        step = subspace_step(x, basis, hessian, gradient, project=config.variant != "no_projection",
                             ridge=config.ridge, flow_system=config.flow_system, check_values=False)
        return step, basis


def _damp(hessian: Tensor, damping: float) -> Tensor:
    """Levenberg-Marquardt damping of the diagonal of D: ``+ damping * mean(diag) + 1e-10`` per
    item. D vanishes where the data term carries no information (a textureless region, the
    derivative across a one-pixel-wide level, a saturated tanh), which leaves V'DV singular; the
    damped step is then 0 there instead of a pseudo-inverse whose gradient is undefined."""
    if hessian.shape[1] == 1:
        return hessian + damping * hessian.mean((1, 2, 3), keepdim=True) + 1e-10
    duu, duv, dvv = hessian.unbind(1)
    shift = damping * (duu + dvv).mean((1, 2), keepdim=True) / 2 + 1e-10
    return torch.stack((duu + shift, duv, dvv + shift), 1)


# ------------------------------------------------------------------------------- construction


def _load_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected a file written by torch.save, got {str(path)!r} (not found)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - the user's file: say which and why
        raise ValueError(f"checkpoint: {str(path)!r} is not a readable torch state dict ({error})") from error
    for key in ("state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint: {str(path)!r} holds no state dict of tensors")
    return state


def _load_strict(module: nn.Module, state: dict, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        def show(keys):
            return f"{keys[:8]}{' ...' if len(keys) > 8 else ''} ({len(keys)})"
        raise ValueError(f"checkpoint: {what} does not match the model: missing keys {show(missing)}, unexpected "
                         f"keys {show(unexpected)}, shape mismatches {show(mismatched)}")
    module.load_state_dict(state, strict=True)


def build_lsm(config: LSMConfig | None = None, *, checkpoint: str | Path | None = None,
              backbone_checkpoint: str | Path | None = None) -> LSM:
    """An :class:`LSM` for ``config``; weights from ``checkpoint`` (the whole model, strict) or the
    backbone from ``backbone_checkpoint`` (an ImageNet DRN-D-22 state dict: every key must map,
    except the classifier ``fc.*`` and ``layer7.*``/``layer8.*``, which the pyramid does not use);
    random init otherwise, which ``model.initialization`` says.

    Raises:
        ValueError: a bad config, an unreadable checkpoint, or keys / shapes that do not match
            (the message lists the missing and unexpected keys).
    """
    config = LSMConfig() if config is None else config
    model = LSM(config)
    if checkpoint is not None:
        _load_strict(model, _load_state(checkpoint), f"{str(checkpoint)!r}")
        model.initialization = f"checkpoint {Path(checkpoint).name}"
    elif backbone_checkpoint is not None:
        state = {k: v for k, v in _load_state(backbone_checkpoint).items()
                 if not k.startswith(DRN_UNUSED_PREFIXES)}
        _load_strict(model.pyramid.backbone, state, f"backbone {str(backbone_checkpoint)!r}")
        model.initialization = f"backbone from {Path(backbone_checkpoint).name}, the rest random init"
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_memory_mb(model: nn.Module) -> float:
    """Parameters and buffers in MiB (the paper's 57.26 MB is 15.0M float32 parameters in MiB)."""
    total = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    return total / 2 ** 20


def config_dict(config: LSMConfig) -> dict:
    """The config as a plain dict (for cache keys and reports)."""
    return asdict(config)
