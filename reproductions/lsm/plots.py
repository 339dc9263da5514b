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

from suite.report.figures import FONT, figure_size

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
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=FONT["label"])
    ax.axis("off")
    return fig


def _unit(frame, metric):
    unit = frame[frame.metric == metric].unit.dropna()
    return f" ({unit.iloc[0]})" if len(unit) and unit.iloc[0] else ""


def _grouped(ax, summary, rows, columns, *, ylabel, colors=None):
    """Vertical bars: one group per evaluation set (x), one bar per method (colour: ``colors[row]``,
    so that a method keeps its colour across panels)."""
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs, means, spreads = [], [], []
        for j, column in enumerate(columns):
            if (row, column) in summary:
                xs.append(j + (i - (len(rows) - 1) / 2) * width)
                means.append(summary[row, column][0])
                spreads.append(summary[row, column][1])
        ax.bar(xs, means, width, yerr=spreads, capsize=2, label=row, color=(colors or {}).get(row, f"C{i}"))
    ax.set_xticks(range(len(columns)), columns, fontsize=FONT["tick"])
    ax.tick_params(labelsize=FONT["tick"])
    ax.set_ylabel(ylabel, fontsize=FONT["label"])


def _ranked(ax, names, means, spreads, *, colors, hatches=None):
    """Horizontal bars, one per method, labelled on the y axis (long method names stay level and
    readable) and with their values beyond the error bar (a value of 0 still shows as "0")."""
    positions = list(range(len(names)))
    bars = ax.barh(positions, means, xerr=spreads, capsize=2, color=colors, height=0.7)
    for bar, hatch in zip(bars, hatches or []):
        if hatch:
            bar.set_hatch(hatch)
    for position, mean, spread in zip(positions, means, spreads):
        # the value beyond the error bar's end, so that neither hides the other
        end = mean + (spread if mean >= 0 else -spread)
        ax.annotate(f"{mean:.3g}", xy=(end, position), xytext=(4 if mean >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if mean >= 0 else "right", va="center", fontsize=FONT["annotation"])
    ax.set_yticks(positions, names, fontsize=FONT["tick"])
    ax.invert_yaxis()  # the first method on top, as listed
    ax.tick_params(axis="x", labelsize=FONT["tick"])
    ax.margins(x=0.18)  # room for the value labels
    return bars


def task_bars(frame, task: str):
    """Figs. 5-8: one panel per metric, bars per method grouped by evaluation set, one legend
    for the figure."""
    plt = _pyplot()
    metrics = [m for m in TASK_METRICS[task] if (frame.metric == m).any() and frame[frame.metric == m].value.notna().any()]
    if not metrics:
        return _empty(plt, "no measured values yet")
    fig, axes = plt.subplots(1, len(metrics), figsize=figure_size(6, 3.8, columns=len(metrics)), squeeze=False,
                             layout="constrained")
    summaries = {metric: _summary(frame, metric) for metric in metrics}
    rows_seen = list(dict.fromkeys(r for summary in summaries.values() for r, _ in summary))
    colors = {row: f"C{i % 10}" for i, row in enumerate(rows_seen)}
    for ax, metric in zip(axes[0], metrics):
        summary = summaries[metric]
        rows = [r for r in rows_seen if any((r, c) in summary for _, c in summary)]
        columns = list(dict.fromkeys(c for _, c in summary))
        _grouped(ax, summary, rows, columns, ylabel=metric + _unit(frame, metric), colors=colors)
        ax.set_title(metric, fontsize=FONT["title"])
    handles = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend([handles[r] for r in rows_seen if r in handles], [r for r in rows_seen if r in handles],
               loc="outside upper center", ncol=min(len(rows_seen), 5), fontsize=FONT["legend"], frameon=False,
               title="ours (the paper's figure is a bar chart without printed values)",
               title_fontsize=FONT["legend"])
    return fig


TASK_ORDER = ("interactive", "video", "stereo", "flow")


def _direction(task):
    return "higher is better" if task in ("interactive", "video") else "lower is better"


def zero_shot_bars(frame):
    """Figs. 9-11, 15: per task (a 2 x 2 grid), zero-shot / single / joint / baseline (ours, blue)
    and the paper's zero-shot value (grey, hatched, named on its axis), as labelled horizontal bars."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=figure_size(6, 2.6, columns=2, rows=2), layout="constrained")
    any_value = False
    for ax, task in zip(axes.flat, TASK_ORDER):
        metric = HEADLINE[task]
        summary = {row: v for (row, column), v in _summary(frame, metric).items() if column == task}
        rows = list(summary)
        _ranked(ax, rows + ["paper (zero-shot)"], [summary[r][0] for r in rows] + [PAPER_ZERO_SHOT[task]],
                       [summary[r][1] for r in rows] + [0.0], colors=["tab:blue"] * len(rows) + ["tab:gray"],
                       hatches=[None] * len(rows) + ["//"])
        ax.set_title(f"{task}: {metric} ({_direction(task)})", fontsize=FONT["title"])
        any_value |= bool(rows)
    return fig if any_value else (plt.close(fig), _empty(plt, "no measured values yet"))[1]


def ablation_bars(frame):
    """Fig. 12: per task (a 2 x 2 grid), one labelled horizontal bar per variant (each task's
    headline metric)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=figure_size(6, 2.3, columns=2, rows=2), layout="constrained")
    any_value = False
    for ax, task in zip(axes.flat, TASK_ORDER):
        metric = HEADLINE[task]
        summary = {row: v for (row, column), v in _summary(frame, metric).items() if column == task}
        rows = list(summary)
        _ranked(ax, rows, [summary[r][0] for r in rows], [summary[r][1] for r in rows],
                colors=[f"C{i}" for i in range(len(rows))])
        ax.set_title(f"{task}: {metric} ({_direction(task)})", fontsize=FONT["title"])
        any_value |= bool(rows)
    return fig if any_value else (plt.close(fig), _empty(plt, "no measured values yet"))[1]


def residual_bars(frame):
    """The projection residual at the finest level, per task and variant."""
    plt = _pyplot()
    summary = _summary(frame, "projection residual")
    if not summary:
        return _empty(plt, "no measured values yet")
    rows = list(dict.fromkeys(r for r, _ in summary))
    columns = list(dict.fromkeys(c for _, c in summary))
    fig, ax = plt.subplots(figsize=figure_size(7.5, 3.8), layout="constrained")
    _grouped(ax, summary, rows, columns, ylabel="||(I - P) x_gt|| / ||x_gt||")
    ax.set_title("share of the ground truth outside span(V), finest level\n(lower: V holds the layers)",
                 fontsize=FONT["title"])
    ax.legend(fontsize=FONT["legend"])
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
    # each panel: a thin row holding its title (an axes of its own, so that the layout neither
    # widens the first column for it nor lets it overlap the column titles), then its images
    fig = plt.figure(figsize=figure_size(1.0, 1.5, columns=columns, rows=len(panels)), layout="constrained")
    grid = fig.add_gridspec(2 * len(panels), columns, height_ratios=[0.1, 1.0] * len(panels))
    axes = []
    for r, panel in enumerate(panels):
        head = fig.add_subplot(grid[2 * r, :])
        head.axis("off")
        head.text(0.0, 0.0, str(panel["title"]), transform=head.transAxes, fontsize=FONT["label"], ha="left",
                  va="bottom")
        axes.append([fig.add_subplot(grid[2 * r + 1, c]) for c in range(columns)])
    for panel, ax_row in zip(panels, axes):
        ax_row[0].imshow(panel["image"])
        ax_row[0].set_title("image", fontsize=FONT["legend"])
        truth_names = ["u (truth)", "v (truth)"] if len(panel["truth"]) == 2 else ["mask (truth)"]
        images = list(zip(truth_names, panel["truth"])) + list(zip(panel["labels"].tolist(), panel["bases"]))
        for ax, (name, image) in zip(ax_row[1:], images):
            shown = np.where(panel["valid"], image, np.nan) if image.shape == panel["valid"].shape else image
            # robust limits: a few extreme pixels (occlusion edges) would wash out the layers
            finite = shown[np.isfinite(shown)]
            low, high = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
            ax.imshow(shown, cmap="jet", vmin=low, vmax=high if high > low else low + 1e-6)
            ax.set_title(str(name), fontsize=FONT["legend"])
        for ax in ax_row:
            ax.axis("off")
    return fig
