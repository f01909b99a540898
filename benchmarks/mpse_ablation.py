"""MPSE phase-1 ablation: DPED variants and DPED+ trained under one equal budget.

Variants (seed MPSE's table): DPED with L1+L2 + VGG content (baseline), without the VGG
content loss, with MSE instead of L1+L2, with LeakyReLU instead of ReLU, with
histogram-equalised targets ("Contrast (HE)"), and DPED+ (depthwise-separable). Each trains
``--steps`` steps of configs/mpse_phase1.yaml on degraded clean photos (wikipedia_photos49 +
cbsd68) and is evaluated at half and full budget on the real pairs (SIDD noisy -> clean,
City100 short -> long focal) with `isplab evaluate -p rgb-pairs`; the table adds training
iterations per hour and the inference speed of DPED+ relative to DPED at 512^2.

The VGG-19 of the content loss is a random one unless --vgg-weights gives torchvision's
vgg19-dcbb9e9d.pth (the output says which).

    python benchmarks/mpse_ablation.py [--steps 200] [--patch 64] [--batch 8] [--vgg-weights P]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from isplab.evaluate import evaluate
from isplab.models import create_model
from isplab.train import Trainer, load_recipe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VARIANTS = {
    "DPED (L1+L2, VGG, ReLU)": ("mpse_phase1.yaml", []),
    "DPED, no VGG content": ("mpse_phase1.yaml",
                             ["losses={l1: 1.0, mse: 1.0, color_loss: 1.0, tv_loss: 0.1}"]),
    "DPED, MSE instead of L1+L2": (
        "mpse_phase1.yaml",
        ["losses={mse: 2.0, perceptual: 0.1, color_loss: 1.0, tv_loss: 0.1}"]),
    "DPED, LeakyReLU": ("mpse_phase1.yaml", ["model.config.activation=leaky_relu"]),
    "DPED, Contrast (HE) targets": ("mpse_phase1.yaml", ["data.train.args.target_he=true"]),
    "DPED+ (L1+L2, VGG, ReLU)": ("mpse_phase1_plus.yaml", []),
}


def speed(name: str, side: int = 512, repeat: int = 3) -> float:
    model = create_model(name).eval()
    x = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        model(x)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vgg-weights", default=None)
    ap.add_argument("--limit", type=int, default=None, help="evaluation images per set")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    half = args.steps // 2
    vgg = (f"loss_options.perceptual.weights={args.vgg_weights}" if args.vgg_weights
           else "loss_options.perceptual.random_init=true")
    sets = {"SIDD": DATA / "sidd_srgb_pairs", "City100": DATA / "city100_iphonex_lr_hr_pairs"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, (recipe, extra) in VARIANTS.items():
            r = load_recipe(ROOT / "configs" / recipe, [
                f"train.steps={args.steps}", f"train.ckpt_every={half}", "train.keep_last=2",
                "train.tensorboard=false", "data.val=null", f"data.train.batch_size={args.batch}",
                f"data.train.args.patch={args.patch}", "data.train.workers=0",
                f"data.train.args.folders=[{DATA / 'wikipedia_photos49'},{DATA / 'cbsd68'}]",
                vgg, *extra])
            run = Path(tmp) / f"run{len(rows)}"
            summary = Trainer(r, run, progress=False).run()
            name = r["model"]["name"]
            scores = {}
            for step in (half, args.steps):
                w = run / "checkpoints" / f"step_{step:08d}" / "model.safetensors"
                for set_name, folder in sets.items():
                    res = evaluate([f"{name}={w}"], "rgb-pairs", folder, ["psnr", "ssim"],
                                   limit=args.limit)
                    m = res["methods"][name]
                    scores[(step, set_name)] = (m["psnr"]["mean"], m["ssim"]["mean"])
            rows.append((label, name, summary["steps"] / summary["seconds"] * 3600, scores))
            print(f"done: {label}", flush=True)
    identity = {s: evaluate(["identity"], "rgb-pairs", f, ["psnr", "ssim"], limit=args.limit)
                ["methods"]["identity"] for s, f in sets.items()}
    t_dped, t_plus = speed("dped_rgb"), speed("dped_plus_rgb")
    print(f"# MPSE phase-1 ablation: {args.steps} steps (evaluated at {half} and "
          f"{args.steps}), patch {args.patch}, batch {args.batch}, {args.threads} threads; "
          f"VGG: {'weights ' + args.vgg_weights if args.vgg_weights else 'RANDOM (no weights)'}")
    head = ["variant"] + [f"{s} PSNR/SSIM @{n}" for n in (half, args.steps) for s in sets] \
        + ["iter/hour"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, _, ips, scores in rows:
        cells = [f"{scores[(n, s)][0]:.2f} / {scores[(n, s)][1]:.3f}"
                 for n in (half, args.steps) for s in sets]
        print(f"| {label} | " + " | ".join(cells) + f" | {ips:.0f} |")
    cells = [f"{identity[s]['psnr']['mean']:.2f} / {identity[s]['ssim']['mean']:.3f}"
             for _ in (half, args.steps) for s in sets]
    print("| input (identity) | " + " | ".join(cells) + " | - |")
    base, plus = rows[0][2], rows[-1][2]
    print(f"\nDPED+ vs DPED: inference {t_dped / t_plus:.2f}x as fast at 512^2 "
          f"({t_dped:.2f} s vs {t_plus:.2f} s), training {plus / base:.2f}x the iterations "
          "per hour (seed: 2.7x and 1.45x)")


if __name__ == "__main__":
    main()
