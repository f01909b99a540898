"""MicroISP (Ignatov et al., ECCV-W 2022), structure of the reference TF model.

Contract: packed raw ``N x 4 x h x w`` (R, G1, G2, B; black level subtracted; [0, 1]) -> sRGB
``N x 3 x 2h x 2w`` in [0, 1].

* :class:`MicroISP` (``microisp``, 13,560 parameters): three per-colour branches of two
  stages each, attention gates, depth-to-space; any size works (zero-padded 3x3 convs).

The official release feeds ``raw / 1020`` packed as (B, Gb, R, Gr) with no black-level
subtraction. The ``tanh * 0.58 + 0.5`` output can leave [0, 1]: it is clamped in eval mode
only, so gradients flow unclamped in training. The larger members of the family are
:mod:`isplab.models.pynet` (PyNET) and :mod:`isplab.models.pynet_lite` (PyNET-V2 Mobile).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.models.common import GlobalAvgPool
from isplab.models.registry import register_model


def _pad_min(x: torch.Tensor, minimum: int) -> torch.Tensor:
    """Pad ``x`` (bottom/right) to at least ``minimum`` per side: reflect where the image is
    large enough, replicate otherwise."""
    h, w = x.shape[-2:]
    ph, pw = max(0, minimum - h), max(0, minimum - w)
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


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
        check_image(x, 4, "packed raw")
        colours = [
            F.pixel_shuffle(s2(s1(x)) * 0.58 + 0.5, 2)
            for s1, s2 in zip(self.stage1, self.stage2, strict=True)
        ]
        y = torch.cat(colours, 1)
        return y if self.training else y.clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# registry


@register_model(
    "microisp",
    parameters=13_560,
    paper="Ignatov et al.: MicroISP: Processing 32MP Photos on Mobile "
          "Devices with Deep Learning, ECCV Workshops 2022",
    stride=1,
    defaults={"features": 4, "blocks": 7, "res_skip": 3},
    card="microisp",
)
def microisp(**config) -> nn.Module:
    """MicroISP: 13.6 K-parameter per-colour two-stage ISP with attention gates."""
    return MicroISP(**config)
