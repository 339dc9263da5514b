import pytest
import torch

from suite.harness.threads import limit_threads


def test_limit_threads_sets_and_restores_both_pools():
    numba = pytest.importorskip("numba")
    from numba.np.ufunc import parallel

    started = parallel._is_initialized
    torch_before = torch.get_num_threads()
    with limit_threads(torch_threads=1, numba_threads=1):
        assert torch.get_num_threads() == 1
        if started:
            assert numba.get_num_threads() == 1
    assert torch.get_num_threads() == torch_before
    # numba's threading layer (a second OpenMP runtime beside torch's) is never started by it.
    assert parallel._is_initialized == started


def test_limit_threads_limits_a_started_numba_pool():
    # In a fresh process: start numba's pool, then limit and restore it.
    import subprocess
    import sys

    script = (
        "import numba\n"
        "from suite.harness.threads import limit_threads\n"
        "before = numba.get_num_threads()\n"
        "with limit_threads(numba_threads=1):\n"
        "    assert numba.get_num_threads() == 1\n"
        "assert numba.get_num_threads() == before\n"
    )
    pytest.importorskip("numba")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_limit_threads_restores_after_an_error_and_leaves_unset_pools():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with limit_threads(torch_threads=1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with limit_threads(torch_threads=None):
        assert torch.get_num_threads() == before
