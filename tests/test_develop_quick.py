"""The console script's quick parser of ``isplab develop`` (isplab.commands._develop.quick,
issue 19: start-up time) gives develop() what typer gives it, and leaves to typer every
command line it does not take as typer would."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from isplab.cli import app
from isplab.commands import _develop
from isplab.commands.develop import command
from tests.conftest import ROOT

runner = CliRunner()


def _click_develop():
    return get_command(app).commands["develop"]


def test_the_quick_table_is_the_typer_command():
    """Every option of the typer command, by every name, with its kind; the same defaults."""
    table = _develop.options()
    seen = set()
    for param in _click_develop().params:
        if param.param_type_name == "argument":
            assert param.name == "inputs" and param.nargs == -1
            continue
        names = [*param.opts, *param.secondary_opts]
        assert not param.secondary_opts, param.name  # no --x/--no-x pairs in the table
        for name in names:
            assert table[name][0] == param.name, name
            kind = table[name][1]
            assert (kind == "flag") == param.is_flag, name
            assert kind in {"flag", "int", "float", "str", "path", *_develop._ENUMS}, name
            seen.add(name)
    assert seen == set(table)
    quick = inspect.signature(_develop.develop).parameters
    typed = inspect.signature(command).parameters
    assert list(quick) == list(typed)
    assert {k: p.default for k, p in quick.items()} == {k: p.default for k, p in typed.items()}


def _typer_kwargs(monkeypatch, argv: list[str]) -> dict:
    """The arguments typer passes to develop() for ``isplab develop ARGV``."""
    from isplab.commands import develop as verb

    got = {}

    def record(**kwargs):
        got.update(kwargs)
        return 0

    monkeypatch.setattr(verb, "develop", record)
    res = runner.invoke(app, ["develop", *argv])
    assert res.exit_code == 0, res.output
    return got


def _quick_kwargs(argv: list[str]) -> dict:
    kwargs = _develop.parse(argv)
    assert kwargs is not None, argv
    bound = inspect.signature(_develop.develop).bind(**kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


@pytest.mark.parametrize("argv", [
    ["a.dng", "-o", "out"],
    ["a.dng", "b.nef", "dir", "--output", "out", "-q", "--overwrite", "--debug"],
    ["--output=out", "a.dng", "--jobs", "3", "--shard", "2/4", "--max-megapixels", "50"],
    ["a.dng", "-o", "o", "--output-bps", "16", "--format", "tiff", "--tone", "filmic",
     "--gamma", "bt709", "--bright", "1.3", "--wb", "1.8,1,1.4", "--demosaic", "menon2007"],
    ["a.dng", "-o", "o", "--wb", "none", "--no-auto-bright", "--half-size", "--denoise", ".5",
     "--bright=2.", "--sample", "-j", "1"],
    ["a.raw", "-o", "o", "--width", "64", "--height", "48", "--bits", "12", "--byte-order", "big",
     "--cfa", "grbg", "--black-level", "64,64,64,64", "--white-level", "4095"],
    ["a.dng", "-o", "o", "--isp", "learned", "--weights", "w.pt", "--noise", "1e-4,2e-6",
     "--tile", "256", "--overlap", "16", "--device", "cpu", "--backend", "torch", "--dtype",
     "float32", "--profile", "p.json", "--look", "l.json", "--onnx", "m.onnx"],
    ["-o", "o", "--sample", "--bright", "1E-1", "--denoise", "0"],
])
def test_quick_and_typer_give_develop_the_same_arguments(argv, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    typed = _typer_kwargs(monkeypatch, argv)
    typed["inputs"] = list(typed["inputs"] or []) or None
    assert _quick_kwargs(argv) == typed
    for name, value in _quick_kwargs(argv).items():
        assert type(value) is type(typed[name]), name


@pytest.mark.parametrize("argv", [
    ["a.dng", "-o", "o", "--help"], ["--help"], [], ["a.dng"],  # help, no -o
    ["a.dng", "-o", "o", "--nope"], ["a.dng", "-qo", "o"], ["a.dng", "-oo"],
    ["a.dng", "-o", "o", "--", "b.dng"], ["-", "-o", "o"], ["a.dng", "-o"],
    ["a.dng", "-o", "o", "-q", "-q"], ["a.dng", "-o", "o", "-o", "p"],
    ["a.dng", "-o", "o", "--bright", "-1"], ["a.dng", "-o", "o", "--bright", "nan"],
    ["a.dng", "-o", "o", "--bright", "1_0"], ["a.dng", "-o", "o", "--output-bps", "8.0"],
    ["a.dng", "-o", "o", "--output-bps", "+8"], ["a.dng", "-o", "o", "--jobs", "0"],
    ["a.dng", "-o", "o", "--demosaic", "Menon2007"], ["a.dng", "-o", "o", "--quiet=1"],
    ["a.dng", "-o", ""], ["a.dng", "-o=o"], ["a.dng", "-o", "o", "--format", "PNG"],
])
def test_quick_leaves_the_rest_to_typer(argv):
    assert _develop.parse(argv) is None


def _run(code: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    res = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "COLUMNS": "100",
                                         "PYTHONPATH": str(ROOT)})
    return res.returncode, res.stdout, res.stderr


_QUICK = "import sys; sys.argv[0] = 'isplab'; from isplab.cli import main; main()"
_TYPER = "import sys; sys.argv[0] = 'isplab'; from isplab.cli import app; app()"


def test_quick_and_typer_runs_read_the_same(tmp_path):
    """The same messages, exit codes and files, through the quick parser and through typer:
    a batch with a bad file, quiet and not, a bad value (typer's message either way) and
    help."""
    import numpy as np

    from isplab.raw import RawImage, write_dng

    raw = RawImage(np.random.default_rng(0).random((64, 96), dtype=np.float32), cfa="RGGB",
                   wb_gains=(2.0, 1.0, 1.5), white_level=4095, black_level=(64,) * 4,
                   bit_depth=12)
    write_dng(tmp_path / "a.dng", raw)
    (tmp_path / "bad.dng").write_bytes(b"not a raw")
    results = {}
    for side, code in (("quick", _QUICK), ("typer", _TYPER)):
        # one job: with two, the order of the two files' messages is the workers' race
        for i, argv in enumerate([["a.dng", "bad.dng", "-o", f"{side}0", "--jobs", "1"],
                                  ["a.dng", "bad.dng", "-o", f"{side}1", "-q", "--jobs", "1"],
                                  ["a.dng", "-o", f"{side}2", "--bright", "0"],
                                  ["a.dng", "-o", f"{side}3", "--help"]]):
            rc, out, err = _run(code, "develop", *argv, cwd=tmp_path)
            folder = tmp_path / argv[argv.index("-o") + 1]
            files = sorted((p.name, p.read_bytes()) for p in folder.iterdir()) \
                if folder.is_dir() else None
            results[side, i] = (rc, out.replace(side, "SIDE"), err.replace(side, "SIDE"), files)
    for i in range(4):
        assert results["quick", i] == results["typer", i], i
    assert results["quick", 0][0] == 1 and results["quick", 2][0] == 2
    assert "Invalid value" in results["quick", 2][2]


def test_the_noise_profile_precheck_agrees_with_tifffile(tmp_path, monkeypatch):
    """dng_noise_profile skips tifffile when the first IFD has neither NoiseProfile nor
    SubIFDs: the same answer as tifffile's on DNGs with and without the tag, TIFFs, big-endian
    TIFF, truncated and non-TIFF files."""
    import numpy as np
    import tifffile

    from isplab.raw import RawImage, fileinfo, write_dng
    from tests.conftest import CANON_DNG

    raw = RawImage(np.random.default_rng(0).random((32, 48), dtype=np.float32), cfa="RGGB",
                   white_level=4095, black_level=(64,) * 4, bit_depth=12)
    files = [write_dng(tmp_path / "plain.dng", raw)]
    raw.noise_profile = (2e-4, 3e-6)
    files.append(write_dng(tmp_path / "noisy.dng", raw))
    for name, data in (("cut.dng", files[1].read_bytes()[:60]), ("junk.dng", b"junk" * 9),
                       ("empty.dng", b""), ("ifd.dng", files[1].read_bytes()[:8])):
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    tifffile.imwrite(tmp_path / "be.tif", np.zeros((4, 4), np.uint16), byteorder=">")
    with tifffile.TiffWriter(tmp_path / "sub.tif") as tif:  # the tag in a SubIFD only
        tif.write(np.zeros((4, 4), np.uint16), subifds=1)
        tif.write(np.zeros((2, 2), np.uint16), extratags=[(51041, "d", 2, (5e-3, 5e-5), True)])
    files += [tmp_path / "be.tif", tmp_path / "sub.tif"]
    if CANON_DNG.exists():
        files.append(CANON_DNG)
    quick = [fileinfo.dng_noise_profile(f) for f in files]
    monkeypatch.setattr(fileinfo, "_first_ifd_tags", lambda path: None)
    assert quick == [fileinfo.dng_noise_profile(f) for f in files]
    assert quick[1] == pytest.approx((2e-4, 3e-6)) and quick[0] is None
    assert quick[files.index(tmp_path / "sub.tif")] == pytest.approx((5e-3, 5e-5))


_MODULES = """
import sys
from isplab.cli import main
sys.argv = ["isplab", "develop", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(" ".join(sorted(sys.modules)))
"""


def test_a_quiet_png_develop_starts_light(tmp_path):
    """``isplab develop RAW -o DIR -q`` (a DNG without NoiseProfile, 8-bit PNG, no shard)
    loads no CLI framework (typer, click, pydantic, rich), no tifffile, no hashlib and no
    process pool: what the 2 MP whole-process benchmark gained (docs/benchmarks.md)."""
    import numpy as np

    from isplab.raw import RawImage, write_dng

    raw = RawImage(np.random.default_rng(0).random((64, 96), dtype=np.float32), cfa="RGGB",
                   wb_gains=(2.0, 1.0, 1.5), white_level=4095, black_level=(64,) * 4,
                   bit_depth=12)
    dng = write_dng(tmp_path / "a.dng", raw)
    res = subprocess.run([sys.executable, "-c", _MODULES, str(dng), "-o", str(tmp_path / "o"),
                          "-q"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    loaded = set(res.stdout.split())
    heavy = {m for m in loaded if m.split(".")[0] in (
        "typer", "click", "pydantic", "pydantic_core", "rich", "tifffile", "hashlib",
        "torch")} | (loaded & {"concurrent.futures.process", "isplab.commands.develop"})
    assert not heavy, sorted(heavy)
    assert (tmp_path / "o" / "a.png").is_file()
