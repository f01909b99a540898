"""Reading raw frames: camera raws and DNG (LibRaw via rawpy), headerless frames, packed
arrays (``.npy``, 4-channel PNG/TIFF) and single-channel 16-bit PNG/TIFF mosaics.

One entry point, :func:`read`. Every failure is a :class:`~isplab.errors.RawReadError` (or
:class:`~isplab.errors.UnsupportedCFAError`) naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from isplab.errors import InvalidInputError, RawReadError, UnsupportedCFAError
from isplab.formats import ARRAY_SUFFIXES, HEADERLESS_SUFFIXES
from isplab.formats import MOSAIC_IMAGE_SUFFIXES as IMAGE_SUFFIXES
from isplab.raw.cfa import check_pattern, packed_offsets, pattern_from_rawpy
from isplab.raw.image import RawImage
from isplab.raw.levels import normalize_levels

log = logging.getLogger(__name__)


_COMMON_BIT_DEPTHS = (8, 10, 12, 14, 16)
#: frames above this are refused unless asked (above every current camera's sensor)
DEFAULT_MAX_MEGAPIXELS = 200.0


class _Limit:
    """The pixel limit of one read, checked against a size known from a header."""

    def __init__(self, megapixels: float | None, path: Path):
        self.megapixels, self.path = megapixels, path

    def check(self, height: int, width: int) -> None:
        if height <= 0 or width <= 0:
            raise RawReadError(f"the header claims an empty {width}x{height} frame", self.path)
        mp = height * width / 1e6
        if self.megapixels is not None and mp > self.megapixels:
            raise RawReadError(f"the header claims {width}x{height} pixels ({mp:,.0f} MP), over "
                               f"the {self.megapixels:g} MP limit (--max-megapixels to raise "
                               "it)", self.path)

_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
}


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return None


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
    p = Path(path)
    if not p.exists():
        raise RawReadError("no such file", p)
    if p.is_dir():
        raise RawReadError("is a directory, not a raw file", p)
    size = p.stat().st_size
    if size == 0:
        raise RawReadError("empty file (0 bytes)", p)
    if byte_order not in ("little", "big"):
        raise RawReadError(f"byte_order must be 'little' or 'big', got {byte_order!r}", p)
    if bit_depth is not None and not (1 <= int(bit_depth) <= 16):
        raise RawReadError(f"bit depth must be between 1 and 16, got {bit_depth}", p)

    suffix = p.suffix.lower()
    what = _sniff(p)
    if what in ("a JPEG image", "a GIF image", "a PDF document", "a ZIP archive", "a WebP image"):
        raise RawReadError(f"this is {what}, not raw sensor data", p)

    overrides = dict(cfa=cfa, black_level=black_level, white_level=white_level,
                     bit_depth=bit_depth, wb_gains=wb_gains)
    limit = _Limit(max_megapixels, p)
    try:
        if suffix in HEADERLESS_SUFFIXES or width is not None or height is not None:
            return _read_headerless(p, width, height, byte_order, limit=limit, **overrides)
        if suffix in ARRAY_SUFFIXES:
            return _read_npy(p, limit=limit, **overrides)
        if suffix in IMAGE_SUFFIXES and not _is_dng(p):
            return _read_image_array(p, limit=limit, **overrides)
        return _read_libraw(p, limit=limit, **overrides)
    except (RawReadError, UnsupportedCFAError):
        raise
    except InvalidInputError as exc:
        raise RawReadError(exc.reason, p) from exc


def dng_noise_profile(path: Path) -> tuple[float, float] | None:
    """The DNG ``NoiseProfile`` tag (51041) as one ``(shot, read)`` pair (the mean over the
    CFA planes when it gives one pair per plane), or None: a header read, no pixels."""
    try:
        import tifffile

        with _quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
            pages = [tif.pages[0], *(getattr(tif.pages[0], "pages", None) or [])]
            for page in pages:
                tag = page.tags.get(51041)
                if tag is not None:
                    v = np.asarray(tag.value, dtype=np.float64).reshape(-1, 2)
                    if v.size and np.all(np.isfinite(v)) and np.all(v >= 0):
                        return float(v[:, 0].mean()), float(v[:, 1].mean())
    except Exception:  # a DNG LibRaw reads but tifffile does not: no profile
        return None
    return None


def _is_dng(path: Path) -> bool:
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        import tifffile

        with _quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
            return 50706 in tif.pages[0].tags
    except Exception:
        return False


# ---------------------------------------------------------------- LibRaw


@contextlib.contextmanager
def c_messages(path: Path, library: str = "LibRaw"):
    """Capture what a C library (LibRaw, libpng, libtiff) prints on the process's stderr
    (fd 2: "Unexpected end of file", "libpng error: ...") and log it at debug level instead,
    so a bad file gives one clean error line. Yields a list that holds the last captured
    line once the block has ended."""
    said: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no fd 2 at all
        yield said
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                said.append(text.splitlines()[-1].split(": ", 1)[-1])
                log.debug("%s: %s says: %s", path.name, library, text)


#: the first bytes of raw formats LibRaw identifies by a header (TIFF-based raws and DNG, ORF,
#: RW2, CRW, CR3, RAF, MRW, X3F, Phase One); a file with none of them that LibRaw still
#: reads was identified by its size alone
RAW_SIGNATURES = (
    (0, b"II*\x00"), (0, b"MM\x00*"), (0, b"IIRO"), (0, b"IIRS"), (0, b"MMOR"), (0, b"IIU\x00"),
    (6, b"HEAPCCDR"), (4, b"ftypcrx"), (0, b"FUJIFILM"), (0, b"\x00MRM"), (0, b"FOVb"),
    (0, b"IIII"), (0, b"ARRI"), (0, b"RIFF"), (0, b"BR"),
)


def identified_by_size_only(path: Path) -> bool:
    """True when ``path`` starts with no raw header LibRaw knows: LibRaw then identifies a
    camera from the file size alone, and random bytes of that size "develop" into noise."""
    with open(path, "rb") as f:
        head = f.read(16)
    return not any(head[at:at + len(sig)] == sig for at, sig in RAW_SIGNATURES)


def _read_libraw(path: Path, cfa, black_level, white_level, bit_depth, wb_gains,
                 limit: _Limit) -> RawImage:
    import rawpy

    said: list[str] = []
    try:
        with c_messages(path) as said, rawpy.imread(str(path)) as r:
            limit.check(int(r.sizes.raw_height), int(r.sizes.raw_width))  # before unpacking
            image = _from_rawpy(r, path, cfa, black_level, white_level, bit_depth, wb_gains)
        if image.extra.get("identified_by") == "file size only":  # after fd 2 is back
            log.warning("%s: no raw header: LibRaw identified this file by its size alone "
                        "(%dx%d); if that is not the camera, the result is noise", path.name,
                        image.width, image.height)
        return image
    except rawpy.LibRawFileUnsupportedError as exc:
        what = _sniff(path)
        hint = f" (it looks like {what})" if what else ""
        raise RawReadError(f"not a raw file LibRaw can read{hint}", path) from exc
    except rawpy.LibRawIOError as exc:
        detail = said[-1] if said else "input/output error"
        raise RawReadError(f"truncated or corrupt raw file (LibRaw: {detail})", path) from exc
    except rawpy.LibRawError as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RawReadError(f"corrupt raw file (LibRaw: {msg})", path) from exc


def _from_rawpy(r, path, cfa, black_level, white_level, bit_depth, wb_gains) -> RawImage:
    import rawpy

    if r.raw_type != rawpy.RawType.Flat:
        raise UnsupportedCFAError(
            "not a single-sensor CFA raw (LibRaw reports several samples per pixel: a linear "
            "DNG or a Foveon sensor)", path)
    desc = r.color_desc
    colors = r.raw_colors_visible
    try:
        pattern_from_rawpy(np.asarray(r.raw_pattern), desc)  # rejects X-Trans, CMYG, ...
        # raw_pattern is relative to the full frame; name the pattern of the visible area.
        pattern = pattern_from_rawpy(colors[:2, :2], desc)
    except UnsupportedCFAError as exc:
        raise UnsupportedCFAError(exc.reason, path) from None
    data = r.raw_image_visible.astype(np.float32)

    idx = [int(colors[dy, dx]) for dy, dx in packed_offsets(pattern)]
    blacks = [float(r.black_level_per_channel[i]) for i in idx]
    white = float(r.white_level)

    cam = np.asarray(r.camera_whitebalance, dtype=np.float64)
    gains = None
    if cam.size >= 3 and cam[1] > 0 and cam[0] > 0 and cam[2] > 0:
        gains = (cam[0] / cam[1], 1.0, cam[2] / cam[1])
    xyz = np.asarray(r.rgb_xyz_matrix, dtype=np.float64)[:3]
    xyz_to_camera = xyz if np.any(xyz != 0) else None
    cm = np.asarray(r.color_matrix, dtype=np.float64)[:, :3]
    camera_to_srgb = cm if np.any(cm != 0) else None
    extra: dict[str, Any] = {
        "reader": "rawpy",
        "libraw_version": ".".join(str(v) for v in rawpy.libraw_version),
        "raw_size": [int(r.sizes.raw_height), int(r.sizes.raw_width)],
        "margins": [int(r.sizes.top_margin), int(r.sizes.left_margin)],
        "daylight_wb": [float(v) for v in r.daylight_whitebalance[:3]],
    }
    if identified_by_size_only(path):
        extra["identified_by"] = "file size only"
    image = _finish(
        data, path, file_cfa=pattern, file_black=blacks, file_white=white,
        file_bits=max(1, math.ceil(math.log2(white + 1))), file_wb=gains,
        xyz_to_camera=xyz_to_camera, camera_to_srgb=camera_to_srgb,
        orientation=int(r.sizes.flip), extra=extra,
        cfa=cfa, black_level=black_level, white_level=white_level, bit_depth=bit_depth,
        wb_gains=wb_gains,
    )
    if path.suffix.lower() == ".dng" or _is_dng(path):
        image.noise_profile = dng_noise_profile(path)
    return image


# ---------------------------------------------------------------- headerless


_NAME_SIZE = re.compile(r"(?<![0-9])(\d{2,6})[xX](\d{2,6})(?![0-9])")
_NAME_BITS = re.compile(r"(?<![0-9])(8|10|12|14|16)[-_]?bits?(?![a-z])", re.I)
_NAME_CFA = re.compile(r"(?<![A-Za-z])(RGGB|BGGR|GRBG|GBRG)(?![A-Za-z])", re.I)


def flags_from_name(path: str | Path) -> dict[str, Any]:
    """What a headerless dump's file name says, by the common convention
    ``name_<W>x<H>_<bits>bit_<CFA>.raw`` (any order): ``width``, ``height``, ``bit_depth``,
    ``cfa`` when present."""
    name = Path(path).stem
    found: dict[str, Any] = {}
    if m := _NAME_SIZE.search(name):
        found["width"], found["height"] = int(m.group(1)), int(m.group(2))
    if m := _NAME_BITS.search(name):
        found["bit_depth"] = int(m.group(1))
    if m := _NAME_CFA.search(name):
        found["cfa"] = m.group(1).upper()
    return found


def _read_headerless(path, width, height, byte_order, cfa, black_level, white_level, bit_depth,
                     wb_gains, limit: _Limit) -> RawImage:
    named = flags_from_name(path)
    if width is None and height is None and "width" in named:
        width, height = named["width"], named["height"]
        bit_depth = bit_depth if bit_depth is not None else named.get("bit_depth")
        cfa = cfa if cfa is not None else named.get("cfa")
        log.info("%s: %dx%d, %s bits, %s from the file name", path.name, width, height,
                 bit_depth, cfa)
    if width is None or height is None:
        raise RawReadError(
            "a headerless raw frame needs its size: give width and height "
            "(CLI: --width W --height H, plus --bits, --cfa, --black-level), or name the file "
            "like frame_1920x1080_12bit_RGGB.raw", path)
    width, height = int(width), int(height)
    if width < 2 or height < 2:
        raise RawReadError(f"width and height must be >= 2, got {width}x{height}", path)
    limit.check(height, width)
    bits = int(bit_depth) if bit_depth is not None else 16
    nbytes = 1 if bits <= 8 else 2
    expected = width * height * nbytes
    actual = path.stat().st_size
    if actual != expected:
        hint = ""
        if actual == width * height and nbytes == 2:
            hint = ": one byte per pixel, an 8-bit frame? give --bits 8"
        elif actual == 2 * width * height and nbytes == 1:
            hint = ": two bytes per pixel, give --bits 10, 12, 14 or 16"
        raise RawReadError(
            f"file has {actual:,} bytes but a {width}x{height} frame of {bits}-bit samples "
            f"({nbytes} byte{'s' if nbytes > 1 else ''} each) needs {expected:,} bytes{hint}",
            path)
    dtype = np.dtype(np.uint8) if nbytes == 1 else np.dtype("<u2" if byte_order == "little"
                                                            else ">u2")
    data = np.fromfile(path, dtype=dtype).reshape(height, width)
    if bit_depth is None:
        log.warning("%s: bit depth not given, assuming 16-bit samples", path.name)
    if cfa is None:
        log.warning("%s: CFA pattern not given, assuming RGGB", path.name)
    limit = (1 << bits) - 1
    if int(data.max()) > limit:
        other = "big" if byte_order == "little" else "little"
        raise RawReadError(
            f"values up to {int(data.max())} do not fit {bits} bits: wrong bit depth, or the "
            f"data is {other}-endian?", path)
    return _finish(
        data.astype(np.float32), path, file_cfa="RGGB", file_black=[0.0] * 4,
        file_white=float(limit), file_bits=bits, extra={"reader": "headerless",
                                                        "byte_order": byte_order},
        cfa=cfa, black_level=black_level, white_level=white_level, bit_depth=None,
        wb_gains=wb_gains,
    )


# ---------------------------------------------------------------- arrays


def _read_npy(path, cfa, black_level, white_level, bit_depth, wb_gains, limit: _Limit
              ) -> RawImage:
    try:
        with open(path, "rb") as f:  # the header only: a huge claimed shape costs nothing
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape = tuple(int(v) for v in read_header(f)[0])
    except Exception as exc:
        raise RawReadError(f"not a readable .npy array ({exc.__class__.__name__}: {exc})",
                           path) from exc
    if len(shape) in (2, 3):
        h, w = (shape[1], shape[2]) if len(shape) == 3 and shape[0] == 4 else shape[:2]
        limit.check(h * (2 if len(shape) == 3 else 1), w * (2 if len(shape) == 3 else 1))
    if 0 in shape:
        raise RawReadError(f"empty array (shape {shape})", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RawReadError(f"not a readable .npy array ({exc.__class__.__name__}: {exc})",
                           path) from exc
    return _from_array(arr, path, "npy", cfa, black_level, white_level, bit_depth, wb_gains)


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Silence a library's Python logger below ERROR for one read (tifffile warns about
    every odd tag of a damaged file; the read's own error is what the user sees)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR or a TIFF's first page header; None if unknown."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        try:
            with _quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
            return int(shape[0]), int(shape[1])
        except Exception:
            return None
    return None


def _read_image_array(path, cfa, black_level, white_level, bit_depth, wb_gains,
                      limit: _Limit) -> RawImage:
    suffix = path.suffix.lower()
    size = _image_size(path)
    if size is not None:
        limit.check(*size)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with c_messages(path, "libtiff"), _quiet_logger("tifffile"):
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
    packed = False
    if arr.ndim == 3 and arr.shape[-1] == 4:
        packed = True
        arr = np.moveaxis(arr, -1, 0)
    elif arr.ndim == 3 and arr.shape[0] == 4:
        packed = True
    elif arr.ndim != 2:
        raise RawReadError(
            f"array of shape {arr.shape} is neither a mosaic (H x W) nor packed raw "
            "(h x w x 4 or 4 x h x w)", path)
    if packed:
        if cfa is not None and check_pattern(cfa) != "RGGB":
            log.warning("%s: packed input is R, G1, G2, B by definition; cfa=%s ignored",
                        path.name, cfa)
        planes = arr.astype(np.float32)
        mosaic = np.empty((2 * planes.shape[1], 2 * planes.shape[2]), dtype=np.float32)
        for ch, (dy, dx) in enumerate(packed_offsets("RGGB")):
            mosaic[dy::2, dx::2] = planes[ch]
        cfa = "RGGB"
    else:
        mosaic = arr.astype(np.float32)

    side = sidecar_levels(path)
    if side and white_level is None and bit_depth is None and black_level is None:
        black_level, white_level = side["black_level"], side["white_level"]
        wb_gains = wb_gains if wb_gains is not None else side.get("wb_gains")
        log.info("%s: levels from %s", path.name, side["source"])
    if arr.dtype.kind == "f" and white_level is None and bit_depth is None:
        mx = float(arr.max()) if arr.size else 0.0
        if mx <= 1.0:
            file_white, file_bits = 1.0, None
        else:
            file_bits = _infer_bits(mx, path)
            file_white = float((1 << file_bits) - 1)
    elif white_level is None and bit_depth is None:
        file_bits = _infer_bits(float(arr.max()), path)
        file_white = float((1 << file_bits) - 1)
    else:
        file_bits = int(bit_depth) if bit_depth is not None else None
        file_white = float((1 << file_bits) - 1) if file_bits is not None else 1.0
    if cfa is None and not packed:
        log.warning("%s: CFA pattern not given, assuming RGGB", path.name)
    image = _finish(
        mosaic, path, file_cfa="RGGB", file_black=[0.0] * 4, file_white=file_white,
        file_bits=file_bits, extra={"reader": kind, "packed": packed},
        cfa=cfa, black_level=black_level, white_level=white_level, bit_depth=None,
        wb_gains=wb_gains,
    )
    if side and side.get("camera_to_srgb") is not None and image.camera_to_srgb is None:
        image.camera_to_srgb = np.asarray(side["camera_to_srgb"], dtype=np.float64)
    if side and side.get("bit_depth"):
        image.bit_depth = int(side["bit_depth"])
    return image


def sidecar_levels(path: Path) -> dict[str, Any] | None:
    """What ``isplab synth`` recorded beside a packed PNG/TIFF raw it wrote: ``OUT/meta/<id>.json``
    for ``OUT/raw/<id>.png`` (or ``<name>.json`` beside the file): black and white levels
    (sensor units), bit depth, white balance (red, blue gains) and the camera -> sRGB matrix.
    None when there is no such record (or it is not one of ours)."""
    import json

    for cand in (path.parent.parent / "meta" / f"{path.stem}.json", path.with_suffix(".json")):
        if not cand.is_file():
            continue
        try:
            meta = json.loads(cand.read_text())
            black, white = float(meta["black_level"]), float(meta["white_level"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not (np.isfinite(black) and np.isfinite(white) and 0 <= black < white):
            continue
        out: dict[str, Any] = {"black_level": black, "white_level": white, "source": cand,
                               "bit_depth": meta.get("bit_depth")}
        if "red_gain" in meta and "blue_gain" in meta:
            out["wb_gains"] = (float(meta["red_gain"]), 1.0, float(meta["blue_gain"]))
        if "cam_to_rgb" in meta:
            out["camera_to_srgb"] = meta["cam_to_rgb"]
        return out
    return None


def _infer_bits(maxval: float, path: Path) -> int:
    for b in _COMMON_BIT_DEPTHS:
        if maxval <= (1 << b) - 1:
            log.warning("%s: white level not given; data max %g, assuming %d-bit (white %d)",
                        path.name, maxval, b, (1 << b) - 1)
            return b
    raise RawReadError(f"values up to {maxval:g} exceed 16 bits: give white_level", path)


# ---------------------------------------------------------------- common


def _finish(data: np.ndarray, path: Path, *, file_cfa: str, file_black, file_white: float,
            file_bits: int | None, extra: dict, cfa, black_level, white_level, bit_depth,
            wb_gains, file_wb=None, xyz_to_camera=None, camera_to_srgb=None,
            orientation: int = 0) -> RawImage:
    """Apply overrides, normalise levels, build the RawImage."""

    pattern = check_pattern(cfa) if cfa is not None else file_cfa
    bits = int(bit_depth) if bit_depth is not None else file_bits
    if white_level is not None:
        white = float(white_level)
    elif bit_depth is not None:
        white = float((1 << int(bit_depth)) - 1)
    else:
        white = float(file_white)
    if black_level is not None:
        blacks = [float(b) for b in np.broadcast_to(np.asarray(black_level, dtype=float), (4,))]
    else:
        blacks = [float(b) for b in file_black]
    if any(b >= white for b in blacks):
        raise RawReadError(f"black level {blacks} is not below the white level {white:g}", path)
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
