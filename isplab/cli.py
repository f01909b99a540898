"""The ``isplab`` command line: builds the typer app from the registered verbs.

Each verb lives in ``isplab/commands/<verb>.py`` as a function ``command`` (a thin layer over
the library); :data:`isplab.commands.COMMANDS` finds them. Shared here: the two consoles
(``out`` for results, ``err`` for progress and messages) and the logging set-up.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from isplab import __version__

app = typer.Typer(
    name="isplab",
    help="Learned and classical image signal processors: raw Bayer in, sRGB out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, soft_wrap=True)
out = Console()
log = logging.getLogger("isplab")


def _setup_logging(debug: bool, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.WARNING)
    handler = RichHandler(console=err, show_time=False, show_path=debug, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("isplab")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _version(value: bool) -> None:
    if value:
        out.print(f"isplab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """isplab: develop, train and evaluate image signal processors."""


def _build() -> None:
    from isplab.commands import COMMANDS

    for entry in COMMANDS.entries():
        app.command(entry.name, short_help=entry.description)(entry.obj)


_build()


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
