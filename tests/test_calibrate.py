"""Chart calibration (issue 17.1): the fit (synthetic charts with a known camera), patch CSV
and profile IO, chart sampling, bad input, ``isplab calibrate`` and ``develop --profile``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from isplab.classic import calibration as cal
from isplab.classic import profile as prof
from isplab.classic.chart import find_chart
from isplab.cli import app
from isplab.errors import InvalidInputError
from isplab.raw.image import RawImage
from tests.conftest import CANON_DNG, need

runner = CliRunner()

#: a white-preserving camera -> sRGB matrix and gains of a made-up camera
TRUE_M = np.array([[1.70, -0.55, -0.15], [-0.25, 1.55, -0.30], [0.05, -0.50, 1.45]])
TRUE_GAINS = np.array([2.0, 1.0, 1.5])


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def synthetic_patches(offset=(0.0, 0.0, 0.0), exposure: float = 0.5) -> np.ndarray:
    """Camera RGB of the reference chart seen by the made-up camera (TRUE_M, TRUE_GAINS)."""
    _, ref = cal.reference_chart()
    return ref @ np.linalg.inv(TRUE_M).T / TRUE_GAINS * exposure + np.asarray(offset)


def chart_raw(camera_rgb: np.ndarray, cell: int = 24, cfa: str = "RGGB") -> tuple[RawImage, list]:
    """A mosaic of the 24 patches (cells of ``cell`` raw pixels, 2 px gaps) on a dark frame,
    and the corners of the patch area (raw pixels)."""
    h, w = 4 * cell + 40, 6 * cell + 40
    rgb = np.full((h, w, 3), 0.01, np.float32)
    for i, v in enumerate(camera_rgb):
        y, x = 20 + (i // 6) * cell, 20 + (i % 6) * cell
        rgb[y + 2:y + cell - 2, x + 2:x + cell - 2] = v
    from isplab.raw.cfa import packed_offsets

    mosaic = np.zeros((h, w), np.float32)
    for (dy, dx), c in zip(packed_offsets(cfa), (0, 1, 1, 2), strict=True):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, c]
    corners = [20, 20, 20 + 6 * cell, 20, 20 + 6 * cell, 20 + 4 * cell, 20, 20 + 4 * cell]
    return RawImage(mosaic, cfa=cfa, white_level=4095.0), corners


# ------------------------------------------------------------------------------ numerics


def test_delta_e2000_matches_colour_science(rng):
    import colour

    a = rng.uniform([0, -90, -90], [100, 90, 90], (500, 3))
    b = a + rng.normal(0, 6, (500, 3))
    np.testing.assert_allclose(cal.delta_e2000(a, b),
                               colour.delta_E(a, b, method="CIE 2000"), atol=1e-9)
    np.testing.assert_allclose(cal.linear_srgb_to_lab(np.ones(3)), [100, 0, 0], atol=1e-6)


def test_reference_chart_is_adapted_to_d65():
    names, ref = cal.reference_chart()
    assert len(names) == 24 and names[0] == "dark skin" and ref.shape == (24, 3)
    lab = cal.linear_srgb_to_lab(ref)
    assert abs(lab[18, 0] - 95.2) < 0.5 and np.all(np.abs(lab[18:, 1:]) < 3.5)


def test_synthetic_chart_recovers_the_camera():
    cam = synthetic_patches()
    fit = cal.fit_transform(cam, kind="matrix", black_offset=False)
    np.testing.assert_allclose(fit.gains, TRUE_GAINS, rtol=1e-3)
    np.testing.assert_allclose(fit.coefficients, TRUE_M, atol=2e-3)
    np.testing.assert_allclose(fit.coefficients.sum(1), 1, atol=1e-9)
    _, ref = cal.reference_chart()
    inside = ref.min(1) >= 0  # cyan lies outside sRGB: clipped at 0, as develop does
    assert fit.delta_e[inside].max() < 0.02 and abs(fit.exposure - 2.0) < 0.01


def test_synthetic_chart_with_black_offset_and_root_polynomial():
    off = np.array([0.004, 0.006, 0.005])
    cam = synthetic_patches(offset=off)
    plain = cal.fit_transform(cam, kind="matrix", black_offset=False)
    fit = cal.fit_transform(cam, kind="matrix", black_offset=True)
    assert fit.mean < 0.3 < plain.mean
    np.testing.assert_allclose(fit.black_offset, off, atol=1.5e-3)
    rp = cal.fit_transform(synthetic_patches(), kind="root-polynomial-2", black_offset=False)
    assert rp.coefficients.shape == (3, 6) and rp.mean < 0.3
    np.testing.assert_allclose(rp.coefficients.sum(1), 1, atol=1e-9)


def test_root_polynomial_is_exposure_invariant_and_matches_torch():
    import torch

    from isplab.classic.color import RootPolynomial

    rgb = np.random.default_rng(0).uniform(0, 1, (5, 3))
    coef = np.random.default_rng(1).normal(0, 1, (3, 13))
    out = cal.apply_transform(rgb, "root-polynomial-3", coef)
    np.testing.assert_allclose(cal.apply_transform(3 * rgb, "root-polynomial-3", coef),
                               3 * out, rtol=1e-9)
    t = torch.tensor(rgb.T.reshape(1, 3, 5, 1), dtype=torch.float64)
    got = RootPolynomial(coef, 3)(t)[0, :, :, 0].numpy().T
    np.testing.assert_allclose(got, out, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_leave_one_out_is_worse_than_in_sample():
    cam = synthetic_patches() * np.random.default_rng(2).uniform(0.97, 1.03, (24, 3))
    fit = cal.calibrate(cam, kind="matrix", black_offset=False)
    assert np.isfinite(fit.loo_delta_e).all() and fit.loo_mean >= fit.mean


# ------------------------------------------------------------------------------ chart


def test_chart_is_found_at_corners_in_any_order():
    cam = synthetic_patches(exposure=0.3)
    raw, corners = chart_raw(cam, cfa="GRBG")
    c = np.reshape(corners, (4, 2))
    for order in (c, c[::-1], np.roll(c, 1, 0)):
        found = find_chart(raw, order)
        np.testing.assert_allclose(found.camera_rgb, cam, rtol=1e-5)
        assert not found.clipped.any() and found.method == "corners"


def test_clipped_and_small_charts_are_refused():
    cam = synthetic_patches(exposure=0.3)
    cam[[0, 1, 6, 7, 11, 18, 19]] = 1.0
    raw, corners = chart_raw(cam)
    with pytest.raises(InvalidInputError, match="chart clipped"):
        find_chart(raw, np.reshape(corners, (4, 2)))
    raw, _ = chart_raw(synthetic_patches(exposure=0.3))
    with pytest.raises(InvalidInputError, match="too small"):
        find_chart(raw, np.array([[20, 20], [50, 20], [50, 40], [20, 40]]))


def test_no_chart_tells_to_use_corners(rng):
    raw = RawImage(rng.uniform(0.2, 0.3, (240, 360)).astype(np.float32))
    with pytest.raises(InvalidInputError, match="--corners"):
        find_chart(raw)


@pytest.mark.slow
def test_canon_dng_chart_is_detected_and_fitted():
    from isplab import raw as rawio

    found = find_chart(rawio.read(need(CANON_DNG)))
    assert found.method == "detected" and not found.clipped.any() and found.cell > 90
    fit = cal.fit_transform(found.camera_rgb, kind="matrix")
    assert fit.mean < 2.6  # measured 2.26 (as shot: 14.7)


# ------------------------------------------------------------------------------ files


def test_patches_csv_round_trip(tmp_path):
    cam = synthetic_patches()
    cam[5] = np.nan
    path = tmp_path / "p.csv"
    path.write_text(prof.patches_csv(cam))
    got = prof.read_patches_csv(path)
    np.testing.assert_allclose(got, cam, rtol=1e-7)
    assert np.isnan(got[5]).all()
    plain = tmp_path / "plain.csv"
    plain.write_text("# r,g,b\n" + "\n".join(",".join(map(str, r)) for r in cam[:5]))
    with pytest.raises(InvalidInputError, match="plain.csv: needs 24 patch rows"):
        prof.read_patches_csv(plain)


@pytest.mark.parametrize("text, message", [
    ("not json", "not a readable profile JSON"),
    ('{"format": "other"}', "not an isplab camera profile"),
    ('{"format": "isplab-camera-profile", "kind": "matrix", "gains": [1, 1, 1], '
     '"matrix": [[1, 0], [0, 1]]}', '"matrix" must be 3 x 3'),
])
def test_bad_profiles_are_one_line(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message) as info:
        prof.load_profile(path)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_calibrate_patches_cli_round_trip(tmp_path):
    csv = tmp_path / "chart.csv"
    csv.write_text(prof.patches_csv(synthetic_patches()))
    out = tmp_path / "cam.json"
    r = _invoke("calibrate", "--patches", csv, "-o", out, "--transform", "matrix",
                "--no-black-offset")
    assert r.exit_code == 0, r.output
    assert "leave-one-patch-out" in r.output and (tmp_path / "cam_chart.png").is_file()
    doc = json.loads(out.read_text())
    assert doc["kind"] == "matrix" and doc["fit"]["mean_delta_e2000"] < 0.3
    loaded = prof.load_profile(out)
    np.testing.assert_allclose(loaded.coefficients, TRUE_M, atol=0.05)
    again = _invoke("calibrate", "--patches", csv, "-o", out, "--transform", "matrix")
    assert again.exit_code == 1 and "exists" in again.output


def test_calibrate_bad_csv_is_one_line_and_writes_nothing(tmp_path):
    csv = tmp_path / "short.csv"
    csv.write_text("1,2,3\n")
    r = _invoke("calibrate", "--patches", csv, "-o", tmp_path / "p.json")
    assert r.exit_code == 1
    assert "short.csv: needs 24 patch rows" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.csv"]


def _calibrate_acme_chart(tmp_path, raw, corners):
    """The chart raw as an "Acme One" DNG calibrated (3x3, no black offset) into acme.json:
    ``(dng, profile, calibrate's result, the profile's JSON)``."""
    from isplab.raw.dng import write_dng

    dng = write_dng(tmp_path / "chart.dng", raw, make="Acme", model="One")
    profile = tmp_path / "acme.json"
    r = _invoke("calibrate", dng, "--corners", ",".join(map(str, corners)), "-o", profile,
                "--transform", "matrix", "--no-black-offset")
    assert r.exit_code == 0, r.output
    return dng, profile, r, json.loads(profile.read_text())


@pytest.mark.slow
def test_calibrate_and_develop_with_profile(tmp_path):
    from isplab.io import read_image
    from isplab.raw.dng import write_dng

    cam = synthetic_patches(exposure=0.25)
    raw, corners = chart_raw(cam, cell=32)
    dng, profile, r, doc = _calibrate_acme_chart(tmp_path, raw, corners)
    assert doc["camera"] == {"make": "Acme", "model": "One"} and len(doc["source"]["sha256"]) == 64
    assert (tmp_path / "acme_patches.csv").is_file()
    r = _invoke("develop", dng, "-o", tmp_path / "dev", "--profile", profile, "--no-auto-bright",
                "--gamma", "linear", "--output-bps", "16")
    assert r.exit_code == 0, r.output
    img = read_image(tmp_path / "dev" / "chart.png")[0].permute(1, 2, 0).numpy()
    de, _ = cal.chart_delta_e(_centres(img, 32))  # the developed patches
    assert np.nanmean(de) < 1.0
    other = write_dng(tmp_path / "other.dng", raw, make="Other", model="Two")
    r = _invoke("develop", other, "-o", tmp_path / "dev2", "--profile", profile)
    assert r.exit_code == 0 and "Other Two" in r.output and "Acme One" in r.output


def _centres(img: np.ndarray, cell: int) -> np.ndarray:
    return np.array([img[20 + (i // 6) * cell + cell // 2, 20 + (i % 6) * cell + cell // 2]
                     for i in range(24)], dtype=np.float64)


def test_develop_rejects_a_bad_profile(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{}")
    raw, _ = chart_raw(synthetic_patches(exposure=0.2))
    np.save(tmp_path / "m.npy", raw.mosaic)
    r = _invoke("develop", tmp_path / "m.npy", "-o", tmp_path / "out", "--profile", bad)
    assert r.exit_code == 2 and "p.json" in r.output and "not an isplab camera profile" \
        in r.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ flat field

#: a made-up chart shading: light falling off downwards and towards the sides
TRUE_FLAT = np.array([0.1, -0.6, -0.9, -0.4, 0.1])


def shaded_chart_raw(cell: int = 48):
    """chart_raw with every raw pixel multiplied by the TRUE_FLAT surface."""
    from isplab.classic.flatfield import FlatField

    raw, corners = chart_raw(synthetic_patches(exposure=0.6), cell=cell)
    h, w = raw.mosaic.shape
    ff = FlatField(TRUE_FLAT, w, h)
    ys, xs = np.mgrid[0:h, 0:w]
    raw.mosaic = (raw.mosaic * ff.gain(xs, ys)).astype(np.float32)
    return raw, corners


def test_flat_field_is_measured_inside_the_patches():
    raw, corners = shaded_chart_raw()
    found = find_chart(raw, np.reshape(corners, (4, 2)))
    np.testing.assert_allclose(found.flat_field.coefficients, TRUE_FLAT, atol=0.03)
    assert found.shading.max() == pytest.approx(1) and found.shading.min() < 0.7
    flat = cal.fit_transform(found.camera_rgb / found.shading[:, None], kind="matrix",
                             black_offset=False)
    shaded = cal.fit_transform(found.camera_rgb, kind="matrix", black_offset=False)
    _, ref = cal.reference_chart()
    inside = ref.min(1) >= 0  # cyan lies outside sRGB (clipped at 0)
    assert flat.delta_e[inside].mean() < 0.3 < 2 < shaded.mean
    np.testing.assert_allclose(flat.coefficients, TRUE_M, atol=0.04)


def test_even_chart_has_a_flat_flat_field():
    raw, corners = chart_raw(synthetic_patches(exposure=0.6), cell=48)
    found = find_chart(raw, np.reshape(corners, (4, 2)))
    np.testing.assert_allclose(found.flat_field.coefficients, 0, atol=1e-3)
    np.testing.assert_allclose(found.shading, 1, atol=1e-3)


def test_flat_field_profile_round_trip_and_other_frames(tmp_path):
    from isplab.classic.flatfield import FlatField

    ff = FlatField(TRUE_FLAT, 232, 168, 1.2)
    doc = {"format": prof.FORMAT, "kind": "matrix", "gains": [2, 1, 1.5], "matrix": TRUE_M.tolist(),
           "source": {"file": "a.dng", "sha256": "0" * 64},
           "flat_field": prof.flat_field_dict(ff, np.ones(24), True, {"off": 3.0, "on": 1.0})}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    loaded = prof.load_profile(path)
    np.testing.assert_allclose(loaded.flat_field.coefficients, TRUE_FLAT)
    assert (loaded.flat_field.width, loaded.flat_field.height, loaded.flat_field.scale) == \
        (232, 168, 1.2) and loaded.source_sha256 == "0" * 64
    raw = RawImage(np.full((168, 232), 0.5, np.float32), path=tmp_path / "other.npy")
    np.save(raw.path, raw.mosaic)
    assert loaded.apply_levels(raw) is raw  # another frame: the chart's shading is not its own
    doc["flat_field"]["applied"] = False
    path.write_text(json.dumps(doc))
    assert prof.load_profile(path).flat_field is None


@pytest.mark.slow
def test_calibrate_and_develop_a_shaded_chart(tmp_path):
    from isplab.io import read_image

    raw, corners = shaded_chart_raw()
    dng, profile, r, doc = _calibrate_acme_chart(tmp_path, raw, corners)
    assert doc["flat_field"]["applied"] and doc["fit"]["loo_mean_delta_e2000"] < 0.5
    assert "flat field on" in r.output
    r = _invoke("develop", dng, "-o", tmp_path / "dev", "--profile", profile, "--no-auto-bright",
                "--gamma", "linear", "--output-bps", "16")
    assert r.exit_code == 0, r.output
    img = read_image(tmp_path / "dev" / "chart.png")[0].permute(1, 2, 0).numpy()
    cell = 48
    centres = np.array([img[20 + (i // 6) * cell + cell // 2, 20 + (i % 6) * cell + cell // 2]
                        for i in range(24)], dtype=np.float64)
    de, _ = cal.chart_delta_e(centres)
    assert np.nanmean(de) < 1.0
