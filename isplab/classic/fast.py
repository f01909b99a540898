"""The inference path of the classical develop for one frame: 16-bit integers through OpenCV.

:class:`~isplab.classic.pipeline.ClassicISP` is written in torch (batched, differentiable).
For the commonest job, developing one file into an 8- or 16-bit image with the bilinear
demosaic, the same stages run here on ``uint16`` data with OpenCV's SIMD kernels, in about a
third of the time (``benchmarks/develop_speed.py``):

1. white balance (and LibRaw's ``adjust_maximum`` rescale) with rounding to 16 bits and
   clipping at white: ``cv2.multiply`` on the even and odd rows;
2. bilinear demosaic: ``cv2.cvtColor(COLOR_Bayer*2RGB)`` on the mirror-padded mosaic (the
   padding makes the borders equal to :func:`isplab.classic.demosaic_bilinear`);
3. camera -> linear sRGB matrix with clipping to [0, 1]: ``cv2.transform``;
4. auto-brightening: the rule of :func:`isplab.classic.auto_bright_gain` (8192-bin histogram,
   a quarter of the pixels above 1 MP);
5. brightness, tone curve and gamma: one 65536-entry lookup table of the NumPy display
   curves (:mod:`isplab.classic.curves`, within 1 LSB of the torch display stage
   :meth:`ClassicISP._display`), built once per (tone, gamma, gain, bits) in a process;
   applied in row bands on a few threads.

The only difference from the float path is the 16-bit rounding of the linear data after
white balance and after the matrix (LibRaw rounds at the same places): tested to agree with
``ClassicISP.develop`` to better than 60 dB PSNR on 16-bit output. Nothing here imports
torch: ``isplab develop --isp classic`` runs this path without it
(:class:`isplab.classic.light.LightISP`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import cv2
import numpy as np

from isplab.classic import curves
from isplab.raw.cfa import check_pattern

#: OpenCV names a Bayer pattern by the 2x2 block at (1, 1), not at (0, 0)
_CV_BAYER = {
    "RGGB": cv2.COLOR_BayerBG2RGB,
    "BGGR": cv2.COLOR_BayerRG2RGB,
    "GRBG": cv2.COLOR_BayerGB2RGB,
    "GBRG": cv2.COLOR_BayerGR2RGB,
}
_MAX16 = 65535.0
_HIST_BINS = 8192


def _threads() -> int:
    """Threads for the lookup: OpenCV's setting (``--jobs`` workers set 1, so N workers use
    N cores, not N x cores), at most 4."""
    return max(1, min(4, cv2.getNumThreads()))


def supports(mosaic: np.ndarray) -> bool:
    """Whether :func:`develop_uint16` takes this mosaic (even sizes of at least 4 x 4)."""
    h, w = mosaic.shape[-2:]
    return h % 2 == 0 and w % 2 == 0 and h >= 4 and w >= 4


def white_balance_uint16(mosaic: np.ndarray, cfa: str, gains, scale: float = 1.0
                         ) -> np.ndarray:
    """``round(min(gain * min(scale * mosaic, 1), 1) * 65535)`` per CFA site -> uint16.

    Args:
        mosaic: ``H x W`` float32 in [0, 1] (even sizes).
        cfa: its Bayer pattern.
        gains: (R, G, B) white-balance gains (None: 1).
        scale: LibRaw's ``adjust_maximum`` factor, applied (and clipped at 1) first.
    """
    cfa = check_pattern(cfa)
    g = (1.0, 1.0, 1.0) if gains is None else tuple(float(v) for v in gains)
    site_gain = {"R": g[0], "G": g[1], "B": g[2]}
    m = np.ascontiguousarray(mosaic, dtype=np.float32)
    if scale != 1.0 and min(g) < 1.0:  # min(g * min(s x, 1), 1) != min(g s x, 1) here
        m = np.minimum(m * np.float32(scale), np.float32(1.0))
        scale = 1.0
    h, w = m.shape
    out = np.empty((h, w), np.uint16)
    pairs, out_pairs = m.reshape(h, w // 2, 2), out.reshape(h, w // 2, 2)
    for row in (0, 1):
        factors = tuple(site_gain[cfa[2 * row + k]] * scale * _MAX16 for k in (0, 1))
        out_pairs[row::2] = cv2.multiply(pairs[row::2], (*factors, 0.0, 0.0),
                                         dtype=cv2.CV_16U)
    return out


def demosaic_bilinear_uint16(mosaic16: np.ndarray, cfa: str) -> np.ndarray:
    """Bilinear demosaic of a ``uint16`` mosaic -> ``H x W x 3`` uint16 RGB, equal to
    :func:`isplab.classic.demosaic_bilinear` up to rounding (mirror-padded borders)."""
    padded = cv2.copyMakeBorder(mosaic16, 2, 2, 2, 2, cv2.BORDER_REFLECT_101)
    return cv2.cvtColor(padded, _CV_BAYER[check_pattern(cfa)])[2:-2, 2:-2]


def auto_bright_gain_uint16(rgb16: np.ndarray, threshold: float) -> float:
    """:func:`isplab.classic.auto_bright_gain` on ``H x W x 3`` uint16 linear RGB."""
    img = rgb16
    h, w = img.shape[:2]
    if h * w > 1 << 20:  # every other row and column, as the torch rule
        img = cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_NEAREST)
    count = img.shape[0] * img.shape[1]
    white = 0.0
    for plane in cv2.split(img):
        # 8192 bins of 8 values: bin v >> 3 equals floor(v / 65535 * 8192) for all v
        hist = np.bincount((plane >> 3).ravel(), minlength=_HIST_BINS)
        above = np.cumsum(hist[::-1])[::-1]  # pixels in this bin or above
        over = np.flatnonzero(above > threshold * count)
        idx = int(over.max()) if over.size else 0
        white = max(white, (idx + 1) / _HIST_BINS)
    return max(1.0, 1.0 / white)


#: pixels per ``np.take`` call: it widens uint16 indices to an int64 copy of its input, so
#: a whole 400 MP frame at once would need 3.2 GB of indices; chunks bound that to 8 MB
_LUT_CHUNK = 1 << 20


def apply_lut(table: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``table[image]`` in row bands on a few threads (``np.take`` releases the GIL), each
    band in chunks of about :data:`_LUT_CHUNK` pixels (bounded index memory)."""
    out = np.empty(image.shape, table.dtype)
    bands = min(_threads(), max(1, image.shape[0] // 64))
    edges = np.linspace(0, image.shape[0], bands + 1).astype(int)
    row_pixels = max(1, int(np.prod(image.shape[1:])))
    rows = max(1, _LUT_CHUNK // row_pixels)

    def band(i: int) -> None:
        for top in range(edges[i], edges[i + 1], rows):
            sl = slice(top, min(top + rows, edges[i + 1]))
            np.take(table, image[sl], out=out[sl])

    if bands == 1:
        band(0)
        return out

    with ThreadPoolExecutor(bands) as pool:
        list(pool.map(band, range(bands)))
    return out


@lru_cache(maxsize=16)
def display_lut(tone: str, gamma: tuple[float, float], gain: float, output_bps: int
                ) -> np.ndarray:
    """The 65536-entry table ``v -> round(display(v / 65535 * gain) * max)`` (uint8/uint16,
    read-only): brightness ``gain``, then the ``tone`` curve and ``gamma``
    (:func:`isplab.classic.curves.display`). Built once per process and arguments."""
    x = (np.arange(65536, dtype=np.float64) / _MAX16 * float(gain)).astype(np.float32)
    y = curves.display(x, tone, (float(gamma[0]), float(gamma[1])))
    maxv = 255.0 if output_bps == 8 else _MAX16
    table = np.floor(y.astype(np.float64) * maxv + 0.5)
    table = table.astype(np.uint8 if output_bps == 8 else np.uint16)
    table.flags.writeable = False
    return table


def develop_uint16(mosaic: np.ndarray, cfa: str, gains, matrix, *, tone: str = "none",
                   gamma: tuple[float, float] = (2.4, 12.92), auto_bright: bool,
                   auto_bright_thr: float, bright: float, output_bps: int,
                   scale: float = 1.0) -> np.ndarray:
    """Bilinear develop of one ``H x W`` float32 mosaic in [0, 1] -> ``H x W x 3`` uint8/16.

    Args:
        gains: (R, G, B) white balance or None; clipped at white as in the float path.
        matrix: camera -> linear sRGB ``3 x 3`` or None.
        tone, gamma: the display curves (``none``/``smoothstep``/``filmic``, ``(power,
            slope)``), as :class:`ClassicISP`.
        auto_bright, auto_bright_thr, bright: as :class:`ClassicISP`.
        output_bps: 8 or 16.
        scale: LibRaw's ``adjust_maximum`` factor.
    """
    rgb = demosaic_bilinear_uint16(white_balance_uint16(mosaic, cfa, gains, scale), cfa)
    if matrix is not None:
        rgb = cv2.transform(rgb, np.asarray(matrix, dtype=np.float32))
    gain = float(bright)
    if auto_bright:
        gain *= auto_bright_gain_uint16(rgb, auto_bright_thr)
    return apply_lut(display_lut(tone, tuple(gamma), gain, output_bps), rgb)
