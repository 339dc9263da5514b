"""Fig. 13: the learned basis vectors, and how much of the ground truth lies in their span.

The paper's intuition (Sec. 1, Sec. 4.5) is that the solution of a low-level task is composed of
a few layers (motion layers for flow, foreground / background for segmentation) and that the
generated subspace V captures them. Quantitatively: the relative projection residual

    rho = ||(I - P) x_gt|| / ||x_gt||,    P = V (V'V)^-1 V',

at the finest pyramid level (after its last iteration), where x_gt is the ground truth brought
to that level: for flow the ground-truth (u, v) area-resized with u scaled by w / W and v by
h / H, u projected on V_x and v on V_y (rho over both components together); for interactive
segmentation the +-1 label image tau(x) = 2 mask - 1 (``tau = tanh`` saturates there), void and
invalid pixels left out. rho = 0: the ground truth is in span(V); rho = 1: V is orthogonal to it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from suite.harness.trained import cache_root

from . import data as lsm_data
from .methods import padded


def finest_bases(output, task: str) -> list[torch.Tensor]:
    """The basis of the finest level as a list of ``(B, K, h, w)`` tensors: one for scalar
    tasks, ``[V_x, V_y]`` for flow.

    Raises:
        ValueError: the model returned no bases.
    """
    bases = getattr(output, "bases", None)
    if not bases:
        raise ValueError("the model's output has no bases (the 'implicit' variant has no subspace)")
    finest = bases[-1]
    while isinstance(finest, (list, tuple)) and finest and isinstance(finest[-1], (list, tuple)):
        finest = finest[-1]  # per-iteration lists: the last iteration
    if isinstance(finest, (list, tuple)):
        parts = [b for b in finest if torch.is_tensor(b)]
    elif isinstance(finest, dict):
        parts = [finest[k] for k in ("x", "y") if k in finest] or list(finest.values())
    else:
        parts = [finest]
    if task == "flow" and len(parts) == 1:
        if parts[0].dim() == 5:  # (B, 2, K, h, w)
            parts = [parts[0][:, 0], parts[0][:, 1]]
        else:  # (B, 2K, h, w): V_x then V_y
            half = parts[0].shape[1] // 2
            parts = [parts[0][:, :half], parts[0][:, half:]]
    return [p.detach().double().cpu() for p in parts]


def residual(basis: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """``(||(I - P) x||^2, ||x||^2)`` over the valid pixels, ``P`` the projection on span(basis).

    Shape: basis ``(K, h, w)``, target and valid ``(h, w)``.
    """
    columns = basis.reshape(basis.shape[0], -1).T[valid.reshape(-1)]
    x = target.reshape(-1)[valid.reshape(-1)]
    if x.numel() == 0:
        return 0.0, 0.0
    coefficients = torch.linalg.lstsq(columns, x[:, None], driver="gelsd").solution
    rest = x - (columns @ coefficients)[:, 0]
    return float(rest.pow(2).sum()), float(x.pow(2).sum())


def _area(array: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(array.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def analyse(ctx, model, task: str, dataset: str, *, limit: int, keep_panel: bool) -> dict:
    """The mean residual over ``limit`` samples of ``dataset`` and, with ``keep_panel``, the first
    sample's image and basis images (for the Fig. 13 panel)."""
    ratios, panel = [], None
    if task == "flow":
        samples = lsm_data.flow_samples(ctx, dataset, limit)
    elif task == "interactive":
        samples = lsm_data.interactive_samples(ctx, dataset, limit)
    else:
        raise ValueError(f"task: expected 'flow' or 'interactive', got {task!r}")
    for sample in samples:
        if task == "flow":
            image = sample.inputs["image1"]
            inputs = {"image1": lsm_data.image_tensor(image)[None],
                      "image2": lsm_data.image_tensor(sample.inputs["image2"])[None]}
        else:
            image = sample.inputs["image"]
            seeds = sample.inputs["scribbles"]
            inputs = {"image": lsm_data.image_tensor(image)[None],
                      "foreground": torch.from_numpy(seeds == 1)[None, None],
                      "background": torch.from_numpy(seeds == 0)[None, None]}
        height, width = image.shape[:2]
        with torch.no_grad():
            output = model(task, padded(model, inputs, shape=(height, width)))
        parts = finest_bases(output, task)
        padded_h, padded_w = lsm_data.pad_to_multiple(height, width, int(getattr(model, "size_multiple", 32)))
        level_h, level_w = parts[0].shape[-2:]
        # the part of the level that covers the image (the rest covers the padding)
        crop_h = max(1, round(level_h * height / padded_h))
        crop_w = max(1, round(level_w * width / padded_w))
        if task == "flow":
            flow = np.nan_to_num(np.asarray(sample.truth["flow"], np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            valid = _area(np.asarray(sample.truth["valid"]), crop_h, crop_w) > 0.999
            scale = (crop_w / width, crop_h / height)
            targets = [torch.from_numpy(_area(flow[..., c], crop_h, crop_w) * scale[c]).double() for c in (0, 1)]
        else:
            truth = sample.truth["mask"]
            valid = _area(truth != lsm_data.VOID, crop_h, crop_w) > 0.999
            targets = [torch.from_numpy(2.0 * (_area(truth == 1, crop_h, crop_w) >= 0.5) - 1.0).double()]
        valid_t = torch.from_numpy(valid)
        rest = total = 0.0
        for basis, target in zip(parts, targets):
            r, t = residual(basis[0, :, :crop_h, :crop_w], target, valid_t)
            rest, total = rest + r, total + t
        if total > 0:
            ratios.append(float(np.sqrt(rest / total)))
        if keep_panel and panel is None:
            stacked = torch.cat([p[0, :, :crop_h, :crop_w] for p in parts]).numpy()
            panel = {"image": _area(image, crop_h, crop_w).astype(np.uint8) if image.dtype == np.uint8 else image,
                     "bases": stacked.astype(np.float32), "name": f"{task}: {sample.name}"}
    if not ratios:
        raise lsm_data.DataUnavailable(f"{dataset}: no sample with ground truth for the residual")
    array = np.asarray(ratios)
    error = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else None
    return {"residual": (float(array.mean()), error, len(array)), "panel": panel}


def save_panel(panel: dict, *, key: str) -> Path:
    """Write the panel arrays under the model cache (``<cache>/lsm/panels/``); returns the path."""
    folder = cache_root("lsm") / "panels"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = folder / f"{key.split('-')[0]}-{digest}.npz"
    np.savez_compressed(path, image=panel["image"], bases=panel["bases"])
    return path
