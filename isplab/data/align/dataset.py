"""The dataset-level driver: pair phone raws with references, align each pair and write the
``PairedRawRGBDataset`` layout (:func:`align_dataset`)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from isplab.data.align.pair import _as_raw, align_pair
from isplab.data.align.results import REJECT_REASONS, AlignResult, PatchScore
from isplab.errors import InvalidInputError, IsplabError
from isplab.io import atomic_write
from isplab.raw.image import RawImage
from isplab.raw.packed import write_packed_png

#: the columns of ``patches.csv``
PATCH_COLUMNS = ("pair", "id", "x", "y", "size", "status", "reason", "overlap",
                 "keypoints_phone", "keypoints_reference", "flow", "correlation", "confident")
#: the scores of a patch written to its meta file and to ``patches.csv``
_SCORE_FIELDS = ("overlap", "keypoints_phone", "keypoints_reference", "flow", "correlation",
                 "confident")
_SUBDIRS = ("raw", "rgb", "meta")


def pair_files(phones: Sequence[Path], references: Sequence[Path], by: str = "name"
               ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Pair phone raws with references by file stem (``by="name"``) or by sorted order.

    Returns:
        (pairs, unpaired files with the reason).
    """
    phones = [Path(p) for p in phones]
    references = [Path(r) for r in references]
    if by == "order":
        pairs = list(zip(phones, references, strict=False))
        n = len(pairs)
        lonely = [(p, "no reference left to pair with (pairing by order)") for p in phones[n:]]
        lonely += [(r, "no phone raw left to pair with (pairing by order)")
                   for r in references[n:]]
        return pairs, lonely
    if by != "name":
        raise InvalidInputError(f"pair_by must be 'name' or 'order', got {by!r}")
    index: dict[str, Path] = {}
    lonely = []
    for r in references:
        if r.stem in index:
            lonely.append((r, f"two references named {r.stem!r} ({index[r.stem]})"))
        else:
            index[r.stem] = r
    pairs = []
    used = set()
    for p in phones:
        if p.stem in index:
            pairs.append((p, index[p.stem]))
            used.add(p.stem)
        else:
            lonely.append((p, f"no reference named {p.stem}.* (pairing by name)"))
    lonely += [(r, "no phone raw with this name") for s, r in index.items() if s not in used]
    return pairs, lonely


def _sensor_units(raw: RawImage, packed: np.ndarray) -> tuple[np.ndarray, list[float], float,
                                                                int]:
    """Normalised packed ``4 x h x w`` -> uint16 raw units, with the levels to read it back."""
    white = raw.white_level
    black = list(raw.black_level)
    if white < 2 or white > 65535 or white != round(white):
        black, white = [0.0] * 4, 65535.0
        bits = 16
    else:
        bits = raw.bit_depth or max(1, math.ceil(math.log2(white + 1)))
    b = np.asarray(black, np.float64)[:, None, None]
    units = np.round(packed.astype(np.float64) * (white - b) + b)
    return np.clip(units, 0, 65535).astype(np.uint16), black, white, int(bits)


def _write_pair(tmp: Path, result: AlignResult, raw: RawImage, phone: Path | None,
                reference: Path | None) -> list[str]:
    """Write the accepted patches of ``result`` (raw, rgb and meta files) under ``tmp``;
    returns their ids."""
    ids = []
    meta_raw = raw.metadata()
    for ap in result.accepted:
        s = ap.score
        units, black, white, bits = _sensor_units(raw, ap.raw_packed)
        write_packed_png(tmp / "raw" / f"{s.id}.png", np.asarray(units, dtype=np.uint16))
        rgb = np.clip(ap.target_srgb.transpose(1, 2, 0) * 65535 + 0.5, 0, 65535)
        rgb = rgb.astype(np.uint16)
        if not cv2.imwrite(str(tmp / "rgb" / f"{s.id}.png"), np.ascontiguousarray(rgb[..., ::-1])):
            raise IsplabError("OpenCV could not write the target PNG", tmp / "rgb")
        meta = {
            "id": s.id,
            "phone": None if phone is None else str(phone),
            "reference": None if reference is None else str(reference),
            "crop": {"x": s.x, "y": s.y, "width": s.size, "height": s.size},
            "packed_crop": {"x": s.x // 2, "y": s.y // 2, "width": s.size // 2,
                            "height": s.size // 2},
            "homography": [[float(v) for v in row] for row in result.homography],
            "scores": {k: v for k, v in asdict(s).items() if k in _SCORE_FIELDS},
            "black_level": black,
            "white_level": white,
            "bit_depth": bits,
            "cfa": raw.cfa,
            "packed_order": ["R", "G1", "G2", "B"],
            "wb_gains": meta_raw.get("wb_gains"),
            "camera_to_srgb": meta_raw.get("camera_to_srgb"),
            "xyz_to_camera": meta_raw.get("xyz_to_camera"),
            "raw_size": [raw.height, raw.width],
            "target": "sRGB, 16-bit, reference warped onto the raw pixel grid",
        }
        (tmp / "meta" / f"{s.id}.json").write_text(json.dumps(_jsonable(meta), indent=1))
        ids.append(s.id)
    return ids


def _jsonable(obj):
    """``obj`` with numpy scalars as Python numbers, paths as strings and non-finite floats
    as None (tuples become lists)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _existing(out: Path, stem: str) -> list[Path]:
    """The patch files of pair ``stem`` already in ``out``."""
    pattern = f"{stem}_[0-9][0-9][0-9][0-9]"
    found = []
    for sub, ext in (("raw", "png"), ("rgb", "png"), ("meta", "json")):
        found += sorted((out / sub).glob(f"{pattern}.{ext}"))
    return found


def _publish(out: Path, stem: str, result: AlignResult, raw: RawImage, phone: Path,
             reference: Path, old: list[Path]) -> list[str]:
    """Write the pair's patches to a temporary folder in ``out``, then replace its ``old``
    files with them; nothing is left behind when a write fails. Returns the patch ids."""
    tmp = Path(tempfile.mkdtemp(prefix=f".align-{stem}-", dir=out))
    try:
        for sub in _SUBDIRS:
            (tmp / sub).mkdir()
        ids = _write_pair(tmp, result, raw, phone, reference)
        for f in old:
            f.unlink()
        for sub in _SUBDIRS:
            for f in sorted((tmp / sub).iterdir()):
                os.replace(f, out / sub / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ids


def duplicate_stems(pairs: Sequence[tuple[Path, Path]]) -> dict[Path, Path]:
    """Phone raws whose stem an earlier phone raw of ``pairs`` has (their patch ids would
    collide) -> that first phone raw."""
    first: dict[str, Path] = {}
    dups = {}
    for phone, _ in pairs:
        if phone.stem in first:
            dups[phone] = first[phone.stem]
        else:
            first[phone.stem] = phone
    return dups


def align_one(phone: Path, ref: Path, out: Path, patch: int, *,
              duplicate_of: Path | None = None, overwrite: bool = False,
              raw_options: dict | None = None, **align_options: Any
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Align and write one pair into the dataset folder ``out``; returns its summary entry
    (status ``aligned``, or ``failed`` with the error: never raises for a bad pair) and
    its ``patches.csv`` rows. Pairs are independent: run them in any order or process."""
    stem = phone.stem
    entry: dict[str, Any] = {"pair": stem, "phone": str(phone), "reference": str(ref)}
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        if duplicate_of is not None:
            raise InvalidInputError(f"another phone raw has the same name ({duplicate_of}): "
                                    "patch ids would collide", phone)
        old = _existing(out, stem)
        if old and not overwrite:
            raise IsplabError(f"{len(old)} files of this pair exist in {out} (use "
                              "--overwrite to replace them)", phone)
        raw = _as_raw(phone, raw_options)
        res = align_pair(raw, ref, patch=patch, stem=stem, **align_options)
        ids = _publish(out, stem, res, raw, phone, ref, old)
        entry.update(status="aligned", patches=len(res.patches), accepted=len(ids),
                     rejected=_count_reasons(res.patches),
                     homography=[[float(v) for v in r] for r in res.homography],
                     stats=res.stats)
        rows = [{"pair": stem, **_row(s)} for s in res.patches]
    except (IsplabError, OSError, cv2.error) as exc:
        msg = str(exc) if isinstance(exc, IsplabError) else \
            f"{phone}: {exc.__class__.__name__}: {str(exc).strip().splitlines()[-1]}"
        if isinstance(exc, IsplabError) and exc.path is None:
            msg = f"{phone}: {msg}"
        entry.update(status="failed", error=msg)
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    return entry, rows


def prepare_dataset(out: str | Path) -> Path:
    """Create the dataset folder ``out`` and its ``raw/``, ``rgb/``, ``meta/``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError("exists and is not a folder", out)
    for sub in _SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    return out


def unpaired_entries(lonely: Sequence[tuple[Path, str]]) -> list[dict[str, Any]]:
    """The failed summary entries of the files :func:`pair_files` could not pair."""
    return [{"phone": str(path), "reference": None, "status": "failed",
             "error": f"{path}: {reason}"} for path, reason in lonely]


def align_dataset(
    phones: Sequence[str | Path],
    references: Sequence[str | Path],
    out: str | Path,
    patch: int = 448,
    *,
    pair_by: str = "name",
    overwrite: bool = False,
    raw_options: dict | None = None,
    progress: Callable[[str, dict], None] | None = None,
    **align_options: Any,
) -> dict[str, Any]:
    """Align phone raws to references and write a paired dataset.

    Layout written under ``out`` (the ``PairedRawRGBDataset`` "isplab" layout):

    - ``raw/<id>.png``: the raw crop, packed R, G1, G2, B as a 4-channel 16-bit PNG in raw
      units: ``isplab.raw.read(path, black_level=meta.black_level,
      white_level=meta.white_level)`` gives back the crop.
    - ``rgb/<id>.png``: 16-bit sRGB target, ``patch x patch``.
    - ``meta/<id>.json``: source files, crop box, homography, scores, levels, CFA.
    - ``patches.csv``: every candidate patch, accepted or with its rejection reason.
    - ``summary.json``: parameters, and per pair its status, alignment stats and counts.

    A pair is written only once it has fully succeeded (its files go to a temporary folder
    first, then are moved into place); a pair that fails is reported and nothing of it is
    written. Existing patches of a pair are kept (the pair is reported as failed) unless
    ``overwrite``. ``patches.csv`` and ``summary.json`` describe this run and replace older
    ones. (``isplab align --jobs/--shard`` runs the same pieces, :func:`align_one` per pair,
    in worker processes or on part of the pairs.)

    Args:
        phones, references: files; paired by ``pair_by`` (``"name"``: same stem,
            ``"order"``: as given).
        out: output folder (created).
        patch: patch side in raw pixels.
        raw_options: keyword arguments for :func:`isplab.raw.read`.
        progress: called after each pair with its stem and its summary entry.
        align_options: passed to :func:`align_pair` (fields of :class:`AlignOptions`:
            thresholds, stages...).

    Returns:
        The summary (also written to ``summary.json``).
    """
    out = prepare_dataset(out)
    pairs, lonely = pair_files([Path(p) for p in phones], [Path(r) for r in references],
                               pair_by)
    dups = duplicate_stems(pairs)
    entries = unpaired_entries(lonely)
    rows: list[dict[str, Any]] = []
    for phone, ref in pairs:
        entry, pair_rows = align_one(phone, ref, out, patch, duplicate_of=dups.get(phone),
                                     overwrite=overwrite, raw_options=raw_options,
                                     **align_options)
        entries.append(entry)
        rows += pair_rows
        if progress is not None:
            progress(phone.stem, entry)
    return write_summary(out, len(pairs), entries, rows,
                         {"patch": patch, "pair_by": pair_by, **align_options})


def summary_names(shard: tuple[int, int] | None = None) -> tuple[str, str]:
    """``(summary.json, patches.csv)``, or ``summary-K-of-N.json`` and ``patches-K-of-N.csv``
    for shard K of N (the shards of a run write into one folder side by side)."""
    if shard is None:
        return "summary.json", "patches.csv"
    tag = f"{shard[0]}-of-{shard[1]}"
    return f"summary-{tag}.json", f"patches-{tag}.csv"


def write_summary(out: Path, n_pairs: int, entries: list[dict[str, Any]],
                  rows: list[dict[str, Any]], parameters: dict[str, Any],
                  shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """The run's summary from its entries (pairs in input order), written with the patch
    rows to :func:`summary_names` in ``out``; returns the summary."""
    aligned = [e for e in entries if e["status"] == "aligned"]
    summary = {
        "pairs": n_pairs,
        "aligned": len(aligned),
        "failed": len(entries) - len(aligned),
        "patches": sum(e["patches"] for e in aligned),
        "accepted": sum(e["accepted"] for e in aligned),
        "parameters": _jsonable(parameters),
        "entries": entries,
    }
    if shard is not None:
        summary["shard"] = f"{shard[0]}/{shard[1]}"
    _write_outputs(out, rows, summary, *summary_names(shard))
    return summary


def _write_outputs(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any],
                   summary_name: str = "summary.json", patches_name: str = "patches.csv"
                   ) -> None:
    """Write ``patches.csv`` and ``summary.json`` (each replaced atomically)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PATCH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(out / patches_name, buf.getvalue())
    _write_text(out / summary_name, json.dumps(_jsonable(summary), indent=1))


def _row(s: PatchScore) -> dict[str, Any]:
    """A ``patches.csv`` row (without the pair) of a patch score."""
    d = asdict(s)
    return {"id": d["id"], "x": d["x"], "y": d["y"], "size": d["size"],
            "status": "accepted" if s.accepted else "rejected", "reason": s.reason,
            **{k: d[k] for k in _SCORE_FIELDS}}


def _count_reasons(patches: list[PatchScore]) -> dict[str, int]:
    """How many patches each filter rejected (in :data:`REJECT_REASONS` order)."""
    counts = {r: 0 for r in REJECT_REASONS}
    for s in patches:
        for r in filter(None, s.reason.split("+")):
            counts[r] += 1
    return counts


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, replacing it."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)
