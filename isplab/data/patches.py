"""Patch sampling, per-item deterministic randomness and a DataLoader factory.

Determinism: every random choice an item makes (crop position, flips, noise, unprocessing
parameters) is drawn from :func:`item_generator` ``(seed, epoch, index)``, so an item is a pure
function of those three numbers: the same whatever the number of workers, the order in which
workers read, or a resume from a checkpoint. The loader of :func:`make_loader` carries the
epoch inside the sampler's keys (``(epoch, index)``), so it also reaches persistent workers;
call :func:`set_epoch` ``(loader, epoch)`` before each epoch (as with DistributedSampler).

Crops: raw data keeps its Bayer phase only when cropped at even mosaic offsets, so crops of
a full-resolution image that will be mosaiced, or of a target paired with packed raw, start at
even pixel offsets. For packed raw ``4 x h x w`` paired with a target ``C x 2h x 2w``, a crop
of ``p x p`` target pixels is ``p/2 x p/2`` packed pixels at half the target's offset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from isplab.errors import InvalidInputError


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch.Generator seeded by a hash of ``(seed, epoch, index)`` (NumPy SeedSequence).

    Nearby keys give unrelated streams; the stream depends on nothing else.
    """
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF,
                                    int(index) & 0xFFFFFFFF]).generate_state(2, np.uint32)
    value = (int(state[0]) << 31) ^ int(state[1])
    return torch.Generator().manual_seed(value & 0x7FFF_FFFF_FFFF_FFFF)


def random_offsets(height: int, width: int, patch_h: int, patch_w: int,
                   generator: torch.Generator | None = None, step: int = 2) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a random ``patch_h x patch_w`` window, both multiples of ``step``.

    Draws two integers from ``generator``. Raises InvalidInputError when the window does not fit.
    """
    if patch_h > height or patch_w > width:
        raise InvalidInputError(
            f"a {patch_h}x{patch_w} patch does not fit in a {height}x{width} image")
    ny = (height - patch_h) // step + 1
    nx = (width - patch_w) // step + 1
    y = int(torch.randint(0, ny, (1,), generator=generator)) * step
    x = int(torch.randint(0, nx, (1,), generator=generator)) * step
    return y, x


def center_offsets(height: int, width: int, patch_h: int, patch_w: int,
                   step: int = 2) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the central window, rounded down to multiples of ``step``."""
    if patch_h > height or patch_w > width:
        raise InvalidInputError(
            f"a {patch_h}x{patch_w} patch does not fit in a {height}x{width} image")
    return (height - patch_h) // 2 // step * step, (width - patch_w) // 2 // step * step


def random_crop(image: torch.Tensor, patch: int | tuple[int, int],
                generator: torch.Generator | None = None, step: int = 2) -> torch.Tensor:
    """Random ``... x p x p`` crop of ``... x H x W`` at offsets that are multiples of ``step``
    (2 keeps a mosaic's Bayer phase)."""
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    y, x = random_offsets(image.shape[-2], image.shape[-1], ph, pw, generator, step)
    return image[..., y:y + ph, x:x + pw]


def paired_random_crop(raw: torch.Tensor, target: torch.Tensor, patch: int,
                       generator: torch.Generator | None = None, scale: int = 2,
                       margin: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned crops of packed raw ``... x h x w`` and its target ``... x 2h x 2w``.

    Args:
        patch: crop size in **target** pixels (a multiple of ``scale``); the raw crop is
            ``patch / scale`` packed pixels.
        scale: target pixels per packed pixel (2 for packed Bayer raw).
        margin: extra packed pixels added to the raw crop (and ``scale * margin`` to the
            target's), e.g. 1 for :func:`~isplab.data.augment.bayer_augment_packed`.
    """
    if patch % scale:
        raise InvalidInputError(f"patch {patch} must be a multiple of {scale}")
    h, w = raw.shape[-2:]
    if tuple(target.shape[-2:]) != (scale * h, scale * w):
        raise InvalidInputError(
            f"target {tuple(target.shape)} is not {scale}x the packed raw {tuple(raw.shape)}")
    p = patch // scale + margin
    y, x = random_offsets(h, w, p, p, generator, step=1)
    return (raw[..., y:y + p, x:x + p],
            target[..., scale * y:scale * (y + p), scale * x:scale * (x + p)])


# --- loader -------------------------------------------------------------------------------


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a permutation of ``range(n)`` seeded by ``(seed, epoch)``
    (or the identity when ``shuffle`` is False). :meth:`set_epoch` chooses the epoch."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n, self.shuffle, self.seed, self.epoch = int(n), bool(shuffle), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=item_generator(self.seed, self.epoch, -1))
            order = order.tolist()
        else:
            order = range(self.n)
        for i in order:
            yield self.epoch, int(i)


class StepSampler(Sampler):
    """An endless stream of ``(epoch, index)`` keys: a fresh permutation of the dataset per
    epoch seeded by ``(seed, epoch)``, sharded across ranks, starting ``start`` keys in.

    Skipping to ``start`` is arithmetic (no data is read), which makes resume cheap.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1,
                 shuffle: bool = True):
        if n <= 0:
            raise InvalidInputError("the training dataset is empty")
        self.n, self.seed, self.start = n, seed, start
        self.rank, self.world, self.shuffle = rank, world, shuffle
        self.per_rank = math.ceil(n / world)

    def _epoch_keys(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = item_generator(self.seed, epoch, -1)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        perm += perm[: self.per_rank * self.world - self.n]  # equal shards
        return perm[self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            for index in self._epoch_keys(epoch)[offset:]:
                yield epoch, index
            epoch, offset = epoch + 1, 0


class EpochKeyed(Dataset):
    """Wraps a dataset so that a key ``(epoch, index)`` sets the epoch, in whichever worker
    reads it, before returning ``dataset[index]``; a plain integer key reads as is."""

    def __init__(self, dataset: Dataset, with_index: bool = False):
        self.dataset, self.with_index = dataset, bool(with_index)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            epoch, key = key
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
        item = self.dataset[key]
        if self.with_index and isinstance(item, dict) and "index" not in item:
            item = {**item, "index": int(key)}  # lets the trainer name a bad sample
        return item


def train_loader(dataset: Dataset, batch_size: int, workers: int = 0, seed: int = 0,
                 start: int = 0, rank: int = 0, world: int = 1, pin_memory: bool = False
                 ) -> DataLoader:
    """The trainer's loader: an endless :class:`StepSampler` stream (resumable at ``start``
    items by arithmetic, sharded over DDP ranks), items keyed by ``(epoch, index)`` so each
    item's randomness is a pure function of them, each batch carrying the dataset ``index``
    of its items. ``benchmarks/data_speed.py`` measures this loader."""
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    sampler = StepSampler(len(dataset), seed=seed, start=start, rank=rank, world=world)
    return DataLoader(EpochKeyed(dataset, with_index=True), batch_size=batch_size,
                      sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                      worker_init_fn=seed_worker, drop_last=False)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy's and Python's global RNGs from torch's
    per-worker seed (isplab datasets do not use them, user code might)."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def set_epoch(obj: Any, epoch: int) -> None:
    """Set the epoch of a loader from :func:`make_loader` (its sampler and dataset) or of a
    dataset (anything with ``set_epoch``)."""
    targets = [obj]
    if isinstance(obj, DataLoader):
        targets = [obj.sampler, obj.batch_sampler, obj.dataset]
    if isinstance(obj, EpochKeyed):
        targets.append(obj.dataset)
    seen = False
    for t in targets:
        if isinstance(t, EpochKeyed):
            t = t.dataset
        if t is not None and hasattr(t, "set_epoch"):
            t.set_epoch(int(epoch))
            seen = True
    if not seen:
        raise InvalidInputError(f"{type(obj).__name__} has no set_epoch")


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int = 2,
    shuffle: bool = True,
    seed: int = 0,
    pin_memory: bool | str = "auto",
    drop_last: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    start_method: str | None = None,
) -> DataLoader:
    """A DataLoader whose batches depend only on ``(seed, epoch)`` and the dataset's seed.

    Args:
        dataset: an isplab dataset (or any map-style dataset; ``set_epoch`` is optional).
        batch_size: items per batch.
        workers: worker processes (0 reads in the main process). Workers are persistent.
        shuffle: a fresh permutation per epoch seeded by ``(seed, epoch)``.
        seed: the order's seed (the items' own randomness comes from the dataset's seed).
        pin_memory: ``"auto"`` pins when CUDA is available.
        drop_last: drop a last incomplete batch; default ``shuffle`` (training).
        start_method: how workers start (``fork``, ``forkserver``, ``spawn``; None: the
            platform's default, ``fork`` on Linux). A long-lived process that has run
            onnxruntime, OpenCV or thread pools before should use ``forkserver``: a forked
            worker inherits their locks, and a finalizer that takes one hangs it.
        persistent_workers: keep workers between epochs; default ``workers > 0``.

    Call :func:`set_epoch` ``(loader, epoch)`` before iterating each epoch.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 0:
        raise InvalidInputError(f"workers must be >= 0, got {workers}")
    if len(dataset) == 0:
        raise InvalidInputError("the dataset is empty")
    if pin_memory == "auto":
        pin_memory = torch.cuda.is_available()
    if drop_last is None:
        drop_last = shuffle and len(dataset) >= batch_size
    if persistent_workers is None:
        persistent_workers = workers > 0
    extra: dict[str, Any] = {}
    if workers > 0:
        extra["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
        if start_method is not None:
            import multiprocessing

            extra["multiprocessing_context"] = multiprocessing.get_context(start_method)
    return DataLoader(
        EpochKeyed(dataset), batch_size=batch_size,
        sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=seed),
        num_workers=workers, pin_memory=bool(pin_memory), drop_last=bool(drop_last),
        worker_init_fn=seed_worker, **extra)


__all__ = [
    "EpochKeyed", "EpochSampler", "center_offsets", "item_generator", "make_loader",
    "paired_random_crop", "random_crop", "random_offsets", "seed_worker", "set_epoch",
]
