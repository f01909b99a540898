"""SID U-Net, PAC (pixel-adaptive convolution) and the per-pixel kernel ISP: model-specific
behaviour, plus the zoo contract for the three models."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError
from isplab.models import count_parameters, create_model, model_info
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.kpn import apply_kernels, normalize_kernels
from isplab.models.pac import (
    PacConv2d,
    PacConvTranspose2d,
    gamma_encode,
    pac_conv2d,
    zero_insert,
)
from isplab.models.sid import amplify

CARDS = Path(__file__).resolve().parents[1] / "docs" / "models"
MODELS = ["sid_unet", "pac_isp", "kpn_isp"]
EXPECTED_PARAMS = {"sid_unet": 7_760_268, "pac_isp": 149_043, "kpn_isp": 1_952_961}


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- SID


def test_sid_parameter_count():
    n = count_parameters(create_model("sid_unet"))
    assert n == EXPECTED_PARAMS["sid_unet"]
    assert abs(n - 7.76e6) / 7.76e6 < 0.01
    # the ratio channel adds one input channel to the first 3x3 conv (32 x 9 weights)
    assert count_parameters(create_model("sid_unet", ratio_input=True)) == n + 32 * 9


def test_amplify_scales_and_clips():
    x = torch.tensor([0.001, 0.005, 0.5, 0.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(amplify(x, 100.0).flatten(), torch.tensor([0.1, 0.5, 1.0, 0.0]))
    batch = torch.cat([x, x])
    out = amplify(batch, torch.tensor([100.0, 300.0]))
    torch.testing.assert_close(out[1].flatten(), torch.tensor([0.3, 1.0, 1.0, 0.0]))
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(InvalidInputError, match="ratio must be a positive"):
            amplify(x, bad)
    with pytest.raises(InvalidInputError, match="ratio must be positive"):
        amplify(batch, torch.tensor([1.0, -1.0]))
    with pytest.raises(InvalidInputError, match="tensor of 2 values"):
        amplify(batch, torch.ones(3))


def test_sid_forward_with_ratio_amplifies_the_input():
    torch.manual_seed(0)
    model = create_model("sid_unet", widths=(8, 16)).eval()  # small body, same wrapper
    x = _rand(2, 4, 16, 16) * 0.01
    with torch.no_grad():
        ref = model(amplify(x, torch.tensor([100.0, 250.0])))
        torch.testing.assert_close(model(x, ratio=torch.tensor([100.0, 250.0])), ref)
        torch.testing.assert_close(model(x, ratio=300.0), model(torch.clamp(x * 300, max=1)))


def test_sid_ratio_input_is_a_log_ratio_channel():
    torch.manual_seed(0)
    model = create_model("sid_unet", widths=(8, 16), ratio_input=True).eval()
    seen = []
    model.unet.down[0][0].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = _rand(2, 4, 10, 12) * 0.01  # two levels: stride 2, so no padding
    with torch.no_grad():
        model(x, ratio=torch.tensor([100.0, 250.0]))
        model(x)
    first, plain = seen
    assert first.shape[1] == 5
    torch.testing.assert_close(first[:, :4], x)  # not multiplied
    torch.testing.assert_close(first[0, 4], torch.full((10, 12), math.log(100.0)))
    torch.testing.assert_close(first[1, 4], torch.full((10, 12), math.log(250.0)))
    assert torch.equal(plain[:, 4], torch.zeros(2, 10, 12))  # no ratio = ratio 1


def test_sid_pads_to_stride_and_rejects_bad_input():
    torch.manual_seed(0)
    model = create_model("sid_unet", widths=(8, 16, 32)).eval()
    assert model.stride == 4
    with torch.no_grad():
        assert model(_rand(1, 4, 7, 9)).shape == (1, 3, 14, 18)
    with pytest.raises(InvalidInputError, match="N x 4 x H x W"):
        model(_rand(1, 3, 8, 8))


# ---------------------------------------------------------------- PAC


def _pac_reference(v, f, w, b, padding, stride=1, dilation=1, normalize=False):
    """Direct loops over output pixels, channels and taps (NumPy float64)."""
    v, f, w, b = (t.double().numpy() for t in (v, f, w, b))
    n, cin, h, wd = v.shape
    cout, _, kh, kw = w.shape
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, cout, ho, wo))
    for i in range(n):
        for y in range(ho):
            for x in range(wo):
                cy = y * stride - padding + dilation * (kh // 2)
                cx = x * stride - padding + dilation * (kw // 2)
                fi = f[i, :, cy, cx]
                taps = []
                for ky in range(kh):
                    for kx in range(kw):
                        yy = y * stride - padding + dilation * ky
                        xx = x * stride - padding + dilation * kx
                        inside = 0 <= yy < h and 0 <= xx < wd
                        fj = f[i, :, yy, xx] if inside else np.zeros_like(fi)
                        k = math.exp(-0.5 * float(((fi - fj) ** 2).sum()))
                        vj = v[i, :, yy, xx] if inside else np.zeros(cin)
                        taps.append((k, inside, ky, kx, vj))
                norm = sum(k for k, inside, *_ in taps if inside) if normalize else 1.0
                for o in range(cout):
                    acc = b[o]
                    for k, _, ky, kx, vj in taps:
                        acc += k / norm * float((w[o, :, ky, kx] * vj).sum())
                    out[i, o, y, x] = acc
    return torch.from_numpy(out).float()


@pytest.mark.parametrize("padding,stride,dilation,normalize",
                         [(1, 1, 1, False), (1, 1, 1, True), (2, 2, 2, False), (0, 1, 1, True)])
def test_pac_conv2d_matches_loop_reference(padding, stride, dilation, normalize):
    v, f = _randn(2, 3, 6, 7, seed=1), _randn(2, 2, 6, 7, seed=2)
    w, b = _randn(4, 3, 3, 3, seed=3), _randn(4, seed=4)
    got = pac_conv2d(v, f, w, b, stride=stride, padding=padding, dilation=dilation,
                     normalize_kernel=normalize)
    ref = _pac_reference(v, f, w, b, padding, stride, dilation, normalize)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_pac_conv2d_with_constant_guidance_is_conv2d():
    v, w, b = _randn(2, 3, 9, 8), _randn(5, 3, 5, 5, seed=1), _randn(5, seed=2)
    f = torch.full((2, 4, 9, 8), 0.7)
    for kw in ({"padding": 2}, {"padding": 1, "stride": 2}, {"padding": 2, "dilation": 2}):
        torch.testing.assert_close(pac_conv2d(v, f, w, b, **kw), F.conv2d(v, w, b, **kw),
                                   atol=1e-5, rtol=1e-5)
    layer = PacConv2d(3, 5, 5)
    torch.testing.assert_close(layer(v, f), F.conv2d(v, layer.weight, layer.bias, padding=2),
                               atol=1e-5, rtol=1e-5)


def test_pac_normalized_kernel_sums_to_one():
    # all weights 1: the normalised output is the K-weighted mean of the window (a constant
    # input stays that constant, whatever the guidance)
    v = torch.full((1, 1, 6, 6), 0.3)
    out = pac_conv2d(v, _randn(1, 3, 6, 6), torch.ones(1, 1, 3, 3), padding=1,
                     normalize_kernel=True)
    torch.testing.assert_close(out, v)


def test_pac_conv_transpose2d():
    x, g = _randn(2, 3, 5, 6), _randn(2, 2, 10, 12, seed=1)
    layer = PacConvTranspose2d(3, 4, kernel_size=5, stride=2)
    assert layer(x, g).shape == (2, 4, 10, 12)
    # constant guidance: an ordinary transposed convolution
    flat = torch.zeros(2, 2, 10, 12)
    ref = F.conv_transpose2d(x, layer.weight, layer.bias, stride=2, padding=2, output_padding=1)
    torch.testing.assert_close(layer(x, flat), ref, atol=1e-5, rtol=1e-5)
    # the polyphase computation equals PAC on the zero-inserted input (also normalised)
    w = layer.weight.flip(-1, -2).transpose(0, 1)
    for norm in (False, True):
        layer.normalize_kernel = norm
        mask = zero_insert(torch.ones(1, 1, 5, 6), 2)
        ref = pac_conv2d(zero_insert(x, 2), g, w, layer.bias, padding=2,
                         normalize_kernel=norm, valid_mask=mask)
        torch.testing.assert_close(layer(x, g), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidInputError, match="must be 2x the input"):
        layer(x, g[..., :-1])


def test_zero_insert_and_pac_errors():
    x = _randn(1, 2, 2, 3)
    z = zero_insert(x, 2)
    assert z.shape == (1, 2, 4, 6)
    assert torch.equal(z[..., ::2, ::2], x) and z[..., 1::2, :].abs().sum() == 0
    with pytest.raises(InvalidInputError, match="odd kernel"):
        PacConv2d(2, 2, 4)
    with pytest.raises(InvalidInputError, match="must match input"):
        pac_conv2d(x, _randn(1, 2, 3, 3), _randn(2, 2, 3, 3))


def test_pac_isp_guidance_is_the_gamma_encoded_demosaic():
    torch.manual_seed(0)
    model = create_model("pac_isp").eval()
    seen = []
    model.guide[0].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = _rand(1, 4, 8, 8)
    with torch.no_grad():
        model(x)
    torch.testing.assert_close(seen[0], packed_to_bilinear_rgb(x).clamp(min=1e-5) ** (1 / 2.2))
    sig = create_model("pac_isp", output="sigmoid").train()
    y = sig(x)
    assert y.min() > 0 and y.max() < 1
    with pytest.raises(InvalidInputError, match="bad options|output must be"):
        create_model("pac_isp", output="tanh")


# ---------------------------------------------------------------- per-pixel kernels


def test_apply_kernels_delta_and_box():
    img = _rand(2, 3, 7, 9)
    delta = torch.zeros(2, 3, 25, 7, 9)
    delta[:, :, 12] = 1
    assert torch.equal(apply_kernels(img, delta, 5), img)
    # a kernel that picks the right-hand neighbour shifts the image (replicate border)
    right = torch.zeros(2, 1, 9, 7, 9)
    right[:, :, 5] = 1  # tap (1, 2) of a 3x3 kernel
    shifted = apply_kernels(img, right, 3)
    assert torch.equal(shifted[..., :-1], img[..., 1:])
    assert torch.equal(shifted[..., -1], img[..., -1])
    box = torch.full((1, 3, 9, 4, 4), 1 / 9)
    const = torch.full((1, 3, 4, 4), 0.25)
    torch.testing.assert_close(apply_kernels(const, box, 3), const)
    with pytest.raises(InvalidInputError, match="odd"):
        apply_kernels(img, delta, 4)
    with pytest.raises(InvalidInputError, match="kernels must be"):
        apply_kernels(img, delta[:, :, :9], 5)


def test_normalize_kernels():
    logits = _randn(2, 3, 25, 4, 4)
    assert torch.allclose(normalize_kernels(logits, "softmax").sum(2), torch.ones(2, 3, 4, 4))
    s1 = normalize_kernels(logits, "sum1")
    assert torch.allclose(s1.abs().sum(2), torch.ones(2, 3, 4, 4))
    assert torch.equal(normalize_kernels(logits, "none"), logits)
    with pytest.raises(InvalidInputError, match="normalisation"):
        normalize_kernels(logits, "l2")


def test_kpn_with_delta_kernels_returns_the_encoded_demosaic():
    torch.manual_seed(0)
    model = create_model("kpn_isp").eval()
    k2 = 25
    with torch.no_grad():
        model.unet.head.weight.zero_()
        model.unet.head.bias.zero_()
        for c in range(3):  # pixel shuffle: output channel ch <- head channels 4ch..4ch+3
            ch = c * k2 + k2 // 2
            model.unet.head.bias[4 * ch : 4 * ch + 4] = 60.0
        x = _rand(1, 4, 16, 24) * 0.8
        y = model(x)
    expected = gamma_encode(packed_to_bilinear_rgb(x)).clamp(0, 1)  # colour matrix = I at init
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


def test_kpn_options():
    torch.manual_seed(0)
    small = create_model("kpn_isp", widths=(8, 16), kernel_size=3, normalize="sum1",
                         bias=False, color_matrix=False)
    assert small.stride == 2 and small.color is None
    assert small.unet.head.out_channels == 4 * 3 * 9
    with torch.no_grad():
        assert small.eval()(_rand(1, 4, 5, 7)).shape == (1, 3, 10, 14)
    with pytest.raises(InvalidInputError, match="kernel_size must be odd"):
        create_model("kpn_isp", kernel_size=4)


# ---------------------------------------------------------------- zoo contract


@pytest.mark.parametrize("name", MODELS)
def test_contract(name):
    info = model_info(name)
    assert (info["input"], info["output"], info["output_scale"]) == ("packed_raw", "srgb", 2)
    torch.manual_seed(0)
    model = create_model(name)
    assert count_parameters(model) == info["parameters"] == EXPECTED_PARAMS[name]
    assert getattr(model, "stride", 1) == info["stride"]
    model.eval()
    with torch.no_grad():  # 37 x 45: not a multiple of any stride (64 x 64 runs in the ONNX test)
        y = model(_rand(1, 4, 37, 45))
    assert y.shape == (1, 3, 74, 90)
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    model.train()
    model(_rand(1, 4, 16, 16)).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", MODELS)
def test_card_rows(name):
    text = (CARDS / f"{name}.md").read_text()
    n = re.search(r"^\| parameters \| ([\d,]+) \|", text, re.M)
    assert n and int(n[1].replace(",", "")) == EXPECTED_PARAMS[name]
    assert re.search(r"^\| GFLOPs per megapixel \| [\d.]+ \|", text, re.M)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export(name):
    pytest.importorskip("onnxruntime")
    from isplab.models.export import onnx_max_error

    torch.manual_seed(0)
    assert onnx_max_error(create_model(name), _rand(1, 4, 64, 64)) <= 1e-4
