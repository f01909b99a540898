"""Alignment speed on a 12 MP phone raw against a 24 MP DSLR photo (synthetic pair).

A Wikipedia photo is upscaled to 6000x4000 (the "DSLR"), and a 4000x3000 phone raw is
filmed from it with a known homography + smooth deformation (isplab.data.align_synth).
:func:`isplab.data.align.align_pair` then runs with ``--threads`` threads (OpenCV and
torch); the wall and CPU seconds of each stage are printed (median of ``--repeat`` runs),
with the machine's load average (the machine is shared: CPU seconds are what load does not
inflate), and the EPE.

    python benchmarks/align_speed.py [--threads 2] [--repeat 1] [--photo 001]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from isplab.data.align import align_pair
from isplab.data.align_synth import end_point_error, synthetic_pair

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--photo", default="001")
    ap.add_argument("--patch", type=int, default=448)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)

    img = cv2.imread(str(DATA / "wikipedia_photos49" / f"{args.photo}.png"))[..., ::-1]
    dslr = cv2.resize(img, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    t = time.perf_counter()
    pair = synthetic_pair(dslr, scale=1.35, raw_size=(3000, 4000), rotation_deg=2.5,
                          perspective=0.03, deform_px=3.0, seed=7)
    print(f"synthetic pair made in {time.perf_counter() - t:.1f} s: raw "
          f"{pair.raw.width}x{pair.raw.height} ({pair.raw.megapixels:.1f} MP), DSLR "
          f"{dslr.shape[1]}x{dslr.shape[0]}")
    runs, cpus = [], []
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        res = align_pair(pair.raw, pair.reference, args.patch)
        total, cpu = time.perf_counter() - t, time.process_time() - c
        runs.append({**res.stats["seconds"], "total": total})
        cpus.append({**res.stats["cpu_seconds"], "total": cpu})
    load1 = os.getloadavg()[0]
    stages = list(runs[0])
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads, median of {args.repeat}; 1-min load average "
          f"{load0:.1f} before, {load1:.1f} after")
    print("| stage | wall s | CPU s |\n|---|---:|---:|")
    for s in stages:
        print(f"| {s} | {statistics.median(r[s] for r in runs):.2f} | "
              f"{statistics.median(r[s] for r in cpus):.2f} |")

    h, w = res.raw_shape
    ys, xs = np.mgrid[0:h:4, 0:w:4].astype(np.float64)
    est = res.reference_coords()
    est = (est[0][::4, ::4], est[1][::4, ::4])
    e = end_point_error(est, pair.mapping(xs, ys), pair.homography, xs, ys)
    valid = res.valid[::2, ::2][:e.shape[0], :e.shape[1]]
    e = e[:valid.shape[0], :valid.shape[1]][valid]
    print(f"\nEPE over the valid region ({res.valid.mean():.0%} of the frame): mean "
          f"{e.mean():.3f} px, 95th percentile {np.percentile(e, 95):.3f} px; patches "
          f"{len(res.accepted)}/{len(res.patches)} accepted")


if __name__ == "__main__":
    main()
