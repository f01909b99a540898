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
