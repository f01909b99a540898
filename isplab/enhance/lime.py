"""LIME low-light enhancement (Guo, Li & Ling, "LIME: Low-light image enhancement via
illumination map estimation", IEEE TIP 2017), simple baselines, and the lightness-order error.

LIME, on an sRGB image ``L`` in [0, 1] (the observed, display-encoded values, as the paper):

1. initial illumination ``T_hat(x) = max_c L_c(x)``;
2. refined illumination ``t`` solving the sparse system
   ``(I + alpha sum_{d in {h, v}} D_d^T diag(w_d) D_d) t = t_hat`` with forward differences
   ``D_d`` (row-major, zero at the last row/column) and structure-aware weights, strategy III:
   ``W_d = 1 / (|G_sigma * grad_d T_hat| + eps)`` (normalised Gaussian, so the numerator
   ``sum G_sigma`` is 1), ``w_d = W_d / (|grad_d T_hat| + eps)``;
3. ``T = t^gamma``; reflectance ``R = L / max(T, t_floor)`` (clipped to [0, 1]);
4. optional denoise, recomposed ``R T + R_d (1 - T)`` (dark parts take the denoised values).
   The paper denoises Y with BM3D; no BM3D here: ``R_d`` is :func:`isplab.classic.denoise`
   (bilateral filter in YCbCr, all channels).

Defaults: alpha 0.15, sigma 2, gamma 0.8, eps 1e-3. The solve uses SuperLU
(``scipy.sparse.linalg.spsolve``) up to :data:`DIRECT_MAX_PIXELS`, else Jacobi-preconditioned
conjugate gradients (the matrix is symmetric positive definite).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from isplab.classic._checks import check_image
from isplab.errors import InvalidInputError

ALPHA = 0.15
SIGMA = 2.0
GAMMA = 0.8
EPS = 1e-3
T_FLOOR = 1e-2
DIRECT_MAX_PIXELS = 300_000


def _diff_matrix(n: int):
    """``n x n`` forward difference (``x[i+1] - x[i]``), last row zero."""
    import scipy.sparse as sp

    if n == 1:
        return sp.csr_matrix((1, 1))
    main = -np.ones(n)
    main[-1] = 0.0
    return sp.diags([main, np.ones(n - 1)], [0, 1], shape=(n, n), format="csr")


def gradient_operators(h: int, w: int):
    """Sparse forward-difference operators ``(D_h, D_v)`` (``HW x HW``) on row-major images:
    horizontal ``x[y, x+1] - x[y, x]`` and vertical ``x[y+1, x] - x[y, x]``, zero at the
    last column / row."""
    import scipy.sparse as sp

    dh = sp.kron(sp.identity(h, format="csr"), _diff_matrix(w), format="csr")
    dv = sp.kron(_diff_matrix(h), sp.identity(w, format="csr"), format="csr")
    return dh, dv


def structure_weights(t_hat: np.ndarray, sigma: float = SIGMA, eps: float = EPS
                      ) -> tuple[np.ndarray, np.ndarray]:
    """LIME strategy III weights ``(w_h, w_v)``, each ``H x W``, of an ``H x W`` initial
    illumination map (see the module doc)."""
    from scipy.ndimage import gaussian_filter

    t = np.asarray(t_hat, dtype=np.float64)
    gh = np.zeros_like(t)
    gv = np.zeros_like(t)
    gh[:, :-1] = t[:, 1:] - t[:, :-1]
    gv[:-1, :] = t[1:, :] - t[:-1, :]
    out = []
    for g in (gh, gv):
        big_w = 1.0 / (np.abs(gaussian_filter(g, sigma, mode="nearest")) + eps)
        out.append(big_w / (np.abs(g) + eps))
    return out[0], out[1]


def lime_system(t_hat: np.ndarray, alpha: float = ALPHA, sigma: float = SIGMA,
                eps: float = EPS):
    """The sparse SPD matrix ``I + alpha sum_d D_d^T diag(w_d) D_d`` (``HW x HW`` CSR)."""
    import scipy.sparse as sp

    h, w = t_hat.shape
    dh, dv = gradient_operators(h, w)
    wh, wv = structure_weights(t_hat, sigma, eps)
    lap = dh.T @ sp.diags(wh.ravel()) @ dh + dv.T @ sp.diags(wv.ravel()) @ dv
    return (sp.identity(h * w, format="csr") + alpha * lap).tocsr()


def refine_illumination(t_hat: np.ndarray, alpha: float = ALPHA, sigma: float = SIGMA,
                        eps: float = EPS, solver: str = "auto") -> np.ndarray:
    """Solve LIME's system for the refined illumination ``t`` (``H x W`` float64).

    ``solver``: ``direct`` (spsolve), ``cg`` or ``auto`` (direct up to
    :data:`DIRECT_MAX_PIXELS`).
    """
    from scipy.sparse.linalg import LinearOperator, cg, spsolve

    t_hat = np.asarray(t_hat, dtype=np.float64)
    if t_hat.ndim != 2 or not np.isfinite(t_hat).all():
        raise InvalidInputError(f"t_hat must be a finite H x W array, got {t_hat.shape}")
    if not (alpha >= 0 and sigma > 0 and eps > 0):
        raise InvalidInputError(f"need alpha >= 0, sigma > 0, eps > 0; got {alpha}, {sigma}, "
                                f"{eps}")
    if solver not in ("auto", "direct", "cg"):
        raise InvalidInputError(f"solver must be auto, direct or cg, got {solver!r}")
    a = lime_system(t_hat, alpha, sigma, eps)
    b = t_hat.ravel()
    if solver == "direct" or (solver == "auto" and b.size <= DIRECT_MAX_PIXELS):
        t = spsolve(a.tocsc(), b)
    else:
        inv_diag = 1.0 / a.diagonal()
        pre = LinearOperator(a.shape, matvec=lambda v: inv_diag * v)
        t, info = cg(a, b, x0=b.copy(), rtol=1e-6, maxiter=2000, M=pre)
        if info > 0:
            raise InvalidInputError(f"LIME: conjugate gradients did not converge in {info} "
                                    "iterations")
    return np.asarray(t).reshape(t_hat.shape)


def illumination_map(srgb: torch.Tensor, alpha: float = ALPHA, sigma: float = SIGMA,
                     eps: float = EPS, solver: str = "auto") -> torch.Tensor:
    """Refined illumination ``t`` (before gamma) of ``N x 3 x H x W`` sRGB in [0, 1]
    -> ``N x 1 x H x W``."""
    check_image(srgb, 3, "srgb")
    t_hat = srgb.detach().amax(1).double().cpu().numpy()
    maps = [refine_illumination(t, alpha, sigma, eps, solver) for t in t_hat]
    return torch.from_numpy(np.stack(maps)[:, None]).to(srgb)


def lime(srgb: torch.Tensor, alpha: float = ALPHA, gamma: float = GAMMA, sigma: float = SIGMA,
         eps: float = EPS, denoise: float = 0.0, t_floor: float = T_FLOOR,
         solver: str = "auto") -> torch.Tensor:
    """LIME low-light enhancement (module doc).

    Args:
        srgb: ``N x 3 x H x W`` sRGB in [0, 1] (a dark photo).
        alpha: smoothness weight of the illumination solve.
        gamma: ``T = t^gamma`` (< 1 brightens less, keeps some darkness).
        sigma: Gaussian sigma of strategy III.
        eps: small constant of the weights.
        denoise: range sigma of the bilateral denoise of the reflectance (0 = off).
        t_floor: lower bound of ``T`` in the division (caps the gain at ``1 / t_floor``).
        solver: ``auto`` | ``direct`` | ``cg``.

    Returns:
        ``N x 3 x H x W`` sRGB in [0, 1].
    """
    check_image(srgb, 3, "srgb")
    if not (gamma > 0 and 0 < t_floor <= 1 and denoise >= 0):
        raise InvalidInputError(f"need gamma > 0, 0 < t_floor <= 1, denoise >= 0; got "
                                f"{gamma}, {t_floor}, {denoise}")
    x = srgb.clamp(0, 1)
    t = illumination_map(x, alpha, sigma, eps, solver).clamp(0, 1)
    big_t = t.pow(gamma)
    r = (x / big_t.clamp_min(t_floor)).clamp(0, 1)
    if denoise > 0:
        from isplab.classic import denoise as bilateral

        rd = bilateral(r, strength=denoise).clamp(0, 1)
        r = r * big_t + rd * (1 - big_t)
    return r


def gamma_enhance(srgb: torch.Tensor, gamma: float = 2.2) -> torch.Tensor:
    """Baseline: decode sRGB to linear, apply ``linear ** (1 / gamma)`` there (only on linear
    data), re-encode to sRGB. ``gamma > 1`` brightens; ``N x 3 x H x W`` in [0, 1]."""
    from isplab.classic import srgb_gamma, srgb_to_linear

    check_image(srgb, 3, "srgb")
    if not (gamma > 0 and math.isfinite(gamma)):
        raise InvalidInputError(f"gamma must be > 0, got {gamma!r}")
    lin = srgb_to_linear(srgb.clamp(0, 1)).clamp_min(0)
    return srgb_gamma(lin.pow(1.0 / gamma)).clamp(0, 1)


def lightness_order_error(srgb: torch.Tensor, enhanced: torch.Tensor, size: int = 50
                          ) -> torch.Tensor:
    """Lightness-order error (Wang et al. 2013, used by LIME): lightness = max RGB; both
    maps are downsampled (area) so that the shorter side has ``size`` pixels; for every pixel
    ``x``, ``RD(x)`` counts the pixels ``y`` whose order ``L(x) >= L(y)`` differs between the
    two images; LOE = mean of ``RD``. 0 when the order is kept; lower is better.

    Args:
        srgb, enhanced: ``N x 3 x H x W`` in [0, 1], same shape.

    Returns:
        ``N`` values (pixel counts at the downsampled size).
    """
    check_image(srgb, 3, "srgb")
    check_image(enhanced, 3, "enhanced")
    if srgb.shape != enhanced.shape:
        raise InvalidInputError(f"shapes differ: {tuple(srgb.shape)} vs "
                                f"{tuple(enhanced.shape)}")
    h, w = srgb.shape[-2:]
    scale = min(1.0, size / min(h, w))
    hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
    out = []
    for a, b in zip(srgb, enhanced, strict=True):
        la = F.interpolate(a.amax(0)[None, None].double(), (hs, ws), mode="area").flatten()
        lb = F.interpolate(b.amax(0)[None, None].double(), (hs, ws), mode="area").flatten()
        ua = la[:, None] >= la[None, :]
        ub = lb[:, None] >= lb[None, :]
        out.append((ua ^ ub).sum(1).double().mean())
    return torch.stack(out).to(srgb.dtype)


def post_process(srgb: torch.Tensor, method: str, **opts) -> torch.Tensor:
    """MPSE phase 3 on ``N x 3 x H x W`` sRGB: ``none``, ``he`` (global histogram
    equalisation of L*), ``clahe`` (L*, clip 2.0, 8 x 8 tiles), ``lime`` or ``gamma``
    (:func:`gamma_enhance`, linear data). ``opts`` go to the chosen function."""
    from isplab.classic import clahe, histogram_equalize

    fns = {"none": lambda x, **_: x, "he": histogram_equalize, "clahe": clahe, "lime": lime,
           "gamma": gamma_enhance}
    if method not in fns:
        raise InvalidInputError(f"post-processing must be one of {', '.join(fns)}, "
                                f"got {method!r}")
    return fns[method](srgb, **opts)
