"""``isplab align --jobs N --shard K/N``: the same dataset as one process, every pair in
exactly one shard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from isplab.cli import app
from isplab.commands.align import shard_pairs
from isplab.data.align import pair_files
from isplab.data.align_synth import synthetic_pair
from isplab.raw import write_dng

from .test_align import photo

runner = CliRunner()


def test_shards_cover_every_pair_exactly_once():
    phones = [Path(f"phone/{i:03d}.dng") for i in range(40)] + [Path("other/007.dng")]
    refs = [Path(f"dslr/{i:03d}.png") for i in range(0, 44, 1)]
    pairs, lonely = pair_files(phones, refs, "name")
    assert len(pairs) == 41 and len(lonely) == 4  # 040..043 have no phone raw
    for n in (1, 2, 3, 7):
        shards = [shard_pairs(pairs, lonely, (k, n)) for k in range(1, n + 1)]
        got = [p for s, _ in shards for p in s]
        assert sorted(got) == sorted(pairs) and len(got) == len(pairs)
        assert sorted(x for _, lo in shards for x in lo) == sorted(lonely)
        for s, _ in shards:  # both raws named 007 in one shard: their ids would collide
            assert sum(p.stem == "007" for p, _ in s) in (0, 2)
            assert s == [p for p in pairs if p in s]  # input order kept
    assert shard_pairs(pairs, lonely, None) == (pairs, lonely)


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("align_batch")
    (d / "phone").mkdir()
    (d / "dslr").mkdir()
    for stem, name, seed in (("a", "007", 4), ("b", "001", 5)):
        pair = synthetic_pair(photo(name), scale=1.5, rotation_deg=1.0, cfa="RGGB", seed=seed)
        write_dng(d / "phone" / f"{stem}.dng", pair.raw)
        cv2.imwrite(str(d / "dslr" / f"{stem}.png"),
                    (pair.reference[..., ::-1] * 255 + 0.5).astype(np.uint8))
    return d


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for sub in ("raw", "rgb", "meta") for p in sorted((folder / sub).iterdir())}


def _rows(*paths: Path) -> list[dict]:
    return sorted((row for p in paths for row in csv.DictReader(p.open())),
                  key=lambda r: (r["pair"], r["id"]))


def _untimed(summary: Path) -> list[dict]:
    """The entries of a summary without their timings (seconds, cpu_seconds)."""
    entries = json.loads(summary.read_text())["entries"]
    for e in entries:
        e.pop("seconds", None)
        for key in ("seconds", "cpu_seconds"):
            e.get("stats", {}).pop(key, None)
    return entries


def test_jobs_and_shards_write_the_dataset_of_one_process(two_pairs, tmp_path):
    d = two_pairs
    args = [str(d / "phone"), "-r", str(d / "dslr"), "--patch", "256",
            "--min-correlation", "0.7", "-q"]
    one, many, sharded = tmp_path / "one", tmp_path / "many", tmp_path / "sharded"
    res = runner.invoke(app, ["align", *args, "-o", str(one), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads((one / "summary.json").read_text())["aligned"] == 2
    res = runner.invoke(app, ["align", *args, "-o", str(many), "--jobs", "2"])
    assert res.exit_code == 0, res.output
    for k in (1, 2):
        res = runner.invoke(app, ["align", *args, "-o", str(sharded), "--shard", f"{k}/2"])
        assert res.exit_code == 0, res.output
    reference = _files(one)
    assert reference and _files(many) == reference and _files(sharded) == reference
    assert (many / "patches.csv").read_text() == (one / "patches.csv").read_text()
    assert _untimed(many / "summary.json") == _untimed(one / "summary.json")
    summaries = [json.loads((sharded / f"summary-{k}-of-2.json").read_text()) for k in (1, 2)]
    assert sum(s["pairs"] for s in summaries) == 2 and not (sharded / "summary.json").exists()
    assert _rows(sharded / "patches-1-of-2.csv", sharded / "patches-2-of-2.csv") == \
        _rows(one / "patches.csv")
