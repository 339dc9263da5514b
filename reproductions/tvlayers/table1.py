"""Table 1 of Yeh et al. (CVPR 2022): time of the 1D TV proximity operator, forward and backward.

Protocol (Sec. 4.1): a batch shaped 256 x 32 x 32 of unit steps plus Gaussian noise, lam = 1,
mean and std over 25 runs. The paper does not say along which axis the signals lie; we read the
shape as (batch 256, 32 rows, 32 columns) with the prox along the last axis, i.e. 8192 signals
of length 32, as a TV1D layer applied to the rows of 256 feature maps of 32 x 32 would see it.
The step is at the middle of each signal, the noise standard deviation 0.1 (unstated in the
paper). Ours runs in float32 and in float64; ProxTV and CVXPYLayers compute in float64, as their
libraries do.

Rows: the paper's peers as it ran them (CVXPYLayers; ProxTV taut string and projected Newton,
one call per row, with a per-row PyTorch backward), proxTV's default method (hybrid taut string)
per row, and proxTV's batched entry point (`tvgen` on the whole batch, with a vectorised
backward): the fastest proxTV usage we found, against which our speed goal is judged. Ours:
Condat's exact algorithm (`tv_prox_1d`) and the paper's own method, batched projected Newton on
the dual (`tv_prox_1d_newton`, Sec. 3.2, the same torch code on CPU and CUDA). The paper timed
its CUDA solver against the peers on a CPU; its speed factors (1770x, 37x) are therefore
cross-device and shown for the record; the same-device versions are judged.
"""
from __future__ import annotations

import numpy as np
import torch

from suite.harness import experiment
from suite.harness.timing import time_forward_backward
from suite.solvers.tv import tv_prox_1d, tv_prox_1d_newton, tv_prox_2d

from . import peers

TABLE = "Table 1"
TABLE_2D = "Table 1 (2D)"
ROW = {"cpu": "energybench (CPU)", "cuda": "energybench (CUDA)"}
ROW_64 = {"cpu": "energybench float64 (CPU)", "cuda": "energybench float64 (CUDA)"}
NEWTON = "projected Newton (the paper's method)"
ROW_NEWTON = {(d, t): f"{NEWTON}, {t} ({d.upper()})" for d in ("cpu", "cuda") for t in ("float32", "float64")}
ROW_2D = {"cpu": "energybench 2D (CPU)", "cuda": "energybench 2D (CUDA)", "proxtv": "ProxTV tv1_2d"}

CELLS = [
    {"solver": "CVXPYLayers"},
    {"solver": "ProxTV-TS"},
    {"solver": "ProxTV-PN"},
    {"solver": "energybench", "device": "cpu"},
    {"solver": "energybench", "device": "cuda"},
    {"solver": "energybench", "device": "cpu", "dtype": "float64"},
    {"solver": "energybench", "device": "cuda", "dtype": "float64"},
    {"solver": "newton", "device": "cpu", "dtype": "float32"},
    {"solver": "newton", "device": "cpu", "dtype": "float64"},
    {"solver": "newton", "device": "cuda", "dtype": "float32"},
    {"solver": "newton", "device": "cuda", "dtype": "float64"},
    {"solver": "ProxTV-hybrid (default), per row"},
    {"solver": "ProxTV-batched"},
    {"solver": "energybench-2d", "device": "cpu"},
    {"solver": "energybench-2d", "device": "cuda"},
    {"solver": "ProxTV-2D"},
]

PROFILES = {
    # smoke: the same code on a tiny batch, for tests.
    "smoke": {"shape": [2, 4, 32], "repeats": 2, "warmup": 1, "cvxpy_repeats": 1, "shape_2d": [1, 32, 32],
              "repeats_2d": 2, "lam": 1.0, "lam_2d": 0.1, "noise": 0.1},
    # mini: the paper's workload; fewer repeats for CVXPYLayers (about 30 s per forward here).
    "mini": {"shape": [256, 32, 32], "repeats": 25, "warmup": 3, "cvxpy_repeats": 2, "shape_2d": [3, 512, 512],
             "repeats_2d": 5, "lam": 1.0, "lam_2d": 0.1, "noise": 0.1},
    "full": {"shape": [256, 32, 32], "repeats": 25, "warmup": 3, "cvxpy_repeats": 25, "shape_2d": [3, 512, 512],
             "repeats_2d": 25, "lam": 1.0, "lam_2d": 0.1, "noise": 0.1},
}


def step_signals(shape, *, noise: float, seed: int) -> torch.Tensor:
    """Unit steps along the last axis (0 then 1 from the middle) plus N(0, noise^2), float64."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(shape, dtype=torch.float64)
    x[..., shape[-1] // 2:] = 1.0
    return x + noise * torch.randn(shape, generator=generator, dtype=torch.float64)


def test_image(shape, *, seed: int) -> torch.Tensor:
    """A real photograph (scikit-image's astronaut, shipped with the package) in [0, 1], cropped."""
    from skimage import data

    c, h, w = shape
    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).double() / 255.0
    img = img[:c, :h, :w]
    if tuple(img.shape) != (c, h, w):
        img = torch.nn.functional.interpolate(img[None], size=(h, w), mode="bilinear")[0][:c]
    generator = torch.Generator().manual_seed(seed)
    return img + 0.05 * torch.randn(img.shape, generator=generator, dtype=torch.float64)


def _record_times(ctx, timing, *, row, table, device):
    for column, values in (("forward", timing.forward), ("backward", timing.backward), ("total", timing.total)):
        ctx.record(row=row, column=column, metric="time", value=float(values.mean()), std=float(values.std()),
                   n=len(values), unit="ms", higher_is_better=False, device=device, table=table)


def _not_run_times(ctx, *, row, table, reason, device):
    for column in ("forward", "backward", "total"):
        ctx.not_run(row=row, column=column, metric="time", unit="ms", higher_is_better=False,
                    reason=reason, device=device, table=table)


def _agreement(ctx, ours: np.ndarray, theirs: np.ndarray, *, row, table, device, reference: str):
    ctx.record(row=row, column=f"max |y - y_{reference}|", metric="max_abs_diff",
               value=float(np.abs(ours - theirs).max()), unit="", higher_is_better=False, device=device,
               table=table)


@experiment(
    "tvlayers.table1",
    table=TABLE,
    title="TV 1D proximity operator: forward/backward time vs CVXPYLayers and ProxTV",
    grid=lambda settings: CELLS,
    profiles=PROFILES,
    timing=True,
    plots=lambda frame: {"times": plot_times(frame)},
    protocol=__doc__.split("\n\n", 1)[1],
)
def table1(ctx, cell):
    s = ctx.settings
    solver = cell["solver"]
    device = cell.get("device", "cpu")
    dtype = cell.get("dtype", "float32")
    if device == "cuda" and not torch.cuda.is_available():
        if solver.endswith("2d"):
            table, row = TABLE_2D, ROW_2D["cuda"]
        elif solver == "newton":
            table, row = TABLE, ROW_NEWTON[("cuda", dtype)]
        else:
            table, row = TABLE, (ROW_64 if dtype == "float64" else ROW)["cuda"]
        _not_run_times(ctx, row=row, table=table, device="cuda",
                       reason="CUDA not available on this machine (run with a GPU to fill this row)")
        return ctx.records
    x64 = step_signals(s["shape"], noise=s["noise"], seed=ctx.seed)
    lam = float(s["lam"])
    reference = tv_prox_1d(x64, lam).numpy()  # ours in float64: the agreement reference

    if solver in ("energybench", "newton"):
        x = x64.to(device=device, dtype=getattr(torch, dtype))
        if solver == "energybench":
            function, row = (lambda v: tv_prox_1d(v, lam)), (ROW_64 if dtype == "float64" else ROW)[device]
        else:
            function, row = (lambda v: tv_prox_1d_newton(v, lam)), ROW_NEWTON[(device, dtype)]
        timing = time_forward_backward(function, x, repeats=s["repeats"], warmup=s["warmup"])
        _record_times(ctx, timing, row=row, table=TABLE, device=device)
        out = function(x).detach().double().cpu().numpy()
        if solver == "newton" or dtype != "float64":
            _agreement(ctx, out, reference, row=row, table=TABLE, device=device,
                       reference="float64" if solver == "energybench" else "energybench float64")
        if solver == "newton" and peers.available("prox_tv"):
            _agreement(ctx, out, peers.proxtv_rows(x64, lam, method="pn").numpy(), row=row, table=TABLE,
                       device=device, reference="proxtv_pn")
    elif solver == "ProxTV-batched":
        if not peers.available("prox_tv"):
            _not_run_times(ctx, row=peers.PROXTV_BATCHED, table=TABLE, device="cpu",
                           reason="prox-tv not installed (pip install 'energybench[peers]')")
            return ctx.records
        timing = time_forward_backward(lambda v: peers.proxtv_batched(v, lam), x64, repeats=s["repeats"],
                                       warmup=s["warmup"])
        _record_times(ctx, timing, row=peers.PROXTV_BATCHED, table=TABLE, device="cpu")
        theirs = peers.proxtv_batched(x64, lam).numpy()
        _agreement(ctx, theirs, reference, row=peers.PROXTV_BATCHED, table=TABLE, device="cpu",
                   reference="energybench")
    elif solver in peers.PROXTV_METHODS:
        if not peers.available("prox_tv"):
            _not_run_times(ctx, row=solver, table=TABLE, device="cpu",
                           reason="prox-tv not installed (pip install 'energybench[peers]')")
            return ctx.records
        method = peers.PROXTV_METHODS[solver]
        timing = time_forward_backward(lambda v: peers.proxtv_rows(v, lam, method=method), x64,
                                       repeats=s["repeats"], warmup=s["warmup"])
        _record_times(ctx, timing, row=solver, table=TABLE, device="cpu")
        theirs = peers.proxtv_rows(x64, lam, method=method).numpy()
        _agreement(ctx, theirs, reference, row=solver, table=TABLE, device="cpu", reference="energybench")
    elif solver == "CVXPYLayers":
        if not (peers.available("cvxpylayers") and peers.available("cvxpy")):
            _not_run_times(ctx, row=solver, table=TABLE, device="cpu",
                           reason="cvxpylayers not installed (pip install 'energybench[peers]')")
            return ctx.records
        solve = peers.cvxpylayers_tv1d(s["shape"][-1])
        flat = x64.reshape(-1, s["shape"][-1])
        # Warm up on a few rows: the first call canonicalises the problem; a whole warm-up
        # batch would cost another half minute and change nothing.
        timing = time_forward_backward(lambda v: solve(v, lam), flat, repeats=s["cvxpy_repeats"], warmup=1,
                                       warmup_input=flat[:8])
        _record_times(ctx, timing, row=solver, table=TABLE, device="cpu")
        theirs = solve(flat, lam).detach().reshape(x64.shape).numpy()
        _agreement(ctx, theirs, reference, row=solver, table=TABLE, device="cpu", reference="energybench")
    elif solver == "energybench-2d":
        img = test_image(s["shape_2d"], seed=ctx.seed).float().to(device)
        lam2 = float(s["lam_2d"])
        timing = time_forward_backward(lambda v: tv_prox_2d(v, lam2), img, repeats=s["repeats_2d"],
                                       warmup=min(s["warmup"], 1))
        _record_times(ctx, timing, row=ROW_2D[device], table=TABLE_2D, device=device)
        if peers.available("prox_tv"):
            ours = tv_prox_2d(img, lam2).double().cpu().numpy()
            _agreement(ctx, ours, peers.proxtv_2d(img.double().cpu(), lam2), row=ROW_2D[device],
                       table=TABLE_2D, device=device, reference="proxtv")
    elif solver == "ProxTV-2D":
        if not peers.available("prox_tv"):
            _not_run_times(ctx, row=ROW_2D["proxtv"], table=TABLE_2D, device="cpu",
                           reason="prox-tv not installed (pip install 'energybench[peers]')")
            return ctx.records
        img = test_image(s["shape_2d"], seed=ctx.seed)
        lam2 = float(s["lam_2d"])
        timing = time_forward_backward(lambda v: torch.from_numpy(peers.proxtv_2d(v, lam2)), img,
                                       repeats=s["repeats_2d"], warmup=1, backward=False)
        for column, values in (("forward", timing.forward),):
            ctx.record(row=ROW_2D["proxtv"], column=column, metric="time", value=float(values.mean()),
                       std=float(values.std()), n=len(values), unit="ms", higher_is_better=False, device="cpu",
                       table=TABLE_2D)
        ctx.not_run(row=ROW_2D["proxtv"], column="backward", metric="time", unit="ms", higher_is_better=False,
                    reason="proxTV tv1_2d has no backward", device="cpu", table=TABLE_2D)
    else:
        raise ValueError(f"unknown solver {solver!r} in cell {cell}")
    return ctx.records


def _paper_times() -> dict[tuple[str, str], float]:
    """The paper's Table 1 milliseconds by (row, column), from this package's paper.yaml."""
    from pathlib import Path

    from suite.harness.claims import load_paper

    paper = load_paper(Path(__file__).with_name("paper.yaml"))
    table = next((t for t in paper.tables if t.table == TABLE), None)
    return {(v["row"], v["column"]): float(v["value"]) for v in (table.values if table else ())
            if v.get("metric") == "time" and v.get("value") is not None}


def plot_times(frame):
    """Table 1 as a chart: every row (the paper's and ours, measured or not run), forward and
    backward ms per batch on a log axis, ours as solid bars and the paper's beside them as
    hatched bars; a row we did not measure says "not run" where its bars would be."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ("forward", "backward")
    df = frame[(frame.table == TABLE) & (frame.metric == "time") & frame.column.isin(columns)]
    measured = df[df.value.notna()]
    means = measured.groupby(["row", "column"]).value.mean()
    stds = measured.groupby(["row", "column"]).value.std().fillna(0.0)
    paper = {k: v for k, v in _paper_times().items() if k[1] in columns}
    rows = list(dict.fromkeys([r for r, _ in paper] + list(df.row.unique())))
    # fastest measured first (as the paper orders its table, slowest last); rows without ours at the end
    rows.sort(key=lambda r: means.get((r, "forward"), means.get((r, "backward"), np.inf)))
    colours = {"forward": "#1f77b4", "backward": "#ff7f0e"}
    height = 0.2
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.4))
    values = [v for v in list(means) + list(paper.values()) if v > 0]
    low = min(values) / 3 if values else 1e-2
    for i, row in enumerate(rows):
        offsets = {("ours", "forward"): -1.5, ("ours", "backward"): -0.5, ("paper", "forward"): 0.5,
                   ("paper", "backward"): 1.5}
        for (who, column), off in offsets.items():
            y = i + off * height
            if who == "ours" and (row, column) in means:
                ax.barh(y, means[(row, column)], height, xerr=stds.get((row, column), 0.0), color=colours[column],
                        capsize=2, label=f"ours, {column}")
            elif who == "paper" and (row, column) in paper:
                ax.barh(y, paper[(row, column)], height, color="white", edgecolor=colours[column], hatch="///",
                        label=f"paper, {column}")
        if not any((row, c) in means for c in columns):
            ax.text(low * 1.2, i - height, "not run here", va="center", fontsize=8, color="#666")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(left=low)
    ax.set_xlabel("time per batch (ms, log scale)")
    ax.set_title("TV 1D prox, lam = 1, ms per batch: ours (solid; this profile's batch) and the paper's "
                 "(hatched; 256 x 32 x 32)", fontsize=10)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    return fig
