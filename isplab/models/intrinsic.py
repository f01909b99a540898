"""A small self-supervised intrinsic decomposition network (MDIE, issue 10): two U-Nets that
split a photo into albedo (reflectance) and shading, ``I_linear = A * S``.

Registered name ``intrinsic_net`` (model card ``docs/models/intrinsic_net.md``), built for the
MDIE system of the seed (multi-domain intrinsic enhancement); the self-supervised training with
synthetic re-shading pairs follows the losses of RetinexNet (Wei et al., BMVC 2018) adapted as
stated in ``isplab.enhance.intrinsic``.

Contract: sRGB ``N x 3 x H x W`` in [0, 1] -> ``N x 4 x H x W``: channels 0-2 the albedo ``A``
in [0, 1], channel 3 the grey shading ``S`` > 0 (softplus), such that
``A * S ~= srgb_to_linear(x)`` (the decomposition is of the *linear* image, where light
multiplies). :meth:`IntrinsicNet.decompose` returns the pair. Registered with
``output_space="intrinsic"``: it is not an image-to-image model, so the zoo's generic image
tests skip it and ``tests/test_enhance_mdie.py`` checks it (shapes, gradients, ONNX of the
4-channel output). Stride 8 (three 2x downsamplings): other sizes are padded (reflect) and
cropped back inside ``forward``. Parameters: 587,108 (albedo U-Net 293,571, shading U-Net 293,537).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models.common import crop_to, pad_to_multiple
from isplab.models.registry import register_model

PAPER = ("MDIE intrinsic decomposition (seed MPSE/MDIE); self-supervised losses after Wei et al., "
         "Deep Retinex Decomposition for Low-Light Enhancement (RetinexNet), BMVC 2018")


def srgb_to_linear_graph(x: torch.Tensor) -> torch.Tensor:
    """The exact sRGB decoding curve (IEC 61966-2-1) written with ``torch.where`` only, so it
    traces and exports to ONNX; input clipped to [0, 1]. Same values as
    :func:`isplab.classic.srgb_to_linear` on [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                         nn.LeakyReLU(0.1, inplace=True))


class UNet(nn.Module):
    """A small U-Net: ``in_ch`` -> ``out_ch`` logits at the input size (size a multiple of
    ``2 ** (len(widths) - 1)``).

    Encoder: conv 3x3 ``in_ch -> w0`` + conv 3x3; then per level one strided conv 3x3 (s2) to
    ``w_i`` (LeakyReLU 0.1 after every conv). Decoder: bilinear 2x upsampling,
    concatenation with the skip, conv 3x3 to the skip's width + conv 3x3. Head: conv 1x1.
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3,
                 widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise InvalidInputError(f"widths needs >= 2 positive entries, got {widths}")
        self.down = nn.ModuleList([nn.Sequential(_conv(in_ch, widths[0]),
                                                 _conv(widths[0], widths[0]))])
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            self.down.append(_conv(a, b, stride=2))
        self.up = nn.ModuleList()
        for a, b in zip(widths[:0:-1], widths[-2::-1], strict=True):
            self.up.append(nn.Sequential(_conv(a + b, b), _conv(b, b)))
        self.head = nn.Conv2d(widths[0], out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class IntrinsicNet(nn.Module):
    """Albedo U-Net + shading U-Net: sRGB ``N x 3 x H x W`` in [0, 1] -> ``N x 4 x H x W``
    (albedo RGB in [0, 1], grey shading > 0) with ``A * S ~= srgb_to_linear(x)``.

    Both nets see the sRGB image (better conditioned than linear values for a conv net);
    ``S = softplus(shading_net(x)) + shading_floor``. The albedo, by ``albedo``:

    - ``"ratio"`` (default): ``A = min(1, I / S * exp(residual_scale * tanh(albedo_net(x))))``
      with ``I`` the linear image: the Retinex form (``A = I / S``, as the LIME and
      multi-scale Retinex baselines) plus a bounded learned correction, so ``A * S``
      reconstructs the input wherever the correction is 0 and the learning goes into the
      shading; measured in ``docs/benchmarks.md``;
    - ``"sigmoid"``: ``A = sigmoid(albedo_net(x))``, free-form (the spec's parametrisation):
      only the reconstruction loss ties ``A * S`` to the input. On the CPU budget it learns
      slowly (about 25 dB after 1000 steps) and its sigmoid can saturate into a constant
      albedo at a learning rate of 1e-3.

    Args:
        widths: U-Net widths per level (16/32/64/128: about 294k parameters per net).
        shading_floor: added to the softplus so ``log S`` stays finite.
        albedo: ``ratio`` or ``sigmoid``.
        residual_scale: bound of the ratio form's log-albedo correction.

    Stride 8: inputs are padded (reflect) to a multiple of 8 and the outputs cropped back.
    """

    stride = 8

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128),
                 shading_floor: float = 1e-3, albedo: str = "ratio",
                 residual_scale: float = 0.25) -> None:
        super().__init__()
        if albedo not in ("ratio", "sigmoid"):
            raise InvalidInputError(f"albedo must be ratio or sigmoid, got {albedo!r}")
        self.albedo_net = UNet(3, 3, widths)
        self.shading_net = UNet(3, 1, widths)
        self.shading_floor = float(shading_floor)
        self.albedo = albedo
        self.residual_scale = float(residual_scale)
        self.stride = 2 ** (len(tuple(widths)) - 1)

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sRGB ``N x 3 x H x W`` -> ``(A N x 3 x H x W in [0, 1], S N x 1 x H x W > 0)``."""
        check_image(x, 3, "sRGB image")
        xp, size = pad_to_multiple(x, self.stride)
        s = F.softplus(self.shading_net(xp)) + self.shading_floor
        r = self.albedo_net(xp)
        if self.albedo == "sigmoid":
            a = torch.sigmoid(r)
        else:
            a = srgb_to_linear_graph(xp) / s * torch.exp(self.residual_scale * torch.tanh(r))
            a = a.clamp(max=1.0)
        return crop_to(a, size), crop_to(s, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """sRGB ``N x 3 x H x W`` -> ``N x 4 x H x W`` = ``cat([A, S])``."""
        a, s = self.decompose(x)
        return torch.cat([a, s], dim=1)


def split_intrinsic(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N x 4 x H x W`` output of :class:`IntrinsicNet` -> ``(albedo, shading)``."""
    if y.ndim != 4 or y.shape[1] != 4:
        raise InvalidInputError(f"expected N x 4 x H x W (albedo + shading), got "
                                f"{tuple(y.shape)}")
    return y[:, :3], y[:, 3:]


@register_model("intrinsic_net", parameters=587_108, paper=PAPER, stride=8, input_space="srgb",
                output_space="intrinsic", output_scale=1, card="intrinsic_net")
def intrinsic_net(**config: Any) -> nn.Module:
    """Two small U-Nets: sRGB -> albedo (3 ch) + shading (1 ch) of the linear image."""
    return IntrinsicNet(**config)


# --- the shading as an image (how MDIE's translator sees it) -------------------------------

_U_MIN, _U_MAX = 1e-4, 1.0 - 1e-4


def shading_to_image(shading: torch.Tensor) -> torch.Tensor:
    """Shading ``N x 1 x H x W`` (> 0) -> grey ``N x 3 x H x W`` image ``S / (1 + S)``."""
    u = shading / (1.0 + shading)
    return u.expand(-1, 3, -1, -1).contiguous()


def image_to_shading(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`shading_to_image` (the channel mean, clipped to (0, 1))."""
    u = image.mean(1, keepdim=True).clamp(_U_MIN, _U_MAX)
    return u / (1.0 - u)
