"""Enhancement pairs from clean photos: each patch degraded (noise, texture, colour), the
clean patch as the target."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from isplab.classic import histogram_equalize
from isplab.data.augment import random_flags
from isplab.data.datasets import (
    _as_folders,
    _Base,
    _check_patch,
    _random_or_center,
    list_images,
    read_rgb_array,
    split_files,
    to_float,
    transform_array,
)
from isplab.errors import InvalidInputError
from isplab.synth.degradations import DOMAINS, degrade


class DegradedPairDataset(_Base):
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
        files = [f for folder in _as_folders(folders) for f in list_images(folder)]
        self.files = split_files(files, split, val_fraction)
        if cache:
            self._store.preload(self.files, read_rgb_array)

    def _n_sources(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[self._source(index)]
        img = self._store.get(path, read_rgb_array)
        gen = self.generator(index)
        p = self.patch
        y, x = _random_or_center(img.shape[0], img.shape[1], p, gen, True, 2, path)
        crop = img[y:y + p, x:x + p]
        if self.augment:
            crop = transform_array(crop, **random_flags(gen))
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
