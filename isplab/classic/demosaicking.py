"""Demosaicing: Bayer mosaic -> RGB, in torch, batched, for all four Bayer patterns.

Borders use mirror padding (``d c b | a b c d``), which keeps the CFA phase; libraries that
pad symmetrically (``b a | a b``), such as colour-demosaicing, put the wrong colour at the
edge, so results agree with them everywhere except the outer 2 pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from isplab.classic._checks import check_image
from isplab.raw.cfa import check_mosaic, check_pattern, color_masks, packed_offsets

DEMOSAIC_METHODS = ("bilinear", "malvar2004", "menon2007")

# Malvar, He, Cutler (2004), "High-quality linear interpolation for demosaicing of
# Bayer-patterned color images", ICASSP. Filters x 8.
_M_G_AT_RB = [
    [0, 0, -1, 0, 0],
    [0, 0, 2, 0, 0],
    [-1, 2, 4, 2, -1],
    [0, 0, 2, 0, 0],
    [0, 0, -1, 0, 0],
]
# R (or B) at a green pixel whose row holds R (or B): horizontal neighbours.
_M_ROW = [
    [0, 0, 0.5, 0, 0],
    [0, -1, 0, -1, 0],
    [-1, 4, 5, 4, -1],
    [0, -1, 0, -1, 0],
    [0, 0, 0.5, 0, 0],
]
# R at B (or B at R): diagonal neighbours.
_M_DIAG = [
    [0, 0, -1.5, 0, 0],
    [0, 2, 0, 2, 0],
    [-1.5, 0, 6, 0, -1.5],
    [0, 2, 0, 2, 0],
    [0, 0, -1.5, 0, 0],
]
_MALVAR = (
    torch.stack(
        [
            torch.tensor(_M_G_AT_RB, dtype=torch.float32),
            torch.tensor(_M_ROW, dtype=torch.float32),
            torch.tensor(_M_ROW, dtype=torch.float32).T,
            torch.tensor(_M_DIAG, dtype=torch.float32),
        ]
    )[:, None]
    / 8
)


def _check(mosaic: torch.Tensor) -> None:
    check_image(mosaic, 1, "mosaic")
    check_mosaic(mosaic)  # at least one 2x2 CFA block


def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    if x.shape[-1] <= p or x.shape[-2] <= p:
        return F.pad(x, (p, p, p, p), mode="replicate")
    return F.pad(x, (p, p, p, p), mode="reflect")


def demosaic_bilinear(mosaic: torch.Tensor, cfa: str = "RGGB") -> torch.Tensor:
    """Bilinear demosaicing: each missing sample is the mean of its nearest same-colour ones.

    Args:
        mosaic: ``N x 1 x H x W`` Bayer mosaic (linear).
        cfa: its pattern.

    Returns:
        ``N x 3 x H x W`` RGB in the mosaic's colour space, not clipped.
    """
    _check(mosaic)
    if mosaic.shape[-2] % 2 == 0 and mosaic.shape[-1] % 2 == 0:
        return _bilinear_packed(mosaic, check_pattern(cfa))
    masks = color_masks(cfa, mosaic.shape[-2], mosaic.shape[-1], mosaic.device, mosaic.dtype)
    p = _pad(mosaic * masks, 1)  # N x 3 x (H+2) x (W+2), zeros where a colour is missing
    # R, B: [1 2 1]^T [1 2 1] / 4 (separable); G: the cross [0 1 0; 1 4 1; 0 1 0] / 4,
    # written as shifted adds (much faster than a grouped conv2d on CPU).
    rb = p[:, 0::2]
    v = rb[:, :, :-2] + 2 * rb[:, :, 1:-1] + rb[:, :, 2:]
    rb = (v[..., :-2] + 2 * v[..., 1:-1] + v[..., 2:]) * 0.25
    g = p[:, 1:2]
    g = (g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:]) * 0.25 \
        + g[..., 1:-1, 1:-1]
    return torch.cat([rb[:, :1], g, rb[:, 1:]], dim=1)


def _bilinear_packed(mosaic: torch.Tensor, cfa: str) -> torch.Tensor:
    """Bilinear demosaicing computed per CFA site on the half-resolution planes (even sizes).

    For the site at block offset (sy, sx), the nearest samples of a plane at (cy, cx) lie at
    block offsets di in {0, sy - cy} and dj in {0, sx - cx}; their mean is the bilinear
    value. Replicate padding of the planes equals mirror padding of the mosaic.
    """
    n, _, h2, w2 = mosaic.shape
    h, w = h2 // 2, w2 // 2
    offsets = packed_offsets(cfa)  # R, G1, G2, B
    planes = torch.stack([mosaic[:, 0, dy::2, dx::2] for dy, dx in offsets], dim=1)
    padded = F.pad(planes, (1, 1, 1, 1), mode="replicate")

    def shifted(c: int, di: int, dj: int) -> torch.Tensor:
        return padded[:, c, 1 + di:1 + di + h, 1 + dj:1 + dj + w]

    def mean_of(c: int, sy: int, sx: int) -> torch.Tensor:
        cy, cx = offsets[c]
        dis = {0, sy - cy}
        djs = {0, sx - cx}
        terms = [shifted(c, di, dj) for di in dis for dj in djs]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total if len(terms) == 1 else total * (1.0 / len(terms))

    out = mosaic.new_empty(n, 3, h2, w2)
    for site, (sy, sx) in enumerate(offsets):
        own = (0, 1, 1, 2)[site]
        out[:, own, sy::2, sx::2] = planes[:, site]
        for colour, chans in ((0, (0,)), (1, (1, 2)), (2, (3,))):
            if colour == own:
                continue
            if len(chans) == 1:
                value = mean_of(chans[0], sy, sx)
            else:  # green at a red or blue site: two samples from each green plane
                value = (mean_of(1, sy, sx) + mean_of(2, sy, sx)) * 0.5
            out[:, colour, sy::2, sx::2] = value
    return out


def demosaic_malvar2004(mosaic: torch.Tensor, cfa: str = "RGGB") -> torch.Tensor:
    """Malvar-He-Cutler (2004) gradient-corrected linear demosaicing (5x5 filters).

    Args:
        mosaic: ``N x 1 x H x W`` Bayer mosaic (linear).
        cfa: its pattern.

    Returns:
        ``N x 3 x H x W`` RGB, not clipped (the filters can overshoot [0, 1] at edges).
    """
    _check(mosaic)
    f = F.conv2d(_pad(mosaic, 2), _MALVAR.to(mosaic))  # N x 4 x H x W
    g_at_rb, at_g_row, at_g_col, diag = f.unbind(dim=1)
    m = mosaic[:, 0]
    out = torch.empty(mosaic.shape[0], 3, *mosaic.shape[-2:], dtype=mosaic.dtype,
                      device=mosaic.device)
    (ry, rx), (g1y, g1x), (g2y, g2x), (by, bx) = packed_offsets(cfa)

    def put(c, dy, dx, src):
        out[:, c, dy::2, dx::2] = src[:, dy::2, dx::2]

    # At red: R measured, G from the cross, B from the diagonals.
    put(0, ry, rx, m), put(1, ry, rx, g_at_rb), put(2, ry, rx, diag)
    # At blue: symmetric.
    put(2, by, bx, m), put(1, by, bx, g_at_rb), put(0, by, bx, diag)
    # At G1 (red row): R from the row, B from the column.
    put(1, g1y, g1x, m), put(0, g1y, g1x, at_g_row), put(2, g1y, g1x, at_g_col)
    # At G2 (blue row): B from the row, R from the column.
    put(1, g2y, g2x, m), put(2, g2y, g2x, at_g_row), put(0, g2y, g2x, at_g_col)
    return out


def demosaic_menon2007(mosaic: torch.Tensor, cfa: str = "RGGB") -> torch.Tensor:
    """Menon et al. (2007) DDFAPD demosaicing through the ``colour-demosaicing`` package.

    Runs on the CPU in float64 image by image (it is a NumPy implementation); install the
    ``classical`` extra (``pip install 'isplab[classical]'``) to use it.
    """
    _check(mosaic)
    try:
        from colour_demosaicing import demosaicing_CFA_Bayer_Menon2007
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "demosaic method 'menon2007' needs colour-demosaicing: "
            "pip install 'isplab[classical]'"
        ) from exc
    import warnings

    p = check_pattern(cfa)
    outs = []
    for img in mosaic[:, 0].detach().cpu().double().numpy():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = demosaicing_CFA_Bayer_Menon2007(img, p)
        outs.append(torch.from_numpy(rgb).permute(2, 0, 1))
    return torch.stack(outs).to(device=mosaic.device, dtype=mosaic.dtype)


_METHODS = {
    "bilinear": demosaic_bilinear,
    "malvar2004": demosaic_malvar2004,
    "menon2007": demosaic_menon2007,
}


def demosaic(mosaic: torch.Tensor, cfa: str = "RGGB", method: str = "bilinear") -> torch.Tensor:
    """Demosaic a Bayer mosaic ``N x 1 x H x W`` to RGB ``N x 3 x H x W``.

    Args:
        mosaic: linear Bayer mosaic.
        cfa: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.
        method: ``bilinear``, ``malvar2004`` or ``menon2007`` (needs colour-demosaicing).
    """
    cfa = check_pattern(cfa)
    try:
        fn = _METHODS[method.lower()]
    except KeyError:
        raise ValueError(
            f"unknown demosaic method {method!r}; choose one of {', '.join(DEMOSAIC_METHODS)}"
        ) from None
    return fn(mosaic, cfa)
