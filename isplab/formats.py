"""File kinds isplab reads and writes, by suffix: one definition for every module.

- :data:`CAMERA_RAW_SUFFIXES`: raws LibRaw reads (DNG and the camera formats);
- :data:`HEADERLESS_SUFFIXES`: headerless sensor dumps (size, bits and CFA come from flags or
  the file name);
- :data:`ARRAY_SUFFIXES`: packed ``h x w x 4`` arrays;
- :data:`MOSAIC_IMAGE_SUFFIXES`: single-channel mosaics / 4-channel packed raws stored as
  images (read as raw when named explicitly; a folder scan for raws skips them, since a
  folder of developed photos holds the same suffixes);
- :data:`RAW_SCAN_SUFFIXES`: what a folder given to ``isplab develop`` is scanned for;
- :data:`IMAGE_SUFFIXES`: RGB photos (training photos, evaluation images, enhance inputs);
- :data:`OUTPUT_FORMATS`: ``--format`` name -> suffix of developed / enhanced images.

Pure data: importing this module costs nothing.
"""

from __future__ import annotations

CAMERA_RAW_SUFFIXES = frozenset({
    ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".orf",
    ".rw2", ".rwl", ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".fff", ".erf", ".mef",
    ".mos", ".iiq", ".x3f",
})
HEADERLESS_SUFFIXES = frozenset({".raw", ".bin"})
ARRAY_SUFFIXES = frozenset({".npy"})
MOSAIC_IMAGE_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".pgm"})
RAW_SCAN_SUFFIXES = CAMERA_RAW_SUFFIXES | HEADERLESS_SUFFIXES | ARRAY_SUFFIXES
#: every suffix isplab may read as raw when a file is named explicitly
RAW_SUFFIXES = RAW_SCAN_SUFFIXES | MOSAIC_IMAGE_SUFFIXES
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".webp"})
OUTPUT_FORMATS = {"png": ".png", "tiff": ".tiff", "jpg": ".jpg"}


def is_headerless(path) -> bool:
    """True for a headerless sensor dump (by suffix)."""
    from pathlib import Path

    return Path(path).suffix.lower() in HEADERLESS_SUFFIXES
