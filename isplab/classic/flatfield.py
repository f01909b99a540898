"""Flat field of a chart shot: the smooth gain surface (lens vignetting times uneven light)
over a ColorChecker, measured from the light fall-off *inside* each patch.

A patch is printed uniformly, so any slope of the signal across it is the shading's:
``grad log v = grad log s`` (under the calibration's model ``v = s * (reference colour seen
by the camera + offset)``, the ratio holds for every patch and channel). The per-patch slopes
(a robust plane fitted to the inner pixels of each cell) of the patches that are bright enough
and flat enough (edges, texture or clipping make a plane fit badly) give, by least squares,
the gradient of a quadratic surface::

    log s(x, y) = a1 x + a2 y + a3 x² + a4 y² + a5 xy

in normalised frame coordinates ``x = (X - (W - 1) / 2) / R``, ``y = (Y - (H - 1) / 2) / R``
(``X, Y`` raw pixels, ``R`` half the frame's diagonal), one surface for all channels. The
patches' reference colours are not used, so a leave-one-patch-out error stays honest.
Gains are normalised so that the brightest patch centre has gain 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: a patch (channel) is used when its median is at least this fraction of the brightest
#: patch's (darker ones are dominated by noise and offset)
MIN_LEVEL = 0.05
#: ... and the plane leaves less than this relative residual (edges, texture, dust)
MAX_RESIDUAL = 0.08
#: at least this many patch channels must be usable
MIN_SLOPES = 12
#: gains are clamped to [MIN_GAIN, 1] when applied to a frame (the quadratic extrapolated
#: far outside the chart)
MIN_GAIN = 0.2


def terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The surface's terms ``... x 5``: x, y, x², y², xy."""
    return np.stack([x, y, x * x, y * y, x * y], -1)


def normalised(xs, ys, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw-pixel coordinates -> the surface's normalised coordinates."""
    r = np.hypot(width, height) / 2
    return ((np.asarray(xs, np.float64) - (width - 1) / 2) / r,
            (np.asarray(ys, np.float64) - (height - 1) / 2) / r)


@dataclass
class FlatField:
    """A gain surface over a frame of ``width x height`` raw pixels."""

    coefficients: np.ndarray  # 5: a1 ... a5
    width: int
    height: int
    scale: float = 1.0  # divides exp(surface) (the brightest patch centre's value)

    def gain(self, xs, ys) -> np.ndarray:
        """The gain at raw-pixel coordinates (not clamped)."""
        x, y = normalised(xs, ys, self.width, self.height)
        return np.exp(terms(x, y) @ self.coefficients) / self.scale

    def frame_gain(self) -> np.ndarray:
        """``H x W`` float32 gain of every raw pixel, clamped to [MIN_GAIN, 1]."""
        ys, xs = np.mgrid[0:self.height, 0:self.width]
        return np.clip(self.gain(xs, ys), MIN_GAIN, 1.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"model": "log gain = a1 x + a2 y + a3 x^2 + a4 y^2 + a5 xy; x = (X - (W-1)/2) "
                         "/ R, y = (Y - (H-1)/2) / R, R = half diagonal, raw pixels",
                "coefficients": [float(f"{v:.6g}") for v in self.coefficients],
                "frame": [self.width, self.height], "scale": float(f"{self.scale:.8g}")}


def patch_slopes(rgb: np.ndarray, points: np.ndarray, width: int, height: int):
    """Per patch and channel: the relative slope (d log v / dx, d log v / dy in normalised
    units) of a plane fitted to the samples, and its relative residual.

    ``rgb``: the half-size camera RGB the chart was sampled from; ``points``:
    ``24 x N x 2`` (x, y) sample positions in ``rgb``'s pixels. Returns (centres ``24 x 2``
    normalised, slopes ``24 x 3 x 2``, residual ``24 x 3``, medians ``24 x 3``).
    """
    h, w = rgb.shape[:2]
    xi = np.clip(np.round(points[..., 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(points[..., 1]).astype(int), 0, h - 1)
    px = rgb[yi, xi].astype(np.float64)  # 24 x N x 3
    x, y = normalised(points[..., 0] * 2 + 0.5, points[..., 1] * 2 + 0.5, width, height)
    centres = np.stack([x.mean(1), y.mean(1)], -1)
    slopes = np.zeros((len(px), 3, 2))
    resid = np.full((len(px), 3), np.inf)
    med = np.median(px, 1)
    for i in range(len(px)):
        a = np.stack([np.ones_like(x[i]), x[i] - centres[i, 0], y[i] - centres[i, 1]], 1)
        coef, *_ = np.linalg.lstsq(a, px[i], rcond=None)  # 3 x 3 (terms x channels)
        res = px[i] - a @ coef
        ok = med[i] > 0
        slopes[i] = np.where(ok[:, None], coef[1:].T / np.where(ok, med[i], 1)[:, None], 0)
        resid[i] = np.where(ok, res.std(0) / np.where(ok, med[i], 1), np.inf)
    return centres, slopes, resid, med


def estimate(centres, slopes, resid, medians, used=None) -> FlatField | None:
    """The surface from the patches' slopes (see the module docstring); None when too few
    patches are usable. ``width``/``height`` are filled in by the caller."""
    used = np.ones(len(centres), bool) if used is None else np.asarray(used, bool)
    top = float(np.max(medians[used])) if used.any() else 0.0
    ok = used[:, None] & (medians >= MIN_LEVEL * top) & (resid < MAX_RESIDUAL)
    if ok.sum() < MIN_SLOPES:
        return None
    rows, rhs = [], []
    for i, c in zip(*np.nonzero(ok), strict=True):
        x, y = centres[i]
        rows += [[1, 0, 2 * x, 0, y], [0, 1, 0, 2 * y, x]]
        rhs += [slopes[i, c, 0], slopes[i, c, 1]]
    coef = np.linalg.lstsq(np.array(rows, float), np.array(rhs), rcond=None)[0]
    return FlatField(coef, 0, 0)


def patch_gains(ff: FlatField, centres: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Gains at the patch centres (normalised coordinates), the brightest used one = 1;
    sets ``ff.scale`` accordingly."""
    raw = np.exp(terms(centres[:, 0], centres[:, 1]) @ ff.coefficients)
    ff.scale = float(raw[used].max())
    return raw / ff.scale
