"""Issue 20: an exported model with image-global operations develops as the torch model does.

Tiled inference computes the global operations (kpn_isp's pooled colour matrix, instance-norm
statistics, ``tile_context``) once on the frame downscaled to ``context_size`` and shares them
with every tile; the exported graph gets that frame as its second input, ``context``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from isplab.cli import app
from isplab.infer.tiled import CONTEXT_SIZE, FrameContext, has_global_ops, tiled_forward
from isplab.metrics import psnr
from isplab.models import create_model, save_weights

runner = CliRunner()


def _kpn() -> torch.nn.Module:
    """A small kpn_isp whose colour matrix depends on the frame (the shipped init makes it the
    identity, and a random U-Net's bottleneck hardly depends on its input)."""
    torch.manual_seed(0)
    model = create_model("kpn_isp", widths=(8, 16, 32, 64)).eval()
    with torch.no_grad():
        for m in model.unet.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(2.0)
        torch.nn.init.normal_(model.color[2].weight, std=0.5)
    return model


def _raw(h: int, w: int):
    """A raw whose brightness and colour change across the frame (tiles differ globally)."""
    from isplab.raw import RawImage

    g = np.random.default_rng(0)
    base = g.random((h // 64 + 1, w // 64 + 1)).astype(np.float32)
    m = np.kron(base, np.ones((64, 64), np.float32))[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return RawImage((0.05 + 0.9 * m * xx * (1 - 0.5 * yy)).astype(np.float32), cfa="RGGB",
                    white_level=1.0)


def test_onnx_develop_of_a_model_with_global_ops_equals_torch(tmp_path):
    """``isplab export --dynamic`` of a kpn_isp, developed by onnxruntime on a frame larger
    than the context size, equals the torch develop of the same weights (before the context
    input: 41 dB, each tile pooled its own colour matrix)."""
    pytest.importorskip("onnxruntime")
    import onnx

    from isplab.infer.develop import learned_isp
    from isplab.models.export import export_onnx

    weights = save_weights(_kpn(), tmp_path / "k.safetensors")
    path = tmp_path / "k.onnx"
    res = runner.invoke(app, ["export", str(weights), "-o", str(path), "--dynamic", "--tile",
                              "64", "64"])
    assert res.exit_code == 0, res.output
    assert "inputs: input, context" in res.output
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["input", "context"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["context_size"] == str(CONTEXT_SIZE) and meta["stride"] == "8"

    raw = _raw(2 * 256, 2 * 544)  # packed 256 x 544: longer than the 512 context
    torch_isp = learned_isp(str(weights), tile=256)
    ref = torch_isp.develop(raw)
    out = learned_isp("kpn_isp", onnx=path, tile=256).develop(raw)
    assert out.shape == ref.shape == (1, 3, 512, 1088)
    assert float(psnr(out, ref)) >= 50
    assert float((out - ref).abs().max()) <= 1e-4

    # a single-input file (exported before the context input) still develops, with each
    # tile's own global values: visibly different on this frame
    old = export_onnx(torch_isp.model, tmp_path / "old.onnx", torch.rand(1, 4, 64, 64),
                      dynamic=True)
    per_tile = learned_isp("kpn_isp", onnx=old, tile=256).develop(raw)
    assert float(psnr(per_tile, ref)) < 50


def test_a_fixed_tile_export_takes_any_context_size(tmp_path):
    """Without --dynamic the tile is fixed, the context (whatever the frame's aspect) not."""
    pytest.importorskip("onnxruntime")
    from isplab.models.export import onnx_bytes, run_onnx

    model = FrameContext(_kpn()).eval()
    x = torch.rand(1, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    data = onnx_bytes(model, x, dynamic=False, context=torch.rand(1, 4, 64, 64))
    for shape in ((40, 96), (96, 40)):
        context = torch.rand(1, 4, *shape, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            ref = model(x, context)
        assert float((run_onnx(data, x, context) - ref).abs().max()) <= 1e-4


def test_frame_context_is_the_tiled_forward_of_one_tile():
    """FrameContext(model)(x, context_frame(x)) is tiled_forward(model, x) in one tile: the
    global values come from the same downscaled frame."""
    from isplab.infer.tiled import context_frame

    model = _kpn()
    assert has_global_ops(model) and not has_global_ops(torch.nn.Conv2d(4, 12, 3))
    x = torch.rand(1, 4, 64, 600, generator=torch.Generator().manual_seed(3))
    small = context_frame(x)
    assert small.shape[-1] == CONTEXT_SIZE
    with torch.no_grad():
        one = FrameContext(model)(x, small)
    assert torch.allclose(one, tiled_forward(model, x, tile=10**6), atol=1e-6)


def test_the_in_memory_onnxruntime_backend_computes_the_context_too():
    """OnnxRuntimeModule (the hybrid ISP's backend) exports a model with global operations
    with its context input, so tiled onnxruntime equals tiled torch."""
    pytest.importorskip("onnxruntime")
    from isplab.infer.backends import OnnxRuntimeModule

    model = _kpn()
    ort = OnnxRuntimeModule(model, channels=4, threads=1)
    assert ort.context_name == "context"
    x = torch.rand(1, 4, 72, 600, generator=torch.Generator().manual_seed(4))
    x[..., 300:] *= 0.3
    ref = tiled_forward(model, x, tile=128, overlap=16)
    out = tiled_forward(ort, x, tile=128, overlap=16)
    assert float((out - ref).abs().max()) <= 1e-4
    with pytest.raises(Exception, match="context"):
        ort(x[..., :64, :64])  # a two-input graph run without its context
