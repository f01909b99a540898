"""Checkpoints: a directory per step, committed atomically.

``RUN/checkpoints/step_00000100/`` holds ``model.safetensors`` (weights), optionally
``ema.safetensors`` and ``discriminator.safetensors``, and ``state.pt`` (optimiser,
scheduler, grad scaler, RNG states, step, stage) saved with ``torch.save`` and loaded with
``weights_only=True`` (tensors and plain Python containers only, never arbitrary objects).
The directory is written under a temporary name and renamed when complete, so a run killed
mid-write leaves the previous checkpoint intact; ``latest_checkpoint`` ignores temporaries.
``best/`` is replaced the same way.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from isplab.errors import InvalidInputError
from isplab.io import pid_alive
from isplab.models.weights import model_record

STEP_DIR = re.compile(r"^step_(\d{8})$")


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as tensors / plain containers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(
    ckpt_dir: Path,
    step: int,
    modules: dict[str, nn.Module],
    state: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``ckpt_dir/step_{step:08d}/`` atomically and return it.

    ``modules`` maps a file stem (``model``, ``ema``, ``discriminator``) to a module whose
    state dict goes to ``<stem>.safetensors``; ``state`` goes to ``state.pt``; ``meta`` (a
    JSON-able dict: recipe name, metrics) to ``meta.json``.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step:08d}.{os.getpid()}.", dir=ckpt_dir))
    try:
        for stem, module in modules.items():
            # the model record makes a checkpoint load like any weights file (load_model)
            record = json.dumps(model_record(module), default=str)
            save_file(_state_dict_for_file(module), str(tmp / f"{stem}.safetensors"),
                      metadata={"isplab": record})
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, **(meta or {})}, indent=2,
                                                  default=str) + "\n")
        for f in tmp.iterdir():  # data on disk before the rename makes it visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def copy_as_best(step_dir: Path, ckpt_dir: Path) -> Path:
    """Replace ``ckpt_dir/best`` by a copy of ``step_dir`` (atomically, via a temp name)."""
    best = ckpt_dir / "best"
    tmp = Path(tempfile.mkdtemp(prefix=f".best.{os.getpid()}.", dir=ckpt_dir))
    shutil.rmtree(tmp)
    shutil.copytree(step_dir, tmp)
    old = None
    if best.exists():
        old = ckpt_dir / f".best.old.{os.getpid()}"
        os.replace(best, old)
    os.replace(tmp, best)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return best


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete step checkpoints, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "state.pt").exists() and (p / "model.safetensors").exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint directory, or None."""
    ckpts = list_checkpoints(ckpt_dir)
    return ckpts[-1][1] if ckpts else None


def remove_leftovers(ckpt_dir: Path) -> list[Path]:
    """Delete the temporary checkpoint folders (``.step_N.<pid>.*``, ``.best.<pid>.*``,
    ``.best.old.<pid>``) of runs whose process is gone (killed mid-write); return them."""
    removed = []
    if not ckpt_dir.is_dir():
        return removed
    for p in ckpt_dir.iterdir():
        if not p.name.startswith((".step_", ".best.")):
            continue
        pid = next((int(part) for part in p.name.split(".")[1:] if part.isdigit()), None)
        if pid is None or not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def intact(step_dir: Path) -> str | None:
    """None when a checkpoint's files all load; else the reason (a corrupt newest checkpoint
    is skipped by :func:`resumable_checkpoint`)."""
    try:
        load_state(step_dir)
        for f in sorted(step_dir.glob("*.safetensors")):
            load_file(str(f))
    except (InvalidInputError, Exception) as exc:  # noqa: BLE001 - any damage counts
        return str(exc).splitlines()[0]
    return None


def resumable_checkpoint(ckpt_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint whose files load, and a warning for each newer one skipped
    (naming it and the one resumed from)."""
    skipped: list[tuple[Path, str]] = []
    for _, path in reversed(list_checkpoints(ckpt_dir)):
        reason = intact(path)
        if reason is None:
            return path, [f"checkpoint {p} is damaged ({why}); resuming from {path} instead"
                          for p, why in skipped]
        skipped.append((path, reason))
    return None, [f"checkpoint {p} is damaged ({why})" for p, why in skipped]


def prune_checkpoints(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest step checkpoints; return what was removed."""
    ckpts = list_checkpoints(ckpt_dir)
    removed = []
    if keep_last > 0:
        for _, p in ckpts[:-keep_last]:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def load_module_file(module: nn.Module, path: Path) -> None:
    """Load a checkpoint's safetensors file into ``module`` (strict)."""
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise InvalidInputError(f"unreadable checkpoint weights ({exc})", path) from exc
    module.load_state_dict(state, strict=True)


def load_state(step_dir: Path) -> dict[str, Any]:
    """``state.pt`` of a checkpoint, loaded with ``weights_only=True``."""
    path = step_dir / "state.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = first.split(". ")[0][:120]
        raise InvalidInputError(f"unreadable training state ({type(exc).__name__}: {detail})",
                                path) from exc
