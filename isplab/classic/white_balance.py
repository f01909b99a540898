"""White balance: applying gains and estimating them (gray world, white patch in torch; every
other estimator of :mod:`isplab.classic.awb` through :func:`estimated_gains`).

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


def _rgb_blocks(x: torch.Tensor, cfa: str | None) -> torch.Tensor:
    """``N x 3 x K`` colour samples, one column per pixel (RGB input) or per 2x2 Bayer block
    (packed or mosaic input: R, mean of the two greens, B), so that every estimator can drop
    a whole pixel when one of its channels is clipped."""
    check_image(x, (1, 3, 4), "x")
    if x.shape[1] == 1:
        if cfa is None:
            raise ValueError("white-balance estimation on a mosaic needs its cfa pattern")
        x = pack(x, cfa)
    n = x.shape[0]
    if x.shape[1] == 4:
        x = torch.stack([x[:, 0], (x[:, 1] + x[:, 2]) * 0.5, x[:, 3]], dim=1)
    return x.reshape(n, 3, -1)


def usable_pixels(blocks: torch.Tensor, saturation: float = 0.99, dark: float = 0.002
                  ) -> torch.Tensor:
    """``N x K`` mask of the pixels an illuminant estimate may use: no channel clipped (at or
    above ``saturation``: a clipped channel's ratio to the others is wrong, which turns a
    white wall mint green) and not near black (max channel above ``dark``: noise and black
    level errors)."""
    top = blocks.amax(dim=1)
    return (top < saturation) & (top > dark)


def gray_world_gains(
    x: torch.Tensor, cfa: str | None = None, saturation: float = 0.99, dark: float = 0.002
) -> torch.Tensor:
    """Gray-world gains: make the mean of each colour equal over the usable pixels
    (:func:`usable_pixels`: no channel clipped, not near black).

    Args:
        x: linear camera data (RGB ``N x 3``, packed ``N x 4`` or mosaic ``N x 1``).
        cfa: Bayer pattern of a mosaic input.
        saturation: a pixel with any channel at or above this value is left out.
        dark: a pixel whose channels are all at or below this value is left out.

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    blocks = _rgb_blocks(x, cfa)
    valid = usable_pixels(blocks, saturation, dark)
    valid = torch.where(valid.any(dim=1, keepdim=True), valid, torch.ones_like(valid))
    w = valid.to(blocks.dtype)[:, None]
    m = ((blocks * w).sum(dim=2) / w.sum(dim=2).clamp(min=1)).clamp(min=1e-8)
    return m[:, 1:2] / m


def white_patch_gains(
    x: torch.Tensor, cfa: str | None = None, percentile: float = 99.0, saturation: float = 0.99,
    dark: float = 0.002,
) -> torch.Tensor:
    """White-patch (max-RGB) gains: make a high percentile of each colour equal over the
    usable pixels (:func:`usable_pixels`).

    Using a percentile rather than the maximum keeps a few hot pixels from deciding the
    result; pixels with a clipped channel are ignored (all three colours of them).

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    q = percentile / 100.0
    blocks = _rgb_blocks(x, cfa)
    valid = usable_pixels(blocks, saturation, dark)
    tops = []
    for image, keep in zip(blocks, valid, strict=True):
        cols = image[:, keep] if keep.any() else image
        if cols.shape[1] > 1_000_000:
            cols = cols[:, :: cols.shape[1] // 1_000_000 + 1]
        tops.append(torch.quantile(cols, q, dim=1))
    t = torch.stack(tops).clamp(min=1e-8)
    return t[:, 1:2] / t


def estimated_gains(x: torch.Tensor, method: str, cfa: str | None = None) -> torch.Tensor:
    """Gains from any estimator of :data:`isplab.classic.awb.ESTIMATORS` (gray edge, shades
    of gray, the learned one, ...), image by image, on the demosaic-free camera RGB (each 2x2
    Bayer block's R, mean G, B for packed or mosaic input).

    Args:
        x: linear camera data (RGB ``N x 3``, packed ``N x 4`` or mosaic ``N x 1``).
        method: an estimator name (:func:`isplab.classic.awb.resolve`).
        cfa: Bayer pattern of a mosaic input.

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    from isplab.classic import awb

    check_image(x, (1, 3, 4), "x")
    if x.shape[1] == 1:
        if cfa is None:
            raise ValueError("white-balance estimation on a mosaic needs its cfa pattern")
        x = pack(x, cfa)
    if x.shape[1] == 4:
        x = torch.stack([x[:, 0], (x[:, 1] + x[:, 2]) * 0.5, x[:, 3]], dim=1)
    rgb = x.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    g = [awb.gains(method, image) for image in rgb]
    return torch.as_tensor(np.stack(g), dtype=x.dtype, device=x.device)
