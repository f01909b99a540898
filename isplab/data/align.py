"""Align a phone raw to a DSLR photo and cut aligned (packed raw, sRGB target) patch pairs.

Coordinates. Everything is expressed in *phone raw pixels* (pixel centres at integers of the
full-resolution mosaic) and *reference pixels* (the DSLR photo, full resolution). The phone is
worked on through a half-resolution **preview** (one pixel per 2x2 Bayer block, its centre at
raw ``2 * p + 0.5``), so the raw is never resampled: only the reference is warped.

Stages (:func:`align_pair`):

1. *Global*: SIFT on a gamma-encoded, mean/std-normalised grey preview of the raw and on the
   reference (both at most ``sift_size`` pixels wide), Lowe's ratio test, RANSAC homography;
   the scales of both images are composed into it, so the DSLR may have any resolution.
2. *ECC*: the reference is reduced to the preview's scale, its grey histogram matched to the
   phone's, and ``cv2.findTransformECC`` (``MOTION_HOMOGRAPHY``, gaussian pre-filter)
   refines the homography on the overlap, coarse to fine.
3. *Flow*: dense residual flow (``cv2.DISOpticalFlow``) from the preview to the warped
   reference at the full preview resolution, kept only where it is confident:
   forward-backward consistent, close to its local mean, and precise (the phone's noise
   level against the reference's texture, :func:`predicted_flow_std`); then a polynomial
   plus normalised convolution (so it fades to the polynomial away from confident areas).
   The final map is ``reference = H(p + r(p))``.
4. *Patches*: a grid of ``patch x patch`` raw crops at even offsets (the Bayer phase kept);
   the reference is warped onto each crop's raw pixel grid (``cv2.remap``); each patch is
   scored (residual flow, SIFT keypoints, correlation; all from whole-frame maps through
   integral images) and accepted or rejected with its reasons, as the filters of Xing et
   al. 2022 do.

:func:`align_dataset` runs this over many pairs and writes the ``PairedRawRGBDataset``
layout (``raw/``, ``rgb/``, ``meta/``, ``patches.csv``, ``summary.json``); a pair that fails
is reported and nothing of it is written.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from isplab.errors import InvalidInputError, IsplabError
from isplab.raw.cfa import packed_offsets
from isplab.raw.image import RawImage
from isplab.raw.packed import write_packed_png

log = logging.getLogger(__name__)

#: reasons a patch can be rejected, in the order they are checked
REJECT_REASONS = ("overlap", "keypoints", "flow", "correlation")


class AlignmentError(IsplabError):
    """A phone/reference pair could not be aligned (too few matches, degenerate warp...)."""


# ---------------------------------------------------------------- results


@dataclass
class PatchScore:
    """Scores of one candidate patch (box in phone raw pixels, even offsets).

    Attributes:
        id: ``<stem>_<index>`` (the file name the patch gets in a dataset).
        x, y: top-left corner in raw pixels (even).
        size: side in raw pixels.
        overlap: fraction of the patch that maps inside the reference.
        keypoints_phone, keypoints_reference: SIFT keypoints found in the patch's preview
            (phone) and in the aligned reference at the same scale.
        flow: mean magnitude (raw pixels) of the dense flow the alignment could not explain
            (measured flow minus the smooth residual that was applied).
        correlation: normalised cross-correlation of the grey previews after alignment.
        confident: fraction of the patch where the flow was confident.
        accepted: True when no filter rejects it.
        reason: the failed filters joined by ``+`` (``""`` when accepted).
    """

    id: str
    x: int
    y: int
    size: int
    overlap: float = 0.0
    keypoints_phone: int = 0
    keypoints_reference: int = 0
    flow: float = float("nan")
    correlation: float = float("nan")
    confident: float = 0.0
    accepted: bool = False
    reason: str = ""


@dataclass
class AlignedPatch:
    """An accepted patch pair.

    Attributes:
        score: its :class:`PatchScore` (box, scores).
        raw_packed: ``4 x P/2 x P/2`` float32 in [0, 1], R, G1, G2, B: the raw crop, not
            resampled (same normalisation as :attr:`RawImage.mosaic`).
        target_srgb: ``3 x P x P`` float32 sRGB in [0, 1]: the reference warped onto the
            crop's raw pixel grid.
    """

    score: PatchScore
    raw_packed: np.ndarray
    target_srgb: np.ndarray


@dataclass
class AlignResult:
    """Everything :func:`align_pair` found.

    Attributes:
        homography: 3x3, phone raw pixel -> reference pixel (global + ECC; the residual
            flow comes on top of it, see :meth:`reference_coords`).
        homography_global: the same after the SIFT/RANSAC stage only.
        preview_homography: 3x3, preview pixel -> reference pixel (``homography`` composed
            with raw -> preview).
        flow: ``h x w x 2`` float32 residual flow on the preview grid, in preview pixels
            (``h, w`` = raw size // 2); zero where it was not confident.
        valid: ``h x w`` bool on the preview grid: maps inside the reference and the residual
            there is supported by confident flow nearby.
        overlap: ``h x w`` bool on the preview grid: maps inside the reference.
        raw_shape: (height, width) of the phone mosaic.
        reference_shape: (height, width) of the reference.
        patches: the scores of every candidate patch.
        accepted: the accepted patch pairs.
        stats: matches, inliers, ECC correlation, flow statistics, seconds per stage.
    """

    homography: np.ndarray
    homography_global: np.ndarray
    preview_homography: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    overlap: np.ndarray
    raw_shape: tuple[int, int]
    reference_shape: tuple[int, int]
    patches: list[PatchScore] = field(default_factory=list)
    accepted: list[AlignedPatch] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def reference_coords(self, x0: int = 0, y0: int = 0, width: int | None = None,
                         height: int | None = None, use_flow: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Reference pixel coordinates (x, y) of the raw pixels of a box.

        Args:
            x0, y0, width, height: the box in raw pixels (default: the whole raw).
            use_flow: add the residual flow (False: homography only).

        Returns:
            Two ``height x width`` float32 arrays, ready for ``cv2.remap`` of the reference.
        """
        width = self.raw_shape[1] - x0 if width is None else width
        height = self.raw_shape[0] - y0 if height is None else height
        px = (np.arange(x0, x0 + width, dtype=np.float32) - 0.5) / 2
        py = (np.arange(y0, y0 + height, dtype=np.float32) - 0.5) / 2
        return _preview_to_reference(self.preview_homography, self.flow if use_flow else None,
                                     px, py)

    def warp_reference(self, reference: np.ndarray, x0: int = 0, y0: int = 0,
                       width: int | None = None, height: int | None = None,
                       scaled: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The reference (``H x W x C`` float32) resampled onto a box of the raw pixel grid
        (anti-aliased when the reference has more pixels; cubic interpolation, clipped to
        [0, 1]); ``height x width x C`` float32. ``scaled``: the result of
        :func:`reference_at_raw_scale`, to reuse over many boxes."""
        mx, my = self.reference_coords(x0, y0, width, height)
        return _remap_reference(reference, mx, my, self.homography, self.raw_shape, scaled)


def _preview_to_reference(hp: np.ndarray, flow: np.ndarray | None, px: np.ndarray,
                          py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _apply_h(h: np.ndarray, x, y):
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
    ref, s = scaled if scaled is not None else reference_at_raw_scale(reference, h_raw,
                                                                      raw_shape)
    if not np.allclose(s, np.eye(3)):
        mx = (mx * s[0, 0] + s[0, 2]).astype(np.float32)
        my = (my * s[1, 1] + s[1, 2]).astype(np.float32)
    out = cv2.remap(ref, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------- previews


def raw_preview(raw: RawImage) -> np.ndarray:
    """Quick sRGB preview of a raw on its half-resolution (one pixel per 2x2 block) grid.

    Each packed plane is bilinearly shifted by a quarter packed pixel onto the block centre
    (so all colours are co-sited at raw ``2 * p + 0.5``), the greens averaged, white balance
    applied (as-shot gains, else gray world), exposure set so that the mean is 18 % grey, and
    the sRGB curve applied. No colour matrix: the preview only needs structure.

    Returns:
        ``H//2 x W//2 x 3`` float32 sRGB in [0, 1].
    """
    from isplab.classic import apply_white_balance, gray_world_gains, srgb_gamma

    packed = raw.packed()[0].numpy()
    planes = []
    for c, (dy, dx) in enumerate(packed_offsets(raw.cfa)):
        m = np.float32([[1, 0, (0.5 - dx) / 2], [0, 1, (0.5 - dy) / 2]])
        planes.append(cv2.warpAffine(packed[c], m, packed[c].shape[::-1],
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE))
    rgb = np.stack([planes[0], 0.5 * (planes[1] + planes[2]), planes[3]])
    t = torch.from_numpy(rgb)[None]
    gains = raw.wb_gains if raw.wb_gains is not None else gray_world_gains(t)[0].tolist()
    t = apply_white_balance(t, gains)
    t = t * (0.18 / max(float(t.mean()), 1e-6))
    out = srgb_gamma(t.clamp(0, 1))[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out, dtype=np.float32)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """``h x w x 3`` RGB -> ``h x w`` float32 luma (0.299 R + 0.587 G + 0.114 B)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)


def _to_u8(gray: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean/std normalisation to uint8 (mean 128, std 48)."""
    vals = gray[mask] if mask is not None and mask.any() else gray
    mean, std = float(vals.mean()), float(vals.std()) + 1e-6
    return np.clip((gray - mean) / std * 48 + 128, 0, 255).astype(np.uint8)


def match_histogram(source: np.ndarray, template: np.ndarray,
                    source_mask: np.ndarray | None = None,
                    template_mask: np.ndarray | None = None, levels: int = 256,
                    max_samples: int = 400_000) -> np.ndarray:
    """Map the grey values of ``source`` so their distribution matches ``template``'s.

    Args:
        source, template: 2-D float arrays (any range).
        source_mask, template_mask: bool masks of the pixels whose histograms are compared.
        levels: number of quantiles of the piecewise-linear transfer curve.
        max_samples: the quantiles are taken on at most about this many (evenly strided)
            pixels of each image; plenty for 256 levels, and it keeps 12 MP frames fast.

    Returns:
        ``source``'s shape, float32, values in the range of ``template``.
    """
    s = source[source_mask] if source_mask is not None else source.ravel()
    t = template[template_mask] if template_mask is not None else template.ravel()
    if s.size == 0 or t.size == 0:
        return source.astype(np.float32)
    s = s[::max(1, s.size // max_samples)]
    t = t[::max(1, t.size // max_samples)]
    q = np.linspace(0, 100, levels)
    sq = np.percentile(s, q)
    tq = np.percentile(t, q)
    sq, idx = np.unique(sq, return_index=True)
    tq = tq[idx]
    if sq.size < 2:
        return np.full_like(source, float(np.median(t)), dtype=np.float32)
    return np.interp(source, sq, tq).astype(np.float32)


def fit_colour_transform(source: np.ndarray, target: np.ndarray, mask: np.ndarray,
                         step: int = 2) -> np.ndarray:
    """Least-squares affine colour map ``source -> target`` over ``mask``.

    Args:
        source, target: ``h x w x 3`` float32 images on the same grid.
        mask: ``h x w`` bool (sampled every ``step`` pixels).

    Returns:
        ``4 x 3`` matrix ``M``: ``[r, g, b, 1] @ M`` approximates the target colour.
    """
    m = mask[::step, ::step]
    a = source[::step, ::step][m].reshape(-1, 3).astype(np.float64)
    b = target[::step, ::step][m].reshape(-1, 3).astype(np.float64)
    if len(a) < 16:
        return np.vstack([np.eye(3), np.zeros((1, 3))])
    a = np.hstack([a, np.ones((len(a), 1))])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return coef


def apply_colour_transform(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``h x w x 3`` float32 through a ``4 x 3`` affine colour map (not clipped)."""
    return (rgb @ m[:3].astype(np.float32) + m[3].astype(np.float32)).astype(np.float32)


def _as_reference(reference) -> tuple[np.ndarray, Path | None]:
    """Path or array -> (``H x W x 3`` float32 sRGB in [0, 1], path)."""
    if isinstance(reference, (str, Path)):
        from isplab.io import read_image

        path = Path(reference)
        try:
            img = read_image(path)
        except IsplabError as exc:
            raise InvalidInputError(exc.reason, path) from None
        return np.ascontiguousarray(img[0].permute(1, 2, 0).numpy()), path
    if isinstance(reference, torch.Tensor):
        t = reference.detach().float().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise InvalidInputError(f"reference tensor must be 3 x H x W, got {tuple(t.shape)}")
        return np.ascontiguousarray(t.clamp(0, 1).permute(1, 2, 0).numpy()), None
    arr = np.asarray(reference)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidInputError(f"reference array must be H x W x 3, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0, None
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0, None
    if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
        raise InvalidInputError("reference array must be uint8, uint16 or finite floats")
    return np.clip(arr.astype(np.float32), 0.0, 1.0), None


def _as_raw(phone_raw, raw_options: dict | None) -> RawImage:
    if isinstance(phone_raw, RawImage):
        return phone_raw
    from isplab.raw import read

    return read(phone_raw, **(raw_options or {}))


# ---------------------------------------------------------------- stages


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


def noise_level(gray: np.ndarray, mask: np.ndarray | None = None, *, bins: int = 16,
                quantile: float = 0.1, window: int = 5) -> np.ndarray:
    """Per-pixel noise standard deviation of a grey image, from its noise level function.

    The local standard deviation in ``window x window`` boxes is binned by the local mean;
    in each bin a low ``quantile`` of it is the noise (the flattest boxes of that brightness
    hold only noise), so signal-dependent (shot) noise and the tone curve are followed.
    The curve is interpolated at each pixel's local mean. On pure noise it reads about 0.75
    to 0.9 of the true sigma (a low quantile of 25-pixel estimates), a bias the thresholds
    that use it absorb; at a brightness no flat area of the image has, texture leaks in and
    the noise is overestimated (which only makes the confidence test stricter there).

    Args:
        gray: ``h x w`` float32 (any range; the result is in the same units).
        mask: ``h x w`` bool, the pixels to estimate the curve on (default: all).

    Returns:
        ``h x w`` float32 noise sigma.
    """
    g = gray.astype(np.float32, copy=False)
    mu = cv2.blur(g, (window, window))
    var = cv2.blur(g * g, (window, window)) - mu * mu
    sd = np.sqrt(np.maximum(var, 0.0))
    c = window // 2
    sub = np.s_[c::window, c::window]  # non-overlapping boxes
    m = np.ones(mu[sub].shape, bool) if mask is None else mask[sub]
    mv, sv = mu[sub][m], sd[sub][m]
    if mv.size < 4 * bins:
        return np.full(g.shape, float(np.median(sd)) if sd.size else 0.0, np.float32)
    edges = np.quantile(mv, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, mv, side="right") - 1, 0, bins - 1)
    centres, sigmas = [], []
    for i in range(bins):
        sel = idx == i
        if sel.sum() >= 8:
            centres.append(float(mv[sel].mean()))
            sigmas.append(float(np.quantile(sv[sel], quantile)))
    if not centres:
        return np.full(g.shape, float(np.quantile(sv, quantile)), np.float32)
    return np.interp(mu, centres, sigmas).astype(np.float32)


def predicted_flow_std(phone: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None,
                       *, window_sigma: float = 3.0) -> np.ndarray:
    """How precisely a local patch match can be located: ``sigma_n / sqrt(A * lambda_min)``.

    ``lambda_min`` is the smaller eigenvalue of the structure tensor of ``reference`` (the
    clean side) averaged with a gaussian of ``window_sigma``, ``A = 4 pi window_sigma^2`` the
    window's effective pixel count, and ``sigma_n`` the noise of ``phone``
    (:func:`noise_level`). This is the standard deviation of a least-squares (Lucas-Kanade)
    displacement over that window along its least textured direction: large on flat areas,
    on soft gradients drowned in noise, and along straight edges (aperture problem).

    Args:
        phone, reference: ``h x w`` grey images on the same grid and in the same units
            (the reference warped onto the phone's grid, brightness-matched).
        mask: pixels to estimate the noise on.

    Returns:
        ``h x w`` float32, in pixels.
    """
    ref = reference.astype(np.float32, copy=False)
    gx = cv2.Sobel(ref, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    gy = cv2.Sobel(ref, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), window_sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), window_sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), window_sigma)
    lmin = 0.5 * (jxx + jyy) - np.sqrt(0.25 * (jxx - jyy) ** 2 + jxy * jxy)
    area = 4 * np.pi * window_sigma ** 2
    sigma_n = noise_level(phone.astype(np.float32, copy=False), mask)
    return sigma_n / np.sqrt(np.maximum(lmin, 1e-6) * area)


def residual_flow(
    phone_u8: np.ndarray, reference_u8: np.ndarray, overlap: np.ndarray, *,
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, finest_scale: int = 0,
    patch_stride: int = 4, variational_iterations: int = 2, fb_threshold: float = 0.5,
    variance_threshold: float = 0.5, max_flow_std: float = 0.15,
    window_sigma: float = 3.0, sigma: float = 12.0, support: float = 0.3, degree: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense residual flow from the phone preview to the (already warped) reference.

    DIS flow (``preset``, down to pyramid level ``finest_scale``: 0 = full preview
    resolution; ``patch_stride`` and ``variational_iterations`` override the preset's 3
    and 5, which cost twice as much at level 0 for no measurable gain after the
    smoothing) is computed both ways (the backward flow, used only for the consistency
    check, without variational refinement). A pixel is *confident* when it is in ``overlap``, its
    forward-backward error is below ``fb_threshold`` (pixels), its flow differs from the
    local (gaussian ``sigma / 2``) mean by less than ``variance_threshold`` and a patch match
    there is precise: :func:`predicted_flow_std` (the phone's noise against the reference's
    texture) below ``max_flow_std`` pixels. A smooth polynomial of ``degree`` is fitted to
    the confident flow (:func:`smooth_flow_model`; 0 = none); what it leaves is smoothed by
    normalised convolution with a gaussian of ``sigma`` and, where the confident support
    ``G * m`` is below ``support``, faded linearly to zero (so texture-less areas get the
    polynomial).

    Args:
        phone_u8, reference_u8: ``h x w`` uint8 grey images (histogram-matched).
        overlap: ``h x w`` bool, where the reference has data.

    Returns:
        (residual ``h x w x 2`` float32, raw forward DIS flow ``h x w x 2``, confident mask,
        support ``G * m`` in [0, 1]).
    """
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(int(finest_scale))
    dis.setPatchStride(int(patch_stride))
    dis.setVariationalRefinementIterations(int(variational_iterations))
    fwd = dis.calc(phone_u8, reference_u8, None)
    # the backward flow only checks consistency: no variational refinement (half the cost)
    dis.setVariationalRefinementIterations(0)
    bwd = dis.calc(reference_u8, phone_u8, None)
    hh, ww = phone_u8.shape
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    back = cv2.remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    fb = np.hypot(fwd[..., 0] + back[..., 0], fwd[..., 1] + back[..., 1])
    local = cv2.GaussianBlur(fwd, (0, 0), sigma / 2)
    dev = np.hypot(fwd[..., 0] - local[..., 0], fwd[..., 1] - local[..., 1])
    precision = predicted_flow_std(phone_u8, reference_u8, overlap, window_sigma=window_sigma)
    conf = overlap & (fb < fb_threshold) & (dev < variance_threshold) & \
        (precision < max_flow_std)
    base = smooth_flow_model(fwd, conf, degree) if degree > 0 else np.zeros_like(fwd)
    m = conf.astype(np.float32)
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    num = cv2.GaussianBlur((fwd - base) * m[..., None], (0, 0), sigma)
    res = num / np.maximum(den, 1e-6)[..., None]
    res *= np.clip(den / support, 0.0, 1.0)[..., None]
    res[den < 1e-4] = 0
    res += base
    res[~overlap] = 0
    return res.astype(np.float32), fwd, conf, den


def smooth_flow_model(flow: np.ndarray, mask: np.ndarray, degree: int = 3,
                      step: int = 4, min_points: int = 200,
                      max_points: int = 40_000) -> np.ndarray:
    """Robust least-squares fit of a bivariate polynomial of ``degree`` to each flow
    component over the pixels of ``mask`` (sampled every ``step`` pixels, a coarser step
    on big frames so that at most about ``max_points`` are used; two rounds, the
    second without the points beyond 3 robust sigmas). It models the low-frequency part of
    a residual deformation (lens distortion differences) and fills texture-less areas.

    Args:
        flow: ``h x w x 2`` float32; mask: ``h x w`` bool.

    Returns:
        ``h x w x 2`` float32 (zeros when fewer than ``min_points`` samples).
    """
    hh, ww = mask.shape
    step = max(step, int(math.sqrt(hh * ww / max_points)))
    sub = mask[::step, ::step]
    ys, xs = np.nonzero(sub)
    if ys.size < min_points:
        return np.zeros_like(flow)
    ys, xs = ys * step, xs * step

    def basis(x, y):
        u = (np.asarray(x, np.float64) - ww / 2) / (ww / 2)
        v = (np.asarray(y, np.float64) - hh / 2) / (hh / 2)
        return np.stack([u ** i * v ** j for i in range(degree + 1)
                         for j in range(degree + 1 - i)], axis=-1)

    a = basis(xs, ys)
    b = flow[ys, xs].astype(np.float64)
    keep = np.ones(len(b), bool)
    coef = np.zeros((a.shape[1], 2))
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(a[keep], b[keep], rcond=None)
        r = np.hypot(*(a @ coef - b).T)
        mad = float(np.median(r[keep])) * 1.4826 + 1e-3
        keep = r < 3 * mad
        if keep.sum() < min_points:
            break
    # evaluate on a coarse grid and upsample (the polynomial is smooth)
    gy = np.linspace(0, hh - 1, min(hh, 64))
    gx = np.linspace(0, ww - 1, min(ww, 64))
    mx, my = np.meshgrid(gx, gy)
    coarse = (basis(mx, my) @ coef).astype(np.float32)
    return cv2.resize(coarse, (ww, hh), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------- align one pair


def align_pair(
    phone_raw: RawImage | str | Path,
    reference: str | Path | np.ndarray | torch.Tensor,
    patch: int = 448,
    *,
    stride: int | None = None,
    flow_threshold: float = 1.2,
    min_keypoints: int = 40,
    min_correlation: float = 0.8,
    use_ecc: bool = True,
    use_flow: bool = True,
    sift_size: int = 1200,
    sift_features: int = 8000,
    ratio: float = 0.75,
    ecc_levels: int = 2,
    ecc_gauss_size: int = 5,
    ecc_size: int | None = 1024,
    flow_sigma: float = 24.0,
    flow_passes: int = 1,
    flow_finest_scale: int = 0,
    max_flow_std: float = 0.15,
    cut_patches: bool = True,
    stem: str | None = None,
    raw_options: dict | None = None,
) -> AlignResult:
    """Align a phone raw to a reference (DSLR) photo and cut aligned patch pairs.

    Args:
        phone_raw: a :class:`RawImage` or a raw file (read with ``raw_options``).
        reference: the DSLR photo: an image file, an ``H x W x 3`` array (uint8, uint16 or
            float sRGB in [0, 1]) or a ``3 x H x W`` tensor. Any resolution.
        patch: patch side in raw pixels (even).
        stride: grid step in raw pixels (even; default ``patch``).
        flow_threshold: reject a patch whose unexplained flow exceeds this (raw pixels).
        min_keypoints: reject a patch when both its previews have fewer SIFT keypoints.
        min_correlation: reject a patch whose aligned grey previews correlate less.
        use_ecc, use_flow: run the ECC and residual-flow stages.
        sift_size: long side (pixels) SIFT works at; sift_features: keypoints kept per image.
        ratio: Lowe's ratio.
        ecc_levels, ecc_gauss_size: ECC pyramid levels and gaussian pre-filter size.
        ecc_size: long side (preview pixels) of ECC's finest level (None: the preview).
        flow_sigma: smoothing of the residual flow (gaussian sigma, raw pixels).
        flow_passes: residual-flow passes (each warps with the flow so far and adds what
            is left; the smoothing loses a little of a curved deformation each pass).
        flow_finest_scale: finest DIS pyramid level (0: the full preview resolution;
            1 measures a quarter as many vectors and is about 1.5x less precise).
        max_flow_std: confident flow only where a patch match is predicted to be this
            precise (preview pixels; :func:`predicted_flow_std`).
        cut_patches: cut and score patches (False: alignment only).
        stem: name patch ids ``<stem>_<index>`` (default: the raw file's stem or ``pair``).
        raw_options: keyword arguments for :func:`isplab.raw.read`.

    Returns:
        :class:`AlignResult`.

    Raises:
        AlignmentError: the pair cannot be aligned (the reason says which stage failed).
        InvalidInputError / RawReadError: unreadable inputs or bad parameters.
    """
    if patch < 16 or patch % 2:
        raise InvalidInputError(f"patch must be an even number >= 16, got {patch}")
    stride = patch if stride is None else int(stride)
    if stride < 2 or stride % 2:
        raise InvalidInputError(f"stride must be an even number >= 2, got {stride}")
    clock = _StageClock()
    raw = _as_raw(phone_raw, raw_options)
    ref_rgb, ref_path = _as_reference(reference)
    where = ref_path or raw.path
    stem = stem or (raw.path.stem if raw.path is not None else "pair")
    clock.lap("read")

    # ---- global
    preview = raw_preview(raw)
    phone_gray = _gray(preview)
    ref_gray = _gray(ref_rgb)
    ph, pw = phone_gray.shape
    if min(ph, pw) < 32:
        raise AlignmentError(f"raw too small to align ({raw.height}x{raw.width})", raw.path)
    h_glob, stats = global_homography(phone_gray, ref_gray, sift_size=sift_size,
                                      sift_features=sift_features, ratio=ratio, path=where)
    _check_homography(h_glob, (ph, pw), where)
    clock.lap("global")

    # ---- reference at the preview's scale, histogram-matched grey images
    k = _local_scale(h_glob, pw / 2, ph / 2)  # reference px per preview px
    ref_small_rgb, s_ref = _resize(ref_rgb, 1.0 / k) if k > 1 else (ref_rgb, np.eye(3))
    h_small = s_ref @ h_glob
    ones = np.full(ref_small_rgb.shape[:2], 255, np.uint8)

    def overlap_of(hs: np.ndarray) -> np.ndarray:
        inside = cv2.warpPerspective(ones, hs, (pw, ph), flags=cv2.INTER_NEAREST |
                                     cv2.WARP_INVERSE_MAP, borderValue=0)
        return cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0

    overlap = overlap_of(h_small)
    if overlap.mean() < 0.05:
        raise AlignmentError(f"the frames overlap on only {overlap.mean():.1%} of the phone "
                             "frame", where)
    # colour normalisation: the reference's colours mapped to the phone preview's (affine
    # fit on the overlap), so both grey images weigh the colours alike
    warped_rgb = cv2.warpPerspective(ref_small_rgb, h_small, (pw, ph), flags=cv2.INTER_LINEAR |
                                     cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    colour = fit_colour_transform(warped_rgb, preview, overlap)
    ref_small = _gray(apply_colour_transform(ref_small_rgb, colour))
    stats["colour_transform"] = np.round(colour, 4).tolist()
    warped = cv2.warpPerspective(ref_small, h_small, (pw, ph), flags=cv2.INTER_LINEAR |
                                 cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    phone_m = match_histogram(phone_gray, warped, overlap, overlap)
    stats["ecc"] = "off"
    if use_ecc:
        try:
            h_new, rho = refine_ecc(phone_m, ref_small, h_small, levels=ecc_levels,
                                    gauss_size=ecc_gauss_size, max_size=ecc_size)
            # an ECC result far from the feature-based one is a divergence, not a refinement
            cx = np.float64([0, pw - 1, pw - 1, 0])
            cy = np.float64([0, 0, ph - 1, ph - 1])
            ax, ay = _apply_h(h_small, cx, cy)
            bx, by = _apply_h(h_new, cx, cy)
            moved = float(np.max(np.hypot(ax - bx, ay - by)))
            if moved > max(8.0, 0.02 * max(pw, ph)):
                stats["ecc"] = f"rejected (moved corners {moved:.1f} px)"
            else:
                h_small = h_new
                stats["ecc"] = "ok"
                stats["ecc_correlation"] = round(rho, 5)
                overlap = overlap_of(h_small)
        except cv2.error as exc:
            stats["ecc"] = "did not converge"
            log.warning("%s: ECC did not converge (%s); keeping the feature homography",
                        where, str(exc).strip().splitlines()[-1][:80])
    clock.lap("ecc")

    # ---- residual flow
    warped = cv2.warpPerspective(ref_small, h_small, (pw, ph), flags=cv2.INTER_LINEAR |
                                 cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    phone_m = match_histogram(phone_gray, warped, overlap, overlap)
    a8 = _to_u8(phone_m, overlap)
    mean, std = float(phone_m[overlap].mean()), float(phone_m[overlap].std()) + 1e-6
    b8 = np.clip((warped - mean) / std * 48 + 128, 0, 255).astype(np.uint8)
    sigma = flow_sigma / 2
    flow = np.zeros((ph, pw, 2), np.float32)
    left = None
    conf = np.zeros((ph, pw), bool)
    valid = overlap.copy()
    if use_flow:
        gx, gy = np.meshgrid(np.arange(pw, dtype=np.float32), np.arange(ph, dtype=np.float32))
        for i in range(flow_passes):
            if i:  # warp with the flow found so far and look for what is left
                mx, my = _apply_h(h_small, (gx + flow[..., 0]).astype(np.float64),
                                  (gy + flow[..., 1]).astype(np.float64))
                warped = cv2.remap(ref_small, mx.astype(np.float32), my.astype(np.float32),
                                   cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                b8 = np.clip((warped - mean) / std * 48 + 128, 0, 255).astype(np.uint8)
            step, fwd, conf, support = residual_flow(
                a8, b8, overlap, sigma=sigma, finest_scale=flow_finest_scale,
                max_flow_std=max_flow_std)
            flow += step
            left = fwd - step  # what the smooth residual does not explain
            if i == 0:
                valid = overlap & (support > 0.3)
    stats["confident"] = round(float(conf.mean()), 4)
    stats["valid"] = round(float(valid.mean()), 4)
    stats["overlap"] = round(float(overlap.mean()), 4)
    if valid.any():
        stats["flow_mean_px"] = round(2 * float(np.hypot(*flow[valid].T).mean()), 4)
    clock.lap("flow")

    h_prev = np.linalg.inv(s_ref) @ h_small  # preview -> reference
    h_prev /= h_prev[2, 2]
    to_preview = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])  # raw -> preview
    h_raw = h_prev @ to_preview
    h_raw_glob = h_glob @ to_preview
    result = AlignResult(
        homography=h_raw / h_raw[2, 2], homography_global=h_raw_glob / h_raw_glob[2, 2],
        preview_homography=h_prev, flow=flow, valid=valid, overlap=overlap,
        raw_shape=(raw.height, raw.width), reference_shape=tuple(ref_rgb.shape[:2]),
        stats=stats,
    )
    if cut_patches:
        _cut_patches(result, raw, ref_rgb, small_ref_gray=ref_small, h_small=h_small,
                     phone_m=phone_m, left=left, conf=conf, patch=patch, stride=stride,
                     flow_threshold=flow_threshold, min_keypoints=min_keypoints,
                     min_correlation=min_correlation, stem=stem)
        clock.lap("patches")
    stats["seconds"] = {k: round(v, 3) for k, v in clock.wall.items()}
    stats["cpu_seconds"] = {k: round(v, 3) for k, v in clock.cpu.items()}
    return result


class _StageClock:
    """Wall and process CPU seconds per stage (CPU time counts every thread, and is what
    a loaded machine does not inflate)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.wall[name], self.cpu[name] = w - self._w, c - self._c
        self._w, self._c = w, c


def _grid(n: int, patch: int, stride: int) -> list[int]:
    if n < patch:
        return []
    count = (n - patch) // stride + 1
    start = ((n - patch - (count - 1) * stride) // 2) // 2 * 2
    return [start + i * stride for i in range(count)]


def _box_sums(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``img`` (``h x w``) over the ``size x size`` boxes with top-left corners
    (ys[i], xs[j]) (preview pixels), from one integral image: ``len(ys) x len(xs)`` float64."""
    ii = cv2.integral(np.ascontiguousarray(img, dtype=np.float32), sdepth=cv2.CV_64F)
    y0, x0 = ys[:, None], xs[None, :]
    return ii[y0 + size, x0 + size] - ii[y0, x0 + size] - ii[y0 + size, x0] + ii[y0, x0]


def _keypoint_counts(img_u8: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """SIFT keypoints (detected once on the whole image) whose centre falls in each
    ``size x size`` box (top-left corners ``ys x xs``, preview pixels): ``len(ys) x len(xs)``
    int array. ``mask``: uint8, where to detect (the rest is skipped)."""
    sift = cv2.SIFT_create(nfeatures=0)
    kps = sift.detect(img_u8, mask)
    hh, ww = img_u8.shape
    hist = np.zeros((hh, ww), np.float32)
    if kps:
        pts = np.array([kp.pt for kp in kps], np.float64)
        px = np.clip(np.floor(pts[:, 0] + 0.5).astype(int), 0, ww - 1)
        py = np.clip(np.floor(pts[:, 1] + 0.5).astype(int), 0, hh - 1)
        np.add.at(hist, (py, px), 1.0)
    return np.rint(_box_sums(hist, ys, xs, size)).astype(int)


def _cut_patches(result: AlignResult, raw: RawImage, ref_rgb: np.ndarray, *,
                 small_ref_gray: np.ndarray, h_small: np.ndarray, phone_m: np.ndarray,
                 left: np.ndarray | None, conf: np.ndarray, patch: int, stride: int,
                 flow_threshold: float, min_keypoints: int, min_correlation: float,
                 stem: str) -> None:
    ph, pw = phone_m.shape
    # the reference grey aligned on the preview grid with the full mapping
    gx, gy = np.meshgrid(np.arange(pw, dtype=np.float32), np.arange(ph, dtype=np.float32))
    qx, qy = gx + result.flow[..., 0], gy + result.flow[..., 1]
    del gx, gy
    mx, my = _apply_h(h_small, qx.astype(np.float64), qy.astype(np.float64))
    del qx, qy
    aligned = cv2.remap(small_ref_gray, mx.astype(np.float32), my.astype(np.float32),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    del mx, my
    ov = result.overlap
    ys = np.array(_grid(raw.height, patch, stride), int) // 2  # preview boxes
    xs = np.array(_grid(raw.width, patch, stride), int) // 2
    if ys.size == 0 or xs.size == 0:
        return
    q = patch // 2
    n = float(q * q)
    # every score from box sums (integral images), so the per-patch loop does no pixel work
    overlap = _box_sums(ov, ys, xs, q) / n
    confident = _box_sums(conf, ys, xs, q) / n
    a = phone_m.astype(np.float32, copy=False)
    sa, sb = _box_sums(a, ys, xs, q), _box_sums(aligned, ys, xs, q)
    saa, sbb = _box_sums(a * a, ys, xs, q), _box_sums(aligned * aligned, ys, xs, q)
    sab = _box_sums(a * aligned, ys, xs, q)
    cov = sab - sa * sb / n
    den = np.sqrt(np.maximum(saa - sa * sa / n, 0) * np.maximum(sbb - sb * sb / n, 0))
    correlation = np.where(den > 1e-9, cov / np.maximum(den, 1e-300), 0.0)
    unexplained = None
    if left is not None:
        unexplained = _box_sums(2 * np.hypot(left[..., 0], left[..., 1]), ys, xs, q) / n
    mean, std = float(phone_m[ov].mean()), float(phone_m[ov].std()) + 1e-6
    a8 = np.clip((phone_m - mean) / std * 48 + 128, 0, 255).astype(np.uint8)
    b8 = np.clip((aligned - mean) / std * 48 + 128, 0, 255).astype(np.uint8)
    mask = ov.astype(np.uint8) * 255
    kp_a = _keypoint_counts(a8, ys, xs, q, mask)
    kp_b = _keypoint_counts(b8, ys, xs, q, mask)
    packed = raw.packed()[0].numpy()
    scaled = None  # the reference at the raw's scale, made once when a patch is accepted
    index = 0
    for i, py in enumerate(ys):
        for j, px in enumerate(xs):
            index += 1
            x, y = int(px) * 2, int(py) * 2
            s = PatchScore(id=f"{stem}_{index:04d}", x=x, y=y, size=patch)
            s.overlap = round(float(overlap[i, j]), 4)
            s.confident = round(float(confident[i, j]), 4)
            reasons = []
            if s.overlap < 1.0 - 1e-9:
                reasons.append("overlap")
            else:
                s.overlap = 1.0
                s.keypoints_phone = int(kp_a[i, j])
                s.keypoints_reference = int(kp_b[i, j])
                if max(s.keypoints_phone, s.keypoints_reference) < min_keypoints:
                    reasons.append("keypoints")
                if unexplained is not None:
                    s.flow = round(float(unexplained[i, j]), 4)
                    if s.flow > flow_threshold:
                        reasons.append("flow")
                s.correlation = round(float(correlation[i, j]), 4)
                if s.correlation < min_correlation:
                    reasons.append("correlation")
            s.accepted = not reasons
            s.reason = "+".join(reasons)
            result.patches.append(s)
            if s.accepted:
                if scaled is None:
                    scaled = reference_at_raw_scale(ref_rgb, result.homography,
                                                    result.raw_shape)
                target = result.warp_reference(ref_rgb, x, y, patch, patch, scaled)
                sl = (slice(py, py + q), slice(px, px + q))
                result.accepted.append(AlignedPatch(
                    score=s,
                    raw_packed=np.ascontiguousarray(packed[:, sl[0], sl[1]]),
                    target_srgb=np.ascontiguousarray(target.transpose(2, 0, 1)),
                ))


# ---------------------------------------------------------------- datasets


def pair_files(phones: Sequence[Path], references: Sequence[Path], by: str = "name"
               ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Pair phone raws with references by file stem (``by="name"``) or by sorted order.

    Returns:
        (pairs, unpaired files with the reason).
    """
    phones = [Path(p) for p in phones]
    references = [Path(r) for r in references]
    if by == "order":
        pairs = list(zip(phones, references, strict=False))
        n = len(pairs)
        lonely = [(p, "no reference left to pair with (pairing by order)") for p in phones[n:]]
        lonely += [(r, "no phone raw left to pair with (pairing by order)")
                   for r in references[n:]]
        return pairs, lonely
    if by != "name":
        raise InvalidInputError(f"pair_by must be 'name' or 'order', got {by!r}")
    index: dict[str, Path] = {}
    lonely = []
    for r in references:
        if r.stem in index:
            lonely.append((r, f"two references named {r.stem!r} ({index[r.stem]})"))
        else:
            index[r.stem] = r
    pairs = []
    used = set()
    for p in phones:
        if p.stem in index:
            pairs.append((p, index[p.stem]))
            used.add(p.stem)
        else:
            lonely.append((p, f"no reference named {p.stem}.* (pairing by name)"))
    lonely += [(r, "no phone raw with this name") for s, r in index.items() if s not in used]
    return pairs, lonely


def _sensor_units(raw: RawImage, packed: np.ndarray) -> tuple[np.ndarray, list[float], float,
                                                                int]:
    """Normalised packed ``4 x h x w`` -> uint16 raw units, with the levels to read it back."""
    white = raw.white_level
    black = list(raw.black_level)
    if white < 2 or white > 65535 or white != round(white):
        black, white = [0.0] * 4, 65535.0
        bits = 16
    else:
        bits = raw.bit_depth or max(1, math.ceil(math.log2(white + 1)))
    b = np.asarray(black, np.float64)[:, None, None]
    units = np.round(packed.astype(np.float64) * (white - b) + b)
    return np.clip(units, 0, 65535).astype(np.uint16), black, white, int(bits)


def _write_pair(tmp: Path, result: AlignResult, raw: RawImage, phone: Path | None,
                reference: Path | None) -> list[str]:
    ids = []
    meta_raw = raw.metadata()
    for ap in result.accepted:
        s = ap.score
        units, black, white, bits = _sensor_units(raw, ap.raw_packed)
        write_packed_png(tmp / "raw" / f"{s.id}.png", np.asarray(units, dtype=np.uint16))
        rgb = np.clip(ap.target_srgb.transpose(1, 2, 0) * 65535 + 0.5, 0, 65535)
        rgb = rgb.astype(np.uint16)
        if not cv2.imwrite(str(tmp / "rgb" / f"{s.id}.png"), np.ascontiguousarray(rgb[..., ::-1])):
            raise IsplabError("OpenCV could not write the target PNG", tmp / "rgb")
        meta = {
            "id": s.id,
            "phone": None if phone is None else str(phone),
            "reference": None if reference is None else str(reference),
            "crop": {"x": s.x, "y": s.y, "width": s.size, "height": s.size},
            "packed_crop": {"x": s.x // 2, "y": s.y // 2, "width": s.size // 2,
                            "height": s.size // 2},
            "homography": [[float(v) for v in row] for row in result.homography],
            "scores": {k: v for k, v in asdict(s).items()
                       if k in ("overlap", "keypoints_phone", "keypoints_reference", "flow",
                                "correlation", "confident")},
            "black_level": black,
            "white_level": white,
            "bit_depth": bits,
            "cfa": raw.cfa,
            "packed_order": ["R", "G1", "G2", "B"],
            "wb_gains": meta_raw.get("wb_gains"),
            "camera_to_srgb": meta_raw.get("camera_to_srgb"),
            "xyz_to_camera": meta_raw.get("xyz_to_camera"),
            "raw_size": [raw.height, raw.width],
            "target": "sRGB, 16-bit, reference warped onto the raw pixel grid",
        }
        (tmp / "meta" / f"{s.id}.json").write_text(json.dumps(_jsonable(meta), indent=1))
        ids.append(s.id)
    return ids


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _existing(out: Path, stem: str) -> list[Path]:
    pattern = f"{stem}_[0-9][0-9][0-9][0-9]"
    found = []
    for sub, ext in (("raw", "png"), ("rgb", "png"), ("meta", "json")):
        found += sorted((out / sub).glob(f"{pattern}.{ext}"))
    return found


PATCH_COLUMNS = ("pair", "id", "x", "y", "size", "status", "reason", "overlap",
                 "keypoints_phone", "keypoints_reference", "flow", "correlation", "confident")


def align_dataset(
    phones: Sequence[str | Path],
    references: Sequence[str | Path],
    out: str | Path,
    patch: int = 448,
    *,
    pair_by: str = "name",
    overwrite: bool = False,
    raw_options: dict | None = None,
    progress: Callable[[str, dict], None] | None = None,
    **align_options: Any,
) -> dict[str, Any]:
    """Align phone raws to references and write a paired dataset.

    Layout written under ``out`` (the ``PairedRawRGBDataset`` "isplab" layout):

    - ``raw/<id>.png``: the raw crop, packed R, G1, G2, B as a 4-channel 16-bit PNG in raw
      units: ``isplab.raw.read(path, black_level=meta.black_level,
      white_level=meta.white_level)`` gives back the crop.
    - ``rgb/<id>.png``: 16-bit sRGB target, ``patch x patch``.
    - ``meta/<id>.json``: source files, crop box, homography, scores, levels, CFA.
    - ``patches.csv``: every candidate patch, accepted or with its rejection reason.
    - ``summary.json``: parameters, and per pair its status, alignment stats and counts.

    A pair is written only once it has fully succeeded (its files go to a temporary folder
    first, then are moved into place); a pair that fails is reported and nothing of it is
    written. Existing patches of a pair are kept (the pair is reported as failed) unless
    ``overwrite``. ``patches.csv`` and ``summary.json`` describe this run and replace older
    ones.

    Args:
        phones, references: files; paired by ``pair_by`` (``"name"``: same stem,
            ``"order"``: as given).
        out: output folder (created).
        patch: patch side in raw pixels.
        raw_options: keyword arguments for :func:`isplab.raw.read`.
        progress: called after each pair with its stem and its summary entry.
        align_options: passed to :func:`align_pair` (thresholds, stages...).

    Returns:
        The summary (also written to ``summary.json``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError("exists and is not a folder", out)
    for sub in ("raw", "rgb", "meta"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    pairs, lonely = pair_files([Path(p) for p in phones], [Path(r) for r in references],
                               pair_by)
    entries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for path, reason in lonely:
        entries.append({"phone": str(path), "reference": None, "status": "failed",
                        "error": f"{path}: {reason}"})
    seen: dict[str, Path] = {}
    for phone, ref in pairs:
        stem = phone.stem
        entry: dict[str, Any] = {"pair": stem, "phone": str(phone), "reference": str(ref)}
        t0 = time.perf_counter()
        try:
            if stem in seen:
                raise InvalidInputError(f"another phone raw has the same name ({seen[stem]}): "
                                        "patch ids would collide", phone)
            seen[stem] = phone
            old = _existing(out, stem)
            if old and not overwrite:
                raise IsplabError(f"{len(old)} files of this pair exist in {out} (use "
                                  "--overwrite to replace them)", phone)
            raw = _as_raw(phone, raw_options)
            res = align_pair(raw, ref, patch, stem=stem, **align_options)
            tmp = Path(tempfile.mkdtemp(prefix=f".align-{stem}-", dir=out))
            try:
                for sub in ("raw", "rgb", "meta"):
                    (tmp / sub).mkdir()
                ids = _write_pair(tmp, res, raw, phone, ref)
                for f in old:
                    f.unlink()
                for sub in ("raw", "rgb", "meta"):
                    for f in sorted((tmp / sub).iterdir()):
                        os.replace(f, out / sub / f.name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            entry.update(status="aligned", patches=len(res.patches), accepted=len(ids),
                         rejected=_count_reasons(res.patches),
                         homography=[[float(v) for v in r] for r in res.homography],
                         stats=res.stats)
            for s in res.patches:
                rows.append({"pair": stem, **_row(s)})
        except (IsplabError, OSError, cv2.error) as exc:
            msg = str(exc) if isinstance(exc, IsplabError) else \
                f"{phone}: {exc.__class__.__name__}: {str(exc).strip().splitlines()[-1]}"
            if isinstance(exc, IsplabError) and exc.path is None:
                msg = f"{phone}: {msg}"
            entry.update(status="failed", error=msg)
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        entries.append(entry)
        if progress is not None:
            progress(stem, entry)
    aligned = [e for e in entries if e["status"] == "aligned"]
    summary = {
        "pairs": len(pairs),
        "aligned": len(aligned),
        "failed": len(entries) - len(aligned),
        "patches": sum(e["patches"] for e in aligned),
        "accepted": sum(e["accepted"] for e in aligned),
        "parameters": _jsonable({"patch": patch, "pair_by": pair_by, **align_options}),
        "entries": entries,
    }
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PATCH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(out / "patches.csv", buf.getvalue())
    _write_text(out / "summary.json", json.dumps(_jsonable(summary), indent=1))
    return summary


def _row(s: PatchScore) -> dict[str, Any]:
    d = asdict(s)
    return {"id": d["id"], "x": d["x"], "y": d["y"], "size": d["size"],
            "status": "accepted" if s.accepted else "rejected", "reason": s.reason,
            **{k: d[k] for k in ("overlap", "keypoints_phone", "keypoints_reference", "flow",
                                 "correlation", "confident")}}


def _count_reasons(patches: list[PatchScore]) -> dict[str, int]:
    counts = {r: 0 for r in REJECT_REASONS}
    for s in patches:
        for r in filter(None, s.reason.split("+")):
            counts[r] += 1
    return counts


def _write_text(path: Path, text: str) -> None:
    from isplab.io import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)
