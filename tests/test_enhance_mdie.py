"""MDIE: intrinsic decomposition (losses, baselines, training objective), StarGAN translator
(objective, labels), the MDIE pipeline and its CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isplab.classic import srgb_gamma, srgb_to_linear
from isplab.data import domains
from isplab.enhance import intrinsic as I
from isplab.enhance.mdie import (
    MDIE,
    MODES,
    SEED_ROUTING,
    domain_labels,
    image_to_shading,
    load_mdie,
    mode_labels,
    parse_routing,
    shading_to_image,
    train_on_albedo,
    translate_components,
)
from isplab.errors import InvalidInputError
from isplab.io import read_image, write_image
from isplab.losses import intrinsic as IL
from isplab.models import create_model, model_info, save_weights
from isplab.train import Trainer, load_recipe
from tests.conftest import DATA, ROOT, need


def photo(h=48, w=64, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic").clamp(0.02, 1)


# --------------------------------------------------------------------------- decomposition


def test_synthetic_shading_is_smooth_positive_and_seeded():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1 = IL.synthetic_shading(2, 40, 56, g1)
    s2 = IL.synthetic_shading(2, 40, 56, g2)
    assert s1.shape == (2, 1, 40, 56) and torch.equal(s1, s2) and (s1 > 0).all()
    # smooth: neighbouring pixels differ by far less than the field's spread
    assert (s1[..., 1:] / s1[..., :-1]).log().abs().max() < 0.2
    tinted = IL.synthetic_shading(1, 8, 8, torch.Generator().manual_seed(0), tint=0.3)
    assert tinted.shape == (1, 3, 8, 8)
    with pytest.raises(InvalidInputError, match="shading"):
        IL.synthetic_shading(1, 8, 8, g1, gain_range=(0, 1))


def test_reshade_marks_clipped_pixels():
    x = torch.full((1, 3, 4, 4), 0.8)
    s = torch.ones(1, 1, 4, 4)
    s[..., :2] = 3.0  # 0.8 sRGB is ~0.6 linear: x3 clips
    relit, valid = IL.reshade(x, s)
    assert torch.allclose(relit[..., 2:], x[..., 2:], atol=1e-5)
    assert (relit[..., :2] > 1 - 1e-6).all() and valid[..., :2].sum() == 0 and valid[..., 2:].all()


def test_losses_vanish_for_an_exact_decomposition():
    lin = srgb_to_linear(photo())
    a = (lin / 0.5).clamp(max=1)
    s = torch.full_like(lin[:, :1], 0.5)
    assert float(IL.reconstruction_loss(a, s, a * s)) == 0.0
    assert float(IL.albedo_consistency_loss(a, a)) == 0.0
    assert float(IL.log_shading_prior(torch.ones_like(s))) == 0.0
    assert float(IL.log_shading_prior(s)) == pytest.approx(np.log(0.5) ** 2, rel=1e-5)
    # smoothness: a flat shading costs nothing, an edge in the shading where the albedo is
    # flat costs more than the same edge where the albedo has one
    flat_a = torch.full((1, 3, 8, 8), 0.5)
    edge_a = flat_a.clone()
    edge_a[..., 4:] = 0.1
    edge_s = torch.ones(1, 1, 8, 8)
    edge_s[..., 4:] = 2.0
    assert float(IL.edge_aware_smoothness(torch.ones(1, 1, 8, 8), flat_a)) == 0.0
    assert float(IL.edge_aware_smoothness(edge_s, flat_a)) > \
        float(IL.edge_aware_smoothness(edge_s, edge_a))


def test_scale_invariant_error_ignores_scale():
    a = photo()
    assert torch.allclose(IL.scale_invariant_error(3.0 * a, a), torch.zeros(1), atol=1e-10)
    b = a.clone()
    b[..., :8] = 0
    assert float(IL.scale_invariant_error(b, a)) > 1e-4
    with pytest.raises(InvalidInputError, match="shapes differ"):
        IL.scale_invariant_error(a, a[..., :10])


@pytest.mark.parametrize("method", [I.lime_decompose, I.multiscale_retinex])
def test_classical_decompositions_reconstruct(method):
    lin = srgb_to_linear(photo())
    a, s = method(lin)
    assert a.shape == lin.shape and s.shape == (1, 1, 48, 64) and (s > 0).all()
    recon = a * s
    ok = a < 1 if method is I.lime_decompose else torch.ones_like(a, dtype=torch.bool)
    assert torch.allclose(recon[ok], lin[ok], atol=1e-5)


def test_decomposition_losses_terms_and_gradients():
    net = create_model("intrinsic_net", widths=[8, 16])
    terms = IL.decomposition_losses(net, photo(32, 32), torch.Generator().manual_seed(0))
    assert set(terms) == {*IL.LOSS_WEIGHTS, "total"}
    terms["total"].backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(InvalidInputError, match="unknown intrinsic loss"):
        IL.decomposition_losses(net, photo(32, 32), torch.Generator(), {"bogus": 1.0})


def test_intrinsic_net_contract_and_onnx():
    net = create_model("intrinsic_net").eval()
    info = model_info("intrinsic_net")
    assert info["input"] == "srgb" and info["output"] == "intrinsic"
    assert info["parameters"] == 587_108
    x = photo(37, 45)
    with torch.no_grad():
        a, s = net.decompose(x)
        y = net(x)
    assert a.shape == (1, 3, 37, 45) and s.shape == (1, 1, 37, 45)
    assert (a > 0).all() and (a <= 1).all() and (s > 0).all()
    assert torch.equal(y, torch.cat([a, s], 1))
    # ratio form: A * S is the linear input wherever A is not clipped, up to the bounded
    # learned correction exp(0.25 tanh(r)); with the correction net zeroed, exactly
    for p in net.albedo_net.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        a, s = net.decompose(x)
    ok = a < 1
    assert torch.allclose((a * s)[ok], srgb_to_linear(x)[ok], atol=1e-5)
    free = create_model("intrinsic_net", albedo="sigmoid").eval()
    with torch.no_grad():
        a2, _ = free.decompose(x)
    assert (a2 > 0).all() and (a2 < 1).all()
    with pytest.raises(InvalidInputError, match="albedo"):
        create_model("intrinsic_net", albedo="exp")
    pytest.importorskip("onnxruntime")
    from isplab.models.export import onnx_max_error

    assert onnx_max_error(net, photo(32, 32)) <= 1e-4


def _intrinsic_recipe(tmp_path, steps, extra=()):
    need(DATA / "cbsd68")
    return load_recipe(ROOT / "configs" / "mdie_intrinsic.yaml", [
        f"train.steps={steps}", "train.log_every=1", "train.tensorboard=false",
        f"train.val_every={steps}", f"train.ckpt_every={steps}", "train.val_max_batches=1",
        f"data.train.args.folders=[{DATA / 'cbsd68'}]", "data.train.args.cache=false",
        f"data.val.args.folders=[{DATA / 'cbsd68'}]", "data.val.args.patch=64",
        "data.train.batch_size=4", "data.train.args.patch=48", *extra])


def test_intrinsic_objective_learns_to_reconstruct(tmp_path):
    """60 steps of the real recipe on CBSD68 patches: A * S reconstructs the input far better
    than the untrained network (the full recipe's figure is in docs/benchmarks.md), and the
    validation reports both metrics."""
    recipe = _intrinsic_recipe(tmp_path, 60)
    summary = Trainer(recipe, tmp_path / "run", progress=False).run()
    val = summary["validation"]
    assert set(val) == {"recon_psnr", "albedo_si"}
    untrained = create_model("intrinsic_net").eval()
    x = domains.DomainDataset([DATA / "cbsd68"], patch=64, split="val", lq_probability=0,
                              seed=1)[0]["image"][None]
    from isplab.enhance.intrinsic import decomposition_psnr
    from isplab.models import load_model

    trained = load_model(tmp_path / "run" / "model.safetensors").eval()
    before = float(decomposition_psnr(untrained, x))
    after = float(decomposition_psnr(trained, x))
    assert after > before + 5, (before, after)
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert log[0].split(",")[4:4 + len(IL.LOSS_WEIGHTS)] == list(IL.LOSS_WEIGHTS)


def test_intrinsic_objective_resumes_exactly(tmp_path):
    """Resuming from the step-2 checkpoint repeats steps 3-4 of the uninterrupted run (the
    re-shading fields are keyed by step)."""
    import shutil

    recipe = _intrinsic_recipe(tmp_path, 4, ["train.ckpt_every=2", "train.val_every=100",
                                             "train.keep_last=3"])
    Trainer(recipe, tmp_path / "a", progress=False).run()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step_00000004")
    Trainer(recipe, tmp_path / "b", resume=True, progress=False).run()
    rows_a = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    rows_b = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 5
    assert [r.split(",")[3] for r in rows_a[1:]] == [r.split(",")[3] for r in rows_b[1:]]


# --------------------------------------------------------------------------- domains, labels


def test_domain_dataset_items_and_labels():
    need(DATA / "cbsd68")
    ds = domains.DomainDataset([DATA / "cbsd68"], patch=32, seed=0, lq_probability=0.5,
                               patches_per_image=2)
    assert len(ds) == 2 * len(ds.files)
    seen = set()
    for i in range(40):
        it = ds[i]
        d = it["domain"]
        seen.add((d, it["lq"]))
        assert it["image"].shape == it["clean"].shape == (3, 32, 32)
        assert it["mask"].tolist() == [float(k == d) for k in range(3)]
        assert it["labels"].tolist() == [float(k == d and not it["lq"]) for k in range(3)]
        if it["lq"]:
            assert not torch.equal(it["image"], it["clean"])
        else:
            assert torch.equal(it["image"], it["clean"])
    assert len(seen) == 6  # every domain, both qualities
    again = domains.DomainDataset([DATA / "cbsd68"], patch=32, seed=0, lq_probability=0.5,
                                  patches_per_image=2)
    assert torch.equal(ds[5]["image"], again[5]["image"])
    with pytest.raises(InvalidInputError, match="domains"):
        domains.DomainDataset([DATA / "cbsd68"], domains=["haze"])


def test_labels_and_shading_image():
    ref = torch.zeros(1)
    assert domain_labels(2, [1], ref).tolist() == [[0, 1, 0, 0, 1, 0]] * 2
    assert mode_labels("all", 1, ref)[0].tolist() == [[1.0] * 6]
    seq = [lab.tolist()[0] for lab in mode_labels("sequential", 1, ref)]
    assert seq == [[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1]]
    assert [mode_labels(d, 1, ref)[0].tolist()[0] for d in domains.DOMAINS] == seq
    with pytest.raises(InvalidInputError, match="mode"):
        mode_labels("random", 1, ref)
    s = torch.tensor([0.1, 0.5, 1.0, 4.0]).view(1, 1, 2, 2)
    img = shading_to_image(s)
    assert img.shape == (1, 3, 2, 2) and (img > 0).all() and (img < 1).all()
    assert torch.allclose(image_to_shading(img), s, rtol=1e-5)


class _Identity(torch.nn.Module):
    def forward(self, x, labels=None):
        return x


def test_translate_components_with_identity_translator_rebuilds_the_decomposition():
    net = create_model("intrinsic_net", widths=[8, 16]).eval()
    x = photo(32, 32)
    with torch.no_grad():
        a, s = net.decompose(x)
        out = translate_components(net, _Identity(), x, mode_labels("all", 1, x))
    expect = srgb_gamma((a * s).clamp(0, 1))
    assert torch.allclose(out, expect, atol=1e-4)


def test_translate_components_touches_the_albedo_only_for_colour():
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, x, labels):
            calls.append((x.shape[1], labels[0].tolist()))
            return x

    net = create_model("intrinsic_net", widths=[8, 16]).eval()
    with torch.no_grad():
        translate_components(net, Spy(), photo(16, 16), mode_labels("sequential", 1,
                                                                     torch.zeros(1)))
    colour, texture, noise = ([1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1])
    assert [c[1] for c in calls] == [colour, colour, texture, noise]


ALBEDO_ROUTING = {"colour": ["albedo", "shading"], "texture": ["albedo"], "noise": ["albedo"]}


def test_parse_routing_and_its_errors():
    assert parse_routing() == parse_routing(SEED_ROUTING) == ((True, True), (False, True),
                                                              (False, True))
    assert parse_routing(ALBEDO_ROUTING) == ((True, True), (True, False), (True, False))
    assert parse_routing({"colour": "albedo", "texture": "shading", "noise": "shading"}) == (
        (True, False), (False, True), (False, True))
    for bad in ({"colour": ["albedo"]}, {**ALBEDO_ROUTING, "noise": []},
                {**ALBEDO_ROUTING, "noise": ["reflectance"]}, ["albedo"]):
        with pytest.raises(InvalidInputError, match="routing"):
            parse_routing(bad)


def test_train_on_albedo_follows_the_routing():
    domain = torch.tensor([0, 0, 1, 1, 2, 2])
    coin = torch.tensor([True, False, True, False, True, False])
    assert train_on_albedo(parse_routing(), domain, coin).tolist() == [
        True, False, False, False, False, False]
    assert train_on_albedo(parse_routing(ALBEDO_ROUTING), domain, coin).tolist() == [
        True, False, True, True, True, True]


def test_translate_components_follows_the_routing():
    net = create_model("intrinsic_net", widths=[8, 16]).eval()
    x = photo(16, 16)
    with torch.no_grad():
        a, s = net.decompose(x)
        seen = []

        class Who(torch.nn.Module):  # records which component each call gets
            def forward(self, v, labels):
                seen.append(("albedo" if torch.allclose(v, a) else "shading", labels[0].tolist()))
                return v

        translate_components(net, Who(), x, mode_labels("sequential", 1, x),
                             parse_routing(ALBEDO_ROUTING))
        colour, texture, noise = ([1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1])
        assert seen == [("albedo", colour), ("shading", colour), ("albedo", texture),
                        ("albedo", noise)]
        seen.clear()
        translate_components(net, Who(), x, mode_labels("all", 1, x),
                             parse_routing(ALBEDO_ROUTING))
        assert [w for w, _ in seen] == ["albedo", "shading"]


def test_residual_stargan_generator_starts_as_the_identity():
    g = create_model("stargan_generator", width=8, n_blocks=1, residual=True).eval()
    x = photo(20, 28)
    with torch.no_grad():
        assert torch.allclose(g(x), x, atol=1e-6)
    g.tail[-1].weight.data.normal_()
    with torch.no_grad():
        y = g(x)
    assert not torch.allclose(y, x) and y.min() >= 0 and y.max() <= 1


def test_stargan_generator_skip_and_global_gain():
    x = photo(20, 28)
    g = create_model("stargan_generator", width=8, n_blocks=1, residual=True, skip=True,
                     global_gain=True).eval()
    assert g.tail[-1].weight.shape[1] == 16  # tail features + the full-resolution skip
    with torch.no_grad():
        assert torch.allclose(g(x), x, atol=1e-6)  # still starts as the identity
    with pytest.raises(InvalidInputError, match="residual"):
        create_model("stargan_generator", width=8, n_blocks=1, global_gain=True)
    # the gain sees the input's colour: a few steps learn to undo a global cast (which the
    # instance norms hide from the convolutional path)
    torch.manual_seed(0)
    clean = photo(32, 32, seed=3) * 0.8
    cast = clean * torch.tensor([0.6, 1.0, 1.4]).view(1, 3, 1, 1)
    g.train()
    opt = torch.optim.Adam(g.gain.parameters(), lr=5e-2)
    lab = domain_labels(1, [0], x)
    with torch.no_grad():
        before = float((g(cast, lab) - clean).abs().mean())
    for _ in range(60):
        opt.zero_grad()
        loss = (g(cast, lab) - clean).abs().mean()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * before
    # with a non-zero tail both options export to ONNX (labels default to all ones there)
    pytest.importorskip("onnxruntime")
    from isplab.models.export import onnx_max_error

    g.tail[-1].weight.data.normal_(std=1e-2)
    assert onnx_max_error(g.eval(), photo(32, 32)) <= 1e-4


def test_stargan_generator_labels():
    g = create_model("stargan_generator", width=8, n_blocks=2).eval()
    x = photo(20, 28)
    with torch.no_grad():
        a = g(x, domain_labels(1, [0], x))
        b = g(x, domain_labels(1, [2], x))
        ones = g(x)
    assert a.shape == x.shape and not torch.allclose(a, b)
    assert torch.allclose(ones, g(x, mode_labels("all", 1, x)[0]))
    with pytest.raises(InvalidInputError, match="labels"):
        g(x, torch.ones(1, 3))


def _translator_recipe(tmp_path, steps, component="image", extra=()):
    need(DATA / "cbsd68")
    sets = [f"train.steps={steps}", "train.log_every=1", "train.tensorboard=false",
            f"train.val_every={steps}", f"train.ckpt_every={steps}", "train.val_max_batches=1",
            f"data.train.args.folders=[{DATA / 'cbsd68'}]", "data.train.args.cache=false",
            f"data.val.args.folders=[{DATA / 'cbsd68'}]", "data.val.args.patch=64",
            "data.train.batch_size=4", "data.train.args.patch=64", "data.val.batch_size=2",
            "model.config.width=8", "model.config.n_blocks=1",
            "gan.discriminator.config.width=8", "objective.n_critic=2",
            f"objective.component={component}", *extra]
    if component == "intrinsic":
        w = save_weights(create_model("intrinsic_net", widths=[8, 16]),
                         tmp_path / "intrinsic.safetensors")
        sets.append(f"objective.intrinsic_weights={w}")
    return load_recipe(ROOT / "configs" / "mdie_translator.yaml", sets)


@pytest.mark.parametrize("component", ["image", "intrinsic"])
def test_stargan_objective_alternates_critic_and_generator(tmp_path, component):
    recipe = _translator_recipe(tmp_path, 4, component)
    summary = Trainer(recipe, tmp_path / "run", progress=False).run()
    assert summary["skipped_nonfinite"] == 0
    val = summary["validation"]
    assert {"psnr", "psnr_input"} <= set(val)
    per = {k for k in val if k.startswith("psnr_") and k != "psnr_input"}
    assert per and all(k.split("_")[-1] in domains.DOMAINS for k in per)
    assert len(per) % 2 == 0  # translated and input per domain
    rows = [r.split(",") for r in (tmp_path / "run" / "train_log.csv").read_text().splitlines()]
    header = rows[0]
    g_rec = header.index("g_rec")
    assert header[4:12] == ["d_adv", "d_cls", "d_gp", "g_adv", "g_cls", "g_rec", "g_id",
                            "g_pair"]
    assert all(r[header.index("g_pair")] != "" for r in rows[1:] if r[g_rec] != "")
    # n_critic = 2: generator terms on even steps only
    assert [r[g_rec] != "" for r in rows[1:]] == [False, True, False, True]
    mdie = load_mdie(tmp_path / "run")
    assert (mdie.intrinsic is not None) == (component == "intrinsic")
    # the recipe's routing travels with the weights (texture and noise on the albedo)
    assert mdie.routing == parse_routing(recipe["objective"]["routing"])
    assert mdie.routing == parse_routing(ALBEDO_ROUTING)
    for mode in MODES:
        out = mdie.enhance(photo(40, 44), mode)
        assert out.shape == (1, 3, 40, 44) and out.min() >= 0 and out.max() <= 1


def test_stargan_objective_needs_a_discriminator_and_intrinsic_weights(tmp_path):
    recipe = _translator_recipe(tmp_path, 1, "image", ["gan=null"])
    with pytest.raises(InvalidInputError, match="discriminator"):
        Trainer(recipe, tmp_path / "r", progress=False).run()
    recipe = _translator_recipe(tmp_path, 1, "image", ["objective.component=intrinsic",
                                                       "objective.intrinsic_weights=null"])
    with pytest.raises(InvalidInputError, match="intrinsic_weights"):
        Trainer(recipe, tmp_path / "r2", progress=False).run()


def test_load_mdie_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        load_mdie(tmp_path / "nothing")
    w = save_weights(create_model("dped_rgb"), tmp_path / "dped.safetensors")
    with pytest.raises(InvalidInputError, match="stargan_generator"):
        load_mdie(w)
    gone = str(tmp_path / "gone.safetensors")
    g = save_weights(create_model("stargan_generator", width=8, n_blocks=1),
                     tmp_path / "g.safetensors",
                     extra={"objective": {"name": "stargan", "component": "intrinsic",
                                          "intrinsic_weights": gone}})
    with pytest.raises(InvalidInputError, match="--intrinsic"):
        load_mdie(g)
    i = save_weights(create_model("intrinsic_net", widths=[8, 16]), tmp_path / "i.safetensors")
    assert isinstance(load_mdie(g, i), MDIE)
    assert load_mdie(g, i).routing == parse_routing(SEED_ROUTING)  # nothing recorded
    bad = save_weights(create_model("stargan_generator", width=8, n_blocks=1),
                       tmp_path / "bad.safetensors",
                       extra={"objective": {"name": "stargan", "component": "intrinsic",
                                            "routing": {"colour": ["albedo"]}}})
    with pytest.raises(InvalidInputError, match="routing"):
        load_mdie(bad, i)


def test_cli_enhance_mdie(tmp_path):
    from typer.testing import CliRunner

    from isplab.cli import app

    g = save_weights(create_model("stargan_generator", width=8, n_blocks=1),
                     tmp_path / "g.safetensors")
    i = save_weights(create_model("intrinsic_net", widths=[8, 16]), tmp_path / "i.safetensors")
    write_image(tmp_path / "in.png", photo(40, 60))
    runner = CliRunner()
    res = runner.invoke(app, ["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"),
                              "--pipeline", "mdie", "--model", str(g), "--intrinsic", str(i),
                              "--mdie-mode", "sequential"])
    assert res.exit_code == 0, res.output
    assert "MDIE (sequential, intrinsic components)" in res.output
    from isplab.commands.enhance import MdieMode

    assert [m.value for m in MdieMode] == list(MODES)  # the CLI offers every mode
    res = runner.invoke(app, ["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "o1"),
                              "--pipeline", "mdie", "--model", str(g), "--intrinsic", str(i),
                              "--mdie-mode", "noise"])
    assert res.exit_code == 0 and "MDIE (noise, intrinsic components)" in res.output
    assert read_image(tmp_path / "out" / "in.png").shape == (1, 3, 40, 60)
    res = runner.invoke(app, ["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "o2"),
                              "--pipeline", "mdie"])
    assert res.exit_code == 2 and "--model" in res.output


def test_intrinsic_objective_under_ddp_keeps_ranks_identical(tmp_path):
    """Two gloo processes under torchrun: one forward/backward per step, so DDP works and
    the ranks end with the same weights."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    recipe = _intrinsic_recipe(tmp_path, 3, ["model.config.widths=[8,16]",
                                             "data.val=null"])
    path = tmp_path / "intrinsic.yaml"
    path.write_text(yaml.safe_dump(recipe))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "isplab.cli", "train",
         str(path), "--out", str(tmp_path / "ddp"), "-q"],
        cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2
    a, b = summary["rank_checksums"]
    assert a == b
