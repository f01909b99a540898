"""isplab.backbones: torchvision-compatible names, parameter counts, weight loading paths."""

from __future__ import annotations

import pytest
import torch

from isplab.backbones import SPECS, build_backbone, load_backbone
from isplab.errors import IsplabError

# Parameter counts of torchvision's feature stacks (classifier excluded).
FEATURE_PARAMS = {"vgg16": 14_714_688, "vgg19": 20_024_384, "alexnet": 2_469_696}
# conv layer indices inside torchvision's `features`
CONV_INDICES = {
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
    "alexnet": [0, 3, 6, 8, 10],
}


@pytest.mark.parametrize("name", list(SPECS))
def test_names_and_counts_match_torchvision(name):
    model = build_backbone(name)
    keys = set(model.state_dict())
    expected = {f"features.{i}.{p}" for i in CONV_INDICES[name] for p in ("weight", "bias")}
    assert keys == expected
    assert sum(p.numel() for p in model.parameters()) == FEATURE_PARAMS[name]


def test_named_layers():
    vgg19 = build_backbone("vgg19")
    assert vgg19.layer_names["relu5_4"] == 35 and vgg19.layer_names["relu1_1"] == 1
    assert build_backbone("vgg16").layer_names["relu5_3"] == 29
    x = torch.rand(1, 3, 64, 64)
    feats = build_backbone("alexnet")(x, ["relu1", "relu5"])
    assert feats["relu1"].shape == (1, 64, 15, 15) and feats["relu5"].shape[1] == 256
    out = vgg19(x, ["relu2_2", "relu5_4"])
    assert out["relu2_2"].shape == (1, 128, 32, 32) and out["relu5_4"].shape == (1, 512, 4, 4)
    with pytest.raises(IsplabError, match="no layer"):
        vgg19(x, ["relu9_9"])


def _fake_checkpoint(name, path, with_classifier=True):
    ref = build_backbone(name)
    state = {k: torch.randn_like(v) for k, v in ref.state_dict().items()}
    if with_classifier:  # torchvision files also hold the classifier
        state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return state


def test_loads_torchvision_file_from_env_dir(tmp_path, monkeypatch):
    state = _fake_checkpoint("vgg19", tmp_path / SPECS["vgg19"].filename)
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    model = load_backbone("vgg19")
    assert torch.equal(model.features[34].weight, state["features.34.weight"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    # ImageNet normalisation is applied: features of x equal raw features of normalised x
    x = torch.rand(1, 3, 32, 32)
    norm = (x - model.mean) / model.std
    assert torch.allclose(model(x, ["relu1_2"])["relu1_2"],
                          model(norm, ["relu1_2"], normalize=False)["relu1_2"])


def test_loads_explicit_file_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    ref = build_backbone("alexnet")
    state = {k: torch.randn_like(v) for k, v in ref.state_dict().items()}
    save_file(state, str(tmp_path / "alex.safetensors"))
    model = load_backbone("alexnet", weights=tmp_path / "alex.safetensors")
    assert torch.equal(model.features[0].weight, state["features.0.weight"])


def test_missing_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(IsplabError) as e:
        load_backbone("vgg19")
    msg = str(e.value)
    assert "vgg19-dcbb9e9d.pth" in msg and "ISPLAB_WEIGHTS_DIR" in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg


def test_wrong_or_corrupt_checkpoint(tmp_path):
    _fake_checkpoint("alexnet", tmp_path / "alex.pth")
    with pytest.raises(IsplabError, match="lacks"):
        load_backbone("vgg16", weights=tmp_path / "alex.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(IsplabError, match="cannot read weights"):
        load_backbone("vgg16", weights=tmp_path / "bad.pth")


def test_random_init_for_smoke_runs():
    model = load_backbone("vgg16", random_init=True)
    assert not model.training


def test_random_backbone_keeps_its_activation_scale():
    # a random VGG-19 must give features of the input's order at its deepest layer (PyTorch's
    # default init shrank relu5_4 to ~1e-7, which made random-weight perceptual losses zero)
    torch.manual_seed(0)
    net = load_backbone("vgg19", random_init=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        feats = net(x, ["relu1_2", "relu5_4"])
    for name in ("relu1_2", "relu5_4"):
        rms = float(feats[name].pow(2).mean().sqrt())
        assert 0.05 < rms < 20, (name, rms)


def test_explicit_path_is_never_replaced_by_another_copy(tmp_path, monkeypatch):
    _fake_checkpoint("vgg16", tmp_path / SPECS["vgg16"].filename)
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(IsplabError, match="no vgg16 weights at"):
        load_backbone("vgg16", weights=tmp_path / "elsewhere" / "mine.pth")
