"""The trainer's free-standing parts: the distributed environment, the optimiser and LR
scheduler of a recipe entry, a stage's target resize (PyNET levels), the parameter EMA and
the weights checksum of ``summary.json``. None of them knows the trainer."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.errors import InvalidInputError

# --- distributed ---------------------------------------------------------------------------


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (1 process: 0, 1, 0)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is up (a run under ``torchrun``)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


# --- pieces --------------------------------------------------------------------------------


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - self.decay)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def build_optimizer(params, spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    opts = {k: v for k, v in spec.items() if k != "name"}
    name = str(spec.get("name", "adam")).lower()
    if "betas" in opts:
        opts["betas"] = tuple(opts["betas"])
    table = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if name not in table:
        raise InvalidInputError(f"unknown optimizer {name!r}; choose from {sorted(table)}")
    try:
        return table[name](params, **opts)
    except TypeError as exc:
        raise InvalidInputError(f"bad optimizer options {opts}: {exc}") from exc


def build_scheduler(opt: torch.optim.Optimizer, spec: Mapping[str, Any], steps: int):
    """LR scheduler stepped once per training step (None for ``name: none``)."""
    name = str(spec.get("name", "none")).lower()
    opts = {k: v for k, v in spec.items() if k != "name"}
    S = torch.optim.lr_scheduler
    try:
        if name == "none":
            return None
        if name == "cosine":
            return S.CosineAnnealingLR(opt, T_max=opts.get("t_max", steps),
                                       eta_min=opts.get("eta_min", 0.0))
        if name == "step":
            return S.StepLR(opt, step_size=opts["step_size"], gamma=opts.get("gamma", 0.1))
        if name == "multistep":
            return S.MultiStepLR(opt, milestones=list(opts["milestones"]),
                                 gamma=opts.get("gamma", 0.1))
        if name == "exponential":
            return S.ExponentialLR(opt, gamma=opts["gamma"])
    except KeyError as exc:
        raise InvalidInputError(f"scheduler {name!r} needs option {exc}") from exc
    raise InvalidInputError(f"unknown scheduler {name!r}; choose from none, cosine, step, "
                            "multistep, exponential")


def resize_target(target: torch.Tensor, scale: float) -> torch.Tensor:
    """The target at ``scale`` (PyNET levels): area-like antialiased bilinear resize."""
    if scale == 1.0:
        return target
    h, w = target.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(target, size=size, mode="bilinear", align_corners=False,
                         antialias=True)


def param_checksum(model: nn.Module) -> str:
    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
