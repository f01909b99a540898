"""isplab evaluate: protocols, methods, the table and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from isplab.classic import demosaic
from isplab.errors import InvalidInputError
from isplab.evaluate import (
    evaluate,
    in_shard,
    markdown_table,
    merge_results,
    protocol_items,
    resolve_method,
)
from isplab.io import read_image
from isplab.metrics import psnr
from isplab.metrics.functional import crop_border
from isplab.raw.cfa import mosaic
from tests.conftest import DATA, need

KODAK = DATA / "kodak24"
HARD = DATA / "demosaicnet_hard_patches"


def test_demosaic_protocol_matches_a_direct_computation():
    need(KODAK)
    r = evaluate(["classic:malvar2004"], "demosaic", KODAK, metrics=["psnr"], limit=2)
    assert r["border"] == 8 and r["images"] == ["kodim01.png", "kodim02.png"]
    values = r["methods"]["classic:malvar2004"]["psnr"]["per_image"]
    for name, v in zip(r["images"], values, strict=True):
        img = read_image(KODAK / name)
        out = demosaic(mosaic(img, "RGGB"), "RGGB", "malvar2004")
        ref = psnr(crop_border(out.clamp(0, 1), 8), crop_border(img, 8))
        assert v == pytest.approx(float(ref), abs=1e-4)
    agg = r["methods"]["classic:malvar2004"]["psnr"]
    assert agg["mean"] == pytest.approx(sum(values) / 2)


def test_noise_lowers_the_score_and_is_seeded():
    need(KODAK)
    clean = evaluate(["classic"], "demosaic", KODAK, metrics=["psnr"], limit=1)
    noisy = evaluate(["classic"], "demosaic", KODAK, metrics=["psnr"], limit=1, noise=0.05)
    again = evaluate(["classic"], "demosaic", KODAK, metrics=["psnr"], limit=1, noise=0.05)
    c, n, a = (x["methods"]["classic:bilinear"]["psnr"]["mean"] for x in (clean, noisy, again))
    assert n < c - 1
    assert a == n


def test_demosaicnet_peer_is_phase_correct():
    need(HARD)
    pytest.importorskip("demosaicnet")
    r = evaluate(["classic", "demosaicnet"], "demosaic", HARD, metrics=["psnr"], limit=3)
    ours = r["methods"]["classic:bilinear"]["psnr"]["mean"]
    peer = r["methods"]["demosaicnet"]["psnr"]["mean"]
    # with a wrong CFA phase demosaicnet falls far below bilinear; in phase it beats it
    assert peer > ours + 3


def test_items_are_even_sized_and_packed():
    need(KODAK)
    item = next(protocol_items("demosaic", KODAK, limit=1))
    assert item["packed"].shape == (1, 4, 256, 384)
    assert item["target"].shape == (1, 3, 512, 768)


def test_errors_are_clear(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown protocol"):
        next(protocol_items("nope", tmp_path))
    with pytest.raises(InvalidInputError, match="no images"):
        next(protocol_items("demosaic", tmp_path))
    with pytest.raises(InvalidInputError, match="unknown demosaic"):
        resolve_method("classic:magic", "demosaic")
    with pytest.raises(InvalidInputError, match="unknown method"):
        resolve_method("not_a_model", "demosaic")


def test_table_and_cli(tmp_path):
    need(KODAK)
    r = evaluate(["classic", "classic:malvar2004"], "demosaic", KODAK, metrics=["psnr", "ssim"],
                 limit=1)
    table = markdown_table(r)
    assert table.splitlines()[0].startswith("| method | psnr mean / median | ssim")
    assert len(table.splitlines()) == 4
    from isplab.cli import app

    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["evaluate", "-m", "classic", "-m", "classic:malvar2004",
                                   "-p", "demosaic", "--data", str(KODAK), "--limit", "1",
                                   "--metrics", "psnr", "--json", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "classic:malvar2004" in res.output
    saved = json.loads(out.read_text())
    assert saved["methods"]["classic:bilinear"]["psnr"]["mean"] == pytest.approx(
        r["methods"]["classic:bilinear"]["psnr"]["mean"])
    res = CliRunner().invoke(app, ["evaluate", "-m", "classic", "-p", "paired"])
    assert res.exit_code == 2 and "needs --data" in res.output
    assert torch.is_tensor(read_image(KODAK / "kodim01.png"))


def test_synthetic_isp_protocol_with_true_metadata():
    need(KODAK)
    r = evaluate(["classic", "classic:malvar2004"], "synthetic-isp", KODAK, metrics=["psnr"],
                 limit=2)
    bil = r["methods"]["classic:bilinear"]["psnr"]["mean"]
    mal = r["methods"]["classic:malvar2004"]["psnr"]["mean"]
    assert 22 < bil < mal  # same raw, better demosaic
    assert "true WB" in r["methods"]["classic:bilinear"]["note"]
    again = evaluate(["classic"], "synthetic-isp", KODAK, metrics=["psnr"], limit=2)
    assert again["methods"]["classic:bilinear"]["psnr"]["mean"] == bil  # seeded raws
    noisy = evaluate(["classic"], "synthetic-isp", KODAK, metrics=["psnr"], limit=2, noise=1)
    assert noisy["methods"]["classic:bilinear"]["psnr"]["mean"] < bil


def test_rgb_pairs_protocol_scores_the_real_pairs():
    sidd = DATA / "sidd_srgb_pairs"
    need(sidd)
    r = evaluate(["identity"], "rgb-pairs", sidd, metrics=["psnr"], limit=3)
    assert len(r["images"]) == 3
    assert 15 < r["methods"]["identity"]["psnr"]["mean"] < 35  # noisy vs clean
    with pytest.raises(InvalidInputError, match="rgb-pairs"):
        evaluate(["classic"], "rgb-pairs", sidd, metrics=["psnr"], limit=1)


def test_model_method_with_weights(tmp_path):
    need(KODAK)
    from isplab.models import create_model, save_weights

    torch.manual_seed(0)
    w = save_weights(create_model("microisp"), tmp_path / "m.safetensors")
    r = evaluate([f"microisp={w}"], "synthetic-isp", KODAK, metrics=["psnr"], limit=1)
    m = r["methods"]["microisp"]
    assert m["parameters"] == 13_560 and "weights" in m["note"]


# --- peers, noise profiles, the learned stage ---------------------------------------------


def test_noise_spec_parsing():
    from isplab.evaluate import parse_noise

    assert parse_noise(0) is None and parse_noise("0") is None and parse_noise(None) is None
    assert parse_noise(0.05) == (0.0, pytest.approx(0.0025))
    assert parse_noise("0.01,0.0004") == (0.01, 0.0004)
    for bad in ("abc", "-1", "1,2,3", "nan,1"):
        with pytest.raises(InvalidInputError):
            parse_noise(bad)


def test_classical_peers_are_phase_correct_and_declare_their_input(tmp_path):
    need(HARD)
    pytest.importorskip("pyeari")
    r = evaluate(["classic", "libraw:ahd", "ri"], "demosaic", HARD, metrics=["psnr"],
                 limit=3)
    ours = r["methods"]["classic:bilinear"]["psnr"]["mean"]
    for peer in ("libraw:ahd", "ri"):
        assert r["methods"][peer]["psnr"]["mean"] > ours + 1, peer  # out of phase: far below
    with pytest.raises(InvalidInputError, match="ri needs mosaic, which protocol "
                                                "synthetic-isp does not give"):
        evaluate(["ri"], "synthetic-isp", HARD, limit=1)


def test_denoisers_after_a_method_use_the_noise_profile(tmp_path):
    need(HARD)
    noise = "0.004,0.0001"
    r = evaluate(["classic:malvar2004", "classic:malvar2004+bilateral"], "demosaic", HARD,
                 metrics=["psnr"], limit=2, noise=noise)
    plain = r["methods"]["classic:malvar2004"]["psnr"]["mean"]
    assert r["methods"]["classic:malvar2004+bilateral"]["psnr"]["mean"] > plain + 0.5
    clean = evaluate(["classic:malvar2004", "classic:malvar2004+bilateral"], "demosaic", HARD,
                     metrics=["psnr"], limit=1)["methods"]
    assert clean["classic:malvar2004"] == {**clean["classic:malvar2004+bilateral"],
                                           "note": clean["classic:malvar2004"]["note"],
                                           "mp_per_s": clean["classic:malvar2004"]["mp_per_s"],
                                           "seconds": clean["classic:malvar2004"]["seconds"]}


def test_generalised_anscombe_round_trip_and_bm3d_peer():
    import numpy as np

    from isplab.evaluate.methods import gat, inverse_gat

    rng = np.random.default_rng(0)
    shot, read = 0.012, 6e-4
    for level in (0.01, 0.05, 0.3):  # a few photons to many: Poisson-Gaussian data
        z = rng.poisson(level / shot, 400_000) * shot + rng.normal(0, np.sqrt(read), 400_000)
        y = gat(z, shot, read)
        assert np.std(y) == pytest.approx(1.0, rel=0.16)  # variance stabilised
        # the exact unbiased inverse takes E[gat(z)] back to the signal (the algebraic
        # inverse is a third off at 0.01)
        assert inverse_gat(np.array([y.mean()]), shot, read)[0] == pytest.approx(level, rel=0.03)
    pytest.importorskip("bm3d")
    need(HARD)
    r = evaluate(["classic:malvar2004", "classic:malvar2004+bm3d", "bm3d+classic:malvar2004"],
                 "demosaic", HARD, metrics=["psnr"], limit=1, noise="0.004,0.0001")["methods"]
    alone = r["classic:malvar2004"]["psnr"]["mean"]
    assert r["classic:malvar2004+bm3d"]["psnr"]["mean"] > alone + 1
    assert r["bm3d+classic:malvar2004"]["psnr"]["mean"] > alone + 1  # BM3D on the mosaic
    with pytest.raises(InvalidInputError, match="alone"):
        evaluate(["bm3d+classic:learned"], "demosaic", HARD, limit=1, noise="0.004,0.0001")


def test_learned_stage_is_evaluated_with_its_noise_map(tmp_path):
    """``classic:learned=W`` and the bare zoo name both run jdd_net on the balanced mosaic
    and the protocol's noise profile; an untrained jdd_net is the bilinear demosaic."""
    need(HARD)
    from isplab.models import create_model, save_weights

    w = save_weights(create_model("jdd_net", widths=(8, 8, 8)), tmp_path / "jdd.safetensors")
    r = evaluate(["classic", f"classic:learned={w}", f"jdd_net={w}"], "demosaic", HARD,
                 metrics=["psnr"], limit=2)["methods"]
    bilinear = r["classic:bilinear"]["psnr"]["per_image"]
    assert r["classic:learned"]["psnr"]["per_image"] == pytest.approx(bilinear, abs=1e-3)
    assert r["jdd_net"]["psnr"]["per_image"] == pytest.approx(bilinear, abs=1e-3)
    noisy = evaluate([f"classic:learned={w}"], "synthetic-isp", HARD, metrics=["psnr"], limit=1,
                     noise="0.01,0.0002")
    assert noisy["methods"]["classic:learned"]["psnr"]["mean"] > 10


# --- shards on many machines, merged --------------------------------------------------------

SHARD_RUN = ["evaluate", "-m", "classic", "-m", "classic:malvar2004", "-p", "demosaic",
             "--data", str(HARD), "--limit", "7", "--metrics", "psnr", "-q"]


def _table(output: str) -> list[list[str]]:
    """The printed table's rows, without the MP/s column (timings differ run to run)."""
    rows = [line.split("|")[1:-1] for line in output.splitlines() if line.startswith("|")]
    return [[c.strip() for i, c in enumerate(r) if i != len(r) - 2] for r in rows]


def test_shards_cover_every_item_once_and_merge_to_the_unsharded_table(tmp_path):
    need(HARD)
    from isplab.cli import app

    runner = CliRunner()
    whole = runner.invoke(app, [*SHARD_RUN, "--json", str(tmp_path / "all.json")])
    assert whole.exit_code == 0, whole.output
    full = json.loads((tmp_path / "all.json").read_text())
    assert full["shard"] is None and full["indices"] == list(range(7))
    files = []
    for k in (1, 2, 3):
        files.append(str(tmp_path / f"s{k}.json"))
        res = runner.invoke(app, [*SHARD_RUN, "--shard", f"{k}/3", "--json", files[-1]])
        assert res.exit_code == 0, res.output
        assert f"shard {k}/3 of 7" in res.output
    shards = [json.loads(open(f).read()) for f in files]
    names = [n for r in shards for n in r["images"]]
    assert sorted(names) == sorted(full["images"]) and len(names) == 7  # each exactly once
    for k, r in enumerate(shards, 1):
        assert r["shard"] == [k, 3]
        assert all(in_shard(n, (k, 3)) for n in r["images"])
        assert [full["images"][i] for i in r["indices"]] == r["images"]
    merged = runner.invoke(app, ["evaluate", "--merge", *files[::-1], "--json",
                                 str(tmp_path / "m.json")])
    assert merged.exit_code == 0, merged.output
    assert merged.output.splitlines()[0] == whole.output.splitlines()[0]  # the header line
    assert _table(merged.output) == _table(whole.output)
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["images"] == full["images"] and m["indices"] == full["indices"]
    assert m["missing_shards"] == [] and m["shards"] == [[1, 3], [2, 3], [3, 3]]
    for name, ref in full["methods"].items():
        assert m["methods"][name]["psnr"] == ref["psnr"]  # per image, mean, median: equal
        assert m["methods"][name]["megapixels"] == pytest.approx(ref["megapixels"])
        seconds = sum(r["methods"][name]["seconds"] for r in shards)
        assert m["methods"][name]["mp_per_s"] == pytest.approx(ref["megapixels"] / seconds)


def test_an_empty_shard_is_a_result_and_merges():
    need(HARD)
    first = [p.name for p in sorted(HARD.glob("*.png"))[:2]]
    n = 4
    empty = next(k for k in range(1, n + 1) if not any(in_shard(x, (k, n)) for x in first))
    runs = [evaluate(["classic"], "demosaic", HARD, metrics=["psnr"], limit=2, shard=(k, n))
            for k in range(1, n + 1)]
    assert runs[empty - 1]["images"] == [] and runs[empty - 1]["protocol_images"] == 2
    assert "psnr" not in runs[empty - 1]["methods"]["classic:bilinear"]
    assert markdown_table(runs[empty - 1]).count("\n") == 2  # header, rule, one row
    whole = evaluate(["classic"], "demosaic", HARD, metrics=["psnr"], limit=2)
    merged = merge_results(runs)
    assert merged["images"] == whole["images"]
    assert merged["methods"]["classic:bilinear"]["psnr"] == \
        whole["methods"]["classic:bilinear"]["psnr"]
    with pytest.raises(InvalidInputError, match="shard"):
        evaluate(["classic"], "demosaic", HARD, metrics=["psnr"], limit=1, shard=(3, 2))


def test_merge_refuses_mismatched_shards(tmp_path, caplog):
    need(HARD)
    a, b = (evaluate(["classic", "classic:malvar2004"], "demosaic", HARD, metrics=["psnr"],
                     limit=8, shard=(k, 2)) for k in (1, 2))
    assert a["images"] and b["images"]  # both shards hold items (else pick another limit)
    changes = {"protocol": "synthetic-isp", "data": "elsewhere", "noise": 0.05, "seed": 1,
               "metrics": ["psnr", "ssim"], "border": 0, "limit": 5}
    for key, value in changes.items():
        with pytest.raises(InvalidInputError, match=f"^shards of different {key}: "):
            merge_results([a, {**b, key: value}])
    with pytest.raises(InvalidInputError, match="^shards of different methods: "):
        merge_results([a, {**b, "methods": {"classic:bilinear": b["methods"]["classic:bilinear"]}}])
    with pytest.raises(InvalidInputError, match="^shards of different N: "):
        merge_results([a, {**b, "shard": (2, 3)}])
    with pytest.raises(InvalidInputError, match="^shard 1/2 given twice"):
        merge_results([a, a])
    twice = {**b, "images": [*b["images"], a["images"][0]],
             "indices": [*b["indices"], a["indices"][0]]}
    with pytest.raises(InvalidInputError, match=f"^item {a['images'][0]} .* evaluated twice"):
        merge_results([a, twice])
    with caplog.at_level("WARNING", logger="isplab.evaluate"):
        part = merge_results([b])
    assert "shard 1/2 missing" in caplog.text and part["missing_shards"] == ["1/2"]
    assert part["images"] == b["images"]
    from isplab.cli import app

    for name, r in (("a.json", a), ("b.json", {**b, "noise": "0.01"})):
        (tmp_path / name).write_text(json.dumps({k: v for k, v in r.items() if k != "previews"}))
    res = CliRunner().invoke(app, ["evaluate", "--merge", str(tmp_path / "a.json"),
                                   str(tmp_path / "b.json")])
    assert res.exit_code == 2 and "shards of different noise" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["evaluate", "--merge", str(tmp_path / "a.json")])
    assert res.exit_code == 0 and "2/2 missing" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["evaluate", "--merge", "-m", "classic",
                                   str(tmp_path / "a.json")])
    assert res.exit_code == 2 and "--merge takes" in res.output
