"""Tiled inference: seamless blending, shared global context, memory-bounded tiles, develop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isplab.errors import InvalidInputError
from isplab.infer import GlobalStatistics, LearnedISP, tiled_forward
from isplab.infer.tiled import _ramp, activation_bytes_per_pixel, auto_tile
from isplab.metrics import psnr


class LocalNet(nn.Module):
    """Packed -> RGB x2 with a 7x7 receptive field (in packed pixels)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(4, 16, 3, padding=1, padding_mode="reflect")
        self.b = nn.Conv2d(16, 16, 3, padding=1, padding_mode="reflect")
        self.c = nn.Conv2d(16, 12, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return torch.sigmoid(F.pixel_shuffle(self.c(F.relu(self.b(F.relu(self.a(x))))), 2))


class NormNet(LocalNet):
    """With instance norm and a squeeze-excite global pool: global operations."""

    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(16, affine=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(16, 16, 1)

    def forward(self, x):
        f = self.norm(F.relu(self.a(x)))
        f = f * torch.sigmoid(self.fc(self.pool(f)))
        return torch.sigmoid(F.pixel_shuffle(self.c(F.relu(self.b(f))), 2))


class ContextNet(LocalNet):
    """A per-image gain computed from the whole frame (DeepISP-style tile_context)."""

    def tile_context(self, x):
        return {"gain": x.mean().reshape(1) * 2}

    def forward(self, x, gain=None):
        gain = x.mean().reshape(1) * 2 if gain is None else gain
        return super().forward(x) * gain.clamp(max=1)


def test_ramps_partition_unity():
    a = _ramp(32, 16, True, False)
    b = _ramp(32, 16, False, True)
    # tiles at 0 and 16: the overlap [16, 32) of a meets [0, 16) of b
    assert torch.allclose(a[16:] + b[:16], torch.ones(16, dtype=torch.float64))


def test_local_model_tiled_equals_untiled():
    x = torch.rand(1, 4, 100, 90)
    net = LocalNet()
    full = tiled_forward(net, x, tile=512)
    tiled = tiled_forward(net, x, tile=40, overlap=16)
    assert tiled.shape == (1, 3, 200, 180)
    assert torch.allclose(tiled, full, atol=1e-5)  # receptive field inside the overlap
    with torch.no_grad():
        assert torch.allclose(full, net(x), atol=1e-6)


def test_global_operations_are_shared_by_tiles():
    x = torch.rand(1, 4, 128, 128)
    x[..., :64] *= 0.3  # tiles with very different statistics
    for net in (NormNet(), ContextNet()):
        full = tiled_forward(net, x, tile=512, context_size=64)
        tiled = tiled_forward(net, x, tile=48, overlap=16, context_size=64)
        assert float(psnr(tiled, full)) >= 50
    # without the shared statistics each tile normalises itself: visible seams
    net = NormNet().eval()
    with torch.no_grad():
        own = torch.cat([net(x[..., :64]), net(x[..., 64:])], dim=-1)
    assert float(psnr(own, tiled_forward(net, x, tile=512, context_size=64))) < 40


def test_global_statistics_capture_and_reuse():
    net = NormNet().eval()
    x = torch.rand(1, 4, 32, 32)
    g = GlobalStatistics(net)
    assert g
    with torch.no_grad(), g:
        g.capture(net, x)
        frozen = net(x)
    with torch.no_grad():
        assert torch.allclose(frozen, net(x), atol=1e-5)  # same frame: same as live stats
    assert not GlobalStatistics(LocalNet())


def test_auto_tile_respects_memory(monkeypatch):
    net = LocalNet()
    per_px = activation_bytes_per_pixel(net, {})
    assert per_px == 4 * (16 + 16 + 12)  # float32 outputs of the leaf modules (the convs)
    import isplab.infer.tiled as T

    monkeypatch.setattr(T, "available_memory", lambda dev: int(2 * per_px * 256 * 256 * 4))
    assert auto_tile(net, {}, torch.device("cpu"), torch.float32) == 256
    monkeypatch.setattr(T, "available_memory", lambda dev: 1)
    assert auto_tile(net, {}, torch.device("cpu"), torch.float32) == 64
    # a big machine: the CPU budget bounds the tile, an explicit budget too
    monkeypatch.setattr(T, "available_memory", lambda dev: 1 << 40)
    side = auto_tile(net, {}, torch.device("cpu"), torch.float32, maximum=10**6)
    assert (2 * per_px * side**2 <= T.CPU_TILE_BUDGET < 2 * per_px * (side + 32) ** 2)
    assert auto_tile(net, {}, torch.device("cpu"), torch.float32,
                     budget=int(2 * per_px * 128 * 128)) == 128


def test_bfloat16_and_errors():
    x = torch.rand(1, 4, 64, 64)
    net = LocalNet()
    ref = tiled_forward(net, x, tile=64)
    bf = tiled_forward(LocalNet(), x, tile=32, overlap=8, dtype="bfloat16")
    assert float(psnr(bf.clamp(0, 1), ref)) > 30
    with pytest.raises(InvalidInputError, match="float16 inference needs CUDA"):
        tiled_forward(net, x, dtype="float16", device="cpu")
    with pytest.raises(InvalidInputError, match="overlap"):
        tiled_forward(net, x, tile=32, overlap=7)
    with pytest.raises(InvalidInputError, match="one image"):
        tiled_forward(net, torch.rand(2, 4, 8, 8))


def test_learned_isp_develops_a_raw_with_orientation():
    from isplab.raw.image import RawImage

    mosaic = torch.rand(64, 96).numpy()
    raw = RawImage(mosaic=mosaic, cfa="RGGB", orientation=6)
    out = LearnedISP(model=LocalNet(), tile=32, overlap=8).develop(raw)
    assert out.shape == (1, 3, 96, 64)  # rotated
    with pytest.raises(InvalidInputError, match="either a model or an ONNX"):
        LearnedISP()


def test_onnx_model_runs_through_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from isplab.models.export import export_onnx
    from isplab.raw.image import RawImage

    net = LocalNet().eval()
    path = export_onnx(net, tmp_path / "m.onnx", torch.rand(1, 4, 32, 32), dynamic=True)
    raw = RawImage(mosaic=torch.rand(64, 64).numpy(), cfa="RGGB")
    a = LearnedISP(onnx=path, tile=24, overlap=8).develop(raw)
    b = LearnedISP(model=net, tile=24, overlap=8).develop(raw)
    assert torch.allclose(a, b, atol=1e-4)


def _zoo_image_models():
    from isplab.models import list_models, model_info

    return [n for n in list_models() if model_info(n)["output"] in ("srgb", "linear_rgb")]


@pytest.mark.parametrize("name", [n for n in _zoo_image_models() if n != "pynet"])
def test_every_zoo_model_tiles_without_seams(name):
    """Tiled vs one-tile inference >= 50 dB (PyNET, too slow here, is measured in
    benchmarks/tiled_consistency.py)."""
    from isplab.models import create_model, model_info

    torch.manual_seed(0)
    model = create_model(name).eval()
    g = torch.Generator().manual_seed(0)
    info = model_info(name)
    channels = info["in_channels"]
    overlap = info["tile_overlap"]  # what tiled inference uses for this model by default
    side = 4 * overlap  # tiles of 2 x overlap: a 3 x 3 grid
    x = torch.rand(1, channels, side, side, generator=g)
    x[..., : side // 2] *= 0.3  # tiles with different statistics
    full = tiled_forward(model, x, tile=10**6, context_size=side)
    tiled = tiled_forward(model, x, tile=2 * overlap, overlap=overlap, context_size=side)
    assert float(psnr(tiled.clamp(0, 1), full.clamp(0, 1))) >= 50
