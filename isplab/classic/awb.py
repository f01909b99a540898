"""Auto white balance: every illuminant estimator by name, in one registry.

:data:`ESTIMATORS` maps a name to a function ``linear camera RGB H x W x 3 -> (r, 1, b)``
(the scene illuminant; white-balance gains are its inverse). The classical family lives in
:mod:`isplab.classic.illuminant`, the learned one in :mod:`isplab.classic.ffcc`.
:data:`AUTO` is the one ``--wb auto`` uses: the best measured on real data
(docs/benchmarks.md, "Auto white balance").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isplab.classic import illuminant as _cc
from isplab.classic.illuminant import check_camera_rgb
from isplab.errors import InvalidInputError
from isplab.registry import Registry

ESTIMATORS: Registry = Registry("illuminant estimator")

#: what ``--wb auto`` means (the estimator with the lowest mean angular error measured)
AUTO = "gray_edge"


def _register(name: str, fn, description: str, kind: str = "classical") -> None:
    ESTIMATORS.add(name, fn, description=description, kind=kind)


_DESCRIPTIONS = {
    "gray_world": "mean colour is grey (Buchsbaum 1980)",
    "white_patch": "99th percentile of each channel is white (max-RGB, clipped pixels ignored)",
    "shades_of_gray": "Minkowski p = 4 mean is grey (Finlayson & Trezzi 2004)",
    "gray_edge": "1st-order gray edge, p = 1, sigma = 6 (van de Weijer et al. 2007)",
    "gray_edge2": "2nd-order gray edge, p = 1, sigma = 1 (van de Weijer et al. 2007)",
}
for _name, _fn in _cc.CLASSICAL.items():
    _register(_name, _fn, _DESCRIPTIONS[_name])


def _ffcc(rgb, weights: str | Path | None = None) -> np.ndarray:
    from isplab.classic.ffcc import default_model, estimate

    return estimate(rgb, default_model(weights))


_register("ffcc", _ffcc, "learned log-chroma histogram filter relative to gray world "
          "(FFCC-style, Barron & Tsai 2017; isplab/weights/ffcc_awb.safetensors)",
          kind="learned")


def names() -> list[str]:
    """The registered estimator names."""
    return ESTIMATORS.names()


def resolve(name: str) -> str:
    """A user's name (``auto``, hyphens or underscores, grey/gray) -> a registered name."""
    n = name.strip().lower().replace("-", "_").replace("grey", "gray")
    n = AUTO if n == "auto" else n
    ESTIMATORS.get(n)  # unknown names: one error listing the choices
    return n


def estimate(name: str, rgb, weights: str | Path | None = None) -> np.ndarray:
    """The illuminant ``(r, 1, b)`` of linear camera RGB ``H x W x 3`` by estimator ``name``
    (``weights``: a learned estimator's weights file instead of the shipped one)."""
    entry = ESTIMATORS.entry(resolve(name))
    if entry.meta.get("kind") == "learned":
        return _cc.normalise(entry.obj(rgb, weights=weights))
    return _cc.normalise(entry.obj(rgb))


def gains(name: str, rgb, weights: str | Path | None = None) -> np.ndarray:
    """White-balance gains ``(R, G, B)``, ``G = 1``: the inverse of :func:`estimate`."""
    return 1.0 / estimate(name, rgb, weights)


# --------------------------------------------------------------------------- files

#: LibRaw's ``adjust_maximum_thr``: data whose maximum lies above this fraction of the white
#: level is rescaled so that its maximum is 1 (a sensor clipping below its stated level)
ADJUST_MAXIMUM = 0.75
_RGB_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def bayer_means(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """Half-resolution camera RGB of a normalised mosaic, demosaic-free: each 2x2 block's R,
    mean of its two greens, and B (``H/2 x W/2 x 3``)."""
    from isplab.raw.cfa import packed_offsets

    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    r, g1, g2, b = (mosaic[dy:h:2, dx:w:2] for dy, dx in packed_offsets(cfa))
    return np.stack([r, (g1 + g2) * 0.5, b], axis=2).astype(np.float32)


def _adjust_maximum(rgb: np.ndarray) -> np.ndarray:
    top = float(rgb.max()) if rgb.size else 0.0
    return rgb / top if top > ADJUST_MAXIMUM and top != 1.0 else rgb


def _read_rgb_array(path: Path) -> np.ndarray | None:
    """An ``H x W x 3`` linear camera-RGB image file as [0, 1] floats, or None when the file
    is another kind (a mosaic or packed raw: the raw reader's business)."""
    import cv2

    suffix = path.suffix.lower()
    if suffix == ".npy":
        a = np.load(path, mmap_mode="r", allow_pickle=False)
        if a.ndim != 3 or a.shape[2] != 3:
            return None
        a = np.asarray(a)
        if a.dtype.kind == "u":
            return a.astype(np.float32) / np.iinfo(a.dtype).max
        return a.astype(np.float32)
    if suffix in (".tif", ".tiff"):
        import tifffile

        a = tifffile.imread(path)
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if a is None:
            raise InvalidInputError("not a readable image", path)
        if a.ndim == 3 and a.shape[2] >= 3:
            a = a[..., 2::-1]
    if a.ndim != 3 or a.shape[2] not in (3, 4) or (suffix == ".png" and a.shape[2] == 4):
        return None
    a = np.ascontiguousarray(a[..., :3])
    if a.dtype.kind == "u":
        return a.astype(np.float32) / np.iinfo(a.dtype).max
    if a.dtype.kind == "f":
        return a.astype(np.float32)
    raise InvalidInputError(f"unsupported image dtype {a.dtype}", path)


def read_camera_rgb(path: str | Path, **reader) -> tuple[np.ndarray, str]:
    """Linear camera RGB ``H x W x 3`` in [0, 1] of a file, and what it was.

    - ``H x W x 3`` images (16-bit PNG/TIFF scaled by their type's maximum, float ``.npy``
      taken as is): linear camera RGB, black level already removed (INTEL-TAU layout);
    - raws (everything :func:`isplab.raw.read` reads, with ``reader`` overrides): levels
      applied, each 2x2 Bayer block's R, mean G, B (:func:`bayer_means`).

    Data whose maximum is above 0.75 is rescaled to a maximum of 1 (:data:`ADJUST_MAXIMUM`),
    so that pixels at the sensor's real clipping point count as clipped.
    """
    from isplab import raw as rawio

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("no such file" if not p.exists() else "not a regular file", p)
    rgb = None
    if p.suffix.lower() in (*_RGB_IMAGE_SUFFIXES, ".npy"):
        try:
            rgb = _read_rgb_array(p)
        except InvalidInputError:
            raise
        except Exception as exc:  # noqa: BLE001  (a corrupt file is one line, not a crash)
            raise InvalidInputError(f"unreadable ({type(exc).__name__}: {exc})", p) from exc
    kind = "camera RGB image"
    if rgb is None:
        raw = rawio.read(p, **reader)
        rgb, kind = bayer_means(raw.mosaic, raw.cfa), f"raw {raw.cfa} (Bayer block means)"
    try:
        rgb = check_camera_rgb(rgb, "image")
    except InvalidInputError as exc:
        raise InvalidInputError(exc.reason, p) from None
    return _adjust_maximum(rgb), kind


def find_truth(path: str | Path) -> np.ndarray | None:
    """The ground-truth illuminant stored beside an image, ``(r, 1, b)``, or None: INTEL-TAU /
    C5's ``<stem>_metadata.json`` (``illuminant_color_raw``) or ``<stem>.json``
    (``illuminant_color_raw`` or ``illuminant``)."""
    import json

    p = Path(path)
    for cand in (p.with_name(p.stem + "_metadata.json"), p.with_suffix(".json")):
        if not cand.is_file():
            continue
        try:
            d = json.loads(cand.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"ground truth is not JSON ({exc})", cand) from None
        v = d.get("illuminant_color_raw", d.get("illuminant")) if isinstance(d, dict) else None
        a = np.asarray(v, dtype=np.float64).reshape(-1) if v is not None else np.zeros(0)
        if a.size != 3 or not np.all(np.isfinite(a)) or np.any(a < 0) or a[1] <= 0:
            raise InvalidInputError("ground truth needs 3 non-negative values with g > 0 "
                                    "(illuminant_color_raw)", cand)
        return a / a[1]
    return None
