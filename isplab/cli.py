"""The ``isplab`` command line: builds the typer app from the registered verbs.

Each verb lives in ``isplab/commands/<verb>.py`` as a function ``command`` (a thin layer over
the library); :data:`isplab.commands.COMMANDS` finds them. Shared here: the two consoles
(``out`` for results, ``err`` for progress and messages) and the logging set-up.

Importing this module imports neither typer nor rich: ``app`` (and the consoles with it) is
made on first use (PEP 562). :func:`main`, the console script, runs the plain ``isplab
develop`` command lines without typer (:func:`isplab.commands._develop.quick`: typer and
pydantic take about as long to start as a 2 MP develop, issue 19) and everything else, help
and errors included, through the app.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("isplab")


def _make_app():
    """The typer app with every verb, and the consoles (made here, as when this module
    built them on import)."""
    global app, err, out, typer, Annotated

    from typing import Annotated  # noqa: F401  (the annotations of _main resolve here)

    import typer
    from rich.console import Console

    err = Console(stderr=True, soft_wrap=True)
    out = Console()
    application = typer.Typer(
        name="isplab",
        help="Learned and classical image signal processors: raw Bayer in, sRGB out.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    application.callback()(_main)
    from isplab.commands import COMMANDS

    for entry in COMMANDS.entries():
        application.command(entry.name, short_help=entry.description)(entry.obj)
    app = application
    return app


def _version(value: bool) -> None:
    if value:
        from isplab import __version__

        out.print(f"isplab {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """isplab: develop, train and evaluate image signal processors."""


class _LazyConsole:
    """A rich ``Console(**kwargs)`` made on first use: a quick develop that prints nothing
    (``-q``, no failure) never imports rich."""

    def __init__(self, **kwargs: Any):
        self._kwargs = kwargs
        self._console = None

    def _get(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self._get(), name)

    def __enter__(self):
        return self._get().__enter__()

    def __exit__(self, *exc) -> None:
        self._get().__exit__(*exc)


class _LazyHandler(logging.Handler):
    """A handler that makes its real handler (``make()``) at the first record it passes."""

    def __init__(self, make):
        super().__init__()
        self._make = make
        self._handler = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._handler is None:
            self._handler = self._make()
        self._handler.handle(record)


def __getattr__(name: str):
    if name == "app":
        return _make_app()
    if name in ("err", "out"):  # no app in this process (the quick develop): made on use
        console = _LazyConsole(stderr=True, soft_wrap=True) if name == "err" else _LazyConsole()
        globals()[name] = console
        return console
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _setup_logging(debug: bool, quiet: bool = False) -> None:
    from isplab import cli  # the consoles of this module (also when run as __main__)

    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.WARNING)
    console = cli.err

    def make() -> logging.Handler:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_time=False, show_path=debug, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        return handler

    root = logging.getLogger("isplab")
    root.handlers[:] = [_LazyHandler(make) if isinstance(console, _LazyConsole) else make()]
    root.setLevel(level)
    root.propagate = False


def main() -> None:
    """Console entry point."""
    from isplab import cli

    try:
        if sys.argv[1:2] == ["develop"]:
            from isplab.commands._develop import quick

            code = quick(sys.argv[2:])
            if code is not None:
                sys.exit(code)
        cli.app()
    except KeyboardInterrupt:  # pragma: no cover
        cli.err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
