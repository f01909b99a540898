"""Speed and memory of the learned stage (``isplab develop --isp learned``): torch vs
onnxruntime for the shipped jdd_net, and the ONNX-vs-torch agreement on every real raw.

    .venv/bin/python benchmarks/learned_speed.py [--rounds 5] [--skip forward,tiles,real,process]

Four tables, every variant alternated A B A B within each round (the machine is shared:
compare ratios within one run, not across runs):

1. ``forward``: the jdd_net forward on one 512 x 512 packed tile (1 MP out): torch with 1 or
   2 threads, with and without ``channels_last``, onnxruntime with 1 or 2 threads.
2. ``tiles``: the learned stage (:class:`isplab.infer.hybrid.LearnedDemosaic`) on a whole
   12 MP mosaic per backend and tile side (the ONNX export, once per process, not timed).
3. ``real``: every real raw of ../shared/data developed by ``isplab develop --isp learned
   --output-bps 16`` with ``ISPLAB_BACKEND=torch`` and ``=onnxruntime``: PSNR between the two.
4. ``process``: the 12 MP DNG of benchmarks/develop_memory.py developed by ``isplab develop
   --isp learned`` as whole processes under ``/usr/bin/time -v`` (wall, CPU, peak RSS), torch
   and onnxruntime alternated. Acceptance (issue 16): <= 25 s and <= 4 GB.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from develop_memory import make_raw  # noqa: E402
from real_raws import FRAMES  # noqa: E402

ISPLAB = str(Path(sys.executable).with_name("isplab"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def forward_variants(rounds: int) -> None:
    """The jdd_net forward on one 512 x 512 packed tile, torch and onnxruntime variants."""
    from isplab.infer.backends import OnnxRuntimeModule
    from isplab.infer.hybrid import load_jdd

    model = load_jdd().eval()
    cl_model = load_jdd().eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 8, 512, 512, generator=torch.Generator().manual_seed(0))
    x[:, 4:] *= 0.02
    ort = {t: OnnxRuntimeModule(model, 8, threads=t) for t in (1, 2)}

    def run_torch(m, threads, cl):
        torch.set_num_threads(threads)
        xi = x.contiguous(memory_format=torch.channels_last) if cl else x
        with torch.inference_mode():
            m(xi)

    variants = {
        "torch, 1 thread": lambda: run_torch(model, 1, False),
        "torch, 2 threads": lambda: run_torch(model, 2, False),
        "torch, 2 threads, channels_last": lambda: run_torch(cl_model, 2, True),
        "onnxruntime, 1 thread": lambda: ort[1](x),
        "onnxruntime, 2 threads": lambda: ort[2](x),
    }
    times = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(rounds):
        for k, fn in variants.items():
            times[k].append(_timed(fn))
    torch.set_num_threads(2)
    base = np.median(times["torch, 2 threads"])
    _table("jdd_net forward, one 512 x 512 packed tile (1.05 MP out), median of "
           f"{rounds}", ["variant", "seconds", "MP/s", "vs torch 2 threads"],
           [[k, f"{np.median(v):.2f}", f"{1.048576 / np.median(v):.2f}",
             f"{base / np.median(v):.2f}x"] for k, v in times.items()])


def stage_tiles(raw_path: Path, rounds: int) -> None:
    """The learned stage on a whole 12 MP mosaic, per backend and tile side."""
    from isplab.infer.hybrid import learned_demosaic
    from isplab.raw import read

    raw = read(raw_path)
    mosaic = raw.to_tensor().float().clamp(0, 1)
    gains = raw.wb_gains
    variants = {("torch", None): None, ("onnxruntime", 512): None,
                ("onnxruntime", 768): None, ("onnxruntime", 1024): None}
    for key in variants:
        stage = learned_demosaic(backend=key[0], tile=key[1])
        stage.runner()  # the export: once per process, not timed
        variants[key] = stage
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, stage in variants.items():
            times[k].append(_timed(lambda stage=stage: stage(mosaic, "RGGB", gains, None)))
    base = np.median(times[("torch", None)])
    _table(f"learned stage on a 12 MP mosaic (4000 x 3000), median of {rounds}",
           ["backend", "tile (packed px)", "seconds", "MP/s", "vs torch"],
           [[k[0], str(k[1] or "auto"), f"{np.median(v):.1f}", f"{12 / np.median(v):.2f}",
             f"{base / np.median(v):.2f}x"] for k, v in times.items()])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) / 65535.0 ** 2
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def real_agreement(tmp: Path) -> None:
    """Every real raw through the learned develop with each backend: PSNR between them."""
    import cv2

    rows = []
    for name, (path, _libraw, flags, _chart) in FRAMES.items():
        if not path.is_file():
            rows.append([name, "missing", "", "", ""])
            continue
        out, secs = {}, {}
        for backend in ("torch", "onnxruntime"):
            folder = tmp / "real" / name / backend
            env = {**os.environ, "ISPLAB_BACKEND": backend}
            t0 = time.perf_counter()
            subprocess.run([ISPLAB, "develop", str(path), "-o", str(folder), "--isp", "learned",
                            "--output-bps", "16", "-q", *flags], check=True, env=env)
            secs[backend] = time.perf_counter() - t0
            out[backend] = cv2.imread(str(next(folder.glob("*.png"))), cv2.IMREAD_UNCHANGED)
        diff = np.abs(out["torch"].astype(np.int64) - out["onnxruntime"].astype(np.int64))
        h, w = out["torch"].shape[:2]
        rows.append([name, f"{w}x{h}", f"{_psnr(out['torch'], out['onnxruntime']):.1f}",
                     str(int(diff.max())), f"{secs['torch']:.1f} / {secs['onnxruntime']:.1f}"])
    _table("ONNX vs torch on the real raws (isplab develop --isp learned --output-bps 16)",
           ["frame", "size", "PSNR (dB)", "max diff (of 65535)", "seconds torch / onnxruntime"],
           rows)


def _measure(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """(wall s, user+sys CPU s, peak RSS GB) of ``cmd`` under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])

    def field(label: str) -> float:
        return float(re.search(rf"{label}: ([\d.]+)", proc.stderr)[1])

    cpu = field(r"User time \(seconds\)") + field(r"System time \(seconds\)")
    return wall, cpu, field(r"Maximum resident set size \(kbytes\)") / 2**20


def whole_process(raw: Path, tmp: Path, rounds: int) -> None:
    """``isplab develop 12mp.dng --isp learned`` per backend, alternated."""
    results: dict[str, list[tuple[float, float, float]]] = {"torch": [], "onnxruntime": []}
    for i in range(rounds):
        for backend in results:
            env = {**os.environ, "ISPLAB_BACKEND": backend}
            cmd = [ISPLAB, "develop", str(raw), "-o", str(tmp / f"p{i}{backend}"), "--isp",
                   "learned", "-q"]
            results[backend].append(_measure(cmd, env))
            print(f"  round {i + 1} {backend}: {results[backend][-1][0]:.1f} s", file=sys.stderr)
    base = np.median([r[0] for r in results["torch"]])
    rows = []
    for backend, rs in results.items():
        wall, cpu, rss = (np.median([r[k] for r in rs]) for k in range(3))
        rows.append([backend, f"{wall:.1f}", f"{min(r[0] for r in rs):.1f}", f"{cpu:.1f}",
                     f"{max(r[2] for r in rs):.2f}", f"{base / wall:.2f}x"])
    _table(f"isplab develop 12mp.dng --isp learned, whole process, median of {rounds}",
           ["backend", "wall s (median)", "wall s (best)", "CPU s (user+sys)",
            "peak RSS GB (max)", "vs torch"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip", default="", help="sections to skip: forward,tiles,real,process")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    load = os.getloadavg()
    print(f"# learned stage: torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = tmp / "12mp.dng"
        if not {"tiles", "process"} <= skip:
            make_raw(raw)
        if "forward" not in skip:
            forward_variants(args.rounds)
        if "tiles" not in skip:
            stage_tiles(raw, max(1, args.rounds // 2))
        if "real" not in skip:
            real_agreement(tmp)
        if "process" not in skip:
            whole_process(raw, tmp, args.rounds)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} at the end")


if __name__ == "__main__":
    main()
