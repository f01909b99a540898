"""Look profiles (isplab.classic.look) and ``calibrate --pairs`` (isplab.commands._look).

Photos are crops of ``skimage.data`` images; looks are rendered with the known synthetic
looks of isplab.synth.look (outside the family the fit uses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isplab.classic.look import (
    KIND,
    U_MAX,
    LookProfile,
    apply_look,
    fit_look,
    srgb_decode,
    srgb_encode,
)
from isplab.errors import InvalidInputError
from isplab.synth.look import look_pair, random_look

skimage_data = pytest.importorskip("skimage.data")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Twelve 128x128 sRGB crops of four different photos."""
    crops = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = getattr(skimage_data, name)().astype(np.float32) / 255.0
        h, w = img.shape[:2]
        for y, x in ((0.15, 0.2), (0.5, 0.55), (0.3, 0.7)):
            y0, x0 = int(y * (h - 128)), int(x * (w - 128))
            crops.append(np.ascontiguousarray(img[y0:y0 + 128, x0:x0 + 128]))
    return crops


def _split(photos):
    """Fit on two crops of each photo, test on the third (unseen pixels)."""
    return [p for i, p in enumerate(photos) if i % 3 != 2], photos[2::3]


@pytest.mark.parametrize("seed", [3, 8])
def test_known_look_recovered(photos, seed):
    look = random_look(seed)
    train, test = _split(photos)
    pairs = [look_pair(p, look, seed=i, max_shift=0.0) for i, p in enumerate(train)]
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs], seed=0)
    for photo in test:
        assert _psnr(apply_look(photo, profile), look(photo)) >= 35.0
    assert _psnr(test[0], look(test[0])) < 30.0  # the look is not a no-op


def test_misaligned_and_clipped_pairs(photos):
    """Sub-pixel misalignment, rotation, clipping and 8-bit references: still >= 35 dB."""
    look = random_look(5)
    train, test = _split(photos)
    pairs = [look_pair(p, look, seed=i, max_shift=1.0) for i, p in enumerate(train)]
    for _, ref in pairs[:3]:  # a few blown-out and wrong pixels
        ref[10:18, 10:18] = 1.0
        ref[40:44, 60:64] = np.array([0.0, 1.0, 0.0])
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs])
    scores = [_psnr(apply_look(p, profile), look(p)) for p in test]
    assert min(scores) >= 35.0, scores


def test_curve_is_monotone_and_within_range(photos):
    look = random_look(2)
    pairs = [look_pair(p, look, seed=i) for i, p in enumerate(photos[:4])]
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs], knots=33)
    assert profile.per_channel and profile.curves.shape == (3, 33)
    assert np.all(np.diff(profile.curves, axis=1) >= 0)
    ramp = np.linspace(0, 1, 256, dtype=np.float32)[:, None].repeat(3, 1)
    out = apply_look(ramp, profile)
    assert np.all(np.diff(out, axis=0) >= -1e-6) and out.min() >= 0 and out.max() <= 1


def test_shared_curve_without_offsets(photos):
    look = random_look(4)
    pairs = [look_pair(p, look, seed=i, max_shift=0.0) for i, p in enumerate(photos[:6])]
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs], per_channel=False,
                       offsets=False)
    assert profile.curves.shape[0] == 1 and not profile.info["offsets"]
    assert np.all(profile.offset == 0)
    assert _psnr(apply_look(photos[8], profile), look(photos[8])) > 30.0


def test_identity_and_srgb_curve():
    x = np.linspace(0, 1, 1001)
    assert np.allclose(srgb_encode(srgb_decode(x)), x, atol=1e-12)
    img = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32)
    assert np.allclose(apply_look(img, LookProfile.identity()), img, atol=1e-6)
    chw = apply_look(img.transpose(2, 0, 1), LookProfile.identity(), channel_axis=0)
    assert chw.shape == (3, 8, 9) and np.allclose(chw.transpose(1, 2, 0), img, atol=1e-6)
    u8 = (img * 255).astype(np.uint8)
    assert np.allclose(apply_look(u8, LookProfile.identity()), u8 / 255.0, atol=1e-6)


def test_json_round_trip(tmp_path, photos):
    look = random_look(1)
    pairs = [look_pair(p, look, seed=i) for i, p in enumerate(photos[:3])]
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs])
    path = profile.save(tmp_path / "look.json")
    back = LookProfile.load(path)
    assert np.array_equal(back.matrix, profile.matrix)
    assert np.array_equal(back.curves, profile.curves)
    assert np.array_equal(back.knots, profile.knots) and back.knots[-1] == U_MAX
    assert back.info["pairs"] == 3
    assert np.array_equal(apply_look(photos[5], back), apply_look(photos[5], profile))
    with pytest.raises(FileExistsError):
        profile.save(path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(kind="camera-profile"), "not a look profile"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d["curve"]["values"][0].reverse(), "not monotone"),
    (lambda d: d.update(matrix=[[1, 0], [0, 1]]), "3x3"),
    (lambda d: d.pop("matrix"), "malformed"),
])
def test_bad_profile_files(tmp_path, edit, message):
    import json

    data = LookProfile.identity().to_dict()
    assert data["kind"] == KIND
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=message) as info:
        LookProfile.load(path)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        LookProfile.load(tmp_path / "junk.json")


def test_fit_input_errors(photos):
    small = photos[0][:64, :64]
    with pytest.raises(InvalidInputError, match="one size"):
        fit_look([photos[0]], [small], names=["a.png"])
    white = np.ones_like(photos[0])
    with pytest.raises(InvalidInputError, match="too few usable pixels.*a.png"):
        fit_look([photos[0]], [white], names=["a.png"])


# --------------------------------------------------------------------------- calibrate --pairs


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    from isplab.io import write_image

    return write_image(path, (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16), bits=16)


def _console():
    from rich.console import Console

    return Console(record=True, width=120)


def test_calibrate_pairs_rgb_end_to_end(tmp_path, photos):
    from isplab.commands._look import calibrate_pairs

    look = random_look(6)
    (tmp_path / "dev").mkdir()
    (tmp_path / "ref").mkdir()
    for i, p in enumerate(photos[:8]):
        dev, ref = look_pair(p, look, seed=i, max_shift=0.5)
        _write_rgb(tmp_path / "dev" / f"{i:02d}.png", dev)
        _write_rgb(tmp_path / "ref" / f"{i:02d}.png", ref)
    _write_rgb(tmp_path / "ref" / "lonely.png", photos[9])
    console = _console()
    out = tmp_path / "look.json"
    calibrate_pairs(tmp_path / "dev", tmp_path / "ref", out, holdout=0.25, seed=0,
                    console=console)
    text = console.export_text()
    assert "2 held-out pairs" in text and "lonely.png" in text
    profile = LookProfile.load(out)
    assert len(profile.info["holdout_pairs"]) == 2 and len(profile.info["fit_pairs"]) == 6
    for row in profile.info["scores"]:
        assert row["psnr_after"] > row["psnr_before"] + 5
        assert row["de_after"] < row["de_before"]
    assert _psnr(apply_look(photos[10], profile), look(photos[10])) >= 35.0
    with pytest.raises(InvalidInputError, match="exists"):
        calibrate_pairs(tmp_path / "dev", tmp_path / "ref", out, console=console)


def test_calibrate_pairs_from_raws(tmp_path, photos):
    """Mosaic .npy raws developed by the classic ISP; references = a look of that develop."""
    from isplab.classic.light import LightISP
    from isplab.classic.pipeline import ClassicISP
    from isplab.commands._look import Developer, calibrate_pairs, is_developed

    (tmp_path / "raw").mkdir()
    (tmp_path / "ref").mkdir()
    look = random_look(9)
    develop = Developer("classic")
    for i, p in enumerate(photos[:6]):
        linear = srgb_decode(p).astype(np.float32) * 0.8
        m = np.zeros(linear.shape[:2], np.float32)
        m[0::2, 0::2] = linear[0::2, 0::2, 0]
        m[0::2, 1::2] = linear[0::2, 1::2, 1]
        m[1::2, 0::2] = linear[1::2, 0::2, 1]
        m[1::2, 1::2] = linear[1::2, 1::2, 2]
        path = tmp_path / "raw" / f"r{i}.npy"
        np.save(path, (m * 4095).round().astype(np.uint16))
        assert not is_developed(path)
        dev = develop(path)
        _write_rgb(tmp_path / "ref" / f"r{i}.png", look(dev))
    assert isinstance(develop.pipeline(), (ClassicISP, LightISP))  # the classical develop
    console = _console()
    calibrate_pairs(tmp_path / "raw", tmp_path / "ref", tmp_path / "look.json", holdout=0.34,
                    seed=1, console=console)
    profile = LookProfile.load(tmp_path / "look.json")
    assert profile.info["isp"] == "classic" and len(profile.info["holdout_pairs"]) == 2
    for row in profile.info["scores"]:
        assert row["psnr_after"] >= 35.0, row


def test_split_is_deterministic():
    from isplab.commands._look import split_pairs

    assert split_pairs(8, 0.25, 3) == split_pairs(8, 0.25, 3)
    fit, held = split_pairs(8, 0.25, 3)
    assert len(held) == 2 and sorted(fit + held) == list(range(8))
    assert split_pairs(1, 0.25, 0) == ([0], [])
    assert split_pairs(4, 0.0, 0) == ([0, 1, 2, 3], [])
    with pytest.raises(InvalidInputError, match="holdout"):
        split_pairs(4, 1.0, 0)


def _pair_dirs(tmp_path: Path, photos, n: int = 3) -> tuple[Path, Path]:
    raws, refs = tmp_path / "raws", tmp_path / "refs"
    raws.mkdir()
    refs.mkdir()
    for i in range(n):
        _write_rgb(raws / f"p{i}.png", photos[i])
        _write_rgb(refs / f"p{i}.png", photos[i])
    return raws, refs


def _bad(tmp_path: Path, raws: Path, refs: Path) -> str:
    from isplab.commands._look import calibrate_pairs

    out = tmp_path / "look.json"
    with pytest.raises(InvalidInputError) as info:
        calibrate_pairs(raws, refs, out, console=_console())
    assert not out.exists()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_input_lines(tmp_path, photos):
    raws, refs = _pair_dirs(tmp_path, photos)
    other = tmp_path / "other"
    other.mkdir()
    _write_rgb(other / "zzz.png", photos[0])
    assert "no file stem in common" in _bad(tmp_path, raws, other)
    assert "no such folder" in _bad(tmp_path, raws, tmp_path / "missing")
    (refs / "p1.png").unlink()
    _write_rgb(refs / "p1.png", photos[1][:100, :90])
    message = _bad(tmp_path, raws, refs)
    assert "p1.png" in message and "one size" in message and "90x100" in message
    _write_rgb(refs / "p1.tif", photos[1])
    (refs / "p1.png").unlink()
    (raws / "p2.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    message = _bad(tmp_path, raws, refs)
    assert "p2.png" in message
    (raws / "p2.png").unlink()
    _write_rgb(raws / "p2.png", photos[2])
    for f in refs.iterdir():
        f.unlink()
        _write_rgb(refs / f.name, np.ones_like(photos[0]))
    assert "too few usable pixels" in _bad(tmp_path, raws, refs)
    (refs / "p0b.png").write_bytes(b"")
    (refs / "p0.jpg").write_bytes(b"")
    assert "two files with the stem 'p0'" in _bad(tmp_path, raws, refs)


def test_develop_with_look(tmp_path, photos):
    """``isplab develop --look``: the 16-bit develop with the look, quantised; a bad look
    file is one line."""
    from typer.testing import CliRunner

    from isplab.cli import app
    from isplab.io import read_image
    from isplab.raw import write_dng
    from isplab.sample import make_sample_raw

    look = random_look(7)
    pairs = [look_pair(p, look, seed=i) for i, p in enumerate(photos[:4])]
    profile = fit_look([d for d, _ in pairs], [r for _, r in pairs])
    profile.save(tmp_path / "look.json")
    dng = write_dng(tmp_path / "s.dng", make_sample_raw())
    runner = CliRunner()
    for name, extra in (("plain", []), ("look", ["--look", tmp_path / "look.json"])):
        r = runner.invoke(app, [str(a) for a in ("develop", dng, "-o", tmp_path / name,
                                                 "--output-bps", "16", *extra)])
        assert r.exit_code == 0, r.output
    plain = read_image(tmp_path / "plain" / "s.png")[0].permute(1, 2, 0).numpy()
    styled = read_image(tmp_path / "look" / "s.png")[0].permute(1, 2, 0).numpy()
    assert np.abs(styled - apply_look(plain, profile)).max() < 2e-4
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    r = runner.invoke(app, ["develop", str(dng), "-o", str(tmp_path / "bad"), "--look",
                            str(tmp_path / "bad.json")])
    assert r.exit_code == 2 and "not a look profile" in r.output
    assert not (tmp_path / "bad").exists()


def test_calibrate_pairs_bad_input_is_one_line(tmp_path):
    """``isplab calibrate --pairs`` reports a bad folder in one line (exit 1), no traceback."""
    from typer.testing import CliRunner

    from isplab.cli import app

    (tmp_path / "raws").mkdir()
    r = CliRunner().invoke(app, ["calibrate", "--pairs", str(tmp_path / "raws"),
                                 str(tmp_path / "missing"), "-o", str(tmp_path / "l.json")])
    assert r.exit_code == 1
    assert "missing" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "l.json").exists()
