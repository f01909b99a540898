"""isplab.data: Bayer-preserving augmentation, patches/determinism, the four datasets."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest
import torch

from isplab.data.augment import (
    bayer_augment,
    bayer_augment_packed,
    bayer_offset,
    cfa_shift,
    random_flags,
    rot90_flags,
    transform,
    unify_cfa,
)
from isplab.data.datasets import default_synthetic_folders, split_files
from isplab.data.demosaic import DemosaicDataset
from isplab.data.paired import PairedRawRGBDataset
from isplab.data.patches import (
    item_generator,
    make_loader,
    paired_random_crop,
    random_offsets,
    set_epoch,
)
from isplab.data.rgb_pairs import RGBPairDataset
from isplab.data.synthetic import SyntheticRawDataset
from isplab.errors import InvalidInputError
from isplab.io import write_image
from isplab.raw.cfa import BAYER_PATTERNS, mosaic, pack

from .conftest import DATA, need

FLAGS = [dict(hflip=bool(c & 1), vflip=bool(c & 2), transpose=bool(c & 4)) for c in range(8)]
HAS_SYNTH_NOISE = importlib.util.find_spec("isplab.synth.noise") is not None
HAS_SYNTH_WRITER = importlib.util.find_spec("isplab.synth.writer") is not None
CBSD = DATA / "cbsd68"
KODAK = DATA / "kodak24"


def _rgb(h=10, w=14, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --- augmentation ---------------------------------------------------------------------------


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(k for k, v in f.items() if v)
                         or "identity")
def test_bayer_augment_keeps_pattern_and_moves_target(cfa, flags):
    rgb = _rgb(11, 15)  # 10 x 14 output with a one-pixel margin
    m = mosaic(rgb, cfa)
    out, tgt = bayer_augment(m, cfa, rgb, **flags)
    dy, dx = bayer_offset(cfa, **flags, height=10, width=14)
    window = rgb[..., dy:dy + 10, dx:dx + 14]
    expected_rgb = transform(window, **flags)
    # the target is the transformed window, and the mosaic is that target sampled with cfa
    assert torch.equal(tgt, expected_rgb)
    assert torch.equal(out, mosaic(expected_rgb, cfa))
    assert out.shape[-2:] == ((14, 10) if flags["transpose"] else (10, 14))


@pytest.mark.parametrize("cfa, flags, offset", [
    ("RGGB", dict(), (0, 0)),
    ("RGGB", dict(hflip=True), (0, 1)),     # mirrored even-width row starts with G: shift
    ("RGGB", dict(vflip=True), (1, 0)),
    ("RGGB", dict(transpose=True), (0, 0)),  # RGGB is symmetric under transposition
    ("GRBG", dict(transpose=True), (1, 1)),  # GRBG^T = GBRG; the window at (1, 1) is GBRG
    ("BGGR", dict(hflip=True, vflip=True), (1, 1)),
])
def test_bayer_offsets_known(cfa, flags, offset):
    assert bayer_offset(cfa, **flags, height=8, width=8) == offset


def test_rot90_flags_match_torch_rot90():
    x = torch.arange(20.0).reshape(1, 4, 5)
    for k in range(4):
        assert torch.equal(transform(x, **rot90_flags(k)), torch.rot90(x, k, dims=(-2, -1)))


def test_bayer_augment_packed_matches_mosaic_of_transformed_target():
    rgb = _rgb(12, 16, seed=1)  # packed 6 x 8 -> output 5 x 7 packed, target 10 x 14
    packed = pack(mosaic(rgb, "RGGB"), "RGGB")[0]
    for flags in FLAGS:
        out, tgt = bayer_augment_packed(packed, rgb[0], **flags)
        expected = (7, 5) if flags["transpose"] else (5, 7)
        assert out.shape == (4, *expected) and tgt.shape == (3, 2 * expected[0], 2 * expected[1])
        assert torch.equal(out, pack(mosaic(tgt[None], "RGGB"), "RGGB")[0])
    # transposing swaps the greens: G1 (red row) of the output comes from G2 of the input
    out, _ = bayer_augment_packed(packed, None, transpose=True)
    assert torch.equal(out[1], packed[2, :5, :7].T)
    assert torch.equal(out[0], packed[0, :5, :7].T)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_unify_cfa(cfa):
    rgb = _rgb(10, 12, seed=2)
    out, tgt = unify_cfa(mosaic(rgb, cfa), cfa, "RGGB", target=rgb)
    assert out.shape[-2] % 2 == 0 and out.shape[-1] % 2 == 0
    assert torch.equal(out, mosaic(tgt, "RGGB"))
    dy, dx = cfa_shift(cfa)
    assert out.shape[-2:] == (10 - 2 * dy, 12 - 2 * dx)


def test_augment_errors():
    m = mosaic(_rgb(10, 10), "RGGB")
    with pytest.raises(InvalidInputError, match="margin"):
        bayer_augment(m, "RGGB", size=(10, 10), hflip=True)
    with pytest.raises(InvalidInputError, match="aligned"):
        bayer_augment(m, "RGGB", target=_rgb(8, 8))
    with pytest.raises(InvalidInputError, match="twice"):
        bayer_augment_packed(torch.zeros(4, 5, 5), torch.zeros(3, 8, 8))


def test_transform_array_matches_tensor_transform():
    from isplab.data.datasets import to_float, transform_array

    arr = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    for flags in FLAGS:
        assert torch.equal(to_float(transform_array(arr, **flags)),
                           transform(to_float(arr), **flags))


def test_random_flags_cover_the_eight_symmetries():
    g = torch.Generator().manual_seed(0)
    seen = {tuple(random_flags(g).values()) for _ in range(200)}
    assert len(seen) == 8


# --- patches / determinism -----------------------------------------------------------------


def test_item_generator_is_a_function_of_the_key():
    a = torch.rand(5, generator=item_generator(1, 2, 3))
    assert torch.equal(a, torch.rand(5, generator=item_generator(1, 2, 3)))
    for key in [(1, 2, 4), (1, 3, 3), (2, 2, 3)]:
        assert not torch.equal(a, torch.rand(5, generator=item_generator(*key)))


def test_random_offsets_even_and_inside():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        y, x = random_offsets(21, 30, 8, 10, g)
        assert y % 2 == 0 and x % 2 == 0 and y + 8 <= 21 and x + 10 <= 30
    with pytest.raises(InvalidInputError, match="does not fit"):
        random_offsets(5, 5, 6, 6)


def test_paired_random_crop_alignment():
    rgb = _rgb(16, 20)
    packed = pack(mosaic(rgb, "RGGB"), "RGGB")
    raw, tgt = paired_random_crop(packed, rgb, 6, torch.Generator().manual_seed(3))
    assert raw.shape[-2:] == (3, 3) and tgt.shape[-2:] == (6, 6)
    assert torch.equal(raw, pack(mosaic(tgt, "RGGB"), "RGGB"))


def _small_demosaic(**kw):
    need(CBSD)
    return DemosaicDataset(CBSD, patch=32, noise="random", seed=5, **kw)


def test_same_items_with_0_and_2_workers():
    ds = _small_demosaic()
    subset = torch.utils.data.Subset(ds, range(8))
    subset.set_epoch = ds.set_epoch
    batches = {}
    for workers in (0, 2):
        # forkserver: this pytest process holds objects of hundreds of earlier tests (ORT
        # sessions, thread pools) whose finalizers, run in a forked worker, hung it on a lock
        loader = make_loader(subset, batch_size=4, workers=workers, shuffle=True, seed=1,
                             start_method="forkserver")
        set_epoch(loader, 3)
        batches[workers] = list(loader)
    assert [b["name"] for b in batches[0]] == [b["name"] for b in batches[2]]
    for a, b in zip(batches[0], batches[2], strict=True):
        assert torch.equal(a["raw"], b["raw"]) and torch.equal(a["target"], b["target"])
    # the same item read directly, epoch 3
    ds.set_epoch(3)
    first = batches[0][0]
    idx = [i for i in range(8) if ds.files[i].stem == first["name"][0]][0]
    assert torch.equal(ds[idx]["raw"], first["raw"][0])


def test_epoch_changes_items_and_val_split_ignores_it():
    ds = _small_demosaic()
    a = ds[0]["raw"]
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0]["raw"])
    ds.set_epoch(0)
    assert torch.equal(a, ds[0]["raw"])
    val = _small_demosaic(split="val", val_fraction=0.1)
    v0 = val[0]["raw"]
    val.set_epoch(7)
    assert torch.equal(v0, val[0]["raw"])


def test_split_files_deterministic_and_disjoint(tmp_path):
    files = [tmp_path / f"{i:03d}.png" for i in range(20)]
    tr, va = split_files(files, "train", 0.2), split_files(files, "val", 0.2)
    assert len(va) == 4 and set(tr).isdisjoint(va) and set(tr) | set(va) == set(files)
    assert split_files(list(reversed(files)), "val", 0.2) == list(reversed(va))


def test_make_loader_errors():
    with pytest.raises(InvalidInputError):
        make_loader([], batch_size=2)
    with pytest.raises(InvalidInputError):
        make_loader([1, 2], batch_size=0)


# --- DemosaicDataset -----------------------------------------------------------------------


def test_demosaic_dataset_kodak_linear_and_srgb():
    from isplab.classic import srgb_to_linear

    need(KODAK)
    lin = DemosaicDataset(KODAK, patch=64, space="linear", cfa="GRBG", augment=False)
    srgb = DemosaicDataset(KODAK, patch=64, space="srgb", cfa="GRBG", augment=False)
    assert len(lin) == 24
    a, b = lin[3], srgb[3]
    assert a["raw"].shape == (4, 32, 32) and a["target"].shape == (3, 64, 64)
    assert a["raw"].dtype == torch.float32 and 0 <= a["raw"].min() and a["raw"].max() <= 1
    # the same crop, in two spaces; raw is the target sampled with GRBG, packed R, G1, G2, B
    assert torch.allclose(a["target"], srgb_to_linear(b["target"]), atol=1e-6)
    assert torch.equal(a["raw"], pack(mosaic(a["target"][None], "GRBG"), "GRBG")[0])
    assert torch.equal(a["raw"][0], a["target"][0, 0::2, 1::2])  # red of GRBG at (0, 1)
    full = DemosaicDataset(KODAK, patch=None, space="srgb")
    assert full[0]["target"].shape[-2:] in ((512, 768), (768, 512))


def test_demosaic_dataset_noise_and_map():
    need(KODAK)
    clean = DemosaicDataset(KODAK, patch=64, augment=False)[0]
    noisy = DemosaicDataset(KODAK, patch=64, augment=False, noise=(0.01, 1e-4))[0]
    d = noisy["raw"] - clean["raw"]
    assert 0.02 < float(d.std()) < 0.12
    assert torch.allclose(noisy["noise_map"], noisy["raw"] * 0.01 + 1e-4)
    with pytest.raises(InvalidInputError, match="noise"):
        DemosaicDataset(KODAK, noise="lots")


# --- RGBPairDataset -----------------------------------------------------------------------


def test_rgb_pairs_sidd_and_city100():
    need(DATA / "sidd_srgb_pairs")
    sidd = RGBPairDataset(DATA / "sidd_srgb_pairs", patch=48, seed=2)
    assert sidd.layout == "sidd" and len(sidd) == 12
    item = sidd[0]
    assert item["input"].shape == item["target"].shape == (3, 48, 48)
    from isplab.metrics import psnr

    assert 10 < float(psnr(item["input"][None], item["target"][None])) < 45
    city = RGBPairDataset(DATA / "city100_iphonex_lr_hr_pairs", patch=64)
    assert city.layout == "city100" and len(city) == 10
    name, inp, tgt = city.pairs[0]
    assert inp.name.upper().endswith("L.PNG") and tgt.name.upper().endswith("H.PNG")
    full = RGBPairDataset(DATA / "city100_iphonex_lr_hr_pairs")[0]
    assert full["input"].shape == (3, 600, 840)


def test_rgb_pairs_folders_and_errors(tmp_path):
    img = _rgb(8, 10)[0]
    for d in ("input", "target"):
        write_image(tmp_path / d / "a.png", img)
    write_image(tmp_path / "input" / "b.png", img)
    with pytest.raises(InvalidInputError, match="unmatched pairs: input without target: b"):
        RGBPairDataset(tmp_path)
    write_image(tmp_path / "target" / "b.png", _rgb(8, 12)[0])
    ds = RGBPairDataset(tmp_path)
    assert ds.layout == "folders" and torch.allclose(ds[0]["input"], img, atol=1 / 255)
    with pytest.raises(InvalidInputError, match="differ in size"):
        ds[1]
    (tmp_path / "empty" / "input").mkdir(parents=True)
    (tmp_path / "empty" / "target").mkdir()
    with pytest.raises(InvalidInputError, match="no images"):
        RGBPairDataset(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="no such folder"):
        RGBPairDataset(tmp_path / "nope")


# --- PairedRawRGBDataset ------------------------------------------------------------------


def _write_zrr(root, n=2, size=16, seed=0):
    """A tiny fake ZRR folder: 10-bit RGGB mosaics as 16-bit grey PNG + 8-bit JPGs."""
    rng = np.random.default_rng(seed)
    (root / "huawei_raw").mkdir(parents=True)
    (root / "canon").mkdir()
    mosaics = []
    for i in range(n):
        m = rng.integers(0, 1024, (size, size), dtype=np.uint16)
        cv2.imwrite(str(root / "huawei_raw" / f"{i}.png"), m)
        cv2.imwrite(str(root / "canon" / f"{i}.jpg"),
                    rng.integers(0, 256, (2 * (size // 2), 2 * (size // 2), 3), dtype=np.uint8))
        mosaics.append(m)
    return mosaics


def test_zrr_layout_packing_and_black_level(tmp_path):
    mosaics = _write_zrr(tmp_path)
    ds = PairedRawRGBDataset(tmp_path)
    assert ds.layout == "zrr" and len(ds) == 2
    item = ds[1]
    m = mosaics[1].astype(np.float32)
    assert item["raw"].shape == (4, 8, 8) and item["target"].shape == (3, 16, 16)
    # ZRR is RGGB: R = raw[0::2, 0::2], G1 = raw[0::2, 1::2], G2 = raw[1::2, 0::2],
    # B = raw[1::2, 1::2] (PyNET's B, Gb, R, Gr reordered), divided by 1020, no black level
    hand = np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]])
    np.testing.assert_allclose(item["raw"].numpy(), np.clip(hand / 1020, 0, 1), atol=1e-6)
    jpg = cv2.imread(str(tmp_path / "canon" / "1.jpg"))[..., ::-1]
    np.testing.assert_allclose(item["target"].permute(1, 2, 0).numpy(), jpg / 255, atol=1e-6)
    lite = PairedRawRGBDataset(tmp_path, layout="zrr", black_level=63)[1]
    np.testing.assert_allclose(lite["raw"].numpy(),
                               np.clip((hand - 63) / (1020 - 63), 0, 1), atol=1e-6)
    # patches with Bayer-preserving augmentation stay consistent with the full frame
    crops = PairedRawRGBDataset(tmp_path, patch=8, patches_per_image=3, seed=1)
    assert len(crops) == 6
    for k in range(6):
        c = crops[k]
        assert c["raw"].shape == (4, 4, 4) and c["target"].shape == (3, 8, 8)
    batch = next(iter(make_loader(crops, batch_size=3, workers=0)))
    assert batch["raw"].shape == (3, 4, 4, 4) and len(batch["name"]) == 3


def test_paired_augment_moves_target_with_raw(tmp_path):
    """Raw made from the target (mosaic of the JPEG): the pair must stay consistent."""
    rng = np.random.default_rng(3)
    (tmp_path / "raw").mkdir()
    rgb = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    write_image(tmp_path / "rgb" / "x.png", rgb)
    m = mosaic(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), "GBRG")[0, 0]
    cv2.imwrite(str(tmp_path / "raw" / "x.png"), m.numpy().astype(np.uint16))
    ds = PairedRawRGBDataset(tmp_path, layout="folders", cfa="GBRG", white_level=255,
                             patch=10, patches_per_image=16)
    for k in range(16):
        it = ds[k]
        expected = pack(mosaic(it["target"][None], "GBRG"), "GBRG")[0]  # the sensor's geometry
        assert torch.allclose(it["raw"], expected, atol=1e-6)


def test_isplab_layout_from_written_files(tmp_path):
    rng = np.random.default_rng(4)
    packed = rng.integers(64, 4096, (8, 10, 4), dtype=np.uint16)  # 12-bit, R, G1, G2, B
    (tmp_path / "raw").mkdir()
    cv2.imwrite(str(tmp_path / "raw" / "000.png"), packed[..., [2, 1, 0, 3]])  # BGRA on disk
    target = torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "rgb" / "000.png", target, bits=16)
    meta = {"black_level": 64, "white_level": 4095, "bit_depth": 12, "cfa": "RGGB",
            "noise": {"shot": 0.01, "read": 0.0005}}
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "000.json").write_text(json.dumps(meta))
    ds = PairedRawRGBDataset(tmp_path)
    assert ds.layout == "isplab"
    it = ds[0]
    expected = (packed.astype(np.float32) - 64) / (4095 - 64)
    np.testing.assert_allclose(it["raw"].numpy(), expected.transpose(2, 0, 1), atol=1e-6)
    assert torch.allclose(it["target"], target, atol=0.6 / 65535)
    (tmp_path / "meta" / "000.json").unlink()
    with pytest.raises(InvalidInputError, match="meta/ lacks"):
        PairedRawRGBDataset(tmp_path, layout="isplab")


def test_paired_errors(tmp_path):
    _write_zrr(tmp_path / "z", n=3)
    (tmp_path / "z" / "canon" / "2.jpg").unlink()
    with pytest.raises(InvalidInputError, match="huawei_raw without canon: 2"):
        PairedRawRGBDataset(tmp_path / "z")
    (tmp_path / "z" / "huawei_raw" / "2.png").unlink()
    cv2.imwrite(str(tmp_path / "z" / "canon" / "1.jpg"), np.zeros((10, 16, 3), np.uint8))
    ds = PairedRawRGBDataset(tmp_path / "z")
    with pytest.raises(InvalidInputError, match="twice the packed raw") as err:
        ds[1]
    assert err.value.path.name == "1.jpg"
    with pytest.raises(InvalidInputError, match="cannot tell the layout"):
        PairedRawRGBDataset(tmp_path)
    with pytest.raises(InvalidInputError, match="missing folder raw/"):
        PairedRawRGBDataset(tmp_path, layout="folders")
    with pytest.raises(InvalidInputError, match="needs a patch"):
        PairedRawRGBDataset(tmp_path / "z", augment=True)


# --- SyntheticRawDataset ------------------------------------------------------------------


def test_default_synthetic_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("ISPLAB_DATA", str(tmp_path))
    with pytest.raises(InvalidInputError, match="ISPLAB_DATA"):
        default_synthetic_folders()
    (tmp_path / "wikipedia_photos49").mkdir()
    (tmp_path / "cbsd68").mkdir()
    assert default_synthetic_folders() == [tmp_path / "wikipedia_photos49", tmp_path / "cbsd68"]


@pytest.mark.skipif(not HAS_SYNTH_NOISE, reason="isplab.synth.noise not available yet")
def test_synthetic_raw_dataset_cbsd68():
    from isplab.synth.unprocess import process

    need(CBSD)
    ds = SyntheticRawDataset(CBSD, patch=64, seed=3, noise_map=True)
    val = SyntheticRawDataset(CBSD, patch=64, seed=3, split="val")
    assert len(ds) + len(val) == 68 and not set(ds.files) & set(val.files)
    it = ds[0]
    assert it["raw"].shape == (4, 32, 32) and it["target"].shape == (3, 64, 64)
    assert it["raw"].dtype == it["target"].dtype == torch.float32
    assert 0 <= it["raw"].min() and it["raw"].max() <= 1 and it["noise_map"].shape == (4, 32, 32)
    assert torch.equal(ds[0]["raw"], it["raw"])  # deterministic
    # clean synthetic raw processed with its metadata comes back close to the target
    clean = SyntheticRawDataset(CBSD, patch=64, seed=3, noise=False, augment=False)
    c = clean[0]
    keys = ("rgb_to_cam", "cam_to_rgb", "rgb_gain", "red_gain", "blue_gain")
    back = process(c["raw"], {**{k: c[k].tolist() for k in keys}, "cfa": "RGGB"})
    assert back.shape == (3, 64, 64)
    from isplab.classic import demosaic_bilinear
    from isplab.metrics import psnr

    # only demosaicing error is left: close to bilinear demosaicing of the sRGB mosaic
    ours = float(psnr(back[None], c["target"][None]))
    base = float(psnr(demosaic_bilinear(mosaic(c["target"][None]), "RGGB"), c["target"][None]))
    assert ours > base - 5
    batch = next(iter(make_loader(ds, batch_size=4, workers=0)))
    assert batch["raw"].shape == (4, 4, 32, 32) and len(batch["name"]) == 4


@pytest.mark.skipif(not HAS_SYNTH_NOISE, reason="isplab.synth.noise not available yet")
def test_synthetic_same_with_0_and_2_workers_and_epochs():
    need(CBSD)
    ds = SyntheticRawDataset(CBSD, patch=32, seed=9, split="all")
    sub = torch.utils.data.Subset(ds, range(6))
    sub.set_epoch = ds.set_epoch
    out = {}
    for workers in (0, 2):
        loader = make_loader(sub, batch_size=3, workers=workers, seed=4,
                             start_method="forkserver")  # see test_same_items_with_0_and_2_workers
        set_epoch(loader, 2)
        out[workers] = list(loader)
    for a, b in zip(out[0], out[2], strict=True):
        assert a["name"] == b["name"]
        for k in ("raw", "target", "cam_to_rgb", "shot"):
            assert torch.equal(a[k], b[k]), k
    e2 = ds[0]["raw"].clone()
    ds.set_epoch(3)
    assert not torch.equal(e2, ds[0]["raw"])


@pytest.mark.skipif(not HAS_SYNTH_WRITER, reason="isplab.synth.writer not available yet")
@pytest.mark.parametrize("raw_format", ["png", "dng"])
def test_isplab_layout_reads_synthesize_dataset_back(tmp_path, raw_format):
    from isplab.io import read_image
    from isplab.synth.writer import pair_seed, synthesize_dataset, synthesize_pair

    src = tmp_path / "photo.png"
    write_image(src, _rgb(40, 48, seed=7)[0])
    synthesize_dataset([src], tmp_path / "out", patch=32, per_image=2, bit_depth=12,
                       raw_format=raw_format, cfa="GRBG", seed=5)
    ds = PairedRawRGBDataset(tmp_path / "out", noise_map=True)
    assert ds.layout == "isplab" and len(ds) == 2
    photo = read_image(src)[0]
    for k in range(2):
        item = ds[k]
        raw, target, meta = synthesize_pair(photo, pair_seed(5, "photo", k), "GRBG", True,
                                            1.0, 12, 32)
        assert item["name"] == f"photo_{k:03d}"
        # the written raw is the degraded raw on the 12-bit grid: read back to float rounding
        assert torch.allclose(item["raw"], raw.float(), atol=1e-6)
        assert torch.equal(item["target"], read_image(tmp_path / "out" / "rgb" /
                                                      f"photo_{k:03d}.png")[0])
        assert torch.allclose(item["target"], target, atol=0.51 / 65535)
        assert torch.allclose(item["noise_map"], item["raw"] * meta["shot"] + meta["read"])
    # Bayer-preserving crops of the written pairs follow the sensor's GRBG geometry
    crops = PairedRawRGBDataset(tmp_path / "out", patch=16, patches_per_image=4)
    assert crops[3]["raw"].shape == (4, 8, 8) and crops[3]["target"].shape == (3, 16, 16)


def test_degraded_pair_dataset_is_deterministic_and_degrades():
    from isplab.data import create_dataset

    folder = DATA / "cbsd68"
    need(folder)
    ds = create_dataset("degraded_pairs", folders=[folder], patch=64, seed=3)
    a, b = ds[5], ds[5]
    assert torch.equal(a["input"], b["input"]) and a["input"].shape == (3, 64, 64)
    assert float((a["input"] - a["target"]).abs().mean()) > 0.01
    clean = create_dataset("degraded_pairs", folders=[folder], patch=64, seed=3, domains=())
    assert torch.equal(clean[5]["input"], clean[5]["target"])
    he = create_dataset("degraded_pairs", folders=[folder], patch=64, seed=3, target_he=True)
    assert not torch.equal(he[5]["target"], a["target"])
    with pytest.raises(InvalidInputError, match="unknown domains"):
        create_dataset("degraded_pairs", folders=[folder], domains=("rain",))
