"""Shared pieces of the zoo: input checks, stride padding, the raw -> RGB conversions that
models whose paper takes RGB do inside their wrapper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` on the bottom/right so both sides are multiples of ``multiple``.

    Reflect padding where the image is large enough, replicate otherwise (reflect needs
    the pad to be smaller than the side). Returns the padded tensor and the original
    ``(H, W)`` for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if ph < h and pw < w:
        return F.pad(x, (0, pw, 0, ph), mode="reflect"), (h, w)
    return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)


def crop_to(y: torch.Tensor, size: tuple[int, int], scale: int = 1) -> torch.Tensor:
    """Crop ``y`` back to ``scale * size`` (the inverse of :func:`pad_to_multiple`)."""
    return y[..., : size[0] * scale, : size[1] * scale]


def packed_to_mosaic(packed: torch.Tensor) -> torch.Tensor:
    """Packed R, G1, G2, B ``N x 4 x h x w`` -> RGGB mosaic ``N x 1 x 2h x 2w``.

    Written with ``pixel_shuffle`` (exports to ONNX as DepthToSpace): channel order
    R, G1, G2, B is exactly the RGGB block read row by row.
    """
    return F.pixel_shuffle(packed, 2)


def packed_to_bilinear_rgb(packed: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaic of packed raw -> linear camera RGB ``N x 3 x 2h x 2w``.

    The DeepISP kernels ([0 1 0; 1 4 1; 0 1 0]/4 for G, [1 2 1; 2 4 2; 1 2 1]/4 for R/B)
    applied to the zero-filled colour planes with replicate padding of the mosaic's
    neighbourhood; written as one grouped convolution so it traces and exports.
    For even-sized interiors this equals :func:`isplab.classic.demosaic_bilinear`.
    """
    m = packed_to_mosaic(packed)
    n, _, h, w = m.shape
    mask = packed.new_zeros(1, 3, 2, 2)
    mask[0, 0, 0, 0] = 1
    mask[0, 1, 0, 1] = 1
    mask[0, 1, 1, 0] = 1
    mask[0, 2, 1, 1] = 1
    mask = mask.repeat(1, 1, (h + 1) // 2, (w + 1) // 2)[..., :h, :w]
    planes = m * mask
    # mirror (reflect about the edge sample) keeps the CFA phase of the neighbours
    planes = F.pad(planes, (1, 1, 1, 1), mode="reflect")
    k_rb = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
    k_g = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4
    weight = torch.stack([k_rb, k_g, k_rb]).unsqueeze(1).to(packed)
    return F.conv2d(planes, weight, groups=3)


def rgb_to_packed(rgb: torch.Tensor) -> torch.Tensor:
    """Sample RGB ``N x 3 x H x W`` through an RGGB CFA -> packed ``N x 4 x H/2 x W/2``."""
    return torch.stack(
        [rgb[:, 0, 0::2, 0::2], rgb[:, 1, 0::2, 1::2],
         rgb[:, 1, 1::2, 0::2], rgb[:, 2, 1::2, 1::2]],
        dim=1,
    )


class GlobalAvgPool(nn.Module):
    """Mean over the spatial dimensions, ``N x C x H x W -> N x C x 1 x 1`` (or ``N x C``).

    A module rather than ``x.mean((2, 3))`` so that tiled inference can find it: it is
    flagged ``isplab_global`` and :class:`isplab.infer.GlobalStatistics` computes it once on
    the downscaled full frame and reuses it for every tile. Use it for every image-global
    pooling in the zoo.
    """

    isplab_global = True

    def __init__(self, keepdim: bool = True):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=self.keepdim)
