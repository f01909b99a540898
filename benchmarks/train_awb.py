"""Train the learned auto white balance (FFCC-style, ``isplab/classic/ffcc.py``): one command.

Physically based casts (``isplab/synth/spectral.py``: the photo's linear sRGB upsampled to
reflectance, lit by a sampled illuminant spectrum -- daylight, black body, fluorescent, LED,
mixtures -- and seen by sampled camera sensitivities; exposure, clipping, noise) of the training
photos whose own white balance is credible (wikipedia_photos49, div2k_crops256: 149 photos),
a tenth of the photos held out by file. One model is fitted on the training casts per pair of
total-variation and L2 weights; the one best on the held-out casts is written to ``--out``
with a JSON record beside it (command, time, data, the validation table). No evaluation image
is read.

    nice python benchmarks/train_awb.py [--casts 16] [--kind spectral|kries]
        [--out isplab/weights/ffcc_awb.safetensors]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
GRID = [(1e-3, 1e-5), (1e-2, 1e-4), (1e-1, 1e-3)]


def _samples(name, paths, casts, seed, cfg, cache: Path, estimators, kind):
    from isplab.train.ffcc import Samples, make_samples

    f = cache / (f"{name}_{kind}_c{casts}_s{seed}_n{len(paths)}_b{cfg.bins}"
                 f"_ch{len(cfg.channels)}.npz")
    if f.is_file():
        return Samples.load(f)
    t0 = time.perf_counter()
    s = make_samples(paths, casts, seed, cfg, estimators=estimators, kind=kind)
    print(f"{name}: {len(s.truth)} casts in {time.perf_counter() - t0:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    s.save(f)
    return s


def _baseline_rows(val) -> dict:
    from isplab.classic.illuminant import angular_error, error_summary

    return {k: error_summary([angular_error(e, t) for e, t in zip(v, val.truth, strict=True)])
            for k, v in val.baselines.items()}


def main(argv=None) -> None:
    import torch

    from isplab.classic import awb, ffcc
    from isplab.classic.illuminant import error_summary
    from isplab.train.ffcc import errors, is_validation, select, training_photos

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "isplab" / "weights" /
                    "ffcc_awb.safetensors")
    ap.add_argument("--casts", type=int, default=16, help="renders per training photo")
    ap.add_argument("--kind", choices=("spectral", "kries"), default="spectral",
                    help="casts: spectral (reflectance x light x camera) or kries (camera "
                    "matrix, cast in camera RGB)")
    ap.add_argument("--only", choices=("train", "val"), default=None,
                    help="only make (and cache) one split's casts, e.g. in two processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=150, help="L-BFGS iterations per fit")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "isplab" / "awb",
                    help="where the featurised casts are kept between runs")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    cfg = ffcc.FFCCConfig()
    paths = training_photos(a.data)
    train_p = [p for p in paths if not is_validation(p)]
    val_p = [p for p in paths if is_validation(p)]
    classical = {n: awb.ESTIMATORS.get(n) for n in awb.names()
                 if awb.ESTIMATORS.entry(n).meta.get("kind") == "classical"}
    if a.only != "val":
        train = _samples("train", train_p, a.casts, a.seed, cfg, a.cache, None, a.kind)
    if a.only != "train":
        val = _samples("val", val_p, a.casts, a.seed + 1, cfg, a.cache, classical, a.kind)
    if a.only:
        return
    model, (tv, l2), grid = select(train, val, cfg, GRID, a.iterations)
    for r in grid:
        print(f"tv {r['tv']:g} l2 {r['l2']:g}: val mean {r['mean']:.3f} median "
              f"{r['median']:.3f} ({r['seconds']:.0f} s)", flush=True)
    val_summary = error_summary(errors(model, val))
    minutes = (time.perf_counter() - t0) / 60
    record = {
        "name": "ffcc_awb", "config": {**cfg.__dict__, "channels": list(cfg.channels)},
        "regularisation": {"tv": tv, "l2": l2, "chosen_on": "held-out synthetic casts"},
        "command": "nice python benchmarks/train_awb.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv),
        "trained": f"{date.today().isoformat()}, {minutes:.1f} min (casts + fits), "
                   f"{a.threads} shared CPU threads ({platform.machine()}, torch "
                   f"{torch.__version__}), no GPU",
        "data": f"{len(train_p)} training photos (wikipedia_photos49, div2k_crops256) x "
                f"{a.casts} synthetic casts ({a.kind}: " + (
                    "reflectance upsampling x illuminant spectrum (daylight 4000-12000 K, "
                    "black body 2500-6500 K, FL/LED, mixtures) x sampled camera sensitivities"
                    if a.kind == "spectral" else "sampled camera matrix, daylight/Planckian "
                    "illuminant 2500-10000 K") + ", exposure, clipping, noise); "
                f"{len(val_p)} photos held out by file for validation; no evaluation image",
        "validation": {"ffcc": val_summary, **_baseline_rows(val)},
        "grid": grid,
        "card": "docs/models/ffcc_awb.md",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    ffcc.save(a.out, model, {k: record[k] for k in ("name", "command", "trained")})
    a.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["validation"], indent=1))
    print(f"wrote {a.out} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
