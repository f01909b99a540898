"""Black and white levels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from isplab.classic._checks import check_image
from isplab.raw.cfa import packed_offsets


def normalize_levels(
    mosaic: torch.Tensor,
    black_level: float | Sequence[float],
    white_level: float,
    cfa: str = "RGGB",
    clip: bool = True,
) -> torch.Tensor:
    """Subtract the black level and divide by ``white - black``, per CFA position.

    Args:
        mosaic: ``N x 1 x H x W`` raw values in sensor units (any float dtype).
        black_level: one value, or 4 values in packed order R, G1, G2, B.
        white_level: saturation value in sensor units.
        cfa: the mosaic's Bayer pattern, to place the per-channel black levels.
        clip: clip the result to [0, 1] (below-black noise and saturated pixels).

    Returns:
        ``N x 1 x H x W`` linear camera values, 0 at black, 1 at saturation.
    """
    check_image(mosaic, 1, "mosaic")
    blacks = torch.as_tensor(black_level, dtype=torch.float64).reshape(-1)
    if blacks.numel() == 1:
        blacks = blacks.expand(4)
    if blacks.numel() != 4:
        raise ValueError(f"black_level must be 1 or 4 values, got {blacks.numel()}")
    if not all(float(white_level) > float(b) for b in blacks):
        raise ValueError(f"white level {white_level} must exceed black level {blacks.tolist()}")
    if torch.all(blacks == blacks[0]):
        b = float(blacks[0])
        out = (mosaic - b) * (1.0 / (float(white_level) - b))
    else:
        out = torch.empty_like(mosaic)
        for ch, (dy, dx) in enumerate(packed_offsets(cfa)):
            b = float(blacks[ch])
            out[..., dy::2, dx::2] = (mosaic[..., dy::2, dx::2] - b) * (1.0 / (white_level - b))
    return out.clamp_(0.0, 1.0) if clip else out
