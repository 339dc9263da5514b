"""The subspace minimization step of LSM (Tang & Tan, "Learning Subspace Minimization for
Low-level Vision", CVPR 2020, Sec. 3.1, 3.3 and App. A).

At one pyramid level the data term is replaced by its second-order Taylor expansion at the
current solution ``x`` (Eq. 3)::

    min_dx  1/2 dx' D dx + d' dx

where ``d`` holds the first derivatives and ``D`` the (approximated) second derivatives: diagonal
for the 1-D tasks (disparity, segmentation: one value per pixel), 2 x 2 block diagonal for optical
flow (one symmetric block ``[[D_uu, D_uv], [D_uv, D_vv]]`` per pixel). The increment is confined
to a learned K-dimensional subspace spanned by the columns of ``V`` (N x K, N = H W),
``dx = V c`` (Eq. 4)::

    min_c  1/2 c' (V'DV) c + (V'd)' c        =>   c = -(V'DV)^-1 V'd,   x <- x + V c

This is the ablation "w/o subspace projection" (``project=False``). Because ``V`` is generated
anew at each iteration, ``x`` itself need not lie in span(V), nor does ``x + V c``. The paper's
method (``project=True``, Sec. 3.3) first projects ``x`` onto the new subspace,
``P = V (V'V)^-1 V'``, ``r = (P - I) x``, and reparameterises the increment as ``dx = r + V c``
(Eq. 5)::

    min_c  1/2 (r + V c)' D (r + V c) + d' (r + V c)
    =>     c = -(V'DV)^-1 V' (d + D r)                              (Eq. 6)
           x <- x + r + V c  =  V ((V'V)^-1 V'x + c)                 (in span(V))

without re-evaluating ``D`` and ``d`` at ``P x``.

Flow (``C = 2``), ``flow_system="cramer"`` (the default, the paper's App. A). Cramer's rule
turns each pixel's 2 x 2 system into two one-dimensional problems: with ``det = D_uu D_vv -
D_uv^2``, ``det_x = d_u D_vv - D_uv d_v`` (D with its first column replaced by d) and ``det_y =
D_uu d_v - d_u D_uv`` (second column replaced), the per-pixel Newton step is ``(-det_x / det,
-det_y / det)``, the minimiser of ``1/2 det du^2 + det_x du`` and of ``1/2 det dv^2 + det_y dv``.
u and v then have **separate subspaces** V_x and V_y (the paper generates each from its own
minimization context: (det, det_x) and (det, det_y)), and each component is one 1-D problem of
the form above with diagonal ``det`` and gradient ``det_x`` (``det_y``), projected onto its own
subspace (Eqs. 5-6 per component): two independent K x K systems. With V_x = V_y = all images
(K = N) this is the exact Newton step, like the joint system; on a smaller subspace it is a
weighted least-squares fit of the per-pixel Newton step (weights det), not the minimiser of the
coupled quadratic model.

``flow_system="joint"`` is the documented alternative: the minimiser of the coupled quadratic
model over V_x x V_y, one 2K x 2K system whose off-diagonal block ``V_x' diag(D_uv) V_y``
couples u and v. With a shared basis (V_x = V_y, the ``(B, K, H, W)`` layout) it is what the
official code solves.

The normal matrices are formed by column-wise products (an einsum over pixels), never as N x N
matrices, and solved by Cholesky.

Numerics. ``V'DV`` is positive definite only when ``D`` is positive definite on span(V); it is
merely positive semi-definite where ``D`` has zero entries (pixels without data, textureless
regions in flow) or ``V`` is (nearly) rank deficient, and so is the Gram matrix ``V'V`` of a
rank-deficient basis. Both get ``ridge * mean(diag)`` added to their diagonal (per system, so
the shift scales with the data term and is unit free); ``ridge = 0`` solves the paper's
equations exactly. Where a Cholesky factorisation still fails or is numerically singular
(smallest squared pivot at most ``n eps`` times the largest diagonal entry), that system is
solved by the pseudo-inverse instead (the minimum-norm coefficients, which give the same step
when the system is consistent) and a warning names the batch items. Everything is plain
autograd through ``torch.linalg`` (no custom backward); the pseudo-inverse fallback is
differentiable only where the rank is constant and the nonzero singular values are distinct.

Differences from the official TF code (``frobelbest/LSM``, ``lsm/subspace.py``, flow only), which
this module does *not* follow -- it implements the paper's form:

* one basis shared by u and v and one joint 2K x 2K system (here: ``flow_system="joint"`` with a
  ``(B, K, H, W)`` basis), although its minimization context is built from Cramer's
  determinants;
* the normal equations are solved by LU (``tf.matrix_solve``, pinned to ``/cpu:0``) and
  ``(V'V)^-1`` by ``tf.matrix_inverse``, not by Cholesky;
* the basis is variance-normalised before the solve (a rescaling of the columns of ``V``, which
  leaves span(V), hence the exact step, unchanged, but changes the conditioning);
* the projection is applied to the mean-subtracted flow and the mean is added back to the
  result, ``x <- V (proj + c) + mean(x)``, so the constant component of ``x`` is kept even when
  span(V) does not contain the constant image;
* around the solver (not part of it): m = c / 16 feature groups (the paper: c / 8), a 3x3 last
  conv of the generator (the paper: 1x1), and 2 extra "occlusion" output channels (a softmax,
  normalised by its max, clamped >= 0.1) that weight the data term; the paper mentions neither.

Shapes (``N = H W``):

* ``x``, ``gradient``: ``(B, C, H, W)`` with ``C = 1`` (scalar tasks) or ``C = 2`` (flow u, v);
* ``basis``: ``(B, K, H, W)``, the K basis images, ``1 <= K <= H W``; for ``C = 2`` either
  ``(B, 2, K, H, W)`` (V_x then V_y, the paper's separate subspaces) or ``(B, K, H, W)`` (one
  basis shared by u and v);
* ``hessian``: ``(B, 1, H, W)`` (the diagonal of D, ``>= 0``) for ``C = 1``;
  ``(B, 3, H, W)`` (``D_uu, D_uv, D_vv``, each block positive semi-definite) for ``C = 2``.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_RIDGE", "FLOW_SYSTEMS", "subspace_coefficients", "subspace_step", "SubspaceMinimization"]

DEFAULT_RIDGE = 1e-6
#: How a flow (C = 2) step is solved: "cramer" (the paper, App. A) or "joint" (the coupled system).
FLOW_SYSTEMS = ("cramer", "joint")
_DTYPES = (torch.float32, torch.float64)
# Relative tolerance (in units of the dtype's eps) for "positive semi-definite" on the hessian:
# data terms built from products such as gx*gx, gx*gy (the flow case) give blocks whose
# determinant is >= 0 only up to rounding.
_PSD_TOLERANCE_EPS = 64


# ------------------------------------------------------------------------------- checks


def _check_ridge(ridge: object) -> float:
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not math.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge: expected a finite number >= 0, got {ridge!r}")
    return float(ridge)


def _check_project(project: object) -> bool:
    if not isinstance(project, bool):
        raise ValueError(f"project: expected True or False, got {project!r}")
    return project


def _check_flow_system(flow_system: object) -> str:
    if flow_system not in FLOW_SYSTEMS:
        raise ValueError(f"flow_system: expected one of {FLOW_SYSTEMS}, got {flow_system!r}")
    return flow_system  # type: ignore[return-value]


def _check_tensor(value: object, name: str, layout: str, ndims: tuple[int, ...] = (4,)) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a tensor of shape {layout}, got {type(value).__name__}")
    if value.ndim not in ndims:
        raise ValueError(f"{name}: expected {' or '.join(map(str, ndims))} dims {layout}, got {value.ndim} dims of "
                         f"shape {tuple(value.shape)}")
    if value.dtype not in _DTYPES:
        raise ValueError(f"{name}: expected dtype float32 or float64, got {value.dtype}")
    return value


def _check_inputs(x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor, *, check_values: bool = True) -> Tensor:
    """Validate and return the basis as ``(B, C, K, H, W)`` (a shared basis expanded).

    Types, shapes, dtypes and devices are always checked (metadata only, no device sync);
    ``check_values`` adds the finiteness and positive-semi-definiteness checks, which read the
    values (a host sync per check on an accelerator)."""
    x = _check_tensor(x, "x", "(B, C, H, W)")
    basis = _check_tensor(basis, "basis", "(B, K, H, W), or (B, 2, K, H, W) for flow", (4, 5))
    hessian = _check_tensor(hessian, "hessian", "(B, 1, H, W) or (B, 3, H, W)")
    gradient = _check_tensor(gradient, "gradient", "(B, C, H, W)")
    b, c, h, w = x.shape
    if b < 1 or h < 1 or w < 1:
        raise ValueError(f"x: expected B, H, W >= 1, got shape {tuple(x.shape)}")
    if c not in (1, 2):
        raise ValueError(f"x: expected C = 1 (scalar task) or C = 2 (flow u, v) channels, got C = {c}")
    for name, t in (("basis", basis), ("hessian", hessian), ("gradient", gradient)):
        if t.dtype != x.dtype or t.device != x.device:
            raise ValueError(f"{name}: expected dtype {x.dtype} on {x.device} like x, got {t.dtype} on {t.device}")
        if (t.shape[0], t.shape[-2], t.shape[-1]) != (b, h, w):
            raise ValueError(f"{name}: expected batch and spatial size (B, H, W) = {(b, h, w)} like x, got shape "
                             f"{tuple(t.shape)}")
    if basis.ndim == 5 and basis.shape[1] != c:
        raise ValueError(f"basis: a 5-dim basis (B, C, K, H, W) holds one basis per channel of x: expected "
                         f"C = {c}, got shape {tuple(basis.shape)}" + ("" if c == 2 else "; use (B, K, H, W)"))
    k = basis.shape[-3]
    if not 1 <= k <= h * w:
        raise ValueError(f"basis: expected 1 <= K <= H*W = {h * w} basis images, got K = {k}")
    expected = 1 if c == 1 else 3
    if hessian.shape[1] != expected:
        layout = "the diagonal of D" if c == 1 else "(D_uu, D_uv, D_vv) per pixel"
        raise ValueError(f"hessian: expected {expected} channel(s) ({layout}) for x with C = {c}, got "
                         f"{hessian.shape[1]}")
    if gradient.shape[1] != c:
        raise ValueError(f"gradient: expected C = {c} channels like x, got {gradient.shape[1]}")
    if check_values:
        _check_values(x, basis, hessian, gradient)
    if basis.ndim == 4:
        basis = basis.unsqueeze(1).expand(b, c, k, h, w)
    return basis


def _check_values(x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor) -> None:
    """Finite inputs and a positive semi-definite D (beyond rounding); reads the values."""
    c = x.shape[1]
    with torch.no_grad():
        for name, t in (("x", x), ("basis", basis), ("hessian", hessian), ("gradient", gradient)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}: expected finite values, got NaN or inf")
        tol = _PSD_TOLERANCE_EPS * torch.finfo(x.dtype).eps
        scale = hessian.abs().amax()
        if c == 1:
            if bool(hessian.amin() < -tol * scale):
                raise ValueError(f"hessian: expected the diagonal of D >= 0, got a minimum of "
                                 f"{float(hessian.amin()):.3g}")
        else:
            duu, duv, dvv = hessian.unbind(1)
            low = torch.minimum(duu, dvv).amin()
            det = (duu * dvv - duv * duv).amin()
            if bool(low < -tol * scale) or bool(det < -tol * scale * scale):
                raise ValueError(f"hessian: expected positive semi-definite 2x2 blocks (D_uu, D_vv >= 0 and "
                                 f"D_uu D_vv - D_uv^2 >= 0), got min(D_uu, D_vv) = {float(low):.3g} and a "
                                 f"smallest determinant of {float(det):.3g}")


# ------------------------------------------------------------------------------- linear algebra


def _solve_spd(a: Tensor, rhs: Tensor, *, ridge: float, what: str, per_item: int = 1) -> Tensor:
    """``(A + ridge mean(diag A) I)^-1 rhs`` per system: Cholesky, pseudo-inverse where it fails.

    ``a``: ``(S, n, n)`` symmetric positive semi-definite; ``rhs``: ``(S, n, m)``; system ``s``
    belongs to batch item ``s // per_item`` (for the warning).
    """
    n = a.shape[-1]
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    diagonal = a.diagonal(dim1=-2, dim2=-1)
    a = a + (ridge * diagonal.mean(-1))[:, None, None] * eye
    chol, info = torch.linalg.cholesky_ex(a)
    with torch.no_grad():
        # A factorisation that "succeeds" with pivots at rounding level is as useless as a failed
        # one (its solution is dominated by noise), so both go to the fallback.
        pivot = chol.detach().diagonal(dim1=-2, dim2=-1).square().amin(-1)
        scale = a.detach().diagonal(dim1=-2, dim2=-1).amax(-1)
        failed = (info != 0) | ~(pivot > n * torch.finfo(a.dtype).eps * scale)
    if not bool(failed.any()):
        return torch.cholesky_solve(rhs, chol)
    # Refactor with the failed systems replaced by I so that no NaN from their factor reaches the
    # backward pass of the systems that succeeded.
    chol, _ = torch.linalg.cholesky_ex(torch.where(failed[:, None, None], eye, a))
    solution = torch.cholesky_solve(rhs, chol)
    systems = failed.nonzero().flatten()
    fallback = torch.linalg.pinv(a[systems], hermitian=True) @ rhs[systems]
    solution = solution.index_put((systems,), fallback)
    shown = sorted({s // per_item for s in systems.tolist()})
    warnings.warn(
        f"subspace_step: the {what} matrix is not numerically positive definite for batch item(s) "
        f"{shown[:10]}{'...' if len(shown) > 10 else ''} (ridge = {ridge:g}); solved by the pseudo-inverse "
        "(minimum-norm coefficients) instead. The basis is probably rank deficient or D vanishes on its "
        "support: use a larger ridge (e.g. 1e-4) or a better-conditioned basis.",
        RuntimeWarning, stacklevel=4)
    return solution


def _cramer(hessian: Tensor, gradient: Tensor) -> tuple[Tensor, Tensor]:
    """App. A: ``(B, 3, N)``, ``(B, 2, N)`` -> diagonal ``(det, det)`` and gradient ``(det_x, det_y)``."""
    duu, duv, dvv = hessian.unbind(1)
    du, dv = gradient.unbind(1)
    det = duu * dvv - duv * duv
    return torch.stack((det, det), 1), torch.stack((du * dvv - duv * dv, duu * dv - du * duv), 1)


def _coefficients(x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor, *, project: bool,
                  ridge: float, flow_system: str) -> tuple[Tensor, Tensor | None]:
    """``(c, a)``: c of Eq. 6 (Eq. 4 without projection) and the projection coefficients a of x.

    ``basis`` is ``(B, C, K, H, W)``. Shapes: c and a are ``(B, C, K)``; a is None without
    projection.
    """
    b, channels = x.shape[:2]
    k = basis.shape[2]
    x = x.flatten(2)  # (B, C, N)
    v = basis.flatten(3)  # (B, C, K, N)
    d = gradient.flatten(2)  # (B, C, N)
    h = hessian.flatten(2)  # (B, 1 or 3, N)

    projection = None
    if project:
        gram = (v @ v.transpose(-1, -2)).flatten(0, 1)  # (B C, K, K)
        rhs = (v @ x.unsqueeze(-1)).flatten(0, 1)  # (B C, K, 1)
        projection = _solve_spd(gram, rhs, ridge=ridge, what="Gram V'V", per_item=channels).reshape(b, channels, k)
        r = (projection.unsqueeze(-2) @ v).squeeze(-2) - x  # (P - I) x per channel

    if channels == 2 and flow_system == "joint":
        duu, duv, dvv = h.unbind(1)
        dd = torch.stack((torch.stack((duu, duv), 1), torch.stack((duv, dvv), 1)), 1)  # (B, 2, 2, N)
        if project:
            d = d + torch.einsum("bijn,bjn->bin", dd, r)  # d + D r
        # V'DV by column-wise products: block (i, j) is V_i diag(D_ij) V_j', 2K x 2K in all.
        normal = torch.einsum("bikn,bijn,bjln->bikjl", v, dd, v).reshape(b, 2 * k, 2 * k)
        rhs = -torch.einsum("bikn,bin->bik", v, d).reshape(b, 2 * k, 1)
        c = _solve_spd(normal, rhs, ridge=ridge, what="normal V'DV").reshape(b, 2, k)
        return c, projection

    # One scalar problem per channel: the 1-D tasks, or flow by Cramer's rule (App. A).
    diagonal, d = (h, d) if channels == 1 else _cramer(h, d)  # (B, C, N) each
    if project:
        d = d + diagonal * r
    normal = torch.einsum("bckn,bcn,bcln->bckl", v, diagonal, v).flatten(0, 1)  # (B C, K, K)
    rhs = -torch.einsum("bckn,bcn->bck", v, d).reshape(b * channels, k, 1)
    c = _solve_spd(normal, rhs, ridge=ridge, what="normal V'DV", per_item=channels).reshape(b, channels, k)
    return c, projection


# ------------------------------------------------------------------------------- public API


def subspace_coefficients(x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor, *, project: bool = True,
                          ridge: float = DEFAULT_RIDGE, flow_system: str = "cramer", check_values: bool = True) -> Tensor:
    """The coefficients ``c`` of the increment in the basis (Eq. 6, or Eq. 4 without projection).

    ``c = -(V'DV)^-1 V'(d + D r)`` with ``r = (V(V'V)^-1V' - I) x`` when ``project``, else
    ``c = -(V'DV)^-1 V'd`` (for flow with ``flow_system="cramer"``, per component with D = det and
    d = det_x, det_y); the same solve as :func:`subspace_step` (see there for the arguments).

    Returns:
        ``(B, C, K)``: ``c[:, 0]`` the coefficients of the u (or only) channel in its basis,
        ``c[:, 1]`` of v.

    Raises:
        ValueError: as :func:`subspace_step`.
    """
    project, ridge = _check_project(project), _check_ridge(ridge)
    flow_system = _check_flow_system(flow_system)
    basis = _check_inputs(x, basis, hessian, gradient, check_values=check_values)
    return _coefficients(x, basis, hessian, gradient, project=project, ridge=ridge, flow_system=flow_system)[0]


def subspace_step(x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor, *, project: bool = True,
                  ridge: float = DEFAULT_RIDGE, flow_system: str = "cramer", check_values: bool = True) -> Tensor:
    """One LSM iteration: minimise the quadratic model of the data term over a learned subspace.

    With ``project`` (the paper's method, Sec. 3.3)::

        r = (V(V'V)^-1V' - I) x,   c = -(V'DV)^-1 V'(d + D r)   (Eq. 6),   x <- x + r + V c

    which lies in span(V); without it (the ablation "w/o subspace projection", Eq. 4)::

        c = -(V'DV)^-1 V'd,   x <- x + V c

    For flow (``C = 2``) with ``flow_system="cramer"`` (App. A), u and v are two 1-D problems
    with D = det and d = det_x (u), det_y (v), each on its own subspace (V_x, V_y); with
    ``"joint"``, ``[c_u; c_v]`` minimises the coupled model over V_x x V_y (one 2K x 2K system).
    ``ridge * mean(diag)`` is added to the diagonals of ``V'DV`` and ``V'V`` (per system)
    because they are only positive semi-definite when ``D`` has zero entries or ``V`` is rank
    deficient; ``ridge = 0`` is the paper's exact step.

    Args:
        x: ``(B, C, H, W)`` current solution, ``C`` = 1 or 2.
        basis: ``(B, K, H, W)`` the basis images (the columns of V), ``1 <= K <= H W``; for
            ``C = 2`` also ``(B, 2, K, H, W)``: V_x and V_y (a 4-dim basis is shared by u and v).
        hessian: ``(B, 1, H, W)`` the diagonal of D (``C = 1``), or ``(B, 3, H, W)`` the entries
            ``(D_uu, D_uv, D_vv)`` of each pixel's symmetric 2 x 2 block (``C = 2``); positive
            semi-definite.
        gradient: ``(B, C, H, W)`` the first derivatives d.
        project: project ``x`` onto span(V) first (Eq. 5-6); False gives Eq. 4.
        ridge: relative diagonal shift ``>= 0`` of the K x K systems.
        flow_system: ``"cramer"`` (the paper) or ``"joint"``; ignored for ``C = 1``.
        check_values: also check that the inputs are finite and D positive semi-definite (reads
            the values: one host sync per check on an accelerator). Shapes, dtypes and devices
            are always checked. A caller that guarantees both by construction and validates its
            own inputs once (the LSM model: Gauss-Newton D, checked images) passes False in its
            inner loop.

    Returns:
        ``(B, C, H, W)`` the updated solution, differentiable with respect to all four inputs.

    Shape:
        x, gradient ``(B, C, H, W)``; basis ``(B, K, H, W)`` or ``(B, C, K, H, W)``; hessian
        ``(B, 1 or 3, H, W)``; output ``(B, C, H, W)``. Works on any device, float32 or float64.

    Raises:
        ValueError: an argument is not a float32/float64 tensor of the right number of dims,
            B/H/W, dtype or device differ from x, C is not 1 or 2, a 5-dim basis has not C
            bases, hessian has not 1 (C = 1) or 3 (C = 2) channels, K is not in [1, H W], an
            input has NaN or inf, D has a negative diagonal entry or a 2 x 2 block that is not
            positive semi-definite (beyond rounding) (these two only with ``check_values``),
            ``ridge`` is negative, ``project`` is not a
            bool or ``flow_system`` is unknown.

    Warns:
        RuntimeWarning: a system was numerically singular for some batch items and was solved
            by the pseudo-inverse; the warning names the items and suggests a larger ridge.
    """
    project, ridge = _check_project(project), _check_ridge(ridge)
    flow_system = _check_flow_system(flow_system)
    basis = _check_inputs(x, basis, hessian, gradient, check_values=check_values)
    c, projection = _coefficients(x, basis, hessian, gradient, project=project, ridge=ridge,
                                  flow_system=flow_system)
    v = basis.flatten(3)  # (B, C, K, N)
    if project:
        # x + r + V c = P x + V c = V (a + c): written in the basis so the result is in span(V)
        # up to the rounding of one product.
        out = ((projection + c).unsqueeze(-2) @ v).squeeze(-2)
    else:
        out = x.flatten(2) + (c.unsqueeze(-2) @ v).squeeze(-2)
    return out.reshape(x.shape)


class SubspaceMinimization(nn.Module):
    """Module form of :func:`subspace_step`: stores ``project``, ``ridge`` and ``flow_system``.

    ``SubspaceMinimization(project=True)(x, basis, hessian, gradient)`` equals
    ``subspace_step(x, basis, hessian, gradient, project=True)``. No parameters: the basis is
    produced by the caller's network.
    """

    def __init__(self, *, project: bool = True, ridge: float = DEFAULT_RIDGE, flow_system: str = "cramer"):
        super().__init__()
        self.project = _check_project(project)
        self.ridge = _check_ridge(ridge)
        self.flow_system = _check_flow_system(flow_system)

    def forward(self, x: Tensor, basis: Tensor, hessian: Tensor, gradient: Tensor) -> Tensor:
        return subspace_step(x, basis, hessian, gradient, project=self.project, ridge=self.ridge,
                             flow_system=self.flow_system)

    def extra_repr(self) -> str:
        return f"project={self.project}, ridge={self.ridge:g}, flow_system={self.flow_system!r}"
