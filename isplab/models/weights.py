"""Model weights on disk: safetensors + a JSON sidecar with the model's name and config.

Loading never unpickles: safetensors only, shapes checked with a clear message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from isplab.errors import InvalidInputError
from isplab.io import atomic_write


def sidecar_path(path: str | Path) -> Path:
    """``model.safetensors`` -> ``model.json``."""
    return Path(path).with_suffix(".json")


def save_weights(
    model: nn.Module,
    path: str | Path,
    extra: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``model``'s state dict as safetensors (atomically) and its config as JSON.

    The JSON holds ``name`` and ``config`` when the model came from ``create_model``, plus
    ``extra`` (training command, data, metrics...).
    """
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {
        "name": getattr(model, "isplab_name", type(model).__name__),
        "config": getattr(model, "isplab_config", {}),
        **(extra or {}),
    }
    text = json.dumps(meta, indent=2, default=str) + "\n"
    atomic_write(
        path, lambda tmp: save_file(state, tmp, metadata={"isplab": text}), overwrite=overwrite
    )
    atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
    return path


def read_weights_meta(path: str | Path) -> dict[str, Any]:
    """The name/config saved with a weights file (sidecar JSON, else the safetensors header)."""
    path = Path(path)
    side = sidecar_path(path)
    if side.exists():
        return json.loads(side.read_text())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("isplab", "{}"))


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a safetensors file into ``model`` (in place) and return it.

    Raises:
        InvalidInputError: missing or unreadable file, or keys/shapes that do not match.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("weights file not found", path)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise InvalidInputError(f"not a readable safetensors file ({exc})", path) from exc
    own = model.state_dict()
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise InvalidInputError("weights do not fit the model: " + "; ".join(bad[:5]), path)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise InvalidInputError(
            f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}",
            path,
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=strict)
    return model


def load_model(path: str | Path, **config: Any) -> nn.Module:
    """Build the model named in a weights file's metadata and load the weights."""
    from isplab.models.registry import create_model

    meta = read_weights_meta(path)
    if "name" not in meta:
        raise InvalidInputError("weights file carries no model name; use create_model", path)
    return create_model(meta["name"], weights=path, **{**meta.get("config", {}), **config})
