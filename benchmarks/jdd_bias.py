"""Does the learned stage keep the mean of flat colours? Bias of jdd_net per channel.

    .venv/bin/python benchmarks/jdd_bias.py [--weights W]

Flat 128 x 128 patches of a few white-balanced colours, from deep shadow to mid grey,
re-mosaiced (RGGB), with Brooks et al. shot/read noise at four levels (none to the high ISO
of benchmarks/hybrid_tables.py), through the learned stage (``learned_demosaic``, its noise
map from the true profile). Prints the mean output / true value per channel, away from the
border, for the learned stage and, on the same noisy mosaics, the classical default (Menon
2007, which denoises nothing: its mean is the clipped mosaic's, brighter than the truth
where the noise reaches below black). A denoiser trained with an L1 loss estimates a
median, not a mean: where the noise is large against the signal (deep shadows at high ISO)
its output can be darker than the truth.

Then the 24 ColorChecker colours as flat patches in a real camera's space (the Canon 550D
DNG of ../shared/data: its colour matrix; white balanced; the white patch at ``--white``),
at the same noise levels: the mean CIEDE2000 (and the worst patch) between each patch's
mean after the camera's matrix and its truth, for the learned stage and for the classical
default (Menon 2007) on the same noisy mosaics. This is the chart of
``benchmarks/real_raws.py`` without the lens, the light and the chart's own texture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLOURS = {"shadow grey 0.02": (0.02, 0.02, 0.02), "dark warm": (0.08, 0.05, 0.02),
           "dark blue": (0.05, 0.10, 0.20), "deep green": (0.01, 0.03, 0.005),
           "red": (0.20, 0.05, 0.05), "mid grey 0.5": (0.5, 0.5, 0.5)}
LEVELS = {"none": (0.0, 0.0), "low": (0.0008, 2.4e-6), "mid": (0.004, 8e-5),
          "high": (0.012, 6e-4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="jdd_net weights (default: shipped)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--white", type=float, default=0.5,
                    help="the ColorChecker white patch's raw level (default 0.5)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from isplab.infer.hybrid import learned_demosaic
    from isplab.raw.cfa import mosaic
    from isplab.synth.noise import add_noise

    stage = learned_demosaic(args.weights, device="cpu")
    g = torch.Generator().manual_seed(args.seed)
    print("| colour (R, G, B) | method | " + " | ".join(f"{k} ISO R / G / B" for k in LEVELS)
          + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for name, colour in COLOURS.items():
        c = torch.tensor(colour)
        cells: dict[str, list[str]] = {"learned": [], "classic menon2007": []}
        for shot, read in LEVELS.values():
            m = mosaic(c.view(1, 3, 1, 1).expand(1, 3, 128, 128).contiguous(), "RGGB")
            if shot:
                m = add_noise(m, shot, read, generator=g).clamp(0, 1)  # as a raw is
            for key, out in both(stage, m, shot, read):
                ratio = (out[0, :, 16:-16, 16:-16].mean((1, 2)) / c).numpy()
                cells[key].append(" / ".join(f"{r:.3f}" for r in np.asarray(ratio)))
        for i, (key, row) in enumerate(cells.items()):
            label = f"{name} {colour}" if i == 0 else ""
            print(f"| {label} | {key} | " + " | ".join(row) + " |", flush=True)
    chart_table(stage, args.white, g)


def both(stage, m: torch.Tensor, shot: float, read: float):
    """``(name, RGB)`` of the learned stage (told the true profile) and of the classical
    default, Menon 2007, on the same mosaic."""
    from isplab.classic.demosaicking import demosaic
    from isplab.classic.noise_profile import NoiseProfile

    yield "learned", stage(m, "RGGB", None, NoiseProfile(shot, read, source="user"))
    yield "classic menon2007", demosaic(m, "RGGB", "menon2007")


def chart_table(stage, white: float, g: torch.Generator, side: int = 48,
                margin: int = 12) -> None:
    """Flat ColorChecker patches in the Canon 550D's camera space: ΔE2000 to the truth."""
    from real_frames import FRAMES

    from isplab.classic.calibration import (
        delta_e2000,
        flat_chart,
        flat_chart_means,
        linear_srgb_to_lab,
        reference_chart,
    )
    from isplab.raw import read
    from isplab.raw.cfa import mosaic
    from isplab.synth.noise import add_noise

    path = FRAMES["canon550d_dng"].path
    if not path.is_file():
        print(f"{path} missing: no ColorChecker table")
        return
    to_srgb = np.asarray(read(path).camera_to_srgb, dtype=np.float64)
    truth = reference_chart()[1] @ np.linalg.inv(to_srgb).T  # white-balanced camera RGB
    truth = np.clip(truth * white / truth.max(), 0.0, 1.0)
    clean = mosaic(torch.from_numpy(flat_chart(truth, side))[None], "RGGB")

    def delta_e(rgb: torch.Tensor) -> np.ndarray:
        means = flat_chart_means(rgb[0].numpy(), side, margin)
        lab = linear_srgb_to_lab(np.clip(means @ to_srgb.T, 0.0, None))
        return delta_e2000(lab, linear_srgb_to_lab(np.clip(truth @ to_srgb.T, 0.0, None)))

    print(f"\nColorChecker flat patches, Canon 550D camera space, white at {white}: "
          "ΔE2000 mean / worst patch")
    print("| method | " + " | ".join(f"{k} ISO" for k in LEVELS) + " |")
    print("|---|" + "---|" * len(LEVELS))
    rows = {"learned": [], "classic menon2007": []}
    for shot, read_var in LEVELS.values():
        m = clean if not shot else add_noise(clean, shot, read_var, generator=g).clamp(0, 1)
        for key, rgb in both(stage, m, shot, read_var):
            de = delta_e(rgb)
            rows[key].append(f"{de.mean():.2f} / {de.max():.2f}")
    for key, cells in rows.items():
        print(f"| {key} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
