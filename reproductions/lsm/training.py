"""The LSM trainer: single-task or joint multi-task training of one network (Sec. 4.1, 4.2).

AdamW with the default betas (0.9, 0.999), learning rate 3e-4 and cosine decay to 0 without
warm restarts over the run (Loshchilov & Hutter). The paper's text reads "3 x 10^?" (the exponent
was lost in the PDF extraction); 3e-4 is the reading used here, AdamW's usual scale, and the
notes on the official code (which has no training code) agree that it is likely 10^-4 times 3.

Joint training (Sec. 4.2: "we deploy one task on each GPU and update the network parameters on
CPU") feeds every task of ``samplers`` at each step and takes one optimizer step on the sum of
their losses, i.e. the summed gradients of the four per-GPU batches; a single-task model is the
same loop with one sampler. The loss of each task is :func:`reproductions.lsm.losses.task_loss`.

A killed training resumes: every ``checkpoint.due(step)`` the model, optimizer, scheduler,
sampler generator, torch's global RNG and the history are saved, and a new call with the same
checkpoint continues from there to the same final state as an uninterrupted run.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import nn

from . import losses
from .model import TASKS

__all__ = ["train_lsm", "make_optimizer"]


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, iterations: int):
    """AdamW (0.9, 0.999) and a cosine decay of the learning rate over ``iterations`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, iterations), eta_min=0.0)
    return optimizer, scheduler


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def train_lsm(model: nn.Module, samplers: dict[str, Callable[[torch.Generator], tuple[dict, dict]]], *,
              iterations: int, lr: float = 3e-4, weight_decay: float = 1e-4, seed: int, device: str = "cpu",
              checkpoint=None, progress=None, threads: int | None = None) -> dict:
    """Train ``model`` in place on the tasks of ``samplers`` (one step feeds every task).

    Args:
        model: an :class:`~reproductions.lsm.model.LSM`.
        samplers: ``{task: sampler}``; ``sampler(generator) -> (inputs, targets)`` draws one batch
            (inputs as ``LSM.forward`` takes them, targets as ``losses.task_loss`` takes them).
        iterations: optimizer steps.
        lr: base learning rate (the paper: 3e-4), cosine-decayed to 0.
        weight_decay: AdamW's decoupled weight decay.
        seed: seeds the samplers' generator (and torch's global RNG).
        device: where to train.
        checkpoint: a :class:`suite.harness.trained.Checkpoint` (or None): resumes from
            ``checkpoint.load()``, saves when ``checkpoint.due(step)``.
        progress: ``progress(iterable, desc=..., total=...)`` wrapper (e.g. the context's).
        threads: torch intra-op threads during training (None: leave torch's setting, which uses
            all cores by default).

    Returns:
        The history: ``loss`` ``{task: [per step]}``, ``total`` (sum over tasks per step), ``lr``
        per step, ``step_seconds`` per step, ``seconds_per_step`` (mean), ``seconds`` (this
        call's wall time), ``iterations`` done, ``threads`` used, ``tasks``.

    Raises:
        ValueError: an unknown task, no samplers, bad iterations / lr; RuntimeError: a loss
            that is not finite (names the task and step).
    """
    if not isinstance(samplers, dict) or not samplers:
        raise ValueError(f"samplers: expected a non-empty dict {{task: sampler}}, got {samplers!r}")
    unknown = [t for t in samplers if t not in TASKS]
    if unknown:
        raise ValueError(f"samplers: unknown task(s) {unknown}; expected some of {TASKS}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations: expected an integer >= 0, got {iterations!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    device = torch.device(device)
    model.to(device).train()
    optimizer, scheduler = make_optimizer(model, lr=float(lr), weight_decay=float(weight_decay),
                                          iterations=iterations)
    generator = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    tasks = list(samplers)
    history: dict[str, Any] = {"loss": {t: [] for t in tasks}, "total": [], "lr": [], "step_seconds": [],
                               "tasks": tasks}
    start = 0
    state = checkpoint.resume(model, optimizer, scheduler) if checkpoint is not None else None
    if state is not None:
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]
        start = int(state["step"])
    began = time.perf_counter()
    steps = range(start, iterations)
    if progress is not None:
        steps = progress(steps, desc="lsm " + "+".join(tasks), total=iterations - start)
    try:
        for step in steps:
            tick = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for task in tasks:
                inputs, targets = samplers[task](generator)
                output = model(task, _to(inputs, device))
                loss = losses.task_loss(task, output, _to(targets, device))
                if not bool(torch.isfinite(loss)):
                    raise RuntimeError(f"train_lsm: the {task} loss is {float(loss)} at step {step}; lower lr or "
                                       "raise the model's ridge")
                # Backward per task (the per-GPU batches of the paper): gradients add up, and only
                # one task's graph is alive at a time.
                loss.backward()
                history["loss"][task].append(float(loss.detach()))
                total += float(loss.detach())
            history["lr"].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            history["total"].append(total)
            history["step_seconds"].append(time.perf_counter() - tick)
            done = step + 1
            if checkpoint is not None and done < iterations and checkpoint.due(done):
                checkpoint.save_training(step=done, model=model, optimizer=optimizer, scheduler=scheduler,
                                         generator=generator.get_state(), torch_rng=torch.get_rng_state(),
                                         history=history)
    finally:
        if threads is not None:
            torch.set_num_threads(previous_threads)
    history["iterations"] = len(history["total"])
    history["seconds"] = time.perf_counter() - began
    history["seconds_per_step"] = (sum(history["step_seconds"]) / len(history["step_seconds"])
                                   if history["step_seconds"] else float("nan"))
    history["threads"] = torch.get_num_threads() if threads is None else int(threads)
    model.eval()
    return history
