"""Low-light enhancement benchmark: LIME vs gamma vs global HE vs CLAHE (MPSE phase 3).

Synthetic low light from real photos (wikipedia_photos49 + kodak24): each photo is downscaled
(longer side ``--size``), decoded to linear sRGB, divided by ``k``, optionally given
Gaussian noise in linear (``--noise`` std), re-encoded with the sRGB curve and quantised to
8 bits. Every method enhances the dark image; PSNR, CIEDE2000 (``isplab.metrics``) and the
lightness-order error (``isplab.enhance.lime.lightness_order_error``) are computed against
the original photo and averaged over the photos.

    python benchmarks/lowlight.py [--per-set 4] [--size 256] [--k 8] [--noise 0.0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from isplab.classic import clahe, histogram_equalize, srgb_gamma, srgb_to_linear
from isplab.enhance.lime import gamma_enhance, lightness_order_error, lime
from isplab.io import read_image
from isplab.metrics import deltae2000, psnr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {"wikipedia_photos49": DATA / "wikipedia_photos49", "kodak24": DATA / "kodak24"}


def darken(srgb: torch.Tensor, k: float, noise: float, seed: int = 0) -> torch.Tensor:
    """sRGB -> linear / k (+ Gaussian noise) -> sRGB, quantised to 8 bits."""
    lin = srgb_to_linear(srgb) / k
    if noise > 0:
        g = torch.Generator().manual_seed(seed)
        lin = lin + noise * torch.randn(lin.shape, generator=g)
    return (srgb_gamma(lin.clamp(0, 1)) * 255).round() / 255


def load(path: Path, size: int) -> torch.Tensor:
    x = read_image(path)
    h, w = x.shape[-2:]
    s = size / max(h, w)
    return F.interpolate(x, size=(round(h * s), round(w * s)), mode="area") if s < 1 else x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-set", type=int, default=4, help="photos from each set")
    ap.add_argument("--size", type=int, default=256, help="longer side in pixels")
    ap.add_argument("--k", type=float, default=8.0, help="exposure divisor (linear)")
    ap.add_argument("--noise", type=float, default=0.0, help="Gaussian std in linear units")
    ap.add_argument("--denoise", type=float, default=0.02, help="LIME+denoise range sigma")
    args = ap.parse_args()
    torch.set_num_threads(2)

    methods = {
        "dark input": lambda x: x,
        "gamma 2.2 (linear)": lambda x: gamma_enhance(x, 2.2),
        "global HE (L*)": histogram_equalize,
        "CLAHE (L*, clip 2, 8x8)": clahe,
        "LIME (a 0.15, g 0.8)": lime,
        f"LIME + denoise {args.denoise}": lambda x: lime(x, denoise=args.denoise),
    }
    scores = {m: {"psnr": [], "de": [], "loe": [], "s": []} for m in methods}
    files = []
    for d in SETS.values():
        files += sorted(d.glob("*.png"))[: args.per_set]
    for i, f in enumerate(files):
        x = load(f, args.size)
        dark = darken(x, args.k, args.noise, seed=i)
        for m, fn in methods.items():
            t0 = time.perf_counter()
            y = fn(dark).clamp(0, 1)
            scores[m]["s"].append(time.perf_counter() - t0)
            scores[m]["psnr"].append(float(psnr(y, x)[0]))
            scores[m]["de"].append(float(deltae2000(y, x)[0]))
            scores[m]["loe"].append(float(lightness_order_error(x, y)[0]))
    print(f"{len(files)} photos ({args.per_set} each of {', '.join(SETS)}), longer side "
          f"{args.size}, linear / {args.k:g}, noise std {args.noise:g} (linear), 8-bit")
    print("| method | PSNR dB | ΔE2000 | LOE | s/image |")
    print("|---|---|---|---|---|")
    for m, s in scores.items():
        print(f"| {m} | {statistics.mean(s['psnr']):.2f} | {statistics.mean(s['de']):.2f} | "
              f"{statistics.mean(s['loe']):.1f} | {statistics.mean(s['s']):.3f} |")


if __name__ == "__main__":
    main()
