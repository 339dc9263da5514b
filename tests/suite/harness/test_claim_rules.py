"""The claim engine's rules (issue 9) on small synthetic papers: completeness, profiles, noise over
seeds and ``min_effect``, "1 seed", links to cells, "no experiment", published baselines, curve
points, and the paper.yaml schema that expresses them."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from suite.harness import claims, store
from suite.harness.records import Record

LENGTHS = ["length 1", "length 0.8", "length 0.5", "length 0.3", "length 0"]


def frame(rows, *, profile="mini", experiment="toy.fig", table="Fig. 6", metric="miou", higher=True, unit="%"):
    """Records from ``(row, column, value, seed[, std[, step]])`` tuples, one cell each."""
    recs = []
    for i, spec in enumerate(rows):
        row, column, value, seed = spec[:4]
        std = spec[4] if len(spec) > 4 else None
        step = spec[5] if len(spec) > 5 else None
        r = Record(paper="toy", table=table, row=row, column=column, metric=metric, value=value, unit=unit,
                   higher_is_better=higher, device="cpu", std=std, step=step).to_dict()
        recs.append({**r, "experiment": experiment, "key": f"{row}-{column}-{seed}-{i}", "profile": profile,
                     "seed": seed, "status": "ok", "device_class": "cpu:x", "cell": "{}", "git_commit": None,
                     "host": None})
    return pd.DataFrame(recs, columns=store.RECORD_COLUMNS + store.CELL_COLUMNS).astype(
        {"value": "float64", "std": "float64"})


def claim(kind, profiles=None, **spec):
    return claims.Claim(id="c", kind=kind, text="", source="", spec=spec, profiles=profiles)


def judge(c, df, profile="mini", **kw):
    return claims.judge(c, df, paper="toy", profile=profile, **kw)


def over_lengths(row, columns=LENGTHS):
    return {"table": "Fig. 6", "row": row, "column": list(columns), "metric": "miou", "each": "lengths"}


# --------------------------------------------------------------------------- completeness
def test_a_mean_over_five_lengths_waits_for_all_five():
    """Fig. 6's "mean over five lengths" after a partial run: no verdict, and it says which are missing."""
    partial = frame([("ADM", "length 1", 60.0, 0), ("GD", "length 1", 50.0, 0)])
    c = claim("ordering", chain=[over_lengths("ADM"), over_lengths("GD")])
    v = judge(c, partial)
    assert v.verdict == claims.INCOMPLETE
    assert v.evidence.startswith("incomplete: 1 of 5 lengths measured (missing length 0.8, length 0.5, length 0.3, "
                                 "length 0)")
    full = frame([(row, col, base + i, 0) for row, base in (("ADM", 60.0), ("GD", 50.0))
                  for i, col in enumerate(LENGTHS)])
    v = judge(c, full)
    assert v.verdict == claims.REPRODUCED
    assert v.numbers["means"] == [pytest.approx(62.0), pytest.approx(52.0)]  # mean over the five lengths


def test_a_claim_waits_for_every_cell_of_its_experiment():
    df = frame([("ADM", "c", 60.0, 0), ("GD", "c", 50.0, 0)])
    c = claim("ordering", experiment="toy.fig", chain=[{"row": "ADM"}, {"row": "GD"}])
    partial = {"toy.fig": claims.Coverage(True, expected=10, done=3, failed=1)}
    v = judge(c, df, coverage=partial)
    assert v.verdict == claims.INCOMPLETE
    assert "3 of 10 cells of toy.fig have results, 1 failed" in v.evidence
    assert "ADM = 60" in v.evidence  # what is there so far is still shown
    assert judge(c, df, coverage={"toy.fig": claims.Coverage(True, 10, 10)}).verdict == claims.REPRODUCED


def test_an_ordering_with_a_row_still_to_run_is_incomplete_but_one_that_will_not_come_is_not_run():
    df = frame([("ADM", "c", 60.0, 0)])
    c = claim("ordering", experiment="toy.fig", chain=[{"row": "ADM"}, {"row": "GD"}])
    assert judge(c, df, coverage={"toy.fig": claims.Coverage(True, 2, 1)}).verdict == claims.INCOMPLETE
    done = judge(c, df, coverage={"toy.fig": claims.Coverage(True, 2, 2)})
    assert done.verdict == claims.NOT_RUN and done.evidence.startswith("no measurement of GD")


def test_an_unregistered_experiment_is_no_experiment():
    c = claim("ordering", experiment="toy.later", chain=[{"row": "a"}, {"row": "b"}])
    v = judge(c, frame([("a", "c", 1.0, 0)]), coverage={"toy.later": claims.Coverage(registered=False)})
    assert v.verdict == claims.NO_EXPERIMENT and "toy.later" in v.evidence
    # it outranks "not judged": at no profile could it be judged
    value = claim("value", experiment="toy.later", select={"row": "a"}, expected=1.0, tolerance=0.1)
    assert judge(value, frame([]), profile="smoke", coverage={"toy.later": claims.Coverage(False)}).verdict == \
        claims.NO_EXPERIMENT
    # a claim without ``experiment`` finds it through the paper table its selections name
    table = claims.PaperTable("toy.later", "Table 9", "", "", {}, ())
    c = claim("ordering", chain=[{"table": "Table 9", "row": "a"}, {"table": "Table 9", "row": "b"}])
    assert claims.claim_experiments(c, (table,)) == ["toy.later"]
    assert judge(c, frame([]), coverage={"toy.later": claims.Coverage(False)}, tables=(table,)).verdict == \
        claims.NO_EXPERIMENT


# --------------------------------------------------------------------------- profiles
def test_ratio_and_timing_claims_are_never_judged_at_smoke():
    df = frame([("ours", "total", 1.0, 0, 0.01), ("peer", "total", 300.0, 0, 1.0)], profile="smoke",
               metric="time", higher=False, unit="ms", table="Table 1")
    ratio = claim("ratio", profiles=("smoke", "mini"), faster={"row": "ours"}, slower={"row": "peer"}, at_least=37)
    v = judge(ratio, df, profile="smoke")
    assert v.verdict == claims.NOT_JUDGED and "never judged at the smoke profile" in v.evidence
    timing = claim("ordering", chain=[{"row": "ours", "metric": "time"}, {"row": "peer", "metric": "time"}])
    assert timing.timing and judge(timing, df, profile="smoke").verdict == claims.NOT_JUDGED
    assert judge(claim("ordering", timing=True, chain=[{"row": "ours"}, {"row": "peer"}]), df,
                 profile="smoke").verdict == claims.NOT_JUDGED
    df["profile"] = "mini"
    assert judge(ratio, df, profile="mini").verdict == claims.REPRODUCED


def test_a_claim_is_judged_only_at_its_profiles():
    df = frame([("a", "c", 2.0, 0), ("b", "c", 1.0, 0)], profile="mini")
    c = claim("ordering", profiles=("full",), chain=[{"row": "a"}, {"row": "b"}])
    v = judge(c, df, profile="mini")
    assert v.verdict == claims.NOT_JUDGED and "full profile only" in v.evidence
    assert judge(claim("value", select={"row": "a"}, expected=2.0, tolerance=0.1), df).verdict == claims.NOT_JUDGED
    assert judge(claim("ordering", chain=[{"row": "a"}, {"row": "b"}]), df).verdict == claims.REPRODUCED


# --------------------------------------------------------------------------- noise
def test_a_difference_inside_the_spread_over_seeds_is_within_noise():
    # a beats b by 0.1 on average, but the seeds spread by about 1
    noisy = frame([("a", "c", 60.0, 0), ("a", "c", 61.2, 1), ("a", "c", 59.1, 2),
                   ("b", "c", 60.2, 0), ("b", "c", 59.0, 1), ("b", "c", 60.8, 2)])
    c = claim("ordering", chain=[{"row": "a"}, {"row": "b"}])
    v = judge(c, noisy)
    assert v.verdict == claims.WITHIN_NOISE and v.seeds == 3 and v.label == claims.WITHIN_NOISE
    clear = frame([("a", "c", 70.0, 0), ("a", "c", 70.5, 1), ("a", "c", 69.5, 2),
                   ("b", "c", 60.2, 0), ("b", "c", 59.0, 1), ("b", "c", 60.8, 2)])
    v = judge(c, clear)
    assert v.verdict == claims.REPRODUCED and "3 seeds" in v.evidence
    improvement = claim("improvement", method={"row": "a"}, baseline={"row": "b"}, paper_gain=1.0)
    assert judge(improvement, noisy).verdict == claims.WITHIN_NOISE
    assert judge(improvement, clear).verdict == claims.REPRODUCED


def test_a_difference_below_min_effect_is_within_noise_and_one_seed_says_so():
    df = frame([("a", "c", 60.01, 0), ("b", "c", 60.0, 0)])  # one seed, no in-cell std: no spread at all
    plain = judge(claim("ordering", chain=[{"row": "a"}, {"row": "b"}]), df)
    assert plain.verdict == claims.REPRODUCED and plain.seeds == 1 and plain.label == "reproduced (1 seed)"
    guarded = judge(claim("ordering", min_effect=0.5, chain=[{"row": "a"}, {"row": "b"}]), df)
    assert guarded.verdict == claims.WITHIN_NOISE and guarded.label == "within noise (1 seed)"
    assert guarded.numbers["noise"] == [0.5]
    worse = judge(claim("ordering", min_effect=0.5, chain=[{"row": "b"}, {"row": "a"}]),
                  frame([("a", "c", 61.0, 0), ("b", "c", 60.0, 0)]))
    assert worse.verdict == claims.NOT_REPRODUCED
    gain = judge(claim("improvement", min_effect=0.5, method={"row": "a"}, baseline={"row": "b"}, paper_gain=1), df)
    assert gain.verdict == claims.WITHIN_NOISE


def test_one_seed_uses_the_in_cell_noise():
    df = frame([("a", "c", 2.0, 0, 0.5), ("b", "c", 1.8, 0, 0.5)], higher=False, metric="loss")
    v = judge(claim("ordering", chain=[{"row": "b"}, {"row": "a"}]), df)
    assert v.verdict == claims.WITHIN_NOISE  # 0.2 apart, standard errors 0.5 each


# --------------------------------------------------------------------------- evidence, links, selections
def test_every_verdict_keeps_its_numbers_and_cells():
    df = frame([("a", "c", 2.0, 0), ("a", "c", 2.2, 1), ("b", "c", 1.0, 0), ("b", "c", 1.1, 1)])
    v = judge(claim("ordering", chain=[{"row": "a"}, {"row": "b"}]), df)
    assert set(v.cells) == set(df.key) and v.numbers["means"] == [pytest.approx(2.1), pytest.approx(1.05)]
    assert "a = 2.1" in v.evidence and "b = 1.05" in v.evidence


def test_a_published_baseline_and_curve_points():
    df = frame([("Ours", "Avg", 46.0, 0)], higher=False, metric="MPJPE", table="Table 2")
    c = claim("improvement", profiles=("full",), method={"row": "Ours"},
              baseline={"published": 52.8, "label": "Tome (paper)"}, paper_gain=6.7)
    df["profile"] = "full"
    v = judge(c, df, profile="full")
    assert v.verdict == claims.REPRODUCED and v.numbers["gain"] == pytest.approx(6.8)
    assert "Tome (paper) = 52.8 (paper)" in v.evidence and v.seeds == 1
    # ADM's loss after 10 iterations vs GD's best over the curve (lower is better)
    curve = frame([("ADM", "train", 5.0, 0, None, 0), ("ADM", "train", 3.0, 0, None, 10), ("ADM", "train", 2.0, 0, None, 20),
                   ("GD", "train", 5.0, 0, None, 0), ("GD", "train", 3.5, 0, None, 10), ("GD", "train", 3.6, 0, None, 20)],
                  higher=False, metric="loss")
    curve["key"] = curve.row  # one cell per method
    early = claim("ordering", chain=[{"row": "ADM", "step": 9}, {"row": "GD", "step": "best"}])
    v = judge(early, curve)
    assert v.verdict == claims.REPRODUCED and v.numbers["means"] == [3.0, 3.5]
    last = claim("ordering", chain=[{"row": "GD", "step": "last"}, {"row": "ADM", "step": "last"}])
    assert judge(last, curve).verdict == claims.NOT_REPRODUCED


PAPER = """\
paper: toy
title: Toy
tables:
- {table: Table 1, experiment: toy.t1, values: [{row: a, column: c, metric: m, value: 1.0}]}
- {table: Fig. 2, experiment: toy.later}
- {table: Fig. 3}
claims:
- id: mean-over-lengths
  kind: ordering
  profiles: [mini, full]
  min_effect: 0.5
  chain:
  - {table: Fig. 6, row: ADM, column: [length 1, length 0], metric: miou, each: lengths}
  - {table: Fig. 6, row: GD, column: [length 1, length 0], metric: miou}
- id: vs-published
  kind: improvement
  profiles: full
  method: {row: Ours, metric: MPJPE}
  baseline: {published: 52.8, label: Tome}
  paper_gain: 6.7
"""


def test_paper_yaml_new_fields_load_and_old_forms_stay_valid(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text(PAPER)
    paper = claims.load_paper(path)
    assert [t.experiment for t in paper.tables] == ["toy.t1", "toy.later", None]
    assert paper.tables[1].values == ()
    assert paper.claims[0].profiles == ("mini", "full") and paper.claims[0].spec["min_effect"] == 0.5
    assert paper.claims[1].profiles == ("full",)


@pytest.mark.parametrize("bad,message", [
    ("  min_effect: -1\n", "min_effect must be a number >= 0"),
    ("  profiles: [tiny]\n", "profiles must be among"),
])
def test_paper_yaml_rejects_bad_new_fields(tmp_path, bad, message):
    path = tmp_path / "paper.yaml"
    path.write_text(PAPER.replace("  min_effect: 0.5\n", bad))
    with pytest.raises(claims.PaperFileError, match=message):
        claims.load_paper(path)


def test_paper_yaml_rejects_bad_selections(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text(PAPER.replace("{published: 52.8, label: Tome}", "{published: 52.8, row: Tome}"))
    with pytest.raises(claims.PaperFileError, match="published selection takes only"):
        claims.load_paper(path)
    path.write_text(PAPER.replace("metric: miou, each: lengths", "metric: miou, step: soon"))
    with pytest.raises(claims.PaperFileError, match="step must be"):
        claims.load_paper(path)
    path.write_text(textwrap.dedent(PAPER).replace("column: [length 1, length 0], metric: miou}",
                                                    "column: [], metric: miou}"))
    with pytest.raises(claims.PaperFileError, match="cannot be a list"):
        claims.load_paper(path)
