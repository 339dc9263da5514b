"""Papers' published tables and claims (``paper.yaml``) and the engine that judges them.

Claim kinds:
  value        ours equals the published value within ``tolerance`` (absolute) or
               ``rel_tolerance``; judged at the full profile only, since mini sizes change values.
  ordering     ``chain`` of selections, best first: each beats the next (direction from the
               records' ``higher_is_better``).
  ratio        ``slower`` / ``faster`` >= ``at_least`` (times: lower is better), only when both
               were measured on the same device class.
  improvement  the gain of ``method`` over ``baseline`` has the sign of ``paper_gain``.

A selection is a mapping of record fields (``row``, ``column``, ``metric``, ``table``...), plus
optionally ``experiment`` and ``step: last`` (the final point of a curve). Its value is the mean
over the matching records; its noise is their standard deviation over runs, or the in-cell std
of a single record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

REPRODUCED, WITHIN_NOISE, NOT_REPRODUCED, NOT_RUN = "reproduced", "within noise", "not reproduced", "not run"
KINDS = ("value", "ordering", "ratio", "improvement")
_SELECT_FIELDS = {"paper", "table", "row", "column", "metric", "device", "experiment", "step", "unit"}


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


@dataclass(frozen=True)
class PaperTable:
    experiment: str
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


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _source(entry: Mapping[str, Any]) -> str:
    src = entry.get("source", "")
    if isinstance(src, Mapping):
        return ", ".join(f"{k} {v}" for k, v in src.items())
    return str(src)


def load_paper(path: Path) -> Paper:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PaperFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, Mapping) or "paper" not in raw:
        raise PaperFileError(f"{path}: expected a mapping with a 'paper' key, got {type(raw).__name__}")
    tables = []
    for i, t in enumerate(raw.get("tables", [])):
        for key in ("experiment", "table", "values"):
            if key not in t:
                raise PaperFileError(f"{path}: tables[{i}] misses {key!r}")
        for j, v in enumerate(t["values"]):
            missing = {"row", "column", "metric", "value"} - set(v)
            if missing:
                raise PaperFileError(f"{path}: tables[{i}].values[{j}] misses {sorted(missing)}")
        tables.append(PaperTable(t["experiment"], t["table"], t.get("caption", ""), _source(t),
                                 t.get("judge", {"reference": True}), tuple(t["values"])))
    claims = []
    ids = set()
    for i, c in enumerate(raw.get("claims", [])):
        if c.get("kind") not in KINDS:
            raise PaperFileError(f"{path}: claims[{i}] kind must be one of {KINDS}, got {c.get('kind')!r}")
        if not c.get("id") or c["id"] in ids:
            raise PaperFileError(f"{path}: claims[{i}] needs a unique id, got {c.get('id')!r}")
        ids.add(c["id"])
        spec = {k: v for k, v in c.items() if k not in ("id", "kind", "text", "source", "profiles")}
        _check_spec(path, c["id"], c["kind"], spec)
        profiles = tuple(c["profiles"]) if "profiles" in c else None
        claims.append(Claim(c["id"], c["kind"], c.get("text", ""), _source(c), spec, profiles))
    return Paper(raw["paper"], raw.get("title", ""), raw.get("citation", ""), raw.get("code", ""),
                 raw.get("notes", ""), tuple(tables), tuple(claims), path)


def _check_spec(path: Path, cid: str, kind: str, spec: Mapping[str, Any]) -> None:
    needed = {"value": ("select", "expected"), "ordering": ("chain",), "ratio": ("faster", "slower", "at_least"),
              "improvement": ("method", "baseline", "paper_gain")}[kind]
    missing = [k for k in needed if k not in spec]
    if missing:
        raise PaperFileError(f"{path}: claim {cid!r} ({kind}) misses {missing}")
    selections = [spec[k] for k in ("select", "faster", "slower", "method", "baseline") if k in spec]
    selections += list(spec.get("chain", []))
    for sel in selections:
        unknown = set(sel) - _SELECT_FIELDS
        if unknown:
            raise PaperFileError(f"{path}: claim {cid!r} selects on unknown fields {sorted(unknown)}")


def find_papers(root: Path) -> list[Paper]:
    return [load_paper(p) for p in sorted(Path(root).glob("*/paper.yaml"))]


@dataclass(frozen=True)
class Measured:
    mean: float
    std: float
    n: int
    devices: frozenset
    label: str


def measure(df: pd.DataFrame, selection: Mapping[str, Any], *, paper: str | None = None) -> Measured | None:
    sel = dict(selection)
    step = sel.pop("step", None)
    mask = pd.Series(True, index=df.index)
    if paper is not None and "paper" not in sel:
        mask &= df.paper == paper
    for key, value in sel.items():
        mask &= df[key] == value
    rows = df[mask & df.value.notna()]
    if step == "last":
        rows = rows[rows.step.notna()]
        rows = rows.sort_values("step").groupby("key").tail(1)
    else:
        rows = rows[rows.step.isna()]
    if rows.empty:
        return None
    values = rows.value.to_numpy(dtype=float)
    if len(values) > 1:
        std = float(values.std(ddof=1))
    else:
        std = float(rows["std"].iloc[0]) if pd.notna(rows["std"].iloc[0]) else 0.0
    label = "/".join(str(selection[k]) for k in ("row", "column", "metric") if k in selection)
    devices = frozenset(zip(rows.device_class, rows.device.str.split(":").str[0]))
    return Measured(float(values.mean()), std, len(values), devices, label)


def _label(selection: Mapping[str, Any]) -> str:
    return "/".join(str(selection[k]) for k in ("table", "row", "column", "metric") if k in selection)


def _missing(df: pd.DataFrame, selections: list[Mapping[str, Any]], *, paper: str) -> str:
    """Why a claim could not be judged: the unmeasured rows, and the reasons their cells gave."""
    reasons: list[str] = []
    for selection in selections:
        mask = df.paper == paper if "paper" not in selection else pd.Series(True, index=df.index)
        for key, value in selection.items():
            if key != "step" and key in df:
                mask &= df[key] == value
        if "note" in df:
            for note in df[mask & df.value.isna()].note.dropna().unique():
                if note not in reasons:
                    reasons.append(str(note))
    text = "no measurement of " + "; ".join(_label(s) for s in selections)
    return text + (f" ({'; '.join(reasons[:3])})" if reasons else " (not run at this profile)")


def _fmt(m: Measured) -> str:
    return f"{m.label} = {m.mean:.4g} ± {m.std:.2g} (n={m.n})"


def _direction(df: pd.DataFrame, selection: Mapping[str, Any]) -> int:
    sel = {k: v for k, v in selection.items() if k != "step"}
    mask = pd.Series(True, index=df.index)
    for key, value in sel.items():
        mask &= df[key] == value
    hib = df[mask].higher_is_better
    return 1 if hib.empty or bool(hib.iloc[0]) else -1


def judge(claim: Claim, df: pd.DataFrame, *, paper: str, profile: str) -> Verdict:
    """Verdict of one claim on the records of one profile."""
    allowed = claim.profiles or (("full",) if claim.kind == "value" else None)
    if allowed and profile not in allowed:
        return Verdict(claim, NOT_RUN, f"judged at the {'/'.join(allowed)} profile only (this is {profile})")
    spec = claim.spec
    if "experiment" in spec:
        df = df[df.experiment == spec["experiment"]]
    df = df[df.profile == profile]

    def get(sel):
        return measure(df, sel, paper=paper)

    if claim.kind == "value":
        m = get(spec["select"])
        if m is None:
            return Verdict(claim, NOT_RUN, _missing(df, [spec["select"]], paper=paper))
        tol = spec.get("tolerance")
        if tol is None:
            tol = abs(float(spec["expected"])) * float(spec.get("rel_tolerance", 0.0))
        diff = m.mean - float(spec["expected"])
        verdict = REPRODUCED if abs(diff) <= tol else WITHIN_NOISE if abs(diff) <= tol + 2 * m.std else NOT_REPRODUCED
        return Verdict(claim, verdict, f"{_fmt(m)}; paper {spec['expected']}; |delta| {abs(diff):.4g} vs tolerance {tol:.4g}",
                       {"ours": m.mean, "std": m.std, "paper": spec["expected"], "delta": diff})

    if claim.kind == "ordering":
        ms = [get(sel) for sel in spec["chain"]]
        if any(m is None for m in ms):
            missing = [sel for sel, m in zip(spec["chain"], ms) if m is None]
            return Verdict(claim, NOT_RUN, _missing(df, missing, paper=paper))
        sign = _direction(df, spec["chain"][0])
        gains = [(a.mean - b.mean) * sign for a, b in zip(ms, ms[1:])]
        noises = [math.hypot(a.std, b.std) for a, b in zip(ms, ms[1:])]
        if all(g > n for g, n in zip(gains, noises)):
            verdict = REPRODUCED
        elif any(g < -n for g, n in zip(gains, noises)):
            verdict = NOT_REPRODUCED
        else:
            verdict = WITHIN_NOISE
        order = (" > " if sign > 0 else " < ").join(_fmt(m) for m in ms)
        return Verdict(claim, verdict, f"{order} ({'higher' if sign > 0 else 'lower'} is better)",
                       {"means": [m.mean for m in ms], "gains": gains})

    if claim.kind == "ratio":
        fast, slow = get(spec["faster"]), get(spec["slower"])
        if fast is None or slow is None:
            missing = [s for s, m in ((spec["faster"], fast), (spec["slower"], slow)) if m is None]
            return Verdict(claim, NOT_RUN, _missing(df, missing, paper=paper))
        if len(fast.devices | slow.devices) != 1:
            return Verdict(claim, NOT_RUN, "the two rows were measured on different device classes "
                           f"({sorted(fast.devices | slow.devices)}); ratios are judged within one class only")
        need = float(spec["at_least"])
        ratio = slow.mean / fast.mean
        optimistic = (slow.mean + slow.std) / max(fast.mean - fast.std, 1e-300)
        verdict = REPRODUCED if ratio >= need else WITHIN_NOISE if optimistic >= need else NOT_REPRODUCED
        return Verdict(claim, verdict, f"{_fmt(slow)} / {_fmt(fast)} = {ratio:.3g}x (needs >= {need:g}x)",
                       {"ratio": ratio, "at_least": need})

    method, baseline = get(spec["method"]), get(spec["baseline"])
    if method is None or baseline is None:
        missing = [s for s, m in ((spec["method"], method), (spec["baseline"], baseline)) if m is None]
        return Verdict(claim, NOT_RUN, _missing(df, missing, paper=paper))
    sign = _direction(df, spec["method"])
    gain = (method.mean - baseline.mean) * sign
    paper_gain = float(spec["paper_gain"])
    noise = math.hypot(method.std, baseline.std)
    if abs(gain) <= noise:
        verdict = WITHIN_NOISE
    else:
        verdict = REPRODUCED if math.copysign(1, gain) == math.copysign(1, paper_gain) else NOT_REPRODUCED
    return Verdict(claim, verdict, f"gain {gain:+.4g} (noise {noise:.2g}; paper {paper_gain:+g}): "
                   f"{_fmt(method)} vs {_fmt(baseline)}", {"gain": gain, "paper_gain": paper_gain})


def judge_all(paper: Paper, df: pd.DataFrame, *, profile: str) -> list[Verdict]:
    return [judge(c, df, paper=paper.id, profile=profile) for c in paper.claims]
