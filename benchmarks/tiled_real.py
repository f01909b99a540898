"""Tiled vs whole-frame learned develop on the real frames of ../shared/data (issue 20).

    .venv/bin/python benchmarks/tiled_real.py [--tile 256] [--out runs/tiled_real]

Each frame is developed twice by ``isplab develop`` (a whole process each, 16-bit PNG): with
small tiles (``--tile``, the model's own overlap) and in one tile (``--tile 8192``); PSNR
between the two over the whole picture, border rows and columns included, and over the
outer 16-pixel frame alone (where padding and tile edges meet). Goal: >= 50 dB. The
learned ISPs: the hybrid (``--isp learned``: classical metadata stages around jdd_net) and
the blind ``kpn_isp`` with its shipped weights.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ISPLAB = [sys.executable, "-m", "isplab.cli"]

from real_frames import FRAMES  # noqa: E402

ISPS = {"hybrid": ["--isp", "learned"],
        "kpn_isp": ["--isp", str(ROOT / "isplab" / "weights" / "kpn_isp.safetensors")]}


def develop(raw: Path, out: Path, flags: list[str]) -> np.ndarray:
    from isplab.io import read_image

    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([*ISPLAB, "develop", str(raw), "-o", str(out), "--output-bps", "16",
                    "--overwrite", "-q", *flags], check=True)
    return read_image(next(out.glob("*.png")))[0].double().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tiled_real")
    args = ap.parse_args()
    print("| frame | ISP | size | tiled vs whole PSNR dB | outer 16 px frame dB |")
    print("|---|---|---|---|---|")
    for name in ("canon550d_dng", "infiniteisp_12bit", "openisp_10bit"):  # 1734x1156, 1920x1080
        raw, flags = FRAMES[name].path, [*FRAMES[name].flags, *FRAMES[name].wb_flags]
        for isp, isp_flags in ISPS.items():
            base = args.out / name / isp
            tiled = develop(raw, base / "tiled", [*flags, *isp_flags, "--tile", str(args.tile)])
            whole = develop(raw, base / "whole", [*flags, *isp_flags, "--tile", "8192"])
            edge = np.ones(whole.shape[1:], bool)
            edge[16:-16, 16:-16] = False
            print(f"| {name} | {isp} | {whole.shape[2]}x{whole.shape[1]} | "
                  f"{psnr(tiled, whole):.1f} | {psnr(tiled[:, edge], whole[:, edge]):.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
