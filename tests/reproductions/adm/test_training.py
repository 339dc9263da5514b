"""Two-phase training and the model cache: determinism, sharing, safety across processes."""
from __future__ import annotations

import multiprocessing
import os

import pytest
import torch

from reproductions.adm import training
from tests.reproductions.adm.conftest import make_context


def _states_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_phase_two_starts_from_the_cached_phase_one_model(adm_env, tmp_path):
    ctx = make_context()
    adm = training.trained_model(ctx, network="mini-LargeFOV", method="grid-adm")
    files = sorted(p.name for p in training.cache_root().glob("*.pt"))
    assert any(n.startswith("mini-LargeFOV-pce-len1-") for n in files)
    assert any(n.startswith("mini-LargeFOV-grid-adm-len1-") for n in files)
    # The figure network's grid methods keep the Fig. 3 curve: step 0 (the pCE start) and every step after.
    steps = [p["step"] for p in adm.history["curve"]]
    assert steps == list(range(0, ctx.settings["phase2_iterations"] + 1))
    gd = training.trained_model(ctx, network="mini-LargeFOV", method="grid-gd")
    assert gd.history["curve"][0] == adm.history["curve"][0]  # the same phase-1 weights
    again = training.trained_model(ctx, network="mini-LargeFOV", method="grid-adm")
    assert again.cached and _states_equal(again.model, adm.model)


def test_training_is_deterministic_from_the_seed(adm_env, tmp_path, monkeypatch):
    ctx = make_context()
    first = training.trained_model(ctx, network="mini-ASPP", method="proposals")
    monkeypatch.setenv("ENERGYBENCH_ADM_CACHE", str(tmp_path / "other-cache"))
    second = training.trained_model(ctx, network="mini-ASPP", method="proposals")
    assert not second.cached and _states_equal(first.model, second.model)
    other_seed = training.trained_model(make_context(seed=1), network="mini-ASPP", method="proposals")
    assert not _states_equal(first.model, other_seed.model)


def test_evaluation_is_cached_and_in_range(adm_env):
    ctx = make_context()
    result = training.evaluation(ctx, network="mini-LargeFOV", method="dense-gd")
    val = result["val"]
    for key in ("miou", "accuracy", "trimap16", "trimap8"):
        assert val[key] is None or 0.0 <= val[key] <= 100.0
    assert val["grid_crf_loss"] >= 0 and result["train_subset"]["n"] >= 1
    assert training.evaluation(ctx, network="mini-LargeFOV", method="dense-gd") == result


def _train_in_child(env, queue):
    os.environ.update(env)
    from tests.reproductions.adm.conftest import make_context as context

    trained = training.trained_model(context(), network="mini-LargeFOV", method="pce")
    queue.put((trained.cached, {k: v.tolist() for k, v in trained.model.state_dict().items()}))


@pytest.mark.slow
def test_two_processes_share_one_cached_model(adm_env, tmp_path):
    """Two processes asking for the same model at once: one trains, the other waits and loads."""
    env = {k: os.environ[k] for k in ("ENERGYBENCH_DATA", "ENERGYBENCH_ADM_CACHE", "ENERGYBENCH_CACHE")}
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    children = [context.Process(target=_train_in_child, args=(env, queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sorted(cached for cached, _ in results) == [False, True]
    assert results[0][1] == results[1][1]
    assert len(list(training.cache_root().glob("mini-LargeFOV-pce-*.pt"))) == 1
    assert not list(training.cache_root().glob("*.tmp"))
