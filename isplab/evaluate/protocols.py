"""Evaluation protocols: each yields the same items to every method.

An item is a dict with ``name``, ``target`` (``1 x 3 x H x W``) and the inputs the protocol
provides (``PROVIDES``): ``mosaic`` (``1 x 1 x H x W``) with its ``cfa``, ``packed`` raw
(``1 x 4 x H/2 x W/2``), ``noise`` (the :class:`~isplab.classic.noise_profile.NoiseProfile` of
the raw), ``metadata`` (the camera of a synthetic raw), ``rgb`` (an sRGB input). A method
declares what it needs; a protocol that does not provide it is refused in one line.

Add a protocol: a class with ``name``, ``provides``, ``border``, ``default_data()`` and
``items(data, noise, seed, limit)``, decorated with ``@PROTOCOLS.register(name, ...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from isplab.errors import InvalidInputError
from isplab.formats import IMAGE_SUFFIXES
from isplab.registry import Registry

PROTOCOLS: Registry[type] = Registry("protocol")


def parse_noise(noise: Any) -> tuple[float, float] | None:
    """``noise`` as given to a protocol -> ``(shot, read)`` variances, or None (clean).

    A number is a Gaussian sigma (``read = sigma ** 2``); ``"shot,read"`` or a pair are the
    heteroscedastic profile; 0 / None / ``""`` is clean."""
    if noise is None or noise == "" or noise == 0:
        return None
    if isinstance(noise, str):
        parts = [p for p in noise.replace(" ", "").split(",") if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise InvalidInputError(f"noise must be a sigma or shot,read, got {noise!r}") \
                from None
        noise = vals[0] if len(vals) == 1 else vals
    if isinstance(noise, (int, float)):
        sigma = float(noise)
        if not sigma >= 0 or sigma == float("inf"):
            raise InvalidInputError(f"noise sigma must be a finite number >= 0, got {noise}")
        return None if sigma == 0 else (0.0, sigma * sigma)
    vals = [float(v) for v in noise]
    if len(vals) != 2 or not all(v >= 0 and v != float("inf") for v in vals):
        raise InvalidInputError(f"noise must be a sigma or two variances shot,read, got {noise}")
    return (vals[0], vals[1]) if any(vals) else None


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidInputError("not a folder", folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidInputError("no images in folder", folder)
    return files


def _even(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return x[..., :h, :w]


def _kodak() -> Path | None:
    from isplab.data.datasets import data_root

    folder = data_root() / "kodak24"
    return folder if folder.is_dir() else None


@PROTOCOLS.register("demosaic", border=8, description="RGB photos re-mosaiced (RGGB) in their "
                    "own sRGB encoding, optional shot/read noise on the mosaic; CPSNR")
class DemosaicProtocol:
    """RGB photos (default Kodak24) re-mosaiced through an RGGB CFA in their own (sRGB)
    encoding; ``noise`` (a sigma, or ``shot,read``) is added to the mosaic and clipped.
    Scored with an 8-pixel border (the field's CPSNR protocol)."""

    provides = frozenset({"mosaic", "packed", "noise"})
    default_data = staticmethod(_kodak)

    def items(self, data: Path, noise: Any, seed: int, limit: int | None,
              cfa: str = "RGGB") -> Iterator[dict[str, Any]]:
        from isplab.classic.noise_profile import NoiseProfile
        from isplab.io import read_image
        from isplab.raw.cfa import mosaic, pack
        from isplab.synth.noise import add_noise

        profile = parse_noise(noise)
        for i, path in enumerate(_photos(data)[:limit]):
            target = _even(read_image(path))
            m = mosaic(target, cfa)
            if profile is not None:
                g = torch.Generator().manual_seed(seed * 100_003 + i)
                m = add_noise(m, *profile, generator=g).clamp(0, 1)
            yield {"name": path.name, "target": target, "mosaic": m, "cfa": cfa,
                   "packed": pack(m, cfa),
                   "noise": NoiseProfile(*(profile or (0.0, 0.0)),
                                         source="user" if profile else "none")}


@PROTOCOLS.register("synthetic-isp", border=8, description="photos unprocessed into raw "
                    "(random camera per image), optional noise; develop and compare")
class SyntheticISPProtocol:
    """Photos (default Kodak24) unprocessed into raw with :func:`isplab.synth.unprocess`
    (camera drawn from a fixed seed per image); ``noise``: ``shot,read`` for one level, any
    other non-zero value draws Brooks et al.'s levels per image."""

    provides = frozenset({"packed", "metadata", "noise"})
    default_data = staticmethod(_kodak)

    def items(self, data: Path, noise: Any, seed: int, limit: int | None
              ) -> Iterator[dict[str, Any]]:
        from isplab.classic.noise_profile import NoiseProfile
        from isplab.io import read_image
        from isplab.synth.noise import degrade
        from isplab.synth.unprocess import unprocess

        fixed = parse_noise(noise) if isinstance(noise, str) and "," in noise else None
        for i, path in enumerate(_photos(data)[:limit]):
            target = _even(read_image(path))
            g = torch.Generator().manual_seed(seed * 100_003 + i)
            raw, meta = unprocess(target[0], generator=g, cfa="RGGB", packed=True)
            shot = read = 0.0
            if noise:
                spec = True if fixed is None else {"shot": fixed[0], "read": fixed[1]}
                raw, info = degrade(raw, generator=g, noise=spec)
                meta = {**meta, **info}
                shot, read = float(info["shot"]), float(info["read"])
            yield {"name": path.name, "target": target, "packed": raw[None], "metadata": meta,
                   "noise": NoiseProfile(shot, read, "user" if noise else "none")}


@PROTOCOLS.register("paired", border=0, description="raw + reference RGB folders "
                    "(PairedRawRGBDataset)")
class PairedProtocol:
    """A folder read by :class:`isplab.data.PairedRawRGBDataset` (raw + reference RGB)."""

    provides = frozenset({"packed"})

    @staticmethod
    def default_data() -> None:
        return None

    def items(self, data: Path, noise: Any, seed: int, limit: int | None
              ) -> Iterator[dict[str, Any]]:
        from isplab.data import PairedRawRGBDataset

        ds = PairedRawRGBDataset(data)
        for i in range(len(ds) if limit is None else min(limit, len(ds))):
            it = ds[i]
            yield {"name": it.get("name", str(i)), "packed": it["raw"][None],
                   "target": it["target"][None]}


@PROTOCOLS.register("rgb-pairs", border=0, description="sRGB -> sRGB pairs (SIDD, City100, "
                    "input/ + target/)")
class RGBPairsProtocol:
    """sRGB -> sRGB pairs (:class:`isplab.data.RGBPairDataset`, e.g. SIDD)."""

    provides = frozenset({"rgb"})

    @staticmethod
    def default_data() -> None:
        return None

    def items(self, data: Path, noise: Any, seed: int, limit: int | None
              ) -> Iterator[dict[str, Any]]:
        from isplab.data import RGBPairDataset

        ds = RGBPairDataset(data)
        for i in range(len(ds) if limit is None else min(limit, len(ds))):
            it = ds[i]
            yield {"name": it.get("name", str(i)), "rgb": it["input"][None],
                   "target": it["target"][None]}


def get_protocol(name: str):
    """An instance of the protocol registered as ``name``."""
    return PROTOCOLS.get(name)()


def protocol_items(protocol: str, data: Path | None, noise: Any = 0.0, seed: int = 0,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The items of ``protocol`` on ``data`` (its default folder when None)."""
    p = get_protocol(protocol)
    folder = Path(data) if data is not None else p.default_data()
    if folder is None:
        raise InvalidInputError(f"protocol {protocol} needs --data")
    return p.items(folder, noise, seed, limit)


def default_data(protocol: str) -> Path | None:
    """The protocol's default folder (Kodak24 in the data root for demosaic and
    synthetic-isp), or None."""
    return get_protocol(protocol).default_data()


def default_border(protocol: str) -> int:
    return int(PROTOCOLS.entry(protocol).meta["border"])
