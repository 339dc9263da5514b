"""reproductions.lsm.model: shapes of every task and variant, a float64 gradcheck of the whole
forward pass (directional derivatives w.r.t. the images and two parameter tensors), properties
that follow from the method (identical images give zero displacement; the final solution lies in
the span of the last basis), strict checkpoint loading, bad inputs."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.func import functional_call

from reproductions.lsm.model import (LSM, LSMConfig, TASKS, VARIANTS, build_lsm, integral_average_pool,
                                     model_memory_mb, parameter_count)

TINY = dict(channels=(16, 8, 8, 8), iterations=(1, 2, 1, 1), residual_blocks=1)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these tensors are tiny, and on a loaded machine two spinning OpenMP
    threads made each op 20-100 times slower than one (measured on the shared 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_inputs(task, b=2, h=64, w=64, *, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    other = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    if task == "interactive":
        fg = torch.zeros(b, 1, h, w, dtype=torch.bool)
        bg = torch.zeros(b, 1, h, w, dtype=torch.bool)
        fg[..., h // 3:h // 2, w // 3:w // 2] = True
        bg[..., :3, :] = True
        return {"image": image, "foreground": fg, "background": bg}
    if task == "video":
        refs = torch.rand(b, 2, 3, h, w, generator=g, dtype=dtype)
        masks = (torch.rand(b, 2, 1, h, w, generator=g, dtype=dtype) > 0.5).to(dtype)
        return {"image": image, "reference_images": refs, "reference_masks": masks}
    if task == "stereo":
        return {"target": image, "source": other}
    return {"image1": image, "image2": other}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {v: build_lsm(LSMConfig(**TINY, variant=v)).eval() for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("task", TASKS)
def test_forward_shapes(models, variant, task):
    model = models[variant]
    with torch.no_grad():
        out = model(task, make_inputs(task, h=64, w=96))
    dims = 2 if task == "flow" else 1
    assert out.solution.shape == (2, dims, 64, 96)
    assert torch.isfinite(out.solution).all()
    sizes = [(64 // s, 96 // s) for s in (32, 16, 8, 4)]
    assert [tuple(level.shape) for level in out.levels] == [(2, dims, *s) for s in sizes]
    if variant == "implicit":
        assert out.bases == []
    else:
        expected = [(2, 2, k, *s) if dims == 2 else (2, k, *s) for k, s in zip((2, 4, 8, 16), sizes)]
        assert [tuple(basis.shape) for basis in out.bases] == expected


def test_sizes_that_are_not_multiples_of_32_are_padded(models):
    with torch.no_grad():
        out = models["full"]("flow", make_inputs("flow", b=1, h=40, w=50))
    assert out.solution.shape == (1, 2, 40, 50)
    assert out.levels[-1].shape[-2:] == (16, 16)  # padded to 64 x 64, stride 4


@pytest.mark.parametrize("task", ["stereo", "flow"])
@pytest.mark.parametrize("variant", ["full", "no_min_context", "no_projection"])
def test_identical_images_give_zero_displacement(models, task, variant):
    # F_S = F_T: the data term's gradient vanishes at x = 0, so every step is 0 (Eq. 6 with d = 0, r = 0).
    inputs = make_inputs(task, b=1)
    inputs[list(inputs)[1]] = inputs[list(inputs)[0]]
    with torch.no_grad():
        out = models[variant](task, inputs)
    assert out.solution.abs().max() < 1e-5


@pytest.mark.parametrize("task", TASKS)
def test_finest_level_lies_in_the_span_of_its_last_basis(models, task):
    with torch.no_grad():
        out = models["full"](task, make_inputs(task, b=1))
    x, basis = out.levels[-1].double(), out.bases[-1].double()
    bases = basis if basis.ndim == 5 else basis[:, None]
    for c in range(x.shape[1]):
        v = bases[:, c].flatten(2).transpose(1, 2)  # (1, N, K)
        target = x[:, c].reshape(1, -1, 1)
        fit = v @ torch.linalg.lstsq(v, target).solution
        assert (fit - target).norm() <= 1e-3 * target.norm() + 1e-6


@pytest.mark.parametrize("task", TASKS)
def test_gradcheck_float64(task):
    # The whole forward/backward in float64: directional derivatives along a random perturbation
    # of the input image and of two parameter tensors (finest generator head, a backbone conv),
    # seen through two random projections of the solution.
    torch.manual_seed(1)
    model = build_lsm(LSMConfig(channels=(8, 8, 8, 8), iterations=(1, 1, 1, 2), residual_blocks=1,
                                ridge=1e-3)).double().eval()
    inputs = make_inputs(task, b=1, h=32, w=32, seed=2, dtype=torch.float64)
    key = list(inputs)[0]
    names = ["generators.3.head.weight", "pyramid.backbone.layer3.0.conv1.weight"]
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(3)
    direction = torch.randn(inputs[key].shape, generator=g, dtype=torch.float64) * 0.01
    pdirs = [torch.randn(params[n].shape, generator=g, dtype=torch.float64) * 0.01 for n in names]
    dims = 2 if task == "flow" else 1
    projections = torch.randn(2, 1, dims, 32, 32, generator=g, dtype=torch.float64) / 32

    def run(t):
        ins = dict(inputs)
        ins[key] = inputs[key] + t[0] * direction
        weights = {n: params[n] + t[i + 1] * pdirs[i] for i, n in enumerate(names)}
        solution = functional_call(model, weights, (task, ins)).solution
        return (solution.unsqueeze(0) * projections).flatten(1).sum(1)

    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pseudo-inverse fallback: the damping keeps V'DV definite
        assert torch.autograd.gradcheck(run, (t,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_lsm(LSMConfig(**TINY))
    # b = 2: BatchNorm in training mode needs more than one value per channel at the 1 x 1 level
    loss = sum(model(task, make_inputs(task, b=2, h=32, w=32)).solution.square().mean() for task in TASKS)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_integral_average_pool_matches_avg_pool():
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    for k in (1, 3, 5, 23):
        expected = torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False) \
            if k // 2 <= min(x.shape[-2:]) // 2 else None
        out = integral_average_pool(x, k)
        assert out.shape == x.shape
        if expected is not None:
            torch.testing.assert_close(out, expected)
    # a window larger than the image averages the whole image
    torch.testing.assert_close(integral_average_pool(x, 23), x.mean((-2, -1), keepdim=True).expand_as(x))


def test_full_config_size():
    model = build_lsm(LSMConfig())
    count = parameter_count(model)
    assert model.initialization == "random init"
    # the paper: "about 15M parameters", 57.26 MB; ours is the same architecture, measured
    assert 12e6 < count < 16e6
    assert model_memory_mb(model) == pytest.approx(count * 4 / 2 ** 20, rel=0.01)


def test_checkpoint_loads_strictly(tmp_path, models):
    model = models["full"]
    path = tmp_path / "lsm.pt"
    torch.save({"state": model.state_dict()}, path)
    loaded = build_lsm(LSMConfig(**TINY), checkpoint=str(path)).eval()
    assert loaded.initialization.startswith("checkpoint")
    inputs = make_inputs("stereo", b=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded("stereo", inputs).solution, model("stereo", inputs).solution)
    state = model.state_dict()
    broken = {k: v for k, v in state.items() if not k.startswith("generators.0.head")}
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(ValueError, match=r"missing keys \['generators.0.head.bias'.*unexpected keys \['extra"):
        build_lsm(LSMConfig(**TINY), checkpoint=str(path))
    with pytest.raises(ValueError, match="shape mismatches"):
        torch.save(state, path)
        build_lsm(LSMConfig(**TINY, subspace_dims=(2, 4, 8, 12)), checkpoint=str(path))
    with pytest.raises(ValueError, match="not found"):
        build_lsm(LSMConfig(**TINY), checkpoint=str(tmp_path / "absent.pt"))


def test_backbone_checkpoint_skips_only_drn_extras(tmp_path, models):
    backbone = models["full"].pyramid.backbone.state_dict()
    drn = {**backbone, "fc.weight": torch.zeros(10, 8), "layer7.0.weight": torch.zeros(1)}
    path = tmp_path / "drn.pt"
    torch.save(drn, path)
    model = build_lsm(LSMConfig(**TINY), backbone_checkpoint=str(path))
    assert "backbone from drn.pt" in model.initialization
    torch.save({**drn, "layer9.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"unexpected keys \['layer9.weight'\]"):
        build_lsm(LSMConfig(**TINY), backbone_checkpoint=str(path))


def test_bad_inputs(models):
    model = models["full"]
    good = make_inputs("interactive", b=1, h=32, w=32)
    with pytest.raises(ValueError, match="task: expected one of"):
        model("segmentation", good)
    with pytest.raises(ValueError, match=r"missing \['background'\]"):
        model("interactive", {k: v for k, v in good.items() if k != "background"})
    with pytest.raises(ValueError, match=r"inputs\['foreground'\]: expected a bool tensor"):
        model("interactive", {**good, "foreground": good["foreground"].float()})
    with pytest.raises(ValueError, match=r"inputs\['image'\]: expected a float tensor \(B, 3, H, W\)"):
        model("interactive", {**good, "image": good["image"][:, :1]})
    nan = good["image"].clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="expected finite values"):
        model("interactive", {**good, "image": nan})
    stereo = make_inputs("stereo", b=1, h=32, w=32)
    with pytest.raises(ValueError, match=r"inputs\['source'\]: expected the shape"):
        model("stereo", {**stereo, "source": stereo["source"][..., :16]})
    video = make_inputs("video", b=1, h=32, w=32)
    with pytest.raises(ValueError, match=r"inputs\['reference_masks'\]: expected a float tensor of shape"):
        model("video", {**video, "reference_masks": video["reference_masks"][:, :1]})
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model("video", {**video, "reference_masks": video["reference_masks"] * 2})


def test_bad_config():
    with pytest.raises(ValueError, match="variant: expected one of"):
        LSMConfig(variant="cnn")
    with pytest.raises(ValueError, match="channels: expected 4 values"):
        LSMConfig(channels=(64, 32, 16))
    with pytest.raises(ValueError, match="multiples of group_divisor"):
        LSMConfig(channels=(12, 8, 8, 8))
    with pytest.raises(ValueError, match="config: expected an LSMConfig"):
        LSM({"channels": (8, 8, 8, 8)})
    assert LSMConfig(channels=[16, 8, 8, 8]).channels == (16, 8, 8, 8)  # lists from settings work


def test_flow_system_option_changes_the_solve_only():
    # "joint" (the coupled 2K x 2K system over V_x x V_y) and "cramer" (the paper) share every
    # parameter; with the same weights they give different (both finite) flows.
    torch.manual_seed(0)
    cramer = build_lsm(LSMConfig(**TINY)).eval()
    joint = build_lsm(LSMConfig(**TINY, flow_system="joint")).eval()
    joint.load_state_dict(cramer.state_dict())
    inputs = make_inputs("flow", b=1)
    with torch.no_grad():
        a, b = cramer("flow", inputs).solution, joint("flow", inputs).solution
    assert torch.isfinite(b).all() and (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("task", ["stereo", "flow"])
def test_inputs_are_value_checked_once_per_forward(monkeypatch, task):
    # The solver's value checks (a host sync each) ran at every LSM iteration; the model checks
    # its inputs once at the entry and calls the solver with check_values=False: the number of
    # isfinite calls does not grow with the iterations.
    import suite.solvers.subspace as solver

    counts = {}
    real = torch.isfinite

    def counting(*args, **kwargs):
        counts["n"] = counts.get("n", 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "isfinite", counting)
    calls = []
    real_step = solver.subspace_step
    monkeypatch.setattr("reproductions.lsm.model.subspace_step",
                        lambda *a, **k: calls.append(k.get("check_values", True)) or real_step(*a, **k))
    seen = []
    for iterations in ((1, 1, 1, 1), (1, 3, 3, 3)):
        torch.manual_seed(0)
        model = build_lsm(LSMConfig(**{**TINY, "iterations": iterations})).eval()
        counts["n"] = 0
        with torch.no_grad():
            model(task, make_inputs(task, b=1, h=64, w=64))
        seen.append(counts["n"])
    assert seen[0] == seen[1] >= 1, seen
    assert calls and not any(calls)
