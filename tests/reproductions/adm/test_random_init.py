"""Cells trained from random init (no ImageNet checkpoint) are marked in their notes, and the
claim engine does not judge value claims on them (issue 15); orderings are still judged."""
from __future__ import annotations

import pandas as pd

from reproductions.adm import training
from suite.harness import claims, store
from suite.harness.records import Record


def _frame(note):
    recs = []
    for i, (column, value) in enumerate((("pCE loss", 50.0), ("+grid CRF ADM", 60.0))):
        r = Record(paper="adm", table="Table 2", row="Deeplab-largeFOV", column=column, metric="miou", value=value,
                   unit="%", higher_is_better=True, device="cpu", note=note).to_dict()
        recs.append({**r, "experiment": "adm.table2", "key": f"k{i}", "profile": "full", "seed": 0, "status": "ok",
                     "device_class": "cpu:x", "cell": "{}", "git_commit": None, "host": None})
    return pd.DataFrame(recs, columns=store.RECORD_COLUMNS + store.CELL_COLUMNS).astype(
        {"value": "float64", "std": "float64"})


def _select(column):
    return {"table": "Table 2", "row": "Deeplab-largeFOV", "column": column, "metric": "miou"}


def test_value_claims_on_random_init_records_are_not_judged_orderings_are():
    value = claims.Claim(id="v", kind="value", text="", source="", spec={"select": _select("+grid CRF ADM"),
                         "expected": 61.7, "tolerance": 1.0}, profiles=("full",))
    order = claims.Claim(id="o", kind="ordering", text="", source="",
                         spec={"chain": [_select("+grid CRF ADM"), _select("pCE loss")]}, profiles=("full",))
    note = training.init_note({}, "Deeplab-largeFOV") + "; 2 training samples skipped"
    assert note.startswith(training.RANDOM_INIT) and claims.is_random_init(note)
    marked = _frame(note)
    verdict = claims.judge(value, marked, paper="adm", profile="full")
    assert verdict.verdict == claims.NOT_JUDGED and "random init" in verdict.evidence
    assert verdict.numbers["ours"] == 60.0
    assert claims.judge(order, marked, paper="adm", profile="full").verdict == claims.REPRODUCED
    pretrained = _frame("initialised from /weights/vgg16.pth")
    assert claims.judge(value, pretrained, paper="adm", profile="full").verdict == claims.NOT_REPRODUCED  # |60 - 61.7| > 1


def test_the_init_note_names_the_checkpoint_or_random_init(tmp_path, monkeypatch):
    from reproductions.adm import models

    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)
    assert training.init_note({}, "mini-ASPP").startswith("random init")
    assert "ENERGYBENCH_WEIGHTS/resnet101.pth" in training.init_note({}, "ResNet-101")
    (tmp_path / "resnet101.pth").write_bytes(b"")
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    assert training.init_note({}, "ResNet-101") == f"initialised from {tmp_path / 'resnet101.pth'}"
    assert not claims.is_random_init(training.init_note({}, "ResNet-101"))
