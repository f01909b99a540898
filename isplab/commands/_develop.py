"""What ``isplab develop`` does, without typer: :func:`develop` (the verb's body, which
``isplab/commands/develop.py`` declares to typer) and :func:`quick`, the console script's
parser of the common command lines.

Start-up is most of a 2 MP develop's time (issue 19): typer 0.29 coerces each option through
a pydantic TypeAdapter, and importing typer, pydantic and rich and building the adapters for
develop's options took about as long as reading, developing and writing the frame.
:func:`quick` parses the plain command lines (known options, each given once, as ``--name
VALUE``, ``--name=VALUE`` or ``-o VALUE``, with values typer takes as they are) and calls
:func:`develop` with what typer would pass; for anything else (``--help``, an unknown or
malformed option, a value typer would convert or reject, a value :func:`develop` rejects
before any work) it answers None and the typer app runs the command line instead, so help,
errors and their messages stay typer's. ``tests/test_develop_quick.py`` checks that both
parsers give :func:`develop` the same arguments and both runs read the same.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from isplab.commands import _options as opt


class Demosaic(str, Enum):
    bilinear = "bilinear"
    malvar2004 = "malvar2004"
    menon2007 = "menon2007"
    learned = "learned"


class OutFormat(str, Enum):
    png = "png"
    tiff = "tiff"
    jpg = "jpg"


class Tone(str, Enum):
    none = "none"
    smoothstep = "smoothstep"
    filmic = "filmic"


@dataclass
class DevelopWorker:
    """Develops one file (a picklable recipe: each worker process builds the pipeline once,
    on its first file)."""

    pipeline: dict[str, Any]
    reader: dict[str, Any]
    mixed: bool
    output_bps: int
    overwrite: bool
    max_megapixels: float
    profile: Any = None  # a camera profile (isplab.classic.profile.Profile): levels, camera check
    look: Any = None  # a look (isplab.classic.look.LookProfile), applied to the developed sRGB
    _isp: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # workers build their own pipeline
        return {**self.__dict__, "_isp": None}

    def build(self) -> Any:
        if self._isp is None:
            self._isp = build_pipeline(**self.pipeline)
        return self._isp

    def __call__(self, task) -> list[str]:
        from isplab import raw as rawio
        from isplab.io import write_image

        isp = self.build()
        options = opt.overrides_for(task.source, self.reader, self.mixed)
        raw = rawio.read(task.source, max_megapixels=self.max_megapixels, **options)
        notes = []
        if self.profile is not None:
            raw = self.profile.apply_levels(raw)
            warning = self.profile.camera_warning(task.source)
            notes += [f"warning: {warning}"] if warning else []
        if self.look is None:
            image = isp.postprocess(raw, self.output_bps)
        else:
            image = _with_look(isp.postprocess(raw, 16), self.look, self.output_bps)
        write_image(task.target, image, bits=self.output_bps, overwrite=self.overwrite)
        return notes


def _with_look(image16, look, bits: int):
    """A 16-bit develop with ``look`` applied, quantised to ``bits``."""
    import numpy as np

    from isplab.classic.look import apply_look

    styled = apply_look(image16, look)
    return (styled * (255.0 if bits == 8 else 65535.0) + 0.5).astype(
        np.uint8 if bits == 8 else np.uint16)


def build_pipeline(isp: str, weights: str | None, onnx: str | None, tile: int | None,
                   overlap: int | None, device: str, dtype: str, classic: dict[str, Any],
                   backend: str = "auto"):
    """The developer: LightISP (the classical options the torch-free 16-bit path covers),
    ClassicISP, the hybrid ISP (``learned`` or ``--demosaic learned``; its learned stage on
    ``backend``) or a blind zoo model (name + weights, weights file, run folder, ONNX file)."""
    hybrid = isp == "learned" or classic.get("demosaic_algorithm") == "learned"
    if hybrid and onnx is not None:
        raise opt.bad("--onnx runs a blind zoo ISP exported with isplab export; the hybrid ISP "
                      "(--isp learned) runs its learned stage in onnxruntime itself "
                      "(--backend)")
    if isp in ("classic", "learned") and onnx is None:
        if hybrid:
            from isplab.infer.hybrid import hybrid_isp

            return hybrid_isp(weights, tile=tile, overlap=overlap, device=device, dtype=dtype,
                              backend=backend, **classic)
        if light(isp, onnx, classic):  # the 16-bit OpenCV develop: no torch in this process
            from isplab.classic.light import LightISP

            return LightISP(**classic)
        from isplab.classic.pipeline import ClassicISP

        return ClassicISP(**classic)
    from isplab.infer.develop import learned_isp

    return learned_isp(isp, weights=weights, onnx=onnx, tile=tile, overlap=overlap,
                       device=device, dtype=dtype)


def light(isp: str, onnx: str | None, classic: dict[str, Any]) -> bool:
    """Whether :func:`build_pipeline` gives the torch-free LightISP for these settings."""
    if isp != "classic" or onnx is not None or classic.get("demosaic_algorithm") == "learned":
        return False
    from isplab.classic.light import covers

    return covers(classic)


def _check_device(device: str, dtype: str, backend: str = "auto") -> None:
    if backend not in ("auto", "torch", "onnxruntime"):  # isplab.infer.backends.BACKENDS
        raise opt.bad(f"--backend must be auto, torch or onnxruntime, got {backend!r}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise opt.bad(f"--device must be auto, cpu or cuda[:i], got {device!r}")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise opt.bad(f"--dtype must be float32, bfloat16 or float16, got {dtype!r}")


def develop(
    inputs: list[Path] | None = None, output: Path = ..., sample: bool = False,
    isp: str = "classic", weights: Path | None = None, noise: str | None = None,
    onnx: Path | None = None, tile: int | None = None, overlap: int | None = None,
    device: str = "auto", backend: str = "auto", dtype: str = "float32", wb: str = "camera",
    demosaic: Demosaic = Demosaic.bilinear, output_bps: int = 8, fmt: OutFormat = OutFormat.png,
    half_size: bool = False, no_auto_bright: bool = False, bright: float = 1.0,
    tone: Tone = Tone.none, gamma: str = "srgb", denoise: float = 0.0,
    profile: Path | None = None, look: Path | None = None, max_megapixels: float = 200.0,
    overwrite: bool = False, jobs: int | None = None, shard: str | None = None,
    width: int | None = None, height: int | None = None, bits: int | None = None,
    byte_order: opt.ByteOrder | None = None, cfa: str | None = None,
    black_level: str | None = None, white_level: float | None = None, quiet: bool = False,
    debug: bool = False,
) -> int:
    """``isplab develop`` (the options of ``isplab/commands/develop.py``) -> the exit code; a
    bad option value raises typer's ``BadParameter`` before any work."""
    from isplab.cli import _setup_logging, err

    _setup_logging(debug, quiet)
    if output_bps not in (8, 16):
        raise opt.bad("--output-bps must be 8 or 16")
    if fmt is OutFormat.jpg and output_bps == 16:
        raise opt.bad("JPEG is 8-bit only: use --format png or tiff with --output-bps 16")
    _check_device(device, dtype, backend)
    classic = dict(
        demosaic_algorithm=demosaic.value, half_size=half_size, no_auto_bright=no_auto_bright,
        bright=opt.finite(bright, "--bright", low=0, low_open=True, high=1e4),
        tone=tone.value, gamma=opt.gamma(gamma),
        denoise_strength=opt.finite(denoise, "--denoise", low=0, high=1),
        noise=opt.noise(noise), **opt.wb(wb))
    worker = DevelopWorker(
        pipeline=dict(isp=isp, weights=None if weights is None else str(weights),
                      onnx=None if onnx is None else str(onnx), tile=tile, overlap=overlap,
                      device=device, dtype=dtype, classic=classic, backend=backend),
        reader=opt.reader_overrides(width, height, bits, byte_order, cfa, black_level,
                                    white_level),
        mixed=False, output_bps=output_bps, overwrite=overwrite,
        max_megapixels=opt.finite(max_megapixels, "--max-megapixels", low=0, low_open=True),
        profile=_profile(profile, isp, wb, classic), look=_look(look))
    inputs = list(inputs or [])
    if not inputs and not sample:
        raise opt.bad("give raw files or folders to develop, or --sample")
    return _run(worker, inputs, output, fmt, sample, jobs, shard, quiet, debug, err)


def _profile(path: Path | None, isp: str, wb: str, classic: dict):
    """Load ``--profile`` and put its transform (and white balance, unless ``--wb`` is
    given) into the ClassicISP options; a bad file is one ``Invalid value`` line."""
    if path is None:
        return None
    from isplab.classic.profile import load_profile
    from isplab.errors import IsplabError

    if isp not in ("classic", "learned"):
        raise opt.bad("--profile works with --isp classic or learned")
    try:
        prof = load_profile(path)
    except IsplabError as exc:
        raise opt.bad(f"--profile: {exc}") from None
    options = prof.isp_options()
    if wb.lower() != "camera":  # an explicit --wb wins over the profile's gains
        options.pop("user_wb")
    classic.update(options)
    return prof


def _look(path: Path | None):
    """Load ``--look``; a bad file is one ``Invalid value`` line."""
    if path is None:
        return None
    from isplab.classic.look import LookProfile
    from isplab.errors import IsplabError

    try:
        return LookProfile.load(path)
    except IsplabError as exc:
        raise opt.bad(f"--look: {exc}") from None


def _run(worker: DevelopWorker, inputs: list[Path], output: Path, fmt: OutFormat, sample: bool,
         jobs: int | None, shard: str | None, quiet: bool, debug: bool, err) -> int:
    from isplab.commands import _batch
    from isplab.errors import IsplabError
    from isplab.formats import OUTPUT_FORMATS, RAW_SCAN_SUFFIXES, is_headerless

    settings = worker.pipeline
    if light(settings["isp"], settings["onnx"], settings["classic"]):
        # torch-free workers fork from a server that starts up while this process does
        _batch.prestart(worker, _batch.default_jobs() if jobs is None else jobs, inputs)
    try:
        worker.build()  # a bad --isp / --weights fails once, before any file
        parts = _batch.parse_shard(shard)
        folder = _batch.OutputFolder(output)
        folder.prepare()
        if sample:
            inputs.insert(0, _sample(output, quiet, err))
    except IsplabError as exc:
        if debug:
            raise
        from rich.markup import escape

        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    files, problems = _batch.collect(inputs, RAW_SCAN_SUFFIXES)
    files = _batch.select_shard(files, parts)
    worker.mixed = any(is_headerless(f) for f in files) and \
        not all(is_headerless(f) for f in files)
    plan = _batch.plan_outputs(files, output, OUTPUT_FORMATS[fmt.value], worker.overwrite)
    n = _batch.default_jobs() if jobs is None else int(opt.finite(jobs, "--jobs", low=1))
    return _batch.run_batch("develop", "developed", plan, worker, jobs=n, quiet=quiet,
                            debug=debug, console=err, problems=problems, folder=folder)


def _sample(output: Path, quiet: bool, err) -> Path:
    from isplab.sample import write_sample

    path, written = write_sample(output)
    if not quiet:
        err.print(f"sample raw {'written to' if written else 'already in'} {path}")
    return path


# --- the quick parser ------------------------------------------------------------------------

#: option names that are not ``--`` + the parameter's name with ``-`` for ``_``
_NAMES = {"fmt": ("--format",), "output": ("-o", "--output"), "jobs": ("--jobs", "-j"),
          "quiet": ("--quiet", "-q")}
#: values taken as they are: plain decimal integers and numbers (what typer converts the
#: same way; anything else, a sign included, is left to typer)
_INT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_ENUMS = {"Demosaic": Demosaic, "OutFormat": OutFormat, "Tone": Tone,
          "opt.ByteOrder": opt.ByteOrder}


def options() -> dict[str, tuple[str, str]]:
    """Option name -> (parameter, kind) for :func:`develop`'s parameters; kind is ``flag``,
    ``int``, ``float``, ``str``, ``path`` or an enum's name (from the annotations)."""
    table = {}
    for name, param in inspect.signature(develop).parameters.items():
        if name == "inputs":
            continue
        kind = param.annotation.removesuffix(" | None")
        kind = {"bool": "flag", "Path": "path"}.get(kind, kind)
        for flag in _NAMES.get(name, ("--" + name.replace("_", "-"),)):
            table[flag] = (name, kind)
    return table


def _value(kind: str, text: str) -> Any:
    """``text`` as typer would pass it, or None when typer should decide."""
    if not text or text.startswith("-"):
        return None
    if kind == "int":
        return int(text) if _INT.fullmatch(text) else None
    if kind == "float":
        return float(text) if _FLOAT.fullmatch(text) else None
    if kind == "path":  # typer refuses an existing path it cannot read
        return Path(text) if not os.path.exists(text) or os.access(text, os.R_OK) else None
    if kind in _ENUMS:
        enum = _ENUMS[kind]
        return enum(text) if text in {e.value for e in enum} else None
    return text if kind == "str" else None  # a kind added later: typer's until taught here


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of :func:`develop` for ``isplab develop ARGV`` (only those
    given), or None when the typer app should parse ``argv``."""
    table = options()
    kwargs: dict[str, Any] = {}
    inputs: list[Path] = []
    args = list(argv)
    while args:
        token = args.pop(0)
        if not token.startswith("-"):
            path = _value("path", token)
            if path is None:
                return None
            inputs.append(path)
            continue
        flag, eq, text = token.partition("=") if token.startswith("--") else (token, "", "")
        if flag not in table:
            return None  # --help, --, -qo, an unknown option: typer's
        name, kind = table[flag]
        if name in kwargs:
            return None  # given twice
        if kind == "flag":
            if eq:
                return None
            kwargs[name] = True
            continue
        if not eq:
            if not args:
                return None
            text = args.pop(0)
        value = _value(kind, text)
        if value is None:
            return None
        kwargs[name] = value
    if "output" not in kwargs or kwargs.get("jobs") == 0:
        return None  # typer's "Missing option"; --jobs 0 is refused after the folder is made
    if inputs:
        kwargs["inputs"] = inputs
    return kwargs


def quick(argv: list[str]) -> int | None:
    """Run ``isplab develop ARGV`` without typer -> the exit code, or None when the typer
    app should run it (before any output is written)."""
    kwargs = parse(argv)
    if kwargs is None:
        return None
    try:
        return develop(**kwargs)
    except Exception as exc:
        typer = sys.modules.get("typer")
        if typer is not None and isinstance(exc, typer.BadParameter):
            return None  # rejected before any work: typer shows it, with the usage line
        raise
