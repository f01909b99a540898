"""What a raw file says before its pixels: :func:`read_header` gives a :class:`RawHeader` (the
metadata :meth:`RawImage.metadata` gives, never decoding the frame): one header reader per
format, on the header parsing :func:`~isplab.raw.read` shares (:mod:`isplab.raw.fileinfo`):
headerless frames from their flags and size, ``.npy`` from its header, PNG/TIFF/PGM from
IHDR, the TIFF IFDs or the PGM header, camera raws from LibRaw's metadata before unpacking
(:mod:`isplab.raw.libraw_header`).

Every format gives its size, CFA and, where the file states them, levels, white balance and
matrices. What only the pixels settle (an array's white level inferred from its maximum;
a camera raw's levels, which LibRaw may measure from masked pixels or a curve when it
decodes) is None, named in :attr:`RawHeader.needs_decoding`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isplab.errors import InvalidInputError, RawReadError, UnsupportedCFAError
from isplab.raw.fileinfo import (
    DEFAULT_MAX_MEGAPIXELS,
    Limit,
    array_plan,
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
from isplab.raw.image import describe

log = logging.getLogger("isplab.raw.readers")


# ---------------------------------------------------------------- the header


@dataclass
class RawHeader:
    """What :func:`read` would give but the pixels: the same fields as
    :class:`~isplab.raw.RawImage` (``width`` and ``height`` instead of a mosaic). A field the
    file does not settle before its pixels are decoded is None and named in
    ``needs_decoding``."""

    width: int
    height: int
    cfa: str = "RGGB"
    black_level: tuple[float, ...] | None = (0.0, 0.0, 0.0, 0.0)
    white_level: float | None = 1.0
    wb_gains: tuple[float, float, float] | None = None
    xyz_to_camera: np.ndarray | None = None
    camera_to_srgb: np.ndarray | None = None
    bit_depth: int | None = None
    orientation: int = 0
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    noise_profile: tuple[float, float] | None = None
    needs_decoding: list[str] = field(default_factory=list)

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def metadata(self) -> dict[str, Any]:
        """JSON-friendly metadata, keyed as :meth:`RawImage.metadata`, plus
        ``needs_decoding``."""
        return {**describe(self), "needs_decoding": list(self.needs_decoding)}


def read_header(
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
) -> RawHeader:
    """The metadata of the frame :func:`~isplab.raw.read` would read, from the file's header
    (same arguments, same checks, same errors for a file whose header is bad), never
    decoding the pixels: constant time and memory whatever the frame's size. A file whose
    header is fine but whose pixel data is corrupt passes here and fails in ``read``.

    Raises:
        RawReadError, UnsupportedCFAError: as :func:`~isplab.raw.read`, for what a header
            shows.
    """
    readers = {"headerless": headerless_header, "npy": npy_header, "image": image_header,
               "libraw": libraw_header_of}
    return dispatch(path, readers, width=width, height=height, byte_order=byte_order,
                    max_megapixels=max_megapixels, cfa=cfa, black_level=black_level,
                    white_level=white_level, bit_depth=bit_depth, wb_gains=wb_gains)


def make_header(path: Path, height: int, width: int, *, file_cfa: str, file_black, file_white,
                file_bits, extra: dict, cfa, black_level, white_level, bit_depth, wb_gains,
                file_wb=None, xyz_to_camera=None, camera_to_srgb=None, orientation: int = 0,
                needs: tuple[str, ...] = ()) -> RawHeader:
    """:func:`~isplab.raw.readers` ``_finish`` for a header: the overrides applied, no
    pixels. ``needs`` names the file values only decoding gives (an override settles them)."""
    pattern, blacks, white, bits = resolve_levels(
        path, file_cfa=file_cfa, file_black=file_black, file_white=file_white,
        file_bits=file_bits, cfa=cfa, black_level=black_level, white_level=white_level,
        bit_depth=bit_depth)
    pending = [n for n, v in (("black_level", blacks), ("white_level", white),
                              ("bit_depth", bits)) if n in needs and v is None]
    wb = wb_gains if wb_gains is not None else file_wb
    if wb is None and "wb_gains" in needs:
        pending.append("wb_gains")
    if wb is not None:
        g = np.asarray(wb, dtype=np.float64).reshape(-1)
        if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise InvalidInputError(f"white-balance gains must be 3 positive numbers, got {g}")
        wb = tuple(float(v) for v in g / g[1])
    return RawHeader(
        width=int(width), height=int(height), cfa=pattern,
        black_level=None if blacks is None else tuple(blacks), white_level=white,
        wb_gains=wb, xyz_to_camera=xyz_to_camera, camera_to_srgb=camera_to_srgb,
        bit_depth=bits, orientation=orientation, path=path, extra=extra, needs_decoding=pending)


# ---------------------------------------------------------------- per format


def array_header(path: Path, shape, dtype, kind: str, cfa, black_level, white_level,
                 bit_depth, wb_gains) -> RawHeader:
    plan = array_plan(path, shape, np.dtype(dtype), cfa, black_level, white_level, bit_depth,
                      wb_gains, None)
    if plan["packed"]:
        h, w = (shape[1], shape[2]) if shape[-1] != 4 else (shape[0], shape[1])
        height, width = 2 * h, 2 * w
    else:
        height, width = shape
    side = plan["side"]
    header = make_header(
        path, height, width, file_cfa="RGGB", file_black=[0.0] * 4,
        file_white=plan["file_white"], file_bits=plan["file_bits"],
        extra={"reader": kind, "packed": plan["packed"]}, cfa=plan["cfa"],
        black_level=plan["black_level"], white_level=plan["white_level"], bit_depth=None,
        wb_gains=plan["wb_gains"], needs=plan["needs"])
    if side and side.get("camera_to_srgb") is not None and header.camera_to_srgb is None:
        header.camera_to_srgb = np.asarray(side["camera_to_srgb"], dtype=np.float64)
    if side and side.get("bit_depth"):
        header.bit_depth = int(side["bit_depth"])
    return header


def npy_header(path: Path, cfa, black_level, white_level, bit_depth, wb_gains,
               limit: Limit) -> RawHeader:
    shape, dtype = npy_shape(path)
    check_npy_shape(path, shape, limit)
    expected = int(np.prod(shape)) * dtype.itemsize
    if path.stat().st_size < expected:  # the data cannot all be there
        raise RawReadError(f"not a readable .npy array (the header claims {expected:,} bytes "
                           f"of data, the file has {path.stat().st_size:,} in all)", path)
    return array_header(path, shape, dtype, "npy", cfa, black_level, white_level, bit_depth,
                        wb_gains)


def headerless_header(path, width, height, byte_order, cfa, black_level, white_level,
                      bit_depth, wb_gains, limit: Limit) -> RawHeader:
    width, height, bits, cfa, given = headerless_frame(path, width, height, bit_depth, cfa, limit)
    if not given:
        log.warning("%s: bit depth not given, assuming 16-bit samples", path.name)
    if cfa is None:
        log.warning("%s: CFA pattern not given, assuming RGGB", path.name)
    return make_header(
        path, height, width, file_cfa="RGGB", file_black=[0.0] * 4,
        file_white=float((1 << bits) - 1), file_bits=bits,
        extra={"reader": "headerless", "byte_order": byte_order}, cfa=cfa,
        black_level=black_level, white_level=white_level, bit_depth=None, wb_gains=wb_gains)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _image_shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The array shape and dtype the image reader would give, from the header."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 26:
        h, w = image_size(path)
        depth, ctype = head[24], head[25]
        ch = _PNG_CHANNELS.get(ctype)
        if ch is None or depth not in (1, 2, 4, 8, 16):
            raise RawReadError("corrupt or unreadable image file", path)
        dtype = np.dtype(np.uint16 if depth == 16 and ctype != 3 else np.uint8)
        return ((h, w) if ch == 1 else (h, w, ch)), dtype
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        try:
            with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype = tuple(int(v) for v in series.shape), np.dtype(series.dtype)
        except Exception as exc:
            raise RawReadError(f"corrupt or unreadable TIFF ({exc})", path) from exc
        if len(shape) < 2 or 0 in shape:
            raise RawReadError(f"corrupt or unreadable TIFF (its header gives the image "
                               f"shape {shape})", path)
        return shape, dtype
    if head[:2] == b"P5":  # binary PGM: magic, width, height, maxval
        fields = head[2:].split(maxsplit=3)
        try:
            w, h, maxval = (int(v) for v in fields[:3])
        except ValueError:
            raise RawReadError("corrupt or unreadable image file", path) from None
        return (h, w), np.dtype(np.uint16 if maxval > 255 else np.uint8)
    raise RawReadError("corrupt or unreadable image file", path)


def image_header(path: Path, cfa, black_level, white_level, bit_depth, wb_gains,
                 limit: Limit) -> RawHeader:
    size = image_size(path)
    if size is not None:
        limit.check(*size)
    shape, dtype = _image_shape(path)
    if size is None:
        limit.check(*shape[:2])
    if len(shape) == 3 and shape[2] == 3:
        raise RawReadError(
            "a 3-channel RGB image, not raw data (raw must be a 1-channel mosaic or a "
            "4-channel packed R, G1, G2, B array)", path)
    return array_header(path, shape, dtype, path.suffix.lower().lstrip("."), cfa, black_level,
                        white_level, bit_depth, wb_gains)


def libraw_header_of(path: Path, cfa, black_level, white_level, bit_depth, wb_gains,
                     limit: Limit) -> RawHeader:
    """A camera raw's header: rawpy opens it (the same errors as ``read``), then LibRaw's C
    API gives the rest before unpacking; a DNG's levels are final, another format's may be
    measured when LibRaw decodes, so they are left to the decode (``needs_decoding``)."""
    import rawpy

    from isplab.raw.libraw_header import libraw_header

    with libraw_errors(path), rawpy.RawPy() as r:
        r.open_file(str(path))
        sizes, desc = r.sizes, r.color_desc
        limit.check(int(sizes.raw_height), int(sizes.raw_width))
        lib = libraw_header(path, int(sizes.top_margin), int(sizes.left_margin))
    return _libraw_to_header(path, sizes, desc, lib, rawpy, cfa=cfa, black_level=black_level,
                             white_level=white_level, bit_depth=bit_depth, wb_gains=wb_gains)


def _libraw_to_header(path, sizes, desc, lib, rawpy, **overrides) -> RawHeader:

    if lib is not None and lib["filters"] == 0 and lib["colors"] != 1:
        raise UnsupportedCFAError(
            "not a single-sensor CFA raw (LibRaw reports several samples per pixel: a linear "
            "DNG or a Foveon sensor)", path)
    if lib is None:  # nothing LibRaw's layout lets us trust
        pattern, final, fields = np.array([[0, 1], [3, 2]]), False, {}
        desc = b"RGBG"
    else:
        pattern, final, fields = lib["pattern"], lib["dng"], lib
    known = {k: fields.get(k) for k in ("cam_mul", "cmatrix", "cam_xyz", "pre_mul")}
    file = libraw_fields(
        path, sizes=sizes, desc=desc, raw_pattern=pattern,
        blacks_by_index=fields.get("black") if final else None,
        white=fields.get("white") if final else None, cam_wb=known["cam_mul"],
        cmatrix=known["cmatrix"], cam_xyz=known["cam_xyz"], daylight_wb=known["pre_mul"],
        version=".".join(str(v) for v in rawpy.libraw_version))
    if lib is not None:
        file["extra"].update(make=lib["make"], model=lib["model"])
    needs = ("black_level", "white_level", "bit_depth")
    if not fields:
        needs += ("wb_gains", "cfa")
        file["extra"]["header"] = "LibRaw's metadata layout is not verified for this version"
    header = make_header(path, int(sizes.height), int(sizes.width), needs=needs, **file,
                         **overrides)
    if "cfa" in needs and overrides.get("cfa") is None:  # the pattern above was a stand-in
        header.needs_decoding.append("cfa")
        header.cfa = None
    if not fields:
        header.needs_decoding += [k for k in ("xyz_to_camera", "camera_to_srgb")
                                  if getattr(header, k) is None]
        header.needs_decoding += [k for k, v in header.extra.items() if v is None]
    if path.suffix.lower() == ".dng" or is_dng(path):
        header.noise_profile = dng_noise_profile(path)
    if file["extra"].get("identified_by") == "file size only":
        log.warning("%s: no raw header: LibRaw identified this file by its size alone "
                    "(%dx%d); if that is not the camera, the result is noise", path.name,
                    header.width, header.height)
    return header
