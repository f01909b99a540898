"""White balance: applying gains (torch, batched) and estimating them with the estimators of
:mod:`isplab.classic.awb` (NumPy, one implementation each, in :mod:`isplab.classic.illuminant`
and :mod:`isplab.classic.ffcc`) on each image of a batch.

Gains are always given as (R, G, B) multipliers, normalised to G = 1 by the estimators.
"""

from __future__ import annotations

import numpy as np
import torch

from isplab.classic._checks import as_gains, check_image
from isplab.raw.cfa import pack, packed_offsets

_RGB_OF_PACKED = (0, 1, 1, 2)


def apply_white_balance(
    x: torch.Tensor, gains, cfa: str | None = None, clip: bool = False
) -> torch.Tensor:
    """Multiply each colour by its gain.

    Args:
        x: linear camera data, either an RGB image ``N x 3 x H x W``, a packed raw
            ``N x 4 x h x w`` (R, G1, G2, B) or a mosaic ``N x 1 x H x W`` (then ``cfa``
            is required).
        gains: (R, G, B) gains, a 3-sequence or an ``N x 3`` tensor.
        cfa: Bayer pattern of a mosaic input.
        clip: clip the result at 1 (saturated highlights stay white, as LibRaw does).

    Returns:
        Same shape as ``x``.
    """
    check_image(x, (1, 3, 4), "x")
    g = as_gains(gains, x.shape[0], x)
    if x.shape[1] == 3:
        out = x * g[:, :, None, None]
    elif x.shape[1] == 4:
        out = x * g[:, list(_RGB_OF_PACKED), None, None]
    else:
        if cfa is None:
            raise ValueError("apply_white_balance on a mosaic needs its cfa pattern")
        out = torch.empty_like(x)
        for ch, (dy, dx) in enumerate(packed_offsets(cfa)):
            gi = g[:, _RGB_OF_PACKED[ch], None, None, None]
            out[..., dy::2, dx::2] = x[..., dy::2, dx::2] * gi
    return out.clamp(max=1.0) if clip else out


def _camera_rgb(x: torch.Tensor, cfa: str | None) -> np.ndarray:
    """``N x H x W x 3`` float32 NumPy camera RGB, demosaic-free: an RGB input as it is, a
    packed or mosaic one as each 2x2 Bayer block's R, mean of its two greens, and B."""
    check_image(x, (1, 3, 4), "x")
    if x.shape[1] == 1:
        if cfa is None:
            raise ValueError("white-balance estimation on a mosaic needs its cfa pattern")
        x = pack(x, cfa)
    if x.shape[1] == 4:
        x = torch.stack([x[:, 0], (x[:, 1] + x[:, 2]) * 0.5, x[:, 3]], dim=1)
    return x.detach().float().permute(0, 2, 3, 1).cpu().numpy()


def _gains(x: torch.Tensor, cfa: str | None, illuminant) -> torch.Tensor:
    """``N x 3`` gains (G = 1), the inverse of ``illuminant(rgb)`` image by image."""
    g = [1.0 / np.asarray(illuminant(rgb), dtype=np.float64) for rgb in _camera_rgb(x, cfa)]
    return torch.as_tensor(np.stack(g), dtype=x.dtype, device=x.device)


def estimated_gains(x: torch.Tensor, method: str, cfa: str | None = None) -> torch.Tensor:
    """Gains from any estimator of :data:`isplab.classic.awb.ESTIMATORS` (gray world, white
    patch, gray edge, shades of gray, the learned one, ...), image by image, on the
    demosaic-free camera RGB (each 2x2 Bayer block's R, mean G, B for packed or mosaic input).

    Args:
        x: linear camera data (RGB ``N x 3``, packed ``N x 4`` or mosaic ``N x 1``).
        method: an estimator name (:func:`isplab.classic.awb.resolve`).
        cfa: Bayer pattern of a mosaic input.

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    from isplab.classic import awb

    return _gains(x, cfa, lambda rgb: awb.estimate(method, rgb))


def gray_world_gains(x: torch.Tensor, cfa: str | None = None, saturation: float = 0.99,
                     dark: float = 0.002) -> torch.Tensor:
    """Gray-world gains, ``N x 3`` with G = 1: :func:`isplab.classic.illuminant.gray_world`
    (the mean colour of the pixels with no channel at or above ``saturation`` and not all at
    or below ``dark``) per image of ``x`` (RGB, packed or mosaic with ``cfa``)."""
    from isplab.classic.illuminant import gray_world

    return _gains(x, cfa, lambda rgb: gray_world(rgb, saturation=saturation, dark=dark))


def white_patch_gains(x: torch.Tensor, cfa: str | None = None, percentile: float = 99.0,
                      saturation: float = 0.99, dark: float = 0.002) -> torch.Tensor:
    """White-patch gains, ``N x 3`` with G = 1: :func:`isplab.classic.illuminant.white_patch`
    (a high ``percentile`` of each colour over the usable pixels, so that a few hot pixels do
    not decide) per image of ``x`` (RGB, packed or mosaic with ``cfa``)."""
    from isplab.classic.illuminant import white_patch

    return _gains(x, cfa, lambda rgb: white_patch(rgb, percentile, saturation, dark))
