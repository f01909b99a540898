"""Exposure and tone curves.

Spaces: ``exposure`` and the tone curves take *linear* values; ``srgb_gamma`` and
``gamma_curve`` encode linear -> display values, ``srgb_to_linear`` decodes.
"""

from __future__ import annotations

import kornia
import torch

from isplab.classic._checks import check_image
from isplab.classic.curves import gamma_params as _gamma_params


def exposure(x: torch.Tensor, ev: float | torch.Tensor) -> torch.Tensor:
    """Scale linear data by ``2 ** ev`` (ev may be a tensor of shape N)."""
    if isinstance(ev, torch.Tensor) and ev.ndim == 1:
        ev = ev.to(x)[:, None, None, None]
    return x * (2.0**ev)


def auto_bright_gain(linear_rgb: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Gain that brings the ``1 - threshold`` quantile of the brightest channel to 1.

    Like LibRaw's auto-brightening (``auto_bright_thr``): at most ``threshold`` of the pixels
    end up clipped. The quantile is read from an 8192-bin histogram per channel (LibRaw uses
    the same resolution), so it is exact to 1/8192. Never darkens (gain >= 1).

    Args:
        linear_rgb: ``N x 3 x H x W`` linear data in [0, 1].

    Returns:
        Gains, shape ``N``.
    """
    check_image(linear_rgb, 3, "linear_rgb")
    bins = 8192
    gains = []
    for img in linear_rgb.detach():
        if img.shape[-1] * img.shape[-2] > 1 << 20:  # a quarter of the pixels is plenty
            img = img[:, ::2, ::2]
        white = 0.0
        for channel in img:
            # values above 1 count in the top bin (histc would drop them): never darken
            hist = torch.histc(channel.float().clamp(0.0, 1.0), bins=bins, min=0.0, max=1.0)
            above = torch.flip(torch.cumsum(torch.flip(hist, [0]), 0), [0])  # count >= bin
            over = torch.nonzero(above > threshold * channel.numel())
            idx = int(over.max()) if over.numel() else 0
            white = max(white, (idx + 1) / bins)
        gains.append(max(1.0, 1.0 / white))
    return torch.tensor(gains, dtype=linear_rgb.dtype, device=linear_rgb.device)


def srgb_gamma(linear_rgb: torch.Tensor) -> torch.Tensor:
    """Linear sRGB -> sRGB-encoded values (IEC 61966-2-1 curve; kornia's implementation).

    Input is clipped at 0 first (the curve is undefined below)."""
    return kornia.color.linear_rgb_to_rgb(linear_rgb.clamp(min=0.0))


def srgb_to_linear(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded -> linear sRGB (inverse of :func:`srgb_gamma`)."""
    return kornia.color.rgb_to_linear_rgb(srgb.clamp(min=0.0))


def power_gamma(x: torch.Tensor, gamma: float = 2.2) -> torch.Tensor:
    """Pure power curve ``x ** (1 / gamma)`` (encode); negative input clipped to 0."""
    return x.clamp(min=0.0) ** (1.0 / gamma)


def gamma_curve(x: torch.Tensor, power: float = 2.4, slope: float = 12.92) -> torch.Tensor:
    """Gamma curve with a linear toe, parameterised as LibRaw/rawpy's ``gamma=(power, slope)``.

    ``(2.4, 12.92)`` is the sRGB curve, ``(2.222, 4.5)`` BT.709 (rawpy's default), ``(1, 1)``
    linear. Input clipped to [0, 1].
    """
    if power == 1 and slope == 1:
        return x.clamp(0.0, 1.0)
    threshold, expo, offset = _gamma_params(float(power), float(slope))
    x = x.clamp(0.0, 1.0)
    curve = x.clamp(min=threshold if threshold > 0 else 1e-12)
    if curve.requires_grad:
        curve = (1 + offset) * curve**expo - offset
    else:  # in place: fewer temporaries on the inference path
        curve = curve.pow_(expo).mul_(1 + offset).sub_(offset)
    if threshold <= 0:
        return curve
    return torch.where(x < threshold, x * slope, curve)


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Global tone curve ``3x^2 - 2x^3`` on [0, 1] (Brooks et al. 2019, "Unprocessing")."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_smoothstep(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`smoothstep`: ``0.5 - sin(asin(1 - 2y) / 3)``."""
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)


def filmic(x: torch.Tensor, white: float = 4.0) -> torch.Tensor:
    """Filmic shoulder (Narkowicz's ACES fit) normalised so that ``white`` maps to 1.

    Takes linear scene values >= 0 and returns linear display values in [0, 1], with a soft
    roll-off instead of a hard clip; apply ``srgb_gamma`` after it.
    """

    def aces(v):
        return (v * (2.51 * v + 0.03)) / (v * (2.43 * v + 0.59) + 0.14)

    x = x.clamp(min=0.0)
    w = torch.as_tensor(white, dtype=x.dtype, device=x.device)
    return (aces(x) / aces(w)).clamp(0.0, 1.0)
