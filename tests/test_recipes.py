"""Every recipe in configs/ loads, builds and trains one step per stage on small data.

Paired recipes get a tiny dataset in their layout written here (ZRR, raw/ + rgb/ folders,
the `isplab synth` layout, input/ + target/ sRGB pairs); the *_synth recipes read the real
photos. VGG terms use a random VGG-19 (no weights are downloaded in tests).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from isplab.train import Trainer, load_recipe, stages_of
from tests.conftest import DATA, need

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("_"))
VGG_LOSSES = {"perceptual", "lab_vgg"}


def _zrr(root: Path, size: int = 192) -> Path:
    rng = np.random.default_rng(0)
    (root / "huawei_raw").mkdir(parents=True)
    (root / "canon").mkdir()
    for i in range(2):
        cv2.imwrite(str(root / "huawei_raw" / f"{i}.png"),
                    rng.integers(0, 1021, (size, size), dtype=np.uint16))
        cv2.imwrite(str(root / "canon" / f"{i}.jpg"),
                    rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def _folders(root: Path, size: int = 192) -> Path:
    rng = np.random.default_rng(1)
    (root / "raw").mkdir(parents=True)
    (root / "rgb").mkdir()
    for i in range(2):
        cv2.imwrite(str(root / "raw" / f"{i}.png"),
                    rng.integers(0, 4096, (size, size), dtype=np.uint16))
        cv2.imwrite(str(root / "rgb" / f"{i}.png"),
                    rng.integers(0, 65536, (size, size, 3), dtype=np.uint16))
    return root


def _rgb_pairs(root: Path, size: int = 64) -> Path:
    rng = np.random.default_rng(2)
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / sub / f"{i}.png"),
                        rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def _isplab(root: Path) -> Path:
    from isplab.synth.writer import synthesize_dataset

    photos = sorted((DATA / "cbsd68").glob("*.png"))[:2]
    synthesize_dataset(photos, root, patch=96, per_image=1, seed=0)
    return root


def _small(recipe_path: Path, tmp: Path) -> dict:
    base = load_recipe(recipe_path)
    sets = ["train.steps=1", "train.log_every=1", "train.tensorboard=false",
            "data.train.batch_size=1", "data.train.workers=0", "data.val=null"]
    for i, _ in enumerate(base.get("stages") or []):
        sets += [f"stages.{i}.steps=1", f"stages.{i}.batch_size=1"]
    losses = set()
    for st in stages_of(base):
        losses |= {v.get("loss", k) if isinstance(v, dict) else k for k, v in st["losses"].items()}
    for name in VGG_LOSSES & losses:
        sets.append(f"loss_options.{name}.random_init=true")
    spec = base["data"]["train"]
    args = spec.get("args") or {}
    if spec["dataset"] == "synthetic_raw":
        need(DATA / "cbsd68")
        big = any("ms_ssim_loss" in st["losses"] or "lab_loss" in st["losses"]
                  or "lab_vgg" in st["losses"] for st in stages_of(base))
        sets += [f"data.train.args.patch={192 if big else 64}",
                 f"data.train.args.folders=[{DATA / 'cbsd68'}]"]
    elif spec["dataset"] == "degraded_pairs":
        need(DATA / "cbsd68")
        sets += [f"data.train.args.folders=[{DATA / 'cbsd68'}]", "data.train.args.patch=64",
                 "data.train.args.cache=false"]
    elif spec["dataset"] == "domains":
        need(DATA / "cbsd68")
        sets += [f"data.train.args.folders=[{DATA / 'cbsd68'}]", "data.train.args.patch=64",
                 "data.train.args.cache=false"]
        if (base.get("objective") or {}).get("intrinsic_weights"):
            from isplab.models import create_model, save_weights

            w = save_weights(create_model("intrinsic_net"), tmp / "intrinsic.safetensors")
            sets.append(f"objective.intrinsic_weights={w}")
    elif spec["dataset"] == "demosaic":
        need(DATA / "cbsd68")
        sets += [f"data.train.args.folders=[{DATA / 'cbsd68'}]", "data.train.args.patch=64"]
    elif spec["dataset"] == "paired_raw_rgb":
        layout = args.get("layout")
        root = {"zrr": _zrr, "folders": _folders, "isplab": _isplab}[layout](tmp / "data")
        sets += [f"data.train.args.root={root}", "data.train.args.patch=null"]
    elif spec["dataset"] == "rgb_pairs":
        sets += [f"data.train.args.root={_rgb_pairs(tmp / 'data')}",
                 "data.train.args.patch=null"]
    return load_recipe(recipe_path, sets)


def test_there_is_a_recipe_per_paper_setting():
    names = {p.stem for p in RECIPES}
    assert {"pynet_zrr", "pynet_lab_vgg", "deepisp_full", "deepisp_jdd", "dped", "dped_plus",
            "sid", "kpn", "pac"} <= names
    for paper in ("pynet", "deepisp", "dped", "sid", "kpn", "pac"):
        assert f"{paper}_synth" in names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_trains_one_step_per_stage(path, tmp_path):
    recipe = _small(path, tmp_path)
    summary = Trainer(recipe, tmp_path / "run", progress=False).run()
    assert summary["steps"] == len(stages_of(recipe))
    assert summary["skipped_nonfinite"] == 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_pynet_recipe_follows_the_release_schedule():
    r = load_recipe(ROOT / "configs" / "pynet_zrr.yaml")
    st = stages_of(r)
    assert [s["forward"]["level"] for s in st] == [5, 4, 3, 2, 1, 0]
    assert [s["target_scale"] for s in st] == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]
    assert st[-1]["losses"] == {"mse": 1.0, "perceptual": 1.0, "ms_ssim_loss": 0.4}
    assert r["optimizer"]["lr"] == 5e-5
