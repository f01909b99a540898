"""Reading raw frames: camera raws and DNG (LibRaw via rawpy), headerless frames, packed
arrays (``.npy``, 4-channel PNG/TIFF) and single-channel 16-bit PNG/TIFF mosaics.

One entry point, :func:`read`. Every failure is a :class:`~isplab.errors.RawReadError` (or
:class:`~isplab.errors.UnsupportedCFAError`) naming the file and the problem.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from isplab.errors import RawReadError, UnsupportedCFAError
from isplab.raw.cfa import packed_offsets
from isplab.raw.fileinfo import (
    DEFAULT_MAX_MEGAPIXELS,
    Limit,
    array_plan,
    c_messages,
    check_npy_shape,
    dispatch,
    dng_noise_profile,
    headerless_frame,
    image_size,
    is_dng,
    libraw_errors,
    libraw_fields,
    npy_shape,
    quiet_logger,
    resolve_levels,
)
from isplab.raw.image import RawImage
from isplab.raw.levels import normalize_levels

log = logging.getLogger(__name__)


def read(
    path: str | Path,
    *,
    width: int | None = None,
    height: int | None = None,
    bit_depth: int | None = None,
    byte_order: str = "little",
    cfa: str | None = None,
    black_level: float | list[float] | tuple[float, ...] | None = None,
    white_level: float | None = None,
    wb_gains: tuple[float, float, float] | None = None,
    max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS,
) -> RawImage:
    """Read a raw frame into a :class:`RawImage` (mosaic normalised to [0, 1]).

    Formats, chosen by content and suffix:

    - camera raws and DNG: everything LibRaw reads (visible area, pattern, levels, as-shot
      white balance and colour matrices from the file);
    - headerless frames (``.raw``, ``.bin``): give ``width``, ``height`` and ideally
      ``bit_depth``, ``byte_order``, ``cfa``, ``black_level``;
    - ``.npy``: ``H x W`` mosaic, or packed ``h x w x 4`` / ``4 x h x w`` in R, G1, G2, B order;
    - PNG/TIFF: single-channel 16-bit mosaic (e.g. ZRR ``huawei_raw``), or 4-channel packed.

    ``max_megapixels`` refuses larger frames *before decoding*, from the header (LibRaw's
    sizes, the PNG/TIFF/NPY header, the headerless flags): a small file claiming a huge size
    never takes minutes and gigabytes (None: no limit).

    Keyword overrides replace what the file says (or supply what it lacks). For array formats
    with no stated white level, the smallest common bit depth (8, 10, 12, 14, 16) that holds
    the data is assumed, with a warning.

    Raises:
        RawReadError: empty, truncated or corrupt file, not raw data, size mismatch, NaN.
        UnsupportedCFAError: X-Trans, Foveon or other non-Bayer sensors.
    """
    readers = {"headerless": _read_headerless, "npy": _read_npy, "image": _read_image_array,
               "libraw": _read_libraw}
    return dispatch(path, readers, width=width, height=height, byte_order=byte_order,
                    max_megapixels=max_megapixels, cfa=cfa, black_level=black_level,
                    white_level=white_level, bit_depth=bit_depth, wb_gains=wb_gains)


# ---------------------------------------------------------------- LibRaw


def _read_libraw(path: Path, cfa, black_level, white_level, bit_depth, wb_gains,
                 limit: Limit) -> RawImage:
    import rawpy

    with libraw_errors(path), rawpy.imread(str(path)) as r:
        limit.check(int(r.sizes.raw_height), int(r.sizes.raw_width))  # before unpacking
        image = _from_rawpy(r, path, cfa, black_level, white_level, bit_depth, wb_gains)
    if image.extra.get("identified_by") == "file size only":  # after fd 2 is back
        log.warning("%s: no raw header: LibRaw identified this file by its size alone "
                    "(%dx%d); if that is not the camera, the result is noise", path.name,
                    image.width, image.height)
    return image


def _from_rawpy(r, path, cfa, black_level, white_level, bit_depth, wb_gains) -> RawImage:
    import rawpy

    if r.raw_type != rawpy.RawType.Flat:
        raise UnsupportedCFAError(
            "not a single-sensor CFA raw (LibRaw reports several samples per pixel: a linear "
            "DNG or a Foveon sensor)", path)
    file = libraw_fields(
        path, sizes=r.sizes, desc=r.color_desc, raw_pattern=r.raw_pattern,
        blacks_by_index=r.black_level_per_channel, white=r.white_level,
        cam_wb=r.camera_whitebalance, cmatrix=r.color_matrix, cam_xyz=r.rgb_xyz_matrix,
        daylight_wb=r.daylight_whitebalance,
        version=".".join(str(v) for v in rawpy.libraw_version))
    data = r.raw_image_visible.astype(np.float32)
    image = _finish(data, path, **file, cfa=cfa, black_level=black_level,
                    white_level=white_level, bit_depth=bit_depth, wb_gains=wb_gains)
    if path.suffix.lower() == ".dng" or is_dng(path):
        image.noise_profile = dng_noise_profile(path)
    return image


# ---------------------------------------------------------------- headerless


def _read_headerless(path, width, height, byte_order, cfa, black_level, white_level, bit_depth,
                     wb_gains, limit: Limit) -> RawImage:
    width, height, bits, cfa, given = headerless_frame(path, width, height, bit_depth, cfa, limit)
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2" if byte_order == "little"
                                                          else ">u2")
    data = np.fromfile(path, dtype=dtype).reshape(height, width)
    if not given:
        log.warning("%s: bit depth not given, assuming 16-bit samples", path.name)
    if cfa is None:
        log.warning("%s: CFA pattern not given, assuming RGGB", path.name)
    top = (1 << bits) - 1
    if int(data.max()) > top:
        other = "big" if byte_order == "little" else "little"
        raise RawReadError(
            f"values up to {int(data.max())} do not fit {bits} bits: wrong bit depth, or the "
            f"data is {other}-endian?", path)
    return _finish(
        data.astype(np.float32), path, file_cfa="RGGB", file_black=[0.0] * 4,
        file_white=float(top), file_bits=bits, extra={"reader": "headerless",
                                                      "byte_order": byte_order},
        cfa=cfa, black_level=black_level, white_level=white_level, bit_depth=None,
        wb_gains=wb_gains,
    )


# ---------------------------------------------------------------- arrays


def _read_npy(path, cfa, black_level, white_level, bit_depth, wb_gains, limit: Limit
              ) -> RawImage:
    shape, _ = npy_shape(path)  # the header only: a huge claimed shape costs nothing
    check_npy_shape(path, shape, limit)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RawReadError(f"not a readable .npy array ({exc.__class__.__name__}: {exc})",
                           path) from exc
    return _from_array(arr, path, "npy", cfa, black_level, white_level, bit_depth, wb_gains)


def _read_image_array(path, cfa, black_level, white_level, bit_depth, wb_gains,
                      limit: Limit) -> RawImage:
    suffix = path.suffix.lower()
    size = image_size(path)
    if size is not None:
        limit.check(*size)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with c_messages(path, "libtiff"), quiet_logger("tifffile"):
                arr = tifffile.imread(path)
        except Exception as exc:
            raise RawReadError(f"corrupt or unreadable TIFF ({exc})", path) from exc
    else:
        import cv2

        with c_messages(path, "libpng") as said:
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            detail = f" ({said[-1]})" if said else ""
            raise RawReadError(f"corrupt or unreadable image file{detail}", path)
        if arr.ndim == 3 and arr.shape[2] == 4:  # OpenCV gives BGRA
            arr = arr[..., [2, 1, 0, 3]]
    if arr.ndim == 3 and arr.shape[2] == 3:
        raise RawReadError(
            "a 3-channel RGB image, not raw data (raw must be a 1-channel mosaic or a "
            "4-channel packed R, G1, G2, B array)", path)
    return _from_array(arr, path, suffix.lstrip("."), cfa, black_level, white_level, bit_depth,
                       wb_gains)


def _from_array(arr, path, kind, cfa, black_level, white_level, bit_depth, wb_gains) -> RawImage:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "uif":
        raise RawReadError(f"unsupported array dtype {arr.dtype}", path)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise RawReadError(f"data contains {bad} NaN or infinite values", path)
    plan = array_plan(path, arr.shape, arr.dtype, cfa, black_level, white_level, bit_depth,
                      wb_gains, lambda: float(arr.max()) if arr.size else 0.0)
    if plan["packed"]:
        planes = (np.moveaxis(arr, -1, 0) if arr.shape[-1] == 4 else arr).astype(np.float32)
        mosaic = np.empty((2 * planes.shape[1], 2 * planes.shape[2]), dtype=np.float32)
        for ch, (dy, dx) in enumerate(packed_offsets("RGGB")):
            mosaic[dy::2, dx::2] = planes[ch]
    else:
        mosaic = arr.astype(np.float32)
    side = plan["side"]
    image = _finish(
        mosaic, path, file_cfa="RGGB", file_black=[0.0] * 4, file_white=plan["file_white"],
        file_bits=plan["file_bits"], extra={"reader": kind, "packed": plan["packed"]},
        cfa=plan["cfa"], black_level=plan["black_level"], white_level=plan["white_level"],
        bit_depth=None, wb_gains=plan["wb_gains"],
    )
    if side and side.get("camera_to_srgb") is not None and image.camera_to_srgb is None:
        image.camera_to_srgb = np.asarray(side["camera_to_srgb"], dtype=np.float64)
    if side and side.get("bit_depth"):
        image.bit_depth = int(side["bit_depth"])
    return image


# ---------------------------------------------------------------- common


def _finish(data: np.ndarray, path: Path, *, file_cfa: str, file_black, file_white: float,
            file_bits: int | None, extra: dict, cfa, black_level, white_level, bit_depth,
            wb_gains, file_wb=None, xyz_to_camera=None, camera_to_srgb=None,
            orientation: int = 0) -> RawImage:
    """Apply overrides, normalise levels, build the RawImage."""
    pattern, blacks, white, bits = resolve_levels(
        path, file_cfa=file_cfa, file_black=file_black, file_white=file_white,
        file_bits=file_bits, cfa=cfa, black_level=black_level, white_level=white_level,
        bit_depth=bit_depth)
    if not np.all(np.isfinite(data)):
        raise RawReadError("data contains NaN or infinite values", path)
    mosaic = normalize_levels(np.ascontiguousarray(data, dtype=np.float32), blacks, white,
                              pattern)
    return RawImage(
        mosaic=mosaic, cfa=pattern, black_level=tuple(blacks), white_level=white,
        wb_gains=wb_gains if wb_gains is not None else file_wb,
        xyz_to_camera=xyz_to_camera, camera_to_srgb=camera_to_srgb, bit_depth=bits,
        orientation=orientation, path=path, extra=extra,
    )
