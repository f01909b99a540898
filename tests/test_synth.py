"""isplab.synth: unprocessing (Brooks et al. 2019), noise/low light/quantisation, the writer
and ``isplab synth``. Real photos from ../shared/data/kodak24."""

from __future__ import annotations

import json
import math

import cv2
import kornia
import numpy as np
import pytest
import torch

from isplab.classic import SRGB_TO_XYZ, smoothstep, srgb_gamma
from isplab.errors import InvalidInputError
from isplab.io import read_image
from isplab.raw import BAYER_PATTERNS, color_masks, pack, unpack
from isplab.synth import (
    XYZ_TO_CAMS,
    UnprocessParams,
    add_noise,
    degrade,
    noise_level_map,
    process,
    quantize,
    roundtrip_mask,
    sample_noise_params,
    sample_params,
    simulate_low_light,
    synthesize_dataset,
    synthesize_pair,
    unprocess,
)
from isplab.synth.unprocess import BLUE_GAIN_RANGE, RED_GAIN_RANGE, RGB_GAIN_INV_CLAMP
from tests.conftest import DATA, need

KODAK = DATA / "kodak24"


def kodak(name: str, size: int = 128, top: int = 200, left: int = 300) -> torch.Tensor:
    """A ``1 x 3 x size x size`` crop of a Kodak24 photo."""
    x = read_image(need(KODAK / f"{name}.png"))
    return x[..., top:top + size, left:left + size].contiguous()


def masked_psnr(y: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> float:
    d = ((y - x) ** 2).mean(dim=-3, keepdim=True)[mask]
    return 10 * math.log10(1.0 / d.mean().item())


# ------------------------------------------------------------------------- parameters


def test_sampled_params_follow_the_spec():
    ps = [sample_params(seed) for seed in range(300)]
    for p in ps:
        np.testing.assert_allclose(p.rgb_to_cam.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(p.cam_to_rgb @ p.rgb_to_cam, np.eye(3), atol=1e-10)
        # rgb_to_cam is the row-normalised xyz_to_cam @ SRGB_TO_XYZ, xyz_to_cam a convex mix
        m = p.xyz_to_cam @ SRGB_TO_XYZ
        np.testing.assert_allclose(p.rgb_to_cam, m / m.sum(axis=1, keepdims=True), atol=1e-12)
        stack = np.stack(XYZ_TO_CAMS)
        assert np.all(p.xyz_to_cam >= stack.min(0) - 1e-12)
        assert np.all(p.xyz_to_cam <= stack.max(0) + 1e-12)
        assert RED_GAIN_RANGE[0] <= p.red_gain <= RED_GAIN_RANGE[1]
        assert BLUE_GAIN_RANGE[0] <= p.blue_gain <= BLUE_GAIN_RANGE[1]
        assert RGB_GAIN_INV_CLAMP[0] <= 1 / p.rgb_gain <= RGB_GAIN_INV_CLAMP[1]
        assert p.cfa == "RGGB"
    inv = np.array([1 / p.rgb_gain for p in ps])
    assert abs(inv.mean() - 0.8) < 0.02 and abs(inv.std() - 0.1) < 0.02
    reds = np.array([p.red_gain for p in ps])
    assert abs(reds.mean() - 2.15) < 0.03 and reds.max() - reds.min() > 0.4


def test_params_json_round_trip_and_determinism():
    p = sample_params(7, cfa="gbrg")
    assert p.cfa == "GBRG"
    d = json.loads(json.dumps(p.to_dict()))
    q = UnprocessParams.from_dict(d)
    np.testing.assert_array_equal(q.rgb_to_cam, p.rgb_to_cam)
    np.testing.assert_array_equal(q.cam_to_rgb, p.cam_to_rgb)
    assert (q.rgb_gain, q.red_gain, q.blue_gain, q.cfa) == (p.rgb_gain, p.red_gain, p.blue_gain,
                                                            "GBRG")
    # int seed == generator with that seed; another seed differs
    g = torch.Generator().manual_seed(7)
    assert sample_params(g, cfa="GBRG").to_dict() == p.to_dict()
    assert sample_params(8).to_dict() != p.to_dict()
    with pytest.raises(InvalidInputError):
        UnprocessParams.from_dict({"rgb_gain": 1.0})
    with pytest.raises(InvalidInputError):
        UnprocessParams(np.eye(3), np.eye(3), -1.0, 2.0, 1.7)


def test_unprocess_metadata_and_batches():
    x = kodak("kodim05", 32)
    raw, meta = unprocess(x[0], generator=3)
    assert raw.shape == (4, 16, 16) and raw.dtype == torch.float32
    assert 0 <= raw.min() and raw.max() <= 1
    json.dumps(meta)  # serialisable as is
    assert meta["gamma"] == "srgb" and meta["cfa"] == "RGGB"
    raw2, meta2 = unprocess(x[0], generator=3)
    assert torch.equal(raw, raw2) and meta == meta2
    assert not torch.equal(unprocess(x[0], generator=4)[0], raw)
    # a batch samples one camera per image, in order, from one generator
    batch = torch.cat([x, kodak("kodim07", 32)])
    braw, bmeta = unprocess(batch, generator=3)
    assert braw.shape == (2, 4, 16, 16) and isinstance(bmeta, list) and len(bmeta) == 2
    assert bmeta[0] == meta and bmeta[1] != meta
    assert torch.equal(braw[0], raw)
    assert torch.equal(braw[1], unprocess(batch[1], params=bmeta[1])[0])
    with pytest.raises(InvalidInputError, match="even"):
        unprocess(torch.rand(3, 15, 16))
    with pytest.raises(InvalidInputError):
        unprocess(torch.zeros(3, 16, 16, dtype=torch.int16))


def test_unprocess_known_values():
    """Mid-grey and white pixels through Brooks' steps by hand."""
    p = sample_params(11)
    x = torch.tensor([0.5, 1.0]).view(1, 1, 2).expand(3, 2, 2).contiguous()  # 3 x 2 x 2
    cam, meta = unprocess(x, params=p, mosaic_output=False, brooks=True)
    assert meta["gamma"] == "2.2"
    # 0.5 is a fixed point of the inverse smoothstep; rows of rgb_to_cam sum to 1
    grey = 0.5**2.2 * p.inverse_gains
    np.testing.assert_allclose(cam[:, :, 0].T.numpy(), np.tile(grey, (2, 1)), rtol=1e-5)
    # white: camera mean 1 -> highlight protection keeps it at 1 (not darkened to grey)
    np.testing.assert_allclose(cam[:, :, 1].numpy(), 1.0, atol=1e-6)
    mask = roundtrip_mask(x, p, brooks=True)
    assert mask[0, :, 0].all() and not mask[0, :, 1].any()


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_cfa_puts_each_colour_at_its_site(pattern):
    x = kodak("kodim03", 16)[0]
    p = sample_params(1)
    cam, _ = unprocess(x, params=p, cfa=pattern, mosaic_output=False)
    mos, meta = unprocess(x, params=p, cfa=pattern, packed=False)
    packed, _ = unprocess(x, params=p, cfa=pattern)
    assert meta["cfa"] == pattern and mos.shape == (1, 16, 16)
    masks = color_masks(pattern, 16, 16)[0]  # 3 x H x W, 1 where the site sees that colour
    assert torch.equal(mos[0], (cam * masks).sum(0))
    assert torch.equal(packed, pack(mos[None], pattern)[0])
    assert torch.equal(unpack(packed[None], pattern)[0], mos)
    # packed channel 0 is red wherever the red site is
    (ry, rx) = [(i, j) for i in range(2) for j in range(2) if pattern[2 * i + j] == "R"][0]
    assert torch.equal(packed[0], cam[0, ry::2, rx::2])
    # mosaic and packed forms develop to the same image
    assert torch.allclose(process(mos, meta), process(packed, meta), atol=1e-6)


# ------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(("name", "seed"), [("kodim01", 0), ("kodim08", 1), ("kodim20", 2)])
def test_round_trip_kodak_colour_and_tone(name, seed):
    """process(unprocess(x)) == x outside clipped pixels, without the CFA (exact inverse)."""
    x = kodak(name)
    p = sample_params(seed)
    cam, meta = unprocess(x, params=p, mosaic_output=False)
    y = process(cam, meta)
    mask = roundtrip_mask(x, p)
    assert mask.float().mean() > 0.5
    assert masked_psnr(y, x, mask) >= 40.0
    # Brooks' decode (x ** 2.2) inverts through process's metadata-driven gamma as well
    cam, meta = unprocess(x, params=p, mosaic_output=False, brooks=True)
    assert masked_psnr(process(cam, meta), x, roundtrip_mask(x, p, brooks=True)) >= 40.0


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_round_trip_kodak_through_the_cfa(pattern):
    """Full path (mosaic + bilinear demosaic): >= 40 dB on a smooth (blurred) photo, where
    demosaicing is near exact, so every CFA site is where process expects it; on the sharp
    photo the bilinear demosaicing error dominates (about 23-31 dB on Kodak24)."""
    x = kodak("kodim23")
    smooth = kornia.filters.gaussian_blur2d(x, (13, 13), (2.0, 2.0), border_type="reflect")
    p = sample_params(5, cfa=pattern)
    raw, meta = unprocess(smooth, params=p)
    assert masked_psnr(process(raw, meta), smooth, roundtrip_mask(smooth, p)) >= 40.0
    raw, meta = unprocess(x, params=p)
    assert masked_psnr(process(raw, meta), x, roundtrip_mask(x, p)) >= 25.0


def test_process_forms_and_brooks_forward_path():
    x = kodak("kodim12", 32)
    raw, meta = unprocess(x, generator=2)
    y = process(raw, meta)
    assert y.shape == (1, 3, 32, 32) and 0 <= y.min() and y.max() <= 1
    assert torch.equal(process(raw[0], meta[0]), y[0])
    assert torch.equal(process(raw, UnprocessParams.from_dict(meta[0])), y)
    # Brooks' forward: same linear sRGB, then x ** (1/2.2), no smoothstep
    b = process(raw, meta, brooks=True)
    lin = process(raw, meta, gamma="2.2", tone=False)
    assert torch.equal(b, lin)
    assert torch.allclose(smoothstep(b), process(raw, meta, gamma="2.2"), atol=1e-6)
    assert not torch.allclose(b, y, atol=1e-2)
    assert torch.allclose(smoothstep(srgb_gamma(b ** 2.2)), y, atol=1e-4)
    with pytest.raises(InvalidInputError, match="entries"):
        process(torch.rand(3, 4, 8, 8), [meta[0], meta[0]])
    with pytest.raises(InvalidInputError):
        process(raw, meta, gamma="3.0")


# ------------------------------------------------------------------------- noise


@pytest.mark.parametrize("level", [0.02, 0.1, 0.3, 0.6, 0.9])
def test_noise_variance_follows_shot_signal_plus_read(level):
    shot, read = 0.01, 2e-4
    flat = torch.full((4, 4, 128, 128), level)  # 262144 samples: variance to ~0.3 %
    noisy = add_noise(flat, shot, read, generator=int(level * 100))
    expected = shot * level + read
    assert abs(noisy.var().item() / expected - 1) < 0.05
    assert abs(noisy.mean().item() - level) < 4 * math.sqrt(expected / flat.numel())
    if level in (0.02, 0.9):  # not clipped to [0, 1]
        assert noisy.max() > 1 or noisy.min() < 0
    vmap = noise_level_map(noisy, shot, read)
    assert vmap.shape == noisy.shape
    torch.testing.assert_close(vmap, noisy.clamp(min=0) * shot + read)


def test_noise_per_image_parameters_and_determinism():
    flat = torch.full((2, 1, 256, 256), 0.5)
    shot = torch.tensor([1e-3, 1e-2])
    noisy = add_noise(flat, shot, 0.0, generator=0)
    ratio = noisy[1].var() / noisy[0].var()
    assert 9 < ratio < 11
    assert torch.equal(noisy, add_noise(flat, shot, 0.0, generator=0))
    assert not torch.equal(noisy, add_noise(flat, shot, 0.0, generator=1))
    with pytest.raises(InvalidInputError):
        add_noise(flat, torch.tensor([1e-3, 1e-2, 1e-1]), 0.0)
    with pytest.raises(InvalidInputError):
        add_noise(flat, -1.0, 0.0)


def test_sampled_noise_parameters_log_linear():
    g = torch.Generator().manual_seed(0)
    draws = [sample_noise_params(g) for _ in range(3000)]
    shot = np.log([d["shot"] for d in draws])
    read = np.log([d["read"] for d in draws])
    assert shot.min() >= math.log(1e-4) and shot.max() <= math.log(0.012)
    slope, intercept = np.polyfit(shot, read, 1)
    assert abs(slope - 2.18) < 0.03 and abs(intercept - 1.20) < 0.15
    resid = read - (slope * shot + intercept)
    assert abs(resid.std() - 0.26) < 0.02
    assert sample_noise_params(5) == sample_noise_params(5)
    with pytest.raises(InvalidInputError):
        sample_noise_params(0, shot_range=(0.0, 0.01))


def test_low_light_and_quantisation():
    x = kodak("kodim19", 64)
    raw, _ = unprocess(x, generator=0)
    dark = simulate_low_light(raw, 4.0)
    torch.testing.assert_close(dark.mean(), raw.mean() / 4)
    out, info = degrade(raw, generator=0, noise=False, low_light=4.0, bit_depth=12)
    assert info == {"noise": False, "shot": 0.0, "read": 0.0, "low_light": 4.0,
                    "bit_depth": 12, "black_level": 256.0, "white_level": 4095.0}
    steps = out.double() * (4095 - 256)
    assert torch.allclose(steps, steps.round(), atol=1e-3)  # on the 12-bit grid
    assert abs(out.mean().item() - raw.mean().item() / 4) < 1 / 3839
    # quantize: 10-bit grid with a black level; below-black stays negative
    q = quantize(torch.tensor([[[-0.01, 0.0, 0.5, 1.2]]]), 10, black_level=64)
    np.testing.assert_allclose(q.numpy().ravel(), [-10 / 959, 0, 480 / 959, 959 / 959],
                               rtol=1e-6)
    with pytest.raises(InvalidInputError):
        quantize(raw, 0)
    with pytest.raises(InvalidInputError):
        quantize(raw, 8, black_level=255)
    with pytest.raises(InvalidInputError):
        simulate_low_light(raw, 0.0)


def test_degrade_noise_and_batches():
    flat = torch.full((3, 4, 64, 64), 0.25)
    out, info = degrade(flat, generator=9, low_light=2.0, bit_depth=14)
    assert len(info["shot"]) == 3 and len(info["read"]) == 3
    assert 0 <= out.min() and out.max() <= 1
    for i in range(3):  # measured variance per image matches its own draw (+ quantisation)
        expected = info["shot"][i] * 0.125 + info["read"][i] + (1 / (16383 - 1024)) ** 2 / 12
        assert abs(out[i].var().item() / expected - 1) < 0.1
    again, info2 = degrade(flat, generator=9, low_light=2.0, bit_depth=14)
    assert torch.equal(out, again) and info == info2
    given, ginfo = degrade(flat[0], generator=0, noise={"shot": 0.01, "read": 0.0})
    assert ginfo["shot"] == 0.01 and abs(given.var().item() / 0.0025 - 1) < 0.1
    with pytest.raises(InvalidInputError):
        degrade(flat, noise={"shot": 0.01})


# ------------------------------------------------------------------------- writer


@pytest.fixture
def photos(tmp_path):
    """Two small photos (Kodak crops), one too small, one corrupt."""
    src = tmp_path / "src"
    src.mkdir()
    for name, top in (("kodim04", 100), ("kodim21", 300)):
        arr = cv2.imread(str(need(KODAK / f"{name}.png")))[top:top + 80, 200:300]
        cv2.imwrite(str(src / f"{name}.png"), arr)
    cv2.imwrite(str(src / "tiny.png"), np.zeros((20, 40, 3), np.uint8))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_writer_layout_determinism_and_skips(photos, tmp_path):
    sources = [photos / "kodim04.png", photos / "tiny.png", photos / "broken.jpg",
               photos / "kodim21.png"]
    seen = []
    out = tmp_path / "a"
    report = synthesize_dataset(sources, out, patch=32, per_image=2, seed=3,
                                progress=lambda d, t, s: seen.append((d, t, s.name)))
    ids = ["kodim04_000", "kodim04_001", "kodim21_000", "kodim21_001"]
    assert report["ids"] == ids
    assert seen[-1] == (4, 4, "kodim21.png")
    reasons = {s["source"].split("/")[-1]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"tiny.png", "broken.jpg"}
    assert "smaller than the patch" in reasons["tiny.png"]
    assert "readable" in reasons["broken.jpg"]
    files = _tree(out)
    for i in ids:
        assert {f"raw/{i}.png", f"rgb/{i}.png", f"meta/{i}.json"} <= set(files)
    summary = json.loads(files["synth.json"])
    assert summary["seed"] == 3 and summary["ids"] == ids and summary["arguments"]["patch"] == 32

    # same seed: byte-identical, also from a subset of the sources
    synthesize_dataset(sources, tmp_path / "b", patch=32, per_image=2, seed=3)
    assert _tree(tmp_path / "b") == files
    synthesize_dataset([photos / "kodim21.png"], tmp_path / "c", patch=32, per_image=2, seed=3)
    sub = _tree(tmp_path / "c")
    assert all(sub[k] == files[k] for k in sub if "kodim21" in k)
    # another seed: different pairs
    synthesize_dataset(sources, tmp_path / "d", patch=32, per_image=2, seed=4)
    other = _tree(tmp_path / "d")
    assert other["raw/kodim04_000.png"] != files["raw/kodim04_000.png"]

    # no overwrite without the flag; with it, the same bytes again
    with pytest.raises(FileExistsError):
        synthesize_dataset(sources, out, patch=32, per_image=2, seed=3)
    assert _tree(out) == files
    synthesize_dataset(sources, out, patch=32, per_image=2, seed=3, overwrite=True)
    assert _tree(out) == files
    (out / "synth.json").unlink()
    again = synthesize_dataset(sources, out, patch=32, per_image=2, seed=3)
    exists = [s["id"] for s in again["skipped"] if "exists" in s["reason"]]
    assert again["ids"] == [] and exists == ids
    with pytest.raises(InvalidInputError):
        synthesize_dataset(sources, tmp_path / "e", patch=31)


def test_writer_files_read_back(photos, tmp_path):
    from isplab.raw import read

    out = tmp_path / "o"
    synthesize_dataset([photos / "kodim04.png"], out, patch=48, bit_depth=10, low_light=2.0)
    meta = json.loads((out / "meta" / "kodim04_000.json").read_text())
    for key in ("rgb_to_cam", "cam_to_rgb", "rgb_gain", "red_gain", "blue_gain", "cfa", "shot",
                "read", "low_light", "bit_depth", "black_level", "white_level", "source",
                "crop", "seed"):
        assert key in meta
    assert (meta["bit_depth"], meta["black_level"], meta["white_level"]) == (10, 64.0, 1023.0)
    top, left, h, w = meta["crop"]
    assert top % 2 == 0 and left % 2 == 0 and h == w == 48
    image = read_image(photos / "kodim04.png")[0]
    target = read_image(out / "rgb" / "kodim04_000.png")[0]
    assert torch.allclose(target, image[:, top:top + 48, left:left + 48], atol=1e-6)
    # the packed PNG reads back as R, G1, G2, B: the pair regenerated from its seed
    expected, _, again = synthesize_pair(image, meta["seed"], bit_depth=10, low_light=2.0,
                                         patch=48)
    assert again["crop"] == meta["crop"] and again["shot"] == meta["shot"]
    raw = read(out / "raw" / "kodim04_000.png", black_level=meta["black_level"],
               white_level=meta["white_level"])
    assert raw.cfa == "RGGB"
    torch.testing.assert_close(raw.packed()[0], expected, atol=1e-6, rtol=0)
    # it develops back towards the target (noise and low light aside)
    y = process(raw.packed() * meta["low_light"], meta)
    assert masked_psnr(y, target[None], torch.ones(1, 1, 48, 48, dtype=torch.bool)) > 15


@pytest.mark.parametrize("pattern", ["BGGR", "GRBG"])
def test_writer_dng_reads_back(photos, tmp_path, pattern):
    from isplab.raw import read

    out = tmp_path / "dng"
    report = synthesize_dataset([photos / "kodim21.png"], out, patch=32, cfa=pattern,
                                raw_format="dng", bit_depth=14, seed=1)
    assert report["ids"] == ["kodim21_000"]
    meta = json.loads((out / "meta" / "kodim21_000.json").read_text())
    raw = read(out / "raw" / "kodim21_000.dng")
    assert raw.cfa == pattern == meta["cfa"]
    assert raw.black_level == (meta["black_level"],) * 4 == (1024.0,) * 4
    assert raw.white_level == meta["white_level"] == 16383.0
    np.testing.assert_allclose(raw.wb_gains, (meta["red_gain"], 1.0, meta["blue_gain"]),
                               rtol=1e-5)
    np.testing.assert_allclose(raw.camera_to_srgb, meta["cam_to_rgb"], atol=1e-3)
    image = read_image(photos / "kodim21.png")[0]
    expected, _, _ = synthesize_pair(image, meta["seed"], cfa=pattern, bit_depth=14, patch=32)
    torch.testing.assert_close(raw.packed()[0], expected, atol=1e-6, rtol=0)


def test_cli_synth(photos, tmp_path):
    from typer.testing import CliRunner

    from isplab.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["synth", str(photos / "kodim04.png"), str(photos / "kodim21.png"), "-o", str(out),
            "--patch", "32", "--per-image", "2", "--cfa", "GBRG", "--low-light", "4",
            "--bit-depth", "12", "--seed", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 pairs written" in result.output
    assert len(list((out / "raw").glob("*.png"))) == 4
    summary = json.loads((out / "synth.json").read_text())
    assert summary["arguments"]["cfa"] == "GBRG" and summary["arguments"]["low_light"] == 4.0
    # existing run: refused without --overwrite, accepted with it
    assert runner.invoke(app, args).exit_code == 1
    assert runner.invoke(app, [*args, "--overwrite", "-q"]).exit_code == 0
    # a folder: takes the photos in it, reports the bad ones, still writes the good ones
    result = runner.invoke(app, ["synth", str(photos), "-o", str(tmp_path / "f"), "--patch",
                                 "32", "--no-noise", "--raw-format", "dng"])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output and "tiny.png" in result.output
    assert len(list((tmp_path / "f" / "raw").glob("*.dng"))) == 2
    # nothing written -> exit 1
    result = runner.invoke(app, ["synth", str(photos / "tiny.png"), "-o", str(tmp_path / "n")])
    assert result.exit_code == 1
    assert runner.invoke(app, ["synth", str(photos), "-o", str(tmp_path / "x"),
                               "--patch", "15"]).exit_code == 2


@pytest.fixture
def tiny_photos(tmp_path):
    """Small random photos in two folders, one too small, and a stem used twice (b/p1.png:
    shard 1 of 2 by its own name, but its stem belongs to src/p1.png in shard 2)."""
    rng = np.random.default_rng(11)
    folders = tmp_path / "src", tmp_path / "b"
    for folder, names in zip(folders, (("cat", "p1", "sky"), ("p1",)), strict=True):
        folder.mkdir()
        for name in names:
            cv2.imwrite(str(folder / f"{name}.png"),
                        rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    cv2.imwrite(str(folders[1] / "tiny.png"), np.zeros((20, 20, 3), np.uint8))
    return [str(f) for f in folders]


def _synth_cli(sources, out, *extra):
    from typer.testing import CliRunner

    from isplab.cli import app

    args = ["synth", *sources, "-o", str(out), "--patch", "32", "--per-image", "2", "--seed",
            "9", "-q", *extra]
    return CliRunner().invoke(app, args)


def test_cli_synth_shards_together_write_the_unsharded_run(tiny_photos, tmp_path):
    from isplab.commands._batch import shard_key
    from isplab.sharding import shard_of
    from isplab.synth.writer import summary_name

    whole = tmp_path / "whole"
    assert _synth_cli(tiny_photos, whole).exit_code == 0  # tiny.png: reported, not fatal
    expected = _tree(whole)
    summary = json.loads(expected.pop("synth.json"))
    assert summary["ids"] == ["cat_000", "cat_001", "p1_000", "p1_001", "sky_000", "sky_001"]
    # which shard each photo's key falls in (photos sharing a stem follow the first one)
    parts = {n: shard_of(shard_key(tmp_path / "src" / f"{n}.png"), 2) for n in ("cat", "sky")}
    assert set(parts.values()) <= {1, 2}

    shards = tmp_path / "shards"  # both shards into one folder, as array tasks would
    ids = []
    for k in (1, 2):
        result = _synth_cli(tiny_photos, shards, "--shard", f"{k}/2")
        assert result.exit_code == 0, result.output
        part = json.loads((shards / summary_name((k, 2))).read_text())
        assert part["arguments"]["shard"] == f"{k}/2" and part["ids"]
        ids += part["ids"]
    assert sorted(ids) == summary["ids"]
    files = _tree(shards)
    del files[summary_name((1, 2))], files[summary_name((2, 2))]
    assert files == expected  # the same pair files, byte for byte
    # the unsharded summary is unchanged by sharding support
    assert "shard" not in summary["arguments"]
    assert _synth_cli(tiny_photos, tmp_path / "bad", "--shard", "3/2").exit_code == 2
    assert _synth_cli(tiny_photos, tmp_path / "bad", "--jobs", "0").exit_code == 2


def test_cli_synth_jobs_write_the_same_bytes_and_ids(tiny_photos, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _synth_cli(tiny_photos, one, "--jobs", "1").exit_code == 0
    assert _synth_cli(tiny_photos, two, "--jobs", "2").exit_code == 0
    a, b = _tree(one), _tree(two)
    assert a == b  # every pair and synth.json (ids and skips in the same order)
    summary = json.loads(b["synth.json"])
    assert summary["ids"] == ["cat_000", "cat_001", "p1_000", "p1_001", "sky_000", "sky_001"]
    assert [s["source"].split("/")[-2:] for s in summary["skipped"]] == [["b", "p1.png"],
                                                                         ["b", "tiny.png"]]


def test_uint8_input_decodes_through_the_table_identically():
    from isplab.synth.unprocess import decode_srgb

    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (3, 16, 24), generator=g, dtype=torch.uint8)
    f = u8.float() / 255
    for brooks in (False, True):
        assert torch.equal(decode_srgb(u8, brooks), decode_srgb(f, brooks))
        a, ma = unprocess(u8, generator=5, brooks=brooks)
        b, mb = unprocess(f, generator=5, brooks=brooks)
        assert torch.equal(a, b) and ma == mb and a.dtype == torch.float32
    with pytest.raises(InvalidInputError, match="floating point"):
        unprocess(u8.to(torch.int32))
