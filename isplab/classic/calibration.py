"""Colour calibration from a ColorChecker: white balance, a camera -> linear sRGB transform
fitted to minimise CIEDE2000, and its leave-one-patch-out error.

Inputs are the 24 patches of an X-Rite ColorChecker Classic measured in *camera RGB* (not
white balanced, linear, in X-Rite row order: dark skin ... black), e.g. by
:func:`isplab.classic.chart.find_chart`. The reference is colour-science's
``ColorChecker24 - After November 2014`` (D50), adapted to D65 with Bradford and expressed
in linear sRGB.

The model is the one :class:`~isplab.classic.ClassicISP` applies::

    linear_srgb = T(gains * camera_rgb)

``gains`` (R, G, B with G = 1) make the neutral patches neutral; ``T`` is a 3x3 matrix or a
root-polynomial (Finlayson, Mackiewicz and Hurlbert 2015, degree 2 or 3: every term is
homogeneous of degree 1, so the transform is exposure invariant) whose rows sum to 1, so that
white stays white. Colour errors are measured with the exposure normalised on the neutral row:
the prediction is scaled by the least-squares factor that matches the luminance Y of the
neutral patches to the reference (one number; a chart is rarely exposed like the reference).
Numpy/scipy only; colour-science gives the reference values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from isplab.errors import InvalidInputError
from isplab.raw.matrices import SRGB_TO_XYZ

#: number of patches of a ColorChecker Classic, and its rows x columns
PATCHES = 24
#: the neutral row (white 9.5 ... black 2), X-Rite order indices
NEUTRAL = np.arange(18, 24)
#: the neutral patches the white balance is measured on (the black one is too dark: noise,
#: flare and black-level errors dominate it)
WB_PATCHES = np.arange(18, 23)
#: transform kinds and their number of terms
KINDS = {"matrix": 3, "root-polynomial-2": 6, "root-polynomial-3": 13}
REFERENCE = "ColorChecker24 - After November 2014"
_WHITE_XYZ = SRGB_TO_XYZ @ np.ones(3)  # D65, Y = 1


# --------------------------------------------------------------------- reference and colour


@functools.lru_cache(maxsize=1)
def reference_chart() -> tuple[tuple[str, ...], np.ndarray]:
    """The patch names and their linear sRGB (D65, white Y = 1) reference values, ``24 x 3``."""
    try:
        import colour
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidInputError("colour calibration needs colour-science (the X-Rite reference "
                                "values): pip install -c constraints.txt 'isplab[calibrate]'"
                                ) from exc

    from isplab.raw.matrices import XYZ_TO_SRGB

    chart = colour.CCS_COLOURCHECKERS[REFERENCE]
    xyy = np.array(list(chart.data.values()), dtype=np.float64)
    xyz = colour.xyY_to_XYZ(xyy)
    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    xyz = colour.adaptation.chromatic_adaptation_VonKries(
        xyz, colour.xy_to_XYZ(chart.illuminant), colour.xy_to_XYZ(d65), transform="Bradford")
    rgb = xyz @ np.asarray(XYZ_TO_SRGB, dtype=np.float64).T
    rgb.setflags(write=False)
    return tuple(chart.data.keys()), rgb


def linear_srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Linear sRGB (``... x 3``, D65) -> CIELAB (D65 white)."""
    xyz = np.asarray(rgb, dtype=np.float64) @ np.asarray(SRGB_TO_XYZ, dtype=np.float64).T
    t = xyz / _WHITE_XYZ
    d = 6.0 / 29.0
    f = np.where(t > d ** 3, np.cbrt(np.maximum(t, d ** 3)), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], -1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 (Sharma, Wu and Dalal 2005) between CIELAB arrays ``... x 3``."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar, c_bar_p = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) > 180,
                     np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2), h_sum / 2)
    h_bar = np.where(c1p * c2p == 0, h_sum, h_bar)
    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar_p
    s_h = 1 + 0.015 * c_bar_p * t
    r_t = (-2 * np.sqrt(c_bar_p ** 7 / (c_bar_p ** 7 + 25.0 ** 7))
           * np.sin(np.radians(60 * np.exp(-(((h_bar - 275) / 25) ** 2)))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2
                   + r_t * (d_c / s_c) * (d_h / s_h))


def exposure_scale(pred: np.ndarray, ref: np.ndarray, use: np.ndarray) -> float:
    """The least-squares factor matching the luminance Y of ``pred`` to ``ref`` over the
    neutral patches in ``use`` (a 24-bool mask): the chart's exposure normalisation."""
    rows = NEUTRAL[use[NEUTRAL]]
    y_p = pred[rows] @ SRGB_TO_XYZ[1]
    y_r = ref[rows] @ SRGB_TO_XYZ[1]
    den = float(y_p @ y_p)
    return float(y_p @ y_r) / den if den > 0 else 1.0


def chart_delta_e(linear_srgb: np.ndarray, use: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float]:
    """ΔE2000 of 24 measured linear sRGB patches against the reference, with the exposure
    normalised on the neutral row. Returns (per patch, NaN where not ``use``; the scale)."""
    _, ref = reference_chart()
    use = np.ones(PATCHES, bool) if use is None else np.asarray(use, bool)
    k = exposure_scale(np.maximum(linear_srgb, 0), ref, use)
    de = delta_e2000(linear_srgb_to_lab(k * np.maximum(linear_srgb, 0)),
                     linear_srgb_to_lab(ref))
    return np.where(use, de, np.nan), k


def flat_chart(colours: np.ndarray, side: int) -> np.ndarray:
    """The 24 patch ``colours`` (``24 x 3``, reading order) as flat ``side``-pixel squares in
    the chart's 4 x 6 layout: ``3 x 4 side x 6 side`` (a synthetic, texture-free chart)."""
    grid = np.asarray(colours, dtype=np.float32).reshape(4, 6, 3).transpose(2, 0, 1)
    return np.ascontiguousarray(grid.repeat(side, 1).repeat(side, 2))


def flat_chart_means(image: np.ndarray, side: int, margin: int) -> np.ndarray:
    """Each patch's mean (``24 x 3``) of a :func:`flat_chart`-laid ``3 x H x W`` image, away
    from ``margin`` pixels of its edges."""
    c = np.asarray(image).shape[0]
    cells = np.asarray(image)[:, :4 * side, :6 * side].reshape(c, 4, side, 6, side)
    inner = cells[:, :, margin:side - margin, :, margin:side - margin]
    return inner.mean((2, 4)).reshape(c, PATCHES).T


# --------------------------------------------------------------------- transforms


def root_polynomial_terms(rgb: np.ndarray, degree: int) -> np.ndarray:
    """Root-polynomial expansion (Finlayson et al. 2015) of ``... x 3`` linear RGB: degree 1
    is RGB itself, 2 adds sqrt(rg), sqrt(gb), sqrt(rb), 3 adds the cube roots of rg², gb²,
    rb², gr², bg², br², rgb (13 terms). Negative inputs are clipped to 0."""
    r, g, b = np.moveaxis(np.maximum(np.asarray(rgb, dtype=np.float64), 0), -1, 0)
    terms = [r, g, b]
    if degree >= 2:
        terms += [np.sqrt(r * g), np.sqrt(g * b), np.sqrt(r * b)]
    if degree >= 3:
        terms += [np.cbrt(r * g * g), np.cbrt(g * b * b), np.cbrt(r * b * b),
                  np.cbrt(g * r * r), np.cbrt(b * g * g), np.cbrt(b * r * r), np.cbrt(r * g * b)]
    return np.stack(terms, -1)


def kind_degree(kind: str) -> int:
    """1 for ``matrix``, 2 or 3 for ``root-polynomial-2|3``."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown transform kind {kind!r}; choose one of "
                                f"{', '.join(KINDS)}")
    return 1 if kind == "matrix" else int(kind[-1])


def apply_transform(wb_rgb: np.ndarray, kind: str, coefficients: np.ndarray) -> np.ndarray:
    """White-balanced camera RGB ``... x 3`` -> linear sRGB with a ``3 x T`` transform."""
    terms = root_polynomial_terms(wb_rgb, kind_degree(kind))
    return terms @ np.asarray(coefficients, dtype=np.float64).T


def white_balance_gains(camera_rgb: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(R, G, B) gains, G = 1, that make the usable neutral patches neutral (ratio of sums:
    the brighter patches, measured with less noise, weigh more)."""
    rows = WB_PATCHES[use[WB_PATCHES]]
    if rows.size < 2:
        raise InvalidInputError(f"only {rows.size} usable neutral patches (need 2 of the "
                                "white ... neutral 3.5 row unclipped) to measure the white "
                                "balance")
    total = camera_rgb[rows].sum(0)
    if np.any(total <= 0):
        raise InvalidInputError("the neutral patches read zero or less in some channel: "
                                "is the black level right?")
    return total[1] / total


# --------------------------------------------------------------------- fitting


@dataclass
class Fit:
    """A fitted profile: black offset, gains, transform, exposure and per-patch errors.

    ``linear_srgb = exposure * T((camera_rgb - black_offset) * gains)``; ``exposure`` is the
    chart's normalisation (not part of the camera's colour)."""

    kind: str
    gains: np.ndarray  # R, G, B with G = 1
    coefficients: np.ndarray  # 3 x T, rows sum to 1
    exposure: float
    black_offset: np.ndarray  # R, G, B in the mosaic's [0, 1] units
    delta_e: np.ndarray  # 24, NaN for unused patches
    used: np.ndarray
    loo_delta_e: np.ndarray = field(default_factory=lambda: np.full(PATCHES, np.nan))

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.delta_e))

    @property
    def loo_mean(self) -> float:
        ok = np.isfinite(self.loo_delta_e)
        return float(self.loo_delta_e[ok].mean()) if ok.any() else float("nan")

    def predict(self, camera_rgb: np.ndarray) -> np.ndarray:
        """Camera RGB ``... x 3`` -> linear sRGB at the chart's exposure (not clipped)."""
        wb = (np.asarray(camera_rgb, dtype=np.float64) - self.black_offset) * self.gains
        return self.exposure * apply_transform(wb, self.kind, self.coefficients)


def _unpack(p: np.ndarray, n_terms: int) -> np.ndarray:
    """Free parameters ``... x 3(T-1)`` -> ``... x 3 x T`` coefficients whose rows sum to 1."""
    c = p.reshape(*p.shape[:-1], 3, n_terms - 1)
    return np.concatenate([c, 1 - c.sum(-1, keepdims=True)], -1)


def _least_squares(terms: np.ndarray, ref: np.ndarray, k: float) -> np.ndarray:
    """Row-sum-constrained least squares ``k * terms @ C.T ≈ ref`` -> free parameters."""
    a = k * (terms[:, :-1] - terms[:, -1:])
    rows = [np.linalg.lstsq(a, ref[:, i] - k * terms[:, -1], rcond=None)[0] for i in range(3)]
    return np.concatenate(rows)


def _prepare(camera_rgb, use) -> tuple[np.ndarray, np.ndarray]:
    camera_rgb = np.asarray(camera_rgb, dtype=np.float64)
    if camera_rgb.shape != (PATCHES, 3):
        raise InvalidInputError(f"need 24 patches x 3 channels of camera RGB, got "
                                f"{camera_rgb.shape}")
    ok = np.isfinite(camera_rgb).all(1)
    use = ok if use is None else np.asarray(use, bool) & ok
    return np.where(ok[:, None], camera_rgb, 0.0), use


def fit_least_squares(camera_rgb, use=None, kind: str = "matrix") -> Fit:
    """Gains from the neutral patches and the row-sum-constrained least-squares transform
    in linear RGB (the starting point of :func:`fit_transform`)."""
    camera_rgb, use = _prepare(camera_rgb, use)
    n_terms = KINDS[kind] if kind in KINDS else kind_degree(kind)
    if use.sum() < n_terms + 3:
        raise InvalidInputError(f"only {int(use.sum())} usable patches: a {kind} fit needs "
                                f"at least {n_terms + 3}")
    gains = white_balance_gains(camera_rgb, use)
    _, ref = reference_chart()
    terms = root_polynomial_terms(camera_rgb * gains, kind_degree(kind))
    k0 = exposure_scale(terms[:, :3], ref, use)
    coefficients = _unpack(_least_squares(terms[use], ref[use], k0), n_terms)
    de, k = chart_delta_e(terms @ coefficients.T, use)
    return Fit(kind, gains, coefficients, k, np.zeros(3), de, use)


class _Objective:
    """Mean ΔE2000 (exposure normalised on the neutral row) of a batch of parameter
    vectors ``[black offset (3, in 1 % of the chart's white) | log R, B gain corrections |
    free coefficients]``, and
    its central-difference gradient from one batched evaluation."""

    def __init__(self, camera_rgb, use, kind, offsets: bool):
        self.cam, self.use, self.kind, self.offsets = camera_rgb, use, kind, offsets
        self.n_terms, self.degree = KINDS[kind], kind_degree(kind)
        self.white = 0.01 * float(camera_rgb[WB_PATCHES[use[WB_PATCHES]], 1].max())
        _, self.ref = reference_chart()
        self.lab_ref = linear_srgb_to_lab(self.ref)
        self.neutral = NEUTRAL[use[NEUTRAL]]

    def split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Parameters ``B x n`` -> (black offsets ``B x 3``, coefficients ``B x 3 x T``)."""
        n = 3 if self.offsets else 0
        off = p[:, :n] * self.white if n else np.zeros((p.shape[0], 3))
        return off, _unpack(p[:, n + 2:], self.n_terms)

    def evaluate(self, p: np.ndarray):
        """``B x n`` parameters -> (ΔE ``B x 24``, gains ``B x 3``, exposure ``B``)."""
        off, coef = self.split(p)
        cam = self.cam[None] - off[:, None, :]
        total = cam[:, WB_PATCHES[self.use[WB_PATCHES]]].sum(1)
        gains = total[:, 1:2] / np.where(total > 0, total, np.nan)
        n = 3 if self.offsets else 0
        gains = gains * np.exp(np.stack([p[:, n], np.zeros(len(p)), p[:, n + 1]], 1))
        terms = root_polynomial_terms(cam * gains[:, None, :], self.degree)
        pred = np.maximum(np.einsum("bnt,bkt->bnk", terms, coef), 0)
        y_p = pred[:, self.neutral] @ SRGB_TO_XYZ[1]
        y_r = self.ref[self.neutral] @ SRGB_TO_XYZ[1]
        k = (y_p @ y_r) / np.maximum((y_p * y_p).sum(1), 1e-30)
        de = delta_e2000(linear_srgb_to_lab(k[:, None, None] * pred), self.lab_ref[None])
        return np.nan_to_num(de, nan=1e3), gains, k

    def __call__(self, p: np.ndarray, h: float = 1e-6) -> tuple[float, np.ndarray]:
        n = p.size
        step = np.eye(n) * h
        batch = np.concatenate([p[None], p[None] + step, p[None] - step])
        v = self.evaluate(batch)[0][:, self.use].mean(1)
        return float(v[0]), (v[1:n + 1] - v[n + 1:]) / (2 * h)


def fit_transform(camera_rgb, use=None, kind: str = "matrix", black_offset: bool = True
                  ) -> Fit:
    """Fit a white-preserving ``kind`` transform (and, with ``black_offset``, a per-channel
    black-level correction) to the ``use``d patches, minimising mean CIEDE2000.

    The white balance is measured on the neutral patches (after the offset); the transform
    starts from row-sum-constrained least squares in linear RGB and is refined, with the R
    and B gains, by L-BFGS on the mean ΔE2000 with the exposure normalised on the neutral
    row (the reference greys are not exactly neutral). Deterministic.
    """
    from scipy.optimize import minimize

    start = fit_least_squares(camera_rgb, use, kind)
    camera_rgb, use = _prepare(camera_rgb, start.used)
    objective = _Objective(camera_rgb, use, kind, black_offset)
    p0 = np.concatenate([np.zeros(5 if black_offset else 2),
                         start.coefficients[:, :-1].ravel()])
    res = minimize(objective, p0, jac=True, method="L-BFGS-B", options={"maxiter": 400})
    p = res.x if res.fun <= objective(p0)[0] else p0
    de, gains, k = objective.evaluate(p[None])
    off, coef = objective.split(p[None])
    return Fit(kind, gains[0], coef[0], float(k[0]), off[0], np.where(use, de[0], np.nan),
               use)


def leave_one_out(camera_rgb, use, kind: str = "matrix", black_offset: bool = True
                  ) -> np.ndarray:
    """ΔE2000 of each used patch predicted by a fit (offset, gains, transform, exposure)
    made without it; NaN for the others."""
    camera_rgb, use = _prepare(camera_rgb, use)
    _, ref = reference_chart()
    lab_ref = linear_srgb_to_lab(ref)
    out = np.full(PATCHES, np.nan)
    for i in np.flatnonzero(use):
        keep = use.copy()
        keep[i] = False
        fit = fit_transform(camera_rgb, keep, kind, black_offset)
        pred = np.maximum(fit.predict(camera_rgb[i:i + 1]), 0)
        out[i] = delta_e2000(linear_srgb_to_lab(pred), lab_ref[i:i + 1])[0]
    return out


def calibrate(camera_rgb, use=None, kind: str = "matrix", black_offset: bool = True,
              loo: bool = True) -> Fit:
    """:func:`fit_transform` with its leave-one-patch-out errors (``loo``)."""
    fit = fit_transform(camera_rgb, use, kind, black_offset)
    if loo:
        fit.loo_delta_e = leave_one_out(camera_rgb, fit.used, kind, black_offset)
    return fit
