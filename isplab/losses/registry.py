"""Losses by name: :func:`create_loss` / :func:`list_losses` (names used in recipes)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from isplab.errors import InvalidInputError
from isplab.losses import modules as M
from isplab.registry import Registry


def _adversarial(kind: str) -> Callable[..., nn.Module]:
    def make(**opts) -> nn.Module:
        return M.AdversarialLoss(kind=kind, **opts)

    return make


LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
LOSSES.add("l1", M.L1Loss,
           description="mean |pred - target|")
LOSSES.add("l1_gamma", M.L1GammaLoss,
           description="L1 of (max(x, 0) + 1e-3) ** (1/2.2): linear outputs judged as displayed")
LOSSES.add("mse", M.MSELoss,
           description="mean (pred - target)^2")
LOSSES.add("charbonnier", M.CharbonnierLoss,
           description="mean sqrt(d^2 + eps^2) - eps, eps 1e-3")
LOSSES.add("ssim_loss", M.SSIMLoss,
           description="1 - SSIM (isplab.metrics.ssim)")
LOSSES.add("ms_ssim_loss", M.MSSSIMLoss,
           description="1 - MS-SSIM (isplab.metrics.ms_ssim)")
LOSSES.add("perceptual", M.PerceptualLoss,
           description="VGG-19 feature MSE at relu5_4 (PyNET, DPED)")
LOSSES.add("lab_loss", M.LabLoss,
           description="DeepISP: 0.5 L1(Lab) + 0.5 (1 - MS-SSIM(L))")
LOSSES.add("lab_vgg", M.LabVGGLoss,
           description="lab_loss + vgg_weight * perceptual")
LOSSES.add("color_loss", M.ColorLoss,
           description="DPED: MSE of 21x21 Gaussian-blurred images")
LOSSES.add("tv_loss", M.TVLoss,
           description="mean dy^2 + mean dx^2 (DPED)")
LOSSES.add("gram_style_loss", M.GramStyleLoss,
           description="Gram-matrix style loss, optional region masks")
LOSSES.add("gan", _adversarial("gan"),
           description="BCE with logits (generator form; .discriminator())")
LOSSES.add("lsgan", _adversarial("lsgan"),
           description="least squares GAN (generator form; .discriminator())")
LOSSES.add("hinge", _adversarial("hinge"),
           description="hinge GAN (generator form; .discriminator())")
LOSSES.add("wgan", _adversarial("wgan"),
           description="Wasserstein critic (generator form; .discriminator(); gradient_penalty)")
LOSSES.add("cycle_loss", M.CycleLoss,
           description="L1(reconstruction, original)")


def list_losses() -> dict[str, str]:
    """Registered loss names -> one-line description."""
    return LOSSES.describe()


def create_loss(name: str, **opts) -> nn.Module:
    """The loss module registered as ``name``, built with ``opts``.

    Raises:
        InvalidInputError: unknown name or options the loss does not take.
    """
    factory = LOSSES.get(name)
    try:
        return factory(**opts)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for loss {name!r}: {exc}") from exc
