"""Build, verify and add datasets, and record ``data/`` with DVC.

These functions back ``energybench data build|verify|status|add``. They print nothing
(except an optional tqdm progress bar on stderr) and return plain dicts.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import registry
from .registry import default_data_root, get, manifest, repo_root, status  # noqa: F401  (status re-exported)

__all__ = ["build", "verify", "add", "status", "DataVerificationError", "dvc_dir_md5", "read_dvc_md5"]


class DataVerificationError(RuntimeError):
    """Rebuilt data differs from ``data/`` or from the md5 recorded in ``data.dvc``."""

    def __init__(self, report: dict):
        self.report = report
        lines = ["data verification FAILED:"]
        for dataset_id, entry in report["datasets"].items():
            if entry["status"] != "same":
                lines.append(f"  {dataset_id}: {entry['status']}")
                for change in entry.get("differing_files", [])[:10]:
                    lines.append(f"    {change}")
                if len(entry.get("differing_files", [])) > 10:
                    lines.append(f"    ... and {len(entry['differing_files']) - 10} more files")
        dvc = report.get("dvc") or {}
        if dvc.get("match") is False:
            lines.append(f"  data.dvc records md5 {dvc.get('recorded_md5')}, the rebuild gives {dvc.get('rebuilt_md5')}")
        super().__init__("\n".join(lines))


def _generators():
    from .generate import GENERATORS, profile_settings

    return GENERATORS, profile_settings


def _is_repo_data(root: Path) -> bool:
    return root.resolve() == default_data_root().resolve()


def _run_generator(dataset_id: str, folder: str, profile: str, seed: int) -> tuple[str, int]:
    generators, _ = _generators()
    function, _ = generators[dataset_id]
    return dataset_id, function(Path(folder), profile, seed, lambda: None)


def build(*, profile: str = "mini", root: str | os.PathLike | None = None, seed: int = 0, progress: bool = True,
          datasets: list[str] | None = None, workers: int | None = None, record: bool = True) -> dict:
    """Write every generated dataset deterministically under ``<root>/<id>/``, then record
    ``data/`` with DVC (only when ``root`` is the repository's ``data/`` folder).

    Args:
        profile: ``"smoke"`` (tiny) or ``"mini"`` (a few hundred samples per set).
        root: the data folder (default ``<repo>/data``).
        seed: base seed; the same seed and environment give byte-identical files.
        progress: show a tqdm progress bar on stderr.
        datasets: a subset of generated ids (default: all).
        workers: processes (default: up to 2); output does not depend on it.
        record: run ``dvc add data`` when ``root`` is the repository's ``data/``.

    Returns:
        dict with root, profile, seed, seconds, datasets ({id: {samples, version, size_bytes,
        files}}), and dvc ({recorded, md5, nfiles, size} or {recorded: False, reason}).
    """
    generators, profile_settings = _generators()
    settings = profile_settings(profile)
    wanted = list(generators) if datasets is None else list(datasets)
    for dataset_id in wanted:
        if dataset_id not in generators:
            get(dataset_id)  # unknown ids get the registry's suggestions
            raise ValueError(f"datasets: {dataset_id!r} is not a generated dataset (generated: {list(generators)})")
    root = Path(root) if root is not None else default_data_root()
    root.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    started = time.perf_counter()
    # Staged beside root, not inside it: a crash must not leave debris in the DVC-tracked folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-build-", dir=root.resolve().parent))
    from tqdm.auto import tqdm

    total = sum(generators[d][1](settings) for d in wanted)
    bar = tqdm(total=total, desc=f"data build ({profile})", unit="sample", disable=not progress, leave=False)
    counts: dict[str, int] = {}
    try:
        if workers <= 1 or len(wanted) == 1:
            for dataset_id in wanted:
                function, _ = generators[dataset_id]
                counts[dataset_id] = function(staging / dataset_id, profile, seed, lambda: bar.update(1))
        else:
            from suite.harness import executors

            # workers that die with this process and leave Ctrl-C to it (see executors.local_pool)
            pool = executors.local_pool(workers)
            try:
                # Largest first, so the two workers finish close together.
                order = sorted(wanted, key=lambda d: -_COST.get(d, 1) * generators[d][1](settings))
                futures = [pool.submit(_run_generator, d, str(staging / d), profile, seed) for d in order]
                for future in concurrent.futures.as_completed(futures):
                    dataset_id, count = future.result()
                    counts[dataset_id] = count
                    bar.update(generators[dataset_id][1](settings))
            except BaseException:
                executors.stop_local_pool(pool)
                raise
            pool.shutdown(wait=True)
        results = {}
        for dataset_id in wanted:
            target = root / dataset_id
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
            os.replace(staging / dataset_id, target)
            info = manifest(target)
            results[dataset_id] = {"samples": counts[dataset_id], "version": info["version"],
                                   "size_bytes": info["size_bytes"], "files": len(info["files"])}
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    report = {"root": str(root), "profile": profile, "seed": seed, "datasets": results,
              "generation_seconds": round(time.perf_counter() - started, 2)}
    if record and _is_repo_data(root):
        report["dvc"] = _dvc_add(root)
    else:
        report["dvc"] = {"recorded": False,
                         "reason": "not recorded: root is not the repository's data/ folder" if record else "record=False"}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


# Relative cost per sample, for scheduling only.
_COST = {"mini-masks": 2.5, "mini-edges": 1.5, "mini-video": 8.0, "mini-flow": 1.0, "mini-stereo": 1.0,
         "mini-denoise": 0.2, "middlebury2014-motorcycle": 20.0}


# --------------------------------------------------------------------------- DVC


def _dvc_file(root: Path) -> Path:
    return root.parent / f"{root.name}.dvc"


def read_dvc_md5(dvc_file: str | os.PathLike) -> dict | None:
    """The ``md5``, ``nfiles`` and ``size`` of the single output recorded in a ``.dvc`` file."""
    dvc_file = Path(dvc_file)
    if not dvc_file.is_file():
        return None
    text = dvc_file.read_text()
    found = {}
    for key in ("md5", "nfiles", "size"):
        match = re.search(rf"^\s*-?\s*{key}:\s*(\S+)\s*$", text, re.MULTILINE)
        if match:
            found[key] = match.group(1) if key == "md5" else int(match.group(1))
    return found or None


def _dvc_add(root: Path) -> dict:
    """``dvc add <data>`` in the repository holding ``root``; returns what data.dvc records."""
    repository = root.resolve().parent
    command = [sys.executable, "-m", "dvc", "add", "--quiet", root.name]
    completed = subprocess.run(command, cwd=repository, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"`{' '.join(command[2:])}` failed in {repository} (exit {completed.returncode}):\n"
                           f"{completed.stdout}{completed.stderr}")
    recorded = read_dvc_md5(_dvc_file(root)) or {}
    return {"recorded": True, "path": str(_dvc_file(root)), **recorded}


def dvc_dir_md5(files: dict[str, str]) -> str:
    """The md5 DVC 3 records for a directory, from {relative posix path: file md5}.

    DVC hashes the JSON list of ``{"md5": ..., "relpath": ...}`` sorted by relpath
    (``json.dumps(..., sort_keys=True)``) and appends ``.dir``.
    """
    entries = [{"md5": md5, "relpath": relative} for relative, md5 in sorted(files.items())]
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


# --------------------------------------------------------------------------- verify


def _recorded_seed(root: Path, generated: list[str]) -> int:
    for dataset_id in generated:
        meta = root / dataset_id / "meta.json"
        if meta.is_file():
            try:
                return int(json.loads(meta.read_text())["seed"])
            except (ValueError, KeyError):
                continue
    return 0


def _compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    changes = []
    for relative in sorted(set(expected) | set(actual)):
        if relative not in actual:
            changes.append(f"missing: {relative}")
        elif relative not in expected:
            changes.append(f"unexpected: {relative}")
        elif expected[relative] != actual[relative]:
            changes.append(f"differs: {relative} (rebuilt md5 {expected[relative]}, found {actual[relative]})")
    return changes


def verify(*, profile: str = "mini", root: str | os.PathLike | None = None, seed: int | None = None,
           progress: bool = False, strict: bool = True, workers: int | None = None) -> dict:
    """Rebuild the generated datasets in a temporary folder and compare them with ``root``
    (default ``<repo>/data``) file by file, and with the md5 recorded in ``data.dvc``.

    Args:
        profile: the profile ``root`` was built with.
        seed: the build seed (default: the one recorded in the datasets' ``meta.json``, else 0).
        strict: raise :class:`DataVerificationError` on any difference (else only report it).

    Returns:
        dict with ok, profile, seed, datasets ({id: {status, expected_version, actual_version,
        differing_files}}), dvc ({recorded_md5, rebuilt_md5, match} or None when no data.dvc).

    Raises:
        DataVerificationError: (``strict``) a dataset or the data.dvc md5 differs.
    """
    generators, _ = _generators()
    root = Path(root) if root is not None else default_data_root()
    generated = list(generators)
    seed = seed if seed is not None else _recorded_seed(root, generated)
    report: dict = {"root": str(root), "profile": profile, "seed": seed, "datasets": {}, "dvc": None}
    with tempfile.TemporaryDirectory(prefix="energybench-verify-") as temporary:
        rebuilt = build(profile=profile, root=temporary, seed=seed, progress=progress, record=False, workers=workers)
        combined: dict[str, str] = {}
        for dataset_id in generated:
            expected = manifest(Path(temporary) / dataset_id, use_cache=False)
            present = (root / dataset_id).is_dir()
            actual = manifest(root / dataset_id) if present else {"files": {}, "version": registry.ABSENT}
            changes = _compare(expected["files"], actual["files"]) if present else ["dataset folder missing"]
            report["datasets"][dataset_id] = {
                "status": "same" if not changes else ("missing" if not present else "differs"),
                "expected_version": expected["version"], "actual_version": actual["version"],
                "differing_files": changes,
            }
            combined.update({f"{dataset_id}/{k}": v for k, v in expected["files"].items()})
        report["build_seconds"] = rebuilt["seconds"]
    recorded = read_dvc_md5(_dvc_file(root))
    if recorded is not None and "md5" in recorded:
        # Folders in data/ that are not generated (real datasets added by the user) count as they are.
        if root.is_dir():
            for entry in sorted(root.iterdir()):
                # symlinked datasets are invisible to DVC (see add), so to this comparison too
                if entry.name not in generated and not entry.name.startswith(".") and not entry.is_symlink():
                    files = manifest(entry)["files"] if entry.is_dir() else {"": registry.file_md5(entry)}
                    combined.update({f"{entry.name}/{k}".rstrip("/"): v for k, v in files.items()})
        rebuilt_md5 = dvc_dir_md5(combined)
        report["dvc"] = {"path": str(_dvc_file(root)), "recorded_md5": recorded["md5"], "rebuilt_md5": rebuilt_md5,
                         "match": recorded["md5"] == rebuilt_md5}
    report["ok"] = all(e["status"] == "same" for e in report["datasets"].values()) and (
        report["dvc"] is None or report["dvc"]["match"])
    if strict and not report["ok"]:
        raise DataVerificationError(report)
    return report


# --------------------------------------------------------------------------- add


# What `data add` decodes: every sample and every decodable file of a small dataset; of a larger
# one, a deterministic sample (the first, the last and evenly spaced ones between), so adding a
# dataset of 100k images takes minutes, not hours. The report says which was done.
CHECK_ALL_SAMPLES = 1000
CHECK_SAMPLED_SAMPLES = 200
CHECK_ALL_FILES = 5000
CHECK_SAMPLED_FILES = 1000


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _copy_tree(files: list[tuple[str, Path]], destination: Path, progress: bool) -> None:
    """Copy the walked regular files (links resolved) into ``destination``."""
    from tqdm.auto import tqdm

    destination.mkdir(parents=True)
    for relative, path in tqdm(files, desc="data add: copying", unit="file", disable=not progress, leave=False):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _check_dataset(dataset, folder: Path, files: list[tuple[str, Path]], progress: bool) -> dict:
    """Open ``folder`` with the dataset's reader and decode samples and files (see CHECK_*)."""
    from tqdm.auto import tqdm

    from .readers._common import check_file, check_indices, open_reader

    opened = open_reader(dataset.reader, folder)
    every_sample = len(opened) <= CHECK_ALL_SAMPLES
    read = opened.check(limit=None if every_sample else CHECK_SAMPLED_SAMPLES)
    decodable = [path for _, path in files if path.suffix.lower() in _DECODABLE]
    every_file = len(decodable) <= CHECK_ALL_FILES
    chosen = [decodable[i] for i in check_indices(len(decodable), None if every_file else CHECK_SAMPLED_FILES)]
    for path in tqdm(chosen, desc="data add: decoding files", unit="file", disable=not progress, leave=False):
        check_file(path)
    if every_sample and every_file:
        mode = f"every sample ({len(read)}) and every image/array/JSON file ({len(chosen)}) decoded"
    else:
        mode = (f"{len(read)} of {len(opened)} samples and {len(chosen)} of {len(decodable)} image/array/JSON files "
                "decoded (the first, the last and evenly spaced ones: the dataset is large)")
    return {"samples": len(opened), "samples_checked": len(read), "files_checked": len(chosen),
            "files_decodable": len(decodable), "mode": mode, "opened": opened}


_DECODABLE = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".npz", ".npy", ".json")


def add(path: str | os.PathLike, *, as_id: str, link: bool = False, root: str | os.PathLike | None = None,
        overwrite: bool = False, record: bool = True, progress: bool = False) -> dict:
    """Check a real dataset with its reader, then copy (or symlink) it to ``<root>/<as_id>``
    and record ``data/`` with DVC.

    The folder is walked without following links into cycles (see
    :func:`suite.data.registry.walk_dataset`): links are resolved to the files they point at,
    special files, dangling links and links back up the tree are passed over and listed in the
    report. The copy is staged in a hidden folder beside ``root`` and renamed into place only
    once complete and checked, so an interrupted or failing add leaves ``<root>/<as_id>`` as it
    was (absent, or the previous version when overwriting). The check opens the copy with the
    reader and decodes every sample and every image/array/JSON file when the dataset is small
    (up to ``CHECK_ALL_SAMPLES`` samples, ``CHECK_ALL_FILES`` files), else a sample of them (the
    first, the last and evenly spaced ones); the report's ``checked`` says which.

    Args:
        path: the dataset folder in its original layout.
        as_id: a registered dataset id.
        link: symlink instead of copying (the data then stays outside DVC's cache).
        root: the data folder (default ``<repo>/data``).
        overwrite: replace an existing ``<root>/<as_id>``.
        progress: tqdm bars on stderr while copying and decoding.

    Returns:
        dict with id, path, samples, version, linked, checked (what was decoded), skipped
        ([(relative path, reason)] passed over by the walk), dvc.

    Raises:
        ValueError: unknown id, not a folder, no files, a folder inside the target, or the folder
            does not have the layout (LayoutError) or holds a malformed file (MalformedFileError).
        FileExistsError: the dataset is already there and ``overwrite`` is False.
    """
    from .registry import walk_dataset

    dataset = get(as_id)
    given = Path(path).expanduser()
    if not given.is_dir():
        raise ValueError(f"path: expected a dataset folder, got {str(given)!r} "
                         f"({'not found' if not given.exists() else 'not a directory'})")
    source = given.resolve()
    root = Path(root) if root is not None else default_data_root()
    target = root / as_id
    # the target itself is not resolved: a linked dataset (data/<id> -> source) may be re-added
    if _inside(source, root.resolve() / as_id):
        raise ValueError(f"path: {source} is the target {target} itself (or inside it); add from another folder")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise FileExistsError(f"{target} already exists; pass --overwrite (overwrite=True) to replace it, "
                              f"or remove it first (rm -r {target})")
    # fail fast on a wrong layout before walking or copying anything
    from .readers._common import open_reader

    open_reader(dataset.reader, source).check(limit=2)
    walk = walk_dataset(source)
    if _inside(root.resolve(), source):
        # the data folder lies inside the source: its datasets, and add's staging folders beside
        # it, are not part of the dataset being added
        inner = root.resolve().relative_to(source)
        staging_prefix = (inner.parent / f".{root.name}-").as_posix().removeprefix("./")
        walk.files = [(r, p) for r, p in walk.files
                      if not r.startswith(inner.as_posix() + "/") and not r.startswith(staging_prefix)]
    if not walk.files:
        raise ValueError(f"path: {source} holds no regular files"
                         + (f" (passed over: {walk.skipped[:3]})" if walk.skipped else ""))
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-add-", dir=root.resolve().parent))
    try:
        staged = staging / as_id
        if link:
            staged.symlink_to(source, target_is_directory=True)
            checked = _check_dataset(dataset, source, walk.files, progress)
        else:
            _copy_tree(walk.files, staged, progress)
            copied = [(relative, staged / relative) for relative, _ in walk.files]
            checked = _check_dataset(dataset, staged, copied, progress)
        opened = checked.pop("opened")
        if target.exists() or target.is_symlink():
            # the old version leaves only once the new one is complete; both renames stay in one folder tree
            os.replace(target, staging / f"{as_id}.previous")
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = {"id": as_id, "path": str(target), "samples": len(opened), "version": manifest(target)["version"],
              "linked": link, "checked": checked, "skipped": walk.skipped}
    if link:
        # DVC skips symlinks inside a tracked folder (it would record data/ without this dataset),
        # so a linked dataset is versioned by its manifest hash alone, which every result records.
        report["dvc"] = {"recorded": False, "reason": "a linked dataset stays outside DVC (DVC does not follow "
                         f"links); its manifest version {report['version'][:12]} is recorded with every result"}
    elif record and _is_repo_data(root):
        report["dvc"] = _dvc_add(root)
    else:
        report["dvc"] = {"recorded": False, "reason": "root is not the repository's data/ folder" if record else "record=False"}
    return report
