"""Tiny models and datasets for the trainer tests (importable as ``tests.train_toys:...``)."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn


class ToyPairs(torch.utils.data.Dataset):
    """Packed raw 4 x s x s -> target 3 x 2s x 2s; each item a pure function of
    (seed, epoch, index). ``nan_indices`` give NaN inputs; ``delay`` slows each item."""

    def __init__(self, n: int = 16, size: int = 8, seed: int = 0, delay: float = 0.0,
                 nan_indices: tuple[int, ...] = ()):
        self.n, self.size, self.seed, self.delay = n, size, seed, delay
        self.nan = set(nan_indices)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if self.delay:
            time.sleep(self.delay)
        g = torch.Generator().manual_seed(self.seed * 7 + self.epoch * 1000 + index)
        raw = torch.rand(4, self.size, self.size, generator=g)
        target = F.interpolate(raw[None, [0, 1, 3]], scale_factor=2, mode="nearest")[0] ** 0.5
        if index in self.nan:
            raw = raw * math.nan
        return {"raw": raw, "target": target.clamp(0, 1)}


class TinyISP(nn.Module):
    """Packed raw -> RGB at 2x; ``level=1`` returns half that size (a staged schedule)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 12, 3, padding=1))

    def forward(self, x: torch.Tensor, level: int = 0) -> torch.Tensor:
        y = torch.sigmoid(F.pixel_shuffle(self.body(x), 2))
        return F.avg_pool2d(y, 2) if level == 1 else y


def tiny_isp(**config) -> nn.Module:
    return TinyISP(**config)


class TinyDisc(nn.Module):
    """RGB -> 2 logits (DPED-style two-class output)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.leaky_relu(self.conv(x), 0.2).mean((2, 3)))


def tiny_disc(**config) -> nn.Module:
    return TinyDisc(**config)
