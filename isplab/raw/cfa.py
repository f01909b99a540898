"""Bayer colour filter arrays: pattern names, pack/unpack and mosaic.

A pattern is named by its top-left 2x2 block read row by row: ``RGGB``, ``BGGR``,
``GRBG``, ``GBRG``. The packed form is always 4 channels in **R, G1, G2, B** order at half
resolution, whatever the sensor's pattern: G1 is the green that shares a row with red, G2
the green that shares a row with blue. Each packed pixel is one 2x2 block of the mosaic
(no phase shift), so ``unpack(pack(m, p), p) == m`` exactly for even sizes.

Odd sizes: :func:`pack` drops the last row and/or column (a 2x2 block needs both), so
``unpack(pack(m))`` returns the mosaic cropped to even height and width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from isplab.errors import InvalidInputError, UnsupportedCFAError

if TYPE_CHECKING:  # torch is imported by the functions that make tensors: reading stays light
    import torch

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")

#: Packed channel order, the same for every pattern.
PACKED_ORDER = ("R", "G1", "G2", "B")


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` upper-cased if it is one of the four Bayer patterns, else raise."""
    p = str(pattern).upper()
    if p not in BAYER_PATTERNS:
        raise UnsupportedCFAError(
            f"unsupported CFA pattern {pattern!r}: isplab handles the 2x2 Bayer patterns "
            f"{', '.join(BAYER_PATTERNS)} (X-Trans and non-Bayer sensors are not supported)"
        )
    return p


def packed_offsets(pattern: str) -> tuple[tuple[int, int], ...]:
    """(row, col) offsets inside the 2x2 block of R, G1, G2, B for ``pattern``.

    >>> packed_offsets("BGGR")
    ((1, 1), (1, 0), (0, 1), (0, 0))
    """
    p = check_pattern(pattern)
    pos = {(0, 0): p[0], (0, 1): p[1], (1, 0): p[2], (1, 1): p[3]}
    r = next(k for k, v in pos.items() if v == "R")
    b = next(k for k, v in pos.items() if v == "B")
    greens = [k for k, v in pos.items() if v == "G"]
    g1 = next(k for k in greens if k[0] == r[0])
    g2 = next(k for k in greens if k[0] == b[0])
    return (r, g1, g2, b)


def channel_index_map(pattern: str) -> np.ndarray:
    """2x2 array giving, for each position of the block, its packed channel (0=R..3=B)."""
    out = np.zeros((2, 2), dtype=np.int64)
    for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
        out[dy, dx] = ch
    return out


def color_masks(pattern: str, height: int, width: int, device=None, dtype=None):
    """Masks 1x3xHxW (R, G, B) that are 1 where the mosaic samples that colour."""
    import torch

    masks = torch.zeros(1, 3, height, width, device=device, dtype=dtype or torch.float32)
    rgb_of_packed = (0, 1, 1, 2)
    for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
        masks[0, rgb_of_packed[ch], dy::2, dx::2] = 1
    return masks


def check_mosaic(mosaic: torch.Tensor) -> None:
    """Raise InvalidInputError unless ``mosaic`` is ``N x 1 x H x W`` with H, W >= 2."""
    import torch

    if not isinstance(mosaic, torch.Tensor):
        raise InvalidInputError(f"expected a torch.Tensor mosaic, got {type(mosaic).__name__}")
    if mosaic.ndim != 4 or mosaic.shape[1] != 1:
        raise InvalidInputError(
            f"expected a mosaic of shape N x 1 x H x W, got {tuple(mosaic.shape)}"
        )
    if mosaic.shape[-2] < 2 or mosaic.shape[-1] < 2:
        raise InvalidInputError(f"mosaic too small to hold a 2x2 CFA block: {tuple(mosaic.shape)}")


def pack(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Bayer mosaic ``N x 1 x H x W`` -> packed ``N x 4 x H//2 x W//2`` in R, G1, G2, B order.

    An odd last row/column is dropped. Values are copied unchanged.
    """
    import torch

    check_mosaic(mosaic)
    h, w = mosaic.shape[-2] // 2 * 2, mosaic.shape[-1] // 2 * 2
    m = mosaic[..., :h, :w]
    return torch.cat([m[:, :, dy::2, dx::2] for dy, dx in packed_offsets(pattern)], dim=1)


def unpack(packed: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
    """Packed ``N x 4 x h x w`` (R, G1, G2, B) -> mosaic ``N x 1 x 2h x 2w`` with ``pattern``."""
    import torch

    if not isinstance(packed, torch.Tensor) or packed.ndim != 4 or packed.shape[1] != 4:
        shape = tuple(packed.shape) if hasattr(packed, "shape") else type(packed).__name__
        raise InvalidInputError(f"expected packed raw of shape N x 4 x h x w, got {shape}")
    n, _, h, w = packed.shape
    out = packed.new_empty(n, 1, 2 * h, 2 * w)
    for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
        out[:, 0, dy::2, dx::2] = packed[:, ch]
    return out


def mosaic(rgb: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
    """Sample an RGB image ``N x 3 x H x W`` through a Bayer CFA -> mosaic ``N x 1 x H x W``.

    Each pixel keeps the one colour the CFA passes there; the image's colour space is kept
    (mosaic linear RGB to simulate a sensor).
    """
    import torch

    if not isinstance(rgb, torch.Tensor) or rgb.ndim != 4 or rgb.shape[1] != 3:
        shape = tuple(rgb.shape) if hasattr(rgb, "shape") else type(rgb).__name__
        raise InvalidInputError(f"expected RGB of shape N x 3 x H x W, got {shape}")
    out = rgb.new_empty(rgb.shape[0], 1, rgb.shape[2], rgb.shape[3])
    rgb_of_packed = (0, 1, 1, 2)
    for ch, (dy, dx) in enumerate(packed_offsets(pattern)):
        out[:, 0, dy::2, dx::2] = rgb[:, rgb_of_packed[ch], dy::2, dx::2]
    return out


def pattern_from_rawpy(raw_pattern: np.ndarray, color_desc: bytes | str) -> str:
    """Name the 2x2 pattern LibRaw reports (``raw_pattern`` indexes ``color_desc``)."""
    desc = color_desc.decode() if isinstance(color_desc, bytes) else str(color_desc)
    rp = np.asarray(raw_pattern)
    if rp.shape != (2, 2):
        raise UnsupportedCFAError(
            f"the CFA repeats every {rp.shape[0]}x{rp.shape[1]} pixels (X-Trans or similar); "
            "only 2x2 Bayer patterns are supported"
        )
    try:
        letters = "".join(desc[int(i)] for i in rp.reshape(-1))
    except IndexError as exc:
        raise UnsupportedCFAError(f"CFA pattern indexes outside colour list {desc!r}") from exc
    return check_pattern(letters)
