"""Joint demosaicking + denoising pairs from photos (the ``jdd_net`` training data)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isplab.data.augment import random_flags
from isplab.data.datasets import (
    _check_patch,
    _Photos,
    to_float,
    transform_array,
)
from isplab.data.patches import random_offsets
from isplab.errors import InvalidInputError


def bilinear_error(rgb: torch.Tensor) -> float:
    """Mean |bilinear demosaic - image| of an RGGB re-mosaic of ``3 x H x W``: how hard a
    crop is to demosaic (edges, texture, colour detail score high)."""
    from isplab.models.common import packed_to_bilinear_rgb
    from isplab.raw.cfa import mosaic, pack

    est = packed_to_bilinear_rgb(pack(mosaic(rgb[None], "RGGB"), "RGGB"))
    return float((est[0, :, 2:-2, 2:-2] - rgb[:, 2:-2, 2:-2]).abs().mean())


class JDDDataset(_Photos):
    """``jdd_net`` pairs made on the fly from photos (:func:`isplab.synth.jdd.make_jdd_pair`).

    Item ``i``: photo ``i // patches_per_image``; with probability ``downscale`` the crop is
    taken at half scale (a ``2p`` region area-averaged to ``p``: sharper, with the photo's own
    demosaicking and JPEG traces averaged away); of ``hard`` candidate crops the one a
    bilinear demosaic gets most wrong is kept (hard-patch mining, Gharbi et al. 2016); a
    random flip/transpose; then a camera and noise drawn by
    :func:`isplab.synth.jdd.sample_jdd_params`.

    Returns ``input`` (``8 x p/2 x p/2``), ``target`` (``3 x p x p``), ``name``, ``shot``,
    ``read``, ``space`` (0 linear, 1 sRGB).

    Args:
        folders: photo folders (relative names resolve against the data root).
        patch: output crop size (even).
        downscale: probability of a half-scale crop.
        hard: candidate crops per item (1: no mining).
        srgb_fraction, clean_fraction, exposure_range, shot_range, map_jitter: see
            :func:`~isplab.synth.jdd.sample_jdd_params`.
        augment, patches_per_image, seed, split, val_fraction, cache, cache_mb: as in
            :class:`~isplab.data.synthetic.SyntheticRawDataset`.
    """

    def __init__(
        self,
        folders: str | Path | Iterable[str | Path],
        patch: int = 128,
        downscale: float = 0.5,
        hard: int = 2,
        srgb_fraction: float = 0.3,
        clean_fraction: float = 0.25,
        exposure_range: tuple[float, float] = (0.25, 1.0),
        shot_range: tuple[float, float] = (1e-4, 0.012),
        map_jitter: tuple[float, float] = (0.0, 0.0),
        augment: bool = True,
        patches_per_image: int = 1,
        seed: int = 0,
        split: str = "train",
        val_fraction: float = 0.05,
        cache: bool = False,
        cache_mb: float = 2048,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image, split)
        self.patch = _check_patch(patch)
        if not 0.0 <= float(downscale) <= 1.0 or int(hard) < 1:
            raise InvalidInputError(f"downscale must be in [0, 1] and hard >= 1, got "
                                    f"{downscale}, {hard}")
        self.downscale, self.hard = float(downscale), int(hard)
        self.options = {"srgb_fraction": float(srgb_fraction),
                        "clean_fraction": float(clean_fraction),
                        "exposure_range": tuple(float(v) for v in exposure_range),
                        "shot_range": tuple(float(v) for v in shot_range),
                        "map_jitter": tuple(float(v) for v in map_jitter)}
        self.augment = bool(augment) and split != "val"
        self._use_photos(folders, split, val_fraction)

    def _crop(self, img: np.ndarray, gen: torch.Generator, half: bool) -> torch.Tensor:
        import cv2

        p = self.patch
        side = 2 * p if half else p
        if min(img.shape[:2]) < side:
            side, half = p, False
        y, x = random_offsets(img.shape[0], img.shape[1], side, side, gen, 2)
        crop = img[y:y + side, x:x + side]
        if half:
            crop = cv2.resize(crop, (p, p), interpolation=cv2.INTER_AREA)
        return to_float(np.ascontiguousarray(crop))

    def __getitem__(self, index: int) -> dict[str, Any]:
        from isplab.synth.jdd import make_jdd_pair, sample_jdd_params

        path, img, gen = self._photo(index)
        if min(img.shape[:2]) < self.patch:
            raise InvalidInputError(f"image smaller than the {self.patch}-px patch", path)
        half = float(torch.rand(1, generator=gen)) < self.downscale
        crops = [self._crop(img, gen, half) for _ in range(self.hard)]
        rgb = max(crops, key=bilinear_error) if len(crops) > 1 else crops[0]
        if self.augment:
            flags = random_flags(gen)
            rgb = torch.from_numpy(transform_array(rgb.permute(1, 2, 0).numpy(), **flags)
                                   .copy()).permute(2, 0, 1).contiguous()
        params = sample_jdd_params(gen, **self.options)
        inp, target = make_jdd_pair(rgb, params, gen)
        return {"input": inp, "target": target, "name": f"{path.parent.name}/{path.stem}",
                "shot": torch.tensor(params.shot), "read": torch.tensor(params.read),
                "space": torch.tensor(int(params.space == "srgb"))}
