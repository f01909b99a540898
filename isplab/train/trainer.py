"""The trainer: runs a recipe (see :mod:`isplab.train.recipe`); it knows no paper.

Features: staged schedules (PyNET levels: per-stage losses, forward kwargs, target scale,
fresh optimiser), GAN generator/discriminator alternation, mixed precision on CUDA, gradient
clipping, EMA, LR schedulers, atomic checkpoints with exact resume, non-finite-loss
skipping, CSV + TensorBoard logs, validation with :mod:`isplab.metrics`, and DDP under
``torchrun`` (gloo on CPU, NCCL on GPU; only rank 0 writes).

Exact resume: data order comes from a sampler that is a pure function of (seed, stage,
position) and each item's randomness from (seed, epoch, index) (the datasets'
``set_epoch``), the RNG states are checkpointed, so a resumed run repeats the uninterrupted
run's losses bit for bit on the same machine.

The free-standing parts (optimiser, scheduler, EMA, target resize, checksum, torchrun's
environment) are in :mod:`isplab.train.parts`; the CSV/TensorBoard logs in
:mod:`isplab.train.logs`.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

from isplab.data.patches import item_generator, train_loader
from isplab.errors import InvalidInputError, IsplabError
from isplab.losses import CompositeLoss, create_loss
from isplab.metrics import create_metric
from isplab.models import create_model, save_weights
from isplab.models.weights import init_from
from isplab.train import checkpoint as ck
from isplab.train.logs import RunLogs
from isplab.train.objectives import create_objective
from isplab.train.parts import (
    EMA,
    build_optimizer,
    build_scheduler,
    dist_env,
    is_distributed,
    param_checksum,
    resize_target,
)
from isplab.train.recipe import stages_of

log = logging.getLogger("isplab.train")


class TrainingError(IsplabError):
    """The run cannot go on (non-finite losses, mismatched shapes, bad data)."""


# --- data ----------------------------------------------------------------------------------


def build_dataset(spec: Mapping[str, Any]) -> Dataset:
    """A dataset from a recipe's ``data.train``/``data.val`` entry.

    ``dataset`` is a name from :func:`isplab.data.list_datasets` or ``"module:Class"`` (a
    user's own dataset); ``args`` its keyword arguments.
    """
    name = spec.get("dataset")
    args = dict(spec.get("args") or {})
    if not name:
        raise InvalidInputError("data entry names no dataset")
    if ":" in name:
        module, cls = name.split(":", 1)
        try:
            factory = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"cannot import dataset {name!r}: {exc}") from exc
        return factory(**args)
    from isplab.data import create_dataset

    return create_dataset(name, **args)


def create_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """A model from a recipe's ``model`` (or ``gan.discriminator``) entry.

    A recipe is a program the user chose to run, so its ``module:builder`` names may import
    the user's own code (weights files never may: :func:`isplab.models.load_model`)."""
    model = create_model(str(spec.get("name")), allow_import=True,
                         **dict(spec.get("config") or {}))
    if spec.get("init"):
        init_from(model, spec["name"], spec["init"], grow=bool(spec.get("init_grow")))
    elif spec.get("init_grow"):
        raise InvalidInputError("model.init_grow needs model.init (the weights to grow from)")
    return model


# --- the trainer ---------------------------------------------------------------------------


class Trainer:
    """Runs one recipe into a run directory.

    Args:
        recipe: a resolved recipe (:func:`isplab.train.load_recipe`).
        out: the run directory (``recipe.yaml``, ``train_log.csv``, ``val_log.csv``,
            ``checkpoints/``, ``model.safetensors``, ``summary.json``).
        resume: continue from the newest complete checkpoint in ``out``.
        progress: show a rich progress bar (rank 0 only).
    """

    def __init__(self, recipe: dict[str, Any], out: str | Path, resume: bool = False,
                 progress: bool = True, console=None):
        self.recipe = recipe
        self.out = Path(out)
        self.resume = resume
        self.progress = progress
        self.console = console
        self.cfg = recipe["train"]
        self.rank, self.world, self.local_rank = dist_env()
        self.stages = stages_of(recipe)
        self.total_steps = sum(s["steps"] for s in self.stages)

    # -- setup --
    def _setup_device(self) -> None:
        want = str(self.cfg.get("device", "auto"))
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidInputError("train.device is cuda but no CUDA device is available")
        if want == "cuda" and self.world > 1:
            want = f"cuda:{self.local_rank}"
        self.device = torch.device(want)
        if self.cfg.get("threads"):
            torch.set_num_threads(int(self.cfg["threads"]))
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.owns_group = self.world > 1 and not is_distributed()
        if self.owns_group:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
        amp = str(self.cfg.get("amp", "auto")).lower()
        if amp == "auto":
            amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") \
                if self.device.type == "cuda" else "off"
        if amp not in ("off", "bf16", "fp16"):
            raise InvalidInputError(f"train.amp must be auto, off, bf16 or fp16, not {amp!r}")
        if amp == "fp16" and self.device.type != "cuda":
            raise InvalidInputError("fp16 autocast needs CUDA; use amp: bf16 or off on CPU")
        self.amp = amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=(amp == "fp16"))
        if self.cfg.get("deterministic", True):
            torch.use_deterministic_algorithms(True, warn_only=True)
            if self.device.type == "cuda":
                torch.backends.cudnn.benchmark = False
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    def _build(self) -> None:
        r = self.recipe
        torch.manual_seed(int(r["seed"]))
        self.model = create_model_from_spec(r["model"])
        self.model.to(self.device)
        if self.cfg.get("channels_last"):
            self.model.to(memory_format=torch.channels_last)
        self.ddp_model = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DDP(self.model, device_ids=ids, find_unused_parameters=True)
        self.ema = EMA(self.model, self.cfg["ema"]) if self.cfg.get("ema") else None
        self.gan = r.get("gan")
        self.disc = None
        if self.gan:
            d = self.gan["discriminator"]
            self.disc = create_model_from_spec(d).to(self.device)
            self.ddp_disc = self.disc
            if self.world > 1:
                from torch.nn.parallel import DistributedDataParallel as DDP

                ids = [self.device.index] if self.device.type == "cuda" else None
                self.ddp_disc = DDP(self.disc, device_ids=ids)
            self.adv = create_loss(self.gan.get("loss", "gan")).to(self.device)
        self.train_set = build_dataset(r["data"]["train"])
        self.val_set = build_dataset(r["data"]["val"]) if r["data"].get("val") else None
        supervised = str((r.get("objective") or {}).get("name", "supervised")) == "supervised"
        metric_names = list(self.cfg.get("metrics") or [])
        best = str(self.cfg.get("best_metric") or "").lstrip("-")
        if best and best not in metric_names and supervised:
            metric_names.append(best)  # other objectives report their own validation metrics
        self.metrics = {m: create_metric(m) for m in metric_names}
        self.objective = create_objective(r.get("objective"), self)

    def _stage_objects(self, stage_index: int) -> None:
        st = self.stages[stage_index]
        self.stage = st
        # loss_options hold options for every loss the recipe uses; a stage takes its own
        opts = {k: v for k, v in (self.recipe.get("loss_options") or {}).items()
                if k in st["losses"]}
        self.loss_fn = CompositeLoss(st["losses"], **opts)
        self.loss_fn.to(self.device)
        self.opt = build_optimizer(self.model.parameters(), st["optimizer"])
        self.sched = build_scheduler(self.opt, st["scheduler"], st["steps"])
        if self.disc is not None:
            self.d_opt = build_optimizer(self.disc.parameters(),
                                         {**st["optimizer"], **(self.gan.get("optimizer") or {})})

    def _loader(self, stage_index: int, done_in_stage: int) -> Iterator[dict]:
        spec = self.recipe["data"]["train"]
        bs = int(self.stage["batch_size"] or spec.get("batch_size", 8))
        return iter(train_loader(
            self.train_set, bs, workers=int(spec.get("workers", 0)),
            seed=int(self.recipe["seed"]) + 7919 * stage_index, start=done_in_stage * bs,
            rank=self.rank, world=self.world, pin_memory=self.device.type == "cuda"))

    # -- state --
    def _state(self, stage_index: int, done_in_stage: int, step: int) -> dict[str, Any]:
        state = {
            "step": step, "stage": stage_index, "stage_step": done_in_stage,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched else None,
            "scaler": self.scaler.state_dict(), "rng": ck.rng_state(),
            "skipped": self.skipped, "best": self.best,
        }
        if self.disc is not None:
            state["d_optimizer"] = self.d_opt.state_dict()
        return state

    def _modules(self) -> dict[str, nn.Module]:
        mods = {"model": self.model}
        if self.ema is not None:
            mods["ema"] = self.ema.module
        if self.disc is not None:
            mods["discriminator"] = self.disc
        return mods

    def _save(self, stage_index: int, done_in_stage: int, step: int, metrics=None) -> Path:
        ckpt_dir = self.out / "checkpoints"
        path = ck.save_checkpoint(ckpt_dir, step, self._modules(),
                                  self._state(stage_index, done_in_stage, step),
                                  {"recipe": self.recipe["name"], "metrics": metrics or {}})
        ck.prune_checkpoints(ckpt_dir, int(self.cfg.get("keep_last", 3)))
        return path

    def _restore(self, step_dir: Path) -> tuple[int, int, int]:
        for stem, module in self._modules().items():
            ck.load_module_file(module, step_dir / f"{stem}.safetensors")
        state = ck.load_state(step_dir)
        self._stage_objects(int(state["stage"]))
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state.get("scheduler"):
            self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.disc is not None:
            self.d_opt.load_state_dict(state["d_optimizer"])
        ck.set_rng_state(state["rng"])
        self.skipped = int(state["skipped"])
        self.best = state["best"]
        return int(state["step"]), int(state["stage"]), int(state["stage_step"])

    # -- the public API objectives use --
    def autocast(self):
        """Mixed precision for the forward passes (``train.amp``; off on the CPU)."""
        if self.amp == "off":
            return nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def generator(self, step: int, stream: int = 0) -> torch.Generator:
        """A CPU generator keyed by (recipe seed, step, stream): a step's own randomness,
        repeated exactly by a resumed run."""
        return item_generator(int(self.recipe["seed"]), 1_000_033 + stream, step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The (DDP) model on ``x`` with the stage's ``forward`` options."""
        return self.ddp_model(x, **self.stage["forward"])

    def batch_input(self, batch: Mapping[str, Any], split: str = "train") -> torch.Tensor:
        """The batch's input (``data.<split>.input_key``, default ``raw``) on the device."""
        key = self.recipe["data"][split].get("input_key", "raw")
        x = batch[key].to(self.device, non_blocking=True)
        if self.cfg.get("channels_last") and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batch_target(self, batch: Mapping[str, Any], split: str = "train") -> torch.Tensor:
        """The batch's target (``target_key``, default ``target``) at the stage's scale."""
        key = self.recipe["data"][split].get("target_key", "target")
        y = batch[key].to(self.device, non_blocking=True)
        return resize_target(y, self.stage["target_scale"])

    def check_output(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise TrainingError(
                f"stage {self.stage['name']}: model output {tuple(pred.shape)} does not match "
                f"the target {tuple(target.shape)} (check target_scale and the model's "
                "forward options)")

    def optimise(self, total: torch.Tensor, optimizer: torch.optim.Optimizer, module: nn.Module,
                 *, scaled: bool = True) -> None:
        """Backward (through the AMP loss scaler unless ``scaled`` is False), gradient
        clipping at ``train.grad_clip`` (the trained model only), the optimiser step, and the
        EMA update when ``module`` is the trained model."""
        optimizer.zero_grad(set_to_none=True)
        clip = self.cfg.get("grad_clip") if module is self.model else None
        if scaled:
            self.scaler.scale(total).backward()
            if clip:
                self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(module.parameters(), float(clip))
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            total.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), float(clip))
            optimizer.step()
        if module is self.model and self.ema is not None:
            self.ema.update(self.model)

    def step_scheduler(self) -> None:
        if self.sched is not None:
            self.sched.step()

    def skip(self, step: int, msg: str) -> None:
        """Count a skipped (non-finite) step; stop the run at ``train.max_nonfinite``."""
        self.skipped += 1
        self.opt.zero_grad(set_to_none=True)
        limit = int(self.cfg.get("max_nonfinite", 10))
        if self.skipped >= limit:
            raise TrainingError(f"{msg}; {self.skipped} non-finite steps reached "
                                f"train.max_nonfinite = {limit}; stopping")
        log.warning("%s; step skipped (%d so far)", msg, self.skipped)
        return None

    @staticmethod
    def describe_items(batch: Mapping[str, Any], bad: torch.Tensor) -> str:
        """Name the batch items where ``bad`` (``N x ...`` booleans) holds: their ``name``
        (file) and dataset ``index`` when the batch carries them."""
        rows = bad.flatten(1).any(1).nonzero().flatten().tolist()
        names = batch.get("name")
        index = batch.get("index")
        parts = []
        for r in rows:
            label = str(names[r]) if names is not None else f"item {r}"
            if index is not None:
                label += f" (dataset index {int(index[r])})"
            parts.append(label)
        return "sample " + ", ".join(parts) if parts else "the batch"

    def val_batches(self) -> Iterator[dict]:
        """Batches of the validation set (at most ``train.val_max_batches``)."""
        if self.val_set is None:
            return
        spec = self.recipe["data"]["val"]
        loader = DataLoader(self.val_set, batch_size=int(spec.get("batch_size", 1)),
                            shuffle=False, num_workers=int(spec.get("workers", 0)))
        limit = self.cfg.get("val_max_batches")
        for i, batch in enumerate(loader):
            if limit is not None and i >= int(limit):
                break
            yield batch

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The objective's validation metrics (empty without validation data)."""
        return {} if self.val_set is None else self.objective.validate()

    def _is_better(self, value: float) -> bool:
        key = str(self.cfg.get("best_metric") or "")
        if not key:
            return False
        if self.best is None:
            return True
        return value < self.best if key.startswith("-") else value > self.best

    # -- run --
    def run(self) -> dict[str, Any]:
        """Train to the end of the last stage; return the summary (also ``summary.json``)."""
        self._setup_device()
        try:
            return self._train()
        finally:
            if self.owns_group and is_distributed():
                self._release_group()

    def _release_group(self) -> None:
        """End the group while Python is whole. DDP's reducers hold it and its last works, and
        the objective's link to the trainer is a cycle: left to the interpreter's teardown,
        a rank aborted there ("terminate called without an active exception", 2 runs in 130
        under load). So: drop the wrappers, collect, destroy (0 aborts in 200 runs)."""
        self.ddp_model = getattr(self, "model", None)
        if getattr(self, "disc", None) is not None:
            self.ddp_disc = self.disc
        gc.collect()
        torch.distributed.destroy_process_group()

    def _train(self) -> dict[str, Any]:
        self._build()
        step, stage_index, done_in_stage = self._start()
        self._t_start = time.perf_counter()
        self._val_metrics: dict[str, float] = {}
        self._val_step: int | None = None  # the step _val_metrics belong to
        bar = self._progress() if (self.rank == 0 and self.progress) else None
        self._bar = bar
        self._task = bar.add_task("train", total=self.total_steps, completed=step, rate="") \
            if bar else None
        self._first_step = step
        self._last_saved = step
        self.stopped_by = None
        try:
            if bar:
                bar.start()
            while stage_index < len(self.stages) and self.stopped_by is None:
                if done_in_stage == 0 and step > 0 and not self.resume:
                    self._stage_objects(stage_index)
                self.resume = False
                step, done_in_stage = self._run_stage(stage_index, step, done_in_stage)
                if self.stopped_by is None:
                    stage_index += 1
                    done_in_stage = 0
        finally:
            if bar:
                bar.stop()
        if self.val_set is not None and self._val_step != step:
            # the final weights are the ones saved and described: validate them (a run cut by
            # max_seconds, or steps not a multiple of val_every, would report older metrics)
            self._val_metrics = self.validate()
            if self.rank == 0 and step != self._first_step:
                self.logs.val(step, self.stage["name"], self._val_metrics)
        summary = self._finish(step, self._val_metrics, time.perf_counter() - self._t_start)
        return summary

    def _start(self) -> tuple[int, int, int]:
        """The run's start: remove the temporaries of a run killed mid-checkpoint, restore the
        newest readable checkpoint (``resume``) or refuse a run directory that has
        checkpoints, then (rank 0) write ``recipe.yaml`` and open the logs. Returns (step,
        stage index, steps done in that stage)."""
        rank0 = self.rank == 0
        step, stage_index, done_in_stage = 0, 0, 0
        self.skipped, self.best = 0, None
        self.logs: RunLogs | None = None  # rank 0's
        ckpt_dir = self.out / "checkpoints"
        if rank0:
            for p in ck.remove_leftovers(ckpt_dir):
                log.info("removed %s, left by a run that was killed mid-checkpoint", p)
        if self.resume:
            last, warnings = ck.resumable_checkpoint(ckpt_dir)
            for w in warnings:
                log.warning("%s", w)
            if last is None:
                raise InvalidInputError("nothing to resume: no complete, readable checkpoint",
                                        ckpt_dir)
            step, stage_index, done_in_stage = self._restore(last)
            log.info("resumed from %s (step %d)", last, step)
        else:
            if ck.list_checkpoints(ckpt_dir):
                raise InvalidInputError("run directory already has checkpoints; use --resume "
                                        "or another --out", self.out)
            self._stage_objects(0)
        if rank0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "recipe.yaml").write_text(yaml.safe_dump(self.recipe, sort_keys=False))
            self.logs = RunLogs(self.out, self.objective.loss_keys, step,
                                tensorboard=self.cfg.get("tensorboard", True))
        return step, stage_index, done_in_stage

    def _run_stage(self, stage_index: int, step: int, done_in_stage: int) -> tuple[int, int]:
        """The steps of stage ``stage_index`` from ``done_in_stage`` on, to the stage's end or
        the time budget (``stopped_by`` set); returns (step, steps done in the stage)."""
        stage = self.stages[stage_index]
        batches = self._loader(stage_index, done_in_stage)
        while done_in_stage < stage["steps"]:
            t0 = time.perf_counter()
            result = self.objective.train_step(next(batches), step + 1)
            step += 1
            done_in_stage += 1
            self._report(step, stage, result, t0)
            val_due = self._validate_if_due(step)
            if self.rank == 0 and (step % int(self.cfg["ckpt_every"]) == 0
                                   or done_in_stage == stage["steps"]):
                self._checkpoint(stage_index, done_in_stage, step, val_due)
            if self._stop_for_time(stage_index, done_in_stage, step):
                break
        return step, done_in_stage

    def _report(self, step: int, stage: Mapping[str, Any], result, t0: float) -> None:
        """A finished step's train-log row (every ``train.log_every`` steps and the last;
        rank 0) and progress-bar update; ``result`` is the objective's (None: skipped)."""
        if result is not None and self.rank == 0 and (
                step % int(self.cfg["log_every"]) == 0 or step == self.total_steps):
            self.logs.train(step, self.stage["name"], self.opt.param_groups[0]["lr"],
                            result[0], result[1], self.skipped, time.perf_counter() - t0)
        if self._bar and result is not None:
            terms = " ".join(f"{k} {v:.4g}" for k, v in result[1].items())
            rate = (step - self._first_step) / (time.perf_counter() - self._t_start)
            self._bar.update(self._task, advance=1, description=f"{stage['name']} {terms}",
                             rate=f"{rate:.2f} it/s")

    def _validate_if_due(self, step: int) -> bool:
        """Validate (all ranks) and log it (rank 0) every ``train.val_every`` steps; returns
        whether it was due."""
        val_due = self.val_set is not None and step % int(self.cfg["val_every"]) == 0
        if val_due:
            self._val_metrics = self.validate()
            self._val_step = step
            if self.rank == 0:
                self.logs.val(step, self.stage["name"], self._val_metrics)
        return val_due

    def _checkpoint(self, stage_index: int, done_in_stage: int, step: int,
                    validated: bool) -> None:
        """Save a checkpoint (rank 0); copy it as ``best/`` when this step's validation
        improved ``train.best_metric``."""
        path = self._save(stage_index, done_in_stage, step, self._val_metrics)
        self._last_saved = step
        key = str(self.cfg.get("best_metric") or "").lstrip("-")
        if validated and key in self._val_metrics and self._is_better(self._val_metrics[key]):
            self.best = self._val_metrics[key]
            ck.copy_as_best(path, self.out / "checkpoints")

    def _stop_for_time(self, stage_index: int, done_in_stage: int, step: int) -> bool:
        """Whether ``train.max_seconds`` is spent after ``step``: then ``stopped_by`` is set
        and the step saved (rank 0) unless it just was."""
        budget = self.cfg.get("max_seconds")
        if budget is None or not self._out_of_time(self._t_start, float(budget)):
            return False
        self.stopped_by = "max_seconds"
        if self.rank == 0 and self._last_saved != step:
            self._save(stage_index, done_in_stage, step, self._val_metrics)
            self._last_saved = step
        log.info("train.max_seconds = %s reached after step %d of %d; stopping (resume with "
                 "--resume)", budget, step, self.total_steps)
        return True

    def _out_of_time(self, t_start: float, budget: float) -> bool:
        """Whether ``train.max_seconds`` is spent; under DDP rank 0's clock decides for all
        ranks (a broadcast), so every rank stops after the same step."""
        over = time.perf_counter() - t_start >= budget
        if is_distributed():
            flag = torch.tensor([1.0 if over else 0.0])
            if torch.distributed.get_backend() == "nccl":
                flag = flag.to(self.device)
            torch.distributed.broadcast(flag, src=0)
            over = bool(flag.item() > 0)
        return over

    def _finish(self, step: int, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
        checksum = param_checksum(self.model)
        checksums = [checksum]
        if is_distributed():
            checksums = [None] * self.world
            torch.distributed.all_gather_object(checksums, checksum)
        summary = {
            "recipe": self.recipe["name"], "steps": step, "seconds": round(seconds, 2),
            "skipped_nonfinite": self.skipped, "validation": metrics, "best": self.best,
            "stopped_by": self.stopped_by,
            "world_size": self.world, "device": str(self.device), "amp": self.amp,
            "rank_checksums": checksums, "weights": str(self.out / "model.safetensors"),
        }
        if self.rank == 0:
            extra = {"recipe": self.recipe["name"], "steps": step, "validation": metrics,
                     "objective": self.recipe.get("objective") or {"name": "supervised"}}
            save_weights(self.model, self.out / "model.safetensors", extra=extra)
            if self.ema is not None:
                self.ema.module.isplab_name = self.model.isplab_name
                self.ema.module.isplab_config = self.model.isplab_config
                save_weights(self.ema.module, self.out / "model_ema.safetensors", extra=extra)
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            self.logs.close()
        if is_distributed():
            torch.distributed.barrier()
        return summary

    def _progress(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"),
                        TimeRemainingColumn(), console=self.console, transient=False)


def train(recipe: dict[str, Any], out: str | Path, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Run ``recipe`` into ``out`` (see :class:`Trainer`) and return the summary."""
    return Trainer(recipe, out, resume=resume, progress=progress).run()
