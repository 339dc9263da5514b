"""The trained-model cache: load instead of retrain, resume a killed training, never trust a bad file."""
from __future__ import annotations

import pytest
import torch

from suite.harness import trained


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYBENCH_CACHE", str(tmp_path))


def _counting_train(calls, steps=5, die_at=None):
    def train(checkpoint):
        state = checkpoint.load() or {"step": 0, "total": torch.zeros(())}
        calls.append(state["step"])
        for step in range(state["step"], steps):
            if die_at is not None and step == die_at:
                raise KeyboardInterrupt
            state = {"step": step + 1, "total": state["total"] + step}
            checkpoint.save(state)
        return {"state": {"total": state["total"]}, "history": {"steps": state["step"]}}
    return train


def test_second_call_loads_the_cached_result():
    calls = []
    payload = {"seed": 0, "lr": 1e-3}
    first, cached = trained.cached_training(namespace="t", name="m", payload=payload, train=_counting_train(calls))
    assert not cached and calls == [0]
    second, cached = trained.cached_training(namespace="t", name="m", payload=payload, train=_counting_train(calls))
    assert cached and calls == [0]
    assert float(second["state"]["total"]) == float(first["state"]["total"]) == 0 + 1 + 2 + 3 + 4


def test_a_different_payload_trains_again():
    calls = []
    trained.cached_training(namespace="t", name="m", payload={"seed": 0}, train=_counting_train(calls))
    trained.cached_training(namespace="t", name="m", payload={"seed": 1}, train=_counting_train(calls))
    assert calls == [0, 0]


def test_a_killed_training_resumes_from_its_checkpoint():
    calls = []
    with pytest.raises(KeyboardInterrupt):
        trained.cached_training(namespace="t", name="m", payload={}, train=_counting_train(calls, die_at=3))
    result, cached = trained.cached_training(namespace="t", name="m", payload={}, train=_counting_train(calls))
    assert calls == [0, 3] and not cached
    assert float(result["state"]["total"]) == 10
    assert not list(trained.cache_root("t").glob("*.ckpt.pt")), "the checkpoint is removed once the result is stored"


def test_a_corrupt_result_is_retrained_with_a_warning():
    calls = []
    trained.cached_training(namespace="t", name="m", payload={}, train=_counting_train(calls))
    (final,) = [p for p in trained.cache_root("t").glob("m-*.pt")]
    final.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        result, cached = trained.cached_training(namespace="t", name="m", payload={}, train=_counting_train(calls))
    assert not cached and calls == [0, 0] and float(result["state"]["total"]) == 10


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="namespace"):
        trained.cache_root("../x")
    with pytest.raises(ValueError, match="name"):
        trained.cached_training(namespace="t", name="a/b", payload={}, train=lambda c: {})


def test_save_training_and_resume_restore_model_optimizer_and_scheduler(tmp_path):
    def parts():
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return model, optimizer, scheduler

    model, optimizer, scheduler = parts()
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    checkpoint = trained.Checkpoint(tmp_path / "c.pt")
    assert checkpoint.resume(*parts()) is None
    checkpoint.save_training(step=7, model=model, optimizer=optimizer, scheduler=scheduler, history=[1, 2])
    fresh, fresh_optimizer, fresh_scheduler = parts()
    state = checkpoint.resume(fresh, fresh_optimizer, fresh_scheduler)
    assert state["step"] == 7 and state["history"] == [1, 2]
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr() == [0.05]
    assert fresh_optimizer.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
