"""Finding a ColorChecker Classic in a raw frame and sampling its 24 patches in camera RGB.

The frame is rendered at half size as linear *camera* RGB (each 2x2 Bayer block gives R,
the mean of the two greens, and B; no white balance, no matrix), which is what the patches
are sampled from. The detector (``colour-checker-detection``'s segmentation, which expects
linear RGB in [0, 1]) sees a white-balanced copy (the as-shot gains, else gray world) scaled
so that its 99.5th percentile is 1; it runs on the frame as it is and, when nothing is found,
turned by 90 degrees. ``corners`` replace the detector.

The chart's orientation (which corner is the dark-skin patch) is not taken from the
detector: each of the 8 corner orders is sampled and the one whose patches a least-squares
colour fit explains best wins, so a chart upside down, turned or mirrored is read correctly.
Each patch is the per-channel median of the inner ``INNER`` part of its cell; a patch with
more than 1 % of its pixels at the sensor's saturation is reported clipped (left out of fits).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from isplab.classic import calibration as cal
from isplab.errors import InvalidInputError
from isplab.raw.cfa import packed_offsets
from isplab.raw.image import RawImage

log = logging.getLogger(__name__)

#: fraction of a cell's side sampled around its centre (the rest is border and gap)
INNER = 0.4
#: smallest cell side, in raw pixels, that leaves enough inner pixels to sample
MIN_CELL = 16
#: a chart whose best least-squares fit leaves a larger mean ΔE2000 is not a ColorChecker
MAX_FIT_ERROR = 12.0
_COLUMNS, _ROWS = 6, 4


@dataclass
class ChartSamples:
    """The 24 patches of a chart in camera RGB.

    Attributes:
        camera_rgb: ``24 x 3`` medians, not white balanced, in the mosaic's [0, 1] units.
        clipped: ``24`` bools: patches with saturated pixels (not to be fitted).
        corners: ``4 x 2`` (x, y) raw-pixel corners of the patch area: the dark-skin,
            bluish-green, black and white corners.
        method: ``detected`` or ``corners``.
        cell: side of a patch cell in raw pixels.
        flat_field: the chart's shading (:mod:`isplab.classic.flatfield`) measured from the
            fall-off inside the patches, or None when too few patches allow it.
        shading: ``24`` gains of ``flat_field`` at the patch centres (brightest = 1; ones
            without a flat field): ``camera_rgb / shading[:, None]`` is the flat-fielded chart.
    """

    camera_rgb: np.ndarray
    clipped: np.ndarray
    corners: np.ndarray
    method: str
    cell: float
    flat_field: object = None
    shading: np.ndarray | None = None


def camera_rgb_image(raw: RawImage) -> np.ndarray:
    """Half-size linear camera RGB ``H/2 x W/2 x 3`` (R, mean of the greens, B) float32."""
    m = raw.mosaic
    h, w = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    r, g1, g2, b = (m[dy:h:2, dx:w:2] for dy, dx in packed_offsets(raw.cfa))
    return np.stack([r, (g1 + g2) * 0.5, b], -1).astype(np.float32)


def saturation_level(raw: RawImage) -> float:
    """The normalised value at which the sensor clips: 1, or the data's maximum when it lies
    in (0.75, 1) (LibRaw's ``adjust_maximum``: cameras that saturate below their white)."""
    top = float(raw.mosaic.max())
    return top if 0.75 < top < 1.0 else 1.0


def _detection_image(rgb: np.ndarray, gains) -> np.ndarray:
    if gains is None:
        mean = rgb.reshape(-1, 3).mean(0)
        gains = mean[1] / np.maximum(mean, 1e-6)
    x = rgb * np.asarray(gains, dtype=np.float32)
    top = float(np.percentile(x, 99.5))
    return np.clip(x / max(top, 1e-6), 0, 1).astype(np.float32)


def detect_quads(rgb: np.ndarray, gains=None) -> list[np.ndarray]:
    """Candidate chart quadrilaterals (``4 x 2`` (x, y) in ``rgb``'s pixels) found by
    ``colour-checker-detection``; the frame as it is first, then turned by 90 degrees."""
    try:
        import colour_checker_detection as ccd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidInputError("finding a ColorChecker needs colour-checker-detection: pip "
                                "install --no-deps -r requirements-nodeps.txt (or give "
                                "--patches)") from exc

    image = _detection_image(rgb, gains)
    h, w = image.shape[:2]
    for turn in (0, 1):
        im = np.ascontiguousarray(np.rot90(image, turn))
        if im.shape[0] > im.shape[1]:  # the detector turns portrait frames itself: skip
            continue
        found = ccd.detect_colour_checkers_segmentation(im, additional_data=True)
        quads = []
        for d in found:
            q = np.asarray(d.quadrilateral, dtype=np.float64) * im.shape[1] / 1440.0
            if turn:  # undo np.rot90 (counter-clockwise): (x, y) in im -> (w - 1 - y, x)
                q = np.stack([w - 1 - q[:, 1], q[:, 0]], 1)
            quads.append(q)
        if quads:
            return quads
    return []


def _grid_points(quad: np.ndarray, inner: float, n: int) -> np.ndarray:
    """``24 x n*n x 2`` sample points of each cell's inner square (a projective grid)."""
    import cv2

    src = np.float32([[0, 0], [_COLUMNS, 0], [_COLUMNS, _ROWS], [0, _ROWS]])
    hom = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    t = (np.arange(n) + 0.5) / n * inner + (1 - inner) / 2
    u, v = np.meshgrid(t, t)
    cells = [(i + u.ravel(), j + v.ravel()) for j in range(_ROWS) for i in range(_COLUMNS)]
    pts = np.concatenate([np.stack(c, -1) for c in cells]).astype(np.float32)
    xy = cv2.perspectiveTransform(pts[None], hom)[0]
    return xy.reshape(cal.PATCHES, n * n, 2)


def cell_side(quad: np.ndarray) -> float:
    """The shortest side of a cell of the patch grid, in the quad's pixels."""
    sides = np.linalg.norm(quad - np.roll(quad, -1, 0), axis=1)
    return float(min(sides[0] / _COLUMNS, sides[2] / _COLUMNS, sides[1] / _ROWS,
                     sides[3] / _ROWS))


def sample_quad(rgb: np.ndarray, quad: np.ndarray, saturation: float = 1.0,
                inner: float = INNER) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel medians ``24 x 3`` of each cell's inner square and each patch's fraction
    of pixels with a channel at ``saturation``. ``quad``: the patch area's corners (x, y)
    in ``rgb``'s pixels, dark-skin corner first, then bluish green, black, white."""
    side = max(3, int(round(cell_side(quad) * inner)))
    xy = _grid_points(quad, inner, side)
    h, w = rgb.shape[:2]
    xs = np.clip(np.round(xy[..., 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(xy[..., 1]).astype(int), 0, h - 1)
    px = rgb[ys, xs]  # 24 x n x 3
    clipped = (px >= 0.99 * saturation).any(-1).mean(1)
    return np.median(px, 1).astype(np.float64), clipped


def _orderings(quad: np.ndarray) -> list[np.ndarray]:
    """The 8 ways to read a quadrilateral's corners as (dark skin, bluish green, black,
    white): 4 starting corners, both directions."""
    out = []
    for q in (quad, quad[::-1]):
        out += [np.roll(q, -i, 0) for i in range(4)]
    return out


def _fit_error(camera_rgb: np.ndarray, use: np.ndarray) -> float:
    """Mean ΔE2000 of a quick least-squares matrix fit of the ``use``d patches (how much
    the samples look like a ColorChecker read in this order)."""
    try:
        fit = cal.fit_least_squares(camera_rgb, use, "matrix")
    except InvalidInputError:
        return float("inf")
    de = fit.delta_e[use]
    return float(np.mean(de)) if np.all(np.isfinite(de)) else float("inf")


def _best_reading(rgb, quads, saturation):
    best = (float("inf"), None, None, None)
    for quad in quads:
        for q in _orderings(quad):
            med, clipped = sample_quad(rgb, q, saturation)
            err = _fit_error(med, clipped <= 0.01)
            if err < best[0]:
                best = (err, q, med, clipped)
    return best


def find_chart(raw: RawImage, corners: np.ndarray | None = None) -> ChartSamples:
    """Find (or take at ``corners``: ``4 x 2`` raw-pixel (x, y), any order) the
    ColorChecker in ``raw`` and sample its patches.

    Raises:
        InvalidInputError: no chart found (use ``--corners``), the chart is too small, or too
        many of its patches are clipped.
    """
    rgb = camera_rgb_image(raw)
    if corners is not None:
        quads = [(np.asarray(corners, dtype=np.float64).reshape(4, 2) - 0.5) / 2]
        method = "corners"
    else:
        quads = detect_quads(rgb, raw.wb_gains)
        method = "detected"
        if not quads:
            raise InvalidInputError("no ColorChecker found: give its corners with --corners "
                                    "x1,y1,x2,y2,x3,y3,x4,y4 (raw pixels)", raw.path)
    side = max(cell_side(q) for q in quads) * 2
    if side < MIN_CELL:
        raise InvalidInputError(f"chart too small: its patches are {side:.0f} pixels across, "
                                f"at least {MIN_CELL} are needed", raw.path)
    for q in quads:  # the clipped patches, whatever the reading order
        _check_clipping(sample_quad(rgb, q, saturation_level(raw))[1] > 0.01, raw)
    err, quad, med, frac = _best_reading(rgb, quads, saturation_level(raw))
    if quad is None or err > MAX_FIT_ERROR:
        hint = "check the corners" if method == "corners" else \
            "give its corners with --corners x1,y1,x2,y2,x3,y3,x4,y4 (raw pixels)"
        raise InvalidInputError(f"no ColorChecker found (the best reading of the patches "
                                f"is {err:.1f} ΔE2000 from the chart): {hint}", raw.path)
    clipped = frac > 0.01
    log.info("chart %s, cell %.0f px, LS fit %.2f ΔE2000", method, cell_side(quad) * 2, err)
    ff, shading = chart_flat_field(rgb, quad, ~clipped, raw.mosaic.shape)
    return ChartSamples(np.where(clipped[:, None], np.nan, med), clipped, quad * 2 + 0.5,
                        method, cell_side(quad) * 2, ff, shading)


def chart_flat_field(rgb: np.ndarray, quad: np.ndarray, used: np.ndarray, shape):
    """The chart's flat field (:func:`isplab.classic.flatfield.estimate` on the slopes inside
    the inner 30 % of each cell) and its gains at the patch centres (ones when None)."""
    from isplab.classic import flatfield

    n = int(np.clip(cell_side(quad) * 0.3, 4, 24))
    centres, slopes, resid, med = flatfield.patch_slopes(
        rgb, _grid_points(quad, 0.3, n), shape[1], shape[0])
    ff = flatfield.estimate(centres, slopes, resid, med, used)
    if ff is None:
        return None, np.ones(cal.PATCHES)
    ff.width, ff.height = int(shape[1]), int(shape[0])
    return ff, flatfield.patch_gains(ff, centres, used)


def _check_clipping(clipped: np.ndarray, raw: RawImage) -> None:
    names, _ = cal.reference_chart()
    n_wb = int((~clipped[cal.WB_PATCHES]).sum())
    if clipped.sum() > 4 or n_wb < 2:
        which = ", ".join(names[i] for i in np.flatnonzero(clipped))
        raise InvalidInputError(f"chart clipped: {int(clipped.sum())} of 24 patches are "
                                f"saturated ({which}); expose it darker", raw.path)


def rendered_chart_error(linear_srgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find the chart in a *developed* image (``H x W x 3`` linear sRGB in [0, 1]) and
    measure it: (patch medians ``24 x 3``, ΔE2000 per patch against the reference with the
    exposure normalised on the neutral row). The reading order is the one closest to the
    reference. Raises InvalidInputError when no chart is found."""
    rgb = np.asarray(linear_srgb, dtype=np.float32)
    quads = detect_quads(rgb, (1.0, 1.0, 1.0))
    best = (np.inf, None, None)
    for quad in quads:
        for q in _orderings(quad):
            med, _ = sample_quad(rgb, q)
            de, _ = cal.chart_delta_e(med)
            if np.mean(de) < best[0]:
                best = (float(np.mean(de)), med, de)
    if best[1] is None:
        raise InvalidInputError("no ColorChecker found in the developed image")
    return best[1], best[2]
