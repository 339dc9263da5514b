"""Two-phase training of the ADM paper, a process-safe model cache, and evaluation.

Phase 1 trains the network with pCE on the scribbles. Phase 2 starts every regularized method
(dense CRF GD, grid CRF GD, grid CRF ADM) from the same phase-1 weights. The baselines "full
supervision" and "train w/ proposals" train from the same random initialisation for the
iterations of both phases together.

Model cache. A trained model (its state dict and its training history, e.g. the Fig. 3 curve)
is stored once under :func:`cache_root` as ``<network>-<method>-len<r>-<key>.pt`` where the key
hashes everything that changes it: network, method, scribble length, seed, profile, the training
settings (:data:`settings.TRAINING_KEYS`), the dataset versions, the source hash of this package
and of the solvers it imports, and the device class. A file lock per key serialises two processes
that need the same model (the second waits, then loads); the file is written to a temporary
name and renamed, so a reader never sees half of it. Phase 2 asks the cache for its phase-1
model, so the regularized methods share one pCE run per (network, length, seed). Every cell
can run alone: whatever it needs and is missing is trained (deterministically from the seed).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock

from metrics.segmentation import ConfusionMatrix, trimap_mask
from suite.harness.threads import limit_threads
from suite.harness.trained import save_atomic

from . import data as adm_data
from . import losses, models, seeded
from .settings import TRAINING_KEYS, for_network

#: The six columns of the paper's Tables 2-3 ("grid-adm" is the paper's ADM, Eqs. 7-8 with the
#: hard scribble constraints), then the public code's ADM variant (no constraints; CE over all
#: pixels), trained and reported as its own, labelled column (Table 2 only).
PAPER_METHODS = ("full", "proposals", "pce", "dense-gd", "grid-gd", "grid-adm")
ADM_METHODS = ("grid-adm", "grid-adm-public")
#: A control, not a method of the paper: phase 2 with pCE alone (the phase-1 model trained for the
#: phase-2 iterations more, same lr), so a regularizer's gain is told apart from the extra training
#: every phase-2 method gets.
CONTROL = "pce-continued"
METHODS = PAPER_METHODS + ("grid-adm-public", CONTROL)
PHASE_TWO = ("dense-gd", "grid-gd", "grid-adm", "grid-adm-public", CONTROL)
METHOD_COLUMNS = {
    "full": "Full sup.", "proposals": "train w/ proposals", "pce": "pCE loss",
    "dense-gd": "+dense CRF GD", "grid-gd": "+grid CRF GD", "grid-adm": "+grid CRF ADM",
    "grid-adm-public": "+grid CRF ADM (public code: no hard constraints)",
    CONTROL: "pCE loss, continued for phase 2 (control: no regularizer)",
}
ENV_CACHE = "ENERGYBENCH_ADM_CACHE"


def cache_root() -> Path:
    """``$ENERGYBENCH_ADM_CACHE``, else ``$ENERGYBENCH_CACHE/adm-models``, else ``~/.cache/energybench/adm-models``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("ENERGYBENCH_CACHE") or str(Path.home() / ".cache" / "energybench")
    return Path(base) / "adm-models"


def derived_seed(*parts: Any) -> int:
    """A stable 31-bit seed from a seed and names (independent of call order and process)."""
    words = [zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class Trained:
    """A trained network and what its training left: ``history`` (curves, timings, skipped)."""

    model: torch.nn.Module
    history: dict = field(default_factory=dict)
    cached: bool = False


# ---------------------------------------------------------------------------------------------
# Data, cached per process
# ---------------------------------------------------------------------------------------------
_DATA: dict[tuple, Any] = {}


def _data_key(ctx, *parts) -> tuple:
    s = ctx.settings
    return (ctx.profile, s["data"], s.get("side"), s.get("train_images"), s.get("val_images"),
            tuple(sorted(ctx.data.allowed)), tuple(sorted(_versions(ctx).items())), *parts)


def _versions(ctx) -> dict:
    from suite.data import registry

    return {d: registry.version(d) for d in adm_data.dataset_ids(ctx.settings)}


def training_set(ctx, *, length: float, part: str = "train") -> adm_data.StreamingTrainingSet:
    """The training set (``part="train"``) or the held-out split of it, cached per process."""
    key = _data_key(ctx, part, float(length), ctx.settings.get("heldout_images"))
    if key not in _DATA:
        _DATA[key] = adm_data.load_training_set(ctx, length=length, part=part)
    else:
        for dataset_id in adm_data.dataset_ids(ctx.settings):
            ctx.data.path(dataset_id)  # record the versions read, as a fresh load would
    return _DATA[key]


def evaluation_set(ctx) -> adm_data.EvaluationSet:
    key = _data_key(ctx, "val")
    if key not in _DATA:
        _DATA[key] = adm_data.load_evaluation_set(ctx)
    return _DATA[key]


def heldout_set(ctx) -> adm_data.EvaluationSet:
    """The held-out validation split (training images never trained on) that selects the weights."""
    key = _data_key(ctx, "heldout", ctx.settings.get("heldout_images"))
    if key not in _DATA:
        _DATA[key] = adm_data.load_heldout_set(ctx)
    return _DATA[key]


def subset_indices(count: int, size: int, *, seed: int) -> list[int]:
    """``size`` training indices drawn without replacement (Table 1's random training subset)."""
    rng = np.random.default_rng(derived_seed(seed, "table1-subset"))
    return sorted(rng.choice(count, size=min(count, size), replace=False).tolist())


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------
def _crop_batch(images, maps, crop: int | None, generator: torch.Generator):
    """Random crops of ``crop`` x ``crop`` (padded with the mean colour / 255), else stacking."""
    if crop is None:
        return torch.stack(images), [torch.stack(m) for m in maps]
    out_images, out_maps = [], [[] for _ in maps]
    mean = torch.tensor(models.INPUT_MEAN)[:, None, None]
    for i, image in enumerate(images):
        height, width = image.shape[1:]
        pad_h, pad_w = max(0, crop - height), max(0, crop - width)
        if pad_h or pad_w:
            image = F.pad(image - mean, (0, pad_w, 0, pad_h)) + mean
        top = int(torch.randint(image.shape[1] - crop + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[2] - crop + 1, (1,), generator=generator))
        out_images.append(image[:, top:top + crop, left:left + crop])
        for j, m in enumerate(maps):
            label = F.pad(m[i], (0, pad_w, 0, pad_h), value=adm_data.UNLABELLED) if (pad_h or pad_w) else m[i]
            out_maps[j].append(label[top:top + crop, left:left + crop])
    return torch.stack(out_images), [torch.stack(m) for m in out_maps]


def make_batch(dataset: adm_data.TrainingSet, indices, targets, *, crop, generator):
    """Images ``(B, 3, H, W)``, scribbles and targets ``(B, H, W)``, randomly mirrored; and the
    ``(B,)`` bool mirror flags."""
    images = [dataset.images[i] for i in indices]
    scribbles = [dataset.scribbles[i] for i in indices]
    target = [targets[i] for i in indices]
    images, (scribbles, target) = _crop_batch(images, [scribbles, target], crop, generator)
    flip = torch.rand(len(indices), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    scribbles = torch.where(flip[:, None, None], scribbles.flip(-1), scribbles)
    target = torch.where(flip[:, None, None], target.flip(-1), target)
    return images, scribbles, target, flip


def unflip(tensor: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Undo the mirroring of a ``(B, ..., W)`` batch (the dense loss is mirror-invariant, so it
    can use the lattices of the stored, unmirrored images)."""
    shape = (-1,) + (1,) * (tensor.dim() - 1)
    return torch.where(flip.to(tensor.device).view(shape), tensor.flip(-1), tensor)


_LATTICES: dict[tuple, Any] = {}


def dense_lattices(dataset: adm_data.TrainingSet, indices, *, sigma_xy: float, sigma_rgb: float) -> list:
    """Permutohedral lattices of the stored training images, built once per process and image."""
    from suite.solvers import crf

    out = []
    for i in indices:
        key = (dataset.names[i], tuple(dataset.images[i].shape), float(sigma_xy), float(sigma_rgb))
        if key not in _LATTICES:
            _LATTICES[key] = crf.dense_crf_lattices(dataset.images[i][None], sigma_xy=sigma_xy, sigma_rgb=sigma_rgb)[0]
        out.append(_LATTICES[key])
    return out


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def make_optimizer(model, *, name: str, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {name!r}")


def proposals_for(dataset: adm_data.TrainingSet, *, smoothness: float, iterations: int) -> list[torch.Tensor]:
    """GrabCut-style proposals grown from each image's scribbles (hard constraints), as labels."""
    out = []
    for image, scribbles in zip(dataset.images, dataset.scribbles):
        labels = seeded.grid_segmentation(image.permute(1, 2, 0).numpy(), scribbles.numpy(),
                                          smoothness=smoothness, iterations=iterations)
        out.append(torch.from_numpy(np.asarray(labels, np.uint8)))  # uint8: 10,582 maps at native size
    return out


def grid_curve_point(model, images: list[torch.Tensor], *, device: str, batch: int = 16) -> dict:
    """Mean grid-CRF loss (Eq. 1 on argmax S, and Eq. 9/2 on S; lambda = 1, per pixel) on ``images``."""
    energies, relaxed = [], []
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(images), batch):
        part = images[start:start + batch]
        same = all(tuple(x.shape) == tuple(part[0].shape) for x in part)
        chunks.extend([part] if same else [[x] for x in part])
    with torch.no_grad():
        for part in chunks:
            chunk = torch.stack(part).to(device)
            probs = losses.upsample(model(chunk), chunk.shape[-2:]).softmax(1)
            weights = losses.grid_weights_batch(chunk, smoothness=1.0)
            energies.extend(losses.grid_crf_energy(probs.argmax(1), weights))
            relaxed.extend(losses.grid_crf_relaxed(probs, weights))
    model.train(was_training)
    return {"grid_crf_loss": float(np.mean(energies)), "grid_crf_relaxed": float(np.mean(relaxed)),
            "grid_crf_loss_std": float(np.std(energies)), "n": len(energies)}


def train_network(model: torch.nn.Module, dataset: adm_data.TrainingSet, *, method: str, iterations: int,
                  lr: float, settings, seed: int, device: str, targets: list | None = None,
                  curve: Callable[[torch.nn.Module], dict] | None = None, progress=None) -> dict:
    """Train ``model`` in place with the loss of ``method`` (module doc of :mod:`.losses`).

    Args:
        model: the network (phase 2: already holding the phase-1 weights).
        dataset: training samples at the training resolution.
        method: one of :data:`METHODS`.
        iterations, lr: SGD iterations and base learning rate (poly decay, power 0.9).
        settings: the profile settings (batch_size, crop, optimizer, adm, grid_gd, dense_gd, processes).
        seed: seeds the batch order, the crops and the mirroring.
        targets: dense targets for "full" / "proposals" (one ``(H, W)`` map per sample).
        curve: called every ``curve_every`` iterations (and before the first) for Fig. 3.

    Returns:
        The history: ``loss`` per iteration, ``curve`` points, ``seconds``.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    s = settings
    generator = torch.Generator().manual_seed(derived_seed(seed, method, "batches"))
    # Dropout draws from torch's global generator: seed it here, so a phase-2 run is the same
    # whether its phase-1 model was just trained in this process or loaded from the cache.
    torch.manual_seed(derived_seed(seed, method, "dropout"))
    optimizer = make_optimizer(model, name=s["optimizer"], lr=lr, momentum=s["momentum"],
                               weight_decay=s["weight_decay"])
    if targets is None:
        targets = dataset.scribbles
    adm, grid_gd, dense_gd = s["adm"], s["grid_gd"], s["dense_gd"]
    executor = None
    processes = s.get("processes")
    if method in ADM_METHODS and processes != 1:
        import multiprocessing

        workers = processes or os.cpu_count() or 1
        if workers > 1:
            executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
                "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"))
    history: dict[str, Any] = {"loss": [], "curve": []}
    stack = contextlib.ExitStack()
    started = time.perf_counter()
    model.to(device).train()
    steps = range(int(iterations))
    if progress is not None:
        steps = progress(steps, desc=f"{method}", total=int(iterations))
    try:
        # numba's pool beside torch's threads stalls the permutohedral filter on a shared machine
        stack.enter_context(limit_threads(torch_threads=s.get("threads"), numba_threads=1))
        if curve is not None:
            history["curve"].append({"step": 0, **curve(model)})
        for step in steps:
            for group in optimizer.param_groups:
                group["lr"] = lr * (1.0 - step / max(1, int(iterations))) ** 0.9
            indices = torch.randint(len(dataset), (s["batch_size"],), generator=generator).tolist()
            images, scribbles, target, flip = make_batch(dataset, indices, targets, crop=s.get("crop"),
                                                         generator=generator)
            images, scribbles = images.to(device), scribbles.to(device)
            logits = model(images)
            out_size = tuple(logits.shape[-2:])
            shrunk = adm_data.shrink_labels(target, out_size, num_classes=logits.shape[1]).to(device)
            loss = losses.partial_cross_entropy(logits, shrunk)
            if method in PHASE_TWO and method != CONTROL:
                logits_full = losses.upsample(logits, images.shape[-2:])
                probs = logits_full.softmax(1)
                if method == "dense-gd":
                    if s.get("crop") is None:  # whole stored images: reuse their lattices
                        lattices = dense_lattices(dataset, indices, sigma_xy=dense_gd["sigma_xy"],
                                                  sigma_rgb=dense_gd["sigma_rgb"])
                        term = losses.dense_crf_term(unflip(probs, flip), None, unflip(scribbles, flip),
                                                     weight=dense_gd["weight"], lattices=lattices)
                    else:
                        term = losses.dense_crf_term(probs, images, scribbles, weight=dense_gd["weight"],
                                                     sigma_xy=dense_gd["sigma_xy"], sigma_rgb=dense_gd["sigma_rgb"])
                    loss = loss + term
                elif method == "grid-gd":
                    weights = losses.grid_weights_batch(images, smoothness=1.0)
                    loss = loss + losses.grid_gd_term(probs, weights, weight=grid_gd["weight"])
                else:
                    # grid-adm: the paper's Eqs. (7)-(8), X = Y on the scribbles, D over Omega_U.
                    # grid-adm-public: the public GC layer (no scribbles passed), CE over all pixels.
                    paper = method == "grid-adm"
                    weights = losses.grid_weights_batch(images, smoothness=adm["smoothness"])
                    latent = losses.latent_labels(probs, weights, cycles=adm["cycles"],
                                                  hard=scribbles if paper else None, executor=executor)
                    loss = loss + losses.adm_term(logits_full, latent, gamma=adm["gamma"],
                                                  scribbles=scribbles if paper else None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["loss"].append(float(loss.detach()))
            if curve is not None and (step + 1) % int(s["curve_every"]) == 0:
                history["curve"].append({"step": step + 1, **curve(model)})
    finally:
        stack.close()
        if executor is not None:
            executor.shutdown()
    history["seconds"] = time.perf_counter() - started
    model.eval()
    return history


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------
def cache_payload(ctx, *, network: str, method: str, length: float, factor: float | None = None) -> dict:
    from suite.harness import keys, provenance

    s = ctx.settings
    init = models.initial_weights(s, network)
    payload = {
        "network": network, "method": method, "length": float(length), "seed": ctx.seed, "profile": ctx.profile,
        "settings": {k: s.get(k) for k in TRAINING_KEYS}, "data": _versions(ctx),
        "source": keys.source_hash(__name__), "device_class": provenance.device_class(ctx.device),
        "init": str(init) if init is not None else None,
    }
    if factor is not None:
        payload["factor"] = float(factor)
    return payload


def cache_path(payload: dict) -> Path:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    factor = f"-x{payload['factor']:g}" if payload.get("factor") is not None else ""
    name = f"{payload['network']}-{payload['method']}{factor}-len{payload['length']:g}-{digest}.pt"
    return cache_root() / name


def new_network(ctx, network: str) -> torch.nn.Module:
    """The network with its seed-determined initialisation (the same for every method), from the
    ImageNet checkpoint of :func:`models.initial_weights` when one is given (loaded strictly)."""
    s = ctx.settings
    torch.manual_seed(derived_seed(ctx.seed, network, "init"))
    return models.build_network(network, num_classes=s["num_classes"], weights=models.initial_weights(s, network),
                                width=s.get("backbone_width", 1.0))


#: The first segment of a record's note for a network trained without its ImageNet checkpoint;
#: the claim engine does not judge value claims on such records (suite.harness.claims).
RANDOM_INIT = "random init"


def init_note(settings, network: str) -> str:
    """What ``network`` started from, for the records' notes."""
    path = models.initial_weights(settings, network)
    if path is not None:
        return f"initialised from {path}"
    if network in models.FULL_NETWORKS:
        return (f"{RANDOM_INIT} (no ImageNet checkpoint: set weights or ${models.WEIGHTS_ENV}/"
                f"{models.WEIGHT_FILES[network]}; the paper starts from ImageNet weights)")
    return f"{RANDOM_INIT} (the mini networks have no pretrained counterpart)"


# ---------------------------------------------------------------------------------------------
# Weights of the regularizers, selected on the held-out split
# ---------------------------------------------------------------------------------------------
#: The setting each regularized method's searched weight scales (the regularizer's strength).
SEARCHED = {"dense-gd": ("dense_gd", "weight"), "grid-gd": ("grid_gd", "weight"),
            "grid-adm": ("adm", "smoothness"), "grid-adm-public": ("adm", "smoothness")}


def scaled_settings(settings, method: str, factor: float) -> dict:
    """``settings`` with the weight of ``method`` (:data:`SEARCHED`) multiplied by ``factor``."""
    if method not in SEARCHED:
        raise ValueError(f"method: expected one of {tuple(SEARCHED)}, got {method!r}")
    group, key = SEARCHED[method]
    out = dict(settings)
    out[group] = {**settings[group], key: float(settings[group][key]) * float(factor)}
    return out


def select_weight(ctx, *, network: str, method: str) -> dict:
    """Choose the weight factor of ``method`` on the held-out split (cached JSON, locked).

    Every candidate of ``weight_search`` (factors of the profile's weight; the same list and the
    same phase-2 budget for every regularized method) is trained at full scribble length from
    the shared phase-1 model and scored by its mIOU on the held-out split (training images never
    trained on); the best factor wins (ties: the one closest to 1). With one candidate nothing
    is trained for the choice.

    Returns:
        ``{"chosen": factor, "weight": the chosen weight, "candidates": [{"factor", "weight",
        "heldout_miou"}, ...], "heldout_images": n}``.
    """
    factors = [float(f) for f in (ctx.settings.get("weight_search") or [1.0])]
    group, key = SEARCHED[method]
    base = float(ctx.settings[group][key])
    if len(factors) == 1:
        return {"chosen": factors[0], "weight": base * factors[0], "heldout_images": 0,
                "candidates": [{"factor": factors[0], "weight": base * factors[0], "heldout_miou": None}]}
    payload = cache_payload(ctx, network=network, method=method, length=1.0)

    def search() -> dict:
        heldout = heldout_set(ctx)
        if not len(heldout):
            raise ValueError(f"weight_search {factors}: needs a held-out split (heldout_images > 0)")
        candidates = []
        for factor in factors:
            trained = trained_model(ctx, network=network, method=method, length=1.0, factor=factor)
            with limit_threads(torch_threads=ctx.settings.get("threads")):
                scores = evaluate_segmentation(trained.model, heldout, num_classes=ctx.settings["num_classes"],
                                               device=ctx.device, trimap_widths=())
            candidates.append({"factor": factor, "weight": base * factor, "heldout_miou": scores["miou"]})
        best = max(candidates, key=lambda c: (c["heldout_miou"], -abs(math.log(c["factor"]))))
        return {"chosen": best["factor"], "weight": best["weight"], "candidates": candidates,
                "heldout_images": len(heldout)}

    return _cached_json(cache_path(payload).with_suffix(".selection.json"), search)


def _cached_json(path: Path, compute) -> dict:
    """``compute()``'s JSON result, computed once under a file lock and kept at ``path`` (a
    damaged file is computed again), so concurrent cells share one search or evaluation."""
    from suite.harness.store import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock"))):
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
        result = compute()
        write_json_atomic(path, result)
        return result


def trained_model(ctx, *, network: str, method: str, length: float = 1.0, factor: float | None = None) -> Trained:
    """The model of ``method`` on ``network`` trained with scribbles of ``length``; cached.

    A regularized method (:data:`SEARCHED`) trains with its weight times ``factor``; None takes
    the factor :func:`select_weight` chose on the held-out split (at full scribble length; the
    shortened-scribble runs reuse it, as the paper keeps its parameters).

    Raises:
        adm_data.DataUnavailable: a dataset is missing. ValueError: a checkpoint that does not fit.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if method in SEARCHED and factor is None:
        factor = select_weight(ctx, network=network, method=method)["chosen"]
    payload = cache_payload(ctx, network=network, method=method, length=length, factor=factor)
    path = cache_path(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock"))):
        if path.is_file():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
                model = new_network(ctx, network)
                model.load_state_dict(stored["state"])
                return Trained(model.to(ctx.device).eval(), stored["history"], cached=True)
            except Exception:  # a corrupt or stale file is retrained, never trusted
                path.unlink(missing_ok=True)
        trained = _train(ctx, network=network, method=method, length=length, factor=factor)
        state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
        save_atomic(path, {"state": state, "history": trained.history, "payload": json.loads(json.dumps(payload, default=str))})
        return trained


def _train(ctx, *, network: str, method: str, length: float, factor: float | None = None) -> Trained:
    s = for_network(ctx.settings, network)
    if factor is not None:
        s = scaled_settings(s, method, factor)
    dataset = training_set(ctx, length=length)
    history: dict[str, Any] = {"skipped": [list(x) for x in dataset.skipped], "train_images": len(dataset),
                               "train_names": list(dataset.names), "init": init_note(s, network),
                               "factor": factor}
    curve = None
    if method in ("grid-gd", "grid-adm") and network == s["figure_network"] and float(length) == 1.0:
        subset = dataset.subset(subset_indices(len(dataset), s["train_subset"], seed=ctx.seed))
        curve = lambda m: grid_curve_point(m, subset.images, device=ctx.device)  # noqa: E731
    if method in PHASE_TWO:
        start = trained_model(ctx, network=network, method="pce", length=length)
        model = start.model
        iterations, lr = s["phase2_iterations"], s["lr_phase2"]
        targets = None
    else:
        model = new_network(ctx, network)
        lr = s["lr_phase1"]
        iterations = s["phase1_iterations"] if method == "pce" else s["full_iterations"]
        targets = None
        if method == "full":
            if any(label is None for label in dataset.labels):
                raise adm_data.DataUnavailable("full supervision needs dense labels for every training image")
            targets = dataset.labels
        elif method == "proposals":
            p = s["proposals"]
            targets = proposals_for(dataset, smoothness=p["smoothness"], iterations=p["iterations"])
    history.update(train_network(model, dataset, method=method, iterations=iterations, lr=lr, settings=s,
                                 seed=ctx.seed, device=ctx.device, targets=targets, curve=curve,
                                 progress=ctx.progress))
    return Trained(model.eval(), history)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def predict(model, inputs: torch.Tensor, size, *, device: str) -> torch.Tensor:
    """Softmax ``(B, K, H, W)`` at ``size`` for inputs ``(B, 3, h, w)`` (no CRF post-processing)."""
    with torch.no_grad():
        logits = model(inputs.to(device))
        return losses.upsample(logits, size).softmax(1).cpu()


def trimap_width(width: int, shape, *, reference: int | None) -> int:
    """The band half-width used on a ground truth of ``shape``: the paper's ``width`` (8 or 16 px
    on VOC images, whose longest side is 500 px) scaled by ``longest side / reference``, rounded,
    at least 1 (the mini scenes: 128 px -> 16 px becomes 4, 8 px becomes 2); ``reference`` None
    keeps ``width`` (full profile)."""
    if reference is None:
        return int(width)
    return max(1, int(round(width * max(shape[:2]) / float(reference))))


def evaluate_segmentation(model, evalset: adm_data.EvaluationSet, *, num_classes: int, device: str,
                          trimap_widths=(16, 8), trimap_reference: int | None = None) -> dict:
    """mIOU, pixel accuracy and trimap accuracies on the evaluation set (VOC protocol).

    One confusion matrix over the whole set (``metrics.segmentation``), void (255) ignored;
    the trimap band is ``dilate(gt == 255, square(2w+1)) & gt != 255`` at the native resolution,
    ``w`` from :func:`trimap_width` (the keys stay ``trimap16`` / ``trimap8``, the paper's names).
    """
    model.eval()
    total = ConfusionMatrix(num_classes, ignore_index=255)
    bands = {w: ConfusionMatrix(num_classes, ignore_index=255) for w in trimap_widths}
    for inputs, label in zip(evalset.inputs, evalset.labels):
        pred = predict(model, inputs[None], label.shape, device=device).argmax(1)[0].numpy()
        total.update(pred, label)
        for w, matrix in bands.items():
            mask = trimap_mask(label, trimap_width(w, label.shape, reference=trimap_reference))
            if mask.any():
                matrix.update(pred, label, mask=mask)
    out = {"miou": 100.0 * total.miou(), "accuracy": 100.0 * total.pixel_accuracy(), "n": len(evalset)}
    for w, matrix in bands.items():
        out[f"trimap{w}"] = 100.0 * matrix.pixel_accuracy() if matrix.matrix.sum() else None
    return out


def evaluation(ctx, *, network: str, method: str, length: float = 1.0) -> dict:
    """Every measurement of one trained model, cached beside it (JSON, atomic, locked).

    Returns a dict with ``val`` (:func:`evaluate_segmentation` plus the grid-CRF loss on the
    validation inputs), ``train_subset`` (the grid-CRF loss on Table 1's random training subset)
    and ``history`` (training curve, seconds, skipped samples).
    """
    selection = select_weight(ctx, network=network, method=method) if method in SEARCHED else None
    factor = selection["chosen"] if selection else None
    payload = cache_payload(ctx, network=network, method=method, length=length, factor=factor)

    def evaluate() -> dict:
        s = ctx.settings
        trained = trained_model(ctx, network=network, method=method, length=length, factor=factor)
        evalset = evaluation_set(ctx)
        dataset = training_set(ctx, length=length)
        subset = dataset.subset(subset_indices(len(dataset), s["train_subset"], seed=ctx.seed))
        with limit_threads(torch_threads=s.get("threads")):
            result = _measure(ctx, trained, evalset, subset)
        result["selection"] = selection
        return result

    return _cached_json(cache_path(payload).with_suffix(".eval.json"), evaluate)


def _measure(ctx, trained: Trained, evalset, subset) -> dict:
    s = ctx.settings
    segmentation = evaluate_segmentation(trained.model, evalset, num_classes=s["num_classes"], device=ctx.device,
                                         trimap_widths=tuple(s["trimap_widths"]),
                                         trimap_reference=s.get("trimap_reference"))
    return {
        "val": {**segmentation, **grid_curve_point(trained.model, evalset.inputs, device=ctx.device)},
        "train_subset": grid_curve_point(trained.model, subset.images, device=ctx.device),
        "history": {k: trained.history.get(k) for k in ("curve", "seconds", "skipped", "train_images", "init",
                                                         "factor")},
        "val_skipped": [list(x) for x in evalset.skipped],
    }
