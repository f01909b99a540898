"""The batch rules every file-to-file verb shares (isplab.commands._batch), through
``isplab develop``: output folder checks, skipped outputs, --overwrite safety, the rename race,
leftovers, --jobs, --shard, mixed headerless inputs, option checks and size limits."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from isplab.cli import app
from isplab.commands import _batch
from isplab.io import atomic_write, written_by_isplab

from .conftest import BGGR_12BIT, need

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sample")
    assert run("develop", "--sample", "-o", d, "-q").exit_code == 0
    return d / "isplab_sample_astronaut.dng"


@pytest.fixture
def three_raws(tmp_path, sample_dng) -> Path:
    src = tmp_path / "raws"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / f"{name}.dng").write_bytes(sample_dng.read_bytes())
    return src


def test_jobs_give_the_same_bytes_as_one_process(tmp_path, three_raws):
    r1 = run("develop", three_raws, "-o", tmp_path / "one", "--jobs", "1", "-q")
    r2 = run("develop", three_raws, "-o", tmp_path / "two", "--jobs", "2", "-q")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    for name in ("a", "b", "c"):
        assert (tmp_path / "one" / f"{name}.png").read_bytes() == \
            (tmp_path / "two" / f"{name}.png").read_bytes()


def test_shards_cover_every_input_exactly_once(tmp_path):
    files = [tmp_path / f"d{i % 3}" / f"f{i:03d}.dng" for i in range(50)]
    seen: list[Path] = []
    for k in range(1, 5):
        seen += _batch.select_shard(files, (k, 4))
    assert sorted(seen) == sorted(files)
    assert _batch.select_shard(list(reversed(files)), (2, 4)) == _batch.select_shard(files, (2, 4))
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(Exception, match="--shard"):
            _batch.parse_shard(bad)


def test_shard_option_develops_a_part(tmp_path, three_raws):
    outs = []
    for k in (1, 2):
        out = tmp_path / f"s{k}"
        assert run("develop", three_raws, "-o", out, "--shard", f"{k}/2", "-q").exit_code == 0
        outs += sorted(p.name for p in out.glob("*.png")) if out.exists() else []
    assert sorted(outs) == ["a.png", "b.png", "c.png"]


def test_output_folder_that_cannot_be_created_is_one_line(tmp_path, sample_dng):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("develop", sample_dng, "-o", blocker / "sub")
    assert r.exit_code == 2 and "cannot create the output folder" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_unwritable_output_folder_is_checked_up_front(tmp_path, sample_dng, monkeypatch):
    import tempfile

    out = tmp_path / "ro"
    out.mkdir()
    real = tempfile.mkstemp

    def deny(*a, **kw):
        if kw.get("prefix", "").startswith(".isplab-probe"):
            raise PermissionError(13, "Permission denied")
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", deny)
    r = run("develop", sample_dng, "-o", out)
    assert r.exit_code == 2
    assert "cannot write into the output folder (Permission denied)" in r.output
    assert list(out.iterdir()) == []


def test_failed_run_leaves_no_empty_output_folder(tmp_path):
    bad = tmp_path / "bad.dng"
    bad.write_bytes(b"not a raw at all")
    r = run("develop", bad, "-o", tmp_path / "new")
    assert r.exit_code == 1
    assert not (tmp_path / "new").exists()


def test_overwrite_never_replaces_a_raw_input_in_the_output_folder(tmp_path):
    """Issue 21.5: developing s/ into s/ with --overwrite must not replace s/scene.png (a raw
    mosaic PNG isplab reads, not an image it wrote) with the photo of s/scene.npy."""
    s = tmp_path / "s"
    s.mkdir()
    mosaic = (np.random.default_rng(0).random((32, 32)) * 1023).astype(np.uint16)
    cv2.imwrite(str(s / "scene.png"), mosaic)
    np.save(s / "scene.npy", mosaic.astype(np.float32) / 1023)
    before = (s / "scene.png").read_bytes()
    r = run("develop", s, "-o", s, "--overwrite")
    assert r.exit_code == 1 and "was not written by isplab" in r.output
    assert (s / "scene.png").read_bytes() == before


def test_no_overwrite_holds_at_the_rename(tmp_path):
    """Issue 21.6: another run writing the same output between our check and our rename
    wins; ours fails with FileExistsError and removes its temporary."""
    target = tmp_path / "x.png"

    def slow_write(tmp: str) -> None:
        Path(tmp).write_bytes(b"ours")
        target.write_bytes(b"theirs")  # the concurrent run finishes first

    with pytest.raises(FileExistsError, match="another run"):
        atomic_write(target, slow_write)
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_two_concurrent_develops_never_replace_each_other(tmp_path, three_raws):
    import subprocess
    import sys

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "isplab.cli", "develop", str(three_raws), "-o", str(out),
           "--jobs", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert all(c in (0, 1) for c in codes), results
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert all(written_by_isplab(p) for p in out.iterdir())
    for _, stderr in results:  # a lost race is reported, never silent
        text = stderr.decode()
        assert "Traceback" not in text


def test_leftover_temporaries_of_dead_runs_are_removed(tmp_path, sample_dng):
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".sample.isplab-999999999.abc.png"
    dead.write_bytes(b"half")
    alive = out / f".other.isplab-{os.getpid()}.abc.png"
    alive.write_bytes(b"in progress")
    assert run("develop", sample_dng, "-o", out, "-q").exit_code == 0
    assert not dead.exists() and alive.exists()


def test_sample_is_reused_and_never_confused(tmp_path):
    r = run("develop", "--sample", "-o", tmp_path)
    assert "sample raw written to" in r.output
    r = run("develop", "--sample", "-o", tmp_path / "again")
    assert r.exit_code == 0
    (tmp_path / "again" / "isplab_sample_astronaut.png").unlink()
    r = run("develop", "--sample", "-o", tmp_path / "again")
    assert "sample raw already in" in r.output and r.exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "isplab_sample_astronaut.dng").write_bytes(b"someone else's file")
    r = run("develop", "--sample", "-o", other)
    assert r.exit_code == 2 and "is not isplab's sample raw" in r.output
    assert (other / "isplab_sample_astronaut.dng").read_bytes() == b"someone else's file"


def test_headerless_flags_reach_headerless_files_only(tmp_path, sample_dng):
    frame = tmp_path / "frame.raw"
    frame.write_bytes(need(BGGR_12BIT).read_bytes())
    r = run("develop", sample_dng, frame, "-o", tmp_path / "out", "--width", "1920",
            "--height", "1080", "--bits", "12", "--cfa", "BGGR", "--black-level", "64", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "isplab_sample_astronaut.png").exists()
    assert (tmp_path / "out" / "frame.png").exists()
    alone = run("develop", sample_dng, "-o", tmp_path / "alone", "-q")
    assert alone.exit_code == 0
    assert (tmp_path / "out" / "isplab_sample_astronaut.png").read_bytes() == \
        (tmp_path / "alone" / "isplab_sample_astronaut.png").read_bytes()


@pytest.mark.parametrize("args", [
    ["--bright", "nan"], ["--bright", "0"], ["--gamma", "nan,nan"], ["--gamma", "0"],
    ["--white-level", "inf"], ["--black-level", "-inf"], ["--black-level", "-1e30"],
    ["--black-level", "abc"], ["--wb", "1,nan,1"], ["--noise", "1,inf"],
    ["--device", "nonsense"], ["--max-megapixels", "nan"], ["--jobs", "0"],
    ["--denoise", "inf"],
])
def test_bad_numbers_are_refused_before_any_work(tmp_path, sample_dng, args):
    out = tmp_path / "out"
    r = run("develop", sample_dng, "-o", out, *args)
    assert r.exit_code == 2, (args, r.output)
    assert "Traceback" not in r.output
    assert not list(out.glob("*.png")) if out.exists() else True


def test_gamma_takes_a_bare_power(tmp_path, sample_dng):
    r = run("develop", sample_dng, "-o", tmp_path, "--gamma", "2", "-q")
    assert r.exit_code == 0, r.output


def _png_header(path: Path, width: int, height: int, bit_depth: int = 16, colour: int = 0):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)) + b"\x00" * 20)


def test_a_tiny_file_claiming_a_huge_frame_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header(bomb, 100_000, 100_000)
    for verb in (["develop", bomb, "-o", tmp_path / "o"], ["info", bomb]):
        r = run(*verb)
        assert r.exit_code in (1, 2) and "10,000 MP" in r.output and "--max-megapixels" in \
            r.output, r.output
        assert "Traceback" not in r.output
    with open(tmp_path / "big.npy", "wb") as f:  # a header claiming 400 MP, no data
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (20_000, 20_000)})
    r = run("info", tmp_path / "big.npy")
    assert r.exit_code == 1 and "over the 200 MP limit" in r.output


def test_synth_outputs_develop_with_their_recorded_levels(tmp_path):
    """Issue 20.5: packed PNGs written by isplab synth are read back with the black/white
    levels (and white balance) their meta/<id>.json records, with no flags."""
    from isplab.raw import read

    photos = tmp_path / "photos"
    photos.mkdir()
    g = np.random.default_rng(0)
    cv2.imwrite(str(photos / "p.png"), (g.random((64, 64, 3)) * 255).astype(np.uint8))
    r = run("synth", photos, "-o", tmp_path / "s", "--patch", "32", "--bit-depth", "12", "-q")
    assert r.exit_code == 0, r.output
    raw_png = next((tmp_path / "s" / "raw").glob("*.png"))
    img = read(raw_png)
    assert img.black_level == (256.0,) * 4 and img.white_level == 4095.0
    assert img.wb_gains is not None and img.camera_to_srgb is not None
    r = run("develop", raw_png, "-o", tmp_path / "dev", "-q")
    assert r.exit_code == 0, r.output


class _Pid:
    """A picklable batch worker that answers the process it ran in."""

    def __call__(self, task: _batch.Task) -> list[str]:
        return [str(os.getpid())]


class _WorkerCrashes:
    """A picklable batch worker that dies (as a crash in native code would) in any process
    but the one that made it."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __call__(self, task: _batch.Task) -> list[str]:
        if os.getpid() != self.parent:
            os._exit(3)
        return []


def _tasks(tmp_path, n):
    return [_batch.Task(tmp_path / f"{i}.dng", tmp_path / f"{i}.png") for i in range(n)]


def test_jobs_share_the_queue_with_this_process(tmp_path):
    tasks, seen = _tasks(tmp_path, 6), []
    _batch.run_tasks(tasks, _Pid(), jobs=2,
                     on_result=lambda task, ok, lines: seen.append((task, ok, lines[0])))
    assert sorted(t.source.name for t, _, _ in seen) == sorted(t.source.name for t in tasks)
    assert all(ok for _, ok, _ in seen)
    pids = {pid for _, _, pid in seen}
    assert str(os.getpid()) in pids and len(pids) == 2  # this process and one worker


@pytest.mark.parametrize("jobs", [2, 3])
def test_a_worker_that_dies_fails_its_file_and_the_batch_goes_on(tmp_path, jobs):
    tasks, seen = _tasks(tmp_path, 6), []
    _batch.run_tasks(tasks, _WorkerCrashes(), jobs=jobs,
                     on_result=lambda task, ok, lines: seen.append((task, ok, lines)))
    assert sorted(t.source.name for t, _, _ in seen) == sorted(t.source.name for t in tasks)
    failed = [(t, lines) for t, ok, lines in seen if not ok]
    # the files the workers held when one died (the pool breaks); this process did the rest
    assert 1 <= len(failed) <= jobs - 1
    for task, lines in failed:
        assert lines[0].startswith(f"{task.source}: the worker process running it died")


def test_a_fresh_process_forks_its_workers_and_sends_them_the_final_settings(
        tmp_path, sample_dng):
    """As a user runs it: a new ``isplab`` process forks its workers before it loads rawpy
    (prestart), and only then learns settings such as the mixed headerless flags; the
    outputs equal ``--jobs 1``'s and rawpy's fork warning stays out of stderr."""
    import subprocess
    import sys

    frame = tmp_path / "frame.raw"
    frame.write_bytes(need(BGGR_12BIT).read_bytes())
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        (src / f"{name}.dng").write_bytes(sample_dng.read_bytes())
    flags = ["--width", "1920", "--height", "1080", "--bits", "12", "--cfa", "BGGR",
             "--black-level", "64", "-q"]
    code = ("import sys; from isplab.cli import main; "
            "sys.argv = ['isplab'] + sys.argv[1:]; main()")
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        r = subprocess.run([sys.executable, "-c", code, "develop", str(src), str(frame), "-o",
                            str(out), "--jobs", str(jobs), *flags],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "rawpy is being used" not in r.stderr and "Warning" not in r.stderr
        outs[jobs] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(outs[1]) == ["a.png", "b.png", "frame.png"]
    assert outs[1] == outs[2]


def test_prestart_forks_workers_only_before_rawpy_is_loaded(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from isplab.commands import _batch\n"
            "_batch.prestart(object(), 2, [sys.argv[1]])\n"
            "print(_batch._PRESTARTED is not None)\n"
            "import rawpy; _batch._PRESTARTED = None\n"
            "_batch.prestart(object(), 2, [sys.argv[1]])\n"
            "print(_batch._PRESTARTED is not None)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.split() == ["True", "False"], r.stderr
