"""Tables 1-3 and Figs. 3 and 6 of Marin et al., "Beyond Gradient Descent for Regularized
Segmentation Losses" (CVPR 2019): weakly supervised segmentation from scribbles.

Protocol. Each network is trained in two phases (Sec. 3): phase 1 minimises the partial
cross-entropy (pCE) on the scribbled pixels; phase 2 fine-tunes the phase-1 weights with pCE
plus a regularizer: the dense CRF loss by gradient descent (GD), the grid CRF loss by GD on its
quadratic relaxation (Eq. 9), or the grid CRF loss by ADM (Eqs. 7-8: alpha-expansion gives
latent labels X for the current softmax, the network is trained toward X with weight gamma).
"Full sup." trains on the dense labels, "train w/ proposals" on GrabCut-style graph-cut
proposals grown from the scribbles (hard constraints), both from the same initialisation.
ADM formulation. Every table and figure uses the paper's ADM ("+grid CRF ADM"): Eq. (8) is
minimised *subject to* X_p = Y_p on the scribbled pixels ("subject to X_p = Y_p for all p in
Omega_L", Eqs. 6 and 8; "the equality constraints could be implemented as unary terms using
prohibitive values of unary potentials", Sec. 2), and the divergence of Eq. (7) runs over the
unlabelled pixels Omega_U. The public Caffe layer passes no scribbles to alpha-expansion and
trains CE toward X on all pixels; Table 2 reports that variant in its own column, "+grid CRF ADM
(public code: no hard constraints)", which no claim of the paper is about. Scribbles are also
hard constraints in the proposals and the shallow experiment.
Control (Table 2 only, no claim): "pCE loss, continued for phase 2" trains the phase-1 model for
the phase-2 iterations more with pCE alone, so a regularized column's gain over "pCE loss" (phase
1 only, as in the paper) can be told apart from the extra training every phase-2 method gets.
No CRF post-processing at test time. mIOU and accuracies use one confusion matrix over the
validation set (void ignored); trimap accuracy counts the pixels within 16 / 8 px of the void
outline at the ground truth's native resolution (VOC, longest side 500 px); at mini the bands are
scaled with the image: w = max(1, round(w_paper x longest side / 500)), so 4 and 2 px on the
128 px scenes (the columns keep the paper's names trimap16 / trimap8).

Initialisation. The full networks start from the user's ImageNet checkpoints (``weights`` or
``$ENERGYBENCH_WEIGHTS/vgg16.pth``, ``resnet101.pth``, torchvision names, loaded strictly with
DeepLab's fc6/fc7 decimation); a cell trained without one says "random init" first in its
notes, and value claims on such records are not judged. Splits: the rloss train_aug list
(``list/train.txt``; ``list/train<r>.txt`` for shortened scribbles) for training, VOC val for
evaluation, and no validation image in the training list. Weights: the published ones at full;
at mini each regularizer's weight is chosen on a held-out split of 40 training images (never
trained on) among the same factors with the same budget, recorded as "Weight selection
(held-out)" rows.

Table 1 normalisation (the paper states none): the grid CRF loss of a network is the Potts
energy Eq. (1) of its hard segmentation argmax S, ``sum_pq w_pq [X_p != X_q]`` with the Eq. (2)
weights at lambda = 1 (8-neighbourhood, diagonals / sqrt 2, Boykov-Jolly sigma), divided by the
number of pixels of the image, averaged over the images (train: a random subset, the paper's
1,000 of 10,582; val: the validation set), at the training resolution. The relaxed loss Eq. (9)
on S (halved, so it agrees with Eq. (1) on one-hot S) is reported beside it. The +- of a loss is
the standard error of the mean over the images; mIOU and accuracies are pooled over the set (one
confusion matrix) and carry no in-cell noise, so with one seed a claim's noise is zero.

At the mini profile the networks are two small nets of different capacity (mini-LargeFOV, about
40k parameters; mini-ASPP, about 0.12M) trained from scratch on the generated mini-masks scenes
at 64 x 64, with the public settings transported to that size (``settings.py``). Absolute
values are not comparable with the paper's; the orderings are what the claims judge.

Seeds: one at every profile (``seeds`` in settings.py), for the run time. Measured on a 2-core
machine shared with other jobs: the mini phase 1 of one network (pCE, 510 iterations) took 468 s,
and 14 minutes when run again under heavier load; a mini run trains about ten models of that size
(two networks x pCE, full supervision and proposals, and Fig. 6's four shortened scribble lengths,
each with its own phase 1) plus the phase-2 fine-tunes, one to two hours per seed on such a
machine, so three seeds would not fit the mini budget. A mini claim's noise is therefore the
in-cell standard error where the record has one (Table 1's losses), and the mIOU / accuracy claims
state ``min_effect: 0.5`` points (paper.yaml); ``energybench run adm --seeds 0,1,2`` adds seeds,
and the claims then also judge against their spread.
"""
from __future__ import annotations

import math

from suite.harness import experiment

from . import data as adm_data
from . import models, training
from .settings import profiles_with
from .training import METHOD_COLUMNS, METHODS, PAPER_METHODS

GD, ADM = "grid-gd", "grid-adm"
SHORT = {GD: "GD", ADM: "ADM"}
LENGTHS = (1.0, 0.8, 0.5, 0.3, 0.0)
FIG6_METHODS = ("pce", "dense-gd", GD, ADM)
PROTOCOL = __doc__.split("\n\n", 1)[1]


def _datasets(cell, settings):
    return adm_data.dataset_ids(settings)


def unavailable(ctx, networks) -> str | None:
    """Why the cell cannot run here (a missing dataset), or None."""
    return "; ".join(adm_data.missing_datasets(ctx, adm_data.dataset_ids(ctx.settings))) or None


def _run_or_not(ctx, networks, expected, measure):
    """Run ``measure()``; on a missing dataset or network record every expected value as not run."""
    reason = unavailable(ctx, networks)
    if reason is None:
        try:
            measure()
            return ctx.records
        except (adm_data.DataUnavailable, models.NetworkUnavailable) as error:
            reason = str(error)
    for spec in expected:
        ctx.not_run(reason=reason, **spec)
    return ctx.records


def _skipped_note(result) -> str | None:
    skipped = (result.get("history") or {}).get("skipped") or []
    if not skipped:
        return None
    names = ", ".join(name for name, _ in skipped[:5])
    return f"{len(skipped)} training samples skipped (all-void scribbles): {names}{' ...' if len(skipped) > 5 else ''}"


def _note(result, *extra: str | None) -> str | None:
    """A record's note: what the network started from first ("random init ..." marks a run whose
    value claims are not judged, suite.harness.claims), the chosen weight, skipped samples."""
    history = result.get("history") or {}
    selection = result.get("selection")
    chosen = (f"weight {selection['weight']:.4g} (x{selection['chosen']:g} of the profile's, chosen on "
              f"{selection['heldout_images']} held-out images)" if selection and selection.get("heldout_images")
              else None)
    parts = [history.get("init"), chosen, *extra, _skipped_note(result)]
    return "; ".join(p for p in parts if p) or None


SELECTION_TABLE = "Weight selection (held-out)"


def _record_selection(ctx, network: str, method: str, result) -> None:
    """The weight search of ``method``: held-out mIOU of every candidate (Table 2's cells)."""
    selection = result.get("selection")
    if not selection or not selection.get("heldout_images"):
        return
    for candidate in selection["candidates"]:
        chosen = candidate["factor"] == selection["chosen"]
        ctx.record(table=SELECTION_TABLE, row=f"{network} {METHOD_COLUMNS[method]}",
                   column=f"x{candidate['factor']:g}", metric="heldout_miou", value=candidate["heldout_miou"],
                   n=selection["heldout_images"], unit="%", higher_is_better=True,
                   note=f"weight {candidate['weight']:.4g}" + (" (chosen)" if chosen else ""))


# ---------------------------------------------------------------------------------------------
# Table 1: grid CRF loss, GD vs ADM
# ---------------------------------------------------------------------------------------------
def _init(settings, network: str) -> dict:
    """``{"init": checkpoint path or "random"}`` for a full network (the cell's key then changes
    when a checkpoint is added, so a random-init result is never reused for it); {} at mini."""
    if network not in models.FULL_NETWORKS:
        return {}
    path = models.initial_weights(settings, network)
    return {"init": str(path) if path is not None else "random"}


def _table1_cells(settings):
    return [{"network": n, "method": m, **_init(settings, n)} for n in settings["networks"] for m in (GD, ADM)]


@experiment(
    "adm.table1",
    table="Table 1",
    title="Grid-CRF loss reached by GD and by ADM, training subset and validation set",
    grid=_table1_cells,
    profiles=profiles_with(),
    datasets=_datasets,
    protocol=PROTOCOL,
)
def table1(ctx, cell):
    network, method = cell["network"], cell["method"]
    columns = {split: f"{split} {SHORT[method]}" for split in ("train", "val")}
    expected = [dict(row=network, column=c, metric=m, higher_is_better=False, unit="per pixel")
                for c in columns.values() for m in ("grid_crf_loss", "grid_crf_relaxed")]

    def measure():
        result = training.evaluation(ctx, network=network, method=method)
        note = _note(result)
        for split, key in (("train", "train_subset"), ("val", "val")):
            part = result[key]
            # std: the standard error of the mean over the images (the noise of the compared means).
            ctx.record(row=network, column=columns[split], metric="grid_crf_loss", value=part["grid_crf_loss"],
                       std=part["grid_crf_loss_std"] / math.sqrt(max(1, part["n"])), n=part["n"], unit="per pixel",
                       higher_is_better=False, note=note)
            ctx.record(row=network, column=columns[split], metric="grid_crf_relaxed", value=part["grid_crf_relaxed"],
                       n=part["n"], unit="per pixel", higher_is_better=False, note=note)

    return _run_or_not(ctx, [network], expected, measure)


# ---------------------------------------------------------------------------------------------
# Table 2: mIOU; Table 3: accuracy (all pixels, trimaps)
# ---------------------------------------------------------------------------------------------
def _table2_cells(settings):
    # The paper's six columns, then the public-code ADM variant (a labelled extra column).
    return [{"network": n, "method": m, **_init(settings, n)} for n in settings["networks"] for m in METHODS]


GAP_COLUMN = "+grid CRF ADM - dense CRF GD"


@experiment(
    "adm.table2",
    table="Table 2",
    title="mIOU on the validation set: full supervision, proposals, pCE, +dense/grid CRF (GD, ADM; "
          "ADM as in the paper, and the public code's variant), and pCE continued for phase 2 (a control)",
    grid=_table2_cells,
    profiles=profiles_with(),
    datasets=_datasets,
    protocol=PROTOCOL,
)
def table2(ctx, cell):
    network, method = cell["network"], cell["method"]
    expected = [dict(row=network, column=METHOD_COLUMNS[method], metric="miou", unit="%", higher_is_better=True)]
    if method == ADM:
        expected.append(dict(row=network, column=GAP_COLUMN, metric="miou_gap", unit="points", higher_is_better=True))

    def measure():
        result = training.evaluation(ctx, network=network, method=method)
        ctx.record(row=network, column=METHOD_COLUMNS[method], metric="miou", value=result["val"]["miou"],
                   n=result["val"]["n"], unit="%", higher_is_better=True, note=_note(result))
        _record_selection(ctx, network, method, result)
        if method == ADM:
            # "ADM is within about a point of dense-CRF GD": the same cell measures the gap, with
            # the dense-CRF model taken from (or added to) the shared model cache.
            dense = training.evaluation(ctx, network=network, method="dense-gd")
            ctx.record(row=network, column=GAP_COLUMN, metric="miou_gap",
                       value=result["val"]["miou"] - dense["val"]["miou"], unit="points", higher_is_better=True,
                       note=_note(result))

    return _run_or_not(ctx, [network], expected, measure)


def _table3_cells(settings):
    return [{"network": n, "method": m, **_init(settings, n)} for n in settings["table3_networks"]
            for m in PAPER_METHODS]


TABLE3_METRICS = {"accuracy": "accuracy", "trimap16": "trimap16_accuracy", "trimap8": "trimap8_accuracy"}


@experiment(
    "adm.table3",
    table="Table 3",
    title="Pixel accuracy on the validation set: all pixels and within the 16 / 8 px trimaps",
    grid=_table3_cells,
    profiles=profiles_with(),
    datasets=_datasets,
    protocol=PROTOCOL,
)
def table3(ctx, cell):
    network, method = cell["network"], cell["method"]
    expected = [dict(row=network, column=METHOD_COLUMNS[method], metric=m, unit="%", higher_is_better=True)
                for m in TABLE3_METRICS.values()]

    def measure():
        result = training.evaluation(ctx, network=network, method=method)
        for key, metric in TABLE3_METRICS.items():
            value = result["val"].get(key)
            if value is None:
                ctx.not_run(row=network, column=METHOD_COLUMNS[method], metric=metric, unit="%",
                            reason="no pixel of the validation set lies in this trimap band")
            else:
                ctx.record(row=network, column=METHOD_COLUMNS[method], metric=metric, value=value,
                           n=result["val"]["n"], unit="%", higher_is_better=True, note=_note(result))

    return _run_or_not(ctx, [network], expected, measure)


# ---------------------------------------------------------------------------------------------
# Fig. 3: grid CRF loss vs iterations
# ---------------------------------------------------------------------------------------------
@experiment(
    "adm.fig3",
    table="Fig. 3",
    title="Grid-CRF loss on the training subset vs phase-2 iterations, GD and ADM",
    grid=lambda settings: [{"method": m, **_init(settings, settings["figure_network"])} for m in (GD, ADM)],
    profiles=profiles_with(),
    datasets=_datasets,
    plots=lambda frame: {"loss-vs-iterations": plot_fig3(frame)},
    protocol=PROTOCOL,
)
def fig3(ctx, cell):
    method = cell["method"]
    network = ctx.settings["figure_network"]
    row = METHOD_COLUMNS[method]
    expected = [dict(row=row, column="train subset", metric="grid_crf_loss", unit="per pixel", higher_is_better=False)]

    def measure():
        result = training.evaluation(ctx, network=network, method=method)
        for point in result["history"]["curve"] or []:
            for metric in ("grid_crf_loss", "grid_crf_relaxed"):
                ctx.record(row=row, column="train subset", metric=metric, value=point[metric], step=int(point["step"]),
                           n=point["n"], unit="per pixel", higher_is_better=False,
                           note=_note(result, f"network {network}"))

    return _run_or_not(ctx, [network], expected, measure)


def plot_fig3(frame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    df = frame[frame.value.notna() & frame.step.notna()]
    for ax, metric, title in zip(axes, ("grid_crf_loss", "grid_crf_relaxed"),
                                 ("grid CRF loss, Eq. (1) on argmax S", "relaxed grid CRF, Eq. (9) on S")):
        for row, group in df[df.metric == metric].groupby("row"):
            curve = group.groupby("step").value.mean().sort_index()
            ax.plot(curve.index, curve.values, marker="o", markersize=3, label=row)
        ax.set_xlabel("phase-2 iteration")
        ax.set_ylabel("per pixel (lambda = 1)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Fig. 6: shortened scribbles
# ---------------------------------------------------------------------------------------------
def _length_column(length: float) -> str:
    return f"length {length:g}"


@experiment(
    "adm.fig6",
    table="Fig. 6",
    title="mIOU and pixel accuracy vs scribble length (1, 0.8, 0.5, 0.3, 0 = clicks)",
    grid=lambda settings: [{"length": r, "method": m, **_init(settings, settings["figure_network"])}
                           for r in LENGTHS for m in FIG6_METHODS],
    profiles=profiles_with(),
    datasets=_datasets,
    plots=lambda frame: {"length": plot_fig6(frame)},
    protocol=PROTOCOL,
)
def fig6(ctx, cell):
    length, method = float(cell["length"]), cell["method"]
    network = ctx.settings["figure_network"]
    row, column = METHOD_COLUMNS[method], _length_column(length)
    metrics = ["miou", "accuracy"] + (["miou_drop", "accuracy_drop"] if length < 1.0 else [])
    expected = [dict(row=row, column=column, metric=m, unit="%" if "drop" not in m else "points",
                     higher_is_better="drop" not in m) for m in metrics]

    def measure():
        result = training.evaluation(ctx, network=network, method=method, length=length)
        note = _note(result, f"network {network}")
        values = {"miou": result["val"]["miou"], "accuracy": result["val"]["accuracy"]}
        if length < 1.0:
            # Degradation with respect to the full-length scribbles (the same model as Table 2's).
            full = training.evaluation(ctx, network=network, method=method, length=1.0)
            values["miou_drop"] = full["val"]["miou"] - values["miou"]
            values["accuracy_drop"] = full["val"]["accuracy"] - values["accuracy"]
        for spec in expected:
            ctx.record(value=values[spec["metric"]], note=note, n=result["val"]["n"], **spec)

    return _run_or_not(ctx, [network], expected, measure)


def plot_fig6(frame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    df = frame[frame.value.notna() & frame.step.isna()]
    for ax, metric, label in zip(axes, ("miou", "accuracy"), ("mIOU (%)", "pixel accuracy (%)")):
        for row, group in df[df.metric == metric].groupby("row", sort=False):
            lengths = group.column.str.replace("length ", "", regex=False).astype(float)
            curve = group.assign(length=lengths).groupby("length").value.mean().sort_index()
            ax.plot(curve.index, curve.values, marker="o", label=row)
        ax.set_xlabel("scribble length ratio (0 = clicks)")
        ax.set_ylabel(label)
        ax.set_xticks(list(LENGTHS))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["table1", "table2", "table3", "fig3", "fig6", "unavailable"]
