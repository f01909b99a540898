"""``isplab develop --onnx`` against the torch develop of the same weights on every real raw.

    .venv/bin/python benchmarks/onnx_real.py [--out runs/onnx_real]

Exports the shipped blind ``kpn_isp`` (``isplab export --dynamic``), develops each real raw of
../shared/data with ``--isp kpn_isp.safetensors`` (torch) and ``--onnx`` (onnxruntime), both
16-bit PNG, and prints the PSNR between them (goal >= 50 dB, issue 20). kpn_isp pools its
colour matrix over the frame, so the export has a second input, ``context`` (the downscaled
frame ``develop --onnx`` feeds, as torch computes it). The hybrid ISP's own
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
ISPLAB = [sys.executable, "-m", "isplab.cli"]

from real_frames import FRAMES  # noqa: E402

WEIGHTS = ROOT / "isplab" / "weights" / "kpn_isp.safetensors"



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
    for name, frame in FRAMES.items():
        raw, flags = frame.path, list(frame.flags)
        a = develop(raw, args.out / name / "torch", [*flags, "--isp", str(WEIGHTS)])
        b = develop(raw, args.out / name / "onnx", [*flags, "--onnx", str(onnx)])
        mse = float(np.mean((a - b) ** 2))
        print(f"| {name} | {a.shape[1]}x{a.shape[0]} | {10 * np.log10(1 / mse):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
