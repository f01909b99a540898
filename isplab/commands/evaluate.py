"""``isplab evaluate``: methods side by side under one protocol (table, JSON, HTML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def command(
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A method (repeat for a side-by-side table): classic, "
        "classic:<demosaic>, classic:learned, identity, demosaicnet, ri, libraw:ahd, "
        "<zoo name>=<weights.safetensors>, a weights file, or a run directory; with noise, "
        "<method>+bm3d / +bilateral denoises after it, bm3d+<demosaic> the mosaic before.",
        show_default=False)] = None,
    protocol: Annotated[str | None, typer.Option(
        "--protocol", "-p", help="demosaic | synthetic-isp | paired | rgb-pairs.",
        show_default=False)] = None,
    files: Annotated[list[Path] | None, typer.Argument(
        help="With --merge: the --json files of the shards.", show_default=False)] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder of the protocol's images (demosaic/synthetic-isp default: "
        "../shared/data/kodak24).")] = None,
    metrics: Annotated[str, typer.Option(
        "--metrics", help="Comma-separated metric names (isplab metrics --list).")]
        = "psnr,ssim",
    border: Annotated[int | None, typer.Option(
        "--border", help="Pixels excluded at each side (default 8 for demosaic and "
        "synthetic-isp, else 0).")] = None,
    noise: Annotated[str, typer.Option(
        "--noise", help="Sensor noise: SHOT,READ variances (one level), or a Gaussian sigma "
        "(demosaic); on synthetic-isp any other non-zero value draws Brooks et al. levels "
        "per image.")] = "0",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the protocol's draws.")] = 0,
    limit: Annotated[int | None, typer.Option("--limit", help="First N images only.")] = None,
    shard: Annotated[str | None, typer.Option(
        "--shard", help="K/N: evaluate only the K-th of N deterministic parts of the "
        "protocol's images (by name; one per machine); join their --json files with "
        "--merge.", show_default=False)] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Join the --json files of sharded runs (the arguments) into the "
        "unsharded result: its table, --json and --html (no pictures).")] = False,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the full result (per image, mean, median) here.")] = None,
    html_out: Annotated[Path | None, typer.Option(
        "--html", help="Write a self-contained HTML report: side-by-side pictures with a "
        "zoomed detail, the table, plots (matplotlib, report extra).")] = None,
    previews: Annotated[int, typer.Option(
        "--previews", help="Images shown in the HTML report.")] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-image progress.")
                     ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")
                     ] = False,
) -> None:
    """Evaluate methods side by side under a named protocol; print a markdown table."""
    from isplab.cli import _setup_logging, err, out
    from isplab.errors import IsplabError
    from isplab.evaluate import markdown_table

    _setup_logging(debug, quiet)
    try:
        if merge:
            result = _merge(files, model, protocol, shard)
        else:
            if files:
                raise IsplabError(f"unexpected argument {files[0]} (JSON files are read "
                                  "with --merge)")
            result = _run(model, protocol, data, metrics, border, noise, seed, limit, shard,
                          previews if html_out else 0, quiet)
    except IsplabError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    out.print(_header(result), soft_wrap=True)
    out.print(markdown_table(result), markup=False, soft_wrap=True)
    _write(result, json_out, html_out)


def _run(model, protocol, data, metrics, border, noise, seed, limit, shard, previews,
         quiet) -> dict:
    from isplab.cli import err
    from isplab.errors import IsplabError
    from isplab.evaluate import evaluate
    from isplab.sharding import parse_shard

    if not model or not protocol:
        raise IsplabError("give --model (-m) and --protocol (-p), or --merge with the "
                          "shards' JSON files")
    done = []

    def tick(name: str) -> None:
        done.append(name)
        if not quiet:
            err.print(f"[dim]{len(done)}: {name}[/]")

    return evaluate(model, protocol, data, [m.strip() for m in metrics.split(",") if m],
                    border=border, noise=noise, seed=seed, limit=limit, progress=tick,
                    previews=previews, shard=parse_shard(shard))


def _merge(files, model, protocol, shard) -> dict:
    """The result of the shards' JSON files, joined (:func:`isplab.evaluate.merge_results`)."""
    from isplab.errors import InvalidInputError, IsplabError
    from isplab.evaluate import merge_results

    if model or protocol or shard:
        raise IsplabError("--merge takes the shards' JSON files only (their runs' --model, "
                          "--protocol and --shard are in them)")
    if not files:
        raise IsplabError("--merge needs the JSON files written by the shards' --json")
    results = []
    for f in files:
        try:
            results.append(json.loads(Path(f).read_text()))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"cannot read a JSON result: {exc}", f) from None
        if not isinstance(results[-1], dict):
            raise InvalidInputError("not a result of isplab evaluate --json", f)
    return merge_results(results, names=[str(f) for f in files])


def _header(result: dict) -> str:
    """The line above the table: protocol, data, images (the shard's, or a partial merge's)."""
    shard, missing = result.get("shard"), result.get("missing_shards")
    part = (f", shard {shard[0]}/{shard[1]} of {result['protocol_images']}" if shard else
            f" of {result['protocol_images']}, {', '.join(missing)} missing" if missing else "")
    return (f"protocol {result['protocol']} on {result['data']} ({len(result['images'])} "
            f"images{part}, border {result['border']}, noise {result['noise']})")


def _write(result: dict, json_out: Path | None, html_out: Path | None) -> None:
    """The --html report and the --json result (without the preview pictures)."""
    from isplab.cli import err
    from isplab.io import atomic_write

    if html_out:
        from isplab.report import html_report

        html_report(result, html_out)
        err.print(f"report written to {html_out}")
    if json_out:
        data = {k: v for k, v in result.items() if k != "previews"}
        text = json.dumps(data, indent=2) + "\n"
        atomic_write(json_out, lambda tmp: Path(tmp).write_text(text), overwrite=True)
