"""ClassicISP: the classical pipeline as a composition of the functional stages.

Order (as LibRaw): levels (done when reading) -> white balance (clipped at 1) -> demosaic ->
camera -> linear sRGB matrix -> clip -> brightness -> optional tone curve -> gamma ->
optional light denoise. Options are named after rawpy's ``postprocess``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from isplab.classic import fast
from isplab.classic.awb import ESTIMATORS
from isplab.classic.color import apply_color_matrix
from isplab.classic.demosaicking import DEMOSAIC_METHODS, demosaic
from isplab.classic.denoising import denoise
from isplab.classic.light import (
    adjusted_maximum_scale,
    camera_to_srgb_matrix,
    develop_fast,
)
from isplab.classic.tone import (
    auto_bright_gain,
    filmic,
    gamma_curve,
    smoothstep,
)
from isplab.classic.white_balance import apply_white_balance, estimated_gains
from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, pack, unpack
from isplab.raw.image import RawImage
from isplab.raw.orientation import orient

log = logging.getLogger(__name__)

TONE_CURVES = ("none", "smoothstep", "filmic")
_STRIP_ROWS = 128  # rows per strip for inference (even, so the CFA phase is kept)
AUTO_WB_METHODS = tuple(ESTIMATORS.names())  # gray_world, white_patch, gray_edge, ffcc, ...


class ClassicISP(nn.Module):
    """Classical raw development, batched in torch.

    Args:
        use_camera_wb: use the as-shot white balance stored in the file (``develop``).
        use_auto_wb: estimate the white balance from the image (``auto_wb_method``).
        user_wb: explicit (R, G, B) gains; wins over the two options above.
        auto_wb_method: an estimator of :data:`isplab.classic.awb.ESTIMATORS`
            (``gray_world``, ``white_patch``, ``gray_edge``, ``ffcc``, ...).
        demosaic_algorithm: ``bilinear``, ``malvar2004`` or ``menon2007``.
        half_size: skip demosaicing: each 2x2 block gives one pixel (R, mean G, B).
        use_color_matrix: apply the camera -> sRGB matrix (off: camera primaries).
        no_auto_bright: keep the exposure as shot; otherwise brighten so that
            ``auto_bright_thr`` of the pixels clip (LibRaw's auto-brightening).
        auto_bright_thr: fraction of pixels allowed to clip when auto-brightening.
        bright: extra brightness multiplier (linear).
        tone: ``none``, ``smoothstep`` or ``filmic`` global tone curve (linear domain).
        gamma: ``(power, slope)`` as rawpy; ``(2.4, 12.92)`` is sRGB (default),
            ``(2.222, 4.5)`` BT.709, ``(1, 1)`` linear output.
        denoise_strength: bilateral range sigma on the output (0 = off).
        adjust_maximum_thr: as LibRaw (``develop`` only): when the brightest raw value lies
            between this fraction of the white level and the white level, use it as the
            white level (for cameras that saturate below their nominal maximum); 0 = off.
        demosaicker: a learned demosaic stage replacing ``demosaic_algorithm`` (built above
            this layer, e.g. :func:`isplab.infer.hybrid.learned_demosaic`): called as
            ``demosaicker(mosaic, cfa, gains, noise)`` with the white-balanced, clipped
            mosaic ``N x 1 x H x W``, the gains used (R, G, B, or None) and the frame's
            :class:`~isplab.classic.noise_profile.NoiseProfile`; returns linear RGB.
        noise: ``(shot, read)`` of the raw for the demosaicker (None: the file's profile,
            else estimated from the raw; see :func:`~isplab.classic.noise_profile_of`).
        color_matrix: a camera -> linear sRGB transform replacing the file's matrix in
            :meth:`develop` (a calibrated profile): a ``3 x 3`` array, or a callable on
            ``N x 3 x H x W`` white-balanced camera RGB (e.g.
            :class:`~isplab.classic.color.RootPolynomial`).
    """

    def __init__(
        self,
        use_camera_wb: bool = True,
        use_auto_wb: bool = False,
        user_wb: Sequence[float] | None = None,
        auto_wb_method: str = "gray_world",
        demosaic_algorithm: str = "bilinear",
        half_size: bool = False,
        use_color_matrix: bool = True,
        no_auto_bright: bool = False,
        auto_bright_thr: float = 0.01,
        bright: float = 1.0,
        tone: str = "none",
        gamma: tuple[float, float] = (2.4, 12.92),
        denoise_strength: float = 0.0,
        adjust_maximum_thr: float = 0.75,
        demosaicker=None,
        noise: tuple[float, float] | None = None,
        color_matrix=None,
    ):
        super().__init__()
        if demosaicker is not None:
            demosaic_algorithm = "learned"
        elif demosaic_algorithm not in DEMOSAIC_METHODS:
            raise InvalidInputError(
                f"unknown demosaic algorithm {demosaic_algorithm!r}; "
                f"choose one of {', '.join(DEMOSAIC_METHODS)}"
            )
        if tone not in TONE_CURVES:
            raise InvalidInputError(f"unknown tone curve {tone!r}; choose one of {TONE_CURVES}")
        if auto_wb_method not in AUTO_WB_METHODS:
            raise InvalidInputError(
                f"unknown auto white balance {auto_wb_method!r}; choose one of {AUTO_WB_METHODS}"
            )
        if user_wb is not None:
            g = np.asarray(user_wb, dtype=np.float64).reshape(-1)
            if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
                raise InvalidInputError(
                    f"user_wb must be 3 positive gains (R, G, B), got {user_wb}")
            user_wb = tuple(float(v) for v in g)
        if not (0.0 <= auto_bright_thr < 1.0):
            raise InvalidInputError(f"auto_bright_thr must be in [0, 1), got {auto_bright_thr}")
        if len(tuple(gamma)) != 2 or gamma[0] <= 0:
            raise InvalidInputError(f"gamma must be (power, slope) with power > 0, got {gamma}")
        self.use_camera_wb = use_camera_wb
        self.use_auto_wb = use_auto_wb
        self.user_wb = user_wb
        self.auto_wb_method = auto_wb_method
        self.demosaic_algorithm = demosaic_algorithm
        self.half_size = half_size
        self.use_color_matrix = use_color_matrix
        self.no_auto_bright = no_auto_bright
        self.auto_bright_thr = auto_bright_thr
        self.bright = bright
        self.tone = tone
        self.gamma = (float(gamma[0]), float(gamma[1]))
        self.denoise_strength = denoise_strength
        self.adjust_maximum_thr = adjust_maximum_thr
        self.demosaicker = demosaicker
        self.noise = None if noise is None else (float(noise[0]), float(noise[1]))
        self.color_matrix = color_matrix

    def extra_repr(self) -> str:
        return (
            f"demosaic={self.demosaic_algorithm}, wb={self._wb_mode()}, tone={self.tone}, "
            f"gamma={self.gamma}, auto_bright={not self.no_auto_bright}"
        )

    def _wb_mode(self) -> str:
        if self.user_wb is not None:
            return f"user{self.user_wb}"
        if self.use_auto_wb:
            return f"auto:{self.auto_wb_method}"
        return "camera" if self.use_camera_wb else "none"

    def _select_gains(self, mosaic: torch.Tensor | None, cfa: str, wb_gains):
        """The white balance used: ``user_wb``, else estimated (``use_auto_wb``), else the
        as-shot ``wb_gains`` (``use_camera_wb``), else None."""
        if self.user_wb is not None:
            return self.user_wb
        if self.use_auto_wb:
            return estimated_gains(mosaic, self.auto_wb_method, cfa=cfa)
        if self.use_camera_wb and wb_gains is not None:
            return wb_gains
        return None

    def forward(
        self,
        x: torch.Tensor,
        cfa: str = "RGGB",
        wb_gains=None,
        color_matrix=None,
        validate: bool = True,
        noise=None,
    ) -> torch.Tensor:
        """Develop linear raw data to sRGB.

        Args:
            x: packed raw ``N x 4 x h x w`` (R, G1, G2, B) or a mosaic ``N x 1 x H x W``,
                black-level subtracted, in [0, 1].
            cfa: pattern of a mosaic input (ignored for packed input).
            wb_gains: as-shot (R, G, B) gains, 3 values or ``N x 3``; used when
                ``use_camera_wb`` and no ``user_wb``/``use_auto_wb`` is set.
            color_matrix: camera -> linear sRGB, ``3 x 3`` or ``N x 3 x 3``, or a callable
                on ``N x 3 x H x W``; None keeps camera primaries.
            validate: check the input for NaN/Inf (skipped for RawImages, checked on read).
            noise: the :class:`~isplab.classic.noise_profile.NoiseProfile` of ``x`` for a
                learned ``demosaicker`` (None: ``self.noise``, else none).

        Returns:
            ``N x 3 x H x W`` sRGB (or the ``gamma`` curve's space) in [0, 1]; half the
            mosaic's size with ``half_size``.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 4):
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise InvalidInputError(
                f"ClassicISP takes packed raw N x 4 x h x w or a mosaic N x 1 x H x W, got {shape}"
            )
        if validate and not torch.isfinite(x).all():
            raise InvalidInputError("raw data contains NaN or infinite values")
        if x.shape[1] == 4:
            mosaic, cfa = unpack(x, "RGGB"), "RGGB"
        else:
            mosaic, cfa = x, check_pattern(cfa)

        gains = self._select_gains(mosaic, cfa, wb_gains)
        matrix = color_matrix if self.use_color_matrix else None

        if self.demosaicker is not None:
            if noise is None:
                from isplab.classic.noise_profile import NoiseProfile

                noise = NoiseProfile(*(self.noise or (0.0, 0.0)),
                                     source="user" if self.noise else "none")
            rgb = self._linear(mosaic, cfa, gains, matrix, noise)
        elif torch.is_grad_enabled() or self.half_size or self.demosaic_algorithm == "menon2007":
            rgb = self._linear(mosaic, cfa, gains, matrix)
        else:
            rgb = self._linear_in_strips(mosaic, cfa, gains, matrix)

        gain = torch.full((rgb.shape[0],), float(self.bright), dtype=rgb.dtype, device=rgb.device)
        if not self.no_auto_bright:
            gain = gain * auto_bright_gain(rgb, self.auto_bright_thr)
        if torch.is_grad_enabled() and rgb.requires_grad:
            out = self._display(rgb, gain)
        else:  # in place, strip by strip: stays in cache
            out = rgb
            for r0 in range(0, rgb.shape[-2], _STRIP_ROWS):
                out[..., r0:r0 + _STRIP_ROWS, :] = self._display(
                    rgb[..., r0:r0 + _STRIP_ROWS, :], gain)
        if self.denoise_strength > 0:
            out = denoise(out, self.denoise_strength).clamp_(0.0, 1.0)
        return out

    def _linear(self, mosaic, cfa, gains, matrix, noise=None) -> torch.Tensor:
        """White balance, demosaic, colour matrix, clip: mosaic -> linear RGB in [0, 1]."""
        if gains is not None:
            mosaic = apply_white_balance(mosaic, gains, cfa=cfa, clip=True)
        if self.demosaicker is not None and not self.half_size:
            rgb = self.demosaicker(mosaic, cfa, gains, noise)
        elif self.half_size:
            p = pack(mosaic, cfa)
            rgb = torch.stack([p[:, 0], (p[:, 1] + p[:, 2]) * 0.5, p[:, 3]], dim=1)
        else:
            rgb = demosaic(mosaic, cfa, self.demosaic_algorithm)
        if callable(matrix):
            rgb = matrix(rgb)
        elif matrix is not None:
            rgb = apply_color_matrix(rgb, matrix)
        return rgb.clamp_(0.0, 1.0)

    def _linear_in_strips(self, mosaic, cfa, gains, matrix) -> torch.Tensor:
        """:meth:`_linear` over strips of rows with a 2-row halo (the demosaic kernels reach
        2 pixels), which keeps the working set in cache; identical to one pass."""
        n, _, h, w = mosaic.shape
        if h <= 2 * _STRIP_ROWS:
            return self._linear(mosaic, cfa, gains, matrix)
        out = mosaic.new_empty(n, 3, h, w)
        halo = 2  # even: each strip starts on the same CFA phase
        for r0 in range(0, h, _STRIP_ROWS):
            r1 = min(h, r0 + _STRIP_ROWS)
            a, b = max(0, r0 - halo), min(h, r1 + halo)
            rgb = self._linear(mosaic[..., a:b, :], cfa, gains, matrix)
            out[..., r0:r1, :] = rgb[..., r0 - a:r0 - a + (r1 - r0), :]
        return out

    def _display(self, rgb, gain) -> torch.Tensor:
        """Brightness, tone curve and gamma: linear RGB -> display values in [0, 1]."""
        if not torch.all(gain == 1):
            rgb = rgb * gain[:, None, None, None]
        if self.tone == "smoothstep":
            rgb = smoothstep(rgb)
        elif self.tone == "filmic":
            rgb = filmic(rgb)
        return gamma_curve(rgb, *self.gamma)

    def _file_settings(self, raw: RawImage):
        """(the ISP to use, WB gains, camera -> sRGB matrix, adjust_maximum scale) for a
        file: its as-shot white balance (gray world when the file has none and
        ``use_camera_wb`` is asked), its colour matrix and LibRaw's maximum rescale."""
        isp = self
        if self.use_camera_wb and raw.wb_gains is None and self.user_wb is None \
                and not self.use_auto_wb:
            name = raw.path.name if raw.path is not None else "raw image"
            log.warning("%s has no as-shot white balance: using gray world", name)
            isp = _copy_with(self, use_auto_wb=True, auto_wb_method="gray_world")
        matrix = None if not self.use_color_matrix else self.color_matrix \
            if self.color_matrix is not None else camera_to_srgb_matrix(raw)[0]
        return isp, raw.wb_gains, matrix, adjusted_maximum_scale(raw, self.adjust_maximum_thr)

    @torch.no_grad()
    def develop(self, raw: RawImage) -> torch.Tensor:
        """Develop a :class:`RawImage` with its own metadata -> ``1 x 3 x H x W`` sRGB.

        Uses the file's as-shot white balance (falling back to gray world when the file has
        none and ``use_camera_wb`` is asked), its colour matrix, and its orientation.
        """
        isp, wb, matrix, scale = self._file_settings(raw)
        mosaic = raw.to_tensor()
        if scale != 1.0:
            mosaic = (mosaic * scale).clamp_(max=1.0)
        noise = None
        if self.demosaicker is not None and not self.half_size:
            from isplab.classic.noise_profile import NoiseProfile, noise_profile_of

            p = noise_profile_of(raw, self.noise)
            # x * scale has variance scale * shot * (x * scale) + scale^2 * read
            noise = NoiseProfile(p.shot * scale, p.read * scale * scale, p.source)
            log.info("%s: noise %s", raw.path.name if raw.path else "raw", noise.describe())
        out = isp(mosaic, cfa=raw.cfa, wb_gains=wb, color_matrix=matrix, validate=False,
                  noise=noise)
        return orient(out, raw.orientation)

    def _uses_fast_path(self, raw: RawImage) -> bool:
        return (self.demosaicker is None and self.demosaic_algorithm == "bilinear"
                and not self.half_size and not callable(self.color_matrix)
                and self.denoise_strength <= 0 and fast.supports(raw.mosaic))

    @torch.no_grad()
    def postprocess(self, raw: RawImage, output_bps: int = 8) -> np.ndarray:
        """Develop like rawpy's ``postprocess``: ``H x W x 3`` uint8 or uint16 array.

        The bilinear develop of an even-sized frame without denoising runs on 16-bit
        integers through OpenCV (:mod:`isplab.classic.fast`, about 3x faster, equal to
        :meth:`develop` up to 16-bit rounding); everything else is :meth:`develop`.
        """
        if output_bps not in (8, 16):
            raise InvalidInputError(f"output_bps must be 8 or 16, got {output_bps}")
        from isplab.io import to_uint

        if not self._uses_fast_path(raw):
            return to_uint(self.develop(raw), output_bps)
        isp, wb, matrix, scale = self._file_settings(raw)
        mosaic = None  # only an estimated white balance reads it: no full-frame copy otherwise
        if isp.use_auto_wb and isp.user_wb is None:
            mosaic = raw.to_tensor() if scale == 1.0 else (raw.to_tensor() * scale).clamp(max=1)
        gains = isp._select_gains(mosaic, raw.cfa, wb)
        if isinstance(gains, torch.Tensor):
            gains = tuple(gains[0].tolist())
        return develop_fast(raw, gains, matrix, scale, tone=isp.tone, gamma=isp.gamma,
                            auto_bright=not isp.no_auto_bright,
                            auto_bright_thr=isp.auto_bright_thr, bright=isp.bright,
                            output_bps=output_bps)


def _copy_with(isp: ClassicISP, **changes) -> ClassicISP:
    """A ClassicISP with the same options as ``isp`` except ``changes``."""
    names = [k for k in inspect.signature(ClassicISP.__init__).parameters if k != "self"]
    return ClassicISP(**{**{k: getattr(isp, k) for k in names}, **changes})
