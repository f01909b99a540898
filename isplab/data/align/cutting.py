"""Patch cutting: the grid of raw crops, their scores (from whole-frame maps through integral
images), the filters that accept or reject them, and the aligned target of each accepted one."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from isplab.data.align.geometry import _remap_flow, reference_at_raw_scale
from isplab.data.align.options import AlignOptions
from isplab.data.align.photometric import _mean_std, _normalise_u8
from isplab.data.align.results import AlignedPatch, AlignResult, PatchScore
from isplab.raw.image import RawImage


def _grid(n: int, patch: int, stride: int) -> list[int]:
    """Even offsets of the ``patch``-wide crops, ``stride`` apart, centred on ``n`` pixels."""
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


@dataclass
class _GridScores:
    """Scores of every box of the patch grid (``len(ys) x len(xs)`` arrays)."""

    overlap: np.ndarray
    confident: np.ndarray
    correlation: np.ndarray
    unexplained: np.ndarray | None
    keypoints_phone: np.ndarray
    keypoints_reference: np.ndarray


def _grid_scores(phone_m: np.ndarray, aligned: np.ndarray, overlap: np.ndarray,
                 conf: np.ndarray, left: np.ndarray | None, ys: np.ndarray, xs: np.ndarray,
                 q: int) -> _GridScores:
    """Every score of the ``q x q`` preview boxes at ``ys x xs`` from box sums (integral
    images) of whole-frame maps, so the per-patch loop does no pixel work: overlap and
    confident fractions, NCC of the phone grey ``phone_m`` and the ``aligned`` reference
    grey, mean unexplained flow ``left`` (raw pixels), and SIFT keypoints of both (detected
    in the overlap)."""
    n = float(q * q)
    a = phone_m.astype(np.float32, copy=False)
    sa, sb = _box_sums(a, ys, xs, q), _box_sums(aligned, ys, xs, q)
    saa, sbb = _box_sums(a * a, ys, xs, q), _box_sums(aligned * aligned, ys, xs, q)
    sab = _box_sums(a * aligned, ys, xs, q)
    cov = sab - sa * sb / n
    den = np.sqrt(np.maximum(saa - sa * sa / n, 0) * np.maximum(sbb - sb * sb / n, 0))
    unexplained = None
    if left is not None:
        unexplained = _box_sums(2 * np.hypot(left[..., 0], left[..., 1]), ys, xs, q) / n
    mean, std = _mean_std(phone_m, overlap)
    mask = overlap.astype(np.uint8) * 255
    return _GridScores(
        overlap=_box_sums(overlap, ys, xs, q) / n,
        confident=_box_sums(conf, ys, xs, q) / n,
        correlation=np.where(den > 1e-9, cov / np.maximum(den, 1e-300), 0.0),
        unexplained=unexplained,
        keypoints_phone=_keypoint_counts(_normalise_u8(phone_m, mean, std), ys, xs, q, mask),
        keypoints_reference=_keypoint_counts(_normalise_u8(aligned, mean, std), ys, xs, q,
                                             mask),
    )


def _judge(s: PatchScore, scores: _GridScores, i: int, j: int, options: AlignOptions) -> None:
    """Fill ``s`` with the scores of box (i, j) and accept or reject it; a patch partly
    outside the reference is rejected for ``overlap`` without the other scores."""
    s.overlap = round(float(scores.overlap[i, j]), 4)
    s.confident = round(float(scores.confident[i, j]), 4)
    reasons = []
    if s.overlap < 1.0 - 1e-9:
        reasons.append("overlap")
    else:
        s.overlap = 1.0
        s.keypoints_phone = int(scores.keypoints_phone[i, j])
        s.keypoints_reference = int(scores.keypoints_reference[i, j])
        if max(s.keypoints_phone, s.keypoints_reference) < options.min_keypoints:
            reasons.append("keypoints")
        if scores.unexplained is not None:
            s.flow = round(float(scores.unexplained[i, j]), 4)
            if s.flow > options.flow_threshold:
                reasons.append("flow")
        s.correlation = round(float(scores.correlation[i, j]), 4)
        if s.correlation < options.min_correlation:
            reasons.append("correlation")
    s.accepted = not reasons
    s.reason = "+".join(reasons)


def _cut_patches(result: AlignResult, raw: RawImage, ref_rgb: np.ndarray, *,
                 small_ref_gray: np.ndarray, h_small: np.ndarray, phone_m: np.ndarray,
                 left: np.ndarray | None, conf: np.ndarray, options: AlignOptions,
                 stem: str) -> None:
    """Score every crop of the patch grid into ``result.patches`` and cut the accepted ones
    into ``result.accepted``: the packed raw crop (not resampled) and the reference warped
    onto its raw pixel grid.

    Args:
        result: the alignment (homographies, flow, overlap); filled in place.
        raw, ref_rgb: the phone raw and the reference (``H x W x 3`` float32 sRGB).
        small_ref_gray: the reference grey at the preview's scale; ``h_small``: preview
            pixel -> its pixel.
        phone_m: the phone grey preview, histogram-matched to the reference.
        left: measured flow the residual does not explain (None: no flow stage).
        conf: confident-flow mask on the preview grid.
        options: patch size, grid step and filter thresholds.
        stem: patch ids are ``<stem>_<index>``.
    """
    patch = options.patch
    # the reference grey aligned on the preview grid with the full mapping
    aligned = _remap_flow(small_ref_gray, h_small, result.flow)
    ys = np.array(_grid(raw.height, patch, options.grid_step), int) // 2  # preview boxes
    xs = np.array(_grid(raw.width, patch, options.grid_step), int) // 2
    if ys.size == 0 or xs.size == 0:
        return
    q = patch // 2
    scores = _grid_scores(phone_m, aligned, result.overlap, conf, left, ys, xs, q)
    packed = raw.packed()[0].numpy()
    scaled = None  # the reference at the raw's scale, made once when a patch is accepted
    index = 0
    for i, py in enumerate(ys):
        for j, px in enumerate(xs):
            index += 1
            x, y = int(px) * 2, int(py) * 2
            s = PatchScore(id=f"{stem}_{index:04d}", x=x, y=y, size=patch)
            _judge(s, scores, i, j, options)
            result.patches.append(s)
            if not s.accepted:
                continue
            if scaled is None:
                scaled = reference_at_raw_scale(ref_rgb, result.homography, result.raw_shape)
            target = result.warp_reference(ref_rgb, x, y, patch, patch, scaled)
            result.accepted.append(AlignedPatch(
                score=s,
                raw_packed=np.ascontiguousarray(packed[:, py:py + q, px:px + q]),
                target_srgb=np.ascontiguousarray(target.transpose(2, 0, 1)),
            ))
