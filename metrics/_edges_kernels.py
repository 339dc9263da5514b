"""Compiled kernels of the boundary benchmark: thinning and the exact pixel matching.

Both are plain loops compiled with numba when it is installed (and run, slowly, as
Python otherwise). They are exact: integer costs, no randomness.
"""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; keep the code importable
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda function: function


def _guo_hall_luts() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two Guo-Hall sub-iterations (MATLAB ``bwmorph thin``).

    Index bits: neighbours x1..x8 counter-clockwise from east (x1 = E, x2 = NE, x3 = N,
    x4 = NW, x5 = W, x6 = SW, x7 = S, x8 = SE), bit k-1 for x_k. Conditions (Guo & Hall,
    CACM 1989, algorithm A1, as documented for ``bwmorph``):
    G1: crossing number X_H = 1; G2: 2 <= min(n1, n2) <= 3; G3: (x2 | x3 | ~x8) & x1 = 0
    (first sub-iteration); G3': (x6 | x7 | ~x4) & x5 = 0 (second).
    """
    first = np.zeros(256, dtype=np.bool_)
    second = np.zeros(256, dtype=np.bool_)
    for index in range(256):
        x = [(index >> k) & 1 for k in range(8)]  # x[0] = x1 ... x[7] = x8

        def at(k: int) -> int:  # 1-based, cyclic
            return x[(k - 1) % 8]

        crossing = sum(1 for i in range(1, 5) if at(2 * i - 1) == 0 and (at(2 * i) or at(2 * i + 1)))
        n1 = sum(1 for k in range(1, 5) if at(2 * k - 1) or at(2 * k))
        n2 = sum(1 for k in range(1, 5) if at(2 * k) or at(2 * k + 1))
        g12 = crossing == 1 and 2 <= min(n1, n2) <= 3
        g3 = ((at(2) or at(3) or not at(8)) and at(1)) == 0
        g3p = ((at(6) or at(7) or not at(4)) and at(5)) == 0
        first[index] = g12 and g3
        second[index] = g12 and g3p
    return first, second


_LUT_FIRST, _LUT_SECOND = _guo_hall_luts()


@njit(cache=True)
def _thin_pass(image, lut, flags):
    height, width = image.shape
    changed = False
    for y in range(height):
        for x in range(width):
            flags[y, x] = False
            if not image[y, x]:
                continue
            index = 0
            # x1 = E, x2 = NE, x3 = N, x4 = NW, x5 = W, x6 = SW, x7 = S, x8 = SE
            if x + 1 < width and image[y, x + 1]:
                index |= 1
            if y > 0 and x + 1 < width and image[y - 1, x + 1]:
                index |= 2
            if y > 0 and image[y - 1, x]:
                index |= 4
            if y > 0 and x > 0 and image[y - 1, x - 1]:
                index |= 8
            if x > 0 and image[y, x - 1]:
                index |= 16
            if y + 1 < height and x > 0 and image[y + 1, x - 1]:
                index |= 32
            if y + 1 < height and image[y + 1, x]:
                index |= 64
            if y + 1 < height and x + 1 < width and image[y + 1, x + 1]:
                index |= 128
            if lut[index]:
                flags[y, x] = True
                changed = True
    if changed:
        for y in range(height):
            for x in range(width):
                if flags[y, x]:
                    image[y, x] = False
    return changed


@njit(cache=True)
def _thin(image, first, second):
    flags = np.zeros(image.shape, dtype=np.bool_)
    while True:
        a = _thin_pass(image, first, flags)
        b = _thin_pass(image, second, flags)
        if not a and not b:
            return image


def thin(image: np.ndarray) -> np.ndarray:
    """Thin a binary image until it stops changing (``bwmorph(image, 'thin', inf)``)."""
    return _thin(np.array(image, dtype=np.bool_, copy=True), _LUT_FIRST, _LUT_SECOND)


@njit(cache=True)
def _match_kernel(pred, gt, off_y, off_x, off_cost, outlier):
    """Optimal BSDS matching; returns (pred_partner, gt_partner) as flat pixel indices or -1.

    Assignment of every predicted pixel (row) to a GT pixel at cost rint(100 d) or to its
    private "unmatched" column at cost ``outlier``; GT pixels left over are unmatched.
    Minimising this equals match.cc's objective (sum of real costs + outlier cost per
    unmatched node of either side + one per outlier-outlier pair = per matched pair).
    Solved by successive shortest augmenting paths (Dijkstra with dual potentials, as in
    Crouse's LAPJV variant used by scipy) on the sparse graph.
    """
    height, width = pred.shape
    n_pixels = height * width
    gt_node = -np.ones(n_pixels, dtype=np.int64)
    n2 = 0
    for p in range(n_pixels):
        if gt.flat[p]:
            gt_node[p] = n2
            n2 += 1
    gt_pixel = np.empty(n2, dtype=np.int64)
    for p in range(n_pixels):
        if gt_node[p] >= 0:
            gt_pixel[gt_node[p]] = p
    # CSR adjacency of predicted pixels that have at least one candidate partner.
    n_off = off_y.size
    rows_pixel = []
    indptr = [0]
    indices = []
    weights = []
    for y in range(height):
        for x in range(width):
            if not pred[y, x]:
                continue
            count = 0
            for k in range(n_off):
                ty = y + off_y[k]
                tx = x + off_x[k]
                if ty < 0 or ty >= height or tx < 0 or tx >= width:
                    continue
                node = gt_node[ty * width + tx]
                if node >= 0:
                    indices.append(node)
                    weights.append(off_cost[k])
                    count += 1
            if count > 0:
                rows_pixel.append(y * width + x)
                indptr.append(indptr[-1] + count)
    n1 = len(rows_pixel)
    pred_partner = -np.ones(n_pixels, dtype=np.int64)
    gt_partner = -np.ones(n_pixels, dtype=np.int64)
    if n1 == 0:
        return pred_partner, gt_partner
    ptr = np.array(indptr, dtype=np.int64)
    col = np.array(indices, dtype=np.int64)
    cost = np.array(weights, dtype=np.int64)
    n_cols = n2 + n1  # real GT columns, then one private "unmatched" column per row
    big = np.int64(1) << 60
    u = np.zeros(n1, dtype=np.int64)
    v = np.zeros(n_cols, dtype=np.int64)
    col4row = -np.ones(n1, dtype=np.int64)
    row4col = -np.ones(n_cols, dtype=np.int64)
    shortest = np.full(n_cols, big, dtype=np.int64)
    path = -np.ones(n_cols, dtype=np.int64)
    scanned_col = np.zeros(n_cols, dtype=np.bool_)
    touched = np.empty(n_cols, dtype=np.int64)
    scanned_rows = np.empty(n1, dtype=np.int64)
    for current in range(n1):
        n_touched = 0
        n_scanned_rows = 0
        min_val = np.int64(0)
        row = current
        sink = -1
        while sink == -1:
            scanned_rows[n_scanned_rows] = row
            n_scanned_rows += 1
            base = min_val - u[row]
            for e in range(ptr[row], ptr[row + 1] + 1):
                if e < ptr[row + 1]:
                    j = col[e]
                    w = cost[e]
                else:
                    j = n2 + row
                    w = outlier
                if scanned_col[j]:
                    continue
                reduced = base + w - v[j]
                if reduced < shortest[j]:
                    if shortest[j] == big:
                        touched[n_touched] = j
                        n_touched += 1
                    shortest[j] = reduced
                    path[j] = row
            lowest = big
            best = -1
            for t in range(n_touched):
                j = touched[t]
                if scanned_col[j]:
                    continue
                s = shortest[j]
                if s < lowest or (s == lowest and row4col[j] == -1 and best >= 0 and row4col[best] != -1):
                    lowest = s
                    best = j
            min_val = lowest
            scanned_col[best] = True
            if row4col[best] == -1:
                sink = best
            else:
                row = row4col[best]
        # Dual update (scanned rows and columns), then augment along the path.
        u[current] += min_val
        for t in range(n_scanned_rows):
            i = scanned_rows[t]
            if i != current:
                u[i] += min_val - shortest[col4row[i]]
        for t in range(n_touched):
            j = touched[t]
            if scanned_col[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == current:
                break
        for t in range(n_touched):
            j = touched[t]
            shortest[j] = big
            scanned_col[j] = False
            path[j] = -1
    for i in range(n1):
        j = col4row[i]
        if j < n2:
            pred_partner[rows_pixel[i]] = gt_pixel[j]
            gt_partner[gt_pixel[j]] = rows_pixel[i]
    return pred_partner, gt_partner
