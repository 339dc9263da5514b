"""Table 5 of Yeh et al. (CVPR 2022): edge-preserving smoothing, ResNet vs ResNetTV (WRMSE / WMAE).

Networks and loss: :mod:`reproductions.tvlayers.smoothing` (Zhu et al.'s 16-block ResNet; ResNetTV
with four TV1D-Sharp layers, row/column alternating, on the residual branches of blocks spread
evenly, and a TV2D-Smooth layer with one shared lambda on the output image). Both rows train
with the same data, budget and seeds: Zhu et al.'s loss (weighted L1 to the five ground truths
plus their gradient term), Adam, random square patches (the release: batch 4 of 96 x 96 patches,
lr 1e-4, 345k iterations, the checkpoint it ships), inputs and targets scaled to [-1, 1].

Metric: WRMSE / WMAE of ``metrics.image`` (the benchmark script's definition: 0-255 scale,
weighted errors pooled over the test images, one square root), on the outputs rounded to 8 bits
as the script reads them from PNGs. Row "Input (identity)" scores the unsmoothed input for
scale; row "ResNetTV (untrained)" the ResNetTV of the same seed before training, whose output is
about the input smoothed by the final TV layer at its initial lambda (what that layer gives for
free, before any learning). The learned lambda of the final TV2D-Smooth layer is reported in the network's [-1, 1]
units and on the 0-255 scale (x 127.5); the paper's 15.1 does not say which.

Data. full: ``eps-zhu`` through its reader (train 0001-0400, test 0401-0500), the release's sizes.
mini and smoke: a stand-in, the generated ``mini-smoothing`` set (piecewise-smooth shapes with
photographic texture; the five ground truths are outputs of five edge-preserving filters with
simulated votes as weights; see :mod:`suite.data.generate_smoothing`), with fewer and narrower
blocks and fewer steps; the code path is the same.

Also recorded: the wall time per training step (forward, loss, backward, update) of each model.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from metrics.image import to_uint8, wmae, wrmse
from suite.harness import experiment
from suite.harness.threads import limit_threads
from suite.harness.trained import cached_training, training_payload

from .smoothing import SmoothingResNet, smoothing_loss
from .timing import step_time_ms

TABLE = "Table 5"
ROWS = {"resnet": "ResNet", "resnet-tv": "ResNetTV"}
ROW_INPUT = "Input (identity)"
ROW_UNTRAINED = "ResNetTV (untrained)"
COLUMN = {"eps-zhu": "all", "mini-smoothing": "mini-smoothing (stand-in)"}

_COMMON = {"lr": 1e-4, "batch_size": 4, "patch": 96, "sharp_lam_init": 0.05, "smooth_lam_init": 0.05,
           "tv_iters": 4, "threads": None, "test_images": None}

PROFILES = {
    # smoke: the same code on the smoke-sized generated set, two steps (tests).
    "smoke": {**_COMMON, "data": "mini-smoothing", "channels": 4, "blocks": 4, "patch": 24, "batch_size": 2,
              "steps": 2, "lr": 1e-3, "test_images": 1, "threads": 1, "seeds": [0]},
    # mini: 4 blocks of 16 channels, 48 x 48 patches, 240 steps, 3 seeds.
    "mini": {**_COMMON, "data": "mini-smoothing", "channels": 16, "blocks": 4, "patch": 48, "batch_size": 8,
             "steps": 240, "lr": 1e-3, "threads": 1, "seeds": [0, 1, 2]},
    # full: the release's network and training settings on the real benchmark.
    "full": {**_COMMON, "data": "eps-zhu", "channels": 64, "blocks": 16, "steps": 345_000, "seeds": [0]},
}
#: Settings that change a trained model (they enter the model-cache key).
TRAINING_KEYS = ("data", "channels", "blocks", "patch", "batch_size", "steps", "lr", "sharp_lam_init",
                 "smooth_lam_init", "tv_iters")


def _datasets(cell, settings):
    return [settings["data"]]


def load_smoothing_set(root, split: str, *, limit: int | None = None) -> list[dict]:
    """Samples ``{"name", "image": uint8 (H, W, 3), "gts": uint8 (K, H, W, 3), "weights": (K,)}``."""
    from suite.data import readers

    reader = readers.EPSBenchmark(root, split=split)
    samples = []
    for index in range(len(reader) if limit is None else min(limit, len(reader))):
        sample = reader[index]
        image = np.asarray(sample["image"])
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        gts = np.stack([np.asarray(g) if np.asarray(g).ndim == 3 else np.repeat(np.asarray(g)[..., None], 3, axis=2)
                        for g in sample["ground_truths"]])
        if gts.shape[1:] != image.shape:
            raise ValueError(f"{sample['name']}: ground truths {gts.shape[1:]} differ from the image {image.shape}")
        samples.append({"name": sample["name"], "image": image.astype(np.uint8), "gts": gts.astype(np.uint8),
                        "weights": np.asarray(sample["weights"], np.float64)})
    if not samples:
        raise ValueError(f"{root} {split}: no samples")
    return samples


def _scaled(array: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` to float32 ``(..., 3, H, W)`` in [-1, 1] (the release's x / 127.5 - 1)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)).float() / 127.5 - 1.0
    return tensor.movedim(-1, -3)


def random_batch(samples: list[dict], rng: np.random.Generator, *, batch: int, patch: int):
    """Random patches with their ground truths and normalised weights: ``(B, 3, p, p)``,
    ``(B, K, 3, p, p)``, ``(B, K)``."""
    inputs, targets, weights = [], [], []
    for _ in range(batch):
        sample = samples[int(rng.integers(len(samples)))]
        height, width = sample["image"].shape[:2]
        size = min(patch, height, width)
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        inputs.append(_scaled(sample["image"][top: top + size, left: left + size]))
        targets.append(_scaled(sample["gts"][:, top: top + size, left: left + size]))
        weights.append(torch.from_numpy(sample["weights"] / sample["weights"].sum()).float())
    return torch.stack(inputs), torch.stack(targets), torch.stack(weights)


def build_model(settings, *, tv: bool) -> SmoothingResNet:
    return SmoothingResNet(channels=settings["channels"], blocks=settings["blocks"], tv=tv,
                           sharp_lam_init=settings["sharp_lam_init"], smooth_lam_init=settings["smooth_lam_init"],
                           tv_iters=settings["tv_iters"])


def train_smoothing(samples: list[dict], settings, *, tv: bool, seed: int, checkpoint=None, progress=None) -> dict:
    """Train ResNet (or ResNetTV); returns ``{"state", "history"}``; resumes from ``checkpoint``."""
    torch.manual_seed(seed)
    model = build_model(settings, tv=tv)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    rng = np.random.default_rng([seed, 5])
    history = {"loss": [], "step_seconds": [], "lam": []}
    start = 0
    saved = checkpoint.resume(model, optimizer) if checkpoint is not None else None
    if saved is not None:
        rng.bit_generator.state = saved["rng"]
        history, start = saved["history"], int(saved["step"])
    model.train()
    steps = int(settings["steps"])
    steps_iter = range(start, steps)
    for step in (progress(steps_iter, desc="ResNet" + ("TV" if tv else ""), leave=False) if progress else steps_iter):
        inputs, targets, weights = random_batch(samples, rng, batch=settings["batch_size"], patch=settings["patch"])
        began = time.perf_counter()
        loss = smoothing_loss(model(inputs), targets, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["step_seconds"].append(time.perf_counter() - began)
        history["loss"].append(float(loss.detach()))
        history["lam"].append(model.tv_lambdas())
        if checkpoint is not None and checkpoint.due(step + 1) and step + 1 < steps:
            checkpoint.save_training(step=step + 1, model=model, optimizer=optimizer, rng=rng.bit_generator.state,
                                     history=history)
    return {"state": model.state_dict(), "history": history}


@torch.no_grad()
def predict_smoothing(model: SmoothingResNet, samples: list[dict]) -> list[np.ndarray]:
    """uint8 ``(H, W, 3)`` results, one per sample (output (y + 1) / 2, clipped, rounded: the
    8-bit PNG the benchmark script reads)."""
    model.eval()
    results = []
    for sample in samples:
        output = model(_scaled(sample["image"])[None])[0]
        results.append(to_uint8(((output + 1) / 2).movedim(0, -1).double().numpy()))
    return results


def score(results: list[np.ndarray], samples: list[dict]) -> dict[str, float]:
    gts = [s["gts"] for s in samples]
    weights = [s["weights"] for s in samples]
    return {"wrmse": wrmse(results, gts, weights, data_range=255), "wmae": wmae(results, gts, weights, data_range=255)}


@experiment(
    "tvlayers.table5",
    table=TABLE,
    title="Edge-preserving smoothing: ResNet vs ResNetTV (WRMSE / WMAE)",
    grid={"model": list(ROWS)},
    profiles=PROFILES,
    datasets=_datasets,
    protocol=__doc__.split("\n\n", 1)[1],
)
def table5(ctx, cell):
    s = ctx.settings
    row = ROWS[cell["model"]]
    tv = cell["model"] == "resnet-tv"
    column = COLUMN.get(s["data"], s["data"])
    try:
        root = ctx.data.path(s["data"])
    except FileNotFoundError as error:
        for metric in ("wrmse", "wmae"):
            ctx.not_run(row=row, column=column, metric=metric, reason=str(error).split(". To add it")[0],
                        higher_is_better=False)
        return ctx.records
    with limit_threads(torch_threads=s.get("threads")):
        train = load_smoothing_set(root, "train")
        test = load_smoothing_set(root, "test", limit=s["test_images"])
        payload = training_payload(ctx, module=__name__, settings_keys=TRAINING_KEYS, datasets=[s["data"]],
                                   model=cell["model"])
        result, _ = cached_training(
            namespace="tvlayers", name=f"table5-{cell['model']}-s{ctx.seed}", payload=payload,
            train=lambda checkpoint: train_smoothing(train, s, tv=tv, seed=ctx.seed, checkpoint=checkpoint,
                                                     progress=ctx.progress))
        model = build_model(s, tv=tv)
        untrained = score(predict_smoothing(model, test), test) if tv else {}
        model.load_state_dict(result["state"])
        scores = score(predict_smoothing(model, test), test)
    for metric, value in scores.items():
        ctx.record(row=row, column=column, metric=metric, value=value, higher_is_better=False, n=len(test))
    for metric, value in untrained.items():
        # At initialisation the network is close to the identity and the final TV2D-Smooth layer
        # already smooths with its initial lambda: how much of ResNetTV's score it owes to that.
        ctx.record(row=ROW_UNTRAINED, column=column, metric=metric, value=value, higher_is_better=False,
                   n=len(test), note=f"initial weights (seed {ctx.seed}), lambda at its initial value")
    if not tv:
        identity = score([t["image"] for t in test], test)
        for metric, value in identity.items():
            ctx.record(row=ROW_INPUT, column=column, metric=metric, value=value, higher_is_better=False, n=len(test))
    mean, std, count = step_time_ms(result["history"])
    ctx.record(row=row, column="training step", metric="step_time", value=mean, std=std, n=count, unit="ms",
               higher_is_better=False, note=f"batch {s['batch_size']} of {s['patch']}x{s['patch']} patches, "
                                            f"torch threads {s.get('threads') or 'default'}")
    ctx.record(row=row, column="training", metric="final_loss", value=float(np.mean(result["history"]["loss"][-10:])),
               higher_is_better=False, note="mean of the last 10 training losses")
    if tv:
        lambdas = model.tv_lambdas()
        for name, value in lambdas.items():
            ctx.record(row=row, column=f"lambda {name}", metric="lam", value=value, higher_is_better=True,
                       note="learned lambda, [-1, 1] units (mean over channels for the sharp layers)")
        ctx.record(row=row, column="lambda smooth final", metric="lam_255", value=lambdas["smooth final"] * 127.5,
                   higher_is_better=True, note="the same lambda on the 0-255 scale (x 127.5); paper: 15.1")
    return ctx.records
