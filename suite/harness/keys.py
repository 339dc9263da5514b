"""Cell keys: what a cached result depends on, hashed.

key = sha256(experiment id, cell parameters in canonical order, profile, seed, source hash of
the code the experiment imports, versions of the datasets it reads, device class).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any, Mapping

# The code whose change can change a measured value. The harness, the report and the CLI
# are left out on purpose: editing how results are shown must not invalidate them. For the
# same reason a paper's figure module (``reproductions.<paper>.plots``, which only draws
# finished records) is left out: restyling a chart must not retrain or re-evaluate anything.
_TRACKED_ROOTS = ("suite", "metrics", "reproductions")
_UNTRACKED = ("suite.harness", "suite.report", "suite.cli")
_UNTRACKED_LEAVES = ("plots",)


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _tracked(name: str) -> bool:
    parts = name.split(".")
    if parts[0] not in _TRACKED_ROOTS or parts[-1] in _UNTRACKED_LEAVES:
        return False
    return not any(name == u or name.startswith(u + ".") for u in _UNTRACKED)


def _imports(path: Path, module: str) -> set[str]:
    """Modules imported by a source file (absolute and relative), including parent packages."""
    stat = path.stat()
    return set(_imports_of(str(path), module, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=None)
def _imports_of(path: str, module: str, mtime_ns: int, size: int) -> frozenset[str]:
    # Parsing and walking a file's AST is most of a source hash, and the experiments of one run
    # import the same files: each file is parsed once per process and version (mtime, size).
    return frozenset(_parse_imports(Path(path), module))


def _parse_imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from pkg import sub` may name a submodule rather than an attribute.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    parents = {".".join(n.split(".")[:i]) for n in found for i in range(1, n.count(".") + 1)}
    return found | parents


def _is_paper_package(name: str) -> bool:
    """``reproductions`` or ``reproductions.<paper>`` itself (not a module inside it)."""
    parts = name.split(".")
    return parts[0] == "reproductions" and len(parts) <= 2


@functools.lru_cache(maxsize=None)
def source_hash(module: str) -> str:
    """sha256 over the tracked modules ``module`` imports, transitively (static, by AST)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not _tracked(name):
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        if _is_paper_package(name):
            # A paper package's __init__ imports its experiment modules only to register them:
            # following those imports would make every experiment depend on all its siblings, so
            # editing one table would invalidate the results and trained models of the others.
            # What an experiment uses, it imports itself, and that is followed.
            continue
        todo.extend(_imports(path, name))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode())
        digest.update(hashlib.sha256(seen[name].read_bytes()).digest())
    return digest.hexdigest()


def cell_key(*, experiment: str, cell: Mapping[str, Any], profile: str, seed: int, source: str,
             data_versions: Mapping[str, str], device_class: str) -> str:
    payload = canonical({
        "experiment": experiment, "cell": dict(cell), "profile": profile, "seed": seed,
        "source": source, "data": dict(data_versions), "device_class": device_class,
    })
    slug = experiment.replace(".", "-")
    return f"{slug}-{hashlib.sha256(payload.encode()).hexdigest()[:20]}"
