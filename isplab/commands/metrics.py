"""``isplab metrics``: compare images with references (files, or folders paired by name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from isplab.commands import _options as opt
from isplab.formats import IMAGE_SUFFIXES


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


def _list_metrics() -> None:
    """``--list``: every metric with its direction and description."""
    from isplab.cli import out
    from isplab.metrics import list_metrics
    from isplab.metrics.registry import metric_spec

    for name in list_metrics():
        spec = metric_spec(name)
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        out.print(f"{name:16s} {arrow:16s} {spec.description}", highlight=False)


def _create_metrics(names: str, border: int, weights_dir: Path | None) -> dict:
    """The ``--metrics`` by name (a bad name or option is one Invalid value line)."""
    from isplab.errors import IsplabError
    from isplab.metrics import create_metric

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
    return mets


def _score(pairs: list[tuple[Path, Path]], mets: dict, failures: list[str],
           debug: bool) -> dict[str, dict[str, float]]:
    """Every metric on every pair (keyed by the result's file name); a pair that fails is
    one line, appended to ``failures``, and the rest go on."""
    import traceback

    import torch
    from rich.markup import escape

    from isplab.cli import err
    from isplab.errors import IsplabError
    from isplab.io import read_image

    per_image: dict[str, dict[str, float]] = {}
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
    return per_image


def _print_table(title: str, mets: dict, per_image: dict[str, dict[str, float]]) -> dict:
    """The per-image table (with mean and median rows for several images); returns the
    summary (each metric's aggregate)."""
    from rich.table import Table

    from isplab.cli import out

    table = Table(title=title)
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
    return summary


def _write_json(path: Path, payload: dict) -> None:
    from isplab.io import atomic_write

    def _write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(payload, indent=2))

    atomic_write(path, _write, overwrite=True)


def command(
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
    debug: opt.Debug = False,
) -> None:
    """Compare images with a reference (files, or folders paired by file name)."""
    from rich.markup import escape

    from isplab.cli import _setup_logging, err

    _setup_logging(debug)
    if list_only:
        _list_metrics()
        return
    if result is None or reference is None:
        raise typer.BadParameter("give a result and a reference (files or folders)")
    mets = _create_metrics(names, border, weights_dir)
    pairs, failures = _image_pairs(result, reference)
    for message in failures:
        err.print(f"[red]✗[/] {escape(message)}", highlight=False)
    per_image = _score(pairs, mets, failures, debug)
    if per_image:
        summary = _print_table(f"{result} vs {reference}", mets, per_image)
        if as_json is not None:
            _write_json(as_json, {"result": str(result), "reference": str(reference),
                                  "border": border, "per_image": per_image,
                                  "summary": summary, "failed": failures})
    if failures or not per_image:
        if not per_image:
            err.print("no image pairs to compare")
        raise typer.Exit(1)
