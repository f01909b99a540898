"""Input checks shared by the classic stages (clear errors instead of torch tracebacks)."""

from __future__ import annotations

import torch

from isplab.errors import InvalidInputError


def check_image(x: torch.Tensor, channels: int | tuple[int, ...], name: str = "image") -> None:
    """Raise InvalidInputError unless ``x`` is a floating N x C x H x W tensor with C allowed."""
    allowed = (channels,) if isinstance(channels, int) else tuple(channels)
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] not in allowed:
        want = " or ".join(str(c) for c in allowed)
        raise InvalidInputError(
            f"{name} must have shape N x {want} x H x W, got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {x.dtype}")


def as_gains(gains, n: int, ref: torch.Tensor) -> torch.Tensor:
    """Gains as an N x 3 tensor on ref's device/dtype from a 3-sequence, 3-tensor or N x 3."""
    g = torch.as_tensor(gains, dtype=ref.dtype, device=ref.device)
    if g.ndim == 1:
        g = g.expand(n, -1)
    if g.shape != (n, 3):
        raise InvalidInputError(f"gains must be 3 values or N x 3, got shape {tuple(g.shape)}")
    if not torch.isfinite(g).all() or (g <= 0).any():
        raise InvalidInputError(f"gains must be finite and positive, got {g.tolist()}")
    return g
