"""The ``isplab`` command line: one verb per job, each a thin layer over the library."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from isplab import __version__
from isplab.errors import IsplabError

app = typer.Typer(
    name="isplab",
    help="Learned and classical image signal processors: raw Bayer in, sRGB out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console()
log = logging.getLogger("isplab")

#: Suffixes picked up when a folder is given (explicitly named files may have any suffix).
RAW_SUFFIXES = {
    ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".orf",
    ".rw2", ".rwl", ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".fff", ".erf", ".mef",
    ".mos", ".iiq", ".x3f", ".raw", ".npy",
}


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


class ByteOrder(str, Enum):
    little = "little"
    big = "big"


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


def _parse_floats(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{what} must be {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise typer.BadParameter(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return vals


def _wb_options(wb: str) -> dict:
    w = wb.lower().replace("_", "-")
    if w == "camera":
        return dict(use_camera_wb=True)
    if w in ("auto", "gray-world", "grey-world"):
        return dict(use_camera_wb=False, use_auto_wb=True, auto_wb_method="gray_world")
    if w == "white-patch":
        return dict(use_camera_wb=False, use_auto_wb=True, auto_wb_method="white_patch")
    if w == "none":
        return dict(use_camera_wb=False)
    gains = _parse_floats(wb, 3, "--wb gains")
    if any(g <= 0 for g in gains):
        raise typer.BadParameter(f"--wb gains must be positive, got {wb!r}")
    return dict(user_wb=gains)


def _gamma(text: str) -> tuple[float, float]:
    named = {"srgb": (2.4, 12.92), "bt709": (2.222, 4.5), "linear": (1.0, 1.0)}
    if text.lower() in named:
        return named[text.lower()]
    power, slope = _parse_floats(text, 2, "--gamma")
    if power <= 0:
        raise typer.BadParameter("--gamma power must be > 0")
    return power, slope


def _reader_overrides(width, height, bits, byte_order, cfa, black_level, white_level) -> dict:
    o: dict = {}
    if width is not None:
        o["width"] = width
    if height is not None:
        o["height"] = height
    if bits is not None:
        o["bit_depth"] = bits
    if byte_order is not None:
        o["byte_order"] = byte_order.value
    if cfa is not None:
        o["cfa"] = cfa
    if black_level is not None:
        vals = tuple(float(v) for v in black_level.split(","))
        if len(vals) not in (1, 4):
            raise typer.BadParameter("--black-level takes 1 value or 4 (R,G1,G2,B)")
        o["black_level"] = vals if len(vals) == 4 else vals[0]
    if white_level is not None:
        o["white_level"] = white_level
    return o


def _collect_inputs(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    files: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in RAW_SUFFIXES)
            if not found:
                bad.append((p, "folder holds no raw files"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            bad.append((p, "no such file"))
    return files, bad


# Reader options shared by develop and info.
WidthOpt = Annotated[int | None, typer.Option(help="Headerless raw: width in pixels.",
                                                 rich_help_panel="Headerless raw")]
HeightOpt = Annotated[int | None, typer.Option(help="Headerless raw: height in pixels.",
                                                  rich_help_panel="Headerless raw")]
BitsOpt = Annotated[int | None, typer.Option(
    "--bits", help="Bit depth of the samples (headerless/array raws).",
    rich_help_panel="Headerless raw")]
ByteOrderOpt = Annotated[ByteOrder | None, typer.Option(
    help="Byte order of 16-bit headerless samples.", rich_help_panel="Headerless raw")]
CfaOpt = Annotated[str | None, typer.Option(
    help="Bayer pattern RGGB, BGGR, GRBG or GBRG (overrides the file).",
    rich_help_panel="Headerless raw")]
BlackOpt = Annotated[str | None, typer.Option(
    help="Black level: one value or R,G1,G2,B (overrides the file).",
    rich_help_panel="Headerless raw")]
WhiteOpt = Annotated[float | None, typer.Option(
    help="White (saturation) level (overrides the file).", rich_help_panel="Headerless raw")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]


@app.command()
def develop(
    inputs: Annotated[list[Path] | None, typer.Argument(
        help="Raw files (DNG, camera raws, .raw, .npy, mosaic PNG/TIFF) or folders.",
        show_default=False)] = None,
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Output folder (created if needed).", show_default=False)
    ] = ...,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Develop the built-in sample (a DNG made from a bundled photo, "
        "written into the output folder).")] = False,
    isp: Annotated[str, typer.Option(
        help="Which ISP develops the raw: classic; learned (the hybrid ISP: the classical "
        "stages from the file's metadata with the learned jdd_net demosaic + denoise); a blind "
        "zoo model: a zoo name with --weights (isplab models), or a weights file / training "
        "run / checkpoint folder."
    )] = "classic",
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="safetensors weights for --isp <zoo name>, or other jdd_net weights "
        "for --isp learned / --demosaic learned.")] = None,
    noise: Annotated[str | None, typer.Option(
        "--noise", help="Learned demosaic: the raw's noise as SHOT,READ variances of the "
        "normalised signal (default: the DNG NoiseProfile, else estimated from the raw).",
        show_default=False)] = None,
    onnx: Annotated[Path | None, typer.Option(
        "--onnx", help="Develop with an exported ONNX model through onnxruntime (CPU).")
    ] = None,
    tile: Annotated[int | None, typer.Option(
        "--tile", help="Learned ISP: tile side in packed pixels (default: from free memory)."
    )] = None,
    overlap: Annotated[int | None, typer.Option(
        "--overlap", help="Learned ISP: overlap between tiles in packed pixels (default: "
        "the model's, 32 for most).", show_default=False)] = None,
    device: Annotated[str, typer.Option(
        "--device", help="Learned ISP: auto, cpu or cuda[:i].")] = "auto",
    dtype: Annotated[str, typer.Option(
        "--dtype", help="Learned ISP: float32, bfloat16 or float16 (CUDA).")] = "float32",
    wb: Annotated[str, typer.Option(
        help="White balance: camera, auto (gray world), white-patch, none, or gains R,G,B.")
    ] = "camera",
    demosaic: Annotated[Demosaic, typer.Option(help="Demosaicing algorithm.")] = Demosaic.bilinear,
    output_bps: Annotated[int, typer.Option(
        "--output-bps", help="Bits per sample of the output: 8 or 16.")] = 8,
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output file format.")] = OutFormat.png,
    half_size: Annotated[bool, typer.Option(
        "--half-size", help="Half-resolution output, no demosaicing (fast preview).")] = False,
    no_auto_bright: Annotated[bool, typer.Option(
        "--no-auto-bright", help="Keep the exposure as shot (no auto-brightening).")] = False,
    bright: Annotated[float, typer.Option(help="Extra brightness multiplier.")] = 1.0,
    tone: Annotated[Tone, typer.Option(help="Global tone curve before gamma.")] = Tone.none,
    gamma: Annotated[str, typer.Option(
        help="Output curve: srgb, bt709, linear, or POWER,SLOPE as rawpy.")] = "srgb",
    denoise: Annotated[float, typer.Option(
        help="Light bilateral denoise strength on the output (0 = off).")] = 0.0,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing output files (inputs are never replaced).")
    ] = False,
    width: WidthOpt = None, height: HeightOpt = None, bits: BitsOpt = None,
    byte_order: ByteOrderOpt = None, cfa: CfaOpt = None, black_level: BlackOpt = None,
    white_level: WhiteOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Develop raw files into photos in OUTPUT (never replacing inputs).

    A file that cannot be read or developed is reported in one line and skipped; the exit
    code is 1 if any file failed.
    """
    _setup_logging(debug, quiet)
    from isplab import raw as rawio
    from isplab.classic import ClassicISP
    from isplab.io import OUTPUT_FORMATS, write_image
    from isplab.sample import write_sample

    if output_bps not in (8, 16):
        raise typer.BadParameter("--output-bps must be 8 or 16")
    if fmt is OutFormat.jpg and output_bps == 16:
        raise typer.BadParameter(
            "JPEG is 8-bit only: use --format png or tiff with --output-bps 16")
    inputs = list(inputs or [])
    if not inputs and not sample:
        raise typer.BadParameter("give raw files or folders to develop, or --sample")
    reader_opts = _reader_overrides(width, height, bits, byte_order, cfa, black_level,
                                    white_level)
    noise_profile = None
    if noise is not None:
        shot_read = _parse_floats(noise, 2, "--noise")
        if not all(v >= 0 and v != float("inf") for v in shot_read):
            raise typer.BadParameter(f"--noise must be two finite variances >= 0, got {noise!r}")
        noise_profile = shot_read
    try:
        if isp in ("classic", "learned") and onnx is None:
            classic = dict(
                demosaic_algorithm=demosaic.value, half_size=half_size,
                no_auto_bright=no_auto_bright, bright=bright, tone=tone.value,
                gamma=_gamma(gamma), denoise_strength=denoise, noise=noise_profile,
                **_wb_options(wb),
            )
            if isp == "learned" or demosaic is Demosaic.learned:
                from isplab.infer.hybrid import hybrid_isp

                pipeline = hybrid_isp(weights, tile=tile, overlap=overlap, device=device,
                                      dtype=dtype, **classic)
            else:
                pipeline = ClassicISP(**classic)
        else:
            from isplab.infer.develop import learned_isp

            pipeline = learned_isp(isp, weights=weights, onnx=onnx, tile=tile,
                                   overlap=overlap, device=device, dtype=dtype)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None

    if output.exists() and not output.is_dir():
        err.print(f"[red]error[/]: {output}: exists and is not a folder")
        raise typer.Exit(2)
    output.mkdir(parents=True, exist_ok=True)
    if sample:
        inputs.insert(0, write_sample(output))
        if not quiet:
            err.print(f"sample raw written to {inputs[0]}")

    files, missing = _collect_inputs(inputs)
    failures = [f"{path}: {reason}" for path, reason in missing]
    for message in failures:
        err.print(f"[red]✗[/] {escape(message)}", highlight=False)
    input_set = {f.resolve() for f in files}
    planned: dict[Path, Path] = {}
    ext = OUTPUT_FORMATS[fmt.value]
    done = 0
    with Progress(
        TextColumn("[bold]develop"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=True, disable=quiet,
    ) as progress:
        task = progress.add_task("", total=len(files))
        for f in files:
            progress.update(task, description=f.name)
            target = output / f"{f.stem}{ext}"
            try:
                resolved = target.resolve()
                if resolved in input_set:
                    raise IsplabError(f"output {target} would replace an input file", f)
                if resolved in planned:
                    raise IsplabError(
                        f"output {target} is already taken by {planned[resolved]} "
                        "(same file name): develop them into separate folders", f)
                if target.exists() and not overwrite:
                    raise IsplabError(f"output {target} exists (use --overwrite to replace it)", f)
                raw = rawio.read(f, **reader_opts)
                image = pipeline.postprocess(raw, output_bps)
                write_image(target, image, bits=output_bps, overwrite=overwrite)
                planned[resolved] = f
                done += 1
                if not quiet:
                    progress.console.print(f"[green]✓[/] {escape(str(f))} -> {escape(str(target))}",
                                           highlight=False)
            except Exception as exc:  # one bad file never stops the batch
                if debug:
                    traceback.print_exc()
                reason = str(exc) if isinstance(exc, IsplabError) else \
                    f"{f}: {exc.__class__.__name__}: {exc}"
                if isinstance(exc, IsplabError) and exc.path is None:
                    reason = f"{f}: {reason}"
                failures.append(reason)
                progress.console.print(f"[red]✗[/] {escape(reason)}", highlight=False)
            progress.advance(task)

    if not quiet or failures:
        err.print(f"{done} developed, {len(failures)} failed")
    if failures:
        for message in failures:
            err.print(f"  failed: {message}", markup=False, highlight=False)
        raise typer.Exit(1)


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A raw file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    width: WidthOpt = None, height: HeightOpt = None, bits: BitsOpt = None,
    byte_order: ByteOrderOpt = None, cfa: CfaOpt = None, black_level: BlackOpt = None,
    white_level: WhiteOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show a raw file's metadata: size, CFA, levels, white balance, colour matrices."""
    _setup_logging(debug)
    from isplab import raw as rawio

    opts = _reader_overrides(width, height, bits, byte_order, cfa, black_level, white_level)
    try:
        raw = rawio.read(file, **opts)
    except IsplabError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    meta = raw.metadata()
    meta["megapixels"] = round(raw.megapixels, 3)
    meta["data_range"] = [float(raw.mosaic.min()), float(raw.mosaic.max())]
    from isplab.classic.noise_profile import noise_profile_of

    try:
        profile = noise_profile_of(raw)
        meta["noise_profile"] = {"shot": float(f"{profile.shot:.4g}"),
                                 "read": float(f"{profile.read:.4g}"), "source": profile.source}
    except IsplabError as exc:
        meta["noise_profile"] = {"source": "none", "reason": exc.reason}
    if as_json:
        print(json.dumps(meta, indent=2))
        return
    table = Table(title=str(file), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in meta.items():
        if isinstance(v, list) and v and isinstance(v[0], list):
            v = "\n".join("  ".join(f"{x:+.4f}" for x in row) for row in v)
        table.add_row(k, str(v))
    out.print(table)


IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"}


def _image_pairs(a: Path, b: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Pairs (result, reference): two files, or two folders matched by file stem."""
    if a.is_file() and b.is_file():
        return [(a, b)], []
    if a.is_dir() and b.is_dir():
        def index(d: Path) -> dict[str, Path]:
            return {f.stem: f for f in sorted(d.iterdir())
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES}

        ia, ib = index(a), index(b)
        pairs = [(ia[k], ib[k]) for k in sorted(ia) if k in ib]
        problems = [f"{ia[k]}: no reference named {k}.* in {b}"
                    for k in sorted(set(ia) - set(ib))]
        return pairs, problems
    missing = [str(p) for p in (a, b) if not p.exists()]
    if missing:
        return [], [f"{m}: no such file or folder" for m in missing]
    return [], [f"{a} and {b}: give two files or two folders"]


@app.command()
def metrics(
    result: Annotated[Path | None, typer.Argument(help="Image file or folder to score.",
                                                  show_default=False)] = None,
    reference: Annotated[Path | None, typer.Argument(help="Reference image file or folder.",
                                                     show_default=False)] = None,
    names: Annotated[str, typer.Option(
        "--metrics", help="Comma-separated metric names (see --list).")
    ] = "psnr,ssim,ms_ssim,deltae2000",
    border: Annotated[int, typer.Option(help="Pixels cropped on each side first.")] = 0,
    weights_dir: Annotated[Path | None, typer.Option(
        help="Folder with torchvision backbone weights (LPIPS); else $ISPLAB_WEIGHTS_DIR.")
    ] = None,
    as_json: Annotated[Path | None, typer.Option(
        "--json", help="Also write per-image values and mean/median to this JSON file.")
    ] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the metrics and exit.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Compare images with a reference (files, or folders paired by file name)."""
    _setup_logging(debug)
    from isplab.io import read_image
    from isplab.metrics import create_metric, list_metrics

    if list_only:
        from isplab.metrics.registry import metric_spec

        for name in list_metrics():
            spec = metric_spec(name)
            arrow = "higher is better" if spec.higher_is_better else "lower is better"
            out.print(f"{name:16s} {arrow:16s} {spec.description}", highlight=False)
        return
    if result is None or reference is None:
        raise typer.BadParameter("give a result and a reference (files or folders)")
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    try:
        mets = {}
        for n in chosen:
            opts = {"border": border} if border else {}
            if n.startswith("lpips") and weights_dir is not None:
                opts["weights"] = weights_dir
            mets[n] = create_metric(n, **opts)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None
    pairs, failures = _image_pairs(result, reference)
    for message in failures:
        err.print(f"[red]✗[/] {escape(message)}", highlight=False)
    per_image: dict[str, dict[str, float]] = {}
    import torch

    for a, b in pairs:
        try:
            x, y = read_image(a), read_image(b)
            with torch.no_grad():
                per_image[a.name] = {n: float(m(x, y)[0]) for n, m in mets.items()}
        except Exception as exc:  # one bad pair never stops the rest
            if debug:
                traceback.print_exc()
            reason = str(exc) if isinstance(exc, IsplabError) else \
                f"{exc.__class__.__name__}: {exc}"
            failures.append(f"{a} vs {b}: {reason}")
            err.print(f"[red]✗[/] {escape(failures[-1])}", highlight=False)
    if per_image:
        table = Table(title=f"{result} vs {reference}")
        table.add_column("image")
        for n, m in mets.items():
            table.add_column(f"{n} {'↑' if m.higher_is_better else '↓'}", justify="right")
        for image, vals in per_image.items():
            table.add_row(image, *(f"{vals[n]:.4f}" for n in mets))
        summary = {n: mets[n].aggregate([v[n] for v in per_image.values()]) for n in mets}
        if len(per_image) > 1:
            for stat in ("mean", "median"):
                table.add_row(f"[bold]{stat}", *(f"{summary[n][stat]:.4f}" for n in mets))
        out.print(table)
        if as_json is not None:
            from isplab.io import atomic_write

            payload = {"result": str(result), "reference": str(reference), "border": border,
                       "per_image": per_image, "summary": summary, "failed": failures}

            def _write(tmp: str) -> None:
                Path(tmp).write_text(json.dumps(payload, indent=2))

            atomic_write(as_json, _write, overwrite=True)
    if failures or not per_image:
        if not per_image:
            err.print("no image pairs to compare")
        raise typer.Exit(1)


def _register_command_modules() -> None:
    """Register each ``isplab/commands/<verb>.py``'s ``command`` as ``isplab <verb>``."""
    import importlib
    import pkgutil

    import isplab.commands as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{mod.name}")
        app.command(mod.name.replace("_", "-"))(module.command)


_register_command_modules()


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
