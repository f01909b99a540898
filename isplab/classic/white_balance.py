"""White balance: applying gains and estimating them (gray world, white patch).

Gains are always given as (R, G, B) multipliers, normalised to G = 1 by the estimators.
"""

from __future__ import annotations

import torch

from isplab.classic._checks import as_gains, check_image
from isplab.raw.cfa import pack, packed_offsets

_RGB_OF_PACKED = (0, 1, 1, 2)


def apply_white_balance(
    x: torch.Tensor, gains, cfa: str | None = None, clip: bool = False
) -> torch.Tensor:
    """Multiply each colour by its gain.

    Args:
        x: linear camera data, either an RGB image ``N x 3 x H x W``, a packed raw
            ``N x 4 x h x w`` (R, G1, G2, B) or a mosaic ``N x 1 x H x W`` (then ``cfa``
            is required).
        gains: (R, G, B) gains, a 3-sequence or an ``N x 3`` tensor.
        cfa: Bayer pattern of a mosaic input.
        clip: clip the result at 1 (saturated highlights stay white, as LibRaw does).

    Returns:
        Same shape as ``x``.
    """
    check_image(x, (1, 3, 4), "x")
    g = as_gains(gains, x.shape[0], x)
    if x.shape[1] == 3:
        out = x * g[:, :, None, None]
    elif x.shape[1] == 4:
        out = x * g[:, list(_RGB_OF_PACKED), None, None]
    else:
        if cfa is None:
            raise ValueError("apply_white_balance on a mosaic needs its cfa pattern")
        out = torch.empty_like(x)
        for ch, (dy, dx) in enumerate(packed_offsets(cfa)):
            gi = g[:, _RGB_OF_PACKED[ch], None, None, None]
            out[..., dy::2, dx::2] = x[..., dy::2, dx::2] * gi
    return out.clamp(max=1.0) if clip else out


def _to_rgb_samples(x: torch.Tensor, cfa: str | None) -> tuple[torch.Tensor, ...]:
    """Per-colour samples N x K for R, G and B from RGB, packed or mosaic input."""
    check_image(x, (1, 3, 4), "x")
    if x.shape[1] == 1:
        if cfa is None:
            raise ValueError("white-balance estimation on a mosaic needs its cfa pattern")
        x = pack(x, cfa)
    if x.shape[1] == 4:
        n = x.shape[0]
        r = x[:, 0].reshape(n, -1)
        g = x[:, 1:3].reshape(n, -1)
        b = x[:, 3].reshape(n, -1)
        return r, g, b
    n = x.shape[0]
    return tuple(x[:, c].reshape(n, -1) for c in range(3))


def gray_world_gains(
    x: torch.Tensor, cfa: str | None = None, saturation: float = 0.99
) -> torch.Tensor:
    """Gray-world gains: make the mean of each colour equal, ignoring clipped pixels.

    Args:
        x: linear camera data (RGB ``N x 3``, packed ``N x 4`` or mosaic ``N x 1``).
        cfa: Bayer pattern of a mosaic input.
        saturation: samples at or above this value are left out of the means.

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    means = []
    for samples in _to_rgb_samples(x, cfa):
        valid = samples < saturation
        s = (samples * valid).sum(dim=1)
        cnt = valid.sum(dim=1).clamp(min=1)
        means.append(s / cnt)
    m = torch.stack(means, dim=1).clamp(min=1e-8)
    return m[:, 1:2] / m


def white_patch_gains(
    x: torch.Tensor, cfa: str | None = None, percentile: float = 99.0, saturation: float = 0.99
) -> torch.Tensor:
    """White-patch (max-RGB) gains: make a high percentile of each colour equal.

    Using a percentile rather than the maximum keeps a few hot pixels from deciding the
    result; clipped samples (>= ``saturation``) are ignored.

    Returns:
        ``N x 3`` gains (R, G, B) with G = 1.
    """
    q = percentile / 100.0
    tops = []
    for samples in _to_rgb_samples(x, cfa):
        vals = []
        for row in samples:
            row = row[row < saturation]
            if row.numel() == 0:
                vals.append(torch.ones((), dtype=samples.dtype, device=samples.device))
                continue
            if row.numel() > 1_000_000:
                row = row[:: row.numel() // 1_000_000 + 1]
            vals.append(torch.quantile(row, q))
        tops.append(torch.stack(vals))
    t = torch.stack(tops, dim=1).clamp(min=1e-8)
    return t[:, 1:2] / t

