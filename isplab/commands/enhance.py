"""``isplab enhance``: enhance sRGB photos with the MPSE or MDIE pipeline."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class Pipeline(str, Enum):
    mpse = "mpse"
    mdie = "mdie"


class Post(str, Enum):
    none = "none"
    he = "he"
    clahe = "clahe"
    lime = "lime"
    gamma = "gamma"


class MdieMode(str, Enum):
    all = "all"
    sequential = "sequential"
    colour = "colour"
    texture = "texture"
    noise = "noise"


class Fmt(str, Enum):
    png = "png"
    tiff = "tiff"
    jpg = "jpg"


def _collect(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    from isplab.enhance.recommend import IMAGE_SUFFIXES

    files: list[Path] = []
    bad: list[str] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                bad.append(f"{p}: folder holds no png/jpg/tif photos")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            bad.append(f"{p}: no such file")
    return files, bad


def _iterations(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--iterations takes two counts 'a,b', got {text!r}") from None
    if a < 0 or b < 0:
        raise typer.BadParameter("--iterations must be >= 0")
    return a, b


def _mask_for(masks: Path, f: Path) -> Path:
    if masks.is_dir():
        for suffix in (".png", ".PNG"):
            cand = masks / f"{f.stem}{suffix}"
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"no mask {f.stem}.png in {masks}")
    return masks


def command(
    inputs: Annotated[list[Path], typer.Argument(
        help="sRGB photos (png, jpg, tif) or folders of them.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Output folder (created if needed).", show_default=False)],
    pipeline: Annotated[Pipeline, typer.Option(
        help="mpse: model -> style transfer -> post-processing; mdie: intrinsic + StarGAN."
    )] = Pipeline.mpse,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Trained weights (.safetensors): MPSE phase 1 (an sRGB->sRGB zoo "
        "model such as dped_plus_rgb) or the MDIE translator (weights or run folder of "
        "configs/mdie_translator.yaml).")] = None,
    intrinsic: Annotated[Path | None, typer.Option(
        "--intrinsic", help="MDIE: the intrinsic_net weights (default: the ones recorded "
        "with the translator).")] = None,
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="Style reference photo (MPSE phase 2).")] = None,
    references: Annotated[Path | None, typer.Option(
        "--references", help="Folder of candidate references: the closest one is used.")
    ] = None,
    masks: Annotated[Path | None, typer.Option(
        "--masks", help="Colour-coded content mask (Deep Photo Style Transfer palette), or a "
        "folder of <input stem>.png masks; needs --reference-masks.")] = None,
    reference_masks: Annotated[Path | None, typer.Option(
        "--reference-masks", help="Colour-coded mask of the reference.")] = None,
    post: Annotated[Post, typer.Option(
        help="Post-processing: none, he (global HE of L*), clahe (L*), lime, gamma (linear).")
    ] = Post.none,
    vgg_weights: Annotated[Path | None, typer.Option(
        "--vgg-weights", help="torchvision's vgg19-dcbb9e9d.pth (file or folder).")] = None,
    random_vgg: Annotated[bool, typer.Option(
        "--random-vgg", help="Random VGG-19 (smoke tests only: not perceptual).")] = False,
    iterations: Annotated[str, typer.Option(
        help="L-BFGS iterations of style stage 1 (no matting) and stage 2 (matting).")
    ] = "200,200",
    size: Annotated[int | None, typer.Option(
        "--size", help="Downscale so that the longer side is at most this (pixels).")] = None,
    mdie_mode: Annotated[MdieMode, typer.Option(
        help="MDIE: all domains at once, sequential colour -> texture -> noise, or one "
             "domain alone (colour, texture or noise).")
    ] = MdieMode.all,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output file format.")] = Fmt.png,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing output files (inputs are never replaced).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Enhance photos into OUTPUT (MPSE: trained model, semantic style transfer,
    post-processing; MDIE: multi-domain enhancement).

    A file that cannot be read or enhanced is reported in one line and skipped; the exit
    code is 1 if any file failed.
    """
    import traceback

    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from isplab.cli import _setup_logging, err
    from isplab.enhance.pipeline import (
        enhance_mpse,
        load_enhancer,
        resize_max_side,
    )
    from isplab.errors import IsplabError
    from isplab.io import OUTPUT_FORMATS, read_image, write_image

    _setup_logging(debug, quiet)
    its = _iterations(iterations)
    if reference is not None and references is not None:
        raise typer.BadParameter("give --reference or --references, not both")
    if (masks is None) != (reference_masks is None):
        raise typer.BadParameter("--masks and --reference-masks go together")
    if masks is not None and reference is None:
        raise typer.BadParameter("--masks needs --reference (the reference's mask must match)")
    if size is not None and size < 16:
        raise typer.BadParameter("--size must be >= 16")
    net = ref_image = vgg = mdie = None
    try:
        if pipeline is Pipeline.mdie:
            from isplab.enhance.mdie import load_mdie

            if model is None:
                raise IsplabError("--pipeline mdie needs --model: the translator trained by "
                                  "isplab train configs/mdie_translator.yaml")
            mdie = load_mdie(model, intrinsic)
        if pipeline is Pipeline.mpse:
            if model is not None:
                net = load_enhancer(model)
            if reference is not None:
                ref_image = resize_max_side(read_image(reference), size)
            if references is not None and not references.is_dir():
                raise IsplabError("not a folder of reference images", references)
            if (reference is not None or references is not None) and not random_vgg:
                from isplab.enhance.style import resolve_vgg

                vgg = resolve_vgg(vgg_weights)  # style transfer needs it: fail early, naming it
            if masks is not None and not masks.exists():
                raise IsplabError("no such mask file or folder", masks)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None

    if output.exists() and not output.is_dir():
        err.print(f"[red]error[/]: {output}: exists and is not a folder")
        raise typer.Exit(2)
    output.mkdir(parents=True, exist_ok=True)
    files, failures = _collect(inputs)
    for message in failures:
        err.print(f"[red]✗[/] {escape(message)}", highlight=False)
    input_set = {f.resolve() for f in files}
    for extra in (reference, references, reference_masks, masks):
        if extra is not None and extra.is_file():
            input_set.add(extra.resolve())
    planned: dict[Path, Path] = {}
    ext = OUTPUT_FORMATS[fmt.value]
    done = 0
    with Progress(
        TextColumn("[bold]enhance"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
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
                    raise IsplabError(f"output {target} is already taken by "
                                      f"{planned[resolved]} (same file name)", f)
                if target.exists() and not overwrite:
                    raise IsplabError(f"output {target} exists (use --overwrite to replace it)",
                                      f)
                image = resize_max_side(read_image(f), size)
                if pipeline is Pipeline.mdie:
                    result = mdie.enhance(image, mdie_mode.value)
                    notes = [f"MDIE ({mdie_mode.value}"
                             f"{', intrinsic components' if mdie.intrinsic else ', image'})"]
                else:
                    pair = None if masks is None else (_mask_for(masks, f), reference_masks)

                    def say(phase, msg, f=f):
                        progress.update(task, description=f"{f.name}: phase {phase}, {msg}")

                    res = enhance_mpse(image, model=net, reference=ref_image,
                                       references=references, masks=pair, post=post.value,
                                       vgg=vgg, random_vgg=random_vgg, iterations=its,
                                       input_path=f, progress=say)
                    result, notes = res.image, res.notes
                write_image(target, result, overwrite=overwrite)
                planned[resolved] = f
                done += 1
                if not quiet:
                    progress.console.print(f"[green]✓[/] {escape(str(f))} -> "
                                           f"{escape(str(target))}", highlight=False)
                    for note in notes:
                        progress.console.print(f"    {escape(note)}", highlight=False)
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
        err.print(f"{done} enhanced, {len(failures)} failed")
    if failures:
        for message in failures:
            err.print(f"  failed: {message}", markup=False, highlight=False)
        raise typer.Exit(1)
