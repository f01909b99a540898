"""Training losses: pure functions in :mod:`isplab.losses.functional`, ``nn.Module`` wrappers
and :class:`CompositeLoss` in :mod:`isplab.losses.modules`, chosen by name through
:func:`create_loss` / :func:`list_losses`. Exact definitions: ``docs/metrics.md`` (Losses).
"""

from isplab.losses.functional import (
    charbonnier,
    color_loss,
    cycle_loss,
    discriminator_loss,
    dped_blur_kernel,
    generator_loss,
    gradient_penalty,
    gram_matrix,
    gram_style_loss,
    l1,
    lab_loss,
    lab_vgg,
    ms_ssim_loss,
    mse,
    perceptual,
    srgb_to_scaled_lab,
    ssim_loss,
    tv_loss,
)
from isplab.losses.modules import (
    AdversarialLoss,
    CharbonnierLoss,
    ColorLoss,
    CompositeLoss,
    CycleLoss,
    GramStyleLoss,
    L1Loss,
    LabLoss,
    LabVGGLoss,
    MSELoss,
    MSSSIMLoss,
    PerceptualLoss,
    SSIMLoss,
    TVLoss,
    load_vgg19,
)
from isplab.losses.registry import create_loss, list_losses

__all__ = [
    "AdversarialLoss", "CharbonnierLoss", "ColorLoss", "CompositeLoss", "CycleLoss",
    "GramStyleLoss", "L1Loss", "LabLoss", "LabVGGLoss", "MSELoss", "MSSSIMLoss",
    "PerceptualLoss", "SSIMLoss", "TVLoss", "charbonnier", "color_loss", "create_loss",
    "cycle_loss", "discriminator_loss", "dped_blur_kernel", "generator_loss",
    "gradient_penalty", "gram_matrix",
    "gram_style_loss", "l1", "lab_loss", "lab_vgg", "list_losses", "load_vgg19",
    "ms_ssim_loss", "mse", "perceptual", "srgb_to_scaled_lab", "ssim_loss", "tv_loss",
]
