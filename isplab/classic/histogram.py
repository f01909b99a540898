"""Histogram equalisation and CLAHE on the lightness of an sRGB image.

Both work on CIELAB L* only (via kornia), so hue and saturation are kept; this is the
post-processing step of seed MPSE. Inputs and outputs are sRGB in [0, 1].
"""

from __future__ import annotations

import kornia
import torch

from isplab.classic._checks import check_image


def equalize_channel(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Global histogram equalisation of single-channel images ``N x 1 x H x W`` in [0, 1].

    Maps each value through the normalised cumulative histogram (``bins`` bins over
    [0, 1]), linearly interpolated between bin centres, as scikit-image's
    ``exposure.equalize_hist`` does on an image spanning [0, 1].
    """
    check_image(x, 1, "x")
    n = x.shape[0]
    flat = x.reshape(n, -1).clamp(0.0, 1.0)
    out = torch.empty_like(flat)
    centers = (torch.arange(bins, dtype=flat.dtype, device=flat.device) + 0.5) / bins
    for i in range(n):
        hist = torch.histc(flat[i], bins=bins, min=0.0, max=1.0)
        cdf = torch.cumsum(hist, 0)
        cdf = cdf / cdf[-1]
        out[i] = _interp(flat[i], centers, cdf)
    return out.reshape_as(x)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` in torch (xp increasing; constant beyond the ends)."""
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return y0 + t * (y1 - y0)


def _on_lightness(srgb: torch.Tensor, fn) -> torch.Tensor:
    lab = kornia.color.rgb_to_lab(srgb.clamp(0.0, 1.0))
    lightness = fn(lab[:, :1] / 100.0) * 100.0
    out = kornia.color.lab_to_rgb(torch.cat([lightness, lab[:, 1:]], dim=1), clip=True)
    return out


def histogram_equalize(srgb: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Global histogram equalisation of L* (CIELAB lightness), colours kept.

    Args:
        srgb: ``N x 3 x H x W`` sRGB in [0, 1] (or ``N x 1`` grey, equalised directly).
        bins: histogram bins.

    Returns:
        Same shape, sRGB in [0, 1].
    """
    check_image(srgb, (1, 3), "srgb")
    if srgb.shape[1] == 1:
        return equalize_channel(srgb, bins)
    return _on_lightness(srgb, lambda v: equalize_channel(v, bins))


def clahe(
    srgb: torch.Tensor, clip_limit: float = 2.0, grid_size: tuple[int, int] = (8, 8)
) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation of L* (kornia's ``equalize_clahe``).

    Args:
        srgb: ``N x 3 x H x W`` sRGB in [0, 1] (or ``N x 1`` grey).
        clip_limit: histogram clip limit (OpenCV's convention; 2-4 are usual values).
        grid_size: tiles per (rows, columns).

    Returns:
        Same shape, sRGB in [0, 1].
    """
    check_image(srgb, (1, 3), "srgb")

    def fn(v):
        return kornia.enhance.equalize_clahe(v.clamp(0.0, 1.0), clip_limit, grid_size)

    if srgb.shape[1] == 1:
        return fn(srgb)
    return _on_lightness(srgb, fn)
