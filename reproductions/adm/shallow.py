"""The "shallow" experiment of Fig. 2: grid CRF vs dense CRF segmentation from scribbles (Fig. 1,
the 1-D cost curves, is :mod:`.fig1`).

For each image, foreground / background colour histograms from the scribbled pixels give the
unaries ``-log P(I_p | label)`` (the same for both models). The grid CRF (nearest-neighbour
Potts, Eq. 2 weights on the 8-neighbourhood) is minimised exactly by one s-t cut with the
scribbles as hard constraints; the dense CRF (Eq. 3 kernel) by mean-field, scribbles clamped.
Both are scored by IoU of the foreground with the ground-truth mask, its void band ignored
(GrabCut's 128 band; the generated scenes' 255 band).

Parameters are given for images with a long side of 480 px (the GrabCut photographs) and
transported to each image as in ``settings.py``, with ``s = long side / 480``: grid lambda =
50 s (GrabCut's gamma = 50), dense sigma_xy = 80 s, sigma_rgb = 13, weight 10 / s^2 and 5
mean-field iterations (the defaults of Krahenbuhl & Koltun's DenseCRF code). Data:

* ``GrabCut + GSC``: the 50 GrabCut images with the first set of robot-user scribbles of
  Andrade & Carrera (the GSC initial scribbles), datasets ``gsc-scribbles`` and ``grabcut``;
* ``generated``: the validation scenes of ``mini-masks``, the main object against the rest,
  seeds from the full-length ScribbleSup-style scribbles.

The IoU is the mean over images; its +- is the standard error of that mean.
"""
from __future__ import annotations

import logging

import numpy as np

from metrics.segmentation import iou
from suite.harness import experiment
from suite.solvers import crf, graphcut

from . import data as adm_data
from . import seeded
from .settings import PROFILES

log = logging.getLogger(__name__)

ROWS = {"grid": "grid CRF (graph cut)", "dense": "dense CRF (mean-field)"}
COLUMNS = {"grabcut-gsc": "GrabCut + GSC scribbles", "generated": "generated scenes"}
DATASETS = {"grabcut-gsc": ["gsc-scribbles", "grabcut"], "generated": ["mini-masks"]}
REFERENCE_SIDE = 480

_SHALLOW = {
    "grid_smoothness": 50.0, "dense_weight": 10.0, "dense_sigma_xy": 80.0, "dense_sigma_rgb": 13.0,
    "mean_field_iterations": 5, "bins": 16, "overlays": 3,
}
SHALLOW_PROFILES = {
    "smoke": {**_SHALLOW, "scale": 0.25, "images": 2, "seeds": [0]},
    "mini": {**_SHALLOW, "scale": 0.5, "images": None, "seeds": [0]},
    "full": {**_SHALLOW, "scale": 1.0, "images": None, "seeds": [0]},
}
for _name, _settings in SHALLOW_PROFILES.items():
    _settings["num_classes"] = PROFILES["smoke"]["num_classes"]


def seeds_from_gsc(scribbles: np.ndarray) -> np.ndarray:
    """GSC palette (0 none, 1 foreground, 2 background) -> 1 / 0 / 255 (int64 labels)."""
    from suite.data.readers import gsc_seeds

    return gsc_seeds(scribbles).astype(np.int64)


def seeds_from_mask(scribbles: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Class scribbles of a generated scene -> 1 on the main object, 0 elsewhere, 255 unseeded/void."""
    scribbles, mask = np.asarray(scribbles), np.asarray(mask)
    if scribbles.shape != mask.shape:
        raise ValueError(f"scribbles: expected shape {mask.shape} (the mask's), got {scribbles.shape}")
    labelled = (scribbles != 255) & (mask != 255)
    return np.where(labelled, (mask == 1).astype(np.int64), 255)


def _resize(image: np.ndarray, scale: float, *, nearest: bool) -> np.ndarray:
    import cv2

    if scale == 1.0:
        return image
    size = (max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale))))
    if nearest:
        return cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _resize_seeds(seeds: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return seeds
    size = (max(1, int(round(seeds.shape[0] * scale))), max(1, int(round(seeds.shape[1] * scale))))
    return adm_data.shrink_labels(seeds, size, num_classes=2).numpy()


def segment(image: np.ndarray, seeds: np.ndarray, settings, *, scale: float = 1.0,
            models: tuple[str, ...] = ("grid", "dense")) -> dict:
    """Foreground masks of the grid and the dense CRF at the image's native size.

    Args:
        image: ``(H, W, 3)`` uint8. seeds: ``(H, W)`` 1 foreground, 0 background, 255 none.
        settings: the shallow settings (module doc). scale: work at this fraction of the size.
        models: which of ``"grid"`` and ``"dense"`` to compute.

    Returns:
        ``{model: (H, W) bool}`` for each of ``models``.

    Raises:
        ValueError: shapes differ, or the seeds lack a foreground or a background stroke.
    """
    image, seeds = np.asarray(image), np.asarray(seeds)
    adm_data.validate_sample(image, scribbles=seeds, num_classes=2, name="shallow image")
    if not ((seeds == 0).any() and (seeds == 1).any()):
        raise ValueError("seeds: expected both foreground (1) and background (0) scribbles, got "
                         f"labels {sorted(set(np.unique(seeds).tolist()) - {255})}")
    small = _resize(image, scale, nearest=False).astype(np.float64)
    small_seeds = _resize_seeds(seeds, scale)
    s = max(small.shape[:2]) / REFERENCE_SIDE
    unaries = seeded.colour_unaries(small, small_seeds, 2, bins=settings["bins"])
    found = {}
    if "grid" in models:
        weights = graphcut.grid_weights(small, neighbourhood=8, smoothness=settings["grid_smoothness"] * s)
        found["grid"], _ = graphcut.binary_graphcut(unaries, weights, hard=small_seeds)
    if "dense" in models:
        q = crf.dense_crf_mean_field(unaries, small, weight=settings["dense_weight"] / s**2,
                                     sigma_xy=settings["dense_sigma_xy"] * s, sigma_rgb=settings["dense_sigma_rgb"],
                                     iterations=settings["mean_field_iterations"], seeds=small_seeds)
        found["dense"] = q.argmax(axis=2)
    out = {}
    for name, labels in found.items():
        if scale != 1.0:
            labels = _resize(labels.astype(np.uint8), 1.0 / scale, nearest=True)
            labels = labels[: image.shape[0], : image.shape[1]]
            if labels.shape != image.shape[:2]:
                import cv2

                labels = cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        out[name] = labels.astype(bool)
    return out


def samples(source: str, roots: dict, settings):
    """Yield ``(name, image, seeds, truth)`` with truth 0/1 and 255 = void."""
    from suite.data.readers import VOC2012, GrabCut, GSCScribbles, ScribbleSup

    limit = settings.get("images")
    if source == "grabcut-gsc":
        images_root = GrabCut(roots["grabcut"]).base / "data_GT"
        reader = GSCScribbles(roots["gsc-scribbles"], scribble_set=1, images_root=images_root)
        for index in range(len(reader) if limit is None else min(limit, len(reader))):
            sample = reader[index]
            truth = np.where(sample["void"], 255, sample["mask"].astype(np.int64))
            yield sample["name"], sample["image"], seeds_from_gsc(sample["scribbles"]), truth
    else:
        root = roots["mini-masks"]
        masks = VOC2012(root, split="val")
        scribbles = ScribbleSup(root, length=1.0, split="val")
        by_name = {name: i for i, name in enumerate(scribbles.items)}
        count = len(masks) if limit is None else min(limit, len(masks))
        for index in range(count):
            sample = masks[index]
            if sample.get("mask") is None or sample["name"] not in by_name:
                log.warning("adm.shallow: skipping %s: no main-object mask or scribbles", sample["name"])
                continue
            strokes = scribbles[by_name[sample["name"]]]["scribbles"]
            yield sample["name"], sample["image"], seeds_from_mask(strokes, sample["mask"]), sample["mask"].astype(np.int64)


@experiment(
    "adm.shallow",
    table="Fig. 2 (shallow)",
    title="Shallow segmentation from scribbles: grid CRF (graph cut) vs dense CRF (mean-field), IoU",
    grid=lambda settings: [{"data": "grabcut-gsc"}, {"data": "generated"}],
    profiles=SHALLOW_PROFILES,
    datasets=lambda cell, settings: DATASETS[cell["data"]],
    plots=lambda frame: {"overlays": plot_overlays(frame)},
    protocol=__doc__.split("\n\n", 1)[1],
)
def shallow(ctx, cell):
    source = cell["data"]
    column = COLUMNS[source]
    missing = adm_data.missing_datasets(ctx, DATASETS[source])
    if missing:
        for key, row in ROWS.items():
            ctx.not_run(row=row, column=column, metric="iou", unit="%", reason="; ".join(missing))
        return ctx.records
    roots = {d: ctx.data.path(d) for d in DATASETS[source]}
    scores = {"grid": [], "dense": []}
    skipped = []
    for name, image, seeds, truth in samples(source, roots, ctx.settings):
        try:
            masks = segment(image, seeds, ctx.settings, scale=ctx.settings["scale"] if source == "grabcut-gsc" else 1.0)
        except ValueError as error:
            log.warning("adm.shallow: skipping %s: %s", name, error)
            skipped.append(f"{name} ({error})")
            continue
        for key in scores:
            scores[key].append(100.0 * iou(masks[key], truth, ignore_index=255))
    note = f"{len(skipped)} images skipped: {'; '.join(skipped[:3])}" if skipped else None
    for key, row in ROWS.items():
        if scores[key]:
            values = np.asarray(scores[key])
            # std: the standard error of the mean IoU over the images.
            ctx.record(row=row, column=column, metric="iou", value=float(values.mean()),
                       std=float(values.std() / np.sqrt(len(values))), n=len(values), unit="%",
                       higher_is_better=True, note=note)
        else:
            ctx.not_run(row=row, column=column, metric="iou", unit="%", reason=note or "no image")
    return ctx.records


def plot_overlays(frame):
    """A few images: seeds, grid-CRF and dense-CRF foreground (recomputed, deterministic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from suite.data import registry

    profile = str(frame.profile.iloc[0]) if "profile" in frame and len(frame) else "mini"
    settings = SHALLOW_PROFILES[profile]
    rows = []
    for source, ids in DATASETS.items():
        if registry.find(ids[0]) is None or any(registry.find(i) is None for i in ids):
            continue
        roots = {d: registry.locate(d) for d in ids}
        for name, image, seeds, truth in samples(source, roots, {**settings, "images": settings["overlays"] + 2}):
            if len(rows) >= 2 * settings["overlays"] or not ((seeds == 0).any() and (seeds == 1).any()):
                continue
            masks = segment(image, seeds, settings, scale=settings["scale"] if source == "grabcut-gsc" else 1.0)
            rows.append((f"{COLUMNS[source]}: {name}", image, seeds, truth, masks))
            if sum(r[0].startswith(COLUMNS[source]) for r in rows) >= settings["overlays"]:
                break
    if not rows:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.text(0.5, 0.5, "no shallow dataset present", ha="center", va="center")
        ax.axis("off")
        return fig
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 2.6 * len(rows)), squeeze=False)
    for (title, image, seeds, truth, masks), ax_row in zip(rows, axes):
        seed_view = image.copy()
        seed_view[seeds == 1] = (255, 0, 0)
        seed_view[seeds == 0] = (0, 0, 255)
        ax_row[0].imshow(seed_view)
        ax_row[0].set_title(f"{title}\nscribbles (red fg, blue bg)", fontsize=7)
        for ax, key in zip(ax_row[1:], ("grid", "dense")):
            overlay = image.astype(np.float64) * 0.45
            overlay[masks[key]] = 0.45 * image[masks[key]] + 0.55 * np.array([255.0, 200.0, 0.0])
            score = 100.0 * iou(masks[key], truth, ignore_index=255)
            ax.imshow(overlay.astype(np.uint8))
            ax.set_title(f"{ROWS[key]}: IoU {score:.1f}%", fontsize=7)
        for ax in ax_row:
            ax.axis("off")
    fig.tight_layout()
    return fig
