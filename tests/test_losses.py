"""isplab.losses: known values, symmetry, batch independence, gradcheck, range edges, errors,
VGG weight loading and CompositeLoss. Small tensors only (VGG on <= 16 x 16 inputs)."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from scipy.stats import norm

import isplab.losses as L
from isplab.backbones import SPECS, build_backbone
from isplab.errors import InvalidInputError, IsplabError
from isplab.losses import functional as LF
from isplab.metrics.functional import MS_SSIM_WEIGHTS, ms_ssim, ssim

PAIR_LOSSES = ["l1", "mse", "charbonnier", "ssim_loss", "ms_ssim_loss", "lab_loss",
               "color_loss", "cycle_loss"]
SYMMETRIC = ["l1", "mse", "charbonnier", "ssim_loss", "ms_ssim_loss", "lab_loss", "color_loss"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def vgg():
    """A random-init VGG-19 (float64) shared by the feature-loss tests."""
    torch.manual_seed(123)
    return L.load_vgg19(random_init=True).double()


def _pair(n=2, c=3, h=32, w=32, dtype=torch.float32, close=False):
    x = torch.rand(n, c, h, w, dtype=dtype)
    if close:  # correlated pair (keeps SSIM's contrast-structure terms positive)
        y = (x + 0.1 * torch.randn_like(x)).clamp(0.05, 0.95)
        x = x.clamp(0.05, 0.95)
        return x, y
    return x, torch.rand(n, c, h, w, dtype=dtype)


def _fn(name):
    return {"cycle_loss": LF.cycle_loss}.get(name, getattr(LF, name))


# --------------------------------------------------------------------------- basic laws


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_identical_inputs_give_zero(name):
    x, _ = _pair()
    assert float(_fn(name)(x, x.clone())) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric(name):
    x, y = _pair()
    assert float(_fn(name)(x, y)) == pytest.approx(float(_fn(name)(y, x)), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_batch_independence_and_reductions(name):
    x, y = _pair(n=3, close=True)
    per = _fn(name)(x, y, reduction="none")
    assert per.shape == (3,) and (per > 0).all()
    single = torch.stack([_fn(name)(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(per, single, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(_fn(name)(x, y), per.mean())
    torch.testing.assert_close(_fn(name)(x, y, reduction="sum"), per.sum())
    with pytest.raises(InvalidInputError, match="reduction"):
        _fn(name)(x, y, reduction="avg")


# --------------------------------------------------------------------------- known values


def test_pixel_losses_known_values():
    x = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
    y = torch.tensor([0.5, 0.5, 0.0, 0.75]).view(1, 1, 2, 2)
    d = np.array([-0.5, 0.0, 1.0, -0.5])
    assert float(L.l1(x, y)) == pytest.approx(2.0 / 4)
    assert float(L.mse(x, y)) == pytest.approx(1.5 / 4)
    eps = 0.1
    expect = np.mean(np.sqrt(d**2 + eps**2)) - eps
    assert float(L.charbonnier(x, y, eps=eps)) == pytest.approx(expect, rel=1e-6)
    assert float(L.cycle_loss(x, y)) == pytest.approx(0.5)


def test_tv_known_values():
    x = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]).view(1, 1, 2, 3)
    # dy: (0, -1, 0.5) -> mean sq 1.25/3; dx: (1, -1, 0, 0.5) -> mean sq 2.25/4
    assert float(L.tv_loss(x)) == pytest.approx(1.25 / 3 + 2.25 / 4)
    assert float(L.tv_loss(x, squared=False)) == pytest.approx(1.5 / 3 + 2.5 / 4)
    assert float(L.tv_loss(torch.full((2, 3, 5, 5), 0.3))) == 0.0


def _dped_kernel_numpy(kernlen=21, nsig=3):  # DPED utils.gauss_kernel, verbatim maths
    interval = (2 * nsig + 1.0) / kernlen
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, kernlen + 1)
    kern1d = np.diff(norm.cdf(x))
    kernel_raw = np.sqrt(np.outer(kern1d, kern1d))
    return kernel_raw / kernel_raw.sum()


def test_dped_kernel_and_color_loss_match_numpy():
    k = _dped_kernel_numpy()
    np.testing.assert_allclose(L.dped_blur_kernel(dtype=torch.float64).numpy(), k,
                               rtol=1e-10, atol=1e-14)
    ax = np.arange(21) - 10  # effective std ~ 4.2 px (sqrt widens the 3 px 1-D Gaussian)
    std = math.sqrt((k.sum(0) * ax**2).sum())
    assert 4.0 < std < 4.4
    x, y = _pair(n=2, c=3, h=24, w=20, dtype=torch.float64)
    ref = []
    for i in range(2):
        acc = 0.0
        for c in range(3):
            bx = convolve2d(x[i, c].numpy(), k, mode="same", boundary="fill")
            by = convolve2d(y[i, c].numpy(), k, mode="same", boundary="fill")
            acc += ((bx - by) ** 2).sum()
        ref.append(acc / (3 * 24 * 20))
    np.testing.assert_allclose(L.color_loss(x, y, reduction="none").numpy(), ref, rtol=1e-10)
    # blur removes fine detail: a checkerboard costs little colour loss, a shift in mean a lot
    checker = (torch.arange(32).view(1, 1, 32, 1) + torch.arange(32).view(1, 1, 1, 32)) % 2
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert float(L.color_loss(flat + 0.2 * (checker - 0.5), flat)) < 1e-4
    assert float(L.color_loss(flat + 0.1, flat)) > 1e-3


def test_ssim_losses_use_the_metrics_definitions():
    x, y = _pair(n=2, c=3, h=32, w=32, close=True)
    torch.testing.assert_close(L.ssim_loss(x, y, reduction="none"), 1 - ssim(x, y))
    w = MS_SSIM_WEIGHTS[:2]
    ref = 1 - ms_ssim(x, y, weights=tuple(v / sum(w) for v in w))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the automatic fewer-scales path is silent
        got = L.ms_ssim_loss(x, y, reduction="none")
    torch.testing.assert_close(got, ref)
    with pytest.raises(InvalidInputError, match="supports 1..2 scales"):
        L.ms_ssim_loss(x, y, scales=3)
    one = L.ms_ssim_loss(x, y, scales=1, reduction="none")
    torch.testing.assert_close(one, 1 - ssim(x, y))  # 1 scale = SSIM


def test_ms_ssim_loss_five_scales_matches_pytorch_msssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    x, y = _pair(n=1, c=1, h=176, w=176, dtype=torch.float64, close=True)
    ref = 1 - pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    got = L.ms_ssim_loss(x, y, reduction="none")
    torch.testing.assert_close(got, 1 - ms_ssim(x, y))
    # pytorch-msssim builds its window in float32: agreement to ~1e-5
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-5)


def _lab_numpy(srgb):
    """Reference sRGB -> Lab (D65, 2 deg) with colour-science."""
    colour = pytest.importorskip("colour")
    rgb = srgb.permute(0, 2, 3, 1).numpy()
    xyz = colour.sRGB_to_XYZ(rgb)
    lab = colour.XYZ_to_Lab(xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]
                            ["D65"])
    return lab


def test_lab_loss_known_value():
    x, y = _pair(n=2, c=3, h=16, w=16, dtype=torch.float64, close=True)
    lx, ly = _lab_numpy(x), _lab_numpy(y)
    scale = np.array([100.0, 110.0, 110.0])
    ref_l1 = np.abs(lx / scale - ly / scale).reshape(2, -1).mean(1)
    got_l1 = L.lab_loss(x, y, alpha=0.0, reduction="none").numpy()
    np.testing.assert_allclose(got_l1, ref_l1, rtol=2e-3)  # kornia vs colour constants
    lab_x, lab_y = L.srgb_to_scaled_lab(x), L.srgb_to_scaled_lab(y)
    ms = L.ms_ssim_loss(lab_x[:, :1], lab_y[:, :1], reduction="none")
    torch.testing.assert_close(L.lab_loss(x, y, alpha=1.0, reduction="none"), ms)
    mixed = L.lab_loss(x, y, reduction="none")  # alpha = 0.5 default
    torch.testing.assert_close(mixed, 0.5 * torch.from_numpy(got_l1) + 0.5 * ms)
    # a pure lightness change is seen by both terms; a hue change with equal L mostly by L1
    assert float(L.lab_loss(x, (x * 0.8), alpha=1.0)) > 0


def test_adversarial_known_values():
    r = torch.tensor([[2.0], [-1.0]])
    f = torch.tensor([[0.5], [-3.0]])
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731
    rn, fn = r.numpy().ravel(), f.numpy().ravel()
    cases = {
        "gan": (sp(-fn).mean(), (sp(-rn) + sp(fn)).mean()),
        "lsgan": (((fn - 1) ** 2).mean(), ((rn - 1) ** 2 + fn**2).mean()),
        "hinge": ((-fn).mean(), (np.maximum(1 - rn, 0) + np.maximum(1 + fn, 0)).mean()),
        "wgan": ((-fn).mean(), (-rn + fn).mean()),
    }
    for kind, (g, d) in cases.items():
        mod = L.create_loss(kind)
        assert float(mod(f)) == pytest.approx(g, rel=1e-6)
        assert float(mod.discriminator(r, f)) == pytest.approx(d, rel=1e-6)
        assert float(L.generator_loss(f, kind)) == pytest.approx(g, rel=1e-6)
    # gan = BCE with logits
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(L.generator_loss(f, "gan"), bce(f, torch.ones_like(f)))
    torch.testing.assert_close(L.discriminator_loss(r, f, "gan"),
                               bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    # patch discriminator outputs (N x 1 x h x w) are averaged per sample
    patch = torch.randn(3, 1, 4, 4)
    assert L.generator_loss(patch, "lsgan", reduction="none").shape == (3,)
    with pytest.raises(InvalidInputError, match="kind"):
        L.generator_loss(f, "wasserstein")


def test_gradient_penalty_known_values():
    # a linear critic w . x has gradient w everywhere: penalty (|w| - 1)^2 exactly
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    real, fake = torch.rand(4, 2, 1, 1), torch.rand(4, 2, 1, 1)
    gp = L.gradient_penalty(lambda x: (x * w).sum((1, 2, 3)), real, fake,
                            torch.Generator().manual_seed(0))
    assert float(gp) == pytest.approx(16.0)
    # a critic of unit-norm gradient has no penalty; the penalty is differentiable
    w1 = (w / 5).requires_grad_(True)
    gp = L.gradient_penalty(lambda x: (x * w1).sum((1, 2, 3)), real, fake)
    assert float(gp) == pytest.approx(0.0, abs=1e-10)
    quad = torch.nn.Parameter(torch.tensor(2.0))
    gp = L.gradient_penalty(lambda x: quad * x.pow(2).sum((1, 2, 3)), real, fake)
    gp.backward()
    assert quad.grad is not None and torch.isfinite(quad.grad)
    with pytest.raises(InvalidInputError, match="shape"):
        L.gradient_penalty(lambda x: x.sum(), real, fake[:2])


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    g = L.gram_matrix(f)
    expect = torch.tensor([[5.0, 2.0], [2.0, 1.0]]) / 4
    torch.testing.assert_close(g[0], expect)
    m = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    torch.testing.assert_close(L.gram_matrix(f, m)[0], torch.tensor([[1.0, 0], [0, 0]]) / 4)


# --------------------------------------------------------------------------- VGG losses


def test_perceptual_matches_direct_feature_mse(vgg):
    x, y = _pair(n=2, c=3, h=16, w=16, dtype=torch.float64)
    got = L.perceptual(x, y, vgg, layers=["relu2_2", "relu5_4"], layer_weights=[1.0, 2.0],
                       reduction="none")
    fx, fy = vgg(x, ["relu2_2", "relu5_4"]), vgg(y, ["relu2_2", "relu5_4"])
    ref = ((fx["relu2_2"] - fy["relu2_2"]) ** 2).flatten(1).mean(1) + \
        2 * ((fx["relu5_4"] - fy["relu5_4"]) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(got, ref)
    l1v = L.perceptual(x, y, vgg, layers=["relu1_2"], distance="l1")
    torch.testing.assert_close(l1v, (vgg(x, ["relu1_2"])["relu1_2"] -
                                     vgg(y, ["relu1_2"])["relu1_2"]).abs().mean())
    assert float(L.perceptual(x, x, vgg)) == 0.0
    # ImageNet normalisation is applied (by the backbone): equal to un-normalised on normalised
    xn, yn = (x - vgg.mean) / vgg.std, (y - vgg.mean) / vgg.std
    raw = ((vgg(xn, ["relu2_2"], normalize=False)["relu2_2"] -
            vgg(yn, ["relu2_2"], normalize=False)["relu2_2"]) ** 2).mean()
    torch.testing.assert_close(L.perceptual(x, y, vgg, layers=["relu2_2"]), raw)


def test_perceptual_module_random_init_warns_and_is_frozen(caplog):
    with caplog.at_level(logging.WARNING):
        mod = L.create_loss("perceptual", random_init=True)
    assert "not perceptual" in caplog.text
    assert mod.layers == ("relu5_4",) and mod.distance == "mse"
    mod.train()
    assert not mod.backbone.training
    assert not any(p.requires_grad for p in mod.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    mod(x, torch.rand(1, 3, 16, 16)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(InvalidInputError, match="no layer"):
        L.PerceptualLoss(layers=["relu9_1"], backbone=mod.backbone)


def test_perceptual_loads_weights_from_path_and_names_missing_file(tmp_path, monkeypatch):
    monkeypatch.delenv("ISPLAB_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(IsplabError, match="vgg19-dcbb9e9d.pth"):
        L.PerceptualLoss()
    torch.manual_seed(5)
    ref = build_backbone("vgg19")
    state = {k: v.half() for k, v in ref.state_dict().items()}  # small file, exact in fp16
    path = tmp_path / SPECS["vgg19"].filename
    torch.save(state, path)
    mod = L.PerceptualLoss(weights=path)
    torch.testing.assert_close(mod.backbone.features[34].weight, state["features.34.weight"]
                               .float())
    mod2 = L.PerceptualLoss(weights=tmp_path)  # a folder holding torchvision's file name
    torch.testing.assert_close(mod2.backbone.features[0].bias, state["features.0.bias"].float())
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    assert L.create_loss("perceptual").backbone.features[2].weight.dtype == torch.float32
    monkeypatch.delenv("ISPLAB_WEIGHTS_DIR")
    with pytest.raises(IsplabError, match="vgg19-dcbb9e9d.pth"):
        L.PerceptualLoss(weights=tmp_path / "elsewhere")


def test_gram_style_loss_masks(vgg):
    x, s = _pair(n=2, c=3, h=16, w=16, dtype=torch.float64)
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    plain = L.gram_style_loss(x, s, vgg, layers=layers, reduction="none")
    assert (plain > 0).all()
    assert float(L.gram_style_loss(x, x, vgg, layers=layers)) == 0.0
    ones = torch.ones(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(L.gram_style_loss(x, s, vgg, layers=layers, masks=ones,
                                                 reduction="none"), plain)
    top = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    top[:, :, :8] = 1
    masks = torch.cat([top, 1 - top], 1)
    a = L.gram_style_loss(x, s, vgg, layers=layers, masks=masks, region_weights=[1.0, 0.0])
    b = L.gram_style_loss(x, s, vgg, layers=layers, masks=top)
    torch.testing.assert_close(a, b)
    # only the weighted region matters: changing the other half of pred leaves it unchanged
    x2 = x.clone()
    x2[:, :, 12:] = torch.rand(2, 3, 4, 16, dtype=torch.float64)
    a2 = L.gram_style_loss(x2, s, vgg, layers=["relu1_1"], masks=masks,
                           region_weights=[1.0, 0.0])
    a1 = L.gram_style_loss(x, s, vgg, layers=["relu1_1"], masks=masks,
                           region_weights=[1.0, 0.0])
    torch.testing.assert_close(a1, a2)
    # a style image of another size with its own masks
    s_big = torch.rand(2, 3, 24, 24, dtype=torch.float64)
    big_masks = torch.nn.functional.interpolate(masks, size=(24, 24), mode="nearest")
    v = L.gram_style_loss(x, s_big, vgg, layers=layers, masks=masks, style_masks=big_masks)
    assert torch.isfinite(v)
    with pytest.raises(InvalidInputError, match="region_weights"):
        L.gram_style_loss(x, s, vgg, layers=layers, masks=masks, region_weights=[1.0])
    with pytest.raises(InvalidInputError, match="masks"):
        L.gram_style_loss(x, s, vgg, layers=layers, masks=masks[:, :, :8])


# --------------------------------------------------------------------------- gradients


def _gc(fn, *inputs, fast=False):
    inputs = [t.detach().double().requires_grad_(True) for t in inputs]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3,
                                    fast_mode=fast)


@pytest.mark.parametrize("name", ["l1", "mse", "charbonnier", "cycle_loss", "color_loss"])
def test_gradcheck_pixel(name):
    x, y = _pair(n=2, c=2, h=6, w=6, dtype=torch.float64)
    _gc(_fn(name), x, y)


def test_gradcheck_tv_and_adversarial():
    _gc(L.tv_loss, torch.rand(2, 2, 5, 5, dtype=torch.float64))
    r = torch.tensor([[0.3], [-0.4], [2.5]], dtype=torch.float64)  # away from hinge kinks
    f = torch.tensor([[0.2], [-0.5], [-2.2]], dtype=torch.float64)
    for kind in ("gan", "lsgan", "hinge"):
        _gc(lambda t, k=kind: L.generator_loss(t, k), f)
        _gc(lambda a, b, k=kind: L.discriminator_loss(a, b, k), r, f)


def test_gradcheck_ssim_family():
    x, y = _pair(n=1, c=2, h=16, w=16, dtype=torch.float64, close=True)
    _gc(L.ssim_loss, x, y)
    x, y = _pair(n=1, c=1, h=24, w=24, dtype=torch.float64, close=True)
    _gc(L.ms_ssim_loss, x, y)  # 2 scales
    x, y = _pair(n=1, c=3, h=12, w=12, dtype=torch.float64, close=True)
    x, y = x.clamp(0.1, 0.9), y.clamp(0.1, 0.9)
    _gc(L.lab_loss, x, y)


def test_gradcheck_vgg_losses(vgg):
    x, y = _pair(n=1, c=3, h=6, w=6, dtype=torch.float64)
    # the target's features carry no gradient (it is data): check d/d pred
    _gc(lambda a: L.perceptual(a, y, vgg, layers=["relu1_2", "relu2_1"]), x)
    _gc(lambda a: L.perceptual(a, y, vgg, layers=["relu2_2"], distance="l1"), x)
    _gc(lambda a: L.gram_style_loss(a, y, vgg, layers=["relu1_1", "relu2_1"]), x)
    masks = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    _gc(lambda a: L.gram_style_loss(a, y, vgg, layers=["relu1_2"], masks=masks,
                                    region_weights=[1.0, 0.5]), x)
    x, y = _pair(n=1, c=3, h=16, w=16, dtype=torch.float64, close=True)
    _gc(lambda a: L.perceptual(a, y, vgg), x, fast=True)  # relu5_4, fast (random projection)
    _gc(lambda a: L.lab_vgg(a, y, vgg, layers=["relu2_2"]), x, fast=True)


@pytest.mark.parametrize("name", ["l1", "mse", "charbonnier", "ssim_loss", "ms_ssim_loss",
                                  "lab_loss", "color_loss", "perceptual"])
def test_finite_gradients_at_range_edges(name):
    module = L.create_loss(name, random_init=True) if name == "perceptual" else \
        L.create_loss(name)
    size = 16 if name == "perceptual" else 32
    checker = ((torch.arange(size).view(1, 1, size, 1) // 4 +
                torch.arange(size).view(1, 1, 1, size) // 4) % 2).float().expand(1, 3, -1, -1)
    edges = [torch.zeros(1, 3, size, size), torch.ones(1, 3, size, size), checker]
    for a in edges:
        for b in edges:
            x = a.clone().requires_grad_(True)
            loss = module(x, b)
            loss.backward()
            assert torch.isfinite(loss), (name, loss)
            assert torch.isfinite(x.grad).all(), name


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_bad_inputs(name):
    fn = _fn(name)
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(InvalidInputError, match="same shape"):
        fn(x, torch.rand(1, 3, 16, 18))
    with pytest.raises(InvalidInputError, match="4-D"):
        fn(x[0], x[0])
    bad = x.clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        fn(bad, x)
    with pytest.raises(InvalidInputError, match="NaN"):
        fn(x, bad)


def test_bad_inputs_other():
    with pytest.raises(InvalidInputError, match="N x 3"):
        L.lab_loss(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))
    with pytest.raises(InvalidInputError, match="alpha"):
        L.lab_loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), alpha=2.0)
    with pytest.raises(InvalidInputError, match="11"):
        L.ms_ssim_loss(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(InvalidInputError, match="NaN"):
        L.tv_loss(torch.tensor(float("nan")).expand(1, 1, 3, 3))
    with pytest.raises(InvalidInputError, match="N x C x H x W"):
        L.tv_loss(torch.rand(3, 4, 4))
    with pytest.raises(InvalidInputError, match="NaN"):
        L.generator_loss(torch.tensor([[float("nan")]]))
    with pytest.raises(InvalidInputError, match="eps"):
        L.charbonnier(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), eps=0.0)


def test_vgg_dtype_mismatch_is_explained(vgg):
    with pytest.raises(InvalidInputError, match=r"\.to\(\)"):
        L.perceptual(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), vgg)


# --------------------------------------------------------------------------- registry, composite


def test_l1_gamma_judges_linear_values_as_displayed():
    from isplab.losses.functional import l1_gamma

    dark = torch.full((1, 3, 4, 4), 0.01)
    bright = torch.full((1, 3, 4, 4), 0.81)
    step = 0.005
    # the same linear error weighs more in the shadows (the gamma's slope)
    assert float(l1_gamma(dark + step, dark)) > 5 * float(l1_gamma(bright + step, bright))
    want = 0.811 ** (1 / 2.2) - 0.011 ** (1 / 2.2)
    assert float(l1_gamma(bright, dark)) == pytest.approx(want, rel=1e-5)
    assert float(l1_gamma(-dark, torch.zeros_like(dark))) == 0  # negatives count as 0
    with pytest.raises(InvalidInputError):
        l1_gamma(dark, dark, gamma=0)


def test_registry():
    names = set(L.list_losses())
    assert names == {"l1", "l1_gamma", "mse", "charbonnier", "ssim_loss", "ms_ssim_loss",
                     "perceptual", "lab_loss", "lab_vgg", "color_loss", "tv_loss",
                     "gram_style_loss", "gan", "lsgan", "hinge", "wgan", "cycle_loss"}
    with pytest.raises(InvalidInputError, match="unknown loss"):
        L.create_loss("ssim")
    with pytest.raises(InvalidInputError, match="bad options|unexpected"):
        L.create_loss("l1", sigma=3)
    assert L.create_loss("charbonnier", eps=1e-2).opts == {"eps": 1e-2}
    assert L.create_loss("lsgan").kind == "lsgan"


def test_composite_sums_weighted_terms():
    x, y = _pair(n=2, c=3, h=32, w=32, close=True)
    fake = torch.randn(2, 1)
    comp = L.CompositeLoss({"mse": 10.0, "ms_ssim_loss": 0.4, "tv_loss": 2.0, "gan": 0.1,
                            "soft": {"loss": "charbonnier", "weight": 0.5}},
                           soft={"eps": 1e-2})
    xr = x.clone().requires_grad_(True)
    total, terms = comp(xr, y, fake_logits=fake)
    expect = {"mse": 10 * L.mse(x, y), "ms_ssim_loss": 0.4 * L.ms_ssim_loss(x, y),
              "tv_loss": 2 * L.tv_loss(x), "gan": 0.1 * L.generator_loss(fake),
              "soft": 0.5 * L.charbonnier(x, y, eps=1e-2)}
    assert list(terms) == list(expect)
    for k, v in expect.items():
        assert isinstance(terms[k], float)
        assert terms[k] == pytest.approx(float(v), rel=1e-5)
    assert float(total.detach()) == pytest.approx(sum(terms.values()), rel=1e-5)
    total.backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0
    with pytest.raises(InvalidInputError, match="fake_logits"):
        comp(x, y)
    with pytest.raises(InvalidInputError, match="not in the config"):
        L.CompositeLoss({"l1": 1.0}, mse={})
    with pytest.raises(InvalidInputError, match="weight"):
        L.CompositeLoss({"l1": "heavy"})


def test_composite_with_vgg_and_cycle():
    comp = L.CompositeLoss({"l1": 1.0, "perceptual": 0.5, "cycle_loss": 2.0,
                            "gram_style_loss": 3.0},
                           perceptual={"random_init": True, "layers": ["relu2_2"]},
                           gram_style_loss={"random_init": True, "layers": ["relu1_1"]})
    x, y = _pair(n=1, c=3, h=16, w=16)
    rec = torch.rand(1, 3, 16, 16)
    total, terms = comp(x, y, reconstruction=rec, original=x, style=y)
    assert terms["cycle_loss"] == pytest.approx(2 * float(L.cycle_loss(rec, x)), rel=1e-6)
    p = comp.terms["perceptual"]
    assert terms["perceptual"] == pytest.approx(
        0.5 * float(L.perceptual(x, y, p.backbone, layers=["relu2_2"])), rel=1e-5)
    assert float(total) == pytest.approx(sum(terms.values()), rel=1e-5)
    assert not any(q.requires_grad for q in comp.parameters())
    assert comp.terms["gram_style_loss"].backbone is p.backbone  # one VGG-19, loaded once
