"""Camera profiles (``isplab calibrate`` writes them, ``isplab develop --profile`` reads
them): JSON files holding a chart fit, plus the patch CSV files and the chart picture.

A profile says how to turn a raw's camera RGB into linear sRGB::

    linear_srgb = T(gains * (camera_rgb - black_offset))

with ``T`` a 3x3 matrix (``kind: matrix``) or root-polynomial coefficients
(``kind: root-polynomial-2|3``, 3 x 6 or 3 x 13, the terms of
:func:`isplab.classic.calibration.root_polynomial_terms`). Rows of ``T`` sum to 1.
When the fit used the chart's flat field (``flat_field.applied``), ``camera_rgb`` is first
divided by its gain; develop does that for the calibrated frame itself only (the shading
includes the chart's lighting, which other shots do not share).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isplab.classic import calibration as cal
from isplab.errors import InvalidInputError

log = logging.getLogger(__name__)

FORMAT = "isplab-camera-profile"
VERSION = 1


@dataclass
class Profile:
    """What develop needs from a profile file."""

    kind: str
    gains: tuple[float, float, float]
    coefficients: np.ndarray  # 3 x T
    black_offset: tuple[float, float, float]
    camera: tuple[str, str] | None  # make, model
    path: Path | None = None
    flat_field: object = None  # isplab.classic.flatfield.FlatField the fit divided by
    source_sha256: str | None = None  # of the calibrated file (where the flat field holds)

    def color_transform(self):
        """The ``color_matrix`` for :class:`~isplab.classic.ClassicISP`: the 3x3 matrix, or
        a :class:`~isplab.classic.color.RootPolynomial` transform."""
        if self.kind == "matrix":
            return self.coefficients.copy()
        from isplab.classic.color import RootPolynomial

        return RootPolynomial(self.coefficients, cal.kind_degree(self.kind))

    def isp_options(self) -> dict:
        """ClassicISP keyword arguments: the profile's white balance and colour transform."""
        return dict(user_wb=self.gains, color_matrix=self.color_transform())

    def apply_levels(self, raw):
        """``raw`` with the profile's black offset subtracted from each CFA site (the same
        RawImage when the offset is zero and there is no flat field to apply). For the
        calibrated frame itself, the flat field the fit assumed is applied first, scaled by
        its smallest gain so that nothing exceeds 1:
        ``k * (mosaic / gain - offset)``, ``k = min(gain)`` (the transform is linear in
        exposure, so ``k`` only darkens the frame)."""
        off = np.asarray(self.black_offset, dtype=np.float32)
        gain = self._flat_gain(raw)
        if not np.any(off) and gain is None:
            return raw
        from isplab.raw.cfa import packed_offsets

        mosaic = raw.mosaic.copy()
        if gain is not None:
            k = float(gain.min())
            mosaic *= k / gain
            off = off * np.float32(k)
        for (dy, dx), c in zip(packed_offsets(raw.cfa), (0, 1, 1, 2), strict=True):
            mosaic[dy::2, dx::2] -= off[c]
        np.clip(mosaic, 0.0, 1.0, out=mosaic)
        raw.mosaic = mosaic
        return raw

    def _flat_gain(self, raw) -> np.ndarray | None:
        """The flat field's ``H x W`` gain when ``raw`` is the calibrated frame, else None."""
        ff = self.flat_field
        if ff is None:
            return None
        if raw.path is None or raw.mosaic.shape != (ff.height, ff.width) \
                or sha256(Path(raw.path)) != self.source_sha256:
            log.info("the profile's flat field is the calibrated frame's: not applied to %s",
                     raw.path)
            return None
        log.info("applying the chart's flat field to %s", raw.path)
        return ff.frame_gain()

    def camera_warning(self, raw_path: Path) -> str | None:
        """A warning naming both cameras when ``raw_path`` was shot by another camera than
        the profile's (None when they match or either is unknown)."""
        if self.camera is None:
            return None
        other = camera_identity(raw_path)
        if other is None or _same_camera(other, self.camera):
            return None
        name = self.path.name if self.path is not None else "the profile"
        return (f"{raw_path.name} is from {' '.join(other)} but {name} was made for "
                f"{' '.join(self.camera)}: its colours may be wrong")


def _same_camera(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return [s.strip().lower() for s in a] == [s.strip().lower() for s in b]


def camera_identity(path: Path) -> tuple[str, str] | None:
    """(make, model) from a TIFF-based raw's header (DNG, NEF, CR2, ARW...), or None."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            make, model = tags.get(271), tags.get(272)
            if make is None or model is None:
                return None
            return str(make.value).strip("\x00 "), str(model.value).strip("\x00 ")
    except Exception:  # not a TIFF: a headerless frame, a PNG mosaic...
        return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------- profile JSON


def profile_dict(fit: cal.Fit, camera_rgb: np.ndarray, *, source: dict,
                 camera: tuple[str, str] | None, chart: dict | None = None,
                 alternatives: dict | None = None) -> dict:
    """The JSON document of a fit (see docs/calibration.md for the fields)."""
    from isplab import __version__

    names, _ = cal.reference_chart()

    def num(v):
        return None if v is None or not np.isfinite(v) else round(float(v), 4)

    patches = [{"index": i + 1, "name": names[i],
                "camera_rgb": [None if not np.isfinite(v) else float(f"{v:.6g}")
                               for v in camera_rgb[i]],
                "used": bool(fit.used[i]), "delta_e2000": num(fit.delta_e[i]),
                "loo_delta_e2000": num(fit.loo_delta_e[i])} for i in range(cal.PATCHES)]
    coef = [[float(f"{v:.8g}") for v in row] for row in fit.coefficients]
    return {
        "format": FORMAT, "version": VERSION, "created_by": f"isplab {__version__}",
        "camera": None if camera is None else {"make": camera[0], "model": camera[1]},
        "source": source,
        "reference": f"{cal.REFERENCE} (D50, Bradford to D65, linear sRGB)",
        "kind": fit.kind,
        "gains": [round(float(g), 6) for g in fit.gains],
        "black_offset": [float(f"{v:.6g}") for v in fit.black_offset],
        **({"matrix": coef} if fit.kind == "matrix" else {"coefficients": coef}),
        "exposure": {"scale": round(fit.exposure, 6),
                     "normalised_on": "luminance Y of the neutral row (least squares)"},
        "fit": {"mean_delta_e2000": num(fit.mean),
                "loo_mean_delta_e2000": num(fit.loo_mean),
                "max_delta_e2000": num(np.nanmax(fit.delta_e)),
                "patches_used": int(fit.used.sum()),
                **({"alternatives": alternatives} if alternatives else {})},
        "chart": chart,
        "patches": patches,
    }


def flat_field_dict(ff, shading, applied: bool, choice: dict) -> dict | None:
    """The profile's ``flat_field`` block (None when the chart gave none)."""
    if ff is None:
        return None
    return {"applied": bool(applied), **ff.to_dict(),
            "patch_gains": [round(float(g), 4) for g in shading],
            **({"loo_mean_delta_e2000_matrix": choice} if choice else {}),
            "develop": "applied to the calibrated frame only (same SHA-256)"}


def _load_flat_field(doc: dict, path: Path):
    block = doc.get("flat_field")
    if block is None or (isinstance(block, dict) and not block.get("applied")):
        return None
    if not isinstance(block, dict):
        raise InvalidInputError("\"flat_field\" must be an object or null", path)
    from isplab.classic.flatfield import FlatField

    coef = _numbers(block.get("coefficients"), (5,), "flat_field.coefficients", path)
    frame = _numbers(block.get("frame"), (2,), "flat_field.frame", path)
    scale = _numbers([block.get("scale", 1.0)], (1,), "flat_field.scale", path)[0]
    if np.any(frame < 1) or scale <= 0:
        raise InvalidInputError("flat_field frame and scale must be positive", path)
    return FlatField(coef, int(frame[0]), int(frame[1]), float(scale))


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile JSON; InvalidInputError naming the file and the problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError("no such profile file", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"not a readable profile JSON ({exc})", path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInputError(f"not an isplab camera profile (no \"format\": \"{FORMAT}\")",
                                path)
    kind = doc.get("kind")
    if kind not in cal.KINDS:
        raise InvalidInputError(f"unknown profile kind {kind!r} (one of "
                                f"{', '.join(cal.KINDS)})", path)
    key = "matrix" if kind == "matrix" else "coefficients"
    coef = _numbers(doc.get(key), (3, cal.KINDS[kind]), key, path)
    gains = _numbers(doc.get("gains"), (3,), "gains", path)
    if np.any(gains <= 0):
        raise InvalidInputError(f"gains must be positive, got {gains.tolist()}", path)
    offset = _numbers(doc.get("black_offset", [0, 0, 0]), (3,), "black_offset", path)
    if np.any(np.abs(offset) >= 0.5):
        raise InvalidInputError(f"black_offset out of range: {offset.tolist()}", path)
    cam = doc.get("camera")
    camera = (str(cam.get("make", "")), str(cam.get("model", ""))) \
        if isinstance(cam, dict) else None
    source = doc.get("source")
    sha = source.get("sha256") if isinstance(source, dict) else None
    return Profile(kind, tuple(float(g) for g in gains), coef,
                   tuple(float(v) for v in offset), camera, path,
                   _load_flat_field(doc, path), sha)


def _numbers(value, shape, name, path) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != shape or not np.all(np.isfinite(a)):
        raise InvalidInputError(f"\"{name}\" must be {' x '.join(map(str, shape))} finite "
                                f"numbers", path)
    return a


def write_json(path: Path, doc: dict, overwrite: bool) -> None:
    from isplab.io import atomic_write

    text = json.dumps(doc, indent=1) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)


# --------------------------------------------------------------------- patch CSV


def patches_csv(camera_rgb: np.ndarray, flat_fielded: bool = False) -> str:
    """24 rows ``index,name,r,g,b`` (camera RGB; empty values for clipped patches), after a
    comment line when the values are divided by the chart's flat field."""
    names, _ = cal.reference_chart()
    lines = ["# camera RGB divided by the chart's flat field (the values fitted)"] \
        if flat_fielded else []
    lines.append("index,name,r,g,b")
    for i, rgb in enumerate(camera_rgb):
        vals = ",".join("" if not np.isfinite(v) else f"{v:.8g}" for v in rgb)
        lines.append(f"{i + 1},{names[i]},{vals}")
    return "\n".join(lines) + "\n"


def read_patches_csv(path: str | Path) -> np.ndarray:
    """24 camera-RGB patches (X-Rite order) from a CSV: rows of ``r,g,b`` or
    ``label(s)...,r,g,b`` (the last three fields), an optional header, ``#`` comments;
    empty values mark a patch not to fit. Returns ``24 x 3`` with NaN for those."""
    import csv

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidInputError("no such patches file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"not a readable CSV ({exc})", path) from None
    rows = []
    for n, fields in enumerate(csv.reader(text.splitlines()), 1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        value = _csv_row(fields, n, path, header_allowed=not rows)
        if value is not None:
            rows.append(value)
    if len(rows) != cal.PATCHES:
        raise InvalidInputError(f"needs 24 patch rows (X-Rite order), found {len(rows)}", path)
    a = np.array(rows, dtype=np.float64)
    if np.any(a[np.isfinite(a)] < 0):
        raise InvalidInputError("camera RGB values must be >= 0", path)
    return a


def _csv_row(fields, n, path, header_allowed):
    if len(fields) < 3:
        raise InvalidInputError(f"line {n}: needs r,g,b (3 numbers), got {','.join(fields)!r}",
                                path)
    cells = [f.strip() for f in fields[-3:]]
    try:
        return [float(c) if c else float("nan") for c in cells]
    except ValueError:
        if header_allowed:
            return None
        raise InvalidInputError(f"line {n}: r,g,b must be numbers, got {','.join(cells)!r}",
                                path) from None


# --------------------------------------------------------------------- chart picture


def chart_picture(fit: cal.Fit, camera_rgb: np.ndarray, cell: int = 96) -> np.ndarray:
    """A 6 x 4 chart, ``uint8 H x W x 3`` sRGB: each patch's left half the reference, right
    half the profile's rendering of the measured patch (at the chart's exposure); clipped
    patches are crossed out."""
    import cv2

    _, ref = cal.reference_chart()
    rendered = np.maximum(np.nan_to_num(fit.predict(np.nan_to_num(camera_rgb))), 0)
    gap = cell // 8
    img = np.full((4 * cell + 5 * gap, 6 * cell + 7 * gap, 3), 30, np.uint8)
    for i in range(cal.PATCHES):
        y, x = gap + (i // 6) * (cell + gap), gap + (i % 6) * (cell + gap)
        img[y:y + cell, x:x + cell // 2] = _encode(ref[i])
        img[y:y + cell, x + cell // 2:x + cell] = _encode(rendered[i])
        if not fit.used[i]:
            cv2.line(img, (x, y), (x + cell - 1, y + cell - 1), (255, 0, 0), 2)
    return img


def _encode(linear: np.ndarray) -> np.ndarray:
    v = np.clip(linear, 0, 1)
    srgb = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)
