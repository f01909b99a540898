"""What LibRaw knows of a camera raw before unpacking it: levels, white balance and matrices.

rawpy exposes only the sizes and the colour description before ``unpack()`` (every other
attribute unpacks the whole frame first), so this reads the rest through LibRaw's C API
(``libraw_open_file`` parses the metadata, never the pixels) from the very library rawpy
loaded. Getters cover the white balance (``cam_mul``, ``pre_mul``), ``rgb_cam`` and the
maximum; black levels, ``cmatrix`` and ``cam_xyz`` have no getter and are read from
``libraw_colordata_t``, located by the getters' values and checked against them, for the
LibRaw versions whose layout was verified (:data:`VERIFIED_LIBRAW`); on any other version,
or when a check fails, :func:`libraw_header` returns None and the caller reports those
fields as needing the decode.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: LibRaw versions (major, minor) whose ``libraw_colordata_t`` layout this module was checked
#: against (rawpy's post-unpack values, tests/test_info.py)
VERIFIED_LIBRAW = {(0, 21), (0, 22)}
_CBLACK_SIZE = 4104  # LIBRAW_CBLACK_SIZE since 0.21
# offsets from cam_mul inside libraw_colordata_t: ... cblack[4104], black, data_maximum,
# maximum, linear_max[4], fmaximum, fnorm, white[8][8] (ushort), cam_mul[4], pre_mul[4],
# cmatrix[3][4], ccm[3][4], rgb_cam[3][4], cam_xyz[4][3]
_MAXIMUM, _BLACK, _CMATRIX, _RGB_CAM, _CAM_XYZ = -156, -164, 32, 128, 176
# offsets inside libraw_iparams_t: guard[4], make[64], model[64], software[64],
# normalized_make[64], normalized_model[64], maker_index, raw_count, dng_version, is_foveon,
# colors, filters, xtrans[6][6], xtrans_abs[6][6], cdesc[5]
_MAKE, _MODEL, _DNG_VERSION, _COLORS, _FILTERS, _CDESC = 4, 68, 332, 340, 344, 420


@functools.cache
def _library():
    """rawpy's LibRaw (the same shared object, already loaded), with the C API typed; None
    when it cannot be found or its layout is unverified."""
    import rawpy

    if tuple(rawpy.libraw_version[:2]) not in VERIFIED_LIBRAW:
        return None
    folder = Path(rawpy.__file__).parent
    names = sorted(p.name for p in folder.glob("libraw_r.so*")) + \
        sorted(p.name for p in folder.glob("libraw*.dylib")) + \
        sorted(p.name for p in folder.glob("libraw*.dll"))
    if not names:
        return None
    try:
        lib = ctypes.CDLL(str(folder / names[0]))
    except OSError:
        return None
    vp, c_int = ctypes.c_void_p, ctypes.c_int
    for name, res, args in (
            ("libraw_init", vp, [ctypes.c_uint]),
            ("libraw_open_file", c_int, [vp, ctypes.c_char_p]),
            ("libraw_close", None, [vp]), ("libraw_get_iparams", vp, [vp]),
            ("libraw_get_lensinfo", vp, [vp]), ("libraw_get_imgother", vp, [vp]),
            ("libraw_get_cam_mul", ctypes.c_float, [vp, c_int]),
            ("libraw_get_pre_mul", ctypes.c_float, [vp, c_int]),
            ("libraw_get_rgb_cam", ctypes.c_float, [vp, c_int, c_int]),
            ("libraw_get_color_maximum", c_int, [vp]),
            ("libraw_COLOR", c_int, [vp, c_int, c_int])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _floats(addr: int, n: int) -> np.ndarray:
    return np.frombuffer(ctypes.string_at(addr, 4 * n), dtype=np.float32).astype(np.float64)


def _uints(addr: int, n: int) -> np.ndarray:
    return np.frombuffer(ctypes.string_at(addr, 4 * n), dtype=np.uint32).astype(np.int64)


def _text(addr: int, n: int) -> str:
    return ctypes.string_at(addr, n).split(b"\0")[0].decode("latin-1").strip()


def libraw_header(path: Path, top: int, left: int) -> dict | None:
    """LibRaw's metadata of ``path`` without unpacking: ``make``, ``model``, ``dng``,
    ``filters``, ``colors``, ``cdesc``, ``pattern`` (rawpy's ``raw_pattern``), ``black``
    (per colour index, as rawpy's ``black_level_per_channel``), ``white``, ``cam_mul``,
    ``pre_mul``, ``cmatrix`` (3x4) and ``cam_xyz`` (4x3); None when LibRaw's layout cannot
    be trusted here (the caller then reports those fields as needing the decode). ``top``
    and ``left`` are the visible area's margins."""
    lib = _library()
    if lib is None:
        return None
    lr = lib.libraw_init(0)
    if not lr:
        return None
    try:
        if lib.libraw_open_file(lr, os.fsencode(path)) != 0:
            return None
        return _collect(lib, lr, top, left)
    finally:
        lib.libraw_close(lr)


def _collect(lib, lr, top: int, left: int) -> dict | None:
    ip = lib.libraw_get_iparams(lr)
    filters = int(_uints(ip + _FILTERS, 1)[0])
    colors = int(_uints(ip + _COLORS, 1)[0])
    out = {"make": _text(ip + _MAKE, 64), "model": _text(ip + _MODEL, 64),
           "dng": int(_uints(ip + _DNG_VERSION, 1)[0]) != 0, "filters": filters,
           "colors": colors, "cdesc": ctypes.string_at(ip + _CDESC, 4)}
    cam_mul = [lib.libraw_get_cam_mul(lr, i) for i in range(4)]
    pre_mul = [lib.libraw_get_pre_mul(lr, i) for i in range(4)]
    rgb_cam = np.array([[lib.libraw_get_rgb_cam(lr, i, j) for j in range(4)] for i in range(3)],
                       dtype=np.float32)
    maximum = int(lib.libraw_get_color_maximum(lr))
    lens, other = lib.libraw_get_lensinfo(lr), lib.libraw_get_imgother(lr)
    if not (lens and other and 0 < other - lens < 1 << 22):
        return None
    region = ctypes.string_at(lens, other - lens)  # imgdata.color lies between the two
    key = np.array(cam_mul + pre_mul, dtype=np.float32).tobytes()
    found = [i for i in _find_all(region, key)
             if _uints(lens + i + _MAXIMUM, 1)[0] == maximum
             and np.array_equal(np.frombuffer(region[i + _RGB_CAM:i + _RGB_CAM + 48],
                                              dtype=np.float32).reshape(3, 4), rgb_cam)]
    if len(found) != 1:
        log.debug("LibRaw colour data not located (%d candidates)", len(found))
        return None
    at = lens + found[0]
    black = int(_uints(at + _BLACK, 1)[0])
    cblack = _uints(at + _BLACK - 4 * _CBLACK_SIZE, _CBLACK_SIZE)
    if cblack[4] > 64 or cblack[5] > 64 or cblack[4] * cblack[5] > _CBLACK_SIZE - 6:
        return None
    out.update(white=maximum, cam_mul=np.array(cam_mul, dtype=np.float64),
               pre_mul=np.array(pre_mul, dtype=np.float64),
               cmatrix=_floats(at + _CMATRIX, 12).reshape(3, 4),
               cam_xyz=_floats(at + _CAM_XYZ, 12).reshape(4, 3),
               black=adjust_black(cblack, black, filters))
    out["pattern"] = _raw_pattern(lib, lr, filters, top, left)
    return out


def _find_all(data: bytes, key: bytes):
    i = data.find(key)
    while i >= 0:
        yield i
        i = data.find(key, i + 1)


def _raw_pattern(lib, lr, filters: int, top: int, left: int) -> np.ndarray | None:
    """rawpy's ``raw_pattern``: the smallest repeating tile of colour indices of the full
    frame (None for a frame with no CFA)."""
    if filters == 0:  # no CFA (monochrome, linear): rawpy's 1x1 pattern
        return np.zeros((1, 1), dtype=np.uint8)
    n = 4 if filters >= 1000 else (6 if filters == 9 else 16)
    pat = np.array([[lib.libraw_COLOR(lr, y - top, x - left) for x in range(n)]
                    for y in range(n)], dtype=np.uint8)
    if n == 4 and all(np.array_equal(pat[:2, :2], pat[a:a + 2, b:b + 2])
                      for a in (0, 2) for b in (0, 2)):
        pat = pat[:2, :2]
    return pat


def _fc(filters: int, row: int, col: int) -> int:
    return (filters >> ((((row << 1) & 14) + (col & 1)) << 1)) & 3


def adjust_black(cblack: np.ndarray, black: int, filters: int) -> list[int]:
    """Per colour index black levels from LibRaw's ``cblack``/``black``: LibRaw's
    ``adjust_bl()`` as rawpy's ``black_level_per_channel`` applies it."""
    c = [int(v) for v in cblack[:6 + 4096]]
    if filters > 1000 and (c[4] + 1) // 2 == 1 and (c[5] + 1) // 2 == 1:
        clrs = [_fc(filters, i // 2, i % 2) for i in range(4)]
        greens = [i for i in range(4) if clrs[i] == 1]
        if len(greens) > 1:
            clrs[greens[-1]] = 3
        for i in range(4):
            c[clrs[i]] += c[6 + i // 2 % c[4] * c[5] + i % 2 % c[5]]
        c[4] = c[5] = 0
    elif filters <= 1000 and c[4] == 1 and c[5] == 1:
        for i in range(4):
            c[i] += c[6]
        c[4] = c[5] = 0
    common = min(c[:4])
    c[:4] = [v - common for v in c[:4]]
    black += common
    if c[4] and c[5]:
        n = c[4] * c[5]
        common = min(c[6:6 + n])
        black += common
    return [v + black for v in c[:4]]
