"""Synthetic colour casts: scene illuminants along the daylight / Planckian locus, seen by a
sampled camera, for training and validating illuminant estimators (auto white balance).

A training photo (sRGB, taken as correctly white balanced) is decoded to linear sRGB, taken to
camera RGB by a sampled camera (:func:`isplab.synth.random_ccm`, optionally jittered) with a
white pixel mapping to ``(1, 1, 1)``, then multiplied by the illuminant in camera RGB
(von Kries in camera space): a white surface comes out as the illuminant's colour. Exposure,
clipping at 1, Poisson-Gaussian noise and quantisation follow (:func:`render_cast`).

Illuminants (:func:`sample_illuminant_xy`): a correlated colour temperature uniform in mired
between 2500 K and 10000 K, on the Planckian locus below 4000 K and between it and the CIE
daylight locus above, with a small off-locus tint (Duv-like, in CIE 1960 uv).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isplab.classic import SRGB_TO_XYZ
from isplab.synth.unprocess import random_ccm

CCT_RANGE = (2500.0, 10000.0)
TINT_STD = 0.004


def planckian_xy(cct: float) -> np.ndarray:
    """CIE 1931 xy of a black body at ``cct`` kelvin (Kim et al. 2002 cubic fit, 1667-25000 K)."""
    t = float(np.clip(cct, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return np.array([x, y])


def daylight_xy(cct: float) -> np.ndarray:
    """CIE 1931 xy of CIE daylight at ``cct`` kelvin (4000-25000 K)."""
    t = float(np.clip(cct, 4000.0, 25000.0))
    if t <= 7000:
        x = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        x = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    return np.array([x, -3.0 * x * x + 2.870 * x - 0.275])


def _xy_to_uv(xy: np.ndarray) -> np.ndarray:
    x, y = xy
    d = -2 * x + 12 * y + 3
    return np.array([4 * x / d, 6 * y / d])


def _uv_to_xy(uv: np.ndarray) -> np.ndarray:
    u, v = uv
    d = 2 * u - 8 * v + 4
    return np.array([3 * u / d, 2 * v / d])


def xy_to_xyz(xy: np.ndarray) -> np.ndarray:
    """XYZ with ``Y = 1`` of a chromaticity."""
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def sample_illuminant_xy(rng: np.random.Generator, cct_range=CCT_RANGE,
                         tint_std: float = TINT_STD) -> tuple[np.ndarray, float]:
    """A plausible scene illuminant: ``(xy, cct)``; see the module docstring."""
    lo, hi = 1e6 / cct_range[1], 1e6 / cct_range[0]
    cct = 1e6 / rng.uniform(lo, hi)
    xy = planckian_xy(cct)
    if cct > 4000:
        a = rng.uniform(0.0, 1.0)
        xy = a * daylight_xy(cct) + (1 - a) * xy
    uv = _xy_to_uv(xy) + rng.normal(0.0, tint_std, 2)
    return _uv_to_xy(uv), float(cct)


@dataclass
class Camera:
    """A simulated camera: ``xyz_to_cam`` (a DNG-style ColorMatrix) and ``rgb_to_cam`` (linear
    sRGB -> camera RGB, rows summing to 1: white stays white before the illuminant)."""

    xyz_to_cam: np.ndarray
    rgb_to_cam: np.ndarray

    def illuminant(self, xy: np.ndarray) -> np.ndarray:
        """The illuminant of chromaticity ``xy`` in this camera's RGB, ``g = 1``."""
        e = self.xyz_to_cam @ xy_to_xyz(xy)
        e = np.maximum(e, 1e-3)
        return e / e[1]


def sample_camera(rng: np.random.Generator, jitter: float = 0.05) -> Camera:
    """A Brooks et al. camera (:func:`isplab.synth.random_ccm`) with each matrix entry
    perturbed by ``N(0, jitter)`` relative to its row's scale: cameras beyond the four."""
    xyz_to_cam, _ = random_ccm(int(rng.integers(0, 2**62)))
    if jitter > 0:
        scale = np.abs(xyz_to_cam).sum(axis=1, keepdims=True) / 3
        xyz_to_cam = xyz_to_cam + rng.normal(0.0, jitter, (3, 3)) * scale
    rgb_to_cam = xyz_to_cam @ SRGB_TO_XYZ
    rgb_to_cam = rgb_to_cam / rgb_to_cam.sum(axis=1, keepdims=True)
    return Camera(xyz_to_cam, rgb_to_cam)


def render_cast(linear_rgb: np.ndarray, camera: Camera, illuminant: np.ndarray,
                rng: np.random.Generator, *, exposure: float | None = None,
                noise: tuple[float, float] | None = None, bits: int = 12) -> np.ndarray:
    """Linear sRGB ``H x W x 3`` (a white-balanced photo) -> camera RGB under ``illuminant``.

    Args:
        linear_rgb: the scene as linear sRGB in [0, 1].
        camera: the sensor (:func:`sample_camera`).
        illuminant: camera RGB of the light, ``g = 1`` (:meth:`Camera.illuminant`).
        exposure: what the 98th percentile of the brightest channel becomes (default
            ``U(0.4, 1.2)``: some images clip).
        noise: ``(shot, read)`` variances at the normalised scale (default sampled:
            ``shot ~ 10^U(-4.5, -2.5)``, ``read ~ shot^2 * 10^U(-1, 1)``... small).
        bits: quantisation of the result.

    Returns:
        ``H x W x 3`` float32 camera RGB in [0, 1], clipped where the sensor saturates.
    """
    cam = np.einsum("ij,hwj->hwi", camera.rgb_to_cam, linear_rgb.astype(np.float64))
    cam = np.maximum(cam, 0.0) * np.asarray(illuminant, dtype=np.float64)
    return expose(cam, rng, exposure=exposure, noise=noise, bits=bits)


def expose(cam: np.ndarray, rng: np.random.Generator, *, exposure: float | None = None,
           noise: tuple[float, float] | None = None, bits: int = 12) -> np.ndarray:
    """Camera RGB of a scene (any scale) -> a sensor's reading: exposure, Poisson-Gaussian
    noise, clipping at 1, ``bits`` quantisation (the arguments of :func:`render_cast`)."""
    top = np.percentile(cam.max(axis=2), 98)
    if exposure is None:
        exposure = rng.uniform(0.4, 1.2)
    cam = cam * (exposure / max(top, 1e-6))
    if noise is None:
        shot = 10 ** rng.uniform(-4.5, -2.5)
        noise = (shot, shot * shot * 10 ** rng.uniform(-1.0, 1.0))
    shot, read = noise
    sd = np.sqrt(np.maximum(cam, 0.0) * shot + read)
    cam = cam + rng.standard_normal(cam.shape) * sd
    levels = 2**bits - 1
    cam = np.round(np.clip(cam, 0.0, 1.0) * levels) / levels
    return cam.astype(np.float32)
