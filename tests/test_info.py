"""Header-only reading (:func:`isplab.raw.read_header`) and ``isplab info``: the header gives
what ``read(...).metadata()`` gives, for every format, without decoding the pixels."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from isplab.cli import app
from isplab.errors import RawReadError
from isplab.raw import BAYER_PATTERNS, RawImage, read, read_header, write_dng
from tests.conftest import BGGR_12BIT, CANON_DNG, KODAK_KDC, RGGB_10BIT, VIVO_NPY, need

runner = CliRunner()


def _libraw_layout_verified() -> bool:
    from isplab.raw.libraw_header import _library

    return _library() is not None


#: the pre-unpack LibRaw fields are read only on verified LibRaw versions (else the header
#: names them as needing the decode, which same_as_read also accepts)
LIBRAW_LAYOUT = pytest.mark.skipif(not _libraw_layout_verified(),
                                   reason="LibRaw version without a verified layout")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def same_as_read(path, **flags) -> dict:
    """Header metadata equals the decoded one on every key, except those the header names as
    needing the decode (and the header-only make/model); returns the header's."""
    head = read_header(path, **flags).metadata()
    full = read(path, **flags).metadata()
    pending = set(head["needs_decoding"])
    for key, value in full.items():
        if key not in pending:
            assert head[key] == value, (key, head[key], value)
        else:
            assert head[key] is None, key
    return head


def _dng(tmp_path, rng, pattern, black=(60, 64, 68, 72), white=1023):
    raw = RawImage(mosaic=rng.random((24, 32)).astype(np.float32), cfa=pattern,
                   black_level=black, white_level=white, wb_gains=(2.0, 1.0, 1.5),
                   camera_to_srgb=np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2],
                                            [0.0, -0.5, 1.5]]), noise_profile=(1e-4, 2e-6))
    return write_dng(tmp_path / f"{pattern}.dng", raw)


@LIBRAW_LAYOUT
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_dng_header_matches_read(tmp_path, rng, pattern):
    """Distinct black levels per channel: LibRaw's pre-unpack layout read right."""
    head = same_as_read(_dng(tmp_path, rng, pattern))
    assert head["needs_decoding"] == [] and head["cfa"] == pattern
    assert head["black_level"] == [60.0, 64.0, 68.0, 72.0] and head["white_level"] == 1023.0
    assert head["noise_profile"] == [1e-4, 2e-6]


def test_real_files_header_matches_read():
    head = same_as_read(need(CANON_DNG))
    assert (head["make"], head["width"]) == ("Canon", 1734)
    assert head["needs_decoding"] == [] or not _libraw_layout_verified()
    # a KDC's levels come from a curve LibRaw applies while decoding: left to the decode
    head = same_as_read(need(KODAK_KDC))
    assert head["cfa"] == "GRBG" and "white_level" in head["needs_decoding"]
    same_as_read(need(BGGR_12BIT))
    same_as_read(need(RGGB_10BIT), width=1920, height=1080, bit_depth=10, cfa="RGGB",
                 black_level=64)
    head = same_as_read(need(VIVO_NPY))
    assert head["needs_decoding"] == ["white_level", "bit_depth"]
    same_as_read(VIVO_NPY, white_level=4095)


def test_array_and_image_headers_match_read(tmp_path, rng):
    ints = rng.integers(0, 1024, size=(32, 48)).astype(np.uint16)
    packed = rng.integers(0, 4096, size=(16, 24, 4)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "m.png"), ints)
    cv2.imwrite(str(tmp_path / "p.png"), packed)
    tifffile.imwrite(tmp_path / "m.tiff", ints)
    tifffile.imwrite(tmp_path / "p.tiff", packed)
    np.save(tmp_path / "p.npy", np.moveaxis(packed, -1, 0))
    np.save(tmp_path / "m8.npy", ints.astype(np.uint8))
    ints.astype("<u2").tofile(tmp_path / "f_48x32_10bit_GBRG.raw")
    for name in ("m.png", "p.png", "m.tiff", "p.tiff", "p.npy"):
        assert same_as_read(tmp_path / name, bit_depth=12)["needs_decoding"] == []
        assert same_as_read(tmp_path / name)["needs_decoding"] == ["white_level", "bit_depth"]
    assert same_as_read(tmp_path / "p.png", white_level=4000)["width"] == 48
    assert same_as_read(tmp_path / "m8.npy")["white_level"] == 255.0  # 8 bits whatever the data
    assert same_as_read(tmp_path / "f_48x32_10bit_GBRG.raw")["cfa"] == "GBRG"


def test_header_errors_are_reads(tmp_path):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    for path, flags in ((tmp_path / "x.png", {}), (tmp_path / "none.dng", {}),
                        (need(BGGR_12BIT), {"width": 100, "height": 100})):
        with pytest.raises(RawReadError) as a:
            read_header(path, **flags)
        with pytest.raises(RawReadError) as b:
            read(path, **flags)
        assert str(a.value) == str(b.value)


def test_huge_claimed_frame_is_read_from_the_header(tmp_path):
    """A 150 MP ``.npy`` (sparse on disk): header only, instant; over the limit: refused."""
    path = tmp_path / "big.npy"
    shape = (10000, 15000)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<u2", "fortran_order": False, "shape": shape})
        f.truncate(f.tell() + 2 * shape[0] * shape[1])
    head = read_header(path, white_level=4095)
    assert (head.height, head.width, head.megapixels) == (10000, 15000, 150.0)
    with pytest.raises(RawReadError, match="over the 100 MP limit"):
        read_header(path, max_megapixels=100)


def test_info_reads_no_pixels(tmp_path, rng, monkeypatch):
    """A DNG whose pixel data is cut off, a PNG whose image data is garbage, an .npy whose
    loader is broken: info succeeds from the header, --pixels fails with one line."""
    dng = _dng(tmp_path, rng, "RGGB")
    data = dng.read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(data[:len(data) - 1000])
    png = tmp_path / "bad.png"
    cv2.imwrite(str(png), rng.integers(0, 65535, size=(32, 48)).astype(np.uint16))
    raw = bytearray(png.read_bytes())
    at = raw.index(b"IDAT") + 8
    raw[at:at + 40] = bytes(40)
    png.write_bytes(bytes(raw))
    for path in (cut, png):
        r = run("info", path, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["width"] in (32, 48)
        r = run("info", path, "--pixels", "--cfa", "RGGB")
        assert r.exit_code == 1 and r.output.strip().count("\n") == 0, r.output
        assert path.name in r.output
    np.save(tmp_path / "p.npy", rng.integers(0, 4096, size=(4, 8, 8)).astype(np.uint16))

    def no_decoding(*a, **k):
        raise AssertionError("info decoded the pixels")

    monkeypatch.setattr(np, "load", no_decoding)
    monkeypatch.setattr("isplab.raw.readers.read", no_decoding)
    r = run("info", tmp_path / "p.npy", "--json", "--bits", "12")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert (meta["width"], meta["white_level"], meta["needs_decoding"]) == (16, 4095.0, [])
    assert "data_range" not in meta and meta["noise_profile"]["source"] == "none"


def test_info_pixels_adds_range_and_estimated_noise(tmp_path, rng):
    ramp = np.linspace(300, 3500, 128)[None, None, :] + np.zeros((4, 128, 1))
    noisy = ramp + rng.normal(0, 1, ramp.shape) * np.sqrt(ramp)
    np.save(tmp_path / "p.npy", np.clip(noisy, 0, 4095).astype(np.uint16))
    r = run("info", tmp_path / "p.npy", "--json")
    assert r.exit_code == 0, r.output
    head = json.loads(r.stdout)
    assert head["white_level"] is None and head["needs_decoding"] == ["white_level", "bit_depth"]
    r = run("info", tmp_path / "p.npy", "--json", "--pixels")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert meta["white_level"] == 4095.0 and "needs_decoding" not in meta
    assert 0 <= meta["data_range"][0] < meta["data_range"][1] <= 1
    assert meta["noise_profile"]["source"] == "estimated"
    r = run("info", _dng(tmp_path, rng, "BGGR"), "--json", "--pixels")
    assert json.loads(r.stdout)["noise_profile"]["source"] == "file"
    r = run("info", tmp_path / "p.npy")
    assert r.exit_code == 0 and "--pixels" in r.stdout


def test_unverified_libraw_leaves_fields_to_the_decode(tmp_path, rng, monkeypatch):
    """On a LibRaw whose struct layout was not verified, the header never guesses: the
    levels, white balance and matrices are named as needing the decode, and are None."""
    from isplab.raw import libraw_header

    monkeypatch.setattr(libraw_header, "_library", lambda: None)
    head = same_as_read(_dng(tmp_path, rng, "RGGB"))
    assert {"black_level", "white_level"} <= set(head["needs_decoding"])
    assert head["black_level"] is None and head["width"] == 32
