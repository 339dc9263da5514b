"""Grid-CRF (contrast-sensitive Potts) energies, binary graph cut and alpha-expansion (adm).

The energy minimised here is the grid CRF of ADM (Marin et al., "Beyond Gradient Descent for
Regularized Segmentation Losses", CVPR 2019), Eq. (1)-(2) plus the unary term of Eq. (8)::

    E(X) = sum_p U_p(X_p) + sum_{pq in N} w_pq [X_p != X_q],
    w_pq = lambda * exp(-||I_p - I_q||^2 / (2 sigma^2)) / dist(p, q),
    sigma^2 = mean_{pq in N} ||I_p - I_q||^2                       (Boykov-Jolly),

with the settings of the paper's public code (``adm-seg``, ``graphcut_layer.cpp`` on GCO-v3):

* ``N`` is the 8-neighbourhood given by the offsets ``(dy, dx)`` in
  :data:`NEIGHBOURHOOD_OFFSETS` -- (0,1), (1,0), (1,1), (-1,1) -- each unordered pair once;
  ``dist`` is 1 for the axial and sqrt(2) for the diagonal offsets. ``neighbourhood=4``
  keeps only the first two offsets.
* ``sigma^2`` is the per-image mean over all those pairs, diagonals included.
* ``lambda`` is relative to a unary of weight 1, ``U_p(k) = -log S_p(k)``; the public default is
  ``GC_POTTS=80``. Because sigma^2 is the mean squared difference of the same image, ``w_pq``
  does not depend on the colour units (0-255 or 0-1 give the same weights): lambda = 80 is
  the public value whatever the colour scale.
* alpha-expansion runs 5 cycles from the all-zero labelling (GCO's initial labelling), over the
  labels in the fixed order 0..K-1 (GCO's default, non-random order).

Weights layout. ``weights`` is an array of shape ``(D, H, W)``, ``D = len(offsets)``:
``weights[d, i, j]`` is ``w_pq`` for ``p = (i, j)`` and ``q = (i + dy_d, j + dx_d)``. Entries
whose ``q`` falls outside the image are ignored (:func:`grid_weights` sets them to zero).

Capacities and energies. When every unary and weight is an integer small enough for exact
float64 sums (the public layer's ``int(1000 * x)``), the graphs are PyMaxflow ``GraphInt`` and
the energy change of a move is read off the cut value, exactly (see below); otherwise they are
``GraphFloat`` (double-precision capacities, inputs used as given) and the energy of a proposed
move is recomputed in float64 by :func:`potts_energy`. Either way a move is accepted only if the
energy strictly decreases, so the energy never increases whatever the rounding inside the
max-flow. To reproduce GCO, pass the same integer-valued arrays to both (the tests and
``benchmarks/bench_graphcut.py`` do).

Expansion move (Boykov, Veksler, Zabih, PAMI 2001). For the current labelling ``f`` and a label
``alpha``, the binary variable ``x_p = 1`` switches ``p`` to ``alpha``. Pixels labelled alpha
(and pixels held by ``hard`` at another label) cannot move: as in GCO, they get no terminal or
edge capacity, and a pair term between a fixed pixel and a movable one is a unary of the movable
one (``w [f_fixed != alpha] - w [f_fixed != f_p]`` when it switches). A pair term between two
movable pixels, ``A = E(0,0) = w [f_p != f_q]``, ``B = E(0,1) = C = E(1,0) = w``, ``D = 0``, is
GCO's ``add_term2``: ``A`` on the sink side of ``p``, edges ``p -> q`` of ``w - A`` and
``q -> p`` of ``w`` (non-negative: the Potts model is a metric), so the move is a single s-t min
cut. With ``t_p`` the net terminal term of ``p`` (cost of switching minus cost of staying), the
graph gets source / sink capacities ``max(t_p, 0)`` / ``max(-t_p, 0)``, and the cut value of a
move minus ``sum_p max(-t_p, 0)`` (the cut of "nobody switches") is its energy change.

Implementation. The neighbour pairs are flat index arrays built once per image, the graph is
allocated once and ``reset()`` between moves, and each move's capacities come from one compiled
pass over the pairs (numba, imported on first use, for images of 20,000 pairs or more; a
vectorised numpy builder, used below that or without numba, builds the same
cut) fed to PyMaxflow's vectorised ``add_edges`` -- never a Python loop over pixels. The
max-flow itself (Boykov-Kolmogorov, the same code as GCO's) is most of the time of a move.

Hard constraints (Eq. 8, ``X_p = Y_p`` on labelled pixels): ``hard`` is an ``(H, W)`` label map
with ``255`` for unlabelled pixels (the ScribbleSup PNG convention). Labelled pixels start at
their label and are held there: in an expansion move they are fixed pixels (above), except in
the move of their own label. (:func:`binary_graphcut` holds them by a terminal capacity larger
than everything else at that node.)
The public layer does not pass scribbles (they are not enforced there); ``hard=None`` is that.
The reported energy never includes the constraints: it is :func:`potts_energy` of the labels.

Parallel batches. :func:`alpha_expansion_batch` solves the images of a batch in a process pool
(``concurrent.futures.ProcessPoolExecutor``), the counterpart of the public layer's OpenMP loop.
The start method is ``"forkserver"`` where the platform has it and ``"spawn"`` otherwise, never
``"fork"``: the caller usually runs torch (OpenMP/MKL thread pools), and forking a process that
holds thread pools can deadlock the child. Workers import only numpy, PyMaxflow, numba (for the
graph builder) and this module.
"""
from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

__all__ = [
    "NEIGHBOURHOOD_OFFSETS",
    "UNLABELLED",
    "grid_weights",
    "potts_energy",
    "binary_graphcut",
    "expansion_move",
    "alpha_expansion",
    "alpha_expansion_batch",
    "AlphaExpansion",
]

#: Offsets ``(dy, dx)`` of the neighbour ``q`` of ``p``, each unordered pair once (public code).
NEIGHBOURHOOD_OFFSETS: dict[int, tuple[tuple[int, int], ...]] = {
    4: ((0, 1), (1, 0)),
    8: ((0, 1), (1, 0), (1, 1), (-1, 1)),
}
#: Value of an unlabelled pixel in a scribble / hard-constraint map (ScribbleSup PNGs).
UNLABELLED = 255


# ---------------------------------------------------------------------------------------------
# Input validation. Every public function checks its inputs here and raises ValueError naming
# the argument, what was expected and what was received (never assert on user input).
# ---------------------------------------------------------------------------------------------
def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray) or type(x).__module__.startswith("torch"):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def _as_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array; torch tensors are detached and copied to CPU (the one place)."""
    if x is None or isinstance(x, (str, bytes)):
        raise ValueError(f"{name}: expected an array or tensor, got {_describe(x)}")
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x)
    except Exception as error:  # noqa: BLE001 - re-raised as the documented ValueError
        raise ValueError(f"{name}: expected a numeric array, got {_describe(x)} ({error})") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise ValueError(f"{name}: expected a numeric array, got {_describe(array)}")
    return array


def _check_ndim(x: np.ndarray, name: str, ndim: int | tuple[int, ...], layout: str) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in allowed:
        raise ValueError(f"{name}: expected {layout}, got an array of shape {tuple(x.shape)}")


def _check_finite(x: np.ndarray, name: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or infinite entries")


def _float_array(x: Any, name: str, ndim: int, layout: str) -> np.ndarray:
    array = _as_numpy(x, name)
    _check_ndim(array, name, ndim, layout)
    array = np.asarray(array, dtype=np.float64)
    _check_finite(array, name)
    return array


def _check_weights(weights: Any, height: int, width: int, name: str = "weights") -> np.ndarray:
    array = _float_array(weights, name, 3, "(D, H, W) with D = 2 (4-neighbourhood) or 4 (8-neighbourhood)")
    if array.shape[0] not in (2, 4) or array.shape[1:] != (height, width):
        raise ValueError(
            f"{name}: expected shape (D, {height}, {width}) with D = 2 or 4, got {tuple(array.shape)}"
        )
    if (array < 0).any():
        raise ValueError(
            f"{name}: expected non-negative pairwise weights (graph cuts need a metric Potts term), "
            f"got minimum {array.min():g}"
        )
    return array


def _check_labels(labels: Any, name: str, shape: tuple[int, int], num_labels: int, allow_unlabelled: bool) -> np.ndarray:
    array = _as_numpy(labels, name)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (matching unary), got {tuple(array.shape)}")
    if np.issubdtype(array.dtype, np.floating):
        _check_finite(array, name)
        if (array != np.round(array)).any():
            raise ValueError(f"{name}: expected integer labels, got non-integer values")
    array = array.astype(np.int64)
    valid = (array >= 0) & (array < num_labels)
    if allow_unlabelled:
        valid |= array == UNLABELLED
    if not valid.all():
        bad = np.unique(array[~valid])[:5].tolist()
        expected = f"[0, {num_labels})" + (f" or {UNLABELLED} (unlabelled)" if allow_unlabelled else "")
        raise ValueError(f"{name}: expected labels in {expected}, got values {bad}")
    return array


def _offsets_for(weights: np.ndarray) -> tuple[tuple[int, int], ...]:
    return NEIGHBOURHOOD_OFFSETS[4 if weights.shape[0] == 2 else 8]


def _pair_slices(offset: tuple[int, int], height: int, width: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices selecting every ``p`` whose neighbour ``q = p + offset`` is inside, and those ``q``."""
    dy, dx = offset
    rows_p = slice(max(0, -dy), height - max(0, dy))
    rows_q = slice(max(0, dy), height - max(0, -dy))
    cols_p = slice(max(0, -dx), width - max(0, dx))
    cols_q = slice(max(0, dx), width - max(0, -dx))
    return (rows_p, cols_p), (rows_q, cols_q)


def _structure(offset: tuple[int, int]) -> np.ndarray:
    structure = np.zeros((3, 3))
    structure[1 + offset[0], 1 + offset[1]] = 1.0
    return structure


_STRUCTURES = {offset: _structure(offset) for offset in NEIGHBOURHOOD_OFFSETS[8]}


def _graph_class():
    try:
        import maxflow
    except ImportError as error:  # pragma: no cover - PyMaxflow is a core dependency
        raise ImportError("graph cuts need PyMaxflow: pip install PyMaxflow") from error
    return maxflow.GraphFloat


def _degree(weights: np.ndarray) -> np.ndarray:
    """Sum of the weights of all pairs touching each pixel, shape (H, W)."""
    _, height, width = weights.shape
    degree = np.zeros((height, width))
    for d, offset in enumerate(_offsets_for(weights)):
        src, dst = _pair_slices(offset, height, width)
        degree[src] += weights[d][src]
        degree[dst] += weights[d][src]
    return degree


# ---------------------------------------------------------------------------------------------
# Energies
# ---------------------------------------------------------------------------------------------
def grid_weights(
    image: Any,
    *,
    neighbourhood: int = 8,
    smoothness: float = 80.0,
    sigma2: float | None = None,
    diagonal_scale: float = 1.0 / math.sqrt(2.0),
) -> np.ndarray:
    """Contrast-sensitive Potts weights of the grid CRF, Eq. (2) of ADM.

    ``w_pq = smoothness * exp(-||I_p - I_q||^2 / (2 sigma2)) * s_pq`` for every pair of the
    neighbourhood, with ``s_pq = 1`` for axial and ``diagonal_scale`` (1/sqrt(2)) for diagonal
    pairs. When ``sigma2`` is None it is the Boykov-Jolly value: the mean of ``||I_p - I_q||^2``
    over all pairs of the neighbourhood (diagonals included), as in the public code. A constant
    image (sigma2 = 0) gets sigma2 = 1, which gives ``w_pq = smoothness * s_pq`` everywhere.

    Args:
        image: ``(H, W)`` grey or ``(H, W, C)`` colour image, any colour scale (see module doc).
        neighbourhood: 4 or 8.
        smoothness: lambda, relative to a unary of weight 1 (public ADM default 80).
        sigma2: contrast bandwidth; None for the per-image Boykov-Jolly mean.
        diagonal_scale: factor of the diagonal pairs (1/sqrt(2) in the public code).

    Returns:
        float64 array ``(D, H, W)``, D = 2 or 4; ``[d, i, j]`` is the weight between ``(i, j)``
        and ``(i, j) + NEIGHBOURHOOD_OFFSETS[neighbourhood][d]``, 0 where that is outside.

    Raises:
        ValueError: wrong dims, NaN/inf pixels, an unknown neighbourhood, negative smoothness,
            non-positive sigma2 or negative diagonal_scale.
    """
    array = _as_numpy(image, "image")
    _check_ndim(array, "image", (2, 3), "(H, W) or (H, W, C)")
    array = np.asarray(array, dtype=np.float64)
    _check_finite(array, "image")
    if array.ndim == 2:
        array = array[:, :, None]
    if neighbourhood not in NEIGHBOURHOOD_OFFSETS:
        raise ValueError(f"neighbourhood: expected 4 or 8, got {neighbourhood!r}")
    if not (math.isfinite(smoothness) and smoothness >= 0):
        raise ValueError(f"smoothness: expected a finite number >= 0, got {smoothness!r}")
    if sigma2 is not None and not (math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2: expected a finite number > 0 or None, got {sigma2!r}")
    if not (math.isfinite(diagonal_scale) and diagonal_scale >= 0):
        raise ValueError(f"diagonal_scale: expected a finite number >= 0, got {diagonal_scale!r}")
    height, width, _ = array.shape
    offsets = NEIGHBOURHOOD_OFFSETS[neighbourhood]
    squared = np.zeros((len(offsets), height, width))
    total, count = 0.0, 0
    for d, offset in enumerate(offsets):
        src, dst = _pair_slices(offset, height, width)
        difference = array[src] - array[dst]
        sq = np.einsum("ijc,ijc->ij", difference, difference)
        squared[d][src] = sq
        total += float(sq.sum())
        count += sq.size
    if sigma2 is None:
        sigma2 = total / count if count and total > 0 else 1.0
    weights = np.zeros_like(squared)
    for d, offset in enumerate(offsets):
        src, _ = _pair_slices(offset, height, width)
        scale = diagonal_scale if offset[0] and offset[1] else 1.0
        weights[d][src] = (smoothness * scale) * np.exp(squared[d][src] / (-2.0 * sigma2))
    return weights


def potts_energy(labels: Any, unary: Any, weights: Any) -> float:
    """Grid-CRF energy ``sum_p U_p(X_p) + sum_{pq} w_pq [X_p != X_q]`` of a labelling, Eq. (8).

    Args:
        labels: ``(H, W)`` integer labels in ``[0, K)``.
        unary: ``(H, W, K)`` unary costs (e.g. ``-log S``).
        weights: ``(D, H, W)`` pair weights (:func:`grid_weights`).

    Returns:
        The energy as a Python float (computed in float64).

    Raises:
        ValueError: shapes disagree, labels outside ``[0, K)``, NaN, negative weights.
    """
    unary = _float_array(unary, "unary", 3, "(H, W, K)")
    height, width, num_labels = unary.shape
    weights = _check_weights(weights, height, width)
    labels = _check_labels(labels, "labels", (height, width), num_labels, allow_unlabelled=False)
    return _energy(labels, unary, weights)


def _energy(labels: np.ndarray, unary: np.ndarray, weights: np.ndarray) -> float:
    height, width, num_labels = unary.shape
    data = unary.reshape(-1, num_labels)[np.arange(height * width), labels.ravel()].sum()
    smooth = 0.0
    for d, offset in enumerate(_offsets_for(weights)):
        src, dst = _pair_slices(offset, height, width)
        smooth += weights[d][src][labels[src] != labels[dst]].sum()
    return float(data + smooth)


# ---------------------------------------------------------------------------------------------
# Binary graph cut
# ---------------------------------------------------------------------------------------------
def binary_graphcut(unary: Any, weights: Any, *, hard: Any = None) -> tuple[np.ndarray, float]:
    """Global minimum of the binary grid CRF (Ising/Potts with two labels) by one s-t min cut.

    Minimises ``sum_p U_p(X_p) + sum_{pq} w_pq [X_p != X_q]`` over ``X in {0, 1}^(H x W)``
    (Boykov & Jolly 2001), optionally subject to ``X_p = Y_p`` where ``hard`` is labelled.

    Args:
        unary: ``(H, W, 2)`` costs of label 0 and 1.
        weights: ``(D, H, W)`` non-negative pair weights.
        hard: optional ``(H, W)`` map of 0, 1 or 255 (unlabelled).

    Returns:
        ``(labels, energy)``: int64 ``(H, W)`` labels and their energy (:func:`potts_energy`).

    Raises:
        ValueError: unary not ``(H, W, 2)``, shape mismatches, NaN, negative weights, hard labels
            other than 0, 1, 255.
    """
    unary = _float_array(unary, "unary", 3, "(H, W, 2)")
    height, width, num_labels = unary.shape
    if num_labels != 2:
        raise ValueError(f"unary: expected (H, W, 2) for a binary cut, got shape {tuple(unary.shape)}")
    weights = _check_weights(weights, height, width)
    if hard is not None:
        hard = _check_labels(hard, "hard", (height, width), 2, allow_unlabelled=True)
    graph_class = _graph_class()
    graph = graph_class(height * width, len(weights) * height * width)
    nodes = graph.add_grid_nodes((height, width))
    for d, offset in enumerate(_offsets_for(weights)):
        graph.add_grid_edges(nodes, weights=weights[d], structure=_STRUCTURES[offset], symmetric=True)
    # x_p = 1 (label 1) is the sink side: the source arc is cut and pays its capacity.
    cost_one = unary[:, :, 1] - unary[:, :, 0]
    if hard is not None:
        big = _degree(weights) + np.abs(cost_one) + 1.0
        cost_one = np.where(hard == 0, big, np.where(hard == 1, -big, cost_one))
    graph.add_grid_tedges(nodes, np.maximum(cost_one, 0.0), np.maximum(-cost_one, 0.0))
    graph.maxflow()
    labels = graph.get_grid_segments(nodes).astype(np.int64)
    return labels, _energy(labels, unary, weights)


# ---------------------------------------------------------------------------------------------
# Alpha-expansion
# ---------------------------------------------------------------------------------------------
_NUMBA: dict[str, Any] = {}
#: Images with fewer neighbour pairs build their graphs with numpy (same graphs, see the tests).
_NUMBA_MIN_PAIRS = 20_000


def _numba_build():
    """The compiled graph builder of an expansion move, or None where numba is not importable.

    Imported on first use only: numpy and PyMaxflow remain the only hard imports here.
    """
    if "build" in _NUMBA:
        return _NUMBA["build"]
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a declared dependency
        _NUMBA["build"] = None
        return None

    @numba.njit(cache=True, nogil=True)
    def build(labels, movable, locked, first, second, pair_weights, unary_alpha, current_unary,
              source, sink, edge_first, edge_second, forward, reverse):
        # One pass over the pairs: the terminal terms of every movable pixel and the edges between
        # movable pixels (the arithmetic of _ExpansionGraph._build_numpy, in one loop).
        size = labels.shape[0]
        terminal = np.zeros(size)
        for n in range(size):
            if movable[n]:
                terminal[n] = unary_alpha[n] - current_unary[n]
        count = 0
        for e in range(first.shape[0]):
            p = first[e]
            q = second[e]
            movable_p = movable[p]
            movable_q = movable[q]
            if not (movable_p or movable_q):
                continue
            w = pair_weights[e]
            cut = w if labels[p] != labels[q] else 0 * w
            if movable_p and movable_q:
                terminal[p] -= cut
                edge_first[count] = p
                edge_second[count] = q
                forward[count] = w - cut
                reverse[count] = w
                count += 1
            elif movable_p:
                terminal[p] += (w if locked[q] else 0 * w) - cut
            else:
                terminal[q] += (w if locked[p] else 0 * w) - cut
        for n in range(size):
            t = terminal[n]
            source[n] = t if t > 0 else 0
            sink[n] = -t if t < 0 else 0
        return count

    _NUMBA["build"] = build
    return build


class _ExpansionGraph:
    """Everything an expansion move needs that does not change between moves of one image.

    Pairs of the neighbourhood are kept as flat index arrays ``first``/``second`` (pairs of
    weight 0 dropped: they never cost anything), the unaries as a ``(K, N)`` array (one
    contiguous row per label) and one PyMaxflow graph, allocated once and ``reset()`` between
    moves, so that a move allocates no graph memory. When every unary and weight is an integer
    small enough for exact float64 sums (e.g. the public layer's ``int(1000 x)``), capacities and
    flows are exact integers (``GraphInt``) and the energy change of a move is read off the cut
    value; otherwise the graph is ``GraphFloat``.
    """

    def __init__(self, unary: np.ndarray, weights: np.ndarray, hard: np.ndarray | None) -> None:
        import maxflow

        height, width, num_labels = unary.shape
        size = height * width
        self.size, self.num_labels = size, num_labels
        self.exact = _exact_integers(unary, weights)
        dtype = np.int64 if self.exact else np.float64
        index = np.arange(size, dtype=np.intp).reshape(height, width)
        first, second, pair_weights = [], [], []
        for d, offset in enumerate(_offsets_for(weights)):
            src, dst = _pair_slices(offset, height, width)
            w = weights[d][src].ravel()
            keep = w > 0
            first.append(index[src].ravel()[keep])
            second.append(index[dst].ravel()[keep])
            pair_weights.append(w[keep])
        self.first = np.concatenate(first)
        self.second = np.concatenate(second)
        # PyMaxflow's vectorised add_edges takes uint32 node ids and converts anything else.
        self.first_ids = self.first.astype(np.uint32)
        self.second_ids = self.second.astype(np.uint32)
        self.pair_weights = np.concatenate(pair_weights).astype(dtype)
        self.unary_by_label = np.ascontiguousarray(unary.reshape(size, num_labels).T, dtype=dtype)
        self.nodes = np.arange(size, dtype=np.intp)
        self.hard = None if hard is None else hard.ravel()
        self.labelled = None if hard is None else self.hard != UNLABELLED
        self.label_dtype = np.int8 if num_labels <= 127 else np.int16 if num_labels <= 32767 else np.int32
        graph_class = maxflow.GraphInt if self.exact else maxflow.GraphFloat
        self.graph = graph_class(size, self.first.size)
        self._add_edges = getattr(self.graph, "_add_edges", None)  # skips add_edges' copies
        # Small images: the numpy builder is fast enough, and skips importing numba (a worker of
        # alpha_expansion_batch would pay that import once).
        self.use_numba = self.first.size >= _NUMBA_MIN_PAIRS
        self._buffers = None
        self._no_lock = np.zeros(size, dtype=np.bool_)

    def flat_labels(self, labels: np.ndarray) -> np.ndarray:
        return labels.ravel().astype(self.label_dtype)

    def current_unary(self, flat: np.ndarray) -> np.ndarray:
        return self.unary_by_label[flat, self.nodes]

    def move(self, flat: np.ndarray, current_unary: np.ndarray, alpha: int) -> tuple[np.ndarray, Any]:
        """Pixels switched by the optimal expansion of ``alpha`` and the energy change.

        ``flat`` is the current labelling (N,), ``current_unary`` its unaries. The change is exact
        (an integer) for ``self.exact`` and float64 otherwise (the cut value, up to rounding).

        Every pixel is a node; pixels that cannot move (labelled alpha, or held by ``hard`` at
        another label) get no terminal capacity and no edge capacity, and their pair terms with
        movable neighbours become unaries of those neighbours (as GCO does).
        """
        movable = flat != alpha
        locked = None
        if self.hard is not None:
            locked = self.labelled & (self.hard != alpha)
            movable &= ~locked
        if not movable.any():
            return movable, 0
        build = _numba_build() if self.use_numba else None
        if build is not None:
            source, sink, edges = self._build_numba(build, flat, alpha, movable, locked, current_unary)
        else:
            source, sink, edges = self._build_numpy(flat, alpha, movable, locked, current_unary)
        graph = self.graph
        graph.reset()
        graph.add_nodes(self.size)
        if self._add_edges is not None:
            self._add_edges(*edges)
        else:  # pragma: no cover - PyMaxflow without the private fast path
            graph.add_edges(*edges)
        graph.add_grid_tedges(self.nodes, source, sink)
        flow = graph.maxflow()
        switch = graph.get_grid_segments(self.nodes) & movable
        # cut(x) = sum_p t_p x_p + sum_p max(-t_p, 0) + pairs(x): the move's change is the cut
        # value minus the constant sum_p max(-t_p, 0) (the cut of "nobody switches").
        if self.exact:
            change = int(flow) - int(sink.sum())
        else:
            change = float(flow) - float(sink.sum())
        return switch, change

    def _build_numba(self, build, flat, alpha, movable, locked, current_unary):
        buffers = self._buffers
        if buffers is None:
            dtype = self.pair_weights.dtype
            pairs = self.first.size
            self._buffers = buffers = (
                np.empty(self.size, dtype), np.empty(self.size, dtype),
                np.empty(pairs, np.uint32), np.empty(pairs, np.uint32),
                np.empty(pairs, dtype), np.empty(pairs, dtype),
            )
        source, sink, edge_first, edge_second, forward, reverse = buffers
        count = build(
            flat, movable, self._no_lock if locked is None else locked, self.first, self.second,
            self.pair_weights, self.unary_by_label[alpha], current_unary,
            source, sink, edge_first, edge_second, forward, reverse,
        )
        return source, sink, (edge_first[:count], edge_second[:count], forward[:count], reverse[:count])

    def _build_numpy(self, flat, alpha, movable, locked, current_unary):
        w = self.pair_weights
        same = flat[self.first] == flat[self.second]
        movable_first = movable[self.first]
        both = movable_first & movable[self.second]
        cut = np.where(same, 0, w)  # current pair energy E(0, 0) = w [f_p != f_q]
        terminal = (self.unary_by_label[alpha] - current_unary).astype(np.float64)
        terminal -= np.bincount(self.first, cut, self.size)
        terminal -= np.bincount(self.second, np.where(movable_first, 0, cut), self.size)
        if locked is not None and locked.any():
            terminal += np.bincount(self.first, np.where(locked[self.second], w, 0), self.size)
            terminal += np.bincount(self.second, np.where(locked[self.first], w, 0), self.size)
        terminal[~movable] = 0
        if self.exact:
            terminal = terminal.astype(np.int64)  # exact: integer sums below 2^53
        # Pairs with a fixed end get zero capacities (no flow, same cut as leaving them out).
        reverse = np.where(both, w, 0)
        forward = np.where(same, reverse, 0)
        edges = (self.first_ids, self.second_ids, forward, reverse)
        return np.maximum(terminal, 0), np.maximum(-terminal, 0), edges


def _exact_integers(unary: np.ndarray, weights: np.ndarray) -> bool:
    """Whether every energy of the problem is an exact integer in int64 and float64 arithmetic."""
    if unary.size == 0:
        return False
    bound = float(np.abs(unary).max()) * unary.shape[0] * unary.shape[1] + 2.0 * float(weights.sum())
    if not bound < 2.0**52:
        return False
    return bool((unary == np.round(unary)).all() and (weights == np.round(weights)).all())


def _prepare(unary: Any, weights: Any, init: Any, hard: Any):
    unary = _float_array(unary, "unary", 3, "(H, W, K)")
    height, width, num_labels = unary.shape
    if num_labels < 1 or height < 1 or width < 1:
        raise ValueError(f"unary: expected a non-empty (H, W, K) array, got shape {tuple(unary.shape)}")
    weights = _check_weights(weights, height, width)
    if hard is not None:
        hard = _check_labels(hard, "hard", (height, width), num_labels, allow_unlabelled=True)
    if init is None:
        labels = np.zeros((height, width), dtype=np.int64)
    else:
        labels = _check_labels(init, "init", (height, width), num_labels, allow_unlabelled=False).copy()
    if hard is not None:
        labelled = hard != UNLABELLED
        labels[labelled] = hard[labelled]
    return unary, weights, labels, hard


def expansion_move(labels: Any, alpha: int, unary: Any, weights: Any, *, hard: Any = None) -> tuple[np.ndarray, float]:
    """One alpha-expansion move: the best labelling reachable by switching pixels to ``alpha``.

    Returns the new labelling only if its energy is strictly lower, else ``labels`` unchanged, so
    the returned energy is never above the energy of ``labels``.

    Args:
        labels: ``(H, W)`` current labelling in ``[0, K)`` (must satisfy ``hard``).
        alpha: the label to expand, in ``[0, K)``.
        unary: ``(H, W, K)`` unary costs.
        weights: ``(D, H, W)`` pair weights.
        hard: optional ``(H, W)`` label map, 255 = unlabelled.

    Returns:
        ``(labels, energy)``: int64 ``(H, W)`` and its :func:`potts_energy`.

    Raises:
        ValueError: bad shapes, labels or alpha outside ``[0, K)``, ``labels`` violating ``hard``.
    """
    unary, weights, given, _ = _prepare(unary, weights, labels, None)  # hard is checked below
    if hard is not None:
        hard = _check_labels(hard, "hard", given.shape, unary.shape[2], allow_unlabelled=True)
        labelled = hard != UNLABELLED
        if (given[labelled] != hard[labelled]).any():
            count = int(np.count_nonzero(given[labelled] != hard[labelled]))
            raise ValueError(f"labels: expected a labelling that satisfies hard, got {count} violating pixels")
    labels = given
    if not isinstance(alpha, (int, np.integer)) or not 0 <= int(alpha) < unary.shape[2]:
        raise ValueError(f"alpha: expected an integer label in [0, {unary.shape[2]}), got {alpha!r}")
    old_energy = _energy(labels, unary, weights)
    state = _ExpansionGraph(unary, weights, hard)
    flat = state.flat_labels(labels)
    switch, _ = state.move(flat, state.current_unary(flat), int(alpha))
    if not switch.any():
        return labels, old_energy
    proposal = np.where(switch.reshape(labels.shape), int(alpha), labels)
    new_energy = _energy(proposal, unary, weights)
    if new_energy < old_energy:
        return proposal, new_energy
    return labels, old_energy


def alpha_expansion(
    unary: Any,
    weights: Any,
    *,
    cycles: int = 5,
    init: Any = None,
    hard: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label grid-CRF minimisation by alpha-expansion (Boykov, Veksler, Zabih 2001).

    Minimises Eq. (8) of ADM, ``sum_p U_p(X_p) + sum_{pq} w_pq [X_p != X_q]`` subject to
    ``X_p = Y_p`` on the pixels labelled in ``hard``. One cycle tries the expansion move of every
    label ``0..K-1`` in turn; a move is kept only if it lowers the energy, so the energy never
    increases. The local minimum is within a factor 2 of the global one for Potts (BVZ 2001).

    A move whose labelling has not changed since the same label was last tried would repeat an
    identical max-flow problem; it is skipped. So a cycle without any accepted move ends the run
    early (GCO stops the same way): ``energies`` may then be shorter than ``cycles``.

    Args:
        unary: ``(H, W, K)`` unary costs.
        weights: ``(D, H, W)`` non-negative pair weights (:func:`grid_weights`).
        cycles: maximum number of cycles over all labels (public code: 5).
        init: ``(H, W)`` initial labels; None is all zeros (GCO's start). Pixels labelled in
            ``hard`` are overridden by their label.
        hard: optional ``(H, W)`` label map with 255 = unlabelled.

    Returns:
        ``(labels, energies)``: int64 ``(H, W)`` labels and a float64 array with the energy after
        each cycle that ran (its last entry is :func:`potts_energy` of ``labels``).

    Raises:
        ValueError: bad shapes or dims, labels outside ``[0, K)`` (other than 255 in ``hard``),
            NaN/inf, negative weights, ``cycles < 1``.
    """
    if not isinstance(cycles, (int, np.integer)) or cycles < 1:
        raise ValueError(f"cycles: expected an integer >= 1, got {cycles!r}")
    unary, weights, labels, hard = _prepare(unary, weights, init, hard)
    return _alpha_expansion(unary, weights, labels, hard, int(cycles))


def _alpha_expansion(unary, weights, labels, hard, cycles):
    num_labels = unary.shape[2]
    state = _ExpansionGraph(unary, weights, hard)
    flat = state.flat_labels(labels)
    current_unary = state.current_unary(flat)
    energy = _energy(labels, unary, weights)
    energies = []
    accepted = 0  # number of accepted moves so far
    tried_at = np.full(num_labels, -1)  # value of `accepted` when each label was last tried
    for _ in range(cycles):
        accepted_before = accepted
        for alpha in range(num_labels):
            if tried_at[alpha] == accepted:
                continue  # same labelling as the last (failed) try of alpha: same cut
            switch, change = state.move(flat, current_unary, alpha)
            if switch.any():
                if state.exact:
                    # Integer energies: the cut value gives the exact new energy.
                    new_energy = energy + change
                else:
                    # Float energies: recompute (rounding inside the max-flow must never let the
                    # energy increase).
                    new_energy = _energy(np.where(switch, alpha, flat).reshape(labels.shape), unary, weights)
                if new_energy < energy:
                    flat[switch] = alpha
                    current_unary[switch] = state.unary_by_label[alpha][switch]
                    energy = new_energy
                    accepted += 1
            tried_at[alpha] = accepted
        energies.append(energy)
        if accepted == accepted_before:
            break
    return flat.reshape(labels.shape).astype(np.int64), np.asarray(energies, dtype=np.float64)


def _solve_one(args):
    unary, weights, labels, hard, cycles = args
    return _alpha_expansion(unary, weights, labels, hard, cycles)


def _default_start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def alpha_expansion_batch(
    unary: Any,
    weights: Any,
    *,
    cycles: int = 5,
    init: Any = None,
    hard: Any = None,
    processes: int | None = None,
    start_method: str | None = None,
    executor: Executor | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`alpha_expansion` on every image of a batch, in parallel processes.

    Args:
        unary: ``(B, H, W, K)`` unary costs.
        weights: ``(B, D, H, W)`` pair weights.
        cycles: as in :func:`alpha_expansion`.
        init: optional ``(B, H, W)`` initial labels.
        hard: optional ``(B, H, W)`` label maps, 255 = unlabelled.
        processes: worker processes; None = ``min(B, os.cpu_count())``; 1 solves in this process.
        start_method: multiprocessing start method; None = ``"forkserver"`` where available,
            else ``"spawn"`` (never ``"fork"``: see the module docstring).
        executor: an existing ``concurrent.futures`` executor to reuse (e.g. one pool for a
            whole training run, which avoids paying the worker start-up per batch); when given,
            ``processes`` and ``start_method`` are ignored.

    Returns:
        ``(labels, energies)``: int64 ``(B, H, W)`` and one per-cycle energy array per image.

    Raises:
        ValueError: as :func:`alpha_expansion`, plus batch size mismatches and bad
            ``processes`` / ``start_method``.
    """
    if not isinstance(cycles, (int, np.integer)) or cycles < 1:
        raise ValueError(f"cycles: expected an integer >= 1, got {cycles!r}")
    unary = _as_numpy(unary, "unary")
    _check_ndim(unary, "unary", 4, "(B, H, W, K)")
    weights = _as_numpy(weights, "weights")
    _check_ndim(weights, "weights", 4, "(B, D, H, W)")
    batch = unary.shape[0]
    extras = {"weights": weights}
    if init is not None:
        extras["init"] = init = _as_numpy(init, "init")
        _check_ndim(init, "init", 3, "(B, H, W)")
    if hard is not None:
        extras["hard"] = hard = _as_numpy(hard, "hard")
        _check_ndim(hard, "hard", 3, "(B, H, W)")
    for name, value in extras.items():
        if value.shape[0] != batch:
            raise ValueError(f"{name}: expected batch size {batch} (from unary), got {value.shape[0]}")
    tasks = []
    for b in range(batch):
        prepared = _prepare(
            unary[b], weights[b], None if init is None else init[b], None if hard is None else hard[b]
        )
        tasks.append((*prepared, int(cycles)))
    if processes is not None and (not isinstance(processes, (int, np.integer)) or processes < 1):
        raise ValueError(f"processes: expected an integer >= 1 or None, got {processes!r}")
    if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
        raise ValueError(
            f"start_method: expected one of {multiprocessing.get_all_start_methods()}, got {start_method!r}"
        )
    if executor is not None:
        results = list(executor.map(_solve_one, tasks))
    else:
        import os

        workers = min(batch, os.cpu_count() or 1) if processes is None else min(int(processes), batch)
        if workers <= 1:
            results = [_solve_one(task) for task in tasks]
        else:
            context = multiprocessing.get_context(start_method or _default_start_method())
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                results = list(pool.map(_solve_one, tasks))
    labels = np.stack([labels for labels, _ in results]) if results else np.zeros((0,) + unary.shape[1:3], np.int64)
    return labels, [energies for _, energies in results]


# ---------------------------------------------------------------------------------------------
# Module: the ADM alpha-expansion layer on network outputs
# ---------------------------------------------------------------------------------------------
# torch is imported only when the Module is first used (PEP 562 module __getattr__): the
# worker processes of alpha_expansion_batch import this module and need numpy and PyMaxflow
# only; importing torch there would add seconds to every pool start.
def _make_alpha_expansion_module():
    from torch import nn

    class AlphaExpansion(nn.Module):
        """The ADM latent-labelling step (Eq. 8) on network outputs, as the public GC layer.

        ``forward(probs, images, hard=None)`` computes ``U = -log max(probs, eps)``, the 8-neighbour
        contrast weights of each image (:func:`grid_weights`) and runs :func:`alpha_expansion_batch`.
        The labels carry no gradient (as in the public code).

        Shape:
            probs ``(B, K, H, W)`` softmax outputs; images ``(B, C, H, W)``; hard ``(B, H, W)``
            with 255 = unlabelled; returns int64 labels ``(B, H, W)`` on the device of ``probs``.
        """

        def __init__(
            self,
            *,
            smoothness: float = 80.0,
            neighbourhood: int = 8,
            cycles: int = 5,
            eps: float = 1e-12,
            processes: int | None = None,
            start_method: str | None = None,
        ) -> None:
            super().__init__()
            if not (math.isfinite(eps) and eps > 0):
                raise ValueError(f"eps: expected a finite number > 0, got {eps!r}")
            self.smoothness, self.neighbourhood, self.cycles = smoothness, neighbourhood, cycles
            self.eps, self.processes, self.start_method = eps, processes, start_method

        def forward(self, probs, images, hard=None):
            import torch

            if probs.dim() != 4 or images.dim() != 4:
                raise ValueError(
                    f"probs, images: expected (B, K, H, W) and (B, C, H, W), got {tuple(probs.shape)} and {tuple(images.shape)}"
                )
            if images.shape[0] != probs.shape[0] or images.shape[2:] != probs.shape[2:]:
                raise ValueError(
                    f"images: expected batch and size {(probs.shape[0], *probs.shape[2:])} of probs, got {tuple(images.shape)}"
                )
            probs_np = _as_numpy(probs, "probs").astype(np.float64)
            _check_finite(probs_np, "probs")
            unary = -np.log(np.maximum(probs_np, self.eps)).transpose(0, 2, 3, 1)
            images_np = _as_numpy(images, "images").transpose(0, 2, 3, 1)
            weights = np.stack(
                [grid_weights(image, neighbourhood=self.neighbourhood, smoothness=self.smoothness) for image in images_np]
            )
            labels, _ = alpha_expansion_batch(
                unary, weights, cycles=self.cycles, hard=hard, processes=self.processes, start_method=self.start_method
            )
            return torch.from_numpy(labels).to(probs.device)

    AlphaExpansion.__module__, AlphaExpansion.__qualname__ = __name__, "AlphaExpansion"
    return AlphaExpansion


def __getattr__(name: str):
    if name == "AlphaExpansion":
        globals()[name] = module = _make_alpha_expansion_module()
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
