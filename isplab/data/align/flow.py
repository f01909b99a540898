"""Local refinement: the dense residual flow left after the homography, where it can be
trusted (noise level against texture), and its smooth model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from isplab.data.align.geometry import _remap_flow, _warp_to_preview
from isplab.data.align.photometric import _mean_std, _normalise_u8, _to_u8, match_histogram


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


@dataclass
class _FlowFields:
    """What the flow stage leaves on the preview grid (``h x w``).

    Attributes:
        phone_m: the phone grey, histogram-matched to the reference warped by the homography.
        flow: ``h x w x 2`` float32 residual flow (preview pixels), zeros without the stage.
        left: ``h x w x 2`` measured flow the residual does not explain (last pass), or None.
        conf: bool, confident pixels (last pass).
        valid: bool, in the overlap and supported by confident flow (first pass).
    """

    phone_m: np.ndarray
    flow: np.ndarray
    left: np.ndarray | None
    conf: np.ndarray
    valid: np.ndarray


def _flow_stage(phone_gray: np.ndarray, reference_gray: np.ndarray, h: np.ndarray,
                overlap: np.ndarray, *, enabled: bool, passes: int, sigma: float,
                finest_scale: int, max_flow_std: float) -> _FlowFields:
    """Residual flow (:func:`residual_flow`) between the phone grey and ``reference_gray``
    warped by ``h`` (preview pixel -> its pixel), in ``passes`` passes (each warps with the
    flow so far and adds what is left); ``sigma`` in preview pixels. Not ``enabled``: only
    the histogram matching, a zero flow and ``valid`` = ``overlap``."""
    ph, pw = phone_gray.shape
    warped = _warp_to_preview(reference_gray, h, (ph, pw))
    phone_m = match_histogram(phone_gray, warped, overlap, overlap)
    out = _FlowFields(phone_m=phone_m, flow=np.zeros((ph, pw, 2), np.float32), left=None,
                      conf=np.zeros((ph, pw), bool), valid=overlap.copy())
    if not enabled:
        return out
    a8 = _to_u8(phone_m, overlap)
    mean, std = _mean_std(phone_m, overlap)
    b8 = _normalise_u8(warped, mean, std)
    for i in range(passes):
        if i:  # warp with the flow found so far and look for what is left
            b8 = _normalise_u8(_remap_flow(reference_gray, h, out.flow), mean, std)
        step, fwd, out.conf, support = residual_flow(
            a8, b8, overlap, sigma=sigma, finest_scale=finest_scale, max_flow_std=max_flow_std)
        out.flow += step
        out.left = fwd - step  # what the smooth residual does not explain
        if i == 0:
            out.valid = overlap & (support > 0.3)
    return out
