"""LSM behind the task contracts of the leaderboards and the experiments (adapters), and the
joint LSM registered as a leaderboard method of each task.

Adapters (``predict_*``) turn the tasks' numpy contracts (``suite.harness.methods.TASKS``) into
``LSM.forward(task, inputs)`` calls and back:

* interactive: image ``(H, W, 3)`` uint8 and scribbles (1 foreground, 0 background, 255 none) ->
  ``(H, W)`` bool, the pixels whose solution ``x > 0``, i.e. ``P(fg) = (tanh x + 1) / 2 > 0.5``;
* video: frames ``(T, H, W, 3)`` and the first mask -> ``(T, H, W)`` bool masks, frame by frame,
  each frame with the references the model was trained with: the first frame with its given
  mask and the previous frame with its estimate;
* stereo: left, right -> the left view's disparity ``d = -u`` of the left-to-right solve
  (``target = left, source = right``); ``direction='right-to-left'`` returns the right view's
  disparity ``+u`` of the solve with ``target = right, source = left``;
* flow: image1, image2 -> ``(H, W, 2)`` flow ``(u, v)``.

Inputs are padded (edge replication, seeds with "none") to a multiple of the model's coarsest
stride and the solution cropped back, so any image size is accepted.

Leaderboard methods (``lsm-joint``): the joint model (all four tasks, seed 0) of the profile the
generated data was built for (``meta.json`` of ``mini-masks``: ``smoke`` data gives the smoke
model, otherwise ``mini``; ``ENERGYBENCH_LSM_PROFILE`` overrides), read from the model cache
that the ``lsm.*`` experiments fill, or trained on demand with the same key.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from suite.harness.methods import TASKS, method

from . import data as lsm_data

_CITATION = "Tang, Tan. Learning Subspace Minimization for Low-level Vision. CVPR 2020"
DEFAULT_MULTIPLE = 32


# ---------------------------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------------------------
def _multiple(model) -> int:
    return int(getattr(model, "size_multiple", getattr(getattr(model, "config", None), "size_multiple",
                                                            DEFAULT_MULTIPLE)))


def _pad(tensor: torch.Tensor, height: int, width: int, *, value: float | None = None) -> torch.Tensor:
    bottom, right = height - tensor.shape[-2], width - tensor.shape[-1]
    if bottom == 0 and right == 0:
        return tensor
    shape = tensor.shape
    flat = tensor.reshape(-1, *shape[-3:]) if tensor.dim() > 4 else tensor
    if value is None:
        padded = F.pad(flat.float(), (0, right, 0, bottom), mode="replicate").to(tensor.dtype)
    else:
        padded = F.pad(flat.float(), (0, right, 0, bottom), mode="constant", value=float(value)).to(tensor.dtype)
    return padded.reshape(*shape[:-2], height, width)


def padded(model, inputs: dict[str, torch.Tensor], *, shape: tuple[int, int]) -> dict[str, torch.Tensor]:
    """``inputs`` padded to the model's size multiple, on the model's device."""
    height, width = lsm_data.pad_to_multiple(*shape, _multiple(model))
    device = next(model.parameters()).device
    out = {}
    for key, value in inputs.items():
        # seeds pad with "no seed"; images and reference masks repeat their border
        value = _pad(value, height, width, value=0.0 if key in ("foreground", "background") else None)
        out[key] = value.to(device)
    return out


def forward(model, task: str, inputs: dict[str, torch.Tensor], *, shape: tuple[int, int]) -> torch.Tensor:
    """``model.forward(task, inputs)`` on inputs padded to the model's size multiple; returns the
    solution cropped back to ``shape`` (H, W), detached, on the CPU."""
    with torch.no_grad():
        solution = model(task, padded(model, inputs, shape=shape)).solution
    return solution[..., : shape[0], : shape[1]].detach().cpu()


def _check_image(image, name: str) -> np.ndarray:
    from suite.leaderboards.benchmarks import rgb_image

    return rgb_image(image, name)


def predict_interactive(model, image: Any, scribbles: Any) -> np.ndarray:
    """Foreground mask ``(H, W)`` bool from the image and the seeds (1 / 0 / 255).

    Raises:
        ValueError: image not ``(H, W, 3)`` uint8, or scribbles of another shape.
    """
    image = _check_image(image, "image")
    scribbles = np.asarray(scribbles)
    if scribbles.shape != image.shape[:2]:
        raise ValueError(f"scribbles: expected the image's shape {image.shape[:2]}, got {scribbles.shape}")
    inputs = {"image": lsm_data.image_tensor(image)[None],
              "foreground": torch.from_numpy(scribbles == 1)[None, None],
              "background": torch.from_numpy(scribbles == 0)[None, None]}
    return (forward(model, "interactive", inputs, shape=image.shape[:2])[0, 0] > 0).numpy()


def predict_video(model, frames: Any, first_mask: Any, *, references: int = 2) -> np.ndarray:
    """Masks ``(T, H, W)`` bool of a sequence from its first mask (frame 0 keeps the given mask).

    Raises:
        ValueError: frames not ``(T, H, W, 3)`` uint8 or a first mask of another size.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8, got shape {frames.shape} dtype {frames.dtype}")
    first_mask = np.asarray(first_mask).astype(bool)
    if first_mask.shape != frames.shape[1:3]:
        raise ValueError(f"first_mask: expected shape {frames.shape[1:3]}, got {first_mask.shape}")
    masks = [first_mask]
    images = [lsm_data.image_tensor(frame) for frame in frames]
    for t in range(1, len(frames)):
        chosen = [(0, masks[0]), (t - 1, masks[t - 1])][:references]
        inputs = {"image": images[t][None],
                  "reference_images": torch.stack([images[i] for i, _ in chosen])[None],
                  "reference_masks": torch.stack([torch.from_numpy(m)[None].float() for _, m in chosen])[None]}
        masks.append((forward(model, "video", inputs, shape=frames.shape[1:3])[0, 0] > 0).numpy())
    return np.stack(masks)


def predict_stereo(model, left: Any, right: Any, *, direction: str = "left-to-right") -> np.ndarray:
    """Disparity ``(H, W)`` float32 in pixels: of the left view (left-to-right, ``d = -u``) or
    of the right view (right-to-left, ``d = +u``), both positive for a scene in front.

    Raises:
        ValueError: images not ``(H, W, 3)`` uint8 of one shape, or an unknown direction.
    """
    left, right = _check_image(left, "left"), _check_image(right, "right")
    if left.shape != right.shape:
        raise ValueError(f"right: expected the shape of left {left.shape}, got {right.shape}")
    pair = lsm_data.stereo_pair({"left": left, "right": right, "disparity": np.zeros(left.shape[:2], np.float32),
                                 "disparity_right": np.zeros(left.shape[:2], np.float32)}, direction)
    inputs = {"target": lsm_data.image_tensor(pair["target"])[None],
              "source": lsm_data.image_tensor(pair["source"])[None]}
    u = forward(model, "stereo", inputs, shape=left.shape[:2])[0, 0].numpy()
    sign = -1.0 if direction == "left-to-right" else 1.0
    return np.ascontiguousarray(sign * u, dtype=np.float32)


def predict_flow(model, image1: Any, image2: Any) -> np.ndarray:
    """Flow ``(H, W, 2)`` float32 ``(u, v)`` from ``image1`` to ``image2``.

    Raises:
        ValueError: images not ``(H, W, 3)`` uint8 of one shape.
    """
    image1, image2 = _check_image(image1, "image1"), _check_image(image2, "image2")
    if image1.shape != image2.shape:
        raise ValueError(f"image2: expected the shape of image1 {image1.shape}, got {image2.shape}")
    inputs = {"image1": lsm_data.image_tensor(image1)[None], "image2": lsm_data.image_tensor(image2)[None]}
    flow = forward(model, "flow", inputs, shape=image1.shape[:2])[0].numpy()
    return np.ascontiguousarray(np.moveaxis(flow, 0, -1), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# The joint model for the leaderboards
# ---------------------------------------------------------------------------------------------
_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def leaderboard_profile() -> str:
    """``ENERGYBENCH_LSM_PROFILE``, else the profile the generated sets present were built at
    (``meta.json`` of the first of ``mini-masks``, ``mini-video``, ``mini-stereo``, ``mini-flow`` found,
    then any other generated set): ``smoke`` data gives the smoke model, otherwise ``mini``."""
    chosen = os.environ.get("ENERGYBENCH_LSM_PROFILE")
    if chosen:
        if chosen not in ("smoke", "mini", "full"):
            raise ValueError(f"ENERGYBENCH_LSM_PROFILE: expected smoke, mini or full, got {chosen!r}")
        return chosen
    from suite.data import registry

    preferred = ["mini-masks", "mini-video", "mini-stereo", "mini-flow"]
    others = [d for d in registry.DATASETS if registry.DATASETS[d].kind == "generated" and d not in preferred]
    for dataset in preferred + others:
        try:
            meta = json.loads((registry.locate(dataset) / "meta.json").read_text())
        except (FileNotFoundError, ValueError, OSError):
            continue
        return "smoke" if meta.get("profile") == "smoke" else "mini"
    return "mini"


def _ensure_generated(ids: list[str], profile: str) -> None:
    """Build the generated training sets that are absent (a leaderboard may run where only its own
    benchmark's data was built); real datasets are never built, their absence stays an error."""
    from suite.data import manage, registry

    missing = []
    for dataset in ids:
        try:
            registry.locate(dataset)
        except FileNotFoundError:
            if registry.get(dataset).kind == "generated":
                missing.append(dataset)
    if missing:
        manage.build(profile="smoke" if profile == "smoke" else "mini", root=registry.data_roots()[0], seed=0,
                     progress=False, workers=1, record=False, datasets=missing)


def joint_model(profile: str | None = None, *, seed: int = 0, device: str = "cpu"):
    """The joint LSM of ``profile`` and ``seed`` (cached per process; trained on demand)."""
    from suite.harness.context import Context, DataAccess

    from .settings import PROFILES
    from .trained import JOINT, trained_lsm

    profile = profile or leaderboard_profile()
    key = f"{profile}-{seed}-{device}"
    with _LOCK:
        if key not in _MODELS:
            settings = PROFILES[profile]
            ids = [d for t in JOINT for d in lsm_data.training_datasets(t, settings)]
            _ensure_generated(ids, profile)
            ctx = Context(paper="lsm", table="leaderboard", profile=profile, settings=settings, device=device,
                          seed=seed, data=DataAccess(ids))
            _MODELS[key] = trained_lsm(ctx, tasks=JOINT).model
        return _MODELS[key]


_SETTINGS = ("the joint model (all four tasks, seed 0) of the profile the generated data was built at, from the "
             "lsm.* model cache (trained on demand); paper's K (2, 4, 8, 16) and iterations (1, 6, 4, 3)")


@method("lsm-joint", task="interactive-segmentation", kind="paper", citation=_CITATION, settings=_SETTINGS)
def lsm_interactive(image: np.ndarray, scribbles: np.ndarray) -> np.ndarray:
    return predict_interactive(joint_model(), image, scribbles)


@method("lsm-joint", task="stereo", kind="paper", citation=_CITATION,
        settings=_SETTINGS + "; left-to-right solve, no disparity range (max_disparity unused)")
def lsm_stereo(left: np.ndarray, right: np.ndarray, *, max_disparity: float) -> np.ndarray:
    return predict_stereo(joint_model(), left, right)


@method("lsm-joint", task="flow", kind="paper", citation=_CITATION, settings=_SETTINGS)
def lsm_flow(image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
    return predict_flow(joint_model(), image1, image2)


if "video-segmentation" in TASKS:  # the video task of suite.leaderboards.video, once it exists
    @method("lsm-joint", task="video-segmentation", kind="paper", citation=_CITATION, settings=_SETTINGS)
    def lsm_video(frames: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
        return predict_video(joint_model(), frames, first_mask)
