"""One small registry for every kind of named thing (models, losses, metrics, datasets,
objectives, evaluation protocols and methods, CLI commands).

A registry maps a name to an entry (the object plus keyword metadata) and is filled where the
thing is defined, with a decorator::

    PROTOCOLS = Registry("protocol")

    @PROTOCOLS.register("demosaic", description="...")
    class Demosaic: ...

    PROTOCOLS.get("demosaic")        # the object; unknown names raise one clear error
    PROTOCOLS.entry("demosaic").meta  # its metadata
    PROTOCOLS.names()                 # sorted names

Nothing outside a registry reads its dict; names are looked up, never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from isplab.errors import InvalidInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered name: the object and its metadata."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return str(self.meta.get("description") or "")


class Registry(Generic[T]):
    """Name -> :class:`Entry` for one kind of thing (``kind`` names it in errors)."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._loader = loader
        self._loaded = loader is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def add(self, name: str, obj: T, **meta: Any) -> T:
        """Register ``obj`` as ``name`` (a second, different object under one name raises)."""
        old = self._entries.get(name)
        if old is not None and old.obj is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, obj, dict(meta))
        return obj

    def peek(self, name: str) -> Entry[T] | None:
        """The entry of ``name`` if registered so far (no loading, no error)."""
        return self._entries.get(name)

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(obj: T) -> T:
            return self.add(name, obj, **meta)

        return deco

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name in self._entries

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name``; raises InvalidInputError listing the choices."""
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            raise InvalidInputError(f"unknown {self.kind} {name!r}; choose from "
                                    f"{', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        self._load()
        return iter([self._entries[n] for n in sorted(self._entries)])

    def describe(self) -> dict[str, str]:
        """Name -> one-line description."""
        return {e.name: e.description for e in self.entries()}
