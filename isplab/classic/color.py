"""Colour matrices: camera RGB -> linear sRGB."""

from __future__ import annotations

import numpy as np
import torch

from isplab.classic._checks import check_image
from isplab.errors import InvalidInputError
from isplab.raw.matrices import (  # noqa: F401  (part of the classic stages' API)
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    camera_to_srgb_from_xyz,
    xyz_from_camera_to_srgb,
)

#: Rec. 601 luma weights, for gamma-encoded RGB (OpenCV's RGB2GRAY, TensorFlow's
#: rgb_to_grayscale up to rounding): texture, sharpness and alignment measures
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Rec. 709 / sRGB luminance weights, for linear RGB (the Y row of sRGB -> XYZ): light
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of gamma-encoded RGB: ``N x 3 x H x W`` -> ``N x 1 x H x W``."""
    return (rgb * rgb.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)


def luminance(linear_rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 709 luminance of linear RGB: ``N x 3 x H x W`` -> ``N x 1 x H x W``."""
    w = linear_rgb.new_tensor(LUMINANCE_WEIGHTS).view(1, 3, 1, 1)
    return (linear_rgb * w).sum(1, keepdim=True)


def apply_color_matrix(rgb: torch.Tensor, matrix) -> torch.Tensor:
    """Apply a 3x3 colour matrix to every pixel: ``out[:, i] = sum_j M[i, j] * rgb[:, j]``.

    Args:
        rgb: ``N x 3 x H x W`` linear RGB (e.g. white-balanced camera RGB).
        matrix: ``3 x 3`` or ``N x 3 x 3`` (array or tensor), e.g. camera -> linear sRGB.

    Returns:
        ``N x 3 x H x W`` in the matrix's output space, not clipped.
    """
    check_image(rgb, 3, "rgb")
    m = torch.as_tensor(np.asarray(matrix) if not isinstance(matrix, torch.Tensor) else matrix)
    m = m.to(device=rgb.device, dtype=rgb.dtype)
    if m.shape == (3, 3):
        m = m.expand(rgb.shape[0], 3, 3)
    if m.shape != (rgb.shape[0], 3, 3):
        raise InvalidInputError(f"colour matrix must be 3x3 or N x 3 x 3, got {tuple(m.shape)}")
    n, _, h, w = rgb.shape
    return torch.bmm(m, rgb.reshape(n, 3, h * w)).reshape(n, 3, h, w)


class RootPolynomial:
    """A root-polynomial colour transform (Finlayson, Mackiewicz and Hurlbert 2015), usable
    as ClassicISP's ``color_matrix``: ``out = C @ terms(rgb)`` per pixel, with the terms of
    :func:`isplab.classic.calibration.root_polynomial_terms` (degree 2: r, g, b, sqrt(rg),
    sqrt(gb), sqrt(rb); degree 3 adds 7 cube-root terms). Every term scales with exposure.

    Args:
        coefficients: ``3 x 6`` (degree 2) or ``3 x 13`` (degree 3).
        degree: 2 or 3.
    """

    def __init__(self, coefficients, degree: int):
        c = np.asarray(coefficients, dtype=np.float64)
        if degree not in (2, 3) or c.shape != (3, {2: 6, 3: 13}.get(degree, -1)):
            raise InvalidInputError(f"root-polynomial degree {degree} needs 3 x 6 (2) or "
                                    f"3 x 13 (3) coefficients, got {c.shape}")
        self.coefficients, self.degree = c, degree

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """``N x 3 x H x W`` white-balanced linear camera RGB -> linear sRGB (not clipped)."""
        check_image(rgb, 3, "rgb")
        r, g, b = rgb.clamp(min=0).unbind(1)
        terms = [r, g, b, (r * g).sqrt(), (g * b).sqrt(), (r * b).sqrt()]
        if self.degree == 3:
            cb = torch.pow
            terms += [cb(r * g * g, 1 / 3), cb(g * b * b, 1 / 3), cb(r * b * b, 1 / 3),
                      cb(g * r * r, 1 / 3), cb(b * g * g, 1 / 3), cb(b * r * r, 1 / 3),
                      cb(r * g * b, 1 / 3)]
        c = torch.as_tensor(self.coefficients, dtype=rgb.dtype, device=rgb.device)
        return torch.einsum("kt,nthw->nkhw", c, torch.stack(terms, 1))
