"""Colour matrices of the metadata: XYZ <-> linear sRGB, and the camera -> sRGB matrix a raw
file's XYZ -> camera matrix (DNG ColorMatrix, LibRaw's Adobe matrix) implies. NumPy only."""

from __future__ import annotations

import numpy as np

from isplab.errors import InvalidInputError

#: Linear sRGB -> CIE XYZ, D65 white (IEC 61966-2-1).
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
#: CIE XYZ (D65) -> linear sRGB.
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)


def camera_to_srgb_from_xyz(xyz_to_camera: np.ndarray) -> np.ndarray:
    """Camera -> linear sRGB matrix from an XYZ -> camera matrix (DNG ColorMatrix).

    As dcraw/LibRaw do: ``srgb_to_camera = xyz_to_camera @ SRGB_TO_XYZ``, rows normalised to
    sum to 1 (so that white-balanced neutral camera values map to neutral sRGB), then
    inverted. The result applies to *white-balanced* camera RGB.
    """
    m = np.asarray(xyz_to_camera, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise InvalidInputError(f"xyz_to_camera must be a finite 3x3 matrix, got {m.shape}")
    srgb_to_cam = m @ SRGB_TO_XYZ
    sums = srgb_to_cam.sum(axis=1, keepdims=True)
    if np.any(np.abs(sums) < 1e-12):
        raise InvalidInputError("xyz_to_camera has a row that maps white to zero")
    srgb_to_cam = srgb_to_cam / sums
    return np.linalg.inv(srgb_to_cam)


def xyz_from_camera_to_srgb(camera_to_srgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`camera_to_srgb_from_xyz` up to row scaling: an XYZ -> camera matrix
    (for writing a DNG ColorMatrix1 when only camera -> sRGB is known)."""
    m = np.asarray(camera_to_srgb, dtype=np.float64)
    return np.linalg.inv(m) @ XYZ_TO_SRGB
