"""What every dataset shares: data folders, file lists and splits, image decoding, the cache.

The datasets, one module per kind (all importable from :mod:`isplab.data`):

- :mod:`~isplab.data.synthetic`: :class:`SyntheticRawDataset` (raw unprocessed from sRGB photos);
- :mod:`~isplab.data.paired`: :class:`PairedRawRGBDataset` (raw + RGB folders);
- :mod:`~isplab.data.demosaic`: :class:`DemosaicDataset` (RGB photos re-mosaiced);
- :mod:`~isplab.data.rgb_pairs`: :class:`RGBPairDataset` (sRGB -> sRGB pairs);
- :mod:`~isplab.data.degraded`: :class:`DegradedPairDataset` (clean photos degraded);
- :mod:`~isplab.data.jdd`, :mod:`~isplab.data.domains`: the ``jdd_net`` and MDIE data.

Every item is a dict of tensors that PyTorch's default collate batches:

- raw datasets give ``raw``: packed ``4 x h x w`` float32 in [0, 1] (R, G1, G2, B, linear
  camera values) and ``target``: ``3 x 2h x 2w`` float32 in [0, 1] (sRGB unless stated);
- sRGB datasets (:class:`RGBPairDataset`...) give ``input`` and ``target``, both ``3 x H x W``;
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

import os
import zlib
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from isplab.data.patches import center_offsets, item_generator, random_offsets
from isplab.errors import InvalidInputError
from isplab.formats import IMAGE_SUFFIXES, RAW_SUFFIXES  # photos; anything isplab.raw.read reads

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


def list_images(folder: str | Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (sorted by name) whose suffix is in ``suffixes``
    (RGB photos by default; :data:`RAW_SUFFIXES` for raws). Raises InvalidInputError for a
    missing folder or one without images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"no such folder (relative data folders are also looked up "
                                f"in the data root {data_root()}; set $ISPLAB_DATA)", folder)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
    if not files:
        raise InvalidInputError(f"no images ({', '.join(sorted(suffixes))}) in this folder",
                                folder)
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



class _Photos(_Base):
    """A dataset made from the photos of some folders, one source per photo file."""

    def _use_photos(self, folders, split: str, val_fraction: float) -> None:
        """``self.files``: the ``split`` of the photos in ``folders`` (read into the cache now
        when the dataset caches)."""
        files = [f for folder in _as_folders(folders) for f in list_images(folder)]
        self.files = split_files(files, split, val_fraction)
        if self.cache:
            self._store.preload(self.files, read_rgb_array)

    def _n_sources(self) -> int:
        return len(self.files)

    def _photo(self, index: int) -> tuple[Path, np.ndarray, torch.Generator]:
        """Item ``index``'s photo file, its pixels and its random stream."""
        path = self.files[self._source(index)]
        return path, self._store.get(path, read_rgb_array), self.generator(index)

    def _random_patch(self, img: np.ndarray, gen: torch.Generator, path: Path) -> np.ndarray:
        """A random ``self.patch`` square of ``img`` at even offsets, flipped/transposed by
        ``gen`` when ``self.augment``."""
        from isplab.data.augment import random_flags

        p = self.patch
        y, x = _random_or_center(img.shape[0], img.shape[1], p, gen, True, 2, path)
        crop = img[y:y + p, x:x + p]
        return transform_array(crop, **random_flags(gen)) if self.augment else crop


# --- pairs of files -----------------------------------------------------------------------


def _match(inputs: dict[str, Path], targets: dict[str, Path], root: Path,
           what: tuple[str, str]) -> list[tuple[str, Path, Path]]:
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


__all__ = [
    "IMAGE_SUFFIXES", "RAW_SUFFIXES", "SPLITS", "data_root", "default_synthetic_folders",
    "list_images", "read_rgb_array", "resolve_data_folder", "split_files", "to_float",
    "transform_array",
]
