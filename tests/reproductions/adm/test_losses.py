"""Losses on network outputs: cross-checks against the solver core and the paper's identities."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reproductions.adm import losses, training
from suite.solvers import crf, graphcut


def _images(batch=2, size=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(batch, 3, size, size)
    images[:, :, :, size // 2:] = 200.0
    return images + 10.0 * torch.rand(images.shape, generator=generator)


def test_partial_cross_entropy_is_the_mean_over_labelled_pixels():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.full((2, 4, 4), 255)
    labels[0, 1, 1], labels[1, 2, 3] = 2, 0
    value = losses.partial_cross_entropy(logits, labels)
    log_probs = logits.log_softmax(1)
    expected = -(log_probs[0, 2, 1, 1] + log_probs[1, 0, 2, 3]) / 2
    torch.testing.assert_close(value, expected)
    empty = losses.partial_cross_entropy(logits, torch.full((2, 4, 4), 255))
    empty.backward()
    assert float(empty.detach()) == 0.0 and logits.grad is not None
    with pytest.raises(ValueError, match="labels: expected shape"):
        losses.partial_cross_entropy(logits, torch.full((2, 8, 8), 255))


def test_latent_labels_equal_alpha_expansion_image_by_image():
    images = _images()
    probs = torch.softmax(3 * torch.randn(2, 4, 12, 12, generator=torch.Generator().manual_seed(1)), 1)
    weights = losses.grid_weights_batch(images, smoothness=2.0)
    batch = losses.latent_labels(probs, weights, cycles=5)
    for b in range(2):
        unary = -np.log(probs[b].double().permute(1, 2, 0).numpy())
        single, _ = graphcut.alpha_expansion(unary, weights[b], cycles=5)
        np.testing.assert_array_equal(batch[b].numpy(), single)
    # Weights: the solver core's Eq. (2), 8-neighbourhood, Boykov-Jolly sigma, lambda scaling.
    np.testing.assert_allclose(weights[1], graphcut.grid_weights(images[1].permute(1, 2, 0).double().numpy(),
                                                                 smoothness=2.0))


def test_grid_energy_and_relaxation_agree_on_one_hot_segmentations():
    images = _images()
    weights = losses.grid_weights_batch(images, smoothness=1.0)
    labels = torch.randint(0, 3, (2, 12, 12), generator=torch.Generator().manual_seed(2))
    one_hot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).double()
    energy = losses.grid_crf_energy(labels, weights)
    relaxed = losses.grid_crf_relaxed(one_hot, weights)
    np.testing.assert_allclose(energy, relaxed, rtol=1e-10)
    expected = graphcut.potts_energy(labels[0].numpy(), np.zeros((12, 12, 3)), weights[0]) / 144
    assert energy[0] == pytest.approx(expected)
    # A constant labelling has no boundary: zero loss.
    assert losses.grid_crf_energy(torch.zeros(1, 12, 12, dtype=torch.long), weights[:1])[0] == 0.0


def test_grid_gd_term_is_the_public_sparse_cut_layer_and_differentiable():
    images = _images()
    weights = losses.grid_weights_batch(images, smoothness=1.0)
    probs = torch.softmax(torch.randn(2, 3, 12, 12), 1).requires_grad_()
    value = losses.grid_gd_term(probs, weights, weight=3.5)
    reference = 3.5 * crf.grid_crf_relaxed_loss(probs, torch.as_tensor(weights, dtype=probs.dtype),
                                                formulation="negative_dot", normalize=True)
    torch.testing.assert_close(value, reference)
    value.backward()
    assert torch.isfinite(probs.grad).all() and probs.grad.abs().sum() > 0


def test_adm_term_pulls_the_softmax_toward_the_latent_labels():
    logits = torch.zeros(1, 3, 4, 4, requires_grad=True)
    latent = torch.full((1, 4, 4), 2)
    losses.adm_term(logits, latent, gamma=1.5).backward()
    assert (logits.grad[0, 2] < 0).all() and (logits.grad[0, :2] > 0).all()
    assert losses.adm_term(logits, latent, gamma=1.5).item() == pytest.approx(1.5 * np.log(3))


def test_dense_term_on_stored_lattices_is_mirror_invariant():
    """Training mirrors images; the dense loss then reuses the unmirrored image's lattice."""
    images = _images(size=10)
    probs = torch.softmax(torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(3)), 1).double()
    scribbles = torch.full((2, 10, 10), 255)
    scribbles[0, 2, 2] = 1
    flip = torch.tensor([True, False])
    mirrored_images = training.unflip(images, flip)
    mirrored_probs = training.unflip(probs, flip)
    mirrored_scribbles = training.unflip(scribbles, flip)
    direct = losses.dense_crf_term(mirrored_probs, mirrored_images.double(), mirrored_scribbles, weight=1.0,
                                   sigma_xy=5.0, sigma_rgb=15.0)
    lattices = crf.dense_crf_lattices(images, sigma_xy=5.0, sigma_rgb=15.0)
    cached = losses.dense_crf_term(training.unflip(mirrored_probs, flip), None,
                                   training.unflip(mirrored_scribbles, flip), weight=1.0, lattices=lattices)
    torch.testing.assert_close(cached, direct, rtol=0.03, atol=0.0)  # lattices of mirrored images differ slightly


def test_adm_term_of_the_paper_averages_over_the_unlabelled_pixels_only():
    """Eq. (7): gamma * sum over Omega_U of D(X_p | S_p); the scribbled pixels belong to pCE."""
    logits = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(4), requires_grad=True)
    latent = torch.randint(0, 3, (1, 4, 4), generator=torch.Generator().manual_seed(5))
    scribbles = torch.full((1, 4, 4), 255)
    scribbles[0, 0, :] = 1
    value = losses.adm_term(logits, latent, gamma=1.5, scribbles=scribbles)
    log_probs = logits.log_softmax(1)[0]
    picked = log_probs.gather(0, latent)[0]
    expected = -1.5 * picked[1:, :].mean()
    torch.testing.assert_close(value, expected)
    value.backward()
    assert (logits.grad[0, :, 0, :] == 0).all() and logits.grad[0, :, 1:, :].abs().sum() > 0
    # Without scribbles (the public prototxt): all pixels.
    torch.testing.assert_close(losses.adm_term(logits, latent, gamma=1.5), -1.5 * picked.mean())
    with pytest.raises(ValueError, match="scribbles: expected shape"):
        losses.adm_term(logits, latent, gamma=1.5, scribbles=scribbles[:, :2])


def test_latent_labels_keep_the_scribbles_only_with_hard_constraints():
    """Eq. (8) is subject to X_p = Y_p on Omega_L (the paper); the public layer passes no scribbles."""
    images = _images()
    # The network is confident in class 0 everywhere; the scribbles say class 2 on a stroke.
    probs = torch.full((2, 3, 12, 12), 0.05)
    probs[:, 0] = 0.9
    scribbles = torch.full((2, 12, 12), 255)
    scribbles[:, 3:5, 2:10] = 2
    weights = losses.grid_weights_batch(images, smoothness=2.0)
    constrained = losses.latent_labels(probs, weights, cycles=5, hard=scribbles)
    free = losses.latent_labels(probs, weights, cycles=5)
    labelled = scribbles != 255
    assert (constrained[labelled] == 2).all()
    assert (free[labelled] == 0).all()  # unconstrained, the scribble is overruled by the unary and Potts terms
