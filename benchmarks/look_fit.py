"""Look fitting (``isplab calibrate --pairs``): synthetic recovery and real City100 pairs.

1. Synthetic: training photos (wikipedia_photos49, cbsd68, bsds500_train_test, div2k_crops256)
   rendered with known looks of :mod:`isplab.synth.look` (a matrix near identity + offsets +
   exposure, then an S-curve or a filmic curve per channel: outside the fitted family, and
   seeds never used while developing the fit). Each reference is misaligned (up to 1 px
   shift, ±0.2° rotation), clipped and 8-bit. The look is fitted on ``--fit`` pairs and
   scored on ``--test`` other photos against the true rendering (aligned): PSNR and mean
   CIEDE2000, before (the photo itself) and after (the fitted look).
2. City100 iPhone X (``NNNL`` short focal -> ``NNNH`` long focal, both distributed on one
   840x600 grid, registered by the authors to ~0.1-0.4 px): an RGB-to-RGB look, 5-fold
   cross-validation (every pair held out once, fitted on the other 8); PSNR and CIEDE2000
   before / after, and PSNR after a Gaussian blur (sigma 2 px) of both images, which leaves
   the colour and tone difference and drops most of the detail (blur) difference.
3. City100 with a known look: the same folds, the reference is a known synthetic look of H
   (real blur, real residual misalignment, real content). "ceiling" is the true look applied
   to L: what a perfect fit reaches (the L/H detail difference remains).

    python benchmarks/look_fit.py [--looks 6] [--fit 12] [--test 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from isplab.classic.look import apply_look, fit_look, fit_look_samples, look_samples
from isplab.commands._look import score
from isplab.synth.look import look_pair, random_look

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("wikipedia_photos49", "cbsd68", "bsds500_train_test", "div2k_crops256")


def load(path: Path) -> np.ndarray:
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., 2::-1]
    return np.ascontiguousarray(a, dtype=np.float32) / (255.0 if a.dtype == np.uint8 else 65535.0)


def photos(n: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """``n`` photos spread over the four training sets, drawn at random."""
    files = {s: sorted(p for p in (DATA / s).iterdir()
                       if p.suffix.lower() in (".png", ".jpg", ".jpeg")) for s in SETS}
    out = []
    for i in range(n):
        s = SETS[i % len(SETS)]
        f = files[s].pop(int(rng.integers(len(files[s]))))
        out.append((f"{s}/{f.name}", load(f)))
    return out


def synthetic(n_looks: int, n_fit: int, n_test: int) -> None:
    rows = []
    print("| look | curve | fit s | PSNR before | PSNR after (min) | ΔE00 before | ΔE00 after |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for k in range(n_looks):
        seed = 100 + k
        rng = np.random.default_rng(seed)
        pics = photos(n_fit + n_test, rng)
        look = random_look(seed)
        pairs = [look_pair(img, look, seed=i, max_shift=1.0) for i, (_, img) in
                 enumerate(pics[:n_fit])]
        t = time.perf_counter()
        profile = fit_look([d for d, _ in pairs], [r for _, r in pairs], seed=seed)
        dt = time.perf_counter() - t
        before, after = [], []
        for _, img in pics[n_fit:]:
            truth = look(img)
            before.append(score(img, truth))
            after.append(score(apply_look(img, profile), truth))
        b, a = np.array(before), np.array(after)
        rows.append((b, a))
        print(f"| {seed} | {look.curve} | {dt:.1f} | {b[:, 0].mean():.2f} | "
              f"{a[:, 0].mean():.2f} ({a[:, 0].min():.2f}) | {b[:, 1].mean():.2f} | "
              f"{a[:, 1].mean():.3f} |", flush=True)
    if not rows:
        return
    b = np.concatenate([r[0] for r in rows])
    a = np.concatenate([r[1] for r in rows])
    print(f"| **all** | | | **{b[:, 0].mean():.2f}** | **{a[:, 0].mean():.2f} "
          f"({a[:, 0].min():.2f})** | **{b[:, 1].mean():.2f}** | **{a[:, 1].mean():.3f}** |")


def _blur_psnr(x: np.ndarray, y: np.ndarray) -> float:
    bx, by = (cv2.GaussianBlur(np.clip(v, 0, 1), (0, 0), 2.0) for v in (x, y))
    return float(10 * np.log10(1.0 / np.mean((bx - by) ** 2)))


def _cross_validate(pairs: dict, folds: int, seed: int):
    """(held-out id, its L, its reference, the look fitted without it) for every pair."""
    ids = sorted(pairs)
    order = list(np.random.default_rng(seed).permutation(ids))
    for f in range(folds):
        held = order[f::folds]
        fit = [i for i in ids if i not in held]
        xs, rs, counts = [], [], []
        for j, i in enumerate(fit):
            x, r, c = look_samples([pairs[i][0]], [pairs[i][1]], 40000 // len(fit), seed + j, [i])
            xs.append(x)
            rs.append(r)
            counts += c
        profile = fit_look_samples(np.concatenate(xs), np.concatenate(rs), counts, names=fit)
        for i in held:
            yield i, pairs[i][0], pairs[i][1], profile


def city100(folds: int = 5, seed: int = 0) -> None:
    root = DATA / "city100_iphonex_lr_hr_pairs"
    ids = [f"{i:03d}" for i in range(1, 11)]
    pairs = {i: (load(root / f"{i}L.PNG"), load(root / f"{i}H.PNG")) for i in ids}
    print("| pair | PSNR before | PSNR after | ΔE00 before | ΔE00 after | "
          "blurred PSNR before | after |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    table = []
    for i, low, high, profile in _cross_validate(pairs, folds, seed):
        out = apply_look(low, profile)
        table.append((i, (*score(low, high), *score(out, high), _blur_psnr(low, high),
                          _blur_psnr(out, high))))
    for i, (pb, db, pa, da, bb, ba) in sorted(table):
        print(f"| {i} | {pb:.2f} | {pa:.2f} | {db:.2f} | {da:.2f} | {bb:.2f} | {ba:.2f} |")
    m = np.mean([r for _, r in table], axis=0)
    print(f"| **mean** | **{m[0]:.2f}** | **{m[2]:.2f}** | **{m[1]:.2f}** | **{m[3]:.2f}** | "
          f"**{m[4]:.2f}** | **{m[5]:.2f}** |")
    print("\n## City100 with a known look on H (real blur and misalignment): L -> look(H)\n")
    print("| look | curve | PSNR before | PSNR after | ceiling | ΔE00 before | ΔE00 after | "
          "ceiling |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for seed_look in (200, 201, 202):
        look = random_look(seed_look)
        styled = {i: (low, look(high)) for i, (low, high) in pairs.items()}
        rows = [(*score(low, ref), *score(apply_look(low, prof), ref), *score(look(low), ref))
                for _, low, ref, prof in _cross_validate(styled, folds, seed)]
        m = np.mean(rows, axis=0)
        print(f"| {seed_look} | {look.curve} | {m[0]:.2f} | {m[2]:.2f} | {m[4]:.2f} | "
              f"{m[1]:.2f} | {m[3]:.2f} | {m[5]:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--looks", type=int, default=6)
    ap.add_argument("--fit", type=int, default=12, help="fit pairs per look")
    ap.add_argument("--test", type=int, default=8, help="unseen photos per look")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    t = time.perf_counter()
    print("## synthetic looks (unseen photos, against the true rendering)\n")
    synthetic(args.looks, args.fit, args.test)
    print("\n## City100 iPhone X, L -> H, 5-fold cross-validation (held-out pairs)\n")
    city100()
    print(f"\n{time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
