"""Relaxed CRF losses for gradient descent (adm): the dense CRF loss and the grid CRF loss.

* :func:`dense_crf_loss` -- the dense CRF (Potts with a Gaussian kernel over position and
  colour, Eq. (3) of ADM) relaxed to ``sum_k S_k^T W (1 - S_k)``, with its gradient from one
  bilateral filtering pass (:class:`DenseCRFLoss` is the Module).
* :func:`grid_crf_relaxed_loss` -- the quadratic relaxation of the grid CRF, Eq. (9) of ADM,
  on the weights of :func:`suite.solvers.graphcut.grid_weights` (:class:`GridCRFLoss`).
* :class:`PermutohedralLattice` -- the fast Gaussian filter behind the dense loss
  (Adams, Baek, Davis, "Fast High-Dimensional Filtering Using the Permutohedral Lattice",
  Eurographics 2010), built once per image and reusable.

Dense kernel. ``W_pq = exp(-||x_p - x_q||^2 / (2 sigma_xy^2) - ||I_p - I_q||^2 / (2 sigma_rgb^2))``
over all pairs of pixels *including* ``p = q`` (``W_pp = 1``), with ``x`` the pixel coordinates
(row, column) and ``I`` the colour in the units of ``sigma_rgb`` (0-255 for the public
sigma_rgb = 15; any mean subtraction is irrelevant). The public ``Cut`` layer filters with the
same kernel (its permutohedral lattice, sigma_xy = 100, sigma_rgb = 15).

Loss and gradient (per image; S is (N, K) with columns S_k, N = H W)::

    potts (default):  L = sum_k S_k^T W (1 - S_k),     dL/dS_k = W 1 - 2 W S_k
    cut (public):     L = -sum_k S_k^T W S_k,           dL/dS_k = -2 W S_k

For one-hot S the potts form is the dense Potts energy counted over ordered pairs (each
unordered pair twice; p = q terms vanish). Exact relation: potts = cut + sum_p (sum_k S_pk) d_p
with the degree d = W 1. For probabilities (sum_k S_pk = 1) the difference ``1^T W 1`` does not
depend on S at all (for any symmetric W, row-normalised or not), so both losses have the same
gradient with respect to the logits before a softmax; their gradients with respect to S differ
by ``d_p``, the same for every class k of a pixel. ``W`` is the lattice's approximation
``W~`` (below), used consistently in loss and gradient, so gradcheck holds exactly.

Lattice approximation. Splat to the d+1 = 6 vertices of the enclosing simplex (barycentric
weights), blur with [1/2, 1, 1/2] along each of the d+1 lattice directions, slice back,
times ``1 / (1 + 2^-d)`` (the kernel value at zero). One pass of directional blurs is not a
symmetric operator once lattice points are missing (the blurs do not commute), so ``W~`` uses
the average of the forward and the reversed blur order: ``W~ = S^T (B + B^T) S / 2``, exactly
symmetric. (Measured on a 64 x 64 photo: the single forward pass gives ``u^T W v`` and
``v^T W u`` 4e-4 apart, and outputs up to 4% from the symmetrised ones, so the average is
needed for a gradient consistent with the loss; the blurs run on the M << N lattice points and
cost about a tenth of splat + slice.) The filter is an approximation of the Gaussian, not an
exact one: see ``tests/suite/solvers/test_crf.py`` for its measured error against the dense W.

Backends. The lattice is built with numpy (vectorised; the hash table is a sort of packed
integer keys). Filtering runs with numba kernels (``@njit(parallel=True, cache=True)``) for CPU
tensors when numba is importable, and with plain torch (``index_add_`` / indexing) otherwise,
which is also the path for CUDA tensors. numba is optional. The loss of CPU tensors takes a
fused path (:meth:`PermutohedralLattice.dense_crf_terms`): the probabilities are read in their
``(K, N)`` channels-first layout, in blocks of 64 pixels, and splatted by scatter into one
private lattice per thread (rows padded to a multiple of 8 channels, so every update is whole
vectors); the two blur orders run serially on the small lattice; one slice pass writes the
gradient straight into the autograd buffer and the per-block loss terms.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from suite.solvers.graphcut import NEIGHBOURHOOD_OFFSETS, UNLABELLED

__all__ = [
    "PermutohedralLattice",
    "dense_crf_lattices",
    "dense_crf_loss",
    "grid_crf_relaxed_loss",
    "DenseCRFLoss",
    "GridCRFLoss",
]

_FORMULATIONS = ("potts", "cut")
_GRID_FORMULATIONS = ("eq9", "squared_distance", "negative_dot")
_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------------------
# numba kernels (compiled on first use; numba is optional)
# ---------------------------------------------------------------------------------------------
_NUMBA: dict[str, Any] = {}
#: Pixels per block of the channels-first kernels (a (64, K) buffer stays in L1).
_BLOCK = 64


def _numba_kernels() -> dict[str, Any] | None:
    if "kernels" in _NUMBA:
        return _NUMBA["kernels"]
    try:
        import numba
    except ImportError:
        _NUMBA["kernels"] = None
        return None
    njit, prange = numba.njit, numba.prange

    @njit(parallel=True, cache=True)
    def splat(values, pointer, pixels, weights, out):
        # Gather formulation (lattice point -> its pixels): no write conflicts between threads.
        channels = values.shape[1]
        for m in prange(pointer.shape[0] - 1):
            for c in range(channels):
                out[m, c] = 0.0
            for e in range(pointer[m], pointer[m + 1]):
                w = weights[e]
                n = pixels[e]
                for c in range(channels):
                    out[m, c] += w * values[n, c]

    # Serial: M << N lattice points, a parallel region per direction costs more than it saves.
    @njit(cache=True)
    def blur(source, first, second, out):
        channels = source.shape[1]
        for m in range(first.shape[0]):
            a, b = first[m], second[m]
            for c in range(channels):
                out[m, c] = source[m, c] + 0.5 * (source[a, c] + source[b, c])

    @njit(parallel=True, cache=True)
    def slice_(lattice_a, lattice_b, offsets, weights, scale, out):
        # out = scale * interpolation of (lattice_a + lattice_b) at every pixel.
        channels = out.shape[1]
        vertices = offsets.shape[1]
        for n in prange(offsets.shape[0]):
            for c in range(channels):
                out[n, c] = 0.0
            for r in range(vertices):
                m = offsets[n, r]
                w = weights[n, r] * scale
                for c in range(channels):
                    out[n, c] += w * (lattice_a[m, c] + lattice_b[m, c])

    @njit(parallel=True, cache=True)
    def embed(elevated, key_min, stride, codes, weights):
        # Per point, the loops of Adams et al. / Kraehenbuehl (same arithmetic as _embed_numpy).
        num_points, vertices = elevated.shape
        dim = vertices - 1
        for n in prange(num_points):
            remainder0 = np.empty(vertices, dtype=np.int64)
            rank = np.zeros(vertices, dtype=np.int64)
            barycentric = np.zeros(vertices + 1)
            total = 0
            for i in range(vertices):
                rounded = np.floor(elevated[n, i] / vertices + 0.5)
                remainder0[i] = np.int64(rounded) * vertices
                total += np.int64(rounded)
            for i in range(dim):
                di = elevated[n, i] - remainder0[i]
                for j in range(i + 1, vertices):
                    if di < elevated[n, j] - remainder0[j]:
                        rank[i] += 1
                    else:
                        rank[j] += 1
            for i in range(vertices):
                rank[i] += total
                if rank[i] < 0:
                    rank[i] += vertices
                    remainder0[i] += vertices
                elif rank[i] > dim:
                    rank[i] -= vertices
                    remainder0[i] -= vertices
            for i in range(vertices):
                v = (elevated[n, i] - remainder0[i]) / vertices
                barycentric[dim - rank[i]] += v
                barycentric[dim - rank[i] + 1] -= v
            barycentric[0] += 1.0 + barycentric[vertices]
            for r in range(vertices):
                code = 0
                for i in range(dim):
                    shift = r if rank[i] <= dim - r else r - vertices
                    code += (remainder0[i] + shift - key_min[i]) * stride[i]
                codes[n, r] = code
                weights[n, r] = barycentric[r]

    # The dense CRF loss path: channels-first values (K, N), as the network's (B, K, H, W) lays
    # them out, with no transposed copy. Pixels go in blocks of _BLOCK: a block's values are
    # transposed into a small pixels-first buffer in L1, so that every lattice update and read
    # is one contiguous row of K values (vectorised over the channels).
    @njit(parallel=True, cache=True)
    def splat_channels(values, offsets, weights, private):
        # Scatter formulation, one private lattice per chunk of pixels (no write conflicts
        # between threads); blur_both sums them. Rows are updated through 1-D views, which
        # LLVM vectorises over the channels (2-D indexing there stays scalar).
        chunks, _, width = private.shape
        channels = values.shape[0]
        num_points, vertices = offsets.shape
        step = (num_points + chunks - 1) // chunks
        for t in prange(chunks):
            lattice = private[t]
            lattice[:, :] = 0.0
            block = np.zeros((_BLOCK, width), dtype=values.dtype)
            stop = min(num_points, (t + 1) * step)
            for start in range(t * step, stop, _BLOCK):
                size = min(_BLOCK, stop - start)
                for c in range(channels):
                    for i in range(size):
                        block[i, c] = values[c, start + i]
                for i in range(size):
                    n = start + i
                    source = block[i]
                    for r in range(vertices):
                        row = lattice[offsets[n, r]]
                        w = weights[n, r]
                        for c in range(width):
                            row[c] += w * source[c]

    @njit(cache=True)
    def blur_both(private, neighbours, half):
        # Sum of the private lattices, then (B + B^T) of it: the blurs in forward and in
        # reversed direction order, added. Row M (missing neighbours) stays zero. Serial: the
        # lattice is small (M << N) and one parallel region per direction costs more than it saves.
        chunks, rows, channels = private.shape
        count = rows - 1
        directions = neighbours.shape[0]
        lattice = private[0].copy()
        for t in range(1, chunks):
            for m in range(count):
                for c in range(channels):
                    lattice[m, c] += private[t, m, c]
        total = np.zeros_like(lattice)
        current = np.empty_like(lattice)
        spare = np.empty_like(lattice)
        spare[count, :] = 0.0
        for reverse in range(2):
            current[:, :] = lattice
            for step in range(directions):
                j = directions - 1 - step if reverse else step
                for m in range(count):
                    out = spare[m]
                    centre = current[m]
                    first = current[neighbours[j, 0, m]]
                    second = current[neighbours[j, 1, m]]
                    for c in range(channels):
                        out[c] = centre[c] + half * (first[c] + second[c])
                current, spare = spare, current
            for m in range(count):
                for c in range(channels):
                    total[m, c] += current[m, c]
        return total

    # reassoc: the per-block sums of the loss vectorise (64 terms each, then float64 totals).
    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def slice_terms(lattice, offsets, weights, scale, segmentation, degree, grad, partial):
        # Slice scale * lattice at every pixel (W~ S) and turn it into the loss terms and the
        # gradient at once: sum_c S_cn (d_n - (W~S)_cn) and grad = d_n - 2 (W~S)_cn, with d the
        # degree (potts) or zero (cut). One float64 partial loss per block of pixels.
        channels, num_points = segmentation.shape
        vertices = offsets.shape[1]
        blocks = (num_points + _BLOCK - 1) // _BLOCK
        for k in prange(blocks):
            start = k * _BLOCK
            size = min(_BLOCK, num_points - start)
            filtered = np.zeros((_BLOCK, lattice.shape[1]), dtype=lattice.dtype)
            for i in range(size):
                n = start + i
                target = filtered[i]
                for r in range(vertices):
                    row = lattice[offsets[n, r]]
                    w = weights[n, r] * scale
                    for c in range(row.shape[0]):
                        target[c] += w * row[c]
            total = 0.0
            for c in range(channels):
                part = scale - scale  # zero of the data type: no float64 promotion
                for i in range(size):
                    n = start + i
                    d = degree[n]
                    value = filtered[i, c]
                    part += segmentation[c, n] * (d - value)
                    grad[c, n] = d - (value + value)
                total += part
            partial[k] = total

    _NUMBA["kernels"] = {
        "embed": embed,
        "splat": splat,
        "blur": blur,
        "slice": slice_,
        "splat_channels": splat_channels,
        "blur_both": blur_both,
        "slice_terms": slice_terms,
    }
    return _NUMBA["kernels"]


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


# ---------------------------------------------------------------------------------------------
# Permutohedral lattice
# ---------------------------------------------------------------------------------------------
def _embed_numpy(elevated: np.ndarray, key_min: np.ndarray, stride: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the d+1 vertices of each point's simplex and its barycentric weights (numpy)."""
    num_points, vertices = elevated.shape
    dim = vertices - 1
    # Closest remainder-0 point, then the simplex containing the point (by sorting).
    rounded = np.floor(elevated / vertices + 0.5)
    remainder0 = (rounded * vertices).astype(np.int64)
    total = rounded.sum(axis=1).astype(np.int64)
    difference = elevated - remainder0
    # Ties: the later coordinate ranks higher, as in Adams' and Kraehenbuehl's loops.
    rank = np.argsort(np.argsort(-difference, axis=1, kind="stable"), axis=1, kind="stable")
    rank += total[:, None]
    low, high = rank < 0, rank > dim
    rank[low] += vertices
    remainder0[low] += vertices
    rank[high] -= vertices
    remainder0[high] -= vertices
    # Barycentric coordinates (rank is a permutation of 0..d in every row: no collisions).
    barycentric = np.zeros((num_points, vertices + 1))
    rows = np.arange(num_points)[:, None]
    v = (elevated - remainder0) / vertices
    barycentric[rows, dim - rank] += v
    barycentric[rows, dim - rank + 1] -= v
    barycentric[:, 0] += 1.0 + barycentric[:, vertices]
    remainders = np.arange(vertices)
    canonical = np.where(
        np.arange(vertices)[None, :] <= dim - remainders[:, None],
        remainders[:, None],
        remainders[:, None] - vertices,
    )  # canonical[r, rank]
    keys = remainder0[:, None, :dim] + canonical[:, rank[:, :dim]].transpose(1, 0, 2)  # (N, d+1, d)
    codes = np.einsum("nrk,k->nr", keys - key_min, stride)
    return codes, barycentric[:, :vertices].copy()


class PermutohedralLattice:
    """Gaussian filter ``W v`` with ``W_ij ~= exp(-||f_i - f_j||^2 / 2)``, Adams et al. 2010.

    Built once from the (already bandwidth-scaled) features of N points; :meth:`filter` then
    applies the same symmetric operator ``W~`` to any ``(N, C)`` values.

    Calibration. Splat-blur-slice on a sparse lattice loses mass (blurred values that land on
    lattice points no input occupies are dropped), so for d = 5 image features the raw operator
    is about 0.45-0.6 times the Gaussian (measured on scikit-image photos; this is also the
    scale of the public ``Cut`` layer, which uses the same, unnormalised, lattice). With
    ``calibrate=True`` the operator is multiplied by one scalar per lattice, ``c = sum_i d_i /
    sum_i d~_i`` over ``calibration_points`` evenly spaced points, where ``d_i = sum_j W_ij`` is
    the exact Gaussian degree (computed brute force for those points only, O(points N d)) and
    ``d~_i`` the lattice's. What remains is the shape error of the lattice kernel (a few %
    on the loss; see the tests). ``calibrate=False`` keeps the raw operator (``scale = 1``).

    Args:
        features: ``(N, d)`` float array, each feature divided by its bandwidth.
        calibrate: rescale to the exact Gaussian's degree (above).
        calibration_points: number of points whose exact degree is computed.

    Attributes:
        num_points: N. dim: d. num_vertices: number of lattice points M.
        scale: the calibration factor c (1.0 without calibration).
        degree: ``(N,)`` float64 ``W~ 1`` (for the dense CRF loss).

    Raises:
        ValueError: features not 2-D, empty, or with NaN/inf.
    """

    def __init__(self, features: Any, *, calibrate: bool = True, calibration_points: int = 64) -> None:
        if isinstance(features, Tensor):
            features = features.detach().cpu().numpy()
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
            raise ValueError(f"features: expected a non-empty (N, d) array, got shape {tuple(features.shape)}")
        if not np.isfinite(features).all():
            raise ValueError("features: expected finite values, got NaN or infinite entries")
        num_points, dim = features.shape
        self.num_points, self.dim = num_points, dim
        vertices = dim + 1

        # Elevate onto the hyperplane sum = 0 of R^(d+1) (Adams et al. 2010, Sec. 3.1), with the
        # scaling for which the [1/2, 1, 1/2] blurs give a unit-variance Gaussian.
        inverse_std = math.sqrt(2.0 / 3.0) * vertices
        scale = inverse_std / np.sqrt((np.arange(dim) + 1.0) * (np.arange(dim) + 2.0))
        scaled = features * scale
        elevated = np.empty((num_points, vertices))
        suffix = np.cumsum(scaled[:, ::-1], axis=1)[:, ::-1]  # suffix[:, k] = sum_{i >= k} scaled_i
        elevated[:, 0] = suffix[:, 0]
        for j in range(1, vertices):
            after = suffix[:, j] if j < dim else 0.0
            elevated[:, j] = after - j * scaled[:, j - 1]

        # Hash table keys are the first d coordinates of the lattice points, packed into int64
        # codes with a mixed radix. Bounds: a vertex is within 2.5 (d+1) of the elevated point
        # and a blur neighbour within d more, so a margin of 4 (d+1) holds every key we look up.
        key_min = np.floor(elevated[:, :dim].min(axis=0)).astype(np.int64) - 4 * vertices
        radix = np.ceil(elevated[:, :dim].max(axis=0)).astype(np.int64) + 4 * vertices - key_min + 1
        if np.sum(np.log2(radix.astype(np.float64))) >= 62:
            raise ValueError(
                "features: expected a lattice whose keys fit in 62 bits; the features span "
                f"{radix.tolist()} lattice cells per axis (bandwidths too small for the data range)"
            )
        stride = np.concatenate([[1], np.cumprod(radix[:-1])]).astype(np.int64)
        kernels = _numba_kernels()
        if kernels is not None:
            codes = np.empty((num_points, vertices), dtype=np.int64)
            weights = np.empty((num_points, vertices))
            kernels["embed"](elevated, key_min, stride, codes, weights)
        else:
            codes, weights = _embed_numpy(elevated, key_min, stride)
        codes = codes.ravel()
        # One sort gives the table (unique codes), each vertex's index and the splat order.
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.concatenate([[True], sorted_codes[1:] != sorted_codes[:-1]])
        unique = sorted_codes[starts]
        num_vertices = unique.size
        self.num_vertices = num_vertices
        inverse = np.empty(codes.size, dtype=np.int64)
        inverse[order] = np.cumsum(starts) - 1
        offsets = inverse.reshape(num_points, vertices)

        # Blur neighbours: along direction j the neighbours are key + 1 - (d+1) e_j and its
        # opposite (Adams et al. 2010, Sec. 3.3); codes are linear in the key.
        step = int(stride.sum())
        neighbours = np.empty((vertices, 2, num_vertices), dtype=np.int64)
        for j in range(vertices):
            shift = step - (vertices * int(stride[j]) if j < dim else 0)
            for side, sign in enumerate((1, -1)):
                target = unique + sign * shift
                index = np.minimum(np.searchsorted(unique, target), num_vertices - 1)
                # Missing neighbours point at row M, a zero row that the blur never writes.
                neighbours[j, side] = np.where(unique[index] == target, index, num_vertices)

        # Splat as a gather: for every lattice point, its (pixel, weight) contributions.
        self._pointer = np.append(np.flatnonzero(starts), codes.size).astype(np.int64)
        self._pixels = (order // vertices).astype(np.int64)
        self._splat_weights = weights.ravel()[order]
        self._offsets = offsets
        self._weights = weights
        self._neighbours = neighbours
        # Kernel value at zero distance of splat-blur-slice: 1 + 2^-d (paths around a simplex).
        self._scale = 1.0 / (1.0 + 2.0 ** (-dim))
        self._torch_cache: dict[tuple[str, torch.dtype], dict[str, Tensor]] = {}
        self._array_cache: dict[Any, Any] = {}
        self.scale = 1.0
        raw_degree = self.filter(np.ones((num_points, 1)))[:, 0]
        if calibrate:
            if not (isinstance(calibration_points, (int, np.integer)) and calibration_points >= 1):
                raise ValueError(f"calibration_points: expected an integer >= 1, got {calibration_points!r}")
            sample = np.unique(np.linspace(0, num_points - 1, min(int(calibration_points), num_points)).round().astype(np.int64))
            # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b: one (points x N) matrix product.
            norms = (features**2).sum(axis=1)
            squared = norms[sample, None] + norms[None, :] - 2.0 * (features[sample] @ features.T)
            exact = np.exp(-0.5 * np.maximum(squared, 0.0)).sum(axis=1)
            self.scale = float(exact.sum() / raw_degree[sample].sum())
            self._scale *= self.scale
        self.degree = raw_degree * self.scale

    # -----------------------------------------------------------------------------------------
    def filter(self, values: Any, *, backend: str = "auto") -> Any:
        """``W~ values`` for ``(N, C)`` values (numpy array or tensor; returns the same kind).

        ``backend``: "auto" (numba for CPU data when importable, torch otherwise), "numba" or
        "torch". float32 is computed in float32, everything else in float64.
        """
        if backend not in ("auto", "numba", "torch"):
            raise ValueError(f"backend: expected 'auto', 'numba' or 'torch', got {backend!r}")
        is_tensor = isinstance(values, Tensor)
        if values.ndim != 2 or values.shape[0] != self.num_points:
            raise ValueError(
                f"values: expected shape ({self.num_points}, C) for this lattice, got {tuple(values.shape)}"
            )
        kernels = _numba_kernels() if backend != "torch" else None
        if backend == "numba" and kernels is None:
            raise ValueError("backend: 'numba' requested but numba is not importable")
        on_cpu = not is_tensor or values.device.type == "cpu"
        if kernels is not None and on_cpu:
            array = values.detach().numpy() if is_tensor else np.asarray(values)
            dtype = np.float32 if array.dtype == np.float32 else np.float64
            out = self._filter_numba(np.ascontiguousarray(array, dtype=dtype), kernels)
            return torch.from_numpy(out) if is_tensor else out
        tensor = values if is_tensor else torch.from_numpy(np.asarray(values, dtype=np.float64))
        out = self._filter_torch(tensor)
        return out if is_tensor else out.numpy()

    def _blurred_numba(self, values: np.ndarray, kernels: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Splat ``(N, C)`` values and blur them in forward and in reversed direction order."""
        dtype = values.dtype
        channels = values.shape[1]
        m = self.num_vertices
        forward = np.empty((m + 1, channels), dtype=dtype)
        kernels["splat"](values, self._pointer, self._pixels, self._splat_weights.astype(dtype, copy=False), forward)
        forward[m] = 0.0
        backward = forward.copy()
        spare = np.zeros_like(forward)
        for j in range(self.dim + 1):  # forward order
            kernels["blur"](forward, self._neighbours[j, 0], self._neighbours[j, 1], spare)
            forward, spare = spare, forward
        for j in reversed(range(self.dim + 1)):  # reversed order: the transpose
            kernels["blur"](backward, self._neighbours[j, 0], self._neighbours[j, 1], spare)
            backward, spare = spare, backward
        return forward, backward

    def _filter_numba(self, values: np.ndarray, kernels: dict[str, Any]) -> np.ndarray:
        forward, backward = self._blurred_numba(values, kernels)
        out = np.empty_like(values)
        weights = self._weights.astype(values.dtype, copy=False)
        kernels["slice"](forward, backward, self._offsets, weights, 0.5 * self._scale, out)
        return out

    def dense_crf_terms(
        self, segmentation: np.ndarray, *, formulation: str = "potts", out: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Dense CRF loss of one image and its gradient, from one filtering pass (numba).

        Args:
            segmentation: ``(K, N)`` float32 or float64 C-contiguous array (channels first).
            formulation: "potts" or "cut" (see the module docstring).
            out: optional C-contiguous ``(K, N)`` array of the same dtype for the gradient (e.g.
                a view of the autograd buffer, which saves a copy).

        Returns:
            ``(loss, grad)`` with ``grad`` of shape ``(K, N)`` and the dtype of the input.

        Raises:
            ValueError: wrong shape or formulation, or numba not importable.
        """
        kernels = _numba_kernels()
        if kernels is None:
            raise ValueError("dense_crf_terms needs numba (not importable); use filter() instead")
        if formulation not in _FORMULATIONS:
            raise ValueError(f"formulation: expected one of {_FORMULATIONS}, got {formulation!r}")
        if segmentation.ndim != 2 or segmentation.shape[1] != self.num_points:
            raise ValueError(
                f"segmentation: expected shape (K, {self.num_points}), got {tuple(segmentation.shape)}"
            )
        dtype = np.float32 if segmentation.dtype == np.float32 else np.float64
        segmentation = np.ascontiguousarray(segmentation, dtype=dtype)
        if out is None:
            grad = np.empty_like(segmentation)
        elif out.shape != segmentation.shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out: expected a C-contiguous {dtype.__name__} array of shape {segmentation.shape}, "
                f"got {out.dtype} {tuple(out.shape)}"
            )
        else:
            grad = out
        offsets, weights, degree = self._kernel_arrays(dtype)
        chunks = max(1, min(_numba_threads(), self.num_points // _BLOCK))
        # Lattice rows padded to a multiple of 8 channels: whole vectors, no scalar remainder.
        width = -(-segmentation.shape[0] // 8) * 8
        private = np.empty((chunks, self.num_vertices + 1, width), dtype=dtype)
        kernels["splat_channels"](segmentation, offsets, weights, private)
        lattice = kernels["blur_both"](private, self._neighbours, dtype(0.5))
        partial = np.empty((self.num_points + _BLOCK - 1) // _BLOCK)
        if formulation == "cut":
            degree = np.zeros_like(degree)
        kernels["slice_terms"](lattice, offsets, weights, dtype(0.5 * self._scale), segmentation, degree, grad, partial)
        return float(partial.sum()), grad

    def _kernel_arrays(self, dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets (int32), barycentric weights and degree in ``dtype``, converted once."""
        key = ("kernel", dtype)
        if key not in self._array_cache:
            self._array_cache[key] = (
                self._offsets.astype(np.int32 if self.num_vertices < 2**31 - 1 else np.int64),
                self._weights.astype(dtype),
                self.degree.astype(dtype),
            )
        return self._array_cache[key]

    def _torch_tensors(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        key = (str(device), dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = {
                "offsets": torch.from_numpy(self._offsets).to(device),
                "weights": torch.from_numpy(self._weights).to(device=device, dtype=dtype),
                "neighbours": torch.from_numpy(self._neighbours).to(device),
            }
        return self._torch_cache[key]

    def _filter_torch(self, values: Tensor) -> Tensor:
        dtype = values.dtype if values.dtype in (torch.float32, torch.float64) else torch.float64
        values = values.to(dtype)
        t = self._torch_tensors(values.device, dtype)
        m, channels = self.num_vertices, values.shape[1]
        lattice = values.new_zeros(m + 1, channels)
        contributions = (values[:, None, :] * t["weights"][:, :, None]).reshape(-1, channels)
        lattice.index_add_(0, t["offsets"].reshape(-1), contributions)

        def blurred(order):
            current = lattice
            for j in order:
                first, second = t["neighbours"][j]
                inner = current[:m] + 0.5 * (current[first] + current[second])
                current = torch.cat([inner, current.new_zeros(1, channels)])
            return current

        both = blurred(range(self.dim + 1)) + blurred(reversed(range(self.dim + 1)))
        sliced = (both[t["offsets"]] * t["weights"][:, :, None]).sum(dim=1)
        return sliced * (0.5 * self._scale)


def _image_features(image: np.ndarray, sigma_xy: float, sigma_rgb: float) -> np.ndarray:
    channels, height, width = image.shape
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    position = np.stack([rows, cols], axis=-1).reshape(-1, 2) / sigma_xy
    colour = image.reshape(channels, -1).T / sigma_rgb
    return np.concatenate([position, colour], axis=1)


def _check_images(images: Any, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor):
        try:
            images = torch.as_tensor(np.asarray(images))
        except Exception:  # noqa: BLE001
            raise ValueError(f"{name}: expected a (B, C, H, W) tensor, got {type(images).__name__}") from None
    if images.dim() != 4:
        raise ValueError(f"{name}: expected (B, C, H, W), got shape {tuple(images.shape)}")
    if not torch.isfinite(images.double()).all():
        raise ValueError(f"{name}: expected finite values, got NaN or infinite entries")
    return images


def _check_sigma(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")


def dense_crf_lattices(images: Any, *, sigma_xy: float = 100.0, sigma_rgb: float = 15.0) -> list[PermutohedralLattice]:
    """One :class:`PermutohedralLattice` per image over (row, column, colour) features.

    Args:
        images: ``(B, C, H, W)`` images, colour in the units of ``sigma_rgb`` (0-255 for 15).
        sigma_xy: spatial bandwidth in pixels (public: 100). sigma_rgb: colour bandwidth (15).

    Returns:
        A list of B lattices (reusable across calls of :func:`dense_crf_loss`).

    Raises:
        ValueError: wrong dims, NaN, non-positive bandwidths.
    """
    images = _check_images(images)
    _check_sigma(sigma_xy, "sigma_xy")
    _check_sigma(sigma_rgb, "sigma_rgb")
    array = images.detach().cpu().double().numpy()
    return [PermutohedralLattice(_image_features(image, sigma_xy, sigma_rgb)) for image in array]


# ---------------------------------------------------------------------------------------------
# Dense CRF inference
# ---------------------------------------------------------------------------------------------
def dense_crf_mean_field(unaries: Any, image: Any, *, weight: float, sigma_xy: float, sigma_rgb: float,
                         iterations: int = 5, seeds: Any = None, ignore_index: int = 255) -> np.ndarray:
    """Mean-field inference of the dense CRF with the Potts model and one bilateral kernel.

    ``E(X) = sum_p U_p(X_p) + weight * sum_{p<q} k_pq [X_p != X_q]`` with
    ``k_pq = exp(-|x_p - x_q|^2 / 2 sigma_xy^2 - |I_p - I_q|^2 / 2 sigma_rgb^2)`` (ADM Eq. 3).
    Iterates ``Q_p(l) ∝ exp(-U_p(l) + weight * sum_{q != p} k_pq Q_q(l))`` from ``Q = softmax(-U)``
    (Krahenbuhl & Koltun 2011, Alg. 1 with the Potts compatibility); the sum is one lattice
    filtering minus the ``q = p`` term, so an iteration costs O(N L), not O(N^2 L).

    Args:
        unaries: ``(H, W, L)`` unary costs U. image: ``(H, W, 3)`` colours in the units of ``sigma_rgb``.
        weight: w of the kernel. sigma_xy, sigma_rgb: bandwidths (pixels, colour units).
        iterations: mean-field updates. seeds: optional ``(H, W)`` labels in ``[0, L)`` or
            ``ignore_index``; a seed's marginal is clamped to its label's one-hot vector.

    Returns:
        ``(H, W, L)`` float64 marginals Q.

    Raises:
        ValueError: mismatched shapes, NaN, seeds outside ``[0, L)``, non-positive bandwidths.
    """
    unaries = np.asarray(unaries, dtype=np.float64)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"image: expected (H, W, C), got shape {image.shape}")
    if unaries.ndim != 3 or unaries.shape[:2] != image.shape[:2]:
        raise ValueError(f"unaries: expected (H, W, L) with (H, W) = {image.shape[:2]}, got {unaries.shape}")
    if not np.isfinite(unaries).all():
        raise ValueError("unaries: expected finite values, got NaN or infinite entries")
    (lattice,) = dense_crf_lattices(image.transpose(2, 0, 1)[None].copy(), sigma_xy=sigma_xy, sigma_rgb=sigma_rgb)
    height, width, num_labels = unaries.shape
    flat_unary = unaries.reshape(-1, num_labels)
    clamp = None
    if seeds is not None:
        seeds = np.asarray(seeds)
        if seeds.shape != (height, width):
            raise ValueError(f"seeds: expected shape {(height, width)}, got {seeds.shape}")
        seeds = seeds.reshape(-1).astype(np.int64)
        clamp = seeds != ignore_index
        if ((seeds[clamp] < 0) | (seeds[clamp] >= num_labels)).any():
            raise ValueError(f"seeds: expected labels in [0, {num_labels}) or {ignore_index}, "
                             f"got {sorted(set(np.unique(seeds[clamp]).tolist()))}")
        one_hot = np.eye(num_labels)[np.where(clamp, seeds, 0)]

    def normalised(energy):
        energy = energy - energy.min(axis=1, keepdims=True)
        q = np.exp(-energy)
        q /= q.sum(axis=1, keepdims=True)
        if clamp is not None:
            q[clamp] = one_hot[clamp]
        return q

    q = normalised(flat_unary)
    for _ in range(int(iterations)):
        message = np.asarray(lattice.filter(q)) - q
        q = normalised(flat_unary - weight * message)
    return q.reshape(height, width, num_labels)


# ---------------------------------------------------------------------------------------------
# Dense CRF loss
# ---------------------------------------------------------------------------------------------
class _DenseCRFLossFunction(torch.autograd.Function):
    """Per-image loss (B,) and its gradient from one filtering pass of all K channels."""

    @staticmethod
    def forward(ctx, probs: Tensor, lattices: Sequence[PermutohedralLattice], formulation: str) -> Tensor:
        batch, classes, height, width = probs.shape
        losses = probs.new_empty(batch)
        grads = probs.new_empty(probs.shape)  # contiguous whatever the layout of probs
        fused = _numba_kernels() is not None and probs.device.type == "cpu"
        for b, lattice in enumerate(lattices):
            if fused:
                flat = probs[b].detach().reshape(classes, -1).numpy()
                # The gradient is written straight into the autograd buffer (no copy).
                out = grads[b].view(classes, -1).numpy() if flat.dtype in (np.float32, np.float64) else None
                loss, grad = lattice.dense_crf_terms(flat, formulation=formulation, out=out)
                losses[b] = loss
                if out is None:
                    grads[b] = torch.from_numpy(grad).reshape(classes, height, width)
                continue
            segmentation = probs[b].detach().reshape(classes, -1).T.contiguous()  # (N, K)
            filtered = lattice.filter(segmentation)  # W~ S
            degree = torch.as_tensor(lattice.degree, dtype=probs.dtype, device=probs.device)
            if formulation == "potts":
                # sum_k S_k^T W (1 - S_k) = sum_p (sum_k S_pk) d_p - sum S * W S
                losses[b] = (segmentation.sum(dim=1) * degree).sum() - (segmentation * filtered).sum()
                grad = degree[:, None] - 2.0 * filtered
            else:
                losses[b] = -(segmentation * filtered).sum()
                grad = -2.0 * filtered
            grads[b] = grad.T.reshape(classes, height, width)
        ctx.save_for_backward(grads)
        return losses

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (grads,) = ctx.saved_tensors
        return grad_output[:, None, None, None] * grads, None, None


def _check_probs(probs: Any, name: str = "probs") -> Tensor:
    if not isinstance(probs, Tensor):
        raise ValueError(f"{name}: expected a (B, K, H, W) tensor, got {type(probs).__name__}")
    if probs.dim() != 4:
        raise ValueError(f"{name}: expected (B, K, H, W), got shape {tuple(probs.shape)}")
    if not probs.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {probs.dtype}")
    # Any NaN or infinity makes the sum non-finite, so a finite sum proves every entry finite at
    # the cost of one reduction; only a non-finite sum (possibly an overflow) looks elementwise.
    if not torch.isfinite(probs.detach().sum()) and not torch.isfinite(probs).all():
        raise ValueError(f"{name}: expected finite values, got NaN or infinite entries")
    return probs


def _clamp_scribbles(probs: Tensor, hard: Any) -> Tensor:
    """Replace labelled pixels by their one-hot label; autograd then gives them zero gradient."""
    if hard is None:
        return probs
    batch, classes, height, width = probs.shape
    hard = torch.as_tensor(hard, device=probs.device)
    if hard.shape != (batch, height, width):
        raise ValueError(f"hard: expected shape {(batch, height, width)} (from probs), got {tuple(hard.shape)}")
    if hard.is_floating_point():
        raise ValueError(f"hard: expected integer labels, got dtype {hard.dtype}")
    hard = hard.long()
    labelled = hard != UNLABELLED
    if ((hard < 0) | ((hard >= classes) & labelled)).any():
        bad = torch.unique(hard[(hard < 0) | ((hard >= classes) & labelled)])[:5].tolist()
        raise ValueError(f"hard: expected labels in [0, {classes}) or {UNLABELLED} (unlabelled), got values {bad}")
    one_hot = torch.nn.functional.one_hot(torch.where(labelled, hard, 0), classes).permute(0, 3, 1, 2)
    return torch.where(labelled[:, None], one_hot.to(probs.dtype), probs)


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def dense_crf_loss(
    probs: Tensor,
    images: Any = None,
    *,
    sigma_xy: float = 100.0,
    sigma_rgb: float = 15.0,
    formulation: str = "potts",
    hard: Any = None,
    lattices: Sequence[PermutohedralLattice] | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Relaxed dense CRF loss with a Gaussian kernel over position and colour (ADM, Eq. 3).

    ``L = sum_k S_k^T W (1 - S_k)`` (``formulation="potts"``) or the public ``Cut`` layer's
    ``L = -sum_k S_k^T W S_k`` (``"cut"``); see the module docstring for the exact relation and
    the kernel. The gradient is computed in the forward pass from the same filtering (custom
    autograd Function), ``W 1 - 2 W S_k`` resp. ``-2 W S_k``.

    Args:
        probs: ``(B, K, H, W)`` segmentation probabilities S (softmax outputs).
        images: ``(B, C, H, W)`` images; may be None when ``lattices`` is given.
        sigma_xy, sigma_rgb: Gaussian bandwidths (public: 100 and 15, colours 0-255).
        formulation: "potts" or "cut".
        hard: optional ``(B, H, W)`` scribbles, 255 = unlabelled; labelled pixels are clamped to
            their one-hot label and get zero gradient (as the public Cut layer).
        lattices: lattices from :func:`dense_crf_lattices` to reuse (one per image).
        reduction: "mean" over the batch (the public layer divides by the batch size), "sum",
            or "none" for the ``(B,)`` per-image losses.

    Returns:
        A scalar tensor (or ``(B,)`` for ``reduction="none"``).

    Raises:
        ValueError: wrong dims, size mismatch between probs, images, hard and lattices, NaN,
            unknown formulation/reduction, non-positive bandwidths, bad scribble labels.
    """
    probs = _check_probs(probs)
    if formulation not in _FORMULATIONS:
        raise ValueError(f"formulation: expected one of {_FORMULATIONS}, got {formulation!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    batch, _, height, width = probs.shape
    if images is not None:
        images = _check_images(images)
        if images.shape[0] != batch or images.shape[2:] != probs.shape[2:]:
            raise ValueError(
                f"images: expected batch and size {(batch, height, width)} of probs, got shape {tuple(images.shape)}"
            )
    if lattices is None:
        if images is None:
            raise ValueError("images: expected (B, C, H, W) images when no lattices are given, got None")
        lattices = dense_crf_lattices(images, sigma_xy=sigma_xy, sigma_rgb=sigma_rgb)
    elif len(lattices) != batch or any(lattice.num_points != height * width for lattice in lattices):
        raise ValueError(
            f"lattices: expected {batch} lattices over {height * width} pixels, got "
            f"{[lattice.num_points for lattice in lattices]}"
        )
    segmentation = _clamp_scribbles(probs, hard)
    losses = _DenseCRFLossFunction.apply(segmentation, list(lattices), formulation)
    return _reduce(losses, reduction)


# ---------------------------------------------------------------------------------------------
# Grid CRF relaxed loss
# ---------------------------------------------------------------------------------------------
def grid_crf_relaxed_loss(
    probs: Tensor,
    weights: Any,
    *,
    formulation: str = "eq9",
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Quadratic relaxation of the grid CRF for gradient descent (ADM, Eq. 9).

    Sums over the neighbour pairs pq of :data:`NEIGHBOURHOOD_OFFSETS` (each unordered pair once):

    * ``"eq9"`` (default): ``w_pq * (<1, S_p> + <1, S_q> - 2 <S_p, S_q>) / 2`` -- Eq. (9) halved,
      so that on one-hot S it equals the pairwise part of
      :func:`suite.solvers.graphcut.potts_energy` (Eq. 9 itself counts a cut pair twice);
    * ``"squared_distance"``: ``w_pq * ||S_p - S_q||^2 / 2``, the convex variant (same on
      one-hot S, differs for soft S);
    * ``"negative_dot"``: ``-w_pq <S_p, S_q>``, the public ``SparseCutLayer``.

    For probabilities (``<1, S_p> = 1``), eq9 = ``sum w_pq`` + negative_dot: the two differ by
    a constant and have the same gradient. ``normalize=True`` divides each image's sum by its
    number of neighbour pairs, the public layer's normalisation up to its arithmetic (which
    the notes describe as slightly off and which is not reproduced). The public GRID-GD run uses
    negative_dot with weights of ``grid_weights(..., smoothness=1)`` scaled by 3.5 (its
    exp(-dI^2 / sigma) with sigma = 2 * mean is the same kernel).

    Args:
        probs: ``(B, K, H, W)`` probabilities.
        weights: ``(B, D, H, W)`` or ``(D, H, W)`` pair weights (``grid_weights`` layout).
        formulation, normalize, reduction: see above ("mean" over the batch, "sum", "none").

    Returns:
        A scalar tensor (``(B,)`` for "none"), differentiable by autograd.

    Raises:
        ValueError: wrong dims, size mismatch, NaN, negative weights, unknown options.
    """
    probs = _check_probs(probs)
    if formulation not in _GRID_FORMULATIONS:
        raise ValueError(f"formulation: expected one of {_GRID_FORMULATIONS}, got {formulation!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(weights, Tensor):
        weights = torch.as_tensor(np.asarray(weights))
    weights = weights.to(device=probs.device, dtype=probs.dtype)
    batch, _, height, width = probs.shape
    if weights.dim() == 3:
        weights = weights.unsqueeze(0).expand(batch, -1, -1, -1)
    if weights.dim() != 4 or weights.shape[0] != batch or weights.shape[1] not in (2, 4) or weights.shape[2:] != probs.shape[2:]:
        raise ValueError(
            f"weights: expected ({batch}, D, {height}, {width}) or (D, {height}, {width}) with D = 2 or 4, "
            f"got shape {tuple(weights.shape)}"
        )
    if not torch.isfinite(weights).all():
        raise ValueError("weights: expected finite values, got NaN or infinite entries")
    if (weights < 0).any():
        raise ValueError(f"weights: expected non-negative pair weights, got minimum {weights.min().item():g}")
    offsets = NEIGHBOURHOOD_OFFSETS[4 if weights.shape[1] == 2 else 8]
    losses = probs.new_zeros(batch)
    pairs = 0
    for d, (dy, dx) in enumerate(offsets):
        rows_p = slice(max(0, -dy), height - max(0, dy))
        rows_q = slice(max(0, dy), height - max(0, -dy))
        cols_p = slice(max(0, -dx), width - max(0, dx))
        cols_q = slice(max(0, dx), width - max(0, -dx))
        s_p = probs[:, :, rows_p, cols_p]
        s_q = probs[:, :, rows_q, cols_q]
        w = weights[:, d, rows_p, cols_p]
        pairs += w[0].numel()
        if formulation == "eq9":
            term = 0.5 * (s_p.sum(1) + s_q.sum(1)) - (s_p * s_q).sum(1)
        elif formulation == "squared_distance":
            term = 0.5 * ((s_p - s_q) ** 2).sum(1)
        else:
            term = -(s_p * s_q).sum(1)
        losses = losses + (w * term).flatten(1).sum(1)
    if normalize:
        losses = losses / max(pairs, 1)
    return _reduce(losses, reduction)


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------
class DenseCRFLoss(nn.Module):
    """Module form of :func:`dense_crf_loss`; stores the options. ``forward(probs, images, hard=None)``."""

    def __init__(
        self,
        *,
        weight: float = 1.0,
        sigma_xy: float = 100.0,
        sigma_rgb: float = 15.0,
        formulation: str = "potts",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _check_sigma(sigma_xy, "sigma_xy")
        _check_sigma(sigma_rgb, "sigma_rgb")
        if formulation not in _FORMULATIONS:
            raise ValueError(f"formulation: expected one of {_FORMULATIONS}, got {formulation!r}")
        self.weight, self.sigma_xy, self.sigma_rgb = weight, sigma_xy, sigma_rgb
        self.formulation, self.reduction = formulation, reduction

    def forward(self, probs: Tensor, images: Tensor, hard: Any = None) -> Tensor:
        return self.weight * dense_crf_loss(
            probs,
            images,
            sigma_xy=self.sigma_xy,
            sigma_rgb=self.sigma_rgb,
            formulation=self.formulation,
            hard=hard,
            reduction=self.reduction,
        )


class GridCRFLoss(nn.Module):
    """Module form of :func:`grid_crf_relaxed_loss`. ``forward(probs, weights)``.

    ``weight`` multiplies the loss (public GRID-GD: 3.5 with ``formulation="negative_dot"``).
    """

    def __init__(self, *, weight: float = 1.0, formulation: str = "eq9", normalize: bool = False, reduction: str = "mean") -> None:
        super().__init__()
        if formulation not in _GRID_FORMULATIONS:
            raise ValueError(f"formulation: expected one of {_GRID_FORMULATIONS}, got {formulation!r}")
        self.weight, self.formulation, self.normalize, self.reduction = weight, formulation, normalize, reduction

    def forward(self, probs: Tensor, weights: Any) -> Tensor:
        return self.weight * grid_crf_relaxed_loss(
            probs, weights, formulation=self.formulation, normalize=self.normalize, reduction=self.reduction
        )
