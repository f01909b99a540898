"""Pieces shared by :mod:`isplab.models.pynet` (PyNET) and :mod:`isplab.models.pynet_lite`
(PyNET-V2 Mobile): input padding, level cropping and level checks.

Not a model family: the leading underscore keeps :mod:`isplab.models` from importing it as one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError
from isplab.models.common import pad_to_multiple


def _pad_input(x: torch.Tensor, multiple: int, minimum: int) -> tuple[torch.Tensor,
                                                                      tuple[int, int]]:
    """Pad ``x`` (bottom/right) to a multiple of ``multiple`` and to at least ``minimum``
    (itself a multiple) on both sides; returns the padded tensor and the original size."""
    x, size = pad_to_multiple(x, multiple)
    h, w = x.shape[-2:]
    ph, pw = max(0, minimum - h), max(0, minimum - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, size


def _crop_level(y: torch.Tensor, size: tuple[int, int], num: int, den: int) -> torch.Tensor:
    """Crop ``y`` to ``ceil(size * num / den)`` (the output of a level at scale num/den)."""
    return y[..., : -(-size[0] * num // den), : -(-size[1] * num // den)]


def _check_level(level: int, first: int, count: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not first <= level < first + count:
        raise InvalidInputError(
            f"level must be an integer in {first}..{first + count - 1}, got {level!r}"
        )
    return level
