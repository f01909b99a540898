"""Tests of the classical ISP stages (isplab.classic) against independent references.

References: colour-demosaicing (demosaicing), scikit-image (histogram equalisation, CIELAB),
the IEC 61966-2-1 and ITU-R BT.709 formulas and slow NumPy versions written here.
Everything is synthetic or taken from ``skimage.data``: no files, no network.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from isplab.classic import (
    DEMOSAIC_METHODS,
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    ClassicISP,
    apply_color_matrix,
    apply_white_balance,
    auto_bright_gain,
    camera_to_srgb_from_xyz,
    clahe,
    demosaic,
    demosaic_bilinear,
    demosaic_malvar2004,
    denoise,
    equalize_channel,
    exposure,
    filmic,
    gamma_curve,
    gray_world_gains,
    histogram_equalize,
    inverse_smoothstep,
    normalize_levels,
    power_gamma,
    smoothstep,
    srgb_gamma,
    srgb_to_linear,
    white_patch_gains,
    xyz_from_camera_to_srgb,
)
from isplab.errors import InvalidInputError, UnsupportedCFAError
from isplab.raw.cfa import BAYER_PATTERNS, mosaic, pack, packed_offsets, unpack

with warnings.catch_warnings():  # colour warns that matplotlib is missing
    warnings.simplefilter("ignore")
    import colour_demosaicing as cdm

skimage_data = pytest.importorskip("skimage.data")
skimage_exposure = pytest.importorskip("skimage.exposure")
skimage_color = pytest.importorskip("skimage.color")

# The Canon EOS 550D XYZ -> camera matrix (dcraw's adobe_coeff table, / 10000).
CANON_550D_XYZ_TO_CAM = np.array(
    [[6941, -1164, -857], [-3825, 11597, 2534], [-416, 1540, 6039]], dtype=np.float64
) / 10000


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def astro() -> np.ndarray:
    """A 128 x 160 crop of skimage's astronaut, H x W x 3 float64 in [0, 1]."""
    return skimage_data.astronaut()[100:228, 150:310].astype(np.float64) / 255.0


def to_t(hwc: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """H x W x C NumPy -> 1 x C x H x W tensor."""
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1)[None].to(dtype)


def to_np(t: torch.Tensor) -> np.ndarray:
    """1 x C x H x W tensor -> H x W x C float64 NumPy."""
    return t[0].permute(1, 2, 0).detach().double().numpy()


def np_mosaic(hwc: np.ndarray, pattern: str) -> np.ndarray:
    """Slow reference mosaic: pick the CFA colour at each pixel (pattern read row by row).

    Values are rounded to float32 so that isplab (float32) and the float64 references see
    the same numbers: Menon's directional decisions can flip on a rounding difference.
    """
    idx = {"R": 0, "G": 1, "B": 2}
    out = np.empty(hwc.shape[:2])
    for y in range(hwc.shape[0]):
        for x in range(hwc.shape[1]):
            out[y, x] = hwc[y, x, idx[pattern[2 * (y % 2) + x % 2]]]
    return out.astype(np.float32).astype(np.float64)


def cpsnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def iec_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding."""
    x = np.clip(x, 0.0, None)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def bt709(x: np.ndarray) -> np.ndarray:
    """ITU-R BT.709 opto-electronic transfer function."""
    return np.where(x < 0.018, 4.5 * x, 1.099 * np.power(x, 0.45) - 0.099)


def luma601(rgb: np.ndarray) -> np.ndarray:
    """Y of YCbCr (ITU-R BT.601 weights), H x W x 3 -> H x W."""
    return rgb @ np.array([0.299, 0.587, 0.114])


# ----------------------------------------------------------------------------- demosaic

REFERENCES = {
    "bilinear": (demosaic_bilinear, cdm.demosaicing_CFA_Bayer_bilinear),
    "malvar2004": (demosaic_malvar2004, cdm.demosaicing_CFA_Bayer_Malvar2004),
}


def test_mosaic_helper_matches_slow_reference(astro):
    for p in BAYER_PATTERNS:
        m = mosaic(to_t(astro[:10, :12]), p)
        np.testing.assert_array_equal(m[0, 0].double().numpy(), np_mosaic(astro[:10, :12], p))


@pytest.mark.parametrize("method", ["bilinear", "malvar2004"])
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_demosaic_matches_colour_demosaicing_interior(astro, method, pattern):
    ours, ref = REFERENCES[method]
    cfa = np_mosaic(astro, pattern)
    expected = ref(cfa, pattern)
    got = to_np(ours(torch.from_numpy(cfa)[None, None].float(), pattern))
    assert got.shape == expected.shape == astro.shape
    # isplab mirrors the border keeping the CFA phase, colour-demosaicing pads
    # symmetrically: only the interior (2 pixels in) is comparable.
    np.testing.assert_allclose(got[2:-2, 2:-2], expected[2:-2, 2:-2], atol=1e-5, rtol=0)
    # ... and the border really differs, so the comparison above is not vacuous
    assert np.abs(got - expected).max() > 1e-3


@pytest.mark.parametrize("method", ["bilinear", "malvar2004"])
@pytest.mark.parametrize("shape", [(33, 47), (34, 47), (33, 46)])
def test_demosaic_odd_sizes_match_colour_demosaicing(astro, method, shape):
    ours, ref = REFERENCES[method]
    for pattern in ("RGGB", "GBRG"):
        cfa = np_mosaic(astro[: shape[0], : shape[1]], pattern)
        got = to_np(ours(torch.from_numpy(cfa)[None, None].float(), pattern))
        assert got.shape == (*shape, 3)
        expected = ref(cfa, pattern)
        np.testing.assert_allclose(got[2:-2, 2:-2], expected[2:-2, 2:-2], atol=1e-5, rtol=0)


def test_demosaic_keeps_measured_samples(astro):
    """Every method returns the measured colour unchanged at each CFA site."""
    for pattern in BAYER_PATTERNS:
        m = mosaic(to_t(astro[:32, :40]), pattern)
        for method in DEMOSAIC_METHODS:
            rgb = demosaic(m, pattern, method)
            for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
                c = (0, 1, 1, 2)[ch]
                torch.testing.assert_close(
                    rgb[:, c, dy::2, dx::2], m[:, 0, dy::2, dx::2], atol=1e-6, rtol=0
                )


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_constant_grey_demosaics_to_constant_everywhere(method, pattern):
    for shape in ((16, 20), (15, 21), (4, 4)):
        m = torch.full((1, 1, *shape), 0.37)
        rgb = demosaic(m, pattern, method)
        assert rgb.shape == (1, 3, *shape)
        torch.testing.assert_close(rgb, torch.full_like(rgb, 0.37), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
def test_demosaic_batch_equals_each_image(astro, method):
    a = mosaic(to_t(astro[:40, :48]), "BGGR")
    b = mosaic(to_t(astro[60:100, 90:138]), "BGGR")
    both = demosaic(torch.cat([a, b]), "BGGR", method)
    assert both.shape == (2, 3, 40, 48)
    torch.testing.assert_close(both[:1], demosaic(a, "BGGR", method), atol=1e-7, rtol=0)
    torch.testing.assert_close(both[1:], demosaic(b, "BGGR", method), atol=1e-7, rtol=0)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_menon2007_matches_colour_demosaicing_everywhere(astro, pattern):
    """isplab calls colour-demosaicing on the whole image, so even the border agrees."""
    cfa = np_mosaic(astro, pattern)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cdm.demosaicing_CFA_Bayer_Menon2007(cfa, pattern)
    got = to_np(demosaic(torch.from_numpy(cfa)[None, None].float(), pattern, "menon2007"))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_demosaic_quality_order_on_a_photo(astro):
    """On a re-mosaiced photo: menon2007 > malvar2004 > bilinear in CPSNR (the interior)."""
    rgb = to_t(astro)
    for pattern in ("RGGB", "GRBG"):
        m = mosaic(rgb, pattern)
        score = {
            k: cpsnr(to_np(demosaic(m, pattern, k).clamp(0, 1))[2:-2, 2:-2], astro[2:-2, 2:-2])
            for k in DEMOSAIC_METHODS
        }
        assert score["malvar2004"] > score["bilinear"] + 3.0, score
        assert score["menon2007"] > score["malvar2004"], score
        assert score["bilinear"] > 25.0, score


def test_demosaic_method_name_case_and_unknown():
    m = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(demosaic(m, "rggb", "Malvar2004"), demosaic_malvar2004(m, "RGGB"))
    with pytest.raises(ValueError, match="bilinear, malvar2004, menon2007") as err:
        demosaic(m, "RGGB", "ahd")
    assert "'ahd'" in str(err.value)
    with pytest.raises(UnsupportedCFAError, match="RGGB"):
        demosaic(m, "XTRANS", "bilinear")
    with pytest.raises(InvalidInputError, match="N x 1 x H x W"):
        demosaic(torch.rand(1, 3, 8, 8), "RGGB")


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
@pytest.mark.parametrize("shape", [(1, 4), (5, 1)])
def test_demosaic_rejects_mosaic_without_a_2x2_block(method, shape):
    with pytest.raises(InvalidInputError, match="2x2"):
        demosaic(torch.full((1, 1, *shape), 0.3), "RGGB", method)


# ----------------------------------------------------------------------------- levels


def np_normalize(raw: np.ndarray, blacks, white, pattern, clip):
    out = np.empty_like(raw, dtype=np.float64)
    b4 = np.broadcast_to(np.asarray(blacks, dtype=np.float64), (4,))
    for y in range(raw.shape[0]):
        for x in range(raw.shape[1]):
            block = (y % 2, x % 2)
            ch = packed_offsets(pattern).index(block)
            out[y, x] = (raw[y, x] - b4[ch]) / (white - b4[ch])
    return np.clip(out, 0, 1) if clip else out


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("clip", [True, False])
def test_normalize_levels_per_channel(pattern, clip):
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 1100, size=(9, 12)).astype(np.float64)  # below black, above white
    raw[:2, :2] = [[64, 60], [62, 66]]
    blacks = (64, 60, 62, 66)
    got = normalize_levels(torch.from_numpy(raw)[None, None].float(), blacks, 1023, pattern, clip)
    expected = np_normalize(raw, blacks, 1023, pattern, clip)
    np.testing.assert_allclose(got[0, 0].double().numpy(), expected, atol=1e-6, rtol=0)
    if clip:
        assert got.min() >= 0 and got.max() <= 1
    else:
        assert got.min() < 0 and got.max() > 1


def test_normalize_levels_known_values():
    # RGGB 2x2 block, blacks (R, G1, G2, B) = (64, 60, 62, 66): each site at its black,
    # then each site at white, then half way.
    blacks = (64, 60, 62, 66)
    at_black = torch.tensor([[[[64.0, 60.0], [62.0, 66.0]]]])
    torch.testing.assert_close(normalize_levels(at_black, blacks, 1023), torch.zeros_like(at_black))
    at_white = torch.full((1, 1, 2, 2), 1023.0)
    torch.testing.assert_close(normalize_levels(at_white, blacks, 1023), torch.ones_like(at_white))
    # BGGR puts B at (0, 0): the black of B (66) must be used there.
    v = normalize_levels(torch.full((1, 1, 2, 2), 100.0), blacks, 1023, "BGGR")
    # BGGR: B at (0, 0), G2 (blue row) at (0, 1), G1 (red row) at (1, 0), R at (1, 1)
    expected = torch.tensor([[[[34 / 957, 38 / 961], [40 / 963, 36 / 959]]]])
    torch.testing.assert_close(v, expected)
    # a single black level
    v = normalize_levels(torch.tensor([[[[512.0, 0.0], [2000.0, 1023.0]]]]), 0, 1024, clip=False)
    torch.testing.assert_close(v, torch.tensor([[[[0.5, 0.0], [2000 / 1024, 1023 / 1024]]]]))


def test_normalize_levels_rejects_bad_levels():
    m = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="must exceed black"):
        normalize_levels(m, 1023, 1023)
    with pytest.raises(ValueError, match="must exceed black"):
        normalize_levels(m, (64, 60, 1100, 66), 1023)
    with pytest.raises(ValueError, match="1 or 4 values"):
        normalize_levels(m, (64, 60), 1023)


# ----------------------------------------------------------------------------- white balance


def cast_grey_scene(cast, shape=(32, 40), seed=3) -> np.ndarray:
    """A textured grey scene (same value in R, G, B) multiplied by a per-channel cast.

    The texture is constant over each 2x2 block, and its top 5 % sit exactly at 0.6, so that
    the R, G and B samples of any Bayer mosaic of it have the same mean and the same 99th
    percentile: the known gains are then exact for mosaic and packed input too.
    """
    rng = np.random.default_rng(seed)
    lum = 0.05 + 0.55 * rng.random((shape[0] // 2, shape[1] // 2))
    lum[lum > np.quantile(lum, 0.95)] = 0.6
    lum = np.kron(lum, np.ones((2, 2)))
    return lum[..., None] * np.asarray(cast, dtype=np.float64)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_white_balance_rgb_packed_mosaic_consistent(astro, pattern):
    gains = (2.1, 1.0, 1.6)
    rgb = to_t(astro[:24, :32])
    m = mosaic(rgb, pattern)
    wb_mosaic = apply_white_balance(m, gains, cfa=pattern)
    # mosaic WB then pack == pack then packed WB
    torch.testing.assert_close(
        pack(wb_mosaic, pattern), apply_white_balance(pack(m, pattern), gains), rtol=0, atol=0
    )
    # RGB WB then mosaic == mosaic then WB
    torch.testing.assert_close(
        mosaic(apply_white_balance(rgb, gains), pattern), wb_mosaic, rtol=0, atol=0
    )
    # against NumPy
    expected = astro[:24, :32] * np.array(gains)
    np.testing.assert_allclose(to_np(apply_white_balance(rgb, gains)), expected, atol=1e-6)


def test_white_balance_clip_and_batch_gains():
    x = torch.full((2, 3, 4, 4), 0.6)
    g = torch.tensor([[2.0, 1.0, 1.5], [1.0, 1.0, 0.5]])
    out = apply_white_balance(x, g)
    assert out[0, 0].max().item() == pytest.approx(1.2)
    torch.testing.assert_close(out[1, 2], torch.full((4, 4), 0.3))
    clipped = apply_white_balance(x, g, clip=True)
    assert clipped.max().item() == 1.0
    torch.testing.assert_close(clipped[0, 2], torch.full((4, 4), 0.9))
    # per-image gains on a mosaic batch
    m = torch.full((2, 1, 4, 4), 0.5)
    out = apply_white_balance(m, g, cfa="GRBG")
    # GRBG: R at (0, 1), B at (1, 0), greens on the diagonal
    torch.testing.assert_close(out[:, 0, 0, 1], torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(out[:, 0, 1, 0], torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="cfa"):
        apply_white_balance(torch.rand(1, 1, 4, 4), (2, 1, 1.5))
    with pytest.raises(InvalidInputError, match="positive"):
        apply_white_balance(x, (2, 0, 1.5))
    with pytest.raises(InvalidInputError, match="3 values or N x 3"):
        apply_white_balance(x, (2, 1))


@pytest.mark.parametrize("estimator", [gray_world_gains, white_patch_gains])
def test_wb_estimators_recover_known_cast(estimator):
    cast = (0.6, 1.2, 0.9)
    expected = np.array([[1.2 / 0.6, 1.0, 1.2 / 0.9]])  # inverse of the cast, G = 1
    scene = cast_grey_scene(cast)
    rgb = to_t(scene)
    np.testing.assert_allclose(estimator(rgb).numpy(), expected, rtol=1e-5)
    for pattern in BAYER_PATTERNS:
        m = mosaic(rgb, pattern)
        np.testing.assert_allclose(estimator(m, cfa=pattern).numpy(), expected, rtol=1e-5)
        np.testing.assert_allclose(estimator(pack(m, pattern)).numpy(), expected, rtol=1e-5)
    # white-balancing with the estimate makes the scene neutral
    balanced = to_np(apply_white_balance(rgb, estimator(rgb)))
    np.testing.assert_allclose(balanced[..., 0], balanced[..., 1], rtol=1e-5)
    np.testing.assert_allclose(balanced[..., 2], balanced[..., 1], rtol=1e-5)


@pytest.mark.parametrize("estimator", [gray_world_gains, white_patch_gains])
def test_wb_estimators_ignore_saturated_pixels(estimator):
    cast = (0.5, 1.0, 0.8)
    expected = np.array([[2.0, 1.0, 1.25]])
    scene = cast_grey_scene(cast)
    scene[:12, :] = 1.0  # a clipped highlight (even rows): white in all channels
    rgb = to_t(scene)
    np.testing.assert_allclose(estimator(rgb).numpy(), expected, rtol=1e-5)
    m = mosaic(rgb, "GRBG")
    np.testing.assert_allclose(estimator(m, cfa="GRBG").numpy(), expected, rtol=1e-5)
    # counting the clipped pixels would bias the estimate (so the test can fail)
    biased = estimator(rgb, saturation=1.5).numpy()
    assert np.abs(biased - expected).max() > 0.05


def test_wb_estimators_per_image_in_batch():
    a = to_t(cast_grey_scene((0.5, 1.0, 0.8)))
    b = to_t(cast_grey_scene((1.0, 1.0, 0.25), seed=4))
    g = gray_world_gains(torch.cat([a, b]))
    np.testing.assert_allclose(g.numpy(), [[2.0, 1.0, 1.25], [1.0, 1.0, 4.0]], rtol=1e-5)


# ----------------------------------------------------------------------------- colour


def test_apply_color_matrix_against_einsum():
    rng = np.random.default_rng(11)
    rgb = rng.random((3, 3, 5, 7)).astype(np.float32)
    m = rng.normal(size=(3, 3))
    got = apply_color_matrix(torch.from_numpy(rgb), m).numpy()
    np.testing.assert_allclose(got, np.einsum("ij,njhw->nihw", m, rgb), atol=1e-5)
    ms = rng.normal(size=(3, 3, 3))
    got = apply_color_matrix(torch.from_numpy(rgb), torch.from_numpy(ms)).numpy()
    np.testing.assert_allclose(got, np.einsum("nij,njhw->nihw", ms, rgb), atol=1e-5)
    ident = apply_color_matrix(torch.from_numpy(rgb), np.eye(3)).numpy()
    np.testing.assert_array_equal(ident, rgb)
    with pytest.raises(InvalidInputError, match="3x3 or N x 3 x 3"):
        apply_color_matrix(torch.from_numpy(rgb), np.eye(4))
    with pytest.raises(InvalidInputError, match="3x3 or N x 3 x 3"):
        apply_color_matrix(torch.from_numpy(rgb), np.stack([np.eye(3)] * 2))


def test_camera_to_srgb_from_xyz():
    m = camera_to_srgb_from_xyz(CANON_550D_XYZ_TO_CAM)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)  # white -> white
    # dcraw's recipe written out: normalise rows of (xyz->cam @ srgb->xyz), invert
    cam_rgb = CANON_550D_XYZ_TO_CAM @ SRGB_TO_XYZ
    cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(m, np.linalg.inv(cam_rgb), atol=1e-12)
    # a camera whose primaries are sRGB needs no correction
    np.testing.assert_allclose(camera_to_srgb_from_xyz(XYZ_TO_SRGB), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(XYZ_TO_SRGB @ SRGB_TO_XYZ, np.eye(3), atol=1e-12)
    # round trip through xyz_from_camera_to_srgb
    np.testing.assert_allclose(camera_to_srgb_from_xyz(xyz_from_camera_to_srgb(m)), m, atol=1e-10)
    with pytest.raises(InvalidInputError, match="3x3"):
        camera_to_srgb_from_xyz(np.eye(2))
    with pytest.raises(InvalidInputError, match="white to zero"):
        camera_to_srgb_from_xyz(np.diag([1.0, 1.0, 0.0]) @ XYZ_TO_SRGB)


def test_xyz_from_camera_to_srgb_round_trip_random_matrix():
    rng = np.random.default_rng(5)
    m = np.eye(3) + 0.3 * rng.normal(size=(3, 3))
    m /= m.sum(axis=1, keepdims=True)  # rows sum to 1
    np.testing.assert_allclose(camera_to_srgb_from_xyz(xyz_from_camera_to_srgb(m)), m, atol=1e-10)


# ----------------------------------------------------------------------------- tone


@pytest.fixture(scope="module")
def ramp() -> torch.Tensor:
    return torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)


def test_srgb_gamma_against_iec(ramp):
    x = ramp[None, None, None].expand(1, 3, 1, -1).float()
    got = srgb_gamma(x).double().numpy()
    np.testing.assert_allclose(got, iec_srgb(x.double().numpy()), atol=1e-6, rtol=0)
    # negative input clipped, and the linear toe
    assert srgb_gamma(torch.full((1, 3, 1, 1), -0.5)).abs().max().item() == 0.0
    v = srgb_gamma(torch.full((1, 3, 1, 1), 0.002)).flatten()[0].item()
    assert v == pytest.approx(12.92 * 0.002, rel=1e-5)
    # round trip
    torch.testing.assert_close(srgb_to_linear(srgb_gamma(x)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(srgb_gamma(srgb_to_linear(x)), x, atol=1e-5, rtol=0)


def test_gamma_curve_known_curves(ramp):
    x = ramp.numpy()
    # dcraw derives the sRGB toe for a continuous slope, slightly off the IEC constants
    np.testing.assert_allclose(gamma_curve(ramp, 2.4, 12.92).numpy(), iec_srgb(x), atol=1e-3)
    np.testing.assert_allclose(gamma_curve(ramp, 2.222, 4.5).numpy(), bt709(x), atol=2e-3)
    assert gamma_curve(ramp, 2.4, 12.92)[-1].item() == pytest.approx(1.0, abs=1e-9)
    assert gamma_curve(ramp, 2.4, 12.92)[0].item() == 0.0
    np.testing.assert_allclose(gamma_curve(ramp, 1, 1).numpy(), x, atol=0)
    xs = torch.tensor([-0.2, 0.3, 1.7])
    torch.testing.assert_close(gamma_curve(xs, 1, 1), torch.tensor([0.0, 0.3, 1.0]))
    y = gamma_curve(ramp, 2.222, 4.5)
    assert torch.all(torch.diff(y) >= 0)
    np.testing.assert_allclose(power_gamma(ramp, 2.2).numpy(), x ** (1 / 2.2), atol=1e-12)


def test_gamma_curve_continuous_at_toe():
    """dcraw's construction: value and slope of the two segments meet at the threshold."""
    x = torch.linspace(0.0, 0.05, 50001, dtype=torch.float64)
    for power, slope in ((2.4, 12.92), (2.222, 4.5)):
        y = gamma_curve(x, power, slope)
        d = torch.diff(y) / torch.diff(x)
        assert torch.diff(d).abs().max().item() < 1e-2 * slope  # no jump in the derivative
        assert torch.diff(y).abs().max().item() < 2 * slope * 1e-6  # no jump in the value


def test_smoothstep_round_trip(ramp):
    np.testing.assert_allclose(
        smoothstep(ramp).numpy(), 3 * ramp.numpy() ** 2 - 2 * ramp.numpy() ** 3, atol=1e-12
    )
    torch.testing.assert_close(inverse_smoothstep(smoothstep(ramp)), ramp, atol=1e-9, rtol=0)
    torch.testing.assert_close(smoothstep(inverse_smoothstep(ramp)), ramp, atol=1e-9, rtol=0)
    xf = ramp.float()
    # float32 loses precision near 0 and 1 (asin is steep there)
    torch.testing.assert_close(inverse_smoothstep(smoothstep(xf)), xf, atol=2e-4, rtol=0)


def test_filmic():
    x = torch.linspace(0.0, 8.0, 4001)
    y = filmic(x, white=4.0)
    assert y[0].item() == 0.0
    assert filmic(torch.tensor([4.0]), white=4.0).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(torch.diff(y) >= 0)
    assert torch.all(torch.diff(y[x < 4.0]) > 0)  # strictly increasing below white
    assert y.max().item() <= 1.0
    assert torch.all(y[x >= 4.0] == 1.0)
    # a shoulder: compresses highlights more than shadows
    assert (y[500] / x[500]) > (y[1500] / x[1500])


def test_exposure():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(exposure(x, 1), 2 * x)
    torch.testing.assert_close(exposure(x, -2.0), x / 4)
    out = exposure(x, torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(out[0], 2 * x[0])
    torch.testing.assert_close(out[1], x[1] / 2)


def test_auto_bright_gain_on_random_data():
    rng = np.random.default_rng(9)
    img = rng.random((2, 3, 64, 80)) * np.array([0.2, 0.45, 0.3])[None, :, None, None]
    img[1] *= 0.5
    t = torch.from_numpy(img).float()
    gains = auto_bright_gain(t)
    assert gains.shape == (2,)
    for i in range(2):
        q99 = max(np.quantile(img[i, c], 0.99) for c in range(3))  # brightest channel
        assert gains[i].item() * q99 == pytest.approx(1.0, abs=2e-3)
        # at most ~1 % of the pixels clip
        clipped = (img[i] * gains[i].item() > 1.0).any(axis=0).mean()
        assert clipped <= 0.011
    assert gains[1].item() == pytest.approx(2 * gains[0].item(), rel=2e-3)
    # a stricter threshold gives a smaller gain
    assert auto_bright_gain(t, threshold=0.001)[0] < gains[0]


def test_auto_bright_gain_never_darkens():
    gen = torch.Generator().manual_seed(3)
    bright = torch.rand(1, 3, 32, 32, generator=gen)
    bright[..., :4, :] = 1.0  # 12 % clipped: the 99th percentile is 1 already
    assert auto_bright_gain(bright).item() == 1.0
    assert auto_bright_gain(torch.ones(1, 3, 8, 8)).item() == 1.0
    for scale in (0.05, 0.5, 0.99, 1.0):
        x = torch.rand(2, 3, 16, 16, generator=gen) * scale
        assert torch.all(auto_bright_gain(x) >= 1.0)


def test_auto_bright_gain_values_above_one():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 0.25
    x[..., :16, :] = 2.0  # half the pixels above white: the 99th percentile is 2
    assert auto_bright_gain(x).item() == 1.0
    assert auto_bright_gain(torch.full((1, 3, 8, 8), 2.0)).item() == 1.0


# ----------------------------------------------------------------------------- histogram


def test_equalize_channel_matches_skimage():
    rng = np.random.default_rng(21)
    img = (rng.random((64, 80)) ** 2).astype(np.float32)
    img.flat[0], img.flat[1] = 0.0, 1.0  # skimage bins over [min, max]: make it [0, 1]
    expected = skimage_exposure.equalize_hist(img, nbins=256)
    got = equalize_channel(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
    # the output histogram is close to flat
    hist = np.histogram(got, bins=8, range=(0, 1))[0] / got.size
    assert np.abs(hist - 1 / 8).max() < 0.02


def test_equalize_channel_monotonic_and_batched():
    rng = np.random.default_rng(22)
    imgs = torch.from_numpy(rng.random((2, 1, 16, 16)).astype(np.float32) ** 3)
    out = equalize_channel(imgs)
    for i in range(2):
        order = torch.argsort(imgs[i].flatten())
        assert torch.all(torch.diff(out[i].flatten()[order]) >= 0)
        torch.testing.assert_close(out[i : i + 1], equalize_channel(imgs[i : i + 1]))


def low_contrast(astro: np.ndarray) -> torch.Tensor:
    return to_t(0.35 + 0.3 * astro)


def test_histogram_equalize_spreads_lightness_keeps_hue(astro):
    src = low_contrast(astro)
    out = histogram_equalize(src)
    assert out.shape == src.shape
    assert out.min() >= 0 and out.max() <= 1
    lab0 = skimage_color.rgb2lab(to_np(src))
    lab1 = skimage_color.rgb2lab(to_np(out))
    assert lab1[..., 0].std() > 2 * lab0[..., 0].std()
    assert lab1[..., 0].max() - lab1[..., 0].min() > 90  # spans nearly 0..100
    da = np.abs(lab1[..., 1:] - lab0[..., 1:])
    assert np.median(da) < 0.05 and da.mean() < 0.2  # a*, b* kept (but gamut clipping)
    # grey input is equalised directly
    grey = src[:, :1]
    torch.testing.assert_close(histogram_equalize(grey), equalize_channel(grey))


def test_clahe_increases_contrast(astro):
    src = low_contrast(astro)
    out = clahe(src, clip_limit=2.0, grid_size=(4, 4))
    assert out.shape == src.shape
    assert out.min() >= 0 and out.max() <= 1
    lab0 = skimage_color.rgb2lab(to_np(src))
    lab1 = skimage_color.rgb2lab(to_np(out))
    assert lab1[..., 0].std() > 1.2 * lab0[..., 0].std()
    assert np.abs(lab1[..., 1:] - lab0[..., 1:]).max() < 0.05  # colour kept
    grey = clahe(src[:, :1])
    assert grey.shape == (1, 1, *src.shape[-2:])
    assert grey.min() >= 0 and grey.max() <= 1


# ----------------------------------------------------------------------------- denoise


def noisy_flat(std=0.02, seed=31) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(0.5 + std * rng.standard_normal((1, 3, 64, 64))).float()


def test_denoise_strength_zero_is_identity(astro):
    x = to_t(astro[:32, :32])
    assert torch.equal(denoise(x, 0.0), x)
    assert torch.equal(denoise(x, 0.0, chroma_only=True), x)


def test_denoise_reduces_noise():
    x = noisy_flat()
    out = denoise(x, 0.05)
    assert out.shape == x.shape
    assert out.std().item() < 0.5 * x.std().item()
    assert out.mean().item() == pytest.approx(x.mean().item(), abs=2e-3)


def test_denoise_chroma_only_keeps_luma(astro):
    x = to_t(np.clip(astro[:48, :48] + np.random.default_rng(4).normal(0, 0.03, (48, 48, 3)),
                     0, 1))
    out = denoise(x, 0.05, chroma_only=True)
    # kornia's ycbcr_to_rgb clips to [0, 1]: where the filtered chroma leaves the RGB gamut
    # (a few dark, noisy pixels) luma moves a little; everywhere else it is kept exactly.
    y_out, y_in = luma601(to_np(out)), luma601(to_np(x))
    inside = ((to_np(out) > 0) & (to_np(out) < 1)).all(axis=-1)
    assert inside.mean() > 0.95
    np.testing.assert_allclose(y_out[inside], y_in[inside], atol=1e-5)
    assert np.abs(y_out - y_in).max() < 1e-2
    assert not torch.allclose(out, x, atol=1e-3)  # chroma did change
    # and on a flat patch the colour noise goes down
    flat = noisy_flat()
    y = to_np(denoise(flat, 0.05, chroma_only=True))
    cb = y @ np.array([-0.168736, -0.331264, 0.5])
    cb0 = to_np(flat) @ np.array([-0.168736, -0.331264, 0.5])
    assert cb.std() < 0.8 * cb0.std()


# ----------------------------------------------------------------------------- ClassicISP


def linear_isp(**kw) -> ClassicISP:
    kw.setdefault("no_auto_bright", True)
    return ClassicISP(**kw)


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
def test_isp_packed_equals_rggb_mosaic(astro, method):
    packed = pack(mosaic(to_t(astro[:32, :48] * 0.8), "RGGB"), "RGGB")
    isp = ClassicISP(demosaic_algorithm=method)
    wb = (1.8, 1.0, 1.4)
    cm = camera_to_srgb_from_xyz(CANON_550D_XYZ_TO_CAM)
    a = isp(packed, wb_gains=wb, color_matrix=cm)
    b = isp(unpack(packed, "RGGB"), cfa="RGGB", wb_gains=wb, color_matrix=cm)
    assert a.shape == (1, 3, 32, 48)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # the cfa argument is ignored for packed input
    torch.testing.assert_close(isp(packed, cfa="BGGR", wb_gains=wb, color_matrix=cm), a)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_isp_neutral_scene_develops_neutral(pattern):
    gains = (2.2, 1.0, 1.5)
    grey = 0.4
    scene = np.full((16, 20, 3), grey) / np.array(gains)  # what the camera saw
    m = mosaic(to_t(scene), pattern)
    expected = gamma_curve(torch.tensor(grey, dtype=torch.float64), 2.4, 12.92).item()
    cm = camera_to_srgb_from_xyz(CANON_550D_XYZ_TO_CAM)  # rows sum to 1: keeps neutrals
    runs = {
        "user_wb": linear_isp(user_wb=gains)(m, cfa=pattern),
        "camera_wb": linear_isp()(m, cfa=pattern, wb_gains=gains),
        "matrix": linear_isp(user_wb=gains)(m, cfa=pattern, color_matrix=cm),
        "gray_world": linear_isp(use_auto_wb=True)(m, cfa=pattern),
        "white_patch": linear_isp(use_auto_wb=True, auto_wb_method="white_patch")(m, cfa=pattern),
        "malvar": linear_isp(user_wb=gains, demosaic_algorithm="malvar2004")(m, cfa=pattern),
    }
    for name, out in runs.items():
        assert out.shape == (1, 3, 16, 20), name
        np.testing.assert_allclose(out.numpy(), expected, atol=2e-5, err_msg=name)
    # without white balance it is not neutral
    cast = linear_isp(use_camera_wb=False)(m, cfa=pattern, wb_gains=gains)
    assert (cast[:, 1] - cast[:, 0]).abs().min() > 0.1


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_isp_half_size(astro, pattern):
    m = mosaic(to_t(astro[:32, :46] * 0.9), pattern)
    out = linear_isp(half_size=True)(m, cfa=pattern)
    assert out.shape == (1, 3, 16, 23)
    p = pack(m, pattern).double()
    rgb = torch.stack([p[:, 0], (p[:, 1] + p[:, 2]) / 2, p[:, 3]], dim=1)
    torch.testing.assert_close(out.double(), gamma_curve(rgb, 2.4, 12.92), atol=1e-6, rtol=0)
    # odd sizes: the last row/column is dropped
    odd = linear_isp(half_size=True)(m[..., :31, :45], cfa=pattern)
    torch.testing.assert_close(odd, out[..., :15, :22])


@pytest.mark.parametrize("method", ["bilinear", "malvar2004"])
def test_isp_strips_equal_one_pass(astro, method):
    """Inference (no grad) runs in strips of rows: it must equal the single pass."""
    big = np.concatenate([astro, astro[::-1], astro[:49]], axis=0)[:, :64]  # 305 rows
    m = mosaic(to_t(big), "GRBG")
    isp = ClassicISP(demosaic_algorithm=method, user_wb=(1.5, 1.0, 1.2))
    one_pass = isp(m, cfa="GRBG")  # grad enabled: no strips in the linear stages
    with torch.no_grad():
        strips = isp(m, cfa="GRBG")
    torch.testing.assert_close(strips, one_pass, atol=1e-6, rtol=0)


def test_isp_output_range_and_input_untouched(astro):
    m = mosaic(to_t(astro[:32, :32]), "BGGR")
    before = m.clone()
    for kw in ({}, {"tone": "filmic"}, {"tone": "smoothstep"}, {"denoise_strength": 0.05},
               {"gamma": (1, 1)}, {"gamma": (2.222, 4.5)}):
        out = ClassicISP(**kw)(m, cfa="BGGR", wb_gains=(3.0, 1.0, 2.0))
        assert out.min() >= 0 and out.max() <= 1, kw
    assert torch.equal(m, before)
    # auto-bright brightens a dark image
    dark = m * 0.2
    assert ClassicISP()(dark, cfa="BGGR").mean() > linear_isp()(dark, cfa="BGGR").mean()


def test_isp_invalid_options():
    with pytest.raises(InvalidInputError, match="unknown demosaic algorithm 'ahd'.*bilinear"):
        ClassicISP(demosaic_algorithm="ahd")
    for bad in ((1.0, 2.0), (2.0, -1.0, 1.0), (2.0, float("nan"), 1.0)):
        with pytest.raises(InvalidInputError, match="user_wb must be 3 positive gains"):
            ClassicISP(user_wb=bad)
    with pytest.raises(InvalidInputError, match="unknown tone curve"):
        ClassicISP(tone="reinhard")
    with pytest.raises(InvalidInputError, match="unknown auto white balance"):
        ClassicISP(auto_wb_method="retinex")
    with pytest.raises(InvalidInputError, match="auto_bright_thr"):
        ClassicISP(auto_bright_thr=1.5)
    with pytest.raises(InvalidInputError, match="gamma"):
        ClassicISP(gamma=(0, 1))
    isp = ClassicISP()
    x = torch.rand(1, 4, 8, 8)
    x[0, 1, 2, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        isp(x)
    with pytest.raises(InvalidInputError, match="N x 4 x h x w or a mosaic"):
        isp(torch.rand(1, 3, 8, 8))
    with pytest.raises(UnsupportedCFAError):
        isp(torch.rand(1, 1, 8, 8), cfa="RGBW")


@pytest.mark.parametrize("method", ["bilinear", "malvar2004"])
def test_isp_gradients_flow(astro, method):
    x = to_t(astro[:16, :16] * 0.7 + 0.1)
    x = mosaic(x, "RGGB").requires_grad_(True)
    cm = torch.tensor(camera_to_srgb_from_xyz(CANON_550D_XYZ_TO_CAM), dtype=torch.float32)
    cm.requires_grad_(True)
    isp = linear_isp(demosaic_algorithm=method, user_wb=(1.3, 1.0, 1.2), tone="smoothstep")
    out = isp(x, color_matrix=cm)
    assert out.requires_grad
    out.mean().backward()
    for g in (x.grad, cm.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_isp_gradcheck():
    """Analytic gradients match finite differences (float64, away from clip points)."""
    x = 0.2 + 0.5 * torch.rand(1, 1, 6, 6, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(8))
    x.requires_grad_(True)
    isp = linear_isp(demosaic_algorithm="malvar2004", use_camera_wb=False)
    assert torch.autograd.gradcheck(lambda v: isp(v, cfa="GBRG"), (x,), eps=1e-6, atol=1e-5)


def test_auto_white_balance_ignores_pixels_with_a_clipped_channel():
    """Issue 20.6: on the openISP chart 17 % of green samples clip; counting the red and
    blue of those pixels while dropping their green turned the white background mint (red
    gain 1.50). Whole pixels with any clipped channel are left out: 1.59."""
    from isplab.classic.illuminant import usable_mask
    from isplab.classic.white_balance import gray_world_gains
    from isplab.raw import read
    from tests.conftest import RGGB_10BIT, need

    raw = read(need(RGGB_10BIT), width=1920, height=1080, bit_depth=10, cfa="RGGB")
    gains = gray_world_gains(raw.packed())
    assert float(gains[0, 0]) == pytest.approx(1.59, abs=0.01)
    # a synthetic grey card with a clipped highlight keeps unit gains
    grey = torch.full((1, 3, 8, 8), 0.4)
    grey[..., :4, :] = torch.tensor([1.0, 1.0, 0.7]).view(1, 3, 1, 1)  # clipped R and G
    assert torch.allclose(gray_world_gains(grey), torch.ones(1, 3))
    pixels = np.array([[[0.5, 0.5, 0.5], [1.0, 0.5, 0.2], [0.001, 0.001, 0.0005]]])
    assert usable_mask(pixels).tolist() == [[True, False, False]]
