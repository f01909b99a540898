"""CFA-aware (Bayer-preserving) augmentation and CFA unification.

Flipping or transposing a Bayer mosaic changes its pattern: the horizontal mirror of an
``RGGB`` mosaic of even width starts with ``GR``. Liu et al. 2019 ("Learning raw image
denoising with Bayer pattern unification and Bayer preserving augmentation", CVPRW) keep the
pattern by moving the crop window by one pixel before the transform, so that the pixel that
lands in the top-left corner has the colour the pattern wants there. This module does that:

- :func:`bayer_augment` takes a mosaic **one pixel larger** than the output in each direction
  (``(h + 1) x (w + 1)`` for an ``h x w`` output; any larger size works, the extra is not
  used), chooses the window offset ``(dy, dx) in {0, 1}^2`` that keeps the pattern, crops and
  transforms. A full-resolution target aligned pixel for pixel with the mosaic (same ``H x W``)
  gets the same window and transform, so it moves with the raw.
- :func:`bayer_augment_packed` does the same for the half-resolution packed form
  (``4 x h x w``, R, G1, G2, B) paired with a target at ``2h x 2w``: the one-pixel shift is
  half a packed pixel, so the packed raw is unpacked, augmented as a mosaic and packed again.
  Its crop window is therefore enlarged by **one packed pixel** (two mosaic/target pixels):
  a ``4 x (h + 1) x (w + 1)`` packed input with a ``3 x 2(h + 1) x 2(w + 1)`` target gives a
  ``4 x h x w`` packed output and a ``3 x 2h x 2w`` target. (Transposing swaps the two greens
  of the packed form: G1 is by definition the green on the red row.)
- :func:`unify_cfa` crops a mosaic of any Bayer pattern to another pattern (Liu et al.'s
  "Bayer pattern unification" by cropping): one row and/or column is removed at the start,
  and one at the end so the size stays even.

Transforms are given as three flags applied in this order: ``transpose`` (swap height and
width), then ``hflip`` (mirror left-right), then ``vflip`` (mirror top-bottom). These span the
8 symmetries of the square; :func:`rot90_flags` gives the flags of a 90-degree rotation.

Shapes: a mosaic is ``... x H x W`` (``H x W``, ``1 x H x W`` or ``N x 1 x H x W``); a target
is ``... x C x H x W`` with the same ``H x W``. Values and colour space are untouched.
"""

from __future__ import annotations

import torch

from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, pack, unpack

_FLAG_NAMES = ("hflip", "vflip", "transpose")


def _layout(cfa: str) -> list[list[str]]:
    p = check_pattern(cfa)
    return [[p[0], p[1]], [p[2], p[3]]]


def transform(x: torch.Tensor, hflip: bool = False, vflip: bool = False,
              transpose: bool = False) -> torch.Tensor:
    """Apply ``transpose`` then ``hflip`` then ``vflip`` to the last two dimensions of ``x``.

    A pure geometric transform (no Bayer handling): use it for RGB images.
    """
    if transpose:
        x = x.transpose(-1, -2)
    dims = [d for d, on in ((-1, hflip), (-2, vflip)) if on]
    if dims:
        x = torch.flip(x, dims)
    return x.contiguous()


def rot90_flags(k: int) -> dict[str, bool]:
    """Flags for a counter-clockwise rotation by ``k * 90`` degrees (as ``torch.rot90``)."""
    k = int(k) % 4
    return [dict(hflip=False, vflip=False, transpose=False),
            dict(hflip=False, vflip=True, transpose=True),
            dict(hflip=True, vflip=True, transpose=False),
            dict(hflip=True, vflip=False, transpose=True)][k]


def random_flags(generator: torch.Generator | None = None) -> dict[str, bool]:
    """One of the 8 square symmetries, uniformly, as ``hflip``/``vflip``/``transpose`` flags.

    Draws one integer from ``generator`` (so the caller's random stream advances by a fixed
    amount whatever the outcome).
    """
    code = int(torch.randint(0, 8, (1,), generator=generator))
    return {name: bool(code >> i & 1) for i, name in enumerate(_FLAG_NAMES)}


def bayer_offset(cfa: str, hflip: bool = False, vflip: bool = False, transpose: bool = False,
                 height: int = 2, width: int = 2) -> tuple[int, int]:
    """Window offset ``(dy, dx)`` in ``{0, 1}^2`` that keeps ``cfa`` through the transform.

    ``height x width`` is the size of the (pre-transform) window taken from a mosaic whose
    top-left pixel has pattern ``cfa``; only the parities matter. Found by checking the
    colour that lands at each position of the output's 2x2 block.
    """
    lay = want = _layout(cfa)
    for dy in (0, 1):
        for dx in (0, 1):
            ok = True
            for oy in (0, 1):
                for ox in (0, 1):
                    # output (oy, ox) <- window position before vflip/hflip/transpose
                    wy, wx = oy, ox
                    h_out, w_out = (width, height) if transpose else (height, width)
                    if vflip:
                        wy = h_out - 1 - wy
                    if hflip:
                        wx = w_out - 1 - wx
                    if transpose:
                        wy, wx = wx, wy
                    if lay[(wy + dy) % 2][(wx + dx) % 2] != want[oy][ox]:
                        ok = False
            if ok:
                return dy, dx
    raise AssertionError("unreachable: a one-pixel shift always restores a Bayer pattern")


def bayer_augment(
    mosaic: torch.Tensor,
    cfa: str,
    target: torch.Tensor | None = None,
    hflip: bool = False,
    vflip: bool = False,
    transpose: bool = False,
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip/transpose a Bayer mosaic keeping its pattern (crop window shifted by <= 1 pixel).

    Args:
        mosaic: ``... x H x W`` mosaic whose top-left pixel has pattern ``cfa``.
        cfa: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``; the output has the same pattern.
        target: optional ``... x C x H x W`` image aligned pixel for pixel with the mosaic
            (e.g. the sRGB ground truth); it gets the same crop and transform.
        hflip, vflip, transpose: the transform (applied transpose, hflip, vflip).
        size: ``(h, w)`` of the window before the transform, both even; default the largest
            even size with a one-pixel margin, ``(H - 1, W - 1)`` rounded down to even. The
            output is ``h x w`` (``w x h`` when transposed).

    Returns:
        ``(mosaic, target)``: the augmented mosaic with pattern ``cfa`` and the augmented
        target (``None`` when no target was given). For the identity the window is the
        top-left ``h x w`` block, unchanged.
    """
    if mosaic.ndim < 2:
        raise InvalidInputError(f"expected a mosaic ... x H x W, got {tuple(mosaic.shape)}")
    big_h, big_w = mosaic.shape[-2:]
    if target is not None and tuple(target.shape[-2:]) != (big_h, big_w):
        raise InvalidInputError(
            f"target {tuple(target.shape)} is not aligned with the mosaic {tuple(mosaic.shape)}"
            " (same height and width needed; use bayer_augment_packed for packed raw)")
    if size is None:
        h, w = (big_h - 1) // 2 * 2, (big_w - 1) // 2 * 2
    else:
        h, w = int(size[0]), int(size[1])
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise InvalidInputError(f"the output window must be even and >= 2, got {h}x{w}")
    if big_h < h + 1 or big_w < w + 1:
        raise InvalidInputError(
            f"mosaic {big_h}x{big_w} too small for a {h}x{w} Bayer-preserving window: it needs"
            " a one-pixel margin (h + 1) x (w + 1)")
    dy, dx = bayer_offset(cfa, hflip, vflip, transpose, h, w)
    out = transform(mosaic[..., dy:dy + h, dx:dx + w], hflip, vflip, transpose)
    tgt = None
    if target is not None:
        tgt = transform(target[..., dy:dy + h, dx:dx + w], hflip, vflip, transpose)
    return out, tgt


def bayer_augment_packed(
    packed: torch.Tensor,
    target: torch.Tensor | None = None,
    hflip: bool = False,
    vflip: bool = False,
    transpose: bool = False,
    cfa: str = "RGGB",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bayer-preserving flip/transpose of packed raw ``[N x] 4 x (h+1) x (w+1)`` (R, G1, G2, B).

    The packed raw is unpacked to the mosaic it was packed from (pattern ``cfa``: where each
    channel sits inside the 2x2 block, i.e. relative to the target's pixels), augmented with
    :func:`bayer_augment` (window ``2h x 2w``) and packed again; ``target``
    (``[N x] C x 2(h+1) x 2(w+1)``, the full-resolution image of the same scene) gets the same
    window and transform. With the right ``cfa`` the result is what packing the transformed
    scene with that sensor would give; a wrong one still gives a valid packed raw, but its
    samples move by up to one target pixel relative to the target.

    Returns:
        ``(packed, target)``: ``[N x] 4 x h x w`` (``w x h`` when transposed) and the target
        ``[N x] C x 2h x 2w`` (or None).
    """
    squeeze = packed.ndim == 3
    p4 = packed[None] if squeeze else packed
    if p4.ndim != 4 or p4.shape[1] != 4:
        raise InvalidInputError(f"expected packed raw [N x] 4 x h x w, got {tuple(packed.shape)}")
    hp, wp = p4.shape[-2:]
    if hp < 2 or wp < 2:
        raise InvalidInputError(f"packed raw {hp}x{wp} too small (needs a one-pixel margin)")
    t4 = None
    if target is not None:
        t4 = target[None] if target.ndim == 3 else target
        if tuple(t4.shape[-2:]) != (2 * hp, 2 * wp):
            raise InvalidInputError(
                f"target {tuple(target.shape)} must be twice the packed raw {tuple(packed.shape)}")
    m = unpack(p4, cfa)
    m, t4 = bayer_augment(m, cfa, t4, hflip, vflip, transpose, size=(2 * hp - 2, 2 * wp - 2))
    out = pack(m, cfa)
    if squeeze:
        out = out[0]
        t4 = None if t4 is None else t4[0]
    return out, t4


def cfa_shift(from_cfa: str, to_cfa: str = "RGGB") -> tuple[int, int]:
    """Offset ``(dy, dx)`` at which a ``from_cfa`` mosaic starts a ``to_cfa`` pattern."""
    src, dst = _layout(from_cfa), _layout(to_cfa)
    for dy in (0, 1):
        for dx in (0, 1):
            if all(src[(y + dy) % 2][(x + dx) % 2] == dst[y][x] for y in (0, 1) for x in (0, 1)):
                return dy, dx
    raise AssertionError("unreachable: the four Bayer patterns are shifts of each other")


def unify_cfa(
    mosaic: torch.Tensor,
    from_cfa: str,
    to_cfa: str = "RGGB",
    target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Crop a ``from_cfa`` mosaic ``... x H x W`` so it has pattern ``to_cfa``.

    The crop starts at :func:`cfa_shift` ``(dy, dx)``; where a shift is needed one row/column
    is removed at the start and one at the end, so an even size stays even (``H - 2`` rows
    when ``dy = 1``). ``target`` (aligned, ``... x C x H x W``) gets the same crop.

    Returns:
        ``(mosaic, target)`` (target None when not given).
    """
    dy, dx = cfa_shift(from_cfa, to_cfa)
    h, w = mosaic.shape[-2:]
    h2 = (h - dy) // 2 * 2
    w2 = (w - dx) // 2 * 2
    if h2 < 2 or w2 < 2:
        raise InvalidInputError(f"mosaic {h}x{w} too small to unify {from_cfa} to {to_cfa}")
    if target is not None and tuple(target.shape[-2:]) != (h, w):
        raise InvalidInputError(
            f"target {tuple(target.shape)} is not aligned with the mosaic {tuple(mosaic.shape)}")
    out = mosaic[..., dy:dy + h2, dx:dx + w2]
    tgt = None if target is None else target[..., dy:dy + h2, dx:dx + w2]
    return out, tgt


__all__ = [
    "bayer_augment", "bayer_augment_packed", "bayer_offset", "cfa_shift", "random_flags",
    "rot90_flags", "transform", "unify_cfa",
]
