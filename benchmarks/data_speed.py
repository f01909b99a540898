"""Data-loading speed: 256x256 training pairs per second through ``train_loader``, the loader
the trainer runs (``isplab.data.patches.train_loader``).

Datasets (photos: wikipedia_photos49 + cbsd68 from ../shared/data, the training corpus):

- ``synthetic``: SyntheticRawDataset, noise on (unprocess + degrade on the fly);
- ``demosaic``: DemosaicDataset, linear, random noise;
- ``paired (isplab)``: PairedRawRGBDataset over pairs written by ``synthesize_dataset`` to a
  temporary folder (whole 256x256 pairs, packed 16-bit PNG raw + 16-bit PNG target).

For each, with 0, 1 and 2 workers (batch 16): ``cold`` = the first ``patches`` from a fresh
loader (worker start-up and the first decode of photos included), ``warm`` = the next
``patches`` of the same stream (workers running, decoded photos in their LRU cache), and
one row with ``cache=True`` (photos decoded up front in the parent; that time is printed
apart). The goal is >= 200 patches/s on 2 cores for the synthetic pairs.

    python benchmarks/data_speed.py [--patches 320] [--batch 16] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from isplab.data.datasets import list_images
from isplab.data.demosaic import DemosaicDataset
from isplab.data.paired import PairedRawRGBDataset
from isplab.data.patches import train_loader
from isplab.data.synthetic import SyntheticRawDataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FOLDERS = [DATA / "wikipedia_photos49", DATA / "cbsd68"]
GOAL = 200.0


def run_batches(batches, n_batches: int) -> float:
    """Patches per second of the next ``n_batches`` batches of a loader's stream."""
    t0 = time.perf_counter()
    count = 0
    for _ in range(n_batches):
        count += next(batches)["target"].shape[0]
    return count / (time.perf_counter() - t0)


def measure(make_dataset, workers: int, batch: int, patches: int) -> tuple[float, float]:
    ds = make_dataset()
    batches = iter(train_loader(ds, batch, workers=workers, seed=0))
    n = patches // batch
    cold = run_batches(batches, n)
    warm = run_batches(batches, n)
    del batches
    return cold, warm


def cpu_ms_per_item(dataset, n: int = 48) -> float:
    """CPU time (this process, its threads) per item read directly, cache warmed first:
    robust to other users of the machine, unlike wall-clock rates."""
    for i in range(n):
        dataset[i]
    t0 = time.process_time()
    for i in range(n):
        dataset[i]
    return (time.process_time() - t0) / n * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patches", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process (workers always use 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = [str(f) for f in FOLDERS if not f.is_dir()]
    if missing:
        print(f"data not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    p = args.patch
    photos = sum(len(list_images(f)) for f in FOLDERS)
    per_image = max(1, -(-args.patches // photos) + 1)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"(shared with other users), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads in the main process; {photos} photos, "
          f"{args.patches} patches of {p}x{p}, batch {args.batch}")
    rows: list[tuple[str, int, float, float]] = []
    cpu: dict[str, float] = {}

    def synthetic(cache=False):
        return SyntheticRawDataset(FOLDERS, patch=p, noise=True, patches_per_image=per_image,
                                   split="all", cache=cache)

    def demosaic():
        return DemosaicDataset(FOLDERS, patch=p, space="linear", noise="random",
                               patches_per_image=per_image)

    t0 = time.perf_counter()
    preloaded = synthetic(cache=True)
    preload_s = time.perf_counter() - t0
    cpu["synthetic (noise on)"] = cpu_ms_per_item(preloaded)
    cpu["demosaic (linear, noise)"] = cpu_ms_per_item(demosaic())
    for w in args.workers:
        rows.append(("synthetic (noise on)", w, *measure(synthetic, w, args.batch,
                                                          args.patches)))
    w = max(args.workers)
    rows.append((f"synthetic, cache=True (preload {preload_s:.1f} s)", w,
                 *measure(lambda: preloaded, w, args.batch, args.patches)))
    for w in args.workers:
        rows.append(("demosaic (linear, noise)", w, *measure(demosaic, w, args.batch,
                                                              args.patches)))
    with tempfile.TemporaryDirectory() as tmp:
        from isplab.synth.writer import synthesize_dataset

        sources = list_images(FOLDERS[1])
        t0 = time.perf_counter()
        synthesize_dataset(sources, Path(tmp), patch=p, per_image=1, bit_depth=12, seed=0)
        write_s = time.perf_counter() - t0
        k = -(-args.patches // len(sources))

        def paired():  # Bayer-preserving augmentation needs one packed pixel of margin
            return PairedRawRGBDataset(tmp, patch=p - 2, augment=True, patches_per_image=k)

        name = f"paired isplab layout ({len(sources)} pairs, {p - 2}² crops, augment)"
        cpu[name] = cpu_ms_per_item(paired())
        for w in args.workers:
            rows.append((name, w, *measure(paired, w, args.batch, args.patches)))

    print(f"\n| dataset | workers | cold patches/s | warm patches/s | warm / goal {GOAL:.0f} |")
    print("|---|---|---|---|---|")
    for name, w, cold, warm in rows:
        ratio = f"{warm / GOAL:.2f}" if name.startswith("synthetic") else "-"
        print(f"| {name} | {w} | {cold:.0f} | {warm:.0f} | {ratio} |")
    print(f"\n(writing the paired set took {write_s:.1f} s; cold = first epoch from a fresh "
          "loader incl. worker start and first decodes; warm = second epoch)")
    print("\n| dataset | CPU ms / patch (1 thread, decoded) | patches/s on 2 free cores |")
    print("|---|---|---|")
    for name, ms in cpu.items():
        print(f"| {name} | {ms:.1f} | {2000 / ms:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
