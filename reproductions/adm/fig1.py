"""Fig. 1 of Marin et al. (CVPR 2019): the Potts cost of the segments of a 1-D image as a
function of their discontinuity point, for the grid (nearest-neighbour) and the dense
(larger-neighbourhood) CRF.

The paper's toy: an intensity profile ``I(x)`` on a 1-D image and the segments
``S^t = {x | x < t}``; panel (b) plots the cost of ``S^t`` against ``t`` under the
nearest-neighbour Potts model, panel (c) under a larger-neighbourhood (dense) Potts model: "The
latter gives smoother cost function, but its flatter minimum may complicate discontinuity
localization", and (Sec. 3) away from the true boundary the grid cost gives no gradient, so
gradient methods "fail to detect it due to the sparsity of the grid CRF model".

Computed here (no training, the same at every profile): the cost Eq. (1),
``E(S) = sum_{p<q} w_pq [S_p != S_q]`` with the Eq. (2)/(3) weights
``w_pq = exp(-(I_p - I_q)^2 / (2 sigma^2)) * k(|p - q|)``: grid, ``k = 1`` for ``|p - q| = 1``
and 0 otherwise; dense, ``k = exp(-(p - q)^2 / (2 Delta^2))`` over all pairs, scaled so that
both costs are 1 for a cut in a flat region (the comparison is of shapes, not scales). ``sigma``
is the Boykov-Jolly contrast scale (the mean squared neighbour difference). The image is a
dark-to-bright step at ``edge``, a weaker step half way to it, and a little noise (seeded). Recorded per
model: the cost curve (``cost`` at each ``t``, step = t), the distance of its minimum from the
edge (``argmin_error``, px), the fraction of positions where the cost has no slope
(``flat_fraction``: ``|E(t+1) - E(t)| < 1e-3`` of its range: no gradient to follow there), and the
width of the basin around the minimum (``basin_width``: the run of positions around it whose cost
is within half the cost range of the minimum; the paper's "flatter minimum").
"""
from __future__ import annotations

import numpy as np

from suite.harness import experiment

TABLE = "Fig. 1"
ROWS = {"grid": "grid CRF (nearest-neighbour Potts)", "dense": "dense CRF (Gaussian neighbourhood)"}
_COMMON = {"length": 200, "edge": 120, "step": 0.5, "weak": 0.05, "noise": 0.0, "delta": 12.0, "seeds": [0]}
PROFILES = {"smoke": dict(_COMMON), "mini": dict(_COMMON), "full": dict(_COMMON)}


def profile_1d(*, length: int, edge: int, step: float, weak: float, noise: float, seed: int) -> np.ndarray:
    """The toy intensities ``I(x)``, ``(length,)``: a weak step of ``weak`` at ``edge / 2``, the
    object's edge (a step of ``step``) at ``edge``, Gaussian noise of std ``noise`` (seeded)."""
    if not 8 <= edge <= length - 4:
        raise ValueError(f"edge: expected a position in [8, {length - 4}], got {edge}")
    x = np.arange(length, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return 0.2 + weak * (x >= edge // 2) + step * (x >= edge) + noise * rng.standard_normal(length)


def cut_costs(intensity: np.ndarray, *, delta: float | None) -> np.ndarray:
    """Potts cost of every segment ``S^t = {x < t}``, ``t = 1 .. n-1`` (Eq. 1 with Eq. 2 / 3 weights).

    Args:
        intensity: ``(n,)`` the 1-D image.
        delta: None for the grid CRF (neighbours at distance 1), else the dense kernel's spatial
            bandwidth (all pairs, Gaussian in the distance).

    Returns:
        ``(n - 1,)`` costs, each divided by the cost of the same cut in a flat image (so a cut
        between equal intensities costs 1, also near the ends).

    Raises:
        ValueError: ``intensity`` not 1-D, shorter than 3 or not finite; ``delta`` not positive.
    """
    values = np.asarray(intensity, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3 or not np.isfinite(values).all():
        raise ValueError(f"intensity: expected a finite 1-D array of length >= 3, got shape {values.shape}")
    if delta is not None and not delta > 0:
        raise ValueError(f"delta: expected a positive bandwidth, got {delta}")
    n = len(values)
    sigma2 = max(np.mean(np.diff(values) ** 2), 1e-12)  # Boykov-Jolly: the mean squared neighbour difference
    diff = values[:, None] - values[None, :]
    contrast = np.exp(-diff ** 2 / (2 * sigma2))
    distance = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    if delta is None:
        spatial = (distance == 1).astype(np.float64)
    else:
        spatial = np.exp(-distance ** 2 / (2 * delta ** 2)) * (distance > 0)
    weights = contrast * spatial
    # cost(t) = sum over p < t <= q of w_pq: the block of pairs the cut at t separates
    costs = np.array([weights[:t, t:].sum() for t in range(1, n)])
    # unit: the same cut in a flat image (every contrast term 1), so the dense kernel's truncation
    # at the image ends does not show as a dip in the cost
    flat = np.array([spatial[:t, t:].sum() for t in range(1, n)])
    return costs / flat


def curve_summary(costs: np.ndarray, *, edge: int) -> dict:
    """``argmin_error`` (px), ``flat_fraction`` and ``basin_width`` of a cost curve (module doc).
    Positions within 3 px of the image ends are left out."""
    t = np.arange(1, len(costs) + 1)
    inner = (t > 3) & (t < len(costs) - 2)
    cost, t = costs[inner], t[inner]
    span = float(cost.max() - cost.min()) or 1.0
    slopes = np.abs(np.diff(cost))
    return {"argmin_error": float(abs(int(t[np.argmin(cost)]) - edge)),
            "flat_fraction": float(np.mean(slopes < 1e-3 * span)),
            "basin_width": float(_basin(cost, cost.min() + 0.5 * span))}


def _basin(cost: np.ndarray, level: float) -> int:
    """Length of the run of positions below ``level`` around the minimum (width at half depth)."""
    centre = int(np.argmin(cost))
    left = centre
    while left > 0 and cost[left - 1] <= level:
        left -= 1
    right = centre
    while right < len(cost) - 1 and cost[right + 1] <= level:
        right += 1
    return right - left + 1


@experiment(
    "adm.fig1",
    table=TABLE,
    title="Potts cost of the 1-D segments S^t = {x < t} vs the discontinuity t: grid vs dense CRF (Fig. 1)",
    grid=lambda settings: [{"model": m} for m in ROWS],
    profiles=PROFILES,
    plots=lambda frame: {"cost-vs-discontinuity": plot(frame)},
    protocol=__doc__.split("\n\n", 1)[1],
)
def fig1(ctx, cell):
    s = ctx.settings
    intensity = profile_1d(length=s["length"], edge=s["edge"], step=s["step"], weak=s["weak"], noise=s["noise"],
                           seed=ctx.seed)
    costs = cut_costs(intensity, delta=None if cell["model"] == "grid" else s["delta"])
    row = ROWS[cell["model"]]
    for t, value in enumerate(costs, start=1):
        ctx.record(row=row, column="cost", metric="cost", value=float(value), step=t, unit="flat cut = 1",
                   higher_is_better=False)
    if cell["model"] == "grid":  # panel (a), once
        for x, value in enumerate(intensity):
            ctx.record(row="intensity I(x)", column="cost", metric="intensity", value=float(value), step=x,
                       unit="", higher_is_better=False)
    summary = curve_summary(costs, edge=s["edge"])
    units = {"argmin_error": "px", "flat_fraction": "fraction", "basin_width": "px"}
    for metric, value in summary.items():
        # lower is better for all three: a sharper, better-placed minimum with a slope to follow
        ctx.record(row=row, column="summary", metric=metric, value=value, unit=units[metric],
                   higher_is_better=False, note=f"edge at x = {s['edge']}; dense bandwidth {s['delta']} px")
    return ctx.records


def plot(frame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    df = frame[frame.value.notna() & frame.step.notna()]
    panels = [("intensity", "intensity I(x)", "(a) intensities I(x)"),
              ("cost", ROWS["grid"], "(b) grid Potts cost of S^t"),
              ("cost", ROWS["dense"], "(c) dense Potts cost of S^t")]
    for ax, (metric, row, title) in zip(axes, panels):
        part = df[(df.metric == metric) & (df.row == row)]
        curve = part.groupby("step").value.mean().sort_index()
        ax.plot(curve.index, curve.values)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x" if metric == "intensity" else "discontinuity t")
    fig.tight_layout()
    return fig


__all__ = ["fig1", "cut_costs", "curve_summary", "profile_1d"]
