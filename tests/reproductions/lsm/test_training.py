"""reproductions.lsm.training: a smoke joint training run (finite losses that go down on a trivially
learnable batch), the optimizer and schedule of Sec. 4.1, and a killed training that resumes from
its checkpoint to exactly the state of an uninterrupted one."""
from __future__ import annotations

import math

import pytest
import torch

from reproductions.lsm.model import LSMConfig, build_lsm
from reproductions.lsm.training import train_lsm
from suite.harness.trained import Checkpoint

TINY = dict(channels=(8, 8, 8, 8), iterations=(1, 1, 1, 1), residual_blocks=1)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these tensors are tiny, and on a loaded machine two spinning OpenMP
    threads made each op 20-100 times slower than one (measured on the shared 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
SIZE = 32


def stereo_sampler(generator):
    """A random texture and its copy shifted by 2 px: target(p) = source(p + 2), u = 2."""
    texture = torch.rand(2, 3, SIZE, SIZE + 2, generator=generator)
    target, source = texture[..., 2:], texture[..., :-2]
    u = torch.full((2, 1, SIZE, SIZE), 2.0)
    valid = torch.ones(2, 1, SIZE, SIZE, dtype=torch.bool)
    return {"target": target, "source": source}, {"disparity": u, "valid": valid}


def interactive_sampler(generator):
    """A bright square on a dark background, a scribble inside and one outside."""
    image = 0.1 * torch.rand(2, 3, SIZE, SIZE, generator=generator)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[..., 8:24, 8:24] = 1.0
    image = image + 0.8 * mask
    fg = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    bg = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    fg[..., 14:18, 12:20] = True
    bg[..., 2:4, :] = True
    inputs = {"image": image, "foreground": fg, "background": bg}
    return inputs, {"mask": mask, "valid": torch.ones(2, 1, SIZE, SIZE, dtype=torch.bool)}


SAMPLERS = {"interactive": interactive_sampler, "stereo": stereo_sampler}


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return build_lsm(LSMConfig(**TINY))


def test_smoke_joint_training_reduces_the_loss():
    model = fresh_model()
    history = train_lsm(model, SAMPLERS, iterations=12, lr=3e-3, seed=0, device="cpu")
    assert history["iterations"] == 12 and history["tasks"] == ["interactive", "stereo"]
    assert all(math.isfinite(v) for v in history["total"])
    for task in SAMPLERS:
        curve = history["loss"][task]
        assert len(curve) == 12
        assert sum(curve[-3:]) < sum(curve[:3]), (task, curve)
    assert history["seconds_per_step"] > 0 and history["threads"] >= 1
    # cosine decay without restarts from the base rate
    assert history["lr"][0] == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(history["lr"], history["lr"][1:]))
    assert not model.training


def test_killed_training_resumes_to_the_same_state(tmp_path):
    reference = fresh_model()
    full = train_lsm(reference, SAMPLERS, iterations=4, seed=3, device="cpu")

    class Killed(Exception):
        pass

    calls = {"n": 0}

    def dying(generator):
        calls["n"] += 1
        if calls["n"] == 4:  # inside step 3 (2 samplers per step): after the step-2 checkpoint
            raise Killed
        return stereo_sampler(generator)

    checkpoint = Checkpoint(tmp_path / "lsm.ckpt.pt", every_seconds=1e9, every_steps=2)
    with pytest.raises(Killed):
        train_lsm(fresh_model(), {"interactive": interactive_sampler, "stereo": dying}, iterations=4, seed=3,
                  device="cpu", checkpoint=checkpoint)
    assert checkpoint.saves == 1 and checkpoint.load()["step"] == 2
    resumed_model = fresh_model(seed=99)  # whatever its init: the checkpoint overrides it
    resumed = train_lsm(resumed_model, SAMPLERS, iterations=4, seed=3, device="cpu",
                        checkpoint=Checkpoint(tmp_path / "lsm.ckpt.pt", every_seconds=1e9, every_steps=2))
    assert resumed["iterations"] == 4
    for task in SAMPLERS:
        assert resumed["loss"][task] == pytest.approx(full["loss"][task], rel=1e-6)
    for (name, a), b in zip(reference.state_dict().items(), resumed_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


def test_bad_arguments():
    model = fresh_model()
    with pytest.raises(ValueError, match="samplers: unknown task"):
        train_lsm(model, {"depth": stereo_sampler}, iterations=1, seed=0)
    with pytest.raises(ValueError, match="samplers: expected a non-empty dict"):
        train_lsm(model, {}, iterations=1, seed=0)
    with pytest.raises(ValueError, match="iterations: expected an integer"):
        train_lsm(model, SAMPLERS, iterations=-1, seed=0)
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        train_lsm(model, SAMPLERS, iterations=1, lr=float("nan"), seed=0)
