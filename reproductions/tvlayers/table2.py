"""Table 2, the clean CIFAR-10 accuracy and Fig. 3 of Yeh et al. (CVPR 2022), Sec. 4.2.

All-Convolutional Net, TV-Smooth and TV-Sharp (:mod:`.classification`) trained on clean images
with the same data, schedule and seeds, then evaluated on the clean test set ("clean accuracy",
the text's 93.51 / 93.61 / 93.43 over five runs) and on its 15 CIFAR-10-C corruptions at
severities 1-5 (Table 2: accuracy per corruption, the mean over its five severities, and "All",
the mean over the 75 corrupted sets). Fig. 3: the learned lambda of each TV layer over training.

Table 2's extracted text prints the blur columns as "Glass, Defocus", but its numbers follow the
CIFAR-10-C order (Defocus, Glass): 77.9 / 46.7 for AllConv are a defocus and a glass-blur accuracy
by magnitude (glass blur is the hardest CIFAR-10-C corruption, defocus among the easiest). The
paper values here are recorded under Defocus = the first printed blur number, Glass = the second.

Data: ``full`` reads ``cifar10`` and ``cifar10-c`` (all 10,000 test images per severity);
``smoke`` and ``mini`` read ``mini-classification``, a generated stand-in (ten shape classes, each
cut from its own photograph, on photographic backgrounds, 32 x 32, with the same 15 corruptions implemented from
Hendrycks & Dietterich's definitions, :mod:`suite.data.corruptions`). Widths, steps and set sizes
shrink at mini; the code path does not.
"""
from __future__ import annotations

import numpy as np
import torch

from metrics.classification import accuracy, corruption_summary
from suite.data.corruptions import CORRUPTIONS, FAMILIES
from suite.data.readers import CIFAR10, CIFAR10C
from suite.harness import experiment
from suite.harness.trained import cached_training, training_payload

from .classification import MODELS, AllConvNet, predict, predict_without_tv, train_classifier, tv_strength

TABLE = "Table 2"
CLEAN = "clean accuracy"
FIGURE = "Fig. 3"
FAMILY_TABLE = "Table 2 (family means)"
COST = "Table 2 (training cost)"
STRENGTH = "Table 2 (TV strength on the features)"
COLUMNS = {
    "gaussian_noise": "Gaussian", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
    "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
    "fog": "Fog", "brightness": "Brightness", "contrast": "Contrast", "elastic_transform": "Elastic",
    "pixelate": "Pixelate", "jpeg_compression": "JPEG",
}
TRAIN_KEYS = ("widths", "steps", "batch_size", "lr", "weight_decay", "log_every", "train_data", "lam_init")

PROFILES = {
    "smoke": {"train_data": "mini-classification", "test_data": "mini-classification", "widths": [8, 16],
              "steps": 3, "batch_size": 8, "lr": 0.05, "weight_decay": 5e-4, "log_every": 1, "lam_init": 0.05,
              "test_images": 10, "seeds": [0]},  # test_images: per corruption and severity
    # mini: a scaled-down All-CNN-C (w1 = 8, w2 = 16 against 96 / 192) for 1,200 steps of 32 (15 epochs of
    # the 2,500-image stand-in), three seeds; every test image: the 120 clean ones and their 15 x 5
    # corrupted copies (9,000). Measured on one quiet core at one thread (seed 0): the baseline reaches
    # 57 % clean accuracy at 1,200 steps against 47 % at 400 (chance is 10 %); a step costs 12 ms without
    # TV and ~100-115 ms with the three TV layers (see 'Table 2 (training cost)'); the three cells of a
    # seed take ~320 s.
    "mini": {"train_data": "mini-classification", "test_data": "mini-classification", "widths": [8, 16],
             "steps": 1200, "batch_size": 32, "lr": 0.05, "weight_decay": 5e-4, "log_every": 60, "lam_init": 0.05,
             "test_images": None, "seeds": [0, 1, 2]},
    # full: the paper's network on CIFAR-10, 200 epochs of 391 batches of 128, five runs.
    "full": {"train_data": "cifar10", "test_data": "cifar10-c", "widths": [96, 192], "steps": 78200,
             "batch_size": 128, "lr": 0.05, "weight_decay": 5e-4, "log_every": 391, "lam_init": 0.05,
             "test_images": None, "seeds": [0, 1, 2, 3, 4]},
}

PROTOCOL = (
    "All-CNN-C with batch norm (conv-BN-ReLU x 9, global average pooling); TV-Smooth / TV-Sharp: a 2D TV layer "
    "(one lambda shared by the channels, init 0.05, trained) between conv and BN in the first three blocks. "
    "SGD + Nesterov 0.9, cosine schedule, crop + flip augmentation; the same data, steps and seeds for the three "
    "models. Accuracy in %; a corruption's accuracy is the mean over severities 1-5, All the mean over the 15 "
    "corruptions. Table 2's printed 'Glass, Defocus' columns hold Defocus, Glass values (CIFAR-10-C order, "
    "judging by magnitude): the paper values are filed that way. At smoke/mini the data is mini-classification, "
    "a generated STAND-IN for CIFAR-10/-C (shape classes, each of its own photographic material, on photographic backgrounds, the 15 corruptions "
    "implemented from Hendrycks & Dietterich's definitions; frost uses a procedural ice texture), so absolute "
    "values are not comparable with the paper's; the orderings are judged. 'Table 2 (family means)' holds the "
    "mean over the noise and the blur corruptions (paper values derived from Table 2) for the claims about "
    "them; 'Table 2 (training cost)' the wall time of a training step with and without the TV layers. "
    "'Table 2 (TV strength on the features)': how much each trained TV layer changes the conv output it "
    "smooths (||TV(F) - F|| / ||F||; lambda acts relative to |F|) and the clean accuracy with the TV layers "
    "bypassed at test time. Measured at mini (first run, 3 seeds): the TV-Smooth lambdas stay near their "
    "initial 0.05 and change 2-8 % of conv outputs of mean |F| 0.5-1.9; bypassing them moves the clean "
    "accuracy by at most 1.6 points. The smooth layers thus hardly act at test time, and TV-Smooth's deficit "
    "against AllConv (its seeds spread over 44-56 % clean accuracy, AllConv's over 56-58 %) arises in "
    "training, not from smoothing the test images; the paper's small gains (+0.1 clean, +1.9 All) are not "
    "seen on this stand-in at this size. TV-Sharp's layers do act (seed 0: 10-27 % change, clean accuracy "
    "64 % with them, 40 % bypassed)."
)


def _datasets(cell, settings):
    return sorted({settings["train_data"], settings["test_data"]})


def _load(ctx):
    settings = ctx.settings
    train = CIFAR10(ctx.data.path(settings["train_data"]), split="train")
    test = CIFAR10(ctx.data.path(settings["train_data"]), split="test")
    return train.arrays(), test.arrays()


def _corrupted(ctx, corruption: str, severity: int, limit: int | None):
    reader = CIFAR10C(ctx.data.path(ctx.settings["test_data"]), corruption=corruption, severity=severity)
    items = reader.items[:limit] if limit else reader.items
    start, stop = items[0], items[-1] + 1
    return np.asarray(reader.images[start:stop]), np.asarray(reader.labels[start:stop]).astype(np.int64)


def _plots(frame):
    import matplotlib.pyplot as plt

    curves = frame[(frame.table == FIGURE) & frame.step.notna() & (frame.metric == "lam")]
    if curves.empty:
        return {}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (row, column), group in curves.groupby(["row", "column"], sort=True):
        by_step = group.groupby("step").value.agg(["mean", "std"]).fillna(0.0)
        line, = ax.plot(by_step.index, by_step["mean"], label=f"{row}, {column}",
                        linestyle="-" if row == "TV-Sharp" else "--")
        ax.fill_between(by_step.index, by_step["mean"] - by_step["std"], by_step["mean"] + by_step["std"],
                        color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("lambda")
    ax.set_title("Fig. 3: learned TV lambda per conv block (mean ± std over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return {"fig3-lambda": fig}


@experiment("tvlayers.table2", table=TABLE, title="Classification under corruptions: AllConv, TV-Smooth, TV-Sharp "
            "(Table 2, clean accuracy, Fig. 3)", grid={"model": list(MODELS)}, profiles=PROFILES,
            datasets=_datasets, plots=_plots, protocol=PROTOCOL)
def run(ctx, cell):
    settings = ctx.settings
    name = cell["model"]
    try:
        (train_images, train_labels), (test_images, test_labels) = _load(ctx)
        _corrupted(ctx, CORRUPTIONS[0], 1, 1)  # the corrupted sets are there too
    except FileNotFoundError as error:  # a dataset that is not present (DatasetMissing names it)
        reason = str(error)
        ctx.not_run(table=CLEAN, row=name, column="CIFAR-10", metric="accuracy", unit="%", reason=reason)
        for column in [*COLUMNS.values(), "All"]:
            ctx.not_run(row=name, column=column, metric="accuracy", unit="%", reason=reason)
        return ctx.records
    classes = int(max(train_labels.max(), test_labels.max())) + 1

    def build():
        torch.manual_seed(ctx.seed)
        return AllConvNet(widths=tuple(settings["widths"]), classes=classes, tv_mode=MODELS[name],
                          lam_init=settings["lam_init"])

    payload = training_payload(ctx, module=__name__, settings_keys=TRAIN_KEYS, datasets=[settings["train_data"]],
                               model=name)

    def train(checkpoint):
        return train_classifier(build(), train_images, train_labels, steps=settings["steps"],
                                batch_size=settings["batch_size"], lr=settings["lr"],
                                weight_decay=settings["weight_decay"], seed=ctx.seed, checkpoint=checkpoint,
                                log_every=settings["log_every"], device=ctx.device, progress=ctx.progress)

    result, cached = cached_training(namespace="tvlayers", name=f"table2-{name}-s{ctx.seed}", payload=payload,
                                     train=train)
    model = build()
    model.load_state_dict(result["state"])
    mean, std = result["mean"], result["std"]
    note = "mini-classification: generated stand-in for CIFAR-10" if settings["train_data"] != "cifar10" else None

    limit = settings["test_images"]
    clean = accuracy(predict(model, test_images, mean, std, device=ctx.device), test_labels)
    ctx.record(table=CLEAN, row=name, column="CIFAR-10", metric="accuracy", value=100 * clean, unit="%",
               higher_is_better=True, note=note)
    if MODELS[name] is not None:
        # How active the trained TV layers are: how much each changes its conv output (a lambda acts
        # relative to the output's size), and the clean accuracy with them bypassed at test time.
        for block, (scale, change) in enumerate(tv_strength(model, test_images[:500], mean, std,
                                                            device=ctx.device), 1):
            ctx.record(table=STRENGTH, row=name, column=f"block {block}", metric="feature_mean_abs", value=scale,
                       higher_is_better=True, note="mean |F| of the conv output entering the TV layer (test images)")
            ctx.record(table=STRENGTH, row=name, column=f"block {block}", metric="tv_relative_change", value=change,
                       higher_is_better=False, note="||TV(F) - F|| / ||F|| with the learned lambda")
        bypassed = accuracy(predict_without_tv(model, test_images, mean, std, device=ctx.device), test_labels)
        ctx.record(table=STRENGTH, row=name, column="clean, TV bypassed at test", metric="accuracy",
                   value=100 * bypassed, unit="%", higher_is_better=True,
                   note="the trained network with its TV layers replaced by the identity at test time only")

    # All 75 corrupted sets go through the network together: few large batches instead of 75 small ones.
    sets = [(corruption, severity, *_corrupted(ctx, corruption, severity, limit))
            for corruption in CORRUPTIONS for severity in (1, 2, 3, 4, 5)]
    predicted = predict(model, np.concatenate([s[2] for s in sets]), mean, std, device=ctx.device)
    per_severity: dict[str, list[float]] = {c: [] for c in CORRUPTIONS}
    start = 0
    for corruption, _, images, labels in sets:
        per_severity[corruption].append(accuracy(predicted[start: start + len(images)], labels))
        start += len(images)
    summary = corruption_summary(per_severity)
    for corruption, value in summary["per_corruption"].items():
        ctx.record(row=name, column=COLUMNS[corruption], metric="accuracy", value=100 * value, unit="%",
                   higher_is_better=True, note=note)
    ctx.record(row=name, column="All", metric="accuracy", value=100 * summary["mean"], unit="%",
               higher_is_better=True, note=note)
    for family in ("noise", "blur"):
        value = np.mean([summary["per_corruption"][c] for c in FAMILIES[family]])
        ctx.record(table=FAMILY_TABLE, row=name, column=family, metric="accuracy", value=100 * value, unit="%",
                   higher_is_better=True, note=note)

    history = result["history"]
    for step, lams in zip(history["step"], history["lam"]):
        for block, lam in enumerate(lams, 1):
            ctx.record(table=FIGURE, row=name, column=f"block {block}", metric="lam", value=lam,
                       higher_is_better=True, step=int(step))
    for block, lam in enumerate(history["lam"][-1], 1):
        ctx.record(table=FIGURE, row=name, column=f"block {block}", metric="lam", value=lam,
                   higher_is_better=True, note="final lambda (init 0.05)")

    step_ms = np.asarray(result["step_ms"][1:] or result["step_ms"], dtype=float)
    ctx.record(table=COST, row=name, column="training step", metric="time", value=float(np.median(step_ms)),
               std=float(step_ms.std()), n=len(step_ms), unit="ms", higher_is_better=False,
               note=f"median wall time per step, batch {settings['batch_size']}"
                    + (" (measured when the model was trained; loaded from the cache now)" if cached else ""))
    return ctx.records
