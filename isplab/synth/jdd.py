"""Training pairs for joint demosaicking + denoising (the ``jdd_net`` contract).

From a clean RGB crop: a white-balanced target image (linear camera RGB, or the sRGB values
themselves, as the Kodak demosaicking protocol mosaics them), its Bayer samples divided by
the white-balance gains (the sensor's raw), heteroscedastic shot/read noise on that raw
(Brooks et al. 2019's distribution, or none), the gains applied again, and the per-pixel
noise standard deviation after the gains (:func:`~isplab.synth.noise.noise_std_map`).

:func:`sample_jdd_params` draws one sample's camera and noise; :func:`make_jdd_pair` is the
pure function of a crop and those parameters (plus the noise draw).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isplab.classic import srgb_to_linear
from isplab.errors import InvalidInputError
from isplab.raw.cfa import mosaic, pack
from isplab.synth.noise import add_noise, noise_std_map, sample_noise_params
from isplab.synth.unprocess import as_generator, random_ccm

SPACES = ("linear", "srgb")
#: ranges of the sampled white-balance gains (green = 1); wider than Brooks et al.'s
#: (1.9-2.4 / 1.5-1.9) to cover tungsten to shade and the sRGB protocol's unit gains
RED_GAIN_RANGE = (1.0, 2.8)
BLUE_GAIN_RANGE = (1.0, 2.4)


@dataclass(frozen=True)
class JDDParams:
    """One sample's camera and noise.

    ``space``: ``linear`` (target = exposure * white-preserving camera matrix @ linear RGB)
    or ``srgb`` (target = the sRGB values). ``rgb_to_cam``: 3x3, rows summing to 1 (a grey
    stays grey: white balanced). ``gains``: (red, blue) white-balance gains. ``shot``,
    ``read``: noise variances of the unbalanced raw (0, 0: clean). ``map_scale``: (shot,
    read) factors of the profile the noise map is made from, against the true one: (1, 1)
    is the truth, others train for a profile estimated from the pixels."""

    space: str = "linear"
    rgb_to_cam: tuple[tuple[float, ...], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    exposure: float = 1.0
    gains: tuple[float, float] = (1.0, 1.0)
    shot: float = 0.0
    read: float = 0.0
    map_scale: tuple[float, float] = (1.0, 1.0)


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g, dtype=torch.float64))


def sample_jdd_params(generator: torch.Generator | int | None = None, *,
                      srgb_fraction: float = 0.3, clean_fraction: float = 0.25,
                      exposure_range: tuple[float, float] = (0.25, 1.0),
                      shot_range: tuple[float, float] = (1e-4, 0.012),
                      map_jitter: tuple[float, float] = (0.0, 0.0)) -> JDDParams:
    """Draw a :class:`JDDParams`: the ``srgb`` space with ``srgb_fraction``; otherwise a random
    camera matrix (:func:`~isplab.synth.random_ccm`) and a log-uniform exposure; gains
    uniform in :data:`RED_GAIN_RANGE` / :data:`BLUE_GAIN_RANGE`; no noise with
    ``clean_fraction``, else Brooks et al.'s shot/read draw over ``shot_range``.
    ``map_jitter``: log-normal sigmas of the noise map's shot and read *standard deviations*
    against the truth (independent draws; 0: the map is the truth), as a profile estimated
    from the pixels errs (docs/benchmarks.md, ``benchmarks/noise_estimate.py``).

    The same number of values is drawn whatever the outcome (a fixed random stream; two
    more with ``map_jitter``)."""
    g = as_generator(generator)
    space = "srgb" if _u(g, 0, 1) < srgb_fraction else "linear"
    _, rgb_to_cam = random_ccm(g)
    lo, hi = exposure_range
    exposure = float(np.exp(_u(g, np.log(lo), np.log(hi))))
    gains = (_u(g, *RED_GAIN_RANGE), _u(g, *BLUE_GAIN_RANGE))
    clean = _u(g, 0, 1) < clean_fraction
    levels = sample_noise_params(g, shot_range)
    if space == "srgb":
        rgb_to_cam, exposure = np.eye(3), 1.0
    sigma = np.asarray(map_jitter, dtype=np.float64)
    if sigma.shape != (2,) or not np.all(sigma >= 0):
        raise InvalidInputError(f"map_jitter must be two sigmas >= 0 (shot, read), got "
                                f"{map_jitter}")
    scale = (1.0, 1.0)
    if sigma.any():
        z = torch.randn(2, generator=g, dtype=torch.float64).numpy()
        scale = tuple(float(v) for v in np.exp(2.0 * sigma * z))  # of the variances
    return JDDParams(space=space, rgb_to_cam=tuple(map(tuple, np.asarray(rgb_to_cam).tolist())),
                     exposure=exposure, gains=gains,
                     shot=0.0 if clean else levels["shot"], read=0.0 if clean else levels["read"],
                     map_scale=scale)


def packed_gains(gains: tuple[float, float] | torch.Tensor) -> torch.Tensor:
    """(red, blue) -> the 4 packed-channel gains (R, G1, G2, B)."""
    r, b = (float(v) for v in gains)
    return torch.tensor([r, 1.0, 1.0, b])


def make_jdd_pair(rgb: torch.Tensor, params: JDDParams,
                  generator: torch.Generator | int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``jdd_net`` training pair from a clean RGB crop.

    Args:
        rgb: ``3 x H x W`` sRGB in [0, 1], H and W even (an RGGB mosaic is sampled).
        params: the sample's camera and noise (:func:`sample_jdd_params`).
        generator: draws the noise.

    Returns:
        ``(input, target)``: ``8 x H/2 x W/2`` (white-balanced packed raw, noise std) and
        ``3 x H x W`` (white-balanced linear camera RGB, or sRGB for ``space="srgb"``).
    """
    if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.shape[1] % 2 or rgb.shape[2] % 2:
        raise InvalidInputError(f"expected a 3 x H x W crop with even sides, got "
                                f"{tuple(rgb.shape)}")
    if params.space not in SPACES:
        raise InvalidInputError(f"space must be one of {SPACES}, got {params.space!r}")
    if params.space == "srgb":
        target = rgb.clamp(0, 1)
    else:
        m = torch.as_tensor(params.rgb_to_cam, dtype=rgb.dtype)
        lin = srgb_to_linear(rgb.clamp(0, 1))
        target = (torch.einsum("ij,jhw->ihw", m, lin) * params.exposure).clamp(0, 1)
    g4 = packed_gains(params.gains).to(rgb.dtype).view(4, 1, 1)
    raw = pack(mosaic(target[None], "RGGB"), "RGGB")[0] / g4
    if params.shot > 0 or params.read > 0:
        raw = add_noise(raw, params.shot, params.read, generator).clamp(0, 1)
    balanced = raw * g4
    std = noise_std_map(balanced, params.shot * params.map_scale[0],
                        params.read * params.map_scale[1], g4.flatten())
    return torch.cat([balanced, std], 0), target


def jdd_input(packed_balanced: torch.Tensor, shot: float | torch.Tensor,
              read: float | torch.Tensor, gains: torch.Tensor | None = None) -> torch.Tensor:
    """The ``jdd_net`` input of a white-balanced packed raw ``N x 4 x h x w``: the raw and its
    noise std map, ``N x 8 x h x w`` (``shot = read = 0``: a clean raw)."""
    std = noise_std_map(packed_balanced, shot, read, gains)
    return torch.cat([packed_balanced, std], 1)
