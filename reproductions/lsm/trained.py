"""LSM models trained once per (task set, variant, seed, settings, code, data) and cached.

Every figure asks this module for its models, so the joint model of a seed is trained once and
used by Figs. 5-8, the zero-shot table (its reference), the ablations (the full model) and the
leaderboards; a killed training resumes from its last checkpoint (``suite.harness.trained``).
The cache key is :func:`suite.harness.trained.training_payload` over
:data:`reproductions.lsm.settings.TRAINING_KEYS`, the task set, the variant and the seed, and the
source hash of this module (which imports the model, the trainer, the data and the settings).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from suite.harness.trained import cached_training, payload_key, training_payload

from . import data as lsm_data
from .settings import TRAINING_KEYS

#: The task sets of the paper's models.
SINGLE = {task: (task,) for task in lsm_data.TASKS}
JOINT = tuple(lsm_data.TASKS)
LEAVE_OUT = {task: tuple(t for t in lsm_data.TASKS if t != task) for task in lsm_data.TASKS}
#: A user-supplied backbone checkpoint (an ImageNet DRN-D-22 state dict): ImageNet weights cannot
#: be downloaded here. Loaded strictly (every key mapped, or a ValueError naming the keys);
#: without it the backbone starts from random init, which the records say.
BACKBONE_ENV = "ENERGYBENCH_LSM_BACKBONE"


@dataclass
class Trained:
    """A trained model and what its training measured."""

    model: Any
    tasks: tuple[str, ...]
    variant: str
    history: dict = field(default_factory=dict)
    seconds: float | None = None
    steps: int | None = None
    cached: bool = False
    initialization: str = "random init"

    @property
    def label(self) -> str:
        return f"{self.variant}:{'+'.join(self.tasks)}"


def backbone_checkpoint(settings) -> str | None:
    """The backbone checkpoint to start from: ``settings["backbone_checkpoint"]``, else
    ``$ENERGYBENCH_LSM_BACKBONE``, else None (random init)."""
    return settings.get("backbone_checkpoint") or os.environ.get(BACKBONE_ENV) or None


def build(settings, variant: str = "full", *, backbone: str | None = None):
    """An untrained LSM with the profile's model settings and ``variant``; the backbone from
    ``backbone`` (strict, :func:`reproductions.lsm.model.build_lsm`) when given."""
    from .model import LSMConfig, build_lsm

    options = dict(settings["model"])
    for key in ("channels", "subspace_dims", "iterations"):
        if key in options:
            options[key] = tuple(options[key])
    return build_lsm(LSMConfig(**options, variant=variant), backbone_checkpoint=backbone)


def model_name(tasks: Sequence[str], variant: str, seed: int) -> str:
    return f"lsm-{variant}-{'+'.join(tasks)}-s{seed}"


def ordered(tasks: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(tasks) - set(lsm_data.TASKS))
    chosen = tuple(t for t in lsm_data.TASKS if t in set(tasks))
    if unknown or not chosen:
        raise ValueError(f"tasks: expected a non-empty subset of {lsm_data.TASKS}, got {list(tasks)!r}")
    return chosen


def model_payload(ctx, *, tasks: Sequence[str], variant: str = "full") -> dict:
    """What the model of ``tasks`` and ``variant`` at ``ctx``'s seed depends on (its cache key)."""
    tasks = ordered(tasks)
    datasets = sorted({d for t in tasks for d in lsm_data.training_datasets(t, ctx.settings)})
    extra = {}
    backbone = backbone_checkpoint(ctx.settings)
    if backbone:  # the weights a training starts from are part of what it depends on
        try:
            extra["backbone"] = hashlib.sha256(Path(backbone).read_bytes()).hexdigest()[:24]
        except OSError as error:
            raise ValueError(f"backbone checkpoint ({BACKBONE_ENV} or settings['backbone_checkpoint']): "
                             f"cannot read {backbone!r} ({error})") from None
    return training_payload(ctx, module=__name__, settings_keys=TRAINING_KEYS, datasets=datasets,
                            model="lsm", tasks=list(tasks), variant=variant, **extra)


def model_key(ctx, *, tasks: Sequence[str], variant: str = "full") -> str:
    return payload_key(model_payload(ctx, tasks=tasks, variant=variant))


def trained_lsm(ctx, *, tasks: Sequence[str], variant: str = "full") -> Trained:
    """The LSM of ``variant`` trained on ``tasks`` (one task: 'Single'; all four: 'Joint'; three:
    a leave-one-out model) with ``ctx``'s profile settings and seed, from the cache or trained now.

    Raises:
        lsm_data.DataUnavailable: a training dataset is absent.
    """
    tasks = ordered(tasks)
    settings = ctx.settings
    payload = model_payload(ctx, tasks=tasks, variant=variant)

    def train(checkpoint):
        from .training import train_lsm

        samplers = lsm_data.training_samplers(ctx, tasks)
        torch.manual_seed(ctx.seed)
        model = build(settings, variant, backbone=backbone_checkpoint(settings))
        started = time.perf_counter()
        resumed = checkpoint.load() is not None
        history = train_lsm(model, samplers, iterations=int(settings["train_iterations"]), lr=float(settings["lr"]),
                            weight_decay=float(settings["weight_decay"]), seed=int(ctx.seed), device=ctx.device,
                            checkpoint=checkpoint, progress=getattr(ctx, "progress", None))
        # a resumed training reports the time of its last part only (and says so)
        seconds = time.perf_counter() - started
        return {"resumed": resumed, "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "history": history,
                "seconds": seconds, "steps": int(settings["train_iterations"]), "device": str(ctx.device),
                "initialization": model.initialization}

    threads = settings.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    result, cached = cached_training(namespace="lsm", name=model_name(tasks, variant, ctx.seed), payload=payload,
                                     train=train)
    model = build(settings, variant)
    model.load_state_dict(result["state"])
    model.to(ctx.device).eval()
    initialization = result.get("initialization", "random init")
    model.initialization = initialization
    return Trained(model=model, tasks=tasks, variant=variant, history=result.get("history") or {},
                   seconds=result.get("seconds"), steps=result.get("steps"), cached=cached,
                   initialization=initialization)
