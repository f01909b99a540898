"""Classic develop speed: isplab vs LibRaw (rawpy ``postprocess``), same process, same files.

Each method goes from the file on disk to a 16-bit RGB array (camera WB, auto-brightening,
sRGB curve). The headerless frames are first wrapped as DNG (isplab.raw.write_dng) so that
LibRaw can read them too; both sides then read the same DNG. Prints MP/s (median of
``--repeat`` runs after one warm-up) and the ratio to LibRaw-linear. "isplab bilinear" is
``ClassicISP.postprocess`` (what ``isplab develop`` runs: the 16-bit OpenCV path of
``isplab.classic.fast``); "torch path" is the float32 ``ClassicISP.develop`` + ``to_uint``.

    python benchmarks/develop_speed.py [--repeat 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy
import torch

from isplab import raw as rawio
from isplab.classic import ClassicISP, gray_world_gains
from isplab.io import to_uint

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = {
    "Canon 550D DNG (14-bit RGGB)": (DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng",
                                     {}),
    "ColorChecker 12-bit BGGR (.raw)": (
        DATA / "raw_infiniteisp_colorchecker_1920x1080_12bit"
        / "ColorCheckerRAW_1920x1080_12bit_BGGR.raw",
        dict(width=1920, height=1080, bit_depth=12, cfa="BGGR")),
    "openISP 10-bit RGGB (.raw)": (DATA / "raw_openisp_testchart_1920x1080" / "test.RAW",
                                   dict(width=1920, height=1080, bit_depth=10, cfa="RGGB")),
}


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def libraw(path: Path, algorithm) -> None:
    with rawpy.imread(str(path)) as r:
        r.postprocess(demosaic_algorithm=algorithm, use_camera_wb=True, output_bps=16,
                      gamma=(2.4, 12.92))


def ours(path: Path, isp: ClassicISP) -> None:
    """What ``isplab develop --output-bps 16`` runs (the 16-bit OpenCV path for bilinear)."""
    isp.postprocess(rawio.read(path), 16)


def ours_torch(path: Path, isp: ClassicISP) -> None:
    """The float32 torch pipeline (batched, differentiable) on the same file."""
    to_uint(isp.develop(rawio.read(path)), 16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = {
        "LibRaw linear": lambda p: libraw(p, rawpy.DemosaicAlgorithm.LINEAR),
        "LibRaw AHD": lambda p: libraw(p, rawpy.DemosaicAlgorithm.AHD),
        "isplab bilinear": lambda p, isp=ClassicISP(): ours(p, isp),
        "isplab bilinear (torch path)": lambda p, isp=ClassicISP(): ours_torch(p, isp),
        "isplab malvar2004": lambda p, isp=ClassicISP(demosaic_algorithm="malvar2004"):
            ours(p, isp),
    }
    print(f"# develop speed — {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"rawpy {rawpy.__version__} (LibRaw {'.'.join(map(str, rawpy.libraw_version))}), "
          f"Python {sys.version.split()[0]}")
    print("# MP/s, file -> 16-bit RGB array, median of", args.repeat, "runs\n")
    header = "| file | MP | " + " | ".join(methods) + " | isplab bilinear / LibRaw linear |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, opts) in FILES.items():
            if not path.exists():
                print(f"| {name} | missing: {path} |")
                continue
            if opts:  # wrap the headerless frame as a DNG both readers take
                raw = rawio.read(path, **opts)
                raw.camera_to_srgb = np.eye(3)  # LibRaw applies a matrix anyway: so do we
                raw.wb_gains = tuple(gray_world_gains(raw.to_tensor(), cfa=raw.cfa)[0].tolist())
                path = rawio.write_dng(Path(tmp) / f"{path.stem}.dng", raw)
            mp = rawio.read(path).megapixels
            speeds = {m: mp / median_time(lambda f=fn, p=path: f(p), args.repeat)
                      for m, fn in methods.items()}
            ratio = speeds["isplab bilinear"] / speeds["LibRaw linear"]
            cells = " | ".join(f"{v:.1f}" for v in speeds.values())
            print(f"| {name} | {mp:.2f} | {cells} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
