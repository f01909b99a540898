"""Intrinsic decomposition for MDIE: classical baselines (LIME, multi-scale Retinex) and the
decomposition PSNR; the training losses, the synthetic re-shading and the scale-invariant error
are in :mod:`isplab.losses.intrinsic`. Training runs
through the trainer (``isplab train configs/mdie_intrinsic.yaml``: the ``intrinsic`` objective
of :mod:`isplab.train.objectives`).

Spaces: the decomposition is of **linear** light, ``I_linear = A * S`` (``A`` albedo
``N x 3 x H x W`` in (0, 1), ``S`` grey shading ``N x 1 x H x W`` > 0); the network
(:class:`isplab.models.intrinsic.IntrinsicNet`) takes the sRGB image.

Training (spec ``shared/specs/enhancement.md``, losses after RetinexNet, Wei et al. BMVC 2018):
each photo patch ``I`` gets a synthetic re-shaded twin ``I' = clip(I * S_syn)`` where
``S_syn`` is a smooth log-normal field times a global gain (log-uniform 0.3..2), optionally
tinted. With ``(A, S)`` and ``(A', S')`` the two decompositions the loss is::

    |A S - I|_1 + |A' S' - I'|_1 + 0.1 (|A S' - I'|_1 + |A' S - I|_1)
    + 0.01 |log A - log A'|_1 + 0.1 smooth(S | A) + 0.01 |grad A|_1 + (mean log S)^2

``smooth(S | A)`` is the edge-aware smoothness ``|grad log S| * exp(-10 |grad A_grey|)``. The
pair terms skip pixels clipped in ``I'``.

Classical baselines: LIME-style illumination (max-RGB refined by an edge-preserving guided
filter, ``A = I / S``) and multi-scale Retinex (geometric mean of Gaussian-blurred luminance
at three scales).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.classic import srgb_to_linear
from isplab.classic.color import luminance

# --- classical baselines ------------------------------------------------------------------


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of any sigma: large sigmas on a downscaled copy (factor ~ sigma / 4)."""
    from isplab.synth.degradations import blur

    h, w = x.shape[-2:]
    factor = max(1.0, sigma / 4.0)
    small = x
    if factor > 1:
        small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))),
                              mode="area")
    y = blur(small, sigma / factor)
    if factor > 1:
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    return y


def lime_decompose(linear_rgb: torch.Tensor, radius: int = 7, eps: float = 1e-3,
                   floor: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """LIME-style illumination (Guo et al., TIP 2017, simplified): ``T = max RGB`` refined by
    a guided filter guided by itself (edge-preserving smoothing in place of LIME's weighted
    least squares), ``S = max(T_refined, floor)``, ``A = clip(I / S, 0, 1)``.

    Args:
        linear_rgb: ``N x 3 x H x W`` linear light in [0, 1].
    Returns:
        ``(A N x 3 x H x W, S N x 1 x H x W)``.
    """
    import kornia

    check_image(linear_rgb, 3, "linear_rgb")
    t = linear_rgb.amax(1, keepdim=True)
    k = 2 * radius + 1
    if min(t.shape[-2:]) > radius:
        t = kornia.filters.guided_blur(t, t, k, eps)
    s = t.clamp(min=floor)
    return (linear_rgb / s).clamp(0.0, 1.0), s


def multiscale_retinex(linear_rgb: torch.Tensor, sigmas: Sequence[float] = (0.02, 0.08, 0.25),
                       floor: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-scale Retinex (Jobson et al. 1997) as a decomposition: ``log S = mean_k
    log(G_{sigma_k} * Y)`` with ``Y`` the luminance and ``sigma_k`` fractions of the longer
    side; ``A = I / S`` (not clipped: MSR's reflectance has no fixed range).

    Returns ``(A N x 3 x H x W, S N x 1 x H x W)``."""
    check_image(linear_rgb, 3, "linear_rgb")
    y = luminance(linear_rgb).clamp(min=floor)
    side = max(linear_rgb.shape[-2:])
    log_s = torch.stack([torch.log(_blur(y, s * side).clamp(min=floor)) for s in sigmas]).mean(0)
    s = torch.exp(log_s)
    return linear_rgb / s, s


def decomposition_psnr(model: nn.Module, srgb: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, per image) of ``A * S`` against the linear input ``srgb_to_linear(srgb)``."""
    from isplab.metrics import psnr

    with torch.no_grad():
        a, s = model.decompose(srgb)
    return psnr((a * s).clamp(0.0, 1.0), srgb_to_linear(srgb))
