"""The losses of the ADM paper on network outputs, built on ``suite.solvers`` (no solver copies).

Notation: ``logits`` ``(B, K, h, w)`` at the network's output stride, ``S = softmax`` upsampled
bilinearly to the image size ``(H, W)`` (``fc8_interp``), images ``(B, 3, H, W)`` in 0-255,
scribbles ``Y`` with 255 = unlabelled. The regularized loss (Eq. 4) is

    l(S, Y) + lambda R(S),          l = partial cross-entropy on the scribbled pixels Omega_L.

* pCE (:func:`partial_cross_entropy`): ``-mean_{p in Omega_L} log S_p(Y_p)`` at the network's
  output resolution (the public ``label_shrink``), as Caffe's SoftmaxWithLoss normalises it.
* dense CRF, GD (:func:`dense_crf_term`): ``w_dense sum_k S_k^T W (1 - S_k)`` with the bilateral
  kernel of Eq. (3) (``suite.solvers.crf.dense_crf_loss``), scribbled pixels clamped.
* grid CRF, GD on the relaxation (:func:`grid_gd_term`): Eq. (9),
  ``w_grid * sum_pq w~_pq (-<S_p, S_q>) / |N|`` (public ``SparseCutLayer``: negative dot
  product, normalised by the pair count, weight 3.5), ``w~`` the Eq. (2) weights with lambda = 1.
* grid CRF, ADM (:func:`latent_labels`, :func:`adm_term`), two formulations:

  - the paper's (method ``grid-adm``, the default everywhere): X = argmin of Eq. (8),
    ``lambda sum_pq w~_pq [X_p != X_q] + sum_{p in Omega_U} -log S_p(X_p)`` *subject to*
    ``X_p = Y_p for all p in Omega_L`` (Eq. 8; Eq. 6 states the same constraint, and Sec. 2 says
    "the equality constraints could be implemented as unary terms using prohibitive values of
    unary potentials", which is what ``hard=`` does in ``suite.solvers.graphcut``); then Eq. (7),
    ``pCE + gamma * sum_{p in Omega_U} D(X_p | S_p)`` with D = KL to a one-hot X = CE, averaged
    over the unlabelled pixels (the labelled ones are pCE's, and X = Y there anyway).
  - the public code's (method ``grid-adm-public``): the Caffe GC layer receives no scribbles, so X
    is unconstrained, and the loss is ``pCE + 1.5 CE(fc8_interp, GC labels)`` over *all* pixels
    (``trainwithgc`` prototxt). It is kept as a separate, labelled column.

  In both, X carries no gradient and the unary of the scribbled pixels in Eq. (8) is the same
  ``-log S`` (it does not matter where the constraint holds).

Measured (never trained on): :func:`grid_crf_energy`, the Potts energy Eq. (1) of a hard
labelling with the lambda = 1 weights, and :func:`grid_crf_relaxed`, Eq. (9) halved on soft S;
both divided by the number of pixels (the normalisation of Table 1 here; the paper states none).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from suite.solvers import crf
from suite.solvers import graphcut

UNLABELLED = 255


def upsample(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear upsampling of logits to the image size (DeepLab's ``fc8_interp``)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def partial_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels (255 ignored); 0 when none is labelled.

    Shape:
        logits ``(B, K, h, w)``; labels ``(B, h, w)`` int64 at the same resolution.
    """
    if labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"labels: expected shape {(logits.shape[0], *logits.shape[2:])} (from logits), "
                         f"got {tuple(labels.shape)}")
    if not (labels != UNLABELLED).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=UNLABELLED)


def grid_weights_batch(images: torch.Tensor, *, smoothness: float) -> np.ndarray:
    """Eq. (2) weights ``(B, 4, H, W)`` of each image: 8-neighbourhood, diagonals / sqrt(2),
    sigma^2 = the image's mean squared colour difference over those pairs (Boykov-Jolly)."""
    array = images.detach().cpu().permute(0, 2, 3, 1).double().numpy()
    return np.stack([graphcut.grid_weights(image, neighbourhood=8, smoothness=smoothness) for image in array])


def latent_labels(probs: torch.Tensor, weights: np.ndarray, *, cycles: int = 5, hard: Any = None,
                  eps: float = 1e-8, executor=None) -> torch.Tensor:
    """ADM's discrete step, Eq. (8): alpha-expansion of ``-log S`` plus the Potts term.

    Args:
        probs: ``(B, K, H, W)`` softmax S (detached here).
        weights: ``(B, 4, H, W)`` pair weights, lambda included (:func:`grid_weights_batch`).
        cycles: expansion cycles (public: 5, from GCO's all-zero labelling).
        hard: optional ``(B, H, W)`` scribbles enforced as hard constraints ``X_p = Y_p`` (Eq. 8,
            the paper's method); None leaves X unconstrained (the public layer passes none).
        executor: a process pool reused across calls (the public layer's OpenMP loop).

    Returns:
        ``(B, H, W)`` int64 labels X on the device of ``probs``.
    """
    unary = -torch.log(probs.detach().double().clamp_min(eps)).permute(0, 2, 3, 1).cpu().numpy()
    hard_array = None if hard is None else torch.as_tensor(hard).cpu().numpy()
    labels, _ = graphcut.alpha_expansion_batch(unary, weights, cycles=cycles, hard=hard_array,
                                               processes=1 if executor is None else None, executor=executor)
    return torch.from_numpy(labels).to(probs.device)


def adm_term(logits_full: torch.Tensor, latent: torch.Tensor, *, gamma: float,
             scribbles: torch.Tensor | None = None) -> torch.Tensor:
    """The divergence term of Eq. (7), ``gamma * mean_p CE(S_p, X_p)`` (D = KL to a one-hot X).

    Args:
        logits_full: ``(B, K, H, W)`` logits at the image size.
        latent: ``(B, H, W)`` int64 latent labels X.
        gamma: the weight (public ``GC_CEWEIGHT`` = 1.5).
        scribbles: ``(B, H, W)`` with 255 = unlabelled. Given: the mean runs over the unlabelled
            pixels Omega_U only (the paper's Eq. 7). None: over all pixels (the public prototxt).
    """
    if scribbles is None:
        return gamma * F.cross_entropy(logits_full, latent)
    if scribbles.shape != latent.shape:
        raise ValueError(f"scribbles: expected shape {tuple(latent.shape)} (the latent labels'), "
                         f"got {tuple(scribbles.shape)}")
    unlabelled = scribbles == UNLABELLED
    if not unlabelled.any():
        return logits_full.sum() * 0.0
    target = torch.where(unlabelled, latent, torch.full_like(latent, UNLABELLED))
    return gamma * F.cross_entropy(logits_full, target, ignore_index=UNLABELLED)


def grid_gd_term(probs: torch.Tensor, weights: Any, *, weight: float) -> torch.Tensor:
    """Relaxed grid CRF for GD (Eq. 9), the public SparseCutLayer form (see module doc)."""
    return weight * crf.grid_crf_relaxed_loss(probs, torch.as_tensor(weights, dtype=probs.dtype),
                                              formulation="negative_dot", normalize=True)


def dense_crf_term(probs: torch.Tensor, images: torch.Tensor | None, scribbles: torch.Tensor, *, weight: float,
                   sigma_xy: float = 100.0, sigma_rgb: float = 15.0, lattices=None) -> torch.Tensor:
    """Relaxed dense CRF loss (Eq. 3 kernel), scribbled pixels clamped, mean over the batch.

    ``lattices`` (one per image, from ``suite.solvers.crf.dense_crf_lattices``) replace
    ``images`` and the bandwidths when given.
    """
    return weight * crf.dense_crf_loss(probs, images, sigma_xy=sigma_xy, sigma_rgb=sigma_rgb, hard=scribbles,
                                       lattices=lattices)


def grid_crf_energy(labels: Any, weights: np.ndarray) -> np.ndarray:
    """Per-image Potts energy Eq. (1) ``sum_pq w_pq [X_p != X_q]`` divided by H W.

    Shape:
        labels ``(B, H, W)``, weights ``(B, 4, H, W)`` (lambda = 1) -> ``(B,)`` float64.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
    out = np.zeros(labels.shape[0])
    for b in range(labels.shape[0]):
        unary = np.zeros((*labels.shape[1:], int(labels[b].max()) + 1))
        out[b] = graphcut.potts_energy(labels[b], unary, weights[b]) / labels[b].size
    return out


def grid_crf_relaxed(probs: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    """Per-image Eq. (9)/2 ``sum_pq w_pq (1 - <S_p, S_q>)`` on soft S, divided by H W. -> ``(B,)``."""
    losses = crf.grid_crf_relaxed_loss(probs.detach().double(), torch.as_tensor(weights), formulation="eq9",
                                       reduction="none")
    return (losses / (probs.shape[-1] * probs.shape[-2])).cpu().numpy()
