"""The trainer: recipes, checkpoints, exact resume after SIGKILL, non-finite steps, stages,
GAN alternation, EMA, validation/best, gradient clipping, DDP with 2 CPU processes."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from isplab.data.patches import StepSampler
from isplab.errors import InvalidInputError
from isplab.models import read_weights_meta
from isplab.train import Trainer, TrainingError, load_recipe, stages_of
from isplab.train import checkpoint as ck

ROOT = Path(__file__).resolve().parents[1]


def toy_recipe(**over) -> dict:
    r = {
        "name": "toy",
        "seed": 3,
        "model": {"name": "tests.train_toys:tiny_isp", "config": {"width": 8}},
        "data": {"train": {"dataset": "tests.train_toys:ToyPairs", "args": {"n": 12},
                           "batch_size": 4}},
        "losses": {"l1": 1.0, "mse": 0.5},
        "optimizer": {"name": "adam", "lr": 1e-2},
        "train": {"steps": 6, "log_every": 1, "ckpt_every": 2, "val_every": 1000,
                  "keep_last": 2, "tensorboard": False},
    }
    for key, value in over.items():
        node = r
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return load_recipe(r)


def losses(run: Path) -> list[tuple[int, str]]:
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    return [(int(r["step"]), r["loss"]) for r in rows]


# --- recipes -------------------------------------------------------------------------------


def test_recipe_overrides_base_and_errors(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"model": {"name": "sid_unet"}, "train": {"steps": 10},
                                    "data": {"train": {"dataset": "demosaic"}}}))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"base": "base.yaml", "name": "c",
                                     "losses": {"mse": 2.0}}))
    r = load_recipe(child, ["train.steps=25", "optimizer.lr=5e-5", "model.config.width=4"])
    assert r["name"] == "c" and r["model"]["name"] == "sid_unet"
    assert r["train"]["steps"] == 25 and r["optimizer"]["lr"] == 5e-5
    assert r["losses"] == {"mse": 2.0}  # losses replace, never merge with the default l1
    assert r["model"]["config"] == {"width": 4}
    with pytest.raises(InvalidInputError, match="unknown train keys"):
        load_recipe(child, ["train.stepz=3"])
    with pytest.raises(InvalidInputError, match="key=value"):
        load_recipe(child, ["train.steps"])
    with pytest.raises(InvalidInputError, match="recipe not found"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInputError, match="no model"):
        load_recipe({"data": {"train": {"dataset": "x"}}})


def test_stages_inherit_recipe_fields():
    r = toy_recipe(stages=[{"name": "a", "steps": 2, "forward": {"level": 1},
                            "target_scale": 0.5}, {"steps": 3, "losses": {"mse": 1}}])
    st = stages_of(r)
    assert [s["steps"] for s in st] == [2, 3]
    assert st[0]["losses"] == {"l1": 1.0, "mse": 0.5} and st[1]["losses"] == {"mse": 1}
    assert st[0]["forward"] == {"level": 1} and st[1]["target_scale"] == 1.0


def test_step_sampler_is_positional_and_sharded():
    full = StepSampler(10, seed=1)
    it = iter(full)
    keys = [next(it) for _ in range(25)]
    resumed = iter(StepSampler(10, seed=1, start=13))
    assert [next(resumed) for _ in range(12)] == keys[13:]
    assert sorted(i for e, i in keys[:10]) == list(range(10))  # a permutation per epoch
    r0, r1 = iter(StepSampler(10, 1, rank=0, world=2)), iter(StepSampler(10, 1, rank=1, world=2))
    a = {next(r0)[1] for _ in range(5)}
    b = {next(r1)[1] for _ in range(5)}
    assert a | b == set(range(10)) and not a & b


# --- checkpoints ---------------------------------------------------------------------------


def test_checkpoints_are_atomic_pruned_and_safe(tmp_path):
    model = torch.nn.Linear(3, 2)
    for step in (1, 2, 3):
        ck.save_checkpoint(tmp_path, step, {"model": model}, {"step": step, "rng": ck.rng_state()})
    (tmp_path / ".step_00000009.abc").mkdir()  # an interrupted write
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1, 2, 3]
    ck.prune_checkpoints(tmp_path, keep_last=2)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [2, 3]
    last = ck.latest_checkpoint(tmp_path)
    state = ck.load_state(last)  # weights_only=True
    assert state["step"] == 3
    ck.set_rng_state(state["rng"])
    best = ck.copy_as_best(last, tmp_path)
    assert (best / "model.safetensors").exists()
    (last / "state.pt").write_bytes(b"garbage")
    with pytest.raises(InvalidInputError, match="state.pt"):
        ck.load_state(last)


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = ck.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    ck.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


# --- training ------------------------------------------------------------------------------


def test_train_writes_logs_checkpoints_and_weights(tmp_path):
    run = tmp_path / "run"
    summary = Trainer(toy_recipe(), run, progress=False).run()
    assert summary["steps"] == 6 and summary["skipped_nonfinite"] == 0
    assert [s for s, _ in losses(run)] == list(range(1, 7))
    assert [s for s, _ in ck.list_checkpoints(run / "checkpoints")] == [4, 6]  # keep_last 2
    first, last = float(losses(run)[0][1]), float(losses(run)[-1][1])
    assert last < first  # it learns
    from isplab.models import create_model, load_model, load_weights

    # the recipe's own model (module:builder) loads only where the user builds it: a weights
    # file never imports code (tests/test_security.py)
    with pytest.raises(InvalidInputError, match="not in isplab's registry"):
        load_model(run / "model.safetensors")
    model = load_weights(create_model("tests.train_toys:tiny_isp", allow_import=True, width=8),
                         run / "model.safetensors")
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(InvalidInputError, match="already has checkpoints"):
        Trainer(toy_recipe(), run, progress=False).run()


def test_checkpoints_load_like_any_weights_file(tmp_path):
    """A checkpoint's model.safetensors carries the model record, so ``develop --isp
    runs/x/checkpoints/step_N`` (or ``best``) builds and loads it like a finished run."""
    from typer.testing import CliRunner

    from isplab.cli import app
    from isplab.models import resolve

    run = tmp_path / "run"
    Trainer(toy_recipe(**{"model": {"name": "microisp", "config": {}}}), run,
            progress=False).run()
    step = ck.latest_checkpoint(run / "checkpoints")
    model = resolve(step)
    final = resolve(run)
    assert model.isplab_name == "microisp"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 final.state_dict().values(), strict=True))
    res = CliRunner().invoke(app, ["develop", "--sample", "-o", str(tmp_path / "out"), "--isp",
                                   str(step), "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "isplab_sample_astronaut.png").is_file()


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "isplab.cli", "train", *args, "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)


def test_resume_after_sigkill_repeats_the_uninterrupted_losses(tmp_path):
    recipe = tmp_path / "toy.yaml"
    r = toy_recipe(**{"train.steps": 30, "train.ckpt_every": 1, "train.keep_last": 2,
                      "data.train.workers": 1})
    recipe.write_text(yaml.safe_dump(r))
    ref = _cli([str(recipe), "--out", str(tmp_path / "ref")])
    assert ref.wait(120) == 0, ref.stderr.read().decode()

    run = tmp_path / "killed"
    slow = _cli([str(recipe), "--out", str(run), "--set", "data.train.args.delay=0.02"])
    log = run / "train_log.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) > 8:
            break
        time.sleep(0.02)
    slow.send_signal(signal.SIGKILL)
    slow.wait(30)
    killed_at = len(log.read_text().splitlines()) - 1
    assert 0 < killed_at < 30, "the run was not interrupted mid-way"

    resumed = _cli([str(recipe), "--out", str(run), "--resume"])
    assert resumed.wait(120) == 0, resumed.stderr.read().decode()
    assert losses(run) == losses(tmp_path / "ref")  # every step, bit for bit
    assert len(losses(run)) == 30


def test_time_budget_stops_saves_and_resumes_to_the_same_losses(tmp_path):
    ref = tmp_path / "ref"
    Trainer(toy_recipe(), ref, progress=False).run()
    run = tmp_path / "budget"
    # a budget of 0 s is spent by the first step: stop there, with a checkpoint at step 1
    # although ckpt_every is 2, and the stage position stored so --resume continues it
    summary = Trainer(toy_recipe(**{"train.max_seconds": 0}), run, progress=False).run()
    assert summary["steps"] == 1 and summary["stopped_by"] == "max_seconds"
    assert [s for s, _ in ck.list_checkpoints(run / "checkpoints")] == [1]
    assert (run / "model.safetensors").exists()
    summary = Trainer(toy_recipe(), run, resume=True, progress=False).run()
    assert summary["steps"] == 6 and summary["stopped_by"] is None
    assert losses(run) == losses(ref)
    stages = [{"name": "a", "steps": 2}, {"name": "b", "steps": 2}]
    summary = Trainer(toy_recipe(stages=stages, **{"train.max_seconds": 1e9}), tmp_path / "c",
                      progress=False).run()
    assert summary["steps"] == 4 and summary["stopped_by"] is None


def test_nonfinite_steps_are_skipped_then_stop_the_run(tmp_path):
    # batch 1 and NaN inputs at items 2 and 5 of each epoch: two skipped steps per epoch
    r = toy_recipe(**{"data.train.args": {"n": 6, "nan_indices": [2, 5]},
                      "data.train.batch_size": 1, "train.steps": 6, "train.max_nonfinite": 10})
    summary = Trainer(r, tmp_path / "a", progress=False).run()
    assert summary["skipped_nonfinite"] == 2
    r = toy_recipe(**{"data.train.args": {"n": 6, "nan_indices": [0, 1, 2, 3, 4, 5]},
                      "data.train.batch_size": 1, "train.max_nonfinite": 3})
    with pytest.raises(TrainingError, match=r"step 3: non-finite model output, the input batch "
                                            r"is not finite; 3 .*max_nonfinite = 3"):
        Trainer(r, tmp_path / "b", progress=False).run()


def test_stages_scale_targets_and_forward_options(tmp_path):
    r = toy_recipe(stages=[
        {"name": "half", "steps": 2, "forward": {"level": 1}, "target_scale": 0.5,
         "losses": {"mse": 1.0}},
        {"name": "full", "steps": 2},
    ])
    run = tmp_path / "staged"
    Trainer(r, run, progress=False).run()
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    assert [row["stage"] for row in rows] == ["half", "half", "full", "full"]
    assert rows[0]["l1"] == "" and rows[2]["l1"] != ""
    bad = toy_recipe(stages=[{"steps": 1, "forward": {"level": 1}}])  # no target_scale
    with pytest.raises(TrainingError, match="does not match the target"):
        Trainer(bad, tmp_path / "bad", progress=False).run()


def test_gan_alternation_ema_validation_and_best(tmp_path):
    r = toy_recipe(**{
        "gan": {"discriminator": {"name": "tests.train_toys:tiny_disc"}, "loss": "gan",
                "input": "gray", "optimizer": {"lr": 1e-3}},
        "losses": {"l1": 1.0, "adv": {"loss": "gan", "weight": 0.1}},
        "data.val": {"dataset": "tests.train_toys:ToyPairs", "args": {"n": 4, "seed": 9},
                     "batch_size": 2},
        "train.ema": 0.9, "train.val_every": 2, "train.steps": 4,
    })
    run = tmp_path / "gan"
    torch.manual_seed(0)
    trainer = Trainer(r, run, progress=False)
    summary = trainer.run()
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    assert all(float(row["d_loss"]) > 0 for row in rows) and rows[0]["adv"] != ""
    assert (run / "checkpoints" / "step_00000004" / "discriminator.safetensors").exists()
    assert (run / "model_ema.safetensors").exists()
    ema = dict(trainer.ema.module.named_parameters())
    assert any(not torch.equal(p, ema[n]) for n, p in trainer.model.named_parameters())
    vals = list(csv.DictReader((run / "val_log.csv").open()))
    assert [int(v["step"]) for v in vals] == [2, 4] and "psnr" in vals[0]
    assert (run / "checkpoints" / "best" / "model.safetensors").exists()
    assert summary["best"] == max(float(v["psnr"]) for v in vals)


def test_the_final_weights_are_validated(tmp_path):
    # 6 steps with val_every 4: the saved weights are step 6's, so are the reported metrics
    val = {"dataset": "tests.train_toys:ToyPairs", "args": {"n": 4, "seed": 9}, "batch_size": 2}
    run = tmp_path / "v"
    summary = Trainer(toy_recipe(**{"data.val": val, "train.val_every": 4}), run,
                      progress=False).run()
    vals = list(csv.DictReader((run / "val_log.csv").open()))
    assert [int(v["step"]) for v in vals] == [4, 6]
    assert summary["validation"]["psnr"] == float(vals[-1]["psnr"])
    assert float(vals[0]["psnr"]) != float(vals[-1]["psnr"])
    meta = read_weights_meta(run / "model.safetensors")
    assert meta["steps"] == 6 and meta["validation"] == summary["validation"]
    # a run cut by max_seconds validates the step it stopped at too
    cut = Trainer(toy_recipe(**{"data.val": val, "train.val_every": 4, "train.max_seconds": 0}),
                  tmp_path / "cut", progress=False).run()
    vals = list(csv.DictReader((tmp_path / "cut" / "val_log.csv").open()))
    assert cut["steps"] == 1 and [int(v["step"]) for v in vals] == [1]


def test_gradient_clipping_bounds_the_update(tmp_path):
    r = toy_recipe(**{"optimizer": {"name": "sgd", "lr": 1.0}, "train.grad_clip": 1e-3,
                      "train.steps": 1})
    trainer = Trainer(r, tmp_path / "clip", progress=False)
    torch.manual_seed(3)
    before = [p.detach().clone() for p in trainer_model_after_build(trainer).parameters()]
    trainer.run()
    delta = torch.cat([(p.detach() - b).flatten()
                       for p, b in zip(trainer.model.parameters(), before, strict=True)])
    assert 0 < delta.norm() <= 1e-3 * 1.0001


def trainer_model_after_build(trainer: Trainer):
    # the model the run will build (same seed): build it the same way to snapshot it
    from isplab.train.trainer import create_model_from_spec

    torch.manual_seed(int(trainer.recipe["seed"]))
    return create_model_from_spec(trainer.recipe["model"])


def test_bf16_autocast_on_cpu(tmp_path):
    summary = Trainer(toy_recipe(**{"train.amp": "bf16", "train.steps": 2}), tmp_path / "bf",
                      progress=False).run()
    assert summary["amp"] == "bf16" and summary["steps"] == 2
    with pytest.raises(InvalidInputError, match="fp16 autocast needs CUDA"):
        Trainer(toy_recipe(**{"train.amp": "fp16"}), tmp_path / "fp", progress=False).run()


def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump(toy_recipe(**{"train.steps": 4})))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "isplab.cli", "train",
         str(recipe), "--out", str(tmp_path / "ddp"), "-q"],
        cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2
    a, b = summary["rank_checksums"]
    assert a == b
    single = Trainer(toy_recipe(**{"train.steps": 4}), tmp_path / "one", progress=False).run()
    assert single["rank_checksums"][0] != a  # the two ranks really saw different batches


def test_release_group_frees_the_ddp_wrappers_before_destroying_the_group(tmp_path, monkeypatch):
    """The DDP wrappers (whose reducers hold the group and its last works) are dropped and
    collected before destroy_process_group: left to the interpreter's exit they aborted a
    torchrun rank ("terminate called without an active exception", 2 runs in 130 under load)."""
    import weakref

    t = Trainer(toy_recipe(), tmp_path / "run", progress=False)

    class Wrapper(torch.nn.Module):  # stands in for DDP; in a cycle like the objective's
        def __init__(self, trainer):
            super().__init__()
            self.trainer = trainer

    t.model, t.disc = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    t.ddp_model, t.ddp_disc = Wrapper(t), Wrapper(t)
    alive = [weakref.ref(t.ddp_model), weakref.ref(t.ddp_disc)]
    seen = []
    monkeypatch.setattr(torch.distributed, "destroy_process_group",
                        lambda: seen.append([r() is not None for r in alive]))
    t._release_group()
    assert seen == [[False, False]]
    assert t.ddp_model is t.model and t.ddp_disc is t.disc


def test_resume_falls_back_past_a_corrupt_newest_checkpoint(tmp_path, caplog):
    """Issue 21.8: a damaged newest state.pt no longer stops --resume when an older intact
    checkpoint exists; the warning names both."""
    run = tmp_path / "run"
    r = toy_recipe(**{"train.steps": 6, "train.ckpt_every": 2, "train.keep_last": 3})
    Trainer(r, run, progress=False).run()
    ckpts = [p for _, p in ck.list_checkpoints(run / "checkpoints")]
    assert [p.name for p in ckpts] == ["step_00000002", "step_00000004", "step_00000006"]
    (ckpts[-1] / "state.pt").write_bytes(b"garbage")
    r8 = toy_recipe(**{"train.steps": 8, "train.ckpt_every": 2, "train.keep_last": 3})
    with caplog.at_level(logging.WARNING, logger="isplab.train"):
        summary = Trainer(r8, run, resume=True, progress=False).run()
    assert summary["steps"] == 8
    assert "step_00000006 is damaged" in caplog.text and "step_00000004" in caplog.text
    for _, p in ck.list_checkpoints(run / "checkpoints"):
        (p / "state.pt").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="no complete, readable checkpoint"):
        Trainer(r8, run, resume=True, progress=False).run()


def test_leftover_checkpoint_temporaries_are_removed(tmp_path):
    """Issue 21.7: the hidden folders of a run killed mid-checkpoint go at the next start."""
    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    ckpts.mkdir(parents=True)
    dead = ckpts / ".step_00000002.999999999.abcd"
    dead.mkdir()
    (dead / "state.pt").write_bytes(b"half")
    alive = ckpts / f".step_00000004.{os.getpid()}.efgh"
    alive.mkdir()
    Trainer(toy_recipe(), run, progress=False).run()
    assert not dead.exists() and alive.exists()


def test_model_init_warm_starts_from_a_weights_file(tmp_path):
    """``model.init`` loads a weights file into the new model before step 1 (a warm start:
    fresh optimizer and schedule), and refuses weights recorded for another model."""
    first = tmp_path / "first"
    Trainer(toy_recipe(), first, progress=False).run()
    warm = toy_recipe(**{"model.init": str(first / "model.safetensors"), "train.steps": 1})
    trainer = Trainer(warm, tmp_path / "warm", progress=False)
    trainer._setup_device()
    trainer._build()
    from safetensors.torch import load_file

    saved = load_file(str(first / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in trainer.model.state_dict().items())
    cold = toy_recipe(**{"train.steps": 1})
    cold_loss = float(losses_of(Trainer(cold, tmp_path / "cold", progress=False)))
    warm_loss = float(losses_of(Trainer(warm, tmp_path / "warm2", progress=False)))
    assert warm_loss < cold_loss  # starts where the first run ended
    from isplab.models import create_model, save_weights

    other = tmp_path / "other.safetensors"
    save_weights(create_model("sid_unet", widths=(4, 8)), other)
    with pytest.raises(InvalidInputError, match="weights for sid_unet"):
        Trainer(toy_recipe(**{"model.init": str(other)}), tmp_path / "x", progress=False).run()


def losses_of(trainer: Trainer) -> str:
    trainer.run()
    return losses(trainer.out)[0][1]
