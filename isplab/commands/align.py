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
Jobs = Annotated[int | None, typer.Option(
    "--jobs", "-j", help="Worker processes, each one pair at a time (default: the machine's "
    "cores; outputs identical to --jobs 1).", rich_help_panel="Batch", show_default=False)]
Shard = Annotated[str | None, typer.Option(
    "--shard", help="K/N: align only the K-th of N deterministic parts of the pairs (one per "
    "machine; its summary is summary-K-of-N.json).", rich_help_panel="Batch",
    show_default=False)]


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
    jobs: Jobs = None,
    shard: Shard = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Align phone raws to DSLR photos and write aligned patch pairs (raw/, rgb/, meta/,
    patches.csv, summary.json). A pair that cannot be aligned is reported and skipped; the
    exit code is 1 when no pair was aligned."""
    from isplab.cli import _setup_logging, err, out
    from isplab.commands import _batch

    _setup_logging(debug, quiet)
    if patch < 16 or patch % 2:
        raise typer.BadParameter("--patch must be an even number >= 16")
    if stride is not None and (stride < 2 or stride % 2):
        raise typer.BadParameter("--stride must be an even number >= 2")
    if jobs is not None and jobs < 1:
        raise typer.BadParameter("--jobs must be >= 1")
    try:
        parts = _batch.parse_shard(shard)
    except IsplabError as exc:
        raise typer.BadParameter(str(exc)) from None
    pairs, lonely = _inputs(phones, reference, pair_by, output, err)
    pairs, lonely = shard_pairs(pairs, lonely, parts)
    settings = dict(patch=patch, pair_by=pair_by.value, stride=stride,
                    flow_threshold=flow_threshold, min_keypoints=min_keypoints,
                    min_correlation=min_correlation, use_flow=not no_flow)
    summary = _align(pairs, lonely, output, err, settings, overwrite=overwrite, quiet=quiet,
                     jobs=_batch.default_jobs() if jobs is None else jobs, shard=parts)
    if not quiet:
        _report(summary, output, out, err)
    if summary["aligned"] == 0 and not (parts and not summary["entries"]):
        raise typer.Exit(1)


def _inputs(phones: list[Path], reference: list[Path], pair_by: PairBy, output: Path,
            err: Console) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """The (phone, reference) pairs the arguments name and the files left unpaired; missing
    files and unpaired ones are reported on ``err``.

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
    return list(dict.fromkeys(pairs)), lonely  # a pair named twice is aligned once


def shard_pairs(pairs: list[tuple[Path, Path]], lonely: list[tuple[Path, str]],
                parts: tuple[int, int] | None
                ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """The pairs (and unpaired files) of shard K of N, in the given order: a pair goes to
    the shard of its phone raw (:func:`_batch.select_shard`), phone raws sharing a stem to
    the shard of the first of them (their patch ids would collide: the later ones fail
    there, as in one unsharded run). The N shards cover every pair exactly once."""
    from isplab.commands._batch import select_shard

    if parts is None:
        return pairs, lonely
    first: dict[str, Path] = {}
    for phone, _ in pairs:
        first.setdefault(phone.stem, phone)
    keep = set(select_shard(list(first.values()), parts))
    kept_lonely = set(select_shard([p for p, _ in lonely], parts))
    return ([pair for pair in pairs if first[pair[0].stem] in keep],
            [item for item in lonely if item[0] in kept_lonely])


class AlignWorker:
    """One pair (``Task(phone, reference)``) through :func:`isplab.data.align.align_one`;
    picklable for ``run_tasks`` worker processes. It returns ``[entry, rows]`` (the pair's
    summary entry and ``patches.csv`` rows), which ``run_tasks`` hands to its ``on_result``
    unchanged."""

    def __init__(self, output: Path, settings: dict[str, Any], overwrite: bool,
                 duplicates: dict[Path, Path]):
        self.output, self.settings, self.overwrite = output, settings, overwrite
        self.duplicates = duplicates

    def __call__(self, task) -> list:
        from isplab.data.align import align_one

        options = {k: v for k, v in self.settings.items() if k not in ("patch", "pair_by")}
        return list(align_one(task.source, task.target, self.output, self.settings["patch"],
                              duplicate_of=self.duplicates.get(task.source),
                              overwrite=self.overwrite, **options))


def _align(pairs: list[tuple[Path, Path]], lonely: list[tuple[Path, str]], output: Path,
           err: Console, settings: dict[str, Any], *, overwrite: bool, quiet: bool,
           jobs: int, shard: tuple[int, int] | None) -> dict[str, Any]:
    """Align ``pairs`` in ``jobs`` processes with a progress bar and a line per pair on
    ``err``; the summary (entries and rows in input order, as one process writes them).

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

    from isplab.commands._batch import Task, run_tasks
    from isplab.data.align import (
        duplicate_stems,
        prepare_dataset,
        unpaired_entries,
        write_summary,
    )

    try:
        prepare_dataset(output)
    except IsplabError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    tasks = [Task(phone, ref) for phone, ref in pairs]
    results: dict[Task, tuple[dict, list]] = {}
    worker = AlignWorker(output, settings, overwrite, duplicate_stems(pairs))
    with Progress(TextColumn("[bold]align"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=quiet) as progress:
        bar = progress.add_task("", total=len(tasks))

        def finished(task: Task, ok: bool, result: list) -> None:
            entry = result[0] if ok else {"pair": task.source.stem, "phone": str(task.source),
                                          "reference": str(task.target), "status": "failed",
                                          "error": result[0]}
            results[task] = (entry, result[1] if ok else [])
            if entry["status"] == "aligned":
                if not quiet:
                    progress.console.print(
                        f"[green]✓[/] {escape(entry['pair'])}: {entry['accepted']}/"
                        f"{entry['patches']} patches", highlight=False)
            else:
                progress.console.print(f"[red]✗[/] {escape(entry['error'])}", highlight=False)
            progress.advance(bar)

        run_tasks(tasks, worker, jobs=jobs, on_result=finished)
    entries = unpaired_entries(lonely) + [results[t][0] for t in tasks]
    rows = [row for t in tasks for row in results[t][1]]
    return write_summary(output, len(pairs), entries, rows, settings, shard)


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
