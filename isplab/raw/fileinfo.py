"""What a raw file's header says, parsed once for both readers (:func:`~isplab.raw.read`,
which decodes, and :func:`~isplab.raw.header.read_header`, which never does): format
sniffing and routing, the pixel limit, LibRaw's error mapping and field interpretation,
headerless flags, PNG/TIFF/NPY sizes, sidecars, the DNG noise profile, level overrides and
the array formats' level rules (:func:`array_plan`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import struct
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isplab.errors import InvalidInputError, RawReadError, UnsupportedCFAError
from isplab.formats import ARRAY_SUFFIXES, HEADERLESS_SUFFIXES
from isplab.formats import MOSAIC_IMAGE_SUFFIXES as IMAGE_SUFFIXES
from isplab.raw.cfa import check_pattern, packed_offsets, pattern_from_rawpy

log = logging.getLogger("isplab.raw.readers")

#: frames above this are refused unless asked (above every current camera's sensor)
DEFAULT_MAX_MEGAPIXELS = 200.0


class Limit:
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


def sniff(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return None


def route(p: Path, *, width, height, byte_order: str, bit_depth) -> str:
    """Check a read's request and say which reader takes the file: ``headerless``, ``npy``,
    ``image`` or ``libraw`` (the checks and the order :func:`read` has always used)."""
    if not p.exists():
        raise RawReadError("no such file", p)
    if p.is_dir():
        raise RawReadError("is a directory, not a raw file", p)
    if p.stat().st_size == 0:
        raise RawReadError("empty file (0 bytes)", p)
    if byte_order not in ("little", "big"):
        raise RawReadError(f"byte_order must be 'little' or 'big', got {byte_order!r}", p)
    if bit_depth is not None and not (1 <= int(bit_depth) <= 16):
        raise RawReadError(f"bit depth must be between 1 and 16, got {bit_depth}", p)
    suffix = p.suffix.lower()
    what = sniff(p)
    if what in ("a JPEG image", "a GIF image", "a PDF document", "a ZIP archive", "a WebP image"):
        raise RawReadError(f"this is {what}, not raw sensor data", p)
    if suffix in HEADERLESS_SUFFIXES or width is not None or height is not None:
        return "headerless"
    if suffix in ARRAY_SUFFIXES:
        return "npy"
    if suffix in IMAGE_SUFFIXES and not is_dng(p):
        return "image"
    return "libraw"


def dispatch(path, readers: dict[str, Callable[..., Any]], *, width, height, byte_order: str,
             max_megapixels, **overrides) -> Any:
    """Route ``path`` (:func:`route`) to ``readers[kind]`` with the size limit and the
    overrides; a headerless reader also gets ``width, height, byte_order``. Errors come out
    as RawReadError / UnsupportedCFAError naming the file (:func:`read`'s contract, shared
    by :func:`~isplab.raw.header.read_header`)."""
    p = Path(path)
    kind = route(p, width=width, height=height, byte_order=byte_order,
                 bit_depth=overrides.get("bit_depth"))
    limit = Limit(max_megapixels, p)
    try:
        if kind == "headerless":
            return readers[kind](p, width, height, byte_order, limit=limit, **overrides)
        return readers[kind](p, limit=limit, **overrides)
    except (RawReadError, UnsupportedCFAError):
        raise
    except InvalidInputError as exc:
        raise RawReadError(exc.reason, p) from exc


@contextlib.contextmanager
def quiet_logger(name: str):
    """Silence a library's Python logger below ERROR for one read (tifffile warns about
    every odd tag of a damaged file; the read's own error is what the user sees)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def c_messages(path: Path, library: str = "LibRaw"):
    """Capture what a C library (LibRaw, libpng, libtiff) prints on the process's stderr
    (fd 2: "Unexpected end of file", "libpng error: ...") and log it at debug level instead,
    so a bad file gives one clean error line. Yields a list that holds the last captured
    line once the block has ended. Python warnings raised in the block are not C output:
    they are held back and shown once fd 2 is restored."""
    said: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no fd 2 at all
        yield said
        return
    held: list[tuple] = []
    show = warnings.showwarning  # the printing hook only: filters and "once" stay as they are
    with tempfile.TemporaryFile() as sink:
        warnings.showwarning = lambda *args: held.append(args)
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            warnings.showwarning = show
            for args in held:
                show(*args)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                said.append(text.splitlines()[-1].split(": ", 1)[-1])
                log.debug("%s: %s says: %s", path.name, library, text)


@contextlib.contextmanager
def libraw_errors(path: Path):
    """LibRaw's C-level chatter captured (:func:`c_messages`) and rawpy's exceptions turned
    into one :class:`RawReadError` line naming the file: the one mapping ``read`` and
    ``read_header`` share."""
    import rawpy

    said: list[str] = []
    try:
        with c_messages(path) as said:
            yield
    except rawpy.LibRawFileUnsupportedError as exc:
        what = sniff(path)
        hint = f" (it looks like {what})" if what else ""
        raise RawReadError(f"not a raw file LibRaw can read{hint}", path) from exc
    except rawpy.LibRawIOError as exc:
        detail = said[-1] if said else "input/output error"
        raise RawReadError(f"truncated or corrupt raw file (LibRaw: {detail})", path) from exc
    except rawpy.LibRawError as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RawReadError(f"corrupt raw file (LibRaw: {msg})", path) from exc


def _first_ifd_tags(path: Path) -> set[int] | None:
    """The tag numbers of a classic TIFF's first IFD (8 + 2 + 12 n bytes read, no tifffile),
    or None when the file is not one read this plainly (not TIFF, BigTIFF, a short IFD)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(head[:4])
            if order is None or len(head) < 8:
                return None
            f.seek(struct.unpack(order + "I", head[4:])[0])
            count = f.read(2)
            n = struct.unpack(order + "H", count)[0] if len(count) == 2 else 0
            entries = f.read(12 * n)
    except OSError:
        return None
    if n == 0 or len(entries) < 12 * n:
        return None
    return {struct.unpack_from(order + "H", entries, 12 * i)[0] for i in range(n)}


def dng_noise_profile(path: Path) -> tuple[float, float] | None:
    """The DNG ``NoiseProfile`` tag (51041) as one ``(shot, read)`` pair (the mean over the
    CFA planes when it gives one pair per plane), or None: a header read, no pixels.

    A first IFD with neither the tag nor SubIFDs (330) has none: answered without importing
    tifffile (10-20 ms of a 2 MP develop, issue 19); tifffile reads the rest."""
    tags = _first_ifd_tags(path)
    if tags is not None and not tags & {51041, 330}:
        return None
    try:
        import tifffile

        with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
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


def is_dng(path: Path) -> bool:
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        import tifffile

        with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
            return 50706 in tif.pages[0].tags
    except Exception:
        return False


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


def libraw_fields(path: Path, *, sizes, desc: bytes, raw_pattern, blacks_by_index, white,
                  cam_wb, cmatrix, cam_xyz, daylight_wb, version: str) -> dict[str, Any]:
    """What a LibRaw frame says, in :func:`finish`'s terms (``file_*`` values, matrices,
    orientation, ``extra``), from LibRaw's values (rawpy's after unpacking, or
    :mod:`isplab.raw.libraw_header`'s before): one interpretation for both."""
    try:
        pattern_from_rawpy(np.asarray(raw_pattern), desc)  # rejects X-Trans, CMYG, ...
        rp = np.asarray(raw_pattern)
        n = rp.shape[0]
        top, left = int(sizes.top_margin), int(sizes.left_margin)
        # raw_pattern is relative to the full frame; name the pattern of the visible area.
        colors = np.array([[rp[(top + dy) % n, (left + dx) % n] for dx in range(2)]
                           for dy in range(2)])
        pattern = pattern_from_rawpy(colors, desc)
    except UnsupportedCFAError as exc:
        raise UnsupportedCFAError(exc.reason, path) from None
    idx = [int(colors[dy, dx]) for dy, dx in packed_offsets(pattern)]
    white = None if white is None else float(white)
    cam = None if cam_wb is None else np.asarray(cam_wb, dtype=np.float64)
    gains = None
    if cam is not None and cam.size >= 3 and cam[1] > 0 and cam[0] > 0 and cam[2] > 0:
        gains = (cam[0] / cam[1], 1.0, cam[2] / cam[1])
    xyz = None if cam_xyz is None else np.asarray(cam_xyz, dtype=np.float64)[:3]
    cm = None if cmatrix is None else np.asarray(cmatrix, dtype=np.float64)[:, :3]
    extra: dict[str, Any] = {
        "reader": "rawpy",
        "libraw_version": version,
        "raw_size": [int(sizes.raw_height), int(sizes.raw_width)],
        "margins": [top, left],
        "daylight_wb": None if daylight_wb is None else [float(v) for v in daylight_wb[:3]],
    }
    if identified_by_size_only(path):
        extra["identified_by"] = "file size only"
    return dict(
        file_cfa=pattern, file_white=white, file_wb=gains,
        file_black=None if blacks_by_index is None else [float(blacks_by_index[i]) for i in idx],
        file_bits=None if white is None else max(1, math.ceil(math.log2(white + 1))),
        xyz_to_camera=xyz if xyz is not None and np.any(xyz != 0) else None,
        camera_to_srgb=cm if cm is not None and np.any(cm != 0) else None,
        orientation=int(sizes.flip), extra=extra)


def resolve_levels(path: Path, *, file_cfa: str, file_black, file_white, file_bits, cfa,
                   black_level, white_level, bit_depth):
    """Apply the overrides to what the file says: ``(pattern, blacks, white, bits)``; blacks
    or white None when neither the file nor an override gives them (a header read)."""
    pattern = check_pattern(cfa) if cfa is not None else file_cfa
    bits = int(bit_depth) if bit_depth is not None else file_bits
    if white_level is not None:
        white = float(white_level)
    elif bit_depth is not None:
        white = float((1 << int(bit_depth)) - 1)
    else:
        white = None if file_white is None else float(file_white)
    if black_level is not None:
        blacks = [float(b) for b in np.broadcast_to(np.asarray(black_level, dtype=float), (4,))]
    else:
        blacks = None if file_black is None else [float(b) for b in file_black]
    if blacks is not None and white is not None and any(b >= white for b in blacks):
        raise RawReadError(f"black level {blacks} is not below the white level {white:g}", path)
    return pattern, blacks, white, bits


# ---------------------------------------------------------------- shared by both readers


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


def headerless_frame(path: Path, width, height, bit_depth, cfa, limit: Limit):
    """A headerless frame's ``(width, height, bits, cfa, bit_depth given)`` from the flags or
    the file name, checked against the file's size (no pixel read)."""
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
    return width, height, bits, cfa, bit_depth is not None


def npy_shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """An ``.npy`` file's shape and dtype from its header only (a huge claimed shape costs
    nothing)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
        return tuple(int(v) for v in shape), np.dtype(dtype)
    except Exception as exc:
        raise RawReadError(f"not a readable .npy array ({exc.__class__.__name__}: {exc})",
                           path) from exc


def check_npy_shape(path: Path, shape: tuple[int, ...], limit: Limit) -> None:
    if len(shape) in (2, 3):
        h, w = (shape[1], shape[2]) if len(shape) == 3 and shape[0] == 4 else shape[:2]
        limit.check(h * (2 if len(shape) == 3 else 1), w * (2 if len(shape) == 3 else 1))
    if 0 in shape:
        raise RawReadError(f"empty array (shape {shape})", path)


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR or a TIFF's first page header; None if unknown."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        try:
            with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
            return int(shape[0]), int(shape[1])
        except Exception:
            return None
    return None


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


# ---------------------------------------------------------------- arrays


_COMMON_BIT_DEPTHS = (8, 10, 12, 14, 16)


def infer_bits(maxval: float, path: Path) -> int:
    for b in _COMMON_BIT_DEPTHS:
        if maxval <= (1 << b) - 1:
            log.warning("%s: white level not given; data max %g, assuming %d-bit (white %d)",
                        path.name, maxval, b, (1 << b) - 1)
            return b
    raise RawReadError(f"values up to {maxval:g} exceed 16 bits: give white_level", path)


def array_plan(path: Path, shape: tuple[int, ...], dtype: np.dtype, cfa, black_level,
               white_level, bit_depth, wb_gains, maxval: Callable[[], float] | None
               ) -> dict[str, Any]:
    """How an array (``.npy``, PNG, TIFF) is read: packed or mosaic, the CFA, the levels
    (flags, else the sidecar, else inferred from the data's maximum: ``maxval``, None for a
    header read, which then lists the levels in ``needs``)."""
    if dtype.kind not in "uif":
        raise RawReadError(f"unsupported array dtype {dtype}", path)
    packed = len(shape) == 3 and (shape[-1] == 4 or shape[0] == 4)
    if not packed and len(shape) != 2:
        raise RawReadError(
            f"array of shape {shape} is neither a mosaic (H x W) nor packed raw "
            "(h x w x 4 or 4 x h x w)", path)
    if packed:
        if cfa is not None and check_pattern(cfa) != "RGGB":
            log.warning("%s: packed input is R, G1, G2, B by definition; cfa=%s ignored",
                        path.name, cfa)
        cfa = "RGGB"
    side = sidecar_levels(path)
    if side and white_level is None and bit_depth is None and black_level is None:
        black_level, white_level = side["black_level"], side["white_level"]
        wb_gains = wb_gains if wb_gains is not None else side.get("wb_gains")
        log.info("%s: levels from %s", path.name, side["source"])
    needs: tuple[str, ...] = ()
    file_white: float | None
    file_bits: int | None
    if white_level is not None or bit_depth is not None:
        file_bits = int(bit_depth) if bit_depth is not None else None
        file_white = float((1 << file_bits) - 1) if file_bits is not None else 1.0
    elif dtype.kind in "ui" and dtype.itemsize == 1:  # whatever the data, 8 bits
        file_bits = infer_bits(255.0, path) if maxval is None else infer_bits(maxval(), path)
        file_white = float((1 << file_bits) - 1)
    elif maxval is None:  # the data's maximum decides
        file_white, file_bits, needs = None, None, ("white_level", "bit_depth")
    elif dtype.kind == "f" and maxval() <= 1.0:
        file_white, file_bits = 1.0, None
    else:
        file_bits = infer_bits(maxval(), path)
        file_white = float((1 << file_bits) - 1)
    if cfa is None and not packed:
        log.warning("%s: CFA pattern not given, assuming RGGB", path.name)
    return dict(packed=packed, cfa=cfa, black_level=black_level, white_level=white_level,
                wb_gains=wb_gains, file_white=file_white, file_bits=file_bits, side=side,
                needs=needs)
