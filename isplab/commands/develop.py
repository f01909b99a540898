"""``isplab develop``: raw files -> photos, with the classical, hybrid or a zoo ISP."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from isplab.commands import _options as opt

LEARNED_PANEL = "Learned ISP"


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
        raise typer.BadParameter("--onnx runs a blind zoo ISP exported with isplab export; the "
                                 "hybrid ISP (--isp learned) runs its learned stage in "
                                 "onnxruntime itself (--backend)")
    if isp in ("classic", "learned") and onnx is None:
        if hybrid:
            from isplab.infer.hybrid import hybrid_isp

            return hybrid_isp(weights, tile=tile, overlap=overlap, device=device, dtype=dtype,
                              backend=backend, **classic)
        from isplab.classic.light import LightISP, covers

        if covers(classic):  # the 16-bit OpenCV develop: no torch in this process
            return LightISP(**classic)
        from isplab.classic.pipeline import ClassicISP

        return ClassicISP(**classic)
    from isplab.infer.develop import learned_isp

    return learned_isp(isp, weights=weights, onnx=onnx, tile=tile, overlap=overlap,
                       device=device, dtype=dtype)


def _check_device(device: str, dtype: str, backend: str = "auto") -> None:
    import re

    if backend not in ("auto", "torch", "onnxruntime"):  # isplab.infer.backends.BACKENDS
        raise typer.BadParameter(f"--backend must be auto, torch or onnxruntime, got "
                                 f"{backend!r}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda[:i], got {device!r}")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise typer.BadParameter(f"--dtype must be float32, bfloat16 or float16, got {dtype!r}")


Inputs = Annotated[list[Path] | None, typer.Argument(
    help="Raw files (DNG, camera raws, .raw, .npy, mosaic PNG/TIFF) or folders.",
    show_default=False)]
Sample = Annotated[bool, typer.Option(
    "--sample", help="Develop the built-in sample raw (written into the output folder).")]
Isp = Annotated[str, typer.Option(
    help="classic; learned (hybrid: the file's metadata + the learned jdd_net demosaic and "
    "denoise); or a blind zoo model: a name with --weights, a weights file, a run or "
    "checkpoint folder.")]
Weights = Annotated[Path | None, typer.Option(
    "--weights", help="Weights for --isp NAME, or other jdd_net weights for the learned "
    "demosaic.", rich_help_panel=LEARNED_PANEL, show_default=False)]
Noise = Annotated[str | None, typer.Option(
    "--noise", help="The raw's noise as SHOT,READ variances (default: the DNG "
    "NoiseProfile, else estimated from the raw).", rich_help_panel=LEARNED_PANEL,
    show_default=False)]
Onnx = Annotated[Path | None, typer.Option(
    "--onnx", help="An exported ONNX model, run by onnxruntime.",
    rich_help_panel=LEARNED_PANEL, show_default=False)]
Tile = Annotated[int | None, typer.Option(
    "--tile", help="Tile side in packed pixels (default: from free memory).",
    rich_help_panel=LEARNED_PANEL, show_default=False)]
Overlap = Annotated[int | None, typer.Option(
    "--overlap", help="Tile overlap in packed pixels (default: the model's).",
    rich_help_panel=LEARNED_PANEL, show_default=False)]
Device = Annotated[str, typer.Option(
    "--device", help="auto, cpu or cuda[:i].", rich_help_panel=LEARNED_PANEL)]
Backend = Annotated[str, typer.Option(
    "--backend", help="The hybrid ISP's learned stage on: auto (onnxruntime on the CPU when "
    "installed, else torch), torch or onnxruntime; $ISPLAB_BACKEND sets the default.",
    rich_help_panel=LEARNED_PANEL)]
Dtype = Annotated[str, typer.Option(
    "--dtype", help="float32, bfloat16 or float16 (CUDA).", rich_help_panel=LEARNED_PANEL)]
Wb = Annotated[str, typer.Option(
    help="White balance: camera, auto (the best measured estimator), an estimator (gray-world, "
    "white-patch, shades-of-gray, gray-edge, gray-edge2, ffcc), none, or gains R,G,B.")]
DemosaicOpt = Annotated[Demosaic, typer.Option(help="Demosaicing algorithm.")]
OutputBps = Annotated[int, typer.Option("--output-bps", help="Output bits: 8 or 16.")]
FormatOpt = Annotated[OutFormat, typer.Option("--format", help="Output file format.")]
HalfSize = Annotated[bool, typer.Option(
    "--half-size", help="Half-resolution output, no demosaicing (fast preview).")]
NoAutoBright = Annotated[bool, typer.Option(
    "--no-auto-bright", help="Keep the exposure as shot.")]
Bright = Annotated[float, typer.Option(help="Extra brightness multiplier (> 0).")]
ToneOpt = Annotated[Tone, typer.Option(help="Global tone curve before gamma.")]
Gamma = Annotated[str, typer.Option(
    help="Output curve: srgb, bt709, linear, POWER or POWER,SLOPE as rawpy.")]
Denoise = Annotated[float, typer.Option(
    help="Light bilateral denoise strength on the output (0 = off).")]
ProfileOpt = Annotated[Path | None, typer.Option(
    "--profile", help="A camera profile from isplab calibrate: its colour transform and "
    "black offset, and its white balance unless --wb is given (classic and learned ISPs).",
    show_default=False)]
LookOpt = Annotated[Path | None, typer.Option(
    "--look", help="A look profile from isplab calibrate --pairs, applied to the developed "
    "sRGB (it was fitted on a develop with the default tone and gamma options).",
    show_default=False)]


def command(
    inputs: Inputs = None, output: opt.OutputDir = ..., sample: Sample = False,
    isp: Isp = "classic", weights: Weights = None, noise: Noise = None, onnx: Onnx = None,
    tile: Tile = None, overlap: Overlap = None, device: Device = "auto", backend: Backend = "auto",
    dtype: Dtype = "float32", wb: Wb = "camera", demosaic: DemosaicOpt = Demosaic.bilinear,
    output_bps: OutputBps = 8, fmt: FormatOpt = OutFormat.png, half_size: HalfSize = False,
    no_auto_bright: NoAutoBright = False, bright: Bright = 1.0, tone: ToneOpt = Tone.none,
    gamma: Gamma = "srgb", denoise: Denoise = 0.0, profile: ProfileOpt = None,
    look: LookOpt = None,
    max_megapixels: opt.MaxMegapixels = 200.0,
    overwrite: opt.Overwrite = False, jobs: opt.Jobs = None, shard: opt.Shard = None,
    width: opt.Width = None, height: opt.Height = None, bits: opt.Bits = None,
    byte_order: opt.ByteOrderOpt = None, cfa: opt.Cfa = None, black_level: opt.BlackLevel = None,
    white_level: opt.WhiteLevel = None, quiet: opt.Quiet = False, debug: opt.Debug = False,
) -> None:
    """Develop raw files into photos in OUTPUT; inputs are never replaced.

    A file that cannot be read or developed is reported in one line and skipped; existing
    outputs are skipped (--overwrite replaces them); the exit code is 1 if any file failed.
    """
    from isplab.cli import _setup_logging, err

    _setup_logging(debug, quiet)
    if output_bps not in (8, 16):
        raise typer.BadParameter("--output-bps must be 8 or 16")
    if fmt is OutFormat.jpg and output_bps == 16:
        raise typer.BadParameter("JPEG is 8-bit only: use --format png or tiff with "
                                 "--output-bps 16")
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
        raise typer.BadParameter("give raw files or folders to develop, or --sample")
    raise typer.Exit(_run(worker, inputs, output, fmt, sample, jobs, shard, quiet, debug, err))


def _profile(path: Path | None, isp: str, wb: str, classic: dict):
    """Load ``--profile`` and put its transform (and white balance, unless ``--wb`` is
    given) into the ClassicISP options; a bad file is one ``Invalid value`` line."""
    if path is None:
        return None
    from isplab.classic.profile import load_profile
    from isplab.errors import IsplabError

    if isp not in ("classic", "learned"):
        raise typer.BadParameter("--profile works with --isp classic or learned")
    try:
        prof = load_profile(path)
    except IsplabError as exc:
        raise typer.BadParameter(f"--profile: {exc}") from None
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
        raise typer.BadParameter(f"--look: {exc}") from None


def _run(worker: DevelopWorker, inputs: list[Path], output: Path, fmt: OutFormat, sample: bool,
         jobs: int | None, shard: str | None, quiet: bool, debug: bool, err) -> int:
    from rich.markup import escape

    from isplab.commands import _batch
    from isplab.errors import IsplabError
    from isplab.formats import OUTPUT_FORMATS, RAW_SCAN_SUFFIXES, is_headerless

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
