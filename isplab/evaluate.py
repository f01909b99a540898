"""Side-by-side evaluation under named protocols: one honest table for every method.

Protocols (each yields ``(name, input, target)`` triples; every method sees the same ones):

- ``demosaic``: RGB photos (default ``../shared/data/kodak24``) re-mosaiced through an RGGB
  CFA in their own (sRGB) encoding; noise-free unless ``noise`` gives a Gaussian sigma (in
  [0, 1] units) added to the mosaic. Scored with an 8-pixel border (the field's CPSNR
  protocol: PSNR over all three channels).
- ``synthetic-isp``: photos unprocessed into raw with :func:`isplab.synth.unprocess`
  (parameters drawn from a fixed seed per image), optional sensor noise; the method
  develops the packed raw and is compared with the photo.
- ``paired``: a folder read by :class:`isplab.data.PairedRawRGBDataset` (raw + reference RGB).
- ``rgb-pairs``: sRGB -> sRGB pairs (:class:`isplab.data.RGBPairDataset`, e.g. SIDD).

Methods (strings, as on the command line):

- ``classic`` / ``classic:<demosaic>``: the classical pipeline with that demosaic
  (bilinear, malvar2004, menon2007). On ``synthetic-isp`` it is given the true white-balance
  gains and colour matrix of each image (what a calibrated camera ISP knows), which makes it
  a strong baseline; on ``demosaic`` it is the demosaic alone.
- ``identity``: the input itself (``rgb-pairs``: the noisy photo).
- ``demosaicnet``: Gharbi et al.'s released Bayer model, if the ``bench`` extra is installed.
- a zoo name with weights ``name=path.safetensors``, a weights file, or a run directory
  (its ``model.safetensors``); a bare zoo name runs with random weights and says so.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from isplab.errors import InvalidInputError
from isplab.metrics import create_metric

log = logging.getLogger("isplab.evaluate")

PROTOCOLS = ("demosaic", "synthetic-isp", "paired", "rgb-pairs")
DEFAULT_BORDER = {"demosaic": 8, "synthetic-isp": 8, "paired": 0, "rgb-pairs": 0}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


@dataclass
class Method:
    """A method under evaluation: ``run(item) -> N x 3 x H x W`` in [0, 1]."""

    name: str
    run: Callable[[dict[str, Any]], torch.Tensor]
    note: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0
    parameters: int | None = None
    values: dict[str, list[float]] = field(default_factory=dict)


# --- protocol items ------------------------------------------------------------------------


def default_data(protocol: str) -> Path | None:
    """``../shared/data/kodak24`` (relative to the working directory or $ISPLAB_DATA) for the
    demosaic and synthetic-isp protocols."""
    from isplab.data.datasets import data_root

    if protocol not in ("demosaic", "synthetic-isp"):
        return None
    folder = data_root() / "kodak24"
    return folder if folder.is_dir() else None


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


def protocol_items(protocol: str, data: Path | None, noise: float = 0.0, seed: int = 0,
                   limit: int | None = None, cfa: str = "RGGB") -> Iterator[dict[str, Any]]:
    """The protocol's items: dicts with ``name``, ``target`` (1 x 3 x H x W) and the input
    (``packed`` raw 1 x 4 x H/2 x W/2, plus ``mosaic``/``metadata`` where defined, or
    ``rgb`` for rgb-pairs)."""
    from isplab.io import read_image
    from isplab.raw.cfa import mosaic, pack

    if protocol not in PROTOCOLS:
        raise InvalidInputError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    data = Path(data) if data is not None else default_data(protocol)
    if data is None:
        raise InvalidInputError(f"protocol {protocol} needs --data")
    count = 0
    if protocol in ("demosaic", "synthetic-isp"):
        for i, path in enumerate(_photos(data)):
            if limit is not None and count >= limit:
                return
            target = _even(read_image(path))
            g = torch.Generator().manual_seed(seed * 100_003 + i)
            if protocol == "demosaic":
                m = mosaic(target, cfa)
                if noise:
                    m = (m + noise * torch.randn(m.shape, generator=g)).clamp(0, 1)
                item = {"mosaic": m, "packed": pack(m, cfa), "cfa": cfa}
            else:
                from isplab.synth.noise import degrade
                from isplab.synth.unprocess import unprocess

                raw, meta = unprocess(target[0], generator=g, cfa="RGGB", packed=True)
                if noise:
                    raw, info = degrade(raw, generator=g, noise=True)
                    meta = {**meta, **info}
                item = {"packed": raw[None], "metadata": meta}
            yield {"name": path.name, "target": target, **item}
            count += 1
        return
    from isplab.data import PairedRawRGBDataset, RGBPairDataset

    ds = PairedRawRGBDataset(data) if protocol == "paired" else RGBPairDataset(data)
    for i in range(len(ds)):
        if limit is not None and i >= limit:
            return
        it = ds[i]
        name = it.get("name", str(i))
        if protocol == "paired":
            yield {"name": name, "packed": it["raw"][None], "target": it["target"][None]}
        else:
            yield {"name": name, "rgb": it["input"][None], "target": it["target"][None]}


# --- methods -------------------------------------------------------------------------------


def _classic(protocol: str, algorithm: str) -> Method:
    from isplab.classic import demosaic

    def run(item: dict[str, Any]) -> torch.Tensor:
        if protocol == "demosaic":
            return demosaic(item["mosaic"], item["cfa"], algorithm)
        if protocol == "rgb-pairs":
            raise InvalidInputError("classic has no rgb-pairs form; use identity")
        if "metadata" not in item:
            raise InvalidInputError("classic on paired data needs camera metadata; evaluate "
                                    "it with isplab develop instead")
        from isplab.synth.unprocess import process

        return process(item["packed"], item["metadata"], demosaic=algorithm)

    return Method(f"classic:{algorithm}", run,
                  note="true WB gains and colour matrix" if protocol == "synthetic-isp" else "")


def _demosaicnet() -> Method:
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import demosaicnet
    except ImportError as exc:
        raise InvalidInputError("demosaicnet is not installed: pip install -c constraints.txt "
                                "-e '.[bench]'") from exc
    net = demosaicnet.BayerDemosaick(pretrained=True).eval()
    pad = 40  # the network crops 31 px per side (valid convolutions)

    def run(item: dict[str, Any]) -> torch.Tensor:
        if item.get("cfa", "RGGB") != "RGGB":
            raise InvalidInputError("the demosaicnet wrapper expects an RGGB mosaic")
        m = item["mosaic"]
        h, w = m.shape[-2:]
        # demosaicnet's pattern is GRBG: mirror padding keeps the Bayer phase, and an odd
        # left pad turns the RGGB origin into GRBG.
        p = torch.nn.functional.pad(m, (pad + 1, pad - 1, pad, pad), mode="reflect")
        masks = torch.zeros(1, 3, *p.shape[-2:])
        masks[:, 1, 0::2, 0::2] = 1
        masks[:, 0, 0::2, 1::2] = 1
        masks[:, 2, 1::2, 0::2] = 1
        masks[:, 1, 1::2, 1::2] = 1
        out = net(p * masks)
        c = (p.shape[-1] - out.shape[-1]) // 2
        top, left = pad - c, pad + 1 - c
        return out[..., top:top + h, left:left + w].clamp(0, 1)

    return Method("demosaicnet", run, note="Gharbi et al. 2016, released Bayer weights")


def _model(spec: str, protocol: str) -> Method:
    from isplab.models import is_registered, model_info, resolve, weights_file

    name, _, weights = spec.partition("=")
    if not is_registered(name) and weights_file(name) is None:
        raise InvalidInputError(f"unknown method {spec!r}: use classic[:demosaic], identity, "
                                "demosaicnet, a zoo name (=weights), a weights file or a run "
                                "directory")
    if is_registered(name) and not weights:
        torch.manual_seed(0)
        log.warning("%s has no weights: evaluating a random initialisation", name)
    model = resolve(name, weights=weights or None, allow_random=True)
    label = name if is_registered(name) else model.isplab_name
    note = f"weights {weights or weights_file(name)}" if weights or not is_registered(name) \
        else "RANDOM weights (none given)"
    model.eval()
    info = model_info(model.isplab_name) if ":" not in model.isplab_name else {}
    wants_rgb = info.get("input") in ("srgb", "linear_rgb")

    def run(item: dict[str, Any]) -> torch.Tensor:
        x = item["rgb"] if wants_rgb else item.get("packed")
        if x is None:
            raise InvalidInputError(f"{label} takes {'RGB' if wants_rgb else 'packed raw'} "
                                    f"input, which protocol {protocol} does not give")
        with torch.inference_mode():
            return model(x).clamp(0, 1)

    return Method(label, run, note=note,
                  parameters=sum(p.numel() for p in model.parameters()))


def resolve_method(spec: str, protocol: str) -> Method:
    """A :class:`Method` from its command-line spelling (see the module docstring)."""
    if spec == "identity":
        return Method("identity", lambda item: item["rgb"], note="the input itself")
    if spec == "classic" or spec.startswith("classic:"):
        algorithm = spec.partition(":")[2] or "bilinear"
        from isplab.classic import DEMOSAIC_METHODS

        if algorithm not in DEMOSAIC_METHODS:
            raise InvalidInputError(f"unknown demosaic {algorithm!r}; choose from "
                                    f"{', '.join(DEMOSAIC_METHODS)}")
        return _classic(protocol, algorithm)
    if spec == "demosaicnet":
        return _demosaicnet()
    return _model(spec, protocol)


# --- running -------------------------------------------------------------------------------


def evaluate(
    methods: Sequence[str],
    protocol: str,
    data: str | Path | None = None,
    metrics: Sequence[str] = ("psnr", "ssim"),
    border: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
    previews: int = 0,
) -> dict[str, Any]:
    """Run every method on every protocol item; return per-image values and aggregates.

    ``previews`` > 0 keeps, for the first that many images, the input preview, each
    method's output and the reference (``result["previews"]``, uint8 arrays) for
    :func:`isplab.report.html_report`.

    Returns a dict with ``protocol``, ``data``, ``border``, ``noise``, ``images`` (names)
    and ``methods``: name -> {``note``, ``mp_per_s``, metric -> {``mean``, ``median``,
    ``per_image``}}.
    """
    border = DEFAULT_BORDER[protocol] if border is None else border
    ms = [resolve_method(m, protocol) for m in methods]
    names = {}
    for m in ms:
        if m.name in names:
            raise InvalidInputError(f"method {m.name!r} given twice")
        names[m.name] = m
    scorers = {}
    for k in metrics:
        opts = {"border": border} if "border" in _metric_defaults(k) else {}
        scorers[k] = create_metric(k, **opts)
    images = []
    kept: dict[str, dict[str, Any]] = {}
    for item in protocol_items(protocol, Path(data) if data else None, noise, seed, limit):
        images.append(item["name"])
        target = item["target"]
        keep = len(kept) < previews
        if keep:
            kept[item["name"]] = {"input": _input_preview(item), "reference": _u8(target)}
        for m in ms:
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = m.run(item).float().clamp(0, 1)  # what an image file can hold
            m.seconds += time.perf_counter() - t0
            m.megapixels += target.shape[-2] * target.shape[-1] / 1e6
            if out.shape != target.shape:
                raise InvalidInputError(f"{m.name} gave {tuple(out.shape)} for "
                                        f"{item['name']}, the reference is {tuple(target.shape)}")
            for k, scorer in scorers.items():
                m.values.setdefault(k, []).append(float(scorer(out, target)[0]))
            if keep:
                kept[item["name"]][m.name] = _u8(out)
        if progress:
            progress(item["name"])
    if not images:
        raise InvalidInputError("the protocol produced no images", data)
    return {
        "previews": kept,
        "protocol": protocol, "data": str(data or default_data(protocol)), "border": border,
        "noise": noise, "seed": seed, "images": images,
        "methods": {
            m.name: {
                "note": m.note,
                "mp_per_s": m.megapixels / m.seconds if m.seconds else None,
                "parameters": m.parameters,
                **{k: {"mean": statistics.fmean(v), "median": statistics.median(v),
                       "per_image": v} for k, v in m.values.items()},
            }
            for m in ms
        },
    }


def _u8(x: torch.Tensor):
    return (x[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype("uint8")


def _input_preview(item: dict[str, Any]):
    """What the method starts from, viewable: the RGB input, or the raw bilinear-demosaiced
    with a plain sRGB curve (no white balance or colour correction)."""
    if "rgb" in item:
        return _u8(item["rgb"])
    from isplab.classic import srgb_gamma
    from isplab.models.common import packed_to_bilinear_rgb

    if "mosaic" in item:  # demosaic protocol: the mosaic as it is encoded
        return _u8(item["mosaic"].expand(-1, 3, -1, -1))
    return _u8(srgb_gamma(packed_to_bilinear_rgb(item["packed"]).clamp(0, 1)))


def _metric_defaults(name: str) -> dict:
    from isplab.metrics.registry import _REGISTRY

    if name not in _REGISTRY:
        create_metric(name)  # raises the registry's clear error
    return _REGISTRY[name].defaults


def markdown_table(result: dict[str, Any]) -> str:
    """The result as a markdown table: one row per method, mean / median per metric."""
    first = next(iter(result["methods"].values()))
    metrics = [k for k in first if isinstance(first[k], dict)]
    head = ["method", *[f"{k} mean / median" for k in metrics], "MP/s", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result["methods"].items():
        cells = [f"{r[k]['mean']:.4f} / {r[k]['median']:.4f}" for k in metrics]
        speed = f"{r['mp_per_s']:.2f}" if r["mp_per_s"] else "-"
        lines.append("| " + " | ".join([name, *cells, speed, r["note"] or ""]) + " |")
    return "\n".join(lines)
