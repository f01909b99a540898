"""Black and white levels: raw values in sensor units -> [0, 1] linear camera values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from isplab.checks import check_image
from isplab.raw.cfa import packed_offsets


def normalize_levels(mosaic: Any, black_level: float | Sequence[float], white_level: float,
                     cfa: str = "RGGB", clip: bool = True) -> Any:
    """Subtract the black level and divide by ``white - black``, per CFA position.

    Args:
        mosaic: raw values in sensor units, a NumPy array ``H x W`` or a torch tensor
            ``N x 1 x H x W`` (any float dtype; the result has the same type and shape).
        black_level: one value, or 4 values in packed order R, G1, G2, B.
        white_level: saturation value in sensor units.
        cfa: the mosaic's Bayer pattern, to place the per-channel black levels.
        clip: clip the result to [0, 1] (below-black noise and saturated pixels).

    Returns:
        Linear camera values, 0 at black, 1 at saturation.
    """
    if not isinstance(mosaic, np.ndarray):
        check_image(mosaic, 1, "mosaic")
    blacks = np.asarray(black_level, dtype=np.float64).reshape(-1)
    if blacks.size == 1:
        blacks = np.repeat(blacks, 4)
    if blacks.size != 4:
        raise ValueError(f"black_level must be 1 or 4 values, got {blacks.size}")
    if not all(float(white_level) > float(b) for b in blacks):
        raise ValueError(f"white level {white_level} must exceed black level {blacks.tolist()}")
    if np.all(blacks == blacks[0]):
        b = float(blacks[0])
        out = (mosaic - b) * (1.0 / (float(white_level) - b))
    else:
        out = mosaic * 0.0
        for ch, (dy, dx) in enumerate(packed_offsets(cfa)):
            b = float(blacks[ch])
            out[..., dy::2, dx::2] = (mosaic[..., dy::2, dx::2] - b) * (1.0 / (white_level - b))
    if not clip:
        return out
    if isinstance(out, np.ndarray):
        return np.clip(out, 0.0, 1.0, out=out)
    return out.clamp_(0.0, 1.0)
