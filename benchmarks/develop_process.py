"""Whole-process develop: `isplab develop --isp classic` against a LibRaw AHD script.

What a user times is the command, start-up included. Each run is a fresh process; the two
sides alternate (isplab, LibRaw, isplab, LibRaw, ...) so that a change in the machine's load
hits both; wall and CPU time (user + sys) are the medians of ``--repeat`` runs, peak RSS
(``/usr/bin/time``) the largest. LibRaw is the 5-line rawpy script a user would write:
``rawpy.imread(f).postprocess(use_camera_wb=True)`` (AHD) and an 8-bit PNG through OpenCV;
isplab writes the same 8-bit PNG (both ``cv2.imwrite`` with OpenCV's default PNG settings).
isplab's ``.pyc`` files are compiled first, as an installed package has them (a session with
``PYTHONDONTWRITEBYTECODE`` set would otherwise compile isplab's modules in every run, which
the script side, numpy/cv2/rawpy from site-packages, never does). Files:

- the 2 MP Canon 550D DNG of ``../shared/data`` (14-bit RGGB);
- a 12 MP (4000 x 3000) 12-bit RGGB DNG made from Kodak24's kodim01 (bicubic upscale,
  unprocessed by isplab.synth, written by isplab.raw.write_dng);
- a folder of 24 DNGs of 2 MP (1728 x 1152) from the 24 Kodak photos, developed by one
  ``isplab develop DIR`` with ``--jobs 1`` and ``--jobs 2`` (alternating), outputs compared
  byte for byte.

    python benchmarks/develop_process.py [--repeat 5] [--skip-folder]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CANON = DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng"
KODAK = DATA / "kodak24"

LIBRAW_SCRIPT = """import sys
import cv2
import rawpy
with rawpy.imread(sys.argv[1]) as raw:
    cv2.imwrite(sys.argv[2], raw.postprocess(use_camera_wb=True)[..., ::-1])
"""


def kodak_dng(photo: Path, path: Path, width: int, height: int) -> Path:
    """A 12-bit RGGB DNG of ``width x height`` from an sRGB photo (upscaled, unprocessed)."""
    import cv2
    import torch

    from isplab.raw import RawImage, write_dng
    from isplab.synth.unprocess import unprocess

    rgb = cv2.imread(str(photo), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    rgb = np.clip(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)
    srgb = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    mosaic, meta = unprocess(srgb, generator=0, packed=False, cfa="RGGB")
    black, white = 256, 4095
    raw = RawImage(mosaic=mosaic[0].numpy().astype(np.float32), cfa="RGGB",
                   black_level=(black,) * 4, white_level=white, bit_depth=12,
                   wb_gains=(meta["red_gain"], 1.0, meta["blue_gain"]),
                   xyz_to_camera=np.asarray(meta["xyz_to_cam"]))
    return write_dng(path, raw)


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds (user + sys), peak RSS in MB) of one process, measured by
    ``/usr/bin/time`` (``ru_maxrss`` seen from this process would include the pre-exec
    copy of this process's own memory)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", report.name, *cmd],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        user, system, rss_kb = report.read().split()[-3:]
    return wall, float(user) + float(system), int(rss_kb) / 1024


def alternate(commands: dict, repeat: int) -> dict[str, list[tuple[float, float, float]]]:
    """Run each ``name -> (i -> argv)`` once per round, in turn, ``repeat`` rounds (plus one
    warm-up round, not counted: the page cache and the .pyc files)."""
    results: dict[str, list] = {name: [] for name in commands}
    for i in range(repeat + 1):
        for name, argv in commands.items():
            r = run(argv(i))
            if i:
                results[name].append(r)
    return results


def median(rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Median wall, median CPU, largest peak RSS."""
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
            max(r[2] for r in rows))


def single_files(files: dict[str, Path], out: Path, repeat: int) -> list[str]:
    isplab = str(Path(sys.executable).with_name("isplab"))
    script = out / "libraw_ahd.py"
    script.write_text(LIBRAW_SCRIPT)
    lines = ["| file | MP | isplab classic s | LibRaw AHD s | wall ratio | CPU s (isplab / "
             "LibRaw) | isplab RSS MB | LibRaw RSS MB | RSS ratio | isplab runs (s) | "
             "LibRaw runs (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, path in files.items():
        target = out / name
        res = alternate({
            "isplab": lambda i, p=path, t=target: [isplab, "develop", str(p), "-o", str(t),
                                                   "-q", "--overwrite"],
            "libraw": lambda i, p=path, t=target: [sys.executable, str(script), str(p),
                                                   str(t / "libraw.png")],
        }, repeat)
        (iw, ic, im), (lw, lc, lm) = median(res["isplab"]), median(res["libraw"])
        mp = _megapixels(path)
        runs = [" ".join(f"{r[0]:.2f}" for r in res[k]) for k in ("isplab", "libraw")]
        lines.append(f"| {name} | {mp:.1f} | {iw:.2f} | {lw:.2f} | {iw / lw:.2f}x | {ic:.2f} / "
                     f"{lc:.2f} | {im:.0f} | {lm:.0f} | {im / lm:.2f}x | {runs[0]} | {runs[1]} |")
        print(lines[-1], flush=True)
    return lines


def folder(src: Path, out: Path, repeat: int) -> list[str]:
    isplab = str(Path(sys.executable).with_name("isplab"))

    def develop(jobs: int):
        def argv(i: int) -> list[str]:
            target = out / f"jobs{jobs}"
            shutil.rmtree(target, ignore_errors=True)
            return [isplab, "develop", str(src), "-o", str(target), "-q", "--jobs", str(jobs)]
        return argv

    res = alternate({"jobs1": develop(1), "jobs2": develop(2)}, repeat)
    n = len(list(src.glob("*.dng")))
    (w1, c1, m1), (w2, c2, m2) = median(res["jobs1"]), median(res["jobs2"])
    names = sorted(p.name for p in (out / "jobs1").iterdir())
    same = names == sorted(p.name for p in (out / "jobs2").iterdir()) and all(
        filecmp.cmp(out / "jobs1" / f, out / "jobs2" / f, shallow=False) for f in names)
    runs = [" ".join(f"{r[0]:.2f}" for r in res[k]) for k in ("jobs1", "jobs2")]
    return ["| folder | files | --jobs 1 s | --jobs 2 s | speed-up | files/s (1 / 2) | CPU s "
            "(1 / 2) | peak RSS MB (1 / 2, largest process) | outputs byte-identical | "
            "--jobs 1 runs | --jobs 2 runs |", "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| Kodak24 as 2 MP DNGs | {n} | {w1:.2f} | {w2:.2f} | {w1 / w2:.2f}x | "
            f"{n / w1:.1f} / {n / w2:.1f} | {c1:.2f} / {c2:.2f} | {m1:.0f} / {m2:.0f} | "
            f"{'yes' if same else 'NO'} | {runs[0]} | {runs[1]} |"]


def _megapixels(path: Path) -> float:
    from isplab.raw import read_header

    h = read_header(path)
    return h.width * h.height / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per side (median)")
    ap.add_argument("--skip-folder", action="store_true", help="no 24-file --jobs test")
    ap.add_argument("--skip-12mp", action="store_true", help="no 12 MP file")
    args = ap.parse_args()
    import compileall

    import rawpy

    compileall.compile_dir(ROOT / "isplab", quiet=1)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {"Canon 550D DNG": CANON}
        if not args.skip_12mp:
            files["Kodak kodim01 12 MP DNG"] = kodak_dng(KODAK / "kodim01.png",
                                                         tmp / "kodim01_12mp.dng", 4000, 3000)
        src = tmp / "kodak24_2mp"
        if not args.skip_folder:
            src.mkdir()
            import cv2

            for photo in sorted(KODAK.glob("kodim*.png")):
                portrait = np.greater(*cv2.imread(str(photo)).shape[:2])
                w, h = (1152, 1728) if portrait else (1728, 1152)
                kodak_dng(photo, src / f"{photo.stem}.dng", w, h)
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} at start, Python "
              f"{platform.python_version()}, rawpy {rawpy.__version__} (LibRaw "
              f"{rawpy.libraw_version}), median of {args.repeat} alternating runs", flush=True)
        lines = single_files(files, tmp, args.repeat)
        if not args.skip_folder:
            lines += [""] + folder(src, tmp, args.repeat)
        print(f"# load average {os.getloadavg()[0]:.2f} at the end")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
