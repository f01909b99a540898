"""The classical ISP as pure torch functions (batched, ``N x C x H x W``), plus ClassicISP.

Each stage states its input/output space in its docstring: the raw stages work on linear
camera data, ``apply_color_matrix`` maps camera RGB to linear sRGB, and the gamma/tone
stages encode for display.
"""

from isplab.classic.color import (
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    apply_color_matrix,
    camera_to_srgb_from_xyz,
    xyz_from_camera_to_srgb,
)
from isplab.classic.demosaic import (
    DEMOSAIC_METHODS,
    demosaic,
    demosaic_bilinear,
    demosaic_malvar2004,
    demosaic_menon2007,
)
from isplab.classic.denoise import denoise
from isplab.classic.histogram import clahe, equalize_channel, histogram_equalize
from isplab.classic.pipeline import ClassicISP, camera_to_srgb_matrix
from isplab.classic.tone import (
    auto_bright_gain,
    exposure,
    filmic,
    gamma_curve,
    inverse_smoothstep,
    power_gamma,
    smoothstep,
    srgb_gamma,
    srgb_to_linear,
)
from isplab.classic.white_balance import apply_white_balance, gray_world_gains, white_patch_gains
from isplab.raw.levels import normalize_levels

__all__ = [
    "SRGB_TO_XYZ", "XYZ_TO_SRGB", "apply_color_matrix", "camera_to_srgb_from_xyz",
    "xyz_from_camera_to_srgb", "DEMOSAIC_METHODS", "demosaic", "demosaic_bilinear",
    "demosaic_malvar2004", "demosaic_menon2007", "denoise", "clahe", "equalize_channel",
    "histogram_equalize", "normalize_levels", "ClassicISP", "camera_to_srgb_matrix",
    "auto_bright_gain", "exposure", "filmic", "gamma_curve", "inverse_smoothstep",
    "power_gamma", "smoothstep", "srgb_gamma", "srgb_to_linear", "apply_white_balance",
    "gray_world_gains", "white_patch_gains",
]
