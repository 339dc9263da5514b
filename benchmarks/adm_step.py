"""One ADM training step, end to end, with and without a regularized loss (issue 13).

Shared by ``bench_crf.py`` (dense CRF loss, and the relaxed grid CRF) and ``bench_graphcut.py``
(grid CRF by alpha-expansion, ADM's discrete step). A step is what
``reproductions.adm.training.train_network`` does per iteration, with the same functions:
forward of the network, partial cross-entropy at the output stride, for phase 2 the upsampled
softmax and the method's term (``reproductions.adm.losses``), backward, optimizer step, under the
thread limits of the training loop (``limit_threads(torch_threads=settings["threads"],
numba_threads=1)``).

Settings: the ADM ``mini`` profile (``reproductions.adm.settings``: mini-LargeFOV, 7 classes,
64 x 64 images, batch 8, Adam, the transported weights), or ``--size 321 --batch B`` for the
paper's crop size with the same network (the paper's DeepLab nets need ImageNet weights and are
not built here: a labelled stand-in). Images: photos shipped with scikit-image, resized; scribbles:
lines across a smooth random label map (about 3% of the pixels labelled); the network is at its
random initialisation, so the alpha-expansion's work is that of an untrained network's unaries.
"""
from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np
import torch

from reproductions.adm import losses, models
from reproductions.adm.settings import PROFILES
from reproductions.adm.training import make_optimizer
from suite.harness.threads import limit_threads
from suite.solvers import crf


def make_batch(size: int, batch: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(B, 3, size, size)`` in 0-255 and scribbles ``(B, size, size)`` (255 = unlabelled)."""
    from scipy.ndimage import gaussian_filter
    from skimage import data
    from skimage.transform import resize

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(seed)
    images, scribbles = [], []
    for index in range(batch):
        photo = resize(photos[index % len(photos)], (size, size), anti_aliasing=True, preserve_range=True)
        images.append(photo.transpose(2, 0, 1))
        label_map = gaussian_filter(rng.standard_normal((classes, size, size)), (0, size / 8, size / 8)).argmax(0)
        scribble = np.full((size, size), 255, dtype=np.int64)
        for row in rng.choice(size, size=max(1, size // 32), replace=False):
            scribble[row, size // 8 : size - size // 8] = label_map[row, size // 8 : size - size // 8]
        scribbles.append(scribble)
    return torch.from_numpy(np.stack(images)).float(), torch.from_numpy(np.stack(scribbles))


def timed(function: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall and CPU (this process, all threads) milliseconds of ``repeats`` calls."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def training_step_rows(methods: list[str], *, size: int | None, batch: int | None, repeats: int) -> None:
    """Print one row per method: a whole training step, and the regularized loss's share of it.

    ``methods`` among "dense-gd" (lattices prebuilt per stored image, as mini training does),
    "dense-gd-crop" (lattices built in the step, as with random crops at full), "grid-gd",
    "grid-adm" (the paper's ADM: alpha-expansion with the scribbles as hard constraints, images
    spread over the worker processes of the mini settings), "grid-adm-serial" (the same in this
    process, so that its CPU time is counted).
    """
    settings = dict(PROFILES["mini"])
    side = size or settings["side"]
    batch = batch or settings["batch_size"]
    classes = settings["num_classes"] if size is None else 21
    if size is not None and size != settings["side"]:
        # The mini profile's transport rule (reproductions.adm.settings.transported) to this size.
        from reproductions.adm.settings import transported

        settings.update(transported(side))
    torch.manual_seed(0)
    model = models.build_network("mini-LargeFOV", num_classes=classes)
    optimizer = make_optimizer(model, name=settings["optimizer"], lr=settings["lr_phase2"],
                               momentum=settings["momentum"], weight_decay=settings["weight_decay"])
    images, scribbles = make_batch(side, batch, classes)
    adm, dense = settings["adm"], settings["dense_gd"]
    lattices = crf.dense_crf_lattices(images, sigma_xy=dense["sigma_xy"], sigma_rgb=dense["sigma_rgb"])
    processes = settings.get("processes")
    workers = processes or os.cpu_count() or 1
    executor = ProcessPoolExecutor(workers) if workers > 1 and "grid-adm" in methods else None

    def step(method: str | None) -> None:
        logits = model(images)
        shrunk = torch.nn.functional.interpolate(scribbles[:, None].float(), size=tuple(logits.shape[-2:]),
                                                 mode="nearest")[:, 0].long()
        loss = losses.partial_cross_entropy(logits, shrunk)
        if method is not None:
            logits_full = losses.upsample(logits, images.shape[-2:])
            probs = logits_full.softmax(1)
            if method == "dense-gd":
                term = losses.dense_crf_term(probs, None, scribbles, weight=dense["weight"], lattices=lattices)
            elif method == "dense-gd-crop":
                term = losses.dense_crf_term(probs, images, scribbles, weight=dense["weight"],
                                             sigma_xy=dense["sigma_xy"], sigma_rgb=dense["sigma_rgb"])
            elif method == "grid-gd":
                weights = losses.grid_weights_batch(images, smoothness=1.0)
                term = losses.grid_gd_term(probs, weights, weight=settings["grid_gd"]["weight"])
            elif method in ("grid-adm", "grid-adm-serial"):
                weights = losses.grid_weights_batch(images, smoothness=adm["smoothness"])
                latent = losses.latent_labels(probs, weights, cycles=adm["cycles"], hard=scribbles,
                                              executor=executor if method == "grid-adm" else None)
                term = losses.adm_term(logits_full, latent, gamma=adm["gamma"], scribbles=scribbles)
            else:
                raise ValueError(f"method: expected dense-gd, dense-gd-crop, grid-gd, grid-adm or grid-adm-serial, "
                                 f"got {method!r}")
            loss = loss + term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    print(f"E2E: one ADM training step (mini-LargeFOV, {classes} classes, batch {batch} x 3 x {side} x {side}, "
          f"{settings['optimizer']}, torch threads {settings['threads']}, {workers} graph-cut process(es)); "
          f"median ms of {repeats}")
    print("  load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    try:
        with limit_threads(torch_threads=settings["threads"], numba_threads=1):
            base, base_cpu = timed(lambda: step(None), repeats)
            print(f"  {'pCE only (phase 1)':44s} {base:9.1f} ms wall {base_cpu:9.1f} ms CPU")
            for method in methods:
                wall, cpu = timed(lambda: step(method), repeats)
                share = (wall - base) / wall
                # CPU time is load-independent but misses worker processes (grid-adm's pool).
                cpu_share = "" if method == "grid-adm" and executor is not None else \
                    f"; by CPU time {100 * (cpu - base_cpu) / cpu:5.1f}%"
                print(f"  {'pCE + ' + method:44s} {wall:9.1f} ms wall {cpu:9.1f} ms CPU   "
                      f"the regularized loss: {wall - base:8.1f} ms, {100 * share:5.1f}% of the step "
                      f"({wall / base:5.2f}x the pCE step){cpu_share}")
    finally:
        if executor is not None:
            executor.shutdown()
    print("  (CPU time counts this process only: graph-cut worker processes are not in it)")
