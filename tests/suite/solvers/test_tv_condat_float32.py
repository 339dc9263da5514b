"""Regression test: Condat's 1D TV prox in float32 on a signal where rounding once sent it out of bounds.

The signal is one column of a DexiNed+TV side map (``tvlayers.table4`` at mini, seed 0, 480 steps,
TV2D-Sharp, lam = softplus(raw) = 0.0415). In float32, after a jump closed at the right boundary
the algorithm restarted with a stale ``k_plus`` = N-1 beyond k; a dual one ulp above lam then
closed a segment ending at N-1 and restarted at N: the numba kernel read past the signal
(ZeroDivisionError from a garbage segment length, or a segmentation fault). In float64 the same
signal runs through. The reference is the float64 prox of the same (float32) values.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from suite.solvers import tv
from suite.solvers.tv import tv_prox_1d, tv_prox_2d

SIGNAL = [
    -0.23091154, -0.23091154, -0.09561213, -0.18700768, -0.22382359, -0.22382359, -0.2238247, -0.2238247,
    -0.22386299, -0.22386299, -0.22386299, -0.22386299, -0.22376801, -0.22376801, -0.22377653, -0.22377653,
    -0.22346115, -0.22346115, -0.2228231, -0.2228231, -0.21460594, -0.21460594, 0.09562748, -0.12771648,
    -0.2073792, -0.21742898, -0.22207035, -0.22207575, -0.22247717, -0.22247717, -0.2228693, -0.22287335,
    -0.22334439, -0.22334439, -0.22369592, -0.22369592, -0.22399731, -0.22399731, -0.22413842, -0.22413842,
    -0.22428876, -0.22428876, -0.22556628, -0.22556628, -0.22556628, -0.22556628, -0.22556628, -0.22556628,
    -0.22556628, -0.22556628, -0.22556628, -0.22556628, 0.5339339, 0.06839123, 1.8355033, 0.6507414,
    0.6138896, 0.10416516, -0.18407063, -0.18407063, -0.18407063, -0.18407063, -0.22556627, -0.22556627,
]
LAM = 0.04149563983082771  # float32(0.04149564)

BACKENDS = ["torch"] + (["numba"] if tv._numba_kernel() is not None else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_rounding_case_stays_in_bounds_and_matches_float64(backend):
    signal = torch.tensor(SIGNAL, dtype=torch.float32)
    assert signal.dtype == torch.float32 and signal.numel() == 64
    reference = tv_prox_1d(signal.double()[None], torch.tensor([LAM], dtype=torch.float64))[0]
    with tv._force_backend(backend):
        result = tv_prox_1d(signal[None], torch.tensor([LAM], dtype=torch.float32))[0]
    assert torch.isfinite(result).all()
    # float32 against the float64 prox of the same values: a few ulps of the signal's scale.
    assert float((result.double() - reference).abs().max()) < 1e-5
    # The prox keeps the mean (sum of the dual's differences is zero).
    assert abs(float(result.double().mean() - signal.double().mean())) < 1e-6


def test_float32_rounding_case_inside_the_2d_prox():
    # The same signal as every column of a plane: the fused 2D kernel's column pass meets it too.
    plane = torch.tensor(SIGNAL, dtype=torch.float32).view(64, 1).expand(64, 8).contiguous()[None, None]
    result = tv_prox_2d(plane, torch.tensor(LAM, dtype=torch.float32), iters=4)
    reference = tv_prox_2d(plane.double(), torch.tensor(LAM, dtype=torch.float64), iters=4)
    assert torch.isfinite(result).all()
    assert float((result.double() - reference).abs().max()) < 1e-5
