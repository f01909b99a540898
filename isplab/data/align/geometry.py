"""Geometry of the alignment: homographies, pixel-centre-aligned resizing, and warping the
reference onto the phone's preview or raw pixel grid.

The preview grid has one pixel per 2x2 Bayer block, its centre at raw ``2 * p + 0.5``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _apply_h(h: np.ndarray, x, y):
    """Points (x, y) (arrays or floats) through the 3x3 homography ``h``."""
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den


def _local_scale(h: np.ndarray, x: float, y: float) -> float:
    """sqrt |det J| of homography ``h`` at (x, y): output pixels per input pixel."""
    e = 0.5
    x0, y0 = _apply_h(h, x - e, y)
    x1, y1 = _apply_h(h, x + e, y)
    x2, y2 = _apply_h(h, x, y - e)
    x3, y3 = _apply_h(h, x, y + e)
    return float(math.sqrt(abs((x1 - x0) * (y3 - y2) - (x3 - x2) * (y1 - y0))))


def _corner_shift(h0: np.ndarray, h1: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance (output pixels) between where ``h0`` and ``h1`` put the corners of a
    ``shape`` = (height, width) frame."""
    hh, ww = shape
    cx = np.float64([0, ww - 1, ww - 1, 0])
    cy = np.float64([0, 0, hh - 1, hh - 1])
    ax, ay = _apply_h(h0, cx, cy)
    bx, by = _apply_h(h1, cx, cy)
    return float(np.max(np.hypot(ax - bx, ay - by)))


def _scale_matrix(sx: float, sy: float) -> np.ndarray:
    """Pixel-centre-aligned resize: x' = (x + 0.5) * sx - 0.5."""
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])


def _resize(img: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Shrink by ``factor`` (<= 1, INTER_AREA); returns the image and the 3x3 map full -> small."""
    if factor >= 0.999:
        return img, np.eye(3)
    h, w = img.shape[:2]
    nw, nh = max(8, round(w * factor)), max(8, round(h * factor))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return small, _scale_matrix(nw / w, nh / h)


#: raw pixel -> preview pixel (one preview pixel per 2x2 block, centred at raw 2p + 0.5)
RAW_TO_PREVIEW = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])


def _warp_to_preview(img: np.ndarray, h: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``img`` resampled (bilinear, edges replicated) onto a ``shape`` = (height, width) grid
    whose pixel p maps to ``img`` pixel ``h(p)``."""
    return cv2.warpPerspective(img, h, (shape[1], shape[0]),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


def _overlap_mask(image_shape: tuple[int, int], h: np.ndarray,
                  shape: tuple[int, int]) -> np.ndarray:
    """``shape`` = (height, width) bool mask of the grid pixels that ``h`` maps inside an
    image of ``image_shape`` (eroded by 2 pixels, so bilinear samples stay inside)."""
    ones = np.full(image_shape, 255, np.uint8)
    inside = cv2.warpPerspective(ones, h, (shape[1], shape[0]),
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
    return cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0


def _remap_flow(image: np.ndarray, h: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (grey) resampled (bilinear, edges replicated) onto the flow's grid through
    the full mapping ``image = h(p + flow(p))``."""
    hh, ww = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    qx, qy = gx + flow[..., 0], gy + flow[..., 1]
    del gx, gy
    mx, my = _apply_h(h, qx.astype(np.float64), qy.astype(np.float64))
    del qx, qy
    return cv2.remap(image, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def _preview_to_reference(hp: np.ndarray, flow: np.ndarray | None, px: np.ndarray,
                          py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference coordinates of the preview points ``px x py`` (a grid, preview pixels)
    through ``hp`` (preview -> reference), after the residual ``flow`` when given."""
    gx, gy = np.meshgrid(px, py)
    gx = gx.astype(np.float32)
    gy = gy.astype(np.float32)
    if flow is not None:
        rx = cv2.remap(flow[..., 0], gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ry = cv2.remap(flow[..., 1], gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        qx, qy = gx + rx, gy + ry
    else:
        qx, qy = gx, gy
    mx, my = _apply_h(hp, qx.astype(np.float64), qy.astype(np.float64))
    return mx.astype(np.float32), my.astype(np.float32)


def reference_at_raw_scale(reference: np.ndarray, h_raw: np.ndarray,
                           raw_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Shrink the reference (INTER_AREA) to about the raw's scale when it has more pixels,
    so that warping it onto the raw grid does not alias. Returns the image and the 3x3 map
    reference pixel -> its pixel."""
    scale = _local_scale(h_raw, raw_shape[1] / 2, raw_shape[0] / 2)  # ref px per raw px
    if scale <= 1.05:
        return reference, np.eye(3)
    return _resize(reference, 1.0 / scale)


def _remap_reference(reference: np.ndarray, mx: np.ndarray, my: np.ndarray,
                     h_raw: np.ndarray, raw_shape: tuple[int, int],
                     scaled: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The reference sampled (cubic, clipped to [0, 1]) at reference coordinates (mx, my),
    from its copy at the raw's scale (``scaled``, else made here)."""
    ref, s = scaled if scaled is not None else reference_at_raw_scale(reference, h_raw,
                                                                      raw_shape)
    if not np.allclose(s, np.eye(3)):
        mx = (mx * s[0, 0] + s[0, 2]).astype(np.float32)
        my = (my * s[1, 1] + s[1, 2]).astype(np.float32)
    out = cv2.remap(ref, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(out, 0.0, 1.0)
