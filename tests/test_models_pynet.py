"""PyNET, PyNET-V2 Mobile (pynet_lite) and MicroISP: sizes, levels, contract, conversion."""

from __future__ import annotations

import pytest
import torch

from isplab.errors import InvalidInputError
from isplab.models import count_parameters, create_model
from isplab.models.export import onnx_max_error
from isplab.models.pynet import OFFICIAL_CHANNELS, PyNET, pynet_state_dict_from_official
from isplab.models.pynet_lite import PyNETV2Mobile
from isplab.raw.cfa import pack


@pytest.fixture(scope="module")
def pynet_model() -> PyNET:
    torch.manual_seed(0)
    return create_model("pynet").eval()


def _x(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 4, h, w, generator=torch.Generator().manual_seed(seed))


# --- PyNET -------------------------------------------------------------------------------------

def test_pynet_parameter_count_is_the_papers(pynet_model):
    n = count_parameters(pynet_model)
    assert abs(n - 47.55e6) <= 0.005 * 47.55e6
    assert n == 47_554_738
    assert PyNET.levels == 6
    # without instance norm in level 1 the affine parameters of those blocks disappear
    with torch.device("meta"):
        assert count_parameters(PyNET(instance_norm_level_1=False)) < n


def test_pynet_parameter_names_follow_the_release(pynet_model):
    keys = set(pynet_model.state_dict())
    for k in ("conv_l1_d1.conv_3a.conv2d.weight", "conv_l3_d3.conv_5b.instance.bias",
              "conv_l1_d6.conv_9a.conv2d.weight", "conv_l1_d5.conv_7b.instance.weight",
              "conv_t4a.conv2d.weight", "conv_l5_out.conv2d.bias", "conv_t0.conv2d.weight",
              "conv_l0_d1.conv2d.weight"):
        assert k in keys, k
    # blocks the release builds without instance norm
    assert "conv_l1_d1.conv_3a.instance.weight" not in keys
    assert "conv_l1_d3.conv_3a.instance.weight" not in keys
    assert "conv_l1_d14.conv_3a.instance.weight" not in keys


def test_pynet_level_shapes(pynet_model):
    x = _x(64, 64)
    with torch.no_grad():
        pyramid = pynet_model.forward_pyramid(x)  # levels 0..5 from one pass
        assert [tuple(y.shape) for y in pyramid] == [(1, 3, 128 // 2**lv, 128 // 2**lv)
                                                     for lv in range(6)]
        for y in pyramid:
            assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        for level in (2, 3, 4, 5):  # a forward of that level alone gives the same output
            y = pynet_model(x, level=level)
            assert y.shape == (1, 3, 128 // 2**level, 128 // 2**level)
            torch.testing.assert_close(y, pyramid[level], atol=1e-6, rtol=0)
        assert len(pynet_model.forward_pyramid(x, level=4)) == 2
    for level in range(6):
        assert PyNET.output_size(64, 64, level) == (128 // 2**level,) * 2


def test_pynet_odd_sizes_are_padded_and_cropped(pynet_model):
    x = _x(37, 45)
    with torch.no_grad():
        assert pynet_model(x).shape == (1, 3, 74, 90)
        assert pynet_model(x, level=3).shape == (1, 3, 10, 12)  # ceil(74/8), ceil(90/8)
        assert pynet_model(_x(9, 5), level=5).shape == (1, 3, 1, 1)  # below the 32 minimum
        assert pynet_model(_x(9, 5), level=4).shape == (1, 3, 2, 1)  # ceil(18/16), ceil(10/16)
    assert PyNET.output_size(37, 45, 3) == (10, 12)


def test_pynet_level_3_runs_nothing_of_levels_2_1_0(pynet_model):
    model = pynet_model.train()
    model.level = 3  # as create_model("pynet", level=3) for training level 3
    unused = PyNET.unused_parameter_prefixes(3)
    assert model.aux_parameter_prefixes == unused
    assert "conv_l0_d1." in unused and "conv_t0." in unused and "conv_l1_d14." in unused
    assert "conv_t2a." in unused and "conv_l4_out." in unused
    assert "conv_l3_out." not in unused and "conv_l1_d1." not in unused  # head 3, encoder
    called = []
    hooks = [m.register_forward_hook(lambda *_, n=name: called.append(n))
             for name, m in model.named_modules() if f"{name}." in unused]
    try:
        model(_x(32, 32)).mean().backward()
        assert called == []
        for name, p in model.named_parameters():
            if name.startswith(unused):
                assert p.grad is None, name
            else:
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.level = 0
        model.eval()


def test_pynet_level_0_aux_prefixes_are_the_coarse_heads(pynet_model):
    assert set(pynet_model.aux_parameter_prefixes) == {
        f"conv_l{lv}_out." for lv in range(1, 6)
    }


def test_pynet_bad_level_and_input_are_clear_errors(pynet_model):
    with pytest.raises(InvalidInputError, match="level must be an integer in 0..5"):
        pynet_model(_x(32, 32), level=6)
    with pytest.raises(InvalidInputError, match="level must be"):
        create_model("pynet", level=-1)
    with pytest.raises(InvalidInputError, match="N x 4 x H x W"):
        pynet_model(torch.rand(1, 3, 32, 32))


def test_pynet_onnx_export_small(pynet_model):
    pytest.importorskip("onnxruntime")
    # level 4 (the default level 0 is exported by tests/test_models.py): encoder, levels 5
    # and 4, instance norm, reflect padding, bilinear up-convs, sigmoid head
    pynet_model.level = 4
    try:
        assert onnx_max_error(pynet_model, _x(64, 48)) <= 1e-4
    finally:
        pynet_model.level = 0


def test_official_checkpoint_conversion_is_exact(pynet_model):
    """A release model fed (B, Gb, R, Gr) raw/1020 equals ours fed (R, G1, G2, B) normalised."""
    official = pynet_model  # random weights stand in for the release's
    sd = {f"module.{k}": v for k, v in official.state_dict().items()}  # DataParallel keys
    black, white = 63.0, 1020.0
    with torch.device("meta"):
        ours = PyNET(level=5)
    ours = ours.to_empty(device="cpu").eval()
    ours.load_state_dict(pynet_state_dict_from_official(sd, black, white))

    raw = black + (white - black) * torch.rand(1, 1, 64, 96, generator=torch.Generator()
                                               .manual_seed(2))
    x_off = torch.cat([raw[:, :, 1::2, 1::2], raw[:, :, 0::2, 1::2], raw[:, :, 0::2, 0::2],
                       raw[:, :, 1::2, 0::2]], 1) / 1020.0
    x_ours = (pack(raw, "RGGB") - black) / (white - black)
    torch.testing.assert_close(x_ours[:, list(OFFICIAL_CHANNELS)] * (white - black) + black,
                               x_off * 1020.0)
    with torch.no_grad():
        # the first block (where the conversion acts) agrees to float rounding ...
        torch.testing.assert_close(ours.conv_l1_d1(x_ours), official.conv_l1_d1(x_off),
                                   atol=2e-6, rtol=1e-5)
        # ... and so does the output (instance norm over 2 x 3 maps at level 5 amplifies it)
        ref = official(x_off, level=5)
        torch.testing.assert_close(ours(x_ours), ref, atol=1e-4, rtol=0)
        # and the conversion is not the identity
        assert (official(x_ours, level=5) - ref).abs().max() > 1e-3
    with pytest.raises(InvalidInputError, match="not a PyNET checkpoint"):
        pynet_state_dict_from_official({"foo": torch.zeros(1)})
    with pytest.raises(InvalidInputError, match="white_level"):
        pynet_state_dict_from_official(sd, black_level=10, white_level=10)


# --- PyNET-V2 Mobile and MicroISP: the zoo contract ------------------------------------------

SMALL = ["pynet_lite", "microisp"]


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name)


@pytest.mark.parametrize("name", SMALL)  # pynet: test_pynet_odd_sizes_are_padded_and_cropped
def test_odd_sizes(name):
    model = _build(name).eval()
    with torch.no_grad():
        y = model(_x(37, 45))
    assert y.shape == (1, 3, 74, 90)
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", SMALL)
def test_contract_range_gradients_determinism(name):
    model = _build(name).eval()
    x = _x(64, 64, seed=3)
    with torch.no_grad():
        y = model(x)
        assert torch.equal(y, model(x))
    assert y.shape == (1, 3, 128, 128) and y.min() >= 0 and y.max() <= 1
    model.train()
    model(x).mean().backward()
    aux = tuple(getattr(model, "aux_parameter_prefixes", ()))
    for pname, p in model.named_parameters():
        if p.grad is None:
            assert aux and pname.startswith(aux), f"{pname} gets no gradient"
        else:
            assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", SMALL)
def test_onnx_matches_torch(name):
    pytest.importorskip("onnxruntime")
    assert onnx_max_error(_build(name), _x(64, 64)) <= 1e-4


@pytest.mark.parametrize("name", SMALL)
def test_tanh_heads_are_clamped_in_eval_only(name):
    model = _build(name)
    last = model.head1[-1].conv if name == "pynet_lite" else model.stage2[1].out
    with torch.no_grad():
        last.bias.fill_(10.0)  # tanh -> 1, so the head gives 1.08 before clamping
    x = _x(32, 32)
    with torch.no_grad():
        assert model.train()(x).max() > 1.05
        assert model.eval()(x).max() == 1.0


def test_parameter_counts_of_the_small_models():
    assert count_parameters(_build("microisp")) == 13_560  # ~13.6 K in the paper
    assert count_parameters(_build("pynet_lite")) == 932_583


def test_pynet_lite_levels():
    model = _build("pynet_lite").eval()
    assert (PyNETV2Mobile.levels, PyNETV2Mobile.finest_level) == (3, 1)
    with torch.no_grad():
        for level, side in ((1, 128), (2, 64), (3, 32)):
            assert model(_x(64, 64), level=level).shape == (1, 3, side, side)
        assert model(_x(37, 45), level=3).shape == (1, 3, 19, 23)
        assert model(_x(5, 7)).shape == (1, 3, 10, 14)  # below the 28 minimum
    assert PyNETV2Mobile.output_size(37, 45, 3) == (19, 23)
    assert set(model.aux_parameter_prefixes) == {"head2.", "head3."}
    assert set(PyNETV2Mobile.unused_parameter_prefixes(3)) == {
        "head1.", "head2.", "up2.", "skip2.", "level2.", "up1.", "skip1.", "level1."}
    with pytest.raises(InvalidInputError, match="1..3"):
        model(_x(32, 32), level=0)


def test_microisp_branches_are_per_colour():
    model = _build("microisp").eval()
    x = _x(20, 24)
    with torch.no_grad():
        before = model(x)
        for p in model.stage1[2].parameters():  # the blue branch, stage 1
            p.add_(0.1)
        after = model(x)
    changed = (after - before).abs().amax(dim=(0, 2, 3))
    assert changed[0] == 0 and changed[1] == 0 and changed[2] > 0
    # every branch reads all four packed channels (see the card)
    assert all(b.convs[0].in_channels == 4 for b in model.stage1)
    assert model(_x(3, 2)).shape == (1, 3, 6, 4)  # tiny input: the gates pad themselves
