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
    # one phase-2 model per candidate weight of the search (x0.3, x1 at smoke)
    for factor in ctx.settings["weight_search"]:
        assert any(n.startswith(f"mini-LargeFOV-grid-adm-x{factor:g}-len1-") for n in files)
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


def test_weights_are_chosen_on_held_out_images_never_trained_on(adm_env, monkeypatch):
    ctx = make_context()
    selection = training.select_weight(ctx, network="mini-LargeFOV", method="dense-gd")
    factors = [c["factor"] for c in selection["candidates"]]
    assert factors == ctx.settings["weight_search"] and selection["heldout_images"] == ctx.settings["heldout_images"]
    best = max(selection["candidates"], key=lambda c: c["heldout_miou"])
    assert selection["chosen"] == best["factor"] or best["heldout_miou"] == next(
        c["heldout_miou"] for c in selection["candidates"] if c["factor"] == selection["chosen"])
    base = ctx.settings["dense_gd"]["weight"]
    assert selection["weight"] == pytest.approx(base * selection["chosen"])
    # the model behind the records is the chosen candidate's cached model
    chosen = training.trained_model(ctx, network="mini-LargeFOV", method="dense-gd")
    again = training.trained_model(ctx, network="mini-LargeFOV", method="dense-gd", factor=selection["chosen"])
    assert again.cached and _states_equal(chosen.model, again.model)
    assert chosen.history["factor"] == selection["chosen"]
    # neither a held-out image nor a validation image is ever trained on
    heldout = set(training.heldout_set(ctx).names)
    val = set(training.evaluation_set(ctx).names)
    assert len(heldout) == ctx.settings["heldout_images"]
    for length in (1.0, 0.0):
        trained_on = set(training.training_set(ctx, length=length).names)
        assert trained_on and not trained_on & heldout and not trained_on & val
    assert not set(chosen.history["train_names"]) & (heldout | val)


def test_selection_with_one_candidate_trains_nothing_extra(adm_env):
    ctx = make_context(weight_search=[1.0], heldout_images=0)
    selection = training.select_weight(ctx, network="mini-ASPP", method="grid-gd")
    assert selection["chosen"] == 1.0 and selection["heldout_images"] == 0
    assert not list(training.cache_root().glob("mini-ASPP-grid-gd-*"))


def test_trimap_bands_scale_with_the_image():
    assert training.trimap_width(16, (375, 500), reference=None) == 16
    assert training.trimap_width(16, (128, 128), reference=500) == 4
    assert training.trimap_width(8, (128, 128), reference=500) == 2
    assert training.trimap_width(8, (32, 32), reference=500) == 1
