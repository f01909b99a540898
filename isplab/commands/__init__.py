"""The CLI verbs: each ``isplab/commands/<verb>.py`` defines ``command`` (typer options ->
library calls). Modules starting with ``_`` are shared helpers (batch runner, options).

:data:`COMMANDS` (an :class:`isplab.registry.Registry`) holds them by verb name; a new verb is
a new file here, nothing else.
"""

from __future__ import annotations

from isplab.registry import Registry


def _scan() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{mod.name}")
            first = (module.__doc__ or "").strip().splitlines()[0]
            summary = first.split(":", 1)[1].strip() if first.startswith("``") else first
            COMMANDS.add(mod.name.replace("_", "-"), module.command,
                         description=summary[:1].upper() + summary[1:].rstrip(".") + ".")


COMMANDS: Registry = Registry("command", loader=_scan)
