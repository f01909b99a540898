"""Datasets, patch sampling with CFA-aware augmentation, and phone/DSLR alignment.

Datasets by name for recipes: :func:`create_dataset` / :func:`list_datasets`. The classes
are importable from here too (loaded on first use, so ``import isplab.data`` stays light).
"""

from __future__ import annotations

import importlib
from typing import Any

from isplab.errors import InvalidInputError
from isplab.registry import Registry

#: recipe name -> the class (imported on first use); one line each
DATASETS: Registry[tuple[str, str]] = Registry("dataset")
DATASETS.add("synthetic_raw", ("isplab.data.synthetic", "SyntheticRawDataset"),
             description="sRGB photos unprocessed on the fly into (raw, sRGB) pairs")
DATASETS.add("paired_raw_rgb", ("isplab.data.paired", "PairedRawRGBDataset"),
             description="raw + RGB folders: ZRR, `isplab synth`/`isplab align` output, "
             "raw/ + rgb/")
DATASETS.add("demosaic", ("isplab.data.demosaic", "DemosaicDataset"),
             description="RGB photos re-mosaiced (linear or sRGB), optional noise")
DATASETS.add("rgb_pairs", ("isplab.data.rgb_pairs", "RGBPairDataset"),
             description="sRGB -> sRGB pairs (SIDD, City100, input/ + target/)")
DATASETS.add("jdd_synthetic", ("isplab.data.jdd", "JDDDataset"),
             description="photos -> white-balanced noisy packed raw + noise map -> clean RGB "
             "(jdd_net)")
DATASETS.add("degraded_pairs", ("isplab.data.degraded", "DegradedPairDataset"),
             description="clean photos degraded (noise, texture, colour) -> the clean photo")
DATASETS.add("domains", ("isplab.data.domains", "DomainDataset"),
             description="photo patches degraded in one domain or clean, with StarGAN labels "
             "(MDIE)")
_EXPORTS = {e.obj[1]: e.obj[0] for e in DATASETS.entries()}


def list_datasets() -> dict[str, str]:
    """Dataset names usable in recipes -> description."""
    return DATASETS.describe()


def create_dataset(name: str, **args: Any):
    """The dataset registered as ``name`` built with ``args`` (a class name works too)."""
    key = next((e.name for e in DATASETS.entries() if name in (e.name, e.obj[1])), None)
    if key is None:
        raise InvalidInputError(f"unknown dataset {name!r}; choose from "
                                f"{', '.join(DATASETS.names())} or give 'module:Class'")
    module, cls = DATASETS.get(key)
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
