"""Registry of methods: anything that solves a benchmark task, under an explicit name.

A method is a plain callable with its task's signature (below). The papers' methods, classical
baselines from real libraries and a user's own method are registered the same way and scored by
the same benchmark code, so they share one leaderboard::

    from suite.harness.methods import method

    @method("my-stereo", task="stereo", citation="Me et al. 2026")
    def my_stereo(left, right, *, max_disparity):
        ...
        return disparity

A user's module is found like a user's experiments: through the ``energybench.experiments``
entry points of an installed package, or by naming it in ``ENERGYBENCH_PLUGINS``.
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from . import keys
from .registry import UnknownIdError, load_plugins

#: task -> what a method of that task receives and returns (the contract every method obeys).
TASKS: dict[str, str] = {
    "stereo": "f(left, right, *, max_disparity) -> disparity (H, W) float of the left view, in pixels; "
              "left, right: (H, W, 3) uint8 RGB, rectified",
    "flow": "f(image1, image2) -> flow (H, W, 2) float (u, v) in pixels from image1 to image2; "
            "images (H, W, 3) uint8 RGB",
    "denoising": "f(noisy, *, sigma) -> (H, W, C) float estimate of the clean image in [0, 255]; "
                 "noisy: (H, W, C) float32 (not clipped), sigma: noise std in 0-255 units",
    "edges": "f(image) -> (H, W) float edge probability in [0, 1]; image (H, W, 3) uint8 RGB",
    "interactive-segmentation": "f(image, scribbles) -> (H, W) bool foreground mask; image (H, W, 3) uint8 RGB, "
                                "scribbles (H, W) uint8: 1 foreground, 0 background, 255 unlabelled",
    "video-segmentation": "f(frames, first_mask) -> masks (T, H, W) bool, masks[0] == first_mask; frames (T, H, W, 3) "
                          "uint8 RGB, first_mask (H, W) bool: the object in frame 0 (semi-supervised, DAVIS 2016)",
}

_METHODS: dict[tuple[str, str], "Method"] = {}


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes:
        name: unique within its task (``"opencv-sgbm"``).
        task: one of :data:`TASKS`.
        func: the callable, with the task's signature.
        citation: where the method comes from.
        kind: ``"paper"`` (one of the four papers'), ``"classical"`` (a library baseline) or
            ``"user"``.
        settings: the fixed options it runs with, shown in the leaderboard (no tuning on the
            benchmark: these are the library's or the paper's defaults).
    """

    name: str
    task: str
    func: Callable[..., Any]
    citation: str = ""
    kind: str = "user"
    settings: str = ""

    @property
    def code(self) -> str:
        """A hash of the code that computes the method's output: its module and what that
        imports from this project, plus the module's own text (a user's module lies outside the
        project, whose source hash would not see it). It enters the leaderboard cell's key."""
        module = inspect.getmodule(self.func)
        try:
            text = inspect.getsource(module) if module is not None else inspect.getsource(self.func)
        except (OSError, TypeError):
            text = getattr(self.func, "__qualname__", repr(self.func))
        digest = hashlib.sha256(text.encode())
        digest.update(keys.source_hash(self.func.__module__).encode())
        return digest.hexdigest()[:16]


def method(name: str, *, task: str, citation: str = "", kind: str = "user", settings: str = ""):
    """Register ``func`` as method ``name`` of ``task``.

    Raises:
        ValueError: unknown task or kind, or ``name`` is already taken within ``task`` by
            another function.
    """
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
    if kind not in ("paper", "classical", "user"):
        raise ValueError(f"kind: expected 'paper', 'classical' or 'user', got {kind!r}")
    if not name or "/" in name:
        raise ValueError(f"name: expected a non-empty name without '/', got {name!r}")

    def register(func):
        existing = _METHODS.get((task, name))
        if existing and (existing.func.__module__, existing.func.__qualname__) != (func.__module__, func.__qualname__):
            raise ValueError(f"method {name!r} of task {task!r} is already registered by "
                             f"{existing.func.__module__}.{existing.func.__qualname__}")
        _METHODS[(task, name)] = Method(name=name, task=task, func=func, citation=citation, kind=kind,
                                        settings=settings)
        return func

    return register


def methods_for(task: str) -> list[Method]:
    """Every method of ``task``, papers' first, then classical, then users', by name."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
    load_plugins()
    order = {"paper": 0, "classical": 1, "user": 2}
    return sorted((m for (t, _), m in _METHODS.items() if t == task), key=lambda m: (order[m.kind], m.name))


def get_method(task: str, name: str) -> Method:
    """The method ``name`` of ``task``; an unknown name raises with close matches."""
    load_plugins()
    found = _METHODS.get((task, name))
    if found is None:
        names = [n for (t, n) in _METHODS if t == task]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f" (known: {sorted(names)})"
        raise UnknownIdError(f"unknown {task} method {name!r}{hint}")
    return found
