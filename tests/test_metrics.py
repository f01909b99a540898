"""Metrics: known values, references (scikit-image, pytorch-msssim, colour-science, Sharma et al.
2005), batch independence, errors, registry, aggregation and gradchecks."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from isplab.errors import InvalidInputError
from isplab.metrics import (
    aggregate,
    angular_error,
    ciede2000,
    create_metric,
    deltae2000,
    deltae2000_map,
    list_metrics,
    ms_ssim,
    psnr,
    psnr_y,
    rgb_to_y_bt601,
    ssim,
)
from isplab.metrics.functional import _ms_ssim_terms, ms_ssim_scales
from tests.conftest import DATA, need

KODAK = DATA / "kodak24"

# Sharma, Wu & Dalal (2005), Table 1: the 34 test pairs, as in colour-science's test suite
# (colour/difference/tests/test_delta_e.py, where pair 14 is commented out; see below).
SHARMA_PAIRS = [  # (L1, a1, b1, L2, a2, b2, dE00)
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def to_t(a: np.ndarray) -> torch.Tensor:
    """H x W x 3 array -> 1 x 3 x H x W float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].double()


@pytest.fixture(scope="module")
def kodak_pairs():
    """Real photo crops (float64, H x W x 3) with a noisy and a blurred distorted version."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(7)
    out = []
    for name, (top, left, h, w) in (("kodim01.png", (40, 60, 200, 240)),
                                    ("kodim05.png", (100, 200, 176, 192)),
                                    ("kodim23.png", (150, 300, 168, 200))):
        img = np.asarray(Image.open(need(KODAK / name)).convert("RGB"), dtype=np.float64)
        ref = img[top:top + h, left:left + w] / 255.0
        noisy = np.clip(ref + rng.normal(0, 0.04, ref.shape), 0, 1)
        blurred = gaussian_filter(ref, sigma=(1.2, 1.2, 0))
        out += [(ref, noisy), (ref, blurred)]
    return out


def rand_img(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


# ----------------------------------------------------------------------------- PSNR


def test_psnr_known_value_and_inf():
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    out = psnr(x, y)
    assert out[0].item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(out[1].item()) and out[1].item() > 0
    assert psnr(x, y, data_range=2.0)[0].item() == pytest.approx(20 + 20 * math.log10(2), abs=1e-4)


def test_psnr_y_convention():
    x = rand_img(1, 3, 16, 16, seed=1, dtype=torch.float64)
    y = rand_img(1, 3, 16, 16, seed=2, dtype=torch.float64)
    yx = 16 / 255 + (65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]) / 255
    yy = 16 / 255 + (65.481 * y[:, 0] + 128.553 * y[:, 1] + 24.966 * y[:, 2]) / 255
    torch.testing.assert_close(rgb_to_y_bt601(x)[:, 0], yx)
    expected = 10 * torch.log10(1 / ((yx - yy) ** 2).mean())
    torch.testing.assert_close(psnr_y(x, y), expected[None])
    # 8-bit convention: the same number on data in [0, 255] with data_range 255
    torch.testing.assert_close(psnr_y(x * 255, y * 255, data_range=255), expected[None])
    assert rgb_to_y_bt601(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235 / 255, abs=1e-6)
    assert math.isinf(psnr_y(x, x).item())


def test_psnr_border():
    x = torch.zeros(1, 3, 10, 10)
    y = x.clone()
    y[..., 0, :] = 1.0  # only the first row differs
    assert math.isinf(psnr(x, y, border=1).item())
    assert psnr(x, y).item() == pytest.approx(10.0, abs=1e-4)  # MSE 0.1


# ----------------------------------------------------------------------------- SSIM


def test_ssim_matches_skimage(kodak_pairs):
    from skimage.metrics import structural_similarity

    diffs = []
    for ref, dist in kodak_pairs:
        expected = structural_similarity(ref, dist, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1,
                                         channel_axis=-1)
        for dtype in (torch.float64, torch.float32):
            got = ssim(to_t(ref).to(dtype), to_t(dist).to(dtype)).item()
            diffs.append(abs(got - expected))
    assert max(diffs) < 1e-4, max(diffs)


def test_ssim_known_values_and_symmetry():
    x = rand_img(2, 3, 20, 24, seed=3)
    y = rand_img(2, 3, 20, 24, seed=4)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert (ssim(x, y) < 0.5).all()


def test_ssim_border_is_a_crop():
    x = rand_img(1, 3, 30, 30, seed=5)
    y = rand_img(1, 3, 30, 30, seed=6)
    torch.testing.assert_close(ssim(x, y, border=4), ssim(x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4]))


def test_ssim_too_small():
    with pytest.raises(InvalidInputError, match="at least 11"):
        ssim(torch.rand(1, 3, 10, 20), torch.rand(1, 3, 10, 20))


# ----------------------------------------------------------------------------- MS-SSIM


def test_ms_ssim_matches_pytorch_msssim(kodak_pairs):
    import pytorch_msssim

    diffs = []
    for ref, dist in kodak_pairs:
        x, y = to_t(ref).float(), to_t(dist).float()
        assert min(x.shape[-2:]) > 160
        expected = pytorch_msssim.ms_ssim(x, y, data_range=1, size_average=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # 5 scales: no warning
            got = ms_ssim(x, y)
        diffs.append((got - expected).abs().max().item())
    assert max(diffs) < 1e-5, max(diffs)


def test_ms_ssim_identical_and_symmetric():
    x = rand_img(2, 3, 170, 165, seed=8)
    y = (x + 0.1 * rand_img(2, 3, 170, 165, seed=9)).clamp(0, 1)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2))
    torch.testing.assert_close(ms_ssim(x, y), ms_ssim(y, x))


def test_ms_ssim_negative_cs_is_clamped_not_nan():
    """Same fine noise, opposite coarse ramps: cs > 0 at the fine scale, < 0 at coarse ones."""
    import pytorch_msssim

    g = torch.Generator().manual_seed(10)
    ramp = torch.linspace(-1, 1, 176, dtype=torch.float64)[None, None, :, None].expand(1, 3, 176,
                                                                                     176)
    noise = 0.15 * torch.randn(1, 3, 176, 176, generator=g, dtype=torch.float64)
    x = (0.5 + 0.3 * ramp + noise).clamp(0, 1)
    y = (0.5 - 0.3 * ramp + noise).clamp(0, 1)
    terms = _ms_ssim_terms(x, y, 1.0, 5)
    assert (terms[0] > 0).all() and (terms[3] < 0).all()
    out = ms_ssim(x, y)
    assert torch.isfinite(out).all() and (out >= 0).all()
    expected = pytorch_msssim.ms_ssim(x, y, data_range=1, size_average=False)
    torch.testing.assert_close(out, expected)
    # and a fully anti-correlated pair, with a finite gradient
    xr = x.clone().requires_grad_(True)
    val = ms_ssim(xr, 1 - x)
    val.sum().backward()
    assert val.item() == 0.0 and torch.isfinite(xr.grad).all()


def test_ms_ssim_small_images_use_fewer_scales():
    assert ms_ssim_scales(161, 300) == 5
    assert ms_ssim_scales(160, 300) == 4
    assert ms_ssim_scales(11, 11) == 1
    x = rand_img(1, 3, 48, 50, seed=11, dtype=torch.float64)
    y = (x + 0.05 * rand_img(1, 3, 48, 50, seed=12, dtype=torch.float64)).clamp(0, 1)
    with pytest.warns(UserWarning, match="3 of 5 scales"):
        out = ms_ssim(x, y)
    w = torch.tensor([0.0448, 0.2856, 0.3001], dtype=torch.float64)
    w = w / w.sum()
    t = _ms_ssim_terms(x, y, 1.0, 3).clamp(min=0)
    torch.testing.assert_close(out, (t ** w[:, None, None]).prod(0).mean(1))
    assert 0 < out.item() < 1
    with pytest.raises(InvalidInputError):
        ms_ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


# ----------------------------------------------------------------------------- CIEDE2000


def _colour_de2000(lab1, lab2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from colour.difference import delta_E_CIE2000
    return delta_E_CIE2000(lab1, lab2)


def test_ciede2000_sharma_pairs():
    table = np.array(SHARMA_PAIRS)
    assert table.shape == (34, 7)
    got = ciede2000(torch.from_numpy(table[:, :3]), torch.from_numpy(table[:, 3:6])).numpy()
    reference = _colour_de2000(table[:, :3], table[:, 3:6])
    # Pair 14 has a hue difference of exactly 180 degrees: its value (4.8045 in the paper)
    # depends on atan2's last bit; colour-science skips it for that reason.
    rest = np.arange(34) != 13
    np.testing.assert_allclose(got[rest], table[rest, 6], atol=1e-4)  # table has 4 decimals
    np.testing.assert_allclose(got[rest], reference[rest], atol=1e-6, rtol=0)
    assert min(abs(got[13] - 4.8045), abs(got[13] - 4.7461)) < 1e-4


def test_ciede2000_random_lab_matches_colour():
    rng = np.random.default_rng(13)
    n = 20000
    lab1 = np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 128, n),
                     rng.uniform(-128, 128, n)], axis=1)
    lab2 = np.concatenate([lab1[: n // 2] + rng.normal(0, 3, (n // 2, 3)),
                           np.stack([rng.uniform(0, 100, n // 2), rng.uniform(-128, 128, n // 2),
                                     rng.uniform(-128, 128, n // 2)], axis=1)])
    lab2[:50, 1:] = 0  # zero chroma
    lab1[50:100, 1] = 0
    got = ciede2000(torch.from_numpy(lab1), torch.from_numpy(lab2)).numpy()
    np.testing.assert_allclose(got, _colour_de2000(lab1, lab2), atol=1e-6, rtol=0)
    # symmetric
    np.testing.assert_allclose(
        ciede2000(torch.from_numpy(lab2), torch.from_numpy(lab1)).numpy(), got, atol=1e-9)


def test_deltae2000_images():
    x = rand_img(2, 3, 12, 10, seed=14, dtype=torch.float64)
    y = (x + 0.05 * rand_img(2, 3, 12, 10, seed=15, dtype=torch.float64)).clamp(0, 1)
    torch.testing.assert_close(deltae2000(x, x), torch.zeros(2, dtype=torch.float64))
    from kornia.color import rgb_to_lab

    lab_x = rgb_to_lab(x).permute(0, 2, 3, 1).numpy()
    lab_y = rgb_to_lab(y).permute(0, 2, 3, 1).numpy()
    ref = _colour_de2000(lab_x, lab_y)  # N x H x W
    np.testing.assert_allclose(deltae2000_map(x, y).numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(deltae2000(x, y).numpy(), ref.mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(deltae2000(x, y, reduction="p95").numpy(),
                               np.percentile(ref.reshape(2, -1), 95, axis=1), atol=1e-6)
    np.testing.assert_allclose(deltae2000(x, y, border=2).numpy(),
                               ref[:, 2:-2, 2:-2].mean(axis=(1, 2)), atol=1e-6)
    torch.testing.assert_close(deltae2000(x, y), deltae2000(y, x))
    # a known colour difference: pure white vs. mid gray is a pure lightness difference
    white, gray = torch.ones(1, 3, 1, 1), torch.full((1, 3, 1, 1), 0.5)
    lab_gray = rgb_to_lab(gray)[0, :, 0, 0]
    dl = 100 - lab_gray[0].item()
    sl = 1 + 0.015 * ((100 + lab_gray[0].item()) / 2 - 50) ** 2 / math.sqrt(
        20 + ((100 + lab_gray[0].item()) / 2 - 50) ** 2)
    assert deltae2000(white, gray).item() == pytest.approx(dl / sl, abs=1e-3)


# ----------------------------------------------------------------------------- angular error


def test_angular_error():
    e = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.5, 1.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([[2.0, 2.0, 2.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    out = angular_error(e, t)
    assert out[0].item() == pytest.approx(0.0, abs=1e-6)
    assert out[1].item() == pytest.approx(90.0, abs=1e-9)
    cos = (e[2] @ t[2]) / (e[2].norm() * t[2].norm())
    assert out[2].item() == pytest.approx(math.degrees(math.acos(cos.item())), abs=1e-9)
    torch.testing.assert_close(angular_error(7.0 * e, 0.1 * t), out)  # scale invariant
    torch.testing.assert_close(angular_error(t, e), out)  # symmetric
    with pytest.raises(InvalidInputError, match="zero vector"):
        angular_error(torch.zeros(1, 3), torch.ones(1, 3))
    with pytest.raises(InvalidInputError, match="N x 3"):
        angular_error(torch.ones(3), torch.ones(3))


# ----------------------------------------------------------------------------- common cases


FUNCS = [psnr, psnr_y, ssim, ms_ssim, deltae2000]


@pytest.mark.filterwarnings("ignore:ms_ssim")
@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_batch_independence(fn):
    x = rand_img(3, 3, 24, 20, seed=16)
    y = (x + 0.1 * rand_img(3, 3, 24, 20, seed=17)).clamp(0, 1)
    whole = fn(x, y)
    assert whole.shape == (3,)
    parts = torch.cat([fn(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, parts)


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_input_errors(fn):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(InvalidInputError, match="same shape"):
        fn(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(InvalidInputError, match="4-D"):
        fn(x[0], x[0])
    bad = x.clone()
    bad[0, 1, 2, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        fn(x, bad)
    with pytest.raises(InvalidInputError, match="border"):
        fn(x, x, border=8)


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_psnr_ssim():
    x = rand_img(1, 3, 12, 13, seed=18, dtype=torch.float64).requires_grad_(True)
    y = rand_img(1, 3, 12, 13, seed=19, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: psnr(a, y), (x,))
    assert torch.autograd.gradcheck(lambda a: psnr_y(a, y), (x,))
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,))


@pytest.mark.filterwarnings("ignore:ms_ssim")
def test_gradcheck_ms_ssim():
    x = rand_img(1, 2, 24, 23, seed=20, dtype=torch.float64)
    y = (0.7 * x + 0.3 * rand_img(1, 2, 24, 23, seed=21, dtype=torch.float64)).detach()
    x.requires_grad_(True)
    assert ms_ssim_scales(24, 23) == 2
    assert torch.autograd.gradcheck(lambda a: ms_ssim(a, y), (x,))


def test_gradcheck_deltae2000():
    g = torch.Generator().manual_seed(22)
    n = 16  # chromatic colours, away from zero chroma and from 180-degree hue differences
    lab1 = torch.stack([torch.rand(n, generator=g, dtype=torch.float64) * 80 + 10,
                        torch.rand(n, generator=g, dtype=torch.float64) * 60 + 5,
                        torch.rand(n, generator=g, dtype=torch.float64) * 120 - 60], 1)
    lab2 = lab1 + torch.randn(n, 3, generator=g, dtype=torch.float64) * 4
    assert torch.autograd.gradcheck(ciede2000, (lab1.requires_grad_(True),
                                                lab2.requires_grad_(True)))
    x = torch.tensor([[0.8, 0.2, 0.1], [0.1, 0.7, 0.3], [0.2, 0.3, 0.9], [0.9, 0.8, 0.1]],
                     dtype=torch.float64).T.reshape(1, 3, 2, 2)
    y = (x + 0.05 * torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)[None, :, None, None])
    assert torch.autograd.gradcheck(lambda a: deltae2000(a, y), (x.requires_grad_(True),))
    # identical gray images: zero, with a finite (zero) gradient instead of NaN
    gray = torch.full((1, 3, 2, 2), 0.5, dtype=torch.float64, requires_grad=True)
    deltae2000(gray, gray.detach()).sum().backward()
    assert torch.isfinite(gray.grad).all()


# ----------------------------------------------------------------------------- registry


def test_registry_contract():
    names = list_metrics()
    for name in ("psnr", "psnr_y", "ssim", "ms_ssim", "deltae2000", "deltae2000_p95",
                 "angular_error"):
        assert name in names
    lower = {"deltae2000", "deltae2000_p95", "angular_error", "lpips_alex", "lpips_vgg"}
    for name in names:
        m = create_metric(name)
        assert m.name == name
        assert m.higher_is_better == (name not in lower)
    m = create_metric("ssim", border=2)
    assert m.input_shape == "N x 3 x H x W" and m.colour_space == "srgb" and m.data_range == 1.0
    x = rand_img(2, 3, 20, 20, seed=23)
    y = rand_img(2, 3, 20, 20, seed=24)
    torch.testing.assert_close(m(x, y), ssim(x, y, border=2))
    torch.testing.assert_close(create_metric("deltae2000_p95")(x, y),
                               deltae2000(x, y, reduction="p95"))
    assert create_metric("psnr", data_range=255).data_range == 255
    with pytest.raises(InvalidInputError, match="unknown metric"):
        create_metric("nope")
    with pytest.raises(InvalidInputError, match="no option"):
        create_metric("psnr", window=7)
    with pytest.raises(InvalidInputError, match="border"):
        create_metric("psnr", border=-1)
    with pytest.raises(InvalidInputError, match="N x 3 x H x W"):
        create_metric("psnr")(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_aggregate_plain_floats_and_inf():
    m = create_metric("psnr")
    x = rand_img(3, 3, 8, 8, seed=25)
    y = x.clone()
    y[0] += 0.1
    y[1] += 0.01
    values = m(x, y)  # two finite, one inf
    agg = m.aggregate(values)
    assert set(agg) == {"mean", "median"}
    assert all(type(v) is float for v in agg.values())
    assert agg["mean"] == math.inf  # reported as inf, never NaN
    assert agg["median"] == pytest.approx(40.0, abs=1e-3)
    assert aggregate([1.0, 2.0, 4.0, 10.0]) == {"mean": 4.25, "median": 3.0}
    json.dumps(aggregate(torch.tensor([1.0, 2.0])))
    with pytest.raises(InvalidInputError):
        aggregate([])
