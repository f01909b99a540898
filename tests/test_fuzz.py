"""A seeded CI subset of benchmarks/fuzz_readers.py (issue 21): mutants of the real raws and
crafted hostile files through ``info`` and ``develop``; no traceback, no run over 60 s, every
failure one line naming the file, no C-library chatter on stderr. (The benchmark forks a fresh
process per input to measure its memory; here each runs in process.)"""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import DATA, ROOT

_spec = importlib.util.spec_from_file_location("fuzz_readers",
                                               ROOT / "benchmarks" / "fuzz_readers.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CORPUS = fuzz.corpus(DATA, 60, seed=7) if DATA.is_dir() else []


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[c[0] for c in CORPUS])
def test_hostile_input_gets_one_clear_line(tmp_path, index):
    name, data, flags = CORPUS[index]
    path = tmp_path / name
    path.write_bytes(data)
    for verb in ("info", "develop"):
        # in process: this session has run torch, and a fork would inherit OpenMP's threads
        result = fuzz.run_in_process(path, verb, flags, tmp_path / "out")
        broken = fuzz.check(result, len(data))
        assert not broken, f"{verb} {name}: {broken}\n{result.get('output')}"
