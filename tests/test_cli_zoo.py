"""CLI verbs over the zoo: isplab models, isplab export, isplab develop --isp/--onnx."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from isplab.cli import app
from isplab.models import create_model, save_weights

runner = CliRunner()


def test_models_lists_the_zoo_with_parameters():
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    infos = {i["name"]: i for i in json.loads(res.output)}
    assert infos["pynet"]["parameters"] == 47_554_738
    assert "dped_discriminator" not in infos
    res = runner.invoke(app, ["models", "--all", "--json"])
    assert "dped_discriminator" in {i["name"] for i in json.loads(res.output)}
    res = runner.invoke(app, ["models", "microisp"])
    assert res.exit_code == 0 and "parameters" in res.output
    res = runner.invoke(app, ["models", "nope"])
    assert res.exit_code == 2 and "unknown model" in res.output


def test_models_manifest_is_the_registry_and_the_listing_imports_no_torch():
    """``isplab models`` lists the zoo from isplab/models/manifest.json (issue 20: it took 10 s
    building every model, then 2 s importing torch): the file must equal the registry, and the
    command must not import torch."""
    import subprocess
    import sys

    from isplab.models.registry import MANIFEST, manifest

    assert json.loads(MANIFEST.read_text()) == manifest(), (
        "isplab/models/manifest.json is stale: python -c \"from isplab.models.registry import "
        "write_manifest; write_manifest()\"")
    code = ("import sys; sys.argv = ['isplab', 'models', '--json']; from isplab.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "jdd_net" in {i["name"] for i in json.loads(res.stdout)}


def test_models_shows_installed_weights(tmp_path, monkeypatch):
    save_weights(create_model("microisp"), tmp_path / "microisp.safetensors")
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    res = runner.invoke(app, ["models", "--json"])
    infos = {i["name"]: i for i in json.loads(res.output)}
    assert infos["microisp"]["weights"] == [str(tmp_path / "microisp.safetensors")]
    assert infos["sid_unet"]["weights"] == []


@pytest.fixture()
def microisp_weights(tmp_path):
    torch.manual_seed(0)
    return save_weights(create_model("microisp"), tmp_path / "w" / "microisp.safetensors")


def test_export_onnx_and_torchscript(tmp_path, microisp_weights):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export", "microisp", "--weights", str(microisp_weights), "-o",
                              str(out), "--tile", "32", "48", "--dynamic"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "max |export - torch|" in res.output
    res = runner.invoke(app, ["export", str(microisp_weights), "-o", str(out)])
    assert res.exit_code == 2 and "exists" in res.output  # never overwritten silently
    ts = tmp_path / "m.pt"
    res = runner.invoke(app, ["export", str(microisp_weights), "-o", str(ts), "--torchscript",
                              "--tile", "16", "16"])
    assert res.exit_code == 0, res.output
    assert torch.jit.load(str(ts))(torch.rand(1, 4, 16, 16)).shape == (1, 3, 32, 32)


def test_develop_with_a_zoo_model_and_with_onnx(tmp_path, microisp_weights):
    pytest.importorskip("onnxruntime")
    from isplab.io import read_image

    out = tmp_path / "out"
    res = runner.invoke(app, ["develop", "--sample", "-o", str(out), "--isp", "microisp",
                              "--weights", str(microisp_weights), "--tile", "128", "-q"])
    assert res.exit_code == 0, res.output
    developed = read_image(out / "isplab_sample_astronaut.png")
    assert developed.shape[1] == 3 and developed.std() > 0
    onnx = tmp_path / "m.onnx"
    assert runner.invoke(app, ["export", str(microisp_weights), "-o", str(onnx),
                               "--dynamic", "--tile", "64", "64"]).exit_code == 0
    out2 = tmp_path / "out2"
    sample = out / "isplab_sample_astronaut.dng"
    res = runner.invoke(app, ["develop", str(sample), "-o", str(out2), "--onnx", str(onnx),
                              "--tile", "128", "-q"])
    assert res.exit_code == 0, res.output
    a = read_image(out2 / "isplab_sample_astronaut.png").numpy()
    assert np.abs(a - developed.numpy()).max() <= 1 / 255 + 1e-6


def test_develop_learned_errors_are_clear(tmp_path):
    res = runner.invoke(app, ["develop", "--sample", "-o", str(tmp_path), "--isp", "sid_unet"])
    assert res.exit_code == 2 and "needs --weights" in res.output
    res = runner.invoke(app, ["develop", "--sample", "-o", str(tmp_path), "--isp", "magic"])
    assert res.exit_code == 2 and "unknown ISP" in res.output


def _odd_raw(tmp_path, h=2 * 75, w=2 * 93):
    """A raw whose packed size (75 x 93) is not a multiple of 8."""
    from isplab.raw import RawImage, write_dng

    g = np.random.default_rng(0)
    base = g.random((h // 8 + 1, w // 8 + 1)).astype(np.float32)
    m = np.kron(base, np.ones((8, 8), np.float32))[:h, :w] * 0.8 + 0.1
    return write_dng(tmp_path / "odd.dng", RawImage(m, cfa="RGGB", white_level=4095,
                                                    wb_gains=(2.0, 1.0, 1.5)))


def test_onnx_develop_equals_torch_at_odd_sizes(tmp_path):
    """Issue 20.1: a --dynamic export of a stride-8 model develops frames whose packed size
    is no multiple of 8 (the contract recorded in the file pads them as torch does)."""
    pytest.importorskip("onnxruntime")
    from isplab.io import read_image
    from isplab.metrics import psnr

    torch.manual_seed(0)
    w = save_weights(create_model("kpn_isp", widths=(8, 16, 32, 64)), tmp_path / "k.safetensors")
    onnx = tmp_path / "k.onnx"
    assert runner.invoke(app, ["export", str(w), "-o", str(onnx), "--dynamic", "--tile", "64",
                               "64"]).exit_code == 0
    raw = _odd_raw(tmp_path)
    for args, sub in ((["--onnx", str(onnx)], "o"), (["--isp", str(w)], "t")):
        res = runner.invoke(app, ["develop", str(raw), "-o", str(tmp_path / sub), "--tile", "48",
                                  "-q", *args])
        assert res.exit_code == 0, res.output
    a, b = (read_image(tmp_path / s / "odd.png") for s in ("o", "t"))
    assert float(psnr(a, b)) >= 50


def test_tiled_equals_whole_frame_at_the_border(tmp_path):
    """Issue 20.2: with the frame padded to the stride as a whole-frame run pads it, the
    last rows/columns of a tiled develop match the whole-frame output."""
    from isplab.infer.tiled import tiled_forward
    from isplab.metrics import psnr

    torch.manual_seed(0)
    model = create_model("kpn_isp", widths=(8, 16, 32, 64)).eval()
    x = torch.rand(1, 4, 75, 93, generator=torch.Generator().manual_seed(1))
    whole = tiled_forward(model, x, tile=10**6)
    tiled = tiled_forward(model, x, tile=48, overlap=16)
    assert whole.shape == tiled.shape == (1, 3, 150, 186)
    edge = (slice(None), slice(None), slice(-8, None), slice(None))
    assert float(psnr(tiled.clamp(0, 1), whole.clamp(0, 1))) >= 50
    assert float(psnr(tiled[edge].clamp(0, 1), whole[edge].clamp(0, 1))) >= 50
