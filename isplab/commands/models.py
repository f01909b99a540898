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
    from isplab.errors import IsplabError
    from isplab.models import installed_weights, list_models, model_info

    try:
        names = [name] if name else list(list_models(include_private=all_))
        infos = [model_info(n) for n in names]
    except IsplabError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
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
