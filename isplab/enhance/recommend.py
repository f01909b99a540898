"""Reference recommendation (MPSE phase 3): rank candidate style references by how close
their content/look is to the input photo.

Two feature sets:

- ``vgg`` (when VGG-19 ImageNet weights are available): for relu1_1..relu5_1, the channel
  means and channel standard deviations (the diagonal of the centred Gram matrix) of the
  image at :data:`FEATURE_SIDE` px, each layer's vector L2-normalised; distance = Euclidean
  norm of the difference over the concatenation.
- ``stats`` (no weights needed): CIELAB histograms (L* 32 bins over [0, 100], a*, b* 32 bins
  over [-100, 100]) and a gradient-magnitude histogram of L*/100 (16 bins over [0, 0.5]),
  each normalised to sum 1; distance = sum of the four chi-square distances.

``method="auto"`` uses ``vgg`` when the weights are found, else ``stats``; the result says
which one was used and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError, IsplabError
from isplab.formats import IMAGE_SUFFIXES

FEATURE_SIDE = 256
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class Recommendation:
    """``ranking``: (candidate path, distance), closest first; ``method``: ``vgg`` or
    ``stats``; ``message``: which features were used and why; ``skipped``: (path, reason)
    for candidates that could not be read."""

    ranking: list[tuple[Path, float]]
    method: str
    message: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def best(self) -> Path:
        return self.ranking[0][0]


def _resize_max(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = side / max(h, w)
    if s >= 1:
        return x
    return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")


def stats_features(srgb: torch.Tensor) -> list[np.ndarray]:
    """Colour/texture statistics of a ``1 x 3 x H x W`` sRGB image: normalised histograms
    of L*, a*, b* (32 bins each) and of the L*/100 gradient magnitude (16 bins)."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(_resize_max(srgb, FEATURE_SIDE).clamp(0, 1))[0].double()
    feats = []
    for ch, (lo, hi) in zip(lab, ((0, 100), (-100, 100), (-100, 100)), strict=True):
        feats.append(torch.histc(ch.clamp(lo, hi), bins=32, min=lo, max=hi))
    lum = lab[0] / 100.0
    gy = lum[1:, :-1] - lum[:-1, :-1]
    gx = lum[:-1, 1:] - lum[:-1, :-1]
    grad = torch.sqrt(gx ** 2 + gy ** 2).clamp(0, 0.5)
    feats.append(torch.histc(grad, bins=16, min=0.0, max=0.5))
    return [(f / f.sum().clamp_min(1e-12)).numpy() for f in feats]


def stats_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Sum over the histograms of the chi-square distance ``0.5 sum (p - q)^2 / (p + q)``."""
    total = 0.0
    for p, q in zip(a, b, strict=True):
        s = p + q
        nz = s > 0
        total += 0.5 * float(((p[nz] - q[nz]) ** 2 / s[nz]).sum())
    return total


def vgg_features(srgb: torch.Tensor, backbone) -> np.ndarray:
    """Concatenated, per-layer L2-normalised channel means and stds of VGG-19 features."""
    with torch.no_grad():
        feats = backbone(_resize_max(srgb, FEATURE_SIDE).to(next(backbone.parameters())),
                         VGG_LAYERS)
    parts = []
    for name in VGG_LAYERS:
        f = feats[name][0].flatten(1).double()
        v = torch.cat([f.mean(1), f.std(1, unbiased=False)])
        parts.append((v / v.norm().clamp_min(1e-12)).cpu().numpy())
    return np.concatenate(parts)


def list_candidates(folder: str | Path) -> list[Path]:
    """Image files (png, jpg, tif, bmp) in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError("not a folder of reference images", folder)
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidInputError("folder holds no png/jpg/tif reference images", folder)
    return files


def recommend_references(image: torch.Tensor, candidates: str | Path | list[Path],
                         method: str = "auto", vgg=None, exclude: Path | None = None
                         ) -> Recommendation:
    """Rank candidate references by feature distance to ``image``.

    Args:
        image: ``1 x 3 x H x W`` sRGB in [0, 1].
        candidates: a folder of images or a list of image paths.
        method: ``auto`` | ``vgg`` | ``stats`` (``vgg`` without weights raises the backbone's
            error naming the file).
        vgg: a VGG-19 Backbone or the weights path (``auto``/``vgg``).
        exclude: a file never recommended (the input itself when it lies in the folder).
    """
    from isplab.io import read_image

    if method not in ("auto", "vgg", "stats"):
        raise InvalidInputError(f"method must be auto, vgg or stats, got {method!r}")
    files = list_candidates(candidates) if isinstance(candidates, (str, Path)) \
        else [Path(c) for c in candidates]
    if exclude is not None:
        files = [f for f in files if f.resolve() != Path(exclude).resolve()]
    if not files:
        raise InvalidInputError("no candidate references to rank")
    backbone = None
    if method in ("auto", "vgg"):
        from isplab.backbones import Backbone, find_weights, load_backbone

        if isinstance(vgg, Backbone):
            backbone = vgg
        elif method == "vgg" or vgg is not None or find_weights("vgg19") is not None:
            backbone = load_backbone("vgg19", weights=vgg)
    if backbone is not None:
        used = "vgg"
        message = "ranked by VGG-19 feature statistics (channel means/stds relu1_1..relu5_1)"
        feat, dist = (lambda x: vgg_features(x, backbone)), \
            (lambda a, b: float(np.linalg.norm(a - b)))
    else:
        used = "stats"
        message = ("VGG-19 weights (vgg19-dcbb9e9d.pth) not found: ranked by colour/texture "
                   "statistics (Lab + gradient-magnitude histograms)")
        feat, dist = stats_features, stats_distance
    target = feat(image)
    ranking, skipped = [], []
    for f in files:
        try:
            ranking.append((f, dist(target, feat(read_image(f)))))
        except IsplabError as exc:
            skipped.append((f, exc.reason))
    if not ranking:
        raise InvalidInputError("none of the candidate references could be read: " +
                                "; ".join(f"{p.name}: {r}" for p, r in skipped))
    ranking.sort(key=lambda t: (t[1], str(t[0])))
    return Recommendation(ranking, used, message, skipped)
