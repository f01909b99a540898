"""The classical ISP as pure torch functions (batched, ``N x C x H x W``), plus ClassicISP.

Each stage states its input/output space in its docstring: the raw stages work on linear
camera data, ``apply_color_matrix`` maps camera RGB to linear sRGB, and the gamma/tone
stages encode for display.

The names below are loaded on first use (PEP 562), so that importing a torch-free module of
this package (:mod:`~isplab.classic.fast`, :mod:`~isplab.classic.light`,
:mod:`~isplab.classic.curves`, :mod:`~isplab.classic.profile`, ...) does not import torch:
``isplab develop --isp classic`` runs without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS = {
    "isplab.classic.color": ("SRGB_TO_XYZ", "XYZ_TO_SRGB", "apply_color_matrix",
                             "camera_to_srgb_from_xyz", "xyz_from_camera_to_srgb"),
    "isplab.classic.demosaicking": ("DEMOSAIC_METHODS", "demosaic", "demosaic_bilinear",
                                "demosaic_malvar2004", "demosaic_menon2007"),
    "isplab.classic.denoising": ("denoise",),
    "isplab.classic.histogram": ("clahe", "equalize_channel", "histogram_equalize"),
    "isplab.classic.pipeline": ("ClassicISP", "camera_to_srgb_matrix"),
    "isplab.classic.tone": ("auto_bright_gain", "exposure", "filmic", "gamma_curve",
                            "inverse_smoothstep", "power_gamma", "smoothstep", "srgb_gamma",
                            "srgb_to_linear"),
    "isplab.classic.white_balance": ("apply_white_balance", "gray_world_gains",
                                     "white_patch_gains"),
    "isplab.raw.levels": ("normalize_levels",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    try:  # a submodule not imported yet: isplab.classic.<name>
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools see
    from isplab.classic.color import (  # noqa: F401
        SRGB_TO_XYZ,
        XYZ_TO_SRGB,
        apply_color_matrix,
        camera_to_srgb_from_xyz,
        xyz_from_camera_to_srgb,
    )
    from isplab.classic.demosaicking import (  # noqa: F401
        DEMOSAIC_METHODS,
        demosaic,
        demosaic_bilinear,
        demosaic_malvar2004,
        demosaic_menon2007,
    )
    from isplab.classic.denoising import denoise  # noqa: F401
    from isplab.classic.histogram import (  # noqa: F401
        clahe,
        equalize_channel,
        histogram_equalize,
    )
    from isplab.classic.pipeline import ClassicISP, camera_to_srgb_matrix  # noqa: F401
    from isplab.classic.tone import (  # noqa: F401
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
    from isplab.classic.white_balance import (  # noqa: F401
        apply_white_balance,
        gray_world_gains,
        white_patch_gains,
    )
    from isplab.raw.levels import normalize_levels  # noqa: F401
