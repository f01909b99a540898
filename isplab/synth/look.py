"""Synthetic camera looks and (develop, reference) pairs for testing look fitting.

A :class:`SyntheticLook` is a known rendering *outside* the family :func:`fit_look` fits
(smooth parametric curves, not piecewise-linear knots): a colour matrix near identity with
small offsets and an exposure in linear sRGB, then per-channel tone curves: either an
S-curve (a logistic in the sRGB-encoded domain) or a filmic curve (Hable's, on linear values).
:func:`look_pair` renders a photo with it and adds what real pairs have: a sub-pixel
misalignment, clipping and 8-bit quantisation. NumPy/OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isplab.classic.look import srgb_decode, srgb_encode


@dataclass(frozen=True)
class SyntheticLook:
    """A known look: ``y = exposure * (matrix @ linear + offset)``, then ``curve`` per channel.

    ``curve`` is ``"s"`` (logistic of steepness ``contrast[c]`` centred at ``pivot`` in the
    encoded domain) or ``"filmic"`` (Hable's curve, white point ``white``, then sRGB)."""

    matrix: np.ndarray
    offset: np.ndarray
    exposure: float
    curve: str
    contrast: tuple[float, float, float]
    pivot: float
    white: float = 4.0

    def __call__(self, srgb: np.ndarray) -> np.ndarray:
        """Render ``... x 3`` sRGB in [0, 1] -> the look's sRGB in [0, 1] (float32)."""
        lin = srgb_decode(np.clip(srgb, 0.0, 1.0))
        y = np.maximum(self.exposure * (lin @ self.matrix.T + self.offset), 0.0)
        out = np.empty(y.shape, np.float64)
        for c in range(3):
            out[..., c] = self._tone(y[..., c], self.contrast[c])
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _tone(self, y: np.ndarray, k: float) -> np.ndarray:
        if self.curve == "filmic":
            def hable(v):
                a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
                return (v * (a * v + c * b) + d * e) / (v * (a * v + b) + d * f) - e / f

            return srgb_encode(hable(k * y) / hable(self.white))
        u = srgb_encode(np.minimum(y, 1.0))

        def s(v):
            return 1.0 / (1.0 + np.exp(-k * (v - self.pivot)))

        return (s(u) - s(0.0)) / (s(1.0) - s(0.0))


def random_look(seed: int) -> SyntheticLook:
    """A random look: matrix ``I + N(0, 0.06)`` entries, offsets ``N(0, 0.004)``,
    exposure in [0.85, 1.25], an S-curve (steepness 3-7, per-channel spread 10 %) or a filmic
    curve (exposure scale 2-4 per channel)."""
    rng = np.random.default_rng(seed)
    matrix = np.eye(3) + rng.normal(0.0, 0.06, (3, 3))
    offset = rng.normal(0.0, 0.004, 3)
    exposure = float(rng.uniform(0.85, 1.25))
    if rng.random() < 0.5:
        k = rng.uniform(3.0, 7.0)
        contrast = tuple(float(k * rng.uniform(0.9, 1.1)) for _ in range(3))
        return SyntheticLook(matrix, offset, exposure, "s", contrast,
                             float(rng.uniform(0.4, 0.6)))
    k = rng.uniform(2.0, 4.0)
    contrast = tuple(float(k * rng.uniform(0.9, 1.1)) for _ in range(3))
    return SyntheticLook(matrix, offset, exposure, "filmic", contrast, 0.5,
                         float(rng.uniform(3.0, 6.0)))


def look_pair(photo_srgb: np.ndarray, look: SyntheticLook, seed: int = 0,
              max_shift: float = 1.0, quantise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(develop, reference) from a photo: the develop is the photo; the reference is the
    look's rendering, shifted by up to ``max_shift`` px (sub-pixel, random direction) with a
    slight rotation (±0.2°), clipped, and quantised to 8 bits."""
    import cv2

    rng = np.random.default_rng(seed)
    dev = np.clip(np.asarray(photo_srgb, np.float32), 0.0, 1.0)
    ref = look(dev)
    h, w = ref.shape[:2]
    angle = float(rng.uniform(-0.2, 0.2))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += rng.uniform(-max_shift, max_shift, 2)
    ref = cv2.warpAffine(ref, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    if quantise:
        ref = np.round(np.clip(ref, 0.0, 1.0) * 255.0) / 255.0
    return dev, np.clip(ref, 0.0, 1.0).astype(np.float32)
