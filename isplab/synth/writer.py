"""Writing synthetic (raw, sRGB) training pairs to disk from ordinary photos.

Layout (shared with :class:`isplab.data.PairedRawRGBDataset`)::

    OUT/raw/<id>.png    packed raw, 4-channel 16-bit PNG, channels R, G1, G2, B as read back
                        by isplab.raw.read(path, black_level=..., white_level=...); integer
                        sensor values black + x * (white - black)
    OUT/raw/<id>.dng    (raw_format="dng") the mosaic in the chosen CFA, via write_dng
    OUT/rgb/<id>.png    the target: the sRGB crop, 16-bit PNG
    OUT/meta/<id>.json  every sampled parameter, source file, crop box, per-pair seed
    OUT/synth.json      run summary: arguments, seed, isplab version, ids, skipped sources
                        (``synth-K-of-N.json`` for shard K of N of the sources)

``id = <source stem>_<k:03d>``. Each pair draws from its own generator seeded from
``(seed, source stem, k)``, so re-running (also on a subset or a reordering of the sources,
a shard, or in several worker processes) writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
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

@dataclass(frozen=True)
class _Run:
    """The settings every pair of a run shares (picklable: sent to worker processes)."""

    out: Path
    patch: int
    per_image: int
    cfa: str
    noise: bool
    low_light: float
    bit_depth: int
    raw_format: str
    seed: int
    overwrite: bool

    @property
    def black(self) -> float:
        return float(default_black_level(self.bit_depth))

    @property
    def white(self) -> float:
        return float((1 << int(self.bit_depth)) - 1)


#: what one source gave: the ids written and the skipped entries (in the order they arose)
_SourceResult = tuple[list[str], list[dict[str, str]]]


def _read_source(src: Path, patch: int) -> torch.Tensor:
    """The photo as ``3 x H x W`` sRGB; an IsplabError when unreadable or smaller than the
    patch."""
    from isplab.io import read_image

    try:
        image = read_image(src)[0]
    except IsplabError:
        raise
    except Exception as exc:
        raise IsplabError(f"unreadable image ({exc.__class__.__name__}: {exc})") from exc
    _, h, w = image.shape
    if h < patch or w < patch:
        raise IsplabError(f"image {w}x{h} is smaller than the patch {patch}x{patch}")
    return image


def _write_pair(run: _Run, src: Path, image: torch.Tensor, k: int,
                files: dict[str, Path]) -> None:
    """Synthesize pair ``k`` of ``src`` and write its raw, target and meta files."""
    from isplab import __version__
    from isplab.io import write_image

    pid, fmt = f"{src.stem}_{k:03d}", run.raw_format
    s = pair_seed(run.seed, src.stem, k)
    raw, target, meta = synthesize_pair(image, s, run.cfa, run.noise, run.low_light,
                                        run.bit_depth, run.patch)
    meta = {"id": pid, "source": str(src), **meta,
            "raw_format": fmt, "raw_file": f"raw/{pid}.{fmt}",
            "rgb_file": f"rgb/{pid}.png", "isplab_version": __version__}
    if fmt == "png":
        write_packed_png(files["raw"], _sensor_values(raw, run.black, run.white), run.overwrite)
    else:
        _write_dng(files["raw"], raw, meta, run.overwrite)
    write_image(files["rgb"], target, bits=16, overwrite=run.overwrite)
    _write_bytes(files["meta"], _json_bytes(meta), run.overwrite)


def _write_pairs(run: _Run, src: Path, image: torch.Tensor, result: _SourceResult) -> None:
    """The ``per_image`` pairs of one photo, appended to ``result`` as they are written (a
    failure midway keeps the ids already written); pairs whose files exist are skipped unless
    ``overwrite``."""
    ids, skipped = result
    for k in range(run.per_image):
        pid = f"{src.stem}_{k:03d}"
        files = {"raw": run.out / "raw" / f"{pid}.{run.raw_format}",
                 "rgb": run.out / "rgb" / f"{pid}.png",
                 "meta": run.out / "meta" / f"{pid}.json"}
        if not run.overwrite and any(f.exists() for f in files.values()):
            skipped.append({"source": str(src), "id": pid,
                            "reason": "output exists (use overwrite to replace it)"})
            continue
        _write_pair(run, src, image, k, files)
        ids.append(pid)


def _synth_sources(run: _Run, sources: list[Path],
                   done: Callable[[Path], None] | None = None) -> list[_SourceResult]:
    """Each source's pairs, in order (one result per source). A stem goes to the first
    source of that stem that is readable and large enough; later ones are skipped. One bad
    source never stops the others. ``done(source)`` is called after each source."""
    stems: dict[str, Path] = {}
    results: list[_SourceResult] = []
    for src in sources:
        result: _SourceResult = ([], [])
        try:
            if src.stem in stems:
                raise IsplabError(f"same file name as {stems[src.stem]}: its ids would clash "
                                  "(give the sources distinct names)")
            image = _read_source(src, run.patch)
            stems[src.stem] = src
            _write_pairs(run, src, image, result)
        except Exception as exc:  # one bad source never stops the batch
            reason = exc.reason if isinstance(exc, IsplabError) else \
                f"{exc.__class__.__name__}: {exc}"
            result[1].append({"source": str(src), "reason": reason})
        results.append(result)
        if done is not None:
            done(src)
    return results


def _init_worker() -> None:
    """A worker process computes one photo at a time on one thread (no oversubscription)."""
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _synth_parallel(run: _Run, sources: list[Path], jobs: int,
                    done: Callable[[Path], None]) -> list[_SourceResult]:
    """:func:`_synth_sources` in ``jobs`` processes, one stem at a time each (the sources
    sharing a stem stay together and in order, so the same source wins the stem). Each
    pair depends only on the run and its photo: the files are those of one process, and
    the results come back in the order of ``sources``."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    groups: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        groups.setdefault(src.stem, []).append(i)
    results: list[_SourceResult | None] = [None] * len(sources)
    pool = ProcessPoolExecutor(min(jobs, len(groups)), mp_context=mp.get_context("spawn"),
                               initializer=_init_worker)
    try:
        futures = {pool.submit(_synth_sources, run, [sources[i] for i in group]): group
                   for group in groups.values()}
        for future in as_completed(futures):
            for i, result in zip(futures[future], future.result(), strict=True):
                results[i] = result
                done(sources[i])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results  # type: ignore[return-value]


def summary_name(shard: tuple[int, int] | None = None) -> str:
    """``synth.json``, or ``synth-K-of-N.json`` for shard K of N (so the shards of a run can
    share one output folder)."""
    return "synth.json" if shard is None else f"synth-{shard[0]}-of-{shard[1]}.json"


def _report(run: _Run, sources: list[Path], results: list[_SourceResult],
            shard: tuple[int, int] | None) -> dict[str, Any]:
    """The run summary (``synth.json``): arguments, levels, ids and skips in source order."""
    from isplab import __version__

    arguments = {
        "sources": [str(s) for s in sources], "patch": int(run.patch),
        "per_image": int(run.per_image), "cfa": run.cfa, "noise": bool(run.noise),
        "low_light": float(run.low_light), "bit_depth": int(run.bit_depth),
        "raw_format": run.raw_format, "seed": int(run.seed),
    }
    if shard is not None:
        arguments["shard"] = f"{shard[0]}/{shard[1]}"
    return {
        "isplab_version": __version__,
        "seed": int(run.seed),
        "arguments": arguments,
        "black_level": run.black,
        "white_level": run.white,
        "ids": [pid for ids, _ in results for pid in ids],
        "skipped": [item for _, skipped in results for item in skipped],
    }


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
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
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
        overwrite: replace existing files (otherwise an existing summary stops the run with
            FileExistsError before anything is written, and a pair whose files exist is
            skipped and reported).
        progress: called as ``progress(done, total, source)`` after each source.
        jobs: worker processes (each one stem's sources at a time); the files, ids and
            summary are those of ``jobs=1``.
        shard: ``(K, N)`` when ``sources`` are shard K of N of a larger run (the CLI picks
            them): recorded, and the summary is ``synth-K-of-N.json`` (:func:`summary_name`).

    Returns:
        The report written to ``OUT/synth.json`` (or the shard's summary): ``{"ids": [...],
        "skipped": [{"source", "reason"}, ...], "arguments": {...}, "seed", "isplab_version",
        ...}``.
    """
    cfa = _check_args(patch, per_image, cfa, low_light, bit_depth, raw_format)
    out = Path(out)
    summary_path = out / summary_name(shard)
    if summary_path.exists() and not overwrite:
        raise FileExistsError(f"{summary_path} exists: {out} already holds a synth run "
                              "(use overwrite=True / --overwrite, or another folder)")
    run = _Run(out, patch, per_image, cfa, noise, low_light, bit_depth, raw_format, seed,
               overwrite)
    sources = [Path(s) for s in sources]
    count = 0

    def done(src: Path) -> None:
        nonlocal count
        count += 1
        if progress is not None:
            progress(count, len(sources), src)

    if int(jobs) > 1 and len({s.stem for s in sources}) > 1:
        results = _synth_parallel(run, sources, int(jobs), done)
    else:
        results = _synth_sources(run, sources, done)
    report = _report(run, sources, results, shard)
    out.mkdir(parents=True, exist_ok=True)
    _write_bytes(summary_path, _json_bytes(report), overwrite)
    return report
