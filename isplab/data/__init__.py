"""Datasets, patch sampling with CFA-aware augmentation, and phone/DSLR alignment.

Datasets by name for recipes: :func:`create_dataset` / :func:`list_datasets`. The classes
are importable from here too (loaded on first use, so ``import isplab.data`` stays light).
"""

from __future__ import annotations

import importlib
from typing import Any

from isplab.errors import InvalidInputError

#: recipe name -> (module, class, one-line description)
_DATASETS: dict[str, tuple[str, str, str]] = {
    "synthetic_raw": ("isplab.data.datasets", "SyntheticRawDataset",
                      "sRGB photos unprocessed on the fly into (raw, sRGB) pairs"),
    "paired_raw_rgb": ("isplab.data.datasets", "PairedRawRGBDataset",
                       "raw + RGB folders: ZRR, `isplab synth`/`isplab align` output, raw/ + rgb/"),
    "demosaic": ("isplab.data.datasets", "DemosaicDataset",
                 "RGB photos re-mosaiced (linear or sRGB), optional noise"),
    "rgb_pairs": ("isplab.data.datasets", "RGBPairDataset",
                  "sRGB -> sRGB pairs (SIDD, City100, input/ + target/)"),
    "jdd_synthetic": ("isplab.data.jdd", "JDDDataset",
                      "photos -> white-balanced noisy packed raw + noise map -> clean RGB "
                      "(jdd_net)"),
    "degraded_pairs": ("isplab.data.datasets", "DegradedPairDataset",
                       "clean photos degraded (noise, texture, colour) -> the clean photo"),
    "domains": ("isplab.data.domains", "DomainDataset",
                "photo patches degraded in one domain or clean, with StarGAN labels (MDIE)"),
}

_EXPORTS = {cls: mod for mod, cls, _ in _DATASETS.values()}


def list_datasets() -> dict[str, str]:
    """Dataset names usable in recipes -> description."""
    return {name: desc for name, (_, _, desc) in _DATASETS.items()}


def create_dataset(name: str, **args: Any):
    """The dataset registered as ``name`` built with ``args`` (a class name works too)."""
    key = next((k for k, (_, cls, _) in _DATASETS.items() if name in (k, cls)), None)
    if key is None:
        raise InvalidInputError(f"unknown dataset {name!r}; choose from "
                                f"{', '.join(_DATASETS)} or give 'module:Class'")
    module, cls, _ = _DATASETS[key]
    factory = getattr(importlib.import_module(module), cls)
    try:
        return factory(**args)
    except TypeError as exc:
        raise InvalidInputError(f"bad arguments for dataset {name!r}: {exc}") from exc


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'isplab.data' has no attribute {name!r}")


__all__ = ["create_dataset", "list_datasets", *_EXPORTS]
