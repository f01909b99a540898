"""LPIPS: the full computation with test-made backbone weights and the real linear layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isplab.backbones import SPECS, build_backbone
from isplab.errors import InvalidInputError, IsplabError
from isplab.metrics.lpips import LPIPS, lpips_from_features, lpips_linear_weights


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    g = torch.Generator().manual_seed(0)
    for name in ("alexnet", "vgg16"):
        state = {k: torch.randn(v.shape, generator=g) * 0.05
                 for k, v in build_backbone(name).state_dict().items()}
        torch.save(state, d / SPECS[name].filename)
    return d


@pytest.mark.parametrize("net, channels", [("alex", (64, 192, 384, 256, 256)),
                                           ("vgg", (64, 128, 256, 512, 512))])
def test_linear_weights_from_torchmetrics(net, channels):
    ws = lpips_linear_weights(net)
    assert tuple(w.numel() for w in ws) == channels
    assert all((w >= 0).all() for w in ws)  # LPIPS v0.1 clamps its linear weights at 0


def np_lpips(fx, fy, ws):
    total = 0.0
    for a, b, w in zip(fx, fy, ws, strict=True):
        a, b, w = a.double().numpy(), b.double().numpy(), w.double().numpy()
        na = a / (np.sqrt((a**2).sum(axis=1, keepdims=True)) + 1e-10)
        nb = b / (np.sqrt((b**2).sum(axis=1, keepdims=True)) + 1e-10)
        total = total + np.einsum("nchw,c->nhw", (na - nb) ** 2, w).mean(axis=(1, 2))
    return total


def test_combination_matches_numpy():
    g = torch.Generator().manual_seed(1)
    fx = [torch.randn(2, c, s, s, generator=g) for c, s in ((4, 8), (6, 4))]
    fy = [torch.randn(2, c, s, s, generator=g) for c, s in ((4, 8), (6, 4))]
    ws = [torch.rand(4, generator=g), torch.rand(6, generator=g)]
    np.testing.assert_allclose(lpips_from_features(fx, fy, ws).numpy(), np_lpips(fx, fy, ws),
                               rtol=1e-5)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_full_lpips(net, weights_dir):
    model = LPIPS(net, weights=weights_dir)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 64, 64, generator=g)
    y = (x + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)
    d = model(x, y)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-7)
    assert torch.allclose(model(y, x), d, rtol=1e-5)  # symmetric
    assert torch.allclose(model(x[1:], y[1:]), d[1:], rtol=1e-5)  # batch independent
    # a stronger distortion is farther
    z = (x + 0.3 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)
    assert (model(x, z) > d).all()
    # the same value from the parts: scaling layer, backbone taps, combination
    sx = (x * 2 - 1 - torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)) / \
        torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    sy = (y * 2 - 1 - torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)) / \
        torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    fx = model.backbone(sx, model.taps, normalize=False)
    fy = model.backbone(sy, model.taps, normalize=False)
    ref = np_lpips([fx[t] for t in model.taps], [fy[t] for t in model.taps],
                   lpips_linear_weights(net))
    np.testing.assert_allclose(d.numpy(), ref, rtol=1e-4)


def test_gradients_flow_to_the_input(weights_dir):
    model = LPIPS("alex", weights=weights_dir)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    model(x, torch.rand(1, 3, 64, 64)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_errors(tmp_path, weights_dir, monkeypatch):
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(IsplabError, match="alexnet-owt-7be5be79.pth"):
        LPIPS("alex")
    with pytest.raises(IsplabError, match="unknown LPIPS net"):
        LPIPS("squeezenet", weights=weights_dir)
    model = LPIPS("alex", weights=weights_dir)
    with pytest.raises(InvalidInputError, match="shapes differ"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 40))
    x = torch.rand(1, 3, 32, 32)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        model(x, x)


def test_registered_lpips_metric(weights_dir):
    from isplab.metrics import create_metric, list_metrics

    assert {"lpips_alex", "lpips_vgg"} <= set(list_metrics())
    metric = create_metric("lpips_alex", weights=weights_dir, border=4)
    assert metric.higher_is_better is False
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 72, 72, generator=g)
    y = (x + 0.05 * torch.randn(2, 3, 72, 72, generator=g)).clamp(0, 1)
    direct = LPIPS("alex", weights=weights_dir)(x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4])
    assert torch.allclose(metric(x, y), direct, rtol=1e-5)
