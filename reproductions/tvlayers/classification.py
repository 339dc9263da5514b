"""The classification network of Sec. 4.2 (All-Convolutional Net with TV layers) and its training.

All-CNN-C (Springenberg et al., ICLR 2015 workshop), in the batch-normalised form used as a CIFAR
baseline: nine convolution blocks ``conv -> BN -> ReLU``

    3x3 w1, 3x3 w1, 3x3 w1 stride 2, 3x3 w2, 3x3 w2, 3x3 w2 stride 2, 3x3 w2, 1x1 w2, 1x1 classes

followed by global average pooling (w1 = 96, w2 = 192 in the paper's net). TV-Smooth / TV-Sharp
(Sec. 4.2): a :class:`~suite.solvers.tv.TVLayer` (2D, one lambda shared by all channels,
initialised to 0.05, trained with the network) inserted *before batch normalisation* in each of
the first three blocks, i.e. ``conv -> TV -> BN -> ReLU``. The paper does not say whether its
classification TV layers are 1D or 2D; 2D (Eq. 2) is used here, with the layer's default four
Dykstra iterations (the official layer's default). No dropout (the original All-CNN-C used it; the
BN variant does not need it, and the paper does not mention it).

Training: SGD with Nesterov momentum 0.9, weight decay, a cosine learning-rate schedule, the
standard CIFAR augmentation (random 32 x 32 crop of the 4-pixel reflect-padded image, horizontal
flip), inputs normalised by the training set's channel means and standard deviations.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.solvers.tv import TVLayer

__all__ = ["ConvBlock", "AllConvNet", "tv_layers", "lam_values", "train_classifier", "predict", "tv_strength",
           "predict_without_tv", "MODELS"]

#: Table 2's rows and the TV mode each uses.
MODELS = {"AllConv": None, "TV-Smooth": "smooth", "TV-Sharp": "sharp"}


class ConvBlock(nn.Module):
    """``conv -> [TV] -> BN -> ReLU``; ``tv`` is an ``nn.Identity`` when the block has no TV layer."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3, stride: int = 1,
                 tv_mode: str | None = None, lam_init: float = 0.05) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                              bias=False)
        self.tv = (TVLayer(out_channels, mode=tv_mode, direction="2d", lam_init=lam_init, shared=True)
                   if tv_mode is not None else nn.Identity())
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.tv(self.conv(x))))


class AllConvNet(nn.Module):
    """All-CNN-C with batch norm, optionally with TV layers in the first ``tv_blocks`` blocks.

    Args:
        widths: ``(w1, w2)``, the channels of the first three and of the other blocks.
        classes: number of classes.
        tv_mode: ``None`` (the baseline), ``"smooth"`` or ``"sharp"``.
        lam_init: initial lambda of the TV layers (0.05 in the paper).
        tv_blocks: how many leading blocks get a TV layer (3 in the paper).

    Shape:
        input ``(B, 3, H, W)``, output logits ``(B, classes)``.

    Raises:
        ValueError: bad widths, classes, mode or tv_blocks.
    """

    def __init__(self, *, widths: Sequence[int] = (96, 192), classes: int = 10, tv_mode: str | None = None,
                 lam_init: float = 0.05, tv_blocks: int = 3) -> None:
        super().__init__()
        if len(widths) != 2 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths: expected two positive ints (w1, w2), got {widths!r}")
        if not isinstance(classes, int) or classes < 2:
            raise ValueError(f"classes: expected an int >= 2, got {classes!r}")
        if tv_mode not in (None, "smooth", "sharp"):
            raise ValueError(f"tv_mode: expected None, 'smooth' or 'sharp', got {tv_mode!r}")
        if not isinstance(tv_blocks, int) or not 0 <= tv_blocks <= 9:
            raise ValueError(f"tv_blocks: expected an int in 0..9, got {tv_blocks!r}")
        w1, w2 = widths
        plan = [(3, w1, 3, 1), (w1, w1, 3, 1), (w1, w1, 3, 2), (w1, w2, 3, 1), (w2, w2, 3, 1), (w2, w2, 3, 2),
                (w2, w2, 3, 1), (w2, w2, 1, 1), (w2, classes, 1, 1)]
        self.blocks = nn.Sequential(*[
            ConvBlock(cin, cout, kernel_size=k, stride=s, tv_mode=tv_mode if i < tv_blocks else None,
                      lam_init=lam_init)
            for i, (cin, cout, k, s) in enumerate(plan)])
        self.tv_mode = tv_mode

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x: expected a (B, 3, H, W) tensor, got {got}")
        return self.blocks(x).mean(dim=(2, 3))


def tv_layers(model: nn.Module) -> list[TVLayer]:
    """The model's TV layers in order."""
    return [m for m in model.modules() if isinstance(m, TVLayer)]


def lam_values(model: nn.Module) -> list[float]:
    """The current lambda of each TV layer (shared lambdas: one number per layer)."""
    return [float(layer.lam.detach().reshape(-1)[0]) for layer in tv_layers(model)]


def _augment(images: Tensor, generator: torch.Generator) -> Tensor:
    # Random crop of the reflect-padded image (4 pixels) and a horizontal flip, per sample.
    batch, _, height, width = images.shape
    padded = F.pad(images, (4, 4, 4, 4), mode="reflect")
    dx = torch.randint(0, 9, (batch,), generator=generator)
    dy = torch.randint(0, 9, (batch,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None]).view(batch, 1, height, 1).expand(-1, images.shape[1], -1, width + 8)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(width)[None]).view(batch, 1, 1, width).expand(-1, images.shape[1], height, -1)
    out = out.gather(3, cols)
    flip = torch.rand(batch, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def normalise(images: np.ndarray, mean: Tensor, std: Tensor) -> Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 standardised per channel."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (tensor - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def channel_stats(images: np.ndarray) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of (N, H, W, 3) uint8 images on [0, 1]."""
    values = images.reshape(-1, 3).astype(np.float64) / 255.0
    return torch.tensor(values.mean(0), dtype=torch.float32), torch.tensor(values.std(0), dtype=torch.float32)


def train_classifier(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int,
                     lr: float, weight_decay: float, seed: int, checkpoint=None, log_every: int = 10,
                     augment: bool = True, device: str = "cpu",
                     progress: Callable[..., Any] = lambda it, **_: it) -> dict[str, Any]:
    """Train ``model`` by SGD on (images, labels) for ``steps`` steps; resumable from ``checkpoint``.

    Args:
        model: the classifier (moved to ``device``).
        images: ``(N, H, W, 3)`` uint8; labels: ``(N,)`` ints.
        steps, batch_size, lr, weight_decay: the schedule (cosine decay from ``lr`` to 0).
        seed: seeds the batch order and augmentation (the weights are seeded by the caller).
        checkpoint: a :class:`suite.harness.trained.Checkpoint` or None.
        log_every: record the TV lambdas and the loss every this many steps.

    Returns:
        ``{"state": state_dict, "mean": .., "std": .., "history": {"step", "lam", "loss"},
        "step_ms": per-step wall times (ms) of the steps run in this process}``.

    Raises:
        ValueError: mismatched images and labels, or non-positive steps / batch size.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"images and labels: expected the same non-zero length, got {len(images)} and {len(labels)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    mean, std = channel_stats(images)
    data = normalise(images, mean, std)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list] = {"step": [], "lam": [], "loss": []}
    step_ms: list[float] = []
    start = 0
    order = torch.randperm(len(data), generator=generator)
    position = 0
    state = checkpoint.resume(model, optimizer, schedule) if checkpoint is not None else None
    if state is not None:
        # The epoch's order and place in it come back with the generator, so a resumed run draws
        # the batches and augmentations an uninterrupted one would have drawn.
        generator.set_state(state["generator"])
        history, step_ms, start = state["history"], state["step_ms"], state["step"]
        order, position = state["order"], state["position"]
    model.train()
    if start == 0:
        history["step"].append(0)
        history["lam"].append(lam_values(model))
        history["loss"].append(float("nan"))
    for step in progress(range(start, steps), desc="train", total=steps - start):
        began = time.perf_counter()
        if position + batch_size > len(data):
            order = torch.randperm(len(data), generator=generator)
            position = 0
        index = order[position: position + batch_size]
        position += batch_size
        batch = data[index]
        if augment:
            batch = _augment(batch, generator)
        logits = model(batch.to(device))
        loss = F.cross_entropy(logits, targets[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step_ms.append(1000 * (time.perf_counter() - began))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history["step"].append(step + 1)
            history["lam"].append(lam_values(model))
            history["loss"].append(float(loss.detach()))
        if checkpoint is not None and checkpoint.due(step + 1) and step + 1 < steps:
            checkpoint.save_training(step=step + 1, model=model, optimizer=optimizer, scheduler=schedule,
                                     generator=generator.get_state(), order=order, position=position,
                                     history=history, step_ms=step_ms)
    return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "mean": mean, "std": std,
            "history": history, "step_ms": step_ms}


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, mean: Tensor, std: Tensor, *, batch_size: int = 500,
            device: str = "cpu") -> np.ndarray:
    """Predicted labels ``(N,)`` of ``(N, H, W, 3)`` uint8 images (model in eval mode)."""
    model.eval().to(device)
    out = []
    for start in range(0, len(images), batch_size):
        batch = normalise(images[start: start + batch_size], mean, std).to(device)
        out.append(model(batch).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


@torch.no_grad()
def tv_strength(model: nn.Module, images: np.ndarray, mean: Tensor, std: Tensor, *,
                device: str = "cpu") -> list[tuple[float, float]]:
    """How much each TV layer of a trained model changes its input on ``images`` (eval mode).

    Prox_TV(c F, lam) = c Prox_TV(F, lam / c): a lambda acts relative to the size of the conv
    output F it smooths, so lambda alone does not say how strong a layer is.

    Args:
        images: ``(N, H, W, 3)`` uint8, one batch (the caller keeps it small).

    Returns:
        one ``(mean |F|, ||layer(F) - F|| / ||F||)`` per TV layer, in order (empty without TV).
    """
    model.eval().to(device)
    stats: list[tuple[float, float]] = []

    def hook(module, inputs, output):
        x = inputs[0]
        stats.append((float(x.abs().mean()), float((output - x).norm() / x.norm().clamp_min(1e-12))))

    handles = [layer.register_forward_hook(hook) for layer in tv_layers(model)]
    try:
        model(normalise(images, mean, std).to(device))
    finally:
        for handle in handles:
            handle.remove()
    return stats


@torch.no_grad()
def predict_without_tv(model: nn.Module, images: np.ndarray, mean: Tensor, std: Tensor, *,
                       device: str = "cpu") -> np.ndarray:
    """Predicted labels ``(N,)`` of the trained model with every TV layer bypassed at test time
    (all other weights as trained): what the layers' smoothing contributes to the prediction."""
    blocks = [m for m in model.modules() if isinstance(m, ConvBlock) and isinstance(m.tv, TVLayer)]
    layers = [block.tv for block in blocks]
    try:
        for block in blocks:
            block.tv = nn.Identity()
        return predict(model, images, mean, std, device=device)
    finally:
        for block, layer in zip(blocks, layers):
            block.tv = layer
