"""``isplab develop --onnx`` against the torch develop of the same weights on every real raw.

    .venv/bin/python benchmarks/onnx_real.py [--out runs/onnx_real]

Exports the shipped blind ``kpn_isp`` (``isplab export --dynamic``), develops each real raw of
../shared/data with ``--isp kpn_isp.safetensors`` (torch) and ``--onnx`` (onnxruntime), both
16-bit PNG, and prints the PSNR between them (goal >= 50 dB, issue 20). The hybrid ISP's own
onnxruntime backend is compared with torch in ``benchmarks/learned_speed.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
D = ROOT.parent / "shared" / "data"
ISPLAB = [sys.executable, "-m", "isplab.cli"]
WEIGHTS = ROOT / "isplab" / "weights" / "kpn_isp.safetensors"
FRAMES = {
    "canon550d_dng": (D / "raw_dng_canon550d_colorchart" / "colorchart.dng", []),
    "infiniteisp_12bit": (D / "raw_infiniteisp_colorchecker_1920x1080_12bit"
                          / "ColorCheckerRAW_1920x1080_12bit_BGGR.raw", []),
    "openisp_10bit": (D / "raw_openisp_testchart_1920x1080" / "test.RAW",
                      ["--width", "1920", "--height", "1080", "--bits", "10", "--cfa", "RGGB"]),
    "vivo_x90_npy": (D / "raw_rawir_vivo_x90_npy" / "x90_3_4.npy", ["--white-level", "4095"]),
    "kodak_dc50_kdc": (D / "raw_kdc_kodak_dc50" / "RAW_KODAK_DC50.KDC", []),
}


def develop(raw: Path, out: Path, flags: list[str]) -> np.ndarray:
    subprocess.run([*ISPLAB, "develop", str(raw), "-o", str(out), "--output-bps", "16",
                    "--overwrite", "-q", *flags], check=True)
    return cv2.imread(str(next(out.glob("*.png"))), cv2.IMREAD_UNCHANGED) / 65535.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "onnx_real")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    onnx = args.out / "kpn_isp.onnx"
    subprocess.run([*ISPLAB, "export", "kpn_isp", "--weights", str(WEIGHTS), "-o", str(onnx),
                    "--dynamic", "--overwrite"], check=True)
    print("| frame | size | --onnx vs torch PSNR dB |\n|---|---|---|")
    for name, (raw, flags) in FRAMES.items():
        a = develop(raw, args.out / name / "torch", [*flags, "--isp", str(WEIGHTS)])
        b = develop(raw, args.out / name / "onnx", [*flags, "--onnx", str(onnx)])
        mse = float(np.mean((a - b) ** 2))
        print(f"| {name} | {a.shape[1]}x{a.shape[0]} | {10 * np.log10(1 / mse):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
