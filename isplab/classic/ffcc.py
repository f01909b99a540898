"""A learned illuminant estimator in the manner of FFCC (Barron & Tsai 2017, "Fast Fourier
Color Constancy"), made camera-agnostic by working relative to the gray-world estimate.

The image's pixels are turned into log-chroma histograms (``u = log(g / r)``,
``v = log(g / b)``), one per feature channel (the pixels, their local absolute deviation --
edges, as in the paper -- and the pixels weighted by brightness), on an ``n x n`` torus of bins
centred on the gray-world chroma. Each histogram is convolved (by FFT) with a learned filter,
the responses summed with a learned bias map, and a softmax over the bins gives a distribution
of the illuminant's chroma *relative to gray world*; its mean (soft-argmax) is the estimate.

FFCC's bias map is absolute (a prior over one camera's illuminants); here it is relative to
gray world, so the model learns how a scene's colour statistics mislead gray world rather than
where one camera's illuminants lie, and it carries over to cameras it was never trained on.

Inference is NumPy (no torch): :func:`features` then :func:`predict`. Training lives in
:mod:`isplab.train.ffcc` (torch; it uses :func:`features` so that both see the same input).
Weights: a safetensors file with ``filters`` (``C x n x n``), ``bias`` (``n x n``) and the
config in its metadata (:func:`load`, :func:`save`); the shipped file is
``isplab/weights/ffcc_awb.safetensors`` (:func:`default_model`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from isplab.classic.illuminant import (
    CLASSICAL,
    DARK,
    SATURATION,
    check_camera_rgb,
    normalise,
    reduce,
    usable_mask,
)
from isplab.errors import InvalidInputError

#: histogram channels: the pixels, their local absolute deviation (edges), the pixels weighted
#: by brightness^4, and one per classical estimator (its estimate splatted onto the bins)
CHANNELS = ("pixels", "edges", "bright", "gray_edge", "gray_edge2", "white_patch",
            "shades_of_gray")
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "ffcc_awb.safetensors"
_EPS = 1e-4


@dataclass(frozen=True)
class FFCCConfig:
    """The histogram layout: ``bins`` per axis of ``bin_size`` (log units), centred on gray
    world; ``channels`` from :data:`CHANNELS`; images reduced to ``work_pixels`` first."""

    bins: int = 32
    bin_size: float = 1.0 / 16.0
    channels: tuple[str, ...] = CHANNELS
    work_pixels: int = 65_536

    def __post_init__(self) -> None:
        if self.bins < 4 or self.bins % 2:
            raise InvalidInputError(f"bins must be even and >= 4, got {self.bins}")
        if not (0 < self.bin_size < 1):
            raise InvalidInputError(f"bin_size must be in (0, 1), got {self.bin_size}")
        bad = [c for c in self.channels if c not in CHANNELS]
        if bad or not self.channels:
            raise InvalidInputError(f"unknown FFCC channels {bad}; choose from {CHANNELS}")
        object.__setattr__(self, "channels", tuple(self.channels))

    def coords(self) -> np.ndarray:
        """The bin centres (log units, relative to gray world), ``n`` values."""
        return (np.arange(self.bins) - self.bins / 2 + 0.5) * self.bin_size


@dataclass
class FFCCModel:
    """Learned filters (``C x n x n``) and bias map (``n x n``) for a :class:`FFCCConfig`."""

    config: FFCCConfig
    filters: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        n, c = self.config.bins, len(self.config.channels)
        self.filters = np.asarray(self.filters, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64)
        if self.filters.shape != (c, n, n) or self.bias.shape != (n, n):
            raise InvalidInputError(
                f"FFCC weights do not fit the config: filters {self.filters.shape}, bias "
                f"{self.bias.shape}, expected ({c}, {n}, {n}) and ({n}, {n})")
        if not (np.all(np.isfinite(self.filters)) and np.all(np.isfinite(self.bias))):
            raise InvalidInputError("FFCC weights hold NaN or infinite values")

    def __call__(self, rgb) -> np.ndarray:
        return estimate(rgb, self)


# --------------------------------------------------------------------------- features


def _chroma(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.maximum(x.astype(np.float64), _EPS)
    return np.log(x[:, 1] / x[:, 0]), np.log(x[:, 1] / x[:, 2])


def _histogram(u: np.ndarray, v: np.ndarray, w: np.ndarray, cfg: FFCCConfig) -> np.ndarray:
    """Weighted histogram of ``(u, v)`` on the torus of bins (wrapped, as FFCC), sums to 1."""
    n = cfg.bins
    start = -n / 2 * cfg.bin_size
    i = np.floor((u - start) / cfg.bin_size).astype(np.int64) % n
    j = np.floor((v - start) / cfg.bin_size).astype(np.int64) % n
    h = np.bincount(i * n + j, weights=w, minlength=n * n).reshape(n, n)
    s = h.sum()
    return h / s if s > 0 else h


def _splat(u: float, v: float, cfg: FFCCConfig) -> np.ndarray:
    """A unit mass at ``(u, v)``, shared bilinearly between the 4 nearest bin centres (torus)."""
    n = cfg.bins
    fu, fv = u / cfg.bin_size + n / 2 - 0.5, v / cfg.bin_size + n / 2 - 0.5
    i, j = int(np.floor(fu)), int(np.floor(fv))
    a, b = fu - i, fv - j
    h = np.zeros((n, n))
    for di, wi in ((0, 1 - a), (1, a)):
        for dj, wj in ((0, 1 - b), (1, b)):
            h[(i + di) % n, (j + dj) % n] += wi * wj
    return h


def _edge_image(x: np.ndarray) -> np.ndarray:
    """Local absolute deviation: ``|x - mean_3x3(x)|`` per channel (FFCC's edge channel)."""
    import cv2

    return np.abs(x - cv2.blur(x, (3, 3), borderType=cv2.BORDER_REFLECT))


def features(rgb, config: FFCCConfig | None = None, saturation: float = SATURATION,
             dark: float = DARK) -> tuple[np.ndarray, np.ndarray]:
    """The model's input: ``C x n x n`` histograms and the gray-world chroma ``(u0, v0)``.

    Args:
        rgb: linear camera RGB ``H x W x 3`` in [0, 1] (clipped at 1, black level removed).
        config: the histogram layout (default :class:`FFCCConfig`).
    """
    from isplab.classic.illuminant import edge_mask

    cfg = config or FFCCConfig()
    a = check_camera_rgb(rgb)
    mask = usable_mask(a, saturation, dark)
    if not mask.any():
        mask = np.ones(mask.shape, dtype=bool)
    x, m = reduce(a, mask, cfg.work_pixels)
    px = x[m].astype(np.float64)
    mean = px.mean(axis=0) if len(px) else np.ones(3)
    mean = np.maximum(mean, _EPS)
    center = np.array([np.log(mean[1] / mean[0]), np.log(mean[1] / mean[2])])
    hists = []
    for name in cfg.channels:
        if name in CLASSICAL:
            e = CLASSICAL[name](a, saturation=saturation, dark=dark)
            hists.append(_splat(np.log(1 / e[0]) - center[0], np.log(1 / e[2]) - center[1], cfg))
            continue
        if name == "pixels":
            vals, w = px, np.ones(len(px))
        elif name == "bright":
            lum = px.sum(axis=1)
            top = np.percentile(lum, 99) if len(lum) else 1.0
            vals, w = px, (lum / max(top, _EPS)) ** 4
        else:
            e = _edge_image(x)[edge_mask(m, 1)].astype(np.float64)
            vals = e[e.min(axis=1) > _EPS] if len(e) else e
            w = np.ones(len(vals))
        if len(vals) == 0:
            hists.append(np.zeros((cfg.bins, cfg.bins)))
            continue
        u, v = _chroma(vals)
        hists.append(_histogram(u - center[0], v - center[1], w, cfg))
    return np.stack(hists).astype(np.float32), center


# --------------------------------------------------------------------------- inference


def _softmax(p: np.ndarray) -> np.ndarray:
    e = np.exp(p - p.max())
    return e / e.sum()


def posterior(hists: np.ndarray, model: FFCCModel) -> np.ndarray:
    """``n x n`` probabilities of the illuminant's chroma offset from gray world."""
    n = model.config.bins
    spec = (np.fft.rfft2(hists.astype(np.float64)) * np.fft.rfft2(model.filters)).sum(axis=0)
    return _softmax(np.fft.irfft2(spec, s=(n, n)) + model.bias)


def offset_to_illuminant(center: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Illuminant ``(r, 1, b)`` from the gray-world chroma and the predicted offset."""
    u, v = center + offset
    return normalise([np.exp(-u), 1.0, np.exp(-v)])


def estimate(rgb, model: FFCCModel) -> np.ndarray:
    """The illuminant ``(r, 1, b)`` of linear camera RGB ``H x W x 3`` (:func:`features`,
    :func:`posterior`, soft-argmax)."""
    hists, center = features(rgb, model.config)
    if not hists.any():
        return offset_to_illuminant(center, np.zeros(2))
    p = posterior(hists, model)
    c = model.config.coords()
    offset = np.array([(p.sum(axis=1) * c).sum(), (p.sum(axis=0) * c).sum()])
    return offset_to_illuminant(center, offset)


# --------------------------------------------------------------------------- weights


def save(path: str | Path, model: FFCCModel, record: dict | None = None) -> Path:
    """Write ``model`` as safetensors (the config and ``record`` in its metadata)."""
    from safetensors.numpy import save_file

    meta = {"format": "isplab-ffcc-1", "config": json.dumps(asdict(model.config))}
    if record:
        meta["record"] = json.dumps(record)
    save_file({"filters": model.filters.astype(np.float32),
               "bias": model.bias.astype(np.float32)}, str(path), metadata=meta)
    return Path(path)


def load(path: str | Path) -> FFCCModel:
    """Read an :class:`FFCCModel` written by :func:`save` (plain tensors: nothing executes)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("no such FFCC weights file", p)
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        cfg = json.loads(meta["config"])
        cfg["channels"] = tuple(cfg["channels"])
        return FFCCModel(FFCCConfig(**cfg), tensors["filters"], tensors["bias"])
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"not FFCC weights ({type(exc).__name__}: {exc})", p) from exc


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> FFCCModel:
    return load(path)


def default_model(path: str | Path | None = None) -> FFCCModel:
    """The shipped model (``isplab/weights/ffcc_awb.safetensors``) or ``path``, cached."""
    p = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not p.is_file():
        raise InvalidInputError("FFCC weights not found (train them: python "
                                "benchmarks/train_awb.py)", p)
    return _cached(str(p), p.stat().st_mtime)
