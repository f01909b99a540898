"""Running methods under a protocol: per-image values, aggregates, a markdown table, and the
merge of sharded runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from isplab.errors import InvalidInputError
from isplab.evaluate.methods import Method, resolve_method
from isplab.evaluate.protocols import default_border, default_data, get_protocol, protocol_items
from isplab.metrics import create_metric
from isplab.sharding import in_shard


def evaluate(
    methods: Sequence[str],
    protocol: str,
    data: str | Path | None = None,
    metrics: Sequence[str] = ("psnr", "ssim"),
    border: int | None = None,
    noise: Any = 0.0,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
    previews: int = 0,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Run every method on every protocol item; return per-image values and aggregates.

    ``previews`` > 0 keeps, for the first that many images, the input preview, each
    method's output and the reference (``result["previews"]``, uint8 arrays) for
    :func:`isplab.report.html_report`. ``shard=(K, N)`` evaluates only the items of shard K
    of N (:func:`in_shard`, by item name): N runs cover the protocol exactly once, and
    :func:`isplab.evaluate.merge.merge_results` joins their results; a shard may be empty.

    Returns a dict with ``protocol``, ``data``, ``border``, ``noise``, ``seed``, ``limit``,
    ``metrics``, ``shard``, ``images`` (names), ``indices`` (each image's position in the
    protocol), ``protocol_images`` (how many the protocol gave, all shards), ``methods``:
    name -> {``note``, ``mp_per_s``, ``megapixels``, ``seconds``, ``parameters``, metric ->
    {``mean``, ``median``, ``per_image``}}, and ``previews``.
    """
    proto = get_protocol(protocol)
    if data is None and proto.default_data() is None:
        raise InvalidInputError(f"protocol {protocol} needs --data")
    border = default_border(protocol) if border is None else border
    ms = _methods(methods, protocol, proto.provides)
    scorers = {}
    for k in metrics:
        opts = {"border": border} if "border" in _metric_defaults(k) else {}
        scorers[k] = create_metric(k, **opts)
    shard = _check_shard(shard)
    images, indices, total = [], [], 0
    kept: dict[str, dict[str, Any]] = {}
    items = protocol_items(protocol, Path(data) if data else None, noise, seed, limit)
    for index, item in enumerate(items):
        total += 1
        if shard is not None and not in_shard(item["name"], shard):
            continue
        images.append(item["name"])
        indices.append(index)
        keep = len(kept) < previews
        if keep:
            kept[item["name"]] = {"input": _input_preview(item), "reference": _u8(item["target"])}
        for m in ms:
            out = _score(m, item, scorers)
            if keep:
                kept[item["name"]][m.name] = _u8(out)
        if progress:
            progress(item["name"])
    if not total:
        raise InvalidInputError("the protocol produced no images", data)
    return {
        "previews": kept,
        "protocol": protocol, "data": str(data or default_data(protocol)), "border": border,
        "noise": noise, "seed": seed, "limit": limit, "metrics": list(scorers),
        "shard": shard, "images": images, "indices": indices, "protocol_images": total,
        "methods": {m.name: method_summary(m.note, m.parameters, m.megapixels, m.seconds,
                                           m.values) for m in ms},
    }


def method_summary(note: str, parameters: int | None, megapixels: float, seconds: float,
                   values: dict[str, list[float]]) -> dict[str, Any]:
    """A method's entry in a result: speed from the total megapixels and seconds, and
    mean / median / per-image values per metric (none for an empty shard)."""
    return {
        "note": note,
        "mp_per_s": megapixels / seconds if seconds else None,
        "megapixels": megapixels, "seconds": seconds,
        "parameters": parameters,
        **{k: {"mean": statistics.fmean(v), "median": statistics.median(v), "per_image": v}
           for k, v in values.items() if v},
    }


def _methods(methods: Sequence[str], protocol: str, provides: frozenset[str]) -> list[Method]:
    """The methods by name, each checked against what the protocol provides, none twice."""
    ms = [resolve_method(m, protocol) for m in methods]
    for m in ms:
        missing = m.needs - provides
        if missing:
            raise InvalidInputError(f"{m.name} needs {', '.join(sorted(missing))}, which "
                                    f"protocol {protocol} does not give")
    names: set[str] = set()
    for m in ms:
        if m.name in names:
            raise InvalidInputError(f"method {m.name!r} given twice")
        names.add(m.name)
    return ms


def _check_shard(shard: Sequence[int] | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    k, n = (int(v) for v in shard)
    if not 1 <= k <= n:
        raise InvalidInputError(f"shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def _score(m: Method, item: dict[str, Any], scorers: dict[str, Any]) -> torch.Tensor:
    """Run ``m`` on ``item`` (timed), score its output against the target, return it."""
    target = item["target"]
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
    return out


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
    from isplab.metrics.registry import metric_spec

    return metric_spec(name).defaults


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
