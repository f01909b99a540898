"""The PyNET family: PyNET (Ignatov, Van Gool, Timofte, CVPR-W 2020), PyNET-V2 Mobile
(Ignatov et al., ICPR 2022) and MicroISP (Ignatov et al., ECCV-W 2022).

Contract of all three: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted;
[0, 1]) -> sRGB ``N x 3 x 2h x 2w`` in [0, 1] at the default (finest) level.

* :class:`PyNET` (``pynet``, 47,554,738 parameters with the defaults): the PyTorch release's
  5-level inverted pyramid plus level 0. ``forward(x, level=L)`` returns the output of level
  ``L`` (0..5) at ``2h / 2**L`` (sigmoid output) and computes only what that level needs;
  ``forward_pyramid(x)`` returns every level's output from one pass.
  Inputs are padded to a multiple of 16 (four 2x2 max-pools) and to at least 32 (the 3x3
  reflect padding of level 5 needs 2 pixels there).
* :class:`PyNETV2Mobile` (``pynet_lite``): stem + levels 3, 2, 1 with PReLU, reflect padding,
  grouped residual blocks, spatial and channel attention and depth-to-space heads
  (``tanh * 0.58 + 0.5``). Levels keep the paper's numbers: level 1 is the full-resolution
  output ``2h``, level 2 is ``h``, level 3 is ``h / 2``. Inputs are padded to a multiple of 4
  and to at least 28 (the channel attention of level 3 needs 7 pixels there).
* :class:`MicroISP` (``microisp``, 13,560 parameters): three per-colour branches of two
  stages each, attention gates, depth-to-space; any size works (zero-padded 3x3 convs).

The official releases feed ``raw / 1020`` packed as (B, Gb, R, Gr) with no black-level
subtraction; :func:`pynet_state_dict_from_official` converts a PyNET release checkpoint to
this contract (channel order and normalisation folded into the first convolution).
The ``tanh * 0.58 + 0.5`` heads can leave [0, 1]: they are clamped in eval mode only, so
gradients flow unclamped in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from isplab.errors import InvalidInputError
from isplab.models.common import GlobalAvgPool, check_input, pad_to_multiple
from isplab.models.registry import register_model

# official packing (B, Gb, R, Gr) of an RGGB mosaic, as indices into our (R, G1, G2, B)
OFFICIAL_CHANNELS = (3, 1, 0, 2)
OFFICIAL_DIVISOR = 1020.0  # the releases divide the 10-bit raw by 4 * 255


# ---------------------------------------------------------------------------------------------
# shared helpers


def _pad_input(x: torch.Tensor, multiple: int, minimum: int) -> tuple[torch.Tensor,
                                                                      tuple[int, int]]:
    """Pad ``x`` (bottom/right) to a multiple of ``multiple`` and to at least ``minimum``
    (itself a multiple) on both sides; returns the padded tensor and the original size."""
    x, size = pad_to_multiple(x, multiple)
    h, w = x.shape[-2:]
    ph, pw = max(0, minimum - h), max(0, minimum - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, size


def _pad_min(x: torch.Tensor, minimum: int) -> torch.Tensor:
    """Pad ``x`` (bottom/right) to at least ``minimum`` per side: reflect where the image is
    large enough, replicate otherwise."""
    h, w = x.shape[-2:]
    ph, pw = max(0, minimum - h), max(0, minimum - w)
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _crop_level(y: torch.Tensor, size: tuple[int, int], num: int, den: int) -> torch.Tensor:
    """Crop ``y`` to ``ceil(size * num / den)`` (the output of a level at scale num/den)."""
    return y[..., : -(-size[0] * num // den), : -(-size[1] * num // den)]


def _check_level(level: int, first: int, count: int) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not first <= level < first + count:
        raise InvalidInputError(
            f"level must be an integer in {first}..{first + count - 1}, got {level!r}"
        )
    return level


def _bounded(y: torch.Tensor, training: bool) -> torch.Tensor:
    """``tanh(y) * 0.58 + 0.5``, clamped to [0, 1] outside training."""
    y = torch.tanh(y) * 0.58 + 0.5
    return y if training else y.clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# PyNET (PyTorch release)


class _ConvLayer(nn.Module):
    """Reflect pad ``k // 2`` -> conv ``k x k`` (bias) -> [InstanceNorm, affine] ->
    [LeakyReLU 0.2]. Attribute names follow the release (``conv2d``, ``instance``)."""

    def __init__(self, cin: int, cout: int, kernel: int, *, instance_norm: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv2d = nn.Conv2d(cin, cout, kernel)
        self.instance = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        x = self.conv2d(x)
        if self.instance is not None:
            x = self.instance(x)
        return F.leaky_relu(x, 0.2) if self.relu else x


class _MultiConv(nn.Module):
    """PyNET's multi-conv block MC(cin, c, K): parallel branches for k = 3, 5, ..., K, each
    CL(k): cin -> c then CL(k): c -> c; the branches are concatenated (``c * #branches``
    channels out). Branch layers are ``conv_{k}a`` / ``conv_{k}b`` as in the release."""

    def __init__(self, cin: int, c: int, max_kernel: int, instance_norm: bool) -> None:
        super().__init__()
        self.kernels = tuple(range(3, max_kernel + 1, 2))
        for k in self.kernels:
            setattr(self, f"conv_{k}a", _ConvLayer(cin, c, k, instance_norm=instance_norm))
            setattr(self, f"conv_{k}b", _ConvLayer(c, c, k, instance_norm=instance_norm))
        self.out_channels = c * len(self.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [getattr(self, f"conv_{k}b")(getattr(self, f"conv_{k}a")(x))
                for k in self.kernels]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class _UpConv(nn.Module):
    """Bilinear x2 (align_corners=True) -> reflect pad 1 -> conv 3x3 -> LeakyReLU 0.2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return F.leaky_relu(self.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect")), 0.2)


def _head(cin: int) -> _ConvLayer:
    """Output conv 3x3 -> 3 channels (the sigmoid is applied in forward)."""
    return _ConvLayer(cin, 3, 3, relu=False)


class PyNET(nn.Module):
    """PyNET (Ignatov, Van Gool, Timofte, "Replacing Mobile Camera ISP with a Single Deep
    Learning Model", CVPR Workshops 2020), structure of the PyTorch release.

    Packed raw ``N x 4 x h x w`` (R, G1, G2, B, black-level subtracted, [0, 1]) -> sRGB.
    ``forward(x, level=L)`` returns level ``L``'s sigmoid output, ``N x 3 x ceil(2h / 2**L) x
    ceil(2w / 2**L)``: level 0 is ``2h x 2w`` (the contract), level 1 ``h x w``, level 5
    ``h/16``. Only the layers that level needs run; ``forward_pyramid(x)`` returns the outputs
    of all levels from one pass. Sides that are not multiples of 16 (four
    2x2 max-pools) or smaller than 32 are padded inside (reflect, replicate when too small)
    and the output is cropped back.

    Encoder MC(4,32,3) [no IN] / MC(32,64,3) / MC(64,128,3) / MC(128,256,3) with max-pools;
    level 5 = 4 MC(.,512,3) at ``h/16``; levels 4..1 as in the release (residual MCs, skip
    concatenations, two bilinear up-convs per level), level 0 = up-conv 32->16 + conv 16->3.
    Instance norm in every block of levels 2..5 (``instance_norm``) and in the inner blocks
    of level 1 (``instance_norm_level_1``, True as in the release's training script).
    47,554,738 parameters. Parameter names match the release's ``state_dict``.

    Args:
        level: the level ``forward`` returns when called without one (0..5): set it to the
            level being trained in the coarse-to-fine schedule.
        instance_norm: instance norm in levels 2..5 and the encoder below level 1.
        instance_norm_level_1: instance norm in the inner level-1 blocks.
    """

    levels: ClassVar[int] = 6  # levels 0..5
    finest_level: ClassVar[int] = 0
    stride: ClassVar[int] = 16
    min_size: ClassVar[int] = 32

    # modules of each level: body, the two up-convs feeding the next finer level, the head
    LEVEL_BODY: ClassVar[dict[int, tuple[str, ...]]] = {
        5: ("conv_l5_d1", "conv_l5_d2", "conv_l5_d3", "conv_l5_d4"),
        4: ("conv_l4_d3", "conv_l4_d4", "conv_l4_d5", "conv_l4_d6", "conv_l4_d8"),
        3: ("conv_l3_d3", "conv_l3_d4", "conv_l3_d5", "conv_l3_d6", "conv_l3_d8"),
        2: ("conv_l2_d3", "conv_l2_d5", "conv_l2_d6", "conv_l2_d7", "conv_l2_d8",
            "conv_l2_d10", "conv_l2_d12"),
        1: ("conv_l1_d3", "conv_l1_d5", "conv_l1_d6", "conv_l1_d7", "conv_l1_d8",
            "conv_l1_d9", "conv_l1_d10", "conv_l1_d12", "conv_l1_d14"),
        0: (),
    }
    LEVEL_UP: ClassVar[dict[int, tuple[str, ...]]] = {
        5: ("conv_t4a", "conv_t4b"), 4: ("conv_t3a", "conv_t3b"), 3: ("conv_t2a", "conv_t2b"),
        2: ("conv_t1a", "conv_t1b"), 1: ("conv_t0",), 0: (),
    }
    LEVEL_HEAD: ClassVar[dict[int, str]] = {
        5: "conv_l5_out", 4: "conv_l4_out", 3: "conv_l3_out", 2: "conv_l2_out",
        1: "conv_l1_out", 0: "conv_l0_d1",
    }
    ENCODER: ClassVar[tuple[str, ...]] = ("conv_l1_d1", "conv_l2_d1", "conv_l3_d1", "conv_l4_d1")

    def __init__(self, level: int = 0, instance_norm: bool = True,
                 instance_norm_level_1: bool = True) -> None:
        super().__init__()
        self.level = _check_level(level, 0, self.levels)
        n, n1 = bool(instance_norm), bool(instance_norm_level_1)
        # encoder
        self.conv_l1_d1 = _MultiConv(4, 32, 3, False)
        self.conv_l2_d1 = _MultiConv(32, 64, 3, n)
        self.conv_l3_d1 = _MultiConv(64, 128, 3, n)
        self.conv_l4_d1 = _MultiConv(128, 256, 3, n)
        # level 5 (h/16)
        self.conv_l5_d1 = _MultiConv(256, 512, 3, n)
        self.conv_l5_d2 = _MultiConv(512, 512, 3, n)
        self.conv_l5_d3 = _MultiConv(512, 512, 3, n)
        self.conv_l5_d4 = _MultiConv(512, 512, 3, n)
        self.conv_t4a, self.conv_t4b = _UpConv(512, 256), _UpConv(512, 256)
        self.conv_l5_out = _head(512)
        # level 4 (h/8)
        self.conv_l4_d3 = _MultiConv(512, 256, 3, n)
        self.conv_l4_d4 = _MultiConv(256, 256, 3, n)
        self.conv_l4_d5 = _MultiConv(256, 256, 3, n)
        self.conv_l4_d6 = _MultiConv(256, 256, 3, n)
        self.conv_l4_d8 = _MultiConv(512, 256, 3, n)
        self.conv_t3a, self.conv_t3b = _UpConv(256, 128), _UpConv(256, 128)
        self.conv_l4_out = _head(256)
        # level 3 (h/4)
        self.conv_l3_d3 = _MultiConv(256, 128, 5, n)
        self.conv_l3_d4 = _MultiConv(256, 128, 5, n)
        self.conv_l3_d5 = _MultiConv(256, 128, 5, n)
        self.conv_l3_d6 = _MultiConv(256, 128, 5, n)
        self.conv_l3_d8 = _MultiConv(512, 128, 3, n)
        self.conv_t2a, self.conv_t2b = _UpConv(128, 64), _UpConv(128, 64)
        self.conv_l3_out = _head(128)
        # level 2 (h/2)
        self.conv_l2_d3 = _MultiConv(128, 64, 5, n)
        self.conv_l2_d5 = _MultiConv(192, 64, 7, n)
        self.conv_l2_d6 = _MultiConv(192, 64, 7, n)
        self.conv_l2_d7 = _MultiConv(192, 64, 7, n)
        self.conv_l2_d8 = _MultiConv(192, 64, 7, n)
        self.conv_l2_d10 = _MultiConv(256, 64, 5, n)
        self.conv_l2_d12 = _MultiConv(192, 64, 3, n)
        self.conv_t1a, self.conv_t1b = _UpConv(64, 32), _UpConv(64, 32)
        self.conv_l2_out = _head(64)
        # level 1 (h, the packed resolution)
        self.conv_l1_d3 = _MultiConv(64, 32, 5, False)
        self.conv_l1_d5 = _MultiConv(96, 32, 7, n1)
        self.conv_l1_d6 = _MultiConv(96, 32, 9, n1)
        self.conv_l1_d7 = _MultiConv(128, 32, 9, n1)
        self.conv_l1_d8 = _MultiConv(128, 32, 9, n1)
        self.conv_l1_d9 = _MultiConv(128, 32, 9, n1)
        self.conv_l1_d10 = _MultiConv(128, 32, 7, n1)
        self.conv_l1_d12 = _MultiConv(128, 32, 5, n1)
        self.conv_l1_d14 = _MultiConv(128, 32, 3, False)
        self.conv_t0 = _UpConv(32, 16)
        self.conv_l1_out = _head(32)
        # level 0 (2h, full resolution)
        self.conv_l0_d1 = _head(16)

    # -- structure ------------------------------------------------------------------------

    @staticmethod
    def unused_parameter_prefixes(level: int) -> tuple[str, ...]:
        """Name prefixes (with the trailing dot) of the modules a level-``level`` forward
        does not run: the other levels' heads, finer levels, this level's up-convs."""
        _check_level(level, 0, PyNET.levels)
        unused: list[str] = []
        for lv in range(PyNET.levels):
            if lv < level:
                unused += PyNET.LEVEL_BODY[lv] + PyNET.LEVEL_UP[lv]
            elif lv == level:
                unused += PyNET.LEVEL_UP[lv]
            if lv != level:
                unused.append(PyNET.LEVEL_HEAD[lv])
        return tuple(f"{name}." for name in unused)

    @property
    def aux_parameter_prefixes(self) -> tuple[str, ...]:
        """Parameters the default-level forward does not use (for level 0: the heads of
        levels 1..5), as name prefixes."""
        return self.unused_parameter_prefixes(self.level)

    @staticmethod
    def output_size(h: int, w: int, level: int = 0) -> tuple[int, int]:
        """Output side of level ``level`` for a packed ``h x w`` input: ceil(2h / 2**level)."""
        _check_level(level, 0, PyNET.levels)
        d = 2**level
        return -(-2 * h // d), -(-2 * w // d)

    # -- forward ----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` -> sRGB of ``level`` (default: ``self.level``),
        ``N x 3 x ceil(2h / 2**level) x ceil(2w / 2**level)`` in [0, 1]."""
        level = self.level if level is None else _check_level(level, 0, self.levels)
        return self._run(x, level, (level,))[level]

    def forward_pyramid(self, x: torch.Tensor, level: int | None = None) -> list[torch.Tensor]:
        """The outputs of levels ``level`` .. 5 (finest first) from one pass: ``out[i]`` is
        level ``level + i`` at ``ceil(2h / 2**(level + i))``. For multi-level supervision."""
        level = self.level if level is None else _check_level(level, 0, self.levels)
        heads = tuple(range(level, self.levels))
        outs = self._run(x, level, heads)
        return [outs[lv] for lv in heads]

    def _run(self, x: torch.Tensor, level: int, heads: tuple[int, ...]) -> dict[int, torch.Tensor]:
        """Run the pyramid down to ``level``; apply the heads of ``heads`` (all >= level)."""
        check_input(x, 4)
        x, size = _pad_input(x, self.stride, self.min_size)
        f1 = self.conv_l1_d1(x)
        f2 = self.conv_l2_d1(F.max_pool2d(f1, 2))
        f3 = self.conv_l3_d1(F.max_pool2d(f2, 2))
        f4 = self.conv_l4_d1(F.max_pool2d(f3, 2))
        outs: dict[int, torch.Tensor] = {}

        def emit(lv: int, feat: torch.Tensor) -> None:
            if lv in heads:
                y = torch.sigmoid(getattr(self, self.LEVEL_HEAD[lv])(feat))
                outs[lv] = _crop_level(y, size, 2, 2**lv)

        feat = self._level5(F.max_pool2d(f4, 2))
        emit(5, feat)
        skips = {4: f4, 3: f3, 2: f2, 1: f1}
        steps = {4: self._level4, 3: self._level3, 2: self._level2, 1: self._level1}
        for lv in range(4, level - 1, -1):
            if lv == 0:
                feat = self.conv_t0(feat)
            else:
                feat = steps[lv](skips[lv], *self._up(lv + 1, feat))
            emit(lv, feat)
        return outs

    def _up(self, level: int, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.LEVEL_UP[level]
        return getattr(self, a)(feat), getattr(self, b)(feat)

    def _level5(self, p4: torch.Tensor) -> torch.Tensor:
        return self.conv_l5_d4(self.conv_l5_d3(self.conv_l5_d2(self.conv_l5_d1(p4))))

    def _level4(self, f4: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d3 = self.conv_l4_d3(torch.cat([f4, a], 1))
        d4 = self.conv_l4_d4(d3) + d3
        d5 = self.conv_l4_d5(d4) + d4
        d6 = self.conv_l4_d6(d5)
        return self.conv_l4_d8(torch.cat([d6, b], 1))

    def _level3(self, f3: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cat([f3, a], 1)
        d3 = self.conv_l3_d3(d2) + d2
        d4 = self.conv_l3_d4(d3) + d3
        d5 = self.conv_l3_d5(d4) + d4
        d6 = self.conv_l3_d6(d5)
        return self.conv_l3_d8(torch.cat([d6, f3, b], 1))

    def _level2(self, f2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d3 = self.conv_l2_d3(torch.cat([f2, a], 1))
        d4 = torch.cat([d3, f2], 1)
        d5 = self.conv_l2_d5(d4) + d4
        d6 = self.conv_l2_d6(d5) + d5
        d7 = self.conv_l2_d7(d6) + d6
        d8 = self.conv_l2_d8(d7)
        d10 = self.conv_l2_d10(torch.cat([d8, f2], 1))
        return self.conv_l2_d12(torch.cat([d10, b], 1))

    def _level1(self, f1: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d3 = self.conv_l1_d3(torch.cat([f1, a], 1))
        d5 = self.conv_l1_d5(torch.cat([d3, f1], 1))
        d6 = self.conv_l1_d6(d5)
        d7 = self.conv_l1_d7(d6) + d6
        d8 = self.conv_l1_d8(d7) + d7
        d9 = self.conv_l1_d9(d8) + d8
        d10 = self.conv_l1_d10(d9)
        d12 = self.conv_l1_d12(torch.cat([d10, f1], 1))
        return self.conv_l1_d14(torch.cat([d12, b, f1], 1))


def pynet_state_dict_from_official(
    state_dict: Mapping[str, torch.Tensor], black_level: float = 0.0,
    white_level: float = OFFICIAL_DIVISOR,
) -> dict[str, torch.Tensor]:
    """Convert a PyNET PyTorch-release checkpoint to this module's input contract.

    The release feeds ``raw / 1020`` packed as (B, Gb, R, Gr) = mosaic sites (1,1), (0,1),
    (0,0), (1,0) of an RGGB sensor, without black-level subtraction; :class:`PyNET` takes
    ``(raw - black_level) / (white_level - black_level)`` as (R, G1, G2, B). Both are affine
    in ``raw`` and reflect padding commutes with affine maps, so the conversion is exact: the
    input channels of the first convolution (``conv_l1_d1.conv_3a.conv2d``) are permuted,
    its weight scaled by ``(white_level - black_level) / 1020`` and ``black_level / 1020 *
    sum(weight)`` added to its bias. A ``module.`` prefix (``DataParallel``) is removed.
    With the defaults (0, 1020) only the channel order changes.

    Args:
        state_dict: the release's ``state_dict`` (parameter names are the same as ours).
        black_level, white_level: the raw levels our normalisation uses for that camera
            (in the raw's own units, e.g. 63 and 1020 for the ZRR Huawei P20 raw).

    Returns:
        A new state dict for ``PyNET(instance_norm_level_1=True).load_state_dict``.
    """
    if not white_level > black_level:
        raise InvalidInputError(
            f"white_level ({white_level}) must be above black_level ({black_level})"
        )
    out = {k.removeprefix("module."): v for k, v in state_dict.items()}
    wkey, bkey = "conv_l1_d1.conv_3a.conv2d.weight", "conv_l1_d1.conv_3a.conv2d.bias"
    if wkey not in out or bkey not in out or out[wkey].shape[1] != 4:
        raise InvalidInputError(f"not a PyNET checkpoint: no 4-channel {wkey}")
    w_off, b_off = out[wkey], out[bkey]
    w = torch.empty_like(w_off)
    w[:, list(OFFICIAL_CHANNELS)] = w_off  # official channel i reads our channel perm[i]
    out[wkey] = w * ((white_level - black_level) / OFFICIAL_DIVISOR)
    out[bkey] = b_off + (black_level / OFFICIAL_DIVISOR) * w_off.sum(dim=(1, 2, 3))
    return out


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
        check_input(x, 4)
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
# MicroISP


class _AttentionGate(nn.Module):
    """MicroISP's gate: conv 1x1 stride 3 -> 3 x [conv 3x3 stride 3] (valid, PReLU each) ->
    global average -> 1x1 (PReLU) -> 1x1 -> sigmoid: ``N x out x 1 x 1`` in (0, 1).

    The strided convs need a side of at least 79; smaller inputs are padded (reflect, or
    replicate when too small) inside the gate only, which the reference cannot run at all.
    """

    min_size: ClassVar[int] = 79

    def __init__(self, channels: int = 4, hidden: int = 4, out: int = 4) -> None:
        super().__init__()
        c = channels
        self.squeeze = nn.Sequential(
            nn.Conv2d(c, c, 1, stride=3), nn.PReLU(c),
            nn.Conv2d(c, c, 3, stride=3), nn.PReLU(c),
            nn.Conv2d(c, c, 3, stride=3), nn.PReLU(c),
            nn.Conv2d(c, c, 3, stride=3), nn.PReLU(c),
        )
        self.excite = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.PReLU(hidden),
                                    nn.Conv2d(hidden, out, 1))
        self.pool = GlobalAvgPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pool(self.squeeze(_pad_min(x, self.min_size)))
        return torch.sigmoid(self.excite(a))


class _MicroBranch(nn.Module):
    """One colour's stage: ``blocks`` conv 3x3 (zero padding) + PReLU layers of ``features``
    channels; every ``res_skip`` layers an attention gate multiplies the features and the
    first layer of the group is added back; conv 3x3 -> ``scale**2`` channels -> tanh."""

    def __init__(self, cin: int = 4, features: int = 4, blocks: int = 7, res_skip: int = 3,
                 scale: int = 2) -> None:
        super().__init__()
        self.res_skip = res_skip
        self.convs = nn.ModuleList(
            nn.Conv2d(cin if j == 0 else features, features, 3, padding=1) for j in range(blocks)
        )
        self.acts = nn.ModuleList(nn.PReLU(features) for _ in range(blocks))
        self.gates = nn.ModuleDict({
            str(j): _AttentionGate(features, features, features)
            for j in range(blocks) if j % res_skip == res_skip - 1
        })
        self.out = nn.Conv2d(features, scale * scale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        for j, (conv, act) in enumerate(zip(self.convs, self.acts, strict=True)):
            x = act(conv(x))
            if j % self.res_skip == 0:
                skip = x
            elif str(j) in self.gates:
                x = x * self.gates[str(j)](x) + skip
        return torch.tanh(self.out(x))


class MicroISP(nn.Module):
    """MicroISP (Ignatov et al., "MicroISP: Processing 32MP Photos on Mobile Devices with Deep
    Learning", ECCV Workshops 2022), structure of the reference TF model.

    Packed raw ``N x 4 x h x w`` (R, G1, G2, B, black-level subtracted, [0, 1]) -> sRGB
    ``N x 3 x 2h x 2w``. Three independent branches, one per output colour R, G, B; each
    branch reads all four packed channels (as the reference's first 3x3 conv does: a colour
    needs its neighbours' samples to be demosaicked). Stage 1 maps the packed input to 4
    channels (tanh); stage 2, with its own weights, maps that 4-channel result to 4 channels,
    ``* 0.58 + 0.5`` and depth-to-space 2 give that colour at full resolution. Convs are 3x3
    with zero padding (TF ``SAME``), so any size works (stride 1). Clamped to [0, 1] in eval
    mode. 13,560 parameters with the defaults.

    Args:
        features: channels of each branch's convs (4).
        blocks: conv layers per branch and stage (7).
        res_skip: an attention gate + skip every ``res_skip`` layers (3).
    """

    def __init__(self, features: int = 4, blocks: int = 7, res_skip: int = 3) -> None:
        super().__init__()
        if blocks < 1 or res_skip < 2 or features < 1:
            raise InvalidInputError(
                f"need blocks >= 1, res_skip >= 2, features >= 1; got {blocks}, {res_skip}, "
                f"{features}"
            )
        self.stage1 = nn.ModuleList(_MicroBranch(4, features, blocks, res_skip) for _ in range(3))
        self.stage2 = nn.ModuleList(_MicroBranch(4, features, blocks, res_skip) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` -> sRGB ``N x 3 x 2h x 2w`` in [0, 1] (eval mode)."""
        check_input(x, 4)
        colours = [
            F.pixel_shuffle(s2(s1(x)) * 0.58 + 0.5, 2)
            for s1, s2 in zip(self.stage1, self.stage2, strict=True)
        ]
        y = torch.cat(colours, 1)
        return y if self.training else y.clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# registry


@register_model(
    "pynet",
    paper="Ignatov, Van Gool, Timofte: Replacing Mobile Camera ISP with a Single Deep "
          "Learning Model, CVPR Workshops 2020",
    stride=16,
    defaults={"level": 0, "instance_norm": True, "instance_norm_level_1": True},
    card="pynet",
)
def pynet(**config) -> nn.Module:
    """PyNET: 6-level inverted-pyramid CNN (PyTorch release), level selectable in forward."""
    return PyNET(**config)


@register_model(
    "pynet_lite",
    paper="Ignatov et al.: PyNet-V2 Mobile: Efficient On-Device Photo "
          "Processing With Neural Networks, ICPR 2022",
    stride=4,
    defaults={"level": 1, "instance_norm": True},
    card="pynet_lite",
)
def pynet_lite(**config) -> nn.Module:
    """PyNET-V2 Mobile: 3-level mobile PyNET with attention and depth-to-space heads."""
    return PyNETV2Mobile(**config)


@register_model(
    "microisp",
    paper="Ignatov et al.: MicroISP: Processing 32MP Photos on Mobile "
          "Devices with Deep Learning, ECCV Workshops 2022",
    stride=1,
    defaults={"features": 4, "blocks": 7, "res_skip": 3},
    card="microisp",
)
def microisp(**config) -> nn.Module:
    """MicroISP: 13.6 K-parameter per-colour two-stage ISP with attention gates."""
    return MicroISP(**config)
