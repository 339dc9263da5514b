"""Fig. 13: the learned basis vectors, and how much of the ground truth lies in their span.

The paper's intuition (Sec. 1, Sec. 4.5) is that the solution of a low-level task is composed of
a few layers (motion layers for flow, foreground / background for segmentation) and that the
generated subspace V captures them; Fig. 13 shows some basis vectors as heat maps and states no
number. Our quantitative check is the relative projection residual

    rho = ||(I - P) x_gt|| / ||x_gt||,    P = V (V'V)^-1 V',

at the finest pyramid level (after its last iteration), where x_gt is the ground truth brought
to that level: for flow the ground-truth (u, v) area-resized with u scaled by w / W and v by
h / H, u projected on V_x and v on V_y (rho over both components together); for interactive
segmentation the +-1 label image tau(x) = 2 mask - 1 (``tau = tanh`` saturates there), void and
invalid pixels left out. rho = 0: the ground truth is in span(V); rho = 1: V is orthogonal to it.
The full model is compared with the variant without minimization context (Sec. 4.4 (b)) and
with a fixed basis of the same dimension K, the K lowest-frequency 2-D DCT images (no learning):
a learned V that holds the layers leaves less outside its span than a generic smooth basis.

Sources: every present one of :data:`SOURCES` (the generated validation split, always present
at mini, and the real samples: Sintel / Middlebury flow, GrabCut + GSC scribbles, the VGG
benchmark at full). The panel (the full model's first sample per task) is saved under the model
cache and drawn by :func:`reproductions.lsm.plots.subspace_panel`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from suite.harness.trained import cache_root

from . import data as lsm_data
from .methods import padded

#: Datasets the residual is measured on, per ``settings["data"]`` and task (every present one).
SOURCES = {
    "generated": {"flow": ("mini-flow", "mpi-sintel", "middlebury-flow"), "interactive": ("mini-masks", "gsc-scribbles")},
    "paper": {"flow": ("mpi-sintel",), "interactive": ("vgg-interactive", "gsc-scribbles")},
}
#: The reference row: a fixed basis of the same K (no learning).
DCT_ROW = "DCT basis, same K (no learning)"
METRIC = "projection residual"
#: Basis vectors drawn per problem in the panel (those carrying most of the ground truth).
PANEL_VECTORS = 4


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


def _fit(basis: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    columns = basis.reshape(basis.shape[0], -1).T[valid.reshape(-1)]
    x = target.reshape(-1)[valid.reshape(-1)]
    if x.numel() == 0:
        return 0.0, 0.0, torch.zeros(basis.shape[0], dtype=basis.dtype)
    # gelsd: a rank-deficient V (repeated or vanishing vectors) still gives the least-squares
    # projection, i.e. P x with P the projector on span(V)
    coefficients = torch.linalg.lstsq(columns, x[:, None], driver="gelsd").solution[:, 0]
    rest = x - columns @ coefficients
    return float(rest.pow(2).sum()), float(x.pow(2).sum()), coefficients


def residual(basis: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """``(||(I - P) x||^2, ||x||^2)`` over the valid pixels, ``P`` the projection on span(basis).

    Shape: basis ``(K, h, w)``, target and valid ``(h, w)``.
    """
    rest, total, _ = _fit(basis, target, valid)
    return rest, total


def dct_basis(k: int, height: int, width: int) -> torch.Tensor:
    """The ``k`` lowest-frequency 2-D DCT-II images of an ``height x width`` grid, ordered by
    ``fy + fx`` then ``fy`` (the JPEG zig-zag's diagonals), the constant image first.

    Returns:
        ``(k, height, width)`` float64.

    Raises:
        ValueError: ``k`` is not in ``[1, height * width]``.
    """
    if not 1 <= k <= height * width:
        raise ValueError(f"k: expected 1 <= k <= {height * width} (height * width), got {k}")
    pairs = sorted(((fy, fx) for fy in range(height) for fx in range(width)), key=lambda p: (p[0] + p[1], p[0]))[:k]
    rows = np.arange(height)[:, None] + 0.5
    cols = np.arange(width)[None, :] + 0.5
    images = [np.cos(np.pi * fy * rows / height) * np.cos(np.pi * fx * cols / width) for fy, fx in pairs]
    return torch.from_numpy(np.stack(images)).double()


def _area(array: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(np.asarray(array).astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def _samples(ctx, task: str, dataset: str, limit: int):
    """(name, model inputs, image, targets at full size, valid at full size) per sample."""
    if task == "flow":
        for sample in lsm_data.flow_samples(ctx, dataset, limit):
            flow = np.nan_to_num(np.asarray(sample.truth["flow"], np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            image = sample.inputs["image1"]
            inputs = {"image1": lsm_data.image_tensor(image)[None],
                      "image2": lsm_data.image_tensor(sample.inputs["image2"])[None]}
            yield sample.name, inputs, image, [flow[..., 0], flow[..., 1]], np.asarray(sample.truth["valid"], bool)
        return
    if task != "interactive":
        raise ValueError(f"task: expected 'flow' or 'interactive', got {task!r}")
    if dataset == "vgg-interactive":
        from suite.data import registry
        from suite.data.readers import gsc_seeds

        reader = registry.get(dataset).open(ctx.data.path(dataset))
        scenes = ((s["name"], s["image"], gsc_seeds(s["scribbles"]),
                   np.where(s["void"], lsm_data.VOID, s["mask"]).astype(np.uint8))
                  for s in (reader[i] for i in range(len(reader) if limit is None else min(limit, len(reader)))))
    else:
        scenes = ((s.name, s.inputs["image"], s.inputs["scribbles"], s.truth["mask"])
                  for s in lsm_data.interactive_samples(ctx, dataset, limit))
    for name, image, seeds, truth in scenes:
        inputs = {"image": lsm_data.image_tensor(image)[None], "foreground": torch.from_numpy(seeds == 1)[None, None],
                  "background": torch.from_numpy(seeds == 0)[None, None]}
        yield name, inputs, image, [2.0 * (truth == 1) - 1.0], truth != lsm_data.VOID


def analyse(ctx, model, task: str, dataset: str, *, limit: int | None, keep_panel: bool) -> dict:
    """The projection residual of the model's finest-level basis and of the DCT basis of the
    same K, over the first ``limit`` samples of ``dataset`` with ground truth.

    Returns:
        ``{"residual": (mean, standard error, n), "dct": (mean, standard error, n), "level":
        (h, w, K), "panel": dict or None}``; the panel (with ``keep_panel``) holds the first
        sample's image, its ground truth at the level and the basis vectors carrying most of it.

    Raises:
        ValueError: unknown task, or a model without bases.
        lsm_data.DataUnavailable: the dataset is absent or no sample has ground truth.
    """
    learned, fixed, panel, level = [], [], None, None
    for name, inputs, image, targets_full, valid_full in _samples(ctx, task, dataset, limit):
        height, width = image.shape[:2]
        model_inputs = padded(model, inputs, shape=(height, width))
        with torch.no_grad():
            output = model(task, model_inputs)
        parts = finest_bases(output, task)
        padded_h, padded_w = next(iter(model_inputs.values())).shape[-2:]
        level_h, level_w = parts[0].shape[-2:]
        # the part of the level that covers the image (the rest covers the padding)
        crop_h = max(1, round(level_h * height / padded_h))
        crop_w = max(1, round(level_w * width / padded_w))
        valid = torch.from_numpy(_area(valid_full, crop_h, crop_w) > 0.999)
        if task == "flow":
            scale = (crop_w / width, crop_h / height)
            targets = [torch.from_numpy(_area(t, crop_h, crop_w) * s).double() for t, s in zip(targets_full, scale)]
        else:
            targets = [torch.from_numpy(np.where(_area(targets_full[0] > 0, crop_h, crop_w) >= 0.5, 1.0, -1.0))]
        k = parts[0].shape[1]
        reference = dct_basis(k, crop_h, crop_w)
        sums = np.zeros(4)
        chosen, labels = [], []
        for index, (basis, target) in enumerate(zip(parts, targets)):
            basis = basis[0, :, :crop_h, :crop_w]
            rest, total, coefficients = _fit(basis, target, valid)
            rest_dct, _, _ = _fit(reference, target, valid)
            sums += (rest, total, rest_dct, 0.0)
            weight = coefficients.abs() * basis.reshape(k, -1).norm(dim=1)
            for j in torch.argsort(weight, descending=True)[:PANEL_VECTORS].tolist():
                chosen.append(basis[j].numpy())
                labels.append(f"{'V_x' if task == 'flow' and index == 0 else 'V_y' if task == 'flow' else 'V'}"
                              f"[{j + 1}]")
        if sums[1] <= 0:
            continue  # a zero ground truth (no motion, or everything void) says nothing about V
        learned.append(float(np.sqrt(sums[0] / sums[1])))
        fixed.append(float(np.sqrt(sums[2] / sums[1])))
        level = (crop_h, crop_w, k)
        if keep_panel and panel is None:
            truth = np.stack([t.numpy() for t in targets]).astype(np.float32)
            panel = {"image": np.asarray(image), "truth": truth, "valid": valid.numpy(),
                     "bases": np.stack(chosen).astype(np.float32), "labels": np.asarray(labels),
                     "title": f"{task} on {dataset}: {name} (finest level {crop_w} x {crop_h}, K = {k})"}
    if not learned:
        raise lsm_data.DataUnavailable(f"{dataset}: no sample with ground truth for the residual")
    return {"residual": _mean(learned), "dct": _mean(fixed), "level": level, "panel": panel}


def _mean(values: list[float]) -> tuple[float, float | None, int]:
    array = np.asarray(values)
    error = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), error, len(array)


def save_panel(panel: dict, *, key: str) -> Path:
    """Write the panel arrays under the model cache (``<cache>/lsm/panels/``); returns the path."""
    folder = cache_root("lsm") / "panels"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = folder / f"{key.split('-')[0]}-{digest}.npz"
    temporary = path.with_name(f".{path.stem}.{digest}.tmp.npz")
    np.savez_compressed(temporary, **{name: np.asarray(value) for name, value in panel.items()})
    temporary.replace(path)  # whole or absent: a report never draws half a panel
    return path


def sources(settings) -> dict[str, tuple[str, ...]]:
    return SOURCES[settings["data"]]


def dataset_ids(cell, settings) -> list[str]:
    """Every dataset a cell may read: the sources (with their extras) and the joint model's
    training sets."""
    from .trained import JOINT

    ids = [d for task_sources in sources(settings).values() for d in task_sources]
    return sorted(set(lsm_data.with_extras(ids) + [d for t in JOINT for d in lsm_data.training_datasets(t, settings)]))


def run_cell(ctx, cell, *, row: str) -> list:
    """One cell of ``lsm.subspaces``: the joint model of ``cell["variant"]`` (cached, shared with
    the ablations), its residual on every present source per task, and (full model only) the
    DCT reference and the panel."""
    from .trained import JOINT, model_key, trained_lsm

    variant = cell["variant"]
    present = {task: [d for d in task_sources if ctx.data.present(d)
                      and all(ctx.data.present(e) for e in lsm_data.EXTRA_DATASETS.get(d, ()))]
               for task, task_sources in sources(ctx.settings).items()}
    try:
        trained = trained_lsm(ctx, tasks=JOINT, variant=variant)
    except lsm_data.DataUnavailable as error:
        for task, task_sources in sources(ctx.settings).items():
            for dataset in present[task] or task_sources[:1]:
                ctx.not_run(row=row, column=f"{task}: {dataset}", metric=METRIC, reason=str(error),
                            higher_is_better=False)
        return ctx.records
    limit = ctx.settings["subspace_samples"]
    limit = None if limit is None else int(limit)
    initialization = trained.initialization
    for task, task_sources in sources(ctx.settings).items():
        if not present[task]:
            ctx.not_run(row=row, column=f"{task}: {task_sources[0]}", metric=METRIC, higher_is_better=False,
                        reason=f"none of {list(task_sources)} is present")
            continue
        for dataset in present[task]:
            column = f"{task}: {dataset}"
            # the panel: the real sample when there is one (the paper draws real images)
            keep = variant == "full" and dataset == present[task][-1]
            try:
                result = analyse(ctx, trained.model, task, dataset, limit=limit, keep_panel=keep)
            except lsm_data.DataUnavailable as error:
                ctx.not_run(row=row, column=column, metric=METRIC, reason=str(error), higher_is_better=False)
                continue
            h, w, k = result["level"]
            # a model trained from random init says so (no ImageNet backbone here unless supplied)
            note = f"on {dataset}; finest level {w} x {h}, K = {k}; {initialization}"
            if result["panel"] is not None:
                path = save_panel(result["panel"], key=f"{task}-{model_key(ctx, tasks=JOINT, variant=variant)}-"
                                                        f"{dataset}")
                note += f"; panel {path}"
            mean, error, n = result["residual"]
            ctx.record(row=row, column=column, metric=METRIC, value=mean, std=error, n=n, unit="",
                       higher_is_better=False, note=note)
            if variant == "full":
                mean, error, n = result["dct"]
                ctx.record(row=DCT_ROW, column=column, metric=METRIC, value=mean, std=error, n=n, unit="",
                           higher_is_better=False, note=f"on {dataset}; the {k} lowest-frequency DCT images of the "
                                                        f"{w} x {h} level")
    return ctx.records
