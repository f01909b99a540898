"""Per-pixel kernel ISP (``kpn_isp``): our design for the "per-pixel kernel ISP" of Xing, Li,
Zhang, Chen (SIGGRAPH 2022 poster, with the well-aligned phone/DSLR dataset), whose network is
not published; only the idea (a kernel predicted per output pixel) is the paper's.

Contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted; [0, 1]) -> sRGB
``N x 3 x 2h x 2w``, clamped to [0, 1] in eval mode only.

Pipeline (all ours):

1. a U-Net (the SID body of :mod:`isplab.models.sid`, widths 32..256) on the packed raw predicts,
   at ``h x w``, ``4 x (3 k^2 + 3)`` channels; a pixel shuffle turns them into one ``k x k``
   kernel per output pixel and colour plus a per-pixel, per-colour bias at ``2h x 2w``;
2. a per-image 3x3 colour matrix ``M = I + MLP(mean-pooled bottleneck)`` (last layer zero-
   initialised, so ``M = I`` at the start) maps the in-graph bilinear demosaic (camera RGB)
   towards sRGB primaries (white balance + colour correction), then ``x ** (1/2.2)``;
3. the kernels (softmax-normalised by default) are applied with ``F.unfold`` to that encoded
   image, each colour to its own channel, and the bias is added.

Sizes that are not multiples of the U-Net stride ``2 ** (len(widths) - 1)`` (8 by default, in
packed pixels) are padded (reflect) inside ``forward`` and cropped back.
Default config: 1,952,961 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models.common import (
    GlobalAvgPool,
    crop_to,
    packed_to_bilinear_rgb,
    pad_to_multiple,
)
from isplab.models.pac import gamma_encode
from isplab.models.registry import register_model
from isplab.models.sid import UNet

NORMALIZATIONS = ("softmax", "sum1", "none")


def normalize_kernels(logits: torch.Tensor, mode: str = "softmax", dim: int = 2,
                      eps: float = 1e-6) -> torch.Tensor:
    """Normalise predicted kernels along ``dim`` (the ``k*k`` taps).

    ``"softmax"``: non-negative taps summing to 1 (a convex combination: smoothing only, the
    brightness is unchanged); ``"sum1"``: ``w / max(sum |w|, eps)`` (taps may be negative, so
    kernels can sharpen; ``sum |w| = 1`` bounds the gain by 1); ``"none"``: unchanged.
    """
    if mode == "softmax":
        return torch.softmax(logits, dim=dim)
    if mode == "sum1":
        return logits / logits.abs().sum(dim=dim, keepdim=True).clamp(min=eps)
    if mode == "none":
        return logits
    raise InvalidInputError(f"kernel normalisation must be one of {NORMALIZATIONS}, got {mode!r}")


def apply_kernels(image: torch.Tensor, kernels: torch.Tensor, k: int) -> torch.Tensor:
    """Apply one ``k x k`` kernel per pixel and channel: ``out[c, y, x] = sum_{dy, dx}
    kernels[c, (dy, dx), y, x] * image[c, y + dy - k//2, x + dx - k//2]``.

    Args:
        image: ``N x C x H x W`` (any range); borders are replicate-padded.
        kernels: ``N x C x k*k x H x W`` (or ``N x 1 x k*k x H x W``: one kernel shared by
            the channels), taps in row-major order (tap ``k*k // 2`` is the centre).
        k: odd kernel side.

    Returns:
        ``N x C x H x W``. A delta kernel (1 at the centre) returns ``image`` unchanged.
    """
    if k % 2 == 0 or k < 1:
        raise InvalidInputError(f"kernel side must be odd and positive, got {k}")
    n, c, h, w = image.shape
    if kernels.ndim != 5 or kernels.shape[0] != n or kernels.shape[1] not in (1, c) or \
            kernels.shape[2] != k * k or kernels.shape[-2:] != image.shape[-2:]:
        raise InvalidInputError(
            f"kernels must be N x C x {k * k} x H x W for image {tuple(image.shape)}, "
            f"got {tuple(kernels.shape)}")
    p = k // 2
    padded = F.pad(image, (p, p, p, p), mode="replicate") if p else image
    cols = F.unfold(padded, k).view(n, c, k * k, h, w)
    return (cols * kernels).sum(dim=2)


class KernelISP(nn.Module):
    """Per-pixel kernel ISP (ours): packed raw ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w``.

    Options: ``widths`` of the U-Net (stride ``2 ** (len(widths) - 1)``), ``kernel_size`` k
    (odd), ``normalize`` (``"softmax"``, ``"sum1"``, ``"none"``; see :func:`normalize_kernels`),
    ``bias`` (per-pixel additive term), ``color_matrix`` (per-image predicted 3x3 matrix before
    the gamma; off = kernels act on the gamma-encoded camera RGB), ``gamma``.
    1,952,961 parameters by default.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), kernel_size: int = 5,
                 normalize: str = "softmax", bias: bool = True, color_matrix: bool = True,
                 gamma: float = 2.2, slope: float = 0.2) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise InvalidInputError(f"kernel_size must be odd and positive, got {kernel_size}")
        if normalize not in NORMALIZATIONS:
            raise InvalidInputError(
                f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.k, self.normalize, self.use_bias = int(kernel_size), normalize, bool(bias)
        self.gamma = float(gamma)
        per_pixel = 3 * self.k * self.k + (3 if self.use_bias else 0)
        self.unet = UNet(4, 4 * per_pixel, tuple(widths), slope)
        self.stride = self.unet.stride
        self.color = None
        if color_matrix:
            self.color = nn.Sequential(nn.Linear(self.unet.widths[-1], 64), nn.ReLU(),
                                       nn.Linear(64, 9))
            nn.init.zeros_(self.color[2].weight)
            nn.init.zeros_(self.color[2].bias)
            self.pool = GlobalAvgPool(keepdim=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` in [0, 1] -> sRGB ``N x 3 x 2h x 2w`` (padding to the
        stride and cropping back inside)."""
        check_image(x, 4, "packed raw")
        x, size = pad_to_multiple(x, self.stride)
        n = x.shape[0]
        feats = self.unet.encode(x)
        pred = F.pixel_shuffle(self.unet.decode(feats), 2)  # N x (3k^2 [+3]) x 2h x 2w
        h2, w2 = pred.shape[-2:]
        rgb = packed_to_bilinear_rgb(x)
        if self.color is not None:
            delta = self.color(self.pool(feats[-1])).view(n, 3, 3)
            m = torch.eye(3, dtype=x.dtype, device=x.device) + delta
            rgb = torch.matmul(m, rgb.reshape(n, 3, -1)).view(n, 3, h2, w2)
        encoded = gamma_encode(rgb, self.gamma)
        kk = self.k * self.k
        kernels = normalize_kernels(pred[:, : 3 * kk].reshape(n, 3, kk, h2, w2), self.normalize)
        y = apply_kernels(encoded, kernels, self.k)
        if self.use_bias:
            y = y + pred[:, 3 * kk :]
        y = crop_to(y, size, 2)
        return y if self.training else y.clamp(0.0, 1.0)


@register_model("kpn_isp", parameters=1_952_961,
                paper="Xing, Li, Zhang, Chen: per-pixel kernel ISP, SIGGRAPH 2022 "
                "poster (network design: ours)",
                stride=8, input_space="packed_raw", output_space="srgb", output_scale=2,
                defaults={"widths": (32, 64, 128, 256), "kernel_size": 5,
                          "normalize": "softmax", "bias": True, "color_matrix": True,
                          "gamma": 2.2, "slope": 0.2},
                card="kpn_isp")
def kpn_isp(**config) -> nn.Module:
    """Per-pixel kernel ISP (ours): U-Net-predicted 5x5 kernels per pixel and colour."""
    return KernelISP(**config)
