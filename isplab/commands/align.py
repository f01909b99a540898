"""``isplab align``: build a paired (phone raw, DSLR sRGB) dataset by aligning the pairs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from isplab.errors import IsplabError
from isplab.formats import IMAGE_SUFFIXES, RAW_SUFFIXES

if TYPE_CHECKING:
    from rich.console import Console


class PairBy(str, Enum):
    name = "name"
    order = "order"


# --- option types --------------------------------------------------------------------------

Phones = Annotated[list[Path], typer.Argument(
    help="Phone raw files (DNG, camera raws, .npy, mosaic PNG...) or folders.",
    show_default=False)]
References = Annotated[list[Path], typer.Option(
    "--reference", "-r", help="DSLR photos (sRGB PNG/JPEG/TIFF) or folders; repeat the "
    "option for several.", show_default=False)]
Output = Annotated[Path, typer.Option(
    "-o", "--output", help="Output dataset folder (created).", show_default=False)]
Patch = Annotated[int, typer.Option(help="Patch side in raw pixels (even).")]
Stride = Annotated[int | None, typer.Option(
    help="Grid step in raw pixels (even; default: the patch size).")]
PairByOption = Annotated[PairBy, typer.Option(
    "--pair-by", help="Pair files by name (same stem) or by order.")]
FlowThreshold = Annotated[float, typer.Option(
    "--flow-threshold", help="Reject patches whose unexplained flow is above this "
    "(raw pixels).")]
MinKeypoints = Annotated[int, typer.Option(
    "--min-keypoints", help="Reject patches where both images have fewer SIFT "
    "keypoints (texture-less).")]
MinCorrelation = Annotated[float, typer.Option(
    "--min-correlation", help="Reject patches whose aligned previews correlate less.")]
NoFlow = Annotated[bool, typer.Option("--no-flow", help="Homography only (no residual flow).")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace the patches of pairs already in OUTPUT.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show debug logs.")]


def command(
    phones: Phones,
    reference: References,
    output: Output,
    patch: Patch = 448,
    stride: Stride = None,
    pair_by: PairByOption = PairBy.name,
    flow_threshold: FlowThreshold = 1.2,
    min_keypoints: MinKeypoints = 40,
    min_correlation: MinCorrelation = 0.8,
    no_flow: NoFlow = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Align phone raws to DSLR photos and write aligned patch pairs (raw/, rgb/, meta/,
    patches.csv, summary.json). A pair that cannot be aligned is reported and skipped; the
    exit code is 1 when no pair was aligned."""
    from isplab.cli import _setup_logging, err, out

    _setup_logging(debug, quiet)
    if patch < 16 or patch % 2:
        raise typer.BadParameter("--patch must be an even number >= 16")
    if stride is not None and (stride < 2 or stride % 2):
        raise typer.BadParameter("--stride must be an even number >= 2")
    phone_files, ref_files, n_pairs = _inputs(phones, reference, pair_by, output, err)
    summary = _align(phone_files, ref_files, output, n_pairs, err, patch=patch,
                     pair_by=pair_by, overwrite=overwrite, quiet=quiet, stride=stride,
                     flow_threshold=flow_threshold, min_keypoints=min_keypoints,
                     min_correlation=min_correlation, use_flow=not no_flow)
    if not quiet:
        _report(summary, output, out, err)
    if summary["aligned"] == 0:
        raise typer.Exit(1)


def _inputs(phones: list[Path], reference: list[Path], pair_by: PairBy, output: Path,
            err: Console) -> tuple[list[Path], list[Path], int]:
    """The phone and reference files the arguments name, and how many pairs they make;
    missing files and unpaired ones are reported on ``err``.

    Raises:
        typer.BadParameter: unknown pairing.
        typer.Exit: (2) ``output`` exists and is not a folder.
    """
    from rich.markup import escape

    from isplab.commands._batch import collect
    from isplab.data.align import pair_files

    phone_files, missing_p = collect(phones, RAW_SUFFIXES, what="phone raws")
    ref_files, missing_r = collect(reference, IMAGE_SUFFIXES, what="reference photos")
    for message in missing_p + missing_r:
        err.print(f"[red]✗[/] {escape(message)}", highlight=False)
    try:
        pairs, lonely = pair_files(phone_files, ref_files, pair_by.value)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None
    for path, reason in lonely:
        err.print(f"[yellow]![/] {escape(f'{path}: {reason}')}", highlight=False)
    if output.exists() and not output.is_dir():
        err.print(f"[red]error[/]: {output}: exists and is not a folder")
        raise typer.Exit(2)
    return phone_files, ref_files, len(pairs)


def _align(phone_files: list[Path], ref_files: list[Path], output: Path, n_pairs: int,
           err: Console, *, patch: int, pair_by: PairBy, overwrite: bool, quiet: bool,
           **align_options: Any) -> dict[str, Any]:
    """Run :func:`isplab.data.align.align_dataset` with a progress bar and a line per pair
    on ``err``; returns its summary.

    Raises:
        typer.Exit: (2) the dataset cannot be written.
    """
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from isplab.data.align import align_dataset

    with Progress(
        TextColumn("[bold]align"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=True, disable=quiet,
    ) as progress:
        task = progress.add_task("", total=n_pairs)

        def report(stem: str, entry: dict) -> None:
            if entry["status"] == "aligned":
                if not quiet:
                    progress.console.print(
                        f"[green]✓[/] {escape(stem)}: {entry['accepted']}/{entry['patches']} "
                        "patches", highlight=False)
            else:
                progress.console.print(f"[red]✗[/] {escape(entry['error'])}", highlight=False)
            progress.advance(task)

        try:
            return align_dataset(phone_files, ref_files, output, patch, pair_by=pair_by.value,
                                 overwrite=overwrite, progress=report, **align_options)
        except IsplabError as exc:
            err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None


def _report(summary: dict[str, Any], output: Path, out: Console, err: Console) -> None:
    """The table of pairs (inliers, ECC, accepted / candidates, rejections) on ``out`` and
    the totals on ``err``."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"isplab align -> {output}")
    for col in ("pair", "status", "inliers", "ECC", "accepted", "rejected (reason: n)",
                "seconds"):
        table.add_column(col, justify="right" if col in ("inliers", "seconds") else "left")
    for e in summary["entries"]:
        if e["status"] == "aligned":
            st = e["stats"]
            rej = ", ".join(f"{k}: {v}" for k, v in e["rejected"].items() if v) or "-"
            table.add_row(e["pair"], "[green]aligned[/]", str(st.get("inliers", "")),
                          str(st.get("ecc_correlation", st.get("ecc", ""))),
                          f"{e['accepted']}/{e['patches']}", rej, f"{e['seconds']:.1f}")
        else:
            table.add_row(escape(e.get("pair") or Path(e["phone"]).name), "[red]failed[/]",
                          "", "", "", escape(e["error"]), f"{e.get('seconds', 0):.1f}")
    out.print(table)
    err.print(f"{summary['aligned']} pairs aligned, {summary['failed']} failed, "
              f"{summary['accepted']} patches written to {output}")
