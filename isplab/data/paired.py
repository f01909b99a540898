"""Raw frames paired with RGB images: Zurich RAW-to-RGB, ``isplab synth`` / ``isplab align``
output, or ``raw/`` + ``rgb/`` folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isplab.data.augment import bayer_augment_packed, random_flags
from isplab.data.datasets import (
    RAW_SUFFIXES,
    _Base,
    _by_stem,
    _check_patch,
    _match,
    _need_dir,
    _random_or_center,
    list_images,
    read_rgb_array,
    to_float,
)
from isplab.errors import InvalidInputError
from isplab.raw import read as read_raw
from isplab.raw.cfa import check_pattern

PAIRED_LAYOUTS = ("auto", "zrr", "isplab", "folders")
#: (black level, white level) of ZRR's Huawei P20 raw as PyNET reads it (LiteISP: black 63)
ZRR_LEVELS = (0.0, 1020.0)


class PairedRawRGBDataset(_Base):
    """Raw frames paired with RGB images of the same scene at twice the packed resolution.

    Layouts (``layout="auto"`` picks by the folders present):

    - ``zrr``: Zurich RAW-to-RGB, ``huawei_raw/N.png`` (10-bit RGGB mosaic in a 16-bit grey
      PNG) + ``canon/N.jpg``; normalised as ``(x - black) / (white - black)`` with white
      1020 and black 0 by default (PyNET; LiteISP uses ``black_level=63``).
    - ``isplab``: what ``isplab synth`` writes, ``raw/ID.png`` (4-channel 16-bit packed) or
      ``raw/ID.dng`` + ``rgb/ID.png`` + ``meta/ID.json`` (levels are taken from the JSON).
    - ``folders``: ``raw/`` (any file :func:`isplab.raw.read` reads; DNG, camera raw,
      16-bit PNG...) + ``rgb/`` matched by file stem.

    ``black_level``, ``white_level`` and ``cfa`` override what the files (or the layout's
    defaults) say. The packed raw is R, G1, G2, B whatever the sensor's pattern; the target
    must be exactly twice its size (else InvalidInputError naming the file).

    Args:
        patch: None for whole frames, else random aligned crops of ``patch`` target pixels
            (``patch/2`` packed), ``patches_per_image`` per frame.
        augment: Bayer-preserving flips/transposes
            (:func:`~isplab.data.augment.bayer_augment_packed`); default on when ``patch``
            is set (it needs a crop: the window grows by one packed pixel).
        noise_map: for the ``isplab`` layout, add ``noise_map`` (per-pixel variance from the
            JSON's ``shot``/``read`` noise) to each item.

    Returns items ``raw`` 4 x h x w, ``target`` 3 x 2h x 2w (sRGB), ``name``.
    """

    def __init__(
        self,
        root: str | Path,
        layout: str = "auto",
        patch: int | None = None,
        black_level: float | Sequence[float] | None = None,
        white_level: float | None = None,
        cfa: str | None = None,
        augment: bool | None = None,
        patches_per_image: int = 1,
        seed: int = 0,
        noise_map: bool = False,
        cache: bool = False,
        cache_mb: float = 512,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image if patch else 1)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInputError("no such folder", self.root)
        if layout not in PAIRED_LAYOUTS:
            raise InvalidInputError(f"layout must be one of {PAIRED_LAYOUTS}, got {layout!r}")
        self.layout = self._detect() if layout == "auto" else layout
        self.patch = _check_patch(patch)
        if augment and self.patch is None:
            raise InvalidInputError("augment=True needs a patch size (the Bayer-preserving "
                                    "window is one packed pixel smaller than the frame)")
        self.augment = self.patch is not None if augment is None else bool(augment)
        self.black_level, self.white_level = black_level, white_level
        self.cfa = None if cfa is None else check_pattern(cfa)
        self.noise_map = bool(noise_map)
        if self.layout == "zrr":
            raws = _by_stem(list_images(_need_dir(self.root, "huawei_raw"), (".png",)),
                            self.root / "huawei_raw")
            rgbs = _by_stem(list_images(_need_dir(self.root, "canon")), self.root / "canon")
            self.pairs = _match(raws, rgbs, self.root, ("huawei_raw", "canon"))
            if self.black_level is None:
                self.black_level = ZRR_LEVELS[0]
            if self.white_level is None:
                self.white_level = ZRR_LEVELS[1]
            if self.cfa is None:
                self.cfa = "RGGB"
        else:
            raw_dir = _need_dir(self.root, "raw")
            raws = _by_stem(list_images(raw_dir, RAW_SUFFIXES), raw_dir)
            rgb_dir = _need_dir(self.root, "rgb")
            rgbs = _by_stem(list_images(rgb_dir), rgb_dir)
            self.pairs = _match(raws, rgbs, self.root, ("raw", "rgb"))
            if self.layout == "isplab":
                meta_dir = _need_dir(self.root, "meta")
                missing = [k for k, _, _ in self.pairs if not (meta_dir / f"{k}.json").is_file()]
                if missing:
                    raise InvalidInputError(
                        f"meta/ lacks the JSON of {len(missing)} pairs: {', '.join(missing[:10])}",
                        self.root)
        if noise_map and self.layout != "isplab":
            raise InvalidInputError("noise_map needs the isplab layout (noise levels in meta/)")
        if cache:
            self._store.preload(range(len(self.pairs)), self._load)

    def _detect(self) -> str:
        r = self.root
        if (r / "huawei_raw").is_dir() and (r / "canon").is_dir():
            return "zrr"
        if (r / "raw").is_dir() and (r / "rgb").is_dir():
            return "isplab" if (r / "meta").is_dir() else "folders"
        raise InvalidInputError(
            "cannot tell the layout: expected huawei_raw/ + canon/ (ZRR), raw/ + rgb/ + meta/ "
            "(isplab synth) or raw/ + rgb/ (folders)", r)

    def _n_sources(self) -> int:
        return len(self.pairs)

    def meta(self, i: int) -> dict[str, Any]:
        """The JSON metadata of pair ``i`` (isplab layout; {} otherwise)."""
        if self.layout != "isplab":
            return {}
        path = self.root / "meta" / f"{self.pairs[i][0]}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"unreadable metadata ({exc})", path) from exc

    def _load(self, i: int) -> tuple[torch.Tensor, np.ndarray, dict[str, Any]]:
        """(packed raw, RGB array, metadata incl. the sensor's ``cfa``) of pair ``i``."""
        _, raw_path, rgb_path = self.pairs[i]
        meta = self.meta(i)
        black = self.black_level if self.black_level is not None else meta.get("black_level")
        white = self.white_level if self.white_level is not None else meta.get("white_level")
        # a 4-channel packed file is R, G1, G2, B by definition; a DNG names its pattern
        image = read_raw(raw_path, black_level=black, white_level=white, cfa=self.cfa)
        raw = image.packed()[0]
        # where the packed channels sit in each 2x2 block (for the augmentation's geometry):
        # the sensor's pattern; a packed file written by `isplab synth` names it in its JSON
        cfa = meta.get("cfa", image.cfa) if image.extra.get("packed") else image.cfa
        rgb = read_rgb_array(rgb_path)
        if rgb.shape[:2] != (2 * raw.shape[1], 2 * raw.shape[2]):
            raise InvalidInputError(
                f"target is {rgb.shape[1]}x{rgb.shape[0]} but must be twice the packed raw "
                f"of {raw_path.name} ({2 * raw.shape[2]}x{2 * raw.shape[1]})", rgb_path)
        return raw.contiguous(), rgb, {**meta, "cfa": check_pattern(cfa)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._source(index)
        name, raw_path, _ = self.pairs[i]
        raw, rgb, meta = self._store.get(i, self._load)
        if self.patch is not None:
            gen = self.generator(index)
            m = 1 if self.augment else 0
            ph = self.patch // 2 + m
            y, x = _random_or_center(raw.shape[1], raw.shape[2], ph, gen, True, 1, raw_path)
            raw = raw[:, y:y + ph, x:x + ph]
            target = to_float(rgb[2 * y:2 * (y + ph), 2 * x:2 * (x + ph)])
            if self.augment:
                raw, target = bayer_augment_packed(raw, target, **random_flags(gen),
                                                   cfa=meta["cfa"])
        else:
            target = to_float(rgb)
        item = {"raw": raw.contiguous(), "target": target, "name": name}
        if self.noise_map:
            from isplab.synth.noise import noise_level_map

            noise = meta.get("noise") if isinstance(meta.get("noise"), dict) else meta
            shot = float(noise.get("shot") or 0.0)
            read = float(noise.get("read") or 0.0)
            item["noise_map"] = noise_level_map(item["raw"], shot, read).float()
        return item


__all__ = ["PAIRED_LAYOUTS", "ZRR_LEVELS", "PairedRawRGBDataset"]
