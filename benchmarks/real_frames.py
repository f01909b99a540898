"""The real raw frames of ../shared/data and how a user reads them (shared by the benchmarks).

Each :class:`Frame`: the file, the reader flags it needs (headerless size, bits and CFA; the
white level of the packed npy), whether LibRaw reads it and whether a ColorChecker is in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Frame:
    path: Path
    flags: tuple[str, ...] = ()
    libraw: bool = False
    chart: bool = False

    @property
    def wb_flags(self) -> tuple[str, ...]:
        """The same white balance for every pipeline: the file's where it has one (LibRaw
        formats), else ``--wb auto``."""
        return () if self.libraw else ("--wb", "auto")


FRAMES = {
    "canon550d_dng": Frame(DATA / "raw_dng_canon550d_colorchart" / "colorchart.dng",
                           libraw=True, chart=True),
    "infiniteisp_12bit": Frame(DATA / "raw_infiniteisp_colorchecker_1920x1080_12bit"
                               / "ColorCheckerRAW_1920x1080_12bit_BGGR.raw", chart=True),
    "openisp_10bit": Frame(DATA / "raw_openisp_testchart_1920x1080" / "test.RAW",
                           ("--width", "1920", "--height", "1080", "--bits", "10", "--cfa",
                            "RGGB")),
    "vivo_x90_npy": Frame(DATA / "raw_rawir_vivo_x90_npy" / "x90_3_4.npy",
                          ("--white-level", "4095")),
    "kodak_dc50_kdc": Frame(DATA / "raw_kdc_kodak_dc50" / "RAW_KODAK_DC50.KDC", libraw=True),
}
