"""Semantic regions for style transfer: offline co-segmentation or user colour masks.

Offline co-segmentation (no network, no trained model): both images are cut into SLIC
superpixels (scikit-image, ~300 each); each superpixel gets a feature vector (mean CIELAB
relative to its image's mean, std of L*, normalised row of its centroid, whether it touches
the top border); ONE k-means runs over the superpixels of both images together, so cluster
``k`` means the same kind of region in the content and in the reference. Clusters present in
only one of the images are merged into their nearest cluster (a region must exist on both
sides to transfer its style).
Names come from heuristics (sky: bright, smooth, at the top; water: smooth, low, not warm;
building: the most textured middle region; else ``other``). ``K = 1`` gives one global region.

User masks: colour-coded images in the 9-colour palette of Deep Photo Style Transfer (blue,
green, black, white, red, yellow, grey, lightblue, purple); every pixel takes the nearest
palette colour (robust to JPEG/antialiasing); colours present in both masks become regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError

#: Deep Photo Style Transfer's mask palette (name -> sRGB 0..255).
PALETTE: dict[str, tuple[int, int, int]] = {
    "blue": (0, 0, 255), "green": (0, 255, 0), "black": (0, 0, 0),
    "white": (255, 255, 255), "red": (255, 0, 0), "yellow": (255, 255, 0),
    "grey": (128, 128, 128), "lightblue": (0, 255, 255), "purple": (255, 0, 255),
}
#: Feature scaling: (L*, a*, b*, std L*) divisors, then row and touches-top weights.
FEATURE_SCALE = (100.0, 60.0, 60.0, 20.0)
ROW_WEIGHT = 1.0
TOP_WEIGHT = 0.5


@dataclass
class Segmentation:
    """Regions that correspond between a content and a reference image.

    ``content_masks``: ``1 x R x H x W`` float {0, 1} (a partition of the content image),
    ``reference_masks``: ``1 x R x H' x W'``, ``names``: R region names, ``method``:
    ``"slic-kmeans"``, ``"user"`` or ``"global"``.
    """

    content_masks: torch.Tensor
    reference_masks: torch.Tensor
    names: list[str]
    method: str
    info: dict = field(default_factory=dict)

    @property
    def regions(self) -> int:
        return len(self.names)


def _image_hwc(image: torch.Tensor, name: str) -> np.ndarray:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 3):
        raise InvalidInputError(f"{name} must be a 1 x 3 x H x W tensor, got "
                                f"{getattr(image, 'shape', type(image).__name__)}")
    if not torch.isfinite(image).all():
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return image[0].detach().cpu().clamp(0, 1).permute(1, 2, 0).double().numpy()


def global_segmentation(content: torch.Tensor, reference: torch.Tensor) -> Segmentation:
    """One region covering each whole image (global style transfer)."""
    return Segmentation(torch.ones_like(content[:, :1]), torch.ones_like(reference[:, :1]),
                        ["global"], "global")


# --------------------------------------------------------------------------- k-means


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100,
           sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted k-means (Lloyd, k-means++ seeding), deterministic for a seed.

    Args:
        x: ``M x D`` points. k: clusters (``<= M``). n_init: restarts, the lowest weighted
            inertia wins. sample_weight: ``M`` non-negative weights (default 1).

    Returns:
        ``(labels M, centers k x D, inertia)``.
    """
    x = np.asarray(x, dtype=np.float64)
    m = x.shape[0]
    if not 1 <= k <= m:
        raise InvalidInputError(f"k-means needs 1 <= k <= {m} points, got k={k}")
    wts = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(max(1, n_init)):
        centers = [x[rng.choice(m, p=wts / wts.sum())]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
            p = d2 * wts
            centers.append(x[rng.choice(m, p=p / p.sum())] if p.sum() > 0 else x[rng.integers(m)])
        c = np.asarray(centers)
        labels = np.zeros(m, dtype=np.int64)
        for it in range(max_iter):
            d2 = ((x[:, None] - c[None]) ** 2).sum(-1)
            new = d2.argmin(1)
            if it > 0 and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                sel = labels == j
                if sel.any():
                    c[j] = np.average(x[sel], axis=0, weights=wts[sel])
        inertia = float((wts * ((x - c[labels]) ** 2).sum(-1)).sum())
        if best is None or inertia < best[2] - 1e-12:
            best = (labels.copy(), c.copy(), inertia)
    return best


# --------------------------------------------------------------------------- features


def superpixel_features(image_hwc: np.ndarray, n_segments: int = 300, compactness: float = 10.0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SLIC superpixels of an sRGB ``H x W x 3`` image in [0, 1] and their features.

    Returns ``(segments H x W int, features S x 6, pixel counts S, raw stats S x 6)`` with
    raw stats = (mean L*, mean a*, mean b*, std L*, row in [0, 1], touches top 0/1) and
    features = raw stats with the Lab means taken relative to the image's mean Lab, scaled by
    :data:`FEATURE_SCALE`, :data:`ROW_WEIGHT`, :data:`TOP_WEIGHT`.
    """
    from skimage.color import rgb2lab
    from skimage.segmentation import slic

    h, w, _ = image_hwc.shape
    seg = slic(image_hwc, n_segments=n_segments, compactness=compactness, start_label=0,
               channel_axis=-1)
    _, seg = np.unique(seg, return_inverse=True)
    seg = seg.reshape(h, w)
    s = int(seg.max()) + 1
    lab = rgb2lab(image_hwc).reshape(-1, 3)
    flat = seg.ravel()
    count = np.bincount(flat, minlength=s).astype(np.float64)
    mean = np.stack([np.bincount(flat, lab[:, i], s) for i in range(3)], 1) / count[:, None]
    var_l = np.bincount(flat, lab[:, 0] ** 2, s) / count - mean[:, 0] ** 2
    rows = np.repeat(np.arange(h, dtype=np.float64), w)
    row = np.bincount(flat, rows, s) / count / max(h - 1, 1)
    top = np.zeros(s)
    top[np.unique(seg[0])] = 1.0
    raw = np.column_stack([mean, np.sqrt(np.maximum(var_l, 0)), row, top])
    # colour relative to the image's own mean: a reference with another colour cast (what
    # style transfer changes) still pairs its sky with the content's sky
    centred = mean - lab.mean(axis=0)
    feats = np.column_stack([centred[:, 0] / FEATURE_SCALE[0], centred[:, 1] / FEATURE_SCALE[1],
                             centred[:, 2] / FEATURE_SCALE[2], raw[:, 3] / FEATURE_SCALE[3],
                             ROW_WEIGHT * row, TOP_WEIGHT * top])
    return seg, feats, count, raw


def name_regions(stats: np.ndarray) -> list[str]:
    """Heuristic names from per-region pixel-weighted stats ``R x 6`` (mean L*, a*, b*,
    std L*, row in [0, 1] (0 = top), share of the region's pixels in superpixels touching
    the top border): ``sky``, ``water``, ``building``, ``other`` (numbered when repeated)."""
    r = stats.shape[0]
    if r == 1:
        return ["global"]
    names: list[str | None] = [None] * r
    lum, bb, tex, row, top = stats[:, 0], stats[:, 2], stats[:, 3], stats[:, 4], stats[:, 5]
    sky_ok = (row < 0.45) & (top > 0.2) & (lum > 35)
    if sky_ok.any():
        score = np.where(sky_ok, top + (1 - row) + lum / 100 - tex / 20, -np.inf)
        names[int(score.argmax())] = "sky"
    free = [i for i in range(r) if names[i] is None]
    water = [i for i in free if row[i] > 0.55 and bb[i] < 10 and tex[i] <= np.median(tex)]
    if water:
        names[max(water, key=lambda i: row[i])] = "water"
    free = [i for i in range(r) if names[i] is None]
    building = [i for i in free if 0.15 < row[i] < 0.85]
    if building and len(free) > 1:
        names[max(building, key=lambda i: tex[i])] = "building"
    n_other = 0
    for i in range(r):
        if names[i] is None:
            n_other += 1
            names[i] = "other" if n_other == 1 else f"other_{n_other}"
    return names  # type: ignore[return-value]


def co_segment(content: torch.Tensor, reference: torch.Tensor, k: int = 3,
               n_segments: int = 300, seed: int = 0, min_area: float = 0.02,
               compactness: float = 10.0) -> Segmentation:
    """Unsupervised co-segmentation of a content and a reference image (see module doc).

    Args:
        content, reference: ``1 x 3 x H x W`` sRGB in [0, 1] (sizes may differ).
        k: k-means clusters (1 = one global region).
        n_segments: approximate SLIC superpixels per image.
        seed: k-means seed (same inputs + seed -> same masks).
        min_area: a cluster covering less than this fraction of either image is merged into
            its nearest cluster (its style could not be transferred).

    Returns:
        :class:`Segmentation` with full-resolution masks; regions sorted by their mean row
        (top first).
    """
    if not (isinstance(k, int) and k >= 1):
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
    a, b = _image_hwc(content, "content"), _image_hwc(reference, "reference")
    if k == 1:
        return global_segmentation(content, reference)
    seg_a, fa, na, ra = superpixel_features(a, n_segments, compactness)
    seg_b, fb, nb, rb = superpixel_features(b, n_segments, compactness)
    feats = np.vstack([fa, fb])
    # each image contributes equally, whatever its pixel count
    weights = np.concatenate([na / na.sum(), nb / nb.sum()])
    k_eff = min(k, feats.shape[0])
    labels, centers, _ = kmeans(feats, k_eff, seed=seed, sample_weight=weights)
    alive = list(range(k_eff))
    while len(alive) > 1:
        la, lb = labels[: len(fa)], labels[len(fa):]
        area_a = np.array([na[la == j].sum() for j in alive]) / na.sum()
        area_b = np.array([nb[lb == j].sum() for j in alive]) / nb.sum()
        worst = int(np.argmin(np.minimum(area_a, area_b)))
        if min(area_a[worst], area_b[worst]) >= min_area:
            break
        gone = alive.pop(worst)
        sel = labels == gone
        d2 = ((feats[sel][:, None] - centers[alive][None]) ** 2).sum(-1)
        labels[sel] = np.asarray(alive)[d2.argmin(1)]
    raw = np.vstack([ra, rb])
    stats = np.stack([np.average(raw[labels == j], axis=0, weights=weights[labels == j])
                      for j in alive])
    order = np.argsort(stats[:, 4], kind="stable")
    alive = [alive[i] for i in order]
    stats = stats[order]
    remap = {old: new for new, old in enumerate(alive)}
    lab_a = np.vectorize(remap.get)(labels[: len(fa)])
    lab_b = np.vectorize(remap.get)(labels[len(fa):])
    names = name_regions(stats)
    r = len(alive)
    masks_a = _one_hot(lab_a[seg_a], r).to(content.dtype)
    masks_b = _one_hot(lab_b[seg_b], r).to(reference.dtype)
    return Segmentation(masks_a.to(content.device), masks_b.to(reference.device), names,
                        "slic-kmeans" if r > 1 else "global",
                        {"k": k, "regions": r, "superpixels": (len(fa), len(fb)),
                         "stats": stats.round(3).tolist()})


def _one_hot(labels_hw: np.ndarray, r: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(labels_hw, dtype=np.int64))
    return F.one_hot(t, r).permute(2, 0, 1)[None].float()


# --------------------------------------------------------------------------- user masks


def read_palette_mask(path: str | Path, size: tuple[int, int] | None = None
                      ) -> torch.Tensor:
    """Read a colour-coded mask image -> ``1 x 9 x H x W`` one-hot over :data:`PALETTE`.

    Each pixel takes the nearest palette colour (Euclidean in sRGB). ``size = (H, W)``
    resizes the label map (nearest) to the image it belongs to.
    """
    from isplab.io import read_image

    img = read_image(path)  # raises IsplabError naming the file
    pal = torch.tensor(list(PALETTE.values()), dtype=torch.float32) / 255.0  # 9 x 3
    d2 = ((img[0].permute(1, 2, 0)[..., None, :] - pal) ** 2).sum(-1)     # H x W x 9
    labels = d2.argmin(-1)
    if size is not None and tuple(labels.shape) != tuple(size):
        labels = F.interpolate(labels[None, None].float(), size=size,
                               mode="nearest")[0, 0].long()
    return F.one_hot(labels, len(PALETTE)).permute(2, 0, 1)[None].float()


def palette_segmentation(content_mask: str | Path, reference_mask: str | Path,
                         content: torch.Tensor, reference: torch.Tensor,
                         min_pixels: int = 1) -> Segmentation:
    """Regions from two user masks (DPST palette): the colours used in both masks.

    Masks are resized (nearest) to their image's size. Raises InvalidInputError (naming the
    files) when the two masks share no colour.
    """
    _image_hwc(content, "content")
    _image_hwc(reference, "reference")
    mc = read_palette_mask(content_mask, tuple(content.shape[-2:]))
    mr = read_palette_mask(reference_mask, tuple(reference.shape[-2:]))
    keep = [i for i in range(len(PALETTE))
            if mc[0, i].sum() >= min_pixels and mr[0, i].sum() >= min_pixels]
    if not keep:
        raise InvalidInputError(f"the masks share no palette colour (reference mask "
                                f"{reference_mask})", content_mask)
    names = [list(PALETTE)[i] for i in keep]
    cm, rm = mc[:, keep], mr[:, keep]
    # pixels of colours missing on the other side join the largest shared region
    for m in (cm, rm):
        orphan = m.sum(1, keepdim=True) == 0
        if orphan.any():
            big = int(m.sum((0, 2, 3)).argmax())
            m[:, big : big + 1][orphan] = 1.0
    return Segmentation(cm.to(content), rm.to(reference), names, "user" if len(keep) > 1
                        else "global", {"content_mask": str(content_mask),
                                        "reference_mask": str(reference_mask)})
