"""tvlayers.table6 (colour denoising, DnCNN vs DnCNN+TV): the TV placement of Eq. 14, KAIR's network and
training batches, a resumable training, the PSNR protocol on a worked example, the train/test
disjointness on the real samples, and smoke runs end to end (generated stand-ins and real data)."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from reproductions.tvlayers import dncnn, table6
from suite.solvers.tv import TVLayer, tv_prox_2d


# ------------------------------------------------------------------------------------------- Eq. 13-14
def test_dncnn_tv_has_trainable_tv2d_smooth_layers_at_input_and_output():
    model = dncnn.DnCNN(3, depth=4, width=8, tv=True, lam_init=0.05)
    for layer in (model.tv_in, model.tv_out):
        assert isinstance(layer, TVLayer)
        assert (layer.mode, layer.direction, layer.channels, layer.shared) == ("smooth", "2d", 3, False)
        assert layer.lam_raw.requires_grad
        assert torch.allclose(layer.lam, torch.full((3,), 0.05))
    names = {n for n, _ in model.named_parameters()}
    assert {"tv_in.lam_raw", "tv_out.lam_raw"} <= names
    plain = dncnn.DnCNN(3, depth=4, width=8, tv=False)
    assert not any("lam" in n for n, _ in plain.named_parameters())


def test_forward_is_eq14_output_tv_on_the_final_estimate():
    torch.manual_seed(0)
    model = dncnn.DnCNN(3, depth=4, width=8, tv=True, lam_init=0.05).double().eval()
    with torch.no_grad():
        model.tv_in.lam_raw.fill_(math.log(math.expm1(0.03)))  # lam_in = 0.03 != lam_out = 0.05
    noisy = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        out = model(noisy)
        lam_in, lam_out = model.tv_in.lam, model.tv_out.lam
        tilde = tv_prox_2d(noisy, lam_in, iters=4)
        estimate = tilde - model.body(tilde)  # R(I~) + I~ with R = -body (KAIR returns x - n)
        expected = tv_prox_2d(estimate, lam_out, iters=4)
        on_residual = tilde + tv_prox_2d(-model.body(tilde), lam_out, iters=4)
    assert torch.allclose(out, expected, atol=1e-12)
    assert not torch.allclose(out, on_residual, atol=1e-6)  # the prox of the residual is another model
    stages = model.stages(noisy)
    assert torch.allclose(stages["input_tv"], tilde, atol=1e-12)
    assert torch.allclose(stages["estimate"], estimate, atol=1e-12)


def test_dncnn_without_tv_is_eq13_residual_learning():
    torch.manual_seed(0)
    model = dncnn.DnCNN(3, depth=3, width=4).eval()
    noisy = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(model(noisy), noisy - model.body(noisy))


def test_both_lambdas_get_gradients_in_training():
    torch.manual_seed(0)
    model = dncnn.DnCNN(3, depth=3, width=4, tv=True, lam_init=0.02)
    clean = torch.rand(2, 3, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    nn.L1Loss()(model(noisy), clean).backward()
    for layer in (model.tv_in, model.tv_out):
        assert layer.lam_raw.grad is not None and torch.isfinite(layer.lam_raw.grad).all()
        assert layer.lam_raw.grad.abs().sum() > 0


def test_body_is_kairs_dncnn():
    body = dncnn.dncnn_body(3, depth=17, width=16)
    convs = [m for m in body if isinstance(m, nn.Conv2d)]
    norms = [m for m in body if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 17 and len(norms) == 15  # nb = 17: head and tail without batch norm
    assert (convs[0].in_channels, convs[-1].out_channels) == (3, 3)
    assert all(m.kernel_size == (3, 3) and m.padding == (1, 1) and m.bias is not None for m in convs)
    assert all(m.momentum == 0.9 and m.eps == 1e-4 for m in norms)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in convs)
    assert all(0.1 <= float(m.weight.detach().min()) and float(m.weight.detach().max()) <= 1.0 for m in norms)
    with pytest.raises(ValueError, match="depth"):
        dncnn.dncnn_body(3, depth=2)


def test_same_seed_same_initial_body_for_both_models():
    settings = table6.PROFILES["smoke"]
    plain = table6.build_model("DnCNN", settings, seed=3)
    with_tv = table6.build_model("DnCNNTV", settings, seed=3)
    for (name, a), b in zip(plain.body.state_dict().items(), with_tv.body.state_dict().values()):
        assert torch.equal(a, b), name
    other = table6.build_model("DnCNN", settings, seed=4)
    assert not torch.equal(plain.body[0].weight, other.body[0].weight)
    with pytest.raises(ValueError, match="model"):
        table6.build_model("DnCNN+TV", settings, seed=0)


def test_denoise_rejects_bad_input():
    model = dncnn.DnCNN(3, depth=3, width=4)
    with pytest.raises(ValueError, match="noisy"):
        model(torch.rand(3, 8, 8))


# ------------------------------------------------------------------------------------------- training data
def _images(count=5, shape=(30, 44, 3)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def test_augment_gives_the_eight_symmetries():
    patch = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    outs = {dncnn.augment(patch, mode).tobytes() + bytes(dncnn.augment(patch, mode).shape) for mode in range(8)}
    assert len(outs) == 8
    assert np.array_equal(dncnn.augment(patch, 0), patch)
    with pytest.raises(ValueError, match="mode"):
        dncnn.augment(patch, 8)


def test_patch_batches_are_a_function_of_seed_and_step_with_kair_noise():
    images = _images()
    a = dncnn.patch_batch(images, 7, batch=4, patch=16, sigma=25, seed=1)
    b = dncnn.patch_batch(images, 7, batch=4, patch=16, sigma=25, seed=1)
    c = dncnn.patch_batch(images, 8, batch=4, patch=16, sigma=25, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    clean, noisy = dncnn.patch_batch(images, 0, batch=64, patch=16, sigma=25, seed=0)
    assert clean.shape == (64, 3, 16, 16) and clean.dtype == torch.float32
    assert 0 <= float(clean.min()) and float(clean.max()) <= 1
    noise = noisy - clean
    assert abs(float(noise.std()) - 25 / 255) < 0.002  # N(0, sigma/255), added to [0, 1] images
    assert float(noisy.min()) < 0 or float(noisy.max()) > 1  # not clipped
    # one epoch = every image once (KAIR's shuffled loader, one random patch per image)
    whole = [img[:16, :16] for img in images]  # patch == image: crops are the image, up to a symmetry
    epoch = torch.cat([dncnn.patch_batch(whole, s, batch=1, patch=16, sigma=0, seed=2)[0] for s in range(5)])
    sums = sorted(int(round(float((p * 255).round().sum()))) for p in epoch)
    assert sums == sorted(int(img.astype(np.int64).sum()) for img in whole)
    with pytest.raises(ValueError, match="at least 40x40"):
        dncnn.patch_batch(images, 0, batch=2, patch=40, sigma=25, seed=0)


class _Interrupt(Exception):
    pass


def _KillingCheckpoint(inner, kill_at):
    """A checkpoint on ``inner``'s file that saves at step ``kill_at`` and then stops the training, as a
    kill would."""
    from suite.harness.trained import Checkpoint

    class Killing(Checkpoint):
        def due(self, step=None):
            return step == kill_at

        def save(self, state):
            super().save(state)
            raise _Interrupt

    return Killing(inner.path)


def test_a_killed_training_resumes_to_the_same_weights(tmp_path):
    from suite.harness.trained import Checkpoint

    images = _images(4, (24, 24, 3))
    options = dict(sigma=25, iterations=6, batch=2, patch=16, lr=1e-3, milestones=[3], seed=0)

    def fresh():
        torch.manual_seed(0)
        return dncnn.DnCNN(3, depth=3, width=4, tv=True, lam_init=0.02)

    straight = dncnn.train_denoiser(fresh(), images, **options)
    checkpoint = Checkpoint(tmp_path / "ckpt.pt")
    with pytest.raises(_Interrupt):
        dncnn.train_denoiser(fresh(), images, checkpoint=_KillingCheckpoint(checkpoint, 3), **options)
    resumed = dncnn.train_denoiser(fresh(), images, checkpoint=checkpoint, **options)
    assert resumed["history"]["resumed_at"] == 3
    assert len(resumed["history"]["loss"]) == 6
    for name, value in straight["state"].items():
        assert torch.allclose(value.float(), resumed["state"][name].float(), atol=1e-6), name
    assert straight["history"]["lambdas"]["input"] != [0.02] * 3  # lam moved: it is trained


# ------------------------------------------------------------------------------------------- PSNR protocol
def test_psnr_kair_protocol_worked_example():
    """KAIR utils_image.calculate_psnr(img1, img2, border=0) = 20 log10(255 / sqrt(mean((img1 - img2)^2)))
    on uint8 images (cast to float64), after tensor2uint / single2uint (clamp to [0, 1], x255, round)."""
    from metrics.image import psnr, to_uint8

    clean = np.full((4, 4, 3), 128, np.uint8)
    restored = np.full((4, 4, 3), 128 / 255, np.float32)
    restored[0, 0] = 1.7            # clamped to 1 -> 255: error 127 on 3 of 48 values
    restored[1, 1, 0] = 128.4 / 255  # rounds to 128: no error
    restored[2, 2, 0] = 126.6 / 255  # rounds to 127: error 1
    restored[3, 3, 1] = -0.2        # clamped to 0: error 128
    as_uint8 = to_uint8(restored)
    assert as_uint8[0, 0].tolist() == [255, 255, 255] and as_uint8[1, 1, 0] == 128 and as_uint8[2, 2, 0] == 127
    mse = (3 * 127**2 + 1 + 128**2) / 48  # by hand: (48387 + 1 + 16384) / 48 = 64772 / 48
    assert mse == pytest.approx(1349.4166667)
    expected = 20 * math.log10(255 / math.sqrt(mse))  # 10 log10(65025 / 1349.4167) = 16.8293 dB
    assert psnr(as_uint8, clean, data_range=255.0) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(16.829343, abs=1e-6)
    skimage_metrics = pytest.importorskip("skimage.metrics")
    assert psnr(as_uint8, clean, data_range=255.0) == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(clean, as_uint8, data_range=255), abs=1e-12)
    # the dataset number is the mean of per-image PSNRs, not the PSNR of the pooled MSE
    other = clean.copy()
    other[0, 0, 0] = 138
    per_image = [expected, 20 * math.log10(255 / math.sqrt(100 / 48))]
    assert psnr([as_uint8, other], [clean, clean], data_range=255.0) == pytest.approx(np.mean(per_image), abs=1e-12)


def test_evaluate_rounds_the_output_to_uint8_before_psnr():
    clean = np.full((8, 8, 3), 100, np.uint8)
    noisy = np.full((8, 8, 3), 100.3 / 255, np.float32)  # rounds back to 100: an identity model is perfect
    scores = dncnn.evaluate(nn.Identity(), [{"name": "a", "clean": clean, "noisy": noisy}])
    assert scores["names"] == ["a"] and math.isinf(scores["psnr"][0])


# ------------------------------------------------------------------------------------------- data
def test_training_set_is_bsds500_without_cbsd68(shared_data):
    bsds = shared_data("bsds500")
    cbsd68 = shared_data("denoising/CBSD68")
    from suite.data.readers import read_image

    test_names = {p.stem for p in cbsd68.iterdir()}
    assert test_names == table6.CBSD68_NAMES
    images, names = table6.training_images(bsds)
    assert not set(names) & table6.CBSD68_NAMES
    splits = {s: {p.stem for p in (bsds / "data/images" / s).glob("*.jpg")} for s in ("val", "test")}
    assert set(names) == (splits["val"] | splits["test"]) - table6.CBSD68_NAMES  # 232 in the sample
    assert len(names) == len(set(names))

    # By content, not only by name: thumbnails of every training image are far from every CBSD68 image,
    # while the BSDS jpg of a CBSD68 id matches its PNG (so leaving out by id removes the right images).
    def thumb(image):
        if image.shape[0] > image.shape[1]:
            image = np.rot90(image)
        h, w = image.shape[0] // 16 * 16, image.shape[1] // 16 * 16
        return image[:h, :w].reshape(16, h // 16, 16, w // 16, 3).mean(axis=(1, 3))

    tests = {p.stem: thumb(read_image(p).astype(np.float64)) for p in sorted(cbsd68.iterdir())}
    stack = np.stack(list(tests.values()))
    same = thumb(read_image(bsds / "data/images/val/101085.jpg").astype(np.float64))
    assert np.abs(same - tests["101085"]).mean() < 2.0
    nearest = [np.abs(stack - thumb(img.astype(np.float64))).mean(axis=(1, 2, 3)).min() for img in images]
    assert min(nearest) > 5.0


def test_training_images_read_every_bsds500_split_of_a_tiny_tree(tmp_path):
    """The full BSDS500 layout (train/val/test): every split is read, CBSD68 ids are left out."""
    import cv2

    from suite.data.readers import write_bsds_gt

    rng = np.random.default_rng(0)
    layout = {"train": ["2092", "8049"], "val": ["3096", "101085", "1000"], "test": ["100007"]}  # 3096, 101085: CBSD68
    for split, names in layout.items():
        (tmp_path / "data/images" / split).mkdir(parents=True)
        (tmp_path / "data/groundTruth" / split).mkdir(parents=True)
        for name in names:
            cv2.imwrite(str(tmp_path / "data/images" / split / f"{name}.jpg"), rng.integers(0, 256, (12, 16, 3), np.uint8))
            seg = np.ones((12, 16), np.uint16)
            write_bsds_gt(tmp_path / "data/groundTruth" / split / f"{name}.mat",
                          [{"segmentation": seg, "boundaries": np.zeros((12, 16), bool)}])
    images, names = table6.training_images(tmp_path)
    assert names == ["2092", "8049", "1000", "100007"]
    assert all(image.shape == (12, 16, 3) and image.dtype == np.uint8 for image in images)
    assert table6.training_images(tmp_path, limit=3)[1] == ["2092", "8049", "1000"]
    only_test = tmp_path / "only-cbsd68"
    for folder in ("data/images/val", "data/groundTruth/val"):
        (only_test / folder).mkdir(parents=True)
    (only_test / "data/images/val/3096.jpg").write_bytes((tmp_path / "data/images/val/3096.jpg").read_bytes())
    (only_test / "data/groundTruth/val/3096.mat").write_bytes((tmp_path / "data/groundTruth/val/3096.mat").read_bytes())
    with pytest.raises(ValueError, match="no training image"):
        table6.training_images(only_test)


def test_data_plan_falls_back_to_stand_ins(monkeypatch, tmp_path):
    monkeypatch.setenv("ENERGYBENCH_DATA", str(tmp_path))
    plan = table6.data_plan()
    assert plan == {"train": "mini-edges", "test": ["mini-denoise"], "absent": ["cbsd68", "kodak24", "mcmaster"]}
    (tmp_path / "kodak24").mkdir()
    (tmp_path / "kodak24" / "kodim01.png").write_bytes(b"x")
    assert table6.data_plan()["test"] == ["kodak24"]


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def stand_in_data(tmp_path_factory):
    """A data root with the stand-ins only: the real denoising sets must be absent here even when the
    caller's ENERGYBENCH_DATA (or the checkout's data/) holds them."""
    from suite.data import manage, registry

    root = tmp_path_factory.mktemp("table6-stand-ins")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENERGYBENCH_DATA", str(root))
        empty = tmp_path_factory.mktemp("no-repo-data")
        patch.setattr(registry, "default_data_root", lambda: empty)
        patch.setattr(manage, "default_data_root", lambda: empty)
        manage.build(profile="smoke", root=root, seed=0, progress=False, workers=1, record=False,
                     datasets=["mini-edges", "mini-denoise"])
        yield root


def _run_smoke(results, seeds=(0,)):
    from suite.harness import registry, runner, store

    exp = registry.get("tvlayers.table6")
    opts = runner.Options(profile="smoke", device="cpu", results=results, progress=False, seeds=seeds)
    summary = runner.run([exp], opts)
    assert summary.ok, summary.failed
    return store.frame(results)


def test_smoke_run_on_stand_ins_records_every_number_and_draws_fig8(stand_in_data, tmp_path):
    frame = _run_smoke(tmp_path / "results")
    psnr = frame[frame.metric == "psnr"]
    measured = psnr[psnr.value.notna()]
    assert set(measured.column) == {"mini-denoise s25 (stand-in)", "mini-denoise s50 (stand-in)"}
    assert set(measured.row) == {"DnCNN (trained on mini-edges, stand-in)", "DnCNNTV (trained on mini-edges, stand-in)"}
    assert ((measured.value > 5) & (measured.value < 60)).all()
    # the paper's columns are not run, with the reason
    absent = psnr[psnr.value.isna()]
    assert set(absent.column) >= {"CBSD68 s25", "Kodak24 s50", "McMaster s25"}
    assert absent.note.str.contains("not present; mini-denoise stands in").all()
    lambdas = frame[frame.metric == "lambda"]
    assert len(lambdas) == 2 * 2 * 3 and (lambdas.value > 0).all()
    cost = frame[frame.metric == "step_time"]
    assert {"DnCNN", "DnCNNTV", "DnCNN (paired)", "DnCNNTV (paired)"} <= set(cost.row)
    assert (cost.value > 0).all()

    import matplotlib

    matplotlib.use("Agg")
    fig = table6.plot_fig8(frame[frame.experiment == "tvlayers.table6"])
    assert len(fig.axes) == 5  # clean, noisy, input TV, R(I~) + I~, output
    assert "lam_in" in fig._suptitle.get_text()


@pytest.fixture
def real_data_root(shared_data, tmp_path, monkeypatch):
    """A data root of links to the real samples: BSDS500, CBSD68, Kodak24, McMaster."""
    root = tmp_path / "data"
    root.mkdir()
    for name, sample in (("bsds500", "bsds500"), ("cbsd68", "denoising/CBSD68"), ("kodak24", "denoising/Kodak24"),
                         ("mcmaster", "denoising/McMaster")):
        (root / name).symlink_to(shared_data(sample))
    monkeypatch.setenv("ENERGYBENCH_DATA", os.pathsep.join([str(root), os.environ["ENERGYBENCH_DATA"]]))
    return root


def test_smoke_run_on_the_real_samples_judges_the_claims(real_data_root, tmp_path):
    from suite.harness import claims

    frame = _run_smoke(tmp_path / "results")
    psnr = frame[(frame.metric == "psnr")]
    assert psnr.value.notna().all()
    assert set(psnr.column) == {f"{s} s{sigma}" for s in ("CBSD68", "Kodak24", "McMaster") for sigma in (25, 50)}
    assert set(psnr.row) == {"DnCNN", "DnCNNTV"}
    paper = claims.load_paper(table6.__file__.replace("table6.py", "paper.yaml"))
    # No claim is judged at smoke; judged as if at mini, the records must decide all six claims.
    verdicts = [v for v in claims.judge_all(paper, frame.assign(profile="mini"), profile="mini")
                if v.claim.id.startswith("table6-")]
    assert len(verdicts) == 6
    assert all(v.verdict in claims.JUDGED for v in verdicts), [(v.claim.id, v.verdict, v.evidence) for v in verdicts]
