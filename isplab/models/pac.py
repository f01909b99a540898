"""Pixel-adaptive convolution (Su, Jampani, Sun, Gallo, Learned-Miller, Kautz, CVPR 2019) and a
PAC joint-upsampling network used as a learned-ISP baseline (``pac_isp``).

PAC: ``out_i = sum_{j in window(i)} K(f_i, f_j) * W[p_j - p_i] * v_j + b`` with the Gaussian
kernel ``K = exp(-1/2 ||f_i - f_j||^2)`` on guidance features ``f``; written here with
``F.unfold`` (exports to ONNX). :func:`pac_conv2d` is the pure function;
:class:`PacConv2d` and :class:`PacConvTranspose2d` (zero-insertion upsampling then PAC) are the
modules.

``pac_isp`` contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted;
[0, 1]) -> sRGB ``N x 3 x 2h x 2w``, clamped to [0, 1] in eval mode only. Target branch on the
packed raw, guidance branch on the in-graph bilinear demosaic (gamma 1/2.2) at full resolution,
one PAC transposed convolution x2. No down-sampling, so no stride padding (stride 1).
Default config: 149,043 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.registry import register_model


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def gamma_encode(linear: torch.Tensor, gamma: float = 2.2, eps: float = 1e-5) -> torch.Tensor:
    """Pure power-law encoding ``max(x, eps) ** (1 / gamma)`` (``N x C x H x W``, linear >= 0).

    ``eps`` keeps the gradient finite at 0 (``d/dx x^(1/2.2)`` is infinite there); values
    above 1 are kept (no upper clamp).
    """
    return torch.clamp(linear, min=eps) ** (1.0 / gamma)


def pac_kernel(features: torch.Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
               dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """The Gaussian adapting kernel ``K_ij = exp(-1/2 ||f_i - f_j||^2)`` for every window.

    Args:
        features: guidance ``N x Cf x H x W`` (any range); zero padded like the input.
        kernel_size, stride, padding, dilation: as in ``F.conv2d``; the kernel size must be
            odd so each window has a centre ``i``.

    Returns:
        ``N x kh*kw x L`` (``L`` = output pixels, row-major), window positions row-major.
    """
    kh, kw = _pair(kernel_size)
    if kh % 2 == 0 or kw % 2 == 0:
        raise InvalidInputError(f"PAC needs an odd kernel size, got {(kh, kw)}")
    n, cf = features.shape[:2]
    cols = F.unfold(features, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, cf, kh * kw, -1)
    centre = cols[:, :, (kh * kw) // 2 : (kh * kw) // 2 + 1, :]
    return torch.exp(-0.5 * ((cols - centre) ** 2).sum(dim=1))


def pac_conv2d(input: torch.Tensor, kernel_features: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
               normalize_kernel: bool = False,
               valid_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-adaptive convolution ``out_i = sum_j K(f_i, f_j) W[p_j - p_i] v_j + b``.

    Args:
        input: ``v``, ``N x Cin x H x W``.
        kernel_features: guidance ``f``, ``N x Cf x H x W`` (same spatial size as ``input``).
        weight: ``Cout x Cin x kh x kw`` (``F.conv2d`` layout, odd kernel sides).
        bias: ``Cout`` or ``None``.
        stride, padding, dilation: as in ``F.conv2d`` (zero padding for input and guidance).
        normalize_kernel: divide ``K`` by its sum over the window's valid positions (inside
            the image and, with ``valid_mask``, marked valid); PACnet's "normalise K" option.
        valid_mask: optional ``N x 1 x H x W`` (or ``1 x 1 x H x W``) 0/1 mask of the input
            positions that hold real samples (zero-inserted positions of a transposed PAC
            are 0); only used by ``normalize_kernel``.

    Returns:
        ``N x Cout x H_out x W_out`` with the ``F.conv2d`` output size. With a constant guidance
        (``K == 1``) and ``normalize_kernel=False`` it equals ``F.conv2d`` exactly.
    """
    if input.ndim != 4 or kernel_features.ndim != 4 or weight.ndim != 4:
        raise InvalidInputError("pac_conv2d expects 4-D input, kernel_features and weight")
    if input.shape[0] != kernel_features.shape[0] or \
            input.shape[-2:] != kernel_features.shape[-2:]:
        raise InvalidInputError(
            f"kernel_features {tuple(kernel_features.shape)} must match input "
            f"{tuple(input.shape)} in batch and spatial size")
    cout, cin, kh, kw = weight.shape
    if input.shape[1] != cin:
        raise InvalidInputError(f"weight expects {cin} input channels, got {input.shape[1]}")
    n, _, h, w = input.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    hout = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wout = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = pac_kernel(kernel_features, (kh, kw), stride, padding, dilation)  # N x k2 x L
    if normalize_kernel:
        if valid_mask is None:
            valid_mask = input.new_ones(1, 1, h, w)
        valid = F.unfold(valid_mask.to(input), (kh, kw), dilation=dilation, padding=padding,
                         stride=stride)  # N|1 x k2 x L
        k = k * valid
        k = k / k.sum(dim=1, keepdim=True).clamp(min=1e-12)
    cols = F.unfold(input, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = (cols.view(n, cin, kh * kw, -1) * k.unsqueeze(1)).view(n, cin * kh * kw, -1)
    out = torch.matmul(weight.reshape(cout, cin * kh * kw), cols)  # N x Cout x L
    if bias is not None:
        out = out + bias.view(1, cout, 1)
    return out.view(n, cout, hout, wout)


def zero_insert(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``N x C x h x w`` -> ``N x C x factor*h x factor*w`` with ``x`` at the positions
    ``(factor*y, factor*x)`` and zeros elsewhere (pad + pixel shuffle, ONNX-friendly)."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    z = F.pad(x.unsqueeze(2), (0, 0, 0, 0, 0, factor * factor - 1))  # N x C x f^2 x h x w
    return F.pixel_shuffle(z.reshape(n, c * factor * factor, h, w), factor)


class PacConv2d(nn.Module):
    """Pixel-adaptive convolution layer (``F.conv2d`` weight layout, odd kernel, same padding
    by default). ``forward(input, guidance)`` with guidance ``N x Cf x H x W``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, dilation: int = 1,
                 bias: bool = True, normalize_kernel: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise InvalidInputError(f"PAC needs an odd kernel size, got {kernel_size}")
        ref = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)  # default init
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if bias else None
        self.stride, self.dilation = stride, dilation
        self.padding = dilation * (kernel_size // 2) if padding is None else padding
        self.normalize_kernel = normalize_kernel

    def forward(self, input: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        return pac_conv2d(input, guidance, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.normalize_kernel)


class PacConvTranspose2d(nn.Module):
    """Pixel-adaptive transposed convolution: zero insertion x ``stride`` then PAC with padding
    ``k // 2``, guided by features at the *output* resolution.

    ``forward(input N x Cin x h x w, guidance N x Cf x s*h x s*w) -> N x Cout x s*h x s*w``.
    The weight has the ``nn.ConvTranspose2d`` layout ``Cin x Cout x k x k``; with a constant
    guidance the layer equals ``F.conv_transpose2d(x, weight, bias, stride=s, padding=k // 2,
    output_padding=s - 1)`` (kernel normalisation off).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 stride: int = 2, bias: bool = True, normalize_kernel: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise InvalidInputError(f"PAC needs an odd kernel size, got {kernel_size}")
        if stride < 1:
            raise InvalidInputError(f"stride must be >= 1, got {stride}")
        ref = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if bias else None
        self.stride, self.kernel_size = stride, kernel_size
        self.normalize_kernel = normalize_kernel

    def forward(self, input: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if guidance.shape[-2:] != (s * input.shape[-2], s * input.shape[-1]):
            raise InvalidInputError(
                f"guidance {tuple(guidance.shape)} must be {s}x the input "
                f"{tuple(input.shape)} in height and width")
        return pac_conv_transpose2d(input, guidance, self.weight, self.bias, s,
                                    self.normalize_kernel)


def _phase_taps(r: int, k: int, s: int) -> tuple[list[int], int]:
    """Taps ``t`` of a ``k``-tap kernel (centre ``k // 2``) that land on real samples for output
    phase ``r`` of a zero-inserted x``s`` signal, and the input offset of the first one."""
    p = k // 2
    taps = [t for t in range(k) if (r + t - p) % s == 0]
    return taps, ((r + taps[0] - p) // s) if taps else 0


def pac_conv_transpose2d(input: torch.Tensor, kernel_features: torch.Tensor,
                         weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 2,
                         normalize_kernel: bool = False) -> torch.Tensor:
    """Pixel-adaptive transposed convolution, computed per output phase (polyphase).

    Mathematically ``pac_conv2d(zero_insert(input, s), kernel_features, w', bias,
    padding=k // 2)`` with ``w' = weight.flip(-1, -2).transpose(0, 1)`` (and the inserted zeros
    excluded from the kernel normalisation), but each of the ``s * s`` output phases only
    visits the taps that fall on real samples: about ``s * s`` times less work and memory.

    Args:
        input: ``N x Cin x h x w``.
        kernel_features: guidance ``N x Cf x s*h x s*w`` (at the output resolution).
        weight: ``Cin x Cout x k x k`` (``nn.ConvTranspose2d`` layout, odd ``k``).
        bias: ``Cout`` or ``None``.
        stride: the upsampling factor ``s``.
        normalize_kernel: divide ``K`` by its sum over the real samples in each window.

    Returns:
        ``N x Cout x s*h x s*w``; with a constant guidance (no normalisation) it equals
        ``F.conv_transpose2d(input, weight, bias, stride=s, padding=k // 2,
        output_padding=s - 1)``.
    """
    n, cin, h, w = input.shape
    cout, k = weight.shape[1], weight.shape[-1]
    s = int(stride)
    if k % 2 == 0 or weight.shape[-2] != k:
        raise InvalidInputError(f"PAC needs a square odd kernel, got {tuple(weight.shape[-2:])}")
    if weight.shape[0] != cin:
        raise InvalidInputError(f"weight expects {weight.shape[0]} input channels, got {cin}")
    wflip = weight.flip(-1, -2).transpose(0, 1)  # Cout x Cin x k x k, conv layout
    anchor = kernel_features[:, :, 0::s, 0::s]  # guidance at the real samples
    ones = input.new_ones(1, 1, h, w)
    phases = []
    for ry in range(s):
        ty, dy = _phase_taps(ry, k, s)
        for rx in range(s):
            tx, dx = _phase_taps(rx, k, s)
            if not ty or not tx:  # no real sample in reach: only the bias
                phases.append(input.new_zeros(n, cout, h, w))
                continue
            pad = (-dx, dx + len(tx) - 1, -dy, dy + len(ty) - 1)
            win = (len(ty), len(tx))
            centre = kernel_features[:, :, ry::s, rx::s].reshape(n, -1, 1, h * w)
            feats = F.unfold(F.pad(anchor, pad), win).view(n, centre.shape[1], -1, h * w)
            kern = torch.exp(-0.5 * ((feats - centre) ** 2).sum(dim=1))  # N x taps x L
            if normalize_kernel:
                kern = kern * F.unfold(F.pad(ones, pad), win)
                kern = kern / kern.sum(dim=1, keepdim=True).clamp(min=1e-12)
            cols = F.unfold(F.pad(input, pad), win).view(n, cin, -1, h * w)
            cols = (cols * kern.unsqueeze(1)).view(n, -1, h * w)
            wsub = wflip[:, :, ty[0] : ty[-1] + 1 : s, tx[0] : tx[-1] + 1 : s]
            phases.append(torch.matmul(wsub.reshape(cout, -1), cols).view(n, cout, h, w))
    out = F.pixel_shuffle(torch.stack(phases, dim=2).reshape(n, cout * s * s, h, w), s)
    if bias is not None:
        out = out + bias.view(1, cout, 1, 1)
    return out


def _conv_stack(channels: list[int], k: int, last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        layers.append(nn.Conv2d(a, b, k, padding=k // 2))
        if last_relu or i < len(channels) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PacISP(nn.Module):
    """PAC joint-upsampling ISP: packed raw ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w``.

    - target branch: packed raw -> [conv 5x5 ``width`` + ReLU] x 3 at ``h x w``;
    - guidance branch: ``packed_to_bilinear_rgb`` (camera RGB at ``2h x 2w``) -> ``x ** (1/2.2)``
      -> conv 5x5 ``width`` + ReLU, ``width`` + ReLU, ``guide_channels`` (no activation);
    - :class:`PacConvTranspose2d` (5x5, x2) of the target features guided by the guidance,
      ReLU;
    - final branch: conv 5x5 ``width`` + ReLU, conv 5x5 -> 3 (no activation).

    ``output="clamp"`` (default): the output is clamped to [0, 1] in eval mode only;
    ``output="sigmoid"``: a sigmoid bounds it in both modes. Stride 1 (no padding needed).
    149,043 parameters by default.
    """

    def __init__(self, width: int = 32, guide_channels: int = 16, kernel_size: int = 5,
                 normalize_kernel: bool = False, output: str = "clamp",
                 gamma: float = 2.2) -> None:
        super().__init__()
        if output not in ("clamp", "sigmoid"):
            raise InvalidInputError(f"output must be 'clamp' or 'sigmoid', got {output!r}")
        self.output, self.gamma = output, float(gamma)
        k = kernel_size
        self.target = _conv_stack([4, width, width, width], k, last_relu=True)
        self.guide = _conv_stack([3, width, width, guide_channels], k, last_relu=False)
        self.up = PacConvTranspose2d(width, width, k, stride=2, normalize_kernel=normalize_kernel)
        self.final = _conv_stack([width, width, 3], k, last_relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` in [0, 1] -> sRGB ``N x 3 x 2h x 2w``."""
        check_image(x, 4, "packed raw")
        guidance = self.guide(gamma_encode(packed_to_bilinear_rgb(x), self.gamma))
        y = F.relu(self.up(self.target(x), guidance))
        y = self.final(y)
        if self.output == "sigmoid":
            return torch.sigmoid(y)
        return y if self.training else y.clamp(0.0, 1.0)


@register_model("pac_isp", parameters=149_043,
                paper="Su et al.: Pixel-Adaptive Convolutional Neural Networks, "
                "CVPR 2019 (as a learned-ISP baseline: ours)",
                stride=1, input_space="packed_raw", output_space="srgb", output_scale=2,
                defaults={"width": 32, "guide_channels": 16, "kernel_size": 5,
                          "normalize_kernel": False, "output": "clamp", "gamma": 2.2},
                card="pac_isp")
def pac_isp(**config) -> nn.Module:
    """PAC joint-upsampling ISP: packed-raw target branch, PAC x2 guided by the demosaiced RGB."""
    return PacISP(**config)
