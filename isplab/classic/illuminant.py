"""Illuminant estimation (colour constancy), the classical family, and its error metric.

Every estimator takes **linear camera RGB** ``H x W x 3`` (float, [0, 1], clipped at 1 where
the sensor saturated, black level removed, not white balanced) and returns the scene
illuminant as camera RGB ``(r, g, b)`` with ``g = 1``; the white-balance gains are its inverse.

The estimators (van de Weijer, Gevers & Gijsenij 2007, "Edge-based colour constancy") are one
formula, ``e ~ (mean |d^n f_sigma|^p)^(1/p)`` per channel, with:

- gray world: ``n = 0, p = 1`` (the mean colour is grey);
- shades of gray (Finlayson & Trezzi 2004): ``n = 0``, Minkowski ``p`` (6 by default);
- gray edge: ``n = 1`` (gradient magnitude) or ``n = 2`` (second derivatives), on a Gaussian
  smoothed image (``sigma``), Minkowski ``p``;
- white patch (max-RGB): a high percentile of each channel.

Pixels with a clipped channel (at or above ``saturation``; their ratios are wrong) or near
black are left out, and edges next to them too. Everything is NumPy + OpenCV (no torch); large
images are reduced to about :data:`WORK_PIXELS` first (block means of the usable pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from isplab.errors import InvalidInputError

#: the working size of the estimators (pixels): larger images are block-averaged down to it
WORK_PIXELS = 160_000
SATURATION = 0.99
DARK = 0.002


def check_camera_rgb(rgb, name: str = "image") -> np.ndarray:
    """``rgb`` as a float32 ``H x W x 3`` array with finite values >= 0, or InvalidInputError."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InvalidInputError(f"{name} must be H x W x 3 linear camera RGB, got shape "
                                f"{a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InvalidInputError(f"{name} is too small: {a.shape[0]} x {a.shape[1]}")
    if a.dtype.kind not in "fui":
        raise InvalidInputError(f"{name} must be numeric, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{name} has NaN or infinite values")
    return np.maximum(a, 0.0)


def usable_mask(rgb: np.ndarray, saturation: float = SATURATION, dark: float = DARK
                ) -> np.ndarray:
    """``H x W`` bool: no channel clipped (``>= saturation``) and not near black (max channel
    above ``dark``): a clipped channel's ratio to the others is wrong (it turns a white wall
    mint green), and noise and black-level errors dominate near black."""
    top = rgb.max(axis=2)
    return (top < saturation) & (top > dark)


def reduce(rgb: np.ndarray, mask: np.ndarray, work_pixels: int = WORK_PIXELS
           ) -> tuple[np.ndarray, np.ndarray]:
    """Block-average ``rgb`` over its usable pixels down to about ``work_pixels``.

    Returns:
        ``(rgb, mask)`` at the working size: each block the mean of its usable pixels, usable
        when at least half of its pixels were.
    """
    h, w = mask.shape
    f = int(np.floor(np.sqrt(h * w / work_pixels)))
    if f < 2:
        return rgb, mask
    hh, ww = h // f * f, w // f * f
    m = mask[:hh, :ww].astype(np.float32)
    x = rgb[:hh, :ww] * m[..., None]
    xs = x.reshape(hh // f, f, ww // f, f, 3).sum(axis=(1, 3))
    ms = m.reshape(hh // f, f, ww // f, f).sum(axis=(1, 3))
    out = xs / np.maximum(ms, 1.0)[..., None]
    return out.astype(np.float32), ms >= 0.5 * f * f


def normalise(illuminant: Sequence[float] | np.ndarray) -> np.ndarray:
    """``(r, g, b)`` scaled to ``g = 1`` (float64); an unusable estimate becomes ``(1, 1, 1)``."""
    e = np.asarray(illuminant, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        return np.ones(3)
    return e / e[1]


def _minkowski(values: np.ndarray, p: float) -> np.ndarray:
    """Minkowski p-norm mean of ``K x 3`` values per channel (``p = inf``: the maximum)."""
    if values.shape[0] == 0:
        return np.ones(3)
    v = values.astype(np.float64)
    if np.isinf(p):
        return v.max(axis=0)
    scale = max(float(v.max()), 1e-12)
    return scale * np.mean((v / scale) ** p, axis=0) ** (1.0 / p)


def _prepare(rgb, saturation: float, dark: float) -> tuple[np.ndarray, np.ndarray]:
    a = check_camera_rgb(rgb)
    mask = usable_mask(a, saturation, dark)
    if not mask.any():  # nothing usable: use everything rather than nothing
        mask = np.ones(mask.shape, dtype=bool)
    return reduce(a, mask)


def shades_of_gray(rgb, p: float = 4.0, saturation: float = SATURATION, dark: float = DARK
                   ) -> np.ndarray:
    """Shades of gray: the Minkowski ``p``-mean of each channel over the usable pixels
    (``p = 1`` gray world, ``p = inf`` max-RGB; 4 as in the literature's Gehler-Shi tables).
    Returns ``(r, 1, b)``."""
    x, m = _prepare(rgb, saturation, dark)
    return normalise(_minkowski(x[m], p))


def gray_world(rgb, saturation: float = SATURATION, dark: float = DARK) -> np.ndarray:
    """Gray world: the mean colour of the usable pixels. Returns ``(r, 1, b)``."""
    return shades_of_gray(rgb, 1.0, saturation, dark)


def white_patch(rgb, percentile: float = 99.0, saturation: float = SATURATION,
                dark: float = DARK) -> np.ndarray:
    """White patch: the ``percentile`` of each channel over the usable pixels (a percentile,
    not the maximum, so that a few hot pixels do not decide). Returns ``(r, 1, b)``."""
    x, m = _prepare(rgb, saturation, dark)
    v = x[m]
    return normalise(np.percentile(v, percentile, axis=0) if len(v) else np.ones(3))


def derivative_magnitude(rgb: np.ndarray, order: int, sigma: float) -> np.ndarray:
    """``H x W x 3`` magnitude of the ``order``-th Gaussian derivatives (scale ``sigma``
    pixels) per channel: ``|grad f|`` (order 1) or ``sqrt(fxx^2 + 2 fxy^2 + fyy^2)``
    (order 2); order 0 is the smoothed image."""
    import cv2

    f = rgb.astype(np.float32)
    if sigma > 0:
        f = cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if order == 0:
        return f
    if order == 1:
        fx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 8
        fy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT) / 8
        return np.sqrt(fx * fx + fy * fy)
    if order == 2:
        fxx = cv2.Sobel(f, cv2.CV_32F, 2, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 4
        fyy = cv2.Sobel(f, cv2.CV_32F, 0, 2, ksize=3, borderType=cv2.BORDER_REFLECT) / 4
        fxy = cv2.Sobel(f, cv2.CV_32F, 1, 1, ksize=3, borderType=cv2.BORDER_REFLECT) / 4
        return np.sqrt(fxx * fxx + 2 * fxy * fxy + fyy * fyy)
    raise InvalidInputError(f"derivative order must be 0, 1 or 2, got {order}")


def edge_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` eroded by ``radius`` pixels: edges touching an unusable pixel are left out."""
    import cv2

    if radius <= 0:
        return mask
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE) > 0


def gray_edge(rgb, order: int = 1, p: float = 1.0, sigma: float = 6.0,
              saturation: float = SATURATION, dark: float = DARK) -> np.ndarray:
    """Gray edge (van de Weijer et al. 2007): the Minkowski ``p``-mean of the ``order``-th
    derivative magnitude of each channel (Gaussian scale ``sigma`` pixels at the working
    size), away from unusable pixels. Returns ``(r, 1, b)``.

    The defaults are the literature's settings for Gehler-Shi (1st order: ``p = 1``,
    ``sigma = 6``; :func:`gray_edge2`: 2nd order, ``p = 1``, ``sigma = 1``), not tuned here."""
    x, m = _prepare(rgb, saturation, dark)
    d = derivative_magnitude(x, order, sigma)
    keep = edge_mask(m, int(np.ceil(2 * sigma)) + order)
    if keep.sum() < 16:
        keep = m
    return normalise(_minkowski(d[keep], p))


def gray_edge2(rgb, saturation: float = SATURATION, dark: float = DARK) -> np.ndarray:
    """Second-order gray edge (``p = 1``, ``sigma = 1``). Returns ``(r, 1, b)``."""
    return gray_edge(rgb, order=2, p=1.0, sigma=1.0, saturation=saturation, dark=dark)


#: the classical estimators with their default settings, by registry name
CLASSICAL = {
    "gray_world": gray_world, "white_patch": white_patch, "shades_of_gray": shades_of_gray,
    "gray_edge": gray_edge, "gray_edge2": gray_edge2,
}


# --------------------------------------------------------------------------- the metric


def angular_error(estimate, truth) -> float:
    """Angle in degrees between two illuminant RGB vectors (scale-free)."""
    a = np.asarray(estimate, dtype=np.float64).reshape(3)
    b = np.asarray(truth, dtype=np.float64).reshape(3)
    c = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def error_summary(errors: Sequence[float]) -> dict[str, float]:
    """The colour-constancy statistics of angular errors: ``mean``, ``median``, ``best25``
    (mean of the best quarter) and ``worst25`` (mean of the worst quarter), ``n``."""
    e = np.sort(np.asarray(errors, dtype=np.float64))
    if e.size == 0:
        raise InvalidInputError("no errors to summarise")
    q = max(1, int(round(e.size / 4)))
    return {"n": int(e.size), "mean": float(e.mean()), "median": float(np.median(e)),
            "best25": float(e[:q].mean()), "worst25": float(e[-q:].mean())}
