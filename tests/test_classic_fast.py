"""The 16-bit OpenCV inference path (isplab.classic.fast) against the torch ClassicISP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isplab.classic import ClassicISP, auto_bright_gain, demosaic_bilinear, fast
from isplab.classic.light import LightISP, covers
from isplab.errors import InvalidInputError
from isplab.io import to_uint
from isplab.raw import RawImage, mosaic, read
from isplab.sample import make_sample_raw
from tests.conftest import BGGR_12BIT, CANON_DNG, RGGB_10BIT, need


def psnr16(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(65535.0**2 / mse))


def photo_raw(pattern: str, shape=(96, 128), seed=0, **kw) -> RawImage:
    """A smooth random scene with highlights, re-mosaiced in ``pattern``."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, shape[0] // 8, shape[1] // 8, generator=g)
    rgb = torch.nn.functional.interpolate(low, size=shape, mode="bicubic").clamp(0, 1)
    rgb = (rgb * 1.2).clamp(0, 1) ** 2  # some clipped pixels, dark shadows
    m = mosaic(rgb, pattern)[0, 0].numpy()
    matrix = np.array([[1.7, -0.5, -0.2], [-0.3, 1.6, -0.3], [0.0, -0.6, 1.6]])
    return RawImage(m, cfa=pattern, wb_gains=kw.pop("wb", (1.9, 1.0, 1.4)),
                    camera_to_srgb=matrix, **kw)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_demosaic_uint16_equals_torch_bilinear_everywhere(pattern, rng):
    m = rng.random((34, 50)).astype(np.float32)
    ref = demosaic_bilinear(torch.from_numpy(m)[None, None], pattern)[0].permute(1, 2, 0)
    m16 = np.round(m * 65535).astype(np.uint16)
    ours = fast.demosaic_bilinear_uint16(m16, pattern).astype(np.float64) / 65535
    # borders included: the mirror padding matches; only 16-bit rounding differs
    assert np.abs(ours - ref.numpy()).max() < 1.5 / 65535


def test_white_balance_uint16_clips_and_rounds(rng):
    m = rng.random((8, 10)).astype(np.float32)
    out = fast.white_balance_uint16(m, "GRBG", (2.0, 1.0, 0.5), scale=1.25)
    gains = np.array([[1.0, 2.0], [0.5, 1.0]])  # G R / B G
    expect = np.minimum(np.minimum(m * 1.25, 1.0) * np.tile(gains, (4, 5)), 1.0) * 65535
    assert np.abs(out - expect).max() <= 0.51
    assert out.dtype == np.uint16


def test_auto_bright_gain_uint16_follows_the_torch_rule(rng):
    rgb = (rng.random((1100, 1000, 3)) ** 3 * 0.7).astype(np.float32)  # > 1 MP: subsampled
    rgb16 = np.round(rgb * 65535).astype(np.uint16)
    ref = float(auto_bright_gain(torch.from_numpy(rgb16 / 65535.0).permute(2, 0, 1)[None].float(),
                                 0.01))
    assert fast.auto_bright_gain_uint16(rgb16, 0.01) == pytest.approx(ref, rel=2e-4)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("options", [
    {},
    {"tone": "filmic", "gamma": (2.222, 4.5)},
    {"use_auto_wb": True, "auto_wb_method": "white_patch", "no_auto_bright": True},
    {"user_wb": (0.8, 1.0, 1.2), "bright": 1.5, "tone": "smoothstep"},
    {"use_camera_wb": False, "use_color_matrix": False, "gamma": (1, 1)},
], ids=["default", "filmic_bt709", "auto_wb", "user_wb", "plain"])
def test_postprocess_fast_path_equals_develop(pattern, options):
    raw = photo_raw(pattern)
    isp = ClassicISP(**options)
    assert isp._uses_fast_path(raw)
    ref = to_uint(isp.develop(raw), 16)
    ours = isp.postprocess(raw, 16)
    assert ours.shape == ref.shape and ours.dtype == np.uint16
    assert psnr16(ours, ref) >= 60.0
    ours8, ref8 = isp.postprocess(raw, 8), to_uint(isp.develop(raw), 8)
    assert ours8.dtype == np.uint8 and np.abs(ours8.astype(int) - ref8).max() <= 2


@pytest.mark.parametrize("flip", [3, 5, 6])
def test_postprocess_fast_path_orientation(flip):
    raw = photo_raw("RGGB", orientation=flip)
    isp = ClassicISP(no_auto_bright=True)
    ref, ours = to_uint(isp.develop(raw), 16), isp.postprocess(raw, 16)
    assert ours.shape == ref.shape and ours.flags["C_CONTIGUOUS"]
    assert psnr16(ours, ref) >= 60.0


def test_adjust_maximum_is_applied_on_the_fast_path():
    raw = photo_raw("RGGB", wb=(0.9, 1.0, 1.3))  # a gain below 1: scale and clip separately
    raw.mosaic = raw.mosaic * 0.85
    raw.white_level = 1.0
    isp = ClassicISP(no_auto_bright=True, adjust_maximum_thr=0.75)
    ref, ours = to_uint(isp.develop(raw), 16), isp.postprocess(raw, 16)
    assert psnr16(ours, ref) >= 60.0
    plain = ClassicISP(no_auto_bright=True, adjust_maximum_thr=0).postprocess(raw, 16)
    assert ours.mean() > plain.mean() * 1.03  # the white level moved down to the data max


def test_other_settings_take_the_torch_path():
    raw = photo_raw("RGGB")
    for isp in (ClassicISP(demosaic_algorithm="malvar2004"), ClassicISP(half_size=True),
                ClassicISP(denoise_strength=0.05)):
        assert not isp._uses_fast_path(raw)
        np.testing.assert_array_equal(isp.postprocess(raw, 16), to_uint(isp.develop(raw), 16))
    odd = RawImage(np.random.default_rng(0).random((33, 48), dtype=np.float32))
    assert not ClassicISP()._uses_fast_path(odd)
    assert ClassicISP().postprocess(odd, 8).shape == (33, 48, 3)


@pytest.mark.parametrize("path, opts", [
    (CANON_DNG, {}),
    (BGGR_12BIT, dict(width=1920, height=1080, bit_depth=12, cfa="BGGR")),
    (RGGB_10BIT, dict(width=1920, height=1080, bit_depth=10, cfa="RGGB")),
], ids=["canon_dng", "bggr12", "rggb10"])
def test_fast_path_on_real_raws(path, opts):
    """Measured 81-102 dB between the two paths on these files."""
    raw = read(need(path), **opts)
    isp = ClassicISP()
    assert psnr16(isp.postprocess(raw, 16), to_uint(isp.develop(raw), 16)) >= 75.0


def test_sample_fast_path():
    raw = make_sample_raw()
    isp = ClassicISP()
    assert psnr16(isp.postprocess(raw, 16), to_uint(isp.develop(raw), 16)) >= 70.0


def test_display_lut_does_not_widen_the_whole_frame():
    """``np.take`` copies uint16 indices to int64: the LUT runs in chunks, so the extra memory
    stays a few MB whatever the frame size (issue 21.3: 4.5 GiB per band at 400 MP)."""
    import tracemalloc

    from isplab.classic.fast import _LUT_CHUNK, apply_lut

    table = np.arange(65536, dtype=np.uint16)[::-1].copy()
    image = np.random.default_rng(0).integers(0, 65536, (1500, 2000, 3), dtype=np.uint16)
    tracemalloc.start()
    try:
        out = apply_lut(table, image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, table[image])
    assert peak - out.nbytes < 4 * 8 * _LUT_CHUNK  # a few chunks of int64 indices, not 8x


# --- the torch-free develop (issue 19): NumPy display curves, LightISP ------------------------


def _torch_display_lut(tone, gamma, gain, output_bps):
    """The display table as it was built before: the torch display stage on every value."""
    isp = ClassicISP(tone=tone, gamma=gamma)
    x = torch.arange(65536, dtype=torch.float64) / 65535.0
    y = isp._display((x * gain).float()[None, None, None], torch.ones(1))[0, 0, 0]
    maxv = 255.0 if output_bps == 8 else 65535.0
    table = (y.clamp(0, 1).double() * maxv + 0.5).floor().numpy()
    return table.astype(np.uint8 if output_bps == 8 else np.uint16)


@pytest.mark.parametrize("tone", ["none", "smoothstep", "filmic"])
@pytest.mark.parametrize("gamma", [(2.4, 12.92), (2.222, 4.5), (1.0, 1.0), (2.2, 0.0),
                                   (1.8, 0.5)])
def test_numpy_display_lut_within_one_lsb_of_the_torch_curves(tone, gamma):
    """Measured: 8-bit tables equal but for 0-2 of 65536 entries, 16-bit 0-6 entries off by
    one (torch's SIMD float32 pow vs a correctly rounded one)."""
    fast.display_lut.cache_clear()
    for gain in (1.0, 1.7, 3.3):
        for bps in (8, 16):
            ours = fast.display_lut(tone, gamma, gain, bps)
            ref = _torch_display_lut(tone, gamma, gain, bps)
            diff = np.abs(ours.astype(int) - ref)
            assert ours.dtype == ref.dtype and diff.max() <= 1
            assert np.count_nonzero(diff) <= 16


def _before(monkeypatch, isp, raw, bps):
    """``isp.postprocess`` with the torch-built display table (the output before issue 19)."""
    with monkeypatch.context() as m:
        m.setattr(fast, "display_lut", _torch_display_lut)
        return isp.postprocess(raw, bps)


@pytest.mark.parametrize("which", ["canon_dng", "sample"])
def test_outputs_as_before_on_real_raws(which, monkeypatch):
    """The Canon DNG and the sample: 8-bit output byte-identical to the torch-LUT develop,
    16-bit within 1 LSB (measured: 8 of 6.0 M values on the DNG, 39 of 0.8 M on the sample)."""
    raw = read(need(CANON_DNG)) if which == "canon_dng" else make_sample_raw()
    for options in ({}, {"tone": "filmic", "gamma": (2.222, 4.5)}):
        light = LightISP(**options)
        np.testing.assert_array_equal(light.postprocess(raw, 8),
                                      _before(monkeypatch, ClassicISP(**options), raw, 8))
        diff = np.abs(light.postprocess(raw, 16).astype(int)
                      - _before(monkeypatch, ClassicISP(**options), raw, 16))
        assert diff.max() <= 1 and np.count_nonzero(diff) < 1e-4 * diff.size


@pytest.mark.parametrize("options", [
    {},
    {"tone": "smoothstep", "gamma": (2.222, 4.5), "bright": 1.4},
    {"user_wb": (0.8, 1.0, 1.2), "use_auto_wb": True, "no_auto_bright": True},
    {"use_camera_wb": False, "use_color_matrix": False, "gamma": (1, 1)},
    {"color_matrix": np.array([[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.1, -0.5, 1.4]])},
    {"adjust_maximum_thr": 0.0, "auto_bright_thr": 0.05},
], ids=["default", "tone", "user_wb", "plain", "profile3x3", "thresholds"])
@pytest.mark.parametrize("flip", [0, 6])
def test_light_isp_equals_classic_isp_postprocess(options, flip):
    raw = photo_raw("GBRG", orientation=flip)
    assert covers(options)
    for bps in (8, 16):
        np.testing.assert_array_equal(LightISP(**options).postprocess(raw, bps),
                                      ClassicISP(**options).postprocess(raw, bps))


def test_light_isp_hands_other_frames_to_classic_isp():
    no_wb = photo_raw("RGGB", wb=None)  # gray world, estimated in torch
    odd = RawImage(np.random.default_rng(0).random((33, 48), dtype=np.float32))
    for raw in (no_wb, odd):
        np.testing.assert_array_equal(LightISP().postprocess(raw, 8),
                                      ClassicISP().postprocess(raw, 8))


def test_covers_only_the_16_bit_develop():
    from isplab.classic.color import RootPolynomial

    assert covers({"demosaic_algorithm": "bilinear", "noise": None, "use_camera_wb": True})
    for options in ({"demosaic_algorithm": "menon2007"}, {"demosaic_algorithm": "malvar2004"},
                    {"half_size": True}, {"denoise_strength": 0.1},
                    {"use_auto_wb": True, "auto_wb_method": "gray_world"},
                    {"color_matrix": RootPolynomial.__new__(RootPolynomial)},
                    {"demosaicker": lambda *a: None}):
        assert not covers(options), options
        with pytest.raises(InvalidInputError):
            LightISP(**options)
    with pytest.raises(InvalidInputError, match="tone"):
        LightISP(tone="sigmoid")


def test_display_table_is_built_once_per_options():
    raw = photo_raw("RGGB")
    isp = LightISP(no_auto_bright=True, bright=1.25)
    fast.display_lut.cache_clear()
    for _ in range(3):
        isp.postprocess(raw, 8)
    info = fast.display_lut.cache_info()
    assert (info.misses, info.hits) == (1, 2)
