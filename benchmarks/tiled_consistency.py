"""Tiled vs untiled inference for every zoo model on a 1024 x 1024 raw.

The raw is a real photo (Kodak24 kodim05, centre crop) unprocessed with isplab.synth; each
model (random weights, fixed seed: seams come from tiling, not from training) develops it in
one tile and in tiles of ``--tile`` pixels with ``--overlap`` (default: the model's
``tile_overlap``), both with the same
shared global context (isplab.infer.tiled_forward). PSNR between the two is the seam cost;
the goal is >= 50 dB. Times are for the tiled run.

    python benchmarks/tiled_consistency.py [--tile 256] [--overlap N] [--models a,b]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from isplab.infer import tiled_forward
from isplab.io import read_image
from isplab.metrics import psnr
from isplab.models import create_model, list_models, model_info
from isplab.synth.unprocess import unprocess

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="raw side in pixels")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=None,
                    help="tile overlap (default: each model's tile_overlap, 32 for most)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photo = read_image(DATA / "kodak24" / "kodim05.png")
    s = args.size
    if photo.shape[-1] < s or photo.shape[-2] < s:
        photo = torch.nn.functional.interpolate(photo, size=(s, s), mode="bicubic",
                                                align_corners=False).clamp(0, 1)
    photo = photo[..., :s, :s]
    packed, _ = unprocess(photo[0], generator=0)
    names = [n for n in list_models() if model_info(n)["output"] in ("srgb", "linear_rgb")]
    if args.models:
        names = [n for n in names if n in args.models.split(",")]
    print(f"# tiled ({args.tile} px tiles) vs one tile, {s}x{s} raw")
    print("| model | overlap | PSNR tiled vs untiled (dB) | tiled seconds |")
    print("|---|---|---|---|")
    from isplab.infer.develop import KPN_WEIGHTS
    from isplab.models import load_model

    runs = [(name, None) for name in names]
    if KPN_WEIGHTS.is_file() and not args.models:
        runs.append(("shipped kpn_isp weights", KPN_WEIGHTS))
    for name, weights in runs:
        torch.manual_seed(0)
        model = (create_model(name) if weights is None else load_model(weights)).eval()
        info = model_info(model.isplab_name)
        x = packed[None] if info["input"] == "packed_raw" else photo
        overlap = args.overlap if args.overlap is not None else info["tile_overlap"]
        full = tiled_forward(model, x, tile=10**6)
        t0 = time.perf_counter()
        tiled = tiled_forward(model, x, tile=args.tile, overlap=overlap)
        sec = time.perf_counter() - t0
        value = float(psnr(tiled.clamp(0, 1), full.clamp(0, 1)))
        print(f"| {name} | {overlap} | {value:.1f} | {sec:.1f} |", flush=True)


if __name__ == "__main__":
    main()
