"""``isplab develop``: raw files -> photos, with the classical, hybrid or a zoo ISP.

The options, declared to typer; what they do is :func:`isplab.commands._develop.develop`
(which the console script also runs without typer, :func:`isplab.commands._develop.quick`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from isplab.commands import _options as opt
from isplab.commands._develop import (  # noqa: F401  (the verb's names, as before)
    Demosaic,
    DevelopWorker,
    OutFormat,
    Tone,
    build_pipeline,
    develop,
)

LEARNED_PANEL = "Learned ISP"


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
    raise typer.Exit(develop(**locals()))
