"""Chart calibration on the real ColorChecker frames of ../shared/data (issue 17.1).

For each frame: ``isplab calibrate RAW`` (transform and flat field chosen by
leave-one-patch-out), the fit's in-sample and leave-one-patch-out mean CIEDE2000, then
``isplab develop RAW --profile`` (which applies the chart's flat field to that frame) to a
16-bit PNG, the chart found again in the developed picture and its ΔE2000 measured (exposure
normalised on the neutral row), against the as-shot develop (``--wb camera``, the file's
matrix). Run: ``.venv/bin/python benchmarks/calibration.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FRAMES = {
    "canon550d_dng": DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng",
    "infiniteisp_12bit": DATA / "raw_infiniteisp_colorchecker_1920x1080_12bit"
    / "ColorCheckerRAW_1920x1080_12bit_BGGR.raw",
}
ISPLAB = [sys.executable, "-m", "isplab.cli"]


def developed_error(png: Path) -> float:
    import numpy as np

    from isplab.classic.chart import rendered_chart_error
    from isplab.classic.tone import srgb_to_linear
    from isplab.io import read_image

    linear = srgb_to_linear(read_image(png))[0].permute(1, 2, 0).numpy()
    _, de = rendered_chart_error(linear)
    return float(np.mean(de))


def run(name: str, raw: Path, out: Path) -> dict:
    profile = out / f"{name}.json"
    subprocess.run([*ISPLAB, "calibrate", str(raw), "-o", str(profile), "--overwrite", "-q"],
                   check=True)
    doc = json.loads(profile.read_text())
    row = {"frame": name, "kind": doc["kind"], **{
        f"{k} {m}": v[m] for k, v in doc["fit"]["alternatives"].items()
        for m in ("mean_delta_e2000", "loo_mean_delta_e2000")}}
    flat = doc.get("flat_field") or {}
    row["flat field"] = bool(flat.get("applied"))
    row["flat field min gain"] = min(flat["patch_gains"]) if flat else None
    row["matrix loo (flat field off / on)"] = flat.get("loo_mean_delta_e2000_matrix")
    for label, extra in (("as shot", []), ("profile", ["--profile", str(profile)])):
        folder = out / f"{name}_{label.replace(' ', '_')}"
        subprocess.run([*ISPLAB, "develop", str(raw), "-o", str(folder), "--output-bps", "16",
                        "--overwrite", "-q", *extra], check=True)
        png = next(folder.glob("*.png"))
        row[f"developed ΔE2000 ({label})"] = round(developed_error(png), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/calibration_benchmark"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, raw in FRAMES.items():
        if not raw.exists():
            print(f"{name}: {raw} not found, skipped")
            continue
        print(json.dumps(run(name, raw, args.out)), flush=True)


if __name__ == "__main__":
    main()
