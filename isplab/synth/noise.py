"""Sensor noise, low light and quantisation for synthetic raw (Brooks et al. 2019, SID-style).

All functions take linear raw data (packed ``N x 4 x h x w``, mosaic ``N x 1 x H x W``, or
unbatched ``C x H x W``; any float dtype, any device) in [0, 1] and return the same shape.
Per-image parameters may be given as tensors of shape ``N`` for batched input.

Noise model (heteroscedastic Gaussian, Brooks et al.): ``noisy = x + N(0, shot * x + read)``,
``shot`` and ``read`` are *variances* per unit signal and at zero signal. Parameters are drawn
from the log-linear relation fitted by Brooks et al. on real cameras
(:func:`sample_noise_params`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from isplab.classic.noise_profile import (  # noqa: F401  Brooks et al.'s read-shot relation
    READ_INTERCEPT,
    READ_SLOPE,
    READ_STD,
)
from isplab.errors import InvalidInputError
from isplab.synth.unprocess import as_generator

#: Default range of the shot-noise variance (log-uniform).
SHOT_RANGE = (1e-4, 0.012)


def _check_raw(raw: torch.Tensor, name: str = "raw") -> None:
    if not isinstance(raw, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(raw).__name__}")
    if not raw.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {raw.dtype}")
    if raw.ndim not in (3, 4):
        raise InvalidInputError(
            f"{name} must have shape C x H x W or N x C x H x W, got {tuple(raw.shape)}")


def _per_image(value: float | torch.Tensor | Any, raw: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar, or a length-N tensor/sequence for a batch, shaped to broadcast with ``raw``."""
    v = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
    if v.ndim == 0 or v.numel() == 1:
        v = v.reshape(())
    elif v.ndim == 1 and raw.ndim == 4 and v.numel() == raw.shape[0]:
        v = v.reshape(-1, 1, 1, 1)
    else:
        n = raw.shape[0] if raw.ndim == 4 else 1
        raise InvalidInputError(
            f"{name} must be a number or one value per image ({n}), got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise InvalidInputError(f"{name} must be finite, got {value}")
    return v


def sample_noise_params(generator: torch.Generator | int | None = None,
                        shot_range: tuple[float, float] = SHOT_RANGE) -> dict[str, float]:
    """Sample the noise of one image as Brooks et al. do.

    ``log(shot) ~ U(log lo, log hi)``; ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26^2)``.

    Returns:
        ``{"shot": float, "read": float}``: shot-noise variance per unit signal and read-noise
        variance, for signals normalised to [0, 1].
    """
    lo, hi = (float(v) for v in shot_range)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise InvalidInputError(f"shot_range must satisfy 0 < low <= high, got {shot_range}")
    g = as_generator(generator)
    u = float(torch.rand(1, generator=g, device=g.device, dtype=torch.float64).item())
    z = float(torch.randn(1, generator=g, device=g.device, dtype=torch.float64).item())
    log_shot = math.log(lo) + u * (math.log(hi) - math.log(lo))
    log_read = READ_SLOPE * log_shot + READ_INTERCEPT + READ_STD * z
    return {"shot": math.exp(log_shot), "read": math.exp(log_read)}


def add_noise(raw: torch.Tensor, shot: float | torch.Tensor, read: float | torch.Tensor,
              generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Heteroscedastic Gaussian noise: ``raw + N(0, shot * raw + read)``, per pixel.

    The result is **not clipped** (values below 0 and above 1 are kept, as a sensor's
    below-black noise is; :func:`degrade` clips). Negative input counts as 0 signal.

    Args:
        raw: clean linear raw in [0, 1].
        shot, read: variances (numbers, or one per image for ``N x C x H x W``).
        generator: draws the noise (an int seed or None makes a generator on ``raw``'s
            device; a given generator draws on its own device, then moves to ``raw``'s).
    """
    _check_raw(raw)
    s, r = _per_image(shot, raw, "shot"), _per_image(read, raw, "read")
    if (s < 0).any() or (r < 0).any():
        raise InvalidInputError("noise variances must be >= 0")
    g = as_generator(generator, raw.device)
    z = torch.randn(raw.shape, generator=g, device=g.device, dtype=raw.dtype).to(raw.device)
    variance = raw.clamp(min=0.0) * s + r
    return raw + z * variance.sqrt()


def noise_level_map(raw: torch.Tensor, shot: float | torch.Tensor,
                    read: float | torch.Tensor) -> torch.Tensor:
    """Per-pixel noise variance ``shot * raw + read``, same shape as ``raw``.

    As Brooks et al. do, compute it from the *noisy* image (the clean one is unknown at test
    time); negative values count as 0 signal so the variance never drops below ``read``.
    """
    _check_raw(raw)
    s, r = _per_image(shot, raw, "shot"), _per_image(read, raw, "read")
    return raw.clamp(min=0.0) * s + r


def noise_std_map(packed: torch.Tensor, shot: float | torch.Tensor, read: float | torch.Tensor,
                  gains: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel noise standard deviation of a white-balanced packed raw (the ``jdd_net``
    conditioning channels).

    A raw value ``x`` (variance ``shot * x + read``) multiplied by its channel's gain ``g``
    has variance ``g * shot * y + g^2 * read`` with ``y = g * x``. Computed from the noisy
    ``y`` (negative counts as 0 signal), as :func:`noise_level_map` is.

    Args:
        packed: ``N x 4 x h x w`` or ``4 x h x w``, white balanced (R, G1, G2, B).
        shot, read: variances of the *unbalanced* raw in [0, 1] units (numbers or one per
            image).
        gains: the white-balance gains per packed channel, ``4`` or ``N x 4`` (None: 1).
    """
    _check_raw(packed)
    s, r = _per_image(shot, packed, "shot"), _per_image(read, packed, "read")
    g = torch.ones(4, dtype=packed.dtype, device=packed.device) if gains is None else \
        torch.as_tensor(gains, dtype=packed.dtype, device=packed.device)
    g = g.reshape(-1, 4, 1, 1) if (packed.ndim == 4 and g.ndim == 2) else g.reshape(4, 1, 1)
    return (packed.clamp(min=0.0) * g * s + g * g * r).clamp(min=0.0).sqrt()


def simulate_low_light(raw: torch.Tensor, k: float | torch.Tensor) -> torch.Tensor:
    """Under-expose by ``k``: ``raw / k`` (k > 0; a number or one per image).

    Apply before the noise so that the noise of a dark frame is simulated; the target stays
    the normal exposure (as in SID, Chen et al. 2018).
    """
    _check_raw(raw)
    kk = _per_image(k, raw, "low-light factor k")
    if (kk <= 0).any():
        raise InvalidInputError(f"low-light factor k must be > 0, got {k}")
    return raw / kk


def default_black_level(bit_depth: int) -> int:
    """A realistic black level in sensor units for ``bit_depth`` bits: ``2 ** (bits - 4)``
    (64 at 10 bits, 256 at 12, 1024 at 14: 1/16 of the range, as many sensors use)."""
    return 1 << (int(bit_depth) - 4) if bit_depth >= 4 else 0


def _check_levels(bit_depth: int, black_level: float) -> tuple[int, float]:
    if int(bit_depth) != bit_depth or not 1 <= int(bit_depth) <= 16:
        raise InvalidInputError(f"bit_depth must be an integer from 1 to 16, got {bit_depth}")
    white = (1 << int(bit_depth)) - 1
    black = float(black_level)
    if not 0 <= black < white:
        raise InvalidInputError(
            f"black level must be in [0, {white}) for {bit_depth} bits, got {black_level}")
    return white, black


def quantize(raw: torch.Tensor, bit_depth: int, black_level: float = 0) -> torch.Tensor:
    """Round to the sensor's integer levels and back to normalised values.

    Sensor values are ``round(black + x * (white - black))`` clipped to ``0..white`` with
    ``white = 2 ** bit_depth - 1``; the result is ``(value - black) / (white - black)``, so it
    lies on a grid of step ``1 / (white - black)`` (values below black stay negative, down to
    ``-black / (white - black)``).
    """
    _check_raw(raw)
    white, black = _check_levels(bit_depth, black_level)
    scale = white - black
    v = torch.round(raw * scale + black).clamp(0.0, float(white))
    return (v - black) / scale


def degrade(
    raw: torch.Tensor,
    generator: torch.Generator | int | None = None,
    noise: bool | dict = True,
    low_light: float = 1.0,
    bit_depth: int | None = None,
    *,
    black_level: float | None = None,
    shot_range: tuple[float, float] = SHOT_RANGE,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Clean linear raw -> what a sensor would record: ``/ k`` -> noise -> clip -> quantise.

    Args:
        raw: clean linear raw in [0, 1] (``C x H x W`` or ``N x C x H x W``).
        generator: draws the noise parameters (per image) and the noise.
        noise: True samples parameters with :func:`sample_noise_params`; a dict
            ``{"shot": ..., "read": ...}`` uses those (numbers, or lists with one per image);
            False adds none.
        low_light: exposure divisor ``k`` (1 = normal exposure).
        bit_depth: quantise to this many bits (None: keep floats).
        black_level: black level in sensor units for the quantisation (default
            :func:`default_black_level`).
        shot_range: range of the sampled shot variance.

    Returns:
        ``(raw, info)`` with the degraded raw in [0, 1] (on the quantisation grid when
        ``bit_depth`` is set) and ``info = {"noise", "shot", "read", "low_light",
        "bit_depth", "black_level", "white_level"}``. For a batch of N > 1 images
        ``shot`` and ``read`` are lists of N floats; they are 0 when ``noise`` is False.
        Levels are None without quantisation.
    """
    _check_raw(raw)
    n = raw.shape[0] if raw.ndim == 4 else 1
    g = as_generator(generator, raw.device)
    x = simulate_low_light(raw, low_light) if low_light != 1 else raw
    if noise is True:
        draws = [sample_noise_params(g, shot_range) for _ in range(n)]
        shot = [d["shot"] for d in draws]
        read = [d["read"] for d in draws]
    elif noise is False or noise is None:
        shot, read = [0.0] * n, [0.0] * n
    elif isinstance(noise, dict):
        try:
            shot, read = noise["shot"], noise["read"]
        except KeyError as exc:
            raise InvalidInputError(f"noise dict needs 'shot' and 'read', got {noise}") from exc
        shot = [float(v) for v in (shot if isinstance(shot, (list, tuple)) else [shot] * n)]
        read = [float(v) for v in (read if isinstance(read, (list, tuple)) else [read] * n)]
        if len(shot) != n or len(read) != n:
            raise InvalidInputError(f"noise dict must give 1 or {n} values of shot and read")
    else:
        raise InvalidInputError(f"noise must be True, False or a dict, got {noise!r}")
    if any(v > 0 for v in shot + read):
        per = (lambda v: v[0]) if raw.ndim == 3 else (lambda v: torch.tensor(v))
        x = add_noise(x, per(shot), per(read), g)
    x = x.clamp(0.0, 1.0)
    white = None
    if bit_depth is not None:
        black = float(default_black_level(bit_depth) if black_level is None else black_level)
        white, black = _check_levels(bit_depth, black)
        x = quantize(x, bit_depth, black)
    else:
        black = None
    info = {
        "noise": bool(noise is not False and noise is not None),
        "shot": shot[0] if n == 1 else shot,
        "read": read[0] if n == 1 else read,
        "low_light": float(low_light),
        "bit_depth": None if bit_depth is None else int(bit_depth),
        "black_level": black,
        "white_level": None if white is None else float(white),
    }
    return x, info
