"""Run cells on a Ray cluster (``energybench run ... --executor ray``).

Cells are independent, so a cluster is a pool of workers: each cell becomes a Ray task that asks
for its CPUs (``threads`` in the experiment's settings, else 1) and, on CUDA, one GPU. The worker
computes the cell and sends the result back; the driver writes it under ``results/cells/`` with
the same lock and atomic write as a local run, so a killed driver loses only unfinished cells and
a rerun skips the finished ones. Timing cells run after the others, one at a time, so that
nothing shares their device.

Setting up a cluster (every node with this repository at the same commit installed, and the
datasets the cells read under its data root)::

    ray start --head                      # on one machine
    ray start --address HEAD:6379         # on each worker
    energybench run adm --executor ray --address HEAD:6379 --device cuda

Without ``--address`` (and without ``$RAY_ADDRESS``) a private local Ray instance is started,
which is how the tests exercise this path; ``--address auto`` joins a cluster started on this
machine with ``ray start``. Keys carry the workers' device class, probed on a worker, so a
cluster should be of one device class; each cell's provenance names the host it ran on. A worker
whose code differs from the driver's refuses to run (see ``runner.compute``).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from . import provenance, registry

PASSED_ENVIRONMENT = ("ENERGYBENCH_PLUGINS", "ENERGYBENCH_DATA", "ENERGYBENCH_CACHE")

# --------------------------------------------------------------------------- local processes
#
# The workers of a ``-j N`` run must not outlive their driver: ``timeout``, batch schedulers and
# CI stop a run with SIGTERM (or SIGKILL, which no handler sees), and an orphaned worker would
# keep computing a cell nobody stores, then idle holding its memory. Three layers: the kernel
# kills a worker when the driver dies (PR_SET_PDEATHSIG, Linux), a watchdog thread in each
# worker exits when its parent changes (any POSIX system, within a second), and a driver that
# is interrupted (Ctrl-C, SIGTERM turned into an exception by the CLI) terminates its workers
# itself before it exits (:func:`stop_local_pool`). Workers ignore SIGINT: Ctrl-C in a terminal
# reaches the whole process group, and only the driver should answer it (with one line).

WATCHDOG_SECONDS = 0.5


def _die_with_parent_linux() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watchdog still covers it
        pass


def _watch_parent(parent: int) -> None:
    import time

    while True:
        if os.getppid() != parent:
            os._exit(1)  # the driver is gone: nobody will store what this worker computes
        time.sleep(WATCHDOG_SECONDS)


def local_worker_init(parent: int) -> None:
    """Initializer of a local worker process (``ProcessPoolExecutor(initializer=...)``): ignore
    Ctrl-C and exit when the driver ``parent`` dies."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent_linux()
    if os.getppid() != parent:  # the driver died before this worker started
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="energybench-parent-watchdog", daemon=True).start()


def local_pool(workers: int):
    """A ``ProcessPoolExecutor`` of spawned workers that die with this process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a forked child would inherit torch's thread pools and any CUDA context.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=local_worker_init, initargs=(os.getpid(),))


def stop_local_pool(pool) -> None:
    """Cancel what has not started and terminate the workers now (an interrupted driver)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RuntimeError('--executor ray needs Ray: pip install -e ".[ray]"') from None
    return ray


def _probe(device: str) -> tuple[str, str]:
    """On a worker: the device a cell will use and its class."""
    from suite.harness import runner

    resolved = runner.resolve_device(device)
    return resolved, provenance.device_class(resolved)


def _compute(task, options, device: str, threads: int, command: str) -> dict[str, Any]:
    """On a worker: one cell's payload (the driver stores it)."""
    import torch

    from suite.harness import runner

    torch.set_num_threads(max(1, threads))
    payload = runner.compute(task, options, device=device)
    # the worker's argv is Ray's; the command that asked for the cell is the driver's
    payload["provenance"].update({"command": command, "executor": "ray"})
    return payload


@dataclass
class RayCluster:
    """A connection to a Ray cluster and the device its workers run cells on."""

    device: str
    device_class: str
    started_here: bool

    @classmethod
    def connect(cls, options) -> "RayCluster":
        ray = _import_ray()
        # nothing given: a private local instance, never whichever cluster happens to run here
        address = options.address or os.environ.get("RAY_ADDRESS") or "local"
        started_here = not ray.is_initialized() and address == "local"
        if not ray.is_initialized():
            environment = {k: os.environ[k] for k in PASSED_ENVIRONMENT if k in os.environ}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": environment} if environment else None)
        wanted = options.device
        if wanted == "auto":
            wanted = "cuda" if ray.cluster_resources().get("GPU", 0) >= 1 else "cpu"
        gpus = 1 if wanted.startswith("cuda") else 0
        try:
            device, device_class = ray.get(ray.remote(_probe).options(num_cpus=1, num_gpus=gpus).remote(wanted))
        except ray.exceptions.RayTaskError as error:
            raise ValueError(f"--device {options.device}: the cluster's workers cannot use it ({error.cause})") from None
        return cls(device=device, device_class=device_class, started_here=started_here)

    def close(self) -> None:
        """Stop the private local instance this run started (a cluster it joined stays up)."""
        if self.started_here:
            _import_ray().shutdown()

    def run(self, tasks: list, options, *, on_result: Callable[[Any, dict | None], None],
            one_at_a_time: bool = False) -> None:
        """Submit ``tasks``; call ``on_result(task, payload)`` as each finishes (payload None when
        the worker died: the cell is not written and counts as failed)."""
        if not tasks:
            return
        ray = _import_ray()
        remote = ray.remote(_compute)
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        gpus = 1 if self.device.startswith("cuda") else 0

        def submit(task):
            threads = int(registry.get(task.experiment).settings(options.profile).get("threads") or 1)
            return remote.options(num_cpus=threads, num_gpus=gpus, max_retries=0).remote(
                task, options, self.device, threads, command)

        queue = list(tasks)
        pending = {}
        while queue or pending:
            while queue and (not one_at_a_time or not pending):
                task = queue.pop(0)
                pending[submit(task)] = task
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                payload = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:  # raised in the cell's setup: recorded
                payload = _failed(task, options, self, f"{type(error.cause).__name__}: {error.cause}")
            except ray.exceptions.RayError:  # the worker or its node died: nothing to record
                payload = None
            on_result(task, payload)


def _failed(task, options, cluster: RayCluster, error: str) -> dict[str, Any]:
    return {
        "key": task.key, "experiment": task.experiment, "cell": task.cell, "profile": options.profile,
        "seed": task.seed, "device_class": cluster.device_class, "status": "failed", "records": [],
        "error": error, "provenance": {"device": cluster.device, "executor": "ray"},
    }
