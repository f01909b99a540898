"""RGB photos re-mosaiced through a Bayer CFA (the MSR demosaicing protocol), optional noise."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from isplab.classic import srgb_to_linear
from isplab.data.datasets import (
    _check_patch,
    _Photos,
    to_float,
)
from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, mosaic, pack


class DemosaicDataset(_Photos):
    """RGB photos re-mosaiced through a Bayer CFA (the MSR demosaicing protocol).

    ``space="linear"`` linearises the sRGB photo first (IEC 61966-2-1 curve) so that raw and
    target are linear RGB, as in the MSR dataset's linear variant; ``space="srgb"`` mosaics
    the sRGB values directly (the common Kodak/McMaster protocol).

    Returns ``raw``: the packed mosaic 4 x p/2 x p/2 (R, G1, G2, B, sampled with ``cfa`` at the
    target's pixels: R at the ``cfa``'s red positions), ``target``: 3 x p x p in ``space``,
    ``name``; with ``noise`` also ``noise_map`` (variance ``shot * raw + read`` computed on
    the noisy raw), ``shot`` and ``read``.

    Args:
        folders: RGB photo folders.
        patch: crop size (even), or None for whole images (cropped to even size).
        space: ``linear`` or ``srgb``.
        cfa: the pattern the mosaic is sampled with.
        noise: None (clean), ``(shot, read)`` variances, or ``"random"`` (Brooks et al.'s
            distribution per item, :func:`isplab.synth.noise.sample_noise_params`); added
            with :func:`isplab.synth.noise.add_noise`, then clipped to [0, 1].
        augment: random flips/transposes of the crop (train split only; needs ``patch``).
        split, val_fraction, patches_per_image, seed, cache, cache_mb: as in
            :class:`SyntheticRawDataset` (``split="all"`` by default).
    """

    def __init__(
        self,
        folders: str | Path | Iterable[str | Path],
        patch: int | None = 128,
        space: str = "linear",
        cfa: str = "RGGB",
        noise: None | tuple[float, float] | str = None,
        augment: bool = True,
        patches_per_image: int = 1,
        seed: int = 0,
        split: str = "all",
        val_fraction: float = 0.0,
        cache: bool = False,
        cache_mb: float = 512,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image if patch else 1, split)
        if space not in ("linear", "srgb"):
            raise InvalidInputError(f"space must be 'linear' or 'srgb', got {space!r}")
        if not (noise is None or noise == "random" or
                (isinstance(noise, (tuple, list)) and len(noise) == 2
                 and all(float(v) >= 0 for v in noise))):
            raise InvalidInputError(
                f"noise must be None, 'random' or (shot, read) variances >= 0, got {noise!r}")
        self.patch = _check_patch(patch)
        self.space, self.cfa = space, check_pattern(cfa)
        self.noise = tuple(float(v) for v in noise) if isinstance(noise, (tuple, list)) else noise
        self.augment = bool(augment) and self.patch is not None and split != "val"
        self._use_photos(folders, split, val_fraction)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, img, gen = self._photo(index)
        if self.patch is None:
            h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
            rgb = to_float(img[:h, :w])
        else:
            rgb = to_float(self._random_patch(img, gen, path))
        if self.space == "linear":
            rgb = srgb_to_linear(rgb)
        raw = pack(mosaic(rgb[None], self.cfa), self.cfa)[0]
        item: dict[str, Any] = {"raw": raw, "target": rgb, "name": path.stem}
        if self.noise is not None:
            from isplab.synth.noise import add_noise, sample_noise_params

            if self.noise == "random":
                levels = sample_noise_params(gen)
                shot, read = levels["shot"], levels["read"]
            else:
                shot, read = self.noise
            raw = add_noise(raw, shot, read, gen).clamp_(0.0, 1.0)
            item.update(raw=raw, noise_map=raw * shot + read, shot=torch.tensor(shot),
                        read=torch.tensor(read))
        return item


__all__ = ["DemosaicDataset"]
