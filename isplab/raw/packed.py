"""Packed raw as a 4-channel 16-bit PNG: the on-disk form of `isplab synth` and `isplab align`.

Channels R, G, B, A of the PNG hold R, G1, G2, B; :func:`isplab.raw.read` reads it back in
that order (with the black and white levels the dataset's JSON records).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isplab.errors import InvalidInputError, IsplabError
from isplab.io import atomic_write


def write_packed_png(path: str | Path, packed: np.ndarray, overwrite: bool = False) -> Path:
    """Write a packed raw ``4 x h x w`` uint16 (R, G1, G2, B) as a 4-channel 16-bit PNG,
    atomically (OpenCV writes BGRA, hence the reordering)."""
    import cv2

    path = Path(path)
    if packed.ndim != 3 or packed.shape[0] != 4 or packed.dtype != np.uint16:
        raise InvalidInputError(f"expected a 4 x h x w uint16 array, got {packed.shape} "
                                f"{packed.dtype}", path)
    bgra = np.ascontiguousarray(np.moveaxis(packed, 0, -1)[..., [2, 1, 0, 3]])

    def _write(tmp: str) -> None:
        if not cv2.imwrite(tmp, bgra):
            raise IsplabError("OpenCV could not write the PNG", path)

    return atomic_write(path, _write, overwrite)
