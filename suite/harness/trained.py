"""Trained models cached by content key, checkpointed so that a killed training resumes.

Experiments that train a network inside a cell (LSM, the TV-layer tasks) ask this module for
their model instead of each keeping a cache of its own::

    payload = training_payload(ctx, module=__name__, settings_keys=TRAINING_KEYS,
                               datasets=["mini-flow"], model="lsm", tasks="joint")
    result, cached = cached_training(namespace="lsm", name="lsm-joint", payload=payload,
                                     train=lambda checkpoint: my_train(..., checkpoint=checkpoint))

``train(checkpoint)`` returns a ``torch.save``-able dict (usually ``{"state": ..., "history":
...}``). While it runs it may call ``checkpoint.save({...})`` every so often (``checkpoint.due()``
says when) and must start from ``checkpoint.load()`` when that is not None: a training killed at
any moment then resumes from its last checkpoint instead of from scratch.

Cache layout. ``<root>/<namespace>/<name>-<key>.pt`` holds the finished result and
``<name>-<key>.ckpt.pt`` the last checkpoint of an unfinished one, where the key hashes the
payload (settings, seed, profile, data versions, source hash of the training code, device class).
Both are written to a temporary file and renamed, so a reader never sees half a file; a file lock
per key makes a second process that needs the same model wait for the first and then load its
result. A corrupt or unreadable file is never trusted: the result is retrained (a corrupt
checkpoint restarts the training), with a warning naming the file.

The root is ``$ENERGYBENCH_CACHE`` (else ``~/.cache/energybench``); tests point it at a
temporary folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from filelock import FileLock

__all__ = ["Checkpoint", "cache_root", "cached_training", "payload_key", "save_atomic", "training_payload"]

#: Seconds between checkpoints by default: often enough that a kill loses little, rarely enough
#: that writing the state costs nothing next to the training itself.
DEFAULT_CHECKPOINT_SECONDS = 60.0


def cache_root(namespace: str) -> Path:
    """``$ENERGYBENCH_CACHE/<namespace>``, else ``~/.cache/energybench/<namespace>``."""
    if not namespace or "/" in namespace or namespace.startswith("."):
        raise ValueError(f"namespace: expected a plain folder name, got {namespace!r}")
    base = os.environ.get("ENERGYBENCH_CACHE") or str(Path.home() / ".cache" / "energybench")
    return Path(base) / namespace


def payload_key(payload: Mapping[str, Any]) -> str:
    """24 hex digits of sha256 over the canonical JSON of ``payload``."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def training_payload(ctx, *, module: str, settings_keys: Iterable[str], datasets: Iterable[str] = (),
                     **extra: Any) -> dict[str, Any]:
    """What a trained model depends on: the seed, the profile, the named training settings,
    the versions of ``datasets``, the source hash of ``module`` (and all it imports), the
    device class, and ``extra`` (model variant, task set...)."""
    from suite.data import registry

    from . import keys, provenance

    settings = ctx.settings
    return {
        "seed": ctx.seed, "profile": ctx.profile,
        "settings": {k: settings.get(k) for k in sorted(settings_keys)},
        "data": {d: registry.version(d) for d in sorted(set(datasets))},
        "source": keys.source_hash(module),
        "device_class": provenance.device_class(ctx.device),
        **extra,
    }


def save_atomic(path: Path, obj: Any) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, what: str) -> Any | None:
    if not path.is_file():
        return None
    try:
        # Results hold tensors, numbers, strings, lists and dicts only.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is discarded, never trusted
        warnings.warn(f"{what} {path} is unreadable ({type(error).__name__}: {error}); discarding it",
                      RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None


class Checkpoint:
    """The resumable state of one training: ``load()`` what was saved, ``save(state)`` atomically.

    ``due()`` is True once ``every_seconds`` have passed since the last save (or when
    ``every_steps`` is set and ``step`` is a multiple of it), so that a loop can write::

        if checkpoint.due(step):
            checkpoint.save({"step": step, "model": ..., "optimizer": ..., "history": ...})
    """

    def __init__(self, path: Path, *, every_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
                 every_steps: int | None = None):
        self.path = Path(path)
        self.every_seconds = float(every_seconds)
        self.every_steps = every_steps
        self._last = time.monotonic()
        self.saves = 0

    def load(self) -> Any | None:
        return _load(self.path, "checkpoint")

    def due(self, step: int | None = None) -> bool:
        if self.every_steps and step is not None and step > 0 and step % self.every_steps == 0:
            return True
        return time.monotonic() - self._last >= self.every_seconds

    def save(self, state: Any) -> None:
        save_atomic(self.path, state)
        self._last = time.monotonic()
        self.saves += 1

    def save_training(self, *, step: int, model, optimizer, scheduler=None, **extra: Any) -> None:
        """Save what a training loop needs to resume at ``step``: the model, optimizer and (optional)
        scheduler states, plus ``extra`` (random-generator states, history...)."""
        state = {"step": int(step), "model": model.state_dict(), "optimizer": optimizer.state_dict(), **extra}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        self.save(state)

    def resume(self, model, optimizer, scheduler=None) -> dict | None:
        """Restore ``model``, ``optimizer`` and ``scheduler`` from the last :meth:`save_training`.

        Returns:
            The saved dict (``step`` and the extras) to continue from, or None when there is none.
        """
        state = self.load()
        if state is None:
            return None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        return state

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def cached_training(*, namespace: str, name: str, payload: Mapping[str, Any],
                    train: Callable[[Checkpoint], Any], every_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
                    every_steps: int | None = None) -> tuple[Any, bool]:
    """The result of ``train`` for ``payload``: loaded from the cache, or trained and stored.

    Args:
        namespace: cache folder (one per paper, e.g. ``"lsm"``).
        name: readable prefix of the files (e.g. ``"lsm-joint-s0"``); the key makes them unique.
        payload: everything the result depends on (see :func:`training_payload`).
        train: ``train(checkpoint) -> result``; resumes from ``checkpoint.load()`` when not None.
        every_seconds, every_steps: checkpoint cadence handed to :class:`Checkpoint`.

    Returns:
        ``(result, cached)``: ``cached`` is True when the result was loaded, not trained now.
    """
    if not name or "/" in name:
        raise ValueError(f"name: expected a file-name prefix without '/', got {name!r}")
    root = cache_root(namespace)
    root.mkdir(parents=True, exist_ok=True)
    key = payload_key(payload)
    final = root / f"{name}-{key}.pt"
    with FileLock(str(root / f".{name}-{key}.lock")):
        stored = _load(final, "cached model")
        if stored is not None:
            return stored, True
        checkpoint = Checkpoint(root / f"{name}-{key}.ckpt.pt", every_seconds=every_seconds, every_steps=every_steps)
        result = train(checkpoint)
        save_atomic(final, result)
        checkpoint.clear()
        return result, False
