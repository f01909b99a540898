"""The noise profile of a raw frame: ``variance = shot * x + read`` of a normalised value x.

Where it comes from, in order: what the user says (``--noise shot,read``), the file (DNG
``NoiseProfile``, :attr:`isplab.raw.RawImage.noise_profile`), else an estimate from the raw
itself (:func:`estimate_noise_profile`).

The estimator follows the idea of Foi et al. 2008 ("Practical Poissonian-Gaussian noise
modeling and fitting for single-image raw data", IEEE TIP): local means against local noise
variances on the flattest parts of the image, then a line through them. Ours, per CFA plane of
the packed raw: a second-difference residual (its 3x3 kernel cancels constant and linear
signal; scaled so white noise keeps its variance), non-overlapping 8x8 blocks with their mean
and residual variance, blocks touching black or white dropped, blocks binned by mean; in each
bin a low quantile of the block variances (the flattest blocks; texture only adds variance),
corrected by the same quantile of pure noise; then a weighted non-negative fit of the line,
with read taken from shot by Brooks et al.'s relation where the bins cannot tell it (a single
intensity level, or a line crossing below zero). Accuracy: ``benchmarks/noise_estimate.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from isplab.errors import InvalidInputError

#: 3x3 second-difference kernel; sum of squares 36, so /6 keeps a white noise's variance
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0
BLOCK = 8
#: ``log(read) = READ_SLOPE * log(shot) + READ_INTERCEPT + N(0, READ_STD^2)`` (natural logs):
#: Brooks et al. 2019's fit over real cameras, the noise the learned stage was trained on
#: (:func:`isplab.synth.noise.sample_noise_params`)
READ_SLOPE, READ_INTERCEPT, READ_STD = 2.18, 1.20, 0.26
#: the low quantile of each intensity bin's block variances taken as its noise (with the
#: same quantile of pure noise's as the correction): 0.02 lost less to texture than 0.1 on
#: the scenes of benchmarks/noise_estimate.py (docs/benchmarks.md)
QUANTILE = 0.02
SOURCES = ("user", "file", "estimated", "none")


@dataclass(frozen=True)
class NoiseProfile:
    """``shot``, ``read`` variances (normalised units) and where they came from."""

    shot: float
    read: float
    source: str = "user"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.shot) and np.isfinite(self.read)) or self.shot < 0 \
                or self.read < 0:
            raise InvalidInputError(f"noise profile must be finite variances >= 0, got shot "
                                    f"{self.shot}, read {self.read}")
        if self.source not in SOURCES:
            raise InvalidInputError(f"noise profile source must be one of {SOURCES}")

    def std_at(self, x: float) -> float:
        """Noise standard deviation at normalised signal ``x``."""
        return float(np.sqrt(self.shot * max(x, 0.0) + self.read))

    def describe(self) -> str:
        return (f"shot {self.shot:.3g}, read {self.read:.3g} ({self.source}; std "
                f"{self.std_at(0.0):.2g} at black, {self.std_at(0.18):.2g} at 18 %)")


def _residual(plane: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.filter2D(plane, cv2.CV_32F, _KERNEL, borderType=cv2.BORDER_REFLECT)


def _block_stats(plane: np.ndarray, clip_lo: float, clip_hi: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per 8x8 block: mean and residual variance, blocks touching ``clip_lo``/``clip_hi``
    dropped (the one-pixel frame of each block is left out of the residual)."""
    h, w = (s // BLOCK * BLOCK for s in plane.shape)
    if h < BLOCK or w < BLOCK:
        return np.zeros(0), np.zeros(0)
    x = plane[:h, :w]
    r = _residual(plane.astype(np.float32))[:h, :w]
    xb = x.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK ** 2)
    rb = r.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2)
    rb = rb[:, :, 1:-1, 1:-1].reshape(xb.shape[0], -1)
    keep = (xb.min(axis=1) > clip_lo) & (xb.max(axis=1) < clip_hi)
    return xb[keep].mean(axis=1), (rb[keep] ** 2).mean(axis=1)


@functools.lru_cache(maxsize=64)
def _pure_noise_quantile(quantile: float = QUANTILE) -> float:
    """The ``quantile`` of block variances of unit white noise (the bias of taking the
    flattest blocks), measured once on a fixed draw."""
    z = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    _, v = _block_stats(z, -np.inf, np.inf)
    return float(np.quantile(v, quantile))


def estimate_noise_profile(packed: np.ndarray, bins: int = 12, min_blocks: int = 12,
                           quantile: float = QUANTILE) -> NoiseProfile:
    """Estimate ``(shot, read)`` from a normalised packed raw ``4 x h x w`` (or ``h x w x``
    any plane list) of one frame. ``quantile``: which low quantile of each intensity bin's
    block variances is taken (lower: less texture mistaken for noise, a noisier estimate;
    accuracy in docs/benchmarks.md, ``benchmarks/noise_estimate.py``).

    Raises:
        InvalidInputError: too few usable (unclipped) blocks to fit.
    """
    arr = np.asarray(packed, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InvalidInputError(f"expected packed raw C x h x w, got shape {arr.shape}")
    means, variances = [], []
    for plane in arr:
        m, v = _block_stats(plane, 1e-4, 0.98)
        means.append(m)
        variances.append(v)
    m, v = np.concatenate(means), np.concatenate(variances)
    if m.size < min_blocks * 2:
        raise InvalidInputError(f"too few unclipped 8x8 blocks ({m.size}) to estimate the "
                                "noise; give it with --noise shot,read")
    bins = max(1, min(bins, m.size // min_blocks))  # a small frame: fewer, fuller bins
    edges = np.unique(np.quantile(m, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)
    xs, ys, ws = [], [], []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() < min_blocks:
            continue
        # a quantile the bin's block count can resolve (at least 3 blocks below it)
        q = round(max(float(quantile), 3.0 / sel.sum()), 3)
        xs.append(float(m[sel].mean()))
        ys.append(float(np.quantile(v[sel], q)) / _pure_noise_quantile(q))
        ws.append(float(np.sqrt(sel.sum())))
    if not xs:
        raise InvalidInputError("too few intensity levels to fit the noise; give it with "
                                "--noise shot,read")
    x, y, w = np.array(xs), np.array(ys), np.array(ws)
    w = w / np.maximum(y, 1e-12)  # relative errors: variances span decades
    levels = x.max() >= 1.5 * x.min()  # intensities far enough apart to fit a line
    shot = read = 0.0
    if levels:
        a = np.stack([x, np.ones_like(x)], 1) * w[:, None]
        shot, read = np.linalg.lstsq(a, y * w, rcond=None)[0]
    if not levels or read <= 0 < shot:
        # The bins do not tell the read noise (one level, or texture in the bright bins
        # steepening the line below a zero intercept): read 0 would leave the darks
        # undenoised, so read follows shot as in the noise the learned stage was trained on.
        shot = float((x * y * w * w).sum() / (x * x * w * w).sum())
        for _ in range(5):
            read = brooks_read(shot)
            shot = max(float((x * (y - read) * w * w).sum() / (x * x * w * w).sum()), 1e-12)
        read = brooks_read(shot)
    if shot <= 0:
        shot, read = 0.0, float((y * w * w).sum() / (w * w).sum())
    return NoiseProfile(float(shot), float(read), "estimated")


def brooks_read(shot: float) -> float:
    """The read-noise variance Brooks et al.'s relation gives for a shot-noise variance."""
    return float(np.exp(READ_SLOPE * np.log(shot) + READ_INTERCEPT))


def noise_profile_of(raw, user: tuple[float, float] | None = None,
                     estimate: bool = True) -> NoiseProfile:
    """The profile to develop ``raw`` (a :class:`~isplab.raw.RawImage`) with: ``user``,
    else the file's, else estimated from the raw (``estimate``), else zero (``none``)."""
    if user is not None:
        return NoiseProfile(float(user[0]), float(user[1]), "user")
    if raw.noise_profile is not None:
        return NoiseProfile(*raw.noise_profile, source="file")
    if estimate:
        return estimate_noise_profile(raw.packed()[0].numpy())
    return NoiseProfile(0.0, 0.0, "none")
