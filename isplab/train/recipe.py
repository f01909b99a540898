"""Training recipes: one YAML file per paper setting, overridable from the command line.

A recipe is a nested mapping; :data:`DEFAULTS` lists every key the trainer reads with its
default, and :func:`load_recipe` merges a file over them, applies ``--set a.b=value``
overrides (values parsed as YAML), and rejects unknown top-level and ``train`` keys so a
typo never silently does nothing. A recipe may name a base recipe with ``base: other.yaml``
(relative to its own folder); the base is loaded first and the recipe merged over it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from isplab.errors import InvalidInputError


class RecipeLoader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``5e-5``/``1e+3`` as floats (plain PyYAML
    needs a dot in the mantissa and would return the string ``"5e-5"``)."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML the way recipes are read (:class:`RecipeLoader`)."""
    return yaml.load(text, Loader=RecipeLoader)


DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "model": {"name": None, "config": {}, "forward": {}},
    # train/val: {"dataset": name or "module:Class", "args": {...}, "batch_size": n,
    #             "workers": n, "input_key": "raw", "target_key": "target"}
    "data": {"train": None, "val": None},
    # {loss name: weight} or {key: {"loss": name, "weight": w, **opts}} (isplab.losses)
    "losses": {"l1": 1.0},
    "loss_options": {},
    # name (adam | adamw | sgd) + the torch optimiser's own options (betas, weight_decay...)
    "optimizer": {"name": "adam", "lr": 1e-4},
    # {"name": "none" | "cosine" | "step" | "multistep" | "exponential", ...its options}
    "scheduler": {"name": "none"},
    # stages run in order; each may override steps, losses, model forward kwargs, optimizer,
    # scheduler, batch size and the target's scale (PyNET levels): {"name": "level5",
    # "steps": 1000, "losses": {...}, "forward": {"level": 5}, "target_scale": 0.03125}
    "stages": None,
    # what one step does: supervised (model(input) vs target with `losses`, the default) or
    # an isplab.train.objectives name with its options: {"name": "intrinsic", ...}
    "objective": {"name": "supervised"},
    "gan": None,  # {"discriminator": {"name": ..., "config": {}}, "loss": "gan",
                  #  "weight": 1.0, "optimizer": {...}, "d_steps": 1, "input": "gray"|"rgb"}
    "train": {
        "steps": 1000,
        "amp": "auto",            # auto = bf16/fp16 autocast on CUDA, off on CPU; or off|bf16|fp16
        "grad_clip": None,        # max global grad norm
        "ema": None,              # EMA decay (e.g. 0.999) or None
        "log_every": 10,
        "val_every": 500,
        "ckpt_every": 500,
        "keep_last": 3,
        "best_metric": "psnr",    # metric name from isplab.metrics; "-name" = lower is better
        "metrics": ["psnr", "ssim"],
        "max_nonfinite": 10,      # skipped non-finite steps before the run stops
        "max_seconds": None,      # wall-clock budget of this invocation: stop (and save) at
                                  # the first step that ends past it; None = run all steps
        "tensorboard": True,      # when the tb extra is installed
        "device": "auto",
        "threads": None,          # torch CPU threads (set it on a shared CPU: the default
                                  # oversubscribes a busy 2-core machine, 10x slower steps)
        "channels_last": False,   # NHWC model and inputs (faster convolutions on CPU)
        "deterministic": True,
        "val_max_batches": None,
    },
}

TRAIN_KEYS = set(DEFAULTS["train"])
TOP_KEYS = set(DEFAULTS) | {"base", "description", "paper"}


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` (mappings recursively, anything else replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=200"`` -> (["train", "steps"], 200); the value is parsed as YAML."""
    if "=" not in text:
        raise InvalidInputError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise InvalidInputError(f"--set expects key=value, got {text!r}")
    try:
        parsed = yaml_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"--set {key}: cannot parse value {value!r} ({exc})") from exc
    return keys, parsed


def apply_overrides(recipe: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides in place (creating mappings on the way)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = recipe
        for k in keys[:-1]:
            if k.isdigit() and isinstance(node, list):
                node = node[int(k)]
                continue
            if not isinstance(node.get(k), dict | list):
                node[k] = {}
            node = node[k]
        last = keys[-1]
        if last.isdigit() and isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return recipe


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInputError("recipe not found", path)
    try:
        data = yaml_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"not valid YAML: {exc}", path) from exc
    if not isinstance(data, dict):
        raise InvalidInputError("a recipe must be a mapping", path)
    base = data.pop("base", None)
    if base:
        data = deep_merge(_read_yaml((path.parent / base).resolve()), data)
    return data


def validate(recipe: Mapping[str, Any], source: str | Path | None = None) -> None:
    """Raise InvalidInputError for unknown keys or missing essentials."""
    unknown = set(recipe) - TOP_KEYS
    if unknown:
        raise InvalidInputError(f"unknown recipe keys {sorted(unknown)}; known: "
                                f"{sorted(TOP_KEYS)}", source)
    unknown = set(recipe.get("train") or {}) - TRAIN_KEYS
    if unknown:
        raise InvalidInputError(f"unknown train keys {sorted(unknown)}; known: "
                                f"{sorted(TRAIN_KEYS)}", source)
    if not (recipe.get("model") or {}).get("name"):
        raise InvalidInputError("the recipe names no model (model.name)", source)
    if not (recipe.get("data") or {}).get("train"):
        raise InvalidInputError("the recipe names no training data (data.train)", source)
    for i, stage in enumerate(recipe.get("stages") or []):
        if not isinstance(stage, Mapping) or "steps" not in stage:
            raise InvalidInputError(f"stage {i} needs 'steps'", source)


def load_recipe(path: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()) -> dict:
    """Read a recipe (a YAML path or a mapping), merge it over :data:`DEFAULTS`, apply the
    ``--set`` overrides and validate it."""
    if isinstance(path, Mapping):
        data, source = copy.deepcopy(dict(path)), None
    else:
        source = Path(path)
        data = _read_yaml(source)
    recipe = deep_merge(DEFAULTS, data)
    # losses replace rather than merge: a recipe's losses are the whole set
    if "losses" in data:
        recipe["losses"] = copy.deepcopy(data["losses"])
    apply_overrides(recipe, overrides)
    validate(recipe, source)
    return recipe


def stages_of(recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recipe's stages with every per-stage field resolved (a recipe without ``stages``
    is one stage of ``train.steps`` steps)."""
    raw = recipe.get("stages") or [{"name": "main", "steps": recipe["train"]["steps"]}]
    out = []
    for i, st in enumerate(raw):
        out.append({
            "name": st.get("name", f"stage{i}"),
            "steps": int(st["steps"]),
            "losses": st.get("losses", recipe["losses"]),
            "forward": {**recipe["model"].get("forward", {}), **st.get("forward", {})},
            "optimizer": deep_merge(recipe["optimizer"], st.get("optimizer", {})),
            "scheduler": deep_merge(recipe["scheduler"], st.get("scheduler", {})),
            "target_scale": float(st.get("target_scale", 1.0)),
            "batch_size": st.get("batch_size"),
        })
    return out
