"""The learned demosaic + denoise stage: noise map, training pairs, dataset, model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isplab.errors import InvalidInputError
from isplab.models import create_model
from isplab.models.common import packed_to_bilinear_rgb
from isplab.raw.cfa import mosaic, pack
from isplab.synth.jdd import JDDParams, jdd_input, make_jdd_pair, packed_gains, sample_jdd_params
from isplab.synth.noise import noise_std_map

from .conftest import DATA, need


def test_noise_std_map_scales_the_profile_by_the_gains():
    y = torch.full((1, 4, 2, 2), 0.5)
    g = torch.tensor([2.0, 1.0, 1.0, 1.5])
    std = noise_std_map(y, shot=0.01, read=0.0004, gains=g)
    # y = g x: var(y) = g^2 (shot x + read) = g shot y + g^2 read
    want = torch.sqrt(g * 0.01 * 0.5 + g * g * 0.0004)
    assert torch.allclose(std[0, :, 0, 0], want)
    assert torch.equal(noise_std_map(torch.full((4, 2, 2), -1.0), 0.01, 0.0004)[0],
                       torch.full((2, 2), 0.02))  # below black counts as no signal
    assert noise_std_map(y, 0.0, 0.0).abs().max() == 0


def test_clean_pair_is_the_balanced_mosaic_of_its_target():
    rgb = torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(0))
    params = JDDParams(space="srgb", gains=(2.0, 1.5))
    inp, target = make_jdd_pair(rgb, params, 0)
    assert inp.shape == (8, 8, 10) and target.shape == (3, 16, 20)
    assert torch.allclose(inp[:4], pack(mosaic(target[None], "RGGB"), "RGGB")[0], atol=1e-6)
    assert inp[4:].abs().max() == 0  # clean: zero noise map
    assert torch.equal(target, rgb)


def test_linear_pair_keeps_grey_grey_and_applies_the_exposure():
    grey = torch.full((3, 8, 8), 0.5)
    _, rgb_to_cam = __import__("isplab.synth", fromlist=["random_ccm"]).random_ccm(3)
    params = JDDParams(space="linear", rgb_to_cam=tuple(map(tuple, rgb_to_cam.tolist())),
                       exposure=0.5, gains=(1.8, 1.4))
    _, target = make_jdd_pair(grey, params, 0)
    lin = ((0.5 + 0.055) / 1.055) ** 2.4
    assert torch.allclose(target, torch.full_like(target, lin * 0.5), atol=1e-5)


def test_noisy_pair_has_the_profiles_variance():
    flat = torch.full((3, 256, 256), 0.6)
    params = JDDParams(space="srgb", gains=(2.0, 1.5), shot=0.01, read=0.001)
    inp, target = make_jdd_pair(flat, params, 1)
    g = packed_gains((2.0, 1.5))
    x = 0.6 / g  # the unbalanced raw
    for c in range(4):
        measured = float(inp[c].std())
        want = float(g[c]) * math.sqrt(0.01 * float(x[c]) + 0.001)
        assert measured == pytest.approx(want, rel=0.05)
        assert float(inp[4 + c].mean()) == pytest.approx(want, rel=0.05)


def test_jittered_noise_map_keeps_the_noise_and_scales_the_map():
    """``map_scale`` changes what the noise map says, not the noise drawn; the sampled
    jitter is log-normal around the truth and leaves the rest of the draw alone."""
    flat = torch.full((3, 128, 128), 0.6)
    true = JDDParams(space="srgb", shot=0.01, read=0.001)
    told = JDDParams(space="srgb", shot=0.01, read=0.001, map_scale=(4.0, 0.25))
    (a, _), (b, _) = make_jdd_pair(flat, true, 3), make_jdd_pair(flat, told, 3)
    assert torch.equal(a[:4], b[:4])
    want = math.sqrt(4 * 0.01 * 0.6 + 0.25 * 0.001)
    assert float(b[4:].mean()) == pytest.approx(want, rel=0.05)
    ps = [sample_jdd_params(i, map_jitter=(0.15, 0.3)) for i in range(400)]
    plain = [sample_jdd_params(i) for i in range(400)]
    assert [p.space for p in ps] == [p.space for p in plain]
    assert [p.shot for p in ps] == [p.shot for p in plain]
    assert all(p.map_scale == (1.0, 1.0) for p in plain)
    log_std = np.log(np.array([p.map_scale for p in ps])) / 2
    assert abs(log_std.mean(0)).max() < 0.05
    assert log_std.std(0) == pytest.approx([0.15, 0.3], rel=0.15)


def test_sampled_params_cover_clean_noisy_linear_and_srgb():
    ps = [sample_jdd_params(i) for i in range(200)]
    assert {p.space for p in ps} == {"linear", "srgb"}
    clean = sum(p.shot == 0 for p in ps)
    assert 20 < clean < 90
    assert all(1.0 <= p.gains[0] <= 2.8 and 1.0 <= p.gains[1] <= 2.4 for p in ps)
    assert sample_jdd_params(7) == sample_jdd_params(7)
    with pytest.raises(InvalidInputError):
        make_jdd_pair(torch.rand(3, 5, 6), ps[0])


def test_jdd_input_concatenates_raw_and_noise_map():
    packed = torch.rand(2, 4, 6, 6)
    x = jdd_input(packed, 0.01, 0.001)
    assert x.shape == (2, 8, 6, 6) and torch.equal(x[:, :4], packed)


def test_untrained_jdd_net_is_the_bilinear_demosaic():
    model = create_model("jdd_net").eval()
    packed = torch.rand(1, 4, 18, 22)
    with torch.no_grad():
        out = model(jdd_input(packed, 0.0, 0.0))
    assert out.shape == (1, 3, 36, 44)
    assert torch.allclose(out, packed_to_bilinear_rgb(packed), atol=1e-6)


def test_jdd_dataset_is_deterministic_and_mines_hard_patches():
    need(DATA / "cbsd68")
    from isplab.data import create_dataset
    from isplab.data.jdd import bilinear_error

    ds = create_dataset("jdd_synthetic", folders=[DATA / "cbsd68"], patch=64,
                        patches_per_image=2, split="train")
    a, b = ds[3], ds[3]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert a["input"].shape == (8, 32, 32) and a["target"].shape == (3, 64, 64)
    easy = create_dataset("jdd_synthetic", folders=[DATA / "cbsd68"], patch=64, hard=1,
                          augment=False, downscale=0.0, srgb_fraction=1.0)
    hard = create_dataset("jdd_synthetic", folders=[DATA / "cbsd68"], patch=64, hard=4,
                          augment=False, downscale=0.0, srgb_fraction=1.0)
    e = sum(bilinear_error(easy[i]["target"]) for i in range(0, 60, 3))
    h = sum(bilinear_error(hard[i]["target"]) for i in range(0, 60, 3))
    assert h > 1.2 * e
    val = create_dataset("jdd_synthetic", folders=[DATA / "cbsd68"], patch=64, split="val")
    assert not set(val.files) & set(ds.files)


def test_refine_stage_grows_a_trained_model_without_changing_it(tmp_path):
    """``refine`` adds a full-resolution stage whose last convolution starts at zero: grown
    from weights without it (``model.init_grow``) the model computes what they computed,
    and the new stage then trains (its output convolution gets a gradient)."""
    from isplab.models import save_weights
    from isplab.train.trainer import create_model_from_spec

    torch.manual_seed(0)
    small = create_model("jdd_net", widths=(8, 16, 24))
    for p in small.parameters():  # a "trained" model: no zero head
        torch.nn.init.normal_(p, std=0.05)
    path = save_weights(small, tmp_path / "small.safetensors")
    spec = {"name": "jdd_net", "config": {"widths": [8, 16, 24], "refine": 6},
            "init": str(path)}
    with pytest.raises(InvalidInputError, match="missing"):
        create_model_from_spec(spec)  # a plain warm start still wants every tensor
    grown = create_model_from_spec({**spec, "init_grow": True})
    x = jdd_input(torch.rand(2, 4, 10, 14), 0.01, 0.0001)
    with torch.no_grad():
        assert torch.equal(grown(x), small.eval()(x))
    grown(x).square().mean().backward()
    assert grown.fine[-1].weight.grad.abs().sum() > 0
    # the other way round is refused: a file's tensors must all be the model's
    big = save_weights(grown, tmp_path / "big.safetensors")
    with pytest.raises(InvalidInputError, match="unexpected"):
        create_model_from_spec({"name": "jdd_net", "config": {"widths": [8, 16, 24]},
                                "init": str(big), "init_grow": True})
    with pytest.raises(InvalidInputError, match="model.init"):
        create_model_from_spec({"name": "jdd_net", "init_grow": True})


def test_refined_jdd_net_keeps_the_contract_on_odd_sizes():
    model = create_model("jdd_net", widths=(8, 16, 24), refine=4).eval()
    for p in model.fine[-1].parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = jdd_input(torch.rand(2, 4, 9, 13), 0.01, 0.0001)
    with torch.no_grad():
        two, first = model(x), model(x[1:])
    assert two.shape == (2, 3, 18, 26)
    assert torch.allclose(two[1:], first, atol=1e-6)  # each image its own mosaic and noise
