"""Datasets: synthetic raw from sRGB photos, paired raw/RGB folders, re-mosaiced RGB, sRGB pairs.

Every item is a dict of tensors that PyTorch's default collate batches:

- raw datasets give ``raw``: packed ``4 x h x w`` float32 in [0, 1] (R, G1, G2, B, linear
  camera values) and ``target``: ``3 x 2h x 2w`` float32 in [0, 1] (sRGB unless stated);
- :class:`RGBPairDataset` gives ``input`` and ``target``, both ``3 x H x W`` sRGB;
- all give ``name`` (a string, collated into a list) and may add extras (``noise_map``...).

``patch`` always counts **target (full-resolution) pixels** and must be even; the packed raw
of a ``p x p`` patch is ``p/2 x p/2``. Every random choice of item ``i`` comes from
:func:`~isplab.data.patches.item_generator` ``(seed, epoch, i)``: items do not depend on the
number of workers or the reading order; ``set_epoch`` picks the epoch (validation splits
ignore it). Files are read lazily and kept in a small per-process LRU cache of decoded images
(``cache_mb``); ``cache=True`` decodes everything up front instead (in the parent process, so
forked workers share it).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from isplab.data.augment import bayer_augment_packed, random_flags, transform
from isplab.data.patches import center_offsets, item_generator, random_offsets
from isplab.errors import InvalidInputError, IsplabError
from isplab.raw.cfa import check_pattern, mosaic, pack

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".webp")
#: suffixes tried as raw files in the ``folders`` layout (anything isplab.raw.read reads)
RAW_SUFFIXES = (".dng", ".png", ".tif", ".tiff", ".npy", ".nef", ".cr2", ".cr3", ".arw",
                ".raf", ".rw2", ".orf", ".pef", ".srw", ".kdc", ".raw", ".bin")
SPLITS = ("train", "val", "all")


# --- files --------------------------------------------------------------------------------


def data_root() -> Path:
    """The real-data folder: ``$ISPLAB_DATA`` when set, else ``../shared/data`` relative to
    the current directory (the project layout), else ``shared/data``, else the ``shared/data``
    beside the repository this package runs from (any working directory); the first that exists
    (``$ISPLAB_DATA`` or ``../shared/data`` when none does, so errors name it)."""
    env = os.environ.get("ISPLAB_DATA")
    if env:
        return Path(env)
    beside_repo = Path(__file__).resolve().parents[3] / "shared" / "data"
    for root in (Path.cwd().parent / "shared" / "data", Path("shared/data"), beside_repo):
        if root.is_dir():
            return root
    return Path.cwd().parent / "shared" / "data"


def default_synthetic_folders() -> list[Path]:
    """The training photos for synthetic raw: ``wikipedia_photos49`` and ``cbsd68`` in
    :func:`data_root`. Raises InvalidInputError when it does not hold them.
    """
    base = data_root()
    folders = [base / "wikipedia_photos49", base / "cbsd68"]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise InvalidInputError(
            f"training photos not found: {', '.join(missing)} (set $ISPLAB_DATA to the folder "
            "holding wikipedia_photos49/ and cbsd68/)")
    return folders


def list_images(folder: str | Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (sorted by name). Raises InvalidInputError for a
    missing folder or one without images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"no such folder (relative data folders are also looked up "
                                f"in the data root {data_root()}; set $ISPLAB_DATA)", folder)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
    if not files:
        raise InvalidInputError(f"no images ({', '.join(suffixes)}) in this folder", folder)
    return files


def resolve_data_folder(folder: str | Path) -> Path:
    """A data folder as a recipe names it: the path itself when it exists, else the same
    relative path under :func:`data_root` (``cbsd68``, or ``../shared/data/cbsd68`` written
    relative to the repo root, both find ``$ISPLAB_DATA/cbsd68`` from any directory)."""
    path = Path(folder)
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts
    for i in range(len(parts) - 1):
        if parts[i:i + 2] == ("shared", "data"):
            path = Path(*parts[i + 2:]) if len(parts) > i + 2 else Path()
            break
    candidate = data_root() / path
    return candidate if candidate.exists() else Path(folder)


def _as_folders(folders: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(folders, (str, Path)):
        return [resolve_data_folder(folders)]
    out = [resolve_data_folder(f) for f in folders]
    if not out:
        raise InvalidInputError("no folders given")
    return out


def split_files(files: Sequence[Path], split: str, val_fraction: float) -> list[Path]:
    """Deterministic train/val split by file: the ``round(n * val_fraction)`` files (at least
    one when ``val_fraction > 0``) with the smallest CRC32 of ``parent/name`` are ``val``,
    the rest ``train``; ``all`` keeps every file. Independent of seeds and of file order."""
    if split not in SPLITS:
        raise InvalidInputError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise InvalidInputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if split == "all" or val_fraction == 0.0:
        if split == "val":
            raise InvalidInputError("split='val' needs val_fraction > 0")
        return list(files)
    n_val = max(1, round(len(files) * val_fraction))
    if n_val >= len(files):
        raise InvalidInputError(
            f"val_fraction {val_fraction} leaves no training files out of {len(files)}")
    ranked = sorted(files, key=lambda p: (zlib.crc32(f"{p.parent.name}/{p.name}".encode()),
                                          str(p)))
    val = set(ranked[:n_val])
    return [f for f in files if (f in val) == (split == "val")]


def read_rgb_array(path: str | Path) -> np.ndarray:
    """An RGB image as ``H x W x 3`` uint8/uint16 (no conversion to float: crop first).

    Grey images are repeated to 3 channels, alpha dropped. Raises InvalidInputError."""
    import cv2

    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            arr = tifffile.imread(path)
        except Exception as exc:
            raise InvalidInputError(f"unreadable TIFF ({exc})", path) from exc
    else:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise InvalidInputError("not a readable image (missing, corrupt or unknown format)",
                                    path)
        if arr.ndim == 3:
            arr = arr[..., 2::-1] if arr.shape[2] >= 3 else arr[..., :1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise InvalidInputError(f"not an RGB image (shape {arr.shape})", path)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"unsupported image dtype {arr.dtype} (8/16-bit expected)", path)
    return np.ascontiguousarray(arr[..., :3])


def to_float(arr: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8/uint16 -> ``3 x H x W`` float32 in [0, 1]."""
    scale = 255.0 if arr.dtype == np.uint8 else 65535.0
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float()
    return t.div_(scale)


def transform_array(arr: np.ndarray, hflip: bool = False, vflip: bool = False,
                    transpose: bool = False) -> np.ndarray:
    """:func:`~isplab.data.augment.transform` for an ``H x W x C`` array (a view, no copy):
    flipping the 8-bit crop before :func:`to_float` copies a quarter of the bytes."""
    if transpose:
        arr = arr.transpose(1, 0, 2)
    if hflip:
        arr = arr[:, ::-1]
    if vflip:
        arr = arr[::-1]
    return arr


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


class _Store:
    """Decoded files by key: a per-process LRU cache bounded in bytes, plus an optional
    preloaded set (``cache=True``) that forked workers inherit. The LRU part is dropped when
    pickled (spawned workers start with an empty cache)."""

    def __init__(self, budget_mb: float):
        self.budget = int(budget_mb * 2**20)
        self.pinned: dict[Any, Any] = {}
        self._lru: OrderedDict[Any, Any] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any, load: Callable[[Any], Any]) -> Any:
        if key in self.pinned:
            return self.pinned[key]
        if key in self._lru:
            self._lru.move_to_end(key)
            return self._lru[key]
        value = load(key)
        size = _nbytes(value)
        if 0 < size <= self.budget:
            self._lru[key] = value
            self._bytes += size
            while self._bytes > self.budget:
                _, old = self._lru.popitem(last=False)
                self._bytes -= _nbytes(old)
        return value

    def preload(self, keys: Iterable[Any], load: Callable[[Any], Any], threads: int = 2) -> None:
        keys = list(keys)
        with ThreadPoolExecutor(max(1, threads)) as pool:  # decoders release the GIL
            for key, value in zip(keys, pool.map(load, keys), strict=True):
                self.pinned[key] = value

    def __getstate__(self) -> dict[str, Any]:
        return {"budget": self.budget, "pinned": self.pinned}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.budget, self.pinned = state["budget"], state["pinned"]
        self._lru, self._bytes = OrderedDict(), 0


def _check_patch(patch: int | None, name: str = "patch") -> int | None:
    if patch is None:
        return None
    patch = int(patch)
    if patch < 2 or patch % 2:
        raise InvalidInputError(f"{name} must be an even number >= 2, got {patch}")
    return patch


class _Base(Dataset):
    """Shared bits: seed/epoch, the item generator, the file cache, length by patches."""

    def __init__(self, seed: int, cache: bool, cache_mb: float, patches_per_image: int,
                 split: str = "all"):
        if int(patches_per_image) < 1:
            raise InvalidInputError(f"patches_per_image must be >= 1, got {patches_per_image}")
        self.seed, self.epoch, self.split = int(seed), 0, split
        self.patches_per_image = int(patches_per_image)
        self.cache = bool(cache)
        self._store = _Store(cache_mb)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops/augmentations/noise the items use."""
        self.epoch = int(epoch)

    def generator(self, index: int) -> torch.Generator:
        """The item's random stream (the epoch is ignored for ``split='val'``)."""
        return item_generator(self.seed, 0 if self.split == "val" else self.epoch, index)

    def _n_sources(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._n_sources() * self.patches_per_image

    def _source(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return (index % len(self)) // self.patches_per_image


def _random_or_center(h: int, w: int, p: int, gen: torch.Generator, random: bool,
                      step: int, path: Path) -> tuple[int, int]:
    try:
        if random:
            return random_offsets(h, w, p, p, gen, step)
        return center_offsets(h, w, p, p, step)
    except InvalidInputError as exc:
        raise InvalidInputError(exc.reason, path) from None


# --- synthetic raw ------------------------------------------------------------------------


class SyntheticRawDataset(_Base):
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


class DegradedPairDataset(_Base):
    """sRGB -> sRGB enhancement pairs made from clean photos: each patch degraded by the
    domains of :mod:`isplab.synth.degrade` (sensor noise in linear light, blur / down-up /
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
        from isplab.synth.degrade import DOMAINS

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
        from isplab.synth.degrade import degrade

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
            from isplab.classic import histogram_equalize

            target = histogram_equalize(clean[None])[0]
        return {"input": degraded.float().clamp(0, 1).contiguous(), "target": target,
                "name": f"{path.parent.name}/{path.stem}"}


# --- paired raw / RGB ---------------------------------------------------------------------


PAIRED_LAYOUTS = ("auto", "zrr", "isplab", "folders")
#: (black level, white level) of ZRR's Huawei P20 raw as PyNET reads it (LiteISP: black 63)
ZRR_LEVELS = (0.0, 1020.0)


def _match(inputs: dict[str, Path], targets: dict[str, Path], root: Path, what: str
           ) -> list[tuple[str, Path, Path]]:
    only_in = sorted(set(inputs) - set(targets))
    only_t = sorted(set(targets) - set(inputs))
    if only_in or only_t:
        def show(names):
            return ", ".join(names[:10]) + (f" ... ({len(names)} in all)" if len(names) > 10
                                            else "")
        parts = []
        if only_in:
            parts.append(f"{what[0]} without {what[1]}: {show(only_in)}")
        if only_t:
            parts.append(f"{what[1]} without {what[0]}: {show(only_t)}")
        raise InvalidInputError("unmatched pairs: " + "; ".join(parts), root)
    return [(k, inputs[k], targets[k]) for k in sorted(inputs)]


def _by_stem(files: Iterable[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise InvalidInputError(f"two files named {f.stem!r}: {out[f.stem].name}, {f.name}",
                                    folder)
        out[f.stem] = f
    return out


def _need_dir(root: Path, name: str) -> Path:
    d = root / name
    if not d.is_dir():
        raise InvalidInputError(f"missing folder {name}/", root)
    return d


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
        from isplab.raw import read

        _, raw_path, rgb_path = self.pairs[i]
        meta = self.meta(i)
        black = self.black_level if self.black_level is not None else meta.get("black_level")
        white = self.white_level if self.white_level is not None else meta.get("white_level")
        # a 4-channel packed file is R, G1, G2, B by definition; a DNG names its pattern
        image = read(raw_path, black_level=black, white_level=white, cfa=self.cfa)
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


# --- demosaicing --------------------------------------------------------------------------


class DemosaicDataset(_Base):
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
        files = [f for folder in _as_folders(folders) for f in list_images(folder)]
        self.files = split_files(files, split, val_fraction)
        if cache:
            self._store.preload(self.files, read_rgb_array)

    def _n_sources(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from isplab.classic import srgb_to_linear

        path = self.files[self._source(index)]
        img = self._store.get(path, read_rgb_array)
        gen = self.generator(index)
        if self.patch is None:
            h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
            rgb = to_float(img[:h, :w])
        else:
            p = self.patch
            y, x = _random_or_center(img.shape[0], img.shape[1], p, gen, True, 2, path)
            crop = img[y:y + p, x:x + p]
            if self.augment:
                crop = transform_array(crop, **random_flags(gen))
            rgb = to_float(crop)
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


# --- sRGB pairs ---------------------------------------------------------------------------


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


__all__ = [
    "DemosaicDataset", "PairedRawRGBDataset", "RGBPairDataset", "SyntheticRawDataset",
    "default_synthetic_folders", "list_images", "read_rgb_array", "transform_array",
    "split_files", "to_float",
]
