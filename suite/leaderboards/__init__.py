"""Leaderboards: benchmarks (task, dataset, metrics, protocol version) over every registered method.

Importing this package registers the benchmarks and the classical baselines; the harness finds it
through the ``energybench.experiments`` entry point ``leaderboard``.
"""
from . import benchmarks, images, segmentation, stereo_flow, video  # noqa: F401
