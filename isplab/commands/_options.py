"""Options shared by several verbs (declared once) and the checks of option values.

Every numeric option is checked to be finite and in range before any work: a bad value is
one ``Invalid value`` line, never a traceback and never a black or white "successful" image.

Importing this module does not import typer (``isplab develop`` parses its options without
it, :mod:`isplab.commands._develop`): the option types (``opt.OutputDir``, ...) are made on
first use (PEP 562) and :func:`bad` imports typer when a value is bad.
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

HEADERLESS_PANEL = "Headerless raw (.raw/.bin files only when mixed with other raws)"
BATCH_PANEL = "Batch"


class ByteOrder(str, Enum):
    little = "little"
    big = "big"


# --- option types (typer, made on first use) -----------------------------------------------


def _option_types() -> dict:
    import typer

    return dict(
        OutputDir=Annotated[Path, typer.Option(
            "-o", "--output", help="Output folder (created if needed).", show_default=False)],
        Overwrite=Annotated[bool, typer.Option(
            "--overwrite", help="Replace outputs isplab wrote before (never an input, never a "
            "file isplab did not write).")],
        Quiet=Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")],
        Debug=Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")],
        Jobs=Annotated[int | None, typer.Option(
            "--jobs", "-j", help="Worker processes, each one file at a time (default: the "
            "machine's cores).", rich_help_panel=BATCH_PANEL, show_default=False)],
        Shard=Annotated[str | None, typer.Option(
            "--shard", help="K/N: process only the K-th of N deterministic parts of the inputs "
            "(one per machine or array task).", rich_help_panel=BATCH_PANEL,
            show_default=False)],
        MaxMegapixels=Annotated[float, typer.Option(
            "--max-megapixels", help="Refuse frames larger than this, checked from the header "
            "before decoding.")],
        Width=Annotated[int | None, typer.Option(
            help="Width in pixels (else from a name like frame_1920x1080_12bit_RGGB.raw).",
            rich_help_panel=HEADERLESS_PANEL, show_default=False)],
        Height=Annotated[int | None, typer.Option(
            help="Height in pixels.", rich_help_panel=HEADERLESS_PANEL, show_default=False)],
        Bits=Annotated[int | None, typer.Option(
            "--bits", help="Bits per sample (also for .npy/PNG mosaics).",
            rich_help_panel=HEADERLESS_PANEL, show_default=False)],
        ByteOrderOpt=Annotated[ByteOrder | None, typer.Option(
            help="Byte order of 16-bit samples.", rich_help_panel=HEADERLESS_PANEL,
            show_default=False)],
        Cfa=Annotated[str | None, typer.Option(
            help="Bayer pattern RGGB, BGGR, GRBG or GBRG.", rich_help_panel=HEADERLESS_PANEL,
            show_default=False)],
        BlackLevel=Annotated[str | None, typer.Option(
            help="Black level: one value or R,G1,G2,B.", rich_help_panel=HEADERLESS_PANEL,
            show_default=False)],
        WhiteLevel=Annotated[float | None, typer.Option(
            help="White (saturation) level.", rich_help_panel=HEADERLESS_PANEL,
            show_default=False)],
    )


#: the names :func:`_option_types` makes
OPTION_TYPES = ("OutputDir", "Overwrite", "Quiet", "Debug", "Jobs", "Shard", "MaxMegapixels",
                "Width", "Height", "Bits", "ByteOrderOpt", "Cfa", "BlackLevel", "WhiteLevel")


def __getattr__(name: str):
    if name in OPTION_TYPES:
        globals().update(_option_types())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bad(message: str) -> Exception:
    """typer's ``BadParameter`` (one ``Invalid value`` line), imported when a value is bad."""
    import typer

    return typer.BadParameter(message)


# --- value checks --------------------------------------------------------------------------


def finite(value: float, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """``value`` if finite and within [low, high] (``(low, high]`` with ``low_open``), else a
    BadParameter naming the option."""
    v = float(value)
    wrong = not math.isfinite(v) or (low is not None and (v <= low if low_open else v < low)) \
        or (high is not None and v > high)
    if wrong:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"<= {high:g}"
        span = " and ".join(x for x in (lo, hi) if x)
        raise bad(f"{name} must be a finite number{' ' + span if span else ''}, got "
                  f"{value!r}")
    return v


def floats(text: str, name: str, counts: tuple[int, ...]) -> tuple[float, ...]:
    """Comma-separated finite numbers, as many as one of ``counts``."""
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise bad(f"{name} takes {' or '.join(map(str, counts))} comma-separated numbers, "
                  f"got {text!r}") from None
    if len(vals) not in counts:
        raise bad(f"{name} takes {' or '.join(map(str, counts))} comma-separated numbers, "
                  f"got {text!r}")
    for v in vals:
        finite(v, name)
    return vals


def gamma(text: str) -> tuple[float, float]:
    """``srgb`` | ``bt709`` | ``linear`` | ``POWER`` | ``POWER,SLOPE`` (rawpy's gamma)."""
    named = {"srgb": (2.4, 12.92), "bt709": (2.222, 4.5), "linear": (1.0, 1.0)}
    if text.lower() in named:
        return named[text.lower()]
    vals = floats(text, "--gamma", (1, 2))
    power, slope = vals if len(vals) == 2 else (vals[0], 0.0)
    finite(power, "--gamma power", low=0, low_open=True, high=10)
    finite(slope, "--gamma slope", low=0, high=1000)
    return power, slope


def noise(text: str | None) -> tuple[float, float] | None:
    """``--noise SHOT,READ`` -> two finite variances >= 0."""
    if text is None:
        return None
    shot, read = floats(text, "--noise", (2,))
    return finite(shot, "--noise shot", low=0), finite(read, "--noise read", low=0)


def wb(text: str) -> dict:
    """``--wb`` -> ClassicISP white-balance options: ``camera``, ``none``, ``auto`` (the best
    measured estimator, :data:`isplab.classic.awb.AUTO`), an estimator's name (``gray-world``,
    ``white-patch``, ``shades-of-gray``, ``gray-edge``, ``gray-edge2``, ``ffcc``) or R,G,B
    gains."""
    w = text.lower().replace("_", "-")
    if w == "camera":
        return dict(use_camera_wb=True)
    if w == "none":
        return dict(use_camera_wb=False)
    if w and not w[0].isdigit() and w[0] not in "+-.":
        from isplab.classic import awb
        from isplab.errors import IsplabError

        try:
            method = awb.resolve(w)
        except IsplabError as exc:
            raise bad(f"--wb: {exc.reason}; or camera, auto, none, or R,G,B gains") from None
        return dict(use_camera_wb=False, use_auto_wb=True, auto_wb_method=method)
    gains = floats(text, "--wb gains", (3,))
    for g in gains:
        finite(g, "--wb gains", low=0, low_open=True)
    return dict(user_wb=gains)


def reader_overrides(width, height, bits, byte_order, cfa, black_level, white_level) -> dict:
    """The headerless / level options as keyword arguments of :func:`isplab.raw.read`."""
    o: dict = {}
    if width is not None:
        o["width"] = int(finite(width, "--width", low=2, high=1 << 20))
    if height is not None:
        o["height"] = int(finite(height, "--height", low=2, high=1 << 20))
    if bits is not None:
        o["bit_depth"] = int(finite(bits, "--bits", low=1, high=16))
    if byte_order is not None:
        o["byte_order"] = byte_order.value
    if cfa is not None:
        from isplab.raw.cfa import BAYER_PATTERNS

        if cfa.upper() not in BAYER_PATTERNS:
            raise bad(f"--cfa must be one of {', '.join(BAYER_PATTERNS)}, got {cfa!r}")
        o["cfa"] = cfa.upper()
    if black_level is not None:
        vals = floats(black_level, "--black-level", (1, 4))
        for v in vals:
            finite(v, "--black-level", low=0, high=65535)
        o["black_level"] = vals if len(vals) == 4 else vals[0]
    if white_level is not None:
        o["white_level"] = finite(white_level, "--white-level", low=0, low_open=True,
                                  high=65535)
    return o


#: the overrides that describe a headerless frame's layout (never applied to other files)
LAYOUT_KEYS = ("width", "height", "byte_order")


def overrides_for(path: Path, overrides: dict, mixed: bool) -> dict:
    """The reader options for one input: layout options (size, byte order) reach headerless
    files only; when headerless files are mixed with other raws, the level/CFA/bits options
    reach the headerless files only too (they describe those frames, not the DNG beside
    them)."""
    from isplab.formats import RAW_SUFFIXES, is_headerless

    if is_headerless(path) or path.suffix.lower() not in RAW_SUFFIXES:
        return dict(overrides)
    if mixed:
        return {}
    return {k: v for k, v in overrides.items() if k not in LAYOUT_KEYS}
