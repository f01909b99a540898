"""Model weights on disk: safetensors + a JSON sidecar with the model's name and config.

Loading never unpickles: safetensors only, shapes checked with a clear message.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from isplab.errors import InvalidInputError
from isplab.io import atomic_write
from isplab.weights_index import (  # noqa: F401  (re-exported: the torch-free half)
    PACKAGE_WEIGHTS,
    installed_weights,
    read_weights_meta,
    sidecar_path,
)

log = logging.getLogger(__name__)


def model_record(model: nn.Module) -> dict[str, Any]:
    """``{"name", "config"}`` of a model built by ``create_model`` (what loading needs)."""
    return {"name": getattr(model, "isplab_name", type(model).__name__),
            "config": getattr(model, "isplab_config", {})}


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
    text = json.dumps({**model_record(model), **(extra or {})}, indent=2, default=str) + "\n"
    atomic_write(
        path, lambda tmp: save_file(state, tmp, metadata={"isplab": text}), overwrite=overwrite
    )
    atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
    return path


def load_weights(model: nn.Module, path: str | Path, strict: bool = True,
                 grow: bool = False) -> nn.Module:
    """Load a safetensors file into ``model`` (in place) and return it.

    ``grow``: the model may have parameters the file lacks (a model grown from a smaller
    one keeps those as initialised); every tensor in the file must still be the model's.

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
    if grow and missing:
        log.info("%s: grown; new tensors keep their initialisation: %s", path, ", ".join(missing))
        missing = []
    if strict and (missing or unexpected):
        raise InvalidInputError(
            f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}",
            path,
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=strict and not grow)
    return model


def load_model(path: str | Path, **config: Any) -> nn.Module:
    """Build the model named in a weights file's record and load the weights.

    The name must be a registered model (``isplab models``): a weights file is data that
    people download and share, so nothing it says is imported or called. A model of one's
    own (``module:builder``, from a recipe) is built with
    ``create_model(spec, allow_import=True)`` and loaded with :func:`load_weights`.
    """
    from isplab.models.registry import create_model, is_registered

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("weights file not found", path)
    meta = read_weights_meta(path)
    name, saved = meta.get("name"), meta.get("config", {})
    if name is None:
        raise InvalidInputError("weights file carries no model name; build the model with "
                                "--isp NAME --weights FILE", path)
    if not is_registered(name):
        raise InvalidInputError(f"weights name model {str(name)[:80]!r}, which is not in "
                                "isplab's registry (isplab models); weights files never import "
                                "code", path)
    if not isinstance(saved, dict) or not all(isinstance(k, str) for k in saved):
        raise InvalidInputError("the model record's config is not a JSON object", path)
    return create_model(name, weights=path, **{**saved, **config})


def weights_file(spec: str | Path) -> Path | None:
    """The weights file a path stands for: a ``.safetensors`` file, or the
    ``model.safetensors`` of a training run, checkpoint (``runs/x/checkpoints/best``) or
    other folder; None when ``spec`` is neither."""
    path = Path(spec)
    if path.is_dir():
        inner = path / "model.safetensors"
        return inner if inner.is_file() else None
    if path.suffix == ".safetensors":
        return path
    return None


def resolve(spec: str | Path, weights: str | Path | None = None,
            allow_random: bool = False) -> nn.Module:
    """The one way a model is found from what a user typed (``--isp``, ``-m``, ``export``).

    ``spec`` is a weights file, a run / checkpoint folder (its ``model.safetensors``), or a
    registered name with ``weights`` (a safetensors file). A bare name builds a random
    initialisation only with ``allow_random`` (for export/evaluate smoke runs).

    Raises:
        InvalidInputError: unknown name, missing file, or a name without weights.
    """
    from isplab.models.registry import create_model, is_registered, list_models

    name = str(spec)
    if is_registered(name):
        if weights is not None:
            path = weights_file(weights) or Path(weights)
            if not path.is_file():
                raise InvalidInputError("weights file not found", path)
            recorded = read_weights_meta(path).get("name")
            if recorded == name:  # the file's own config (widths, options) builds the model
                return load_model(path)
            if recorded is not None and is_registered(recorded):
                raise InvalidInputError(f"these weights are for {recorded}, not {name}", path)
            return create_model(name, weights=path)
        if not allow_random:
            raise InvalidInputError(f"{name} needs weights (--weights FILE): an untrained "
                                    "model develops noise, not a photo")
        return create_model(name)
    if weights is not None:
        raise InvalidInputError(f"unknown model {name!r}; choose from "
                                f"{', '.join(list_models(include_private=False))}")
    path = weights_file(spec)
    if path is None:
        if Path(spec).is_dir():
            raise InvalidInputError("folder holds no model.safetensors (a finished training "
                                    "run or a checkpoint folder has one)", spec)
        raise InvalidInputError(f"unknown model {name!r}: a zoo name (isplab models), a "
                                "weights file or a training-run folder")
    return load_model(path)


def init_from(model: nn.Module, name: str, path: str | Path, grow: bool = False) -> None:
    """Warm start: load a weights file (``model.init`` in a recipe) into a new model.

    The file's recorded model name, when it has one, must be the recipe's; the optimizer and
    schedule start afresh (``--resume`` continues a run exactly, this does not). ``grow``
    (``model.init_grow: true``): the model may be a larger configuration of the file's (say
    ``jdd_net`` with ``refine``); its new parameters keep their initialisation."""
    recorded = read_weights_meta(path).get("name") if Path(path).is_file() else None
    if recorded is not None and recorded != str(name):
        raise InvalidInputError(f"model.init holds weights for {recorded}, not {name}", path)
    load_weights(model, path, grow=grow)
    log.info("model initialised from %s", path)
