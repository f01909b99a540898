"""Every zoo ISP trained under one equal wall-clock budget, then `synthetic-isp` on Kodak24.

Each raw -> sRGB model of the zoo trains with the same objective, data and optimiser (the
default ISP's recipe, configs/default_isp_synth.yaml: L1 + 0.2 (1 - SSIM), Adam 2e-4, 128^2
patches of synthetic raw from wikipedia_photos49 + cbsd68, batch 8; constant learning rate,
since a cosine horizon means nothing under a time budget) for ``--seconds`` of wall clock
(``train.max_seconds``), so the table compares what each architecture reaches for the same
CPU time, not what the paper's schedule reaches. The evaluation is `isplab evaluate -p
synthetic-isp` on Kodak24 (never seen in training), noise-free and with sampled sensor noise,
beside the classical ISP (which is given the true white balance and colour matrix) and the
shipped default learned ISP (same recipe, 1500 steps).

    python benchmarks/zoo_synth.py [--seconds 300] [--limit 8] [--models a,b] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import torch

from isplab.evaluate import evaluate
from isplab.models import list_models, model_info
from isplab.train import Trainer, load_recipe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
METRICS = ["psnr", "ssim", "deltae2000"]


def zoo_isps() -> list[str]:
    return [n for n in list_models() if model_info(n)["public"]
            and model_info(n)["input"] == "packed_raw" and model_info(n)["output"] == "srgb"]


def step_seconds(run: Path) -> float:
    """Median seconds per logged step (data wait included, start-up excluded)."""
    with (run / "train_log.csv").open() as f:
        values = [float(r["seconds"]) for r in csv.DictReader(f)]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="training budget per model")
    ap.add_argument("--limit", type=int, default=8, help="Kodak24 images evaluated")
    ap.add_argument("--models", default="", help="comma-separated subset of the zoo ISPs")
    ap.add_argument("--out", default="runs/zoo_synth", help="run directories (kept)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = zoo_isps()
    if args.models:
        names = [n for n in names if n in args.models.split(",")]
    out = Path(args.out)
    trained = {}
    for name in names:
        run = out / name
        summary_file = run / "summary.json"
        if summary_file.exists():  # a finished run of an earlier invocation
            trained[name] = json.loads(summary_file.read_text())
            print(f"kept: {name} ({run})", flush=True)
            continue
        r = load_recipe(ROOT / "configs" / "default_isp_synth.yaml", [
            f"model.name={name}", "train.steps=1000000", f"train.max_seconds={args.seconds}",
            "train.ckpt_every=1000000", "train.keep_last=1", "train.tensorboard=false",
            "train.log_every=1", "scheduler={name: none}", "data.val=null",
            f"data.train.args.folders=[{DATA / 'wikipedia_photos49'},{DATA / 'cbsd68'}]"])
        t0 = time.perf_counter()
        trained[name] = Trainer(r, run, progress=False).run()
        print(f"trained: {name}, {trained[name]['steps']} steps in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    methods = ["classic", "classic:malvar2004"]
    methods += [f"{n}={out / n / 'model.safetensors'}" for n in trained]
    default = ROOT / "isplab" / "weights" / "kpn_isp.safetensors"
    rows: dict[float, dict[str, dict]] = {}
    for noise in (0.0, 1.0):
        res = evaluate(methods, "synthetic-isp", DATA / "kodak24", METRICS, noise=noise,
                       limit=args.limit)
        rows[noise] = dict(res["methods"])
        if default.is_file():  # the same images (fixed seed); its label would clash
            res = evaluate([f"kpn_isp={default}"], "synthetic-isp", DATA / "kodak24", METRICS,
                           noise=noise, limit=args.limit)
            rows[noise]["kpn_isp (shipped default: same recipe, 1500 steps, cosine)"] = \
                res["methods"]["kpn_isp"]
    (out / "results.json").write_text(json.dumps(
        {"seconds": args.seconds, "limit": args.limit, "trained": trained,
         "results": {str(k): v for k, v in rows.items()}}, indent=2, default=str) + "\n")

    print(f"\n# synthetic-isp on {args.limit} Kodak24 images (8-px border), each zoo ISP "
          f"trained {args.seconds:.0f} s wall clock ({args.threads} threads), one recipe")
    head = ["method", "params", "steps", "s/step (median)", "PSNR dB", "SSIM", "ΔE2000",
            "PSNR dB noisy", "SSIM noisy", "ΔE2000 noisy", "MP/s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, m0 in rows[0.0].items():
        zoo = label.split(" ")[0]
        s = trained.get(label)
        params = f"{model_info(zoo)['parameters']:,}" if zoo in list_models() else "-"
        steps = str(s["steps"]) if s else ("1500" if zoo != label else "-")
        per = f"{step_seconds(out / label):.2f}" if s else "-"
        cells = []
        for m in (m0, rows[1.0][label]):
            cells += [f"{m['psnr']['mean']:.2f}", f"{m['ssim']['mean']:.4f}",
                      f"{m['deltae2000']['mean']:.2f}"]
        mps = m0.get("mp_per_s")
        print(f"| {label} | {params} | {steps} | {per} | " + " | ".join(cells)
              + (f" | {mps:.2f} |" if mps is not None else " | - |"))


if __name__ == "__main__":
    main()
