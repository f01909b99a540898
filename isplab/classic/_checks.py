"""Input checks shared by the classic stages (clear errors instead of torch tracebacks)."""

from __future__ import annotations

import torch

from isplab.checks import check_image  # noqa: F401  (the classic stages import it here)
from isplab.errors import InvalidInputError


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
