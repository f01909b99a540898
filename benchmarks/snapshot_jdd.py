"""Ship a training run's best jdd_net weights as the hybrid ISP's learned stage.

    .venv/bin/python benchmarks/snapshot_jdd.py runs/jdd_synth2 --offset 10000 \
        --command "isplab train configs/jdd_synth.yaml --out runs/jdd_synth2 --set ..."

Copies ``RUN/checkpoints/best/model.safetensors`` (else the newest checkpoint) into
``isplab/weights/jdd_net.safetensors`` with its record (recipe, total steps, command, data,
validation PSNR, card), and appends the run's validation points to the learning curve
``docs/models/jdd_net_training.csv`` (steps shifted by ``--offset`` when the run was a warm
start from an earlier snapshot, so the curve counts every step the weights have seen).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isplab.models import load_model, save_weights  # noqa: E402
from isplab.train import checkpoint as ck  # noqa: E402

WEIGHTS = ROOT / "isplab" / "weights" / "jdd_net.safetensors"
CURVE = ROOT / "docs" / "models" / "jdd_net_training.csv"
DATA = ("617 training photos (wikipedia_photos49, cbsd68, bsds500_train_test, div2k_crops256; "
        "5 % held out by file for validation) made into jdd pairs on the fly")


def best_checkpoint(run: Path) -> tuple[Path, int]:
    best = run / "checkpoints" / "best"
    if (best / "model.safetensors").is_file():
        meta = json.loads((best / "meta.json").read_text())
        return best / "model.safetensors", int(meta["step"])
    steps = ck.list_checkpoints(run / "checkpoints")
    if not steps:
        raise SystemExit(f"{run}: no checkpoint to ship")
    step, folder = steps[-1]
    return Path(folder) / "model.safetensors", step


def curve_rows(run: Path, offset: int) -> list[tuple[int, float, float]]:
    with (run / "train_log.csv").open() as f:
        train = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}
    rows = []
    with (run / "val_log.csv").open() as f:
        vals = list(csv.DictReader(f))
    for r in vals:
        step = int(r["step"])
        near = min(train, key=lambda s: abs(s - step)) if train else None
        rows.append((step + offset, float(r["psnr"]), train.get(near, float("nan"))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--offset", type=int, default=0, help="steps the run's start had seen")
    ap.add_argument("--command", required=True, help="the command that trained the run")
    args = ap.parse_args()
    src, step = best_checkpoint(args.run)
    old = {}
    if CURVE.is_file():
        with CURVE.open() as f:
            old = {int(r["step"]): r for r in csv.DictReader(f)}
    new = curve_rows(args.run, args.offset)
    val = {s: p for s, p, _ in new}
    model = load_model(src)  # the configuration the checkpoint records (e.g. refine)
    total = step + args.offset
    save_weights(model, WEIGHTS, overwrite=True, extra={
        "recipe": "jdd_synth", "steps": total, "command": args.command,
        "trained": f"{date.today()}, {total} steps in all (this run: {step} after a warm start "
                   f"at {args.offset}), 2 shared CPU cores ({platform.machine()}, torch "
                   f"{torch.__version__}), no GPU",
        "data": DATA, "validation": {"psnr": val.get(total)},
        "card": "docs/models/jdd_net.md"})
    with CURVE.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "val_psnr_db", "train_loss_l1_gamma"])
        for s in sorted(old):
            if s <= args.offset:
                w.writerow([s, old[s]["val_psnr_db"], old[s]["train_loss_l1_gamma"]])
        for s, p, loss in new:
            w.writerow([s, f"{p:.3f}", f"{loss:.5f}"])
    print(f"shipped {src} (step {total}, val {val.get(total)}) -> {WEIGHTS}")


if __name__ == "__main__":
    main()
