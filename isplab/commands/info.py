"""``isplab info``: a raw file's metadata (size, CFA, levels, WB, matrices, noise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from isplab.commands import _options as opt


def command(
    file: Annotated[Path, typer.Argument(help="A raw file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
    max_megapixels: opt.MaxMegapixels = 200.0,
    width: opt.Width = None, height: opt.Height = None, bits: opt.Bits = None,
    byte_order: opt.ByteOrderOpt = None, cfa: opt.Cfa = None, black_level: opt.BlackLevel = None,
    white_level: opt.WhiteLevel = None,
    debug: opt.Debug = False,
) -> None:
    """Show a raw file's metadata: size, CFA, levels, white balance, colour matrices and the
    noise profile (from the file, else estimated from the pixels)."""
    from rich.markup import escape
    from rich.table import Table

    from isplab import raw as rawio
    from isplab.cli import _setup_logging, err, out
    from isplab.errors import IsplabError

    _setup_logging(debug)
    opts = opt.reader_overrides(width, height, bits, byte_order, cfa, black_level, white_level)
    limit = opt.finite(max_megapixels, "--max-megapixels", low=0, low_open=True)
    try:
        raw = rawio.read(file, max_megapixels=limit, **opts)
    except IsplabError as exc:
        if debug:
            raise
        err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    meta = _metadata(raw)
    if as_json:
        print(json.dumps(meta, indent=2))
        return
    table = Table(title=str(file), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in meta.items():
        if isinstance(v, list) and v and isinstance(v[0], list):
            v = "\n".join("  ".join(f"{x:+.4f}" for x in row) for row in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items())
        table.add_row(k, str(v))
    out.print(table)


def _metadata(raw) -> dict:
    from isplab.classic.noise_profile import noise_profile_of
    from isplab.errors import IsplabError

    meta = raw.metadata()
    meta["megapixels"] = round(raw.megapixels, 3)
    meta["data_range"] = [float(raw.mosaic.min()), float(raw.mosaic.max())]
    try:
        p = noise_profile_of(raw)
        meta["noise_profile"] = {"shot": float(f"{p.shot:.4g}"), "read": float(f"{p.read:.4g}"),
                                 "source": p.source}
    except IsplabError as exc:
        meta["noise_profile"] = {"source": "none", "reason": exc.reason}
    return meta
