"""``isplab evaluate``: methods side by side under one protocol (table, JSON, HTML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def command(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="A method (repeat for a side-by-side table): classic, "
        "classic:<demosaic>, identity, demosaicnet, <zoo name>=<weights.safetensors>, a "
        "weights file, or a run directory.")],
    protocol: Annotated[str, typer.Option(
        "--protocol", "-p", help="demosaic | synthetic-isp | paired | rgb-pairs.")],
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
    from isplab.evaluate import evaluate, markdown_table
    from isplab.io import atomic_write

    _setup_logging(debug, quiet)
    done = []

    def tick(name: str) -> None:
        done.append(name)
        if not quiet:
            err.print(f"[dim]{len(done)}: {name}[/]")

    try:
        result = evaluate(model, protocol, data, [m.strip() for m in metrics.split(",") if m],
                          border=border, noise=noise, seed=seed, limit=limit, progress=tick,
                          previews=previews if html_out else 0)
    except IsplabError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    out.print(f"protocol {result['protocol']} on {result['data']} ({len(result['images'])} "
              f"images, border {result['border']}, noise {result['noise']})", soft_wrap=True)
    out.print(markdown_table(result), markup=False, soft_wrap=True)
    if html_out:
        from isplab.report import html_report

        html_report(result, html_out)
        err.print(f"report written to {html_out}")
    if json_out:
        data = {k: v for k, v in result.items() if k != "previews"}
        text = json.dumps(data, indent=2) + "\n"
        atomic_write(json_out, lambda tmp: Path(tmp).write_text(text), overwrite=True)
