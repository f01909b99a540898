"""Training losses as pure functions (exact definitions: ``docs/metrics.md``, section Losses).

Image losses take ``pred`` and ``target``, floating ``N x C x H x W`` tensors of one shape
(sRGB in [0, 1] unless a function says otherwise), and return the mean over the batch of a
per-image value (``reduction="none"``: the ``N`` per-image values, ``"sum"``: their sum).
Bad input (not 4-D, shapes that differ, NaN/Inf) raises
:class:`isplab.errors.InvalidInputError`.

SSIM and MS-SSIM are the project's single definitions, :func:`isplab.metrics.functional.ssim`
and :func:`~isplab.metrics.functional.ms_ssim`. Losses on VGG features take a backbone from
:func:`isplab.backbones.load_backbone` (ImageNet normalisation happens inside it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_lab

from isplab.checks import check_image
from isplab.errors import InvalidInputError
from isplab.metrics.functional import MS_SSIM_WEIGHTS, SSIM_WIN_SIZE, check_pair, ms_ssim
from isplab.metrics.functional import ms_ssim_scales as _ms_ssim_scales
from isplab.metrics.functional import ssim as _ssim

#: Charbonnier epsilon (LapSRN's value).
CHARBONNIER_EPS = 1e-3
#: Lab scaling so that L1 terms are O(1): L / 100, a / 110, b / 110.
LAB_SCALE = (100.0, 110.0, 110.0)
#: Default VGG-19 layer of the perceptual loss (PyNET, DPED).
PERCEPTUAL_LAYERS = ("relu5_4",)
#: Default VGG-19 layers of the Gram (style) loss (Gatys et al.; Deep Photo Style Transfer).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: DPED colour-loss blur: 21 x 21 kernel spanning +-3 sigma-units (see :func:`dped_blur_kernel`).
DPED_KERNEL_SIZE = 21
DPED_NSIG = 3.0

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- helpers


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise InvalidInputError(f"reduction must be one of {', '.join(_REDUCTIONS)}, "
                            f"got {reduction!r}")


def _per_image_mean(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).mean(1)


def _check_logits(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 1:
        raise InvalidInputError(f"{name} must be a floating tensor with a batch dimension, "
                                f"got {type(t).__name__} {getattr(t, 'shape', '')}")
    if not torch.isfinite(t).all():
        raise InvalidInputError(f"{name} contains NaN or infinite values")


def _pair(pred: torch.Tensor, target: torch.Tensor, channels: int | None = None) -> None:
    check_pair(pred, target, channels=channels, names=("pred", "target"))


# --------------------------------------------------------------------------- pixel losses


def l1(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error ``mean |pred - target|`` over C, H, W per image.

    Args:
        pred, target: ``N x C x H x W``, any space (same for both).
        reduction: ``mean`` | ``sum`` | ``none`` over the batch.
    """
    _pair(pred, target)
    return _reduce(_per_image_mean((pred - target).abs()), reduction)


def l1_gamma(pred: torch.Tensor, target: torch.Tensor, gamma: float = 2.2, eps: float = 1e-3,
             reduction: str = "mean") -> torch.Tensor:
    """L1 after a display encoding ``(max(x, 0) + eps) ** (1 / gamma)`` of both images.

    For models that output *linear* light (``jdd_net``) while the photo is judged after a
    gamma: errors in the shadows weigh as they will look. ``eps`` bounds the slope at 0.
    """
    _pair(pred, target)
    if not (math.isfinite(gamma) and gamma > 0 and math.isfinite(eps) and eps > 0):
        raise InvalidInputError(f"l1_gamma needs gamma > 0 and eps > 0, got {gamma}, {eps}")

    def enc(x: torch.Tensor) -> torch.Tensor:
        return (x.clamp(min=0.0) + eps) ** (1.0 / gamma)

    return _reduce(_per_image_mean((enc(pred) - enc(target)).abs()), reduction)


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error ``mean (pred - target)^2`` over C, H, W per image."""
    _pair(pred, target)
    return _reduce(_per_image_mean((pred - target).pow(2)), reduction)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = CHARBONNIER_EPS,
                reduction: str = "mean") -> torch.Tensor:
    """Charbonnier (smooth L1): ``mean sqrt((pred - target)^2 + eps^2) - eps`` per image.

    The constant ``- eps`` makes identical images give exactly 0; it does not change the
    gradient, which equals that of the usual ``sqrt(d^2 + eps^2)`` (LapSRN, eps = 1e-3).
    """
    _pair(pred, target)
    if not (math.isfinite(eps) and eps > 0):
        raise InvalidInputError(f"charbonnier eps must be > 0, got {eps!r}")
    d2 = (pred - target).pow(2)
    return _reduce(_per_image_mean(torch.sqrt(d2 + eps * eps) - eps), reduction)


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor,
               reduction: str = "mean") -> torch.Tensor:
    """Cycle-consistency loss: L1 between a round trip ``G_back(G(x))`` and ``x`` (CycleGAN)."""
    check_pair(reconstruction, original, names=("reconstruction", "original"))
    return _reduce(_per_image_mean((reconstruction - original).abs()), reduction)


def tv_loss(pred: torch.Tensor, reduction: str = "mean", squared: bool = True) -> torch.Tensor:
    """Total variation: ``mean(dy^2) + mean(dx^2)`` per image (DPED's TV term).

    ``dy``/``dx`` are the vertical/horizontal differences of neighbouring pixels, each averaged
    over its own ``C x (H-1) x W`` / ``C x H x (W-1)`` elements. ``squared=False`` uses
    ``|dy|`` and ``|dx|`` (anisotropic L1 TV). Needs H, W >= 2.
    """
    check_image(pred, None, "pred", finite=True)
    if min(pred.shape[-2:]) < 2:
        raise InvalidInputError(f"tv_loss needs H, W >= 2, got {tuple(pred.shape)}")
    dy = pred[..., 1:, :] - pred[..., :-1, :]
    dx = pred[..., :, 1:] - pred[..., :, :-1]
    f = (lambda t: t.pow(2)) if squared else (lambda t: t.abs())
    return _reduce(_per_image_mean(f(dy)) + _per_image_mean(f(dx)), reduction)


# --------------------------------------------------------------------------- SSIM losses


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
              reduction: str = "mean") -> torch.Tensor:
    """``1 - SSIM(pred, target)`` per image, SSIM of :func:`isplab.metrics.functional.ssim`
    (Gaussian window 11, sigma 1.5, valid positions only; H, W >= 11). In [0, 2], never NaN."""
    _pair(pred, target)
    return _reduce(1.0 - _ssim(pred, target, data_range=data_range), reduction)


def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                 scales: int | None = None, reduction: str = "mean") -> torch.Tensor:
    """``1 - MS-SSIM(pred, target)`` per image, of :func:`isplab.metrics.functional.ms_ssim`.

    ``scales=None`` uses as many of the 5 scales as the image size allows (5 need
    ``min(H, W) > 160``; 32 px gives 2, 64 px 3), with the first weights renormalised to sum
    to 1, silently (a loss sees the same patch size every step). An explicit ``scales`` larger
    than the size allows raises InvalidInputError. In [0, 1], never NaN (clamped terms).
    """
    _pair(pred, target)
    possible = _ms_ssim_scales(*pred.shape[-2:])
    if possible == 0:
        raise InvalidInputError(f"MS-SSIM needs H, W >= {SSIM_WIN_SIZE}, "
                                f"got {tuple(pred.shape)}")
    if scales is None:
        scales = possible
    if not (isinstance(scales, int) and 1 <= scales <= min(possible, len(MS_SSIM_WEIGHTS))):
        raise InvalidInputError(f"ms_ssim_loss: a {pred.shape[-2]} x {pred.shape[-1]} image "
                                f"supports 1..{possible} scales, got scales={scales!r}")
    w = MS_SSIM_WEIGHTS[:scales]
    if scales < len(MS_SSIM_WEIGHTS):
        w = tuple(v / sum(w) for v in w)
    return _reduce(1.0 - ms_ssim(pred, target, data_range=data_range, weights=w), reduction)


# --------------------------------------------------------------------------- Lab loss


def srgb_to_scaled_lab(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELAB (D65, 2 deg) via ``kornia.color.rgb_to_lab``, scaled to
    ``(L / 100, a / 110, b / 110)`` (L in [0, 1], a, b within about [-1, 1])."""
    lab = rgb_to_lab(srgb)
    scale = torch.tensor(LAB_SCALE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    return lab / scale


def lab_loss(pred_srgb: torch.Tensor, target_srgb: torch.Tensor, alpha: float = 0.5,
             scales: int | None = None, reduction: str = "mean") -> torch.Tensor:
    """DeepISP-style Lab loss: ``(1 - alpha) * mean|Lab(pred) - Lab(target)|
    + alpha * (1 - MS-SSIM(L_pred, L_target))`` per image.

    Lab is :func:`srgb_to_scaled_lab` (L / 100, a / 110, b / 110); the L1 mean runs over the
    three channels and all pixels; MS-SSIM is :func:`ms_ssim_loss` on the scaled L channel
    with data range 1 (``scales`` as there). ``alpha`` = 0.5 as in DeepISP's code.

    Args:
        pred_srgb, target_srgb: ``N x 3 x H x W`` sRGB in [0, 1], H, W >= 11.
    """
    _pair(pred_srgb, target_srgb, channels=3)
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"lab_loss alpha must be in [0, 1], got {alpha!r}")
    lp, lt = srgb_to_scaled_lab(pred_srgb), srgb_to_scaled_lab(target_srgb)
    l1_term = _per_image_mean((lp - lt).abs())
    ms_term = ms_ssim_loss(lp[:, :1], lt[:, :1], data_range=1.0, scales=scales,
                           reduction="none")
    return _reduce((1.0 - alpha) * l1_term + alpha * ms_term, reduction)


# --------------------------------------------------------------------------- colour loss


def dped_blur_kernel(size: int = DPED_KERNEL_SIZE, nsig: float = DPED_NSIG,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """DPED's ``gauss_kernel(kernlen=21, nsig=3)``: ``size x size``, sums to 1.

    ``k1 = diff(Phi(linspace(-nsig - d/2, nsig + d/2, size + 1)))`` with ``d = (2 nsig + 1) /
    size`` and ``Phi`` the standard normal CDF; kernel = ``sqrt(outer(k1, k1))`` normalised.
    ``nsig`` is the half-width in sigma units, not a sigma in pixels: one pixel is ``d`` = 1/3
    sigma, so ``k1`` has sigma 3 px and the square root widens it to about 4.2 px (truncated).
    """
    if size < 1 or nsig <= 0:
        raise InvalidInputError(f"blur kernel needs size >= 1 and nsig > 0, got {size}, {nsig}")
    d = (2 * nsig + 1.0) / size
    x = torch.linspace(-nsig - d / 2, nsig + d / 2, size + 1, dtype=torch.float64)
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    k1 = cdf[1:] - cdf[:-1]
    k = torch.sqrt(torch.outer(k1, k1))
    return (k / k.sum()).to(dtype=dtype, device=device)


def color_loss(pred: torch.Tensor, target: torch.Tensor, kernel_size: int = DPED_KERNEL_SIZE,
               nsig: float = DPED_NSIG, reduction: str = "mean") -> torch.Tensor:
    """DPED colour loss: MSE between both images blurred by :func:`dped_blur_kernel`
    (per channel, zero 'same' padding as TF's ``padding='SAME'``).

    DPED's code reports ``sum(diff^2) / (2 N)``, i.e. this value times ``C * H * W / 2``
    (its weight 0.5 was tuned for that scale on 100 x 100 patches).
    """
    _pair(pred, target)
    c = pred.shape[1]
    k = dped_blur_kernel(kernel_size, nsig, dtype=pred.dtype, device=pred.device)
    w = k.expand(c, 1, kernel_size, kernel_size)
    diff = F.conv2d(pred - target, w, padding=kernel_size // 2, groups=c)  # linear: blur(d)
    return _reduce(_per_image_mean(diff.pow(2)), reduction)


# --------------------------------------------------------------------------- VGG losses


def _check_backbone_input(pred: torch.Tensor, target: torch.Tensor, backbone) -> None:
    _pair(pred, target, channels=3)
    p = next(backbone.parameters())
    if p.dtype != pred.dtype or p.device != pred.device:
        raise InvalidInputError(f"backbone is {p.dtype} on {p.device} but the images are "
                                f"{pred.dtype} on {pred.device}: move the loss with .to()")


def _layer_weights(layers: Sequence[str], layer_weights) -> list[float]:
    if layer_weights is None:
        return [1.0] * len(layers)
    lw = [float(v) for v in layer_weights]
    if len(lw) != len(layers):
        raise InvalidInputError(f"{len(layers)} layers but {len(lw)} layer_weights")
    return lw


def perceptual(pred_srgb: torch.Tensor, target_srgb: torch.Tensor, backbone,
               layers: Sequence[str] = PERCEPTUAL_LAYERS, distance: str = "mse",
               layer_weights: Sequence[float] | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Perceptual (VGG feature) loss: ``sum_l w_l * mean_{C,H,W} dist(phi_l(pred), phi_l(target))``.

    ``phi_l`` are ``backbone``'s features (ImageNet-normalised inside it) at the named layers,
    default ``relu5_4`` of VGG-19 (PyNET, DPED); ``dist`` is the squared (``mse``) or absolute
    (``l1``) difference. The target's features are computed without gradient.

    Args:
        pred_srgb, target_srgb: ``N x 3 x H x W`` sRGB in [0, 1] (H, W >= 16 for relu5_*).
        backbone: an :class:`isplab.backbones.Backbone`, same dtype/device as the images.
    """
    _check_backbone_input(pred_srgb, target_srgb, backbone)
    if distance not in ("mse", "l1"):
        raise InvalidInputError(f"perceptual distance must be 'mse' or 'l1', got {distance!r}")
    layers = list(layers)
    lw = _layer_weights(layers, layer_weights)
    fp = backbone(pred_srgb, layers)
    with torch.no_grad():
        ft = backbone(target_srgb, layers)
    total = pred_srgb.new_zeros(pred_srgb.shape[0])
    for name, w in zip(layers, lw, strict=True):
        d = fp[name] - ft[name]
        total = total + w * _per_image_mean(d.pow(2) if distance == "mse" else d.abs())
    return _reduce(total, reduction)


def lab_vgg(pred_srgb: torch.Tensor, target_srgb: torch.Tensor, backbone, alpha: float = 0.5,
            vgg_weight: float = 1.0, layers: Sequence[str] = PERCEPTUAL_LAYERS,
            scales: int | None = None, reduction: str = "mean") -> torch.Tensor:
    """``lab_loss(pred, target, alpha) + vgg_weight * perceptual(pred, target, layers)``."""
    a = lab_loss(pred_srgb, target_srgb, alpha=alpha, scales=scales, reduction="none")
    b = perceptual(pred_srgb, target_srgb, backbone, layers=layers, reduction="none")
    return _reduce(a + vgg_weight * b, reduction)


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``N x C x C`` Gram matrix ``(F m)(F m)^T / (C H W)`` of ``N x C x H x W`` features,
    ``m`` an optional ``N x 1 x H x W`` mask (multiplied into the features)."""
    n, c, h, w = features.shape
    f = features if mask is None else features * mask
    f = f.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def _resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks, size=size, mode="area")


def gram_style_loss(pred_srgb: torch.Tensor, style_srgb: torch.Tensor, backbone,
                    layers: Sequence[str] = STYLE_LAYERS,
                    layer_weights: Sequence[float] | None = None,
                    masks: torch.Tensor | None = None, style_masks: torch.Tensor | None = None,
                    region_weights: Sequence[float] | torch.Tensor | None = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Gram-matrix style loss, optionally per semantic region (Deep Photo Style Transfer):

    ``sum_l w_l sum_r v_r mean_{C x C} (G_l(pred; M_r) - G_l(style; S_r))^2`` with
    :func:`gram_matrix`, ``M_r``/``S_r`` the region masks of pred/style resized (area
    interpolation) to each feature map. Without masks there is one region, the whole image.

    Args:
        pred_srgb: ``N x 3 x H x W`` sRGB in [0, 1].
        style_srgb: ``N x 3 x H' x W'`` sRGB in [0, 1] (may differ in size from pred).
        backbone: VGG backbone (dtype/device of the images); default layers relu1_1..relu5_1.
        masks: ``N x R x H x W`` region masks of pred, values in [0, 1].
        style_masks: ``N x R x H' x W'`` masks of the style image; default ``masks``
            (which then needs the style image to have pred's size).
        region_weights: ``R`` weights ``v_r`` (default 1).
    """
    check_image(pred_srgb, 3, "pred_srgb", finite=True)
    check_image(style_srgb, 3, "style_srgb", finite=True)
    if pred_srgb.shape[0] != style_srgb.shape[0]:
        raise InvalidInputError(f"pred_srgb and style_srgb need the same batch size, got "
                                f"{pred_srgb.shape[0]} and {style_srgb.shape[0]}")
    p = next(backbone.parameters())
    if p.dtype != pred_srgb.dtype or p.device != pred_srgb.device:
        raise InvalidInputError(f"backbone is {p.dtype} on {p.device} but the images are "
                                f"{pred_srgb.dtype} on {pred_srgb.device}")
    if style_masks is None:
        style_masks = masks
    if (masks is None) != (style_masks is None):
        raise InvalidInputError("give masks for pred as well as for the style image")
    if masks is not None:
        for m, img, name in ((masks, pred_srgb, "masks"), (style_masks, style_srgb,
                                                           "style_masks")):
            check_image(m, None, name, finite=True)
            if m.shape[0] != img.shape[0] or m.shape[-2:] != img.shape[-2:]:
                raise InvalidInputError(f"{name} must be N x R x H x W matching its image "
                                        f"{tuple(img.shape)}, got {tuple(m.shape)}")
        if masks.shape[1] != style_masks.shape[1]:
            raise InvalidInputError(f"masks has {masks.shape[1]} regions, style_masks "
                                    f"{style_masks.shape[1]}")
    regions = 1 if masks is None else masks.shape[1]
    if region_weights is None:
        rw = [1.0] * regions
    else:
        rw = [float(v) for v in torch.as_tensor(region_weights).flatten()]
        if len(rw) != regions:
            raise InvalidInputError(f"{regions} regions but {len(rw)} region_weights")
    layers = list(layers)
    lw = _layer_weights(layers, layer_weights)
    fp = backbone(pred_srgb, layers)
    with torch.no_grad():
        fs = backbone(style_srgb, layers)
    total = pred_srgb.new_zeros(pred_srgb.shape[0])
    for name, w in zip(layers, lw, strict=True):
        a, b = fp[name], fs[name]
        mp = None if masks is None else _resize_masks(masks.to(a.dtype), a.shape[-2:])
        ms = None if style_masks is None else _resize_masks(style_masks.to(b.dtype),
                                                            b.shape[-2:])
        for r in range(regions):
            ga = gram_matrix(a, None if mp is None else mp[:, r : r + 1])
            gb = gram_matrix(b, None if ms is None else ms[:, r : r + 1])
            total = total + w * rw[r] * _per_image_mean((ga - gb).pow(2))
    return _reduce(total, reduction)


# --------------------------------------------------------------------------- adversarial

ADVERSARIAL_KINDS = ("gan", "lsgan", "hinge", "wgan")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise InvalidInputError(f"adversarial kind must be one of "
                                f"{', '.join(ADVERSARIAL_KINDS)}, got {kind!r}")


def _per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).mean(1)


def generator_loss(fake_logits: torch.Tensor, kind: str = "gan",
                   reduction: str = "mean") -> torch.Tensor:
    """Generator adversarial loss from the discriminator's raw outputs on generated images
    (any shape ``N x ...``, averaged per sample):

    - ``gan``: non-saturating BCE with logits against 1, ``softplus(-f)``;
    - ``lsgan``: ``(f - 1)^2``;
    - ``hinge`` and ``wgan``: ``-f``.
    """
    _check_logits(fake_logits, "fake_logits")
    _check_kind(kind)
    f = fake_logits
    if kind == "gan":
        v = F.softplus(-f)
    elif kind == "lsgan":
        v = (f - 1).pow(2)
    else:
        v = -f
    return _reduce(_per_sample(v), reduction)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       kind: str = "gan", reduction: str = "mean") -> torch.Tensor:
    """Discriminator adversarial loss, real term + fake term (each a per-sample mean):

    - ``gan``: BCE with logits, ``softplus(-r) + softplus(f)``;
    - ``lsgan``: ``(r - 1)^2 + f^2``;
    - ``hinge``: ``relu(1 - r) + relu(1 + f)``;
    - ``wgan``: the critic's ``-r + f`` (Wasserstein GAN; add :func:`gradient_penalty`).

    Pass ``fake_logits`` of detached generated images when training the discriminator.
    """
    _check_logits(real_logits, "real_logits")
    _check_logits(fake_logits, "fake_logits")
    _check_kind(kind)
    if real_logits.shape[0] != fake_logits.shape[0]:
        raise InvalidInputError(f"real_logits and fake_logits need the same batch size, got "
                                f"{tuple(real_logits.shape)} and {tuple(fake_logits.shape)}")
    r, f = real_logits, fake_logits
    if kind == "gan":
        a, b = F.softplus(-r), F.softplus(f)
    elif kind == "lsgan":
        a, b = (r - 1).pow(2), f.pow(2)
    elif kind == "wgan":
        a, b = -r, f
    else:
        a, b = F.relu(1 - r), F.relu(1 + f)
    return _reduce(_per_sample(a) + _per_sample(b), reduction)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): ``mean (|grad_x critic(x_hat)|_2 - 1)^2``
    at ``x_hat = a real + (1 - a) fake``, one ``a ~ U(0, 1)`` per sample.

    Args:
        critic: callable ``N x C x H x W -> N x ...`` (its outputs are summed per sample).
        real, fake: same shape; ``fake`` is detached here.
        generator: CPU generator for ``a`` (reproducible runs).
    """
    if real.shape != fake.shape:
        raise InvalidInputError(f"real and fake differ in shape: {tuple(real.shape)} vs "
                                f"{tuple(fake.shape)}")
    a = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=generator)
    a = a.to(device=real.device, dtype=real.dtype)
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


__all__ = [
    "ADVERSARIAL_KINDS", "gradient_penalty",
    "CHARBONNIER_EPS", "LAB_SCALE", "PERCEPTUAL_LAYERS", "STYLE_LAYERS",
    "charbonnier", "color_loss", "cycle_loss", "discriminator_loss",
    "dped_blur_kernel", "generator_loss", "gram_matrix", "gram_style_loss", "l1", "lab_loss",
    "lab_vgg", "ms_ssim_loss", "mse", "perceptual", "srgb_to_scaled_lab", "ssim_loss",
    "tv_loss",
]
