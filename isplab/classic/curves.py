"""The display curves (tone curves and gamma) in NumPy, for the 16-bit develop without torch.

The same curves as :mod:`isplab.classic.tone` (``smoothstep``, ``filmic``, ``gamma_curve``),
computed the same way in float32 so that :func:`display_table` matches the torch display
stage of :class:`~isplab.classic.pipeline.ClassicISP`: tested equal to within 1 LSB of
16-bit output, all but a few of the 65536 entries identical (``tests/test_classic_fast.py``;
the differences come from ``pow``: correctly rounded here, within 1 ULP in torch's SIMD
one). :func:`gamma_params` is the one definition of a ``(power, slope)`` curve's constants,
used by both.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

TONE_CURVES = ("none", "smoothstep", "filmic")
_F = np.float32


@lru_cache(maxsize=32)
def gamma_params(power: float, slope: float) -> tuple[float, float, float]:
    """(linear threshold, exponent, offset) of a dcraw/LibRaw gamma curve ``(power, slope)``.

    Bisects for the toe where the line ``slope * x`` meets the power segment
    ``(1 + offset) * x ** (1 / power) - offset`` with matching value and derivative, as
    dcraw's ``gamma_curve`` does.
    """
    g0, g1 = 1.0 / power, float(slope)
    if g1 <= 0 or (g1 - 1) * (g0 - 1) > 0:
        return 0.0, g0, 0.0
    bnd = [0.0, 1.0] if g1 >= 1 else [1.0, 0.0]
    g2 = 0.0
    for _ in range(48):
        g2 = (bnd[0] + bnd[1]) / 2
        bnd[int((math.pow(g2 / g1, -g0) - 1) / g0 - 1 / g2 > -1)] = g2
    return g2 / g1, g0, g2 * (1 / g0 - 1)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """``3x^2 - 2x^3`` on [0, 1] (float32), as :func:`isplab.classic.tone.smoothstep`."""
    x = np.clip(x, _F(0), _F(1))
    return x * x * (_F(3) - _F(2) * x)


def _aces(v: np.ndarray) -> np.ndarray:
    return (v * (_F(2.51) * v + _F(0.03))) / (v * (_F(2.43) * v + _F(0.59)) + _F(0.14))


def filmic(x: np.ndarray, white: float = 4.0) -> np.ndarray:
    """Narkowicz's ACES fit normalised so that ``white`` maps to 1 (float32), as
    :func:`isplab.classic.tone.filmic`."""
    x = np.maximum(x, _F(0))
    w = np.asarray(white, dtype=_F)
    return np.clip(_aces(x) / _aces(w), _F(0), _F(1))


def gamma_curve(x: np.ndarray, power: float = 2.4, slope: float = 12.92) -> np.ndarray:
    """The ``(power, slope)`` curve with a linear toe on float32 values (clipped to [0, 1]),
    as :func:`isplab.classic.tone.gamma_curve`."""
    x = np.clip(x, _F(0), _F(1))
    if power == 1 and slope == 1:
        return x
    threshold, expo, offset = gamma_params(float(power), float(slope))
    curve = np.maximum(x, _F(threshold if threshold > 0 else 1e-12))
    # pow in float64, rounded once to float32: closest to torch's float32 SIMD pow
    curve = np.power(curve.astype(np.float64), float(_F(expo))).astype(_F)
    curve = curve * _F(1 + offset) - _F(offset)
    if threshold <= 0:
        return curve
    return np.where(x < _F(threshold), x * _F(slope), curve)


def display(linear: np.ndarray, tone: str, gamma: tuple[float, float]) -> np.ndarray:
    """Tone curve then gamma: float32 linear values -> display values in [0, 1]."""
    if tone not in TONE_CURVES:
        raise ValueError(f"unknown tone curve {tone!r}; choose one of {TONE_CURVES}")
    x = np.asarray(linear, dtype=_F)
    if tone == "smoothstep":
        x = smoothstep(x)
    elif tone == "filmic":
        x = filmic(x)
    return np.clip(gamma_curve(x, *gamma), _F(0), _F(1))
