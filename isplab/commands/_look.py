"""``isplab calibrate --pairs RAWS REFS``: fit a look profile from (raw, reference) pairs.

Files pair by stem (``RAWS/x.dng`` with ``REFS/x.jpg``). A file in RAWS is a **raw** (developed
here with the chosen pipeline) when its suffix is a raw suffix (DNG and camera raws,
``.raw``/``.bin``, ``.npy``, ``.pgm``) or when it is a PNG/TIFF with one channel or with four
16-bit channels (a mosaic, or the packed raw ``isplab align`` writes, whose levels, white
balance and colour matrix come from ``../meta/<stem>.json`` when present); any other image
(3 channels: PNG, TIFF, JPEG...) is **already developed** and used as it is (RGB-to-RGB looks,
e.g. one phone's rendering to another's). Each develop must have the reference's size
(``isplab align`` cuts same-size pairs); nothing is resized.

Pairs are split into fit and held-out pairs (deterministic for a seed); the look is fitted
on the fit pairs (:func:`isplab.classic.look.fit_look`), written as JSON, and the held-out
pairs are scored before and after it (PSNR, mean CIEDE2000). Any bad input (no common
stems, an unreadable file, a size mismatch, too few usable pixels) is an
:class:`~isplab.errors.InvalidInputError` naming the file, raised before anything is written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isplab.classic.look import LookProfile, apply_look, fit_look_samples, look_samples
from isplab.errors import InvalidInputError, IsplabError
from isplab.formats import IMAGE_SUFFIXES, RAW_SCAN_SUFFIXES, RAW_SUFFIXES

log = logging.getLogger(__name__)

#: fit pixels over all fit pairs
MAX_PIXELS = 40000


@dataclass(frozen=True)
class Pair:
    """One (raw or developed image, reference photo) pair."""

    name: str
    source: Path
    reference: Path


# --------------------------------------------------------------------------- pairing


def _folder_files(folder: Path, suffixes: frozenset[str], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise InvalidInputError(f"{what} must be a folder" if folder.exists()
                                else "no such folder", folder)
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file() or f.suffix.lower() not in suffixes:
            continue
        if f.stem in found:
            raise InvalidInputError(f"two files with the stem {f.stem!r} ({found[f.stem].name}, "
                                    f"{f.name}): cannot tell which one pairs", folder)
        found[f.stem] = f
    return found


def pair_files(raws: Path, refs: Path, console=None) -> list[Pair]:
    """Pairs by file stem, sorted by name; files without a partner are reported (warning)."""
    sources = _folder_files(Path(raws), RAW_SUFFIXES | IMAGE_SUFFIXES, "RAWS")
    references = _folder_files(Path(refs), IMAGE_SUFFIXES, "REFS")
    common = sorted(set(sources) & set(references))
    if not common:
        raise InvalidInputError(f"no file stem in common with {refs} ({len(sources)} files "
                                f"here, {len(references)} there): pairs are matched by stem",
                                raws)
    for side, files in (("raw", sources), ("reference", references)):
        alone = sorted(set(files) - set(common))
        if alone and console is not None:
            shown = ", ".join(files[s].name for s in alone[:5])
            more = f" and {len(alone) - 5} more" if len(alone) > 5 else ""
            console.print(f"[yellow]![/] {len(alone)} {side} files without a partner: "
                          f"{shown}{more}", highlight=False)
    return [Pair(s, sources[s], references[s]) for s in common]


def split_pairs(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(fit, held-out) indices: ``round(holdout * n)`` held out (at least one when
    ``holdout > 0`` and n >= 2, never all), chosen by a permutation seeded with ``seed``."""
    if not 0.0 <= holdout < 1.0:
        raise InvalidInputError(f"holdout must be in [0, 1), got {holdout}")
    n_hold = int(round(holdout * n))
    if holdout > 0 and n >= 2:
        n_hold = max(1, n_hold)
    n_hold = min(n_hold, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[n_hold:]), sorted(int(i) for i in perm[:n_hold])


# --------------------------------------------------------------------------- reading


def is_developed(path: Path) -> bool:
    """The rule for a file in RAWS: True for an already developed RGB image (see the
    module docstring), False for a raw to develop."""
    suffix = path.suffix.lower()
    if suffix in RAW_SCAN_SUFFIXES or suffix == ".pgm":
        return False
    if suffix not in (".png", ".tif", ".tiff"):
        return True
    channels, bits = _image_layout(path)
    return not (channels == 1 or (channels == 4 and bits == 16))


def _image_layout(path: Path) -> tuple[int, int]:
    """(channels, bits per sample) of a PNG or TIFF from its header."""
    try:
        if path.suffix.lower() == ".png":
            with open(path, "rb") as f:
                head = f.read(33)
            if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
                raise InvalidInputError("not a PNG file", path)
            channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(head[25], 3)
            return channels, head[24]
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.samplesperpixel), int(page.bitspersample)
    except InvalidInputError:
        raise
    except Exception as exc:  # tifffile raises many kinds on a broken file
        raise InvalidInputError(f"unreadable image header ({exc})", path) from None


def _read_rgb(path: Path) -> np.ndarray:
    """An sRGB image -> ``H x W x 3`` float32 in [0, 1]."""
    from isplab.io import read_image

    try:
        return read_image(path)[0].permute(1, 2, 0).numpy()
    except IsplabError as exc:
        raise InvalidInputError(exc.reason, path) from None
    except Exception as exc:
        raise InvalidInputError(f"unreadable image ({type(exc).__name__}: {exc})",
                                path) from None


def _align_meta(path: Path) -> dict[str, Any]:
    """The ``isplab align`` metadata of a packed raw ``OUT/raw/x.png`` (``OUT/meta/x.json``)."""
    meta = path.parent.parent / "meta" / f"{path.stem}.json"
    if path.parent.name != "raw" or not meta.is_file():
        return {}
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"unreadable metadata ({exc})", meta) from None
    return data if isinstance(data, dict) else {}


class Developer:
    """Develops RAWS files with the ``isplab develop`` pipeline (default options)."""

    def __init__(self, isp: str = "classic", classic: dict[str, Any] | None = None,
                 max_megapixels: float = 200.0):
        self.isp_name = isp
        self.classic = classic
        self.max_megapixels = max_megapixels
        self._isp = None

    def pipeline(self):
        if self._isp is None:
            from isplab.commands import _options as opt
            from isplab.commands.develop import build_pipeline

            if self.isp_name not in ("classic", "learned"):
                raise InvalidInputError(f"--isp must be classic or learned for a look, got "
                                        f"{self.isp_name!r}")
            classic = dict(demosaic_algorithm="bilinear", half_size=False,
                           no_auto_bright=False, bright=1.0, tone="none",
                           gamma=opt.gamma("srgb"), denoise_strength=0.0, noise=None,
                           **opt.wb("camera"))
            classic.update(self.classic or {})
            self._isp = build_pipeline(self.isp_name, None, None, None, None, "auto",
                                       "float32", classic)
        return self._isp

    def __call__(self, path: Path) -> np.ndarray:
        """``H x W x 3`` float32 sRGB of a RAWS file (developed, or read when it is one)."""
        if is_developed(path):
            return _read_rgb(path)
        from isplab import raw as rawio

        meta = _align_meta(path)
        keys = {"black_level": "black_level", "white_level": "white_level",
                "wb_gains": "wb_gains"}
        options = {k: meta[m] for k, m in keys.items() if meta.get(m) is not None}
        if "wb_gains" in options:
            options["wb_gains"] = tuple(float(g) for g in options["wb_gains"])
        try:
            raw = rawio.read(path, max_megapixels=self.max_megapixels, **options)
            for key in ("camera_to_srgb", "xyz_to_camera"):
                if meta.get(key) is not None:
                    setattr(raw, key, np.asarray(meta[key], dtype=np.float64))
            image = self.pipeline().postprocess(raw, 16)
        except InvalidInputError:
            raise
        except IsplabError as exc:
            raise InvalidInputError(exc.reason, exc.path or path) from None
        return image.astype(np.float32) / 65535.0


def load_pair(pair: Pair, develop: Developer) -> tuple[np.ndarray, np.ndarray]:
    """(develop, reference) ``H x W x 3`` sRGB of a pair, checked to have one size."""
    dev = develop(pair.source)
    ref = _read_rgb(pair.reference)
    if dev.shape != ref.shape:
        what = "is" if is_developed(pair.source) else "develops to"
        raise InvalidInputError(
            f"{what} {dev.shape[1]}x{dev.shape[0]} but its reference {pair.reference.name} is "
            f"{ref.shape[1]}x{ref.shape[0]}: a pair must have one size (align them first: "
            f"isplab align)", pair.source)
    return dev, ref


# --------------------------------------------------------------------------- scoring


def score(develop_srgb: np.ndarray, reference_srgb: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, mean CIEDE2000) of an ``H x W x 3`` sRGB image against its reference."""
    import torch

    from isplab.metrics.functional import deltae2000, psnr

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]

    x, y = t(np.clip(develop_srgb, 0, 1)), t(np.clip(reference_srgb, 0, 1))
    return float(psnr(x, y)[0]), float(deltae2000(x, y)[0])


def _report(rows: list[dict[str, Any]], title: str, console) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("pair", "PSNR before", "PSNR after", "ΔE00 before", "ΔE00 after"):
        table.add_column(col, justify="left" if col == "pair" else "right")
    keys = ("psnr_before", "psnr_after", "de_before", "de_after")
    for r in rows:
        table.add_row(r["pair"], *(f"{r[k]:.2f}" for k in keys))
    if len(rows) > 1:
        table.add_row("[b]mean[/]", *(f"[b]{np.mean([r[k] for r in rows]):.2f}[/]"
                                      for k in keys))
    console.print(table)


# --------------------------------------------------------------------------- the command


def calibrate_pairs(raws: Path, refs: Path, out: Path, isp: str = "classic",
                    holdout: float = 0.25, seed: int = 0, console=None, *,
                    overwrite: bool = False, classic: dict[str, Any] | None = None) -> None:
    """Fit a look profile from the pairs in RAWS / REFS and write it to ``out`` (JSON).

    Args:
        raws: folder of raws (developed with ``isp``) or already developed images.
        refs: folder of reference photos, one per stem of ``raws``.
        out: the profile file (JSON); an existing one is replaced only with ``overwrite``.
        isp: ``classic`` or ``learned`` (the hybrid ISP), with develop's default options
            (``classic`` overrides them, e.g. ``{"no_auto_bright": True}``).
        holdout: fraction of pairs held out of the fit and scored (0: none).
        seed: the split's and the pixel sampling's seed.
        console: a rich console for the report (default: standard output).

    Raises:
        InvalidInputError: bad input (one line naming the file); nothing is written.
    """
    from rich.console import Console

    console = console if console is not None else Console()
    out = Path(out)
    if out.exists() and not overwrite:
        raise InvalidInputError("exists (use --overwrite to replace it)", out)
    pairs = pair_files(Path(raws), Path(refs), console)
    fit_idx, held_idx = split_pairs(len(pairs), holdout, seed)
    developer = Developer(isp, classic)
    xs, rs, counts, held = [], [], [], []
    quota = max(1, MAX_PIXELS // len(fit_idx))
    for i, pair in enumerate(pairs):
        dev, ref = load_pair(pair, developer)
        if i in held_idx:
            held.append((pair, dev, ref))
            continue
        x, r, c = look_samples([dev], [ref], quota, seed + i, [pair.source.name])
        xs.append(x)
        rs.append(r)
        counts += c
    names = [pairs[i].source.name for i in fit_idx]
    profile = fit_look_samples(np.concatenate(xs), np.concatenate(rs), counts, names=names)
    scored = held or [(pairs[i], *load_pair(pairs[i], developer)) for i in fit_idx]
    rows = []
    for pair, dev, ref in scored:
        before, after = score(dev, ref), score(apply_look(dev, profile), ref)
        rows.append({"pair": pair.name, "psnr_before": before[0], "psnr_after": after[0],
                     "de_before": before[1], "de_after": after[1]})
    profile.info.update(isp=isp, seed=seed, raws=str(raws), refs=str(refs),
                        fit_pairs=[pairs[i].name for i in fit_idx],
                        holdout_pairs=[pairs[i].name for i in held_idx],
                        scores=rows, scores_are="held-out" if held else "in-sample")
    profile.save(out, overwrite=overwrite)
    title = (f"{len(held)} held-out pairs" if held else
             f"no pair held out: in-sample scores of the {len(fit_idx)} fit pairs")
    _report(rows, f"look fitted on {len(fit_idx)} pairs ({isp}) — {title}", console)
    console.print(f"look profile written to {out}", highlight=False)


__all__ = ["Developer", "LookProfile", "Pair", "calibrate_pairs", "is_developed",
           "load_pair", "pair_files", "score", "split_pairs"]
