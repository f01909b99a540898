"""StarGAN (Choi et al., "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation", CVPR 2018): one generator conditioned on a domain-label vector,
used by MDIE (issue 10) as the multi-domain translator (colour, texture, noise).

Registered names (model card ``docs/models/stargan.md``):

- ``stargan_generator``: sRGB ``N x 3 x H x W`` in [0, 1] (+ labels ``N x 6``) -> sRGB
  ``N x 3 x H x W`` in [0, 1]. Labels = 3 domain labels (colour, texture, noise; 1 = the
  high-quality side) followed by the 3-entry dataset mask vector (StarGAN's multi-dataset
  scheme). ``forward(x, labels=None)``: None = all ones (every domain "good", every mask on:
  MDIE's all-ones inference). Stride 4 (two 2x downsamplings): padded (reflect) and cropped
  back. 8,476,672 parameters (defaults).
- ``stargan_discriminator`` (building block, ``public=False``): sRGB -> ``(adversarial patch
  map N x 1 x H/64 x W/64, class logits N x 3)``. 44,727,232 parameters (defaults).

Differences from the reference code (yunjey/stargan): the label is also injected into every
residual block through conditional instance normalisation (a per-channel scale and shift
computed from the label), because the tiled label concatenated at the input is largely
removed by the instance norms at full resolution; the discriminator's class head is a global
average pool + 1x1 conv instead of a conv whose kernel equals the final feature size (so any
input size works; at 128 x 128 both see the whole 2 x 2 map). Options of ours, off by
default: ``residual`` (start as the identity), ``skip`` (a full-resolution skip around the
bottleneck) and ``global_gain`` (a per-channel gain from the input's channel means, which
the instance norms hide).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from isplab.checks import check_image
from isplab.classic import srgb_gamma
from isplab.errors import InvalidInputError
from isplab.models.common import GlobalAvgPool, crop_to, pad_to_multiple
from isplab.models.intrinsic import image_to_shading, shading_to_image
from isplab.models.registry import register_model
from isplab.synth.degradations import DOMAINS

PAPER = ("Choi et al., StarGAN: Unified Generative Adversarial Networks for Multi-Domain "
         "Image-to-Image Translation, CVPR 2018")
N_DOMAINS = len(DOMAINS)  # colour, texture, noise
LABEL_DIM = 2 * N_DOMAINS  # domain labels + dataset mask


def default_labels(n: int, ref: torch.Tensor, label_dim: int = LABEL_DIM) -> torch.Tensor:
    """All-ones labels ``n x label_dim`` (every domain on, every mask entry on)."""
    return ref.new_ones(n, label_dim)


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with an affine transform plus a label-dependent one:
    ``IN(x) * (weight + gamma(c)) + (bias + beta(c))``, ``gamma, beta`` linear in the label."""

    def __init__(self, channels: int, label_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.film = nn.Linear(label_dim, 2 * channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(labels)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1.0 + gamma) + beta


class _ResidualBlock(nn.Module):
    """conv 3x3 -> CIN -> ReLU -> conv 3x3 -> CIN, plus the identity (bias-free convs)."""

    def __init__(self, channels: int, label_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = ConditionalInstanceNorm(channels, label_dim)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = ConditionalInstanceNorm(channels, label_dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x), labels))
        return x + self.norm2(self.conv2(y), labels)


def _check_labels(labels: torch.Tensor, n: int, dim: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.shape != (n, dim):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise InvalidInputError(f"labels must be an N x {dim} tensor (N = {n}: {dim // 2} "
                                f"domain labels then the {dim // 2}-entry mask), got {shape}")


class StarGANGenerator(nn.Module):
    """StarGAN generator with the label injected at the input and in every residual block.

    ``[x in [-1, 1], tiled labels]`` -> conv 7x7 ``width`` + IN + ReLU -> 2 x (conv 4x4 s2,
    IN, ReLU; width x2 each) -> ``n_blocks`` residual blocks with conditional IN -> 2 x
    (transposed conv 4x4 s2, IN, ReLU) -> conv 7x7 -> 3, tanh -> mapped back to [0, 1].
    All convs are bias-free as in the reference code; IN layers are affine.

    Args:
        width: channels of the first conv (64; the residual blocks run at ``4 * width``).
        n_blocks: residual blocks (6).
        label_dim: label vector length (6 = 3 domains + 3 mask entries).
        residual: output ``clip(x + 0.5 tanh(tail))`` with the last conv zero-initialised, so
            the generator starts as the identity (ours, for short CPU trainings; the
            reference maps to ``tanh`` directly).
        skip: a full-resolution skip (ours): the first conv's features join the tail's before
            its last conv, so pixel-level detail (noise, edges) need not survive the stride-4
            bottleneck.
        global_gain: a per-channel gain (ours) ``exp(g)``, ``g`` from a small MLP on the
            labels and the log channel means of ``x``, applied to ``x`` before the residual
            correction (the instance norms remove exactly the global colour statistics a
            cast correction needs; last layer zero-initialised, so the gain starts at 1).
            Needs ``residual``.

    ``forward(x, labels=None)``: sRGB ``N x 3 x H x W`` in [0, 1] -> sRGB in [0, 1] (the tanh
    keeps it bounded, no clamp needed); labels default to all ones. Stride 4 (pad + crop).
    """

    stride = 4

    def __init__(self, width: int = 64, n_blocks: int = 6, label_dim: int = LABEL_DIM,
                 residual: bool = False, skip: bool = False, global_gain: bool = False) -> None:
        super().__init__()
        self.residual, self.skip, self.global_gain = bool(residual), bool(skip), bool(global_gain)
        if width < 1 or n_blocks < 0 or label_dim < 1:
            raise InvalidInputError(f"need width >= 1, n_blocks >= 0, label_dim >= 1; got "
                                    f"{width}, {n_blocks}, {label_dim}")
        if self.global_gain and not self.residual:
            raise InvalidInputError("global_gain needs residual=True (the gain scales the input "
                                    "that the residual correction is added to)")
        self.label_dim = label_dim
        w = width
        self.head = nn.Sequential(
            nn.Conv2d(3 + label_dim, w, 7, padding=3, bias=False),
            nn.InstanceNorm2d(w, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * w, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(4 * w, affine=True), nn.ReLU(inplace=True),
        )
        self.blocks = nn.ModuleList(_ResidualBlock(4 * w, label_dim) for _ in range(n_blocks))
        self.tail = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * w, affine=True), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(w, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w if self.skip else w, 3, 7, padding=3, bias=False),
        )
        if self.residual:  # start as the identity
            nn.init.zeros_(self.tail[-1].weight)
        if self.global_gain:
            self.gain = nn.Sequential(nn.Linear(label_dim + 3, 64), nn.ReLU(inplace=True),
                                      nn.Linear(64, 3))
            nn.init.zeros_(self.gain[-1].weight)
            nn.init.zeros_(self.gain[-1].bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """sRGB ``N x 3 x H x W`` in [0, 1], labels ``N x label_dim`` (None: all ones) ->
        sRGB ``N x 3 x H x W`` in [0, 1]."""
        check_image(x, 3, "sRGB image")
        n = x.shape[0]
        if labels is None:
            labels = default_labels(n, x, self.label_dim)
        _check_labels(labels, n, self.label_dim)
        labels = labels.to(x.dtype)
        xp, size = pad_to_multiple(x, self.stride)
        tiled = labels[:, :, None, None].expand(-1, -1, xp.shape[2], xp.shape[3])
        first = self.head[:3](torch.cat([xp * 2.0 - 1.0, tiled], dim=1))
        h = self.head[3:](first)
        for block in self.blocks:
            h = block(h, labels)
        t = self.tail[:-1](h)
        if self.skip:
            t = torch.cat([t, first], dim=1)
        t = self.tail[-1](t)
        if self.residual:  # x (times a global gain) + a bounded correction, clipped to [0, 1]
            base = xp
            if self.global_gain:
                stats = x.mean((2, 3)).clamp_min(1e-3).log()
                g = self.gain(torch.cat([labels, stats], dim=1)).clamp(-2.0, 2.0)
                base = xp * g.exp()[:, :, None, None]
            y = (base + 0.5 * torch.tanh(t)).clamp(0.0, 1.0)
        else:
            y = torch.tanh(t) * 0.5 + 0.5
        return crop_to(y, size)


class StarGANDiscriminator(nn.Module):
    """StarGAN PatchGAN critic with an auxiliary domain classifier.

    ``n_layers`` convs 4x4 s2 (``width``, doubling; LeakyReLU 0.01; no norm; with bias) ->
    adversarial head conv 3x3 -> 1 (a patch map; WGAN critic values, no sigmoid) and class
    head: global average pool -> conv 1x1 -> ``n_classes`` logits (bias-free).

    Input sRGB ``N x 3 x H x W`` in [0, 1] (mapped to [-1, 1] inside); any size >= 2 **
    n_layers works. Returns ``(adv N x 1 x H/2^L x W/2^L, logits N x n_classes)``.
    """

    def __init__(self, width: int = 64, n_layers: int = 6, n_classes: int = N_DOMAINS) -> None:
        super().__init__()
        if width < 1 or n_layers < 1 or n_classes < 1:
            raise InvalidInputError(f"need width, n_layers, n_classes >= 1; got {width}, "
                                    f"{n_layers}, {n_classes}")
        layers: list[nn.Module] = []
        c_in, c = 3, width
        for _ in range(n_layers):
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers)
        self.adv = nn.Conv2d(c_in, 1, 3, padding=1, bias=False)
        self.pool = GlobalAvgPool()
        self.cls = nn.Conv2d(c_in, n_classes, 1, bias=False)
        self.min_size = 2 ** n_layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sRGB ``N x 3 x H x W`` in [0, 1] -> ``(adversarial map, class logits N x C)``."""
        check_image(x, 3, "sRGB image")
        if min(x.shape[-2:]) < self.min_size:
            raise InvalidInputError(f"the discriminator needs images of at least "
                                    f"{self.min_size} x {self.min_size}, got "
                                    f"{tuple(x.shape[-2:])}")
        f = self.features(x * 2.0 - 1.0)
        return self.adv(f), self.cls(self.pool(f)).flatten(1)


@register_model("stargan_generator", parameters=8_476_672,
                paper=PAPER, stride=4, input_space="srgb",
                output_space="srgb", output_scale=1, card="stargan", tile_overlap=64)
def stargan_generator(**config: Any) -> nn.Module:
    """StarGAN multi-domain translator (label also injected per residual block): sRGB -> sRGB."""
    return StarGANGenerator(**config)


@register_model("stargan_discriminator", parameters=44_727_232,
                paper=PAPER, input_space="srgb", output_space="logits",
                output_scale=1, card="stargan", public=False)
def stargan_discriminator(**config: Any) -> nn.Module:
    """StarGAN PatchGAN critic + domain classifier (global-pool class head)."""
    return StarGANDiscriminator(**config)


# --- MDIE's conditioning: domain labels and the routing of domains to components ----------

COMPONENTS = ("albedo", "shading")
#: the seed's routing: which intrinsic components each domain's translation acts on
SEED_ROUTING: dict[str, tuple[str, ...]] = {
    "colour": ("albedo", "shading"), "texture": ("shading",), "noise": ("shading",)}


def domain_labels(n: int, domains: Sequence[int], ref: torch.Tensor) -> torch.Tensor:
    """``n x 6`` labels with the high-quality label and the mask entry on for ``domains``."""
    lab = ref.new_zeros(n, 2 * N_DOMAINS)
    for d in domains:
        lab[:, d] = 1.0
        lab[:, N_DOMAINS + d] = 1.0
    return lab


Routing = tuple[tuple[bool, bool], ...]


def parse_routing(spec: Mapping[str, Sequence[str]] | None = None) -> Routing:
    """``{domain: [components]}`` -> per domain index ``(on albedo, on shading)``.

    ``spec`` names every domain of :data:`isplab.synth.degradations.DOMAINS` with a non-empty
    list drawn from ``albedo`` / ``shading``; ``None`` is :data:`SEED_ROUTING`.
    """
    spec = SEED_ROUTING if spec is None else spec
    if not isinstance(spec, Mapping) or set(spec) != set(DOMAINS):
        raise InvalidInputError(f"routing must map each of {DOMAINS} to a list of components "
                                f"from {COMPONENTS}, got {spec!r}")
    out = []
    for name in DOMAINS:
        comps = [spec[name]] if isinstance(spec[name], str) else list(spec[name])
        bad = [c for c in comps if c not in COMPONENTS]
        if not comps or bad:
            raise InvalidInputError(f"routing of {name}: components must be a non-empty list "
                                    f"from {COMPONENTS}, got {spec[name]!r}")
        out.append(("albedo" in comps, "shading" in comps))
    return tuple(out)


def train_on_albedo(routing: Routing, domain: torch.Tensor, coin: torch.Tensor) -> torch.Tensor:
    """Training: which samples use their albedo (else their shading). ``domain``: each
    sample's domain index; ``coin``: a fair boolean per sample, deciding where its domain is
    routed to both components."""
    routes = torch.tensor(routing, device=domain.device)
    on_albedo, on_shading = routes[domain, 0], routes[domain, 1]
    return on_albedo & (coin.to(domain.device) | ~on_shading)


def translate_components(intrinsic: nn.Module, translator: nn.Module, srgb: torch.Tensor,
                         passes: Sequence[torch.Tensor], routing: Routing | None = None
                         ) -> torch.Tensor:
    """Decompose ``srgb`` (``N x 3 x H x W``), translate the components pass by pass, rebuild
    -> sRGB in [0, 1]. A pass translates the albedo (the shading) when one of the domains it
    switches on is routed there (``routing`` from :func:`parse_routing`, default the seed's)."""
    routing = parse_routing() if routing is None else routing
    albedo, shading = intrinsic.decompose(srgb)
    shade = shading_to_image(shading)
    for labels in passes:
        on = [d for d in range(N_DOMAINS) if bool(labels[:, N_DOMAINS + d].any())]
        if any(routing[d][0] for d in on):
            albedo = translator(albedo, labels)
        if any(routing[d][1] for d in on):
            shade = translator(shade, labels)
    linear = albedo * image_to_shading(shade)
    return srgb_gamma(linear.clamp(0.0, 1.0)).clamp(0.0, 1.0)
