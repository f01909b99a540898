"""Hostile inputs through ``isplab info`` and ``isplab develop``: mutants of every real raw of
``../shared/data`` (truncations, byte flips, TIFF/IFD edits) and crafted files (NPY, PNG and
TIFF headers claiming huge or empty frames, odd dtypes, random bytes at a camera's file size).

Every input runs in a fresh forked process (``isplab`` already imported in the parent), with a
60 s limit, its peak RSS measured and its C-level stderr captured. The criteria (issue 21):
0 tracebacks, 0 runs over 60 s, peak RSS <= 1.5 GB for inputs under 10 MB, every failure one
line naming the file, nothing else on stderr (libpng / OpenCV / tifffile chatter).

    python benchmarks/fuzz_readers.py [--inputs 2000] [--seed 0] [--jobs 2] [--json out.json]

``tests/test_fuzz.py`` runs a seeded subset of the same mutants in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 60.0
RSS_LIMIT_MB = 1536.0

#: the real raws and the flags a user would give them
SOURCES = {
    "raw_dng_canon550d_colorchart/colorchart.dng": [],
    "raw_infiniteisp_colorchecker_1920x1080_12bit/ColorCheckerRAW_1920x1080_12bit_BGGR.raw": [],
    "raw_openisp_testchart_1920x1080/test.RAW": ["--width", "1920", "--height", "1080",
                                                 "--bits", "10"],
    "raw_rawir_vivo_x90_npy/x90_3_4.npy": ["--bits", "12"],
    "raw_kdc_kodak_dc50/RAW_KODAK_DC50.KDC": [],
}


def _png(width: int, height: int, depth: int = 16, colour: int = 0, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + \
        chunk(b"IEND", b"")


def _npy(shape, descr: str = "<u2", data: bytes = b"", fortran: bool = False) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran,
                                               "shape": tuple(shape)})
    return buf.getvalue() + data


def crafted(rng: np.random.Generator) -> Iterator[tuple[str, bytes, list[str]]]:
    """Files written to lie about themselves."""
    yield "huge.png", _png(100_000, 100_000), []
    yield "huge16k.png", _png(16_384, 16_384, idat=zlib.compress(b"\0" * 100_000)), []
    yield "empty.png", _png(0, 0), []
    yield "odd_depth.png", _png(64, 64, depth=3), []
    yield "rgb_tiny.png", _png(8, 8, colour=2, idat=zlib.compress(b"\0" * 200)), []
    yield "zero.npy", _npy((0, 4)), []
    yield "zero3.npy", _npy((0, 0, 4)), []
    yield "huge.npy", _npy((40_000, 40_000)), []
    yield "short.npy", _npy((64, 64), data=b"\1" * 100), []
    yield "object.npy", _npy((4, 4), descr="|O", data=b"\0" * 128), []
    yield "bool.npy", _npy((8, 8), descr="|b1", data=b"\1" * 64), []
    yield "complex.npy", _npy((8, 8), descr="<c8", data=b"\0" * 512), []
    yield "fortran.npy", _npy((8, 8), fortran=True, data=b"\0" * 128), []
    yield "nan.npy", _npy((8, 8), descr="<f4", data=np.full(64, np.nan, "<f4").tobytes()), []
    yield "five_d.npy", _npy((2, 2, 2, 2, 2), data=b"\0" * 64), []
    tiff_huge = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 3) + \
        struct.pack("<HHII", 256, 4, 1, 200_000) + struct.pack("<HHII", 257, 4, 1, 200_000) + \
        struct.pack("<HHII", 258, 3, 1, 16) + struct.pack("<I", 0)
    yield "huge.tif", tiff_huge, []
    yield "loop.tif", b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + \
        struct.pack("<I", 8), []
    for size, name in ((4_147_200, "random.nef"), (5_992_704, "random.cr2")):
        yield name, rng.integers(0, 256, size, dtype=np.uint8).tobytes(), []
    yield "zero_bytes.dng", b"", []
    yield "text.raw", b"hello" * 100, ["--width", "10", "--height", "50", "--bits", "8"]


def _ifd_entries(data: bytes) -> list[int]:
    """Byte offsets of the first IFD's 12-byte entries of a little/big-endian TIFF."""
    if data[:2] not in (b"II", b"MM") or len(data) < 8:
        return []
    end = "<" if data[:2] == b"II" else ">"
    off = struct.unpack(end + "I", data[4:8])[0]
    if off + 2 > len(data):
        return []
    n = struct.unpack(end + "H", data[off:off + 2])[0]
    return [off + 2 + 12 * i for i in range(min(n, 200)) if off + 14 + 12 * i <= len(data)]


def mutants(data: bytes, rng: np.random.Generator, n: int) -> Iterator[tuple[str, bytes]]:
    """``n`` mutants of one file: truncations, byte flips (header-heavy), IFD edits."""
    entries = _ifd_entries(data)
    size = len(data)
    for i in range(n):
        kind = i % 4 if entries else i % 3
        if kind == 0:  # truncation
            cut = int(rng.choice([1, 8, 16, 100, 1000, size // 10, size // 2, size - 1,
                                  int(rng.integers(0, max(size, 1)))]))
            yield f"trunc{cut}", data[:max(0, min(cut, size))]
        elif kind == 1:  # byte flips near the start (headers)
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 16))):
                pos = int(rng.integers(0, min(size, 4096)))
                b[pos] ^= int(rng.integers(1, 256))
            yield f"hflip{i}", bytes(b)
        elif kind == 2:  # byte flips anywhere
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 64))):
                pos = int(rng.integers(0, size))
                b[pos] = int(rng.integers(0, 256))
            yield f"flip{i}", bytes(b)
        else:  # an IFD entry's type / count / value set to something hostile
            b = bytearray(data)
            at = entries[int(rng.integers(0, len(entries)))]
            field = int(rng.integers(0, 3))
            value = int(rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                    int(rng.integers(0, 2**32))]))
            if field == 0:
                b[at + 2:at + 4] = struct.pack("<H", value & 0xFFFF)
            elif field == 1:
                b[at + 4:at + 8] = struct.pack("<I", value)
            else:
                b[at + 8:at + 12] = struct.pack("<I", value)
            yield f"ifd{i}", bytes(b)


def iter_corpus(data_root: Path, inputs: int, seed: int
                ) -> Iterator[tuple[str, bytes, list[str]]]:
    """The seeded (file name, bytes, flags), one at a time: crafted files plus mutants spread
    over the real raws (``inputs`` <= 0: all of them). Made lazily, so the process the runs
    fork from stays small (a forked child's peak RSS counts the parent's pages)."""
    rng = np.random.default_rng(seed)
    made = list(crafted(rng))
    present = [(rel, flags) for rel, flags in SOURCES.items() if (data_root / rel).is_file()]
    per = max(1, -(-(inputs - len(made)) // max(1, len(present))))  # ceil: reach ``inputs``

    def everything():
        yield from made
        for rel, flags in present:
            src = data_root / rel
            data = src.read_bytes()
            for tag, mutated in mutants(data, rng, per):
                yield f"{src.stem}_{tag}{src.suffix}", mutated, flags

    for n, item in enumerate(everything()):
        if 0 < inputs <= n:
            return
        yield item


def corpus(data_root: Path, inputs: int, seed: int) -> list[tuple[str, bytes, list[str]]]:
    """:func:`iter_corpus` as a list."""
    return list(iter_corpus(data_root, inputs, seed))


def run_one(path: Path, verb: str, flags: list[str], out_dir: Path) -> dict:
    """Run one CLI verb on one file in this (forked) process; fd 1/2 captured."""
    from typer.testing import CliRunner

    from isplab.cli import app

    args = ["info", str(path), *flags] if verb == "info" else \
        ["develop", str(path), "-o", str(out_dir), "-q", "--jobs", "1", *flags]
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        t0 = time.perf_counter()
        try:
            res = CliRunner().invoke(app, args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        seconds = time.perf_counter() - t0
        sink.seek(0)
        noise = sink.read().decode(errors="replace").strip()
    exc = res.exception
    traceback_seen = "Traceback" in res.output or (exc is not None and
                                                  not isinstance(exc, SystemExit))
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error", "✗", "  failed:"))
              or "Error" in ln]
    return {"file": path.name, "verb": verb, "exit": res.exit_code, "seconds": seconds,
            "traceback": bool(traceback_seen), "names_file": all(path.name in e for e in
                                                                 errors if e.strip()),
            "output": res.output[-400:], "stderr_noise": noise[-400:],
            "exception": None if exc is None or isinstance(exc, SystemExit) else repr(exc),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_in_process(path: Path, verb: str, flags: list[str], out_dir: Path) -> dict:
    """:func:`run_one` in this process with the 60 s limit (SIGALRM): for callers that have
    already run torch (a test session), where a fork would inherit OpenMP's thread pool and
    can hang. No RSS figure of its own (``rss_mb`` is the process's)."""
    import signal

    def expire(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(LIMIT_S))
    try:
        result = run_one(path, verb, flags, out_dir)
        result["rss_mb"] = 0.0
        return result
    except TimeoutError:
        return {"file": path.name, "verb": verb, "timeout": True, "seconds": LIMIT_S}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _child(path: Path, verb: str, flags: list[str], out_dir: Path, fd: int) -> None:
    result = run_one(path, verb, flags, out_dir)
    os.write(fd, json.dumps(result).encode())
    os.close(fd)
    os._exit(0)


def run_forked(path: Path, verb: str, flags: list[str], out_dir: Path) -> dict:
    """:func:`run_one` in a fresh fork with the 60 s limit."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            _child(path, verb, flags, out_dir, w)
        finally:
            os._exit(1)
    os.close(w)
    deadline = time.perf_counter() + LIMIT_S
    status = None
    while time.perf_counter() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(r)
        return {"file": path.name, "verb": verb, "timeout": True, "seconds": LIMIT_S}
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    if not text:
        return {"file": path.name, "verb": verb, "crashed": True, "status": status}
    return json.loads(text)


def check(result: dict, size: int) -> list[str]:
    """The criteria a result breaks (empty: it passed)."""
    bad = []
    if result.get("timeout"):
        bad.append("over 60 s")
    if result.get("crashed"):
        bad.append(f"process died (status {result.get('status')})")
    if result.get("traceback"):
        bad.append(f"traceback {result.get('exception')}")
    if result.get("exit") not in (0, 1, 2, None):
        bad.append(f"exit code {result.get('exit')}")
    if result.get("exit") not in (0, None) and not result.get("names_file", True):
        bad.append("failure line does not name the file")
    if size < 10 << 20 and result.get("rss_mb", 0) > RSS_LIMIT_MB:
        bad.append(f"peak RSS {result['rss_mb']:.0f} MB")
    if result.get("stderr_noise"):
        bad.append(f"stderr noise: {result['stderr_noise'][:120]!r}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from isplab.data.datasets import data_root

    root = args.data or data_root()
    import isplab.classic.pipeline  # noqa: F401
    import isplab.cli  # noqa: F401  (imported once, shared by the forks)
    import isplab.infer.hybrid  # noqa: F401

    items = iter_corpus(root, args.inputs, args.seed)
    failures: list[dict] = []
    results = []
    t0 = time.perf_counter()
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, (name, data, flags) in enumerate(items):
            count = i + 1
            path = tmp / "in" / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            for verb in ("info", "develop"):
                res = run_forked(path, verb, flags, tmp / f"out{i % 4}")
                res["bytes"] = len(data)
                results.append(res)
                bad = check(res, len(data))
                if bad:
                    failures.append({**res, "broken": bad})
                    print(f"FAIL {verb} {name}: {'; '.join(bad)}", flush=True)
            path.unlink()
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{args.inputs} inputs, {len(failures)} failures, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    runs = len(results)
    worst_s = max((r.get("seconds", 0) for r in results), default=0)
    worst_rss = max((r.get("rss_mb", 0) for r in results if r["bytes"] < 10 << 20), default=0)
    codes = {c: sum(r.get("exit") == c for r in results) for c in (0, 1, 2)}
    summary = {"inputs": count, "runs": runs, "failures": len(failures),
               "slowest_s": round(worst_s, 2), "peak_rss_mb_under_10mb": round(worst_rss),
               "exit_codes": codes, "seconds": round(time.perf_counter() - t0),
               "seed": args.seed}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
