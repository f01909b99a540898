"""Synthetic raw: sRGB photos unprocessed on the fly into (raw, sRGB) pairs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isplab.data.datasets import (
    _check_patch,
    _Photos,
    to_float,
)
from isplab.errors import IsplabError
from isplab.raw.cfa import check_pattern


class SyntheticRawDataset(_Photos):
    """(raw, sRGB) pairs made on the fly from sRGB photos by unprocessing (Brooks et al. 2019).

    Item ``i``: photo ``i // patches_per_image``; a random ``patch x patch`` crop at even
    offsets; with ``augment`` a random flip/transpose of the sRGB crop (the raw is made
    afterwards, so its Bayer phase is right by construction); then
    :func:`isplab.synth.unprocess.unprocess` (random camera matrix, gains) and
    :func:`isplab.synth.noise.degrade` (shot/read noise, low light, quantisation).

    Returns:
        ``raw`` 4 x p/2 x p/2 (degraded linear raw, R, G1, G2, B, [0, 1]); ``target``
        3 x p x p (the clean sRGB crop); ``name``; ``rgb_to_cam``, ``cam_to_rgb`` 3x3,
        ``rgb_gain``, ``red_gain``, ``blue_gain`` (the camera: with ``cfa`` that is what
        :func:`isplab.synth.unprocess.process` needs);
        ``shot``, ``read`` (noise variances, 0 without noise); ``noise_map`` (variance per
        pixel, 4 x p/2 x p/2) when ``noise_map=True``.

    Args:
        folders: photo folders (e.g. :func:`default_synthetic_folders`).
        patch: crop size in sRGB pixels, even.
        cfa: the simulated sensor's pattern (the packed output is R, G1, G2, B anyway).
        noise, low_light, bit_depth: passed to ``degrade`` (``noise=False``,
            ``low_light=1`` and ``bit_depth=None`` give the clean raw).
        augment: random flips/transposes (train split only).
        patches_per_image: items per photo per epoch.
        seed: the items' seed. split, val_fraction: see :func:`split_files`; ``val``
            items ignore the epoch and are not augmented.
        noise_map: add the per-pixel noise variance map.
        cache, cache_mb: preload all photos / per-process LRU budget in MiB.
    """

    def __init__(
        self,
        folders: str | Path | Iterable[str | Path],
        patch: int = 256,
        cfa: str = "RGGB",
        noise: bool | dict = True,
        low_light: float = 1.0,
        bit_depth: int | None = None,
        augment: bool = True,
        patches_per_image: int = 1,
        seed: int = 0,
        split: str = "train",
        val_fraction: float = 0.1,
        noise_map: bool = False,
        cache: bool = False,
        cache_mb: float = 512,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image, split)
        try:
            from isplab.synth.noise import degrade, noise_level_map
            from isplab.synth.unprocess import unprocess
        except ImportError as exc:
            raise IsplabError(f"SyntheticRawDataset needs isplab.synth ({exc})") from exc
        self._unprocess, self._degrade, self._noise_level_map = unprocess, degrade, noise_level_map
        self.patch = _check_patch(patch)
        self.cfa = check_pattern(cfa)
        self.noise, self.low_light, self.bit_depth = noise, float(low_light), bit_depth
        self.augment = bool(augment) and split != "val"
        self.noise_map = bool(noise_map)
        self._use_photos(folders, split, val_fraction)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, img, gen = self._photo(index)
        crop = self._random_patch(img, gen, path)
        crop = np.ascontiguousarray(crop)
        srgb = to_float(crop)
        # 8-bit photos decode through the table of isplab.synth (same values, faster)
        source = torch.from_numpy(crop).permute(2, 0, 1) if crop.dtype == np.uint8 else srgb
        raw, meta = self._unprocess(source, generator=gen, cfa=self.cfa, packed=True)
        shot = read = 0.0
        if self.noise or self.low_light != 1.0 or self.bit_depth is not None:
            raw, info = self._degrade(raw, generator=gen, noise=self.noise,
                                      low_light=self.low_light, bit_depth=self.bit_depth)
            shot, read = float(info.get("shot") or 0.0), float(info.get("read") or 0.0)
        item = {
            "raw": raw.float().contiguous(),
            "target": srgb,
            "name": f"{path.parent.name}/{path.stem}",
            "rgb_to_cam": torch.as_tensor(meta["rgb_to_cam"], dtype=torch.float32),
            "cam_to_rgb": torch.as_tensor(meta["cam_to_rgb"], dtype=torch.float32),
            "rgb_gain": torch.tensor(float(meta["rgb_gain"])),
            "red_gain": torch.tensor(float(meta["red_gain"])),
            "blue_gain": torch.tensor(float(meta["blue_gain"])),
            "shot": torch.tensor(shot),
            "read": torch.tensor(read),
        }
        if self.noise_map:
            item["noise_map"] = self._noise_level_map(raw, shot, read).float()
        return item


__all__ = ["SyntheticRawDataset"]
