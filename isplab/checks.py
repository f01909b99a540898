"""The one input checker for image tensors (clear errors instead of torch tracebacks)."""

from __future__ import annotations

from typing import Any

from isplab.errors import InvalidInputError


def check_image(x: Any, channels: int | tuple[int, ...], name: str = "image") -> None:
    """Raise InvalidInputError unless ``x`` is a floating ``N x C x H x W`` torch tensor with
    ``C`` one of ``channels``."""
    import torch

    allowed = (channels,) if isinstance(channels, int) else tuple(channels)
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] not in allowed:
        want = " or ".join(str(c) for c in allowed)
        raise InvalidInputError(f"{name} must have shape N x {want} x H x W, got "
                                f"{tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {x.dtype}")
