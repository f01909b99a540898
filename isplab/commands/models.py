"""``isplab models``: the model registry with parameter counts and installed weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def command(
    name: Annotated[str | None, typer.Argument(help="Show one model in detail.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include building blocks "
                                       "(discriminators).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the model zoo: parameters, input -> output, stride, installed weights."""
    from rich.table import Table

    from isplab.cli import err, out
    from isplab.weights_index import MANIFEST, installed_weights

    # the registry's facts as written to the manifest (a test keeps it equal to the
    # registry): listing the zoo imports no torch
    zoo = json.loads(MANIFEST.read_text())
    if name is not None and name not in zoo:
        err.print(f"[red]error:[/] unknown model {name!r}; available: "
                  f"{', '.join(n for n in zoo if zoo[n]['public'])}")
        raise typer.Exit(2)
    names = [name] if name else [n for n in sorted(zoo) if all_ or zoo[n]["public"]]
    infos = [zoo[n] for n in names]
    for info in infos:
        info["weights"] = [str(p) for p in installed_weights(info["name"])]
    if as_json:
        out.print_json(json.dumps(infos if name is None else infos[0], default=str))
        return
    if name:
        for key, value in infos[0].items():
            out.print(f"[bold]{key}[/]: {value}")
        return
    table = Table(title="isplab model zoo")
    for col in ("name", "parameters", "input -> output", "stride", "weights", "description"):
        table.add_column(col, justify="right" if col in ("parameters", "stride") else "left")
    for info in infos:
        scale = info["output_scale"]
        table.add_row(
            info["name"], f"{info['parameters']:,}",
            f"{info['input']} -> {info['output']}" + (f" x{scale}" if scale != 1 else ""),
            str(info["stride"]), ", ".join(Path(w).name for w in info["weights"]) or "-",
            info["description"],
        )
    out.print(table)
