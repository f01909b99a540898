"""A raw file's orientation (LibRaw's ``flip``): how to turn the developed image upright."""

from __future__ import annotations

from typing import Any

import numpy as np

#: EXIF-like flip code -> quarter turns (``rot90`` k): 3 = 180 deg, 5 = 90 CCW, 6 = 90 CW
ORIENTATION_TURNS = {3: 2, 5: 1, 6: -1}


def orient(image: Any, flip: int) -> Any:
    """Turn a developed image upright: a torch tensor ``N x C x H x W`` or a NumPy array
    ``H x W x C`` (returned contiguous)."""
    k = ORIENTATION_TURNS.get(int(flip), 0)
    if not k:
        return image
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(np.rot90(image, k))
    import torch

    return torch.rot90(image, k, dims=(2, 3))
