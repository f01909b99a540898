"""The hybrid ISP's learned stage against its peers, every table of issue 16 in one command.

    .venv/bin/python benchmarks/hybrid_tables.py --out runs/hybrid_tables [--noisy-limit 8]

Settings (each one ``isplab evaluate`` run, all methods on the same images):

- ``demosaic`` on Kodak24 and on the demosaicnet hard patches, noise-free: the learned stage
  (``classic:learned``, the shipped ``jdd_net`` weights) vs Menon 2007, residual
  interpolation, LibRaw AHD / AAHD and demosaicnet;
- ``demosaic`` with shot + read noise at three levels (low, mid, high ISO): the learned stage
  (joint demosaic + denoise) vs every demosaic followed by BM3D (generalised Anscombe) or the
  bilateral filter, and BM3D on the mosaic followed by residual interpolation or demosaicnet
  (``bm3d+ri``, ``bm3d+demosaicnet``), given the true noise profile;
- ``synthetic-isp`` (Kodak24 unprocessed, both pipelines given the true white balance and
  colour matrix), noise-free and with Brooks et al. noise: hybrid vs classic Menon.

Each setting's full result is written to ``OUT/<setting>.json`` and skipped when it is there,
so the command resumes after an interruption; the markdown tables go to stdout and
``OUT/tables.md``. ``--update classic:learned`` re-runs only that method in every saved setting
(same images, seed and noise draws) and replaces its row, e.g. after new weights: the peers
(BM3D above all) are not run again. BM3D takes tens of seconds per Kodak image:
``--noisy-limit N`` runs the noisy settings on the first N images only (the table says so).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isplab.data.datasets import data_root  # noqa: E402
from isplab.evaluate import evaluate  # noqa: E402

CLEAN = ["classic:menon2007", "ri", "libraw:ahd", "libraw:aahd", "demosaicnet",
         "classic:learned"]
NOISY = ["classic:menon2007+bilateral", "classic:menon2007+bm3d", "ri+bm3d",
         "libraw:ahd+bm3d", "demosaicnet+bilateral", "demosaicnet+bm3d", "bm3d+ri",
         "bm3d+demosaicnet", "classic:learned"]
#: shot, read noise variances of a [0, 1] raw: low, mid and high ISO of a phone sensor
#: (Brooks et al.'s log-linear shot/read relation at roughly ISO 100, 800 and 3200)
LEVELS = {"low": "0.0008,0.0000024", "mid": "0.004,0.00008", "high": "0.012,0.0006"}


def settings(noisy_limit: int | None) -> dict[str, dict]:
    kodak = data_root() / "kodak24"
    hard = data_root() / "demosaicnet_hard_patches"
    out = {
        "demosaic_kodak24_clean": dict(methods=CLEAN, protocol="demosaic", data=kodak),
        "demosaic_hard_clean": dict(methods=CLEAN, protocol="demosaic", data=hard),
    }
    for level, noise in LEVELS.items():
        out[f"demosaic_kodak24_{level}"] = dict(methods=NOISY, protocol="demosaic", data=kodak,
                                                noise=noise, limit=noisy_limit)
    for name, noise in (("clean", 0), ("noisy", 1)):
        out[f"synthetic_isp_kodak24_{name}"] = dict(
            methods=["classic:menon2007", "classic:learned"], protocol="synthetic-isp",
            data=kodak, noise=noise)
    return out


def table(name: str, result: dict) -> str:
    n = len(result["images"])
    lines = [f"### {name} ({n} images, noise {result['noise']}, border {result['border']})",
             "", "| method | PSNR mean / median | SSIM mean / median | MP/s |",
             "|---|---|---|---|"]
    for method, m in result["methods"].items():
        speed = f"{m['mp_per_s']:.2f}" if m.get("mp_per_s") else "-"
        lines.append(f"| {method} | {m['psnr']['mean']:.2f} / {m['psnr']['median']:.2f} | "
                     f"{m['ssim']['mean']:.4f} / {m['ssim']['median']:.4f} | {speed} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "hybrid_tables")
    ap.add_argument("--noisy-limit", type=int, default=None,
                    help="first N images for the noisy demosaic settings (BM3D is slow)")
    ap.add_argument("--only", nargs="*", help="setting names to run (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--update", nargs="*", default=[],
                    help="methods to re-run in the saved settings, replacing their rows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = []
    for name, spec in settings(args.noisy_limit).items():
        if args.only and name not in args.only:
            continue
        path = args.out / f"{name}.json"
        if not path.is_file():
            t0 = time.perf_counter()
            result = evaluate(metrics=("psnr", "ssim"), seed=0, **spec)
            result.pop("previews", None)
            result["wall_seconds"] = time.perf_counter() - t0
            path.write_text(json.dumps(result, indent=1, default=str))
        result = json.loads(path.read_text())
        redo = [m for m in args.update if m in spec["methods"]]
        if redo:
            t0 = time.perf_counter()
            fresh = evaluate(metrics=("psnr", "ssim"), seed=0, **{**spec, "methods": redo})
            if fresh["images"] != result["images"]:
                raise SystemExit(f"{name}: the images differ from the saved run")
            result["methods"].update({m: fresh["methods"][m] for m in redo})
            result.setdefault("updated", []).append(
                {"methods": redo, "seconds": time.perf_counter() - t0,
                 "date": time.strftime("%Y-%m-%d %H:%M")})
            path.write_text(json.dumps(result, indent=1, default=str))
        parts.append(table(name, result))
        print(parts[-1], flush=True)
    (args.out / "tables.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
