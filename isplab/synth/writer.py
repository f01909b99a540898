"""Writing synthetic (raw, sRGB) training pairs to disk from ordinary photos.

Layout (shared with :class:`isplab.data.PairedRawRGBDataset`)::

    OUT/raw/<id>.png    packed raw, 4-channel 16-bit PNG, channels R, G1, G2, B as read back
                        by isplab.raw.read(path, black_level=..., white_level=...); integer
                        sensor values black + x * (white - black)
    OUT/raw/<id>.dng    (raw_format="dng") the mosaic in the chosen CFA, via write_dng
    OUT/rgb/<id>.png    the target: the sRGB crop, 16-bit PNG
    OUT/meta/<id>.json  every sampled parameter, source file, crop box, per-pair seed
    OUT/synth.json      run summary: arguments, seed, isplab version, ids, skipped sources

``id = <source stem>_<k:03d>``. Each pair draws from its own generator seeded from
``(seed, source stem, k)``, so re-running (also on a subset or a reordering of the sources)
writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isplab.errors import InvalidInputError, IsplabError
from isplab.raw.cfa import check_pattern, unpack
from isplab.raw.packed import write_packed_png  # noqa: F401  (re-exported)
from isplab.synth.noise import default_black_level, degrade
from isplab.synth.unprocess import UnprocessParams, unprocess

RAW_FORMATS = ("png", "dng")
#: Suffixes taken from folders by the CLI.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def pair_seed(seed: int, stem: str, k: int) -> int:
    """The seed of pair ``k`` of the source named ``stem`` in a run seeded ``seed`` (63 bits)."""
    digest = hashlib.sha256(f"{int(seed)}\0{stem}\0{int(k)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _json_bytes(obj: dict[str, Any]) -> bytes:
    """A dict as JSON with one top-level key per line and compact values (matrices on one
    line each), deterministic (insertion order, shortest float repr)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def _write_bytes(path: Path, data: bytes, overwrite: bool) -> None:
    from isplab.io import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite)


def _check_args(patch: int, per_image: int, cfa: str, low_light: float, bit_depth: int,
                raw_format: str) -> str:
    if int(patch) != patch or patch < 16 or patch % 2:
        raise InvalidInputError(f"patch must be an even number >= 16, got {patch}")
    if int(per_image) != per_image or per_image < 1:
        raise InvalidInputError(f"per_image must be >= 1, got {per_image}")
    if not low_light > 0:
        raise InvalidInputError(f"low_light must be > 0, got {low_light}")
    if int(bit_depth) != bit_depth or not 8 <= bit_depth <= 16:
        raise InvalidInputError(f"bit_depth must be an integer from 8 to 16, got {bit_depth}")
    if raw_format not in RAW_FORMATS:
        raise InvalidInputError(f"raw_format must be one of {', '.join(RAW_FORMATS)}, "
                                f"got {raw_format!r}")
    return check_pattern(cfa)


def synthesize_pair(srgb: torch.Tensor, seed: int, cfa: str = "RGGB", noise: bool = True,
                    low_light: float = 1.0, bit_depth: int = 12,
                    patch: int | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One training pair from a photo, deterministic given ``seed``.

    Args:
        srgb: ``3 x H x W`` sRGB in [0, 1].
        seed: seeds the generator of every draw (crop, camera, noise).
        patch: crop a random ``patch x patch`` square at even offsets first (None: the
            whole image, cropped to even size).

    Returns:
        ``(raw, target, meta)``: packed raw ``4 x p/2 x p/2`` on the ``bit_depth`` grid, the
        sRGB target ``3 x p x p`` and the metadata (unprocess parameters, noise, levels,
        crop box ``[top, left, height, width]``, seed).
    """
    g = torch.Generator().manual_seed(int(seed))
    _, h, w = srgb.shape
    if patch is None:
        top, left, ph, pw = 0, 0, h // 2 * 2, w // 2 * 2
    else:
        if h < patch or w < patch:
            raise InvalidInputError(f"image {w}x{h} is smaller than the patch {patch}x{patch}")
        top = 2 * int(torch.randint(0, (h - patch) // 2 + 1, (1,), generator=g))
        left = 2 * int(torch.randint(0, (w - patch) // 2 + 1, (1,), generator=g))
        ph = pw = patch
    target = srgb[:, top:top + ph, left:left + pw].clamp(0.0, 1.0).contiguous()
    clean, meta = unprocess(target, generator=g, cfa=cfa, packed=True)
    black = default_black_level(bit_depth)
    raw, info = degrade(clean, generator=g, noise=noise, low_light=low_light,
                        bit_depth=bit_depth, black_level=black)
    meta = {**meta, **info, "crop": [top, left, ph, pw], "seed": int(seed)}
    return raw, target, meta


def _sensor_values(raw: torch.Tensor, black: float, white: float) -> np.ndarray:
    v = np.rint(raw.detach().cpu().double().numpy() * (white - black) + black)
    return np.clip(v, 0, white).astype(np.uint16)


def _write_dng(path: Path, raw: torch.Tensor, meta: dict, overwrite: bool) -> None:
    from isplab.raw import RawImage, write_dng

    params = UnprocessParams.from_dict(meta)
    mosaic = unpack(raw[None].float(), params.cfa)[0, 0].numpy()
    image = RawImage(
        mosaic=mosaic, cfa=params.cfa, black_level=(meta["black_level"],) * 4,
        white_level=meta["white_level"], wb_gains=params.wb_gains,
        xyz_to_camera=params.xyz_to_camera(), bit_depth=meta["bit_depth"],
    )
    write_dng(path, image, overwrite=overwrite)


def synthesize_dataset(
    sources: list[Path],
    out: Path,
    patch: int = 256,
    per_image: int = 1,
    cfa: str = "RGGB",
    noise: bool = True,
    low_light: float = 1.0,
    bit_depth: int = 12,
    raw_format: str = "png",
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int, Path], None] | None = None,
) -> dict[str, Any]:
    """Unprocess photos into (raw, sRGB) pairs written in the layout of the module docstring.

    Each source gives ``per_image`` random ``patch x patch`` crops at even offsets (so the
    Bayer phase is kept). Sources smaller than the patch, unreadable ones and ones whose id
    is already taken by an earlier source of the same stem are skipped and reported; the
    batch goes on.

    Args:
        sources: photo files (PNG, JPEG, TIFF; 8 or 16 bits).
        out: output folder (created).
        patch: crop size, even, >= 16.
        per_image: crops per source.
        cfa: Bayer pattern of the simulated sensor (the DNG mosaic's pattern; the packed
            PNG is R, G1, G2, B sampled at this pattern's sites).
        noise: add sampled sensor noise.
        low_light: exposure divisor k of the raw (the target keeps the normal exposure).
        bit_depth: sensor bits (8..16); black level ``2 ** (bit_depth - 4)``.
        raw_format: ``png`` (packed) or ``dng`` (mosaic).
        seed: run seed; pair ``k`` of a source uses :func:`pair_seed` ``(seed, stem, k)``.
        overwrite: replace existing files (otherwise an existing ``synth.json`` stops the
            run with FileExistsError before anything is written, and a pair whose files
            exist is skipped and reported).
        progress: called as ``progress(done, total, source)`` after each source.

    Returns:
        The report written to ``OUT/synth.json``: ``{"ids": [...], "skipped": [{"source",
        "reason"}, ...], "arguments": {...}, "seed", "isplab_version", ...}``.
    """
    from isplab import __version__
    from isplab.io import read_image, write_image

    cfa = _check_args(patch, per_image, cfa, low_light, bit_depth, raw_format)
    out = Path(out)
    summary_path = out / "synth.json"
    if summary_path.exists() and not overwrite:
        raise FileExistsError(f"{summary_path} exists: {out} already holds a synth run "
                              "(use overwrite=True / --overwrite, or another folder)")
    black = float(default_black_level(bit_depth))
    white = float((1 << int(bit_depth)) - 1)
    sources = [Path(s) for s in sources]
    ids: list[str] = []
    skipped: list[dict[str, str]] = []
    stems: dict[str, Path] = {}
    for i, src in enumerate(sources):
        try:
            stem = src.stem
            if stem in stems:
                raise IsplabError(f"same file name as {stems[stem]}: its ids would clash "
                                  "(give the sources distinct names)")
            try:
                image = read_image(src)[0]
            except IsplabError:
                raise
            except Exception as exc:
                raise IsplabError(f"unreadable image ({exc.__class__.__name__}: {exc})") from exc
            _, h, w = image.shape
            if h < patch or w < patch:
                raise IsplabError(f"image {w}x{h} is smaller than the patch {patch}x{patch}")
            stems[stem] = src
            for k in range(per_image):
                pid = f"{stem}_{k:03d}"
                files = {"raw": out / "raw" / f"{pid}.{raw_format}",
                         "rgb": out / "rgb" / f"{pid}.png",
                         "meta": out / "meta" / f"{pid}.json"}
                if not overwrite and any(f.exists() for f in files.values()):
                    skipped.append({"source": str(src), "id": pid,
                                    "reason": "output exists (use overwrite to replace it)"})
                    continue
                s = pair_seed(seed, stem, k)
                raw, target, meta = synthesize_pair(image, s, cfa, noise, low_light, bit_depth,
                                                    patch)
                meta = {"id": pid, "source": str(src), **meta,
                        "raw_format": raw_format, "raw_file": f"raw/{pid}.{raw_format}",
                        "rgb_file": f"rgb/{pid}.png", "isplab_version": __version__}
                if raw_format == "png":
                    write_packed_png(files["raw"], _sensor_values(raw, black, white), overwrite)
                else:
                    _write_dng(files["raw"], raw, meta, overwrite)
                write_image(files["rgb"], target, bits=16, overwrite=overwrite)
                _write_bytes(files["meta"], _json_bytes(meta), overwrite)
                ids.append(pid)
        except Exception as exc:  # one bad source never stops the batch
            reason = exc.reason if isinstance(exc, IsplabError) else \
                f"{exc.__class__.__name__}: {exc}"
            skipped.append({"source": str(src), "reason": reason})
        if progress is not None:
            progress(i + 1, len(sources), src)
    report = {
        "isplab_version": __version__,
        "seed": int(seed),
        "arguments": {
            "sources": [str(s) for s in sources], "patch": int(patch),
            "per_image": int(per_image), "cfa": cfa, "noise": bool(noise),
            "low_light": float(low_light), "bit_depth": int(bit_depth),
            "raw_format": raw_format, "seed": int(seed),
        },
        "black_level": black,
        "white_level": white,
        "ids": ids,
        "skipped": skipped,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_bytes(summary_path, _json_bytes(report), overwrite)
    return report
