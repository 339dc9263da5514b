"""The dataset registry: what each dataset is, where it is found, and which version is there.

A dataset is found under ``<root>/<id>/`` for the first root of :func:`data_roots` that
has it: the folder named by the environment variable ``ENERGYBENCH_DATA`` (several folders
may be given, separated by ``os.pathsep``), then ``<repository root>/data``. Its version is a
manifest hash: sha256 over the sorted relative paths and md5s of every file in the folder.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

ENV_DATA = "ENERGYBENCH_DATA"
ENV_CACHE = "ENERGYBENCH_CACHE"
ABSENT = "absent"
KINDS = ("real", "generated")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset the suite can read.

    Attributes:
        id: the folder name under a data root, e.g. ``"mini-flow"`` or ``"bsds500"``.
        kind: ``"real"`` (added by the user with ``energybench data add``) or ``"generated"``
            (written by ``energybench data build``).
        layout: the files the reader expects, relative to the dataset folder.
        reader: ``reader(root, **options)`` returning a lazy sequence of sample dicts.
        citation: how the dataset's authors ask to be cited.
        terms: the licence or terms of use.
        how_to_add: what a user does to make the dataset present.
        task: what the dataset is used for (flow, stereo, segmentation, ...).
        description: one line for listings.
    """

    id: str
    kind: str
    layout: str
    reader: Callable
    citation: str
    terms: str
    how_to_add: str = ""
    task: str = ""
    description: str = ""

    def __post_init__(self):
        if not self.id or "/" in self.id or self.id != self.id.strip():
            raise ValueError(f"id: expected a non-empty folder name, got {self.id!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if not self.how_to_add:
            if self.kind == "generated":
                text = "run `energybench data build` (or suite.data.manage.build())"
            else:
                text = (f"get the dataset from its authors, then run `energybench data add PATH --as {self.id}` "
                        f"(layout: {self.layout})")
            object.__setattr__(self, "how_to_add", text)

    def locate(self) -> Path:
        return locate(self.id)

    def open(self, root: str | os.PathLike | None = None, **options):
        """The dataset's lazy sample sequence, from ``root`` or from :func:`locate`.

        Raises:
            LayoutError: the folder does not have the reader's layout.
            MalformedFileError: a file the reader's constructor reads is broken (named).
        """
        from .readers._common import open_reader

        return open_reader(self.reader, Path(root) if root is not None else locate(self.id), **options)


class ConfigurationError(ValueError):
    """An environment variable or path the data layer reads names something unusable (a file
    where a folder is expected, an unreadable cache); the message names the variable or path."""


class DatasetMissing(FileNotFoundError):
    """A registered dataset is not present in any data root."""

    def __init__(self, dataset_id: str, looked_in: list[Path], how_to_add: str):
        self.dataset_id = dataset_id
        self.looked_in = [Path(p) for p in looked_in]
        self.how_to_add = how_to_add
        places = ", ".join(str(p / dataset_id) for p in self.looked_in) or "(no data roots)"
        super().__init__(f"dataset {dataset_id!r} is missing: looked in {places}. To add it: {how_to_add}")


class _Registry(Mapping):
    """Registered datasets by id; the built-in catalog is loaded on first access."""

    def __init__(self):
        self._datasets: dict[str, Dataset] = {}
        self._catalog_loaded = False

    def _ensure_catalog(self) -> None:
        if not self._catalog_loaded:
            self._catalog_loaded = True
            from . import catalog  # noqa: F401  (registers the built-in datasets)

    def add(self, dataset: Dataset) -> Dataset:
        if dataset.id in self._datasets:
            raise ValueError(f"dataset id {dataset.id!r} is already registered")
        self._datasets[dataset.id] = dataset
        return dataset

    def remove(self, dataset_id: str) -> None:
        self._datasets.pop(dataset_id, None)

    def __getitem__(self, dataset_id: str) -> Dataset:
        self._ensure_catalog()
        try:
            return self._datasets[dataset_id]
        except KeyError:
            close = difflib.get_close_matches(dataset_id, list(self._datasets), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"unknown dataset id {dataset_id!r}{hint} (known: {', '.join(sorted(self._datasets))})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        self._ensure_catalog()
        return iter(sorted(self._datasets))

    def __len__(self) -> int:
        self._ensure_catalog()
        return len(self._datasets)

    def __contains__(self, dataset_id) -> bool:
        self._ensure_catalog()
        return dataset_id in self._datasets


DATASETS = _Registry()


def register(dataset: Dataset | None = None, /, **fields):
    """Register a dataset, by call or as a decorator of its reader.

    ``register(Dataset(...))`` registers and returns the dataset;
    ``@register(id="x", kind="real", layout=..., citation=..., terms=...)`` on a reader
    registers ``Dataset(reader=<the decorated function>, **fields)`` and returns the reader.

    Raises:
        ValueError: the id is already registered.
    """
    if dataset is not None:
        if fields:
            raise ValueError("register: give either a Dataset or keyword fields, not both")
        return DATASETS.add(dataset)

    def decorate(reader):
        DATASETS.add(Dataset(reader=reader, **fields))
        return reader

    return decorate


def get(dataset_id: str) -> Dataset:
    """The registered dataset with this id (ValueError with close suggestions if unknown)."""
    return DATASETS[dataset_id]


def repo_root() -> Path:
    """The repository root: the nearest ancestor of this package holding ``pyproject.toml``,
    ``.dvc`` or ``.git``; the current directory when the package is installed elsewhere."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if any((parent / marker).exists() for marker in ("pyproject.toml", ".dvc", ".git")):
            return parent
    return Path.cwd()


def default_data_root() -> Path:
    return repo_root() / "data"


def data_roots() -> list[Path]:
    """Where datasets are looked for, in order: ``$ENERGYBENCH_DATA`` (if set), then ``<repo>/data``."""
    roots: list[Path] = []
    for part in os.environ.get(ENV_DATA, "").split(os.pathsep):
        if part.strip():
            root = Path(part.strip()).expanduser()
            if root.exists() and not root.is_dir():
                raise ConfigurationError(f"{ENV_DATA} names {str(root)!r}, which is a file, not a folder "
                                         f"(set it to data folders separated by {os.pathsep!r}, or unset it)")
            roots.append(root)
    default = default_data_root()
    if default not in roots:
        roots.append(default)
    return roots


def _present(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except PermissionError as error:
        # reported, never taken for an absent dataset (which would send the user to add it again)
        raise ConfigurationError(f"{path}: the dataset folder cannot be read ({error.strerror}); fix its "
                                 "permissions or point ENERGYBENCH_DATA elsewhere") from error
    except OSError:
        return False


def find(dataset_id: str) -> Path | None:
    """The folder of a dataset, or None when absent (the id must be registered)."""
    get(dataset_id)
    for root in data_roots():
        if _present(root / dataset_id):
            return root / dataset_id
    return None


def locate(dataset_id: str) -> Path:
    """The folder of a present dataset.

    Raises:
        ValueError: unknown id (with suggestions).
        DatasetMissing: the dataset is in none of :func:`data_roots`; the message says where it
            was looked for and how to add it.
    """
    dataset = get(dataset_id)
    path = find(dataset_id)
    if path is None:
        raise DatasetMissing(dataset_id, data_roots(), dataset.how_to_add)
    return path


# --------------------------------------------------------------------------- versions


def _cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        base = Path(os.environ[ENV_CACHE]).expanduser()
        if base.exists() and not base.is_dir():
            raise ConfigurationError(f"{ENV_CACHE} names {str(base)!r}, which is a file, not a folder "
                                     "(point it at a cache folder, or unset it)")
        return base / "manifests"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "energybench" / "manifests"


def check_environment() -> None:
    """Raise ConfigurationError now (naming the variable) if ``ENERGYBENCH_DATA`` or
    ``ENERGYBENCH_CACHE`` names a file, rather than deep inside a run."""
    data_roots()
    _cache_dir()


@dataclasses.dataclass
class Walk:
    """What :func:`walk_dataset` found: the regular files, and what it passed over and why."""

    files: list[tuple[str, Path]]
    skipped: list[tuple[str, str]]


def walk_dataset(folder: str | os.PathLike) -> Walk:
    """Every regular file below ``folder`` as (relative posix path, path), sorted, and what was
    passed over (relative path, reason).

    Links to files and to folders are followed (a dataset may be assembled from links), but a
    folder is entered once: a link back to an ancestor or to a folder already walked (a cycle)
    is passed over, so the walk always ends. Special files (FIFOs, sockets, devices) and dangling
    links are passed over, never opened. Names that are not valid UTF-8 are kept as the file
    system gives them (Python's surrogate escapes), so a manifest of them is still defined.
    """
    folder = Path(folder)
    files: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    try:
        top = folder.stat()
    except OSError as error:
        raise FileNotFoundError(f"dataset folder not found or unreadable: {folder} ({error.strerror})") from error
    seen = {(top.st_dev, top.st_ino)}
    stack = [(folder, "")]
    while stack:
        current, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as error:
            skipped.append((prefix or ".", f"folder cannot be listed ({error.strerror})"))
            continue
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            try:
                info = os.stat(entry.path)  # follows links
            except OSError:
                skipped.append((relative, "dangling link" if entry.is_symlink() else "cannot be read"))
                continue
            if stat.S_ISDIR(info.st_mode):
                identity = (info.st_dev, info.st_ino)
                if identity in seen:
                    skipped.append((relative, "link to a folder already walked (a cycle)"))
                    continue
                seen.add(identity)
                stack.append((Path(entry.path), relative + "/"))
            elif stat.S_ISREG(info.st_mode):
                files.append((relative, Path(entry.path)))
            else:
                skipped.append((relative, "special file (FIFO, socket or device)"))
    files.sort()
    return Walk(files=files, skipped=sorted(skipped))


def _walk_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every regular file below ``folder`` (see :func:`walk_dataset`)."""
    return walk_dataset(folder).files


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_hash(entries: list[tuple[str, str]]) -> str:
    """sha256 over sorted ``relpath<TAB>md5<NEWLINE>`` lines."""
    digest = hashlib.sha256()
    for relative, md5 in sorted(entries):
        # surrogateescape: a name that is not UTF-8 hashes as the bytes the file system holds
        digest.update(f"{relative}\t{md5}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def manifest(folder: str | os.PathLike, *, use_cache: bool = True) -> dict:
    """The manifest of a folder: {'files': {relpath: md5}, 'version': hash, 'size_bytes': n}.

    File md5s are cached in a small JSON sidecar in the user cache folder (``$ENERGYBENCH_CACHE``
    or ``~/.cache/energybench``), keyed by the folder's absolute path and validated by each
    file's size and mtime, so repeated calls only stat the files. The sidecar lives outside the
    data folder so that computing a version never changes what DVC tracks.
    """
    folder = Path(folder)
    sidecar = _cache_dir() / (hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:20] + ".json")
    cached: dict = {}
    if use_cache and sidecar.exists():
        try:
            loaded = json.loads(sidecar.read_bytes().decode("utf-8"))
        except PermissionError as error:
            raise ConfigurationError(f"the manifest cache {sidecar} cannot be read ({error.strerror}); delete it "
                                     f"or point {ENV_CACHE} at a folder of yours") from error
        except (OSError, ValueError, RecursionError):
            loaded = {}  # a damaged cache is only recomputed
        files_cached = loaded.get("files") if isinstance(loaded, dict) else None
        if isinstance(files_cached, dict):
            cached = {k: v for k, v in files_cached.items() if isinstance(v, list) and len(v) == 3}
    files, stats, size, changed = {}, {}, 0, False
    for relative, path in _walk_files(folder):
        stat = path.stat()
        size += stat.st_size
        key = [stat.st_size, stat.st_mtime_ns]
        hit = cached.get(relative)
        if hit is not None and hit[1:] == key:
            files[relative] = hit[0]
        else:
            files[relative] = file_md5(path)
            changed = True
        stats[relative] = [files[relative], *key]
    if use_cache and (changed or len(cached) != len(stats)):
        try:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            temporary = sidecar.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"folder": str(folder.resolve()), "files": stats}), encoding="utf-8")
            os.replace(temporary, sidecar)
        except OSError:
            pass  # a read-only cache only costs speed
    return {"files": files, "version": manifest_hash(list(files.items())), "size_bytes": size}


def version(dataset_id: str) -> str:
    """The manifest hash of a dataset's files, or ``"absent"`` when it is not present."""
    path = find(dataset_id)
    if path is None:
        return ABSENT
    return manifest(path)["version"]


def status() -> list[dict]:
    """One row per registered dataset: id, kind, present, version, size_bytes, path."""
    rows = []
    for dataset_id in DATASETS:
        dataset = DATASETS[dataset_id]
        path = find(dataset_id)
        row = {"id": dataset_id, "kind": dataset.kind, "present": path is not None, "version": ABSENT,
               "size_bytes": 0, "path": str(path) if path is not None else None}
        if path is not None:
            info = manifest(path)
            row.update(version=info["version"], size_bytes=info["size_bytes"])
        rows.append(row)
    return rows
