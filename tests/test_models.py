"""The zoo contract, checked for every registered model (a new model is tested automatically).

Model-specific behaviour lives in the family test files (test_models_pynet.py, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models import (
    count_parameters,
    create_model,
    list_models,
    load_model,
    model_info,
    save_weights,
)
from isplab.models.common import (
    crop_to,
    packed_to_bilinear_rgb,
    packed_to_mosaic,
    pad_to_multiple,
    rgb_to_packed,
)
from isplab.models.export import export_torchscript, onnx_max_error

IMAGE_MODELS = [
    n for n in list_models() if model_info(n)["output"] in ("srgb", "linear_rgb")
]
IN_CHANNELS = {"packed_raw": 4, "packed_raw_noise": 8, "srgb": 3, "linear_rgb": 3}


def _input(name: str, h: int, w: int, seed: int = 0) -> torch.Tensor:
    info = model_info(name)
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, IN_CHANNELS[info["input"]], h, w, generator=g)


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name)


def test_registry_lists_the_zoo():
    names = set(list_models())
    expected = {"pynet", "pynet_lite", "deepisp", "deepisp_ll", "dped", "dped_plus", "sid_unet",
                "pac_isp", "kpn_isp"}
    assert expected <= names, expected - names
    assert "dped_discriminator" in names
    assert "dped_discriminator" not in list_models(include_private=False)


def test_unknown_model_and_bad_option_are_clear_errors():
    with pytest.raises(InvalidInputError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(InvalidInputError, match="bad options for model 'sid_unet'"):
        create_model("sid_unet", no_such_option=3)


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("size", [(64, 64), (37, 45)])
def test_forward_shape_and_range(name, size):
    model = _build(name).eval()
    info = model_info(name)
    x = _input(name, *size)
    with torch.no_grad():
        y = model(x)
    s = info["output_scale"]
    assert y.shape == (1, 3, size[0] * s, size[1] * s)
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_gradients_reach_every_parameter(name):
    model = _build(name).train()
    x = _input(name, 64, 64)
    model(x).mean().backward()
    aux = tuple(getattr(model, "aux_parameter_prefixes", ()))
    for pname, p in model.named_parameters():
        if p.grad is None:
            assert aux and pname.startswith(aux), f"{pname} gets no gradient"
            continue
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_eval_is_deterministic(name):
    model = _build(name).eval()
    x = _input(name, 32, 48, seed=1)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


CARD_PARAMS = re.compile(r"^\|\s*parameters(?:\s*\((?P<name>[\w]+)\))?\s*\|\s*(?P<n>[\d,]+)\s*\|",
                         re.M)


@pytest.mark.parametrize("name", [n for n in list_models(include_private=False)])
def test_parameter_count_matches_card(name):
    info = model_info(name)
    card = Path(__file__).resolve().parents[1] / info["card"]
    assert card.is_file(), f"no model card {info['card']}"
    text = card.read_text()
    counts = {m["name"]: int(m["n"].replace(",", "")) for m in CARD_PARAMS.finditer(text)}
    card = counts.get(name, counts.get(None))
    assert card is not None, f"{info['card']} has no '| parameters ({name}) | N |' row"
    assert card == info["parameters"] == count_parameters(_build(name))


@pytest.mark.parametrize("name", list_models())
def test_registry_declares_the_built_parameter_count(name):
    """``isplab models`` reads the declared count instead of building every model."""
    from isplab.models import model_entry

    assert model_entry(name).parameters == count_parameters(_build(name))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_onnx_export_matches_torch(name):
    pytest.importorskip("onnxruntime")
    err = onnx_max_error(_build(name), _input(name, 64, 64))
    assert err <= 1e-4


def test_weights_round_trip(tmp_path):
    model = create_model("dped_plus_rgb")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    path = save_weights(model, tmp_path / "w.safetensors", extra={"note": "test"})
    assert (tmp_path / "w.json").exists()
    again = load_model(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(FileExistsError):
        save_weights(model, path, overwrite=False)


def test_weights_that_do_not_fit_are_a_clear_error(tmp_path):
    path = save_weights(create_model("dped_rgb"), tmp_path / "dped.safetensors")
    with pytest.raises(InvalidInputError, match="do not fit"):
        create_model("sid_unet", weights=path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(InvalidInputError, match="bad.safetensors"):
        create_model("dped_rgb", weights=bad)
    with pytest.raises(InvalidInputError, match="not found"):
        create_model("dped_rgb", weights=tmp_path / "missing.safetensors")


def test_torchscript_export(tmp_path):
    model = _build("dped_rgb").eval()
    x = torch.rand(1, 3, 32, 32)
    path = export_torchscript(model, tmp_path / "m.pt", x)
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_model_info_fields():
    info = model_info("sid_unet")
    assert info["input"] == "packed_raw" and info["output"] == "srgb"
    assert info["output_scale"] == 2 and info["stride"] >= 1
    assert info["parameters"] > 0 and info["paper"]


# --- the shared helpers -------------------------------------------------------------------


def test_pad_and_crop_round_trip():
    x = torch.rand(1, 4, 37, 45)
    p, size = pad_to_multiple(x, 16)
    assert p.shape[-2:] == (48, 48) and size == (37, 45)
    assert torch.equal(p[..., :37, :45], x)
    assert torch.equal(crop_to(p, size), x)
    tiny, _ = pad_to_multiple(torch.rand(1, 4, 3, 3), 16)  # reflect impossible: replicate
    assert tiny.shape[-2:] == (16, 16)


def test_in_graph_bilinear_equals_classic_demosaic():
    from isplab.classic import demosaic_bilinear
    from isplab.raw.cfa import unpack

    x = torch.rand(2, 4, 10, 14)
    ref = demosaic_bilinear(unpack(x, "RGGB"), "RGGB")
    assert torch.allclose(packed_to_bilinear_rgb(x), ref, atol=1e-6)
    assert torch.equal(packed_to_mosaic(x), unpack(x, "RGGB"))
    rgb = torch.rand(1, 3, 8, 12)
    from isplab.raw.cfa import mosaic, pack

    assert torch.equal(rgb_to_packed(rgb), pack(mosaic(rgb, "RGGB"), "RGGB"))


def test_check_image_errors():
    with pytest.raises(InvalidInputError, match="N x 4 x H x W"):
        check_image(torch.rand(1, 3, 8, 8), 4)
    with pytest.raises(InvalidInputError, match="floating"):
        check_image(torch.zeros(1, 4, 8, 8, dtype=torch.uint8), 4)
