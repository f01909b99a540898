"""sRGB -> sRGB pairs of the same size: SIDD, City100, ``input/`` + ``target/`` folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from isplab.data.augment import random_flags, transform
from isplab.data.datasets import (
    IMAGE_SUFFIXES,
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

RGB_LAYOUTS = ("auto", "sidd", "city100", "folders")


class RGBPairDataset(_Base):
    """sRGB -> sRGB pairs of the same size: items ``input``, ``target`` (3 x H x W), ``name``.

    Layouts (``auto`` picks by what is present):

    - ``sidd``: ``noisy/`` + ``gt/``, names matched with ``NOISY`` <-> ``GT``
      (``NOISY_3.png`` / ``GT_3.png``, ``0001_NOISY_SRGB_010.PNG`` / ``..._GT_SRGB_010.PNG``):
      input noisy, target clean.
    - ``city100``: ``{id}L.PNG`` + ``{id}H.PNG`` in one folder (Camera Lens Super-Resolution,
      iPhone X): input ``L`` (short focal length, less detail), target ``H`` (long focal
      length), aligned and the same size.
    - ``folders``: ``input/`` + ``target/`` matched by file stem.

    ``patch`` (None = whole images): random aligned crops, ``patches_per_image`` per pair;
    ``augment`` (default: on when ``patch`` is set): the same random flip/transpose on both.
    """

    def __init__(
        self,
        root: str | Path,
        layout: str = "auto",
        patch: int | None = None,
        augment: bool | None = None,
        patches_per_image: int = 1,
        seed: int = 0,
        cache: bool = False,
        cache_mb: float = 512,
    ):
        super().__init__(seed, cache, cache_mb, patches_per_image if patch else 1)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInputError("no such folder", self.root)
        if layout not in RGB_LAYOUTS:
            raise InvalidInputError(f"layout must be one of {RGB_LAYOUTS}, got {layout!r}")
        self.layout = self._detect() if layout == "auto" else layout
        self.patch = _check_patch(patch)
        self.augment = self.patch is not None if augment is None else bool(augment)
        r = self.root
        if self.layout == "sidd":
            noisy, gt = _need_dir(r, "noisy"), _need_dir(r, "gt")
            ins = _by_stem(list_images(noisy), noisy)
            tgs = _by_stem(list_images(gt), gt)
            ins = {re.sub("noisy", "GT", k, flags=re.I).upper(): v for k, v in ins.items()}
            tgs = {k.upper(): v for k, v in tgs.items()}
            self.pairs = _match(ins, tgs, r, ("noisy", "gt"))
        elif self.layout == "city100":
            files = list_images(r)
            ins = {f.stem[:-1]: f for f in files if f.stem[-1:].upper() == "L"}
            tgs = {f.stem[:-1]: f for f in files if f.stem[-1:].upper() == "H"}
            if not ins and not tgs:
                raise InvalidInputError("no {id}L / {id}H image pairs (City100 layout)", r)
            self.pairs = _match(ins, tgs, r, ("L (input)", "H (target)"))
        else:
            a, b = _need_dir(r, "input"), _need_dir(r, "target")
            self.pairs = _match(_by_stem(list_images(a), a), _by_stem(list_images(b), b), r,
                                ("input", "target"))
        if cache:
            self._store.preload(range(len(self.pairs)), self._load)

    def _detect(self) -> str:
        r = self.root
        if (r / "noisy").is_dir() and (r / "gt").is_dir():
            return "sidd"
        if (r / "input").is_dir() and (r / "target").is_dir():
            return "folders"
        if any(p.stem[-1:].upper() in "LH" and p.suffix.lower() in IMAGE_SUFFIXES
               for p in r.iterdir()):
            return "city100"
        raise InvalidInputError(
            "cannot tell the layout: expected noisy/ + gt/ (SIDD), input/ + target/ (folders) "
            "or {id}L / {id}H images (City100)", r)

    def _n_sources(self) -> int:
        return len(self.pairs)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        _, a_path, b_path = self.pairs[i]
        a, b = read_rgb_array(a_path), read_rgb_array(b_path)
        if a.shape != b.shape:
            raise InvalidInputError(
                f"input {a.shape[1]}x{a.shape[0]} and target {b.shape[1]}x{b.shape[0]} "
                f"({b_path.name}) differ in size", a_path)
        return a, b

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._source(index)
        name, a_path, _ = self.pairs[i]
        a, b = self._store.get(i, self._load)
        if self.patch is not None:
            gen = self.generator(index)
            p = self.patch
            y, x = _random_or_center(a.shape[0], a.shape[1], p, gen, True, 1, a_path)
            inp, tgt = to_float(a[y:y + p, x:x + p]), to_float(b[y:y + p, x:x + p])
            if self.augment:
                flags = random_flags(gen)
                inp, tgt = transform(inp, **flags), transform(tgt, **flags)
        else:
            inp, tgt = to_float(a), to_float(b)
        return {"input": inp, "target": tgt, "name": name}


__all__ = ["RGB_LAYOUTS", "RGBPairDataset"]
