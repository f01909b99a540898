"""Every real raw of ../shared/data through the classical ISP, the hybrid ISP and LibRaw AHD.

    .venv/bin/python benchmarks/real_raws.py [--out runs/real_raws] [--html report.html]

For each frame (Canon 550D DNG, Infinite-ISP 12-bit and openISP 10-bit headerless frames,
vivo X90 packed npy, Kodak DC50 KDC): ``isplab develop`` as a whole process with ``--isp
classic`` and ``--isp learned`` (the same white balance: the file's, else ``auto``; the
same matrix and tone), and LibRaw's AHD (rawpy ``postprocess``, camera white balance) where
LibRaw reads the file. 16-bit PNGs; wall time of each develop. On the ColorChecker frames
the chart is found again in each developed picture and its mean CIEDE2000 measured (the
exposure normalised on the neutral row, ``isplab.classic.chart.rendered_chart_error``).

The HTML page (``--html``) shows each frame's developments side by side, then the same
detailed region of each zoomed 2x (the window of most gradient energy in the classical
develop, a fixed place for every pipeline): casts, seams and demosaicking artefacts are
visible there. Check it renders with ``python benchmarks/check_report.py PAGE``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ISPLAB = [sys.executable, "-m", "isplab.cli"]

from real_frames import FRAMES  # noqa: E402


def develop(raw: Path, out: Path, flags: list[str]) -> tuple[Path, float]:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([*ISPLAB, "develop", str(raw), "-o", str(out), "--output-bps", "16",
                    "--overwrite", "-q", *flags], check=True)
    return next(out.glob("*.png")), time.perf_counter() - t0


def libraw_ahd(raw: Path, out: Path) -> tuple[Path, float]:
    import cv2
    import rawpy

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with rawpy.imread(str(raw)) as r:
        rgb = r.postprocess(use_camera_wb=True, output_bps=16,
                            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD)
    path = out / f"{raw.stem}.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    return path, time.perf_counter() - t0


def chart_error(png: Path) -> float | None:
    from isplab.classic.chart import rendered_chart_error
    from isplab.classic.tone import srgb_to_linear
    from isplab.errors import IsplabError
    from isplab.io import read_image

    linear = srgb_to_linear(read_image(png))[0].permute(1, 2, 0).numpy()
    try:
        return float(np.mean(rendered_chart_error(linear)[1]))
    except IsplabError:
        return None


def eight_bit(png: Path) -> np.ndarray:
    from isplab.io import read_image

    return (read_image(png)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def frame_section(name: str, results: dict[str, tuple[Path, float]], crop: int) -> dict:
    from isplab.report import detail_window

    images = {k: eight_bit(p) for k, (p, _) in results.items()}
    y, x, side = detail_window(images["classic"], crop)
    shown = []
    for k, img in images.items():
        shown.append((f"{k} ({results[k][1]:.1f} s)", img))
    for k, img in images.items():
        if img.shape[:2] == images["classic"].shape[:2]:
            tile = img[y:y + side, x:x + side].repeat(2, 0).repeat(2, 1)
            shown.append((f"{k}, detail 2x", tile))
    return {"title": name, "images": shown}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "real_raws")
    ap.add_argument("--html", type=Path, default=None)
    ap.add_argument("--crop", type=int, default=160)
    args = ap.parse_args()
    rows, sections = [], []
    for name, frame in FRAMES.items():
        raw, libraw, chart = frame.path, frame.libraw, frame.chart
        flags = [*frame.flags, *frame.wb_flags]
        if not raw.is_file():
            print(f"{name}: {raw} missing, skipped")
            continue
        results = {
            "classic": develop(raw, args.out / name / "classic", flags),
            "hybrid": develop(raw, args.out / name / "hybrid", [*flags, "--isp", "learned"]),
        }
        if libraw:
            results["libraw_ahd"] = libraw_ahd(raw, args.out / name / "libraw_ahd")
        row = {"frame": name, **{f"{k} s": round(t, 1) for k, (_, t) in results.items()}}
        if chart:
            for k, (png, _) in results.items():
                de = chart_error(png)
                row[f"{k} ΔE2000"] = None if de is None else round(de, 2)
        rows.append(row)
        print(row, flush=True)
        sections.append(frame_section(name, results, args.crop))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n" + "\n".join(
        "| " + " | ".join("-" if r.get(k) is None else str(r[k]) for k in keys) + " |"
        for r in rows)
    print(table)
    if args.html:
        from isplab.report import gallery_html

        intro = ("Each real raw of ../shared/data developed by isplab's classical ISP, the "
                 "hybrid ISP (`--isp learned`) and LibRaw AHD, then one detailed region of "
                 "each zoomed 2x. Generated by `benchmarks/real_raws.py`.\n\n" + table)
        print("report:", gallery_html(args.html, "Real raws: classic, hybrid, LibRaw AHD",
                                      sections, intro=intro, thumb=480))


if __name__ == "__main__":
    main()
