"""RawImage: a Bayer mosaic normalised to [0, 1] with the metadata needed to develop it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, pack

if TYPE_CHECKING:
    import torch


@dataclass
class RawImage:
    """A raw frame as read from a file.

    Attributes:
        mosaic: ``H x W`` float32, black level subtracted per CFA position and divided by
            ``white_level - black``, clipped to [0, 1].
        cfa: top-left 2x2 pattern name: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.
        black_level: black level per packed channel (R, G1, G2, B), in raw units.
        white_level: saturation level in raw units.
        wb_gains: as-shot white-balance gains (R, G, B) normalised to G = 1, or None.
        xyz_to_camera: 3x3 XYZ (D65) -> camera RGB matrix (DNG ColorMatrix / Adobe
            matrix), or None.
        camera_to_srgb: 3x3 white-balanced camera RGB -> linear sRGB matrix (LibRaw
            ``rgb_cam``, rows sum to 1), or None.
        bit_depth: bits per sample of the source data, when known.
        orientation: EXIF-like flip code from LibRaw (0 none, 3 180 deg, 5 90 deg CCW,
            6 90 deg CW); applied when developing.
        path: the file it came from, or None.
        noise_profile: ``(shot, read)`` variances of the normalised mosaic (variance of a
            value x is ``shot * x + read``), from the file (DNG ``NoiseProfile``), or None.
        extra: free-form metadata (camera make/model, exposure, reader details...).
    """

    mosaic: np.ndarray
    cfa: str = "RGGB"
    black_level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    white_level: float = 1.0
    wb_gains: tuple[float, float, float] | None = None
    xyz_to_camera: np.ndarray | None = None
    camera_to_srgb: np.ndarray | None = None
    bit_depth: int | None = None
    orientation: int = 0
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    noise_profile: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.cfa = check_pattern(self.cfa)
        m = np.asarray(self.mosaic)
        if m.ndim != 2:
            raise InvalidInputError(f"a mosaic must be 2-D (H x W), got shape {m.shape}", self.path)
        if m.shape[0] < 2 or m.shape[1] < 2:
            raise InvalidInputError(f"mosaic too small: {m.shape}", self.path)
        self.mosaic = m.astype(np.float32, copy=False)
        self.black_level = tuple(float(b) for b in np.broadcast_to(self.black_level, (4,)))
        self.white_level = float(self.white_level)
        if self.wb_gains is not None:
            g = np.asarray(self.wb_gains, dtype=np.float64).reshape(-1)
            if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
                raise InvalidInputError(f"white-balance gains must be 3 positive numbers, got {g}")
            self.wb_gains = tuple(float(v) for v in g / g[1])
        for name in ("xyz_to_camera", "camera_to_srgb"):
            mat = getattr(self, name)
            if mat is not None:
                mat = np.asarray(mat, dtype=np.float64)
                if mat.shape != (3, 3):
                    raise InvalidInputError(f"{name} must be 3x3, got {mat.shape}", self.path)
                setattr(self, name, mat)
        if self.path is not None:
            self.path = Path(self.path)
        if self.noise_profile is not None:
            n = np.asarray(self.noise_profile, dtype=np.float64).reshape(-1)
            if n.size != 2 or not np.all(np.isfinite(n)) or np.any(n < 0):
                raise InvalidInputError(f"noise profile must be 2 finite variances >= 0 (shot, "
                                        f"read), got {self.noise_profile}", self.path)
            self.noise_profile = (float(n[0]), float(n[1]))

    @property
    def height(self) -> int:
        return int(self.mosaic.shape[0])

    @property
    def width(self) -> int:
        return int(self.mosaic.shape[1])

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def to_tensor(self) -> torch.Tensor:
        """The mosaic as a ``1 x 1 x H x W`` float32 tensor (shares memory)."""
        import torch

        return torch.from_numpy(self.mosaic)[None, None]

    def packed(self) -> torch.Tensor:
        """Packed ``1 x 4 x H//2 x W//2`` tensor in R, G1, G2, B order (odd edge dropped)."""
        return pack(self.to_tensor(), self.cfa)

    def metadata(self) -> dict[str, Any]:
        """JSON-friendly metadata (everything but the pixels)."""
        return describe(self)


def describe(raw) -> dict[str, Any]:
    """JSON-friendly metadata of a :class:`RawImage` or a
    :class:`~isplab.raw.header.RawHeader` (same fields, no pixels)."""

    def mat(m):
        return None if m is None else [[round(float(v), 6) for v in row] for row in m]

    return {
        "path": None if raw.path is None else str(raw.path),
        "width": raw.width,
        "height": raw.height,
        "cfa": raw.cfa,
        "black_level": None if raw.black_level is None else list(raw.black_level),
        "white_level": raw.white_level,
        "bit_depth": raw.bit_depth,
        "wb_gains": None if raw.wb_gains is None else [round(g, 6) for g in raw.wb_gains],
        "xyz_to_camera": mat(raw.xyz_to_camera),
        "camera_to_srgb": mat(raw.camera_to_srgb),
        "orientation": raw.orientation,
        "noise_profile": None if raw.noise_profile is None else
        [float(f"{v:.6g}") for v in raw.noise_profile],
        **{k: v for k, v in raw.extra.items()},
    }
