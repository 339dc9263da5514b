"""Table 6 and Fig. 8 of Yeh et al. (CVPR 2022): colour Gaussian denoising, DnCNN vs DnCNN+TV.

Networks (Sec. 4.6). DnCNN as KAIR builds it (:mod:`reproductions.tvlayers.dncnn`: conv+ReLU head,
conv+BN+ReLU blocks, conv tail predicting the noise, residual learning, KAIR's initialisation), and
DnCNN+TV = the same network with a TV2D-Smooth layer at the input and one at the output, Eq. 14:
Prox_TV2D(R(I~) + I~, lam_out) with I~ = Prox_TV2D(I, lam_in): the output TV acts on the final
estimate, not on the residual. Both lambdas are trained (softplus parametrisation, one per colour
channel, initialised at 0.01: the paper states no initial value for this task; 0.01 in [0, 1] units
is a tenth of the sigma-25 noise std, a weak prox, as Fig. 8 shows the learned input layer to be),
with 4 Dykstra iterations as in the official layer. The paper trains with KAIR and does not say
more; we read it as KAIR's ``main_train_dncnn.py`` with ``train_dncnn.json`` set to colour: one
model per noise level (non-blind), nb = 17 conv layers of 64 channels (KAIR's 20-layer colour model
is the blind CDnCNN-B, which KAIR ships pretrained but does not train), 40x40 patches, batch 64, L1
loss, Adam 1e-4 halved at 200k iterations; at full we stop at KAIR's merge_bn_startpoint, 400k
iterations, without merging the batch norms (an inference-speed step of KAIR).

Data. Training: the BSDS500 images that are not CBSD68 images (CBSD68 = 68 of the 100 BSDS300 test
images, i.e. of BSDS500 val; names checked against :data:`CBSD68_NAMES`), the colour DnCNN's
training set (432 images in the full BSDS500; 232 in the repository's sample of val and test).
Why this set: the TV paper says only "We use the KAIR toolbox"; KAIR fixes no training set for
DnCNN (``train_dncnn.json`` is the grey model, ``n_channels`` 1, reading ``trainsets/trainH``, a
folder the repository ships empty with "put high-quality images into here"); the one colour
protocol DnCNN states is Zhang et al.'s (TIP 2017, Sec. IV-A): the colour BSD68 for testing and
"the remaining 432 color images from Berkeley segmentation dataset" for training. Later colour
denoisers of KAIR's authors train on larger mixes (DRUNet: BSD400, WED, DIV2K, Flickr2K); the
paper names none, so none is assumed here.
Patches are cut, flipped/rotated and given noise on the fly from the seed, the same batches for
DnCNN and DnCNN+TV. Test: CBSD68, Kodak24 (500x500 centre crops), McMaster, with KAIR's noise
(np.random.seed(0) per image, N(0, sigma/255) added to uint8/255, not clipped), output clamped and
rounded to uint8, PSNR on RGB with no border (:func:`metrics.image.psnr`), mean over images. When
none of the three is present, the generated ``mini-denoise`` crops stand in (columns marked
"stand-in"); when BSDS500 is absent the models train on the generated ``mini-edges`` scenes and
their rows are marked "stand-in" (the paper's claims then stay unjudged). Both generated sets are
composed from the same package photographs, so a stand-in train/test pair is not disjoint in
content.

Profiles. mini: depth 8, width 32, batch 16, 250 iterations (Adam 1e-3, halved at 200) on 2 CPU
cores, three seeds per model, evaluated on a fixed subset of whole test images, the first in name
order: 6 of CBSD68, 4 of Kodak24, 4 of McMaster (8 of the stand-in). smoke: a few steps of a tiny
net on the central 48x48 of one image per set. full: as the paper (above), all test images.

Records. PSNR per (model, test set, sigma), one record per seed (std in a record: the standard
error over the images); the claims use the spread over seeds. Learned lambdas per channel. Time
per training step of each model's training run (mean over the steps after warm-up; cached models
keep the times of the run that trained them), and, in each DnCNN+TV cell, a paired measurement:
a DnCNN and a DnCNN+TV of the profile's size taking turns on the same batches.
"""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from suite.data import readers
from suite.data import registry as data_registry
from suite.harness import experiment
from suite.harness.trained import cached_training, training_payload

from .dncnn import DnCNN, evaluate, mean_and_error, paired_step_times, train_denoiser


TABLE = "Table 6"
TABLE_LAMBDA = "Table 6 (learned lambda)"
TABLE_COST = "Table 6 (training cost)"
MODELS = ("DnCNN", "DnCNNTV")
CHANNELS = ("R", "G", "B")

#: The 68 CBSD68 images (BSDS300 test images, all in BSDS500 val), by BSDS id: never trained on.
CBSD68_NAMES = frozenset("""
101085 101087 102061 103070 105025 106024 108005 108070 108082 109053 119082 12084 123074 126007 130026
134035 14037 143090 145086 147091 148026 148089 157055 159008 160068 16077 163085 167062 167083 170057
175032 175043 182053 189080 19021 196073 197017 208001 210088 21077 216081 219090 220075 223061 227092
229036 236037 24077 241004 241048 253027 253055 260058 271035 285079 291000 295087 296007 296059 299086
300091 302008 304034 304074 306005 3096 33039 351093
""".split())

#: The paper's test sets: dataset id -> column prefix.
TEST_SETS = {"cbsd68": "CBSD68", "kodak24": "Kodak24", "mcmaster": "McMaster"}
TRAIN_SET = "bsds500"
STAND_IN_TEST = "mini-denoise"
STAND_IN_TRAIN = "mini-edges"
BSDS_SPLITS = ("train", "val", "test")

#: Settings a trained model depends on (its cache key).
TRAINING_KEYS = ("depth", "width", "batch", "patch", "iterations", "lr", "milestones", "lam_init", "tv_iters",
                 "train_images")

PROFILES = {
    "smoke": {"sigmas": [25, 50], "seeds": [0], "depth": 3, "width": 8, "batch": 4, "patch": 24, "iterations": 3,
              "lr": 1e-3, "milestones": [], "lam_init": 0.01, "tv_iters": 4, "train_images": 6,
              "test_images": {"cbsd68": 1, "kodak24": 1, "mcmaster": 1, "mini-denoise": 1}, "eval_crop": 48,
              "paired_steps": 2, "fig8_crop": 48},
    "mini": {"sigmas": [25, 50], "seeds": [0, 1, 2], "depth": 8, "width": 32, "batch": 16, "patch": 40,
             "iterations": 250, "lr": 1e-3, "milestones": [200], "lam_init": 0.01, "tv_iters": 4,
             "train_images": None, "test_images": {"cbsd68": 6, "kodak24": 4, "mcmaster": 4, "mini-denoise": 8},
             "eval_crop": None, "paired_steps": 10, "fig8_crop": 160},
    "full": {"sigmas": [25, 50], "seeds": [0, 1, 2], "depth": 17, "width": 64, "batch": 64, "patch": 40,
             "iterations": 400_000, "lr": 1e-4, "milestones": [200_000], "lam_init": 0.01, "tv_iters": 4,
             "train_images": None, "test_images": {}, "eval_crop": None, "paired_steps": 20, "fig8_crop": 256},
}


def data_plan() -> dict[str, Any]:
    """Which datasets a cell reads, from what is present: ``{"train": id, "test": [ids], "absent": [ids]}``.

    Training on BSDS500 when present, else on the ``mini-edges`` stand-in; testing on the present ones of
    CBSD68 / Kodak24 / McMaster, or on the ``mini-denoise`` stand-in when none is.
    """
    train = TRAIN_SET if data_registry.find(TRAIN_SET) is not None else STAND_IN_TRAIN
    present = [d for d in TEST_SETS if data_registry.find(d) is not None]
    absent = [d for d in TEST_SETS if d not in present]
    return {"train": train, "test": present or [STAND_IN_TEST], "absent": absent}


def training_images(root, *, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """The BSDS500-layout images under ``root`` (every split present) minus the CBSD68 images, in
    split then name order; the first ``limit`` of them when set.

    Returns:
        ``(images, names)``: uint8 ``(H, W, 3)`` arrays and their ids.

    Raises:
        ValueError: no image is left.
    """
    images, names = [], []
    for split in BSDS_SPLITS:
        if not (root / "data" / "images" / split).is_dir():
            continue
        for name, image_path, _truth in readers.BSDS500(root, split=split).items:
            if name in CBSD68_NAMES:
                continue
            if limit is not None and len(images) >= limit:
                break
            image = readers.read_image(image_path)
            images.append(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3])
            names.append(name)
    if not images:
        raise ValueError(f"no training image under {root} once the CBSD68 images are left out")
    return images, names


def test_samples(dataset_id: str, root, *, sigma: float, limit: int | None) -> list[dict]:
    """The first ``limit`` (all when None) clean/noisy pairs of a test set, noise by the KAIR protocol."""
    dataset = data_registry.get(dataset_id).open(root, sigma=sigma)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return [dataset[i] for i in range(count)]


def _column(dataset_id: str, sigma: float) -> str:
    if dataset_id == STAND_IN_TEST:
        return f"{STAND_IN_TEST} s{sigma:g} (stand-in)"
    return f"{TEST_SETS[dataset_id]} s{sigma:g}"


def _row(model: str, train_id: str) -> str:
    return model if train_id == TRAIN_SET else f"{model} (trained on {train_id}, stand-in)"


def build_model(model: str, settings, *, seed: int) -> DnCNN:
    """A fresh network for ``model`` ("DnCNN" or "DnCNNTV"); same seed, same initial body weights."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DnCNN(3, depth=settings["depth"], width=settings["width"], tv=model == "DnCNNTV",
                     lam_init=settings["lam_init"], tv_iters=settings["tv_iters"])


def trained_model(ctx, model: str, sigma: float, train_id: str, *, images=None, train: bool = True):
    """The trained network of (model, sigma, seed) from the shared cache, trained now when absent.

    With ``train=False`` an absent model gives ``(None, None)`` instead (the report's figure never trains).

    Returns:
        ``(network in eval mode, history)``, plus whether it came from the cache, as a triple.
    """
    settings = ctx.settings
    payload = training_payload(ctx, module=__name__, settings_keys=TRAINING_KEYS, datasets=[train_id],
                               model=model, sigma=sigma, experiment="tvlayers.table6")
    network = build_model(model, settings, seed=ctx.seed)

    class _NotCached(LookupError):
        pass

    def run(checkpoint):
        if not train:
            raise _NotCached
        return train_denoiser(network, images, sigma=sigma, iterations=settings["iterations"],
                              batch=settings["batch"], patch=settings["patch"], lr=settings["lr"],
                              milestones=settings["milestones"], seed=ctx.seed, device=ctx.device,
                              checkpoint=checkpoint, progress=ctx.progress)

    try:
        result, cached = cached_training(namespace="tvlayers", name=f"table6-{model}-s{sigma:g}-seed{ctx.seed}",
                                         payload=payload, train=run)
    except _NotCached:
        return None, None, None
    network.load_state_dict(result["state"])
    network.to(ctx.device).eval()
    return network, result["history"], cached


def _not_run_all(ctx, sigma: float, reason: str) -> None:
    for model in MODELS:
        for dataset_id in TEST_SETS:
            ctx.not_run(row=model, column=_column(dataset_id, sigma), metric="psnr", unit="dB", reason=reason)


@experiment(
    "tvlayers.table6",
    table=TABLE,
    title="Colour denoising PSNR: DnCNN vs DnCNN+TV (input and output TV2D-Smooth), sigma 25/50",
    grid=lambda settings: [{"model": m, "sigma": s} for s in settings["sigmas"] for m in MODELS],
    profiles=PROFILES,
    datasets=lambda cell, settings: [data_plan()["train"], *data_plan()["test"]],
    plots=lambda frame: {"fig8": plot_fig8(frame)},
    protocol=__doc__.split("\n\n", 1)[1],
)
def table6(ctx, cell):
    settings = ctx.settings
    model, sigma = cell["model"], float(cell["sigma"])
    plan = data_plan()
    train_id = plan["train"]
    row = _row(model, train_id)
    try:
        train_root = ctx.data.path(train_id)
        test_roots = {d: ctx.data.path(d) for d in plan["test"]}
    except FileNotFoundError as error:  # a generated set not built (the runner builds them; a bare call may not)
        _not_run_all(ctx, sigma, str(error))
        return ctx.records
    images, _names = training_images(train_root, limit=settings["train_images"])
    network, history, cached = trained_model(ctx, model, sigma, train_id, images=images)

    for dataset_id, root in test_roots.items():
        limit = settings["test_images"].get(dataset_id)
        scores = evaluate(network, test_samples(dataset_id, root, sigma=sigma, limit=limit), device=ctx.device,
                          crop=settings["eval_crop"])
        mean, error = mean_and_error(scores["psnr"])
        ctx.record(row=row, column=_column(dataset_id, sigma), metric="psnr", value=mean, std=error,
                   n=len(scores["psnr"]), unit="dB", higher_is_better=True)
    for dataset_id in plan["absent"]:
        stand_in = f"; {STAND_IN_TEST} stands in" if plan["test"] == [STAND_IN_TEST] else ""
        ctx.not_run(row=row, column=_column(dataset_id, sigma), metric="psnr", unit="dB",
                    reason=f"dataset {dataset_id} is not present{stand_in}")

    step_ms = np.asarray(history["step_ms"], np.float64)
    note = "model from the cache: time of the run that trained it" if cached else None
    if len(step_ms):
        ctx.record(row=model, column=f"s{sigma:g}", metric="step_time", value=float(step_ms.mean()),
                   std=float(step_ms.std()), n=len(step_ms), unit="ms", higher_is_better=False, table=TABLE_COST,
                   note=note)
    losses = np.asarray(history["loss"], np.float64)
    tail = losses[-max(1, len(losses) // 10):]
    ctx.record(row=model, column=f"s{sigma:g}", metric="final_train_l1", value=float(tail.mean()), unit="",
               higher_is_better=False, table=TABLE_COST)
    for layer, values in (history.get("lambdas") or {}).items():
        for channel, value in zip(CHANNELS, values):
            ctx.record(row=f"lambda_{'in' if layer == 'input' else 'out'}", column=f"s{sigma:g} {channel}",
                       metric="lambda", value=float(value), unit="", higher_is_better=True, table=TABLE_LAMBDA)

    if model == "DnCNNTV":
        pair = {name: build_model(name, settings, seed=ctx.seed) for name in MODELS}
        times = paired_step_times(pair, images, steps=settings["paired_steps"], batch=settings["batch"],
                                  patch=settings["patch"], sigma=sigma, lr=settings["lr"], seed=ctx.seed,
                                  device=ctx.device)
        for name, values in times.items():
            ctx.record(row=f"{name} (paired)", column=f"s{sigma:g}", metric="step_time", value=float(values.mean()),
                       std=float(values.std()), n=len(values), unit="ms", higher_is_better=False, table=TABLE_COST)
        ctx.record(row="DnCNNTV / DnCNN (paired)", column=f"s{sigma:g}", metric="step_time_ratio",
                   value=float(times["DnCNNTV"].mean() / times["DnCNN"].mean()), unit="x", higher_is_better=False,
                   table=TABLE_COST)
    return ctx.records


# ------------------------------------------------------------------------------------------------ Fig. 8
def _fig8_inputs(frame):
    """(profile, seed, sigma, device) of the DnCNN+TV model the figure shows, from the records."""
    psnr = frame[(frame.metric == "psnr") & frame.value.notna() & frame.row.str.startswith("DnCNNTV")]
    if psnr.empty:
        return None
    profile = str(psnr.profile.iloc[0])
    seed = int(psnr.seed.min())
    sigmas = sorted({float(json.loads(c)["sigma"]) for c in psnr.cell})
    device = str(psnr[psnr.seed == seed].device.iloc[0])
    return profile, seed, sigmas[-1], device


def plot_fig8(frame):
    """Fig. 8: clean, noisy, after the input TV, R(I~) + I~ (before the output TV) and the final output of the
    cached DnCNN+TV (largest sigma, smallest seed) on a crop of the first test image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metrics.image import psnr, to_uint8

    from .dncnn import center_crop

    def message(text):
        fig, ax = plt.subplots(figsize=(7, 1))
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, wrap=True)
        ax.axis("off")
        return fig

    chosen = _fig8_inputs(frame)
    if chosen is None:
        return message("Fig. 8: no DnCNN+TV result")
    profile, seed, sigma, device = chosen
    plan = data_plan()
    settings = PROFILES[profile]
    ctx = SimpleNamespace(settings=settings, seed=seed, profile=profile, device=device, progress=None)
    network, _, _ = trained_model(ctx, "DnCNNTV", sigma, plan["train"], train=False)
    if network is None:
        return message(f"Fig. 8: the DnCNN+TV model (sigma {sigma:g}, seed {seed}, {profile}) is not in this "
                       "machine's model cache; run the experiment here to draw it")
    test_id = plan["test"][0]
    sample = test_samples(test_id, data_registry.locate(test_id), sigma=sigma, limit=1)[0]
    clean = center_crop(sample["clean"], settings["fig8_crop"])
    noisy = center_crop(sample["noisy"], settings["fig8_crop"])
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None].to(device)
        stages = {k: v[0].permute(1, 2, 0).cpu().numpy() for k, v in network.stages(x).items()}
    panels = [("clean", clean), ("noisy input I", to_uint8(noisy)), ("I~ = Prox(I, lam_in)", to_uint8(stages["input_tv"])),
              ("R(I~) + I~", to_uint8(stages["estimate"])), ("output: Prox(., lam_out)", to_uint8(stages["output"]))]
    lambdas = network.lambdas()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.4))
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(image)
        label = title if title == "clean" else f"{title}\nPSNR {psnr(image, clean, data_range=255.0):.2f} dB"
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    stand_in = " (stand-in data)" if plan["train"] != TRAIN_SET or test_id == STAND_IN_TEST else ""
    fig.suptitle(f"DnCNN+TV, sigma {sigma:g}, seed {seed}, {profile} profile{stand_in}: {test_id} "
                 f"{sample['name']} (central {clean.shape[0]}x{clean.shape[1]})\nlam_in (R, G, B) "
                 f"{', '.join(f'{v:.3g}' for v in lambdas['input'])}; lam_out "
                 f"{', '.join(f'{v:.3g}' for v in lambdas['output'])}", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    return fig
