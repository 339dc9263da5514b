"""lsm.subspaces (Fig. 13): the DCT reference basis, the residual at the finest level on known
subspaces (cropping the padding, scaling flow to the level), the panel, and a smoke run."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
from torch import nn

import reproductions.lsm  # noqa: F401  (registers the experiments)
from reproductions.lsm import plots, subspace_analysis
from reproductions.lsm.model import LSMOutput


def test_dct_basis_matches_scipy_and_is_orthogonal():
    basis = subspace_analysis.dct_basis(6, 5, 7)
    assert basis.shape == (6, 5, 7) and basis.dtype == torch.float64
    # zig-zag order: (0,0), then (0,1), (1,0), then (0,2), (1,1), (2,0)
    frequencies = [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]
    for image, (fy, fx) in zip(basis, frequencies):
        impulse = np.zeros((5, 7))
        impulse[fy, fx] = 1.0
        reference = scipy.fft.idctn(impulse, type=2)  # independent: scipy's inverse DCT-II of a delta
        np.testing.assert_allclose(image.numpy() / np.abs(image.numpy()).max(),
                                   reference / np.abs(reference).max(), atol=1e-12)
    gram = basis.reshape(6, -1) @ basis.reshape(6, -1).T
    np.testing.assert_allclose(gram - torch.diag(torch.diagonal(gram)), 0.0, atol=1e-10)
    # the full basis spans everything: nothing is left outside it
    full = subspace_analysis.dct_basis(35, 5, 7)
    target = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rest, total = subspace_analysis.residual(full, target, torch.ones(5, 7, dtype=torch.bool))
    assert rest / total < 1e-20
    with pytest.raises(ValueError, match="k: expected 1 <= k <= 35"):
        subspace_analysis.dct_basis(36, 5, 7)


class _KnownBasis(nn.Module):
    """A stand-in model whose finest basis is given as a function of the level's shape."""

    def __init__(self, make):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.make = make
        self.seen = []

    def forward(self, task, inputs):
        first = next(iter(inputs.values()))
        self.seen.append(tuple(first.shape[-2:]))
        h, w = first.shape[-2] // 4, first.shape[-1] // 4
        return LSMOutput(solution=torch.zeros(1, 2 if task == "flow" else 1, *first.shape[-2:]),
                         bases=[] if self.make is None else [self.make(h, w)])


def _flow_sample(height=40, width=60):
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = 8.0  # u: a constant motion
    flow[:, : width // 2, 1] = -4.0  # v: two motion layers (left and right halves)
    image = np.zeros((height, width, 3), np.uint8)
    inputs = {"image1": torch.zeros(1, 3, height, width), "image2": torch.zeros(1, 3, height, width)}
    return ("pair", inputs, image, [flow[..., 0], flow[..., 1]], np.ones((height, width), bool))


def test_residual_is_zero_when_v_holds_the_layers_and_one_when_orthogonal(monkeypatch):
    monkeypatch.setattr(subspace_analysis, "_samples", lambda ctx, task, dataset, limit: iter([_flow_sample()]))

    def layers(h, w):
        # 40 x 60 is padded to 64 x 64 (multiple 32): the level is 16 x 16, the image covers 10 x 15 of it
        vx = torch.zeros(1, 2, h, w)
        vx[0, 0] = 1.0  # constant: holds u
        vy = torch.zeros(1, 2, h, w)
        vy[0, 0, :, :8] = 1.0  # the left layer (7.5 of the 15 image columns, rounded up)
        vy[0, 1] = torch.linspace(-1, 1, w)  # a ramp: off the layer structure
        return torch.stack((vx, vy), 1)  # (B, 2, K, h, w)

    model = _KnownBasis(layers)
    result = subspace_analysis.analyse(None, model, "flow", "mini-flow", limit=1, keep_panel=True)
    assert model.seen == [(64, 64)]
    assert result["level"] == (10, 15, 2)
    mean, error, n = result["residual"]
    assert n == 1 and error is None
    # u lies in span(V_x); v = -4 on the left half: the boundary column 7 of 15 holds a mixture
    # (area resize), the rest lies in span(V_y)
    assert mean < 0.12
    # the DCT reference of K = 2 (constant, horizontal cosine) holds u and most of the step
    assert 0.0 < result["dct"][0] < 0.5
    panel = result["panel"]
    assert panel["truth"].shape == (2, 10, 15) and panel["bases"].shape == (4, 10, 15)
    np.testing.assert_allclose(panel["truth"][0], 8.0 * 15 / 60)  # u brought to the level's pixel units
    assert panel["labels"].tolist()[:1] == ["V_x[1]"] and "flow on mini-flow" in str(panel["title"])

    def orthogonal(h, w):
        checker = torch.tensor([[(-1.0) ** (i + j) for j in range(w)] for i in range(h)])
        basis = torch.zeros(1, 2, 1, h, w)
        basis[0, :, 0, :10, :14] = checker[:10, :14]  # zero-mean over the crop's first 14 columns
        return basis

    result = subspace_analysis.analyse(None, _KnownBasis(orthogonal), "flow", "mini-flow", limit=1, keep_panel=False)
    assert result["residual"][0] == pytest.approx(1.0, abs=1e-6) and result["panel"] is None


def test_interactive_target_is_the_signed_mask_without_void(monkeypatch):
    truth = np.zeros((32, 32), np.uint8)
    truth[8:24, 8:24] = 1
    truth[:, :2] = 255  # void: left out
    sample = ("scene", {"image": torch.zeros(1, 3, 32, 32), "foreground": torch.zeros(1, 1, 32, 32, dtype=torch.bool),
                        "background": torch.zeros(1, 1, 32, 32, dtype=torch.bool)},
              np.zeros((32, 32, 3), np.uint8), [2.0 * (truth == 1) - 1.0], truth != 255)
    monkeypatch.setattr(subspace_analysis, "_samples", lambda ctx, task, dataset, limit: iter([sample]))

    def foreground_background(h, w):
        mask = torch.zeros(h, w)
        mask[2:6, 2:6] = 1.0
        return torch.stack((mask, 1.0 - mask))[None]

    result = subspace_analysis.analyse(None, _KnownBasis(foreground_background), "interactive", "mini-masks", limit=1,
                                       keep_panel=True)
    assert result["residual"][0] == pytest.approx(0.0, abs=1e-9)
    assert result["panel"]["truth"].shape == (1, 8, 8) and not result["panel"]["valid"][:, 0].any()
    with pytest.raises(ValueError, match="no bases"):
        subspace_analysis.analyse(None, _KnownBasis(None), "interactive", "mini-masks", limit=1, keep_panel=False)


def test_subspaces_smoke_records_and_figures(lsm_data, tmp_path):
    from suite.harness import registry, runner, store

    summary = runner.run([registry.get("lsm.subspaces")],
                         runner.Options(profile="smoke", device="cpu", results=tmp_path / "results", progress=False))
    assert summary.ok, summary.failed
    df = store.frame(tmp_path / "results")
    measured = df[df.value.notna()]
    # the test environment has no real samples: the generated validation splits only
    assert set(measured.column) == {"flow: mini-flow", "interactive: mini-masks"}
    assert set(measured.row) == {"LSM (full)", "w/o minimization context", subspace_analysis.DCT_ROW}
    assert ((measured.value >= 0) & (measured.value <= 1 + 1e-9)).all()
    learned = measured[measured.row != subspace_analysis.DCT_ROW]
    assert learned.note.str.contains("finest level").all() and learned.note.str.contains("random init").all()
    assert measured[measured.row == subspace_analysis.DCT_ROW].note.str.contains("lowest-frequency DCT").all()
    panels = measured[measured.note.str.contains("; panel ")]
    assert set(panels.row) == {"LSM (full)"} and len(panels) == 2  # one per task, the full model's
    import matplotlib

    matplotlib.use("Agg")
    figure = plots.subspace_panel(df)
    titles = [ax.get_title() for ax in figure.axes]
    assert "u (truth)" in titles and "mask (truth)" in titles
    assert any(t.startswith("V_x[") for t in titles) and any(t.startswith("V[") for t in titles)
    texts = " ".join(t.get_text() for ax in figure.axes for t in ax.texts)
    assert "flow on mini-flow" in texts and "interactive on mini-masks" in texts  # the data is named
    bars = plots.residual_bars(df)
    assert len(bars.axes[0].patches) == len(measured)
