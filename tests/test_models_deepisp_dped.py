"""DeepISP and DPED/DPED+ specifics (the zoo contract itself is checked in test_models.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from isplab.classic import srgb_gamma
from isplab.classic.color import luma
from isplab.errors import InvalidInputError
from isplab.models import count_parameters, create_model, model_info
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.deepisp import (
    DeepISP,
    apply_quadratic_transform,
    hl_min_size,
    quadratic_features,
)
from isplab.models.dped import DPEDDiscriminator, raw_stem


def _flops(model: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    return counter.get_total_flops()


# --- DeepISP: the quadratic transform -------------------------------------------------------


def test_identity_transform_returns_input():
    rgb = torch.rand(2, 3, 5, 7) - 0.5
    eye = torch.eye(10, 3)
    assert torch.equal(apply_quadratic_transform(rgb, eye), rgb)
    assert torch.equal(apply_quadratic_transform(rgb, eye.expand(2, 10, 3)), rgb)


def test_quadratic_transform_matches_numpy_by_hand():
    g = torch.Generator().manual_seed(3)
    rgb = torch.rand(2, 3, 2, 3, generator=g) - 0.5
    w = torch.randn(2, 10, 3, generator=g)
    out = apply_quadratic_transform(rgb, w).numpy()
    a, wn = rgb.numpy().astype(np.float64), w.numpy().astype(np.float64)
    for n in range(2):
        for y in range(2):
            for x in range(3):
                r, gg, b = a[n, :, y, x]
                phi = np.array([r, gg, b, r * r, r * gg, r * b, gg * gg, gg * b, b * b, 1.0])
                for c in range(3):
                    assert out[n, c, y, x] == pytest.approx(float(phi @ wn[n, :, c]), abs=1e-6)
    # one pixel written out completely: only the constant and r*g terms are non-zero
    w1 = torch.zeros(10, 3)
    w1[9] = torch.tensor([0.1, 0.2, 0.3])
    w1[4, 1] = 2.0
    px = torch.tensor([0.5, -0.25, 0.75]).view(1, 3, 1, 1)
    assert apply_quadratic_transform(px, w1).flatten().tolist() == pytest.approx(
        [0.1, 0.2 + 2.0 * 0.5 * -0.25, 0.3])
    assert quadratic_features(px).flatten().tolist() == pytest.approx(
        [0.5, -0.25, 0.75, 0.25, -0.125, 0.375, 0.0625, -0.1875, 0.5625, 1.0])


def test_quadratic_transform_shape_errors():
    with pytest.raises(InvalidInputError, match="10 x 3"):
        apply_quadratic_transform(torch.rand(1, 3, 4, 4), torch.eye(9, 3))
    with pytest.raises(InvalidInputError, match="10 x 3"):
        apply_quadratic_transform(torch.rand(2, 3, 4, 4), torch.eye(10, 3).expand(3, 10, 3))
    with pytest.raises(InvalidInputError, match="N x 3 x H x W"):
        apply_quadratic_transform(torch.rand(1, 4, 4, 4), torch.eye(10, 3))


# --- DeepISP: the model ---------------------------------------------------------------------


def test_deepisp_structure_and_parameter_counts():
    full, ll = create_model("deepisp"), create_model("deepisp_ll")
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16 + 3  # LL: first conv + 15 blocks; HL: 3 stride-2 convs
    assert count_parameters(full) == 668_446  # spec: LL 0.556M + HL 0.113M
    ll_convs = [m for m in ll.modules() if isinstance(m, nn.Conv2d)]
    assert len(ll_convs) == 20 and ll_convs[-1].out_channels == 3
    assert count_parameters(ll) == 668_227
    assert model_info("deepisp_ll")["output"] == "linear_rgb"
    # the fixed bias is a buffer: saved with the weights, never trained
    assert "transform_bias" in full.state_dict()
    assert all("transform_bias" not in n for n, _ in full.named_parameters())
    assert torch.equal(full.transform_bias, torch.eye(10, 3))


def test_deepisp_input_encoding():
    x = torch.rand(1, 4, 6, 8)
    lin = packed_to_bilinear_rgb(x)
    assert torch.allclose(create_model("deepisp").encode(x), srgb_gamma(lin) - 0.5, atol=1e-6)
    assert torch.allclose(create_model("deepisp", input_encoding="linear").encode(x), lin - 0.5)
    with pytest.raises(InvalidInputError, match="input_encoding"):
        create_model("deepisp", input_encoding="log")
    with pytest.raises(InvalidInputError, match="N x 4 x H x W"):
        create_model("deepisp")(torch.rand(1, 3, 8, 8))


def test_hl_minimum_size_and_small_inputs():
    assert hl_min_size(3) == 85 and hl_min_size(1) == 5 and hl_min_size(0) == 1
    model = DeepISP(n_ll=1, n_hl=3, width=8).eval()
    with torch.no_grad():
        assert model.high_level(torch.rand(2, 8, 85, 90)).shape == (2, 10, 3)
        with pytest.raises(InvalidInputError, match=">= 85"):
            model.high_level(torch.rand(1, 8, 84, 90))
        # 20 x 10 packed = 40 x 20 full resolution: the transform comes from a resized copy
        assert model.global_transform(torch.rand(1, 4, 20, 10)).shape == (1, 10, 3)
        assert model(torch.rand(1, 4, 20, 10)).shape == (1, 3, 40, 20)


def test_global_transform_is_the_fixed_bias_when_the_head_is_zero():
    bias = (torch.eye(10, 3) * 0.5).tolist()
    model = create_model("deepisp", width=8, transform_bias=bias).train()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        x = torch.rand(1, 4, 48, 48)
        assert torch.equal(model.global_transform(x), torch.tensor(bias).unsqueeze(0))
        image, _ = model.low_level(model.encode(x))
        assert torch.allclose(model(x), 0.5 * image + 0.5, atol=1e-6)


def test_deepisp_tiles_share_the_global_transform():
    """With the frame's transform passed in, a tile's output depends only on the LL stage's
    local receptive field: away from the tile border it equals the crop of the full output,
    whatever the rest of the tile holds. Without it, the tile's own statistics leak in."""
    torch.manual_seed(0)
    model = create_model("deepisp", width=16).train()  # train: no clamp, raw values compared
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0.1, 1.0, 48).view(1, 1, 1, 48)
    frame = torch.rand(1, 4, 48, 48, generator=g) * ramp  # not stationary: tiles differ
    with torch.no_grad():
        t = model.global_transform(frame)
        full = model(frame)
        assert torch.allclose(model(frame, transform=t), full, atol=1e-6)
        tile = frame[..., 8:40, 12:44]  # packed 32 x 32 -> full-res rows 16:80, cols 24:88
        m = 18  # > receptive field of the LL stage (15 convs + demosaic)
        crop = full[..., 16 + m:80 - m, 24 + m:88 - m]
        y_tile = model(tile, transform=t)
        assert torch.allclose(y_tile[..., m:-m, m:-m], crop, atol=1e-5)
        # change the tile far from the compared window: the window stays, with the shared T
        other = tile.clone()
        other[..., :, :4] = 0.9
        y_other = model(other, transform=t)
        assert torch.allclose(y_other[..., m:-m, 40:46], y_tile[..., m:-m, 40:46], atol=1e-5)
        # ... but its own transform (own statistics) changes it
        own, own_other = model(tile), model(other)
        assert (own_other[..., m:-m, 40:46] - own[..., m:-m, 40:46]).abs().max() > 1e-4
        assert (own[..., m:-m, m:-m] - crop).abs().max() > 1e-4


def test_deepisp_ll_is_linear_rgb_and_takes_no_transform():
    model = create_model("deepisp_ll", n_ll=3, width=8).eval()
    x = torch.rand(1, 4, 8, 8)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 16, 16) and 0 <= y.min() and y.max() <= 1
    with pytest.raises(InvalidInputError, match="no transform"):
        model(x, transform=torch.eye(10, 3))
    with pytest.raises(InvalidInputError, match="no high-level stage"):
        model.high_level(torch.rand(1, 8, 90, 90))


# --- DPED -----------------------------------------------------------------------------------


def test_dped_parameter_counts():
    assert count_parameters(create_model("dped")) == 401_475
    assert count_parameters(create_model("dped_rgb")) == 401_475
    assert count_parameters(create_model("dped_plus")) == 120_249
    assert count_parameters(create_model("dped_plus_rgb")) == 120_249
    assert count_parameters(create_model("dped_discriminator")) == 7_361_122
    norms = [m for m in create_model("dped_rgb").modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 8 and all(n.affine and n.eps == 1e-3 for n in norms)


def test_dped_plus_is_smaller_and_cheaper():
    x = torch.rand(1, 3, 32, 32)
    dped, plus = create_model("dped_rgb"), create_model("dped_plus_rgb")
    assert count_parameters(plus) < count_parameters(dped)
    assert _flops(plus, x) < _flops(dped, x) / 3
    assert any(m.groups == 64 for m in plus.modules() if isinstance(m, nn.Conv2d))


def test_dped_raw_form_is_the_rgb_network_behind_the_stem():
    torch.manual_seed(0)
    rgb_net = create_model("dped_plus_rgb").eval()
    raw_net = create_model("dped_plus").eval()
    raw_net.load_state_dict(rgb_net.state_dict())  # same keys: weights are interchangeable
    x = torch.rand(1, 4, 12, 10)
    with torch.no_grad():
        assert torch.allclose(raw_net(x), rgb_net(raw_stem(x)), atol=1e-6)
    stem = raw_stem(torch.full((1, 4, 3, 3), 0.25))
    assert stem.shape == (1, 3, 6, 6)
    assert torch.allclose(stem, torch.full_like(stem, 0.25 ** (1 / 2.2)))


def test_dped_output_is_clamped_only_in_eval():
    model = create_model("dped_rgb", n_blocks=1)
    with torch.no_grad():
        model.tail[0].bias.fill_(20.0)  # tanh saturates: 0.58 + 0.5 = 1.08
        x = torch.rand(1, 3, 16, 16)
        assert model.train()(x).max() == pytest.approx(1.08, abs=1e-4)
        assert model.eval()(x).max() == 1.0
    with pytest.raises(InvalidInputError, match="N x 3 x H x W"):
        model(torch.rand(1, 4, 16, 16))


def test_dped_plus_activation_option():
    leaky = create_model("dped_plus_rgb", activation="leaky_relu")
    kinds = {type(m) for m in leaky.modules()}
    assert nn.LeakyReLU in kinds and nn.ReLU not in kinds
    relu = create_model("dped_plus_rgb")
    assert nn.ReLU in {type(m) for m in relu.modules()}
    with pytest.raises(InvalidInputError, match="activation"):
        create_model("dped_plus", activation="gelu")


def test_discriminator_shapes_and_grayscale():
    disc = create_model("dped_discriminator").eval()
    with torch.no_grad():
        for side in (100, 128):
            assert disc(torch.rand(2, 3, side, side)).shape == (2, 2)
        # a 100 x 100 patch reaches the flatten at exactly 7 x 7 (TF 'SAME' padding)
        assert disc.features(torch.rand(1, 1, 100, 100)).shape == (1, 128, 7, 7)
        assert disc.features[0](torch.rand(1, 1, 100, 100)).shape == (1, 48, 25, 25)
    px = torch.eye(3).view(3, 3, 1, 1)
    assert luma(px).flatten().tolist() == pytest.approx([0.299, 0.587, 0.114])
    # colour that keeps the grayscale value is invisible to the discriminator
    a = torch.full((1, 3, 100, 100), 0.5)
    b = a.clone()
    b[:, 0] += 0.1140 * 0.2
    b[:, 2] -= 0.2989 * 0.2
    with torch.no_grad():
        assert torch.allclose(disc(a), disc(b), atol=1e-5)
    info = model_info("dped_discriminator")
    assert info["output"] == "logits" and not info["public"]


def test_discriminator_exports_to_onnx():
    pytest.importorskip("onnxruntime")
    from isplab.models.export import onnx_max_error

    torch.manual_seed(0)
    assert onnx_max_error(DPEDDiscriminator(), torch.rand(1, 3, 100, 100)) <= 1e-4
