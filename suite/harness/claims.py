"""Papers' published tables and claims (``paper.yaml``) and the engine that judges them.

File layout (every field not marked *new* existed before; old files stay valid)::

    paper: adm                      # the paper id (the prefix of its experiment ids)
    title: ...; citation: ...; code: ...; notes: ...
    tables:                         # every table and figure of the paper, in the paper's order
    - table: Table 2                # the name the report shows (and the records' ``table``)
      experiment: adm.table2        # the experiment that rebuilds it; one not registered yet (or
                                    #   *new* omitted / null) shows as "no experiment yet"
      caption: ...; source: {table: 2, page: 6}
      judge: {tolerance: 1.0}       # per-value verdicts at full (or {reference: true})
      values:                       # *new*: optional (a figure without printed numbers has none)
      - {row: ..., column: ..., metric: ..., value: 62.2, unit: '%', std: ..., printed_as: ...}
    claims:
    - id: ...; kind: ordering; text: ...; source: ...; experiment: adm.table2
      ...                           # the kind's fields, below

Claim kinds:
  value        ``select`` equals ``expected`` within ``tolerance`` (absolute) or ``rel_tolerance``;
               judged at the full profile only unless ``profiles`` says otherwise.
  ordering     ``chain`` of selections, best first: each beats the next (direction from the
               records' ``higher_is_better``).
  ratio        ``slower`` / ``faster`` >= ``at_least`` (times: lower is better), only when both
               were measured on the same device class.
  improvement  the gain of ``method`` over ``baseline`` has the sign of ``paper_gain``.

Fields every claim may carry:
  profiles     list of the profiles at which the claim is judged (``[mini, full]``); elsewhere its
               verdict is "not judged". Default: ``[full]`` for ``value`` claims, every profile
               otherwise. No claim is judged at ``smoke`` (seconds-long runs on tiny inputs are
               not evidence), whatever ``profiles`` says.
  min_effect   *new*: a difference (ordering, improvement) smaller than this, in the metric's
               units, is "within noise" even when the seeds agree (``min_effect: 0.5`` for mIOU
               points).
  timing       *new*: ``true`` marks a claim about run times.
  experiment   the experiment whose records are judged; a claim naming one that is not
               registered has the verdict "no experiment".

A selection is a mapping of record fields (``table``, ``row``, ``column``, ``metric``, ``device``,
``unit``...), plus optionally ``experiment`` and ``step``: ``last`` (the final point of a curve),
*new* ``best`` (its best point, by the records' ``higher_is_better``) or *new* an iteration count
N (the first point at or after N).
*New*: a field may be a list (``column: [length 0.8, length 0.5, length 0.3, length 0]``): the
selection then names several rows (every combination of the listed values), its value is their
mean, and the claim is judged only when every one of them was measured ("incomplete: 1 of 4
lengths" otherwise); ``each: lengths`` names them in that message (default: "columns", after
the field).
*New*: ``{published: 52.8, label: "Tome et al. [33] - Huber (paper)"}`` is a published number
rather than a measurement (for claims against a method the suite does not rerun; give such a
claim ``profiles: [full]``, where the protocol is the paper's).

Rules (DESIGN.md, "Claims"), in the order they are applied:
  * "no experiment": an experiment of the claim is not registered (at any profile);
  * "not judged": the profile is not among the claim's (see ``profiles``);
  * completeness: a claim is judged only when every selection is measured and every cell of its
    experiments' grid (times the profile's seeds) has a result. Otherwise "incomplete" with what
    is missing and how many cells have run ("incomplete: 1 of 5 lengths measured (missing ...);
    3 of 20 cells of adm.fig6 have results"), or "not run" when nothing was measured or when
    every cell ran and a row will not come (the cells' reasons are quoted);
  * random init: a ``value`` claim whose records say "random init" in their note (a model trained
    without the pretrained weights the paper starts from) is "not judged", with the number kept;
  * noise: a selection's value is the mean over seeds of the per-seed value (the mean of its
    rows at that seed); its noise is the standard deviation over seeds, or with one seed the
    records' in-cell std (e.g. a standard error over images), else zero. A difference inside the
    noise (or ``min_effect``) is "within noise". A verdict from one seed says "1 seed";
  * every verdict keeps the numbers that decided it and the keys of the cells behind them.

Verdicts: reproduced, within noise, not reproduced, incomplete, not run, not judged,
no experiment.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

REPRODUCED, WITHIN_NOISE, NOT_REPRODUCED, NOT_RUN = "reproduced", "within noise", "not reproduced", "not run"
INCOMPLETE, NOT_JUDGED, NO_EXPERIMENT = "incomplete", "not judged", "no experiment"
#: Every verdict, in the order the report counts them.
VERDICTS = (REPRODUCED, WITHIN_NOISE, NOT_REPRODUCED, INCOMPLETE, NOT_RUN, NOT_JUDGED, NO_EXPERIMENT)
#: The verdicts that judged the evidence (the others say why no judgement was made).
JUDGED = (REPRODUCED, WITHIN_NOISE, NOT_REPRODUCED)
KINDS = ("value", "ordering", "ratio", "improvement")
PROFILES = ("smoke", "mini", "full")
_SELECT_FIELDS = {"paper", "table", "row", "column", "metric", "device", "experiment", "step", "unit"}
_SELECT_META = {"each", "label", "published"}
_CLAIM_META = ("id", "kind", "text", "source", "profiles")


class PaperFileError(ValueError):
    """A malformed ``paper.yaml``; the message names the file and the entry."""


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    text: str
    source: str
    spec: Mapping[str, Any]
    profiles: tuple[str, ...] | None = None

    @property
    def timing(self) -> bool:
        """A claim about run times: ratios, ``timing: true``, or a selection of a ``time`` metric."""
        return (self.kind == "ratio" or bool(self.spec.get("timing"))
                or any(str(s.get("metric", "")).startswith("time") for s in selections(self)))


@dataclass(frozen=True)
class PaperTable:
    experiment: str | None
    table: str
    caption: str
    source: str
    judge: Mapping[str, Any]
    values: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    citation: str
    code: str
    notes: str
    tables: tuple[PaperTable, ...]
    claims: tuple[Claim, ...]
    path: Path


@dataclass(frozen=True)
class Coverage:
    """How much of an experiment's grid has results at one profile.

    Attributes:
        registered: the experiment id is registered (else: "no experiment yet").
        expected: cells x seeds of the profile.
        done: of those, how many have a stored result (measured or "not run" with a reason).
        failed: how many failed (they count as missing).
    """

    registered: bool
    expected: int = 0
    done: int = 0
    failed: int = 0

    @property
    def complete(self) -> bool:
        return self.registered and self.done >= self.expected


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)
    seeds: int | None = None
    cells: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The verdict as the report prints it ("reproduced (1 seed)")."""
        if self.verdict in JUDGED and self.seeds == 1:
            return f"{self.verdict} (1 seed)"
        return self.verdict


def _source(entry: Mapping[str, Any]) -> str:
    src = entry.get("source", "")
    if isinstance(src, Mapping):
        return ", ".join(f"{k} {v}" for k, v in src.items())
    return str(src)


def load_paper(path: Path) -> Paper:
    path = Path(path)
    try:
        # libyaml's safe loader when built (10x faster; the same documents), else the pure-Python one
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise PaperFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, Mapping) or "paper" not in raw:
        raise PaperFileError(f"{path}: expected a mapping with a 'paper' key, got {type(raw).__name__}")
    tables = []
    for i, t in enumerate(raw.get("tables") or []):
        if not isinstance(t, Mapping) or "table" not in t:
            raise PaperFileError(f"{path}: tables[{i}] misses 'table'")
        for j, v in enumerate(t.get("values") or []):
            missing = {"row", "column", "metric", "value"} - set(v)
            if missing:
                raise PaperFileError(f"{path}: tables[{i}].values[{j}] misses {sorted(missing)}")
        tables.append(PaperTable(t.get("experiment") or None, str(t["table"]), t.get("caption", ""), _source(t),
                                 t.get("judge", {"reference": True}), tuple(t.get("values") or ())))
    claims = []
    ids = set()
    for i, c in enumerate(raw.get("claims") or []):
        if c.get("kind") not in KINDS:
            raise PaperFileError(f"{path}: claims[{i}] kind must be one of {KINDS}, got {c.get('kind')!r}")
        if not c.get("id") or c["id"] in ids:
            raise PaperFileError(f"{path}: claims[{i}] needs a unique id, got {c.get('id')!r}")
        ids.add(c["id"])
        spec = {k: v for k, v in c.items() if k not in _CLAIM_META}
        _check_spec(path, c["id"], c["kind"], spec)
        profiles = None
        if "profiles" in c:
            profiles = tuple([c["profiles"]] if isinstance(c["profiles"], str) else c["profiles"])
            unknown = [p for p in profiles if p not in PROFILES]
            if unknown:
                raise PaperFileError(f"{path}: claim {c['id']!r} profiles must be among {PROFILES}, got {unknown}")
        claims.append(Claim(c["id"], c["kind"], c.get("text", ""), _source(c), spec, profiles))
    return Paper(raw["paper"], raw.get("title", ""), raw.get("citation", ""), raw.get("code", ""),
                 raw.get("notes", ""), tuple(tables), tuple(claims), path)


def _spec_selections(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = [spec[k] for k in ("select", "faster", "slower", "method", "baseline") if k in spec]
    return found + list(spec.get("chain", []))


def selections(claim: Claim) -> list[Mapping[str, Any]]:
    """Every selection of a claim, in the order of its fields."""
    return _spec_selections(claim.spec)


def _check_spec(path: Path, cid: str, kind: str, spec: Mapping[str, Any]) -> None:
    needed = {"value": ("select", "expected"), "ordering": ("chain",), "ratio": ("faster", "slower", "at_least"),
              "improvement": ("method", "baseline", "paper_gain")}[kind]
    missing = [k for k in needed if k not in spec]
    if missing:
        raise PaperFileError(f"{path}: claim {cid!r} ({kind}) misses {missing}")
    if "min_effect" in spec:
        try:
            ok = float(spec["min_effect"]) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise PaperFileError(f"{path}: claim {cid!r} min_effect must be a number >= 0, got {spec['min_effect']!r}")
    for sel in _spec_selections(spec):
        if not isinstance(sel, Mapping):
            raise PaperFileError(f"{path}: claim {cid!r}: a selection must be a mapping, got {sel!r}")
        unknown = set(sel) - _SELECT_FIELDS - _SELECT_META
        if unknown:
            raise PaperFileError(f"{path}: claim {cid!r} selects on unknown fields {sorted(unknown)}")
        if "published" in sel:
            extra = set(sel) - {"published", "label"}
            if extra:
                raise PaperFileError(f"{path}: claim {cid!r}: a published selection takes only 'published' and "
                                     f"'label', got also {sorted(extra)}")
            try:
                float(sel["published"])
            except (TypeError, ValueError):
                raise PaperFileError(f"{path}: claim {cid!r}: published must be a number, got {sel['published']!r}")
        for key, value in sel.items():
            if isinstance(value, list) and (key in _SELECT_META or key == "step" or not value):
                raise PaperFileError(f"{path}: claim {cid!r}: {key!r} cannot be a list here (got {value!r}); "
                                     "lists name several rows of a record field, e.g. column: [a, b]")
        step = sel.get("step")
        if step is not None and step not in ("last", "best") and not (isinstance(step, int) and step >= 0):
            raise PaperFileError(f"{path}: claim {cid!r}: step must be 'last', 'best' or an iteration count >= 0, "
                                 f"got {step!r}")


def find_papers(root: Path) -> list[Paper]:
    return [load_paper(p) for p in sorted(Path(root).glob("*/paper.yaml"))]


@dataclass(frozen=True)
class Measured:
    mean: float
    std: float
    n: int
    devices: frozenset
    label: str
    seeds: int = 1
    cells: tuple[str, ...] = ()
    published: bool = False


def _items(selection: Mapping[str, Any]) -> tuple[list[dict], str, list[str]]:
    """The rows a selection names: one mapping per combination of its list fields, the name of
    those rows for messages, and a short label for each."""
    sel = {k: v for k, v in selection.items() if k not in _SELECT_META and k != "step"}
    listed = [k for k, v in sel.items() if isinstance(v, list)]
    if not listed:
        return [sel], "", [""]
    combos = list(itertools.product(*(sel[k] for k in listed)))
    items = [{**sel, **dict(zip(listed, combo))} for combo in combos]
    name = str(selection.get("each") or "/".join(f"{k}s" for k in listed))
    labels = ["/".join(str(v) for v in combo) for combo in combos]
    return items, name, labels


def _rows(df: pd.DataFrame, item: Mapping[str, Any], *, paper: str | None, step: Any) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    if paper is not None and "paper" not in item:
        mask &= df.paper == paper
    for key, value in item.items():
        mask &= df[key] == value
    rows = df[mask & df.value.notna()]
    if step is None:
        return rows[rows.step.isna()]
    rows = rows[rows.step.notna()].sort_values("step", kind="stable")
    if step == "last":
        return rows.groupby("key").tail(1)
    if step == "best":  # per cell, the best point of its curve
        higher = bool(rows.higher_is_better.iloc[0]) if not rows.empty else True
        index = rows.groupby("key").value.idxmax() if higher else rows.groupby("key").value.idxmin()
        return rows.loc[index.to_numpy()]
    # an iteration count: per cell, the first point at or after it
    return rows[rows.step >= int(step)].groupby("key").head(1)


def _label(selection: Mapping[str, Any]) -> str:
    if "published" in selection:
        return str(selection.get("label") or f"published {selection['published']}")
    if selection.get("label"):
        return str(selection["label"])
    parts = []
    for k in ("row", "column", "metric"):
        if k in selection:
            v = selection[k]
            parts.append("{" + ", ".join(map(str, v)) + "}" if isinstance(v, list) else str(v))
    return "/".join(parts)


def missing_items(df: pd.DataFrame, selection: Mapping[str, Any], *,
                  paper: str | None = None) -> tuple[list[str], list[str], str]:
    """(labels of the rows the selection names, those without a measurement, their name)."""
    if "published" in selection:
        return [""], [], ""
    items, name, labels = _items(selection)
    step = selection.get("step")
    missing = [label for item, label in zip(items, labels) if _rows(df, item, paper=paper, step=step).empty]
    return labels, missing, name


def measure(df: pd.DataFrame, selection: Mapping[str, Any], *, paper: str | None = None) -> Measured | None:
    """The selection's value: mean over seeds of the per-seed mean of its rows (module doc).

    Returns None when any row it names has no measurement.
    """
    label = _label(selection)
    if "published" in selection:
        return Measured(float(selection["published"]), 0.0, 0, frozenset(), label, seeds=0, published=True)
    items, _, _ = _items(selection)
    step = selection.get("step")
    parts = [_rows(df, item, paper=paper, step=step) for item in items]
    if any(p.empty for p in parts):
        return None
    rows = pd.concat(parts)
    # per item and seed: the mean of its records; per seed: the mean over items
    per_item = [p.groupby("seed").value.mean() for p in parts]
    per_seed = pd.concat(per_item, axis=1).dropna()
    if per_seed.empty:  # no seed measured every item: pool
        seed_values = pd.Series([float(pd.concat(per_item).mean())])
    else:
        seed_values = per_seed.mean(axis=1)
    n_seeds = int(rows.seed.nunique())
    if len(seed_values) > 1:
        std = float(seed_values.std(ddof=1))
    else:
        # one seed: the in-cell noise of the records (e.g. a standard error over images) of the mean over items
        in_cell = [float(p["std"].pow(2).mean()) if p["std"].notna().any() else 0.0 for p in parts]
        std = math.sqrt(sum(in_cell)) / len(parts)
    devices = frozenset(zip(rows.device_class, rows.device.str.split(":").str[0]))
    return Measured(float(seed_values.mean()), std, len(rows), devices, label, seeds=n_seeds,
                    cells=tuple(dict.fromkeys(rows.key)))


#: A record whose note has a segment starting with this was trained without the pretrained weights
#: the paper starts from (ADM's DeepLabs, TV Table 3's CAM backbones): a value claim on it is
#: "not judged" (the number cannot be compared with the paper's), orderings still are.
RANDOM_INIT = "random init"


def is_random_init(note: Any) -> bool:
    """Whether a record's note marks a model trained from random init (:data:`RANDOM_INIT`)."""
    return isinstance(note, str) and any(part.strip().startswith(RANDOM_INIT) for part in note.split(";"))


def random_init_notes(df: pd.DataFrame, sels: list[Mapping[str, Any]], *, paper: str) -> list[str]:
    """The random-init notes of the measured rows the selections name (empty: none is marked)."""
    found: list[str] = []
    if "note" not in df:
        return found
    for selection in sels:
        if "published" in selection:
            continue
        for item in _items(selection)[0]:
            rows = _rows(df, item, paper=paper, step=selection.get("step"))
            for note in rows.note.dropna().unique():
                if is_random_init(note) and note not in found:
                    found.append(str(note))
    return found


def _reasons(df: pd.DataFrame, sels: list[Mapping[str, Any]], *, paper: str) -> list[str]:
    """The reasons the cells gave for what they did not measure."""
    reasons: list[str] = []
    for selection in sels:
        if "published" in selection:
            continue
        for item in _items(selection)[0]:
            mask = df.paper == paper if "paper" not in item else pd.Series(True, index=df.index)
            for key, value in item.items():
                if key in df:
                    mask &= df[key] == value
            if "note" in df:
                for note in df[mask & df.value.isna()].note.dropna().unique():
                    if note not in reasons:
                        reasons.append(str(note))
    return reasons


def _not_measured(df: pd.DataFrame, sels: list[Mapping[str, Any]], ms: list[Measured | None], *, paper: str,
                  grid_incomplete: bool, extra: str = "") -> Verdict | None:
    """None when every row is measured; else "not run" or "incomplete: k of n ...".

    "incomplete" when some rows are measured and the rest may still come: the experiment's grid
    has cells without results, or a selection lists several rows ("1 of 5 lengths"). "not run"
    when nothing was measured, or when the missing rows will not come at this profile (every
    cell ran; their cells' reasons are quoted).
    """
    counts = [missing_items(df, s, paper=paper) for s in sels]
    total = sum(len(labels) for labels, _, _ in counts)
    absent = sum(len(m) for _, m, _ in counts)
    if absent == 0 and all(m is not None for m in ms):
        return None
    reasons = _reasons(df, sels, paper=paper)
    why = f" ({'; '.join(reasons[:3])})" if reasons else " (not run at this profile)"
    listed_missing = any(m and name for _, m, name in counts)
    if absent == total or not (grid_incomplete or listed_missing):
        text = "no measurement of " + "; ".join(_label(s) for s, m in zip(sels, ms) if m is None)
        return Verdict(None, NOT_RUN, text + why + extra)  # type: ignore[arg-type]
    # name the unit of what is missing: the rows the selections list ("1 of 5 lengths"), else rows
    incomplete = [(labels, m, name) for labels, m, name in counts if m]
    if all(name for _, _, name in incomplete) and len({(tuple(labels), name) for labels, _, name in incomplete}) == 1:
        labels, _, name = incomplete[0]
        gone = [label for label in labels if any(label in m for _, m, _ in incomplete)]
        text = f"incomplete: {len(labels) - len(gone)} of {len(labels)} {name} measured (missing {', '.join(gone)})"
    else:
        missing = [_label(s) + (f" at {', '.join(m)}" if name else "")
                   for s, (_, m, name) in zip(sels, counts) if m]
        text = f"incomplete: {total - absent} of {total} rows measured (missing {'; '.join(missing)})"
    why = f" ({'; '.join(reasons[:3])})" if reasons else ""
    return Verdict(None, INCOMPLETE, text + why + extra)  # type: ignore[arg-type]


def _fmt(m: Measured) -> str:
    """``label = mean ± spread (which spread)``: the spread the verdict used, named (``measure``:
    the sd over seeds with several seeds, else the records' own in-cell spread), "1 seed" when
    there is none."""
    if m.published:
        return f"{m.label} = {m.mean:.4g} (paper)"
    if m.seeds > 1:
        return f"{m.label} = {m.mean:.4g} ± {m.std:.2g} (sd over {m.seeds} seeds)"
    if m.std > 0:
        return f"{m.label} = {m.mean:.4g} ± {m.std:.2g} (in-cell spread, 1 seed)"
    return f"{m.label} = {m.mean:.4g} (1 seed)"


def _pair_outcome(a: Measured, b: Measured, gain: float, noise: float, sign: int) -> str:
    """One step of an ordering as what was found, never as what the paper states: the claim
    "a better than b" may be false here."""
    better = "higher" if sign > 0 else "lower"
    if gain > noise:
        return f"{a.label} is better than {b.label} ({better} by {abs(gain):.3g} > noise {noise:.2g})"
    if gain < -noise:
        return f"{a.label} is NOT better than {b.label}: worse by {abs(gain):.3g} > noise {noise:.2g}"
    return f"{a.label} vs {b.label}: difference {gain:+.3g} within noise {noise:.2g}"


def _direction(df: pd.DataFrame, sels: list[Mapping[str, Any]]) -> int:
    for selection in sels:
        if "published" in selection:
            continue
        for item in _items(selection)[0]:
            mask = pd.Series(True, index=df.index)
            for key, value in item.items():
                mask &= df[key] == value
            hib = df[mask].higher_is_better.dropna()
            if not hib.empty:
                return 1 if bool(hib.iloc[0]) else -1
    return 1


def claim_experiments(claim: Claim, tables: tuple[PaperTable, ...] = ()) -> list[str]:
    """The experiments whose records a claim reads: its ``experiment``, or those of the paper
    tables its selections name."""
    if claim.spec.get("experiment"):
        return [str(claim.spec["experiment"])]
    found = [s["experiment"] for s in selections(claim) if s.get("experiment")]
    names = {s.get("table") for s in selections(claim)}
    found += [t.experiment for t in tables if t.table in names and t.experiment]
    return list(dict.fromkeys(found))


def allowed_profiles(claim: Claim) -> tuple[str, ...]:
    """The profiles at which the claim is judged (module doc)."""
    allowed = claim.profiles or (("full",) if claim.kind == "value" else PROFILES)
    # smoke exists to exercise the code path in seconds (a few iterations, a handful of pixels):
    # nothing measured there is evidence for or against a paper, so no claim is judged at it.
    return tuple(p for p in allowed if p != "smoke")


def judge(claim: Claim, df: pd.DataFrame, *, paper: str, profile: str,
          coverage: Mapping[str, Coverage] | None = None, tables: tuple[PaperTable, ...] = ()) -> Verdict:
    """Verdict of one claim on the records of one profile.

    Args:
        claim: the claim.
        df: records (``store.frame``), any profiles.
        paper: the paper id.
        profile: the profile judged.
        coverage: per experiment id, how much of its grid has results (``Coverage``); None skips
            the grid checks (no registry at hand).
        tables: the paper's tables (to find the experiments of a claim without ``experiment``).
    """
    verdict = _judge(claim, df, paper=paper, profile=profile, coverage=coverage, tables=tables)
    verdict.claim = claim
    return verdict


def _judge(claim: Claim, df: pd.DataFrame, *, paper: str, profile: str,
           coverage: Mapping[str, Coverage] | None, tables: tuple[PaperTable, ...]) -> Verdict:
    experiments = claim_experiments(claim, tables)
    if coverage is not None:  # first: at no profile can a claim without an experiment be judged
        absent = [e for e in experiments if e not in coverage or not coverage[e].registered]
        if absent:
            return Verdict(claim, NO_EXPERIMENT, f"no experiment yet: {', '.join(absent)} is not registered")
    allowed = allowed_profiles(claim)
    if profile not in allowed:
        if profile == "smoke":
            why = ("claims are never judged at the smoke profile (it runs the code path in seconds on tiny "
                   "inputs; judge at mini or full)")
        else:
            why = f"judged at the {'/'.join(allowed)} profile only (this is {profile})"
        return Verdict(claim, NOT_JUDGED, why)
    spec = claim.spec
    if "experiment" in spec:
        df = df[df.experiment == spec["experiment"]]
    df = df[df.profile == profile]
    grid_note = ""
    if coverage is not None:
        short = [f"{coverage[e].done} of {coverage[e].expected} cells of {e} have results"
                 + (f", {coverage[e].failed} failed" if coverage[e].failed else "")
                 for e in experiments if not coverage[e].complete]
        grid_note = "; ".join(short)

    sels = selections(claim)
    ms = [measure(df, s, paper=paper) for s in sels]
    missing = _not_measured(df, sels, ms, paper=paper, grid_incomplete=bool(grid_note),
                            extra=f"; {grid_note}" if grid_note else "")
    if missing is not None:
        missing.claim = claim
        return missing
    if grid_note:
        return Verdict(claim, INCOMPLETE, f"incomplete: {grid_note}; judged when every cell has run "
                       f"(so far: {'; '.join(_fmt(m) for m in ms)})")
    measured = [m for m in ms if not m.published]
    seeds = min((m.seeds for m in measured), default=None)
    cells = tuple(dict.fromkeys(k for m in measured for k in m.cells))
    min_effect = float(spec.get("min_effect", 0.0))

    def done(verdict: str, evidence: str, numbers: dict) -> Verdict:
        return Verdict(claim, verdict, evidence, numbers, seeds=seeds, cells=cells)

    if claim.kind == "value":
        untrained = random_init_notes(df, sels, paper=paper)
        if untrained:
            return Verdict(claim, NOT_JUDGED, "not judged: the model was trained from random init where the paper "
                           f"starts from pretrained weights ({untrained[0]}); measured {_fmt(ms[0])}",
                           {"ours": ms[0].mean}, seeds=seeds, cells=cells)
        m = ms[0]
        tol = spec.get("tolerance")
        if tol is None:
            tol = abs(float(spec["expected"])) * float(spec.get("rel_tolerance", 0.0))
        diff = m.mean - float(spec["expected"])
        verdict = REPRODUCED if abs(diff) <= tol else WITHIN_NOISE if abs(diff) <= tol + 2 * m.std else NOT_REPRODUCED
        return done(verdict, f"{_fmt(m)}; paper {spec['expected']}; |delta| {abs(diff):.4g} vs tolerance {tol:.4g}",
                    {"ours": m.mean, "std": m.std, "paper": spec["expected"], "delta": diff})

    if claim.kind == "ordering":
        sign = _direction(df, sels)
        gains = [(a.mean - b.mean) * sign for a, b in zip(ms, ms[1:])]
        noises = [max(math.hypot(a.std, b.std), min_effect) for a, b in zip(ms, ms[1:])]
        if all(g > n for g, n in zip(gains, noises)):
            verdict = REPRODUCED
        elif any(g < -n for g, n in zip(gains, noises)):
            verdict = NOT_REPRODUCED
        else:
            verdict = WITHIN_NOISE
        values = "; ".join(_fmt(m) for m in ms)
        outcomes = "; ".join(_pair_outcome(a, b, g, n, sign) for a, b, g, n in zip(ms, ms[1:], gains, noises))
        return done(verdict, f"{values} ({'higher' if sign > 0 else 'lower'} is better). {outcomes}",
                    {"means": [m.mean for m in ms], "gains": gains, "noise": noises})

    if claim.kind == "ratio":
        fast, slow = ms[0], ms[1]  # selections() lists faster, then slower
        devices = fast.devices | slow.devices
        if len(devices) != 1:
            return done(NOT_RUN, "the two rows were measured on different device classes "
                        f"({sorted(devices)}); ratios are judged within one class only", {})
        need = float(spec["at_least"])
        ratio = slow.mean / fast.mean
        optimistic = (slow.mean + slow.std) / max(fast.mean - fast.std, 1e-300)
        verdict = REPRODUCED if ratio >= need else WITHIN_NOISE if optimistic >= need else NOT_REPRODUCED
        return done(verdict, f"{_fmt(slow)} / {_fmt(fast)} = {ratio:.3g}x (needs >= {need:g}x)",
                    {"ratio": ratio, "at_least": need})

    method, baseline = ms[0], ms[1]
    sign = _direction(df, sels)
    gain = (method.mean - baseline.mean) * sign
    paper_gain = float(spec["paper_gain"])
    noise = max(math.hypot(method.std, baseline.std), min_effect)
    if abs(gain) <= noise:
        verdict = WITHIN_NOISE
    else:
        verdict = REPRODUCED if math.copysign(1, gain) == math.copysign(1, paper_gain) else NOT_REPRODUCED
    return done(verdict, f"gain {gain:+.4g} (noise {noise:.2g}; paper {paper_gain:+g}): "
                f"{_fmt(method)} vs {_fmt(baseline)}", {"gain": gain, "paper_gain": paper_gain, "noise": noise})


def judge_all(paper: Paper, df: pd.DataFrame, *, profile: str,
              coverage: Mapping[str, Coverage] | None = None) -> list[Verdict]:
    return [judge(c, df, paper=paper.id, profile=profile, coverage=coverage, tables=paper.tables)
            for c in paper.claims]
