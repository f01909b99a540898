"""DeepISP (Schwartz, Giryes, Bronstein, IEEE TIP 2019): a low-level residual stage and a
high-level stage that predicts one global per-image quadratic colour transform.

Contract (registry): packed raw ``N x 4 x h x w`` (R, G1, G2, B; black-level subtracted;
[0, 1]) -> ``N x 3 x 2h x 2w``: sRGB for ``deepisp`` (full ISP, 668,446 parameters) and linear
camera RGB for ``deepisp_ll`` (the low-level stage alone, for joint demosaicing/denoising,
668,227 parameters). The paper's network takes a bilinear-demosaiced RGB image; the wrapper
does that step in the graph (:func:`isplab.models.common.packed_to_bilinear_rgb`), then encodes
it (sRGB gamma for the Samsung S7 full-ISP protocol, or linear for the MSR demosaicing one) and
subtracts 0.5, exactly as the authors' data loader did.

Tiled inference: the high-level stage is global (one 10 x 3 transform per image), so tiles must
share it. ``T = model.global_transform(thumbnail)`` on a downscaled full frame, then
``model(tile, transform=T)`` for every tile; the output then depends on the tile only through
the low-level stage's local receptive field (16 px at full resolution).

Model card: ``docs/models/deepisp.md``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.classic import srgb_gamma
from isplab.errors import InvalidInputError
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.registry import register_model

PAPER = "Schwartz, Giryes, Bronstein, DeepISP: Toward Learning an End-to-End Image " \
    "Processing Pipeline, IEEE TIP 2019"
INPUT_ENCODINGS = ("srgb", "linear")
N_QUADRATIC_TERMS = 10  # r, g, b, r^2, rg, rb, g^2, gb, b^2, 1


def quadratic_features(rgb: torch.Tensor) -> torch.Tensor:
    """Per-pixel second-order features of an RGB image.

    Args:
        rgb: ``N x 3 x H x W`` (any range; DeepISP feeds values around [-0.5, 0.5]).

    Returns:
        ``N x 10 x H x W``: ``[r, g, b, r^2, rg, rb, g^2, gb, b^2, 1]`` in this order (the order
        of the authors' ``second_order_elements``).
    """
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return torch.cat([r, g, b, r * r, r * g, r * b, g * g, g * b, b * b, torch.ones_like(r)], 1)


def apply_quadratic_transform(rgb: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
    """Apply a global quadratic colour transform per pixel: ``out_c = sum_k W[k, c] phi_k``.

    Args:
        rgb: ``N x 3 x H x W`` image (the colour space is the caller's; DeepISP applies it to
            its low-level output, values around [-0.5, 0.5]).
        transform: ``N x 10 x 3`` (one per image) or ``10 x 3`` (shared by the batch); rows
            follow :func:`quadratic_features`. ``eye(10, 3)`` is the identity.

    Returns:
        ``N x 3 x H x W``.

    Raises:
        InvalidInputError: wrong shapes.
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise InvalidInputError(f"expected rgb of shape N x 3 x H x W, got {tuple(rgb.shape)}")
    if transform.ndim == 2:
        transform = transform.unsqueeze(0).expand(rgb.shape[0], -1, -1)
    if transform.ndim != 3 or tuple(transform.shape[1:]) != (N_QUADRATIC_TERMS, 3) or \
            transform.shape[0] != rgb.shape[0]:
        raise InvalidInputError(
            f"expected a transform of shape {rgb.shape[0]} x 10 x 3 (or 10 x 3), "
            f"got {tuple(transform.shape)}")
    n, _, h, w = rgb.shape
    phi = quadratic_features(rgb).reshape(n, N_QUADRATIC_TERMS, h * w)
    out = torch.matmul(transform.transpose(1, 2).to(phi), phi)  # N x 3 x HW
    return out.reshape(n, 3, h, w)


def hl_min_size(n_hl: int) -> int:
    """Smallest side the high-level stage accepts: ``n_hl`` x [conv 3x3 stride 2 valid,
    maxpool 2] must leave at least one pixel (85 for ``n_hl = 3``)."""
    side = 1
    for _ in range(n_hl):
        side = 2 * (2 * side - 1) + 3  # maxpool needs 2*side, the valid stride-2 conv 2(s-1)+3
    return side


class _ReflectConv(nn.Sequential):
    """Reflect pad 1 -> conv 3x3 valid (size kept), as the authors' ReflectLayer + conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3))


class DeepISP(nn.Module):
    """DeepISP: packed raw -> sRGB (full ISP) or linear RGB (low-level stage only).

    Low-level (LL) stage, on ``z`` = encoded bilinear RGB - 0.5, running image ``I = z``:
    conv 3x3 3 -> ``width`` (no activation), then ``n_ll`` blocks: the previous conv's first 3
    channels go through ``0.1 tanh`` and are added to ``I``, the other ``width - 3`` through
    ReLU; ``cat(I, features)`` -> reflect pad -> conv 3x3 -> ``width``. With ``n_hl > 0`` (full
    ISP) the last conv's pre-activation feeds the high-level stage and ``I`` is the LL output.
    With ``n_hl = 0`` (``deepisp_ll``) the last block's conv produces 3 channels, added to
    ``I`` as a pure residual (``0.1 tanh``), so the stage has ``n_ll + 1`` convolutions.

    High-level (HL) stage: ``n_hl`` x [conv 3x3 stride 2 valid, ReLU, maxpool 2], global mean
    pool, linear ``width`` -> 30 -> ``10 x 3``, plus the fixed ``transform_bias`` buffer (the
    median oracle transform over the training set; identity ``eye(10, 3)`` by default). The
    output is :func:`apply_quadratic_transform` of ``I`` + 0.5.

    Inputs whose full-resolution side is below :func:`hl_min_size` (85 px for ``n_hl = 3``) get
    their transform from the network input bilinearly resized up to that size (the LL stage is
    run once more on the resized copy); the LL output always uses the original resolution.

    Output: ``N x 3 x 2h x 2w``, clamped to [0, 1] in eval mode (unclamped in training so the
    loss sees the true values). Any size works (stride 1, no padding).
    Parameters (defaults): 668,446; ``deepisp_ll`` config: 668,227.
    """

    def __init__(self, n_ll: int = 15, n_hl: int = 3, width: int = 64,
                 input_encoding: str = "srgb",
                 transform_bias: list[list[float]] | None = None) -> None:
        super().__init__()
        if input_encoding not in INPUT_ENCODINGS:
            raise InvalidInputError(f"input_encoding must be one of {INPUT_ENCODINGS}, "
                                    f"got {input_encoding!r}")
        if n_ll < 1 or n_hl < 0 or width < 4:
            raise InvalidInputError(f"need n_ll >= 1, n_hl >= 0, width >= 4; got n_ll={n_ll}, "
                                    f"n_hl={n_hl}, width={width}")
        self.n_ll, self.n_hl, self.width = n_ll, n_hl, width
        self.input_encoding = input_encoding
        self.first = _ReflectConv(3, width)
        outs = [width] * n_ll if n_hl > 0 else [width] * (n_ll - 1) + [3]
        self.blocks = nn.ModuleList(_ReflectConv(width, c) for c in outs)
        self.hl_min_size = hl_min_size(n_hl)
        if n_hl > 0:
            layers: list[nn.Module] = []
            for _ in range(n_hl):
                layers += [nn.Conv2d(width, width, 3, stride=2), nn.ReLU(inplace=True),
                           nn.MaxPool2d(2)]
            self.hl = nn.Sequential(*layers)
            self.fc = nn.Linear(width, N_QUADRATIC_TERMS * 3)
            bias = torch.eye(N_QUADRATIC_TERMS, 3) if transform_bias is None \
                else torch.as_tensor(transform_bias, dtype=torch.float32)
            if tuple(bias.shape) != (N_QUADRATIC_TERMS, 3):
                raise InvalidInputError(f"transform_bias must be 10 x 3, got {tuple(bias.shape)}")
            self.register_buffer("transform_bias", bias)

    # --- the pieces (public so tiled inference and analysis can use them) ----------------

    def encode(self, packed: torch.Tensor) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` -> network input ``N x 3 x 2h x 2w`` in [-0.5, 0.5]:
        in-graph bilinear demosaic, sRGB gamma (``input_encoding="srgb"``) or nothing
        (``"linear"``), minus 0.5."""
        check_image(packed, 4, "packed raw")
        rgb = packed_to_bilinear_rgb(packed)
        if self.input_encoding == "srgb":
            rgb = srgb_gamma(rgb.clamp(max=1.0))
        return rgb - 0.5

    def low_level(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LL stage on ``z`` (``N x 3 x H x W``, encoded - 0.5) -> (``I`` ``N x 3 x H x W``,
        last conv pre-activation ``N x width x H x W``; for ``n_hl = 0`` the 3-channel residual
        is already added and the second item is ``I`` too)."""
        image, conv = z, self.first(z)
        for block in self.blocks:
            image = image + 0.1 * torch.tanh(conv[:, :3])
            conv = block(torch.cat([image, F.relu(conv[:, 3:])], 1))
        if self.n_hl == 0:
            image = image + 0.1 * torch.tanh(conv)
            return image, image
        return image, conv

    def high_level(self, features: torch.Tensor) -> torch.Tensor:
        """HL stage: LL features ``N x width x H x W`` (sides >= ``hl_min_size``) -> the
        global transform ``N x 10 x 3`` (fixed bias included)."""
        if self.n_hl == 0:
            raise InvalidInputError("this DeepISP has no high-level stage (n_hl = 0)")
        h, w = features.shape[-2:]
        if min(h, w) < self.hl_min_size:
            raise InvalidInputError(f"the high-level stage needs sides >= {self.hl_min_size}, "
                                    f"got {h} x {w}")
        pooled = self.hl(features).mean(dim=(2, 3))
        return self.fc(pooled).view(-1, N_QUADRATIC_TERMS, 3) + self.transform_bias

    def _transform_from_input(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        m = self.hl_min_size
        if min(h, w) < m:  # too small for the valid stride-2 convs: resize up (documented)
            z = F.interpolate(z, size=(max(h, m), max(w, m)), mode="bilinear",
                              align_corners=False)
        return self.high_level(self.low_level(z)[1])

    def global_transform(self, packed: torch.Tensor) -> torch.Tensor:
        """The per-image transform ``N x 10 x 3`` of packed raw ``packed`` (e.g. a downscaled
        full frame, to pass to :meth:`forward` for each tile). Small inputs are resized up to
        ``hl_min_size`` at full resolution first."""
        return self._transform_from_input(self.encode(packed))

    def tile_context(self, packed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tiled inference (:func:`isplab.infer.tiled_forward`): the global colour transform
        of the (downscaled) full frame, shared by every tile."""
        return {"transform": self.global_transform(packed)} if self.n_hl > 0 else {}

    def forward(self, packed: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """Packed raw ``N x 4 x h x w`` -> ``N x 3 x 2h x 2w`` (sRGB; linear RGB if
        ``n_hl = 0``). ``transform`` (``N x 10 x 3`` or ``10 x 3``, from
        :meth:`global_transform`) replaces the HL stage's own estimate."""
        z = self.encode(packed)
        image, features = self.low_level(z)
        if self.n_hl == 0:
            if transform is not None:
                raise InvalidInputError("deepisp without a high-level stage takes no transform")
            out = image
        else:
            if transform is None:
                h, w = z.shape[-2:]
                transform = self.high_level(features) if min(h, w) >= self.hl_min_size \
                    else self._transform_from_input(z)
            out = apply_quadratic_transform(image, transform)
        out = out + 0.5
        return out if self.training else out.clamp(0.0, 1.0)


@register_model("deepisp", parameters=668_446, paper=PAPER, stride=1, card="deepisp")
def deepisp(**config: Any) -> nn.Module:
    """DeepISP full ISP: residual low-level stage + global quadratic colour transform.

    Config: ``n_ll`` (15), ``n_hl`` (3), ``width`` (64), ``input_encoding`` ("srgb" as in the
    Samsung S7 protocol, or "linear"), ``transform_bias`` (10 x 3 nested list; identity).
    """
    return DeepISP(**config)


@register_model("deepisp_ll", parameters=668_227,
                paper=PAPER, stride=1, card="deepisp", output_space="linear_rgb",
                defaults={"n_ll": 19, "n_hl": 0, "input_encoding": "linear"})
def deepisp_ll(**config: Any) -> nn.Module:
    """DeepISP low-level stage alone (20 convs): joint demosaicing/denoising to linear RGB."""
    return DeepISP(**config)
