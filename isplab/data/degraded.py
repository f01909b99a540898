"""Enhancement pairs from clean photos: each patch degraded (noise, texture, colour), the
clean patch as the target."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from isplab.classic import histogram_equalize
from isplab.data.datasets import (
    _check_patch,
    _Photos,
    to_float,
)
from isplab.errors import InvalidInputError
from isplab.synth.degradations import DOMAINS, degrade


class DegradedPairDataset(_Photos):
    """sRGB -> sRGB enhancement pairs made from clean photos: each patch degraded by the
    domains of :mod:`isplab.synth.degradations` (sensor noise in linear light, blur / down-up /
    JPEG texture loss, white-balance / tone casts), the clean patch as the target.

    For paired enhancement (MPSE phase 1, DPED-style models) without phone/DSLR pairs: train
    on ``wikipedia_photos49`` + ``cbsd68``, evaluate on the real pairs (SIDD, City100).

    Args:
        folders: folders of clean photos.
        patch: sRGB patch side (even).
        domains: degradations applied in this order, each with probability ``probability``.
        target_he: histogram-equalise the target's luminance (the MPSE ablation's
            "Contrast (HE)" targets, :func:`isplab.classic.histogram_equalize`).

    Returns items ``input``, ``target`` (``3 x patch x patch``), ``name``.
    """

    def __init__(
        self,
        folders: str | Path | Iterable[str | Path],
        patch: int = 128,
        domains: Sequence[str] = ("noise", "texture", "colour"),
        probability: float = 1.0,
        target_he: bool = False,
        augment: bool = True,
        patches_per_image: int = 1,
        seed: int = 0,
        split: str = "train",
        val_fraction: float = 0.1,
        cache: bool = False,
        cache_mb: float = 512,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image, split)
        unknown = set(domains) - set(DOMAINS)
        if unknown:
            raise InvalidInputError(f"unknown domains {sorted(unknown)}; choose from {DOMAINS}")
        if not 0.0 <= float(probability) <= 1.0:
            raise InvalidInputError(f"probability must be in [0, 1], got {probability}")
        self.patch = _check_patch(patch)
        self.domains, self.probability = tuple(domains), float(probability)
        self.target_he = bool(target_he)
        self.augment = bool(augment) and split != "val"
        self._use_photos(folders, split, val_fraction)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, img, gen = self._photo(index)
        crop = self._random_patch(img, gen, path)
        clean = to_float(crop)
        degraded = clean
        for domain in self.domains:
            if self.probability >= 1.0 or float(torch.rand(1, generator=gen)) < self.probability:
                degraded, _ = degrade(degraded, domain, gen)
        target = clean
        if self.target_he:
            target = histogram_equalize(clean[None])[0]
        return {"input": degraded.float().clamp(0, 1).contiguous(), "target": target,
                "name": f"{path.parent.name}/{path.stem}"}


__all__ = ["DegradedPairDataset"]
