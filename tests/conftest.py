"""Shared fixtures: paths to the real data in ../shared/data and small synthetic raws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

CANON_DNG = DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng"
BGGR_12BIT = DATA / "raw_infiniteisp_colorchecker_1920x1080_12bit" / \
    "ColorCheckerRAW_1920x1080_12bit_BGGR.raw"
RGGB_10BIT = DATA / "raw_openisp_testchart_1920x1080" / "test.RAW"
VIVO_NPY = DATA / "raw_rawir_vivo_x90_npy" / "x90_3_4.npy"
KODAK_KDC = DATA / "raw_kdc_kodak_dc50" / "RAW_KODAK_DC50.KDC"


def need(path: Path) -> Path:
    """Skip (with the reason) when a real-data file is not on this machine."""
    if not path.exists():
        pytest.skip(f"real data not found: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _fresh_isplab_logger():
    """The CLI configures the ``isplab`` logger (level, handler, no propagation) per command;
    reset it after each test so one test's ``-q`` never hides another's warnings."""
    import logging

    yield
    logger = logging.getLogger("isplab")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
