"""Illuminant estimation: the classical family, the learned (FFCC-style) estimator, its
training, ``isplab illuminant`` and ``--wb`` with every estimator."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from isplab.classic import awb, ffcc
from isplab.classic import illuminant as cc
from isplab.cli import app
from isplab.errors import InvalidInputError

runner = CliRunner()
CAST = np.array([0.55, 1.0, 0.38])
CLASSICAL = ["gray_world", "white_patch", "shades_of_gray", "gray_edge", "gray_edge2"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def scene(seed: int = 0, size: int = 192) -> np.ndarray:
    """A grey world with edges: achromatic blocks of random lightness and a few colour pairs
    whose mean is grey, plus a white tile; linear, unclipped, in [0, 0.9]."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.05, 0.7, (size // 16, size // 16))
    img = np.repeat(np.repeat(blocks, 16, 0), 16, 1)[..., None].repeat(3, 2)
    for _ in range(6):
        c = rng.uniform(0.2, 0.8, 3)
        y, x = rng.integers(0, size - 24, 2)
        img[y:y + 24, x:x + 24] = c
        img[x:x + 24, y:y + 24] = c.mean() * 2 - c  # its complement about grey
    img[:32, :32] = 0.9
    return img.astype(np.float32)


def cast(img: np.ndarray, light=CAST) -> np.ndarray:
    return (img * np.asarray(light, dtype=np.float32)).astype(np.float32)


@pytest.mark.parametrize("name", CLASSICAL)
def test_each_classical_estimator_recovers_a_known_cast(name):
    est = awb.estimate(name, cast(scene()))
    assert est[1] == pytest.approx(1.0)
    assert cc.angular_error(est, CAST) < 2.0, est


@pytest.mark.parametrize("name", CLASSICAL)
def test_estimators_ignore_clipped_pixels(name):
    img = cast(scene())
    img[-48:, -48:] = (1.0, 1.0, 0.2)  # a clipped yellow-ish highlight would pull the estimate
    assert cc.angular_error(awb.estimate(name, img), CAST) < 2.5


def test_angular_error_and_summary():
    assert cc.angular_error([1, 1, 1], [2, 2, 2]) == pytest.approx(0.0, abs=1e-6)
    assert cc.angular_error([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    s = cc.error_summary([1, 2, 3, 4, 5, 6, 7, 8])
    assert s == {"n": 8, "mean": 4.5, "median": 4.5, "best25": 1.5, "worst25": 7.5}


def test_bad_images_raise_one_clear_error():
    with pytest.raises(InvalidInputError, match="H x W x 3"):
        awb.estimate("gray_world", np.zeros((8, 8, 2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        awb.estimate("gray_world", np.full((8, 8, 3), np.nan))
    with pytest.raises(InvalidInputError, match="unknown illuminant estimator"):
        awb.estimate("retinex", scene())


def test_names_resolve_and_auto_is_registered():
    assert awb.resolve("Grey-World") == "gray_world"
    assert awb.resolve("auto") == awb.AUTO in awb.names()
    assert set(CLASSICAL) | {"ffcc"} <= set(awb.names())


# --------------------------------------------------------------------------- learned


def tiny_model(offset=(0.0, 0.0), bins: int = 16) -> ffcc.FFCCModel:
    """A model whose bias map peaks at ``offset`` from gray world (filters zero)."""
    cfg = ffcc.FFCCConfig(bins=bins, bin_size=1 / 8, work_pixels=4096)
    c = cfg.coords()
    i, j = np.argmin(np.abs(c - offset[0])), np.argmin(np.abs(c - offset[1]))
    bias = np.full((bins, bins), -40.0)
    bias[i, j] = 0.0
    return ffcc.FFCCModel(cfg, np.zeros((len(cfg.channels), bins, bins)), bias)


def test_learned_estimator_loads_weights_the_test_makes(tmp_path):
    model = tiny_model(offset=(0.1875, -0.0625))
    path = ffcc.save(tmp_path / "tiny.safetensors", model, {"name": "tiny"})
    img = cast(scene())
    got = awb.estimate("ffcc", img, weights=path)
    gw = cc.gray_world(img)
    want = cc.normalise([gw[0] * np.exp(-0.1875), 1.0, gw[2] * np.exp(0.0625)])
    np.testing.assert_allclose(got, want, rtol=1e-3)
    loaded = ffcc.load(path)
    assert loaded.config == model.config
    np.testing.assert_allclose(loaded.bias, model.bias)


def test_learned_weights_that_do_not_fit_are_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InvalidInputError, match="not FFCC weights"):
        ffcc.load(bad)
    with pytest.raises(InvalidInputError, match="do not fit"):
        ffcc.FFCCModel(ffcc.FFCCConfig(bins=8), np.zeros((3, 4, 4)), np.zeros((8, 8)))


def test_features_are_histograms_centred_on_gray_world():
    cfg = ffcc.FFCCConfig(bins=16, bin_size=1 / 8, work_pixels=4096)
    h, center = ffcc.features(cast(scene()), cfg)
    assert h.shape == (len(ffcc.CHANNELS), 16, 16)
    np.testing.assert_allclose(h.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    gw = cc.gray_world(cast(scene()))
    np.testing.assert_allclose(center, [np.log(1 / gw[0]), np.log(1 / gw[2])], atol=1e-3)


def test_training_fits_and_matches_numpy_inference():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from isplab.train.ffcc import Samples, errors, fit

    cfg = ffcc.FFCCConfig(bins=16, bin_size=1 / 8, work_pixels=4096)
    rng = np.random.default_rng(0)
    feats, truth = [], []
    for k in range(12):  # a consistent bias: the light is always 0.125 "redder" than gray world
        img = cast(scene(k, 96), rng.uniform([0.4, 1, 0.3], [0.9, 1, 0.7]))
        h, c = ffcc.features(img, cfg)
        feats.append((h, c))
        truth.append(cc.normalise([np.exp(-(c[0] - 0.125)), 1, np.exp(-c[1])]))
    s = Samples(np.stack([f[0] for f in feats]), np.stack([f[1] for f in feats]),
                np.stack(truth), {})
    model = fit(s, cfg, tv=1e-4, l2=1e-6, iterations=60)
    assert errors(model, s).mean() < 1.0
    # the NumPy inference path gives what the torch training forward gives
    h, c = feats[0]
    p = ffcc.posterior(h, model)
    co = cfg.coords()
    est = ffcc.offset_to_illuminant(c, np.array([(p.sum(1) * co).sum(), (p.sum(0) * co).sum()]))
    assert cc.angular_error(est, truth[0]) == pytest.approx(errors(model, s)[0], abs=0.05)


def test_synthetic_illuminants_lie_on_the_locus():
    from isplab.synth.illuminants import (
        daylight_xy,
        planckian_xy,
        render_cast,
        sample_camera,
        sample_illuminant_xy,
    )

    np.testing.assert_allclose(daylight_xy(6504), [0.3127, 0.3291], atol=2e-3)
    np.testing.assert_allclose(planckian_xy(2856), [0.4476, 0.4074], atol=2e-3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy, cct = sample_illuminant_xy(rng)
        assert 2500 <= cct <= 10000 and 0.25 < xy[0] < 0.55
    cam = sample_camera(rng)
    light = cam.illuminant(daylight_xy(5000))
    img = render_cast(np.full((8, 8, 3), 0.18), cam, light, rng, exposure=0.5, noise=(0, 0))
    assert cc.angular_error(img.reshape(-1, 3).mean(0), light) < 0.5


def test_spectral_casts_white_is_the_truth_and_light_shifts_colours():
    from isplab.synth import spectral

    basis = spectral.reflectance_basis()
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=1e-4)  # white = flat reflectance
    # a black body at 2856 K is CIE illuminant A (relative spectra agree)
    import colour

    a = spectral._values(colour.SDS_ILLUMINANTS["A"])
    np.testing.assert_allclose(spectral.blackbody(2856) * a.mean() / a, 1.0, atol=0.02)
    rng = np.random.default_rng(0)
    for _ in range(10):
        spd, what = spectral.sample_illuminant_spd(rng)
        sens = spectral.sample_sensitivities(rng)
        assert spd.shape == sens[:, 0].shape == spectral.WAVELENGTHS.shape and spd.min() >= 0
        m, white = spectral.cast_matrix(sens, spd)
        np.testing.assert_allclose(m @ np.ones(3), white, rtol=1e-3)  # white -> the truth
        assert white[1] == 1 and np.all(white > 0), what
    warm = spectral.cast_matrix(spectral._nikon(), spectral.blackbody(2800))[1]
    cool = spectral.cast_matrix(spectral._nikon(), spectral.daylight(9000))[1]
    assert warm[0] > cool[0] and warm[2] < cool[2]  # tungsten is red, north sky blue
    img, light, _ = spectral.render_spectral(np.full((8, 8, 3), 0.18), rng, exposure=0.5,
                                             noise=(0, 0))
    assert cc.angular_error(img.reshape(-1, 3).mean(0), light) < 0.5


# --------------------------------------------------------------------------- the command


def write_rgb16(path, img):
    cv2.imwrite(str(path), np.round(np.clip(img, 0, 1) * 65535).astype(np.uint16)[..., ::-1])
    return path


def test_command_prints_errors_with_ground_truth_beside_the_file(tmp_path):
    img = write_rgb16(tmp_path / "a.png", cast(scene()))
    (tmp_path / "a_metadata.json").write_text(json.dumps(
        {"illuminant_color_raw": (CAST / np.linalg.norm(CAST)).tolist()}))
    np.save(tmp_path / "b.npy", cast(scene(1), (0.8, 1, 0.5)))
    out = tmp_path / "out.json"
    r = run("illuminant", img, tmp_path / "b.npy", "-m", "gray-world,gray-edge", "--json", out)
    assert r.exit_code == 0, r.output
    assert "angular error over 1 files" in r.output and "°" in r.output
    doc = json.loads(out.read_text())
    a, b = doc["files"]
    assert a["errors"]["gray_world"] < 2 and "errors" not in b
    assert cc.angular_error(b["estimates"]["gray_world"], (0.8, 1, 0.5)) < 2
    assert set(doc["summary"]) == {"gray_world", "gray_edge"}


def test_command_bad_inputs_one_line_each_and_the_batch_goes_on(tmp_path):
    good = write_rgb16(tmp_path / "good.png", cast(scene()))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    np.save(tmp_path / "shape.npy", np.zeros((8, 8, 2), np.float32))
    out = tmp_path / "o.json"
    r = run("illuminant", broken, tmp_path / "shape.npy", good, "-m", "gray-world",
            "--json", out)
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 2, r.output
    assert any("broken.png" in ln for ln in lines) and any("shape.npy" in ln for ln in lines)
    assert "Traceback" not in r.output
    doc = json.loads(out.read_text())
    assert [f["file"] for f in doc["files"]] == [str(good)]


def test_command_learned_estimator_with_weights_option(tmp_path):
    w = ffcc.save(tmp_path / "w.safetensors", tiny_model())
    img = write_rgb16(tmp_path / "a.png", cast(scene()))
    r = run("illuminant", img, "-m", "ffcc", "--weights", w, "--json", tmp_path / "o.json")
    assert r.exit_code == 0, r.output
    est = json.loads((tmp_path / "o.json").read_text())["files"][0]["estimates"]["ffcc"]
    assert cc.angular_error(est, CAST) < 2.5


def test_command_unknown_method_is_one_line():
    r = run("illuminant", "x.png", "-m", "retinex")
    assert r.exit_code == 2 and "unknown illuminant estimator" in r.output


def test_command_reads_a_raw_as_bayer_means(tmp_path):
    from isplab.raw import RawImage, write_dng
    from isplab.raw.cfa import mosaic

    torch = pytest.importorskip("torch")
    rgb = cast(scene(size=128)) * 0.8
    m = mosaic(torch.from_numpy(rgb).permute(2, 0, 1)[None], "GRBG")[0, 0].numpy()
    dng = write_dng(tmp_path / "c.dng", RawImage(m, cfa="GRBG", black_level=64,
                                                     white_level=4095, bit_depth=12))
    r = run("illuminant", dng, "-m", "gray-world", "--json", tmp_path / "o.json")
    assert r.exit_code == 0, r.output
    est = json.loads((tmp_path / "o.json").read_text())["files"][0]["estimates"]["gray_world"]
    assert cc.angular_error(est, CAST) < 2.0


# --------------------------------------------------------------------------- --wb


def test_wb_option_accepts_every_estimator_and_keeps_old_names():
    from isplab.commands import _options as opt

    assert opt.wb("camera") == {"use_camera_wb": True}
    assert opt.wb("none") == {"use_camera_wb": False}
    assert opt.wb("gray-world")["auto_wb_method"] == "gray_world"
    assert opt.wb("grey_world")["auto_wb_method"] == "gray_world"
    assert opt.wb("white-patch")["auto_wb_method"] == "white_patch"
    assert opt.wb("auto")["auto_wb_method"] == awb.AUTO
    for name in awb.names():
        assert opt.wb(name.replace("_", "-"))["auto_wb_method"] == name
    assert opt.wb("2,1,1.5") == {"user_wb": (2.0, 1.0, 1.5)}
    with pytest.raises(typer.BadParameter, match="unknown illuminant estimator"):
        opt.wb("retinex")


@pytest.mark.parametrize("name", ["gray_world", "white_patch", "gray_edge", "shades_of_gray"])
def test_classic_isp_neutralises_a_cast_with_any_estimator(name):
    torch = pytest.importorskip("torch")
    from isplab.classic import ClassicISP
    from isplab.raw.cfa import mosaic

    rgb = torch.from_numpy(cast(scene(size=128))).permute(2, 0, 1)[None]
    isp = ClassicISP(use_camera_wb=False, use_auto_wb=True, auto_wb_method=name,
                     use_color_matrix=False, gamma=(1, 1), no_auto_bright=True)
    g = isp._select_gains(mosaic(rgb, "RGGB"), "RGGB", None)
    assert cc.angular_error(1 / g[0].numpy(), CAST) < 2.0


def test_shipped_weights_load_through_the_default_path():
    if not ffcc.DEFAULT_WEIGHTS.is_file():
        pytest.skip("no shipped weights (python benchmarks/train_awb.py)")
    model = ffcc.default_model()
    assert model.config.channels == ffcc.CHANNELS
    record = json.loads(ffcc.DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert "train_awb.py" in record["command"] and record["validation"]["ffcc"]["n"] > 100
    assert cc.angular_error(awb.estimate("ffcc", cast(scene())), CAST) < 5.0
