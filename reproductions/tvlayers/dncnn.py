"""DnCNN (Zhang et al., TIP 2017, as built and trained by the KAIR toolbox) and DnCNN+TV (Eq. 13-14 of
Yeh et al., CVPR 2022): the network, KAIR's patch training, and the KAIR test protocol.

* :func:`dncnn_body` -- KAIR ``models/network_dncnn.py::DnCNN``'s layers: a conv + ReLU head, ``depth - 2``
  conv + batch norm + ReLU blocks, a conv tail (``depth`` = KAIR's ``nb``, all 3x3 convs with bias), with
  KAIR's initialisation (orthogonal, gain 0.2, zero bias; batch-norm weight U(0.1, 1), bias 0) and
  batch norm as KAIR's ``basicblock.conv`` builds it (momentum 0.9, eps 1e-4).
* :func:`denoise` -- Eq. 13 ``DnCNN(I) = R(I) + I`` (KAIR's body predicts the noise n and returns
  ``x - n``, so ``R = -body``) and Eq. 14 ``DnCNNTV(I) = Prox_TV2D(R(I~) + I~, lam_out)`` with
  ``I~ = Prox_TV2D(I, lam_in)``: the output TV acts on the final estimate, not on the residual.
* :class:`DnCNN` -- the thin module holding the body and, for DnCNN+TV, the two
  :class:`suite.solvers.tv.TVLayer` (TV2D-Smooth, lam = softplus(param), one per colour channel, trained).
* :func:`patch_batch`, :func:`train_denoiser` -- KAIR ``data/dataset_dncnn.py`` training: a random
  ``patch`` x ``patch`` crop of each image of a shuffled epoch, one of the 8 flips/rotations
  (``utils_image.augment_img``), white Gaussian noise of std sigma/255 added on the fly (not clipped),
  L1 loss, Adam, MultiStepLR; resumable from a checkpoint.
* :func:`evaluate` -- KAIR ``main_test_dncnn.py``: the noisy input as the data layer's
  :func:`suite.data.readers.kair_noisy` makes it, the output clamped to [0, 1] and rounded to uint8,
  PSNR on RGB with no border (:func:`metrics.image.psnr`), per image.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from metrics.image import psnr, to_uint8
from suite.solvers.tv import TVLayer

__all__ = ["KAIR_BN", "dncnn_body", "denoise", "DnCNN", "augment", "patch_batch", "train_denoiser",
           "evaluate", "center_crop", "mean_and_error", "paired_step_times"]

#: KAIR ``models/basicblock.py::conv`` builds batch norm as ``BatchNorm2d(c, momentum=0.9, eps=1e-04)``.
KAIR_BN = {"momentum": 0.9, "eps": 1e-4}
#: KAIR ``train_dncnn.json``: ``init_type`` orthogonal with ``init_gain`` 0.2, ``init_bn_type`` uniform.
KAIR_INIT_GAIN = 0.2


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def dncnn_body(channels: int, *, depth: int = 17, width: int = 64) -> nn.Sequential:
    """KAIR's DnCNN layers (``nb = depth`` conv layers), which predict the noise of their input.

    Args:
        channels: image channels in and out (3 for colour).
        depth: total number of conv layers, >= 3 (KAIR ``nb``: 17 for DnCNN at one noise level,
            20 for the blind DnCNN-B / CDnCNN-B).
        width: feature channels (KAIR ``nc``, 64).

    Returns:
        ``nn.Sequential`` mapping ``(B, channels, H, W)`` to ``(B, channels, H, W)``, initialised as KAIR
        initialises it (from torch's global RNG: seed it first).

    Raises:
        ValueError: a non-integer or too small ``channels``, ``depth`` or ``width``.
    """
    channels = _positive_int(channels, "channels")
    depth = _positive_int(depth, "depth", 3)
    width = _positive_int(width, "width")
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=True), nn.BatchNorm2d(width, **KAIR_BN),
                   nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=True))
    body = nn.Sequential(*layers)
    for module in body.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.orthogonal_(module.weight, gain=KAIR_INIT_GAIN)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.1, 1.0)
            nn.init.zeros_(module.bias)
    return body


def denoise(noisy: Tensor, body: nn.Module, *, tv_in: nn.Module | None = None,
            tv_out: nn.Module | None = None) -> dict[str, Tensor]:
    r"""DnCNN (Eq. 13) or DnCNN+TV (Eq. 14) on a batch of noisy images, with its intermediate images.

    .. math::
        \tilde I = \mathrm{Prox}^{2D}_{TV}(I, \lambda_{in}), \qquad
        E = \mathcal R(\tilde I) + \tilde I, \qquad
        \mathrm{DnCNNTV}(I) = \mathrm{Prox}^{2D}_{TV}(E, \lambda_{out})

    with :math:`\mathcal R = -\mathrm{body}` (KAIR's body predicts the noise). Without ``tv_in`` /
    ``tv_out`` the corresponding prox is the identity, which is Eq. 13.

    Args:
        noisy: noisy images I, ``(B, C, H, W)``, float, values around [0, 1] (not clipped).
        body: the residual network (:func:`dncnn_body`).
        tv_in, tv_out: the input and output TV layers, or None.

    Returns:
        ``{"input_tv": I~, "estimate": R(I~) + I~, "output": the final estimate}``, each ``(B, C, H, W)``.

    Raises:
        ValueError: ``noisy`` is not a 4-D floating tensor (the TV layers also reject NaN/inf).
    """
    if not isinstance(noisy, Tensor) or noisy.dim() != 4 or not noisy.is_floating_point():
        got = f"{noisy.dtype} {tuple(noisy.shape)}" if isinstance(noisy, Tensor) else type(noisy).__name__
        raise ValueError(f"noisy must be a floating (B, C, H, W) tensor, got {got}")
    input_tv = tv_in(noisy) if tv_in is not None else noisy
    estimate = input_tv - body(input_tv)
    output = tv_out(estimate) if tv_out is not None else estimate
    return {"input_tv": input_tv, "estimate": estimate, "output": output}


class DnCNN(nn.Module):
    """DnCNN, or DnCNN+TV with TV2D-Smooth layers at its input and output (Eq. 13-14).

    The body is built first, then the TV layers, so that a DnCNN and a DnCNN+TV built after the same
    ``torch.manual_seed`` start from the same conv and batch-norm weights.

    Args:
        channels: image channels (3).
        depth, width: as :func:`dncnn_body`.
        tv: add the input and output TV layers (Eq. 14).
        lam_init: initial lambda of both TV layers (trained; lambda = softplus(param), Eq. 3).
        tv_iters: Dykstra iterations of the 2D prox (the official code's default: 4).
        shared_lam: one lambda for all channels instead of one per channel.

    Shape:
        input ``(B, C, H, W)``, output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int = 3, *, depth: int = 17, width: int = 64, tv: bool = False,
                 lam_init: float = 0.01, tv_iters: int = 4, shared_lam: bool = False) -> None:
        super().__init__()
        self.body = dncnn_body(channels, depth=depth, width=width)
        self.tv = bool(tv)
        if self.tv:
            self.tv_in = TVLayer(channels, mode="smooth", direction="2d", lam_init=lam_init, shared=shared_lam,
                                 iters=tv_iters)
            self.tv_out = TVLayer(channels, mode="smooth", direction="2d", lam_init=lam_init, shared=shared_lam,
                                  iters=tv_iters)
        else:
            self.tv_in = self.tv_out = None

    def stages(self, noisy: Tensor) -> dict[str, Tensor]:
        """The intermediate images of :func:`denoise` (for Fig. 8)."""
        return denoise(noisy, self.body, tv_in=self.tv_in, tv_out=self.tv_out)

    def forward(self, noisy: Tensor) -> Tensor:
        return self.stages(noisy)["output"]

    def lambdas(self) -> dict[str, list[float]]:
        """The current lambda of the input and output TV layers, per channel (empty without TV)."""
        if not self.tv:
            return {}
        return {"input": self.tv_in.lam.detach().cpu().tolist(), "output": self.tv_out.lam.detach().cpu().tolist()}


# ------------------------------------------------------------------------------------------- training data
def augment(patch: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of KAIR ``utils_image.augment_img`` (mode 0 = identity), on ``(H, W, C)``.

    Modes 0-3 rotate by ``mode`` quarter turns; modes 4-7 flip up-down and then rotate by ``mode - 4``
    quarter turns. Together they are the 8 symmetries of the square, as KAIR's 8 modes are.
    """
    if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)) or not 0 <= mode < 8:
        raise ValueError(f"mode must be an int in [0, 8), got {mode!r}")
    out = np.flipud(patch) if mode >= 4 else patch
    return np.ascontiguousarray(np.rot90(out, k=int(mode) % 4))


def patch_batch(images: Sequence[np.ndarray], step: int, *, batch: int, patch: int, sigma: float,
                seed: int) -> tuple[Tensor, Tensor]:
    """Training batch ``step``: clean patches and their noisy versions, a pure function of (seed, step).

    As KAIR's ``DatasetDnCNN`` with a shuffled loader: sample ``k = step * batch + j`` of the stream is
    image ``perm_e[k mod N]`` with ``perm_e`` the permutation of epoch ``e = k // N``; from it a random
    ``patch`` x ``patch`` crop and a random flip/rotation (:func:`augment`); then ``+ N(0, (sigma/255)^2)``
    per pixel, not clipped. Being a function of (seed, step) only, the batches are the same for every
    model trained with the same seed, and a resumed training sees the batches it would have seen.

    Args:
        images: clean training images, uint8 ``(H, W, 3)``, each at least ``patch`` on both sides.
        step: training step (>= 0).
        batch, patch: batch size and patch side.
        sigma: noise standard deviation in 0-255 units.
        seed: the training seed.

    Returns:
        ``(clean, noisy)``, float32 ``(batch, 3, patch, patch)``; clean in [0, 1].

    Raises:
        ValueError: no images, an image smaller than ``patch``, or bad sizes.
    """
    if not images:
        raise ValueError("images: expected at least one training image, got none")
    batch = _positive_int(batch, "batch")
    patch = _positive_int(patch, "patch")
    count = len(images)
    clean = np.empty((batch, patch, patch, images[0].shape[2]), np.float32)
    picker = np.random.default_rng([seed, 1, step])
    epochs: dict[int, np.ndarray] = {}
    for j in range(batch):
        k = step * batch + j
        epoch = k // count
        if epoch not in epochs:
            epochs[epoch] = np.random.default_rng([seed, 0, epoch]).permutation(count)
        image = images[int(epochs[epoch][k % count])]
        height, width = image.shape[:2]
        if height < patch or width < patch:
            raise ValueError(f"images: every training image must be at least {patch}x{patch}, got {height}x{width}")
        top = int(picker.integers(0, height - patch + 1))
        left = int(picker.integers(0, width - patch + 1))
        mode = int(picker.integers(0, 8))
        clean[j] = augment(image[top:top + patch, left:left + patch], mode) / np.float32(255.0)
    noise = picker.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    clean_t = torch.from_numpy(clean).permute(0, 3, 1, 2).contiguous()
    noisy_t = torch.from_numpy(clean + noise).permute(0, 3, 1, 2).contiguous()
    return clean_t, noisy_t


def train_denoiser(model: DnCNN, images: Sequence[np.ndarray], *, sigma: float, iterations: int, batch: int,
                   patch: int, lr: float, milestones: Iterable[int] = (), gamma: float = 0.5, seed: int,
                   device: str = "cpu", checkpoint=None, warmup_steps: int = 5,
                   progress: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Train ``model`` as KAIR's ``main_train_dncnn.py`` does (L1 loss, Adam, MultiStepLR), resumably.

    Args:
        model: the network, freshly built (its weights are replaced by the checkpoint's on resume).
        images: clean training images (see :func:`patch_batch`).
        sigma: training noise level (0-255 units).
        iterations: optimizer steps.
        batch, patch: batch size and patch side.
        lr: Adam learning rate; ``milestones`` / ``gamma``: MultiStepLR (KAIR halves the rate).
        seed: the training seed (batches and noise; the initial weights come from the caller's seed).
        device: where to train.
        checkpoint: a :class:`suite.harness.trained.Checkpoint` (or None): resumed from when it holds a
            state, saved to when ``checkpoint.due(step)``.
        warmup_steps: steps left out of the time per step (allocator and kernel warm-up).
        progress: a tqdm-like wrapper of the step range.

    Returns:
        ``{"state": state_dict, "history": {"loss": [...], "step_ms": [...], "lambdas": {...},
        "steps": iterations, "train_images": N, "resumed_at": step or None}}``; ``step_ms`` holds the
        wall time of each step run in this process (forward, backward and optimizer step).

    Raises:
        ValueError: bad ``iterations``, ``batch`` or ``patch``, or no images.
    """
    iterations = _positive_int(iterations, "iterations")
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma)
    history: dict[str, Any] = {"loss": [], "step_ms": [], "resumed_at": None}
    start = 0
    state = checkpoint.resume(model, optimizer, scheduler) if checkpoint is not None else None
    if state is not None:
        history = dict(state["history"])
        start = int(state["step"])
        history["resumed_at"] = start
    loss_fn = nn.L1Loss()
    # a short run (smoke) keeps half of its steps timed
    warmup_steps = min(warmup_steps, (iterations - start) // 2)
    steps = range(start, iterations)
    for step in (progress(steps, desc="train", total=iterations - start) if progress else steps):
        clean, noisy = patch_batch(images, step, batch=batch, patch=patch, sigma=sigma, seed=seed)
        clean, noisy = clean.to(device), noisy.to(device)
        began = time.perf_counter()
        loss = loss_fn(model(noisy), clean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = (time.perf_counter() - began) * 1e3
        history["loss"].append(float(loss.detach()))
        if step - start >= warmup_steps:
            history["step_ms"].append(elapsed)
        if checkpoint is not None and step + 1 < iterations and checkpoint.due(step + 1):
            checkpoint.save_training(step=step + 1, model=model, optimizer=optimizer, scheduler=scheduler,
                                     history=history)
    model.eval()
    history.update(steps=iterations, train_images=len(images), lambdas=model.lambdas())
    return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "history": history}


# ------------------------------------------------------------------------------------------- test protocol
def center_crop(image: np.ndarray, side: int | None) -> np.ndarray:
    """The central ``side`` x ``side`` window of ``(H, W, ...)`` (the image itself when ``side`` is None
    or not smaller than the image)."""
    if side is None:
        return image
    side = _positive_int(side, "side")
    height, width = image.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return image[top:top + side, left:left + side]


@torch.no_grad()
def evaluate(model: nn.Module, samples: Iterable[Mapping[str, Any]], *, device: str = "cpu",
             crop: int | None = None) -> dict[str, Any]:
    """PSNR of ``model`` on noisy/clean pairs by the KAIR protocol, per image.

    Args:
        model: maps ``(1, 3, H, W)`` noisy to restored images (in eval mode).
        samples: dicts with ``name``, ``clean`` (uint8 ``(H, W, 3)``) and ``noisy`` (float32 ``(H, W, 3)``,
            :func:`suite.data.readers.kair_noisy`: seed 0 per image, not clipped).
        device: where to run the model.
        crop: evaluate the central ``crop`` x ``crop`` window of each pair (smoke tests only; the noise
            is the full image's, so the pixels kept are the same as in the full-image protocol).

    Returns:
        ``{"names": [...], "psnr": np.ndarray (N,)}`` in dB.

    Raises:
        ValueError: no samples, or a sample whose clean and noisy shapes differ.
    """
    model.eval()
    names, values = [], []
    for sample in samples:
        clean, noisy = center_crop(sample["clean"], crop), center_crop(sample["noisy"], crop)
        if clean.shape != noisy.shape or clean.ndim != 3:
            raise ValueError(f"sample {sample.get('name')!r}: clean {clean.shape} and noisy {noisy.shape} must be "
                             "equal (H, W, C) shapes")
        x = torch.from_numpy(np.ascontiguousarray(noisy, np.float32)).permute(2, 0, 1)[None].to(device)
        restored = model(x)[0].permute(1, 2, 0).cpu().numpy()
        values.append(psnr(to_uint8(restored), clean, data_range=255.0))
        names.append(sample["name"])
    if not values:
        raise ValueError("samples: expected at least one test image, got none")
    return {"names": names, "psnr": np.asarray(values, np.float64)}


def mean_and_error(values: np.ndarray) -> tuple[float, float | None]:
    """Mean and standard error of the mean (None for a single value)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def paired_step_times(models: Mapping[str, nn.Module], images: Sequence[np.ndarray], *, steps: int, batch: int,
                      patch: int, sigma: float, lr: float, seed: int, device: str = "cpu",
                      warmup_steps: int = 2) -> dict[str, np.ndarray]:
    """Wall time (ms) of one training step (forward, L1 loss, backward, Adam step) of each model, the
    models taking turns on the same batches, so that both see the same machine load.

    Args:
        models: name -> network (trained in place: pass throw-away copies).
        images, batch, patch, sigma, seed: the batches, as :func:`patch_batch`.
        steps: timed steps per model after ``warmup_steps`` untimed ones.
        lr: Adam learning rate.
        device: where to run.

    Returns:
        name -> ``(steps,)`` array of milliseconds.
    """
    steps = _positive_int(steps, "steps")
    optimizers = {name: torch.optim.Adam(m.to(device).train().parameters(), lr=lr) for name, m in models.items()}
    loss_fn = nn.L1Loss()
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(warmup_steps + steps):
        clean, noisy = patch_batch(images, step, batch=batch, patch=patch, sigma=sigma, seed=seed)
        clean, noisy = clean.to(device), noisy.to(device)
        for name, model in models.items():
            began = time.perf_counter()
            loss = loss_fn(model(noisy), clean)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if step >= warmup_steps:
                times[name].append((time.perf_counter() - began) * 1e3)
    return {name: np.asarray(values) for name, values in times.items()}
