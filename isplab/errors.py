"""Exceptions raised by isplab.

Every error meant for a user carries the file it concerns (when there is one) and says
what is wrong in one line, so the CLI can print ``str(error)`` without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class IsplabError(Exception):
    """Base class of the errors isplab raises on purpose (bad input, missing weights, ...)."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class RawReadError(IsplabError):
    """A raw file could not be read: empty, truncated, corrupt, not a raw, wrong size."""


class UnsupportedCFAError(IsplabError):
    """The sensor's colour filter array is not a 2x2 Bayer pattern (X-Trans, Foveon, CMYG...)."""


class InvalidInputError(IsplabError):
    """Data that cannot be processed: wrong shape, NaN/Inf values, out-of-range parameters."""
