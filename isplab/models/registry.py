"""The model registry: :func:`register_model`, :func:`create_model`, :func:`list_models`,
:func:`model_info`.

A model family registers one *builder* per variant name with the variant's default config
(timm's ``@register_model`` pattern): variants are config dicts, not copied classes::

    @register_model("pynet", paper="Ignatov et al., CVPR-W 2020", stride=32)
    def pynet(**config) -> nn.Module:
        return PyNET(**config)

    @register_model("pynet_small", paper=..., defaults={"width": 16})
    ...

The public contract of every registered model (unless ``input_space`` says otherwise):
packed raw ``N x 4 x h x w`` in R, G1, G2, B order, black-level subtracted, in [0, 1]
-> sRGB ``N x 3 x 2h x 2w`` in [0, 1] (``output_scale`` = 2).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from isplab.errors import InvalidInputError
from isplab.registry import Registry
from isplab.weights_index import MANIFEST

#: channels of each input space (``packed_raw_noise``: packed raw + its noise std map)
INPUT_CHANNELS = {"packed_raw": 4, "packed_raw_noise": 8, "srgb": 3, "linear_rgb": 3,
                  "mosaic": 1}

#: where model cards live in the source repository (documentation, not package data)
CARDS = "docs/models"


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    paper: str
    defaults: dict[str, Any] = field(default_factory=dict)
    input_space: str = "packed_raw"  # or "srgb", "linear_rgb", "mosaic"
    output_space: str = "srgb"
    output_scale: int = 2  # output side / input side
    stride: int = 1  # inputs are padded to a multiple of this inside the model
    card: str = ""  # docs/models/<card>.md
    public: bool = True  # False: a building block (discriminator) rather than an ISP
    tile_overlap: int = 32  # input pixels shared by tiles for seamless tiled inference
    parameters: int | None = None  # of the default config (tests check it against a build)


def _load_models() -> None:
    # importing the package imports every model file, which registers its models
    import isplab.models  # noqa: F401


MODELS: Registry[ModelEntry] = Registry("model", loader=_load_models)


def register_model(
    name: str,
    *,
    paper: str,
    description: str = "",
    defaults: dict[str, Any] | None = None,
    input_space: str = "packed_raw",
    output_space: str = "srgb",
    output_scale: int = 2,
    stride: int = 1,
    card: str | None = None,
    public: bool = True,
    tile_overlap: int = 32,
    parameters: int | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``builder(**config) -> nn.Module`` as ``name``.

    ``defaults`` are merged under the caller's config in :func:`create_model`; the
    description defaults to the first line of the builder's docstring. ``tile_overlap`` is
    the overlap (input pixels) tiled inference uses by default: models whose receptive
    field is wide need more than 32 for seamless tiles.
    """

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        old = MODELS.peek(name)
        if old is not None:
            if old.obj.builder is not builder:
                raise ValueError(f"model {name!r} is registered twice")
            return builder
        doc = (inspect.getdoc(builder) or "").strip().splitlines()
        entry = ModelEntry(
            name=name,
            builder=builder,
            description=description or (doc[0] if doc else name),
            paper=paper,
            defaults=dict(defaults or {}),
            input_space=input_space,
            output_space=output_space,
            output_scale=output_scale,
            stride=stride,
            card=card or name,
            public=public,
            tile_overlap=tile_overlap,
            parameters=parameters,
        )
        MODELS.add(name, entry, description=entry.description)
        return builder

    return deco


def _entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def model_entry(name: str) -> ModelEntry:
    """The registry's record of ``name`` (contract, stride, tile overlap) without building
    the model. Raises InvalidInputError for an unknown name."""
    return _entry(name)


def list_models(include_private: bool = True) -> dict[str, str]:
    """Registered model names -> one-line description (sorted by name).

    ``include_private=False`` leaves out building blocks such as discriminators.
    """
    return {e.name: e.obj.description for e in MODELS.entries()
            if include_private or e.obj.public}


def create_model(name: str, weights: str | Path | None = None, *, allow_import: bool = False,
                 **config: Any) -> nn.Module:
    """Build the model registered as ``name`` with its defaults updated by ``config``.

    Args:
        name: a name from :func:`list_models`. ``"module:builder"`` (a model of one's own,
            ``builder(**config) -> nn.Module``) is accepted only with ``allow_import=True``:
            it imports and calls code, which only a program the user chose to run (a training
            recipe) may ask for. Names read from files (weights, sidecars) never get it.
        weights: optional safetensors file to load (see :func:`isplab.models.load_weights`).
        allow_import: let ``name`` be ``"module:builder"`` (trusted callers only).
        **config: constructor options of the model.

    Raises:
        InvalidInputError: unknown name or options the model does not take.
    """
    if ":" in name:
        if not allow_import:
            raise InvalidInputError(f"model {name!r} is not in isplab's registry (isplab "
                                    "models lists it); module:builder names are imported only "
                                    "from a training recipe")
        module, attr = name.split(":", 1)
        try:
            builder = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"cannot import model {name!r}: {exc}") from exc
        opts = dict(config)
    else:
        entry = _entry(name)
        builder, opts = entry.builder, {**entry.defaults, **config}
    try:
        model = builder(**opts)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for model {name!r}: {exc}") from exc
    model.isplab_name = name  # type: ignore[attr-defined]
    model.isplab_config = opts  # type: ignore[attr-defined]
    if weights is not None:
        from isplab.models.weights import load_weights

        load_weights(model, weights)
    return model


def is_registered(name: object) -> bool:
    """True when ``name`` is a model name of the registry (never imports anything else)."""
    return name in MODELS


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_info(name: str, **config: Any) -> dict[str, Any]:
    """Facts about a model: description, paper, contract, default config, parameter count.

    The parameter count of the default config is the registry's (checked against a build
    by the tests); other configs build the model on the ``meta`` device (no memory).
    """
    entry = _entry(name)
    opts = {**entry.defaults, **config}
    parameters = entry.parameters
    if parameters is None or opts != entry.defaults:
        with torch.device("meta"):
            parameters = count_parameters(entry.builder(**opts))
    return {
        "name": entry.name,
        "description": entry.description,
        "paper": entry.paper,
        "input": entry.input_space,
        "in_channels": INPUT_CHANNELS.get(entry.input_space, 4),
        "output": entry.output_space,
        "output_scale": entry.output_scale,
        "stride": entry.stride,
        "config": opts,
        "parameters": parameters,
        "card": f"{CARDS}/{entry.card}.md",
        "public": entry.public,
        "tile_overlap": entry.tile_overlap,
    }




def manifest() -> dict[str, dict[str, Any]]:
    """:func:`model_info` of every registered model, JSON-ready: what :data:`MANIFEST` holds
    (a test checks the file against the registry; rewrite it with :func:`write_manifest`)."""
    import json

    return json.loads(json.dumps({n: model_info(n) for n in list_models()}))


def write_manifest() -> Path:
    """Write :data:`MANIFEST` from the registry:
    ``python -c "from isplab.models.registry import write_manifest; write_manifest()"``."""
    import json

    MANIFEST.write_text(json.dumps(manifest(), indent=1) + "\n")
    return MANIFEST


def gflops_per_megapixel(model: nn.Module, input_hw: tuple[int, int] = (128, 128),
                         channels: int = 4, output_scale: int = 2) -> float:
    """GFLOPs (multiply-add = 2 FLOPs, as ``torch.utils.flop_counter`` counts) per megapixel
    of *output*, measured with a forward pass on ``1 x channels x H x W`` zeros."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, channels, *input_hw)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    out_mp = input_hw[0] * input_hw[1] * output_scale**2 / 1e6
    return counter.get_total_flops() / 1e9 / out_mp
