"""Peak memory and speed of developing a 12 MP raw (4000 x 3000) on the CPU.

A 12-bit RGGB DNG of 4000 x 3000 is made from a real photo (wikipedia_photos49, upscaled and
unprocessed with isplab.synth), then each ISP develops it through the ``isplab develop``
command in a fresh process under ``/usr/bin/time -v``: peak RSS (maximum resident set size)
and wall time, MP/s alongside, the classical pipeline and LibRaw (rawpy, AHD) in the same run
for comparison, and the shipped default learned ISP (``--isp learned``). Other zoo models
run with random weights: memory and speed do not depend on the weights' values.

    python benchmarks/develop_memory.py [--models microisp,pynet_lite] [--tile N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def make_raw(path: Path, width: int = 4000, height: int = 3000) -> None:
    from isplab.io import read_image
    from isplab.raw.cfa import unpack
    from isplab.raw.dng import write_dng
    from isplab.raw.image import RawImage
    from isplab.synth.unprocess import unprocess

    photo = read_image(sorted((DATA / "wikipedia_photos49").glob("*"))[0])
    big = F.interpolate(photo, size=(height, width), mode="bicubic",
                        align_corners=False).clamp(0, 1)
    packed, meta = unprocess(big[0], generator=0)
    mosaic = unpack(packed[None], "RGGB")[0, 0].numpy()
    black, white = 256, 4095
    gains = (meta["red_gain"], 1.0, meta["blue_gain"])
    raw = RawImage(mosaic=mosaic.astype(np.float32), cfa="RGGB",
                   black_level=(black,) * 4, white_level=white,
                   wb_gains=gains, bit_depth=12)
    write_dng(path, raw)


def measure(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in GB, wall seconds) of ``cmd`` under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    return rss_kb / 2**20, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="microisp,pynet_lite",
                    help="zoo models to run with random weights besides the default ISP")
    ap.add_argument("--tile", type=int, default=None, help="tile side (default: automatic)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    isplab = str(Path(sys.executable).with_name("isplab"))
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    mp = 4000 * 3000 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = tmp / "12mp.dng"
        make_raw(raw)
        rows = []
        # as `isplab develop`: read, develop, write an 8-bit PNG
        code = ("import cv2,rawpy,sys;r=rawpy.imread(sys.argv[1]);"
                "cv2.imwrite(sys.argv[2],r.postprocess(use_camera_wb=True)[...,::-1])")
        for algo in ("LINEAR", "AHD"):
            rows.append((f"LibRaw {algo.lower()} (rawpy, + PNG write)", *measure(
                [sys.executable, "-c", code.replace("use_camera_wb=True", "use_camera_wb=True,"
                 f"demosaic_algorithm=rawpy.DemosaicAlgorithm.{algo}"), str(raw),
                 str(tmp / f"libraw_{algo}.png")])))
        rows.append(("isplab classic", *measure([isplab, "develop", str(raw), "-o",
                                                 str(tmp / "classic"), "-q"])))
        from isplab.infer.hybrid import JDD_WEIGHTS
        from isplab.models import create_model, save_weights

        if JDD_WEIGHTS.is_file():  # the shipped hybrid ISP
            cmd = [isplab, "develop", str(raw), "-o", str(tmp / "learned"), "--isp", "learned",
                   "-q"] + (["--tile", str(args.tile)] if args.tile else [])
            rows.append(("isplab --isp learned (hybrid, jdd_net, tiled)", *measure(cmd)))

        for name in [m for m in args.models.split(",") if m]:
            torch.manual_seed(0)
            w = save_weights(create_model(name), tmp / f"{name}.safetensors")
            cmd = [isplab, "develop", str(raw), "-o", str(tmp / name), "--isp", name,
                   "--weights", str(w), "-q"]
            if args.tile:
                cmd += ["--tile", str(args.tile)]
            rows.append((f"{name} (tiled)", *measure(cmd)))
    print(f"# develop a 12 MP raw (4000x3000, 12-bit DNG), {args.threads} threads, "
          f"torch {torch.__version__}")
    print("| ISP | peak RSS (GB) | seconds | MP/s |")
    print("|---|---|---|---|")
    for name, rss, wall in rows:
        print(f"| {name} | {rss:.2f} | {wall:.1f} | {mp / wall:.2f} |")


if __name__ == "__main__":
    main()
