"""tvlayers.table4: DexiNed's architecture and loss, the TV placement of DexiNed + TV, a smoke
training run end to end, and the data helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reproductions.tvlayers import dexined, table4
from suite.harness import claims, registry, runner, store
from suite.solvers.tv import TVLayer

WIDTHS = (4, 4, 8, 8, 8, 8)


def _pair(lam_init: float):
    torch.manual_seed(0)
    plain = dexined.DexiNed(widths=WIDTHS, up_features=4)
    torch.manual_seed(0)
    with_tv = dexined.DexiNed(widths=WIDTHS, up_features=4, tv=True, tv_lam_init=lam_init)
    return plain.eval(), with_tv.eval()


def test_side_maps_at_input_size_and_scales_of_the_release():
    model = dexined.DexiNed(widths=WIDTHS, up_features=4).eval()
    outputs = model(torch.randn(2, 3, 48, 64))
    assert len(outputs) == 7 and all(o.shape == (2, 1, 48, 64) for o in outputs)
    # Heads: one stride-2 transposed conv per doubling (2x, 2x, 4x, 8x, 16x, 16x).
    stages = [sum(isinstance(m, torch.nn.ConvTranspose2d) for m in up.modules()) for up in model.up_blocks]
    assert stages == [1, 1, 2, 3, 4, 4]
    # Dense blocks of 2, 3, 3, 3 layers (release).
    assert [len(b.layers) for b in (model.dblock_3, model.dblock_4, model.dblock_5, model.dblock_6)] == [2, 3, 3, 3]
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.randn(1, 3, 40, 64))
    with pytest.raises(ValueError, match="six channel counts"):
        dexined.DexiNed(widths=(4, 4, 8))


def test_tv_placement_sharp_on_2x_4x_8x_and_smooth_on_the_fused_map():
    _, model = _pair(0.05)
    assert dexined.TV_OUTPUTS == (0, 1, 2, 3)  # blocks 1, 2 (2x), 3 (4x), 4 (8x)
    assert all(isinstance(t, TVLayer) and t.mode == "sharp" and t.direction == "2d" for t in model.tv_sharp)
    assert len(model.tv_sharp) == 4
    assert model.tv_smooth.mode == "smooth" and model.tv_smooth.direction == "2d"
    assert all(t.lam_raw.requires_grad for t in [*model.tv_sharp, model.tv_smooth])  # trainable lambda


def test_tv_layers_act_exactly_where_placed():
    x = torch.randn(1, 3, 32, 32)
    plain, identity = _pair(0.0)  # lambda = 0: every TV layer is the identity (Eq. 5)
    for a, b in zip(plain(x), identity(x)):
        torch.testing.assert_close(a, b)
    plain, model = _pair(1.0)
    with torch.no_grad():
        for layer in model.tv_sharp:
            layer.lam_raw.fill_(-30.0)  # lambda ~ 1e-13: off
        model.tv_smooth.lam_raw.fill_(-30.0)
        model.tv_sharp[2].lam_raw.fill_(2.0)  # only the 4x map (output 3) sharpened
    a, b = plain(x), model(x)
    changed = [not torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b)]
    assert changed == [False, False, True, False, False, False, True]  # output 3 and the fusion of it
    torch.testing.assert_close(b[2], TVLayer(1, mode="sharp", lam_init=float(F.softplus(torch.tensor(2.0))))(a[2]))


def test_loss_matches_the_release_bdcn_loss2():
    torch.manual_seed(1)
    outputs = [torch.randn(2, 1, 6, 5) for _ in range(7)]
    labels = (torch.rand(2, 1, 6, 5) > 0.8).float()

    def bdcn_loss2(inputs, targets, l_weight):  # losses.py of xavysp/DexiNed, line for line
        mask = targets.clone()
        num_positive = torch.sum((mask > 0.0).float())
        num_negative = torch.sum((mask <= 0.0).float())
        mask[mask > 0.0] = 1.0 * num_negative / (num_positive + num_negative)
        mask[mask <= 0.0] = 1.1 * num_positive / (num_positive + num_negative)
        cost = torch.nn.BCELoss(mask, reduction="none")(torch.sigmoid(inputs), targets)
        return l_weight * torch.sum(cost.mean((1, 2, 3)))

    expected = sum(bdcn_loss2(o, labels, w) for o, w in zip(outputs, dexined.LOSS_WEIGHTS))
    torch.testing.assert_close(dexined.dexined_loss(outputs, labels), expected)


def test_labels_and_average_map():
    annotation = torch.tensor([0.0, 0.2, 0.39, 0.4, 0.6, 1.0])
    assert dexined.edge_labels(annotation).tolist() == [0, 0, 0, 1, 1, 1]
    logits = [torch.randn(2, 1, 4, 4) for _ in range(7)]
    average = dexined.average_edge_map(logits)
    assert average.shape == (2, 4, 4)
    assert float(average.min()) >= 0 and float(average.max()) <= 1
    x, size = dexined.pad_to_stride(torch.randn(1, 3, 33, 50))
    assert x.shape[-2:] == (48, 64) and size == (33, 50)


def test_downscaled_boundaries_keep_a_thin_line():
    boundaries = np.zeros((20, 20), bool)
    boundaries[:, 9] = True
    small = table4.downscale_boundaries(boundaries, 2, (10, 10))
    assert small.shape == (10, 10) and small[:, 4].all() and small.sum() == 10


def test_table4_smoke_end_to_end(tmp_path):
    exp = registry.get("tvlayers.table4")
    opts = runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False)
    summary = runner.run([exp], opts)
    assert summary.ok
    df = store.frame(tmp_path / "results")
    for row in table4.ROWS.values():
        for metric in table4.METRICS:
            values = df[(df.row == row) & (df.metric == metric) & (df.column == "mini-edges (stand-in)")].value
            assert len(values) == 1 and 0.0 <= float(values.iloc[0]) <= 1.0
        step = df[(df.row == row) & (df.metric == "step_time")].value
        assert len(step) == 1 and float(step.iloc[0]) > 0
    lambdas = df[(df.row == "+TV") & (df.metric == "lam")]
    assert len(lambdas) == 5 and (lambdas.value > 0).all()
    paper = claims.load_paper(table4.__file__.replace("table4.py", "paper.yaml"))
    # No claim is judged at smoke; judged as if at mini, the records must decide every mini claim.
    verdicts = {v.claim.id: v for v in claims.judge_all(paper, df.assign(profile="mini"), profile="mini")}
    mini_claims = [c for c in paper.claims if c.spec.get("experiment") == "tvlayers.table4"
                   and c.profiles and "mini" in c.profiles]
    assert mini_claims and all(verdicts[c.id].verdict in claims.JUDGED for c in mini_claims)


def test_claims_state_the_paper_gain_as_an_improvement():
    """The engine signs gains by higher_is_better: the paper's improvements are positive gains."""
    paper = claims.load_paper(Path(registry.get("tvlayers.table4").func.__code__.co_filename).with_name("paper.yaml"))
    mine = [c for c in paper.claims if c.id.startswith("dexined-tv-beats-dexined")]
    assert len(mine) >= 4 and all(c.kind == "improvement" and float(c.spec["paper_gain"]) > 0 for c in mine)
