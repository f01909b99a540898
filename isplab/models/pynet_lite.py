"""PyNET-V2 Mobile (Ignatov et al., ICPR 2022), structure of the reference Keras model.

Contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted; [0, 1]) -> sRGB
``N x 3 x 2h x 2w`` in [0, 1] at the default (finest) level.

* :class:`PyNETV2Mobile` (``pynet_lite``): stem + levels 3, 2, 1 with PReLU, reflect padding,
  grouped residual blocks, spatial and channel attention and depth-to-space heads
  (``tanh * 0.58 + 0.5``). Levels keep the paper's numbers: level 1 is the full-resolution
  output ``2h``, level 2 is ``h``, level 3 is ``h / 2``. Inputs are padded to a multiple of 4
  and to at least 28 (the channel attention of level 3 needs 7 pixels there).

The official release feeds ``raw / 1020`` packed as (B, Gb, R, Gr) with no black-level
subtraction (see :func:`isplab.models.pynet.pynet_state_dict_from_official` for PyNET).
The ``tanh * 0.58 + 0.5`` heads can leave [0, 1]: they are clamped in eval mode only, so
gradients flow unclamped in training. PyNET itself is :mod:`isplab.models.pynet`, MicroISP
:mod:`isplab.models.microisp`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models._pynet_shared import _check_level, _crop_level, _pad_input
from isplab.models.common import GlobalAvgPool
from isplab.models.registry import register_model


def _bounded(y: torch.Tensor, training: bool) -> torch.Tensor:
    """``tanh(y) * 0.58 + 0.5``, clamped to [0, 1] outside training."""
    y = torch.tanh(y) * 0.58 + 0.5
    return y if training else y.clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# PyNET-V2 Mobile


class _Conv(nn.Module):
    """[reflect pad k//2 when ``same``] -> conv ``k x k`` stride ``s`` (bias) ->
    [InstanceNorm, affine, eps 1e-3 as tfa's] -> [PReLU, one slope per channel]."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, same: bool = True,
                 instance_norm: bool = False, act: bool = True) -> None:
        super().__init__()
        self.pad = kernel // 2 if same else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = nn.InstanceNorm2d(cout, affine=True, eps=1e-3) if instance_norm else None
        self.act = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.act(x) if self.act is not None else x


class _GroupedResidual(nn.Module):
    """Split the channels into ``groups``; each group runs ``n`` residual conv 3x3 + PReLU
    layers (instance norm in the even-numbered groups when ``instance_norm``); concatenate,
    fuse with a 1x1 conv (no activation) and add the block's input."""

    def __init__(self, channels: int, groups: int, n: int, instance_norm: bool) -> None:
        super().__init__()
        if channels % groups:
            raise InvalidInputError(f"{channels} channels do not split into {groups} groups")
        c = channels // groups
        self.groups = nn.ModuleList(
            nn.ModuleList(_Conv(c, c, 3, instance_norm=instance_norm and i % 2 == 0)
                          for _ in range(n))
            for i in range(groups)
        )
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for g, layers in zip(torch.chunk(x, len(self.groups), 1), self.groups, strict=True):
            for layer in layers:
                g = layer(g) + g
            outs.append(g)
        return self.fuse(torch.cat(outs, 1)) + x


class _SpatialAttention(nn.Module):
    """``x + f * sigmoid(dwconv5x5(f))`` with ``f = PReLU(conv3x3(x))`` (reflect padding)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _Conv(channels, channels, 3)
        self.gate = nn.Conv2d(channels, channels, 5, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        return x + f * torch.sigmoid(self.gate(F.pad(f, (2, 2, 2, 2), mode="reflect")))


class _ChannelAttention(nn.Module):
    """``x + f * a`` with ``f = PReLU(conv3x3(x))`` and the per-channel gate ``a`` = conv 1x1
    stride 3 -> conv 3x3 stride 3 (both valid, PReLU) -> global mean -> 1x1 (PReLU) -> 1x1
    -> sigmoid. Needs a side of at least 7."""

    min_size: ClassVar[int] = 7

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.conv = _Conv(c, c, 3)
        self.squeeze = nn.Sequential(_Conv(c, c, 1, 3, same=False), _Conv(c, c, 3, 3, same=False))
        self.excite = nn.Sequential(_Conv(c, c, 1), nn.Conv2d(c, c, 1))
        self.pool = GlobalAvgPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        a = self.pool(self.squeeze(f))
        return x + f * torch.sigmoid(self.excite(a))


class _Residual1x1(nn.Module):
    """``x + PReLU(conv1x1(x))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _Conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class _Upsample(nn.Module):
    """Bilinear x2 (half-pixel, as Keras ``UpSampling2D``) -> reflect pad 1 -> conv 3x3 ->
    PReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _Conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear",
                                       align_corners=False))


class PyNETV2Mobile(nn.Module):
    """PyNET-V2 Mobile (Ignatov et al., "PyNet-V2 Mobile: Efficient On-Device Photo
    Processing With Neural Networks", ICPR 2022), structure of the reference Keras model.

    Packed raw ``N x 4 x h x w`` (R, G1, G2, B, black-level subtracted, [0, 1]) -> sRGB.
    Levels keep the paper's numbers: ``forward(x, level=1)`` (default) gives ``2h x 2w``,
    level 2 ``h x w``, level 3 ``ceil(h/2) x ceil(w/2)``; only what the level needs runs.
    Sides are padded inside to a multiple of 4 (two stride-2 convs) and to at least 28 (the
    channel attention of level 3 needs 7 pixels) and cropped back.

    Stem: conv 3x3 -> 32 (h), conv 2x2/2 -> 64 (h/2), conv 2x2/2 -> 128 (h/4), PReLU.
    Level 3 (128 ch): grouped residual (4 groups x 2 convs) -> spatial attention -> channel
    attention; head 1x1 -> 12 -> depth-to-space 2. Level 2 (64 ch): up-conv of level 3 + conv
    of the 64-ch stem -> 1x1 residual -> grouped residual (2 x 3) -> channel attention; head
    as level 3. Level 1 (32 ch): up-conv of level 2 + conv of the 32-ch stem -> 1x1 residual
    -> grouped residual (4 x 1) -> grouped residual (2 x 1); head 1x1 -> 16 (PReLU) ->
    depth-to-space 2 -> conv 3x3 -> 3. Every head ends in ``tanh * 0.58 + 0.5`` (clamped to
    [0, 1] in eval mode). 932,583 parameters.

    Args:
        level: the level ``forward`` returns when called without one (1, 2 or 3).
        instance_norm: instance norm in the grouped residual blocks (even groups).
    """

    levels: ClassVar[int] = 3  # levels 1..3
    finest_level: ClassVar[int] = 1
    stride: ClassVar[int] = 4
    min_size: ClassVar[int] = 28
    LEVEL_MODULES: ClassVar[dict[int, tuple[str, ...]]] = {
        3: ("level3",), 2: ("up2", "skip2", "level2"), 1: ("up1", "skip1", "level1"),
    }
    LEVEL_HEAD: ClassVar[dict[int, str]] = {3: "head3", 2: "head2", 1: "head1"}

    def __init__(self, level: int = 1, instance_norm: bool = True) -> None:
        super().__init__()
        self.level = _check_level(level, 1, self.levels)
        n = bool(instance_norm)
        self.stem1 = _Conv(4, 32, 3)
        self.stem2 = _Conv(32, 64, 2, 2, same=False)
        self.stem3 = _Conv(64, 128, 2, 2, same=False)
        self.level3 = nn.Sequential(_GroupedResidual(128, 4, 2, n), _SpatialAttention(128),
                                    _ChannelAttention(128))
        self.head3 = nn.Sequential(nn.Conv2d(128, 12, 1), nn.PixelShuffle(2))
        self.up2, self.skip2 = _Upsample(128, 64), _Conv(64, 64, 3)
        self.level2 = nn.Sequential(_Residual1x1(64), _GroupedResidual(64, 2, 3, n),
                                    _ChannelAttention(64))
        self.head2 = nn.Sequential(nn.Conv2d(64, 12, 1), nn.PixelShuffle(2))
        self.up1, self.skip1 = _Upsample(64, 32), _Conv(32, 32, 3)
        self.level1 = nn.Sequential(_Residual1x1(32), _GroupedResidual(32, 4, 1, n),
                                    _GroupedResidual(32, 2, 1, n))
        self.head1 = nn.Sequential(_Conv(32, 16, 1), nn.PixelShuffle(2),
                                   _Conv(4, 3, 3, act=False))

    @staticmethod
    def unused_parameter_prefixes(level: int) -> tuple[str, ...]:
        """Name prefixes of the modules a level-``level`` forward does not run."""
        _check_level(level, 1, PyNETV2Mobile.levels)
        unused = [h for lv, h in PyNETV2Mobile.LEVEL_HEAD.items() if lv != level]
        for lv in range(1, level):
            unused += PyNETV2Mobile.LEVEL_MODULES[lv]
        return tuple(f"{name}." for name in unused)

    @property
    def aux_parameter_prefixes(self) -> tuple[str, ...]:
        """Parameters the default-level forward does not use (level 1: heads 2 and 3)."""
        return self.unused_parameter_prefixes(self.level)

    @staticmethod
    def output_size(h: int, w: int, level: int = 1) -> tuple[int, int]:
        """Output side of level ``level`` for a packed ``h x w`` input: ceil(4h / 2**level)."""
        _check_level(level, 1, PyNETV2Mobile.levels)
        d = 2**level
        return -(-4 * h // d), -(-4 * w // d)

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` -> sRGB of ``level`` (default ``self.level``),
        ``N x 3 x ceil(4h / 2**level) x ceil(4w / 2**level)`` in [0, 1] (eval mode)."""
        level = self.level if level is None else _check_level(level, 1, self.levels)
        check_image(x, 4, "packed raw")
        x, size = _pad_input(x, self.stride, self.min_size)
        s1 = self.stem1(x)
        s2 = self.stem2(s1)
        feat = self.level3(self.stem3(s2))
        if level < 3:
            feat = self.level2(self.up2(feat) + self.skip2(s2))
        if level < 2:
            feat = self.level1(self.up1(feat) + self.skip1(s1))
        y = _bounded(getattr(self, self.LEVEL_HEAD[level])(feat), self.training)
        return _crop_level(y, size, 4, 2**level)


# ---------------------------------------------------------------------------------------------
# registry


@register_model(
    "pynet_lite",
    parameters=932_583,
    paper="Ignatov et al.: PyNet-V2 Mobile: Efficient On-Device Photo "
          "Processing With Neural Networks, ICPR 2022",
    stride=4,
    defaults={"level": 1, "instance_norm": True},
    card="pynet_lite",
)
def pynet_lite(**config) -> nn.Module:
    """PyNET-V2 Mobile: 3-level mobile PyNET with attention and depth-to-space heads."""
    return PyNETV2Mobile(**config)
