"""Global registration: a SIFT + RANSAC homography between the phone preview and the
reference, its sanity checks, and its ECC refinement."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from isplab.data.align.geometry import (
    _apply_h,
    _corner_shift,
    _local_scale,
    _resize,
    _warp_to_preview,
)
from isplab.data.align.photometric import _to_u8, match_histogram
from isplab.data.align.results import AlignmentError

log = logging.getLogger(__name__)


def global_homography(
    phone_gray: np.ndarray, reference_gray: np.ndarray, *, sift_size: int = 1600,
    sift_features: int = 8000, ratio: float = 0.75, ransac_px: float = 2.0,
    min_matches: int = 12, path: Path | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SIFT + Lowe ratio + RANSAC homography between two grey images (floats, any range).

    Both are shrunk to at most ``sift_size`` pixels on their long side and normalised
    (mean/std) to uint8 first; the shrink factors are composed into the result.

    Returns:
        (3x3 homography phone pixel -> reference pixel, stats with ``keypoints``,
        ``matches`` and ``inliers``).

    Raises:
        AlignmentError: too few keypoints, matches or inliers, or a degenerate homography.
    """
    fa = min(1.0, sift_size / max(phone_gray.shape))
    fb = min(1.0, sift_size / max(reference_gray.shape))
    a, sa = _resize(phone_gray, fa)
    b, sb = _resize(reference_gray, fb)
    a8, b8 = _to_u8(a), _to_u8(b)
    sift = cv2.SIFT_create(nfeatures=sift_features)
    ka, da = sift.detectAndCompute(a8, None)
    kb, db = sift.detectAndCompute(b8, None)
    stats: dict[str, Any] = {"keypoints": [len(ka), len(kb)], "matches": 0, "inliers": 0}
    if da is None or db is None or len(ka) < min_matches or len(kb) < min_matches:
        raise AlignmentError(
            f"too few SIFT keypoints (phone {len(ka)}, reference {len(kb)}; need "
            f"{min_matches}): texture-less or blank image?", path)
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 5}, {"checks": 64})
    knn = matcher.knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    stats["matches"] = len(good)
    if len(good) < min_matches:
        raise AlignmentError(
            f"only {len(good)} SIFT matches pass the ratio test (need {min_matches}): the "
            "images do not show the same scene, or too differently", path)
    src = np.float32([ka[m.queryIdx].pt for m in good])
    dst = np.float32([kb[m.trainIdx].pt for m in good])
    h, inl = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, ransac_px, maxIters=10000,
                                confidence=0.9999)
    if h is None:
        raise AlignmentError("RANSAC found no homography", path)
    n_in = int(inl.sum())
    stats["inliers"] = n_in
    if n_in < min_matches:
        raise AlignmentError(f"only {n_in} RANSAC inliers (need {min_matches})", path)
    h = np.linalg.inv(sb) @ h @ sa
    return h / h[2, 2], stats


def _check_homography(h: np.ndarray, shape: tuple[int, int], path: Path | None) -> None:
    """Raise :class:`AlignmentError` when ``h`` folds a ``shape`` = (height, width) frame
    over the horizon, maps it to a non-convex or mirrored quadrilateral, or scales it
    implausibly (outside 0.05-50)."""
    hh, ww = shape
    corners = np.float64([[0, 0], [ww - 1, 0], [ww - 1, hh - 1], [0, hh - 1]])
    den = h[2, 0] * corners[:, 0] + h[2, 1] * corners[:, 1] + h[2, 2]
    if np.any(den <= 1e-6) or not np.all(np.isfinite(h)):
        raise AlignmentError("degenerate homography (the frame folds over the horizon)", path)
    x, y = _apply_h(h, corners[:, 0], corners[:, 1])
    cross = []
    for i in range(4):
        ax, ay = x[(i + 1) % 4] - x[i], y[(i + 1) % 4] - y[i]
        bx, by = x[(i + 2) % 4] - x[(i + 1) % 4], y[(i + 2) % 4] - y[(i + 1) % 4]
        cross.append(ax * by - ay * bx)
    if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)) or cross[0] < 0:
        raise AlignmentError("degenerate homography (the frame maps to a non-convex or "
                             "mirrored quadrilateral)", path)
    s = _local_scale(h, ww / 2, hh / 2)
    if not 0.05 < s < 50:
        raise AlignmentError(f"implausible scale {s:.3g} between phone and reference", path)


def refine_ecc(
    template: np.ndarray, image: np.ndarray, h0: np.ndarray, *, levels: int = 2,
    iterations: int = 60, eps: float = 1e-6, gauss_size: int = 5,
    mask: np.ndarray | None = None, max_size: int | None = None,
) -> tuple[np.ndarray, float]:
    """Refine a homography with ECC (``cv2.findTransformECC``, ``MOTION_HOMOGRAPHY``).

    Args:
        template: the phone grey preview (float32).
        image: the reference grey at about the same scale (float32).
        h0: initial homography template pixel -> image pixel.
        levels: pyramid levels (each halves both images), coarse to fine.
        iterations, eps: stopping criteria per level.
        gauss_size: ECC's gaussian pre-filter size (odd).
        mask: optional uint8 mask of usable ``image`` pixels.
        max_size: the finest level is shrunk so that the template's long side is at most
            this (None: full size). ECC's cost grows with the pixel count while a
            homography (8 numbers) is pinned down well by a ~1000 px image; the residual
            flow takes care of the rest.

    Returns:
        (refined homography, final correlation coefficient).

    Raises:
        cv2.error: when ECC does not converge.
    """
    h = h0.astype(np.float64).copy()
    rho = float("nan")
    f0 = 1.0 if max_size is None else min(1.0, max_size / max(template.shape))
    for lvl in reversed(range(levels)):
        f = f0 * 0.5 ** lvl
        t, st = _resize(template, f)
        im, si = _resize(image, f)
        mk = None
        if mask is not None:
            mk = cv2.resize(mask, im.shape[::-1], interpolation=cv2.INTER_NEAREST) \
                if f < 0.999 else mask
        hl = si @ h @ np.linalg.inv(st)
        warp = (hl / hl[2, 2]).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, eps)
        rho, warp = cv2.findTransformECC(t.astype(np.float32), im.astype(np.float32), warp,
                                         cv2.MOTION_HOMOGRAPHY, criteria, mk, gauss_size)
        h = np.linalg.inv(si) @ warp.astype(np.float64) @ st
        h = h / h[2, 2]
    return h, float(rho)


def _guarded_ecc(phone_gray: np.ndarray, reference_gray: np.ndarray, h: np.ndarray,
                 overlap: np.ndarray, *, levels: int, gauss_size: int, max_size: int | None,
                 where: Path | None) -> tuple[np.ndarray | None, dict[str, Any]]:
    """ECC refinement (:func:`refine_ecc`) of ``h`` (preview pixel -> ``reference_gray``
    pixel), the phone grey histogram-matched to the warped reference on ``overlap`` first.

    Returns:
        (the refined homography, or None to keep ``h``; the stats entries to record:
        ``ecc`` = ``"ok"`` with ``ecc_correlation``, ``"rejected (...)"`` when the result
        moves a frame corner by more than max(8 px, 2 % of the frame) -- a divergence, not a
        refinement -- or ``"did not converge"``).
    """
    shape = phone_gray.shape
    warped = _warp_to_preview(reference_gray, h, shape)
    phone_m = match_histogram(phone_gray, warped, overlap, overlap)
    try:
        h_new, rho = refine_ecc(phone_m, reference_gray, h, levels=levels,
                                gauss_size=gauss_size, max_size=max_size)
    except cv2.error as exc:
        log.warning("%s: ECC did not converge (%s); keeping the feature homography",
                    where, str(exc).strip().splitlines()[-1][:80])
        return None, {"ecc": "did not converge"}
    moved = _corner_shift(h, h_new, shape)
    if moved > max(8.0, 0.02 * max(shape)):
        return None, {"ecc": f"rejected (moved corners {moved:.1f} px)"}
    return h_new, {"ecc": "ok", "ecc_correlation": round(rho, 5)}
