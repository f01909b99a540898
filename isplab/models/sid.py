"""SID U-Net: "Learning to See in the Dark" (Chen, Chen, Xu, Koltun, CVPR 2018).

Contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted; [0, 1]) ->
sRGB ``N x 3 x 2h x 2w`` (the SID target is the long exposure developed by rawpy with the
sRGB curve, so the output is gamma-encoded sRGB). In eval mode the output is clamped to
[0, 1]; in training mode it is left unclamped (the paper has no output activation and clips
at test time only).

The SID protocol multiplies the short-exposure input by the amplification ratio and clips it
to at most 1: ``model(x, ratio=100.0)`` (ratio a float or an ``N`` tensor). With the config
option ``ratio_input=True`` the input is *not* multiplied; ``ln(ratio)`` is instead fed as a
constant 5th input channel (ours, for a network that learns its own gain).

Sizes that are not multiples of 16 (four 2x2 max-pools) are padded inside ``forward`` with
:func:`~isplab.models.common.pad_to_multiple` and the output is cropped back.

Default config: 7,760,268 parameters (7,760,556 with ``ratio_input``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models.common import crop_to, pad_to_multiple
from isplab.models.registry import register_model

SID_WIDTHS = (32, 64, 128, 256, 512)


def _double_conv(cin: int, cout: int, slope: float) -> nn.Sequential:
    """[conv 3x3 (same padding) -> LeakyReLU(slope)] x 2."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(slope),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(slope),
    )


class UNet(nn.Module):
    """The SID U-Net body, ``in_channels`` -> ``out_channels`` at the same resolution.

    Encoder levels ``widths[0] .. widths[-1]``, each [conv 3x3 + LReLU] x 2, with a 2x2 max-pool
    between levels; decoder: 2x2 stride-2 transposed conv (no bias, no activation) to the skip's
    width, concatenation with the skip, [conv 3x3 + LReLU] x 2; head: conv 1x1 to
    ``out_channels`` (no activation). Input sides must be multiples of ``2 ** (len(widths)-1)``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 widths: tuple[int, ...] = SID_WIDTHS, slope: float = 0.2) -> None:
        super().__init__()
        if len(widths) < 2:
            raise InvalidInputError(f"a U-Net needs at least 2 levels, got widths={widths}")
        self.widths = tuple(int(w) for w in widths)
        self.down = nn.ModuleList()
        cin = in_channels
        for w in self.widths:
            self.down.append(_double_conv(cin, w, slope))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(self.widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2, bias=False))
            self.dec.append(_double_conv(2 * w, w, slope))
            cin = w
        self.head = nn.Conv2d(cin, out_channels, 1)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder features, finest first; the last one is the bottleneck."""
        feats = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            feats.append(x)
        return feats

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for up, dec, skip in zip(self.up, self.dec, reversed(feats[:-1]), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def amplify(packed: torch.Tensor, ratio: float | torch.Tensor) -> torch.Tensor:
    """The SID input amplification: ``min(packed * ratio, 1)``.

    Args:
        packed: packed raw ``N x C x h x w`` in [0, 1] (linear, black level subtracted).
        ratio: exposure ratio (``t_long / t_short``, SID uses 100, 250 or 300), a positive
            float or a tensor of ``N`` positive values (one per image).

    Returns:
        ``N x C x h x w`` amplified raw, clipped to at most 1 (values stay >= 0 when the input is).
    """
    r = _ratio_tensor(ratio, packed)
    return torch.clamp(packed * r, max=1.0)


def _ratio_tensor(ratio: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``ratio`` as an ``N x 1 x 1 x 1`` (or scalar) tensor on ``x``'s device/dtype, checked > 0."""
    if isinstance(ratio, torch.Tensor):
        r = ratio.to(x)
        if r.ndim == 0:
            r = r.reshape(1)
        if r.ndim != 1 or r.shape[0] not in (1, x.shape[0]):
            raise InvalidInputError(
                f"ratio must be a float or a tensor of {x.shape[0]} values, got shape "
                f"{tuple(ratio.shape)}")
        if not torch.jit.is_tracing() and not bool(torch.all(r > 0)):
            raise InvalidInputError(f"ratio must be positive, got {ratio.tolist()}")
        return r.view(-1, 1, 1, 1)
    ratio = float(ratio)
    if not math.isfinite(ratio) or ratio <= 0:
        raise InvalidInputError(f"ratio must be a positive number, got {ratio}")
    return x.new_full((1, 1, 1, 1), ratio)


class SIDUNet(nn.Module):
    """SID U-Net (Chen et al., CVPR 2018): packed raw ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w``.

    Body :class:`UNet` with widths 32..512, head conv 1x1 to 12 channels, pixel shuffle 2.
    7,760,268 parameters by default (4 input channels); ``ratio_input=True`` adds a 5th input
    channel carrying ``ln(ratio)`` (7,760,556 parameters).
    """

    def __init__(self, widths: tuple[int, ...] = SID_WIDTHS, slope: float = 0.2,
                 ratio_input: bool = False) -> None:
        super().__init__()
        self.ratio_input = bool(ratio_input)
        self.unet = UNet(5 if self.ratio_input else 4, 12, tuple(widths), slope)
        self.stride = self.unet.stride

    def forward(self, x: torch.Tensor, ratio: float | torch.Tensor | None = None) -> torch.Tensor:
        """Develop packed raw ``x`` (``N x 4 x h x w``, [0, 1]) to sRGB ``N x 3 x 2h x 2w``.

        ``ratio``: amplification ratio (float or ``N`` tensor). Without ``ratio_input`` the
        input is multiplied by it and clipped to <= 1 (SID); with ``ratio_input`` ``ln(ratio)``
        becomes a constant 5th channel (``None`` means ratio 1, i.e. a zero channel).
        Sides not multiple of 16 are padded (reflect) and the output cropped back.
        """
        check_image(x, 4, "packed raw")
        if ratio is not None and not self.ratio_input:
            x = amplify(x, ratio)
        x, size = pad_to_multiple(x, self.stride)
        if self.ratio_input:
            n, _, h, w = x.shape
            if ratio is None:
                plane = x.new_zeros(n, 1, h, w)
            else:
                plane = torch.log(_ratio_tensor(ratio, x)).expand(n, 1, h, w)
            x = torch.cat([x, plane], dim=1)
        y = F.pixel_shuffle(self.unet(x), 2)
        y = crop_to(y, size, 2)
        return y if self.training else y.clamp(0.0, 1.0)


@register_model("sid_unet", parameters=7_760_268,
                paper="Chen, Chen, Xu, Koltun: Learning to See in the Dark, CVPR 2018",
                stride=16, input_space="packed_raw", output_space="srgb", output_scale=2,
                defaults={"widths": SID_WIDTHS, "slope": 0.2, "ratio_input": False},
                card="sid_unet")
def sid_unet(**config) -> nn.Module:
    """Learning-to-See-in-the-Dark U-Net (32..512, LReLU 0.2), packed raw -> sRGB."""
    return SIDUNet(**config)
