"""Losses by name: :func:`create_loss` / :func:`list_losses` (names used in recipes)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from isplab.errors import InvalidInputError
from isplab.losses import modules as M


def _adversarial(kind: str) -> Callable[..., nn.Module]:
    def make(**opts) -> nn.Module:
        return M.AdversarialLoss(kind=kind, **opts)

    return make


_LOSSES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "l1": (M.L1Loss, "mean |pred - target|"),
    "l1_gamma": (M.L1GammaLoss, "L1 of (max(x, 0) + 1e-3) ** (1/2.2): linear outputs judged "
                 "as displayed"),
    "mse": (M.MSELoss, "mean (pred - target)^2"),
    "charbonnier": (M.CharbonnierLoss, "mean sqrt(d^2 + eps^2) - eps, eps 1e-3"),
    "ssim_loss": (M.SSIMLoss, "1 - SSIM (isplab.metrics.ssim)"),
    "ms_ssim_loss": (M.MSSSIMLoss, "1 - MS-SSIM (isplab.metrics.ms_ssim)"),
    "perceptual": (M.PerceptualLoss, "VGG-19 feature MSE at relu5_4 (PyNET, DPED)"),
    "lab_loss": (M.LabLoss, "DeepISP: 0.5 L1(Lab) + 0.5 (1 - MS-SSIM(L))"),
    "lab_vgg": (M.LabVGGLoss, "lab_loss + vgg_weight * perceptual"),
    "color_loss": (M.ColorLoss, "DPED: MSE of 21x21 Gaussian-blurred images"),
    "tv_loss": (M.TVLoss, "mean dy^2 + mean dx^2 (DPED)"),
    "gram_style_loss": (M.GramStyleLoss, "Gram-matrix style loss, optional region masks"),
    "gan": (_adversarial("gan"), "BCE with logits (generator form; .discriminator())"),
    "lsgan": (_adversarial("lsgan"), "least squares GAN (generator form; .discriminator())"),
    "hinge": (_adversarial("hinge"), "hinge GAN (generator form; .discriminator())"),
    "wgan": (_adversarial("wgan"), "Wasserstein critic (generator form; .discriminator(); "
             "gradient_penalty)"),
    "cycle_loss": (M.CycleLoss, "L1(reconstruction, original)"),
}


def list_losses() -> dict[str, str]:
    """Registered loss names -> one-line description."""
    return {name: desc for name, (_, desc) in _LOSSES.items()}


def create_loss(name: str, **opts) -> nn.Module:
    """The loss module registered as ``name``, built with ``opts``.

    Raises:
        InvalidInputError: unknown name or options the loss does not take.
    """
    if name not in _LOSSES:
        raise InvalidInputError(f"unknown loss {name!r}; choose from {', '.join(_LOSSES)}")
    factory = _LOSSES[name][0]
    try:
        return factory(**opts)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for loss {name!r}: {exc}") from exc
