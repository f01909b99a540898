"""The hybrid ISP: noise profiles (file, estimate, user) and the learned demosaic stage inside
the classical pipeline (any CFA, white balance, develop CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from isplab.classic import ClassicISP
from isplab.classic.noise_profile import NoiseProfile, estimate_noise_profile, noise_profile_of
from isplab.cli import app
from isplab.errors import InvalidInputError
from isplab.infer.hybrid import LearnedDemosaic
from isplab.io import read_image
from isplab.models import create_model, save_weights
from isplab.raw import RawImage, read
from isplab.raw.cfa import mosaic
from isplab.raw.dng import write_dng

from .conftest import DATA, need

runner = CliRunner()


def _scene(h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear",
                                           align_corners=False).clamp(0.05, 0.95)


def test_dng_noise_profile_round_trips_and_wins_over_the_estimate(tmp_path):
    m = mosaic(_scene(), "RGGB")[0, 0].numpy()
    raw = RawImage(m, cfa="RGGB", white_level=4095, wb_gains=(2.0, 1.0, 1.5),
                   noise_profile=(0.002, 3e-5))
    path = write_dng(tmp_path / "n.dng", raw)
    back = read(path)
    assert back.noise_profile == pytest.approx((0.002, 3e-5), rel=1e-6)
    p = noise_profile_of(back)
    assert (p.shot, p.read, p.source) == (pytest.approx(0.002), pytest.approx(3e-5), "file")
    assert noise_profile_of(back, user=(0.01, 0.0)).source == "user"
    res = runner.invoke(app, ["info", str(path), "--json"])
    assert json.loads(res.output)["noise_profile"]["source"] == "file"


def test_noise_profile_estimate_recovers_a_known_profile():
    need(DATA / "kodak24")
    from isplab.synth.noise import add_noise
    from isplab.synth.unprocess import unprocess

    img = read_image(DATA / "kodak24" / "kodim03.png")[0]
    raw, _ = unprocess(img, generator=0, packed=True)
    for shot, read_var in ((4e-3, 3e-5), (1.2e-2, 2e-4)):
        noisy = add_noise(raw, shot, read_var, 1).clamp(0, 1)
        p = estimate_noise_profile(noisy.numpy())
        assert p.source == "estimated"
        for x in (0.05, 0.2, 0.5):  # the noise std within 20 % where it matters
            want = np.sqrt(shot * x + read_var)
            assert p.std_at(x) == pytest.approx(want, rel=0.2)
    with pytest.raises(InvalidInputError, match="too few"):
        estimate_noise_profile(np.ones((4, 8, 8), dtype=np.float32))  # all clipped
    with pytest.raises(InvalidInputError):
        NoiseProfile(float("nan"), 0.0)


def test_noise_estimate_takes_read_from_shot_where_the_frame_cannot_tell():
    """A frame of one grey level cannot separate shot from read noise: the estimate keeps
    the measured variance there and gives read the value Brooks et al.'s relation (the
    learned stage's training noise) gives the shot, not 0 (darks left undenoised)."""
    from isplab.classic.noise_profile import brooks_read
    from isplab.synth.noise import add_noise

    shot, read_var = 4e-3, brooks_read(4e-3)
    flat = torch.full((4, 256, 256), 0.3)
    noisy = add_noise(flat, shot, read_var, 0).clamp(0, 1).numpy()
    p = estimate_noise_profile(noisy)
    assert p.read == pytest.approx(brooks_read(p.shot))
    assert p.std_at(0.3) == pytest.approx(np.sqrt(shot * 0.3 + read_var), rel=0.1)
    assert p.std_at(0.0) == pytest.approx(np.sqrt(read_var), rel=0.3)


def _zero_jdd(tmp_path):
    """An untrained jdd_net: its zero head makes it the bilinear demosaic exactly."""
    return save_weights(create_model("jdd_net", widths=(8, 8, 8)), tmp_path / "jdd.safetensors")


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_learned_stage_keeps_the_bayer_phase_of_every_cfa(cfa):
    """An untrained jdd_net equals the classical bilinear demosaic on every pattern, odd
    sizes included (the mosaic is mirrored to the RGGB phase and cropped back)."""
    stage = LearnedDemosaic(create_model("jdd_net", widths=(8, 8, 8)), device="cpu")
    rgb = _scene(38, 51)
    m = mosaic(rgb, cfa)
    from isplab.classic import demosaic

    want = demosaic(m, cfa, "bilinear")
    got = stage(m, cfa, None, None)
    assert got.shape == want.shape
    assert torch.allclose(got[..., 2:-2, 2:-2], want[..., 2:-2, 2:-2], atol=1e-5)


def test_hybrid_develop_equals_classic_with_an_untrained_stage(tmp_path):
    w = _zero_jdd(tmp_path)
    m = mosaic(_scene(), "GRBG")[0, 0].numpy() * 0.6
    raw = RawImage(m, cfa="GRBG", white_level=1.0, wb_gains=(1.8, 1.0, 1.4),
                   camera_to_srgb=np.eye(3))
    from isplab.infer.hybrid import hybrid_isp

    hybrid = hybrid_isp(w, device="cpu", noise=(0.0, 0.0)).develop(raw)
    classic = ClassicISP().develop(raw)
    assert hybrid.shape == classic.shape
    assert float((hybrid - classic)[..., 2:-2, 2:-2].abs().max()) < 1e-4
    with pytest.raises(InvalidInputError, match="not a demosaic"):
        LearnedDemosaic(create_model("microisp"))


def test_the_noise_map_follows_the_gains_and_profile():
    """The stage hands jdd_net std = sqrt(g shot y + g^2 read) next to the balanced raw."""
    seen = {}

    class Spy(torch.nn.Module):
        isplab_name = "jdd_net"

        def forward(self, x):
            seen["x"] = x.clone()
            return torch.zeros(1, 3, 2 * x.shape[-2], 2 * x.shape[-1])

    stage = LearnedDemosaic(Spy(), device="cpu", tile=10**6, backend="torch")  # a spy
    m = torch.full((1, 1, 8, 8), 0.5)
    stage(m, "RGGB", (2.0, 1.0, 1.5), NoiseProfile(0.01, 1e-4))
    x = seen["x"]
    g = torch.tensor([2.0, 1.0, 1.0, 1.5])
    want = torch.sqrt(g * 0.01 * 0.5 + g * g * 1e-4)
    assert torch.allclose(x[0, 4:, 0, 0], want)
    assert torch.allclose(x[0, :4], torch.full_like(x[0, :4], 0.5))


def test_develop_cli_learned_and_demosaic_learned(tmp_path):
    w = _zero_jdd(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["develop", "--sample", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    sample = out / "isplab_sample_astronaut.dng"
    for args, sub in ((["--isp", "learned"], "a"), (["--demosaic", "learned"], "b")):
        res = runner.invoke(app, ["develop", str(sample), "-o", str(tmp_path / sub),
                                  "--weights", str(w), "--noise", "0.001,0.00001", *args, "-q"])
        assert res.exit_code == 0, res.output
    a = read_image(tmp_path / "a" / "isplab_sample_astronaut.png")
    b = read_image(tmp_path / "b" / "isplab_sample_astronaut.png")
    c = read_image(out / "isplab_sample_astronaut.png")
    assert torch.equal(a, b)
    assert float((a - c).abs().max()) <= 2 / 255  # untrained stage = bilinear classic
    res = runner.invoke(app, ["develop", str(sample), "-o", str(tmp_path / "c"), "--isp",
                              "learned", "--weights", str(w), "--noise", "nan,1"])
    assert res.exit_code == 2


def test_hybrid_develops_the_real_dng(tmp_path):
    need(DATA / "raw_dng_canon550d_colorchart")
    w = _zero_jdd(tmp_path)
    res = runner.invoke(app, ["develop", str(DATA / "raw_dng_canon550d_colorchart" /
                                             "colorchart.dng"), "-o", str(tmp_path / "o"),
                              "--isp", "learned", "--weights", str(w), "-q"])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "o" / "colorchart.png").shape == (1, 3, 1156, 1734)


def test_shipped_stage_keeps_flat_colorchecker_colours():
    """The shipped jdd_net on the 24 ColorChecker colours as flat patches in a DSLR's camera
    space (white balanced, white at 0.5): each patch's mean, after the camera's matrix, stays
    within a small CIEDE2000 of the truth, noise-free and at low ISO (where Menon 2007 on
    the same noisy mosaic is the yardstick). A bias in saturated or dark colours fails it."""
    from isplab.classic.calibration import (
        delta_e2000,
        flat_chart,
        flat_chart_means,
        linear_srgb_to_lab,
        reference_chart,
    )
    from isplab.classic.demosaicking import demosaic
    from isplab.infer.hybrid import JDD_WEIGHTS, learned_demosaic
    from isplab.synth.noise import add_noise

    if not JDD_WEIGHTS.is_file():
        pytest.skip("no shipped jdd_net weights in this copy")
    to_srgb = np.array([[1.8178, -0.9643, 0.1465], [-0.2289, 1.7738, -0.5449],
                        [-0.0195, -0.4681, 1.4877]])  # the Canon 550D DNG's
    truth = reference_chart()[1] @ np.linalg.inv(to_srgb).T
    truth = np.clip(truth * 0.5 / truth.max(), 0.0, 1.0)
    side, cut = 48, 12
    img = torch.from_numpy(flat_chart(truth, side))[None]

    def delta_e(rgb: torch.Tensor) -> np.ndarray:
        means = flat_chart_means(rgb[0].numpy(), side, cut)
        lab = linear_srgb_to_lab(np.clip(means @ to_srgb.T, 0.0, None))
        return delta_e2000(lab, linear_srgb_to_lab(np.clip(truth @ to_srgb.T, 0.0, None)))

    stage = learned_demosaic(device="cpu", backend="torch")
    clean = mosaic(img, "RGGB")
    de = delta_e(stage(clean, "RGGB", None, None))
    assert de.mean() < 0.25 and de.max() < 0.6
    shot, read_var = 0.0008, 2.4e-6  # the low ISO of benchmarks/hybrid_tables.py
    noisy = add_noise(clean, shot, read_var, generator=torch.Generator().manual_seed(0))
    noisy = noisy.clamp(0, 1)
    de = delta_e(stage(noisy, "RGGB", None, NoiseProfile(shot, read_var, source="user")))
    de_menon = delta_e(demosaic(noisy, "RGGB", "menon2007"))
    assert de.mean() < de_menon.mean() and de.max() < 1.5
