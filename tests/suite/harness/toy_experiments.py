"""Toy experiments for the harness tests (registered under the paper id ``toypaper``).

A subprocess finds them through ENERGYBENCH_PLUGINS=tests.suite.harness.toy_experiments.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from suite.harness import experiment

PROFILES = {p: {"seeds": [0], "sleep": 0.0} for p in ("smoke", "mini", "full")}
PROFILES["mini"] = {"seeds": [0, 1], "sleep": 0.0}


def _count(cell):
    """Each call appends a line to a log, so tests can tell which cells really ran."""
    log = os.environ.get("TOY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{cell['n']}\n")


@experiment("toypaper.square", table="Table 1", title="squares", grid={"n": [1, 2, 3, 4]}, profiles=PROFILES)
def square(ctx, cell):
    _count(cell)
    time.sleep(float(os.environ.get("TOY_SLEEP", ctx.settings["sleep"])))
    ctx.record(row=f"n={cell['n']}", column="square", metric="value", value=cell["n"] ** 2 + 0.1 * ctx.seed,
               higher_is_better=True)
    ctx.record(row=f"n={cell['n']}", column="curve", metric="loss", value=1.0 / (1 + ctx.seed), step=0,
               higher_is_better=False)
    return ctx.records


@experiment("toypaper.flaky", table="Table 2", title="one cell fails", grid={"n": [1, 2]}, profiles=PROFILES)
def flaky(ctx, cell):
    if cell["n"] == 2:
        raise RuntimeError("boom in cell 2")
    ctx.record(row="ok", column="c", metric="m", value=1.0, higher_is_better=True)
    ctx.not_run(row="peer", column="c", metric="m", reason="peer not installed")
    return ctx.records


@experiment("toypaper.skipped", table="Table 3", title="nothing measured", grid={"n": [1]}, profiles=PROFILES)
def skipped(ctx, cell):
    marker = os.environ.get("TOY_MARKER")
    if marker and Path(marker).exists():
        ctx.record(row="peer", column="c", metric="m", value=3.0, higher_is_better=True)
    else:
        ctx.not_run(row="peer", column="c", metric="m", reason="peer not installed")
    return ctx.records
