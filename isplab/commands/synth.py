"""``isplab synth``: unprocess sRGB photos into synthetic (raw, sRGB) training pairs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from isplab.commands import _options as opt


class RawFormat(str, Enum):
    png = "png"
    dng = "dng"


Jobs = Annotated[int, typer.Option(
    "--jobs", "-j", help="Worker processes, each one photo at a time (outputs identical to "
    "--jobs 1).", rich_help_panel=opt.BATCH_PANEL)]


def _collect_images(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given plus the photos (png/jpg/tif) inside folders, sorted per folder;
    folders without photos are returned apart with the reason."""
    from isplab.formats import IMAGE_SUFFIXES

    files: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                bad.append((p, "folder holds no png/jpg/tif photos"))
            files.extend(found)
        else:  # a missing file is reported by the writer (and recorded in synth.json)
            files.append(p)
    return files, bad


def _shard_photos(files: list[Path], parts: tuple[int, int] | None) -> list[Path]:
    """The photos of shard K of N (:func:`_batch.select_shard`), in the given order. Photos
    sharing a stem go to the shard of the first of them (the writer gives a stem's ids to
    one photo of it), so the N shards together write the pairs of one unsharded run."""
    from isplab.commands import _batch

    if parts is None:
        return files
    first: dict[str, Path] = {}
    for f in files:
        first.setdefault(f.stem, f)
    keep = set(_batch.select_shard(list(first.values()), parts))
    return [f for f in files if first[f.stem] in keep]


def _check_options(settings: dict[str, Any], jobs: int, shard: str | None
                   ) -> tuple[int, tuple[int, int] | None]:
    """Every option checked before any work: (jobs, shard as (K, N) or None)."""
    from isplab.commands import _batch
    from isplab.errors import IsplabError
    from isplab.synth.writer import _check_args

    try:
        _check_args(settings["patch"], settings["per_image"], settings["cfa"],
                    settings["low_light"], settings["bit_depth"], settings["raw_format"])
        parts = _batch.parse_shard(shard)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None
    return int(opt.finite(jobs, "--jobs", low=1)), parts


def _synthesize(files: list[Path], output: Path, settings: dict[str, Any], jobs: int,
                parts: tuple[int, int] | None, quiet: bool) -> dict[str, Any]:
    """Run the writer under a progress bar; a refused run (an existing summary) exits 1."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from isplab.cli import err
    from isplab.errors import IsplabError
    from isplab.synth.writer import synthesize_dataset

    with Progress(
        TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=True, disable=quiet,
    ) as bar:
        task = bar.add_task("", total=len(files))

        def progress(done: int, total: int, source: Path) -> None:
            bar.update(task, completed=done, description=source.name)

        try:
            return synthesize_dataset(files, output, **settings, progress=progress, jobs=jobs,
                                      shard=parts)
        except (FileExistsError, IsplabError) as exc:
            err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None


def _print_summary(report: dict[str, Any], files: list[Path], missing: list[tuple[Path, str]],
            output: Path, parts: tuple[int, int] | None, quiet: bool) -> int:
    """One line per skipped pair or photo, the totals; the exit code: 1 when nothing was
    written (0 for a shard that holds none of the photos)."""
    from rich.markup import escape

    from isplab.cli import err

    skipped = report["skipped"] + [{"source": str(p), "reason": r} for p, r in missing]
    for item in report["skipped"]:
        name = item.get("id") or item["source"]
        err.print(f"[red]✗[/] {escape(name)}: {escape(item['reason'])}", highlight=False)
    written = len(report["ids"])
    empty_shard = parts is not None and not files and not missing
    if not quiet or not (written or empty_shard):
        where = f" (shard {parts[0]}/{parts[1]})" if parts else ""
        err.print(f"{written} pair{'s' if written != 1 else ''} written to {escape(str(output))} "
                  f"from {len(files)} photo{'s' if len(files) != 1 else ''}{where}, "
                  f"{len(skipped)} skipped", highlight=False)
    return 0 if written or empty_shard else 1


def command(
    sources: Annotated[list[Path], typer.Argument(
        help="sRGB photos (png, jpg, tif) or folders of them.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Output folder: raw/, rgb/, meta/, synth.json.",
        show_default=False)],
    patch: Annotated[int, typer.Option(help="Crop size in pixels (even, >= 16).")] = 256,
    per_image: Annotated[int, typer.Option(help="Random crops per photo.")] = 1,
    cfa: Annotated[str, typer.Option(help="Bayer pattern: RGGB, BGGR, GRBG or GBRG.")] = "RGGB",
    noise: Annotated[bool, typer.Option(
        "--noise/--no-noise", help="Add sampled shot + read noise.")] = True,
    low_light: Annotated[float, typer.Option(
        help="Under-expose the raw by this factor (1 = normal exposure).")] = 1.0,
    bit_depth: Annotated[int, typer.Option(help="Sensor bit depth (8..16).")] = 12,
    raw_format: Annotated[RawFormat, typer.Option(
        help="png: packed 4-channel 16-bit PNG; dng: mosaic DNG.")] = RawFormat.png,
    seed: Annotated[int, typer.Option(help="Run seed (same seed, same files).")] = 0,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing output files.")] = False,
    jobs: Jobs = 1,
    shard: opt.Shard = None,
    quiet: opt.Quiet = False,
) -> None:
    """Unprocess sRGB photos into realistic raw + sRGB training pairs (Brooks et al. 2019).

    Each photo gives --per-image random crops, each unprocessed with a random camera.

    Raw: linear, sensor noise, optional low light, quantised to --bit-depth.

    Unreadable or too small photos are reported and skipped; exit code 1 if nothing was written.
    """
    from rich.markup import escape

    from isplab.cli import _setup_logging, err

    _setup_logging(False, quiet)
    settings = dict(patch=patch, per_image=per_image, cfa=cfa, noise=noise, low_light=low_light,
                    bit_depth=bit_depth, raw_format=raw_format.value, seed=seed,
                    overwrite=overwrite)
    jobs, parts = _check_options(settings, jobs, shard)
    if output.exists() and not output.is_dir():
        err.print(f"[red]error[/]: {escape(str(output))}: exists and is not a folder")
        raise typer.Exit(2)
    files, missing = _collect_images(list(sources))
    for path, reason in missing:
        err.print(f"[red]✗[/] {escape(str(path))}: {escape(reason)}", highlight=False)
    files = _shard_photos(files, parts)
    report = _synthesize(files, output, settings, jobs, parts, quiet)
    code = _print_summary(report, files, missing, output, parts, quiet)
    if code:
        raise typer.Exit(code)
