"""The LSM figures rebuilt as matplotlib figures (the report saves them as SVG).

Each function takes the records of one experiment (a pandas DataFrame) and returns a Figure:
bars are means over seeds with the spread over seeds (or the standard error over images for a
single run) as error bars. Figs. 5-8 and 12 of the paper are bar charts without printed values,
so only our bars are drawn there and the caption says so; the zero-shot numbers the text prints
(Figs. 9-11, App. C) are drawn beside ours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: The zero-shot values printed in the text (Sec. 4.3 and App. C).
PAPER_ZERO_SHOT = {"stereo": 2.47, "flow": 4.6, "video": 0.682, "interactive": 0.802}
TASK_METRICS = {
    "interactive": ("scribbles to IoU>0.85", "IoU, 1 interaction"),
    "video": ("J mean", "F mean"),
    "stereo": ("EPE",),
    "flow": ("EPE",),
}
HEADLINE = {"interactive": "IoU, 1 interaction", "video": "J mean", "stereo": "EPE", "flow": "EPE"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _summary(frame, metric):
    df = frame[(frame.metric == metric) & frame.value.notna()]
    if "step" in df:
        df = df[df.step.isna()]
    out = {}
    for (row, column), group in df.groupby(["row", "column"], sort=False):
        values = group.value.to_numpy(float)
        spread = values.std(ddof=1) if len(values) > 1 else (float(group["std"].iloc[0])
                                                             if group["std"].notna().iloc[0] else 0.0)
        out[row, column] = (float(values.mean()), float(spread), len(values))
    return out


def _empty(plt, text):
    fig, ax = plt.subplots(figsize=(6, 1))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return fig


def _grouped(ax, summary, rows, columns, *, ylabel):
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs, means, spreads = [], [], []
        for j, column in enumerate(columns):
            if (row, column) in summary:
                xs.append(j + (i - (len(rows) - 1) / 2) * width)
                means.append(summary[row, column][0])
                spreads.append(summary[row, column][1])
        ax.bar(xs, means, width, yerr=spreads, capsize=2, label=row)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, fontsize=7, rotation=15)
    ax.set_ylabel(ylabel)


def task_bars(frame, task: str):
    """Figs. 5-8: one panel per metric, bars per method grouped by evaluation set."""
    plt = _pyplot()
    metrics = [m for m in TASK_METRICS[task] if (frame.metric == m).any() and frame[frame.metric == m].value.notna().any()]
    if not metrics:
        return _empty(plt, "no measured values yet")
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        summary = _summary(frame, metric)
        rows = list(dict.fromkeys(r for r, _ in summary))
        columns = list(dict.fromkeys(c for _, c in summary))
        unit = frame[frame.metric == metric].unit.dropna()
        _grouped(ax, summary, rows, columns, ylabel=f"{metric}" + (f" ({unit.iloc[0]})" if len(unit) and unit.iloc[0] else ""))
        ax.set_title(f"ours: {metric} (paper: bar chart only, values not printed)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def zero_shot_bars(frame):
    """Figs. 9-11, 15: per task, zero-shot / single / joint / baseline (ours) and the paper's
    zero-shot value."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    any_value = False
    for ax, task in zip(axes, ("interactive", "video", "stereo", "flow")):
        metric = HEADLINE[task]
        summary = {row: v for (row, column), v in _summary(frame, metric).items() if column == task}
        rows = list(summary)
        means = [summary[r][0] for r in rows]
        spreads = [summary[r][1] for r in rows]
        ax.bar(range(len(rows)), means, yerr=spreads, capsize=2, color="tab:blue", label="ours")
        ax.bar([len(rows)], [PAPER_ZERO_SHOT[task]], color="tab:gray", hatch="//", label="paper (zero-shot)")
        ax.set_xticks(range(len(rows) + 1))
        ax.set_xticklabels(rows + ["paper zero-shot"], fontsize=7, rotation=20)
        ax.set_title(f"{task}: {metric}", fontsize=9)
        any_value |= bool(rows)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig if any_value else (plt.close(fig), _empty(plt, "no measured values yet"))[1]


def ablation_bars(frame):
    """Fig. 12: one group per task, one bar per variant (each task's headline metric)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    any_value = False
    for ax, task in zip(axes, ("interactive", "video", "stereo", "flow")):
        metric = HEADLINE[task]
        summary = {row: v for (row, column), v in _summary(frame, metric).items() if column == task}
        rows = list(summary)
        ax.bar(range(len(rows)), [summary[r][0] for r in rows], yerr=[summary[r][1] for r in rows], capsize=2,
               color=[f"C{i}" for i in range(len(rows))])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(rows, fontsize=7, rotation=20)
        ax.set_title(f"{task}: {metric} ({'higher' if task in ('interactive', 'video') else 'lower'} is better)",
                     fontsize=9)
        any_value |= bool(rows)
    fig.tight_layout()
    return fig if any_value else (plt.close(fig), _empty(plt, "no measured values yet"))[1]


def residual_bars(frame):
    """The projection residual at the finest level, per task and variant."""
    plt = _pyplot()
    summary = _summary(frame, "projection residual")
    if not summary:
        return _empty(plt, "no measured values yet")
    rows = list(dict.fromkeys(r for r, _ in summary))
    columns = list(dict.fromkeys(c for _, c in summary))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    _grouped(ax, summary, rows, columns, ylabel="||(I - P) x_gt|| / ||x_gt||")
    ax.set_title("share of the ground truth outside span(V), finest level (lower: V holds the layers)", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _panel_paths(frame) -> list[Path]:
    """The panel files named in the records' notes: the lowest seed's, one per task and set."""
    if "note" not in frame or frame.empty:
        return []
    rows = frame[frame.note.notna() & frame.note.astype(str).str.contains("; panel ")]
    if "seed" in rows and rows.seed.notna().any():
        rows = rows[rows.seed == rows.seed.min()]
    paths = []
    for note in rows.note:
        for part in str(note).split("; "):
            if part.startswith("panel "):
                path = Path(part[len("panel "):])
                if path.is_file() and path not in paths:
                    paths.append(path)
    return paths


def subspace_panel(frame):
    """Fig. 13: per task, the image, the ground truth at the finest level (flow: u and v;
    segmentation: the +-1 labels) and the basis vectors carrying most of it as heat maps
    (flow: V_x for u, V_y for v), from the arrays the ``lsm.subspaces`` cells saved."""
    plt = _pyplot()
    panels = []
    for path in _panel_paths(frame):
        with np.load(path) as archive:
            if "truth" not in archive:  # a panel written by an older version of the cell
                continue
            panels.append({key: archive[key] for key in archive.files})
    if not panels:
        return _empty(plt, "no basis panel here (the lsm.subspaces cell saves it beside the model cache)")
    columns = 1 + max(len(p["truth"]) + len(p["bases"]) for p in panels)
    fig, axes = plt.subplots(len(panels), columns, figsize=(1.9 * columns, 2.1 * len(panels)), squeeze=False)
    for panel, ax_row in zip(panels, axes):
        ax_row[0].imshow(panel["image"])
        ax_row[0].set_title("image", fontsize=7)
        truth_names = ["u (truth)", "v (truth)"] if len(panel["truth"]) == 2 else ["mask (truth)"]
        images = list(zip(truth_names, panel["truth"])) + list(zip(panel["labels"].tolist(), panel["bases"]))
        for ax, (name, image) in zip(ax_row[1:], images):
            shown = np.where(panel["valid"], image, np.nan) if image.shape == panel["valid"].shape else image
            # robust limits: a few extreme pixels (occlusion edges) would wash out the layers
            finite = shown[np.isfinite(shown)]
            low, high = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
            ax.imshow(shown, cmap="jet", vmin=low, vmax=high if high > low else low + 1e-6)
            ax.set_title(str(name), fontsize=7)
        for ax in ax_row:
            ax.axis("off")
        ax_row[0].text(0.0, 1.25, str(panel["title"]), transform=ax_row[0].transAxes, fontsize=8, ha="left")
    fig.tight_layout()
    return fig
