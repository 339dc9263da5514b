"""Table 4 of Yeh et al. (CVPR 2022): edge detection, DexiNed vs DexiNed + TV (ODS / OIS / AP).

Networks and loss: :mod:`reproductions.tvlayers.dexined` (DexiNed as released by Soria et al.;
+TV = TV2D-Sharp with trainable lambda on the 2x, 4x and 8x side maps, TV2D-Smooth on the fused
map). Both rows train with the same data, budget and seeds: Adam (lr and weight decay of the
release's ``main.py``: 1e-4 and 1e-8 at full), random square crops with horizontal flips, the
release's mean-pixel subtraction, batch 8; the learning rate drops 10x at 10/17 and 15/17 of
the steps, as the release's 17 epochs do at epochs 10 and 15.

Evaluation: the averaged map DexiNed-a (see the network module), on each test image padded to a
multiple of 16 and cropped back, scored by the BSDS boundary benchmark of ``metrics.edges``
with its defaults (99 thresholds, maxDist 0.0075 of the diagonal, thinning, the matching of
``correspondPixels``). No non-maximum suppression is applied (the published numbers used
Dollar's ``edgesNms`` before the benchmark), so our absolute values are not comparable with
the paper's; both rows are evaluated identically.

Data. full: trained on BIPED ``train``, tested on BIPED ``test`` and on MDBD (edge annotations,
all images), as in the paper. mini: a stand-in -- BSDS500 (the real sample, through the data
registry as ``bsds500``) trained on its ``val`` split (100 images) and tested on the first
images of its ``test`` split, images and ground truths at half resolution (boundaries
max-pooled 2x2 and thinned); when ``bsds500`` is absent, the generated ``mini-edges`` set
(train / test splits). Training labels: the mean of the annotators' boundary maps, an edge
where at least 0.4 (2 of 5) of them mark it. smoke: ``mini-edges`` at the smoke size. Widths,
crops, steps and the number of test images are scaled down at mini; the code path is the same.

Also recorded: the learned lambdas of the TV layers, and the wall time per training step
(forward, loss, backward, update) of each model, measured inside the same training.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from metrics.edges import boundary_benchmark, thin_edges
from suite.harness import experiment
from suite.harness.threads import limit_threads
from suite.harness.trained import cached_training, training_payload

from .dexined import DexiNed, average_edge_map, dexined_loss, edge_labels, pad_to_stride
from .timing import step_time_ms

TABLE = "Table 4"
ROWS = {"dexined": "DexiNed", "dexined-tv": "+TV"}
METRICS = ("ods", "ois", "ap")
#: RGB order of the release's BGR mean pixel (103.939, 116.779, 123.68).
MEAN_PIXEL = (123.68, 116.779, 103.939)
AUTO = "auto"
COLUMN = {"biped": "BIPED", "mdbd": "MDBD", "bsds500": "BSDS500 (stand-in)",
          "mini-edges": "mini-edges (stand-in)"}

_COMMON = {"lr": 1e-4, "weight_decay": 1e-8, "batch_size": 8, "tv_lam_init": 0.05, "tv_iters": 4, "epochs": None,
           "up_features": 16, "eval_workers": 1, "threads": None, "test_images": None, "downscale": {}}

PROFILES = {
    # smoke: the same code on the smoke-sized generated set, a couple of steps (tests).
    "smoke": {**_COMMON, "data": "mini-edges", "widths": [4, 4, 8, 8, 8, 8], "up_features": 4,
              "crop": 32, "batch_size": 2, "steps": 2, "lr": 1e-3, "test_images": 1, "threads": 1,
              "seeds": [0]},
    # mini: BSDS500 (or mini-edges) stand-in, widths / 8, 64 x 64 crops, 960 steps, 3 seeds. Measured on
    # one quiet core (seed 0): ODS 0.45 at 240 steps, 0.54 at 480, 0.58 at 960; a step costs ~85 ms
    # without TV and ~105 ms with it; the two cells of a seed take ~210 s.
    "mini": {**_COMMON, "data": AUTO, "widths": [8, 16, 32, 64, 64, 32], "up_features": 8,
             "crop": 64, "steps": 960, "lr": 1e-3, "test_images": 24, "threads": 1,
             "downscale": {"bsds500": 2}, "seeds": [0, 1, 2]},
    # full: the release's widths and settings on BIPED (352 crops: the release's default size).
    "full": {**_COMMON, "data": "biped", "widths": list((64, 128, 256, 512, 512, 256)), "crop": 352,
             "steps": None, "epochs": 17, "eval_workers": 8, "seeds": [0]},
}
#: Settings that change a trained model (they enter the model-cache key).
TRAINING_KEYS = ("data", "widths", "up_features", "crop", "batch_size", "steps", "lr", "weight_decay",
                 "tv_lam_init", "tv_iters", "downscale", "epochs")


def training_dataset(settings) -> str:
    """The dataset trained on: the profile's, or for ``auto`` bsds500 when present else mini-edges."""
    if settings["data"] != AUTO:
        return settings["data"]
    from suite.data import registry

    return "bsds500" if registry.find("bsds500") is not None else "mini-edges"


def test_datasets(settings) -> list[str]:
    train = training_dataset(settings)
    return ["biped", "mdbd"] if train == "biped" else [train]


def _datasets(cell, settings):
    return sorted({training_dataset(settings), *test_datasets(settings)})


# --------------------------------------------------------------------------- data


def downscale_boundaries(boundaries: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """A binary boundary map at 1/factor resolution: max over factor x factor blocks (a
    boundary pixel survives when any pixel of its block is one), cropped to ``shape``, thinned."""
    from skimage.measure import block_reduce

    small = block_reduce(np.asarray(boundaries, bool), (factor, factor), np.max)[: shape[0], : shape[1]]
    return thin_edges(small)


def _resize_image(image: np.ndarray, factor: int) -> np.ndarray:
    import cv2

    height, width = image.shape[0] // factor, image.shape[1] // factor
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def load_edge_set(root, dataset: str, split: str, *, factor: int = 1, limit: int | None = None,
                  mdbd_task: str = "edges") -> list[dict]:
    """Samples ``{"image": (H, W, 3) float32 0-255, "gts": [bool (H, W)], "label": float (H, W)}``
    of one split of an edge dataset (BSDS layout, BIPED, MDBD), at 1/factor resolution."""
    from suite.data import readers

    if dataset in ("bsds500", "mini-edges"):
        reader = readers.BSDS500(root, split=split)
    elif dataset == "biped":
        reader = readers.BIPED(root, split=split)
    elif dataset == "mdbd":
        reader = readers.MDBD(root, task=mdbd_task)
    else:
        raise ValueError(f"dataset: expected bsds500, mini-edges, biped or mdbd, got {dataset!r}")
    samples = []
    for index in range(len(reader) if limit is None else min(limit, len(reader))):
        sample = reader[index]
        image = np.asarray(sample["image"])
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if "ground_truth" in sample:
            gts = [a["boundaries"] for a in sample["ground_truth"]]
        elif "annotations" in sample:
            gts = list(sample["annotations"])
        else:
            gts = [sample["edges"] >= 0.5]
        if factor > 1:
            image = _resize_image(image, factor)
            gts = [downscale_boundaries(g, factor, image.shape[:2]) for g in gts]
        label = (np.mean([g.astype(np.float32) for g in gts], axis=0) if "edges" not in sample
                 else (_resize_image(sample["edges"], factor) if factor > 1 else sample["edges"]))
        samples.append({"image": image.astype(np.float32), "gts": [np.asarray(g, bool) for g in gts],
                        "label": np.asarray(label, np.float32)})
    if not samples:
        raise ValueError(f"{dataset} {split}: no samples")
    return samples


def _to_input(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image - np.asarray(MEAN_PIXEL, np.float32))).permute(2, 0, 1)


def random_batch(samples: list[dict], rng: np.random.Generator, *, batch: int, crop: int):
    """Random ``crop`` x ``crop`` crops (reflect-padded when an image is smaller) with random
    horizontal flips: inputs ``(B, 3, crop, crop)`` and binary labels ``(B, 1, crop, crop)``."""
    images, labels = [], []
    for _ in range(batch):
        sample = samples[int(rng.integers(len(samples)))]
        image, label = sample["image"], sample["label"]
        pad_h, pad_w = max(0, crop - image.shape[0]), max(0, crop - image.shape[1])
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
            label = np.pad(label, ((0, pad_h), (0, pad_w)), mode="reflect")
        top = int(rng.integers(image.shape[0] - crop + 1))
        left = int(rng.integers(image.shape[1] - crop + 1))
        image, label = image[top: top + crop, left: left + crop], label[top: top + crop, left: left + crop]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        images.append(_to_input(image))
        labels.append(torch.from_numpy(np.ascontiguousarray(label))[None])
    return torch.stack(images), edge_labels(torch.stack(labels))


# --------------------------------------------------------------------------- training and evaluation


def build_model(settings, *, tv: bool) -> DexiNed:
    return DexiNed(widths=settings["widths"], up_features=settings["up_features"], tv=tv,
                   tv_lam_init=settings["tv_lam_init"], tv_iters=settings["tv_iters"])


def train_dexined(samples: list[dict], settings, *, tv: bool, seed: int, checkpoint=None, progress=None) -> dict:
    """Train DexiNed (or DexiNed + TV) and return ``{"state", "history"}``; resumes from
    ``checkpoint`` (a :class:`suite.harness.trained.Checkpoint`) when it holds a state."""
    torch.manual_seed(seed)
    model = build_model(settings, tv=tv)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    # full: the release's 17 epochs over the training set; mini/smoke: a fixed number of steps.
    steps = int(settings["steps"] or settings["epochs"] * -(-len(samples) // settings["batch_size"]))
    # The release's lr steps at epochs 10 and 15 of 17.
    milestones = [max(1, round(steps * 10 / 17)), max(1, round(steps * 15 / 17))]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    rng = np.random.default_rng([seed, 4])
    history = {"loss": [], "step_seconds": [], "lam": []}
    start = 0
    saved = checkpoint.resume(model, optimizer, scheduler) if checkpoint is not None else None
    if saved is not None:
        rng.bit_generator.state = saved["rng"]
        history, start = saved["history"], int(saved["step"])
    model.train()
    steps_iter = range(start, steps)
    for step in (progress(steps_iter, desc="DexiNed" + (" + TV" if tv else ""), leave=False) if progress else steps_iter):
        inputs, labels = random_batch(samples, rng, batch=settings["batch_size"], crop=settings["crop"])
        began = time.perf_counter()
        loss = dexined_loss(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["step_seconds"].append(time.perf_counter() - began)
        scheduler.step()
        history["loss"].append(float(loss.detach()))
        history["lam"].append(model.tv_lambdas())
        if checkpoint is not None and checkpoint.due(step + 1) and step + 1 < steps:
            checkpoint.save_training(step=step + 1, model=model, optimizer=optimizer, scheduler=scheduler,
                                     rng=rng.bit_generator.state, history=history)
    return {"state": model.state_dict(), "history": history}


@torch.no_grad()
def predict_edges(model: DexiNed, samples: list[dict]) -> list[np.ndarray]:
    """DexiNed-a edge maps in [0, 1] (float64 ``(H, W)``), one per sample, model in eval mode."""
    model.eval()
    maps = []
    for sample in samples:
        x, (height, width) = pad_to_stride(_to_input(sample["image"])[None])
        edge_map = average_edge_map(model(x))[0, :height, :width]
        maps.append(edge_map.double().clamp(0, 1).numpy())
    return maps


@experiment(
    "tvlayers.table4",
    table=TABLE,
    title="Edge detection: DexiNed vs DexiNed + TV (ODS / OIS / AP)",
    grid={"model": list(ROWS)},
    profiles=PROFILES,
    datasets=_datasets,
    protocol=__doc__.split("\n\n", 1)[1],
)
def table4(ctx, cell):
    s = ctx.settings
    row = ROWS[cell["model"]]
    tv = cell["model"] == "dexined-tv"
    train_id = training_dataset(s)
    tests = test_datasets(s)

    def not_run(reason):
        for dataset in tests:
            for metric in METRICS:
                ctx.not_run(row=row, column=COLUMN[dataset], metric=metric, reason=reason)
        return ctx.records

    try:
        train_root = ctx.data.path(train_id)
        test_roots = {d: ctx.data.path(d) for d in tests}
    except FileNotFoundError as error:
        return not_run(str(error).split(". To add it")[0])
    factor = int(s["downscale"].get(train_id, 1))
    train_split = "val" if train_id == "bsds500" else "train"
    with limit_threads(torch_threads=s.get("threads")):
        samples = load_edge_set(train_root, train_id, train_split, factor=factor)
        payload = training_payload(ctx, module=__name__, settings_keys=TRAINING_KEYS, datasets=[train_id],
                                   model=cell["model"])
        result, _ = cached_training(
            namespace="tvlayers", name=f"table4-{cell['model']}-s{ctx.seed}", payload=payload,
            train=lambda checkpoint: train_dexined(samples, s, tv=tv, seed=ctx.seed, checkpoint=checkpoint,
                                                   progress=ctx.progress))
        model = build_model(s, tv=tv)
        model.load_state_dict(result["state"])
        for dataset in tests:
            split = "test"
            test_samples = load_edge_set(test_roots[dataset], dataset, split, factor=int(s["downscale"].get(dataset, 1)),
                                         limit=s["test_images"])
            scores = boundary_benchmark(predict_edges(model, test_samples), [t["gts"] for t in test_samples],
                                        workers=s["eval_workers"])
            for metric in METRICS:
                ctx.record(row=row, column=COLUMN[dataset], metric=metric, value=float(scores[metric]),
                           higher_is_better=True, n=len(test_samples))
    mean, std, count = step_time_ms(result["history"])
    ctx.record(row=row, column="training step", metric="step_time", value=mean, std=std, n=count, unit="ms",
               higher_is_better=False, note=f"batch {s['batch_size']} of {s['crop']}x{s['crop']} crops, "
                                            f"torch threads {s.get('threads') or 'default'}")
    ctx.record(row=row, column="training", metric="final_loss", value=float(np.mean(result["history"]["loss"][-10:])),
               higher_is_better=False, note="mean of the last 10 training losses")
    for name, value in model.tv_lambdas().items():
        ctx.record(row=row, column=f"lambda {name}", metric="lam", value=value, higher_is_better=True,
                   note="learned lambda (logit units)")
    return ctx.records
