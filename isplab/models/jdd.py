"""Joint demosaicking and denoising (``jdd_net``): the learned stage of the hybrid ISP.

Contract (``input_space="packed_raw_noise"``, ``output_space="linear_rgb"``):
``N x 8 x h x w`` in, ``N x 3 x 2h x 2w`` out.

- channels 0-3: the packed raw (R, G1, G2, B; black level subtracted, normalised to the white
  level) **multiplied by the white-balance gains** the develop will use, so that a grey
  surface is grey (what demosaickers expect: colour-difference priors hold on balanced data);
- channels 4-7: the per-pixel noise standard deviation of channels 0-3 (the shot/read
  profile after the same gains, :func:`isplab.synth.noise.noise_std_map`); zeros for a
  clean raw. One model covers every ISO level, conditioned on this map.
- output: white-balanced linear camera RGB at full resolution (no colour matrix, no tone:
  the hybrid pipeline applies those from metadata).

Design (ours, for a 2-core CPU budget): a three-level U-Net on the half-resolution packed
raw (convolutions run at a quarter of the output pixels, then a pixel shuffle to full
resolution), predicting a residual over the in-graph bilinear demosaic
(:func:`~isplab.models.common.packed_to_bilinear_rgb`), as CDM-CNN (Tan et al. 2017) does over
a classical demosaic. Run it with ``channels_last`` on the CPU (1.5x faster here).
Default config: ``widths=(48, 96, 160)``, 1,024,332 parameters... see the card
(``docs/models/jdd_net.md``) for measured speed and quality.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.models.common import crop_to, packed_to_bilinear_rgb, packed_to_mosaic, pad_to_multiple
from isplab.models.registry import register_model


def _convs(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class JDDNet(nn.Module):
    """Packed raw + noise map ``N x 8 x h x w`` -> linear camera RGB ``N x 3 x 2h x 2w``.

    Options: ``widths`` (three U-Net levels; stride 4 in packed pixels), ``depth`` (3x3
    convolutions per level), ``residual`` (add the bilinear demosaic; off = the network
    predicts the image itself), ``refine`` (0 = none; else the width of a full-resolution
    stage after the pixel shuffle, as demosaicnet's last layers: the decoder's features
    lifted to full resolution, the image so far and the mosaic with its noise map, two 3x3
    convolutions of ``refine`` channels, and a 3x3 convolution to an RGB residual. Its last
    convolution starts at zero, so a model grown from weights without it
    (``model.init_grow``) starts as that model).
    """

    def __init__(self, widths: tuple[int, int, int] = (48, 96, 160), depth: int = 2,
                 residual: bool = True, refine: int = 0) -> None:
        super().__init__()
        c0, c1, c2 = (int(w) for w in widths)
        self.widths, self.residual, self.stride = (c0, c1, c2), bool(residual), 4
        self.refine = int(refine)
        self.enc0 = _convs(8, c0, depth)
        self.down1 = nn.Conv2d(c0, c1, 2, stride=2)
        self.enc1 = _convs(c1, c1, depth)
        self.down2 = nn.Conv2d(c1, c2, 2, stride=2)
        self.enc2 = _convs(c2, c2, depth)
        self.up2 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.dec1 = _convs(2 * c1, c1, 1)
        self.up1 = nn.ConvTranspose2d(c1, c0, 2, stride=2)
        self.dec0 = _convs(2 * c0, c0, 1)
        self.head = nn.Conv2d(c0, 12, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # starts as the bilinear demosaic
        nn.init.zeros_(self.head.bias)
        if self.refine:
            f = self.refine
            self.lift = nn.Conv2d(c0, 4 * f, 1)  # pixel-shuffled to f channels at full size
            self.fine = nn.Sequential(_convs(f + 5, f, 2), nn.Conv2d(f, 3, 3, padding=1))
            nn.init.zeros_(self.fine[-1].weight)
            nn.init.zeros_(self.fine[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, 8, "packed raw + noise map")
        base = packed_to_bilinear_rgb(x[:, :4]) if self.residual else None
        raw = x
        x, size = pad_to_multiple(x, self.stride)
        a = self.enc0(x)
        b = self.enc1(self.down1(a))
        c = self.enc2(self.down2(b))
        b = self.dec1(torch.cat([self.up2(c), b], 1))
        a = self.dec0(torch.cat([self.up1(b), a], 1))
        y = crop_to(F.pixel_shuffle(self.head(a), 2), size, 2)
        y = y if base is None else y + base
        if not self.refine:
            return y
        feats = crop_to(F.pixel_shuffle(self.lift(a), 2), size, 2)
        mosaic, noise = packed_to_mosaic(raw[:, :4]), packed_to_mosaic(raw[:, 4:])
        return y + self.fine(torch.cat([feats, y, mosaic, noise], 1))


@register_model("jdd_net", parameters=1_024_332,
                paper="ours (residual over bilinear as CDM-CNN, Tan et al. 2017; "
                "noise-map conditioning as Brooks et al. 2019)",
                stride=4, input_space="packed_raw_noise", output_space="linear_rgb",
                output_scale=2, defaults={"widths": (48, 96, 160), "depth": 2,
                                          "residual": True, "refine": 0},
                card="jdd_net", tile_overlap=24)
def jdd_net(**config) -> nn.Module:
    """Joint demosaic + denoise: WB'd packed raw + noise map -> linear camera RGB."""
    return JDDNet(**config)
