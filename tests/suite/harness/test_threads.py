import pytest
import torch

from suite.harness.threads import limit_threads


def test_limit_threads_sets_and_restores_both_pools():
    numba = pytest.importorskip("numba")
    torch_before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    with limit_threads(torch_threads=1, numba_threads=1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert torch.get_num_threads() == torch_before and numba.get_num_threads() == numba_before


def test_limit_threads_restores_after_an_error_and_leaves_unset_pools():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with limit_threads(torch_threads=1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with limit_threads(torch_threads=None):
        assert torch.get_num_threads() == before
