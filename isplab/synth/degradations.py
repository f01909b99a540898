"""Photo degradations in MDIE's three domains, index and name (label 1 = high quality):

0. ``colour``: a white-balance cast (per-channel gains in linear light) and a tone change
   (exposure and a power curve), applied to an sRGB photo (:func:`colour_cast`).
1. ``texture``: Gaussian blur, down-up resampling or JPEG compression (:func:`texture_degrade`).
2. ``noise``: heteroscedastic sensor noise ``N(0, shot * x + read)`` added in **linear** light
   with :func:`isplab.synth.noise.add_noise`, parameters from Brooks et al.'s relation
   (:func:`sensor_noise`).

All images are ``N x 3 x H x W`` (or ``3 x H x W``) float32 sRGB in [0, 1] unless stated.
The datasets built from them are in :mod:`isplab.data.domains`.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from isplab.classic import srgb_gamma, srgb_to_linear
from isplab.classic.color import luma
from isplab.errors import InvalidInputError
from isplab.synth.noise import add_noise, sample_noise_params

DOMAINS = ("colour", "texture", "noise")
TEXTURE_KINDS = ("blur", "down_up", "jpeg")
#: default ranges of the random degradations
COLOUR_GAIN_RANGE = (0.55, 1.8)   # R and B gains relative to G (log-uniform)
COLOUR_EV_RANGE = (-1.0, 0.6)     # exposure change in stops
COLOUR_GAMMA_RANGE = (0.7, 1.45)  # power applied to linear values (contrast/tone)
BLUR_SIGMA_RANGE = (1.0, 2.5)
DOWN_UP_RANGE = (2.0, 4.0)
JPEG_QUALITY_RANGE = (8, 30)
NOISE_SHOT_RANGE = (2e-3, 2e-2)


# --- helpers ------------------------------------------------------------------------------


def _batch(x: torch.Tensor, name: str = "image") -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInputError(f"{name} must be 3 x H x W or N x 3 x H x W, got {shape}")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {x.dtype}")
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g).item())


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return math.exp(_uniform(g, math.log(lo), math.log(hi)))


def _per_image(v: Any, n: int, ref: torch.Tensor, width: int) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
    if t.ndim == 0:
        t = t.expand(n, width) if width > 1 else t.expand(n)
    elif width > 1 and t.shape == (width,):
        t = t.expand(n, width)
    elif width == 1 and t.shape == (n,):
        pass
    elif width > 1 and t.shape == (n, width):
        pass
    else:
        raise InvalidInputError(f"expected one value (or {width}) per image for {n} images, "
                                f"got shape {tuple(t.shape)}")
    return t


def sharpness(srgb: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian of the luma, per image (``N`` values; higher = sharper)."""
    x, _ = _batch(srgb)
    y = luma(x)
    k = y.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(y, k).flatten(1).var(1)


# --- colour -------------------------------------------------------------------------------


def colour_cast(srgb: torch.Tensor, gains: Any, ev: Any = 0.0, tone_gamma: Any = 1.0
                ) -> torch.Tensor:
    """A white-balance/tone cast: ``srgb_gamma(clip(linear * gains * 2**ev) ** tone_gamma)``.

    Args:
        srgb: sRGB ``(N x) 3 x H x W`` in [0, 1].
        gains: (R, G, B) multipliers in linear light, a 3-sequence or ``N x 3``.
        ev: exposure change in stops (number or one per image).
        tone_gamma: power on the clipped linear values (> 1 darkens mid-tones, < 1 lifts).

    Returns:
        sRGB, same shape, in [0, 1]. Gains, exposure and gamma 1 leave the image unchanged.
    """
    x, single = _batch(srgb)
    n = x.shape[0]
    g = _per_image(gains, n, x, 3)
    e = _per_image(ev, n, x, 1)
    p = _per_image(tone_gamma, n, x, 1)
    if (g <= 0).any() or (p <= 0).any():
        raise InvalidInputError("colour gains and tone_gamma must be > 0")
    lin = srgb_to_linear(x) * g[:, :, None, None] * torch.pow(2.0, e)[:, None, None, None]
    lin = lin.clamp(0.0, 1.0) ** p[:, None, None, None]
    out = srgb_gamma(lin).clamp(0.0, 1.0)
    return out[0] if single else out


def random_colour_params(generator: torch.Generator) -> dict[str, Any]:
    """Random cast: R and B gains log-uniform in :data:`COLOUR_GAIN_RANGE` (G = 1, then scaled
    so the largest gain is 1: a cast never clips more than the exposure does), exposure in
    :data:`COLOUR_EV_RANGE`, tone gamma log-uniform in :data:`COLOUR_GAMMA_RANGE`."""
    r, b = (_log_uniform(generator, *COLOUR_GAIN_RANGE) for _ in range(2))
    top = max(r, 1.0, b)
    return {"gains": [r / top, 1.0 / top, b / top],
            "ev": _uniform(generator, *COLOUR_EV_RANGE),
            "tone_gamma": _log_uniform(generator, *COLOUR_GAMMA_RANGE)}


# --- texture ------------------------------------------------------------------------------


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``N x C x H x W`` (kornia; kernel ``2 ceil(3 sigma) + 1``, reflect
    borders, replicate where the image is smaller than the kernel)."""
    import kornia

    if sigma <= 0:
        return x
    k = 2 * int(math.ceil(3 * sigma)) + 1
    border = "reflect" if k // 2 < min(x.shape[-2:]) else "replicate"
    return kornia.filters.gaussian_blur2d(x, (k, k), (float(sigma), float(sigma)),
                                          border_type=border)


def gaussian_blur(srgb: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of sRGB ``3 x H x W`` or ``N x 3 x H x W`` (:func:`blur`)."""
    x, single = _batch(srgb)
    y = blur(x, sigma)
    return y[0] if single else y


def down_up(srgb: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (area average) and back up to the original size (bicubic,
    clipped): the loss of detail of a lower-resolution capture."""
    x, single = _batch(srgb)
    if factor <= 1:
        return srgb
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))),
                          mode="area")
    y = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0.0, 1.0)
    return y[0] if single else y


def jpeg(srgb: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip at ``quality`` (1..100) with OpenCV, through 8 bits."""
    x, single = _batch(srgb)
    if not 1 <= int(quality) <= 100:
        raise InvalidInputError(f"JPEG quality must be 1..100, got {quality}")
    out = []
    for img in x:
        arr = (img.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5)
        arr = np.ascontiguousarray(arr.astype(np.uint8)[..., ::-1])
        ok, buf = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise InvalidInputError("JPEG encoding failed")
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        out.append((torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float()
                    / 255.0).to(x))
    y = torch.stack(out)
    return y[0] if single else y


def texture_degrade(srgb: torch.Tensor, kind: str, strength: float) -> torch.Tensor:
    """One texture degradation: ``blur`` (sigma), ``down_up`` (factor) or ``jpeg`` (quality)."""
    if kind == "blur":
        return gaussian_blur(srgb, float(strength))
    if kind == "down_up":
        return down_up(srgb, float(strength))
    if kind == "jpeg":
        return jpeg(srgb, int(strength))
    raise InvalidInputError(f"texture kind must be one of {TEXTURE_KINDS}, got {kind!r}")


def random_texture_params(generator: torch.Generator) -> dict[str, Any]:
    """A random texture degradation: kind uniform over :data:`TEXTURE_KINDS`, strength
    uniform in its range (blur sigma, down-up factor, JPEG quality)."""
    kind = TEXTURE_KINDS[int(torch.randint(0, len(TEXTURE_KINDS), (1,), generator=generator))]
    if kind == "blur":
        strength = _uniform(generator, *BLUR_SIGMA_RANGE)
    elif kind == "down_up":
        strength = _uniform(generator, *DOWN_UP_RANGE)
    else:
        strength = int(round(_uniform(generator, *JPEG_QUALITY_RANGE)))
    return {"kind": kind, "strength": strength}


# --- noise --------------------------------------------------------------------------------


def sensor_noise(srgb: torch.Tensor, shot: Any, read: Any,
                 generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Sensor noise in linear light: ``srgb_gamma(clip(add_noise(srgb_to_linear(x), shot,
    read)))``, i.e. per-pixel variance ``shot * x_linear + read`` before the clip.

    Args:
        srgb: sRGB ``(N x) 3 x H x W`` in [0, 1].
        shot, read: variances (numbers, or one per image), see :mod:`isplab.synth.noise`.
    """
    lin = srgb_to_linear(srgb)
    noisy = add_noise(lin, shot, read, generator).clamp(0.0, 1.0)
    return srgb_gamma(noisy).clamp(0.0, 1.0)


def random_noise_params(generator: torch.Generator) -> dict[str, float]:
    """Shot/read variances from Brooks et al.'s log-linear relation with the shot variance
    log-uniform in :data:`NOISE_SHOT_RANGE` (stronger than the raw default: these are
    visible phone-photo noise levels)."""
    return sample_noise_params(generator, NOISE_SHOT_RANGE)


def degrade(srgb: torch.Tensor, domain: str, generator: torch.Generator
            ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Apply one random degradation of ``domain`` to sRGB ``3 x H x W`` (or ``N x ...``, the
    same parameters for all) -> ``(degraded sRGB, parameters)``."""
    if domain == "colour":
        p = random_colour_params(generator)
        return colour_cast(srgb, p["gains"], p["ev"], p["tone_gamma"]), p
    if domain == "texture":
        p = random_texture_params(generator)
        return texture_degrade(srgb, p["kind"], p["strength"]), p
    if domain == "noise":
        p = random_noise_params(generator)
        return sensor_noise(srgb, p["shot"], p["read"], generator), p
    raise InvalidInputError(f"domain must be one of {DOMAINS}, got {domain!r}")


# --- training dataset ---------------------------------------------------------------------
