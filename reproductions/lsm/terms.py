"""The data terms of LSM's four tasks and their derivatives (Tang & Tan, CVPR 2020, Sec. 3.4, App. A).

Each data term D(x) is evaluated per *feature group* (Sec. 3.2: the c feature channels are split
into m groups of c / m channels and the data term is evaluated on each group), so every function
here returns one first and one (approximated) second derivative per group and pixel,
``(B, G, H, W)``. The minimization context of the subspace generator takes these per group; the
subspace solve uses the data term over all channels, i.e. the sum over the groups.

Binary labeling (interactive and video segmentation, Eq. 7)::

    D(x) = sum_p alpha_p (tau(x_p) - 1)^2 + beta_p (tau(x_p) + 1)^2,       tau = tanh

    dD/dx_p     = [(alpha_p + beta_p) tau(x_p) + (beta_p - alpha_p)] tau'(x_p)     (Eq. 8)
    d2D/dx_p^2 ~= (alpha_p + beta_p) tau'(x_p)^2                                      (Eq. 9)

with the scale factor 2 dropped as the paper does (both derivatives carry it, so the Newton step
and the subspace step are unchanged) and tau' = 1 - tanh^2. Eq. 9 drops the term with tau'' (a
Gauss-Newton approximation, always >= 0).

alpha and beta (the probabilities that tau(x_p) = +1 / -1):

* interactive (:func:`scribble_probabilities`): nonparametric kernel density estimates of the
  pixel's feature under the foreground and under the background scribble points, normalised to
  ``alpha = p_fg / (p_fg + p_bg + eps)``;
* video (:func:`neighbour_probabilities`): the same kernel, averaged over the pixel's neighbours
  (a square window) in each previously labeled frame, weighted by the neighbours' foreground and
  background labels ("the average probabilities estimated from p's correlation with its
  foreground and background neighbors in previous labeled frames"), then averaged over frames.

The kernel is ``k(f, g) = exp(-(1 - <f, g>) / bandwidth^2)`` on unit-normalised group features,
i.e. a Gaussian kernel ``exp(-||f - g||^2 / (2 bandwidth^2))`` on the unit sphere, a function of
the features' correlation ``<f, g>``.

Dense correspondence (stereo and flow, Eq. 11)::

    D(x) = sum_p || F_S(p + x_p) - F_T(p) ||^2

with F_S sampled bilinearly (``grid_sample``, border padding). Stereo, ``x_p = [u, 0]`` (Eq. 12)::

    dD/du_p = grad_x F_S(p + x_p)' [F_S(p + x_p) - F_T(p)],   d2D/du_p^2 ~= ||grad_x F_S(p + x_p)||^2

flow, ``x_p = [u, v]`` (Eq. 13), the same with the 2-vector gradient and the 2 x 2 Gauss-Newton
block ``grad F_S' grad F_S`` (again without the factor 2). App. A turns the 2 x 2 problem into two
one-dimensional ones by Cramer's rule (:func:`cramer`): ``det`` of the block, ``det_x`` of the
block with its first column replaced by the gradient, ``det_y`` with its second column replaced;
the per-pixel Newton step is ``(-det_x / det, -det_y / det)``.

``grad F_S(p + x_p)``: ``derivative="central"`` (default, used by the model) warps the central
differences of F_S (one-sided at the border), the usual Lucas-Kanade choice, which is symmetric
at integer positions (where every solution starts: x = 0); ``derivative="bilinear"`` is the exact
derivative of the bilinear interpolant (what autograd gives through ``grid_sample``), one-sided
at integer positions.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "binary_labeling_energy", "binary_labeling_derivatives", "scribble_probabilities", "neighbour_probabilities",
    "warp", "correspondence_energy", "stereo_derivatives", "flow_derivatives", "cramer", "group_sum",
]

_DERIVATIVES = ("central", "bilinear")


# ------------------------------------------------------------------------------- checks


def _check(value: object, name: str, layout: str, ndim: int = 4) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a tensor of shape {layout}, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims {layout}, got shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {value.dtype}")
    return value


def _check_groups(channels: int, groups: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or channels % groups:
        raise ValueError(f"groups: expected a positive divisor of the {channels} feature channels, got {groups!r}")
    return groups


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def group_sum(values: Tensor, groups: int) -> Tensor:
    """``(B, C, ...)`` -> ``(B, G, ...)``: the sum over each group of ``C / G`` consecutive channels."""
    b, c = values.shape[:2]
    return values.reshape(b, groups, c // groups, *values.shape[2:]).sum(2)


# ------------------------------------------------------------------------------- binary labeling


def binary_labeling_energy(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """Eq. 7 per batch item: ``sum_p,g alpha (tanh x - 1)^2 + beta (tanh x + 1)^2``; ``(B,)``."""
    tau = torch.tanh(x)
    return (alpha * (tau - 1).square() + beta * (tau + 1).square()).flatten(1).sum(1)


def binary_labeling_derivatives(x: Tensor, alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """First and (Gauss-Newton) second derivatives of Eq. 7 w.r.t. x_p (Eqs. 8-9, factor 2 dropped).

    Args:
        x: ``(B, 1, H, W)`` the labeling logits (tau = tanh(x) in (-1, 1)).
        alpha: ``(B, G, H, W)`` probability of tau = +1 (foreground) per group, ``>= 0``.
        beta: ``(B, G, H, W)`` probability of tau = -1 (background) per group, ``>= 0``.

    Returns:
        ``(gradient, hessian)``, each ``(B, G, H, W)``: Eq. 8 and Eq. 9 per group
        (``hessian >= 0``).

    Raises:
        ValueError: not 4-dim float tensors, x with more than one channel, alpha and beta of
            different shapes or not matching x's batch and spatial size.
    """
    _check(x, "x", "(B, 1, H, W)")
    _check(alpha, "alpha", "(B, G, H, W)")
    _check(beta, "beta", "(B, G, H, W)")
    if x.shape[1] != 1:
        raise ValueError(f"x: expected 1 channel (a scalar labeling), got shape {tuple(x.shape)}")
    if alpha.shape != beta.shape or (alpha.shape[0], *alpha.shape[2:]) != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"alpha, beta: expected equal shapes (B, G, H, W) with (B, H, W) of x {tuple(x.shape)}, "
                         f"got {tuple(alpha.shape)} and {tuple(beta.shape)}")
    tau = torch.tanh(x)
    slope = 1 - tau * tau
    gradient = ((alpha + beta) * tau + (beta - alpha)) * slope
    hessian = (alpha + beta) * slope * slope
    return gradient, hessian


def _unit_groups(features: Tensor, groups: int) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, G, C/G, H, W)`` with each group's vector of unit length."""
    b, c, h, w = features.shape
    grouped = features.reshape(b, groups, c // groups, h, w)
    return F.normalize(grouped, dim=2, eps=1e-6)


def _normalise_probabilities(foreground: Tensor, background: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    total = foreground + background + eps
    return foreground / total, background / total


def _select_points(mask: Tensor, max_points: int) -> Tensor:
    """Flat indices of the True pixels of a 2-D mask, at most ``max_points`` evenly spaced ones
    (deterministic: the same scribble always gives the same points)."""
    index = mask.flatten().nonzero().flatten()
    if index.numel() > max_points:
        pick = torch.linspace(0, index.numel() - 1, max_points, device=index.device).round().long()
        index = index[pick]
    return index


def scribble_probabilities(features: Tensor, foreground: Tensor, background: Tensor, *, groups: int,
                           bandwidth: float = 0.5, max_points: int = 256, eps: float = 1e-8
                           ) -> tuple[Tensor, Tensor]:
    """alpha, beta for interactive segmentation: kernel density of each pixel's group features
    under the foreground and under the background scribble points (Sec. 3.4).

    ``p_fg(p) = mean_{q in fg scribbles} k(f_g(p), f_g(q))`` (likewise ``p_bg``), ``alpha =
    p_fg / (p_fg + p_bg + eps)``, ``beta = p_bg / (...)``: near 0 both where the pixel resembles
    no scribble (the data term then has little weight there). A class without any scribble pixel
    has density 0. More than ``max_points`` scribble pixels of a class are thinned to that many
    evenly spaced ones (bounded cost at full resolution).

    Args:
        features: ``(B, C, H, W)`` feature map; its channels are split into ``groups`` groups.
        foreground: ``(B, 1, H, W)`` bool, the foreground scribble pixels.
        background: ``(B, 1, H, W)`` bool, the background scribble pixels.
        groups: number of feature groups G (a divisor of C).
        bandwidth: kernel width on unit-normalised features.
        max_points: at most this many scribble points per class and image.

    Returns:
        ``(alpha, beta)``, each ``(B, G, H, W)`` in [0, 1], differentiable w.r.t. ``features``.

    Raises:
        ValueError: wrong shapes or dtypes, or bad options.
    """
    _check(features, "features", "(B, C, H, W)")
    b, c, h, w = features.shape
    _check_groups(c, groups)
    bandwidth = _check_positive(bandwidth, "bandwidth")
    for name, mask in (("foreground", foreground), ("background", background)):
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (b, 1, h, w):
            raise ValueError(f"{name}: expected a bool tensor of shape {(b, 1, h, w)}, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
    unit = _unit_groups(features, groups).flatten(3)  # (B, G, c/G, N)
    densities = []
    for mask in (foreground, background):
        per_item = []
        for i in range(b):
            index = _select_points(mask[i, 0], max_points)
            if index.numel() == 0:
                per_item.append(unit.new_zeros(groups, h * w))
                continue
            points = unit[i][..., index]  # (G, c/G, P)
            correlation = torch.einsum("gcn,gcp->gnp", unit[i], points)
            per_item.append(torch.exp((correlation - 1) / bandwidth ** 2).mean(-1))
        densities.append(torch.stack(per_item).reshape(b, groups, h, w))
    return _normalise_probabilities(densities[0], densities[1], eps)


def neighbour_probabilities(features: Tensor, reference_features: Tensor, reference_masks: Tensor, *,
                            groups: int, radius: int = 3, bandwidth: float = 0.5, eps: float = 1e-8
                            ) -> tuple[Tensor, Tensor]:
    """alpha, beta for video segmentation: the pixel's average kernel correlation with its
    foreground and background neighbours in previously labeled frames (Sec. 3.4).

    For each reference frame r and each neighbour q in the ``(2 radius + 1)^2`` window around p
    (border pixels replicated)::

        a_r(p) = mean_q k(f_g(p), f^r_g(q)) m_r(q),   b_r(p) = mean_q k(f_g(p), f^r_g(q)) (1 - m_r(q))

    averaged over the frames, and ``alpha = a / (a + b + eps)``, ``beta = b / (a + b + eps)``
    (a Parzen classifier over the labeled neighbourhood).

    Args:
        features: ``(B, C, H, W)`` features of the current frame.
        reference_features: ``(B, R, C, H, W)`` features of the R labeled frames.
        reference_masks: ``(B, R, 1, H, W)`` their soft foreground masks in [0, 1].
        groups: number of feature groups G.
        radius: half width of the neighbourhood window (pixels of this resolution).
        bandwidth: kernel width on unit-normalised features.

    Returns:
        ``(alpha, beta)``, each ``(B, G, H, W)`` in [0, 1].

    Raises:
        ValueError: wrong shapes or bad options.
    """
    _check(features, "features", "(B, C, H, W)")
    _check(reference_features, "reference_features", "(B, R, C, H, W)", ndim=5)
    _check(reference_masks, "reference_masks", "(B, R, 1, H, W)", ndim=5)
    b, c, h, w = features.shape
    r = reference_features.shape[1]
    _check_groups(c, groups)
    bandwidth = _check_positive(bandwidth, "bandwidth")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius: expected an integer >= 0, got {radius!r}")
    if tuple(reference_features.shape) != (b, r, c, h, w) or r < 1:
        raise ValueError(f"reference_features: expected shape (B, R, C, H, W) = (B={b}, R>=1, {c}, {h}, {w}), got "
                         f"{tuple(reference_features.shape)}")
    if tuple(reference_masks.shape) != (b, r, 1, h, w):
        raise ValueError(f"reference_masks: expected shape {(b, r, 1, h, w)}, got {tuple(reference_masks.shape)}")
    unit = _unit_groups(features, groups)  # (B, G, c/G, H, W)
    ref = _unit_groups(reference_features.flatten(0, 1), groups)  # (B R, G, c/G, H, W)
    ref = F.pad(ref.flatten(1, 2), (radius,) * 4, mode="replicate").reshape(b, r, groups, c // groups,
                                                                          h + 2 * radius, w + 2 * radius)
    masks = F.pad(reference_masks.flatten(0, 1), (radius,) * 4, mode="replicate").reshape(
        b, r, 1, h + 2 * radius, w + 2 * radius)
    fg = unit.new_zeros(b, groups, h, w)
    bg = unit.new_zeros(b, groups, h, w)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            shifted = ref[..., dy:dy + h, dx:dx + w]  # (B, R, G, c/G, H, W)
            kernel = torch.exp(((unit[:, None] * shifted).sum(3) - 1) / bandwidth ** 2)  # (B, R, G, H, W)
            m = masks[..., dy:dy + h, dx:dx + w]  # (B, R, 1, H, W)
            fg = fg + (kernel * m).mean(1)
            bg = bg + (kernel * (1 - m)).mean(1)
    window = (2 * radius + 1) ** 2
    return _normalise_probabilities(fg / window, bg / window, eps)


# ------------------------------------------------------------------------------- correspondence


def _grid(displacement: Tensor, height: int, width: int) -> Tensor:
    """Normalised ``grid_sample`` coordinates (align_corners=True) of ``p + x_p``."""
    b = displacement.shape[0]
    dtype, device = displacement.dtype, displacement.device
    ys, xs = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                            torch.arange(width, dtype=dtype, device=device), indexing="ij")
    px = xs + displacement[:, 0]
    py = ys + displacement[:, 1] if displacement.shape[1] == 2 else ys.expand(b, height, width)
    # A one-pixel-wide axis has a single sample: every coordinate maps onto it.
    sx = 2.0 / (width - 1) if width > 1 else 0.0
    sy = 2.0 / (height - 1) if height > 1 else 0.0
    return torch.stack((px * sx - 1, py * sy - 1), -1)


def warp(source: Tensor, displacement: Tensor) -> Tensor:
    """``F_S(p + x_p)`` by bilinear sampling with border padding.

    Args:
        source: ``(B, C, H, W)``.
        displacement: ``(B, 1, H, W)`` horizontal (stereo) or ``(B, 2, H, W)`` (u, v) in pixels.

    Returns:
        ``(B, C, H, W)`` the warped source.
    """
    h, w = source.shape[-2:]
    return F.grid_sample(source, _grid(displacement, h, w), mode="bilinear", padding_mode="border",
                         align_corners=True)


def _source_gradients(source: Tensor, displacement: Tensor, axes: int, derivative: str) -> list[Tensor]:
    """``d F_S / d x`` (and ``/ d y``) at ``p + x_p``, each ``(B, C, H, W)``."""
    if derivative == "central":
        out = []
        for axis in range(axes):
            dim = -1 - axis  # x: the last dim, y: the one before
            size = source.shape[dim]
            grad = torch.gradient(source, dim=dim)[0] if size > 1 else torch.zeros_like(source)
            out.append(warp(grad, displacement))
        return out
    # Exact derivative of the bilinear interpolant: the difference of the two samples at the
    # integer coordinates that bracket p + x_p along the axis (interpolated along the other).
    full = displacement if displacement.shape[1] == 2 else torch.cat(
        (displacement, torch.zeros_like(displacement)), 1)
    ys, xs = torch.meshgrid(torch.arange(source.shape[-2], dtype=source.dtype, device=source.device),
                            torch.arange(source.shape[-1], dtype=source.dtype, device=source.device),
                            indexing="ij")
    base = (xs, ys)
    out = []
    for axis in range(axes):
        position = base[axis] + full[:, axis]
        low = torch.floor(position.detach())
        samples = []
        for offset in (0.0, 1.0):
            moved = list(full.unbind(1))
            moved[axis] = low + offset - base[axis]
            samples.append(warp(source, torch.stack(moved, 1)))
        out.append(samples[1] - samples[0])
    return out


def _check_pair(target: Tensor, source: Tensor, displacement: Tensor, channels: int, derivative: str,
                groups: int) -> None:
    _check(target, "target", "(B, C, H, W)")
    _check(source, "source", "(B, C, H, W)")
    _check(displacement, "displacement", f"(B, {channels}, H, W)")
    if source.shape != target.shape:
        raise ValueError(f"source: expected the shape of target {tuple(target.shape)}, got {tuple(source.shape)}")
    b, _, h, w = target.shape
    if tuple(displacement.shape) != (b, channels, h, w):
        raise ValueError(f"displacement: expected shape {(b, channels, h, w)}, got {tuple(displacement.shape)}")
    if derivative not in _DERIVATIVES:
        raise ValueError(f"derivative: expected one of {_DERIVATIVES}, got {derivative!r}")
    _check_groups(target.shape[1], groups)


def correspondence_energy(target: Tensor, source: Tensor, displacement: Tensor) -> Tensor:
    """Eq. 11 per batch item: ``sum_p ||F_S(p + x_p) - F_T(p)||^2``; ``(B,)``."""
    return (warp(source, displacement) - target).square().flatten(1).sum(1)


def stereo_derivatives(target: Tensor, source: Tensor, displacement: Tensor, *, groups: int = 1,
                       derivative: str = "central") -> tuple[Tensor, Tensor]:
    """First and Gauss-Newton second derivatives of Eq. 11 w.r.t. a horizontal ``u_p`` (Eq. 12).

    Args:
        target: ``(B, C, H, W)`` F_T.
        source: ``(B, C, H, W)`` F_S.
        displacement: ``(B, 1, H, W)`` u in pixels (``target(p) ~ source(p + u)``).
        groups: number of feature groups G (a divisor of C).
        derivative: ``"central"`` or ``"bilinear"`` (see the module docstring).

    Returns:
        ``(gradient, hessian)``, each ``(B, G, H, W)``; their sums over G are the derivatives of
        the data term over all channels.

    Raises:
        ValueError: shapes, dtypes or options are wrong.
    """
    _check_pair(target, source, displacement, 1, derivative, groups)
    residual = warp(source, displacement) - target
    (gx,) = _source_gradients(source, displacement, 1, derivative)
    return group_sum(gx * residual, groups), group_sum(gx * gx, groups)


def flow_derivatives(target: Tensor, source: Tensor, displacement: Tensor, *, groups: int = 1,
                     derivative: str = "central") -> tuple[Tensor, Tensor]:
    """First derivatives and Gauss-Newton 2 x 2 blocks of Eq. 11 w.r.t. ``(u_p, v_p)`` (Eq. 13).

    Args:
        target, source: ``(B, C, H, W)`` F_T and F_S.
        displacement: ``(B, 2, H, W)`` the flow (u, v) from target to source.
        groups, derivative: as :func:`stereo_derivatives`.

    Returns:
        ``(gradient, hessian)``: ``(B, G, 2, H, W)`` (dD/du, dD/dv) and ``(B, G, 3, H, W)``
        (D_uu, D_uv, D_vv) = (gx'gx, gx'gy, gy'gy) per group.

    Raises:
        ValueError: shapes, dtypes or options are wrong.
    """
    _check_pair(target, source, displacement, 2, derivative, groups)
    residual = warp(source, displacement) - target
    gx, gy = _source_gradients(source, displacement, 2, derivative)
    gradient = torch.stack((group_sum(gx * residual, groups), group_sum(gy * residual, groups)), 2)
    hessian = torch.stack((group_sum(gx * gx, groups), group_sum(gx * gy, groups), group_sum(gy * gy, groups)), 2)
    return gradient, hessian


def cramer(hessian: Tensor, gradient: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Cramer's rule on each pixel's 2 x 2 system ``D dx = d`` (App. A).

    ``det = D_uu D_vv - D_uv^2``; ``det_x`` = det of D with its first column replaced by d
    ``= d_u D_vv - D_uv d_v``; ``det_y`` with the second column replaced ``= D_uu d_v - d_u D_uv``.
    The Newton step is ``(-det_x / det, -det_y / det)``.

    Args:
        hessian: ``(..., 3, H, W)`` (D_uu, D_uv, D_vv) on dim -3.
        gradient: ``(..., 2, H, W)`` (d_u, d_v) on dim -3.

    Returns:
        ``(det, det_x, det_y)``, each ``(..., H, W)``.
    """
    if not isinstance(hessian, Tensor) or hessian.ndim < 3 or hessian.shape[-3] != 3:
        raise ValueError(f"hessian: expected (..., 3, H, W), got {tuple(getattr(hessian, 'shape', ()))}")
    if not isinstance(gradient, Tensor) or gradient.shape[-3:] != (2, *hessian.shape[-2:]):
        raise ValueError(f"gradient: expected (..., 2, H, W) like hessian, got {tuple(getattr(gradient, 'shape', ()))}")
    duu, duv, dvv = hessian.unbind(-3)
    du, dv = gradient.unbind(-3)
    return duu * dvv - duv * duv, du * dvv - duv * dv, duu * dv - du * duv
