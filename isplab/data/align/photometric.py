"""Photometric side of the alignment: the phone raw's preview, grey images, and matching the
reference's colours and grey levels to the phone's."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from isplab.raw.cfa import packed_offsets
from isplab.raw.image import RawImage


def raw_preview(raw: RawImage) -> np.ndarray:
    """Quick sRGB preview of a raw on its half-resolution (one pixel per 2x2 block) grid.

    Each packed plane is bilinearly shifted by a quarter packed pixel onto the block centre
    (so all colours are co-sited at raw ``2 * p + 0.5``), the greens averaged, white balance
    applied (as-shot gains, else gray world), exposure set so that the mean is 18 % grey, and
    the sRGB curve applied. No colour matrix: the preview only needs structure.

    Returns:
        ``H//2 x W//2 x 3`` float32 sRGB in [0, 1].
    """
    # imported here: isplab.classic loads kornia, which the rest of the alignment never needs
    from isplab.classic import gray_world_gains

    packed = raw.packed()[0].numpy()
    planes = []
    for c, (dy, dx) in enumerate(packed_offsets(raw.cfa)):
        m = np.float32([[1, 0, (0.5 - dx) / 2], [0, 1, (0.5 - dy) / 2]])
        planes.append(cv2.warpAffine(packed[c], m, packed[c].shape[::-1],
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE))
    rgb = np.stack([planes[0], 0.5 * (planes[1] + planes[2]), planes[3]])
    # NumPy, not torch, from here: torch splits elementwise ops into per-thread chunks whose
    # edges may round differently, and a 1-ulp change moves SIFT/ECC; the preview (so the
    # alignment and the patch files) must not depend on the thread count (align --jobs N)
    if raw.wb_gains is not None:
        gains = raw.wb_gains
    else:
        t = torch.from_numpy(rgb)[None].double()
        gains = [float(f"{g:.9g}") for g in gray_world_gains(t)[0].tolist()]
    rgb = rgb * np.asarray(gains, np.float32)[:, None, None]
    rgb = rgb * np.float32(0.18 / max(float(np.mean(rgb, dtype=np.float64)), 1e-6))
    lin = np.clip(rgb, 0, 1).transpose(1, 2, 0)
    out = np.where(lin > 0.0031308,
                   1.055 * np.power(np.maximum(lin, 0.0031308), 1 / 2.4) - 0.055, 12.92 * lin)
    return np.ascontiguousarray(out, dtype=np.float32)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """``h x w x 3`` RGB -> ``h x w`` float32 luma (0.299 R + 0.587 G + 0.114 B)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)


def _normalise_u8(gray: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(gray - mean) / std`` mapped to uint8 with mean 128 and std 48 (clipped)."""
    return np.clip((gray - mean) / std * 48 + 128, 0, 255).astype(np.uint8)


def _mean_std(gray: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (+ 1e-6) of ``gray`` over ``mask``."""
    return float(gray[mask].mean()), float(gray[mask].std()) + 1e-6


def _to_u8(gray: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean/std normalisation to uint8 (mean 128, std 48), the statistics taken over ``mask``
    when it has any pixel."""
    vals = gray[mask] if mask is not None and mask.any() else gray
    mean, std = float(vals.mean()), float(vals.std()) + 1e-6
    return _normalise_u8(gray, mean, std)


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
