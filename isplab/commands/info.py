"""``isplab info``: a raw file's metadata from its header (size, CFA, levels, WB, matrices)."""

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
    pixels: Annotated[bool, typer.Option(
        "--pixels", help="Also decode the pixels: adds data_range and, when the file has no "
        "noise profile, one estimated from the pixels; fills what only decoding settles "
        "(an array's white level, a camera raw's levels). Costs a full decode: seconds and "
        "gigabytes on a large frame. Without it only the header is read.")] = False,
    max_megapixels: opt.MaxMegapixels = 200.0,
    width: opt.Width = None, height: opt.Height = None, bits: opt.Bits = None,
    byte_order: opt.ByteOrderOpt = None, cfa: opt.Cfa = None, black_level: opt.BlackLevel = None,
    white_level: opt.WhiteLevel = None,
    debug: opt.Debug = False,
) -> None:
    """Show a raw file's metadata from its header, without decoding the pixels: size, CFA,
    levels, white balance, colour matrices, make and model, the file's noise profile.
    --pixels decodes too: data range and a noise profile estimated from the pixels."""
    from rich.markup import escape
    from rich.table import Table

    from isplab import raw as rawio
    from isplab.cli import _setup_logging, err, out
    from isplab.errors import IsplabError

    _setup_logging(debug)
    opts = opt.reader_overrides(width, height, bits, byte_order, cfa, black_level, white_level)
    limit = opt.finite(max_megapixels, "--max-megapixels", low=0, low_open=True)
    try:
        if pixels:
            raw = rawio.read(file, max_megapixels=limit, **opts)
            from isplab.raw.fileinfo import quiet_logger

            with quiet_logger("isplab.raw"):  # read has said its warnings once
                meta = _decoded(raw, rawio.read_header(file, max_megapixels=limit, **opts))
        else:
            meta = _header_only(rawio.read_header(file, max_megapixels=limit, **opts))
    except IsplabError as exc:
        if debug:
            raise
        err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(meta, indent=2))
        return
    pending = set(meta.get("needs_decoding") or ())
    table = Table(title=str(file), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in meta.items():
        if k in pending and v is None:
            v = "(decode to know: --pixels)"
        elif isinstance(v, list) and v and isinstance(v[0], list):
            v = "\n".join("  ".join(f"{x:+.4f}" for x in row) for row in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items())
        table.add_row(k, str(v))
    out.print(table)


def _header_only(header) -> dict:
    meta = header.metadata()
    meta["megapixels"] = round(header.megapixels, 3)
    if header.noise_profile is not None:
        shot, read = header.noise_profile
        meta["noise_profile"] = {"shot": float(f"{shot:.4g}"), "read": float(f"{read:.4g}"),
                                 "source": "file"}
    else:
        meta["noise_profile"] = {"source": "none", "reason": "the file has none; --pixels "
                                 "estimates one from the pixels"}
    return meta


def _decoded(raw, header) -> dict:
    from isplab.classic.noise_profile import noise_profile_of
    from isplab.errors import IsplabError

    meta = raw.metadata()
    for k, v in header.metadata().items():  # what only the header reader gives (make, model)
        if k not in meta and k != "needs_decoding":
            meta[k] = v
    meta["megapixels"] = round(raw.megapixels, 3)
    meta["data_range"] = [float(raw.mosaic.min()), float(raw.mosaic.max())]
    try:
        p = noise_profile_of(raw)
        meta["noise_profile"] = {"shot": float(f"{p.shot:.4g}"), "read": float(f"{p.read:.4g}"),
                                 "source": p.source}
    except IsplabError as exc:
        meta["noise_profile"] = {"source": "none", "reason": exc.reason}
    return meta
