"""The learned stage's backends: onnxruntime by default on the CPU, the same output as torch
(tiled and whole, odd frame sizes included), one session per stage."""

from __future__ import annotations

import pickle

import pytest
import torch

from isplab.errors import InvalidInputError
from isplab.infer.backends import choose_backend
from isplab.infer.hybrid import LearnedDemosaic
from isplab.models import create_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

CPU = torch.device("cpu")


def test_auto_takes_onnxruntime_on_the_cpu_in_float32(monkeypatch):
    monkeypatch.delenv("ISPLAB_BACKEND", raising=False)
    assert choose_backend("auto", CPU, "float32") == "onnxruntime"
    assert choose_backend("auto", CPU, "bfloat16") == "torch"
    assert choose_backend("torch", CPU, "float32") == "torch"
    monkeypatch.setenv("ISPLAB_BACKEND", "torch")
    assert choose_backend("auto", CPU, "float32") == "torch"
    with pytest.raises(InvalidInputError, match="backend must be"):
        choose_backend("tensorrt", CPU, "float32")
    with pytest.raises(InvalidInputError, match="float32 on the CPU"):
        choose_backend("onnxruntime", CPU, "bfloat16")


def _net(refine: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_model("jdd_net", widths=(8, 16, 16), refine=refine)
    torch.nn.init.normal_(net.head.weight, std=0.05)  # not the plain bilinear start
    if refine:
        torch.nn.init.normal_(net.fine[-1].weight, std=0.05)
    return net


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean().clamp(min=1e-20)))


@pytest.mark.parametrize("tile,refine", [(None, 0), (48, 0), (48, 4)])
def test_onnxruntime_equals_torch_on_odd_sizes(tile, refine):
    """70 x 98 GRBG: a packed 35 x 49 frame (not a multiple of the stride), whole and in
    tiles, borders included; also with the full-resolution ``refine`` stage."""
    g = torch.Generator().manual_seed(1)
    m = torch.rand(1, 1, 70, 98, generator=g)
    args = (m, "GRBG", (1.8, 1.0, 1.4), None)
    whole = tile is None
    ref = LearnedDemosaic(_net(refine), tile=10**6 if whole else tile, backend="torch",
                          device="cpu")(*args)
    ort = LearnedDemosaic(_net(refine), tile=10**6 if whole else tile, backend="onnxruntime",
                          device="cpu")
    out = ort(*args)
    assert out.shape == ref.shape == (1, 3, 70, 98)
    assert _psnr(out, ref) > 80
    assert float((out - ref).abs().max()) < 1e-4
    session = ort.runner()
    ort(*args)
    assert ort.runner() is session  # built once, reused for every file
    clone = pickle.loads(pickle.dumps(ort))  # --jobs workers: the session is rebuilt there
    assert clone._runner is None and torch.equal(clone(*args), out)


@pytest.mark.parametrize("args, message", [
    (["--backend", "nope"], "--backend must be auto, torch or onnxruntime"),
    (["--isp", "learned", "--onnx", "x.onnx"], "--onnx runs a blind zoo ISP"),
])
def test_develop_backend_options_are_checked_up_front(tmp_path, args, message):
    """A bad --backend, or --onnx with the hybrid ISP, is one usage line (exit 2), no work."""
    from typer.testing import CliRunner

    from isplab.cli import app

    r = CliRunner().invoke(app, ["develop", "--sample", "-o", str(tmp_path / "out"), *args])
    assert r.exit_code == 2 and message in " ".join(r.output.split())
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True
