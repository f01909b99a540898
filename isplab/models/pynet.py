"""PyNET (Ignatov, Van Gool, Timofte, CVPR-W 2020), structure of the PyTorch release.

Contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted; [0, 1]) -> sRGB
``N x 3 x 2h x 2w`` in [0, 1] at the default (finest) level.

* :class:`PyNET` (``pynet``, 47,554,738 parameters with the defaults): the PyTorch release's
  5-level inverted pyramid plus level 0. ``forward(x, level=L)`` returns the output of level
  ``L`` (0..5) at ``2h / 2**L`` (sigmoid output) and computes only what that level needs;
  ``forward_pyramid(x)`` returns every level's output from one pass.
  Inputs are padded to a multiple of 16 (four 2x2 max-pools) and to at least 32 (the 3x3
  reflect padding of level 5 needs 2 pixels there).

The official release feeds ``raw / 1020`` packed as (B, Gb, R, Gr) with no black-level
subtraction; :func:`pynet_state_dict_from_official` converts a PyNET release checkpoint to
this contract (channel order and normalisation folded into the first convolution).

The other members of the family live in their own modules: PyNET-V2 Mobile
(``pynet_lite``) in :mod:`isplab.models.pynet_lite` and MicroISP (``microisp``) in
:mod:`isplab.models.microisp`; their classes and builders are re-exported here so that
``from isplab.models.pynet import PyNETV2Mobile, MicroISP`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models._pynet_shared import _check_level, _crop_level, _pad_input
from isplab.models.microisp import MicroISP, microisp
from isplab.models.pynet_lite import PyNETV2Mobile, pynet_lite
from isplab.models.registry import register_model

__all__ = [
    "OFFICIAL_CHANNELS", "OFFICIAL_DIVISOR", "MicroISP", "PyNET", "PyNETV2Mobile", "microisp",
    "pynet", "pynet_lite", "pynet_state_dict_from_official",
]

# official packing (B, Gb, R, Gr) of an RGGB mosaic, as indices into our (R, G1, G2, B)
OFFICIAL_CHANNELS = (3, 1, 0, 2)
OFFICIAL_DIVISOR = 1020.0  # the releases divide the 10-bit raw by 4 * 255


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
        check_image(x, 4, "packed raw")
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
# registry


@register_model(
    "pynet",
    parameters=47_554_738,
    paper="Ignatov, Van Gool, Timofte: Replacing Mobile Camera ISP with a Single Deep "
          "Learning Model, CVPR Workshops 2020",
    stride=16,
    defaults={"level": 0, "instance_norm": True, "instance_norm_level_1": True},
    card="pynet",
)
def pynet(**config) -> nn.Module:
    """PyNET: 6-level inverted-pyramid CNN (PyTorch release), level selectable in forward."""
    return PyNET(**config)
