"""A light edge-preserving denoise for the classical pipeline."""

from __future__ import annotations

import kornia
import torch

from isplab.classic._checks import check_image


def denoise(
    rgb: torch.Tensor, strength: float = 0.02, chroma_only: bool = False, kernel_size: int = 5
) -> torch.Tensor:
    """Bilateral filter (kornia) in YCbCr, on all channels or on chroma only.

    Args:
        rgb: ``N x 3 x H x W`` in [0, 1] (linear or sRGB; the filter is space-agnostic).
        strength: range sigma, in the units of the data (noise std to smooth away).
            0 returns the input unchanged.
        chroma_only: filter Cb/Cr only, keeping luma detail (colour noise removal).
        kernel_size: odd spatial window; the spatial sigma is ``kernel_size / 4``.

    Returns:
        ``N x 3 x H x W``, same space as the input.
    """
    check_image(rgb, 3, "rgb")
    if strength <= 0:
        return rgb
    ycc = kornia.color.rgb_to_ycbcr(rgb)
    sigma = kernel_size / 4.0
    filtered = kornia.filters.bilateral_blur(
        ycc, kernel_size, strength, (sigma, sigma), border_type="reflect"
    )
    if chroma_only:
        filtered = torch.cat([ycc[:, :1], filtered[:, 1:]], dim=1)
    return kornia.color.ycbcr_to_rgb(filtered)
