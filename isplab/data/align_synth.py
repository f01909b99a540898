"""Synthetic phone-raw / DSLR pairs with a known geometric mapping, to measure alignment.

:func:`synthetic_pair` takes a real sRGB photo as the "DSLR" picture and films it with a
simulated phone: a known homography (scale, rotation, perspective, shift) plus a small smooth
deformation, a different tone curve and colour response, lens blur, a Bayer CFA,
Poisson-Gaussian noise and 10-bit quantisation. The exact mapping from every phone raw pixel
to reference coordinates is known (:meth:`SyntheticPair.mapping`), so an alignment can be
scored by its end-point error in phone raw pixels (:func:`end_point_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, mosaic
from isplab.raw.image import RawImage

#: a mild camera-RGB response (rows: camera R, G, B from linear sRGB), rows sum to 1
_CAMERA_MIX = np.array([[0.82, 0.15, 0.03], [0.08, 0.86, 0.06], [0.02, 0.18, 0.80]])


@dataclass
class SyntheticPair:
    """A simulated phone raw, the reference it was filmed from, and the true mapping.

    Attributes:
        raw: the phone frame (mosaic normalised to [0, 1], 10-bit levels, as-shot WB).
        reference: ``H x W x 3`` float32 sRGB in [0, 1] (the "DSLR" photo).
        homography: 3x3, phone raw pixel (x, y) -> reference pixel, applied after the
            deformation.
        deform_px: amplitude of the smooth deformation, in raw pixels.
        deform_period: its wavelength, in raw pixels.
        deform_phase: two phases (radians) of the deformation.
    """

    raw: RawImage
    reference: np.ndarray
    homography: np.ndarray
    deform_px: float
    deform_period: float
    deform_phase: tuple[float, float]

    def deformation(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smooth displacement (dx, dy) in raw pixels at raw coordinates (x, y)."""
        return _deformation(self.deform_px, self.deform_period, self.deform_phase, x, y)

    def mapping(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference coordinates of phone raw pixel centres (x, y) (arrays, float64)."""
        return _mapping(self.homography, self.deform_px, self.deform_period, self.deform_phase,
                        x, y)


def _deformation(amp: float, period: float, phase: tuple[float, float], x, y):
    w = 2 * np.pi / period
    a, b = phase
    dx = amp * np.sin(w * y + a) * np.cos(0.7 * w * x + b)
    dy = amp * np.cos(0.8 * w * x + b) * np.sin(0.6 * w * y + a)
    return dx, dy


def _mapping(h: np.ndarray, amp: float, period: float, phase: tuple[float, float], x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dx, dy = _deformation(amp, period, phase, x, y)
    return apply_homography(h, x + dx, y + dy)


def apply_homography(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map point coordinates through a 3x3 homography (float64)."""
    h = np.asarray(h, dtype=np.float64)
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return ((h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den,
            (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den)


def _srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def synthetic_pair(
    reference: np.ndarray,
    *,
    scale: float = 1.6,
    rotation_deg: float = 3.0,
    perspective: float = 0.03,
    shift: tuple[float, float] = (0.0, 0.0),
    deform_px: float = 2.0,
    deform_period: float | None = None,
    coverage: float = 0.85,
    raw_size: tuple[int, int] | None = None,
    cfa: str = "RGGB",
    blur_sigma: float = 0.7,
    tone_power: float = 1.15,
    wb_gains: tuple[float, float, float] = (2.0, 1.0, 1.6),
    exposure: float = 0.7,
    shot_noise: float = 2e-3,
    read_noise: float = 1.5e-3,
    seed: int = 0,
) -> SyntheticPair:
    """Film the sRGB photo ``reference`` with a simulated phone.

    Args:
        reference: ``H x W x 3`` sRGB photo, uint8/uint16 or float in [0, 1]; it is the DSLR
            side of the pair, unchanged.
        scale: reference pixels per phone raw pixel (the DSLR has more pixels).
        rotation_deg: rotation of the phone frame in the reference.
        perspective: relative scale change from the frame centre to its right edge (and a
            third of it vertically): the projective part of the homography.
        shift: offset (x, y) of the phone frame centre from the reference centre, in
            reference pixels.
        deform_px: amplitude of the smooth residual deformation, raw pixels.
        deform_period: its wavelength in raw pixels (default: the raw frame's long side).
        coverage: phone field of view as a fraction of the reference's (sets the raw size).
        raw_size: (height, width) of the raw (overrides ``coverage``; rounded to even).
        cfa: Bayer pattern of the phone.
        blur_sigma: phone lens blur (gaussian sigma in raw pixels).
        tone_power: the phone's tone differs: linear ** tone_power.
        wb_gains: as-shot white balance (the raw is divided by these before the mosaic).
        exposure: linear gain of the phone frame.
        shot_noise, read_noise: Poisson-Gaussian noise (variance ``shot * x + read**2``).
        seed: noise and deformation phases.

    Returns:
        A :class:`SyntheticPair`.
    """
    cfa = check_pattern(cfa)
    ref = _as_float_rgb(reference)
    if scale <= 0:
        raise InvalidInputError(f"scale must be positive, got {scale}")
    rng = np.random.default_rng(seed)
    rh, rw = ref.shape[:2]
    if raw_size is None:
        raw_size = (int(rh * coverage / scale), int(rw * coverage / scale))
    h, w = (int(raw_size[0]) // 2 * 2, int(raw_size[1]) // 2 * 2)
    if h < 16 or w < 16:
        raise InvalidInputError(f"raw size {h}x{w} too small")
    homography = _raw_to_reference((h, w), (rh, rw), scale, rotation_deg, perspective, shift)
    period = float(deform_period or max(h, w))
    phase = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)))

    # render: blur the linear reference (anti-alias + lens), sample it at the mapped points
    linear = _srgb_to_linear(ref).astype(np.float32)
    sigma_ref = float(np.hypot(0.5 * scale, blur_sigma * scale))
    linear = cv2.GaussianBlur(linear, (0, 0), sigma_ref)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    mx, my = _mapping(homography, float(deform_px), period, phase, xs, ys)
    phone = cv2.remap(linear, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                      borderMode=cv2.BORDER_REFLECT_101)
    phone = np.clip(phone, 0.0, 1.0) ** tone_power
    camera = phone @ _CAMERA_MIX.T.astype(np.float32)
    camera = camera * exposure / np.asarray(wb_gains, dtype=np.float32)
    raw = _capture(camera, cfa, wb_gains, shot_noise, read_noise, rng)
    return SyntheticPair(raw=raw, reference=ref, homography=homography,
                         deform_px=float(deform_px), deform_period=period, deform_phase=phase)


def _as_float_rgb(reference: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 / uint16 / float sRGB -> float32 in [0, 1]."""
    ref = np.asarray(reference)
    if ref.ndim != 3 or ref.shape[2] != 3:
        raise InvalidInputError(f"reference must be H x W x 3, got shape {ref.shape}")
    if ref.dtype == np.uint8:
        return ref.astype(np.float32) / 255.0
    if ref.dtype == np.uint16:
        return ref.astype(np.float32) / 65535.0
    return np.clip(ref.astype(np.float32), 0.0, 1.0)


def _raw_to_reference(raw_shape: tuple[int, int], reference_shape: tuple[int, int],
                      scale: float, rotation_deg: float, perspective: float,
                      shift: tuple[float, float]) -> np.ndarray:
    """The 3x3 homography raw (x, y) -> reference of :func:`synthetic_pair`: centre the raw
    frame, apply the perspective, scale and rotate, move to the (shifted) reference centre."""
    h, w = raw_shape
    rh, rw = reference_shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    t_raw = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    p = np.array([[1, 0, 0], [0, 1, 0], [perspective / (w / 2), perspective / (3 * h / 2), 1]])
    th = np.deg2rad(rotation_deg)
    sr = np.array([[scale * np.cos(th), -scale * np.sin(th), 0],
                   [scale * np.sin(th), scale * np.cos(th), 0], [0, 0, 1]])
    t_ref = np.array([[1, 0, (rw - 1) / 2 + shift[0]], [0, 1, (rh - 1) / 2 + shift[1]],
                      [0, 0, 1]])
    return t_ref @ sr @ p @ t_raw


def _capture(camera: np.ndarray, cfa: str, wb_gains: tuple[float, float, float],
             shot_noise: float, read_noise: float, rng: np.random.Generator) -> RawImage:
    """The sensor: ``h x w x 3`` linear camera RGB (white balance already divided out)
    through the Bayer CFA, Poisson-Gaussian noise and 10-bit quantisation (black 64,
    white 1023) -> a :class:`RawImage` normalised to [0, 1]."""
    mos = mosaic(torch.from_numpy(np.ascontiguousarray(camera.transpose(2, 0, 1)))[None], cfa)
    m = mos[0, 0].numpy().astype(np.float64)
    var = shot_noise * np.clip(m, 0, None) + read_noise ** 2
    m = m + rng.standard_normal(m.shape) * np.sqrt(var)
    black, white = 64.0, 1023.0
    units = np.clip(np.round(m * (white - black) + black), 0, white)
    norm = np.clip((units - black) / (white - black), 0.0, 1.0).astype(np.float32)
    return RawImage(mosaic=norm, cfa=cfa, black_level=(black,) * 4, white_level=white,
                    wb_gains=wb_gains, bit_depth=10, extra={"synthetic": True})


def end_point_error(
    estimated: tuple[np.ndarray, np.ndarray], truth: tuple[np.ndarray, np.ndarray],
    homography: np.ndarray, x: np.ndarray, y: np.ndarray,
) -> np.ndarray:
    """Per-pixel end-point error in phone raw pixels.

    The distance between estimated and true reference coordinates is divided by the local
    scale of ``homography`` (reference pixels per raw pixel, ``sqrt |det J|`` at (x, y)).
    """
    ex, ey = estimated
    tx, ty = truth
    d = np.hypot(np.asarray(ex, np.float64) - tx, np.asarray(ey, np.float64) - ty)
    eps = 0.5
    x0, y0 = apply_homography(homography, x - eps, y)
    x1, y1 = apply_homography(homography, x + eps, y)
    x2, y2 = apply_homography(homography, x, y - eps)
    x3, y3 = apply_homography(homography, x, y + eps)
    det = np.abs((x1 - x0) * (y3 - y2) - (x3 - x2) * (y1 - y0)) / (2 * eps) ** 2
    return d / np.sqrt(det)
