"""Levin's matting Laplacian and the photorealism energy of Deep Photo Style Transfer.

Levin, Lischinski & Weiss, "A closed-form solution to natural image matting" (PAMI 2008);
Luan et al., "Deep Photo Style Transfer" (CVPR 2017) use ``sum_c V_c^T L V_c`` as the
photorealism regulariser: it is ~0 when the output is, in every 3 x 3 window, an affine
function of the input's colours.

Construction (all 3 x 3 windows lying fully inside the image, ``|w| = 9``):

    A_ij = sum_{k: i, j in w_k} (1 + (I_i - mu_k)^T (Sigma_k + eps/9 I_3)^-1 (I_j - mu_k)) / 9
    L    = diag(A 1) - A

``mu_k``, ``Sigma_k`` are the window's colour mean and population covariance. Pixels are
indexed row-major (``p = y * W + x``). ``L`` is symmetric, positive semi-definite and its
rows sum to 0 (up to rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from isplab.errors import InvalidInputError

#: Levin's regulariser (the TensorFlow port of Deep Photo Style Transfer uses 1e-5).
MATTING_EPS = 1e-7


def _as_hwc(image: torch.Tensor | np.ndarray, name: str = "image") -> np.ndarray:
    """``1 x 3 x H x W`` / ``3 x H x W`` tensor or ``H x W x 3`` array -> float64 HWC."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise InvalidInputError(f"{name}: one image expected, got a batch of "
                                        f"{t.shape[0]}")
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise InvalidInputError(f"{name} must be 1 x 3 x H x W, got {tuple(image.shape)}")
        arr = t.permute(1, 2, 0).double().numpy()
    else:
        arr = np.asarray(image, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise InvalidInputError(f"{name} must be H x W x 3, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    if min(arr.shape[:2]) < 3:
        raise InvalidInputError(f"{name} needs H, W >= 3 for 3 x 3 windows, got {arr.shape[:2]}")
    return arr


def matting_laplacian_scipy(image: torch.Tensor | np.ndarray, eps: float = MATTING_EPS):
    """The matting Laplacian as a ``scipy.sparse.csr_matrix`` (float64, ``HW x HW``).

    Args:
        image: RGB image in [0, 1] (the space the photorealism is judged in; Deep Photo Style
            Transfer uses the sRGB content image), ``1 x 3 x H x W`` tensor or ``H x W x 3``.
        eps: regulariser added as ``eps / 9`` to each window covariance (1e-7, or 1e-5).
    """
    import scipy.sparse as sp

    if not (eps > 0):
        raise InvalidInputError(f"matting eps must be > 0, got {eps!r}")
    img = _as_hwc(image)
    h, w, _ = img.shape
    n = h * w
    idx = np.arange(n).reshape(h, w)
    # indices of the 9 pixels of each window, windows centred on interior pixels
    offsets = [(dy, dx) for dy in range(3) for dx in range(3)]
    win = np.stack([idx[dy:h - 2 + dy, dx:w - 2 + dx].ravel() for dy, dx in offsets], axis=1)
    flat = img.reshape(n, 3)
    colours = flat[win]                                      # K x 9 x 3
    mu = colours.mean(axis=1, keepdims=True)                 # K x 1 x 3
    x = colours - mu                                         # K x 9 x 3
    cov = np.einsum("kic,kid->kcd", x, x) / 9.0               # K x 3 x 3 (population)
    inv = np.linalg.inv(cov + (eps / 9.0) * np.eye(3))
    vals = (1.0 + np.einsum("kic,kcd,kjd->kij", x, inv, x)) / 9.0  # K x 9 x 9
    rows = np.repeat(win, 9, axis=1).ravel()
    cols = np.tile(win, (1, 9)).ravel()
    a = sp.coo_matrix((vals.ravel(), (rows, cols)), shape=(n, n)).tocsr()  # sums duplicates
    lap = sp.diags(np.asarray(a.sum(axis=1)).ravel()) - a
    return lap.tocsr()


def matting_laplacian(image: torch.Tensor | np.ndarray, eps: float = MATTING_EPS,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Levin's matting Laplacian of an RGB image as a coalesced ``torch.sparse_coo`` tensor.

    Args:
        image: ``1 x 3 x H x W`` (or ``3 x H x W``) RGB in [0, 1], or ``H x W x 3`` array.
        eps: window covariance regulariser (default 1e-7; the TF port uses 1e-5).
        dtype: dtype of the values (built in float64, then cast).

    Returns:
        ``HW x HW`` sparse tensor, row-major pixel indices, about ``25 HW`` non-zeros.
    """
    lap = matting_laplacian_scipy(image, eps).tocoo()
    indices = torch.from_numpy(np.vstack([lap.row, lap.col]).astype(np.int64))
    values = torch.from_numpy(lap.data).to(dtype)
    return torch.sparse_coo_tensor(indices, values, lap.shape, check_invariants=False).coalesce()


def matting_energy(image: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
    """Photorealism energy ``sum_c V_c^T L V_c`` of an image (differentiable).

    Args:
        image: ``1 x C x H x W`` (or ``C x H x W``), values in the units ``L`` was built for;
            ``V_c`` is channel ``c`` flattened row-major.
        laplacian: ``HW x HW`` sparse (or dense) Laplacian from :func:`matting_laplacian`.

    Returns:
        Scalar tensor; its gradient with respect to ``V_c`` is ``2 L V_c`` (L symmetric),
        obtained by autograd through ``torch.sparse.mm``.
    """
    if not isinstance(image, torch.Tensor):
        raise InvalidInputError(f"image must be a tensor, got {type(image).__name__}")
    x = image[0] if image.ndim == 4 else image
    if image.ndim == 4 and image.shape[0] != 1:
        raise InvalidInputError(f"matting_energy takes one image, got a batch of "
                                f"{image.shape[0]}")
    if x.ndim != 3:
        raise InvalidInputError(f"image must be 1 x C x H x W, got {tuple(image.shape)}")
    c, h, w = x.shape
    if laplacian.shape != (h * w, h * w):
        raise InvalidInputError(f"Laplacian is {tuple(laplacian.shape)} but the image has "
                                f"{h} x {w} = {h * w} pixels")
    v = x.reshape(c, h * w).t()                                  # HW x C
    lap = laplacian.to(dtype=v.dtype, device=v.device)
    lv = torch.sparse.mm(lap, v) if lap.is_sparse else lap @ v
    return (v * lv).sum()
