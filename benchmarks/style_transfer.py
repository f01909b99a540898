"""Semantic photorealistic style transfer on real photo pairs (MPSE phase 2).

For each (content, reference) pair from wikipedia_photos49, downscaled to ``--size`` (longer
side), runs :func:`isplab.enhance.style_transfer` with the offline co-segmentation and reports:
luminance SSIM to the content, the area-weighted per-region Lab mean/std distance to the
reference before (content) and after (result), their ratio, and the matting energy per pixel
of content and result. Without ``--vgg-weights`` the VGG-19 is RANDOM (seeded): the numbers
then show the machinery, not the perceptual quality — the output says which was used.

    python benchmarks/style_transfer.py [--size 96] [--iterations 10,10] [--vgg-weights P]
        [--save DIR] [--html report.html]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from isplab.backbones import load_backbone
from isplab.enhance.style import style_transfer
from isplab.io import read_image, to_uint, write_image

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikipedia_photos49"
PAIRS = (("003", "004"), ("010", "020"), ("005", "006"), ("012", "030"))


def load(name: str, size: int) -> torch.Tensor:
    x = read_image(DATA / f"{name}.png")
    h, w = x.shape[-2:]
    s = size / max(h, w)
    return F.interpolate(x, size=(round(h * s), round(w * s)), mode="area")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--iterations", default="10,10")
    ap.add_argument("--vgg-weights", type=Path, default=None)
    ap.add_argument("--region-weights", default="adaptive", choices=("adaptive", "uniform"))
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--save", type=Path, default=None, help="write content/ref/result PNGs")
    ap.add_argument("--html", type=Path, default=None,
                    help="write a self-contained HTML report (table + pictures)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    its = tuple(int(v) for v in args.iterations.split(","))
    if args.vgg_weights is None:
        torch.manual_seed(0)
        vgg = load_backbone("vgg19", random_init=True)
        which = "RANDOM VGG-19 (seed 0; no --vgg-weights): not perceptual"
    else:
        vgg = load_backbone("vgg19", weights=args.vgg_weights)
        which = f"ImageNet VGG-19 from {args.vgg_weights}"
    intro = (f"{which}; longer side {args.size}; L-BFGS {its[0]}+{its[1]}; region weights "
             f"{args.region_weights}; co-segmentation K={args.segments}; default loss weights")
    lines = ["| content / reference | regions | lum. SSIM | Lab dist before | after | ratio | "
             "matting E/px content | result | s |", "|---|---|---|---|---|---|---|---|---|"]
    print(intro)
    print("\n".join(lines))
    sections = []
    for a, b in PAIRS:
        content, ref = load(a, args.size), load(b, args.size)
        t0 = time.perf_counter()
        out, rep = style_transfer(content, ref, vgg=vgg, iterations=its,
                                  region_weights=args.region_weights, segments=args.segments)
        sec = time.perf_counter() - t0
        n = content.shape[-1] * content.shape[-2]
        before, after = rep.color_distance_before, rep.color_distance_after
        lines.append(f"| {a} / {b} | {','.join(rep.region_names)} | {rep.ssim_luminance:.3f} | "
                     f"{before:.1f} | {after:.1f} | {before / after:.2f} | "
                     f"{rep.matting_energy['content'] / n:.2e} | "
                     f"{rep.matting_energy['result_per_pixel']:.2e} | {sec:.0f} |")
        print(lines[-1], flush=True)
        sections.append({"title": f"{a} / {b} ({', '.join(rep.region_names)})",
                         "images": [(tag, to_uint(img, 8)) for tag, img in
                                    (("content", content), ("reference", ref),
                                     ("result", out))]})
        if args.save:
            for tag, img in (("content", content), ("reference", ref), ("result", out)):
                write_image(args.save / f"{a}_{b}_{tag}.png", img, overwrite=True)
    if args.html:
        from isplab.report import gallery_html

        sections.insert(0, {"title": "Table", "text": "\n".join(lines)})
        print("report:", gallery_html(args.html, "MPSE phase 2: semantic style transfer",
                                      sections, intro=intro))


if __name__ == "__main__":
    main()
