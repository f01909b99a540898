"""DPED (Ignatov, Kobyshev, Timofte, Vanhoey, Van Gool, "DSLR-Quality Photos on Mobile Devices
with Deep Convolutional Networks", ICCV 2017): a residual image-to-image generator trained with
content (VGG), colour (blurred MSE), texture (adversarial, grayscale discriminator) and TV losses;
plus DPED+, the depthwise-separable ("MobileNet") generator of the seed MPSE.

Registered names (model card ``docs/models/dped.md``):

- ``dped``, ``dped_plus``: raw contract, packed raw ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w``.
  The paper's network enhances phone RGB, so the wrapper's stem is fixed and parameter-free:
  in-graph bilinear demosaic (:func:`isplab.models.common.packed_to_bilinear_rgb`) and the power
  gamma ``x ** (1 / 2.2)``, feeding the RGB generator at full resolution.
- ``dped_rgb``, ``dped_plus_rgb``: the paper's setting, sRGB ``N x 3 x H x W`` -> sRGB, same size.
- ``dped_discriminator`` (building block, ``public=False``): sRGB -> ``N x 2`` logits.

Parameters: DPED generator 401,475 (raw and RGB forms alike, the stem has none); DPED+ 120,249;
discriminator 7,361,122.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.classic.color import luma
from isplab.errors import InvalidInputError
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.registry import register_model

PAPER = "Ignatov et al., DSLR-Quality Photos on Mobile Devices with Deep Convolutional " \
    "Networks, ICCV 2017"
PAPER_PLUS = PAPER + "; DPED+ depthwise-separable (MobileNet) generator of the seed MPSE"
ACTIVATIONS = ("relu", "leaky_relu")
IN_EPS = 1e-3  # the TF code's instance-norm epsilon


def _act(kind: str, negative_slope: float) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope, inplace=True)


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True, eps=IN_EPS)


def _separable(c_in: int, c_out: int, k: int, multiplier: int = 1) -> list[nn.Module]:
    """Depthwise ``k x k`` (zero 'same' padding, ``multiplier`` filters per channel) +
    pointwise 1x1 (no norm or activation in between: the caller adds them)."""
    mid = c_in * multiplier
    return [nn.Conv2d(c_in, mid, k, padding=k // 2, groups=c_in), nn.Conv2d(mid, c_out, 1)]


class _ResidualBlock(nn.Module):
    """[conv 3x3 -> IN -> act] x 2 + identity (added after the second activation, as the TF
    code does). ``separable``: each conv 3x3 becomes depthwise 3x3 -> IN -> act -> pointwise
    1x1 -> IN -> act."""

    def __init__(self, width: int, separable: bool, activation: str, negative_slope: float):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            if separable:
                dw, pw = _separable(width, width, 3)
                layers += [dw, _norm(width), _act(activation, negative_slope),
                           pw, _norm(width), _act(activation, negative_slope)]
            else:
                layers += [nn.Conv2d(width, width, 3, padding=1), _norm(width),
                           _act(activation, negative_slope)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


def raw_stem(packed: torch.Tensor, gamma: float = 2.2) -> torch.Tensor:
    """The DPED raw stem: packed raw ``N x 4 x h x w`` in [0, 1] -> display-referred RGB
    ``N x 3 x 2h x 2w`` in [0, 1]: bilinear demosaic in the graph, then ``x ** (1 / gamma)``
    (values clipped to [0, 1] first). Camera RGB, no white balance: the generator learns the
    colour rendering."""
    rgb = packed_to_bilinear_rgb(packed).clamp(0.0, 1.0)
    return rgb ** (1.0 / gamma)


class DPED(nn.Module):
    """DPED / DPED+ generator, RGB -> RGB at the input resolution (optionally behind the raw
    stem).

    DPED (``separable=False``): conv 9x9 3 -> 64, ReLU; 4 residual blocks
    [conv 3x3 -> IN(affine, eps 1e-3) -> ReLU] x 2 + identity; 2 x [conv 3x3 64, ReLU];
    conv 9x9 64 -> 3; ``tanh * 0.58 + 0.5``. Zero 'same' padding throughout. 401,475 parameters.

    DPED+ (``separable=True``): the 3x3 convs of the residual blocks become depthwise 3x3 ->
    IN -> act -> pointwise 1x1 -> IN -> act; the 9x9 head becomes depthwise 9x9 (``head_multiplier``
    filters per input channel) -> pointwise 1x1 -> act, and the 9x9 tail depthwise 9x9 ->
    pointwise 1x1 -> tanh. Head and tail carry no IN: normalising the 3-channel input per channel
    would erase its colour cast and contrast, and the original head/tail have none either. The
    two plain 3x3 convs after the blocks stay. 120,249 parameters (defaults).

    Args:
        separable: DPED+ instead of DPED.
        raw_input: take packed raw ``N x 4 x h x w`` through :func:`raw_stem` (output
            ``2h x 2w``) instead of sRGB ``N x 3 x H x W``.
        width, n_blocks: 64 and 4 in the paper.
        activation: "relu" (paper) or "leaky_relu" (the MPSE ablation), ``negative_slope``.
        head_multiplier: DPED+ only, depth multiplier of the depthwise 9x9 head.

    Output: sRGB in [-0.08, 1.08] in training (the paper's ``tanh * 0.58 + 0.5``), clamped to
    [0, 1] in eval mode. Any size works (stride 1).
    """

    def __init__(self, separable: bool = False, raw_input: bool = False, width: int = 64,
                 n_blocks: int = 4, activation: str = "relu", negative_slope: float = 0.2,
                 head_multiplier: int = 1) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InvalidInputError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if width < 1 or n_blocks < 0 or head_multiplier < 1:
            raise InvalidInputError(f"need width >= 1, n_blocks >= 0, head_multiplier >= 1; got "
                                    f"{width}, {n_blocks}, {head_multiplier}")
        self.separable, self.raw_input = separable, raw_input

        def act() -> nn.Module:
            return _act(activation, negative_slope)

        if separable:
            self.head = nn.Sequential(*_separable(3, width, 9, head_multiplier), act())
            self.tail = nn.Sequential(*_separable(width, 3, 9))
        else:
            self.head = nn.Sequential(nn.Conv2d(3, width, 9, padding=4), act())
            self.tail = nn.Sequential(nn.Conv2d(width, 3, 9, padding=4))
        self.blocks = nn.Sequential(*(_ResidualBlock(width, separable, activation, negative_slope)
                                      for _ in range(n_blocks)))
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), act(),
                                  nn.Conv2d(width, width, 3, padding=1), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """sRGB ``N x 3 x H x W`` -> sRGB ``N x 3 x H x W``; with ``raw_input``, packed raw
        ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w``."""
        if self.raw_input:
            check_image(x, 4, "packed raw")
            x = raw_stem(x)
        else:
            check_image(x, 3, "sRGB image")
        y = self.tail(self.body(self.blocks(self.head(x))))
        y = torch.tanh(y) * 0.58 + 0.5
        return y if self.training else y.clamp(0.0, 1.0)


def _tf_same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """Zero-pad as TensorFlow's ``padding='SAME'`` (output ``ceil(n / s)``, extra pixel on the
    bottom/right). Needs ``k >= s`` (true for every layer here), so the total is never
    negative; only non-negative integer division, so the arithmetic also traces to ONNX."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = ((n + s - 1) // s - 1) * s + k - n
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _DiscConv(nn.Module):
    """TF-'SAME' conv -> LeakyReLU(0.2) -> optional IN (affine, eps 1e-3)."""

    def __init__(self, c_in: int, c_out: int, k: int, s: int, norm: bool):
        super().__init__()
        if k < s:
            raise ValueError(f"TF 'SAME' padding here needs kernel >= stride, got {k} < {s}")
        self.k, self.s = k, s
        self.conv = nn.Conv2d(c_in, c_out, k, stride=s)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.norm = _norm(c_out) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.conv(_tf_same_pad(x, self.k, self.s))))


class DPEDDiscriminator(nn.Module):
    """DPED texture discriminator: sRGB ``N x 3 x H x W`` -> ``N x 2`` logits (softmax and
    cross-entropy belong in the loss).

    Grayscale (TF weights) -> conv 11x11/4 48 LReLU(0.2) -> conv 5x5/2 128, 3x3 192, 3x3 192,
    3x3/2 128 (each conv -> LReLU -> IN) -> flatten 128·7·7 -> FC 1024 LReLU -> FC 2.
    TF 'SAME' padding, so a 100 x 100 patch gives exactly 7 x 7 before the flatten. Other sizes:
    adaptive average pool to 7 x 7 before the flatten (deviation; identity at 100 x 100).
    7,361,122 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _DiscConv(1, 48, 11, 4, norm=False),
            _DiscConv(48, 128, 5, 2, norm=True),
            _DiscConv(128, 192, 3, 1, norm=True),
            _DiscConv(192, 192, 3, 1, norm=True),
            _DiscConv(192, 128, 3, 2, norm=True),
        )
        self.fc = nn.Sequential(nn.Linear(128 * 7 * 7, 1024), nn.LeakyReLU(0.2, inplace=True),
                                nn.Linear(1024, 2))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """sRGB ``N x 3 x H x W`` in [0, 1] -> logits ``N x 2`` (H, W >= 1)."""
        check_image(rgb, 3, "sRGB image")
        f = self.features(luma(rgb))
        if tuple(f.shape[-2:]) != (7, 7):
            f = F.adaptive_avg_pool2d(f, 7)
        return self.fc(f.flatten(1))


@register_model("dped", parameters=401_475,
                paper=PAPER, stride=1, card="dped", defaults={"raw_input": True})
def dped(**config: Any) -> nn.Module:
    """DPED generator behind a bilinear-demosaic + gamma raw stem: packed raw -> sRGB."""
    return DPED(**config)


@register_model("dped_plus", parameters=120_249, paper=PAPER_PLUS, stride=1, card="dped",
                defaults={"raw_input": True, "separable": True})
def dped_plus(**config: Any) -> nn.Module:
    """DPED+ depthwise-separable generator behind the raw stem: packed raw -> sRGB."""
    return DPED(**config)


@register_model("dped_rgb", parameters=401_475,
                paper=PAPER, stride=1, card="dped", input_space="srgb",
                output_scale=1)
def dped_rgb(**config: Any) -> nn.Module:
    """DPED generator, the paper's setting: phone sRGB -> enhanced sRGB."""
    return DPED(**config)


@register_model("dped_plus_rgb", parameters=120_249,
                paper=PAPER_PLUS, stride=1, card="dped", input_space="srgb",
                output_scale=1, defaults={"separable": True})
def dped_plus_rgb(**config: Any) -> nn.Module:
    """DPED+ depthwise-separable generator: sRGB -> enhanced sRGB."""
    return DPED(**config)


@register_model("dped_discriminator", parameters=7_361_122,
                paper=PAPER, card="dped", input_space="srgb",
                output_space="logits", output_scale=1, public=False)
def dped_discriminator(**config: Any) -> nn.Module:
    """DPED grayscale texture discriminator: sRGB patch -> 2 logits."""
    return DPEDDiscriminator(**config)


# --- the discriminator as a GAN critic (how the supervised objective's GAN uses it) --------


def discriminator_input(x: torch.Tensor, mode: str) -> torch.Tensor:
    """What the discriminator sees: ``gray`` (DPED: it judges texture, not colour; BT.601
    luma repeated to 3 channels) or ``rgb`` (the image)."""
    if mode == "gray":
        return luma(x).expand(-1, 3, -1, -1)
    return x


def two_class_to_logit(out: torch.Tensor) -> torch.Tensor:
    """A 2-way softmax discriminator (DPED: class 1 = real) as one real-vs-fake logit; other
    outputs pass through."""
    if out.ndim == 2 and out.shape[1] == 2:
        return out[:, 1] - out[:, 0]
    return out


def critic_logit(disc: nn.Module, images: torch.Tensor, mode: str = "rgb") -> torch.Tensor:
    """One real-vs-fake logit per image from a discriminator (DPED's two-class head or a
    one-logit critic), on :func:`discriminator_input`."""
    return two_class_to_logit(disc(discriminator_input(images, mode)))
