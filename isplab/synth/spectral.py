"""Physically based colour casts: reflectances, illuminant spectra and camera sensitivities.

A white-balanced training photo, decoded to linear sRGB, is upsampled to spectral reflectance
by Mallett & Yuksel's (2019) basis: three smooth spectra ``B`` (``W x 3``, each in [0, 1],
summing to 1 at every wavelength), so that linear sRGB ``c`` in [0, 1] is the reflectance
``B c`` (bounded, and white ``(1, 1, 1)`` is the flat reflectance 1). The reflectance is lit
by an illuminant spectrum ``L`` and seen by a camera's spectral sensitivities ``S``
(``W x 3``): camera RGB ``= S^T diag(L) B c``, one 3x3 matrix per (illuminant, camera) for the
whole image. The ground truth is the camera response to the flat (white) reflectance,
``S^T L``. Unlike a von Kries cast in camera space, the colours of the scene shift with the
light the way real surfaces do (metamerism included, to the extent three basis spectra allow).

- Illuminants (:func:`sample_illuminant_spd`): CIE daylight (D series, 4000-12000 K), black
  bodies (2500-6500 K: tungsten, halogen, low sun), the CIE fluorescent (FL) and LED series,
  and mixtures of daylight with one of the others (mixed light).
- Cameras (:func:`sample_sensitivities`): the Nikon D5100 curves shipped with colour-science
  (measured by NPL), perturbed by smooth multiplicative bumps, or Gaussian-model Bayer
  sensitivities (peaks and widths sampled around those of real CMOS sensors, a secondary blue
  lobe on the red channel, an IR-cut fall-off), with random channel gains: many cameras, so
  that a model fitted on them does not learn one camera.

Spectra are sampled at 380-780 nm in 5 nm steps (Mallett's basis's own grid). The spectral data come
from colour-science (a dev dependency, and a dependency of colour-demosaicing), imported when
first used: training only, never at inference.
"""

from __future__ import annotations

import functools

import numpy as np

WAVELENGTHS = np.arange(380.0, 781.0, 5.0)
#: colour-science's fluorescent and LED illuminants used for artificial light
ARTIFICIAL = tuple([f"FL{i}" for i in range(1, 13)] + [f"FL3.{i}" for i in range(1, 16)]
                   + ["LED-B1", "LED-B2", "LED-B3", "LED-B4", "LED-B5", "LED-BH1",
                      "LED-RGB1", "LED-V1", "LED-V2"])


def _values(sd) -> np.ndarray:
    """A colour-science spectral distribution's values on :data:`WAVELENGTHS`."""
    return np.interp(WAVELENGTHS, sd.wavelengths, sd.values, left=0.0, right=0.0)


@functools.lru_cache(maxsize=1)
def reflectance_basis() -> np.ndarray:
    """Mallett & Yuksel's (2019) sRGB basis, ``W x 3`` (columns: R, G, B spectra)."""
    from colour.recovery import MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019 as basis

    return np.stack([np.interp(WAVELENGTHS, basis.wavelengths, basis.values[:, k])
                     for k in range(3)], axis=1)


@functools.lru_cache(maxsize=1)
def _artificial() -> np.ndarray:
    import colour

    spds = np.stack([_values(colour.SDS_ILLUMINANTS[n]) for n in ARTIFICIAL])
    return spds / spds.mean(axis=1, keepdims=True)


@functools.lru_cache(maxsize=1)
def _nikon() -> np.ndarray:
    import colour

    cam = colour.MSDS_CAMERA_SENSITIVITIES["Nikon 5100 (NPL)"]
    return np.stack([np.interp(WAVELENGTHS, cam.wavelengths, cam.values[:, k], 0.0, 0.0)
                     for k in range(3)], axis=1)


def blackbody(cct: float) -> np.ndarray:
    """Planck's law at :data:`WAVELENGTHS` for ``cct`` kelvin, mean 1."""
    lam = WAVELENGTHS * 1e-9
    e = 1.0 / (lam**5 * np.expm1(1.4387769e-2 / (lam * cct)))
    return e / e.mean()


def daylight(cct: float) -> np.ndarray:
    """CIE D-series daylight at ``cct`` kelvin (4000-25000 K), mean 1."""
    import colour

    xy = colour.temperature.CCT_to_xy_CIE_D(float(np.clip(cct, 4000.0, 25000.0)))
    e = _values(colour.sd_CIE_illuminant_D_series(xy))
    return e / e.mean()


def _mired(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(1e6 / rng.uniform(1e6 / hi, 1e6 / lo))


def sample_illuminant_spd(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A scene illuminant spectrum (mean 1) and what it is: daylight (45 %), a black body
    (25 %), a fluorescent / LED lamp (15 %) or daylight mixed with one of those (15 %)."""
    k = rng.uniform()
    if k < 0.45:
        t = _mired(rng, 4000.0, 12000.0)
        return daylight(t), f"D {t:.0f} K"
    if k < 0.70:
        t = _mired(rng, 2500.0, 6500.0)
        return blackbody(t), f"blackbody {t:.0f} K"
    i = int(rng.integers(len(ARTIFICIAL)))
    lamp = _artificial()[i]
    if k < 0.85:
        return lamp, ARTIFICIAL[i]
    t, a = _mired(rng, 4000.0, 12000.0), rng.uniform(0.2, 0.8)
    other = lamp if rng.uniform() < 0.5 else blackbody(_mired(rng, 2500.0, 4000.0))
    return a * daylight(t) + (1 - a) * other, f"mix D {t:.0f} K"


def _gauss(mu: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((WAVELENGTHS - mu) / sd) ** 2)


def _bumps(rng: np.random.Generator, n: int, strength: float) -> np.ndarray:
    """A smooth positive multiplicative perturbation: ``exp`` of ``n`` random Gaussian bumps."""
    log = np.zeros_like(WAVELENGTHS)
    for _ in range(n):
        log += rng.normal(0.0, strength) * _gauss(rng.uniform(400, 700), rng.uniform(20, 60))
    return np.exp(log)


def _gaussian_camera(rng: np.random.Generator) -> np.ndarray:
    """Gaussian-model Bayer sensitivities around those of CMOS sensors (``W x 3``)."""
    r = _gauss(rng.uniform(585, 620), rng.uniform(22, 40))
    r += rng.uniform(0.0, 0.12) * _gauss(rng.uniform(430, 470), rng.uniform(15, 30))
    g = _gauss(rng.uniform(520, 550), rng.uniform(30, 45))
    b = _gauss(rng.uniform(445, 470), rng.uniform(22, 38))
    ir_cut = 1.0 / (1.0 + np.exp((WAVELENGTHS - rng.uniform(640, 690)) / rng.uniform(6, 15)))
    uv_cut = 1.0 / (1.0 + np.exp((rng.uniform(390, 415) - WAVELENGTHS) / 6.0))
    return np.stack([r, g, b], axis=1) * (ir_cut * uv_cut)[:, None]


def sample_sensitivities(rng: np.random.Generator) -> np.ndarray:
    """A camera's spectral sensitivities ``W x 3`` (R, G, B): the Nikon D5100 (NPL) with
    smooth per-channel perturbations (half the draws) or a Gaussian-model sensor, then random
    channel gains (R and B relative to G: 0.6-1.6)."""
    if rng.uniform() < 0.5:
        s = _nikon() * np.stack([_bumps(rng, 3, 0.25) for _ in range(3)], axis=1)
    else:
        s = _gaussian_camera(rng)
    s = s / s.max(axis=0, keepdims=True)
    gains = np.array([rng.uniform(0.6, 1.6), 1.0, rng.uniform(0.6, 1.6)])
    return s * gains


def cast_matrix(sensitivities: np.ndarray, spd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, white)``: linear sRGB -> camera RGB under the light (``3 x 3``,
    ``S^T diag(L) B``) and the camera RGB of a white surface (``S^T L``, ``g = 1``); ``M`` is
    scaled by the same factor."""
    s = np.asarray(sensitivities, dtype=np.float64)
    m = s.T @ (spd[:, None] * reflectance_basis())
    white = s.T @ spd
    return m / white[1], white / white[1]


def render_spectral(linear_rgb: np.ndarray, rng: np.random.Generator, **expose_args
                    ) -> tuple[np.ndarray, np.ndarray, str]:
    """Linear sRGB ``H x W x 3`` (a white-balanced photo) -> ``(camera RGB, illuminant, what)``
    under a sampled light and camera: reflectances (:func:`reflectance_basis`), the cast
    matrix (:func:`cast_matrix`), then exposure, noise, clipping and quantisation
    (:func:`isplab.synth.illuminants.expose`, ``expose_args`` passed on)."""
    from isplab.synth.illuminants import expose

    spd, what = sample_illuminant_spd(rng)
    m, white = cast_matrix(sample_sensitivities(rng), spd)
    lin = np.clip(linear_rgb.astype(np.float64), 0.0, 1.0)
    cam = np.einsum("ij,hwj->hwi", m, lin)
    return expose(cam, rng, **expose_args), white, what
