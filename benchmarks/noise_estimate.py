"""How well is a raw's noise estimated from its pixels, and what does a wrong estimate cost?

    .venv/bin/python benchmarks/noise_estimate.py [--quantile 0.1 0.02] [--psnr 8]

Raws without a DNG ``NoiseProfile`` (most camera raws, every headerless dump) are developed
by ``--isp learned`` with the estimate of :func:`isplab.classic.noise_profile.
estimate_noise_profile`. Here it is checked where the truth is known: the training photos
of ``wikipedia_photos49`` area-downscaled 2x and 4x (their own noise and JPEG traces
averaged away, texture packed densely: the hard case for an estimator that looks for flat
blocks), made linear (x 0.6), re-mosaiced (RGGB) and given Brooks et al. shot + read noise at
four levels, from below the low ISO of ``benchmarks/hybrid_tables.py`` to its high ISO,
clipped to [0, 1] as a raw is.

For each estimator quantile and level: the estimated noise standard deviation over the true
one at signal 0.18 and at 0.02 (median over the images, and the 90th percentile of the
error factor ``max(r, 1/r)``), and how many frames could not be estimated. With ``--psnr N``,
the learned stage (``--weights``, default the shipped one) on the first N 2x frames (384
px), once with the true profile and once with each estimate: mean PSNR (1/2.2 gamma).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isplab.classic.noise_profile import QUANTILE  # noqa: E402

LEVELS = {"very low": (0.0002, 1e-7), "low": (0.0008, 2.4e-6), "mid": (0.004, 8e-5),
          "high": (0.012, 6e-4)}


def scenes(factor: int, side: int) -> list[torch.Tensor]:
    """Linear training photos, area-downscaled by ``factor``, at most ``side`` px."""
    from isplab.classic.tone import srgb_to_linear
    from isplab.data.datasets import data_root
    from isplab.io import read_image

    files = sorted((data_root() / "wikipedia_photos49").glob("*.png"))
    out = []
    for f in files:
        img = torch.nn.functional.avg_pool2d(read_image(f), factor)[..., :side, :side]
        out.append(srgb_to_linear(img) * 0.6)
    return out


def psnr(a: torch.Tensor, b: torch.Tensor, border: int = 8) -> float:
    """PSNR after a 1/2.2 gamma, ``border`` pixels left out."""
    from isplab.metrics.functional import psnr as psnr_db

    a, b = (t.clamp(0, 1) ** (1 / 2.2) for t in (a, b))
    return float(psnr_db(a, b, border=border)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quantile", type=float, nargs="+", default=[QUANTILE])
    ap.add_argument("--psnr", type=int, default=0, help="frames for the PSNR cost (0: none)")
    ap.add_argument("--weights", default=None, help="jdd_net weights (default: shipped)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from isplab.classic.noise_profile import NoiseProfile, estimate_noise_profile
    from isplab.errors import InvalidInputError
    from isplab.raw.cfa import mosaic, pack
    from isplab.synth.noise import add_noise

    sets = {"2x": scenes(2, 768), "4x": scenes(4, 512)}
    stage = None
    if args.psnr:
        from isplab.infer.hybrid import learned_demosaic

        stage = learned_demosaic(args.weights, device="cpu")
    print("| scenes | level | quantile | std at 0.18: median / p90 factor | std at 0.02: "
          "median / p90 factor | failed | PSNR true / estimated profile |")
    print("|---|---|---|---|---|---|---|")
    for set_name, images in sets.items():
        for level, (shot, read) in LEVELS.items():
            g = torch.Generator().manual_seed(args.seed)
            noisy = [add_noise(mosaic(lin, "RGGB"), shot, read, generator=g).clamp(0, 1)
                     for lin in images]
            true = NoiseProfile(shot, read)
            for q in args.quantile:
                ratios, failed, scores = [], 0, []
                for i, m in enumerate(noisy):
                    try:
                        est = estimate_noise_profile(pack(m, "RGGB")[0].numpy(), quantile=q)
                    except InvalidInputError:
                        failed += 1
                        continue
                    ratios.append([est.std_at(x) / true.std_at(x) for x in (0.18, 0.02)])
                    if stage is not None and set_name == "2x" and i < args.psnr:
                        crop = m[..., :384, :384]
                        ref = images[i][..., :384, :384]
                        scores.append([psnr(stage(crop, "RGGB", None, p), ref)
                                       for p in (true, est)])
                r = np.log(np.array(ratios))
                cells = [f"{np.exp(np.median(r[:, k])):.2f} / "
                         f"{np.exp(np.quantile(np.abs(r[:, k]), 0.9)):.2f}" for k in (0, 1)]
                cost = "-"
                if scores:
                    t, e = np.mean(scores, 0)
                    cost = f"{t:.2f} / {e:.2f} dB ({e - t:+.2f})"
                print(f"| {set_name} | {level} | {q} | {cells[0]} | {cells[1]} | "
                      f"{failed}/{len(noisy)} | {cost} |", flush=True)


if __name__ == "__main__":
    main()
