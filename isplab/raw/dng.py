"""Writing a RawImage as a DNG that LibRaw (rawpy) reads back bit-exactly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from isplab.errors import InvalidInputError
from isplab.raw.cfa import packed_offsets
from isplab.raw.image import RawImage
from isplab.raw.matrices import xyz_from_camera_to_srgb

_CFA_CODES = {"R": 0, "G": 1, "B": 2}


def to_sensor_values(raw: RawImage) -> np.ndarray:
    """The mosaic back in sensor units: ``round(x * (white - black) + black)`` as uint16."""
    m = raw.mosaic.astype(np.float64)
    out = np.empty_like(m)
    for ch, (dy, dx) in enumerate(packed_offsets(raw.cfa)):
        b = raw.black_level[ch]
        out[dy::2, dx::2] = m[dy::2, dx::2] * (raw.white_level - b) + b
    if out.max(initial=0) > 65535.5 or out.min(initial=0) < -0.5:
        raise InvalidInputError("levels give sensor values outside 0..65535")
    return np.rint(out).astype(np.uint16)


def _rationals(values, signed: bool, denominator: int = 10000) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        f = Fraction(float(v)).limit_denominator(denominator)
        out += [f.numerator, f.denominator]
    if not signed and any(v < 0 for v in out):
        raise InvalidInputError(f"negative value in an unsigned rational tag: {values}")
    return tuple(out)


def write_dng(path: str | Path, raw: RawImage, *, overwrite: bool = False,
              make: str = "isplab", model: str = "synthetic") -> Path:
    """Write ``raw`` as a DNG 1.4 file (uncompressed CFA strip, tifffile).

    Tags: CFA pattern, black level per CFA position, white level, AsShotNeutral
    (= 1 / wb_gains), NoiseProfile (``raw.noise_profile``), ColorMatrix1 (XYZ -> camera,
    D65; derived from ``camera_to_srgb`` when only that is known), orientation. The file is
    written to a temporary name and renamed, so a failure never leaves a half-written DNG;
    an existing file is kept unless ``overwrite``.
    """
    import tifffile


    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    from isplab.io import atomic_write

    data = to_sensor_values(raw)
    pattern = bytes(_CFA_CODES[c] for c in raw.cfa)
    blacks_2x2 = [0.0] * 4
    for ch, (dy, dx) in enumerate(packed_offsets(raw.cfa)):
        blacks_2x2[dy * 2 + dx] = raw.black_level[ch]
    extratags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, pattern, True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, f"{make} {model}", True),  # UniqueCameraModel
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "2I", 4, _rationals(blacks_2x2, signed=False), True),  # BlackLevel
        (50717, "I", 1, int(round(raw.white_level)), True),  # WhiteLevel
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
        (271, "s", 0, make, True),  # Make
        (272, "s", 0, model, True),  # Model
        (274, "H", 1, {0: 1, 3: 3, 5: 8, 6: 6}.get(raw.orientation, 1), True),  # Orientation
    ]
    xyz_to_cam = raw.xyz_to_camera
    if xyz_to_cam is None and raw.camera_to_srgb is not None:
        xyz_to_cam = xyz_from_camera_to_srgb(raw.camera_to_srgb)
    if xyz_to_cam is not None:
        m = np.asarray(xyz_to_cam, dtype=np.float64)
        m = m / np.abs(m).max()  # keep the numbers in a comfortable rational range
        extratags.append((50721, "2i", 9, _rationals(m.reshape(-1), signed=True), True))
    if raw.noise_profile is not None:  # NoiseProfile: one (S, O) pair for all planes
        extratags.append((51041, "d", 2, tuple(float(v) for v in raw.noise_profile), True))
    if raw.wb_gains is not None:
        neutral = [1.0 / g for g in raw.wb_gains]
        extratags.append((50728, "2I", 3, _rationals(neutral, signed=False, denominator=1_000_000),
                          True))


    def _write(tmp: str) -> None:
        tifffile.imwrite(tmp, data, photometric=32803, subfiletype=0, metadata=None,
                         software="isplab", extratags=extratags)

    return atomic_write(path, _write, overwrite)
