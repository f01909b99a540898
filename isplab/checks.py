"""The one input checker for image tensors (clear errors instead of torch tracebacks)."""

from __future__ import annotations

from typing import Any

from isplab.errors import InvalidInputError


def check_image(x: Any, channels: int | tuple[int, ...] | None, name: str = "image",
                finite: bool = False, batch: int | None = None) -> None:
    """Raise InvalidInputError unless ``x`` is a floating ``N x C x H x W`` torch tensor with
    ``C`` one of ``channels`` (None: any), ``N == batch`` when given, and, with ``finite``,
    no NaN or infinite value."""
    import torch

    allowed = (channels,) if isinstance(channels, int) else channels
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or (allowed is not None and x.shape[1] not in allowed) \
            or (batch is not None and x.shape[0] != batch):
        want = "C" if allowed is None else " or ".join(str(c) for c in allowed)
        raise InvalidInputError(f"{name} must have shape {batch or 'N'} x {want} x H x W, got "
                                f"{tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {x.dtype}")
    if finite and not torch.isfinite(x).all():
        bad = "NaN" if torch.isnan(x).any() else "infinite"
        raise InvalidInputError(f"{name} contains {bad} values")
