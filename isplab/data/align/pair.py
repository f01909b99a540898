"""Aligning one pair: :func:`align_pair` reads the inputs and runs the stages in order
(global registration, colour normalisation and ECC, residual flow, patches)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from isplab.data.align.cutting import _cut_patches
from isplab.data.align.flow import _flow_stage, _FlowFields
from isplab.data.align.geometry import (
    RAW_TO_PREVIEW,
    _local_scale,
    _overlap_mask,
    _resize,
    _warp_to_preview,
)
from isplab.data.align.options import AlignOptions
from isplab.data.align.photometric import (
    _gray,
    apply_colour_transform,
    fit_colour_transform,
    raw_preview,
)
from isplab.data.align.registration import _check_homography, _guarded_ecc, global_homography
from isplab.data.align.results import AlignmentError, AlignResult
from isplab.errors import InvalidInputError, IsplabError
from isplab.io import read_image
from isplab.raw import read as read_raw
from isplab.raw.image import RawImage


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


def _as_reference(reference) -> tuple[np.ndarray, Path | None]:
    """Path or array -> (``H x W x 3`` float32 sRGB in [0, 1], path)."""
    if isinstance(reference, (str, Path)):
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
    """A :class:`RawImage` as is, else the raw file read with ``raw_options``."""
    if isinstance(phone_raw, RawImage):
        return phone_raw
    return read_raw(phone_raw, **(raw_options or {}))


@dataclass
class _SmallReference:
    """The reference reduced to the preview's scale, on which ECC and the flow work.

    Attributes:
        gray: its grey image, colours first mapped to the phone preview's.
        scale: 3x3, reference pixel -> its pixel.
        homography: 3x3, preview pixel -> its pixel.
        overlap: preview-grid bool mask of the pixels ``homography`` maps inside it.
    """

    gray: np.ndarray
    scale: np.ndarray
    homography: np.ndarray
    overlap: np.ndarray


def _small_reference(ref_rgb: np.ndarray, preview: np.ndarray, h_glob: np.ndarray,
                     stats: dict[str, Any], where: Path | None) -> _SmallReference:
    """Shrink the reference to the preview's scale and map its colours to the phone
    preview's (affine fit on the overlap, recorded in ``stats["colour_transform"]``), so
    both grey images weigh the colours alike.

    Raises:
        AlignmentError: the frames overlap on less than 5 % of the phone frame.
    """
    ph, pw = preview.shape[:2]
    k = _local_scale(h_glob, pw / 2, ph / 2)  # reference px per preview px
    small_rgb, s_ref = _resize(ref_rgb, 1.0 / k) if k > 1 else (ref_rgb, np.eye(3))
    h_small = s_ref @ h_glob
    overlap = _overlap_mask(small_rgb.shape[:2], h_small, (ph, pw))
    if overlap.mean() < 0.05:
        raise AlignmentError(f"the frames overlap on only {overlap.mean():.1%} of the phone "
                             "frame", where)
    colour = fit_colour_transform(_warp_to_preview(small_rgb, h_small, (ph, pw)), preview,
                                  overlap)
    stats["colour_transform"] = np.round(colour, 4).tolist()
    return _SmallReference(gray=_gray(apply_colour_transform(small_rgb, colour)), scale=s_ref,
                           homography=h_small, overlap=overlap)


def _refine(small: _SmallReference, phone_gray: np.ndarray, options: AlignOptions,
            stats: dict[str, Any], where: Path | None) -> None:
    """The ECC stage: ``small.homography`` (and its overlap) refined in place when ECC
    converges to a plausible result; ``stats["ecc"]`` says what happened."""
    stats["ecc"] = "off"
    if not options.use_ecc:
        return
    h_new, entries = _guarded_ecc(phone_gray, small.gray, small.homography, small.overlap,
                                  levels=options.ecc_levels, gauss_size=options.ecc_gauss_size,
                                  max_size=options.ecc_size, where=where)
    stats.update(entries)
    if h_new is not None:
        small.homography = h_new
        small.overlap = _overlap_mask(small.gray.shape, h_new, phone_gray.shape)


def _result(raw: RawImage, ref_rgb: np.ndarray, h_glob: np.ndarray, small: _SmallReference,
            fields: _FlowFields, stats: dict[str, Any]) -> AlignResult:
    """The :class:`AlignResult` of the stages (homographies composed with raw -> preview)."""
    stats["confident"] = round(float(fields.conf.mean()), 4)
    stats["valid"] = round(float(fields.valid.mean()), 4)
    stats["overlap"] = round(float(small.overlap.mean()), 4)
    if fields.valid.any():
        flow_px = np.hypot(*fields.flow[fields.valid].T).mean()
        stats["flow_mean_px"] = round(2 * float(flow_px), 4)
    h_prev = np.linalg.inv(small.scale) @ small.homography  # preview -> reference
    h_prev /= h_prev[2, 2]
    h_raw = h_prev @ RAW_TO_PREVIEW
    h_raw_glob = h_glob @ RAW_TO_PREVIEW
    return AlignResult(
        homography=h_raw / h_raw[2, 2], homography_global=h_raw_glob / h_raw_glob[2, 2],
        preview_homography=h_prev, flow=fields.flow, valid=fields.valid,
        overlap=small.overlap, raw_shape=(raw.height, raw.width),
        reference_shape=tuple(ref_rgb.shape[:2]), stats=stats,
    )


def align_pair(
    phone_raw: RawImage | str | Path,
    reference: str | Path | np.ndarray | torch.Tensor,
    options: AlignOptions | int | None = None,
    **overrides: Any,
) -> AlignResult:
    """Align a phone raw to a reference (DSLR) photo and cut aligned patch pairs.

    Args:
        phone_raw: a :class:`RawImage` or a raw file (read with the ``raw_options`` option).
        reference: the DSLR photo: an image file, an ``H x W x 3`` array (uint8, uint16 or
            float sRGB in [0, 1]) or a ``3 x H x W`` tensor. Any resolution.
        options: an :class:`AlignOptions` (None: the defaults), or just the patch side in
            raw pixels (an int, as in ``align_pair(raw, ref, 448)``).
        overrides: fields of :class:`AlignOptions` replaced by keyword (``patch=256``,
            ``use_flow=False``, ``stem=...``, ``raw_options={...}``...).

    Returns:
        :class:`AlignResult`.

    Raises:
        AlignmentError: the pair cannot be aligned (the reason says which stage failed).
        InvalidInputError / RawReadError: unreadable inputs or bad parameters.
        TypeError: an override names no option.
    """
    opts = AlignOptions.resolve(options, overrides)
    # OpenCV's global RNG (RANSAC) starts from one seed for every pair: a pair aligns the
    # same whatever ran before it in this process (isplab align --jobs N / --shard K/N)
    cv2.setRNGSeed(0)
    clock = _StageClock()
    raw = _as_raw(phone_raw, opts.raw_options)
    ref_rgb, ref_path = _as_reference(reference)
    where = ref_path or raw.path
    stem = opts.stem or (raw.path.stem if raw.path is not None else "pair")
    clock.lap("read")

    preview = raw_preview(raw)
    phone_gray = _gray(preview)
    ref_gray = _gray(ref_rgb)
    if min(phone_gray.shape) < 32:
        raise AlignmentError(f"raw too small to align ({raw.height}x{raw.width})", raw.path)
    h_glob, stats = global_homography(phone_gray, ref_gray, sift_size=opts.sift_size,
                                      sift_features=opts.sift_features, ratio=opts.ratio,
                                      path=where)
    _check_homography(h_glob, phone_gray.shape, where)
    clock.lap("global")

    small = _small_reference(ref_rgb, preview, h_glob, stats, where)
    _refine(small, phone_gray, opts, stats, where)
    clock.lap("ecc")

    fields = _flow_stage(phone_gray, small.gray, small.homography, small.overlap,
                         enabled=opts.use_flow, passes=opts.flow_passes,
                         sigma=opts.flow_sigma / 2, finest_scale=opts.flow_finest_scale,
                         max_flow_std=opts.max_flow_std)
    result = _result(raw, ref_rgb, h_glob, small, fields, stats)
    clock.lap("flow")
    if opts.cut_patches:
        _cut_patches(result, raw, ref_rgb, small_ref_gray=small.gray,
                     h_small=small.homography, phone_m=fields.phone_m, left=fields.left,
                     conf=fields.conf, options=opts, stem=stem)
        clock.lap("patches")
    stats["seconds"] = {k: round(v, 3) for k, v in clock.wall.items()}
    stats["cpu_seconds"] = {k: round(v, 3) for k, v in clock.cpu.items()}
    return result
