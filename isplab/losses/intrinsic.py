"""Losses of the self-supervised intrinsic decomposition (MDIE's ``intrinsic_net``).

The decomposition is of **linear** light, ``I_linear = A * S`` (``A`` albedo ``N x 3 x H x W``
in (0, 1), ``S`` grey shading ``N x 1 x H x W`` > 0); the network
(:class:`isplab.models.intrinsic.IntrinsicNet`) takes the sRGB image.

Training (spec ``shared/specs/enhancement.md``, losses after RetinexNet, Wei et al. BMVC 2018):
each photo patch ``I`` gets a synthetic re-shaded twin ``I' = clip(I * S_syn)`` where
``S_syn`` is a smooth log-normal field times a global gain (log-uniform 0.3..2), optionally
tinted. With ``(A, S)`` and ``(A', S')`` the two decompositions the loss is::

    |A S - I|_1 + |A' S' - I'|_1 + 0.1 (|A S' - I'|_1 + |A' S - I|_1)
    + 0.01 |log A - log A'|_1 + 0.1 smooth(S | A) + 0.01 |grad A|_1 + (mean log S)^2

``smooth(S | A)`` is the edge-aware smoothness ``|grad log S| * exp(-10 |grad A_grey|)``. The
pair terms skip pixels clipped in ``I'``. The ``intrinsic`` training objective
(:mod:`isplab.train.objectives`) runs :func:`decomposition_losses`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.classic import srgb_gamma, srgb_to_linear
from isplab.errors import InvalidInputError

EPS = 1e-4
#: default loss weights (the spec's)
LOSS_WEIGHTS = {"recon": 1.0, "recon_pair": 1.0, "cross": 0.1, "albedo_consistency": 0.01,
                "smooth": 0.1, "albedo_grad": 0.01, "log_prior": 1.0}


def _grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


# --- synthetic re-shading -----------------------------------------------------------------


def synthetic_shading(n: int, height: int, width: int, generator: torch.Generator,
                      gain_range: tuple[float, float] = (0.3, 2.0), log_sigma: float = 0.5,
                      grid: int = 4, tint: float = 0.0) -> torch.Tensor:
    """A smooth log-normal shading field ``N x 1 x H x W`` (``N x 3`` when ``tint > 0``).

    ``log S = log(gain) + log_sigma * upsample_bicubic(z)``, ``z ~ N(0, 1)`` on a
    ``grid x grid`` lattice, ``gain`` log-uniform in ``gain_range``; with ``tint`` each channel
    is further multiplied by ``exp(tint * N(0, 1))`` (a coloured light). CPU generator."""
    lo, hi = gain_range
    if not (0 < lo <= hi) or grid < 1 or log_sigma < 0:
        raise InvalidInputError(f"bad shading parameters: gain_range {gain_range}, grid {grid}, "
                                f"log_sigma {log_sigma}")
    z = torch.randn(n, 1, grid + 1, grid + 1, generator=generator)
    field = F.interpolate(z, size=(height, width), mode="bicubic", align_corners=True)
    u = torch.rand(n, 1, 1, 1, generator=generator)
    log_gain = math.log(lo) + u * (math.log(hi) - math.log(lo))
    s = torch.exp(log_gain + log_sigma * field)
    if tint > 0:
        s = s * torch.exp(tint * torch.randn(n, 3, 1, 1, generator=generator))
    return s


def reshade(srgb: torch.Tensor, shading: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relight sRGB ``N x 3 x H x W`` by ``shading`` in linear light -> ``(sRGB I', valid)``:
    ``I' = srgb_gamma(clip(linear * S))``; ``valid`` (``N x 1 x H x W`` float) marks pixels
    where no channel clipped."""
    lin = srgb_to_linear(srgb) * shading
    valid = (lin.amax(1, keepdim=True) < 1.0).to(lin.dtype)
    return srgb_gamma(lin.clamp(0.0, 1.0)).clamp(0.0, 1.0), valid


# --- losses (pure functions; all means over pixels and batch) -----------------------------


def reconstruction_loss(albedo: torch.Tensor, shading: torch.Tensor, linear: torch.Tensor,
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """``mean |A * S - I|`` in linear light (``valid`` weights the pixels, ``N x 1 x H x W``)."""
    err = (albedo * shading - linear).abs()
    if valid is None:
        return err.mean()
    return (err * valid).sum() / (valid.sum() * err.shape[1]).clamp(min=1.0)


def albedo_consistency_loss(a1: torch.Tensor, a2: torch.Tensor,
                            valid: torch.Tensor | None = None) -> torch.Tensor:
    """``mean |log A - log A'|`` (albedo of an image and of its re-shaded twin)."""
    err = (torch.log(a1.clamp(min=EPS)) - torch.log(a2.clamp(min=EPS))).abs()
    if valid is None:
        return err.mean()
    return (err * valid).sum() / (valid.sum() * err.shape[1]).clamp(min=1.0)


def edge_aware_smoothness(shading: torch.Tensor, albedo: torch.Tensor,
                          edge_weight: float = 10.0) -> torch.Tensor:
    """``mean |grad log S| * exp(-edge_weight |grad grey(A)|)``: shading is smooth except
    where the albedo has an edge (RetinexNet's illumination smoothness, on log S so it does
    not depend on the overall light level)."""
    check_image(shading, 1, "shading")
    gx, gy = _grad(torch.log(shading.clamp(min=EPS)))
    ax, ay = _grad(albedo.mean(1, keepdim=True))
    return (gx.abs() * torch.exp(-edge_weight * ax.abs())).mean() + \
        (gy.abs() * torch.exp(-edge_weight * ay.abs())).mean()


def albedo_gradient_loss(albedo: torch.Tensor) -> torch.Tensor:
    """``mean |grad A|`` (a small sparsity prior on albedo gradients)."""
    gx, gy = _grad(albedo)
    return gx.abs().mean() + gy.abs().mean()


def log_shading_prior(shading: torch.Tensor) -> torch.Tensor:
    """``mean over images of (mean log S)^2``: fixes the A/S scale ambiguity at a geometric
    mean shading of 1."""
    return torch.log(shading.clamp(min=EPS)).flatten(1).mean(1).pow(2).mean()


def decomposition_losses(model: nn.Module, srgb: torch.Tensor, generator: torch.Generator,
                         weights: dict[str, float] | None = None,
                         shading_options: dict[str, Any] | None = None
                         ) -> dict[str, torch.Tensor]:
    """All training terms for a batch of sRGB patches ``N x 3 x H x W``.

    ``model.decompose(srgb) -> (A, S)``. Returns the weighted terms and ``total``."""
    w = {**LOSS_WEIGHTS, **(weights or {})}
    unknown = set(w) - set(LOSS_WEIGHTS)
    if unknown:
        raise InvalidInputError(f"unknown intrinsic loss terms {sorted(unknown)}; "
                                f"known: {sorted(LOSS_WEIGHTS)}")
    n, _, h, wd = srgb.shape
    s_syn = synthetic_shading(n, h, wd, generator, **(shading_options or {})).to(srgb)
    relit, valid = reshade(srgb, s_syn)
    # one forward over both images (and one backward: what DDP allows)
    a_both, s_both = model.decompose(torch.cat([srgb, relit]))
    a, a2 = a_both[:n], a_both[n:]
    s, s2 = s_both[:n], s_both[n:]
    lin, lin2 = srgb_to_linear(srgb), srgb_to_linear(relit)
    terms = {
        "recon": reconstruction_loss(a, s, lin),
        "recon_pair": reconstruction_loss(a2, s2, lin2),
        "cross": reconstruction_loss(a, s2, lin2, valid) + reconstruction_loss(a2, s, lin, valid),
        "albedo_consistency": albedo_consistency_loss(a, a2, valid),
        "smooth": edge_aware_smoothness(s, a) + edge_aware_smoothness(s2, a2),
        "albedo_grad": albedo_gradient_loss(a),
        "log_prior": log_shading_prior(s) + log_shading_prior(s2),
    }
    out = {k: v * w[k] for k, v in terms.items()}
    out["total"] = sum(out.values())  # type: ignore[assignment]
    return out


def scale_invariant_error(pred: torch.Tensor, target: torch.Tensor,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale-invariant MSE (Grosse et al. 2009): ``min_alpha mean (alpha * pred - target)^2``
    per image, ``alpha`` one scalar per image (over all channels); ``N`` values."""
    if pred.shape != target.shape:
        raise InvalidInputError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    m = torch.ones_like(pred[:, :1]) if mask is None else mask
    m = m.expand_as(pred)
    p, t = (pred * m).flatten(1), (target * m).flatten(1)
    alpha = (p * t).sum(1) / (p * p).sum(1).clamp(min=1e-12)
    err = ((alpha[:, None] * p - t) ** 2).sum(1)
    return err / m.flatten(1).sum(1).clamp(min=1.0)
