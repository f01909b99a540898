"""Alignment accuracy: synthetic ground truth on real photos, and the real City100 pairs.

1. Synthetic: each photo (Wikipedia photos, City100 long-focal frames) is the "DSLR"; a
   phone raw is filmed from it with a known homography (scale 1.3-1.9, rotation, perspective)
   plus a smooth deformation of a few pixels, another tone curve and colour response, lens
   blur, Poisson-Gaussian noise, 10-bit (isplab.data.align_synth). The end-point error (raw
   pixels, over the valid region) is reported after each stage: global (SIFT + RANSAC),
   + ECC, + residual flow.
2. City100 iPhone X: ``NNNL`` (short focal length) and ``NNNH`` (long focal length) are
   already registered by the dataset authors (same 840x600 grid). The L frame is re-mosaiced
   into a phone raw (sRGB -> linear, RGGB) and aligned to the H frame; the PSNR between L
   and H is reported before (as distributed) and after our alignment (H warped onto L's
   raw grid), over the valid region.
3. Ablation (``--ablation``): the synthetic set again with one option of
   :func:`isplab.data.align.align_pair` changed at a time; overall EPE and valid fraction.

    python benchmarks/align_accuracy.py [--photos 12] [--city 10] [--threads 2] [--ablation]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from isplab.data.align import align_pair
from isplab.data.align_synth import end_point_error, synthetic_pair
from isplab.raw import RawImage, mosaic

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])


def epe(res, pair, mode: str) -> np.ndarray:
    h, w = res.raw_shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    if mode == "global":
        hg = res.homography_global
        den = hg[2, 0] * xs + hg[2, 1] * ys + hg[2, 2]
        est = ((hg[0, 0] * xs + hg[0, 1] * ys + hg[0, 2]) / den,
               (hg[1, 0] * xs + hg[1, 1] * ys + hg[1, 2]) / den)
    else:
        est = res.reference_coords(use_flow=mode == "flow")
    e = end_point_error(est, pair.mapping(xs, ys), pair.homography, xs, ys)
    valid = np.repeat(np.repeat(res.valid, 2, axis=0), 2, axis=1)
    return e[:valid.shape[0], :valid.shape[1]][valid]


def synthetic_pairs(names: list[tuple[str, Path]]):
    """(name, scale, rotation, pair) for each photo; the same draws every run."""
    rng = np.random.default_rng(0)
    for i, (name, path) in enumerate(names):
        scale = float(rng.uniform(1.3, 1.9))
        rot = float(rng.uniform(-5, 5))
        pair = synthetic_pair(load(path), scale=scale, rotation_deg=rot,
                              perspective=float(rng.uniform(-0.04, 0.04)), deform_px=2.0,
                              cfa=("RGGB", "BGGR", "GRBG", "GBRG")[i % 4], seed=i)
        yield name, scale, rot, pair


def synthetic_table(names: list[tuple[str, Path]]) -> None:
    print("\n### Synthetic ground truth: EPE in phone raw pixels (mean / 95th pct), valid "
          "region\n")
    print("| image | scale | rot | valid | global | + ECC | + flow | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    allv = {"global": [], "ecc": [], "flow": []}
    for name, scale, rot, pair in synthetic_pairs(names):
        t = time.perf_counter()
        try:
            res = align_pair(pair.raw, pair.reference, 256, cut_patches=False)
        except Exception as exc:  # report and go on
            print(f"| {name} | {scale:.2f} | {rot:+.1f} | failed: {exc} | | | | |")
            continue
        sec = time.perf_counter() - t
        cells = []
        for mode in ("global", "ecc", "flow"):
            e = epe(res, pair, mode)
            allv[mode].append(e)
            cells.append(f"{e.mean():.3f} / {np.percentile(e, 95):.3f}")
        print(f"| {name} | {scale:.2f} | {rot:+.1f} | {res.valid.mean():.0%} | "
              + " | ".join(cells) + f" | {sec:.1f} |")
    cells = []
    for mode in ("global", "ecc", "flow"):
        e = np.concatenate(allv[mode]) if allv[mode] else np.zeros(1)
        cells.append(f"**{e.mean():.3f} / {np.percentile(e, 95):.3f}**")
    print("| **all** | | | | " + " | ".join(cells) + " | |")


#: one change at a time from the defaults of align_pair (fields of AlignOptions)
ABLATIONS = [
    ("defaults", {}),
    ("DIS stops at half the preview (flow_finest_scale=1)", {"flow_finest_scale": 1}),
    ("no precision test in the confidence (max_flow_std=inf)", {"max_flow_std": float("inf")}),
    ("stricter precision test (max_flow_std=0.08)", {"max_flow_std": 0.08}),
    ("ECC at the full preview (ecc_size=None)", {"ecc_size": None}),
    ("no ECC (use_ecc=False)", {"use_ecc": False}),
    ("two flow passes (flow_passes=2)", {"flow_passes": 2}),
    ("flow smoothing sigma 16 raw px", {"flow_sigma": 16.0}),
    ("flow smoothing sigma 36 raw px", {"flow_sigma": 36.0}),
]


def ablation_table(names: list[tuple[str, Path]]) -> None:
    pairs = list(synthetic_pairs(names))
    print("\n### Ablation: EPE after flow (raw px, mean / 95th pct) over all pixels of every "
          "valid region, mean valid fraction, worst image\n")
    print("| variant | EPE | valid | worst image (mean / 95th) |")
    print("|---|---:|---:|---|")
    for label, options in ABLATIONS:
        errs, valid, worst = [], [], (None, -1.0, 0.0)
        for name, _, _, pair in pairs:
            try:
                res = align_pair(pair.raw, pair.reference, 256, cut_patches=False, **options)
            except Exception as exc:
                print(f"| {label} | {name} failed: {exc} | | |")
                break
            e = epe(res, pair, "flow")
            errs.append(e)
            valid.append(res.valid.mean())
            p95 = float(np.percentile(e, 95))
            if p95 > worst[1]:
                worst = (name, p95, float(e.mean()))
        else:
            e = np.concatenate(errs)
            print(f"| {label} | {e.mean():.3f} / {np.percentile(e, 95):.3f} | "
                  f"{np.mean(valid):.0%} | {worst[0]} ({worst[2]:.3f} / {worst[1]:.3f}) |")


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(((a - b) ** 2)[mask].mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def city_table(n: int) -> None:
    root = DATA / "city100_iphonex_lr_hr_pairs"
    print("\n### City100 iPhone X: PSNR (dB) between L (short focal) and H (long focal), "
          "valid region\n")
    print("| pair | as distributed | after alignment | valid | inliers |")
    print("|---|---:|---:|---:|---:|")
    before_all, after_all = [], []
    for i in range(1, n + 1):
        low = load(root / f"{i:03d}L.PNG").astype(np.float32) / 255
        high = load(root / f"{i:03d}H.PNG").astype(np.float32) / 255
        h, w = low.shape[0] // 2 * 2, low.shape[1] // 2 * 2
        low = low[:h, :w]
        lin = np.where(low <= 0.04045, low / 12.92, ((low + 0.055) / 1.055) ** 2.4)
        t = torch.from_numpy(np.ascontiguousarray(lin.transpose(2, 0, 1)))[None]
        raw = RawImage(mosaic(t, "RGGB")[0, 0].numpy(), cfa="RGGB", wb_gains=(1, 1, 1))
        try:
            res = align_pair(raw, high, 256, cut_patches=False)
        except Exception as exc:
            print(f"| {i:03d} | | failed: {exc} | | |")
            continue
        valid = np.repeat(np.repeat(res.valid, 2, axis=0), 2, axis=1)[:h, :w]
        warped = res.warp_reference(high)
        b = psnr(low, high[:h, :w], valid)
        a = psnr(low, warped, valid)
        before_all.append(b)
        after_all.append(a)
        print(f"| {i:03d} | {b:.2f} | {a:.2f} | {res.valid.mean():.0%} | "
              f"{res.stats['inliers']} |")
    if before_all:
        print(f"| **mean** | **{np.mean(before_all):.2f}** | **{np.mean(after_all):.2f}** | | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=12, help="Wikipedia photos (every 4th).")
    ap.add_argument("--city", type=int, default=10, help="City100 pairs.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ablation", action="store_true", help="Also the ablation table.")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    wiki = sorted((DATA / "wikipedia_photos49").glob("*.png"))[::4][:args.photos]
    city = sorted((DATA / "city100_iphonex_lr_hr_pairs").glob("*H.PNG"))[:3]
    names = [(f"wiki {p.stem}", p) for p in wiki] + [(f"city {p.stem}", p) for p in city]
    synthetic_table(names)
    if args.ablation:
        ablation_table(names)
    if args.city:
        city_table(args.city)


if __name__ == "__main__":
    main()
