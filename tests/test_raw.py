"""isplab.raw: CFA handling, RawImage, readers on real files, DNG writing, bad input."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import numpy as np
import pytest
import rawpy
import tifffile
import torch

from isplab.errors import RawReadError, UnsupportedCFAError
from isplab.raw import (
    BAYER_PATTERNS,
    RawImage,
    mosaic,
    pack,
    packed_offsets,
    read,
    to_sensor_values,
    unpack,
    write_dng,
)
from isplab.raw.cfa import pattern_from_rawpy
from tests.conftest import BGGR_12BIT, CANON_DNG, KODAK_KDC, RGGB_10BIT, VIVO_NPY, need


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- CFA


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("RGGB", ((0, 0), (0, 1), (1, 0), (1, 1))),
        ("BGGR", ((1, 1), (1, 0), (0, 1), (0, 0))),
        ("GRBG", ((0, 1), (0, 0), (1, 1), (1, 0))),
        ("GBRG", ((1, 0), (1, 1), (0, 0), (0, 1))),
    ],
)
def test_packed_offsets_put_green_of_red_row_first(pattern, expected):
    assert packed_offsets(pattern) == expected
    r, g1, g2, b = expected
    assert g1[0] == r[0] and g2[0] == b[0]


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_pack_unpack_round_trip(pattern):
    m = torch.rand(2, 1, 6, 8)
    p = pack(m, pattern)
    assert p.shape == (2, 4, 3, 4)
    assert torch.equal(unpack(p, pattern), m)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_pack_odd_size_drops_last_row_and_column(pattern):
    m = torch.rand(1, 1, 7, 9)
    p = pack(m, pattern)
    assert p.shape == (1, 4, 3, 4)
    assert torch.equal(unpack(p, pattern), m[..., :6, :8])


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_mosaic_then_pack_gives_each_colour_plane(pattern):
    rgb = torch.stack([torch.full((4, 6), v) for v in (0.1, 0.5, 0.9)])[None]
    p = pack(mosaic(rgb, pattern), pattern)
    for ch, value in enumerate((0.1, 0.5, 0.5, 0.9)):
        assert torch.allclose(p[:, ch], torch.tensor(value))


def test_unsupported_patterns_raise():
    with pytest.raises(UnsupportedCFAError, match="X-Trans"):
        pack(torch.rand(1, 1, 4, 4), "XTRANS")
    with pytest.raises(UnsupportedCFAError, match="6x6"):
        pattern_from_rawpy(np.zeros((6, 6), dtype=int), b"RGBG")
    with pytest.raises(UnsupportedCFAError):
        pattern_from_rawpy(np.array([[0, 1], [2, 3]]), b"CMYG")


def test_pack_rejects_wrong_shapes():
    from isplab.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="N x 1 x H x W"):
        pack(torch.rand(1, 3, 4, 4), "RGGB")
    with pytest.raises(InvalidInputError, match="N x 4"):
        unpack(torch.rand(1, 3, 4, 4))


# ---------------------------------------------------------------- DNG writer


def _int_raw(rng, pattern, shape=(64, 96), black=(64, 60, 62, 66), white=1023):
    ints = rng.integers(0, 1024, size=shape).astype(np.uint16)
    ints = np.clip(ints, max(black), white).astype(np.uint16)
    raw = RawImage(mosaic=np.zeros(shape, np.float32), cfa=pattern, black_level=black,
                   white_level=white)
    norm = np.empty(shape, np.float64)
    for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
        norm[dy::2, dx::2] = (ints[dy::2, dx::2] - black[ch]) / (white - black[ch])
    raw.mosaic = norm.astype(np.float32)
    return ints, raw


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_dng_round_trip_is_bit_exact_through_rawpy(tmp_path, rng, pattern):
    ints, raw = _int_raw(rng, pattern)
    raw.wb_gains = (2.0, 1.0, 1.5)
    raw.camera_to_srgb = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])
    path = write_dng(tmp_path / "x.dng", raw)
    with rawpy.imread(str(path)) as r:
        assert np.array_equal(r.raw_image_visible, ints)
        names = "".join(r.color_desc.decode()[i] for i in r.raw_pattern.reshape(-1))
        assert names == pattern
        # black per colour index, white, as-shot gains
        for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
            assert r.black_level_per_channel[r.raw_colors_visible[dy, dx]] == raw.black_level[ch]
        assert r.white_level == 1023
        cam = np.array(r.camera_whitebalance[:3])
        np.testing.assert_allclose(cam / cam[1], [2.0, 1.0, 1.5], rtol=1e-5)
        np.testing.assert_allclose(r.color_matrix[:, :3], raw.camera_to_srgb, atol=1e-4)
    back = read(path)
    assert back.cfa == pattern
    assert back.black_level == raw.black_level and back.white_level == 1023
    np.testing.assert_array_equal(to_sensor_values(back), ints)
    np.testing.assert_allclose(back.mosaic, raw.mosaic, atol=1e-7)


def test_dng_xyz_matrix_round_trip(tmp_path, rng):
    from isplab.classic import camera_to_srgb_from_xyz

    _, raw = _int_raw(rng, "RGGB")
    xyz = np.array([[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480],
                    [-0.1496, 0.1937, 0.6651]])
    raw.xyz_to_camera = xyz
    back = read(write_dng(tmp_path / "x.dng", raw))
    np.testing.assert_allclose(back.camera_to_srgb, camera_to_srgb_from_xyz(xyz), atol=1e-3)


def test_write_dng_never_replaces_without_overwrite(tmp_path, rng):
    _, raw = _int_raw(rng, "RGGB")
    path = tmp_path / "x.dng"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_dng(path, raw)
    assert path.read_bytes() == b"precious"
    write_dng(path, raw, overwrite=True)
    assert read(path).cfa == "RGGB"
    assert [p.name for p in tmp_path.iterdir()] == ["x.dng"]  # no temporary left behind


# ---------------------------------------------------------------- real files


def test_canon_dng_metadata():
    raw = read(need(CANON_DNG))
    assert (raw.height, raw.width) == (1156, 1734)
    assert raw.cfa == "RGGB"
    assert raw.black_level == (2056.0,) * 4 and raw.white_level == 15000.0
    assert raw.bit_depth == 14
    np.testing.assert_allclose(raw.wb_gains, (1.0 / 0.4037142, 1.0, 0.6839945 / 0.4037142),
                               rtol=1e-5)
    assert raw.xyz_to_camera is None  # rgb_xyz_matrix is all zeros for this file
    np.testing.assert_allclose(raw.camera_to_srgb[0], [1.8177627, -0.964303, 0.14654028],
                               rtol=1e-5)
    with rawpy.imread(str(CANON_DNG)) as r:
        expected = (r.raw_image_visible.astype(np.float64) - 2056) / (15000 - 2056)
    np.testing.assert_allclose(raw.mosaic, np.clip(expected, 0, 1), atol=1e-6)
    assert raw.mosaic.dtype == np.float32


def test_headerless_bggr_12bit():
    path = need(BGGR_12BIT)
    raw = read(path, width=1920, height=1080, bit_depth=12, cfa="BGGR")
    assert (raw.height, raw.width, raw.cfa, raw.white_level) == (1080, 1920, "BGGR", 4095.0)
    ints = np.fromfile(path, dtype="<u2").reshape(1080, 1920)
    np.testing.assert_allclose(raw.mosaic, ints / 4095.0, atol=1e-7)


def test_headerless_rggb_10bit_with_black_level():
    path = need(RGGB_10BIT)
    raw = read(path, width=1920, height=1080, bit_depth=10, cfa="RGGB", black_level=64)
    ints = np.fromfile(path, dtype="<u2").reshape(1080, 1920).astype(np.float64)
    assert raw.white_level == 1023.0 and raw.black_level == (64.0,) * 4
    np.testing.assert_allclose(raw.mosaic, np.clip((ints - 64) / (1023 - 64), 0, 1), atol=1e-6)


def test_headerless_size_mismatch_names_both_sizes():
    with pytest.raises(RawReadError) as e:
        read(need(BGGR_12BIT), width=1920, height=1000, bit_depth=12)
    msg = str(e.value)
    assert "4,147,200 bytes" in msg and "3,840,000 bytes" in msg and "1920x1000" in msg
    assert "ColorCheckerRAW" in msg


def test_headerless_without_size_says_how(tmp_path):
    plain = tmp_path / "frame.raw"
    plain.write_bytes(need(BGGR_12BIT).read_bytes())
    with pytest.raises(RawReadError, match="--width W --height H"):
        read(plain)


def test_headerless_flags_from_the_file_name(tmp_path):
    """``name_1920x1080_12bit_BGGR.raw`` (a common convention for sensor dumps) fills the
    size, bit depth and CFA when no flag is given (issue 20.11)."""
    from isplab.raw.fileinfo import flags_from_name

    assert flags_from_name("a_2592x1536_8bit_GRBG.raw") == {
        "width": 2592, "height": 1536, "bit_depth": 8, "cfa": "GRBG"}
    assert flags_from_name("frame.raw") == {}
    raw = read(need(BGGR_12BIT))  # ColorCheckerRAW_1920x1080_12bit_BGGR.raw
    assert (raw.width, raw.height, raw.cfa, raw.bit_depth) == (1920, 1080, "BGGR", 12)
    flags = read(BGGR_12BIT, width=1920, height=1080, bit_depth=12, cfa="BGGR")
    assert np.array_equal(raw.mosaic, flags.mosaic)
    eight = tmp_path / "dump.raw"
    eight.write_bytes(np.zeros((6, 8), np.uint8).tobytes())
    with pytest.raises(RawReadError, match="give --bits 8"):
        read(eight, width=8, height=6)


def test_headerless_wrong_bit_depth_or_byte_order():
    with pytest.raises(RawReadError, match="do not fit 10 bits"):
        read(need(BGGR_12BIT), width=1920, height=1080, bit_depth=10)
    with pytest.raises(RawReadError, match="big-endian|little-endian"):
        read(BGGR_12BIT, width=1920, height=1080, bit_depth=12, byte_order="big")


def test_packed_npy_vivo():
    path = need(VIVO_NPY)
    arr = np.load(path)
    raw = read(path)
    assert (raw.height, raw.width, raw.cfa, raw.white_level) == (1024, 1024, "RGGB", 4095.0)
    packed = raw.packed()[0].numpy()
    np.testing.assert_allclose(packed, np.moveaxis(arr, -1, 0) / 4095.0, atol=1e-7)


def test_kodak_kdc_through_libraw():
    raw = read(need(KODAK_KDC))
    assert (raw.height, raw.width, raw.cfa) == (512, 768, "GRBG")
    assert 0 <= raw.mosaic.min() and raw.mosaic.max() <= 1


def test_mosaic_png_and_packed_png(tmp_path, rng):
    ints = rng.integers(0, 1024, size=(32, 48)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "m.png"), ints)
    raw = read(tmp_path / "m.png", bit_depth=10, cfa="GBRG")
    assert raw.cfa == "GBRG"
    np.testing.assert_allclose(raw.mosaic, ints / 1023.0, atol=1e-7)
    # ZRR-style: no white level given -> inferred from the data (10-bit here)
    assert read(tmp_path / "m.png").white_level == 1023.0
    # 4-channel packed PNG (RGBA = R, G1, G2, B)
    packed = rng.integers(0, 4096, size=(16, 24, 4)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "p.png"), packed[..., [2, 1, 0, 3]])  # OpenCV writes BGRA
    raw = read(tmp_path / "p.png", bit_depth=12)
    np.testing.assert_allclose(raw.packed()[0].numpy(), np.moveaxis(packed, -1, 0) / 4095.0,
                               atol=1e-7)
    tifffile.imwrite(tmp_path / "m.tiff", ints)
    np.testing.assert_allclose(read(tmp_path / "m.tiff", bit_depth=10).mosaic, ints / 1023.0,
                               atol=1e-7)


# ---------------------------------------------------------------- bad input


def test_empty_file(tmp_path):
    (tmp_path / "e.dng").write_bytes(b"")
    with pytest.raises(RawReadError, match=r"e\.dng: empty file"):
        read(tmp_path / "e.dng")


def test_truncated_dng_is_reported_and_left_untouched(tmp_path):
    src = need(CANON_DNG).read_bytes()
    path = tmp_path / "cut.dng"
    path.write_bytes(src[: len(src) // 2])
    before = digest(path)
    with pytest.raises(RawReadError, match=r"cut\.dng: truncated or corrupt"):
        read(path)
    assert digest(path) == before


def test_c_messages_keep_python_warnings_out_of_the_c_detail():
    """A Python warning raised while LibRaw runs (rawpy warns, e.g. in a forked child) is
    shown as a warning, not taken for LibRaw's message. In a subprocess: pytest records
    warnings instead of printing them on fd 2."""
    import subprocess
    import sys

    code = ("import os, warnings\n"
            "from pathlib import Path\n"
            "from isplab.raw.fileinfo import c_messages\n"
            "for c_says in (b'LibRaw: Unexpected end of file\\n', b''):\n"
            "    with c_messages(Path('x.dng')) as said:\n"
            "        os.write(2, c_says)\n"
            "        warnings.warn('a Python-side warning', UserWarning, stacklevel=1)\n"
            "    print(said)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.splitlines() == ["['Unexpected end of file']", "[]"], r.stdout + r.stderr
    assert r.stderr.count("a Python-side warning") == 1  # shown (once per place, as usual)


@pytest.mark.parametrize("name", ["photo.jpg", "photo.dng"])
def test_jpeg_given_as_raw(tmp_path, name):
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    shutil.move(tmp_path / "x.jpg", tmp_path / name)
    with pytest.raises(RawReadError, match="JPEG image, not raw sensor data"):
        read(tmp_path / name)


def test_garbage_file(tmp_path):
    (tmp_path / "junk.nef").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(RawReadError, match="not a raw file LibRaw can read|corrupt"):
        read(tmp_path / "junk.nef")


def test_nan_in_array(tmp_path):
    a = np.full((8, 8), 0.5, np.float32)
    a[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(RawReadError, match=r"nan\.npy: data contains 1 NaN"):
        read(tmp_path / "nan.npy")


def test_rgb_image_is_not_raw(tmp_path):
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(RawReadError, match="3-channel RGB image, not raw"):
        read(tmp_path / "rgb.png")


def test_unsupported_cfa_override(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((8, 8), np.uint16))
    with pytest.raises(UnsupportedCFAError, match="RGBW"):
        read(tmp_path / "m.npy", cfa="RGBW")


def test_missing_file(tmp_path):
    with pytest.raises(RawReadError, match="no such file"):
        read(tmp_path / "nope.dng")
