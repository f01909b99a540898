"""Model zoo speed on CPU: parameters, GFLOPs per megapixel, throughput in MP/s.

Every registered image model runs on a 512 x 512 output (packed 256 x 256 input, or a
512 x 512 RGB input for RGB models) under ``torch.inference_mode``, in the default memory
format and in ``channels_last``; the faster is marked. Throughput is output megapixels per
second (median of ``--repeat`` runs after a warm-up). The table ends with each model's speed
relative to the classical ISP (bilinear demosaic + colour matrix + sRGB gamma) on the same
input, so the ratios hold across machines.

    python benchmarks/model_speed.py [--size 512] [--repeat 3] [--threads 2] [--models a,b]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from isplab.classic import srgb_gamma
from isplab.models import create_model, list_models, model_info
from isplab.models.common import packed_to_bilinear_rgb
from isplab.models.registry import gflops_per_megapixel

IN_CHANNELS = {"packed_raw": 4, "srgb": 3, "linear_rgb": 3}


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def classic(x: torch.Tensor) -> torch.Tensor:
    return srgb_gamma(packed_to_bilinear_rgb(x).clamp(0, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="output side in pixels")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="", help="comma-separated subset")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in list_models() if model_info(n)["output"] in ("srgb", "linear_rgb")]
    if args.models:
        names = [n for n in names if n in args.models.split(",")]

    packed = torch.rand(1, 4, args.size // 2, args.size // 2)
    mp = args.size * args.size / 1e6
    with torch.inference_mode():
        t_classic = median_time(lambda: classic(packed), args.repeat)
    print(f"# model speed, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.threads} threads, output {args.size}^2")
    print(f"classic bilinear ISP: {mp / t_classic:.1f} MP/s")
    header = ("model", "params", "GFLOPs/MP", "MP/s", "MP/s channels_last", "best",
              "x classic")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in names:
        info = model_info(name)
        scale = info["output_scale"]
        side = args.size // scale
        x = torch.rand(1, IN_CHANNELS[info["input"]], side, side)
        torch.manual_seed(0)
        model = create_model(name).eval()
        gflops = gflops_per_megapixel(model, (64, 64), x.shape[1], scale)
        with torch.inference_mode():
            t = median_time(lambda m=model, x=x: m(x), args.repeat)
            model_cl = model.to(memory_format=torch.channels_last)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            t_cl = median_time(lambda m=model_cl, x=x_cl: m(x), args.repeat)
        best = min(t, t_cl)
        print(f"| {name} | {info['parameters']:,} | {gflops:.1f} | {mp / t:.3f} | "
              f"{mp / t_cl:.3f} | {'channels_last' if t_cl < t else 'default'} | "
              f"{t_classic / best:.4f} |")


if __name__ == "__main__":
    main()
