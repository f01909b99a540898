"""``isplab illuminant``: estimate the scene illuminant of raws and camera-RGB images.

Prints the illuminant ``(r, g, b)`` with ``g = 1`` in camera RGB per file and estimator; with a
ground truth beside a file (INTEL-TAU's ``<stem>_metadata.json``, ``illuminant_color_raw``)
also the angular error, and the mean, median, best 25 % and worst 25 % over the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from isplab.commands import _options as opt


def command(
    files: Annotated[list[Path], typer.Argument(
        help="Raws (DNG, camera raws, mosaics) or linear camera-RGB images (16-bit PNG/TIFF, "
        "float .npy H x W x 3), or folders of them.", show_default=False)],
    method: Annotated[str, typer.Option(
        "--method", "-m", help="Estimator: auto (the best measured), gray-world, "
        "shades-of-gray, gray-edge, gray-edge2, white-patch, ffcc; a comma-separated list, "
        "or all.")] = "auto",
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the estimates (and errors) to this JSON file.",
        show_default=False)] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="Weights file of the learned estimator (default: the shipped "
        "isplab/weights/ffcc_awb.safetensors).", show_default=False)] = None,
    quiet: opt.Quiet = False,
    debug: opt.Debug = False,
) -> None:
    """Estimate the scene illuminant (camera RGB, g = 1) of each file; with a ground truth
    beside a file (INTEL-TAU JSON), print the angular error and its statistics."""
    from rich.markup import escape

    from isplab.cli import _setup_logging, err
    from isplab.commands._batch import collect
    from isplab.formats import ARRAY_SUFFIXES, IMAGE_SUFFIXES, RAW_SUFFIXES

    _setup_logging(debug, quiet)
    methods = _methods(method)
    paths, problems = collect(files, RAW_SUFFIXES | IMAGE_SUFFIXES | ARRAY_SUFFIXES,
                              "raws or camera-RGB images")
    rows, failed = [], list(problems)
    for path in paths:
        try:
            rows.append(_one(path, methods, weights))
        except Exception as exc:  # noqa: BLE001  (one bad file is one line; the batch goes on)
            if debug:
                raise
            failed.append(_failure(exc, path))
    for line in failed:
        err.print(f"[red]error[/]: {escape(line)}", highlight=False)
    summary = _summary(rows, methods)
    if not quiet:
        _print(rows, summary, methods)
    if json_out is not None:
        doc = {"methods": methods, "files": rows, "summary": summary, "failed": failed}
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2) + "\n")
    if failed or not rows:
        raise typer.Exit(1)


def _methods(text: str) -> list[str]:
    from isplab.classic import awb
    from isplab.errors import IsplabError

    names = awb.names() if text.strip().lower() == "all" else text.split(",")
    try:
        out = [awb.resolve(n) for n in names if n.strip()]
    except IsplabError as exc:
        raise typer.BadParameter(str(exc), param_hint="--method") from None
    if not out:
        raise typer.BadParameter("name at least one estimator", param_hint="--method")
    return list(dict.fromkeys(out))


def _failure(exc: BaseException, path: Path) -> str:
    from isplab.errors import IsplabError

    if isinstance(exc, IsplabError):
        return str(exc) if exc.path is not None else f"{path}: {exc}"
    return f"{path}: {type(exc).__name__}: {exc}"


def _one(path: Path, methods: list[str], weights: Path | None) -> dict:
    from isplab.classic import awb
    from isplab.classic.illuminant import angular_error

    rgb, kind = awb.read_camera_rgb(path)
    truth = awb.find_truth(path)
    est = {m: [round(float(v), 6) for v in awb.estimate(m, rgb, weights)] for m in methods}
    row = {"file": str(path), "kind": kind, "estimates": est}
    if truth is not None:
        row["truth"] = [round(float(v), 6) for v in truth]
        row["errors"] = {m: round(angular_error(e, truth), 4) for m, e in est.items()}
    return row


def _summary(rows: list[dict], methods: list[str]) -> dict:
    from isplab.classic.illuminant import error_summary

    scored = [r for r in rows if "errors" in r]
    if not scored:
        return {}
    return {m: {k: round(v, 4) if isinstance(v, float) else v
                for k, v in error_summary([r["errors"][m] for r in scored]).items()}
            for m in methods}


def _print(rows: list[dict], summary: dict, methods: list[str]) -> None:
    from rich.table import Table

    from isplab.cli import out

    table = Table(title="illuminant (camera RGB, g = 1)")
    for col in ("file", "estimator", "r", "g", "b", "truth r,b", "error"):
        table.add_column(col, justify="left" if col in ("file", "estimator") else "right")
    for r in rows:
        for i, m in enumerate(methods):
            e = r["estimates"][m]
            t = r.get("truth")
            table.add_row(Path(r["file"]).name if i == 0 else "", m, *(f"{v:.4f}" for v in e),
                          f"{t[0]:.3f},{t[2]:.3f}" if t and i == 0 else "",
                          f"{r['errors'][m]:.2f}°" if "errors" in r else "")
    out.print(table)
    if summary:
        s = Table(title=f"angular error over {next(iter(summary.values()))['n']} files (degrees)")
        for col in ("estimator", "mean", "median", "best 25 %", "worst 25 %"):
            s.add_column(col, justify="left" if col == "estimator" else "right")
        for m in methods:
            v = summary[m]
            s.add_row(m, *(f"{v[k]:.2f}" for k in ("mean", "median", "best25", "worst25")))
        out.print(s)
