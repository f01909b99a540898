"""``isplab calibrate``: a camera profile from a ColorChecker shot (or its patch values), or
a look profile from raw / reference photo pairs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from isplab.commands import _options as opt

PAIRS_PANEL = "Look from pairs (--pairs)"


class Transform(str, Enum):
    auto = "auto"
    matrix = "matrix"
    root_polynomial_2 = "root-polynomial-2"
    root_polynomial_3 = "root-polynomial-3"


class FlatFieldMode(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class PairsIsp(str, Enum):
    classic = "classic"
    learned = "learned"


Source = Annotated[Path | None, typer.Argument(
    help="A raw file showing an X-Rite ColorChecker Classic (24 patches).",
    show_default=False)]
Chart = Annotated[bool, typer.Option(
    "--chart", help="Find the chart in RAW and fit a camera profile (the default with RAW).")]
Corners = Annotated[str | None, typer.Option(
    "--corners", help="x1,y1,...,x4,y4: the corners of the 24-patch area in raw pixels "
    "(any order), when the chart is not found by itself.", show_default=False)]
Patches = Annotated[Path | None, typer.Option(
    "--patches", help="Fit from a CSV of 24 measured camera-RGB patches (X-Rite order; rows "
    "r,g,b or label,r,g,b) instead of a raw.", show_default=False)]
Pairs = Annotated[tuple[Path, Path] | None, typer.Option(
    "--pairs", help="RAWS REFS: folders of raws and their reference photos (aligned or "
    "same size); fits a look profile.", rich_help_panel=PAIRS_PANEL, show_default=False,
    metavar="RAWS REFS")]
IspOpt = Annotated[PairsIsp, typer.Option(
    "--isp", help="The develop the look is fitted on.", rich_help_panel=PAIRS_PANEL)]
Holdout = Annotated[float, typer.Option(
    "--holdout", help="Fraction of the pairs held out to report.", rich_help_panel=PAIRS_PANEL)]
Seed = Annotated[int, typer.Option(
    "--seed", help="Seed of the held-out split.", rich_help_panel=PAIRS_PANEL)]
Out = Annotated[Path | None, typer.Option(
    "-o", "--out", help="Profile file to write (default: <input name>_profile.json here); "
    "the chart picture and patch values go beside it.", show_default=False)]
TransformOpt = Annotated[Transform, typer.Option(
    "--transform", help="Colour transform: matrix (3x3), root-polynomial-2|3 (Finlayson et "
    "al. 2015), or auto: matrix or root-polynomial-2, whichever predicts left-out patches "
    "best.")]
FlatFieldOpt = Annotated[FlatFieldMode, typer.Option(
    "--flat-field", help="Divide the patches by the chart's shading (vignetting, uneven "
    "light), measured from the fall-off inside the patches: on, off, or auto: on when it "
    "lowers the matrix fit's leave-one-patch-out error.")]
BlackOffset = Annotated[bool, typer.Option(
    "--black-offset/--no-black-offset", help="Also fit a per-channel black-level correction "
    "(wrong black levels, flare).")]


def command(
    source: Source = None, chart: Chart = False, corners: Corners = None,
    patches: Patches = None, pairs: Pairs = None, isp: IspOpt = PairsIsp.classic,
    holdout: Holdout = 0.25, seed: Seed = 0, out: Out = None,
    transform: TransformOpt = Transform.auto, black_offset: BlackOffset = True,
    flat_field: FlatFieldOpt = FlatFieldMode.auto, overwrite: opt.Overwrite = False,
    max_megapixels: opt.MaxMegapixels = 200.0,
    width: opt.Width = None, height: opt.Height = None, bits: opt.Bits = None,
    byte_order: opt.ByteOrderOpt = None, cfa: opt.Cfa = None, black_level: opt.BlackLevel = None,
    white_level: opt.WhiteLevel = None, quiet: opt.Quiet = False, debug: opt.Debug = False,
) -> None:
    """Fit a camera profile from a ColorChecker: RAW --chart (found in the frame, or
    --corners) or --patches values.csv; or a look profile from --pairs RAWS REFS.

    Writes the profile JSON (use it with isplab develop --profile), a picture of the chart
    (reference | rendered halves per patch) and the sampled patch values; prints the ΔE2000
    of each patch, in-sample and leave-one-patch-out. Nothing is written on an error.
    """
    from rich.markup import escape

    from isplab.cli import _setup_logging, err
    from isplab.cli import out as console
    from isplab.errors import IsplabError

    _setup_logging(debug, quiet)
    modes = [source is not None, patches is not None, pairs is not None]
    if sum(modes) != 1:
        raise typer.BadParameter("give one of: RAW (--chart), --patches CSV, --pairs RAWS REFS")
    if pairs is not None:
        opt.finite(holdout, "--holdout", low=0, high=1, low_open=True)
    else:
        quad = None if corners is None else opt.floats(corners, "--corners", (8,))
        reader = opt.reader_overrides(width, height, bits, byte_order, cfa, black_level,
                                      white_level)
        limit = opt.finite(max_megapixels, "--max-megapixels", low=0, low_open=True)
    try:
        if pairs is not None:
            from isplab.commands._look import calibrate_pairs

            return calibrate_pairs(pairs[0], pairs[1], out or Path("look_profile.json"),
                                   isp.value, holdout, seed, console, overwrite=overwrite)
        job = _measure(source, patches, quad, reader, limit)
        job.outputs(out, overwrite)
        fits = _fit(job, transform.value, black_offset, flat_field.value, quiet, err)
        _report(job, fits, console, quiet)
        _write(job, fits, overwrite, err if not quiet else None)
    except (IsplabError, FileExistsError) as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


class _Job:
    """What was measured and where it goes."""

    def __init__(self, path: Path, camera_rgb, used, source: dict, camera, chart):
        self.path, self.camera_rgb, self.used = path, camera_rgb, used
        self.source, self.camera, self.chart = source, camera, chart
        self.profile = self.picture = self.csv = None
        self.flat_field = self.shading = None  # the chart's (chart.ChartSamples)
        self.flat = False  # whether the fit used the flat-fielded patches
        self.flat_choice: dict = {}  # leave-one-out matrix means with / without

    @property
    def fitted_rgb(self):
        """The patches the fit used: flat-fielded or as measured."""
        return self.camera_rgb / self.shading[:, None] if self.flat else self.camera_rgb

    def outputs(self, out: Path | None, overwrite: bool) -> None:
        profile = out or Path(f"{self.path.stem}_profile.json")
        if profile.suffix.lower() != ".json":
            profile = profile.with_suffix(profile.suffix + ".json")
        base = profile.with_suffix("")
        self.profile = profile
        self.picture = base.with_name(base.name + "_chart.png")
        self.csv = base.with_name(base.name + "_patches.csv") if self.chart else None
        for p in (self.profile, self.picture, self.csv):
            if p is not None and p.exists() and not overwrite:
                raise FileExistsError(f"{p} exists (use --overwrite to replace it)")


def _measure(source, patches, corners, reader, limit) -> _Job:
    import numpy as np

    from isplab.classic import profile as prof

    if patches is not None:
        rgb = prof.read_patches_csv(patches)
        return _Job(patches, rgb, np.isfinite(rgb).all(1),
                    {"file": patches.name, "sha256": prof.sha256(patches), "kind": "patches"},
                    None, None)
    from isplab import raw as rawio
    from isplab.classic.chart import find_chart

    raw = rawio.read(source, max_megapixels=limit, **opt.overrides_for(source, reader, False))
    found = find_chart(raw, None if corners is None else np.reshape(corners, (4, 2)))
    chart = {"method": found.method, "cell_pixels": round(found.cell, 1),
             "corners": [[round(float(v), 1) for v in c] for c in found.corners],
             "clipped": [i + 1 for i in np.flatnonzero(found.clipped)]}
    job = _Job(source, found.camera_rgb, ~found.clipped,
               {"file": source.name, "sha256": prof.sha256(source), "kind": "raw"},
               prof.camera_identity(source), chart)
    job.flat_field, job.shading = found.flat_field, found.shading
    return job


#: ``--flat-field auto`` keeps the flat field when it lowers the matrix fit's
#: leave-one-patch-out mean by at least this much
FLAT_FIELD_GAIN = 0.05


def _fit(job: _Job, transform: str, black_offset: bool, flat_field: str, quiet: bool,
         err) -> list:
    """The fits, the chosen one first: ``auto`` picks the lowest leave-one-out mean among
    matrix and root-polynomial-2; a root-polynomial is compared with the matrix. The flat
    field (``auto``: compared on the matrix fit) is decided first."""
    from isplab.classic.calibration import calibrate

    def run(kind: str, flat: bool):
        rgb = job.camera_rgb / job.shading[:, None] if flat else job.camera_rgb
        label = f"fitting {kind}{' (flat field)' if flat else ''} (leave-one-patch-out)"
        with err.status(label, spinner="dots") if not quiet else _nothing():
            return calibrate(rgb, job.used, kind, black_offset=black_offset)

    kinds = ["matrix", "root-polynomial-2"] if transform == "auto" else \
        [transform] + (["matrix"] if transform != "matrix" else [])
    done = {}
    if job.flat_field is None or flat_field == "off":
        job.flat = False
    elif flat_field == "on":
        job.flat = True
    else:
        done = {flat: run("matrix", flat) for flat in (False, True)}
        job.flat_choice = {("on" if k else "off"): round(f.loo_mean, 3)
                           for k, f in done.items()}
        job.flat = done[True].loo_mean < done[False].loo_mean - FLAT_FIELD_GAIN
    fits = [done[job.flat] if kind == "matrix" and job.flat in done else run(kind, job.flat)
            for kind in kinds]
    if transform == "auto":
        fits.sort(key=lambda f: f.loo_mean)
    return fits


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _report(job: _Job, fits: list, console, quiet: bool) -> None:
    from rich.table import Table

    from isplab.classic.calibration import reference_chart

    fit = fits[0]
    names, _ = reference_chart()
    if not quiet:
        table = Table(title=f"{job.path.name}: {fit.kind}, ΔE2000 per patch")
        for col in ("#", "patch", "camera R, G, B", "ΔE2000", "left out"):
            table.add_column(col, justify="right" if col != "patch" else "left")
        for i in range(24):
            rgb = job.fitted_rgb[i]
            cam = "clipped" if not fit.used[i] else ", ".join(f"{v:.4f}" for v in rgb)
            de = "-" if not fit.used[i] else f"{fit.delta_e[i]:.2f}"
            loo = "-" if not fit.used[i] else f"{fit.loo_delta_e[i]:.2f}"
            table.add_row(str(i + 1), names[i], cam, de, loo)
        console.print(table)
    for f in fits:
        mark = "*" if f is fit else " "
        console.print(f"{mark} {f.kind:18s} mean ΔE2000 {f.mean:.2f} in-sample, "
                      f"{f.loo_mean:.2f} leave-one-patch-out", highlight=False)
    if job.flat_field is not None:
        choice = ", ".join(f"{k} {v:.2f}" for k, v in job.flat_choice.items())
        shading = float(job.shading[fit.used].min())
        console.print(f"  flat field {'on' if job.flat else 'off'} (the chart's shading: "
                      f"{shading:.2f} .. 1{'; matrix left out: ' + choice if choice else ''})",
                      highlight=False)
    matrix = next((f for f in fits if f.kind == "matrix"), None)
    if matrix is not None and fit is not matrix:
        console.print(f"  {fit.kind} gains {matrix.loo_mean - fit.loo_mean:+.2f} ΔE2000 "
                      "(leave-one-out) over the 3x3 matrix", highlight=False)


def _write(job: _Job, fits: list, overwrite: bool, err) -> None:
    from isplab.classic import profile as prof
    from isplab.io import atomic_write, write_image

    fit = fits[0]
    alternatives = {f.kind: {"mean_delta_e2000": round(f.mean, 3),
                             "loo_mean_delta_e2000": round(f.loo_mean, 3)} for f in fits}
    doc = prof.profile_dict(fit, job.fitted_rgb, source=job.source, camera=job.camera,
                            chart=job.chart, alternatives=alternatives)
    doc["flat_field"] = prof.flat_field_dict(job.flat_field, job.shading, job.flat,
                                             job.flat_choice)
    picture = prof.chart_picture(fit, job.fitted_rgb)
    prof.write_json(job.profile, doc, overwrite)
    write_image(job.picture, picture, overwrite=overwrite)
    if job.csv is not None:
        text = prof.patches_csv(job.fitted_rgb, flat_fielded=job.flat)
        atomic_write(job.csv, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
    if err is not None:
        written = ", ".join(str(p) for p in (job.profile, job.picture, job.csv) if p)
        err.print(f"wrote {written}", highlight=False)
