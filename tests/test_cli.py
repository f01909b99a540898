"""The isplab CLI: develop and info, outputs, batch failures, never losing data."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from isplab.cli import app
from isplab.raw import write_dng
from isplab.sample import make_sample_raw
from tests.conftest import BGGR_12BIT, CANON_DNG, need

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory):
    return write_dng(tmp_path_factory.mktemp("in") / "sample.dng", make_sample_raw())


def test_develop_sample(tmp_path):
    r = run("develop", "--sample", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    png = tmp_path / "isplab_sample_astronaut.png"
    img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert (tmp_path / "isplab_sample_astronaut.dng").exists()
    assert "1 developed, 0 failed" in r.output


def test_16bit_png_and_tiff(tmp_path, sample_dng):
    r = run("develop", sample_dng, "-o", tmp_path, "--output-bps", "16")
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(tmp_path / "sample.png"), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (512, 512, 3)
    assert len(np.unique(img)) > 256  # really 16-bit data, not 8-bit scaled
    r = run("develop", sample_dng, "-o", tmp_path, "--output-bps", "16", "--format", "tiff")
    assert r.exit_code == 0, r.output
    import tifffile

    tif = tifffile.imread(tmp_path / "sample.tiff")
    # same pixels as the PNG (OpenCV stores BGR)
    np.testing.assert_array_equal(tif, img[..., ::-1])


def test_jpeg_16bit_refused(tmp_path, sample_dng):
    r = run("develop", sample_dng, "-o", tmp_path, "--format", "jpg", "--output-bps", "16")
    assert r.exit_code != 0
    assert "8-bit only" in r.output
    assert list(tmp_path.iterdir()) == []


def test_existing_output_kept_unless_overwrite(tmp_path, sample_dng):
    """Re-running into a folder skips existing outputs (exit 0, issue 20.8); --overwrite
    replaces only images isplab wrote, never a file it did not (issue 21.5)."""
    out = tmp_path / "sample.png"
    out.write_bytes(b"keep me")
    r = run("develop", sample_dng, "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and "--overwrite" in r.output
    assert out.read_bytes() == b"keep me"
    r = run("develop", sample_dng, "-o", tmp_path, "--overwrite")
    assert r.exit_code == 1
    assert "was not written by isplab" in r.output
    assert out.read_bytes() == b"keep me"
    out.unlink()
    assert run("develop", sample_dng, "-o", tmp_path).exit_code == 0
    first = out.stat().st_mtime_ns
    r = run("develop", sample_dng, "-o", tmp_path)  # again: skipped, untouched
    assert r.exit_code == 0 and "1 skipped" in r.output and out.stat().st_mtime_ns == first
    r = run("develop", sample_dng, "-o", tmp_path, "--overwrite", "--output-bps", "16")
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # replaced


def test_output_never_replaces_an_input(tmp_path):
    # a mosaic stored as PNG, developed into its own folder with --overwrite: refused
    ints = (np.random.default_rng(0).random((32, 32)) * 1023).astype(np.uint16)
    src = tmp_path / "frame.png"
    cv2.imwrite(str(src), ints)
    before = digest(src)
    r = run("develop", src, "-o", tmp_path, "--overwrite", "--bits", "10")
    assert r.exit_code == 1
    assert "would replace an input file" in r.output
    assert digest(src) == before


def test_batch_goes_on_past_bad_files(tmp_path, sample_dng):
    bad_dir = tmp_path / "in"
    bad_dir.mkdir()
    (bad_dir / "empty.dng").write_bytes(b"")
    cut = bad_dir / "cut.dng"
    cut.write_bytes(sample_dng.read_bytes()[:2000])
    jpg = bad_dir / "photo.dng"
    cv2.imwrite(str(tmp_path / "p.jpg"), np.zeros((8, 8, 3), np.uint8))
    jpg.write_bytes((tmp_path / "p.jpg").read_bytes())
    nan = np.full((8, 8), 0.5, np.float32)
    nan[2, 2] = np.nan
    np.save(bad_dir / "nan.npy", nan)
    (bad_dir / "good.dng").write_bytes(sample_dng.read_bytes())
    out = tmp_path / "out"
    r = run("develop", bad_dir, tmp_path / "missing.dng", "-o", out)
    assert r.exit_code == 1
    assert (out / "good.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    assert "1 developed, 5 failed" in r.output
    for expected in ("empty.dng: empty file", "cut.dng: truncated or corrupt",
                     "photo.dng: this is a JPEG image", "missing.dng: no such file",
                     "nan.npy: data contains 1 NaN"):
        assert expected in r.output
    assert "Traceback" not in r.output


def test_headerless_flags(tmp_path):
    src = need(BGGR_12BIT)
    r = run("develop", src, "-o", tmp_path, "--width", 1920, "--height", 1080, "--bits", 12,
            "--cfa", "BGGR", "--wb", "auto", "--half-size")
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(tmp_path / f"{src.stem}.png"))
    assert img.shape == (540, 960, 3)
    r = run("develop", src, "-o", tmp_path / "b", "--width", 1920, "--height", 1000, "--bits", 12)
    assert r.exit_code == 1
    assert "needs 3,840,000 bytes" in r.output and "Traceback" not in r.output


def test_wb_and_gamma_options(tmp_path, sample_dng):
    r = run("develop", sample_dng, "-o", tmp_path, "--wb", "2.0,1,1.5", "--gamma", "bt709",
            "--demosaic", "malvar2004", "--tone", "filmic", "--no-auto-bright")
    assert r.exit_code == 0, r.output
    r = run("develop", sample_dng, "-o", tmp_path / "x", "--wb", "1,2")
    assert r.exit_code != 0 and "3 comma-separated numbers" in r.output


def test_info_table_and_json():
    path = need(CANON_DNG)
    r = run("info", path, "--json")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert meta["cfa"] == "RGGB" and meta["white_level"] == 15000.0
    assert meta["width"] == 1734 and meta["height"] == 1156
    r = run("info", path)
    assert r.exit_code == 0 and "camera_to_srgb" in r.stdout


def test_info_on_bad_input_is_one_line(tmp_path):
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    r = run("info", tmp_path / "x.jpg")
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0
    assert "x.jpg: this is a JPEG image, not raw sensor data" in r.output


def test_truncated_raw_is_one_clean_line_in_a_real_process(tmp_path):
    """LibRaw writes to the C-level stderr; the command must still print one line."""
    import subprocess
    import sys

    cut = tmp_path / "cut.dng"
    cut.write_bytes(need(CANON_DNG).read_bytes()[:100_000])
    # the header is intact: info (header only) describes it, quietly; --pixels decodes
    proc = subprocess.run([sys.executable, "-m", "isplab.cli", "info", str(cut)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "isplab.cli", "info", "--pixels", str(cut)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "cut.dng: truncated or corrupt raw file" in lines[0]
    assert "Unexpected end of file" in lines[0]  # LibRaw's own words, kept in the message


def _kodak_pair(tmp_path):
    from tests.conftest import DATA

    src = need(DATA / "kodak24")
    ref, res = tmp_path / "ref", tmp_path / "res"
    ref.mkdir(), res.mkdir()
    for name in ("kodim01.png", "kodim02.png"):
        im = cv2.imread(str(src / name))[:200, :240]
        cv2.imwrite(str(ref / name), im)
        cv2.imwrite(str(res / name), cv2.GaussianBlur(im, (5, 5), 1.0))
    return res, ref


def test_metrics_folders_and_json(tmp_path):
    import torch

    from isplab.io import read_image
    from isplab.metrics import psnr, ssim

    res, ref = _kodak_pair(tmp_path)
    (res / "extra.png").write_bytes((res / "kodim01.png").read_bytes())  # no reference
    out_json = tmp_path / "m.json"
    r = run("metrics", res, ref, "--metrics", "psnr,ssim", "--json", out_json)
    assert r.exit_code == 1  # the unmatched file is reported...
    assert "extra.png: no reference named extra" in r.output
    data = json.loads(out_json.read_text())  # ...and the matched pairs are still scored
    assert sorted(data["per_image"]) == ["kodim01.png", "kodim02.png"]
    x, y = read_image(res / "kodim02.png"), read_image(ref / "kodim02.png")
    assert data["per_image"]["kodim02.png"]["psnr"] == pytest.approx(float(psnr(x, y)[0]),
                                                                    rel=1e-6)
    assert data["per_image"]["kodim02.png"]["ssim"] == pytest.approx(float(ssim(x, y)[0]),
                                                                    rel=1e-6)
    vals = [v["psnr"] for v in data["per_image"].values()]
    assert data["summary"]["psnr"]["mean"] == pytest.approx(float(torch.tensor(vals).mean()))


def test_metrics_list_and_bad_names(tmp_path):
    r = run("metrics", "--list")
    assert r.exit_code == 0 and "lpips_alex" in r.stdout and "deltae2000" in r.stdout
    res, ref = _kodak_pair(tmp_path)
    r = run("metrics", res, ref, "--metrics", "psnr,nope")
    assert r.exit_code != 0 and "unknown metric 'nope'" in r.output


def test_metrics_lpips_without_weights_says_what_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    res, ref = _kodak_pair(tmp_path)
    r = run("metrics", res / "kodim01.png", ref / "kodim01.png", "--metrics", "lpips_alex")
    assert r.exit_code == 1
    assert "alexnet-owt-7be5be79.pth" in r.output and "Traceback" not in r.output
