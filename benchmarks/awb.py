"""Auto white balance benchmark: every illuminant estimator on real ground truth.

1. INTEL-TAU samples (``../shared/data/intel_tau_imx135_awb_samples``: 10 Sony IMX135
   camera-RGB images with their measured illuminant): angular error per estimator, mean,
   median, best 25 % and worst 25 %, and the time per image.
2. Canon 550D DNG (``../shared/data/raw_dng_canon550d_colorchart``): the estimate (on the
   demosaic-free Bayer block means, as ``isplab illuminant`` and ``--wb`` use) against the
   chromaticity of the ColorChecker's neutral row (white to N3.5; the chart found by
   ``isplab.classic.chart``, else patch centres located by hand, :data:`CANON_NEUTRALS`), and
   the develop's colour error on the 24 patches: gains, the DNG's camera -> sRGB matrix,
   exposure normalised on the neutral row, mean CIEDE2000 against the X-Rite reference
   (``isplab.classic.calibration.chart_delta_e``).

None of these images was used to train or tune anything (docs/colour-constancy.md).

    python benchmarks/awb.py [--weights W.safetensors] [FILES_OR_FOLDERS...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TAU = DATA / "intel_tau_imx135_awb_samples"
CANON = DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng"
#: (x, y) centres of the Classic-24 neutral row (white, N8, N6.5, N5, N3.5) in the
#: half-resolution Bayer-block image of the Canon DNG (867 x 578), located by eye
CANON_NEUTRALS = ((356, 464), (412, 464), (466, 464), (520, 464), (576, 464))


def _table(rows: dict[str, dict], title: str) -> str:
    head = f"{title}\n\n| estimator | mean | median | best 25 % | worst 25 % | ms / image |\n" \
           "|---|---|---|---|---|---|\n"
    return head + "\n".join(
        f"| {m} | {s['mean']:.2f} | {s['median']:.2f} | {s['best25']:.2f} | "
        f"{s['worst25']:.2f} | {s['ms']:.1f} |" for m, s in rows.items())


def score_files(files: list[Path], methods: list[str], weights) -> dict[str, dict]:
    from isplab.classic import awb
    from isplab.classic.illuminant import angular_error, error_summary

    data = []
    for f in files:
        truth = awb.find_truth(f)
        if truth is not None:
            data.append((awb.read_camera_rgb(f)[0], truth))
    rows = {}
    for m in methods:
        awb.estimate(m, data[0][0], weights)  # load weights outside the timing
        t0 = time.perf_counter()
        errs = [angular_error(awb.estimate(m, rgb, weights), t) for rgb, t in data]
        ms = (time.perf_counter() - t0) * 1000 / len(data)
        rows[m] = {**error_summary(errs), "ms": ms, "errors": errs}
    return rows


def _neutral_truth(rgb: np.ndarray) -> np.ndarray:
    patches = np.array([np.median(rgb[y - 5:y + 6, x - 5:x + 6].reshape(-1, 3), axis=0)
                        for x, y in CANON_NEUTRALS])
    return (patches / patches[:, 1:2]).mean(axis=0)


def _chart(raw):
    """The chart's 24 camera-RGB patches (``isplab.classic.chart``), or None."""
    try:
        from isplab.classic.chart import find_chart
    except ImportError:
        return None
    return find_chart(raw)


def canon(methods: list[str], weights) -> str:
    """Estimates on the Canon DNG against its chart: angular error to the neutral patches'
    illuminant, and the develop's mean CIEDE2000 over the 24 patches (gains, then the DNG's
    camera -> sRGB matrix, exposure normalised on the neutral row)."""
    from isplab import raw as rawio
    from isplab.classic import awb
    from isplab.classic.illuminant import angular_error

    raw = rawio.read(CANON)
    rgb, _ = awb.read_camera_rgb(CANON)
    chart = _chart(raw)
    if chart is not None:
        from isplab.classic.calibration import WB_PATCHES, chart_delta_e

        n = chart.camera_rgb[WB_PATCHES]
        truth = (n / n[:, 1:2]).mean(axis=0)
        where = f"chart {chart.method} by isplab.classic.chart, patches {list(WB_PATCHES)}"
    else:
        truth, where = _neutral_truth(rgb), "neutral patches located by hand"
    lines = [f"Canon 550D DNG: illuminant of the neutral patches (r, 1, b) = ({truth[0]:.3f}, 1, "
             f"{truth[2]:.3f}) ({where})\n",
             "| estimator | estimate (r, 1, b) | angular error | chart mean CIEDE2000 |",
             "|---|---|---|---|"]
    cands = [("camera (as shot)", 1 / np.asarray(raw.wb_gains))] if raw.wb_gains else []
    cands += [("neutral patches (oracle)", truth)]
    cands += [(m, awb.estimate(m, rgb, weights)) for m in methods]
    for name, e in cands:
        de = ""
        if chart is not None and raw.camera_to_srgb is not None:
            lin = (chart.camera_rgb / e) @ raw.camera_to_srgb.T
            de = f"{np.nanmean(chart_delta_e(lin, ~chart.clipped)[0]):.2f}"
        lines.append(f"| {name} | ({e[0]:.3f}, 1, {e[2]:.3f}) | {angular_error(e, truth):.2f} "
                     f"| {de} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    from isplab.classic import awb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", type=Path, default=[TAU])
    ap.add_argument("--weights", type=Path, default=None,
                    help="learned estimator weights (default: the shipped file)")
    ap.add_argument("--no-canon", action="store_true", help="skip the Canon DNG check")
    a = ap.parse_args(argv)
    methods = awb.names()
    files = sorted(f for p in a.inputs for f in (p.iterdir() if p.is_dir() else [p])
                   if f.suffix.lower() in (".png", ".tif", ".tiff", ".npy", ".dng"))
    rows = score_files(files, methods, a.weights)
    rows = dict(sorted(rows.items(), key=lambda kv: kv[1]["mean"]))
    n = next(iter(rows.values()))["n"]
    print(_table(rows, f"Angular error (degrees) on {n} images of {', '.join(map(str, a.inputs))}"))
    print("\nper image:", {m: [round(e, 2) for e in r["errors"]] for m, r in rows.items()})
    if not a.no_canon and CANON.is_file():
        print()
        print(canon(methods, a.weights))


if __name__ == "__main__":
    main()
