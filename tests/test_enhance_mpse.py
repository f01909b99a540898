"""MPSE: matting Laplacian, co-segmentation, style transfer, LIME, recommendation, CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isplab.enhance.lime import (
    gamma_enhance,
    lightness_order_error,
    lime,
    lime_system,
    post_process,
    refine_illumination,
    structure_weights,
)
from isplab.enhance.matting import matting_energy, matting_laplacian
from isplab.enhance.recommend import recommend_references
from isplab.enhance.segment import PALETTE, co_segment, kmeans, palette_segmentation
from isplab.enhance.style import masked_gram, resolve_vgg, style_transfer
from isplab.errors import InvalidInputError, IsplabError
from isplab.io import read_image, write_image
from tests.conftest import DATA, need

PHOTOS = DATA / "wikipedia_photos49"


def _photo(name: str, size=(48, 72)) -> torch.Tensor:
    return F.interpolate(read_image(need(PHOTOS / f"{name}.png")), size=size, mode="area")


@pytest.fixture
def no_vgg_weights(monkeypatch, tmp_path):
    """Make sure no VGG-19 checkpoint is found (empty weights dir and hub cache)."""
    monkeypatch.setenv("ISPLAB_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


@pytest.fixture(scope="module")
def random_vgg():
    from isplab.backbones import load_backbone

    torch.manual_seed(0)
    return load_backbone("vgg19", random_init=True)


# --------------------------------------------------------------------------- matting


def _smooth_image(h=14, w=17, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)


def test_matting_laplacian_symmetric_rows_sum_zero_psd():
    img = _smooth_image()
    lap = matting_laplacian(img, dtype=torch.float64)
    assert lap.is_sparse and lap.shape == (14 * 17, 14 * 17)
    d = lap.to_dense()
    assert torch.allclose(d, d.T, atol=1e-10)
    assert d.sum(1).abs().max() < 1e-9
    assert torch.linalg.eigvalsh(d).min() > -1e-8
    # row-major: pixel (y, x) = y * W + x couples only with its 5 x 5 neighbourhood
    p = 5 * 17 + 6
    nz = torch.nonzero(d[p].abs() > 0).flatten()
    ys, xs = nz // 17, nz % 17
    assert ys.min() == 3 and ys.max() == 7 and xs.min() == 4 and xs.max() == 8


def test_matting_energy_affine_near_zero_nonaffine_large():
    img = _smooth_image()
    lap = matting_laplacian(img, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    m, b = torch.randn(3, 3, generator=g, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    affine = torch.einsum("cd,ndhw->nchw", m, img) + b.view(1, 3, 1, 1)
    e_aff = float(matting_energy(affine, lap))
    nonaffine = affine + 0.3 * torch.sin(12 * img).roll(1, dims=1)
    e_non = float(matting_energy(nonaffine, lap))
    assert e_aff < 1e-3 * e_non and e_non > 1.0
    assert float(matting_energy(torch.ones_like(img) * 0.7, lap)) < 1e-10


def test_matting_gradient_is_2LV_and_eps_option():
    img = _smooth_image(10, 12)
    lap = matting_laplacian(img, dtype=torch.float64)
    v = torch.rand(1, 3, 10, 12, dtype=torch.float64, requires_grad=True)
    matting_energy(v, lap).backward()
    d = lap.to_dense()
    expected = (2 * d @ v.detach()[0].reshape(3, -1).T).T.reshape(1, 3, 10, 12)
    assert torch.allclose(v.grad, expected, atol=1e-10)
    lap5 = matting_laplacian(img, eps=1e-5, dtype=torch.float64).to_dense()
    assert not torch.allclose(lap5, d) and lap5.sum(1).abs().max() < 1e-9


def test_matting_bad_input():
    with pytest.raises(InvalidInputError, match="H, W >= 3"):
        matting_laplacian(torch.rand(1, 3, 2, 8))
    lap = matting_laplacian(torch.rand(1, 3, 4, 4))
    with pytest.raises(InvalidInputError, match="pixels"):
        matting_energy(torch.rand(1, 3, 5, 4), lap)


# --------------------------------------------------------------------------- segmentation


def test_kmeans_recovers_separated_clusters_deterministically():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [5, 5], [0, 6]])
    pts = np.vstack([c + 0.2 * rng.standard_normal((30, 2)) for c in centers])
    labels, found, _ = kmeans(pts, 3, seed=3)
    again, _, _ = kmeans(pts, 3, seed=3)
    assert np.array_equal(labels, again)
    for i in range(3):  # each true cluster is one label
        assert len(set(labels[30 * i:30 * (i + 1)])) == 1
    assert np.allclose(np.sort(found[:, 0]), [0, 0, 5], atol=0.2)


def _scene(sky_rgb, ground_rgb, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.empty(1, 3, h, w)
    img[:, :, : h // 2] = torch.tensor(sky_rgb).view(1, 3, 1, 1)
    img[:, :, h // 2:] = torch.tensor(ground_rgb).view(1, 3, 1, 1) + \
        0.25 * torch.rand(1, 1, h - h // 2, w, generator=g)
    return img.clamp(0, 1)


def test_co_segment_labels_correspond_and_names_sky():
    content = _scene((0.55, 0.7, 0.95), (0.3, 0.25, 0.2))
    reference = _scene((0.9, 0.6, 0.4), (0.2, 0.3, 0.2), seed=1)
    seg = co_segment(content, reference, k=2, n_segments=60)
    assert seg.regions == 2 and seg.names[0] == "sky"
    cm, rm = seg.content_masks, seg.reference_masks
    assert cm.shape == (1, 2, 48, 64) and torch.all(cm.sum(1) == 1)
    # region 0 (sky) is the top half in both images
    assert cm[0, 0, :16].mean() > 0.9 and cm[0, 0, 32:].mean() < 0.1
    assert rm[0, 0, :16].mean() > 0.9 and rm[0, 0, 32:].mean() < 0.1
    assert co_segment(content, reference, k=1).names == ["global"]


def test_palette_masks(tmp_path):
    h, w = 20, 30
    names = list(PALETTE)
    a = np.zeros((h, w, 3), np.uint8)
    a[:10] = PALETTE["blue"]
    a[10:] = PALETTE["green"]
    a[15:, :5] = PALETTE["red"]  # red only in the content mask
    b = np.zeros((h * 2, w * 2, 3), np.uint8)
    b[:30] = PALETTE["blue"]
    b[30:] = (6, 240, 9)  # slightly off green (JPEG-like): still green
    write_image(tmp_path / "a.png", a)
    write_image(tmp_path / "b.png", b)
    content, reference = torch.rand(1, 3, h, w), torch.rand(1, 3, 40, 60)
    seg = palette_segmentation(tmp_path / "a.png", tmp_path / "b.png", content, reference)
    assert seg.names == ["blue", "green"] and seg.method == "user"
    assert names.index("blue") < names.index("green")
    assert torch.all(seg.content_masks.sum(1) == 1)  # red pixels joined a shared region
    assert seg.content_masks[0, 0, :10].mean() == 1 and seg.reference_masks[0, 1, 30:].mean() == 1
    write_image(tmp_path / "c.png", np.full((h, w, 3), 255, np.uint8))
    with pytest.raises(InvalidInputError, match="share no palette colour"):
        palette_segmentation(tmp_path / "c.png", tmp_path / "b.png", content, reference)


# --------------------------------------------------------------------------- style transfer


def test_missing_vgg_weights_names_the_file(no_vgg_weights):
    with pytest.raises(IsplabError, match="vgg19-dcbb9e9d.pth"):
        resolve_vgg(None)
    with pytest.raises(IsplabError, match="vgg19-dcbb9e9d.pth"):
        style_transfer(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), "global")


def test_masked_gram_matches_plain_gram():
    from isplab.losses import gram_matrix

    f = torch.rand(1, 8, 6, 5)
    assert torch.allclose(masked_gram(f, None), gram_matrix(f)[0])
    m = torch.zeros(1, 1, 6, 5)
    m[..., :3, :] = 1  # half the image: normalised by its area
    assert torch.allclose(masked_gram(f, m), gram_matrix(f[..., :3, :])[0], atol=1e-6)


def test_style_transfer_real_photos_keeps_structure_moves_colours(random_vgg):
    """Real content/reference (wikipedia_photos49), random VGG-19 on its shallow layers.

    Claims: luminance SSIM to the content >= 0.75, area-weighted region Lab mean/std distance
    to the reference reduced by a factor >= 1.3, stage 2 lowers the matting energy."""
    content, reference = _photo("003", (40, 60)), _photo("004", (40, 60))
    result, rep = style_transfer(content, reference, vgg=random_vgg, iterations=(5, 4),
                                 style_layers=("relu1_1", "relu2_1", "relu3_1"),
                                 content_layer="relu2_2", segments=3)
    assert result.shape == content.shape and 0 <= result.min() and result.max() <= 1
    assert rep.regions_method == "slic-kmeans" and len(rep.regions) == len(rep.region_names)
    assert rep.ssim_luminance >= 0.75
    assert rep.color_distance_after * 1.3 <= rep.color_distance_before
    s1, s2 = rep.stages
    assert "matting" not in s1["final"] and s2["final"]["matting"] < s2["initial"]["matting"]
    assert s1["final"]["style"] < s1["initial"]["style"]
    assert rep.matting_energy["result"] >= rep.matting_energy["content"] >= 0
    assert len(rep.region_weights) == 2 and set(rep.to_dict()) >= {"color_distance_after"}


def test_style_transfer_uniform_global_default_layers(random_vgg):
    content, reference = torch.rand(1, 3, 24, 32), torch.rand(1, 3, 20, 28) * 0.5
    _, rep = style_transfer(content, reference, "global", vgg=random_vgg, iterations=(2, 0),
                            region_weights="uniform")
    assert rep.region_names == ["global"] and len(rep.stages) == 1
    assert rep.region_weights[0]["relu5_1"] == [1.0]
    with pytest.raises(InvalidInputError, match="region_weights"):
        style_transfer(content, reference, vgg=random_vgg, region_weights="foo")
    with pytest.raises(InvalidInputError, match="16 x 16"):
        style_transfer(torch.rand(1, 3, 8, 8), reference, vgg=random_vgg)


# --------------------------------------------------------------------------- LIME


def _dense_diff(n):
    d = -np.eye(n) + np.eye(n, k=1)
    d[-1] = 0
    return d


def test_lime_solve_equals_dense_solve():
    rng = np.random.default_rng(0)
    t_hat = rng.random((7, 9))
    h, w = t_hat.shape
    dh = np.kron(np.eye(h), _dense_diff(w))
    dv = np.kron(_dense_diff(h), np.eye(w))
    wh, wv = structure_weights(t_hat, 2.0, 1e-3)
    a = np.eye(h * w) + 0.15 * (dh.T @ np.diag(wh.ravel()) @ dh + dv.T @ np.diag(wv.ravel()) @ dv)
    expected = np.linalg.solve(a, t_hat.ravel()).reshape(h, w)
    assert np.allclose(lime_system(t_hat).toarray(), a)
    assert np.allclose(refine_illumination(t_hat, solver="direct"), expected, atol=1e-10)
    assert np.allclose(refine_illumination(t_hat, solver="cg"), expected, atol=1e-5)
    # an image varying along x only: horizontal weights small, vertical ones large
    wh2, wv2 = structure_weights(np.tile(np.linspace(0, 1, w), (h, 1)))
    assert wv2.min() > 10 * wh2.max()


def test_lime_bright_image_stays_close_dark_image_brightens():
    g = torch.Generator().manual_seed(0)
    bright = 0.9 + 0.1 * torch.rand(1, 3, 24, 32, generator=g)
    assert (lime(bright) - bright).abs().mean() < 0.03
    photo = _photo("010", (32, 48))
    dark = photo * 0.15
    out = lime(dark, denoise=0.02)
    assert torch.all(lime(dark) >= dark - 1e-6)  # R = L / T with T <= 1
    assert out.mean() > 2.5 * dark.mean()
    darker = lime(photo * 0.08)
    assert float(darker.mean()) <= float(lime(dark).mean()) + 1e-6


def test_lightness_order_error_and_baselines():
    photo = _photo("012", (40, 60))
    assert float(lightness_order_error(photo, photo)[0]) == 0
    assert float(lightness_order_error(photo, photo.pow(0.5))[0]) == 0  # monotone: order kept
    assert float(lightness_order_error(photo, 1 - photo)[0]) > 100
    assert torch.allclose(gamma_enhance(photo, 1.0), photo, atol=1e-4)
    assert torch.all(gamma_enhance(photo * 0.2, 2.2) >= photo * 0.2 - 1e-6)
    for m in ("none", "he", "clahe", "gamma"):
        assert post_process(photo, m).shape == photo.shape
    with pytest.raises(InvalidInputError, match="post-processing"):
        post_process(photo, "bm3d")


# --------------------------------------------------------------------------- recommend


def test_recommend_stats_fallback_ranks_similar_first(tmp_path, no_vgg_weights):
    img = _photo("015", (48, 72))
    write_image(tmp_path / "b_similar.png", (img * 0.97).clamp(0, 1))
    write_image(tmp_path / "a_other.png", _photo("030", (48, 72)))
    write_image(tmp_path / "c_inverted.png", 1 - img)
    (tmp_path / "d_broken.png").write_bytes(b"not an image")
    rec = recommend_references(img, tmp_path)
    assert rec.method == "stats" and "vgg19-dcbb9e9d.pth" in rec.message
    assert rec.best.name == "b_similar.png" and len(rec.ranking) == 3
    assert rec.skipped[0][0].name == "d_broken.png"
    with pytest.raises(IsplabError, match="vgg19-dcbb9e9d.pth"):
        recommend_references(img, tmp_path, method="vgg")


def test_recommend_vgg_features(tmp_path, random_vgg):
    img = _photo("015", (40, 60))
    write_image(tmp_path / "same.png", img)
    write_image(tmp_path / "other.png", _photo("030", (40, 60)))
    rec = recommend_references(img, tmp_path, vgg=random_vgg)
    assert rec.method == "vgg" and rec.best.name == "same.png" and rec.ranking[0][1] < 0.05


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "in"
    for name in ("003", "020"):
        write_image(d / f"p{name}.png", _photo(name, (40, 60)))
    (d / "broken.png").write_bytes(b"\x89PNG broken")
    return d


def _run(args):
    from typer.testing import CliRunner

    from isplab.cli import app

    return CliRunner().invoke(app, ["enhance", *map(str, args)])


def _flat(text: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def test_cli_post_only_bad_file_skipped_no_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    r = _run([photos, "-o", out, "--post", "clahe"])
    assert r.exit_code == 1, r.output
    assert "broken.png" in r.output and "2 enhanced, 1 failed" in r.output
    assert "phase 1 skipped" in r.output
    assert (out / "p003.png").is_file() and not (out / "broken.png").exists()
    assert read_image(out / "p003.png").shape == (1, 3, 40, 60)
    r = _run([photos / "p003.png", "-o", out, "--post", "he"])  # exists: skipped (exit 0)
    assert r.exit_code == 0 and "skipped" in r.output and "--overwrite" in r.output
    r = _run([photos / "p003.png", "-o", out, "--post", "he", "--overwrite"])
    assert r.exit_code == 0, r.output
    r = _run([photos / "p003.png", "-o", photos, "--post", "he", "--overwrite"])
    assert r.exit_code == 1 and "would replace an input file" in r.output


def test_cli_without_any_step_refuses(photos, tmp_path):
    """Issue 20.10: no model, no reference, no post-processing would copy the photo."""
    r = _run([photos / "p003.png", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "nothing to do" in _flat(r.output)
    assert not (tmp_path / "o").exists()


def test_cli_style_needs_vgg_file(photos, tmp_path, no_vgg_weights):
    r = _run([photos / "p003.png", "-o", tmp_path / "o", "--reference", photos / "p020.png"])
    assert r.exit_code == 2 and "vgg19-dcbb9e9d.pth" in _flat(r.output)


def test_cli_full_mpse_with_model_reference_and_post(photos, tmp_path):
    from isplab.models import create_model, save_weights

    torch.manual_seed(0)
    weights = save_weights(create_model("dped_plus_rgb"), tmp_path / "dpp.safetensors")
    r = _run([photos / "p003.png", "-o", tmp_path / "o", "--model", weights, "--references",
              photos, "--post", "gamma", "--iterations", "1,0", "--random-vgg", "--size", "32"])
    assert r.exit_code == 0, r.output
    assert "phase 1: DPED" in r.output and "reference recommended: p020.png" in r.output
    assert "phase 2: style transfer" in r.output and "phase 3: gamma" in r.output
    assert read_image(tmp_path / "o" / "p003.png").shape == (1, 3, 21, 32)
    raw_model = save_weights(create_model("microisp"), tmp_path / "micro.safetensors")
    r = _run([photos / "p003.png", "-o", tmp_path / "o2", "--model", raw_model])
    assert r.exit_code == 2 and "sRGB -> sRGB" in _flat(r.output)


def test_cli_user_masks(photos, tmp_path):
    a = np.zeros((40, 60, 3), np.uint8)
    a[:20] = PALETTE["blue"]
    a[20:] = PALETTE["black"]
    write_image(tmp_path / "cm.png", a)
    write_image(tmp_path / "rm.png", a[::-1].copy())
    r = _run([photos / "p003.png", "-o", tmp_path / "u", "--reference", photos / "p020.png",
              "--masks", tmp_path / "cm.png", "--reference-masks", tmp_path / "rm.png",
              "--random-vgg", "--iterations", "1,0", "--size", "24"])
    assert r.exit_code == 0, r.output
    assert "style transfer (user, regions ['blue', 'black'])" in _flat(r.output)
    r = _run([photos / "p003.png", "-o", tmp_path / "u2", "--masks", tmp_path / "cm.png"])
    assert r.exit_code == 2 and "--reference-masks" in _flat(r.output)
