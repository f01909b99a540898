"""The classical develop of one file without torch: :class:`LightISP`.

``isplab develop --isp classic`` with the options the 16-bit OpenCV path covers
(:mod:`isplab.classic.fast`: bilinear demosaic; camera, user or no white balance; the file's,
a profile's 3x3 or no colour matrix; auto-brightening, brightness, tone curve, gamma,
8/16-bit output, orientation) develops here, so a process that develops a raw never imports
torch, kornia or the model zoo. Anything else (menon2007/malvar2004, half size, denoise, an
estimated white balance, a root-polynomial profile, the learned demosaic) is
:class:`~isplab.classic.pipeline.ClassicISP`, imported when first needed: :func:`covers`
decides per option set, :meth:`LightISP.postprocess` per frame (odd sizes, a file without an
as-shot white balance). Both run the same :func:`develop_fast`, so their outputs are equal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from isplab.classic import fast
from isplab.classic.curves import TONE_CURVES
from isplab.errors import InvalidInputError
from isplab.raw.image import RawImage
from isplab.raw.matrices import camera_to_srgb_from_xyz
from isplab.raw.orientation import orient

log = logging.getLogger("isplab.classic.pipeline")  # the messages ClassicISP always gave


def camera_to_srgb_matrix(raw: RawImage) -> tuple[np.ndarray, str]:
    """The camera -> linear sRGB matrix for ``raw`` and where it came from.

    Prefers the file's own camera -> sRGB matrix (LibRaw's ``rgb_cam``), then one derived
    from its XYZ -> camera matrix, else identity (with a warning: colours will be the
    camera's own primaries).
    """
    if raw.camera_to_srgb is not None:
        return raw.camera_to_srgb, "camera_to_srgb"
    if raw.xyz_to_camera is not None:
        return camera_to_srgb_from_xyz(raw.xyz_to_camera), "xyz_to_camera"
    name = raw.path.name if raw.path is not None else "raw image"
    log.warning("%s has no colour matrix: using identity (camera primaries)", name)
    return np.eye(3), "identity"


def adjusted_maximum_scale(raw: RawImage, threshold: float) -> float:
    """LibRaw's ``adjust_maximum_thr``: the factor that rescales the normalised mosaic when
    the data's maximum (in sensor units) lies in ``(threshold * white, white)``; else 1."""
    if threshold <= 0:
        return 1.0
    black = float(np.mean(raw.black_level))
    span = raw.white_level - black
    data_max = float(raw.mosaic.max()) * span + black
    if raw.white_level * threshold < data_max < raw.white_level and data_max > black:
        return span / (data_max - black)
    return 1.0


def develop_fast(raw: RawImage, gains, matrix, scale: float, *, tone: str,
                 gamma: tuple[float, float], auto_bright: bool, auto_bright_thr: float,
                 bright: float, output_bps: int) -> np.ndarray:
    """The 16-bit develop of ``raw`` with settings already chosen -> ``H x W x 3`` uint8/16,
    turned upright (what ``ClassicISP.postprocess`` and :class:`LightISP` both run)."""
    out = fast.develop_uint16(raw.mosaic, raw.cfa, gains, matrix, tone=tone, gamma=gamma,
                              auto_bright=auto_bright, auto_bright_thr=auto_bright_thr,
                              bright=bright, output_bps=output_bps, scale=scale)
    return orient(out, raw.orientation)


#: ClassicISP options this module reads; ``noise`` matters to the learned demosaic only
_OPTIONS = ("use_camera_wb", "use_auto_wb", "user_wb", "auto_wb_method", "demosaic_algorithm",
            "half_size", "use_color_matrix", "no_auto_bright", "auto_bright_thr", "bright",
            "tone", "gamma", "denoise_strength", "adjust_maximum_thr", "noise", "color_matrix")


def covers(options: dict[str, Any]) -> bool:
    """Whether :class:`LightISP` can take these ClassicISP options (the rest need torch)."""
    return (set(options) <= set(_OPTIONS)
            and options.get("demosaic_algorithm", "bilinear") == "bilinear"
            and not options.get("half_size", False)
            and float(options.get("denoise_strength", 0.0)) <= 0
            and (options.get("user_wb") is not None or not options.get("use_auto_wb", False))
            and not callable(options.get("color_matrix")))


class LightISP:
    """``ClassicISP(**options).postprocess`` for the options :func:`covers`, without torch.

    A frame the 16-bit path cannot take (odd sizes, no as-shot white balance to use) goes
    to a ClassicISP built on first need; :meth:`classic` gives it for anything else.
    """

    def __init__(self, **options: Any):
        if not covers(options):
            raise InvalidInputError("LightISP takes the options of the bilinear 16-bit develop "
                                    "only: use ClassicISP")
        tone, gamma = options.get("tone", "none"), tuple(options.get("gamma", (2.4, 12.92)))
        thr = float(options.get("auto_bright_thr", 0.01))
        if tone not in TONE_CURVES:
            raise InvalidInputError(f"unknown tone curve {tone!r}; choose one of {TONE_CURVES}")
        if len(gamma) != 2 or gamma[0] <= 0:
            raise InvalidInputError(f"gamma must be (power, slope) with power > 0, got {gamma}")
        if not 0.0 <= thr < 1.0:
            raise InvalidInputError(f"auto_bright_thr must be in [0, 1), got {thr}")
        self.options = dict(options)
        self.user_wb = _gains(options.get("user_wb"))
        self.use_camera_wb = bool(options.get("use_camera_wb", True))
        self.use_color_matrix = bool(options.get("use_color_matrix", True))
        self.color_matrix = options.get("color_matrix")
        self.display = dict(tone=tone, gamma=(float(gamma[0]), float(gamma[1])),
                            auto_bright=not options.get("no_auto_bright", False),
                            auto_bright_thr=thr, bright=float(options.get("bright", 1.0)))
        self.adjust_maximum_thr = float(options.get("adjust_maximum_thr", 0.75))
        self._classic = None

    def classic(self):
        """The equivalent :class:`~isplab.classic.pipeline.ClassicISP` (imports torch)."""
        if self._classic is None:
            from isplab.classic.pipeline import ClassicISP

            self._classic = ClassicISP(**self.options)
        return self._classic

    def develop(self, raw: RawImage):
        """:meth:`ClassicISP.develop` (the float torch pipeline)."""
        return self.classic().develop(raw)

    def postprocess(self, raw: RawImage, output_bps: int = 8) -> np.ndarray:
        """Develop like rawpy's ``postprocess``: ``H x W x 3`` uint8 or uint16, equal to
        :meth:`ClassicISP.postprocess` with the same options."""
        if output_bps not in (8, 16):
            raise InvalidInputError(f"output_bps must be 8 or 16, got {output_bps}")
        gains = self.user_wb
        if gains is None and self.use_camera_wb:
            gains = raw.wb_gains
        if not fast.supports(raw.mosaic) or (gains is None and self.use_camera_wb):
            return self.classic().postprocess(raw, output_bps)  # gray world, odd sizes
        matrix = None
        if self.use_color_matrix:
            matrix = self.color_matrix if self.color_matrix is not None \
                else camera_to_srgb_matrix(raw)[0]
        scale = adjusted_maximum_scale(raw, self.adjust_maximum_thr)
        return develop_fast(raw, gains, matrix, scale, output_bps=output_bps, **self.display)


def _gains(user_wb: Sequence[float] | None) -> tuple[float, float, float] | None:
    if user_wb is None:
        return None
    g = np.asarray(user_wb, dtype=np.float64).reshape(-1)
    if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise InvalidInputError(f"user_wb must be 3 positive gains (R, G, B), got {user_wb}")
    return tuple(float(v) for v in g)
